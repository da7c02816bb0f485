/* Tensor methods that make views (view, narrow, select, transpose, ...) or copies
 * (clone, contiguous, float, long), and those that overwrite values in place (copy_,
 * fill_, zero_, uniform_, normal_). Lua dimensions and positions count from 1. */
#include "tensor_lua.h"

/* The end of every method below: the core has filled the box on top of the stack, or
 * failed and left it empty (for the collector) with its message. */
static int result(lua_State *L, int rc, const char *fname) {
    if (rc != UM_OK) um_lua_raise(L, fname);
    return 1;
}

static int view_like(lua_State *L, int reshape) {
    const char *fname = reshape ? "reshape" : "view";
    um_tensor *t = um_lua_check_tensor(L, 1);
    int64_t size[UM_MAXDIM];
    int ndim = um_lua_check_sizes_ex(L, 2, size, fname, 1);
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, reshape ? um_reshape(out, t, ndim, size) : um_view(out, t, ndim, size), fname);
}

static int t_view(lua_State *L) { return view_like(L, 0); }
static int t_reshape(lua_State *L) { return view_like(L, 1); }

/* narrow(dim, start, length): elements start .. start+length-1 of dim (start 1-based,
 * negative from the end). */
static int t_narrow(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int d = um_lua_check_dim(L, 2, t->ndim, "narrow");
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    int64_t n = t->size[d];
    if (start < 0) start += n + 1;
    if (start < 1 || len < 0 || start - 1 + len > n)
        return luaL_error(L, "narrow: elements %I..%I out of range for dimension %d of size %I",
                          luaL_checkinteger(L, 3), start + len - 1, d + 1, (lua_Integer)n);
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_narrow(out, t, d, start - 1, len), "narrow");
}

static int t_select(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int d = um_lua_check_dim(L, 2, t->ndim, "select");
    lua_Integer i = luaL_checkinteger(L, 3);
    int64_t n = t->size[d];
    if (i < 0) i += n + 1;
    if (i < 1 || i > n)
        return luaL_error(L, "select: index %I out of range for dimension %d of size %I",
                          luaL_checkinteger(L, 3), d + 1, (lua_Integer)n);
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_select(out, t, d, i - 1), "select");
}

/* transpose(d0, d1); with no arguments a 2-D tensor swaps its two dimensions. */
static int t_transpose(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int d0 = 0, d1 = 1;
    if (lua_isnoneornil(L, 2)) {
        if (t->ndim != 2)
            return luaL_error(L, "transpose: dimensions are required for a %d-D tensor", t->ndim);
    } else {
        d0 = um_lua_check_dim(L, 2, t->ndim, "transpose");
        d1 = um_lua_check_dim(L, 3, t->ndim, "transpose");
    }
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_transpose(out, t, d0, d1), "transpose");
}

/* permute(2, 1, 3) or permute({2, 1, 3}): output dimension k is input dimension perm[k]. */
static int t_permute(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int perm[UM_MAXDIM], seen[UM_MAXDIM] = {0};
    int from_table = lua_istable(L, 2);
    int n = from_table ? (int)lua_rawlen(L, 2) : lua_gettop(L) - 1;
    if (n != t->ndim)
        return luaL_error(L, "permute: %d dimensions given for a %d-D tensor", n, t->ndim);
    for (int k = 0; k < n; k++) {
        int arg = k + 2;
        if (from_table) {
            lua_rawgeti(L, 2, k + 1);
            arg = lua_gettop(L);
        }
        perm[k] = um_lua_check_dim(L, arg, t->ndim, "permute");
        if (from_table) lua_pop(L, 1);
        if (seen[perm[k]]++)
            return luaL_error(L, "permute: dimension %d appears twice", perm[k] + 1);
    }
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_permute(out, t, perm), "permute");
}

static int t_unsqueeze(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int d = um_lua_check_dim(L, 2, t->ndim + 1, "unsqueeze");
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_unsqueeze(out, t, d), "unsqueeze");
}

