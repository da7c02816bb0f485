/* Lua binding of the detection metrics (core/ood/detection.h): functions detect_* on
 * umbra.core that umbra.eval wraps. Score tensors must be float32 vectors on the CPU. */
#include "binding.h"
#include "ood/detection.h"

typedef int (*pair_metric)(const um_tensor *, const um_tensor *, double *);

static int push_pair(lua_State *L, pair_metric fn, const char *name) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    double v;
    if (fn(in, out, &v)) return um_lua_raise(L, name);
    lua_pushnumber(L, v);
    return 1;
}

static int l_auroc_conservative(lua_State *L) { return push_pair(L, um_auroc_conservative, "eval.auroc_conservative"); }
static int l_aupr_in(lua_State *L) { return push_pair(L, um_aupr_in, "eval.aupr_in"); }
static int l_aupr_out(lua_State *L) { return push_pair(L, um_aupr_out, "eval.aupr_out"); }
static int l_detection_error(lua_State *L) { return push_pair(L, um_detection_error, "eval.detection_error"); }

static int l_fpr_ood_positive(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    double tpr = luaL_checknumber(L, 3), v;
    if (um_fpr_at_tpr_ood_positive(in, out, tpr, &v)) return um_lua_raise(L, "eval.fpr_at_tpr");
    lua_pushnumber(L, v);
    return 1;
}

/* (conf, n_boot, generator) -> lo, hi */
static int l_bootstrap_mmc(lua_State *L) {
    um_tensor *c = um_lua_check_tensor(L, 1);
    int n = (int)luaL_checkinteger(L, 2);
    um_generator *g = um_lua_check_generator(L, 3);
    double lo, hi;
    if (um_bootstrap_mmc(c, n, g, &lo, &hi)) return um_lua_raise(L, "eval.bootstrap_mmc");
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    return 2;
}

/* (conf_in, conf_out, n_boot, generator) -> lo, hi */
static int l_bootstrap_auroc(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    int n = (int)luaL_checkinteger(L, 3);
    um_generator *g = um_lua_check_generator(L, 4);
    double lo, hi;
    if (um_bootstrap_auroc(in, out, n, g, &lo, &hi)) return um_lua_raise(L, "eval.bootstrap_auroc");
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    return 2;
}

static um_tensor *opt_tensor(lua_State *L, int i) { return lua_isnoneornil(L, i) ? NULL : um_lua_check_tensor(L, i); }

/* (conf_in, clean|nil, attack, bound|nil, tol) -> {auc=, aauc=, gauc=, n=} (absent: NaN) */
static int l_sandwich(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *clean = opt_tensor(L, 2), *attack = um_lua_check_tensor(L, 3);
    um_tensor *bound = opt_tensor(L, 4);
    double tol = luaL_optnumber(L, 5, 0);
    um_sandwich s;
    if (um_sandwich_aucs(in, clean, attack, bound, tol, &s)) return um_lua_raise(L, "eval.sandwich");
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, s.auc);
    lua_setfield(L, -2, "auc");
    lua_pushnumber(L, s.aauc);
    lua_setfield(L, -2, "aauc");
    lua_pushnumber(L, s.gauc);
    lua_setfield(L, -2, "gauc");
    lua_pushinteger(L, s.n);
    lua_setfield(L, -2, "n");
    return 1;
}

static const luaL_Reg detection_funcs[] = {
    {"detect_auroc_conservative", l_auroc_conservative},
    {"detect_aupr_in", l_aupr_in},
    {"detect_aupr_out", l_aupr_out},
    {"detect_detection_error", l_detection_error},
    {"detect_fpr_ood_positive", l_fpr_ood_positive},
    {"detect_bootstrap_mmc", l_bootstrap_mmc},
    {"detect_bootstrap_auroc", l_bootstrap_auroc},
    {"detect_sandwich", l_sandwich},
    {NULL, NULL}};

void um_lua_open_detection(lua_State *L, int module) {
    lua_pushvalue(L, module);
    luaL_setfuncs(L, detection_funcs, 0);
    lua_pop(L, 1);
}
