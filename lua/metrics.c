/* Lua binding of the evaluation metrics (core/ood/metrics.h): functions metrics_* on umbra.core
 * that the pure-Lua module umbra.eval wraps. Tensors must be on the CPU (umbra.eval moves
 * them); class labels come from Lua as 1..K. */
#include "binding.h"
#include "ood/metrics.h"

static int l_max_conf(lua_State *L) {
    um_tensor *probs = um_lua_check_tensor(L, 1);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_max_conf(out, probs)) return um_lua_raise(L, "eval.max_conf");
    return 1;
}

static int l_mmc(lua_State *L) {
    um_tensor *conf = um_lua_check_tensor(L, 1);
    double m;
    if (um_mmc(conf, &m)) return um_lua_raise(L, "eval.mmc");
    lua_pushnumber(L, m);
    return 1;
}

static int l_auroc(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    double auc;
    if (um_auroc(in, out, &auc)) return um_lua_raise(L, "eval.auroc");
    lua_pushnumber(L, auc);
    return 1;
}

static int l_percentile(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1);
    double q = luaL_checknumber(L, 2), v;
    if (um_percentile(x, q, &v)) return um_lua_raise(L, "eval.percentile");
    lua_pushnumber(L, v);
    return 1;
}

/* (conf_in, conf_out, tpr) -> fpr, tau */
static int l_fpr_at_tpr(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    double tpr = luaL_checknumber(L, 3), fpr, tau;
    if (um_fpr_at_tpr(in, out, tpr, &fpr, &tau)) return um_lua_raise(L, "eval.fpr_at_tpr");
    lua_pushnumber(L, fpr);
    lua_pushnumber(L, tau);
    return 2;
}

/* (conf_in, conf_out) -> fpr, tpr, thresholds */
static int l_roc_curve(lua_State *L) {
    um_tensor *in = um_lua_check_tensor(L, 1), *out = um_lua_check_tensor(L, 2);
    um_tensor **f = um_lua_push_tensor_slot(L), **t = um_lua_push_tensor_slot(L), **th = um_lua_push_tensor_slot(L);
    if (um_roc_curve(in, out, f, t, th)) return um_lua_raise(L, "eval.roc");
    return 3;
}

/* (probs, labels 1..K) -> fraction resisted, float32 mask of the points not resisted */
static int l_resistance(lua_State *L) {
    um_tensor *probs = um_lua_check_tensor(L, 1), *labels = um_lua_check_tensor(L, 2);
    double frac;
    lua_pushnil(L);  /* the fraction's place */
    um_tensor **mask = um_lua_push_tensor_slot(L);
    if (um_resistance(probs, labels, 1, &frac, mask)) return um_lua_raise(L, "eval.resistance");
    lua_pushnumber(L, frac);
    lua_replace(L, -3);
    return 2;
}

static int l_select_rows(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1), *mask = um_lua_check_tensor(L, 2);
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_select_rows(out, x, mask)) return um_lua_raise(L, "eval.select_rows");
    return 1;
}

static const luaL_Reg metrics_funcs[] = {
    {"metrics_max_conf", l_max_conf},
    {"metrics_mmc", l_mmc},
    {"metrics_auroc", l_auroc},
    {"metrics_percentile", l_percentile},
    {"metrics_fpr_at_tpr", l_fpr_at_tpr},
    {"metrics_roc_curve", l_roc_curve},
    {"metrics_resistance", l_resistance},
    {"metrics_select_rows", l_select_rows},
    {NULL, NULL}};

void um_lua_open_metrics(lua_State *L, int module) {
    lua_pushvalue(L, module);
    luaL_setfuncs(L, metrics_funcs, 0);
    lua_pop(L, 1);
}
