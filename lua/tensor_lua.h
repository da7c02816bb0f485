/* Private declarations shared by the files that bind tensors (lua/tensor*.c) and
 * generators: each file adds its functions to the Tensor method table or to the
 * module table (lua/tensor.c calls the registrations); the helpers they share are in
 * lua/tensor_util.c. Not for other parts of the binding; they use binding.h. */
#ifndef UM_LUA_TENSOR_H
#define UM_LUA_TENSOR_H
#include "binding.h"

/* um_lua_check_sizes, optionally accepting one -1 (a size to infer, for view/reshape). */
int um_lua_check_sizes_ex(lua_State *L, int i, int64_t *size, const char *fname, int allow_infer);

/* Method registration: `methods` is the absolute index of the Tensor method table. */
void um_lua_tensor_shape_methods(lua_State *L, int methods);
void um_lua_tensor_math_methods(lua_State *L, int methods);
void um_lua_tensor_reduce_methods(lua_State *L, int methods);
/* Constructors (zeros, tensor, arange, cat, ...) go into the module table at `module`. */
void um_lua_tensor_constructors(lua_State *L, int module);
/* __tostring of a tensor. */
int um_lua_tensor_tostring(lua_State *L);

/* Dtype from an optional string argument ("float32" | "int64"), default float32. */
um_dtype um_lua_opt_dtype(lua_State *L, int i, const char *fname);
/* The CPU backend, for copies to and from a device. */
const um_backend *um_lua_cpu(void);
/* A tensor whose data the CPU can read: t itself if it lives on the host, else a copy.
 * Always pushes one box holding it (so it is freed even on error) and returns it. */
um_tensor *um_lua_host_view(lua_State *L, um_tensor *t, const char *fname);
/* dst = src where src lives on the host and dst anywhere (a device copy goes through a
 * temporary on dst's device, boxed on the stack and popped again). */
void um_lua_copy_from_host(lua_State *L, um_tensor *dst, um_tensor *src, const char *fname);
/* 0-based indices in an int64 tensor become 1-based (and back with delta -1). */
void um_lua_shift_indices(lua_State *L, um_tensor *t, int64_t delta, const char *fname);

#endif
