/* Modules written in Lua, inside the C module graph: a proxy um_module whose forward and
 * backward call the Lua class's methods, so that a Lua layer can be a child of Sequential
 * and Residual, and its parameters (registered by name in the proxy's slots) are seen by
 * parameters(), optimisers, checkpoints and to(device). The proxy keeps a registry
 * reference to the module's Lua table (its fields; its metatable is the class); a Lua
 * error inside a method becomes the module's error, which the containers prefix with the
 * child's path. A class may declare bound(self, lo, hi) -> lo', hi', the module's interval
 * bound rule for certificates (core/ood/ibp.c). The friendly class API (nn.Module:extend) is
 * in lua/umbra/nn.lua. */
#include <stdio.h>
#include <string.h>
#include "binding.h"

typedef struct {
    um_module base;
    um_module_ops ops;   /* the proxy's own copy, so that ops.type names the Lua class */
    lua_State *main;     /* the state's main thread: where the registry reference lives */
    int ref;             /* registry reference to the module's Lua table */
    char type[48];
    char names[2 * UM_MODULE_SLOTS][32];   /* parameter then buffer names (the core borrows them) */
} lua_module;

/* ---- the running thread ---- */

static __thread lua_State *running;

lua_State *um_lua_enter(lua_State *L) {
    lua_State *prev = running;
    running = L;
    return prev;
}

void um_lua_leave(lua_State *previous) { running = previous; }

/* Where a callback runs: the thread of the binding call that reached the module, or the
 * main thread for a core call that did not come through one. */
static lua_State *callback_thread(const lua_module *lm) { return running ? running : lm->main; }

static int is_lua_module(const um_module *m);

/* ---- calls into Lua ---- */

typedef struct {
    lua_module *lm;
    const char *method;
    um_tensor *x, *gy;
    int flags;
    um_tensor *result;   /* a new reference on success */
} lua_call_args;

/* A new header on t's storage for Lua to hold: a module reuses its buffer while nobody
 * else holds that tensor object, and Lua keeps what it was given until it collects it. */
static void push_alias(lua_State *L, um_tensor *t, const char *method) {
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_view(slot, t, t->ndim, t->size)) um_lua_raise(L, method);
}

/* Runs inside lua_pcall: self is a fresh box of the module (the Lua table is not self, so
 * methods reach parameters and the core methods through the box's __index). */
static int call_method(lua_State *L) {
    lua_call_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->lm->ref);
    lua_getfield(L, -1, a->method);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s.%s is not defined (a Lua module needs forward(self, x) and backward(self, x, gy, "
                          "want_input_grad, want_param_grads))", a->lm->type, a->method);
    um_lua_push_module(L, &a->lm->base);
    push_alias(L, a->x, a->method);
    int nargs = 2;
    if (a->gy) {
        push_alias(L, a->gy, a->method);
        lua_pushboolean(L, a->flags & UM_GRAD_INPUT);
        lua_pushboolean(L, a->flags & UM_GRAD_PARAMS);
        nargs = 5;
    }
    lua_call(L, nargs, 1);
    if (a->gy && !(a->flags & UM_GRAD_INPUT)) return 0;   /* no input gradient asked for */
    if (!um_lua_is_tensor(L, -1))
        return luaL_error(L, "%s.%s must return a tensor, got %s", a->lm->type, a->method, luaL_typename(L, -1));
    um_tensor *t = um_lua_check_tensor(L, -1);
    char s1[64], s2[64];
    if (t->dtype != UM_FLOAT32)
        return luaL_error(L, "%s.%s returned a %s tensor, expected float32", a->lm->type, a->method,
                          um_dtype_name(t->dtype));
    if (a->gy && !um_same_shape(t, a->x))
        return luaL_error(L, "%s.backward returned an input gradient %s, but the input is %s", a->lm->type,
                          um_shape_str(t, s1, sizeof s1), um_shape_str(a->x, s2, sizeof s2));
    if (um_backend_of(t) != um_backend_of(a->x))
        return luaL_error(L, "%s.%s returned a tensor on %s for an input on %s", a->lm->type, a->method,
                          um_backend_of(t)->name, um_backend_of(a->x)->name);
    /* the next layer wants a contiguous tensor; the module keeps its own header on the
     * result, so that returning the input (or a tensor Lua holds) blocks nobody's reuse */
    int rc = um_is_contiguous(t) ? um_view(&a->result, t, t->ndim, t->size) : um_clone(&a->result, t);
    if (rc) return um_lua_raise(L, a->method);
    return 0;
}

