/* Tensor constructors on the module table: tensor(nested table), zeros/ones/empty/full,
 * rand/randn (an explicit generator is required), arange (NumPy's half-open range),
 * cat and matmul. New tensors live on the CPU and are float32 unless "int64" is given. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "tensor_lua.h"

/* ---- tensor{...} ------------------------------------------------------------------ */

/* "[2][1]" for the first `depth` entries of a 0-based path, for error messages. */
static const char *path_str(const int64_t *path, int depth, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int d = 0; d < depth && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "[%lld]", (long long)path[d] + 1);
    return buf;
}

/* Walk the nested table at stack index `at` with the inferred shape: check every entry
 * (dst NULL) or write them in row-major order (dst set). */
static void walk(lua_State *L, int at, int depth, int ndim, const int64_t *size, int64_t *path,
                 um_dtype dt, void *dst, int64_t *pos) {
    char where[128];
    if (depth == ndim) {
        int isnum = lua_type(L, at) == LUA_TNUMBER, isint = 0;
        lua_Integer iv = lua_tointegerx(L, at, &isint);
        if (!isnum)
            luaL_error(L, "tensor: element %s is a %s, expected a number",
                       path_str(path, depth, where, sizeof where), luaL_typename(L, at));
        if (dt == UM_INT64 && !isint)
            luaL_error(L, "tensor: element %s is %f, not an integer (int64 tensor)",
                       path_str(path, depth, where, sizeof where), lua_tonumber(L, at));
        if (!dst) return;
        if (dt == UM_INT64) ((int64_t *)dst)[(*pos)++] = iv;
        else ((float *)dst)[(*pos)++] = (float)lua_tonumber(L, at);
        return;
    }
    if (!lua_istable(L, at))
        luaL_error(L, "tensor: element %s is a %s, expected a table of %I entries",
                   path_str(path, depth, where, sizeof where), luaL_typename(L, at),
                   (lua_Integer)size[depth]);
    if ((int64_t)lua_rawlen(L, at) != size[depth])
        luaL_error(L, "tensor: ragged nested table: %s%s has %I entries, expected %I",
                   depth ? "element " : "the table", path_str(path, depth, where, sizeof where),
                   (lua_Integer)lua_rawlen(L, at), (lua_Integer)size[depth]);
    luaL_checkstack(L, 2, "tensor: nesting too deep");
    for (path[depth] = 0; path[depth] < size[depth]; path[depth]++) {
        lua_rawgeti(L, at, path[depth] + 1);
        walk(L, lua_gettop(L), depth + 1, ndim, size, path, dt, dst, pos);
        lua_pop(L, 1);
    }
}

/* tensor({{1, 2}, {3, 4}} [, dtype]): the shape comes from the first entry at each level. */
static int f_tensor(lua_State *L) {
    um_dtype dt = um_lua_opt_dtype(L, 2, "tensor");
    int64_t size[UM_MAXDIM], path[UM_MAXDIM + 1];
    int ndim = 0;
    if (lua_type(L, 1) != LUA_TNUMBER) luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    while (lua_istable(L, -1)) {
        if (ndim == UM_MAXDIM)
            return luaL_error(L, "tensor: more than %d levels of nesting", UM_MAXDIM);
        size[ndim++] = (int64_t)lua_rawlen(L, -1);
        if (size[ndim - 1] == 0) break;
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    int64_t pos = 0;
    walk(L, 1, 0, ndim, size, path, dt, NULL, &pos);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_tensor_new(out, dt, ndim, size, NULL) != UM_OK) um_lua_raise(L, "tensor");
    walk(L, 1, 0, ndim, size, path, dt, (*out)->storage->data, &pos);
    return 1;
}

/* ---- filled tensors --------------------------------------------------------------- */

/* Sizes at argument 1 (a table or integers); returns the index of the next argument. */
static int sizes_arg(lua_State *L, int64_t *size, int *ndim, const char *fname) {
    *ndim = um_lua_check_sizes(L, 1, size, fname);
    return lua_istable(L, 1) ? 2 : 1 + *ndim;
}

/* kind: 0 zeros, 1 ones, 2 empty, 3 full(sizes, value): full(2, 3, v) takes the last of
 * the leading numbers as the value. */
static int filled(lua_State *L, const char *fname, int kind) {
    int64_t size[UM_MAXDIM];
    int ndim, next;
    double value = kind == 1 ? 1.0 : 0.0;
    if (kind == 3 && !lua_istable(L, 1)) {
        int last = 1;
        while (lua_type(L, last + 1) == LUA_TNUMBER) last++;
        if (last < 2) return luaL_error(L, "full: expected full(sizes, value [, dtype])");
        lua_pushvalue(L, last);
        lua_pushnil(L);
        lua_replace(L, last); /* sizes now stop before the value */
        value = lua_tonumber(L, -1);
        lua_pop(L, 1);
        next = sizes_arg(L, size, &ndim, fname) + 1;
    } else {
        next = sizes_arg(L, size, &ndim, fname);
        if (kind == 3) value = luaL_checknumber(L, next++);
    }
    um_dtype dt = um_lua_opt_dtype(L, next, fname);
    um_tensor **out = um_lua_push_tensor_slot(L);
    int rc = kind == 0 ? um_tensor_zeros(out, dt, ndim, size, NULL)
                       : um_tensor_new(out, dt, ndim, size, NULL);
    if (rc == UM_OK && (kind == 1 || kind == 3)) rc = um_fill_(*out, value);
    if (rc != UM_OK) um_lua_raise(L, fname);
    return 1;
}

