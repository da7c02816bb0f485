/* umbra.core.optim: the C optimisers for Lua (an Optimizer userdata holding one
 * um_optimizer) and weight decay. Parameter and gradient lists arrive as Lua arrays of
 * tensors; the C arrays that carry them live in a userdata, so an error leaks nothing.
 * The optimiser objects users see (lr property, state tables, schedules) are in
 * lua/umbra/optim.lua. */
#include <string.h>
#include "binding.h"
#include "nn/optim.h"

#define UM_OPTIM_MT "umbra.Optimizer"

typedef struct { um_optimizer *o; } optim_box;

static um_optimizer *check_optim(lua_State *L, int i) {
    optim_box *b = luaL_checkudata(L, i, UM_OPTIM_MT);
    if (!b->o) luaL_argerror(L, i, "optimizer was freed");
    return b->o;
}

static int optim_free(lua_State *L) {
    optim_box *b = luaL_checkudata(L, 1, UM_OPTIM_MT);
    um_optim_free(b->o);
    b->o = NULL;
    return 0;
}

/* Tensors of the array at index i into a GC-owned C array (pushed on the stack). */
static um_tensor **check_list(lua_State *L, int i, int *n, const char *what) {
    luaL_checktype(L, i, LUA_TTABLE);
    lua_Integer len = luaL_len(L, i);
    luaL_argcheck(L, len >= 0 && len < (1 << 24), i, "list too long");
    um_tensor **arr = lua_newuserdatauv(L, sizeof(um_tensor *) * (size_t)(len > 0 ? len : 1), 0);
    for (lua_Integer k = 1; k <= len; k++) {
        lua_rawgeti(L, i, k);
        if (!um_lua_is_tensor(L, -1))
            luaL_error(L, "%s[%d] is not a tensor (got %s)", what, (int)k, luaL_typename(L, -1));
        arr[k - 1] = um_lua_check_tensor(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    *n = (int)len;
    return arr;
}

static int pairs_of(lua_State *L, um_tensor ***params, um_tensor ***grads) {
    int np, ng;
    *params = check_list(L, 1, &np, "params");
    *grads = check_list(L, 2, &ng, "grads");
    if (np != ng) luaL_error(L, "%d parameters but %d gradients", np, ng);
    return np;
}

static um_optimizer **push_optim_slot(lua_State *L) {
    optim_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->o = NULL;
    luaL_setmetatable(L, UM_OPTIM_MT);
    return &b->o;
}

/* sgd(params, grads, lr, momentum, nesterov) */
static int l_sgd(lua_State *L) {
    double lr = luaL_checknumber(L, 3), momentum = luaL_checknumber(L, 4);
    int nesterov = lua_toboolean(L, 5);
    um_tensor **p, **g;
    int n = pairs_of(L, &p, &g);
    um_optimizer **slot = push_optim_slot(L);
    if (um_sgd_new(slot, n, p, g, lr, momentum, nesterov)) return um_lua_raise(L, "SGD");
    return 1;
}

/* adam(params, grads, lr, beta1, beta2, eps) */
static int l_adam(lua_State *L) {
    double lr = luaL_checknumber(L, 3), b1 = luaL_checknumber(L, 4), b2 = luaL_checknumber(L, 5);
    double eps = luaL_checknumber(L, 6);
    um_tensor **p, **g;
    int n = pairs_of(L, &p, &g);
    um_optimizer **slot = push_optim_slot(L);
    if (um_adam_new(slot, n, p, g, lr, b1, b2, eps)) return um_lua_raise(L, "Adam");
    return 1;
}

/* weight_decay(params, grads, lambda) -> penalty (lambda * sum w^2), grads += 2 lambda w */
static int l_weight_decay(lua_State *L) {
    double lambda = luaL_checknumber(L, 3), pen = 0;
    um_tensor **p, **g;
    int n = pairs_of(L, &p, &g);
    if (um_weight_decay(p, g, n, lambda, &pen)) return um_lua_raise(L, "weight_decay");
    lua_pushnumber(L, pen);
    return 1;
}

/* step(o [, lr]) */
static int l_step(lua_State *L) {
    um_optimizer *o = check_optim(L, 1);
    if (!lua_isnoneornil(L, 2)) o->lr = luaL_checknumber(L, 2);
    if (um_optim_step(o)) return um_lua_raise(L, "step");
    return 0;
}

/* get(o) -> {kind=, lr=, step=, momentum=, nesterov=, beta1=, beta2=, eps=, n=, slots={names}} */
static int l_get(lua_State *L) {
    um_optimizer *o = check_optim(L, 1);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, o->kind == UM_OPTIM_SGD ? "sgd" : "adam");
    lua_setfield(L, -2, "kind");
    lua_pushnumber(L, o->lr);
    lua_setfield(L, -2, "lr");
    lua_pushinteger(L, (lua_Integer)o->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, o->n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, o->bad_param + 1);   /* after a failed step: the gradient at fault, 0 if none */
    lua_setfield(L, -2, "bad_param");
    if (o->kind == UM_OPTIM_SGD) {
        lua_pushnumber(L, o->momentum);
        lua_setfield(L, -2, "momentum");
        lua_pushboolean(L, o->nesterov);
        lua_setfield(L, -2, "nesterov");
    } else {
        lua_pushnumber(L, o->beta1);
        lua_setfield(L, -2, "beta1");
        lua_pushnumber(L, o->beta2);
        lua_setfield(L, -2, "beta2");
        lua_pushnumber(L, o->eps);
        lua_setfield(L, -2, "eps");
    }
    lua_createtable(L, 2, 0);
    for (int s = 0; s < um_optim_num_slots(o); s++) {
        lua_pushstring(L, um_optim_slot_name(o, s));
        lua_rawseti(L, -2, s + 1);
    }
    lua_setfield(L, -2, "slots");
    return 1;
}

/* set(o, {lr=, step=}) */
static int l_set(lua_State *L) {
    um_optimizer *o = check_optim(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "lr") != LUA_TNIL) o->lr = luaL_checknumber(L, -1);
    if (lua_getfield(L, 2, "step") != LUA_TNIL) {
        lua_Integer st = luaL_checkinteger(L, -1);
        luaL_argcheck(L, st >= 0, 2, "step must not be negative");
        o->step = st;
    }
    return 0;
}

