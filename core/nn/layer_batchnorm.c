/* BatchNorm2d: per-channel normalisation of (n, c, ...) inputs. Training mode uses the
 * batch statistics and updates the running ones in TF's convention (running =
 * momentum*running + (1-momentum)*batch, unbiased variance, see core/cpu/batchnorm.c);
 * evaluation mode uses the running statistics. Parameters weight (gamma) and bias (beta);
 * buffers running_mean and running_var. With a reducer set (um_batchnorm_set_reducer) the
 * training-mode statistics are those of all processes' batches (batchnorm_sync.c). */
#include <stdio.h>
#include <string.h>
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"
#include "ops.h"

typedef struct {
    um_module base;
    int64_t channels;
    double momentum, eps;
    int fwd_training;              /* mode of the last forward, which backward must match */
    um_tensor *save_mean, *save_invstd;
    um_tensor *save_var;           /* synchronised statistics: the global batch variance */
    int fwd_synced;
} bn_module;

#include "nn/batchnorm_sync.h"

static int bn_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    const bn_module *b = (const bn_module *)m;
    char s[64];
    if (ndim < 2)
        return um_fail(UM_EINVAL, "BatchNorm2d: expected an input (batch, %lld, ...), got %s", (long long)b->channels,
                       um_sizes_str(ndim, in, s, sizeof s));
    if (in[1] != b->channels)
        return um_fail(UM_EINVAL, "BatchNorm2d: expected %lld channels, got %lld (input %s)", (long long)b->channels,
                       (long long)in[1], um_sizes_str(ndim, in, s, sizeof s));
    *ondim = ndim;
    for (int d = 0; d < ndim; d++) out[d] = in[d];
    return UM_OK;
}

static int64_t inner_size(const um_tensor *x) {
    int64_t inner = 1;
    for (int d = 2; d < x->ndim; d++) inner *= x->size[d];
    return inner;
}

static int bn_forward(um_module *m, um_tensor *x) {
    bn_module *b = (bn_module *)m;
    int64_t size[UM_MAXDIM];
    int nd, rc = bn_out_shape(m, x->ndim, x->size, &nd, size);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    const int64_t n = x->size[0], c = b->channels, inner = inner_size(x);
    rc = um_module_buffer(&m->output, nd, size, be);
    if (rc) return rc;
    b->fwd_training = m->training;
    b->fwd_synced = m->training && um_batchnorm_sync_on();
    if (b->fwd_synced) return um_batchnorm_sync_forward(m, x, &b->save_mean, &b->save_var, b->momentum, b->eps);
    if (!m->training)
        return UM_NN_CALL(be, batchnorm_forward_eval, x, m->params[0], m->params[1], m->buffers[0], m->buffers[1], b->eps,
                                              m->output, n, c, inner);
    rc = um_tensor_ensure(&b->save_mean, UM_FLOAT32, 1, &c, be);
    if (!rc) rc = um_tensor_ensure(&b->save_invstd, UM_FLOAT32, 1, &c, be);
    if (rc) return rc;
    return UM_NN_CALL(be, batchnorm_forward_train, x, m->params[0], m->params[1], m->output, b->save_mean, b->save_invstd,
                                           m->buffers[0], m->buffers[1], b->momentum, b->eps, n, c, inner);
}

/* The backward of the batch norm, of (y > 0 ? gy : 0) when relu (the ReLU after it) is
 * folded in, y the batch norm's output. */
static int bn_backward_masked(um_module *m, um_tensor *x, int relu, um_tensor *gy, int flags) {
    bn_module *b = (bn_module *)m;
    const um_backend *be = um_backend_of(x);
    const int64_t n = x->size[0], c = b->channels, inner = inner_size(x);
    int rc = UM_OK;
    if (flags & UM_GRAD_INPUT) rc = um_module_buffer(&m->grad_input, x->ndim, x->size, be);
    if (rc) return rc;
    int params = (flags & UM_GRAD_PARAMS) != 0;
    const um_tensor *sa = b->fwd_training ? b->save_mean : m->buffers[0];
    const um_tensor *sb = b->fwd_training ? b->save_invstd : m->buffers[1];
    um_tensor *gx = (flags & UM_GRAD_INPUT) ? m->grad_input : NULL;
    um_tensor *gg = params ? m->grads[0] : NULL, *gb = params ? m->grads[1] : NULL;
    if (b->fwd_synced && !relu) return um_batchnorm_sync_backward(m, x, gy, b->save_mean, b->save_var, b->eps, gx, gg, gb);
    um_tensor *add = m->grad_addend;
    if (relu && add && gx && !params && !b->fwd_training && um_nn_kernels(be)->batchnorm_relu_backward_eval_add &&
        um_same_shape(add, x) && um_backend_of(add) == be && add->storage != gx->storage) {
        m->grad_addend = NULL;   /* taken: the parent adds nothing */
        return UM_NN_CALL(be, batchnorm_relu_backward_eval_add, x, gy, add, m->params[0], m->params[1],
                          m->buffers[0], m->buffers[1], b->eps, gx, n, c, inner);
    }
    if (relu)
        return UM_NN_CALL(be, batchnorm_relu_backward, x, gy, m->params[0], m->params[1], sa, sb, b->eps, b->fwd_training,
                                               gx, gg, gb, n, c, inner);
    return UM_NN_CALL(be, batchnorm_backward, x, gy, m->params[0], sa, sb, b->eps, b->fwd_training, gx, gg, gb, n, c,
                                      inner);
}

