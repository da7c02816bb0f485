/* Tensor methods that reduce or combine whole dimensions: sum/mean/max/min (a Lua number
 * without a dimension, a tensor with one), argmax/argmin (1-based indices, as everything
 * Lua sees), matmul/addmm and softmax/log_softmax along a dimension (default: the last). */
#include "tensor_lua.h"

/* Read the single element of a freshly made result box at the top of the stack, replace
 * the box by the number and free the tensor now rather than at the next collection. */
static void box_to_number(lua_State *L, const char *fname, int64_t delta) {
    um_lua_tensor_box *box = lua_touserdata(L, -1);
    um_tensor *h = um_lua_host_view(L, box->t, fname);
    um_lua_tensor_box *hbox = lua_touserdata(L, -1);
    if (h->dtype == UM_INT64) lua_pushinteger(L, (lua_Integer)(um_i64(h)[0] + delta));
    else lua_pushnumber(L, (lua_Number)um_f32(h)[0]);
    um_tensor_release(box->t);
    box->t = NULL;
    um_tensor_release(hbox->t);
    hbox->t = NULL;
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Optional (dim, keepdim) at args 2 and 3: dim is -1 (everything) when absent. */
static int opt_dim(lua_State *L, um_tensor *t, const char *fname, int *keepdim) {
    *keepdim = lua_toboolean(L, 3);
    return lua_isnoneornil(L, 2) ? -1 : um_lua_check_dim(L, 2, t->ndim, fname);
}

static int m_reduce(lua_State *L) {
    const char *fname = lua_tostring(L, lua_upvalueindex(2));
    um_redop op = (um_redop)lua_tointeger(L, lua_upvalueindex(1));
    um_tensor *t = um_lua_check_tensor(L, 1);
    int keepdim, d = opt_dim(L, t, fname, &keepdim);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_reduce(out, op, t, d, keepdim) != UM_OK) um_lua_raise(L, fname);
    if (d < 0) box_to_number(L, fname, 0);
    return 1;
}

/* argmax() is the 1-based flat (row-major) position as a Lua integer; argmax(dim) is an
 * int64 tensor of 1-based positions along dim. */
static int m_arg(lua_State *L) {
    int want_max = (int)lua_tointeger(L, lua_upvalueindex(1));
    const char *fname = lua_tostring(L, lua_upvalueindex(2));
    um_tensor *t = um_lua_check_tensor(L, 1);
    int keepdim, d = opt_dim(L, t, fname, &keepdim);
    um_tensor **out = um_lua_push_tensor_slot(L);
    int rc = want_max ? um_argmax(out, t, d, keepdim) : um_argmin(out, t, d, keepdim);
    if (rc != UM_OK) um_lua_raise(L, fname);
    if (d < 0) box_to_number(L, fname, 1);
    else um_lua_shift_indices(L, *out, 1, fname);
    return 1;
}

static int m_matmul(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1), *b = um_lua_check_tensor(L, 2);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_matmul(out, a, b) != UM_OK) um_lua_raise(L, "matmul");
    return 1;
}

/* c:addmm(a, b [, beta=1, alpha=1]) = beta c + alpha (a b), a new tensor. */
static int m_addmm(lua_State *L) {
    um_tensor *c = um_lua_check_tensor(L, 1);
    um_tensor *a = um_lua_check_tensor(L, 2), *b = um_lua_check_tensor(L, 3);
    double beta = luaL_optnumber(L, 4, 1.0), alpha = luaL_optnumber(L, 5, 1.0);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_addmm(out, c, a, b, beta, alpha) != UM_OK) um_lua_raise(L, "addmm");
    return 1;
}

static int softmax_like(lua_State *L, int log) {
    const char *fname = log ? "log_softmax" : "softmax";
    um_tensor *t = um_lua_check_tensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "%s: tensor with no dimensions", fname);
    int d = lua_isnoneornil(L, 2) ? t->ndim - 1 : um_lua_check_dim(L, 2, t->ndim, fname);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if ((log ? um_log_softmax(out, t, d) : um_softmax(out, t, d)) != UM_OK) um_lua_raise(L, fname);
    return 1;
}

static int m_softmax(lua_State *L) { return softmax_like(L, 0); }
static int m_log_softmax(lua_State *L) { return softmax_like(L, 1); }

static const luaL_Reg reduce_methods[] = {
    {"matmul", m_matmul},   {"addmm", m_addmm}, {"softmax", m_softmax},
    {"log_softmax", m_log_softmax}, {NULL, NULL}};

static void set_closure(lua_State *L, int methods, const char *name, lua_CFunction fn, int op) {
    lua_pushinteger(L, op);
    lua_pushstring(L, name);
    lua_pushcclosure(L, fn, 2);
    lua_setfield(L, methods, name);
}

void um_lua_tensor_reduce_methods(lua_State *L, int methods) {
    set_closure(L, methods, "sum", m_reduce, UM_SUM);
    set_closure(L, methods, "mean", m_reduce, UM_MEAN);
    set_closure(L, methods, "max", m_reduce, UM_MAX);
    set_closure(L, methods, "min", m_reduce, UM_MIN);
    set_closure(L, methods, "argmax", m_arg, 1);
    set_closure(L, methods, "argmin", m_arg, 0);
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, reduce_methods, 0);
    lua_pop(L, 1);
}
