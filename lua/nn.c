/* umbra.core.nn: the module tree and the losses for Lua. A Module userdata holds one
 * core reference; constructors push the empty box before the core allocates. Results
 * handed to Lua are the module's own buffers with a new reference (the module then stops
 * reusing them), or a copy when they are views into another module's buffer. The
 * friendly constructors, containers and printing are in lua/umbra/nn.lua. */
#include <string.h>
#include "binding.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/module.h"

typedef struct { um_module *m; } module_box;

static um_module **push_module_slot(lua_State *L) {
    module_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->m = NULL;
    luaL_setmetatable(L, UM_MODULE_MT);
    return &b->m;
}

um_module *um_lua_check_module(lua_State *L, int i) {
    module_box *b = luaL_testudata(L, i, UM_MODULE_MT);
    if (!b) luaL_typeerror(L, i, "module");
    if (!b->m) luaL_argerror(L, i, "module was freed");
    return b->m;
}

#define check_module um_lua_check_module

static um_module *opt_module(lua_State *L, int i) { return lua_isnoneornil(L, i) ? NULL : check_module(L, i); }

void um_lua_push_module(lua_State *L, um_module *m) {
    um_module **slot = push_module_slot(L);
    um_module_retain(m);
    *slot = m;
}

static int module_free(lua_State *L) {
    module_box *b = luaL_checkudata(L, 1, UM_MODULE_MT);
    um_module_release(b->m);
    b->m = NULL;
    return 0;
}

/* A module result for Lua: a new reference to the buffer itself, or a copy when the
 * buffer is a view of memory another module keeps reusing (Flatten, Identity). */
static void push_result(lua_State *L, um_tensor *t, const char *fname) {
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (t->storage->refcount > 1) {
        if (um_clone(slot, t)) um_lua_raise(L, fname);
    } else {
        um_tensor_retain(t);
        *slot = t;
    }
}

static int l_forward(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2), *y = NULL;
    lua_State *prev = um_lua_enter(L);
    int rc = um_module_forward(m, x, &y);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "forward");
    push_result(L, y, "forward");
    return 1;
}

/* backward(x, gy [, want_input_grad = true]) -> gx or nil */
static int l_backward(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2), *gy = um_lua_check_tensor(L, 3), *gx = NULL;
    int want = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
    lua_State *prev = um_lua_enter(L);
    int rc = um_module_backward(m, x, gy, want ? &gx : NULL);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "backward");
    if (want) push_result(L, gx, "backward");
    else lua_pushnil(L);
    return 1;
}

static int l_backward_input(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2), *gy = um_lua_check_tensor(L, 3), *gx = NULL;
    lua_State *prev = um_lua_enter(L);
    int rc = um_module_backward_input(m, x, gy, &gx);
    um_lua_leave(prev);
    if (rc) return um_lua_raise(L, "backward_input");
    push_result(L, gx, "backward_input");
    return 1;
}

/* output(m) -> the output of m's last forward (a child's too: each module keeps its own),
 * or nil before any. Like forward's result: the buffer itself, which m then stops reusing. */
static int l_output(lua_State *L) {
    um_module *m = check_module(L, 1);
    if (!m->output || m->in_ndim < 0 || m->forward_failed) {
        lua_pushnil(L);
        return 1;
    }
    push_result(L, m->output, "output");
    return 1;
}

