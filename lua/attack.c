/* Lua binding of PGD (core/ood/pgd.h): umbra.core.pgd(module, x, opts) -> x_adv, objective.
 * opts = {objective=, eps=, step=, steps=, norm= 0|2, random_start=, labels=, generator=};
 * labels are Lua class labels 1..K and are shifted to the core's 0-based indices here. */
#include <string.h>
#include "binding.h"
#include "ood/pgd.h"

/* The module box of lua/nn.c (metatable "umbra.Module", one core reference). */
typedef struct { um_module *m; } module_box;

static um_module *check_module(lua_State *L, int i) {
    module_box *b = luaL_testudata(L, i, "umbra.Module");
    if (!b) luaL_typeerror(L, i, "module");
    if (!b->m) luaL_argerror(L, i, "module was freed");
    return b->m;
}

static um_loss_kind check_objective(lua_State *L, const char *name) {
    if (!strcmp(name, "max_conf")) return UM_LOSS_MAX_CONF;
    if (!strcmp(name, "uniform_conf")) return UM_LOSS_UNIFORM_CONF;
    if (!strcmp(name, "ce")) return UM_LOSS_CROSS_ENTROPY;
    luaL_error(L, "pgd: objective must be 'max_conf', 'uniform_conf' or 'ce', got '%s'", name);
    return UM_LOSS_MAX_CONF;
}

static double field_number(lua_State *L, int t, const char *k, double dflt) {
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? dflt : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_pgd(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    um_pgd_config cfg;
    lua_getfield(L, 3, "objective");
    cfg.objective = check_objective(L, luaL_optstring(L, -1, "max_conf"));
    lua_pop(L, 1);
    cfg.eps = field_number(L, 3, "eps", 0.3);
    cfg.steps = (int)field_number(L, 3, "steps", 40);
    cfg.step = field_number(L, 3, "step", cfg.steps > 0 ? cfg.eps / cfg.steps : 0);
    cfg.norm = (int)field_number(L, 3, "norm", 0);
    lua_getfield(L, 3, "random_start");
    cfg.random_start = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    um_generator *g = NULL;
    lua_getfield(L, 3, "generator");
    int gi = lua_gettop(L);
    if (!lua_isnil(L, gi)) g = um_lua_check_generator(L, gi);
    lua_getfield(L, 3, "labels");
    int li = lua_gettop(L);
    um_tensor *labels = lua_isnil(L, li) ? NULL : um_lua_check_tensor(L, li);
    um_tensor **adv = um_lua_push_tensor_slot(L);
    um_tensor **obj = um_lua_push_tensor_slot(L);
    um_tensor **shifted = um_lua_push_tensor_slot(L);   /* 0-based labels, freed with the box */
    if (labels) {
        if (labels->dtype != UM_INT64) return luaL_error(L, "pgd: labels must be an int64 tensor of classes 1..K");
        if (!um_backend_of(labels)->is_host) return luaL_error(L, "pgd: labels must be on the CPU");
        if (um_to_backend(shifted, labels, NULL)) return um_lua_raise(L, "pgd");
        int64_t *p = um_i64(*shifted), n = um_numel(*shifted);
        for (int64_t i = 0; i < n; i++) p[i] -= 1;
    }
    um_tensor **dev = um_lua_push_tensor_slot(L);   /* the labels on x's device, if it is one */
    um_tensor *lab = labels ? *shifted : NULL;
    if (lab && um_backend_of(lab) != um_backend_of(x)) {
        if (um_to_backend(dev, lab, um_backend_of(x))) return um_lua_raise(L, "pgd");
        lab = *dev;
    }
    if (um_pgd(m, x, lab, &cfg, g, adv, obj)) return um_lua_raise(L, "pgd");
    lua_pop(L, 2);
    return 2;
}

void um_lua_open_attack(lua_State *L, int module) {
    lua_pushcfunction(L, l_pgd);
    lua_setfield(L, module, "pgd");
}
