/* Shared helpers of the umbra.core Lua binding (the only C that includes lua.h).
 * Each C file in lua/ registers its functions through an um_lua_open_* function that
 * lua/core.c calls from luaopen_umbra_core. Convention (DESIGN §5): check every
 * argument first, push the result box empty, call the core, then fill the box or
 * raise with the core's message. */
#ifndef UM_LUA_BINDING_H
#define UM_LUA_BINDING_H
#include <lauxlib.h>
#include <lua.h>
#include "umbra.h"

#define UM_TENSOR_MT "umbra.Tensor"
#define UM_GENERATOR_MT "umbra.Generator"

typedef struct { um_tensor *t; } um_lua_tensor_box;

/* Push an empty tensor box (userdata with the Tensor metatable) and return its slot. */
um_tensor **um_lua_push_tensor_slot(lua_State *L);
/* Push a tensor, taking over the caller's reference (t NULL pushes nil). */
void um_lua_push_tensor(lua_State *L, um_tensor *t);
/* The tensor at index i, or a Lua error "bad argument #i to 'fname' (tensor expected, got ...)"
 * or "... (tensor was freed)". */
um_tensor *um_lua_check_tensor(lua_State *L, int i);
um_tensor *um_lua_opt_tensor(lua_State *L, int i);  /* nil/none -> NULL */
int um_lua_is_tensor(lua_State *L, int i);
um_generator *um_lua_check_generator(lua_State *L, int i);
/* Raise the core's last error as a Lua error, prefixed with fname. Never returns. */
int um_lua_raise(lua_State *L, const char *fname);
/* Convert a Lua dimension (1-based, negative counts from the end) into C (0-based). */
int um_lua_check_dim(lua_State *L, int arg, int ndim, const char *fname);
/* Read a size list from a table {2,3} or from consecutive integer arguments starting at i. */
int um_lua_check_sizes(lua_State *L, int i, int64_t *size, const char *fname);

#endif
