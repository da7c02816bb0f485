/* Synchronised batch norm: the training-mode statistics of the batch of all processes
 * (data parallel). Each process sums its part per channel, the reducer (set by core/dist/)
 * adds the parts up, and the normalisation itself runs as the evaluation-mode kernels with
 * the global mean and variance; the backward adds the global correction through the batch
 * statistics. Sums in double on this process; float32 on the wire. CPU tensors only. */
#include <math.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "nn/batchnorm_sync.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"

static um_batchnorm_reducer reducer;
static void *reducer_ctx;

void um_batchnorm_set_reducer(um_batchnorm_reducer reduce, void *ctx) {
    reducer = reduce;
    reducer_ctx = ctx;
}

int um_batchnorm_sync_on(void) { return reducer != NULL; }

static int check_host(const um_tensor *x, const um_tensor *gy) {
    if (!um_backend_of(x)->is_host)
        return um_fail(UM_ENOTIMPL, "BatchNorm2d: synchronised statistics run on CPU tensors only, got a %s tensor "
                       "(use per-process statistics on GPUs)", um_backend_of(x)->name);
    if (!um_is_contiguous(x) || (gy && !um_is_contiguous(gy)))
        return um_fail(UM_EINVAL, "BatchNorm2d: synchronised statistics need contiguous inputs and gradients");
    return UM_OK;
}

/* per channel: buf[ch] = sum over the batch of f(x - shift[ch]) (shift NULL: 0), square or not */
static void channel_sums(const float *x, const float *shift, int square, int64_t n, int64_t c, int64_t inner,
                         float *buf) {
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, sh = shift ? shift[ch] : 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *row = x + (i * c + ch) * inner;
            for (int64_t j = 0; j < inner; j++) {
                double d = (double)row[j] - sh;
                s += square ? d * d : d;
            }
        }
        buf[ch] = (float)s;
    }
}

int um_batchnorm_sync_forward(um_module *m, um_tensor *x, um_tensor **mean, um_tensor **var, double momentum,
                              double eps) {
    int rc = check_host(x, NULL);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    int64_t n = x->size[0], c = x->size[1], inner = n > 0 && c > 0 ? um_numel(x) / (n * c) : 1;
    if ((rc = um_tensor_ensure(mean, UM_FLOAT32, 1, &c, be)) || (rc = um_tensor_ensure(var, UM_FLOAT32, 1, &c, be)))
        return rc;
    float *buf = um_alloc((size_t)(c + 1) * sizeof(float));
    if (!buf) return UM_ENOMEM;
    /* two passes (mean, then squares about it): sum-of-squares minus square-of-sum
     * cancels in float32 */
    channel_sums(um_f32(x), NULL, 0, n, c, inner, buf);
    buf[c] = (float)(n * inner);
    rc = reducer(buf, c + 1, reducer_ctx);
    double count = buf[c];
    float *mu = um_f32(*mean), *v = um_f32(*var);
    for (int64_t ch = 0; !rc && ch < c; ch++) mu[ch] = (float)(buf[ch] / count);
    if (!rc) {
        channel_sums(um_f32(x), mu, 1, n, c, inner, buf);
        rc = reducer(buf, c, reducer_ctx);
    }
    for (int64_t ch = 0; !rc && ch < c; ch++) v[ch] = (float)(buf[ch] / count);
    um_dealloc(buf);
    if (rc) return rc;
    rc = UM_NN_CALL(be, batchnorm_forward_eval, x, m->params[0], m->params[1], *mean, *var, eps, m->output, n, c, inner);
    if (rc) return rc;
    float *rm = um_f32(m->buffers[0]), *rv = um_f32(m->buffers[1]);
    for (int64_t ch = 0; ch < c; ch++) {
        double unbiased = count > 1 ? (double)v[ch] * count / (count - 1) : v[ch];
        rm[ch] = (float)(momentum * rm[ch] + (1.0 - momentum) * mu[ch]);
        rv[ch] = (float)(momentum * rv[ch] + (1.0 - momentum) * unbiased);
    }
    return UM_OK;
}

int um_batchnorm_sync_backward(um_module *m, um_tensor *x, um_tensor *gy, const um_tensor *mean, const um_tensor *var,
                               double eps, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta) {
    int rc = check_host(x, gy);
    if (rc) return rc;
    const um_backend *be = um_backend_of(x);
    int64_t n = x->size[0], c = x->size[1], inner = n > 0 && c > 0 ? um_numel(x) / (n * c) : 1, two_c = 2 * c;
    um_tensor *sums = NULL, *sg = NULL, *sb = NULL;
    if ((rc = um_tensor_zeros(&sums, UM_FLOAT32, 1, &two_c, be))) return rc;
    if ((rc = um_narrow(&sg, sums, 0, 0, c)) || (rc = um_narrow(&sb, sums, 0, c, c))) goto done;
    /* the evaluation-mode backward: gx = gamma invstd gy, sg = sum gy xhat, sb = sum gy */
    rc = UM_NN_CALL(be, batchnorm_backward, x, gy, m->params[0], mean, var, eps, 0, gx, sg, sb, n, c, inner);
    if (rc) goto done;
    float *s = um_f32(sums);
    for (int64_t ch = 0; ch < c; ch++) {
        if (ggamma) um_f32(ggamma)[ch] += s[ch];
        if (gbeta) um_f32(gbeta)[ch] += s[c + ch];
    }
    float *buf = um_alloc((size_t)(two_c + 1) * sizeof(float));
    if (!buf) {
        rc = UM_ENOMEM;
        goto done;
    }
    memcpy(buf, s, (size_t)two_c * sizeof(float));
    buf[two_c] = (float)(n * inner);
    rc = reducer(buf, two_c + 1, reducer_ctx);
    if (!rc && gx) {
        /* minus the gradient through the batch statistics: gamma invstd / N (sum gy + xhat sum gy xhat) */
        const float *xp = um_f32(x), *mu = um_f32(mean), *v = um_f32(var), *gamma = um_f32(m->params[0]);
        float *gp = um_f32(gx);
        double count = buf[two_c];
        for (int64_t ch = 0; ch < c; ch++) {
            double invstd = 1.0 / sqrt((double)v[ch] + eps), k = gamma[ch] * invstd / count;
            double sum_gy = buf[c + ch], sum_gyx = buf[ch];
            for (int64_t i = 0; i < n; i++) {
                int64_t at = (i * c + ch) * inner;
                for (int64_t j = 0; j < inner; j++) {
                    double xhat = ((double)xp[at + j] - mu[ch]) * invstd;
                    gp[at + j] = (float)(gp[at + j] - k * (sum_gy + xhat * sum_gyx));
                }
            }
        }
    }
    um_dealloc(buf);
done:
    um_tensor_release(sg);
    um_tensor_release(sb);
    um_tensor_release(sums);
    return rc;
}