static int bn_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    return bn_backward_masked(m, x, 0, gy, flags);
}

int um_batchnorm_relu_fold_backward(um_module *relu, um_module *bn, um_tensor *x, um_tensor *gy, int flags) {
    if (bn->ops != &um_batchnorm2d_module_ops || !um_nn_kernels(um_backend_of(gy))->batchnorm_relu_backward ||
        ((bn_module *)bn)->fwd_synced)
        return UM_NOT_FOLDED;
    return bn_backward_masked(bn, x, 1, gy, flags);
}

static void bn_describe(const um_module *m, char *buf, size_t n) {
    const bn_module *b = (const bn_module *)m;
    snprintf(buf, n, "BatchNorm2d(%lld, momentum %g, eps %g)", (long long)b->channels, b->momentum, b->eps);
}

static void bn_destroy(um_module *m) {
    bn_module *b = (bn_module *)m;
    um_tensor_release(b->save_mean);
    um_tensor_release(b->save_invstd);
    um_tensor_release(b->save_var);
}

/* |gamma / sqrt(running_var + eps)| * r per channel: the radius of an interval bound. */
static int bn_abs(um_module *m, um_tensor *r, um_tensor **out) {
    bn_module *b = (bn_module *)m;
    int64_t shape[UM_MAXDIM];
    for (int d = 0; d < r->ndim; d++) shape[d] = d == 1 ? b->channels : 1;
    um_tensor *v = NULL, *sd = NULL, *s = NULL, *as = NULL, *view = NULL;
    int rc = um_binary_scalar(&v, UM_ADD, m->buffers[1], b->eps, 0);
    if (!rc) rc = um_unary(&sd, UM_SQRT, v);
    if (!rc) rc = um_binary(&s, UM_DIV, m->params[0], sd);
    if (!rc) rc = um_unary(&as, UM_ABS, s);
    if (!rc) rc = um_view(&view, as, r->ndim, shape);
    if (!rc) rc = um_binary(out, UM_MUL, r, view);
    um_tensor_release(v);
    um_tensor_release(sd);
    um_tensor_release(s);
    um_tensor_release(as);
    um_tensor_release(view);
    return rc;
}

static int bn_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    if (m->training)
        return um_fail(UM_EINVAL, "BatchNorm2d: interval bounds need evaluation mode (running statistics)");
    int64_t size[UM_MAXDIM];
    int nd, rc = bn_out_shape(m, lo->ndim, lo->size, &nd, size);
    return rc ? rc : um_bound_affine(m, lo, hi, bn_abs, lo_out, hi_out);
}

const um_module_ops um_batchnorm2d_module_ops = {
    .type = "BatchNorm2d",
    .out_shape = bn_out_shape,
    .forward = bn_forward,
    .backward = bn_backward,
    .describe = bn_describe,
    .destroy = bn_destroy,
    .bound = bn_bound,
};

static int add_filled(um_module *m, const char *name, int64_t c, double value, int buffer) {
    um_tensor *t = NULL;
    int rc = um_tensor_new(&t, UM_FLOAT32, 1, &c, NULL);
    if (rc) return rc;
    rc = um_fill_(t, value);
    if (rc) {
        um_tensor_release(t);
        return rc;
    }
    return buffer ? um_module_add_buffer(m, name, t) : um_module_add_param(m, name, t);
}

int um_batchnorm2d_new(um_module **out, int64_t channels, double momentum, double eps) {
    if (channels < 1) return um_fail(UM_EINVAL, "BatchNorm2d: channels must be positive, got %lld", (long long)channels);
    if (!(momentum >= 0.0 && momentum <= 1.0))
        return um_fail(UM_EINVAL, "BatchNorm2d: momentum must lie in [0, 1] (TF convention, e.g. 0.99), got %g", momentum);
    if (!(eps > 0.0)) return um_fail(UM_EINVAL, "BatchNorm2d: eps must be positive, got %g", eps);
    um_module *m = NULL;
    int rc = um_module_create(&m, sizeof(bn_module), &um_batchnorm2d_module_ops);
    if (rc) return rc;
    bn_module *b = (bn_module *)m;
    b->channels = channels;
    b->momentum = momentum;
    b->eps = eps;
    rc = add_filled(m, "weight", channels, 1.0, 0);
    if (!rc) rc = add_filled(m, "bias", channels, 0.0, 0);
    if (!rc) rc = add_filled(m, "running_mean", channels, 0.0, 1);
    if (!rc) rc = add_filled(m, "running_var", channels, 1.0, 1);
    if (rc) {
        um_module_release(m);
        return rc;
    }
    *out = m;
    return UM_OK;
}
