/* CPU batch normalisation over x viewed as (n, c, inner), OpenMP over channels. The
 * element loops carry `omp simd`: GCC's -O2 vectoriser took no loop that needs a
 * run-time aliasing check before the Makefile asked for its dynamic cost model, and the
 * scalar eval-mode backward was a visible share of ResNetSmall's input gradient
 * (docs/performance.md §5); the pragma keeps them vectorised whatever the flags.
 * Channel statistics: one shifted pass, float within a row and double across rows.
 * Running statistics follow TensorFlow: running = momentum*running + (1-momentum)*batch,
 * and TF's fused kernel feeds the Bessel-corrected (unbiased) batch variance into
 * moving_variance while normalising with the biased one; umbra does the same. */
#include <math.h>
#include "error.h"
#include "cpu/nn_cpu.h"

/* y = x*scale + shift per channel. The forward and the ReLU-folded backward, which finds
 * where the ReLU after the batch norm passed gradient (y > 0) from x rather than reading
 * the ReLU's output, compute it with these same float operations, so the two agree to
 * the bit (an explicit fused multiply-add where the target has a fast one, as
 * contraction left to the compiler could differ between the loops; without one there is
 * nothing to contract into). */
typedef struct { float scale, shift; } bn_affine;

static inline float bn_apply(float x, bn_affine a) {
#ifdef __FP_FAST_FMAF
    return fmaf(x, a.scale, a.shift);
#else
    return x * a.scale + a.shift;
#endif
}

/* training mode: from the saved (float) batch mean and 1/sqrt(var + eps) */
static inline bn_affine bn_train_affine(float gamma, float beta, float mean, float invstd) {
    const double k = (double)gamma * invstd;
    return (bn_affine){(float)k, (float)((double)beta - (double)mean * k)};
}

/* evaluation mode: from the running mean and variance */
static inline bn_affine bn_eval_affine(float gamma, float beta, float mean, float var, double eps) {
    const double k = (double)gamma / sqrt((double)var + eps);
    return (bn_affine){(float)k, (float)((double)beta - (double)mean * k)};
}

int um_cpu_batchnorm_forward_train(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                   um_tensor *y, um_tensor *save_mean, um_tensor *save_invstd,
                                   um_tensor *running_mean, um_tensor *running_var,
                                   double momentum, double eps, int64_t n, int64_t c, int64_t inner) {
    const float *xp = um_f32(x), *gp = um_f32(gamma), *bp = um_f32(beta);
    float *yp = um_f32(y), *mp = um_f32(save_mean), *sp = um_f32(save_invstd);
    float *rm = running_mean ? um_f32(running_mean) : NULL;
    float *rv = running_var ? um_f32(running_var) : NULL;
    const int64_t count = n * inner;
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        /* One pass with sums shifted by the channel's first value, which keeps the
         * variance accurate when the mean is large against the spread. */
        const float shift0 = xp[ch * inner];
        double s = 0.0, ss = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const float *row = xp + (i * c + ch) * inner;
            float fs = 0.0f, fss = 0.0f;   /* float within a row (vectorises), double across rows */
#pragma omp simd reduction(+ : fs, fss)
            for (int64_t j = 0; j < inner; j++) {
                float d = row[j] - shift0;
                fs += d; fss += d * d;
            }
            s += fs; ss += fss;
        }
        double dm = s / (double)count;
        double mean = shift0 + dm;
        double var = ss / (double)count - dm * dm;
        if (var < 0.0) var = 0.0;
        double invstd = 1.0 / sqrt(var + eps);
        mp[ch] = (float)mean;
        sp[ch] = (float)invstd;   /* y below from these floats, as the folded backward */
        if (rm) rm[ch] = (float)(momentum * rm[ch] + (1.0 - momentum) * mean);
        if (rv) {
            double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
            rv[ch] = (float)(momentum * rv[ch] + (1.0 - momentum) * unbiased);
        }
        const bn_affine a = bn_train_affine(gp[ch], bp[ch], mp[ch], sp[ch]);
        for (int64_t i = 0; i < n; i++) {
            const float *row = xp + (i * c + ch) * inner;
            float *out = yp + (i * c + ch) * inner;
#pragma omp simd
            for (int64_t j = 0; j < inner; j++) out[j] = bn_apply(row[j], a);
        }
    }
    return UM_OK;
}

