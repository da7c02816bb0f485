/* A Lua function as an attack's objective (objective.h): called with the model's output on
 * the thread of the attack's binding call; its values and gradient are checked and copied
 * into the attack's own tensors, and a Lua error becomes the attack's error. */
#include "objective.h"

static int call_objective(lua_State *L) {
    const um_tensor *logits = lua_touserdata(L, 2);
    um_tensor *values = lua_touserdata(L, 3), *grad = lua_touserdata(L, 4);
    char a[64], b[64];
    lua_pushvalue(L, 1);
    um_tensor_retain((um_tensor *)logits);
    um_lua_push_tensor(L, (um_tensor *)logits);
    lua_call(L, 1, 2);
    if (!um_lua_is_tensor(L, -2))
        return luaL_error(L, "objective must return a tensor of per-example values, got %s", luaL_typename(L, -2));
    um_tensor *v = um_lua_check_tensor(L, -2);
    if (um_numel(v) != um_numel(values) || v->dtype != UM_FLOAT32)
        return luaL_error(L, "objective returned values %s %s, expected float32 with %d entries",
                          um_dtype_name(v->dtype), um_shape_str(v, a, sizeof a), (int)um_numel(values));
    um_tensor *flat = NULL;
    int rc = um_reshape(&flat, v, 1, values->size);
    if (!rc) rc = um_copy_(values, flat);
    um_tensor_release(flat);
    if (rc) return um_lua_raise(L, "objective");
    if (!grad) return 0;
    if (!um_lua_is_tensor(L, -1))
        return luaL_error(L, "objective must return the gradient of its values as a second tensor, got %s",
                          luaL_typename(L, -1));
    um_tensor *g = um_lua_check_tensor(L, -1);
    if (!um_same_shape(g, grad))
        return luaL_error(L, "objective returned a gradient %s, expected the logits' shape %s",
                          um_shape_str(g, a, sizeof a), um_shape_str(grad, b, sizeof b));
    if (um_copy_(grad, g)) return um_lua_raise(L, "objective");
    return 0;
}

static int run_lua_objective(void *ctx, const um_tensor *logits, um_tensor *values, um_tensor *grad) {
    um_lua_objective *o = ctx;
    lua_State *L = o->L;
    lua_pushcfunction(L, call_objective);
    lua_pushvalue(L, o->fn);   /* the pgd call's frame is still the current one */
    lua_pushlightuserdata(L, (void *)logits);
    lua_pushlightuserdata(L, values);
    lua_pushlightuserdata(L, grad);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
        um_fail(UM_EINVAL, "%s objective: %s", o->who, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error object is not a string");
        lua_pop(L, 1);
        return UM_EINVAL;
    }
    return UM_OK;
}

um_objective_fn um_lua_objective_at(lua_State *L, int idx, um_lua_objective *o, const char *who) {
    o->L = L;
    o->fn = idx;
    o->who = who;
    return lua_isfunction(L, idx) ? run_lua_objective : NULL;
}
