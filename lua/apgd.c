/* Lua binding of APGD and Monotone PGD (core/ood/attack.h): umbra.core.apgd(module, x, opts)
 * and umbra.core.mpgd(module, x, opts) -> x_best, values, {escapes=, forwards=}. Every
 * field of opts is given (the defaults live in lua/umbra/attack.lua): objective (a name, or
 * a Lua function of the model's output as in attack.pgd),
 * eps, norm (0|2), steps, generator, escape_after, labels (1..K, for ce); APGD: restarts,
 * rho, momentum; MPGD: step, momentum, start ("clean" | "uniform" | "gaussian" |
 * "contrast"), sigma. */
#include "objective.h"
#include "ood/attack.h"

static double num(lua_State *L, const char *k) {
    lua_getfield(L, 3, k);
    if (!lua_isnumber(L, -1)) luaL_error(L, "attack: opts.%s must be a number, got %s", k, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* opts.objective: a name (its kind), or a function (left on the stack for the attack's
 * duration: *custom is set and o is its context). */
static um_loss_kind objective(lua_State *L, um_lua_objective *o, um_objective_fn *custom, const char *who) {
    static const char *const names[] = {"max_conf", "uniform_conf", "ce", NULL};
    static const um_loss_kind kinds[] = {UM_LOSS_MAX_CONF, UM_LOSS_UNIFORM_CONF, UM_LOSS_CROSS_ENTROPY};
    lua_getfield(L, 3, "objective");
    *custom = um_lua_objective_at(L, lua_gettop(L), o, who);
    if (*custom) return UM_LOSS_MAX_CONF;
    um_loss_kind k = kinds[luaL_checkoption(L, -1, NULL, names)];
    lua_pop(L, 1);
    return k;
}

/* generator (may be absent) and labels, left on the stack */
static void extras(lua_State *L, const um_tensor *x, um_generator **g, um_tensor **labels, const char *fn) {
    lua_getfield(L, 3, "generator");
    *g = lua_isnil(L, -1) ? NULL : um_lua_check_generator(L, lua_gettop(L));
    lua_getfield(L, 3, "labels");
    *labels = lua_isnil(L, -1) ? NULL : um_lua_core_labels(L, lua_gettop(L), 0, x, fn);
}

static int push_stats(lua_State *L, const um_attack_stats *st) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, st->escapes);
    lua_setfield(L, -2, "escapes");
    lua_pushinteger(L, st->forwards);
    lua_setfield(L, -2, "forwards");
    return 3;
}

static int l_apgd(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    um_lua_objective o;
    um_objective_fn custom;
    um_loss_kind kind = objective(L, &o, &custom, "apgd");
    um_apgd_config c = {kind, num(L, "eps"), (int)num(L, "norm"), (int)num(L, "steps"), (int)num(L, "restarts"),
                        num(L, "rho"), num(L, "momentum"), (int)num(L, "escape_after"), custom, &o};
    um_generator *g;
    um_tensor *labels;
    extras(L, x, &g, &labels, "apgd");
    um_tensor **xb = um_lua_push_tensor_slot(L), **v = um_lua_push_tensor_slot(L);
    um_attack_stats st;
    lua_State *prev = um_lua_enter(L);
    int rc = um_apgd(m, x, labels, &c, g, xb, v, &st);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "attack.apgd");
    return push_stats(L, &st);
}

static int l_mpgd(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    static const char *const starts[] = {"clean", "uniform", "gaussian", "contrast", NULL};
    lua_getfield(L, 3, "start");
    um_start_kind start = (um_start_kind)luaL_checkoption(L, -1, NULL, starts);
    lua_pop(L, 1);
    um_lua_objective o;
    um_objective_fn custom;
    um_loss_kind kind = objective(L, &o, &custom, "mpgd");
    um_mpgd_config c = {kind, num(L, "eps"), (int)num(L, "norm"), (int)num(L, "steps"), num(L, "step"),
                        num(L, "momentum"), start, num(L, "sigma"), (int)num(L, "escape_after"), custom, &o};
    um_generator *g;
    um_tensor *labels;
    extras(L, x, &g, &labels, "mpgd");
    um_tensor **xb = um_lua_push_tensor_slot(L), **v = um_lua_push_tensor_slot(L);
    um_attack_stats st;
    lua_State *prev = um_lua_enter(L);
    int rc = um_mpgd(m, x, labels, &c, g, xb, v, &st);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "attack.mpgd");
    return push_stats(L, &st);
}

void um_lua_open_apgd(lua_State *L, int module) {
    lua_pushcfunction(L, l_apgd);
    lua_setfield(L, module, "apgd");
    lua_pushcfunction(L, l_mpgd);
    lua_setfield(L, module, "mpgd");
}
