/* Lua binding of the TensorBoard event writer (core/io/tbevents.h):
 * umbra.core.tb_open(dir) -> writer with :scalar(tag, step, value [, wall_time]),
 * :value(step, encoded Summary.Value [, wall_time]),
 * :path(), :close() (also __gc and __close). */
#include <time.h>
#include "binding.h"
#include "io/tbevents.h"

#define UM_TB_MT "umbra.TBWriter"

static um_tb_writer **check_writer(lua_State *L) {
    um_tb_writer **w = luaL_checkudata(L, 1, UM_TB_MT);
    if (!*w) luaL_error(L, "tensorboard writer is closed");
    return w;
}

static int l_tb_open(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    um_tb_writer **w = lua_newuserdatauv(L, sizeof *w, 0);
    *w = NULL;
    luaL_setmetatable(L, UM_TB_MT);
    if (um_tb_open(w, dir)) {
        lua_pushnil(L);
        lua_pushstring(L, um_last_error());
        return 2;
    }
    return 1;
}

static int l_tb_scalar(lua_State *L) {
    um_tb_writer **w = check_writer(L);
    const char *tag = luaL_checkstring(L, 2);
    lua_Integer step = luaL_checkinteger(L, 3);
    double value = luaL_checknumber(L, 4);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wall = luaL_optnumber(L, 5, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    if (um_tb_scalar(*w, tag, step, wall, (float)value)) return um_lua_raise(L, "tensorboard");
    return 0;
}

/* w:value(step, bytes [, wall_time]): one Event holding an encoded Summary.Value. */
static int l_tb_value(lua_State *L) {
    um_tb_writer **w = check_writer(L);
    lua_Integer step = luaL_checkinteger(L, 2);
    size_t n;
    const char *bytes = luaL_checklstring(L, 3, &n);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wall = luaL_optnumber(L, 4, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    if (um_tb_value(*w, step, wall, bytes, n)) return um_lua_raise(L, "tensorboard");
    return 0;
}

static int l_tb_path(lua_State *L) {
    lua_pushstring(L, um_tb_path(*check_writer(L)));
    return 1;
}

static int l_tb_close(lua_State *L) {
    um_tb_writer **w = luaL_checkudata(L, 1, UM_TB_MT);
    um_tb_close(*w);
    *w = NULL;
    return 0;
}

static const luaL_Reg writer_methods[] = {
    {"scalar", l_tb_scalar}, {"value", l_tb_value}, {"path", l_tb_path}, {"close", l_tb_close},
    {"__gc", l_tb_close}, {"__close", l_tb_close}, {NULL, NULL}};

void um_lua_open_tblog(lua_State *L, int module) {
    luaL_newmetatable(L, UM_TB_MT);
    luaL_setfuncs(L, writer_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tb_open);
    lua_setfield(L, module, "tb_open");
}
