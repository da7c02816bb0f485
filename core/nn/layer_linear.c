/* Linear (dense) layer: y = x W^T + b with x (n, in), W (out, in), b (out), through the
 * backend's gemm. Weights start N(0, 2/in) as the authors' dense layers (not truncated);
 * the bias starts at 0. A 4-D input must be flattened first (nn.Flatten). */
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
    int64_t in, out;
    int has_bias;
} linear_module;

static int linear_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    const linear_module *l = (const linear_module *)m;
    char s[64];
    if (ndim != 2)
        return um_fail(UM_EINVAL, "Linear: expected a 2-D input (batch, %lld), got %s; flatten images first",
                       (long long)l->in, um_sizes_str(ndim, in, s, sizeof s));
    if (in[1] != l->in)
        return um_fail(UM_EINVAL, "Linear: expected %lld input features, got %lld (input %s)", (long long)l->in,
                       (long long)in[1], um_sizes_str(ndim, in, s, sizeof s));
    *ondim = 2;
    out[0] = in[0];
    out[1] = l->out;
    return UM_OK;
}

static int linear_forward(um_module *m, um_tensor *x) {
    linear_module *l = (linear_module *)m;
    int64_t size[2];
    int nd, rc = linear_out_shape(m, x->ndim, x->size, &nd, size);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    rc = um_module_buffer(&m->output, 2, size, be);
    if (rc) return rc;
    rc = be->gemm(0, 1, size[0], l->out, l->in, 1.0f, um_f32(x), l->in, um_f32(m->params[0]), l->in, 0.0f,
                  um_f32(m->output), l->out);
    if (!rc && l->has_bias) rc = UM_NN_CALL(be, bias_add, m->output, m->params[1], size[0], l->out, 1);
    return rc;
}

static int linear_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    linear_module *l = (linear_module *)m;
    const um_backend *be = um_backend_of(x);
    const int64_t n = x->size[0];
    int rc = UM_OK;
    if (flags & UM_GRAD_PARAMS) {
        rc = be->gemm(1, 0, l->out, l->in, n, 1.0f, um_f32(gy), l->out, um_f32(x), l->in, 1.0f,
                      um_f32(m->grads[0]), l->in);
        if (!rc && l->has_bias) rc = UM_NN_CALL(be, bias_grad, gy, m->grads[1], n, l->out, 1);
        if (rc) return rc;
    }
    if (flags & UM_GRAD_INPUT) {
        rc = um_module_buffer(&m->grad_input, 2, x->size, be);
        if (!rc)
            rc = be->gemm(0, 0, n, l->in, l->out, 1.0f, um_f32(gy), l->out, um_f32(m->params[0]), l->in, 0.0f,
                          um_f32(m->grad_input), l->in);
    }
    return rc;
}

static void linear_describe(const um_module *m, char *buf, size_t n) {
    const linear_module *l = (const linear_module *)m;
    snprintf(buf, n, "Linear(%lld -> %lld%s)", (long long)l->in, (long long)l->out, l->has_bias ? "" : ", no bias");
}

/* |W| r for the radius of an interval bound (|W| in a temporary: bounds are not a hot loop). */
static int linear_abs(um_module *m, um_tensor *r, um_tensor **out) {
    linear_module *l = (linear_module *)m;
    const um_backend *be = um_backend_of(r);
    int64_t size[2] = {r->size[0], l->out};
    um_tensor *aw = NULL, *y = NULL;
    int rc = um_unary(&aw, UM_ABS, m->params[0]);
    if (!rc) rc = um_tensor_new(&y, UM_FLOAT32, 2, size, be);
    if (!rc) rc = be->gemm(0, 1, size[0], l->out, l->in, 1.0f, um_f32(r), l->in, um_f32(aw), l->in, 0.0f, um_f32(y), l->out);
    um_tensor_release(aw);
    if (rc) {
        um_tensor_release(y);
        return rc;
    }
    *out = y;
    return UM_OK;
}

/* |W|^T g into *gr, and sign(W) * (g^T r) added to the weight gradient (abs_backward). */
static int linear_abs_backward(um_module *m, um_tensor *r, um_tensor *g, um_tensor **gr) {
    linear_module *l = (linear_module *)m;
    const um_backend *be = um_backend_of(r);
    int64_t n = r->size[0], wsize[2] = {l->out, l->in};
    um_tensor *aw = NULL, *raw = NULL, *gx = NULL;
    int rc = um_tensor_new(&raw, UM_FLOAT32, 2, wsize, be);
    if (!rc) rc = be->gemm(1, 0, l->out, l->in, n, 1.0f, um_f32(g), l->out, um_f32(r), l->in, 0.0f, um_f32(raw), l->in);
    if (!rc) rc = um_bound_add_signed_grad(m, raw);
    if (!rc && gr) {
        rc = um_unary(&aw, UM_ABS, m->params[0]);
        if (!rc) rc = um_tensor_new(&gx, UM_FLOAT32, 2, r->size, be);
        if (!rc) rc = be->gemm(0, 0, n, l->in, l->out, 1.0f, um_f32(g), l->out, um_f32(aw), l->in, 0.0f, um_f32(gx), l->in);
    }
    um_tensor_release(aw);
    um_tensor_release(raw);
    if (rc) {
        um_tensor_release(gx);
        return rc;
    }
    if (gr) *gr = gx;
    return UM_OK;
}

static int linear_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    int64_t size[2];
    int nd, rc = linear_out_shape(m, lo->ndim, lo->size, &nd, size);
    return rc ? rc : um_bound_affine(m, lo, hi, linear_abs, lo_out, hi_out);
}

const um_module_ops um_linear_module_ops = {
    .type = "Linear",
    .out_shape = linear_out_shape,
    .forward = linear_forward,
    .backward = linear_backward,
    .describe = linear_describe,
    .bound = linear_bound,
    .abs_forward = linear_abs,
    .abs_backward = linear_abs_backward,
};

int um_linear_new(um_module **out, int64_t in_features, int64_t out_features, int bias, um_generator *g) {
    if (in_features < 1 || out_features < 1)
        return um_fail(UM_EINVAL, "Linear: feature counts must be positive, got %lld -> %lld",
                       (long long)in_features, (long long)out_features);
    if (!g) return um_fail(UM_EINVAL, "Linear: a generator is required to initialise the weights");
    um_module *m = NULL;
    um_tensor *w = NULL, *b = NULL;
    int64_t wsize[2] = {out_features, in_features};
    int rc = um_module_create(&m, sizeof(linear_module), &um_linear_module_ops);
    if (rc) return rc;
    linear_module *l = (linear_module *)m;
    l->in = in_features;
    l->out = out_features;
    l->has_bias = bias != 0;
    rc = um_tensor_new(&w, UM_FLOAT32, 2, wsize, NULL);
    if (rc) goto fail;
    um_fill_normal(g, um_f32(w), um_numel(w), 0.0f, (float)sqrt(2.0 / (double)in_features));
    rc = um_module_add_param(m, "weight", w);
    if (rc) goto fail;
    if (bias) {
        rc = um_tensor_zeros(&b, UM_FLOAT32, 1, &out_features, NULL);
        if (!rc) rc = um_module_add_param(m, "bias", b);
        if (rc) goto fail;
    }
    *out = m;
    return UM_OK;
fail:
    um_module_release(m);
    return rc;
}