static int l_train(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_module_train(m, lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int l_is_training(lua_State *L) {
    lua_pushboolean(L, check_module(L, 1)->training);
    return 1;
}

static int l_zero_grad(lua_State *L) {
    if (um_module_zero_grad(check_module(L, 1))) return um_lua_raise(L, "zero_grad");
    lua_settop(L, 1);
    return 1;
}

static int l_type(lua_State *L) {
    lua_pushstring(L, um_module_type(check_module(L, 1)));
    return 1;
}

static int l_describe(lua_State *L) {
    char buf[256];
    um_module_describe(check_module(L, 1), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int l_num_children(lua_State *L) {
    lua_pushinteger(L, um_module_num_children(check_module(L, 1)));
    return 1;
}

/* child(m, i | name) -> module or nil */
static int l_child(lua_State *L) {
    um_module *m = check_module(L, 1), *c = NULL;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer i = luaL_checkinteger(L, 2);
        c = i >= 1 && i <= um_module_num_children(m) ? um_module_child(m, (int)(i - 1)) : NULL;
    } else {
        c = um_module_find_child(m, luaL_checkstring(L, 2));
    }
    if (c) um_lua_push_module(L, c);
    else lua_pushnil(L);
    return 1;
}

static int l_child_name(lua_State *L) {
    um_module *m = check_module(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, i >= 1 && i <= um_module_num_children(m), 2, "child index out of range");
    char buf[64];
    lua_pushstring(L, um_module_child_name(m, (int)(i - 1), buf, sizeof buf));
    return 1;
}

static um_tensor_set check_set(lua_State *L, int i) {
    static const char *const sets[] = {"params", "grads", "buffers", NULL};
    return (um_tensor_set)luaL_checkoption(L, i, "params", sets);
}

typedef struct { lua_State *L; int paths, tensors, n; } visit_state;

/* Lua calls here may raise; the walk holds nothing but stack memory, and each tensor
 * reference is taken only once its box exists. */
static int push_named(const char *path, um_tensor *t, void *ud) {
    visit_state *s = ud;
    s->n++;
    lua_pushstring(s->L, path);
    lua_rawseti(s->L, s->paths, s->n);
    um_tensor **slot = um_lua_push_tensor_slot(s->L);
    um_tensor_retain(t);
    *slot = t;
    lua_rawseti(s->L, s->tensors, s->n);
    return 0;
}

/* named_tensors(m, "params" | "grads" | "buffers") -> {paths}, {tensors} */
static int l_named_tensors(lua_State *L) {
    um_module *m = check_module(L, 1);
    um_tensor_set which = check_set(L, 2);
    lua_newtable(L);
    lua_newtable(L);
    visit_state s = {L, lua_gettop(L) - 1, lua_gettop(L), 0};
    if (um_module_visit(m, which, push_named, &s)) return um_lua_raise(L, "named_tensors");
    return 2;
}

static int l_num_elements(lua_State *L) {
    um_module *m = check_module(L, 1);
    if (lua_toboolean(L, 3)) {   /* own tensors only, not the children's */
        um_tensor_set which = check_set(L, 2);
        int64_t n = 0;
        int k = which == UM_BUFFERS ? m->n_buffers : m->n_params;
        for (int i = 0; i < k; i++) n += um_numel(which == UM_BUFFERS ? m->buffers[i] : m->params[i]);
        lua_pushinteger(L, (lua_Integer)n);
    } else {
        lua_pushinteger(L, (lua_Integer)um_module_num_elements(m, check_set(L, 2)));
    }
    return 1;
}

static void push_sizes(lua_State *L, int ndim, const int64_t *size) {
    lua_createtable(L, ndim, 0);
    for (int d = 0; d < ndim; d++) {
        lua_pushinteger(L, (lua_Integer)size[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

/* out_shape(m, {sizes}) -> {sizes}; raises with the module path on a mismatch */
static int l_out_shape(lua_State *L) {
    um_module *m = check_module(L, 1);
    int64_t in[UM_MAXDIM], out[UM_MAXDIM];
    int ndim = um_lua_check_sizes(L, 2, in, "out_shape"), ondim = 0;
    if (um_module_out_shape(m, ndim, in, &ondim, out)) return um_lua_raise(L, "out_shape");
    push_sizes(L, ondim, out);
    return 1;
}

/* kernel_paths(m, {sizes}) -> forward path, input-gradient path (names); raises when m is
 * not a Conv2d or the shape does not fit */
static int l_kernel_paths(lua_State *L) {
    um_module *m = check_module(L, 1);
    int64_t in[UM_MAXDIM];
    int ndim = um_lua_check_sizes(L, 2, in, "kernel_paths");
    const char *fwd = NULL, *gx = NULL;
    if (um_conv2d_path(m, ndim, in, 0, &fwd) || um_conv2d_path(m, ndim, in, 1, &gx)) return um_lua_raise(L, "kernel_paths");
    lua_pushstring(L, fwd);
    lua_pushstring(L, gx);
    return 2;
}

/* output_shape(m) / input_shape(m): sizes of the last forward, or nil */
static int l_output_shape(lua_State *L) {
    um_module *m = check_module(L, 1);
    if (m->output && m->in_ndim >= 0) push_sizes(L, m->output->ndim, m->output->size);
    else lua_pushnil(L);
    return 1;
}

static int l_input_shape(lua_State *L) {
    um_module *m = check_module(L, 1);
    if (m->in_ndim >= 0) push_sizes(L, m->in_ndim, m->in_shape);
    else lua_pushnil(L);
    return 1;
}

/* to(m, "cpu" | "cuda") -> m: parameters, gradients and buffers move to that device */
static int l_to(lua_State *L) {
    um_module *m = check_module(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const um_backend *be;
    if (um_backend_named(name, &be) || um_module_to(m, be)) return um_lua_raise(L, "to");
    lua_settop(L, 1);
    return 1;
}

static int l_is_module(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, UM_MODULE_MT) != NULL);
    return 1;
}

static int l_same(lua_State *L) {
    lua_pushboolean(L, check_module(L, 1) == check_module(L, 2));
    return 1;
}

/* ---- constructors ---- */

#define CONSTRUCT(fname, call)                        \
    do {                                              \
        um_module **slot_ = push_module_slot(L);      \
        um_module **out = slot_;                      \
        if (call) return um_lua_raise(L, fname);      \
    } while (0)

static int l_linear(lua_State *L) {
    lua_Integer in = luaL_checkinteger(L, 1), outf = luaL_checkinteger(L, 2);
    int bias = lua_toboolean(L, 3);
    um_generator *g = um_lua_check_generator(L, 4);
    CONSTRUCT("Linear", um_linear_new(out, in, outf, bias, g));
    return 1;
}

static um_padding check_padding(lua_State *L, int i) {
    static const char *const modes[] = {"explicit", "same", "valid", NULL};
    return (um_padding)luaL_checkoption(L, i, NULL, modes);
}

/* conv2d(c_in, c_out, kh, kw, sh, sw, mode, top, bottom, left, right, bias, generator) */
static int l_conv2d(lua_State *L) {
    um_conv2d_config c = {0};
    c.c_in = luaL_checkinteger(L, 1);
    c.c_out = luaL_checkinteger(L, 2);
    c.kh = luaL_checkinteger(L, 3);
    c.kw = luaL_checkinteger(L, 4);
    c.sh = luaL_checkinteger(L, 5);
    c.sw = luaL_checkinteger(L, 6);
    c.padding = check_padding(L, 7);
    for (int k = 0; k < 4; k++) c.pad[k] = luaL_optinteger(L, 8 + k, 0);
    c.bias = lua_toboolean(L, 12);
    um_generator *g = um_lua_check_generator(L, 13);
    CONSTRUCT("Conv2d", um_conv2d_new(out, &c, g));
    return 1;
}

static int pool(lua_State *L, int is_max) {
    lua_Integer kh = luaL_checkinteger(L, 1), kw = luaL_checkinteger(L, 2);
    lua_Integer sh = luaL_checkinteger(L, 3), sw = luaL_checkinteger(L, 4);
    um_padding p = check_padding(L, 5);
    if (is_max) CONSTRUCT("MaxPool2d", um_maxpool2d_new(out, kh, kw, sh, sw, p));
    else CONSTRUCT("AvgPool2d", um_avgpool2d_new(out, kh, kw, sh, sw, p));
    return 1;
}

static int l_maxpool2d(lua_State *L) { return pool(L, 1); }
static int l_avgpool2d(lua_State *L) { return pool(L, 0); }

static int l_batchnorm2d(lua_State *L) {
    lua_Integer c = luaL_checkinteger(L, 1);
    double momentum = luaL_checknumber(L, 2), eps = luaL_checknumber(L, 3);
    CONSTRUCT("BatchNorm2d", um_batchnorm2d_new(out, c, momentum, eps));
    return 1;
}

static int l_channel_pad(lua_State *L) {
    lua_Integer before = luaL_checkinteger(L, 1), after = luaL_checkinteger(L, 2);
    CONSTRUCT("ChannelPad", um_channel_pad_new(out, before, after));
    return 1;
}

static int l_global_avgpool(lua_State *L) { CONSTRUCT("GlobalAvgPool", um_global_avgpool_new(out)); return 1; }
static int l_relu(lua_State *L) { CONSTRUCT("ReLU", um_relu_new(out)); return 1; }
static int l_flatten(lua_State *L) { CONSTRUCT("Flatten", um_flatten_new(out)); return 1; }
static int l_identity(lua_State *L) { CONSTRUCT("Identity", um_identity_new(out)); return 1; }
static int l_sequential(lua_State *L) { CONSTRUCT("Sequential", um_sequential_new(out)); return 1; }

/* sequential_add(seq, name | nil, child) */
static int l_sequential_add(lua_State *L) {
    um_module *seq = check_module(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    um_module *child = check_module(L, 3);
    if (um_sequential_add(seq, name, child)) return um_lua_raise(L, "add");
    lua_settop(L, 1);
    return 1;
}

/* residual(pre | nil, main, shortcut | nil) */
static int l_residual(lua_State *L) {
    um_module *pre = opt_module(L, 1), *main = check_module(L, 2), *sc = opt_module(L, 3);
    CONSTRUCT("Residual", um_residual_new(out, pre, main, sc));
    return 1;
}

/* ---- losses ---- */

static um_loss_kind check_loss(lua_State *L, int i) {
    static const char *const kinds[] = {"cross_entropy", "max_conf", "uniform_conf", NULL};
    return (um_loss_kind)luaL_checkoption(L, i, NULL, kinds);
}

static um_reduction check_reduction(lua_State *L, int i) {
    static const char *const reds[] = {"none", "sum", "mean", NULL};
    return (um_reduction)luaL_checkoption(L, i, "mean", reds);
}

/* The target at index i as the core wants it: Lua class labels 1..K become a 0-based
 * copy (um_lua_core_labels); probability rows and nil pass through. */
static um_tensor *core_target(lua_State *L, int i, um_loss_kind kind, const um_tensor *z) {
    um_tensor *t = um_lua_opt_tensor(L, i);
    if (!t || kind != UM_LOSS_CROSS_ENTROPY || t->dtype != UM_INT64) return t;
    return um_lua_core_labels(L, i, z->ndim == 2 ? z->size[1] : 0, z, um_loss_name(kind));
}

/* loss_forward(kind, logits, target | nil) -> per-example tensor (n) */
static int l_loss_forward(lua_State *L) {
    um_loss_kind kind = check_loss(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2), *t = core_target(L, 3, kind, z);
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_loss_forward(kind, z, t, slot)) return um_lua_raise(L, um_loss_name(kind));
    return 1;
}

/* loss_value(kind, logits, target | nil, "sum" | "mean") -> number */
static int l_loss_value(lua_State *L) {
    um_loss_kind kind = check_loss(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2), *t = core_target(L, 3, kind, z);
    um_reduction red = check_reduction(L, 4);
    double v = 0;
    um_tensor **work = um_lua_push_tensor_slot(L);
    if (um_loss_value(kind, z, t, red, &v, work)) return um_lua_raise(L, um_loss_name(kind));
    lua_pushnumber(L, v);
    return 1;
}

/* loss_backward(kind, logits, target | nil, reduction, scale, weights | nil [, out]) -> grad;
 * out (same shape as the logits, e.g. a view of a bigger gradient) receives a copy. */
static int l_loss_backward(lua_State *L) {
    um_loss_kind kind = check_loss(L, 1);
    um_tensor *z = um_lua_check_tensor(L, 2), *t = core_target(L, 3, kind, z);
    um_reduction red = check_reduction(L, 4);
    double scale = luaL_optnumber(L, 5, 1.0);
    um_tensor *w = um_lua_opt_tensor(L, 6), *out = um_lua_opt_tensor(L, 7);
    if (out && !um_same_shape(out, z)) {
        char a[64], b[64];
        return luaL_error(L, "%s: out is %s but the logits are %s", um_loss_name(kind), um_shape_str(out, a, sizeof a),
                          um_shape_str(z, b, sizeof b));
    }
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_loss_backward(kind, z, t, red, scale, w, slot)) return um_lua_raise(L, um_loss_name(kind));
    if (out) {
        if (um_copy_(out, *slot)) return um_lua_raise(L, um_loss_name(kind));
        lua_pop(L, 1);
        lua_pushvalue(L, 7);
    }
    return 1;
}

static const luaL_Reg module_methods[] = {
    {"forward", l_forward}, {"backward", l_backward}, {"backward_input", l_backward_input},
    {"output", l_output},
    {"train", l_train}, {"is_training", l_is_training}, {"zero_grad", l_zero_grad},
    {"type", l_type}, {"describe", l_describe}, {"num_children", l_num_children},
    {"child", l_child}, {"child_name", l_child_name}, {"named_tensors", l_named_tensors},
    {"num_elements", l_num_elements}, {"out_shape", l_out_shape}, {"kernel_paths", l_kernel_paths}, {"output_shape", l_output_shape},
    {"input_shape", l_input_shape}, {"to", l_to}, {"free", module_free}, {NULL, NULL}};

static const luaL_Reg nn_functions[] = {
    {"linear", l_linear}, {"conv2d", l_conv2d}, {"maxpool2d", l_maxpool2d}, {"avgpool2d", l_avgpool2d},
    {"global_avgpool", l_global_avgpool}, {"batchnorm2d", l_batchnorm2d}, {"relu", l_relu},
    {"flatten", l_flatten}, {"identity", l_identity}, {"channel_pad", l_channel_pad},
    {"sequential", l_sequential}, {"sequential_add", l_sequential_add}, {"residual", l_residual},
    {"is_module", l_is_module}, {"same", l_same}, {"loss_forward", l_loss_forward},
    {"loss_value", l_loss_value}, {"loss_backward", l_loss_backward}, {NULL, NULL}};

/* core.nn_core = {constructors, losses, methods = {...}, metatable = <Module metatable>};
 * umbra/nn.lua completes the metatable (__index, __tostring, __len). */
void um_lua_open_nn(lua_State *L, int module) {
    luaL_newmetatable(L, UM_MODULE_MT);
    lua_pushcfunction(L, module_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, module_free);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, "umbra.Module");
    lua_setfield(L, -2, "__name");
    int mt = lua_gettop(L);
    luaL_newlib(L, nn_functions);
    luaL_newlib(L, module_methods);
    lua_setfield(L, -2, "methods");
    lua_pushvalue(L, mt);
    lua_setfield(L, -2, "metatable");
    lua_setfield(L, module, "nn_core");
    lua_settop(L, mt - 1);
}
