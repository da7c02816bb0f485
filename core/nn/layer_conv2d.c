/* Conv2d layer: validates shapes, resolves padding (explicit per side, VALID, or
 * TensorFlow's SAME, asymmetric at stride 2) into a um_window2d, and calls the
 * backend's convolution kernels with a work buffer the module keeps. Weights start
 * truncated normal with sigma = sqrt(2/(kh*kw*c_in)), as the authors' He init. */
#include <math.h>
#include <stdio.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"
#include "ops.h"

typedef struct {
    um_module base;
    um_conv2d_config cfg;
    um_tensor *work;
} conv_module;

int64_t um_same_padding(int64_t in, int64_t k, int64_t s, int64_t *before, int64_t *after) {
    int64_t out = (in + s - 1) / s;
    int64_t total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
    return out;
}

int um_window_axis(const char *type, const char *axis, int64_t in, int64_t k, int64_t s, um_padding mode,
                   int64_t pad_before, int64_t pad_after, int64_t *before, int64_t *out) {
    int64_t after;
    switch (mode) {
    case UM_PAD_SAME:
        *out = um_same_padding(in, k, s, before, &after);
        return UM_OK;
    case UM_PAD_VALID:
        pad_before = pad_after = 0;
        break;
    case UM_PAD_EXPLICIT:
        break;
    }
    if (in + pad_before + pad_after < k)
        return um_fail(UM_EINVAL, "%s: input %s %lld (padded %lld) is smaller than the window %lld", type, axis,
                       (long long)in, (long long)(in + pad_before + pad_after), (long long)k);
    *before = pad_before;
    *out = (in + pad_before + pad_after - k) / s + 1;
    return UM_OK;
}

static int conv_geometry(const conv_module *c, int ndim, const int64_t *in, um_window2d *g) {
    const um_conv2d_config *k = &c->cfg;
    char s[64];
    if (ndim != 4)
        return um_fail(UM_EINVAL, "Conv2d: expected a 4-D input (batch, %lld, height, width), got %s",
                       (long long)k->c_in, um_sizes_str(ndim, in, s, sizeof s));
    if (in[1] != k->c_in)
        return um_fail(UM_EINVAL, "Conv2d: expected %lld input channels, got %lld (input %s)", (long long)k->c_in,
                       (long long)in[1], um_sizes_str(ndim, in, s, sizeof s));
    g->n = in[0];
    g->c = in[1];
    g->h = in[2];
    g->w = in[3];
    g->c_out = k->c_out;
    g->kh = k->kh;
    g->kw = k->kw;
    g->sh = k->sh;
    g->sw = k->sw;
    int rc = um_window_axis("Conv2d", "height", g->h, k->kh, k->sh, k->padding, k->pad[0], k->pad[1],
                            &g->pad_top, &g->oh);
    if (!rc)
        rc = um_window_axis("Conv2d", "width", g->w, k->kw, k->sw, k->padding, k->pad[2], k->pad[3],
                            &g->pad_left, &g->ow);
    return rc;
}

static int conv_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    um_window2d g;
    int rc = conv_geometry((const conv_module *)m, ndim, in, &g);
    if (rc) return rc;
    *ondim = 4;
    out[0] = g.n;
    out[1] = g.c_out;
    out[2] = g.oh;
    out[3] = g.ow;
    return UM_OK;
}

/* The work buffer only grows: its size depends on the spatial shape and thread count. */
static int ensure_work(conv_module *c, const um_backend *be, const um_window2d *g) {
    if (!um_nn_kernels(be)->conv2d_workspace) return um_kernel_missing(be, "conv2d_workspace");
    int64_t need = um_nn_kernels(be)->conv2d_workspace(g);
    if (need < 1) need = 1;
    if (c->work && um_numel(c->work) >= need && um_backend_of(c->work) == be) return UM_OK;
    um_tensor_release(c->work);
    c->work = NULL;
    return um_tensor_new(&c->work, UM_FLOAT32, 1, &need, be);
}

