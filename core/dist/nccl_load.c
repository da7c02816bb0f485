/* NCCL at run time (core/dist/nccl.h): dlopen of $UMBRA_NCCL_LIB or libnccl.so.2 on first
 * use, the entry points umbra needs resolved by name, the version checked, and every NCCL
 * failure turned into an umbra error with the call, NCCL's error text and its last-error
 * explanation. One communicator per process (the world's ranks, one GPU each). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dist/nccl.h"
#include "error.h"

typedef int (*get_version_fn)(int *);
typedef int (*get_unique_id_fn)(um_nccl_id *);
typedef int (*comm_init_rank_fn)(void **, int, um_nccl_id, int);
typedef int (*comm_destroy_fn)(void *);
typedef int (*all_reduce_fn)(const void *, void *, size_t, int, int, void *, void *);
typedef int (*broadcast_fn)(const void *, void *, size_t, int, int, void *, void *);
typedef const char *(*error_string_fn)(int);
typedef const char *(*last_error_fn)(void *);

static struct {
    int tried;
    um_nccl_state state;
    char why[512], version[32];
    void *lib, *comm;
    get_version_fn get_version;
    get_unique_id_fn get_unique_id;
    comm_init_rank_fn comm_init_rank;
    comm_destroy_fn comm_destroy;
    all_reduce_fn all_reduce;
    broadcast_fn broadcast;
    error_string_fn error_string;
    last_error_fn last_error;   /* NCCL 2.13 and later; NULL before */
} nc;

static void *need(const char *name) {
    void *f = dlsym(nc.lib, name);
    if (!f && nc.state != UM_NCCL_UNUSABLE) {
        nc.state = UM_NCCL_UNUSABLE;
        snprintf(nc.why, sizeof nc.why, "the NCCL library has no %s (not NCCL 2.x?)", name);
    }
    return f;
}

static void load(void) {
    const char *off = getenv("UMBRA_NCCL"), *path = getenv("UMBRA_NCCL_LIB");
    if (off && strcmp(off, "off") == 0) {
        snprintf(nc.why, sizeof nc.why, "UMBRA_NCCL=off");
        return;
    }
    if (!path || !*path) path = "libnccl.so.2";
    nc.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!nc.lib) {
        const char *e = dlerror();
        /* a file that exists but does not load (a CUDA runtime it needs is missing, another
         * architecture) is a broken installation, not an absent one */
        int there = strchr(path, '/') ? access(path, F_OK) == 0 : e && !strstr(e, "No such file");
        nc.state = there ? UM_NCCL_UNUSABLE : UM_NCCL_ABSENT;
        snprintf(nc.why, sizeof nc.why, "%s", e ? e : "dlopen failed");
        return;
    }
    nc.state = UM_NCCL_LOADED;
    nc.get_version = (get_version_fn)need("ncclGetVersion");
    nc.get_unique_id = (get_unique_id_fn)need("ncclGetUniqueId");
    nc.comm_init_rank = (comm_init_rank_fn)need("ncclCommInitRank");
    nc.comm_destroy = (comm_destroy_fn)need("ncclCommDestroy");
    nc.all_reduce = (all_reduce_fn)need("ncclAllReduce");
    nc.broadcast = (broadcast_fn)need("ncclBroadcast");
    nc.error_string = (error_string_fn)need("ncclGetErrorString");
    nc.last_error = (last_error_fn)dlsym(nc.lib, "ncclGetLastError");
    if (nc.state != UM_NCCL_LOADED) return;
    int code = 0;
    if (nc.get_version(&code) != UM_NCCL_SUCCESS) {
        nc.state = UM_NCCL_UNUSABLE;
        snprintf(nc.why, sizeof nc.why, "ncclGetVersion failed in %s", path);
        return;
    }
    /* NCCL_VERSION_CODE: major*1000 + minor*100 + patch before 2.9, major*10000 + minor*100 + patch since */
    int major = code >= 10000 ? code / 10000 : code / 1000;
    int minor = code >= 10000 ? code % 10000 / 100 : code % 1000 / 100, patch = code % 100;
    snprintf(nc.version, sizeof nc.version, "%d.%d.%d", major, minor, patch);
    if (major != UM_NCCL_MIN_MAJOR || minor < UM_NCCL_MIN_MINOR) {
        nc.state = UM_NCCL_UNUSABLE;
        snprintf(nc.why, sizeof nc.why, "%s is NCCL %s, umbra needs NCCL %d.x from %d.%d", path, nc.version,
                 UM_NCCL_MIN_MAJOR, UM_NCCL_MIN_MAJOR, UM_NCCL_MIN_MINOR);
    }
}

um_nccl_state um_nccl_load(char *why, size_t n) {
    if (!nc.tried) {
        nc.tried = 1;
        load();
    }
    if (why && n) snprintf(why, n, "%s", nc.state == UM_NCCL_LOADED ? "" : nc.why);
    return nc.state;
}

const char *um_nccl_version(void) { return nc.version; }
int um_nccl_active(void) { return nc.comm != NULL; }

static int nccl_fail(const char *call, int res) {
    const char *detail = nc.last_error ? nc.last_error(nc.comm) : NULL;
    return um_fail(UM_EDEVICE, "%s failed: %s (error %d)%s%s", call, nc.error_string ? nc.error_string(res) : "?", res,
                   detail && *detail ? ": " : "", detail && *detail ? detail : "");
}

int um_nccl_unique_id(um_nccl_id *id) {
    if (nc.state != UM_NCCL_LOADED) return um_fail(UM_EDEVICE, "NCCL is not loaded: %s", nc.why);
    int res = nc.get_unique_id(id);
    return res == UM_NCCL_SUCCESS ? UM_OK : nccl_fail("ncclGetUniqueId", res);
}

int um_nccl_comm_init(int nranks, const um_nccl_id *id, int rank) {
    if (nc.state != UM_NCCL_LOADED) return um_fail(UM_EDEVICE, "NCCL is not loaded: %s", nc.why);
    if (nc.comm) return UM_OK;
    void *comm = NULL;
    int res = nc.comm_init_rank(&comm, nranks, *id, rank);
    if (res != UM_NCCL_SUCCESS) return nccl_fail("ncclCommInitRank", res);
    nc.comm = comm;
    return UM_OK;
}

int um_nccl_allreduce(void *buf, size_t count, int dtype, int op) {
    if (!nc.comm) return um_fail(UM_EDEVICE, "ncclAllReduce: no NCCL communicator (dist.device_collectives first)");
    int res = nc.all_reduce(buf, buf, count, dtype, op, nc.comm, NULL);
    return res == UM_NCCL_SUCCESS ? UM_OK : nccl_fail("ncclAllReduce", res);
}

int um_nccl_broadcast(void *buf, size_t count, int dtype, int root) {
    if (!nc.comm) return um_fail(UM_EDEVICE, "ncclBroadcast: no NCCL communicator (dist.device_collectives first)");
    int res = nc.broadcast(buf, buf, count, dtype, root, nc.comm, NULL);
    return res == UM_NCCL_SUCCESS ? UM_OK : nccl_fail("ncclBroadcast", res);
}

void um_nccl_destroy(void) {
    if (nc.comm) nc.comm_destroy(nc.comm);
    nc.comm = NULL;
}
