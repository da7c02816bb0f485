/* Lua binding of the Mahalanobis fit (core/ood/gaussian.h) for umbra.scores:
 * core.gaussian_fit(features (n, D), labels (n) 1..K, K) -> means (K, D), precision (D, D), ridge.
 * Host tensors only (umbra.scores moves them). */
#include "binding.h"
#include "ood/gaussian.h"

static int l_gaussian_fit(lua_State *L) {
    um_tensor *f = um_lua_check_tensor(L, 1), *y = um_lua_check_tensor(L, 2);
    lua_Integer k = luaL_checkinteger(L, 3);
    um_tensor **means = um_lua_push_tensor_slot(L);
    um_tensor **precision = um_lua_push_tensor_slot(L);
    double ridge = 0;
    if (um_gaussian_fit(f, y, (int64_t)k, 1, means, precision, &ridge)) return um_lua_raise(L, "scores.mahalanobis_fit");
    lua_pushnumber(L, ridge);
    return 3;
}

static const luaL_Reg scores_funcs[] = {{"gaussian_fit", l_gaussian_fit}, {NULL, NULL}};

void um_lua_open_scores(lua_State *L, int module) {
    lua_pushvalue(L, module);
    luaL_setfuncs(L, scores_funcs, 0);
    lua_pop(L, 1);
}
