/* Lua binding of PGD (core/ood/pgd.h): umbra.core.pgd(module, x, opts) -> x_adv, objective.
 * opts = {objective=, eps=, step=, steps=, norm= 0|2, random_start=, labels=, generator=},
 * every field given: the defaults live in one place, lua/umbra/attack.lua. objective is a
 * name or a Lua function logits -> values (n), gradient (n, k) of their sum. */
#include "objective.h"

static double field_number(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    if (!lua_isnumber(L, -1)) luaL_error(L, "pgd: opts.%s must be a number, got %s", k, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_pgd(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    um_pgd_config cfg = {0};
    um_lua_objective objective;
    lua_getfield(L, 3, "objective");
    cfg.custom = um_lua_objective_at(L, lua_gettop(L), &objective, "pgd");
    cfg.custom_ctx = &objective;
    if (!cfg.custom) {
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