int um_cpu_batchnorm_forward_eval(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                  const um_tensor *running_mean, const um_tensor *running_var, double eps,
                                  um_tensor *y, int64_t n, int64_t c, int64_t inner) {
    const float *xp = um_f32(x), *gp = um_f32(gamma), *bp = um_f32(beta);
    const float *rm = um_f32(running_mean), *rv = um_f32(running_var);
    float *yp = um_f32(y);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const bn_affine a = bn_eval_affine(gp[ch], bp[ch], rm[ch], rv[ch], eps);
            const float *row = xp + (i * c + ch) * inner;
            float *out = yp + (i * c + ch) * inner;
#pragma omp simd
            for (int64_t j = 0; j < inner; j++) out[j] = bn_apply(row[j], a);
        }
    return UM_OK;
}

/* m > 0 ? g : 0 with g loaded whatever m is: a blend, where the conditional load of the
 * plain ternary becomes masked loads and spilled reduction registers. */
static inline float relu_select(float m, float g) { return m <= 0.0f ? 0.0f : g; }   /* NaN passes */

/* Evaluation mode, one row (image i, channel ch) of the input gradient: gamma/sqrt(var +
 * eps) * gy (gy masked as below). */
static inline __attribute__((always_inline)) void
batchnorm_eval_row(int64_t i, int64_t ch, const float *xp, const float *gyp, int masked, const float *gp,
                   const float *betap, const float *mean, const float *var, double eps, float *gxp, int64_t c,
                   int64_t inner) {
    const float k = gp[ch] * (float)(1.0 / sqrt((double)var[ch] + eps));
    const bn_affine a = masked ? bn_eval_affine(gp[ch], betap[ch], mean[ch], var[ch], eps) : (bn_affine){0.0f, 0.0f};
    const int64_t at = (i * c + ch) * inner;
    const float *gr = gyp + at, *xr = xp + at;
    float *out = gxp + at;
#pragma omp simd
    for (int64_t j = 0; j < inner; j++) out[j] = k * (masked ? relu_select(bn_apply(xr[j], a), gr[j]) : gr[j]);
}

/* The backward of channel ch, gy taken as (y > 0 ? gy : 0) when masked, y the forward's
 * output recomputed from x (a ReLU after the batch norm, folded in: the gradient at its
 * input is never stored, nor its output read: 4 reads of the batch where the ReLU's
 * output made 6). Inlined inside each caller's parallel loop with masked a constant, so
 * that each gets its own vectorised loops (a run-time test inside them kept them scalar,
 * docs/performance.md §5); the two give bit-identical numbers. */
static inline __attribute__((always_inline)) void
batchnorm_backward_channel(int64_t ch, const float *xp, const float *gyp, int masked, const float *gp,
                           const float *betap, const float *ap, const float *bp, double eps, int training,
                           float *gxp, float *ggp, float *gbp, int64_t n, int64_t c, int64_t inner) {
    const int64_t count = n * inner;
#define UM_BN_GY(j) (masked ? relu_select(bn_apply(xr[j], a), gr[j]) : gr[j])
    float mean = ap[ch];
    float invstd = training ? bp[ch] : (float)(1.0 / sqrt((double)bp[ch] + eps));
    const bn_affine a = !masked ? (bn_affine){0.0f, 0.0f}
                        : training ? bn_train_affine(gp[ch], betap[ch], ap[ch], bp[ch])
                                   : bn_eval_affine(gp[ch], betap[ch], ap[ch], bp[ch], eps);
    /* sum(gy) and sum(gy * xhat) are needed by the parameter gradients, and by the
     * input gradient in training mode only. */
    double sg = 0.0, sgx = 0.0;
    if (ggp || gbp || training) {
        for (int64_t i = 0; i < n; i++) {
            const int64_t at = (i * c + ch) * inner;
            const float *xr = xp + at, *gr = gyp + at;
            float fs = 0.0f, fsx = 0.0f;
#pragma omp simd reduction(+ : fs, fsx)
            for (int64_t j = 0; j < inner; j++) {
                const float gj = UM_BN_GY(j);
                fs += gj; fsx += gj * (xr[j] - mean);
            }
            sg += fs; sgx += fsx;
        }
        sgx *= invstd;
    }
    if (ggp) ggp[ch] += (float)sgx;
    if (gbp) gbp[ch] += (float)sg;
    if (!gxp) return;
    float k = gp[ch] * invstd;
    if (training) {
        /* gx = gamma*invstd * (gy - mean(gy) - xhat * mean(gy*xhat)) */
        float mg = (float)(sg / (double)count), mgx = (float)(sgx / (double)count);
        /* backwards over the rows: the last rows the sums read are still in cache */
        for (int64_t i = n - 1; i >= 0; i--) {
            const int64_t at = (i * c + ch) * inner;
            const float *xr = xp + at, *gr = gyp + at;
            float *out = gxp + at;
#pragma omp simd
            for (int64_t j = 0; j < inner; j++) out[j] = k * (UM_BN_GY(j) - mg - (xr[j] - mean) * invstd * mgx);
        }
    } else {
        for (int64_t i = 0; i < n; i++)
            batchnorm_eval_row(i, ch, xp, gyp, masked, gp, betap, ap, bp, eps, gxp, c, inner);
    }
#undef UM_BN_GY
}

