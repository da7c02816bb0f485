/* A Lua function as an attack's objective (attack.pgd, attack.apgd, attack.mpgd): called
 * with the model's output, it returns the per-example values (n) and the gradient of their
 * sum with respect to that output; the binding copies both into the attack's tensors. */
#ifndef UM_LUA_OBJECTIVE_H
#define UM_LUA_OBJECTIVE_H
#include "binding.h"
#include "ood/pgd.h"

/* who names the attack in errors; fn is a stack index in the frame of the binding call,
 * which stays the current frame while the core runs the attack. */
typedef struct { lua_State *L; int fn; const char *who; } um_lua_objective;

/* When the value at stack index idx is a function: fill o and return the callback to put
 * in the attack's configuration (o is its context); otherwise NULL. */
um_objective_fn um_lua_objective_at(lua_State *L, int idx, um_lua_objective *o, const char *who);

#endif
