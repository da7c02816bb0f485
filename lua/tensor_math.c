/* Elementwise tensor arithmetic from Lua: methods add/sub/mul/div/maximum/minimum/pow,
 * comparisons giving 1/0 masks, unary maps, clamp, axpy_ (each with an in-place `_`
 * variant returning self), and the operators + - * / ^ and unary minus, which accept a
 * number on either side. `*` is elementwise, as in Torch; matrix product is matmul. */
#include <math.h>
#include <stdio.h>
#include "tensor_lua.h"

/* Binary ops are closures over (op, name) so one C function serves all thirteen. */
#define UPV_OP(L) ((int)lua_tointeger(L, lua_upvalueindex(1)))
#define UPV_NAME(L) lua_tostring(L, lua_upvalueindex(2))

static void check_operand(lua_State *L, int i, const char *fname) {
    if (lua_type(L, i) != LUA_TNUMBER && !um_lua_is_tensor(L, i))
        luaL_error(L, "%s: expected a tensor or a number, got %s", fname, luaL_typename(L, i));
}

/* t:add(u) / t:add(2): a new tensor (u broadcast against t, NumPy rules). */
static int m_binary(lua_State *L) {
    const char *fname = UPV_NAME(L);
    um_tensor *a = um_lua_check_tensor(L, 1);
    check_operand(L, 2, fname);
    um_tensor **out;
    int rc;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 2);
        out = um_lua_push_tensor_slot(L);
        rc = um_binary_scalar(out, UPV_OP(L), a, s, 0);
    } else {
        um_tensor *b = um_lua_check_tensor(L, 2);
        out = um_lua_push_tensor_slot(L);
        rc = um_binary(out, UPV_OP(L), a, b);
    }
    if (rc != UM_OK) um_lua_raise(L, fname);
    return 1;
}

/* t:add_(u): in place, u broadcast to t's shape; returns t. */
static int m_binary_(lua_State *L) {
    const char *fname = UPV_NAME(L);
    um_tensor *a = um_lua_check_tensor(L, 1);
    check_operand(L, 2, fname);
    int rc = lua_type(L, 2) == LUA_TNUMBER ? um_binary_scalar_(UPV_OP(L), a, lua_tonumber(L, 2))
                                           : um_binary_(UPV_OP(L), a, um_lua_check_tensor(L, 2));
    if (rc != UM_OK) um_lua_raise(L, fname);
    lua_settop(L, 1);
    return 1;
}

/* Operators: either operand may be the number (2 - t computes 2 - t, not t - 2). */
static int m_operator(lua_State *L) {
    const char *fname = UPV_NAME(L);
    check_operand(L, 1, fname);
    check_operand(L, 2, fname);
    int op = UPV_OP(L), rc;
    um_tensor **out;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        um_tensor *b = um_lua_check_tensor(L, 2);
        out = um_lua_push_tensor_slot(L);
        rc = um_binary_scalar(out, op, b, lua_tonumber(L, 1), 1);
    } else if (lua_type(L, 2) == LUA_TNUMBER) {
        um_tensor *a = um_lua_check_tensor(L, 1);
        out = um_lua_push_tensor_slot(L);
        rc = um_binary_scalar(out, op, a, lua_tonumber(L, 2), 0);
    } else {
        um_tensor *a = um_lua_check_tensor(L, 1), *b = um_lua_check_tensor(L, 2);
        out = um_lua_push_tensor_slot(L);
        rc = um_binary(out, op, a, b);
    }
    if (rc != UM_OK) um_lua_raise(L, fname);
    return 1;
}

static int m_unary(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_unary(out, UPV_OP(L), a) != UM_OK) um_lua_raise(L, UPV_NAME(L));
    return 1;
}

static int m_unary_(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1);
    if (um_unary_(UPV_OP(L), a) != UM_OK) um_lua_raise(L, UPV_NAME(L));
    lua_settop(L, 1);
    return 1;
}

