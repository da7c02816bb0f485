/* Lua binding of the certified bound (core/ood/ibp.h):
 * umbra.core.certify_confidence(module, z, eps) -> bound (n), logit differences (n, K, K). */
#include "binding.h"
#include "ood/ibp.h"

static int l_certify_confidence(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2);
    double eps = luaL_checknumber(L, 3);
    um_tensor **conf = um_lua_push_tensor_slot(L), **ud = um_lua_push_tensor_slot(L);
    if (um_certify_confidence(m, z, eps, conf, ud)) return um_lua_raise(L, "certify.confidence_bound");
    return 2;
}

void um_lua_open_certify(lua_State *L, int module) {
    lua_pushcfunction(L, l_certify_confidence);
    lua_setfield(L, module, "certify_confidence");
}
