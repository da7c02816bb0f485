/* umbra.core HDF5 checkpoint functions, on plain tables: h5_save(path, {name = tensor},
 * {name = string | integer | number}), h5_load(path, {name = tensor}) reading into the
 * given tensors, h5_read(path [, {prefix=, data=, check=}]) returning what a file holds.
 * File problems give nil, message; misuse (wrong argument types, bad names) raises. */
#include <string.h>
#include "binding.h"
#include "io/h5io.h"

/* Entries from the table at index t (name -> tensor) into a userdata array on the stack. */
static um_h5_entry *collect_entries(lua_State *L, int t, int *n, const char *fname) {
    int count = 0;
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) count++;
    um_h5_entry *e = lua_newuserdatauv(L, sizeof *e * (size_t)(count + 1), 0);
    int i = 0;
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: tensor names must be strings", fname);
        if (!um_lua_is_tensor(L, -1)) luaL_error(L, "%s: '%s' is not a tensor", fname, lua_tostring(L, -2));
        e[i].path = lua_tostring(L, -2);  /* kept alive by the table */
        e[i].tensor = um_lua_check_tensor(L, lua_gettop(L));
        i++;
    }
    *n = count;
    return e;
}

static int file_result(lua_State *L, int rc, const char *fname) {
    if (rc == UM_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc != UM_EIO && rc != UM_EFORMAT) return um_lua_raise(L, fname);
    lua_pushnil(L);
    lua_pushstring(L, um_last_error());
    return 2;
}

static int h5_save(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    int n, nattr = 0;
    um_h5_entry *e = collect_entries(L, 2, &n, "h5_save");
    if (lua_istable(L, 3))
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) nattr++;
    um_h5_attr *a = lua_newuserdatauv(L, sizeof *a * (size_t)(nattr + 1), 0);
    int i = 0;
    if (lua_istable(L, 3))
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1), i++) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "h5_save: attribute names must be strings");
            a[i] = (um_h5_attr){.name = lua_tostring(L, -2)};
            if (lua_type(L, -1) == LUA_TSTRING) {
                a[i].kind = UM_H5_STRING;
                a[i].s = lua_tostring(L, -1);
            } else if (lua_isinteger(L, -1)) {
                a[i].kind = UM_H5_INT;
                a[i].i = (int64_t)lua_tointeger(L, -1);
            } else if (lua_type(L, -1) == LUA_TNUMBER) {
                a[i].kind = UM_H5_DOUBLE;
                a[i].d = lua_tonumber(L, -1);
            } else {
                return luaL_error(L, "h5_save: attribute '%s' must be a string or a number, got %s", a[i].name, luaL_typename(L, -1));
            }
        }
    return file_result(L, um_h5_save(path, n, e, nattr, a), "h5_save");
}

static int h5_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n;
    um_h5_entry *e = collect_entries(L, 2, &n, "h5_load");
    return file_result(L, um_h5_load(path, n, e), "h5_load");
}

static void push_attr(lua_State *L, const um_h5_attr *a) {
    if (a->kind == UM_H5_STRING) lua_pushstring(L, a->s);
    else if (a->kind == UM_H5_INT) lua_pushinteger(L, (lua_Integer)a->i);
    else lua_pushnumber(L, a->d);
}

/* The contents as {names = {...}, tensors = {name = t}, shapes = {name = {...}},
 * dtypes = {name = "float32"}, attributes = {name = value}}; the tensors move to Lua. */
static void push_contents(lua_State *L, um_h5_contents *c) {
    lua_createtable(L, 0, 5);
    const char *fields[4] = {"names", "tensors", "shapes", "dtypes"};
    for (int f = 0; f < 4; f++) {
        lua_newtable(L);
        lua_setfield(L, -2, fields[f]);
    }
    for (int i = 0; i < c->n_tensors; i++) {
        lua_getfield(L, -1, "names");
        lua_pushstring(L, c->names[i]);
        lua_rawseti(L, -2, i + 1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "shapes");
        lua_createtable(L, c->ndims[i], 0);
        for (int d = 0; d < c->ndims[i]; d++) {
            lua_pushinteger(L, (lua_Integer)c->sizes[i][d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, c->names[i]);
        lua_pop(L, 1);
        lua_getfield(L, -1, "dtypes");
        lua_pushstring(L, um_dtype_name((um_dtype)c->dtypes[i]));
        lua_setfield(L, -2, c->names[i]);
        lua_pop(L, 1);
        if (c->tensors[i]) {
            lua_getfield(L, -1, "tensors");
            um_tensor **slot = um_lua_push_tensor_slot(L);
            *slot = c->tensors[i];  /* the box owns it now */
            c->tensors[i] = NULL;
            lua_setfield(L, -2, c->names[i]);
            lua_pop(L, 1);
        }
    }
    lua_createtable(L, 0, c->n_attrs);
    for (int i = 0; i < c->n_attrs; i++) {
        push_attr(L, &c->attrs[i]);
        lua_setfield(L, -2, c->attrs[i].name);
    }
    lua_setfield(L, -2, "attributes");
}

/* A userdata whose __gc frees the contents: a Lua error while converting leaks nothing. */
static int contents_gc(lua_State *L) {
    um_h5_contents **box = lua_touserdata(L, 1);
    um_h5_contents_free(*box);
    *box = NULL;
    return 0;
}

static int h5_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *prefix = NULL;
    int data = 1, check = 1;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "prefix");
        prefix = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 2, "data");
        if (!lua_isnil(L, -1)) data = lua_toboolean(L, -1);
        lua_getfield(L, 2, "check");
        if (!lua_isnil(L, -1)) check = lua_toboolean(L, -1);
        lua_pop(L, 2);  /* keep prefix referenced */
    }
    um_h5_contents **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, contents_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    int rc = um_h5_read(box, path, prefix, data, check);
    if (rc != UM_OK) return file_result(L, rc, "h5_read");
    push_contents(L, *box);
    um_h5_contents_free(*box);
    *box = NULL;
    return 1;
}

static const luaL_Reg checkpoint_functions[] = {
    {"h5_save", h5_save}, {"h5_load", h5_load}, {"h5_read", h5_read}, {NULL, NULL}};

void um_lua_open_checkpoint(lua_State *L, int module) {
    module = lua_absindex(L, module);
    lua_pushvalue(L, module);
    luaL_setfuncs(L, checkpoint_functions, 0);
    lua_pop(L, 1);
}
