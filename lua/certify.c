/* Lua binding of the certified bound (core/ood/ibp.h) and of training through it
 * (core/ood/ibp_train.h):
 * umbra.core.certify_confidence(module, z, eps) -> bound (n), logit differences (n, K, K);
 * umbra.core.bound_tape(module, z, eps, clip) -> tape, logit-difference bounds (n, K, K);
 * tape:backward(gud) adds the parameter gradients; tape:free() (or garbage collection). */
#include "binding.h"
#include "ood/ibp.h"
#include "ood/ibp_train.h"

#define UM_TAPE_MT "umbra.BoundTape"

typedef struct {
    um_ibp_tape *tape;
} tape_box;

static int l_certify_confidence(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2);
    double eps = luaL_checknumber(L, 3);
    um_tensor **conf = um_lua_push_tensor_slot(L), **ud = um_lua_push_tensor_slot(L);
    if (um_certify_confidence(m, z, eps, conf, ud)) return um_lua_raise(L, "certify.confidence_bound");
    return 2;
}

/* The tape borrows the model's modules: the model is kept as the userdata's user value. */
static int l_bound_tape(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2);
    double eps = luaL_checknumber(L, 3);
    int clip = lua_toboolean(L, 4);
    tape_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->tape = NULL;
    luaL_setmetatable(L, UM_TAPE_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    um_tensor **ud = um_lua_push_tensor_slot(L);
    lua_State *prev = um_lua_enter(L);
    int rc = um_ibp_tape_forward(m, z, eps, clip, &box->tape, ud);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "certify.bound_tape");
    return 2;
}

static tape_box *check_tape(lua_State *L) {
    tape_box *box = luaL_checkudata(L, 1, UM_TAPE_MT);
    if (!box->tape) luaL_error(L, "bound tape: already used or freed (a tape runs backward once)");
    return box;
}

static int tape_backward(lua_State *L) {
    tape_box *box = check_tape(L);
    um_tensor *gud = um_lua_check_tensor(L, 2);
    lua_State *prev = um_lua_enter(L);
    int rc = um_ibp_tape_backward(box->tape, gud);
    um_lua_leave(prev);
    um_ibp_tape_free(box->tape);   /* its saved boxes are not needed twice */
    box->tape = NULL;
    if (rc) return um_lua_raise(L, "bound_tape:backward");
    return 0;
}

static int tape_free(lua_State *L) {
    tape_box *box = luaL_checkudata(L, 1, UM_TAPE_MT);
    um_ibp_tape_free(box->tape);
    box->tape = NULL;
    return 0;
}

static const luaL_Reg tape_methods[] = {{"backward", tape_backward}, {"free", tape_free}, {NULL, NULL}};
static const luaL_Reg tape_meta[] = {{"__gc", tape_free}, {"__close", tape_free}, {NULL, NULL}};

void um_lua_open_certify(lua_State *L, int module) {
    module = lua_absindex(L, module);
    if (luaL_newmetatable(L, UM_TAPE_MT)) {
        luaL_setfuncs(L, tape_meta, 0);
        luaL_newlib(L, tape_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_certify_confidence);
    lua_setfield(L, module, "certify_confidence");
    lua_pushcfunction(L, l_bound_tape);
    lua_setfield(L, module, "bound_tape");
}