/* The loops over a batch, with masked a literal in each instantiation (see
 * batchnorm_backward_channel). Evaluation mode with no parameter gradients (PGD) needs no
 * sums over the batch: its rows run in parallel over images and channels, not over
 * channels alone. */
#define BATCHNORM_BACKWARD_LOOPS(MASKED)                                                              \
    do {                                                                                              \
        if (!training && !ggp && !gbp && gxp) {                                                       \
            _Pragma("omp parallel for collapse(2) schedule(static)")                                  \
            for (int64_t i = 0; i < n; i++)                                                           \
                for (int64_t ch = 0; ch < c; ch++)                                                    \
                    batchnorm_eval_row(i, ch, xp, gyp, MASKED, gp, betap, ap, bp, eps, gxp, c, inner); \
        } else {                                                                                      \
            _Pragma("omp parallel for schedule(static)")                                              \
            for (int64_t ch = 0; ch < c; ch++)                                                        \
                batchnorm_backward_channel(ch, xp, gyp, MASKED, gp, betap, ap, bp, eps, training, gxp, \
                                           ggp, gbp, n, c, inner);                                    \
        }                                                                                             \
    } while (0)

/* beta: needed (and given) only when masked */
static void batchnorm_backward_any(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                                   const um_tensor *beta, const um_tensor *stat_a, const um_tensor *stat_b,
                                   double eps, int training, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                                   int64_t n, int64_t c, int64_t inner, int masked) {
    const float *xp = um_f32(x), *gyp = um_f32(gy), *gp = um_f32(gamma), *betap = masked ? um_f32(beta) : NULL;
    const float *ap = um_f32(stat_a), *bp = um_f32(stat_b);
    float *gxp = gx ? um_f32(gx) : NULL, *ggp = ggamma ? um_f32(ggamma) : NULL, *gbp = gbeta ? um_f32(gbeta) : NULL;
    if (masked)
        BATCHNORM_BACKWARD_LOOPS(1);
    else
        BATCHNORM_BACKWARD_LOOPS(0);
}

int um_cpu_batchnorm_relu_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                                   const um_tensor *beta, const um_tensor *stat_a, const um_tensor *stat_b,
                                   double eps, int training, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                                   int64_t n, int64_t c, int64_t inner) {
    batchnorm_backward_any(x, gy, gamma, beta, stat_a, stat_b, eps, training, gx, ggamma, gbeta, n, c, inner, 1);
    return UM_OK;
}

int um_cpu_batchnorm_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                              const um_tensor *stat_a, const um_tensor *stat_b, double eps, int training,
                              um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                              int64_t n, int64_t c, int64_t inner) {
    batchnorm_backward_any(x, gy, gamma, NULL, stat_a, stat_b, eps, training, gx, ggamma, gbeta, n, c, inner, 0);
    return UM_OK;
}

/* Evaluation mode, input gradient only, with the ReLU folded in and a residual's other
 * branch added: gx = gamma/sqrt(var + eps) * (y > 0 ? gy : 0) + add in one pass, where
 * the fold wrote gx and a second pass read it back with add and wrote the sum. The
 * product is rounded before the sum (no contraction into an FMA), so that the numbers
 * are the unfused path's. */
__attribute__((optimize("fp-contract=off"))) int
um_cpu_batchnorm_relu_backward_eval_add(const um_tensor *x, const um_tensor *gy, const um_tensor *add,
                                        const um_tensor *gamma, const um_tensor *beta,
                                        const um_tensor *running_mean, const um_tensor *running_var, double eps,
                                        um_tensor *gx, int64_t n, int64_t c, int64_t inner) {
    const float *xp = um_f32(x), *gyp = um_f32(gy), *adp = um_f32(add), *gp = um_f32(gamma), *betap = um_f32(beta);
    const float *mean = um_f32(running_mean), *var = um_f32(running_var);
    float *gxp = um_f32(gx);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float k = gp[ch] * (float)(1.0 / sqrt((double)var[ch] + eps));
            const bn_affine a = bn_eval_affine(gp[ch], betap[ch], mean[ch], var[ch], eps);
            const int64_t at = (i * c + ch) * inner;
            const float *gr = gyp + at, *xr = xp + at, *ar = adp + at;
            float *out = gxp + at;
#pragma omp simd
            for (int64_t j = 0; j < inner; j++) {
                const float scaled = k * relu_select(bn_apply(xr[j], a), gr[j]);
                out[j] = scaled + ar[j];
            }
        }
    return UM_OK;
}