static int run_method(lua_module *lm, const char *method, um_tensor *x, um_tensor *gy, int flags,
                      um_tensor **result) {
    lua_State *L = callback_thread(lm);
    lua_call_args a = {lm, method, x, gy, flags, NULL};
    if (!lua_checkstack(L, 8)) return um_fail(UM_ENOMEM, "%s.%s: no room on the Lua stack", lm->type, method);
    lua_pushcfunction(L, call_method);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        um_fail(UM_EINVAL, "%s.%s: %s", lm->type, method, msg ? msg : "error object is not a string");
        lua_pop(L, 1);
        um_tensor_release(a.result);
        return UM_EINVAL;
    }
    *result = a.result;
    return UM_OK;
}

/* ---- interval bounds: the class's bound(self, lo, hi) -> lo', hi' ---- */

typedef struct {
    lua_module *lm;
    um_tensor *lo, *hi;
    um_tensor *lo_out, *hi_out;   /* new references on success */
    int missing;                  /* the class declares no bound */
} lua_bound_args;

/* One end the Lua bound returned, checked (a float32 tensor on the input's device) and
 * copied: the caller owns the result, and Lua may keep what it returned. */
static int take_end(lua_State *L, lua_bound_args *a, int idx, const char *which, um_tensor **out) {
    if (!um_lua_is_tensor(L, idx))
        return luaL_error(L, "%s.bound must return two tensors (lo, hi), got %s for %s", a->lm->type,
                          luaL_typename(L, idx), which);
    um_tensor *t = um_lua_check_tensor(L, idx);
    if (t->dtype != UM_FLOAT32)
        return luaL_error(L, "%s.bound returned a %s tensor for %s, expected float32", a->lm->type,
                          um_dtype_name(t->dtype), which);
    if (um_backend_of(t) != um_backend_of(a->lo))
        return luaL_error(L, "%s.bound returned %s on %s for an input on %s", a->lm->type, which,
                          um_backend_of(t)->name, um_backend_of(a->lo)->name);
    if (um_clone(out, t)) return um_lua_raise(L, "bound");
    return 0;
}

/* Runs inside lua_pcall, as call_method. A rule that gives lo' > hi' anywhere (or NaN) is
 * refused: no sound bound has that, and the certificate would build on it. */
static int call_bound(lua_State *L) {
    lua_bound_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->lm->ref);
    if (lua_getfield(L, -1, "bound") != LUA_TFUNCTION) {
        a->missing = 1;
        return 0;
    }
    um_lua_push_module(L, &a->lm->base);
    push_alias(L, a->lo, "bound");
    push_alias(L, a->hi, "bound");
    lua_call(L, 3, 2);
    char s1[64], s2[64];
    take_end(L, a, -2, "lo", &a->lo_out);
    take_end(L, a, -1, "hi", &a->hi_out);
    if (!um_same_shape(a->lo_out, a->hi_out))
        return luaL_error(L, "%s.bound returned lo %s and hi %s: expected one shape", a->lm->type,
                          um_shape_str(a->lo_out, s1, sizeof s1), um_shape_str(a->hi_out, s2, sizeof s2));
    um_tensor *gap = NULL;
    double below = 0;
    int rc = um_binary(&gap, UM_SUB, a->hi_out, a->lo_out);
    if (!rc) rc = um_clamp_(gap, -1e30, 0);
    if (!rc) rc = um_sum_all(gap, &below);
    um_tensor_release(gap);
    if (rc) return um_lua_raise(L, "bound");
    if (!(below >= 0))
        return luaL_error(L, "%s.bound returned lo > hi (or NaN) somewhere: expected lo <= hi everywhere",
                          a->lm->type);
    return 0;
}

