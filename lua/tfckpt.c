/* umbra.core.tf_checkpoint_open(prefix): TensorFlow V2 checkpoints from Lua. The object
 * has :list() -> {{name=, dtype=, shape={...}}, ...} in name order, :read(name) -> tensor
 * (TensorFlow's layout; float32 or int64), :close() (also __gc / __close). A missing or
 * corrupt file gives nil, message; misuse (unknown variable, closed object) raises. */
#include <string.h>
#include "binding.h"
#include "io/tfckpt.h"

#define UM_TFCKPT_MT "umbra.TFCheckpoint"

typedef struct { um_tfckpt *ck; } tfckpt_box;

static um_tfckpt *check_open(lua_State *L, const char *fname) {
    tfckpt_box *box = luaL_checkudata(L, 1, UM_TFCKPT_MT);
    if (!box->ck) luaL_error(L, "%s: the checkpoint is closed", fname);
    return box->ck;
}

/* Failures a user meets with a bad or damaged file come back as nil, message. */
static int expected_failure(int rc) {
    return rc == UM_EIO || rc == UM_EFORMAT || rc == UM_ENOTIMPL;
}

static int tf_open(lua_State *L) {
    const char *prefix = luaL_checkstring(L, 1);
    tfckpt_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->ck = NULL;
    luaL_setmetatable(L, UM_TFCKPT_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    int rc = um_tfckpt_open(&box->ck, prefix);
    if (rc == UM_OK) return 1;
    if (!expected_failure(rc)) return um_lua_raise(L, "tf_checkpoint_open");
    lua_pushnil(L);
    lua_pushstring(L, um_last_error());
    return 2;
}

static int tf_list(lua_State *L) {
    um_tfckpt *ck = check_open(L, "list");
    int n = um_tfckpt_count(ck);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const char *name;
        int dtype, ndim;
        int64_t size[UM_MAXDIM];
        um_tfckpt_entry(ck, i, &name, &dtype, &ndim, size);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, um_tfckpt_dtype_name(dtype));
        lua_setfield(L, -2, "dtype");
        lua_createtable(L, ndim, 0);
        for (int d = 0; d < ndim; d++) {
            lua_pushinteger(L, (lua_Integer)size[d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tf_read(lua_State *L) {
    um_tfckpt *ck = check_open(L, "read");
    const char *name = luaL_checkstring(L, 2);
    if (um_tfckpt_find(ck, name) < 0)
        return luaL_error(L, "read: no variable '%s' in the checkpoint", name);
    um_tensor **slot = um_lua_push_tensor_slot(L);
    int rc = um_tfckpt_read(ck, name, slot);
    if (rc == UM_OK) return 1;
    if (!expected_failure(rc)) return um_lua_raise(L, "read");
    lua_pushnil(L);
    lua_pushstring(L, um_last_error());
    return 2;
}

static int tf_has(lua_State *L) {
    um_tfckpt *ck = check_open(L, "has");
    lua_pushboolean(L, um_tfckpt_find(ck, luaL_checkstring(L, 2)) >= 0);
    return 1;
}

static int tf_close(lua_State *L) {
    tfckpt_box *box = luaL_checkudata(L, 1, UM_TFCKPT_MT);
    um_tfckpt_close(box->ck);
    box->ck = NULL;
    return 0;
}

static int tf_len(lua_State *L) {
    lua_pushinteger(L, um_tfckpt_count(check_open(L, "#")));
    return 1;
}

static int tf_tostring(lua_State *L) {
    tfckpt_box *box = luaL_checkudata(L, 1, UM_TFCKPT_MT);
    lua_getiuservalue(L, 1, 1);
    if (box->ck)
        lua_pushfstring(L, "TFCheckpoint(%s, %d variables)", lua_tostring(L, -1), um_tfckpt_count(box->ck));
    else
        lua_pushfstring(L, "TFCheckpoint(%s, closed)", lua_tostring(L, -1));
    return 1;
}

static const luaL_Reg tf_methods[] = {
    {"list", tf_list}, {"read", tf_read}, {"has", tf_has}, {"close", tf_close}, {NULL, NULL}};

static const luaL_Reg tf_meta[] = {
    {"__gc", tf_close}, {"__close", tf_close}, {"__len", tf_len}, {"__tostring", tf_tostring},
    {NULL, NULL}};

void um_lua_open_tfckpt(lua_State *L, int module) {
    if (luaL_newmetatable(L, UM_TFCKPT_MT)) {
        luaL_setfuncs(L, tf_meta, 0);
        luaL_newlib(L, tf_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, tf_open);
    lua_setfield(L, module, "tf_checkpoint_open");
}
