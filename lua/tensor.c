/* The umbra.Tensor userdata: its metatable, lifetime (__gc = __close = free), indexing
 * t[i] / t[i] = v (1-based, negative from the end), and the methods that read a tensor's
 * shape or values into Lua. Arithmetic, shapes, reductions, constructors and printing
 * live in the other lua/tensor_*.c files, which add themselves to the same tables. */
#include <string.h>
#include "tensor_lua.h"

/* ---- lifetime -------------------------------------------------------------------- */

/* __gc, __close and :free() in one: drop the core reference once, then mark the box. */
static int t_free(lua_State *L) {
    um_lua_tensor_box *box = luaL_checkudata(L, 1, UM_TENSOR_MT);
    um_tensor *t = box->t;
    box->t = NULL;
    um_tensor_release(t);
    return 0;
}

/* ---- element access -------------------------------------------------------------- */

static int64_t elem_offset(const um_tensor *t, const int64_t *idx) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    return off;
}

/* Push the element of host tensor t at idx (t->ndim entries) as a Lua number. */
static void push_host_elem(lua_State *L, const um_tensor *t, const int64_t *idx) {
    int64_t off = elem_offset(t, idx);
    if (t->dtype == UM_INT64) lua_pushinteger(L, (lua_Integer)um_i64(t)[off]);
    else lua_pushnumber(L, (lua_Number)um_f32(t)[off]);
}

/* Push element idx of any tensor; a device tensor is read through a one-element copy. */
static void push_elem(lua_State *L, um_tensor *t, const int64_t *idx, const char *fname) {
    if (um_backend_of(t)->is_host) {
        push_host_elem(L, t, idx);
        return;
    }
    um_tensor **one = um_lua_push_tensor_slot(L);
    um_tensor *v = t;
    um_tensor_retain(v);
    for (int d = 0; d < t->ndim && v; d++) {
        um_tensor *n = NULL;
        int rc = um_narrow(&n, v, d, idx[d], 1);
        um_tensor_release(v);
        v = rc == UM_OK ? n : NULL;
    }
    *one = v;
    if (!v) um_lua_raise(L, fname);
    um_tensor *h = um_lua_host_view(L, v, fname);
    int64_t zero[UM_MAXDIM] = {0};
    push_host_elem(L, h, zero);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* A Lua index (1-based, negative from the end) for dimension d (0-based) as 0-based. */
static int64_t check_index(lua_State *L, um_tensor *t, lua_Integer i, int d) {
    int64_t n = t->size[d];
    if (i >= 1 && i <= n) return i - 1;
    if (i <= -1 && i >= -n) return n + i;
    return luaL_error(L, "index %I out of range for dimension %d of size %I", i, d + 1,
                      (lua_Integer)n);
}

static int64_t key_index(lua_State *L, um_tensor *t, int k) {
    int ok;
    lua_Integer i = lua_tointegerx(L, k, &ok);
    if (!ok) luaL_error(L, "tensor index must be an integer, got %s", luaL_typename(L, k));
    if (t->ndim == 0) luaL_error(L, "cannot index a tensor with no dimensions (use :item())");
    return check_index(L, t, i, 0);
}

/* __index: t[i] is a number for a 1-D tensor and a view (select on dim 1) otherwise;
 * string keys are methods (upvalue 1). */
static int t_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
        return 1;
    }
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER) {
        lua_pushnil(L);
        return 1;
    }
    int64_t i = key_index(L, t, 2);
    if (t->ndim == 1) {
        push_elem(L, t, &i, "index");
        return 1;
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_select(slot, t, 0, i) != UM_OK) um_lua_raise(L, "index");
    return 1;
}

/* __newindex: t[i] = number fills the selected element or slice; t[i] = tensor copies. */
static int t_newindex(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "cannot set field '%s' of a tensor", luaL_tolstring(L, 2, NULL));
    int64_t i = key_index(L, t, 2);
    um_tensor *src = NULL;
    if (um_lua_is_tensor(L, 3)) src = um_lua_check_tensor(L, 3);
    else if (lua_type(L, 3) != LUA_TNUMBER)
        return luaL_error(L, "tensor element must be set to a number or a tensor, got %s",
                          luaL_typename(L, 3));
    if (!src && t->ndim == 1 && um_backend_of(t)->is_host) {
        int64_t off = i * t->stride[0];
        if (t->dtype == UM_INT64) {
            int ok;
            lua_Integer v = lua_tointegerx(L, 3, &ok);
            if (!ok) return luaL_error(L, "int64 tensor element must be an integer");
            um_i64(t)[off] = v;
        } else {
            um_f32(t)[off] = (float)lua_tonumber(L, 3);
        }
        return 0;
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_select(slot, t, 0, i) != UM_OK) um_lua_raise(L, "t[i] = v");
    int rc = src ? um_copy_(*slot, src) : um_fill_(*slot, lua_tonumber(L, 3));
    if (rc != UM_OK) um_lua_raise(L, "t[i] = v");
    return 0;
}

