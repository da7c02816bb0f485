/* Loads the CUDA backend library (libumbra_cuda.so, see core/cuda/cuda_api.h) on first
 * use. Where it is looked for: $UMBRA_CUDA_LIB if set; else, from the folder of the object
 * holding this code (the Lua module core.so, or the executable) and then from the
 * executable's folder, in that folder itself (beside an installed or built core.so), in
 * lua/umbra/ under it (build/umbra) and in ../lib/lua/5.4/umbra/ (an installed bin/umbra);
 * last, where the build that compiled this code put it (the C tests). A library that is there but does not
 * load (a CUDA library missing, say) is an error kept for um_cuda_why_unavailable(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "cuda/cuda_api.h"

#define LIB_NAME "libumbra_cuda.so"
#ifndef UM_CUDA_BUILD_LIB   /* set by the Makefile: where this build puts the library, or "" */
#define UM_CUDA_BUILD_LIB ""
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const um_cuda_api *api;
static int loaded;   /* set (atomically) once api is final */
static char load_error[PATH_MAX + 512];
static char why[PATH_MAX + 1024];

static void *open_candidate(const char *path) {
    if (access(path, F_OK) != 0) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && !load_error[0]) snprintf(load_error, sizeof load_error, "cannot load %s: %s", path, dlerror());
    return h;
}

/* The folder of a file, resolved; "" when it cannot be. */
static void folder_of(const char *file, char *dir) {
    dir[0] = '\0';
    if (!file || !realpath(file, dir)) { dir[0] = '\0'; return; }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
}

/* The file a handle was opened from, for messages. */
static const char *info_name(void *h) {
    static char name[PATH_MAX];
    void *sym = dlsym(h, UM_CUDA_ENTRY);
    Dl_info info;
    snprintf(name, sizeof name, "%s", sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : LIB_NAME);
    return name;
}

static void load(void) {
    const char *env = getenv("UMBRA_CUDA_LIB");
    Dl_info info;
    char bases[2][PATH_MAX], path[2 * PATH_MAX];
    void *h = NULL;
    bases[0][0] = '\0';
    if (dladdr((void *)um_cuda, &info) && info.dli_fname) {
        folder_of(info.dli_fname, bases[0]);
        /* the library resolves umbra's functions from this object: when that is the Lua
         * module, which Lua opens privately, make its symbols visible first */
        void *me = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
        if (me) dlclose(me);
    }
    folder_of("/proc/self/exe", bases[1]);   /* the executable, however it was started */
    if (env && *env) {
        if (access(env, F_OK) != 0) snprintf(load_error, sizeof load_error, "UMBRA_CUDA_LIB=%s: no such file", env);
        else h = open_candidate(env);
    } else {
        const char *rel[] = {"/" LIB_NAME, "/lua/umbra/" LIB_NAME, "/../lib/lua/5.4/umbra/" LIB_NAME};
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; !h && bases[b][0] && i < sizeof rel / sizeof *rel; i++) {
                snprintf(path, sizeof path, "%s%s", bases[b], rel[i]);
                h = open_candidate(path);
            }
        if (!h && UM_CUDA_BUILD_LIB[0]) h = open_candidate(UM_CUDA_BUILD_LIB);
        if (!h && !load_error[0]) snprintf(load_error, sizeof load_error, "umbra was built without CUDA (no " LIB_NAME ")");
    }
    if (!h) return;
    um_cuda_entry_fn entry = (um_cuda_entry_fn)dlsym(h, UM_CUDA_ENTRY);
    if (!entry) {
        snprintf(load_error, sizeof load_error, "%s has no %s", LIB_NAME, UM_CUDA_ENTRY);
        return;
    }
    const um_cuda_api *got = entry();
    if (!got || got->abi_version != UM_CUDA_ABI_VERSION || got->struct_size != (int)sizeof(um_cuda_api)) {
        snprintf(load_error, sizeof load_error,
                 "%s has ABI version %d (table of %d bytes), this umbra needs version %d (%d bytes): "
                 "rebuild both from one tree, or point UMBRA_CUDA_LIB at the matching library",
                 info_name(h), got ? got->abi_version : -1, got ? got->struct_size : -1, UM_CUDA_ABI_VERSION,
                 (int)sizeof(um_cuda_api));
        return;   /* the handle stays open: its code may be on no one's stack, but it is cheap */
    }
    api = got;
    load_error[0] = '\0';
}

static void load_once(void) {
    load();
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

const um_cuda_api *um_cuda(void) {
    pthread_once(&once, load_once);
    return api;
}

const um_cuda_api *um_cuda_if_loaded(void) { return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE) ? api : NULL; }

const char *um_cuda_why_unavailable(void) {
    if (!um_cuda()) return load_error;
    if (api->backend()) return NULL;
    snprintf(why, sizeof why, "the CUDA library loaded, but there is no device: %s", api->why_no_device());
    return why;
}

static const um_backend *find_cuda(void) { return um_cuda() ? um_cuda()->backend() : NULL; }

/* "cuda" is found through the registry like any backend: this loader offers it at start-up
 * (programs link the engine whole, so this runs wherever the loader is linked in). */
static const um_backend_provider cuda_provider = {"cuda", find_cuda, um_cuda_why_unavailable};

__attribute__((constructor)) static void offer_cuda_backend(void) { um_register_backend_provider(&cuda_provider); }