/* clamp(lo, hi): nil on either side leaves that side unbounded. */
static void clamp_args(lua_State *L, double *lo, double *hi) {
    *lo = luaL_optnumber(L, 2, -HUGE_VAL);
    *hi = luaL_optnumber(L, 3, HUGE_VAL);
    if (*lo > *hi) luaL_error(L, "clamp: lower bound %f is above upper bound %f", *lo, *hi);
}

static int m_clamp(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1);
    double lo, hi;
    clamp_args(L, &lo, &hi);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_clamp(out, a, lo, hi) != UM_OK) um_lua_raise(L, "clamp");
    return 1;
}

static int m_clamp_(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1);
    double lo, hi;
    clamp_args(L, &lo, &hi);
    if (um_clamp_(a, lo, hi) != UM_OK) um_lua_raise(L, "clamp_");
    lua_settop(L, 1);
    return 1;
}

/* t:axpy_(alpha, u): t += alpha * u. */
static int m_axpy_(lua_State *L) {
    um_tensor *a = um_lua_check_tensor(L, 1);
    double alpha = luaL_checknumber(L, 2);
    um_tensor *b = um_lua_check_tensor(L, 3);
    if (um_axpy_(a, alpha, b) != UM_OK) um_lua_raise(L, "axpy_");
    lua_settop(L, 1);
    return 1;
}

static const struct { const char *name; um_binop op; } binops[] = {
    {"add", UM_ADD}, {"sub", UM_SUB}, {"mul", UM_MUL}, {"div", UM_DIV},
    {"maximum", UM_MAXIMUM}, {"minimum", UM_MINIMUM}, {"pow", UM_POW},
    {"eq", UM_EQ}, {"ne", UM_NE}, {"lt", UM_LT}, {"le", UM_LE}, {"gt", UM_GT}, {"ge", UM_GE}};

static const struct { const char *name; um_unop op; } unops[] = {
    {"neg", UM_NEG}, {"abs", UM_ABS}, {"sign", UM_SIGN}, {"exp", UM_EXP},
    {"log", UM_LOG}, {"sqrt", UM_SQRT}, {"relu", UM_RELU}, {"square", UM_SQUARE}};

static const struct { const char *meta, *name; um_binop op; } operators[] = {
    {"__add", "add", UM_ADD}, {"__sub", "sub", UM_SUB}, {"__mul", "mul", UM_MUL},
    {"__div", "div", UM_DIV}, {"__pow", "pow", UM_POW}};

/* Set table[key] = closure(fn, op, label). */
static void set_closure(lua_State *L, int table, const char *key, lua_CFunction fn, int op,
                        const char *label) {
    lua_pushinteger(L, op);
    lua_pushstring(L, label);
    lua_pushcclosure(L, fn, 2);
    lua_setfield(L, table, key);
}

static void set_pair(lua_State *L, int methods, const char *name, int op, lua_CFunction plain,
                     lua_CFunction inplace) {
    char name_[64];
    snprintf(name_, sizeof name_, "%s_", name);
    set_closure(L, methods, name, plain, op, name);
    set_closure(L, methods, name_, inplace, op, name_);
}

static const luaL_Reg math_methods[] = {
    {"clamp", m_clamp}, {"clamp_", m_clamp_}, {"axpy_", m_axpy_}, {NULL, NULL}};

void um_lua_tensor_math_methods(lua_State *L, int methods) {
    for (size_t k = 0; k < sizeof binops / sizeof binops[0]; k++)
        set_pair(L, methods, binops[k].name, binops[k].op, m_binary, m_binary_);
    for (size_t k = 0; k < sizeof unops / sizeof unops[0]; k++)
        set_pair(L, methods, unops[k].name, unops[k].op, m_unary, m_unary_);
    lua_pushvalue(L, methods);
    luaL_setfuncs(L, math_methods, 0);
    lua_pop(L, 1);

    luaL_getmetatable(L, UM_TENSOR_MT);
    int meta = lua_gettop(L);
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++)
        set_closure(L, meta, operators[k].meta, m_operator, operators[k].op, operators[k].name);
    set_closure(L, meta, "__unm", m_unary, UM_NEG, "neg");
    lua_pop(L, 1);
}