static int t_len(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "length of a tensor with no dimensions");
    lua_pushinteger(L, (lua_Integer)t->size[0]);
    return 1;
}

/* ---- shape and value queries ----------------------------------------------------- */

static int push_int64_list(lua_State *L, int arg, const um_tensor *t, const int64_t *v,
                           const char *fname) {
    if (!lua_isnoneornil(L, arg)) {
        int d = um_lua_check_dim(L, arg, t->ndim, fname);
        lua_pushinteger(L, (lua_Integer)v[d]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, (lua_Integer)v[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int t_size(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    return push_int64_list(L, 2, t, t->size, "size");
}

static int t_stride(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    return push_int64_list(L, 2, t, t->stride, "stride");
}

static int t_dim(lua_State *L) {
    lua_pushinteger(L, um_lua_check_tensor(L, 1)->ndim);
    return 1;
}

static int t_numel(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)um_numel(um_lua_check_tensor(L, 1)));
    return 1;
}

static int t_dtype(lua_State *L) {
    lua_pushstring(L, um_dtype_name(um_lua_check_tensor(L, 1)->dtype));
    return 1;
}

static int t_is_contiguous(lua_State *L) {
    lua_pushboolean(L, um_is_contiguous(um_lua_check_tensor(L, 1)));
    return 1;
}

static int t_device(lua_State *L) {
    lua_pushstring(L, um_backend_of(um_lua_check_tensor(L, 1))->name);
    return 1;
}

static int t_item(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (um_numel(t) != 1)
        return luaL_error(L, "item: tensor has %I elements, expected exactly 1",
                          (lua_Integer)um_numel(t));
    int64_t zero[UM_MAXDIM] = {0};
    push_elem(L, t, zero, "item");
    return 1;
}

static void build_table(lua_State *L, const um_tensor *t, int64_t *idx, int d) {
    if (d == t->ndim) {
        push_host_elem(L, t, idx);
        return;
    }
    luaL_checkstack(L, 3, "to_table: nesting too deep");
    lua_createtable(L, (int)t->size[d], 0);
    for (idx[d] = 0; idx[d] < t->size[d]; idx[d]++) {
        build_table(L, t, idx, d + 1);
        lua_rawseti(L, -2, idx[d] + 1);
    }
}

/* Nested Lua tables of numbers (a plain number for a tensor with no dimensions). */
static int t_to_table(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    um_tensor *h = um_lua_host_view(L, t, "to_table");
    int64_t idx[UM_MAXDIM] = {0};
    build_table(L, h, idx, 0);
    return 1;
}

/* t:to("cuda") / t:to("cpu"): a copy on that device (self if already there). */
static int t_to(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const um_backend *be;
    if (um_backend_named(name, &be)) return um_lua_raise(L, "to");
    if (be == um_backend_of(t)) {
        lua_settop(L, 1);
        return 1;
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_to_backend(slot, t, be) != UM_OK) um_lua_raise(L, "to");
    return 1;
}

static int t_is_tensor(lua_State *L) {
    lua_pushboolean(L, um_lua_is_tensor(L, 1));
    return 1;
}

static const luaL_Reg tensor_methods[] = {
    {"free", t_free},           {"size", t_size},     {"stride", t_stride},
    {"dim", t_dim},             {"numel", t_numel},   {"dtype", t_dtype},
    {"is_contiguous", t_is_contiguous},               {"device", t_device},
    {"item", t_item},           {"to_table", t_to_table},                    {"to", t_to},
    {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", t_free}, {"__close", t_free}, {"__newindex", t_newindex}, {"__len", t_len},
    {"__tostring", um_lua_tensor_tostring}, {NULL, NULL}};

/* Called from luaopen_umbra_core with the module table at index `module`. */
void um_lua_open_tensor(lua_State *L, int module) {
    module = lua_absindex(L, module);
    luaL_newmetatable(L, UM_TENSOR_MT);
    int meta = lua_gettop(L);
    luaL_setfuncs(L, tensor_meta, 0);

    lua_newtable(L);
    int methods = lua_gettop(L);
    luaL_setfuncs(L, tensor_methods, 0);
    um_lua_tensor_shape_methods(L, methods);
    um_lua_tensor_math_methods(L, methods);
    um_lua_tensor_reduce_methods(L, methods);

    lua_pushvalue(L, methods);
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, meta, "__index");
    /* Exposed so that Lua code can add methods: umbra.Tensor.foo = function(t) ... end */
    lua_pushvalue(L, methods);
    lua_setfield(L, module, "Tensor");
    lua_settop(L, module);

    lua_pushcfunction(L, t_is_tensor);
    lua_setfield(L, module, "is_tensor");
    um_lua_tensor_constructors(L, module);
}
