/* Helpers shared by the lua/tensor*.c files (declared in tensor_lua.h): the dtype
 * argument, host views of device tensors and copies back, and shifting int64 indices
 * between Lua's 1-based and the core's 0-based counting. In a file of their own so that
 * the tensor files depend on it and not on each other. */
#include <string.h>
#include "tensor_lua.h"

const um_backend *um_lua_cpu(void) { return um_cpu_backend(); }

um_dtype um_lua_opt_dtype(lua_State *L, int i, const char *fname) {
    if (lua_isnoneornil(L, i)) return UM_FLOAT32;
    const char *s = luaL_checkstring(L, i);
    if (strcmp(s, "float32") == 0 || strcmp(s, "float") == 0) return UM_FLOAT32;
    if (strcmp(s, "int64") == 0 || strcmp(s, "long") == 0) return UM_INT64;
    return luaL_error(L, "%s: unknown dtype '%s' (expected \"float32\" or \"int64\")", fname, s);
}

um_tensor *um_lua_host_view(lua_State *L, um_tensor *t, const char *fname) {
    if (um_backend_of(t)->is_host) {
        um_tensor_retain(t);
        um_lua_push_tensor(L, t);
        return t;
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_to_backend(slot, t, um_lua_cpu()) != UM_OK) um_lua_raise(L, fname);
    return *slot;
}

void um_lua_copy_from_host(lua_State *L, um_tensor *dst, um_tensor *src, const char *fname) {
    if (um_backend_of(dst) == um_backend_of(src)) {
        if (um_copy_(dst, src) != UM_OK) um_lua_raise(L, fname);
        return;
    }
    um_tensor **moved = um_lua_push_tensor_slot(L);
    if (um_to_backend(moved, src, um_backend_of(dst)) != UM_OK || um_copy_(dst, *moved) != UM_OK)
        um_lua_raise(L, fname);
    lua_pop(L, 1);
}

void um_lua_shift_indices(lua_State *L, um_tensor *t, int64_t delta, const char *fname) {
    int top = lua_gettop(L);
    um_tensor *h = um_lua_host_view(L, t, fname);
    um_tensor *c = h;
    if (!um_is_contiguous(h)) {
        um_tensor **slot = um_lua_push_tensor_slot(L);
        if (um_contiguous(slot, h) != UM_OK) um_lua_raise(L, fname);
        c = *slot;
    }
    int64_t n = um_numel(c), *p = um_i64(c);
    for (int64_t k = 0; k < n; k++) p[k] += delta;
    if (c != t) um_lua_copy_from_host(L, t, c, fname);
    lua_settop(L, top);
}