static int lm_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    lua_module *lm = (lua_module *)m;
    lua_State *L = callback_thread(lm);
    if (!lua_checkstack(L, 8)) return um_fail(UM_ENOMEM, "%s.bound: no room on the Lua stack", lm->type);
    lua_bound_args a = {lm, lo, hi, NULL, NULL, 0};
    lua_pushcfunction(L, call_bound);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        um_fail(UM_EINVAL, "%s.bound: %s", lm->type, msg ? msg : "error object is not a string");
        lua_pop(L, 1);
        um_tensor_release(a.lo_out);
        um_tensor_release(a.hi_out);
        return UM_EINVAL;
    }
    if (a.missing)
        return um_fail(UM_ENOTIMPL, "%s has no interval bound (a Lua module declares one as %s:bound(lo, hi) "
                       "returning lo', hi')", lm->type, lm->type);
    *lo_out = a.lo_out;
    *hi_out = a.hi_out;
    return UM_OK;
}

/* ---- the proxy's ops ---- */

static int lm_forward(um_module *m, um_tensor *x) {
    um_tensor *y = NULL;
    int rc = run_method((lua_module *)m, "forward", x, NULL, 0, &y);
    if (rc) return rc;
    um_module_set_output(m, y);
    um_tensor_release(y);
    return UM_OK;
}

static int lm_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    um_tensor *gx = NULL;
    int rc = run_method((lua_module *)m, "backward", x, gy, flags, &gx);
    if (rc) return rc;
    if (flags & UM_GRAD_INPUT) um_module_set_grad_input(m, gx);
    um_tensor_release(gx);
    return UM_OK;
}

/* The output shape is known only by running the Lua code; containers ask for it only in
 * summaries, which show no shape then. */
static int lm_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    return um_fail(UM_ENOTIMPL, "%s: a Lua module's output shape is known after a forward", m->ops->type);
}

static void lm_describe(const um_module *m, char *buf, size_t n) { snprintf(buf, n, "%s (Lua)", m->ops->type); }

static void lm_destroy(um_module *m) {
    lua_module *lm = (lua_module *)m;
    luaL_unref(lm->main, LUA_REGISTRYINDEX, lm->ref);
}

static const um_module_ops lua_module_template = {
    .type = "LuaModule",
    .out_shape = lm_out_shape,
    .forward = lm_forward,
    .backward = lm_backward,
    .describe = lm_describe,
    .destroy = lm_destroy,
    .bound = lm_bound,
};

static int is_lua_module(const um_module *m) { return m->ops->forward == lm_forward; }

static lua_module *check_lua_module(lua_State *L, int i) {
    um_module *m = um_lua_check_module(L, i);
    if (!is_lua_module(m)) luaL_argerror(L, i, "not a module written in Lua");
    return (lua_module *)m;
}

/* ---- Lua functions ---- */

/* lua_module(type_name, table) -> module: the proxy for a Lua module whose fields and
 * class are the table's (the table's metatable is the class). */
