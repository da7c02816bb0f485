/* Parameter-free layers: ReLU, Flatten ((n, ...) -> (n, rest), a view of its input),
 * Identity (a view of its input) and ChannelPad (zero channels before and after, the
 * ResNet shortcut when the width grows). */
#include <stdio.h>
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"

static int same_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    (void)m;
    *ondim = ndim;
    for (int d = 0; d < ndim; d++) out[d] = in[d];
    return UM_OK;
}

/* ---- ReLU ---- */

static int relu_forward(um_module *m, um_tensor *x) {
    const um_backend *be = um_backend_of(x);
    int rc = um_module_buffer(&m->output, x->ndim, x->size, be);
    return rc ? rc : UM_NN_CALL(be, relu_forward, x, m->output);
}

static int relu_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    if (!(flags & UM_GRAD_INPUT)) return UM_OK;
    const um_backend *be = um_backend_of(x);
    int rc = um_module_buffer(&m->grad_input, x->ndim, x->size, be);
    return rc ? rc : UM_NN_CALL(be, relu_backward, x, gy, m->grad_input);
}

const um_module_ops um_relu_module_ops = {
    .type = "ReLU", .out_shape = same_out_shape, .forward = relu_forward, .backward = relu_backward,
    .fold_backward = um_batchnorm_relu_fold_backward, .bound = um_bound_monotone,
};

int um_relu_new(um_module **out) { return um_module_create(out, sizeof(um_module), &um_relu_module_ops); }

/* Keep the previous view when it already looks at the same memory with the same shape,
 * so a warm training step allocates nothing. */
static int view_into(um_tensor **slot, um_tensor *src, int ndim, const int64_t *size) {
    um_tensor *v = *slot;
    if (v && v->refcount == 1 && v->storage == src->storage && v->offset == src->offset && v->ndim == ndim) {
        int same = 1;
        for (int d = 0; d < ndim; d++) same &= v->size[d] == size[d];
        if (same) return UM_OK;
    }
    um_tensor *nv = NULL;
    int rc = um_view(&nv, src, ndim, size);
    if (rc) return rc;
    um_tensor_release(*slot);
    *slot = nv;
    return UM_OK;
}

/* ---- Identity ---- */

/* The output is a view of x rather than x itself: holding x would make the layer
 * before (whose buffer x is) reallocate on every step. */
static int identity_forward(um_module *m, um_tensor *x) {
    return view_into(&m->output, x, x->ndim, x->size);
}

static int identity_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    (void)x;
    return (flags & UM_GRAD_INPUT) ? view_into(&m->grad_input, gy, gy->ndim, gy->size) : UM_OK;
}

static const um_module_ops identity_ops = {
    .type = "Identity", .out_shape = same_out_shape, .forward = identity_forward, .backward = identity_backward,
    .aliases = 1, .bound = um_bound_monotone,
};

int um_identity_new(um_module **out) { return um_module_create(out, sizeof(um_module), &identity_ops); }

/* ---- Flatten ---- */

static int flatten_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    (void)m;
    if (ndim < 1) return um_fail(UM_EINVAL, "Flatten: expected an input with a batch dimension, got a scalar");
    int64_t rest = 1;
    for (int d = 1; d < ndim; d++) rest *= in[d];
    *ondim = 2;
    out[0] = in[0];
    out[1] = rest;
    return UM_OK;
}

static int flatten_forward(um_module *m, um_tensor *x) {
    int64_t size[2];
    int nd, rc = flatten_out_shape(m, x->ndim, x->size, &nd, size);
    return rc ? rc : view_into(&m->output, x, 2, size);
}

static int flatten_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    if (!(flags & UM_GRAD_INPUT)) return UM_OK;
    return view_into(&m->grad_input, gy, x->ndim, x->size);
}

static const um_module_ops flatten_ops = {
    .type = "Flatten", .out_shape = flatten_out_shape, .forward = flatten_forward, .backward = flatten_backward,
    .aliases = 1, .bound = um_bound_monotone,
};

int um_flatten_new(um_module **out) { return um_module_create(out, sizeof(um_module), &flatten_ops); }

/* ---- ChannelPad ---- */

typedef struct {
    um_module base;
    int64_t before, after;
} pad_module;

static int pad_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    const pad_module *p = (const pad_module *)m;
    char s[64];
    if (ndim < 2)
        return um_fail(UM_EINVAL, "ChannelPad: expected an input (batch, channels, ...), got %s",
                       um_sizes_str(ndim, in, s, sizeof s));
    *ondim = ndim;
    for (int d = 0; d < ndim; d++) out[d] = in[d];
    out[1] = in[1] + p->before + p->after;
    return UM_OK;
}

static int64_t inner_size(const um_tensor *x) {
    int64_t inner = 1;
    for (int d = 2; d < x->ndim; d++) inner *= x->size[d];
    return inner;
}

static int pad_forward(um_module *m, um_tensor *x) {
    pad_module *p = (pad_module *)m;
    int64_t size[UM_MAXDIM];
    int nd, rc = pad_out_shape(m, x->ndim, x->size, &nd, size);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    rc = um_module_buffer(&m->output, nd, size, be);
    return rc ? rc
              : UM_NN_CALL(be, channel_pad_forward, x, m->output, x->size[0], x->size[1], inner_size(x), p->before, p->after);
}

static int pad_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    pad_module *p = (pad_module *)m;
    if (!(flags & UM_GRAD_INPUT)) return UM_OK;
    const um_backend *be = um_backend_of(x);
    int rc = um_module_buffer(&m->grad_input, x->ndim, x->size, be);
    return rc ? rc
              : UM_NN_CALL(be, channel_pad_backward, gy, m->grad_input, x->size[0], x->size[1], inner_size(x), p->before,
                                             p->after);
}

static void pad_describe(const um_module *m, char *buf, size_t n) {
    const pad_module *p = (const pad_module *)m;
    snprintf(buf, n, "ChannelPad(%lld before, %lld after)", (long long)p->before, (long long)p->after);
}

static const um_module_ops pad_ops = {
    .type = "ChannelPad",
    .out_shape = pad_out_shape,
    .forward = pad_forward,
    .backward = pad_backward,
    .describe = pad_describe,
    .bound = um_bound_monotone,
};

int um_channel_pad_new(um_module **out, int64_t before, int64_t after) {
    if (before < 0 || after < 0)
        return um_fail(UM_EINVAL, "ChannelPad: channel counts must not be negative, got %lld and %lld",
                       (long long)before, (long long)after);
    um_module *m = NULL;
    int rc = um_module_create(&m, sizeof(pad_module), &pad_ops);
    if (rc) return rc;
    ((pad_module *)m)->before = before;
    ((pad_module *)m)->after = after;
    *out = m;
    return UM_OK;
}
