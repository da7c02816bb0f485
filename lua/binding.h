/* Shared helpers of the umbra.core Lua binding (the only C that includes lua.h).
 * Each C file in lua/ registers its functions through an um_lua_open_* function that
 * lua/core.c calls from luaopen_umbra_core. Convention (docs/architecture.md §5): check every
 * argument first, push the result box empty, call the core, then fill the box or
 * raise with the core's message. */
#ifndef UM_LUA_BINDING_H
#define UM_LUA_BINDING_H
#include <lauxlib.h>
#include <lua.h>
#include "umbra.h"
#include "nn/module.h"

#define UM_TENSOR_MT "umbra.Tensor"
#define UM_GENERATOR_MT "umbra.Generator"
#define UM_MODULE_MT "umbra.Module"

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

/* The module at index i (a userdata holding one core reference), or a Lua error. */
um_module *um_lua_check_module(lua_State *L, int i);
/* Push a module box holding a new reference to m. */
void um_lua_push_module(lua_State *L, um_module *m);

/* Lua counts classes 1..K, the core 0..K-1: the one place where labels are shifted.
 * The int64 labels at index i, checked to lie in 1..k (k = 0: only >= 1), as a 0-based
 * copy on the device of `like` (NULL: the CPU), anchored on the stack; who names the
 * caller in errors. */
um_tensor *um_lua_core_labels(lua_State *L, int i, int64_t k, const um_tensor *like, const char *who);

/* Modules written in Lua (lua/lua_module.c) call back into the Lua thread that is running
 * the binding call that reached them: binding functions that run modules mark that thread
 * (um_lua_enter) and restore the previous one afterwards (um_lua_leave), before raising. */
lua_State *um_lua_enter(lua_State *L);
void um_lua_leave(lua_State *previous);

#endif