static int l_lua_module(lua_State *L) {
    const char *type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_argcheck(L, strlen(type) < sizeof ((lua_module *)0)->type, 1, "class name longer than 47 characters");
    um_lua_push_module(L, NULL);   /* an empty box first: an error below then leaks nothing */
    um_module **slot = lua_touserdata(L, -1);
    lua_module *lm = NULL;
    if (um_module_create((um_module **)&lm, sizeof *lm, &lua_module_template)) return um_lua_raise(L, "lua_module");
    lm->ops = lua_module_template;
    snprintf(lm->type, sizeof lm->type, "%s", type);
    lm->ops.type = lm->type;
    lm->base.ops = &lm->ops;
    lm->ref = LUA_NOREF;
    *slot = &lm->base;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lm->main = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lm->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* lua_state(m) -> the Lua table of a Lua module, or nil for a C module */
static int l_lua_state(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    if (!is_lua_module(m)) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ((lua_module *)m)->ref);
    return 1;
}

static const char *own_name(lua_State *L, lua_module *lm, int slot, const char *name) {
    luaL_argcheck(L, strlen(name) > 0 && strlen(name) < sizeof lm->names[0] && !strchr(name, '.'), 2,
                  "a parameter or buffer name has 1 to 31 characters and no '.'");
    for (int i = 0; i < lm->base.n_params; i++)
        if (!strcmp(lm->base.param_names[i], name)) luaL_error(L, "%s: '%s' is already a parameter", lm->type, name);
    for (int i = 0; i < lm->base.n_buffers; i++)
        if (!strcmp(lm->base.buffer_names[i], name)) luaL_error(L, "%s: '%s' is already a buffer", lm->type, name);
    snprintf(lm->names[slot], sizeof lm->names[slot], "%s", name);
    return lm->names[slot];
}

/* register(m, "param" | "buffer", name, tensor) -> tensor: the module takes a copy (its own
 * storage, contiguous float32) and, for a parameter, a zero gradient of its shape. */
static int l_register(lua_State *L) {
    lua_module *lm = check_lua_module(L, 1);
    int is_param = strcmp(luaL_checkstring(L, 2), "param") == 0;
    const char *name = luaL_checkstring(L, 3);
    um_tensor *t = um_lua_check_tensor(L, 4);
    if (t->dtype != UM_FLOAT32) return luaL_error(L, "%s: '%s' must be float32, got %s", lm->type, name,
                                                   um_dtype_name(t->dtype));
    int used = is_param ? lm->base.n_params : lm->base.n_buffers;
    if (used >= UM_MODULE_SLOTS)
        return luaL_error(L, "%s: a module holds at most %d %s", lm->type, UM_MODULE_SLOTS,
                          is_param ? "parameters" : "buffers");
    const char *owned = own_name(L, lm, (is_param ? 0 : UM_MODULE_SLOTS) + used, name);
    um_tensor **copy = um_lua_push_tensor_slot(L);
    if (um_clone(copy, t)) return um_lua_raise(L, "register");
    um_tensor_retain(*copy);   /* the module's reference; the box keeps its own for the return */
    int rc = is_param ? um_module_add_param(&lm->base, owned, *copy) : um_module_add_buffer(&lm->base, owned, *copy);
    if (rc) return um_lua_raise(L, "register");
    return 1;
}

/* own_tensor(m, "param" | "grad" | "buffer", name) -> the module's tensor of that name, or nil */
static int l_own_tensor(lua_State *L) {
    um_module *m = um_lua_check_module(L, 1);
    const char *kind = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
    int buffer = !strcmp(kind, "buffer"), grad = !strcmp(kind, "grad");
    int n = buffer ? m->n_buffers : m->n_params;
    for (int i = 0; i < n; i++) {
        if (strcmp(buffer ? m->buffer_names[i] : m->param_names[i], name) != 0) continue;
        um_tensor *t = buffer ? m->buffers[i] : grad ? m->grads[i] : m->params[i];
        um_tensor_retain(t);
        um_lua_push_tensor(L, t);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

void um_lua_open_lua_module(lua_State *L, int module) {
    static const luaL_Reg functions[] = {
        {"lua_module", l_lua_module}, {"lua_state", l_lua_state}, {"register", l_register},
        {"own_tensor", l_own_tensor}, {NULL, NULL}};
    lua_getfield(L, module, "nn_core");
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
