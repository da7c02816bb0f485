/* Pooling layers: MaxPool2d and AvgPool2d (window, stride, `same` or `valid` padding in
 * TensorFlow's sense: padding cells are ignored, so avg-pool divides by the count of real
 * cells) and GlobalAvgPool ((n, c, h, w) -> (n, c), the mean over h and w). */
#include <stdio.h>
#include <string.h>
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"

typedef struct {
    um_module base;
    int is_max;
    int64_t kh, kw, sh, sw;
    um_padding padding;
} pool_module;

static int pool_geometry(const pool_module *p, int ndim, const int64_t *in, um_window2d *g) {
    const char *type = p->base.ops->type;
    char s[64];
    if (ndim != 4)
        return um_fail(UM_EINVAL, "%s: expected a 4-D input (batch, channels, height, width), got %s", type,
                       um_sizes_str(ndim, in, s, sizeof s));
    g->n = in[0];
    g->c = g->c_out = in[1];
    g->h = in[2];
    g->w = in[3];
    g->kh = p->kh;
    g->kw = p->kw;
    g->sh = p->sh;
    g->sw = p->sw;
    int rc = um_window_axis(type, "height", g->h, p->kh, p->sh, p->padding, 0, 0, &g->pad_top, &g->oh);
    if (!rc) rc = um_window_axis(type, "width", g->w, p->kw, p->sw, p->padding, 0, 0, &g->pad_left, &g->ow);
    return rc;
}

static int pool_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    um_window2d g;
    int rc = pool_geometry((const pool_module *)m, ndim, in, &g);
    if (rc) return rc;
    *ondim = 4;
    out[0] = g.n;
    out[1] = g.c;
    out[2] = g.oh;
    out[3] = g.ow;
    return UM_OK;
}

static int pool_forward(um_module *m, um_tensor *x) {
    pool_module *p = (pool_module *)m;
    um_window2d g;
    int rc = pool_geometry(p, x->ndim, x->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    int64_t size[4] = {g.n, g.c, g.oh, g.ow};
    rc = um_module_buffer(&m->output, 4, size, be);
    if (rc) return rc;
    return p->is_max ? UM_NN_CALL(be, maxpool2d_forward, &g, x, m->output) : UM_NN_CALL(be, avgpool2d_forward, &g, x, m->output);
}

static int pool_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    pool_module *p = (pool_module *)m;
    um_window2d g;
    if (!(flags & UM_GRAD_INPUT)) return UM_OK;
    int rc = pool_geometry(p, x->ndim, x->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    rc = um_module_buffer(&m->grad_input, 4, x->size, be);
    if (rc) return rc;
    return p->is_max ? UM_NN_CALL(be, maxpool2d_backward, &g, x, gy, m->grad_input)
                     : UM_NN_CALL(be, avgpool2d_backward, &g, gy, m->grad_input);
}

/* ReLU then MaxPool2d: the gradient at the ReLU's input in one pass over the pool's input
 * (the ReLU's output), instead of max-pool backward writing the gradient at the ReLU's
 * output and ReLU backward masking it in a second pass. The same arg-max and the same
 * numbers: ReLU's output at a maximum is > 0 exactly where its input is. */
static int maxpool_fold_backward(um_module *m, um_module *prev, um_tensor *x_prev, um_tensor *gy, int flags) {
    pool_module *p = (pool_module *)m;
    const um_backend *be = um_backend_of(gy);
    um_tensor *y = prev->output;   /* the ReLU's output, this pool's input */
    um_window2d g;
    (void)flags;   /* a ReLU has no parameters */
    if (prev->ops != &um_relu_module_ops || !um_nn_kernels(be)->maxpool2d_relu_backward) return UM_NOT_FOLDED;
    int rc = pool_geometry(p, y->ndim, y->size, &g);
    if (!rc) rc = um_module_buffer(&prev->grad_input, x_prev->ndim, x_prev->size, be);
    return rc ? rc : UM_NN_CALL(be, maxpool2d_relu_backward, &g, y, gy, prev->grad_input);
}

static void pool_describe(const um_module *m, char *buf, size_t n) {
    const pool_module *p = (const pool_module *)m;
    snprintf(buf, n, "%s(%lldx%lld, stride %lldx%lld, %s)", m->ops->type, (long long)p->kh, (long long)p->kw,
             (long long)p->sh, (long long)p->sw, p->padding == UM_PAD_SAME ? "same" : "valid");
}

static const um_module_ops maxpool_ops = {
    .type = "MaxPool2d",
    .out_shape = pool_out_shape,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .fold_backward = maxpool_fold_backward,
    .bound = um_bound_monotone,
};

static const um_module_ops avgpool_ops = {
    .type = "AvgPool2d",
    .out_shape = pool_out_shape,
    .forward = pool_forward,
    .backward = pool_backward,
    .describe = pool_describe,
    .bound = um_bound_monotone,
};

static int pool_new(um_module **out, const um_module_ops *ops, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                    um_padding padding) {
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1)
        return um_fail(UM_EINVAL, "%s: window and stride must be positive, got %lldx%lld stride %lldx%lld", ops->type,
                       (long long)kh, (long long)kw, (long long)sh, (long long)sw);
    if (padding != UM_PAD_SAME && padding != UM_PAD_VALID)
        return um_fail(UM_EINVAL, "%s: padding must be `same` or `valid`", ops->type);
    um_module *m = NULL;
    int rc = um_module_create(&m, sizeof(pool_module), ops);
    if (rc) return rc;
    pool_module *p = (pool_module *)m;
    p->is_max = ops == &maxpool_ops;
    p->kh = kh;
    p->kw = kw;
    p->sh = sh;
    p->sw = sw;
    p->padding = padding;
    *out = m;
    return UM_OK;
}