static int check_slot(lua_State *L, um_optimizer *o, int si, int ii, int *index) {
    const char *name = luaL_checkstring(L, si);
    lua_Integer i = luaL_checkinteger(L, ii);
    luaL_argcheck(L, i >= 1 && i <= o->n, ii, "parameter index out of range");
    *index = (int)(i - 1);
    for (int s = 0; s < um_optim_num_slots(o); s++)
        if (strcmp(name, um_optim_slot_name(o, s)) == 0) return s;
    return luaL_argerror(L, si, lua_pushfstring(L, "no slot '%s' in this optimizer", name));
}

/* slot(o, name, i) -> a copy of slot `name` of parameter i */
static int l_slot(lua_State *L) {
    um_optimizer *o = check_optim(L, 1);
    int i, s = check_slot(L, o, 2, 3, &i);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_clone(out, o->slots[s][i])) return um_lua_raise(L, "slot");
    return 1;
}

/* set_slot(o, name, i, tensor): copy values in (same shape) */
static int l_set_slot(lua_State *L) {
    um_optimizer *o = check_optim(L, 1);
    int i, s = check_slot(L, o, 2, 3, &i);
    um_tensor *t = um_lua_check_tensor(L, 4);
    if (!um_same_shape(t, o->slots[s][i])) {
        char a[64], b[64];
        return luaL_error(L, "set_slot: %s of parameter %d is %s, got %s", um_optim_slot_name(o, s), i + 1,
                          um_shape_str(o->slots[s][i], a, sizeof a), um_shape_str(t, b, sizeof b));
    }
    if (um_copy_(o->slots[s][i], t)) return um_lua_raise(L, "set_slot");
    return 0;
}

static const luaL_Reg optim_methods[] = {
    {"step", l_step}, {"get", l_get}, {"set", l_set}, {"slot", l_slot}, {"set_slot", l_set_slot},
    {"free", optim_free}, {NULL, NULL}};

static const luaL_Reg optim_functions[] = {
    {"sgd", l_sgd}, {"adam", l_adam}, {"weight_decay", l_weight_decay}, {NULL, NULL}};

void um_lua_open_optim(lua_State *L, int module) {
    luaL_newmetatable(L, UM_OPTIM_MT);
    luaL_newlib(L, optim_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, optim_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, optim_free);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, optim_functions);
    lua_setfield(L, module, "optim_core");
}
