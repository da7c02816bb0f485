/* umbra.core.cuda_core: whether the CUDA backend is here, the device count and name,
 * synchronize, device-memory counters; plus t:cuda(), t:cpu() on tensors (m:to(device) on
 * modules is lua/nn.c's). Works without the CUDA library (core/cuda/cuda_api.h: CPU-only
 * builds, or the library failing to load), where is_available() is false and
 * why_unavailable() says why. The friendly module is lua/umbra/cuda.lua. */
#include <string.h>
#include "binding.h"
#include "cuda/cuda_api.h"

static const um_backend *cuda_or_null(void) { return um_find_backend("cuda"); }

static int l_why_unavailable(lua_State *L) {
    const char *why = um_cuda_why_unavailable();
    if (why) lua_pushstring(L, why);
    else lua_pushnil(L);
    return 1;
}

static int l_is_available(lua_State *L) {
    lua_pushboolean(L, cuda_or_null() != NULL);
    return 1;
}

static int l_device_count(lua_State *L) {
    lua_pushinteger(L, cuda_or_null() ? um_cuda()->device_count() : 0);
    return 1;
}

static int l_device_name(lua_State *L) {
    if (cuda_or_null()) lua_pushstring(L, um_cuda()->device_name());
    else lua_pushnil(L);
    return 1;
}

/* The library when it is loaded and has a device; NULL otherwise, without loading it: a
 * run that never asked for "cuda" has no device work to wait for or memory to count. */
static const um_cuda_api *loaded_with_device(void) {
    const um_cuda_api *api = um_cuda_if_loaded();
    return api && api->backend() ? api : NULL;
}

/* Waits for queued device work (timings, and where a fault in a kernel shows); a no-op
 * without a device, so that timing code runs unchanged on the CPU. */
static int l_synchronize(lua_State *L) {
    const um_cuda_api *api = loaded_with_device();
    if (api && api->synchronize() != UM_OK) return um_lua_raise(L, "cuda.synchronize");
    return 0;
}

static int l_memory(lua_State *L) {
    int64_t in_use = 0, cached = 0, peak = 0;
    const um_cuda_api *api = loaded_with_device();
    if (api) api->memory(&in_use, &cached, &peak);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)in_use);
    lua_setfield(L, -2, "in_use");
    lua_pushinteger(L, (lua_Integer)cached);
    lua_setfield(L, -2, "cached");
    lua_pushinteger(L, (lua_Integer)peak);
    lua_setfield(L, -2, "peak");
    return 1;
}

static int l_empty_cache(lua_State *L) {
    (void)L;
    const um_cuda_api *api = loaded_with_device();
    if (api) api->empty_cache();
    return 0;
}

/* A copy of tensor 1 on backend be, or tensor 1 itself if it is already there. */
static int tensor_to(lua_State *L, const um_backend *be, const char *fname) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (um_backend_of(t) == be) {
        lua_settop(L, 1);
        return 1;
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_to_backend(slot, t, be) != UM_OK) return um_lua_raise(L, fname);
    return 1;
}

static int t_cuda(lua_State *L) {
    const um_backend *be;
    um_lua_check_tensor(L, 1);
    if (um_backend_named("cuda", &be)) return um_lua_raise(L, "cuda");
    return tensor_to(L, be, "cuda");
}

static int t_cpu(lua_State *L) { return tensor_to(L, um_cpu_backend(), "cpu"); }

static const luaL_Reg cuda_functions[] = {
    {"is_available", l_is_available}, {"device_count", l_device_count}, {"device_name", l_device_name},
    {"synchronize", l_synchronize},   {"memory", l_memory},             {"empty_cache", l_empty_cache},
    {"why_unavailable", l_why_unavailable}, {NULL, NULL}};

/* Set methods[name] = f unless another part already defined it. */
static void add_method(lua_State *L, int methods, const char *name, lua_CFunction f) {
    lua_getfield(L, methods, name);
    int taken = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (taken) return;
    lua_pushcfunction(L, f);
    lua_setfield(L, methods, name);
}

void um_lua_open_cuda(lua_State *L, int module) {
    module = lua_absindex(L, module);
    luaL_newlib(L, cuda_functions);
    lua_setfield(L, module, "cuda_core");
    if (lua_getfield(L, module, "Tensor") == LUA_TTABLE) {
        add_method(L, lua_gettop(L), "cuda", t_cuda);
        add_method(L, lua_gettop(L), "cpu", t_cpu);
    }
    lua_pop(L, 1);
    lua_settop(L, module);
}