int um_maxpool2d_new(um_module **out, int64_t kh, int64_t kw, int64_t sh, int64_t sw, um_padding padding) {
    return pool_new(out, &maxpool_ops, kh, kw, sh, sw, padding);
}

int um_avgpool2d_new(um_module **out, int64_t kh, int64_t kw, int64_t sh, int64_t sw, um_padding padding) {
    return pool_new(out, &avgpool_ops, kh, kw, sh, sw, padding);
}

/* ---- global average pooling ---- */

static int gap_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    char s[64];
    if (ndim != 4)
        return um_fail(UM_EINVAL, "GlobalAvgPool: expected a 4-D input (batch, channels, height, width), got %s",
                       um_sizes_str(ndim, in, s, sizeof s));
    if (in[2] < 1 || in[3] < 1)
        return um_fail(UM_EINVAL, "GlobalAvgPool: empty spatial size in input %s", um_sizes_str(ndim, in, s, sizeof s));
    *ondim = 2;
    out[0] = in[0];
    out[1] = in[1];
    return UM_OK;
}

static int gap_forward(um_module *m, um_tensor *x) {
    int64_t size[UM_MAXDIM];
    int nd, rc = gap_out_shape(m, x->ndim, x->size, &nd, size);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    rc = um_module_buffer(&m->output, 2, size, be);
    if (rc) return rc;
    return UM_NN_CALL(be, mean_inner_forward, x, m->output, size[0] * size[1], x->size[2] * x->size[3]);
}

static int gap_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    if (!(flags & UM_GRAD_INPUT)) return UM_OK;
    const um_backend *be = um_backend_of(x);
    int rc = um_module_buffer(&m->grad_input, 4, x->size, be);
    if (rc) return rc;
    return UM_NN_CALL(be, mean_inner_backward, gy, m->grad_input, x->size[0] * x->size[1], x->size[2] * x->size[3]);
}

static const um_module_ops gap_ops = {
    .type = "GlobalAvgPool",
    .out_shape = gap_out_shape,
    .forward = gap_forward,
    .backward = gap_backward,
    .bound = um_bound_monotone,
};

int um_global_avgpool_new(um_module **out) {
    return um_module_create(out, sizeof(um_module), &gap_ops);
}