/* squeeze(): drop every size-1 dimension; squeeze(d): only d (kept if its size is not 1). */
static int t_squeeze(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    int d = lua_isnoneornil(L, 2) ? -1 : um_lua_check_dim(L, 2, t->ndim, "squeeze");
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_squeeze(out, t, d), "squeeze");
}

static int t_clone(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_clone(out, t), "clone");
}

/* Self when already contiguous, else a contiguous copy. */
static int t_contiguous(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (um_is_contiguous(t)) {
        lua_settop(L, 1);
        return 1;
    }
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_contiguous(out, t), "contiguous");
}

static int to_dtype(lua_State *L, um_dtype dt, const char *fname) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (t->dtype == dt) {
        lua_settop(L, 1);
        return 1;
    }
    um_tensor **out = um_lua_push_tensor_slot(L);
    return result(L, um_to_dtype(out, t, dt), fname);
}

static int t_float(lua_State *L) { return to_dtype(L, UM_FLOAT32, "float"); }
static int t_long(lua_State *L) { return to_dtype(L, UM_INT64, "long"); }

static int t_copy_(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1), *src = um_lua_check_tensor(L, 2);
    if (um_copy_(t, src) != UM_OK) um_lua_raise(L, "copy_");
    lua_settop(L, 1);
    return 1;
}

static int t_fill_(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    lua_Number v = luaL_checknumber(L, 2);
    if (um_fill_(t, v) != UM_OK) um_lua_raise(L, "fill_");
    lua_settop(L, 1);
    return 1;
}

static int t_zero_(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (um_fill_(t, 0.0) != UM_OK) um_lua_raise(L, "zero_");
    lua_settop(L, 1);
    return 1;
}

/* Random fills draw into a contiguous host buffer from the generator, so a seed gives the
 * same values whatever the tensor's strides or device; then copy if t is not that buffer. */
static int random_fill(lua_State *L, int normal) {
    const char *fname = normal ? "normal_" : "uniform_";
    um_tensor *t = um_lua_check_tensor(L, 1);
    um_generator *g = luaL_testudata(L, 2, UM_GENERATOR_MT);
    if (!g)
        return luaL_error(L, "%s: a generator is required (umbra.Generator(seed)); "
                             "there is no global random state", fname);
    double a = luaL_optnumber(L, 3, 0.0), b = luaL_optnumber(L, 4, 1.0);
    if (t->dtype != UM_FLOAT32) return luaL_error(L, "%s: float32 tensor expected, got int64", fname);
    um_tensor *buf = t;
    if (!um_backend_of(t)->is_host || !um_is_contiguous(t)) {
        um_tensor **slot = um_lua_push_tensor_slot(L);
        if (um_tensor_new(slot, UM_FLOAT32, t->ndim, t->size, NULL) != UM_OK) um_lua_raise(L, fname);
        buf = *slot;
    }
    if (normal) um_fill_normal(g, um_f32(buf), um_numel(buf), (float)a, (float)b);
    else um_fill_uniform(g, um_f32(buf), um_numel(buf), (float)a, (float)b);
    if (buf != t) um_lua_copy_from_host(L, t, buf, fname);
    lua_settop(L, 1);
    return 1;
}

/* uniform_(gen [, lo=0, hi=1]) and normal_(gen [, mean=0, std=1]). */
static int t_uniform_(lua_State *L) { return random_fill(L, 0); }
static int t_normal_(lua_State *L) { return random_fill(L, 1); }

static const luaL_Reg shape_methods[] = {
    {"view", t_view},           {"reshape", t_reshape},     {"narrow", t_narrow},
    {"select", t_select},       {"transpose", t_transpose}, {"t", t_transpose},
    {"permute", t_permute},     {"unsqueeze", t_unsqueeze}, {"squeeze", t_squeeze},
    {"clone", t_clone},         {"contiguous", t_contiguous},
    {"float", t_float},         {"long", t_long},           {"copy_", t_copy_},
    {"fill_", t_fill_},         {"zero_", t_zero_},         {"uniform_", t_uniform_},
    {"normal_", t_normal_},     {NULL, NULL}};

void um_lua_tensor_shape_methods(lua_State *L, int methods) {
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, shape_methods, 0);
    lua_pop(L, 1);
}
