/* Shared helpers of the umbra.core binding: tensor boxes, argument checks that turn
 * Lua's 1-based (or negative) dimensions into C's 0-based ones, and raising the core's
 * error message. A tensor box is a userdata holding one core reference; it is pushed
 * empty before the core allocates, so a Lua error at any later point leaks nothing. */
#include <string.h>
#include "binding.h"
#include "tensor_lua.h"

/* The core allocates outside Lua's sight; tell the collector how much the core's live
 * memory grew since we last looked, so that dropped tensors are finalised in proportion
 * to what they hold rather than to their few bytes of userdata. */
static void report_growth(lua_State *L) {
    static int64_t seen;
    int64_t now = um_live_bytes();
    if (now - seen >= 64 * 1024) {
        int kb = (int)((now - seen) / 1024 > 1 << 30 ? 1 << 30 : (now - seen) / 1024);
        seen = now;
        lua_gc(L, LUA_GCSTEP, kb);
    } else if (now < seen) {
        seen = now;
    }
}

um_tensor **um_lua_push_tensor_slot(lua_State *L) {
    report_growth(L);
    um_lua_tensor_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->t = NULL;
    luaL_setmetatable(L, UM_TENSOR_MT);
    return &box->t;
}

void um_lua_push_tensor(lua_State *L, um_tensor *t) {
    if (!t) {
        lua_pushnil(L);
        return;
    }
    /* Only a Lua out-of-memory error in the small userdata below could lose t. */
    report_growth(L);
    um_lua_tensor_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->t = t;
    luaL_setmetatable(L, UM_TENSOR_MT);
}

um_tensor *um_lua_check_tensor(lua_State *L, int i) {
    um_lua_tensor_box *box = luaL_testudata(L, i, UM_TENSOR_MT);
    if (!box) luaL_typeerror(L, i, "tensor");
    if (!box->t) luaL_argerror(L, i, "tensor was freed");
    return box->t;
}

um_tensor *um_lua_opt_tensor(lua_State *L, int i) {
    return lua_isnoneornil(L, i) ? NULL : um_lua_check_tensor(L, i);
}

int um_lua_is_tensor(lua_State *L, int i) {
    return luaL_testudata(L, i, UM_TENSOR_MT) != NULL;
}

um_generator *um_lua_check_generator(lua_State *L, int i) {
    return luaL_checkudata(L, i, UM_GENERATOR_MT);
}

int um_lua_raise(lua_State *L, const char *fname) {
    const char *msg = um_last_error();
    size_t n = strlen(fname);
    if (!msg || !*msg) msg = "failed (no message from the core)";
    /* The core often names the operation itself; do not say it twice. */
    if (strncmp(msg, fname, n) == 0 && msg[n] == ':')
        return luaL_error(L, "%s", msg);
    return luaL_error(L, "%s: %s", fname, msg);
}

int um_lua_check_dim(lua_State *L, int arg, int ndim, const char *fname) {
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d >= 1 && d <= ndim) return (int)(d - 1);
    if (d <= -1 && d >= -ndim) return (int)(ndim + d);
    if (ndim == 0)
        return luaL_error(L, "%s: dimension %I out of range for a tensor with no dimensions",
                          fname, d);
    return luaL_error(L, "%s: dimension %I out of range (expected 1..%d or -%d..-1)", fname,
                      d, ndim, ndim);
}

/* Sizes must be integers >= 0; -1 too where the caller infers one size (view/reshape). */
static int64_t check_size(lua_State *L, int ok, lua_Integer v, int pos, const char *fname,
                          int allow_infer) {
    if (!ok) return luaL_error(L, "%s: size %d is not an integer", fname, pos);
    if (v < 0 && !(allow_infer && v == -1))
        return luaL_error(L, "%s: size %d is %I, expected a size >= 0", fname, pos, v);
    return v;
}

int um_lua_check_sizes_ex(lua_State *L, int i, int64_t *size, const char *fname, int allow_infer) {
    int ndim = 0, ok;
    if (lua_istable(L, i)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, i);
        if (n > UM_MAXDIM)
            return luaL_error(L, "%s: %I sizes given, at most %d dimensions are supported", fname,
                              n, UM_MAXDIM);
        for (ndim = 0; ndim < n; ndim++) {
            lua_rawgeti(L, i, ndim + 1);
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            size[ndim] = check_size(L, ok, v, ndim + 1, fname, allow_infer);
        }
        return ndim;
    }
    if (!lua_isnumber(L, i) || lua_type(L, i) == LUA_TSTRING)
        return luaL_typeerror(L, i, "table of sizes or integer sizes");
    for (; lua_type(L, i + ndim) == LUA_TNUMBER; ndim++) {
        if (ndim == UM_MAXDIM)
            return luaL_error(L, "%s: more than %d sizes given", fname, UM_MAXDIM);
        lua_Integer v = lua_tointegerx(L, i + ndim, &ok);
        size[ndim] = check_size(L, ok, v, ndim + 1, fname, allow_infer);
    }
    return ndim;
}

int um_lua_check_sizes(lua_State *L, int i, int64_t *size, const char *fname) {
    return um_lua_check_sizes_ex(L, i, size, fname, 0);
}

um_tensor *um_lua_core_labels(lua_State *L, int i, int64_t k, const um_tensor *like, const char *who) {
    um_tensor *t = um_lua_check_tensor(L, i);
    if (t->dtype != UM_INT64)
        luaL_error(L, "%s: labels must be int64 class indices 1..K (got %s)", who, um_dtype_name(t->dtype));
    if (!um_backend_of(t)->is_host) luaL_error(L, "%s: class labels must be on the CPU", who);
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_clone(slot, t)) um_lua_raise(L, who);
    int64_t *v = um_i64(*slot);
    for (int64_t j = 0; j < um_numel(*slot); j++) {
        if (v[j] < 1 || (k > 0 && v[j] > k)) {
            if (k > 0)
                luaL_error(L, "%s: class label %d of example %d is outside 1..%d", who, (int)v[j], (int)(j + 1),
                           (int)k);
            luaL_error(L, "%s: class label %d of example %d is below 1 (labels count from 1)", who, (int)v[j],
                       (int)(j + 1));
        }
        v[j] -= 1;
    }
    if (like && um_backend_of(like) != um_backend_of(*slot)) {   /* data on a device: labels follow */
        um_tensor **dev = um_lua_push_tensor_slot(L);
        if (um_to_backend(dev, *slot, um_backend_of(like))) um_lua_raise(L, who);
        return *dev;
    }
    return *slot;
}