static int conv_forward(um_module *m, um_tensor *x) {
    conv_module *c = (conv_module *)m;
    um_window2d g;
    int rc = conv_geometry(c, x->ndim, x->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    int64_t size[4] = {g.n, g.c_out, g.oh, g.ow};
    rc = um_module_buffer(&m->output, 4, size, be);
    if (!rc) rc = ensure_work(c, be, &g);
    if (!rc) rc = UM_NN_CALL(be, conv2d_forward, &g, x, m->params[0], c->cfg.bias ? m->params[1] : NULL, m->output, c->work);
    return rc;
}

static int conv_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    conv_module *c = (conv_module *)m;
    um_window2d g;
    int rc = conv_geometry(c, x->ndim, x->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    if (flags & UM_GRAD_INPUT) rc = um_module_buffer(&m->grad_input, 4, x->size, be);
    if (!rc) rc = ensure_work(c, be, &g);
    if (rc) return rc;
    int params = (flags & UM_GRAD_PARAMS) != 0;
    return UM_NN_CALL(be, conv2d_backward, &g, x, gy, m->params[0], (flags & UM_GRAD_INPUT) ? m->grad_input : NULL,
                                   params ? m->grads[0] : NULL, params && c->cfg.bias ? m->grads[1] : NULL,
                                   c->work);
}

static void conv_describe(const um_module *m, char *buf, size_t n) {
    const um_conv2d_config *k = &((const conv_module *)m)->cfg;
    char pad[64];
    if (k->padding == UM_PAD_SAME) snprintf(pad, sizeof pad, "same");
    else if (k->padding == UM_PAD_VALID) snprintf(pad, sizeof pad, "valid");
    else
        snprintf(pad, sizeof pad, "pad %lld,%lld,%lld,%lld", (long long)k->pad[0], (long long)k->pad[1],
                 (long long)k->pad[2], (long long)k->pad[3]);
    char stride[32] = "";
    if (k->sh != 1 || k->sw != 1) {
        if (k->sh == k->sw) snprintf(stride, sizeof stride, ", stride %lld", (long long)k->sh);
        else snprintf(stride, sizeof stride, ", stride %lldx%lld", (long long)k->sh, (long long)k->sw);
    }
    snprintf(buf, n, "Conv2d(%lld -> %lld, %lldx%lld%s, %s%s)", (long long)k->c_in, (long long)k->c_out,
             (long long)k->kh, (long long)k->kw, stride, pad, k->bias ? ", bias" : "");
}

static void conv_destroy(um_module *m) { um_tensor_release(((conv_module *)m)->work); }

/* |W| * r (no bias) for the radius of an interval bound, same padding and stride. */
static int conv_abs(um_module *m, um_tensor *r, um_tensor **out) {
    conv_module *c = (conv_module *)m;
    um_window2d g;
    int rc = conv_geometry(c, r->ndim, r->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(r);
    int64_t size[4] = {g.n, g.c_out, g.oh, g.ow};
    um_tensor *aw = NULL, *y = NULL;
    rc = um_unary(&aw, UM_ABS, m->params[0]);
    if (!rc) rc = um_tensor_new(&y, UM_FLOAT32, 4, size, be);
    if (!rc) rc = ensure_work(c, be, &g);
    if (!rc) rc = UM_NN_CALL(be, conv2d_forward, &g, r, aw, NULL, y, c->work);
    um_tensor_release(aw);
    if (rc) {
        um_tensor_release(y);
        return rc;
    }
    *out = y;
    return UM_OK;
}

/* |W|^T g (the input gradient of the |W| convolution) into *gr, and sign(W) times the
 * weight gradient of (r, g) added to the weight gradient (abs_backward). */
static int conv_abs_backward(um_module *m, um_tensor *r, um_tensor *gy, um_tensor **gr) {
    conv_module *c = (conv_module *)m;
    um_window2d g;
    int rc = conv_geometry(c, r->ndim, r->size, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(r);
    um_tensor *aw = NULL, *raw = NULL, *gx = NULL;
    rc = um_unary(&aw, UM_ABS, m->params[0]);
    if (!rc) rc = um_tensor_zeros(&raw, UM_FLOAT32, 4, m->params[0]->size, be);
    if (!rc && gr) rc = um_tensor_new(&gx, UM_FLOAT32, 4, r->size, be);
    if (!rc) rc = ensure_work(c, be, &g);
    if (!rc) rc = UM_NN_CALL(be, conv2d_backward, &g, r, gy, aw, gx, raw, NULL, c->work);
    if (!rc) rc = um_bound_add_signed_grad(m, raw);
    um_tensor_release(aw);
    um_tensor_release(raw);
    if (rc) {
        um_tensor_release(gx);
        return rc;
    }
    if (gr) *gr = gx;
    return UM_OK;
}

static int conv_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    return um_bound_affine(m, lo, hi, conv_abs, lo_out, hi_out);
}

static const um_module_ops conv_ops = {
    .type = "Conv2d",
    .out_shape = conv_out_shape,
    .forward = conv_forward,
    .backward = conv_backward,
    .describe = conv_describe,
    .destroy = conv_destroy,
    .bound = conv_bound,
    .abs_forward = conv_abs,
    .abs_backward = conv_abs_backward,
};

int um_conv2d_path(const um_module *m, int ndim, const int64_t *in, int input_grad, const char **name) {
    if (m->ops != &conv_ops) return um_fail(UM_EINVAL, "kernel_paths: expected a Conv2d, got a %s", m->ops->type);
    um_window2d g;
    int rc = conv_geometry((const conv_module *)m, ndim, in, &g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(m->params[0]);
    *name = um_nn_kernels(be)->conv2d_path ? um_nn_kernels(be)->conv2d_path(&g, input_grad) : "unknown";
    return UM_OK;
}

int um_conv2d_new(um_module **out, const um_conv2d_config *cfg, um_generator *g) {
    um_conv2d_config k = *cfg;
    if (k.sh == 0) k.sh = 1;
    if (k.sw == 0) k.sw = 1;
    if (k.c_in < 1 || k.c_out < 1 || k.kh < 1 || k.kw < 1 || k.sh < 1 || k.sw < 1)
        return um_fail(UM_EINVAL, "Conv2d: channels, kernel and stride must be positive (got %lld -> %lld, %lldx%lld, "
                       "stride %lldx%lld)", (long long)k.c_in, (long long)k.c_out, (long long)k.kh, (long long)k.kw,
                       (long long)k.sh, (long long)k.sw);
    if (k.padding != UM_PAD_EXPLICIT && k.padding != UM_PAD_SAME && k.padding != UM_PAD_VALID)
        return um_fail(UM_EINVAL, "Conv2d: unknown padding mode %d", (int)k.padding);
    for (int i = 0; i < 4; i++)
        if (k.padding == UM_PAD_EXPLICIT && k.pad[i] < 0)
            return um_fail(UM_EINVAL, "Conv2d: padding must not be negative, got %lld", (long long)k.pad[i]);
    if (!g) return um_fail(UM_EINVAL, "Conv2d: a generator is required to initialise the weights");
    um_module *m = NULL;
    um_tensor *w = NULL, *b = NULL;
    int64_t wsize[4] = {k.c_out, k.c_in, k.kh, k.kw};
    int rc = um_module_create(&m, sizeof(conv_module), &conv_ops);
    if (rc) return rc;
    ((conv_module *)m)->cfg = k;
    rc = um_tensor_new(&w, UM_FLOAT32, 4, wsize, NULL);
    if (rc) goto fail;
    um_fill_truncated_normal(g, um_f32(w), um_numel(w), 0.0f, (float)sqrt(2.0 / (double)(k.kh * k.kw * k.c_in)));
    rc = um_module_add_param(m, "weight", w);
    if (rc) goto fail;
    if (k.bias) {
        rc = um_tensor_zeros(&b, UM_FLOAT32, 1, &k.c_out, NULL);
        if (!rc) rc = um_module_add_param(m, "bias", b);
        if (rc) goto fail;
    }
    *out = m;
    return UM_OK;
fail:
    um_module_release(m);
    return rc;
}
