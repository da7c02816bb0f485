/* Lua binding of PGD (core/ood/pgd.h): umbra.core.pgd(module, x, opts) -> x_adv, objective.
 * opts = {objective=, eps=, step=, steps=, norm= 0|2, random_start=, labels=, generator=},
 * every field given: the defaults live in one place, lua/umbra/attack.lua. objective is a
 * name or a Lua function logits -> values (n), gradient (n, k) of their sum. */
#include <string.h>
#include "binding.h"
#include "ood/pgd.h"

static double field_number(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    if (!lua_isnumber(L, -1)) luaL_error(L, "pgd: opts.%s must be a number, got %s", k, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A Lua objective: called with the logits, it returns the per-example values and the
 * gradient of their sum, which are copied into the attack's own tensors. Runs on the
 * thread of the pgd call, whose frame is the current one while the core runs (fn is an
 * index in it); a Lua error becomes the attack's error. */
typedef struct { lua_State *L; int fn; } lua_objective;

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
    lua_objective *o = ctx;
    lua_State *L = o->L;
    lua_pushcfunction(L, call_objective);
    lua_pushvalue(L, o->fn);   /* the pgd call's frame is still the current one */
    lua_pushlightuserdata(L, (void *)logits);
    lua_pushlightuserdata(L, values);
    lua_pushlightuserdata(L, grad);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
        um_fail(UM_EINVAL, "pgd objective: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error object is not a string");
        lua_pop(L, 1);
        return UM_EINVAL;
    }
    return UM_OK;
}

static int l_pgd(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    um_pgd_config cfg = {0};
    lua_objective objective = {L, 0};
    lua_getfield(L, 3, "objective");
    if (lua_isfunction(L, -1)) {
        objective.fn = lua_gettop(L);
        cfg.custom = run_lua_objective;
        cfg.custom_ctx = &objective;
    } else {
        static const char *const names[] = {"max_conf", "uniform_conf", "ce", NULL};
        static const um_loss_kind kinds[] = {UM_LOSS_MAX_CONF, UM_LOSS_UNIFORM_CONF, UM_LOSS_CROSS_ENTROPY};
        cfg.objective = kinds[luaL_checkoption(L, -1, NULL, names)];
    }
    cfg.eps = field_number(L, 3, "eps");
    cfg.steps = (int)field_number(L, 3, "steps");
    cfg.step = field_number(L, 3, "step");
    cfg.norm = (int)field_number(L, 3, "norm");
    lua_getfield(L, 3, "random_start");
    cfg.random_start = lua_toboolean(L, -1);
    lua_pop(L, 1);
    um_generator *g = NULL;
    lua_getfield(L, 3, "generator");
    if (!lua_isnil(L, -1)) g = um_lua_check_generator(L, lua_gettop(L));
    lua_getfield(L, 3, "labels");
    um_tensor *labels = lua_isnil(L, -1) ? NULL : um_lua_core_labels(L, lua_gettop(L), 0, x, "pgd");
    um_tensor **adv = um_lua_push_tensor_slot(L);
    um_tensor **obj = um_lua_push_tensor_slot(L);
    lua_State *prev = um_lua_enter(L);
    int rc = um_pgd(m, x, labels, &cfg, g, adv, obj);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "pgd");
    return 2;
}

void um_lua_open_attack(lua_State *L, int module) {
    lua_pushcfunction(L, l_pgd);
    lua_setfield(L, module, "pgd");
}