static int f_zeros(lua_State *L) { return filled(L, "zeros", 0); }
static int f_ones(lua_State *L) { return filled(L, "ones", 1); }
static int f_empty(lua_State *L) { return filled(L, "empty", 2); }
static int f_full(lua_State *L) { return filled(L, "full", 3); }

/* rand(sizes, gen) in [0,1) and randn(sizes, gen) ~ N(0,1). */
static int random_tensor(lua_State *L, int normal) {
    const char *fname = normal ? "randn" : "rand";
    int64_t size[UM_MAXDIM];
    int ndim, next = sizes_arg(L, size, &ndim, fname);
    um_generator *g = luaL_testudata(L, next, UM_GENERATOR_MT);
    if (!g)
        return luaL_error(L, "%s: a generator is required as argument %d, e.g. %s({2, 3}, "
                             "umbra.Generator(seed)); there is no global random state",
                          fname, next, fname);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_tensor_new(out, UM_FLOAT32, ndim, size, NULL) != UM_OK) um_lua_raise(L, fname);
    if (normal) um_fill_normal(g, um_f32(*out), um_numel(*out), 0.0f, 1.0f);
    else um_fill_uniform(g, um_f32(*out), um_numel(*out), 0.0f, 1.0f);
    return 1;
}

static int f_rand(lua_State *L) { return random_tensor(L, 0); }
static int f_randn(lua_State *L) { return random_tensor(L, 1); }

/* arange(n) = 0, 1, ..., n-1; arange(a, b [, step]) = a, a+step, ... while < b (> b for a
 * negative step): NumPy's half-open range. A trailing "int64" gives integers. */
static int f_arange(lua_State *L) {
    int top = lua_gettop(L);
    um_dtype dt = UM_FLOAT32;
    if (top >= 2 && lua_type(L, top) == LUA_TSTRING) dt = um_lua_opt_dtype(L, top--, "arange");
    double a = 0, b, step = 1;
    if (top == 1) b = luaL_checknumber(L, 1);
    else if (top == 2 || top == 3) {
        a = luaL_checknumber(L, 1);
        b = luaL_checknumber(L, 2);
        step = luaL_optnumber(L, 3, 1.0);
    } else return luaL_error(L, "arange: expected arange(n) or arange(start, stop [, step])");
    if (step == 0 || !isfinite(a) || !isfinite(b) || !isfinite(step))
        return luaL_error(L, "arange: step must be nonzero and bounds finite");
    double count = ceil((b - a) / step);
    int64_t n = count > 0 ? (int64_t)count : 0;
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_tensor_new(out, dt, 1, &n, NULL) != UM_OK) um_lua_raise(L, "arange");
    for (int64_t i = 0; i < n; i++) {
        if (dt == UM_INT64) um_i64(*out)[i] = (int64_t)llround(a + (double)i * step);
        else um_f32(*out)[i] = (float)(a + (double)i * step);
    }
    return 1;
}

/* cat({t1, t2, ...} [, dim=1]). */
static int f_cat(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2); /* the scratch list below goes above the arguments */
    int n = (int)lua_rawlen(L, 1);
    if (n == 0) return luaL_error(L, "cat: the list of tensors is empty");
    um_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)n, 0); /* freed by the GC */
    for (int k = 0; k < n; k++) {
        lua_rawgeti(L, 1, k + 1);
        um_lua_tensor_box *box = luaL_testudata(L, -1, UM_TENSOR_MT);
        if (!box || !box->t)
            return luaL_error(L, "cat: entry %d of the list is %s", k + 1,
                              box ? "a freed tensor" : luaL_typename(L, -1));
        ts[k] = box->t;
        lua_pop(L, 1);
    }
    int d = lua_isnoneornil(L, 2) ? 0 : um_lua_check_dim(L, 2, ts[0]->ndim, "cat");
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_cat(out, n, ts, d) != UM_OK) um_lua_raise(L, "cat");
    return 1;
}

static const luaL_Reg constructors[] = {
    {"tensor", f_tensor}, {"zeros", f_zeros}, {"ones", f_ones},   {"empty", f_empty},
    {"full", f_full},     {"rand", f_rand},   {"randn", f_randn}, {"arange", f_arange},
    {"cat", f_cat},       {NULL, NULL}};

void um_lua_tensor_constructors(lua_State *L, int module) {
    lua_pushvalue(L, module);
    luaL_setfuncs(L, constructors, 0);
    lua_getfield(L, -1, "Tensor");
    lua_getfield(L, -1, "matmul");
    lua_setfield(L, -3, "matmul");
    lua_pop(L, 2);
}
