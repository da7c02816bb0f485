/* The backend registry: the CPU backend, backends that register themselves, and backends
 * loaded on first use through a provider (CUDA), so that base code never names a backend
 * library. Also the one error for a kernel a backend lacks. */
#include <string.h>
#include "backend.h"
#include "error.h"

#define UM_MAX_BACKENDS 4
static const um_backend *registry[UM_MAX_BACKENDS];
static const um_backend_provider *providers[UM_MAX_BACKENDS];

void um_register_backend(const um_backend *be) {
    for (int i = 0; i < UM_MAX_BACKENDS; i++) {
        if (registry[i] == be) return;
        if (!registry[i]) { registry[i] = be; return; }
    }
}

void um_register_backend_provider(const um_backend_provider *p) {
    for (int i = 0; i < UM_MAX_BACKENDS; i++) {
        if (providers[i] == p) return;
        if (!providers[i]) { providers[i] = p; return; }
    }
}

static const um_backend_provider *provider_named(const char *name) {
    for (int i = 0; i < UM_MAX_BACKENDS && providers[i]; i++)
        if (!strcmp(providers[i]->name, name)) return providers[i];
    return NULL;
}

const um_backend *um_find_backend(const char *name) {
    if (!strcmp(name, "cpu")) return um_cpu_backend();
    const um_backend_provider *p = provider_named(name);
    if (p) return p->find();
    for (int i = 0; i < UM_MAX_BACKENDS && registry[i]; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    return NULL;
}

const char *um_backend_why_unavailable(const char *name) {
    if (um_find_backend(name)) return NULL;
    const um_backend_provider *p = provider_named(name);
    if (p) return p->why();
    if (!strcmp(name, "cuda")) return "umbra was built without its CUDA loader";
    return "no such device (expected cpu or cuda)";
}

int um_backend_named(const char *name, const um_backend **out) {
    if ((*out = um_find_backend(name))) return UM_OK;
    if (!strcmp(name, "cuda")) return um_fail(UM_EDEVICE, "no CUDA device (%s)", um_backend_why_unavailable(name));
    return um_fail(UM_EINVAL, "no device '%s' (expected cpu or cuda)", name);
}

int um_kernel_missing(const um_backend *be, const char *kernel) {
    return um_fail(UM_ENOTIMPL, "%s: kernel %s is not implemented", be->name, kernel);
}
