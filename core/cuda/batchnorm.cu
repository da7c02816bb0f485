/* CUDA batch normalisation over x viewed as (n, c, inner), as core/cpu/batchnorm.c: sums
 * shifted by the channel's first value and accumulated in double; running =
 * momentum*running + (1-momentum)*batch with the unbiased (Bessel-corrected) variance
 * going into running_var, as TF's fused kernel; normalisation with the biased variance.
 * Own kernels rather than cuDNN's, whose running average and saved statistics follow
 * other conventions. A channel's sums are split over several blocks (a few channels
 * would leave most of the GPU idle), each writing a partial sum to the shared scratch;
 * one thread per channel then adds them in a fixed order (deterministic) and derives the
 * per-channel coefficients that an elementwise kernel applies. */
#include <math.h>
#include "cuda_backend.h"

#define BN_THREADS 256

/* Blocks per channel: about four waves over the GPU, at least ~4096 elements each. */
static int64_t splits_for(int64_t c, int64_t count) {
    int64_t s = (1024 + c - 1) / c, by_size = (count + 4095) / 4096;
    if (s > by_size) s = by_size;
    return s < 1 ? 1 : s;
}

__device__ __forceinline__ int64_t at(int64_t e, int64_t ch, int64_t c, int64_t inner) {
    return ((e / inner) * c + ch) * inner + e % inner;
}

/* partial[(ch*S + s)*2 + {0,1}] = sums over split s of channel ch of (a, a*b) where
 * mode 0: a = x - x[ch,0], b = a (forward statistics);
 * mode 1: a = gy, b = x - mean[ch] (backward). */
__global__ void bn_partials(const float *x, const float *gy, const float *mean, int mode, int64_t c, int64_t inner,
                           int64_t count, int64_t S, double *partial) {
    __shared__ double sh[32];
    const int64_t ch = blockIdx.y, s = blockIdx.x;
    const int64_t lo = s * count / S, hi = (s + 1) * count / S;
    const float ref = mode == 0 ? x[ch * inner] : mean[ch];
    double sa = 0.0, sab = 0.0;
    for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x) {
        int64_t k = at(e, ch, c, inner);
        float d = x[k] - ref;
        double a = mode == 0 ? (double)d : (double)gy[k];
        sa += a;
        sab += a * (double)d;
    }
    sa = um_cu_block_sum(sa, sh);
    sab = um_cu_block_sum(sab, sh);
    if (threadIdx.x == 0) {
        partial[(ch * S + s) * 2] = sa;
        partial[(ch * S + s) * 2 + 1] = sab;
    }
}

/* One thread per channel: statistics, running averages, and y = x*scale + shift coefficients. */
__global__ void bn_train_finish(const float *x, const float *gamma, const float *beta, const double *partial, int64_t S,
                                float *save_mean, float *save_invstd, float *rm, float *rv, double momentum, double eps,
                                int64_t c, int64_t inner, int64_t count, float *scale, float *shift) {
    UM_CU_FOR(ch, c) {
        double s = 0.0, ss = 0.0;
        for (int64_t k = 0; k < S; k++) {
            s += partial[(ch * S + k) * 2];
            ss += partial[(ch * S + k) * 2 + 1];
        }
        const float shift0 = x[ch * inner];
        double dm = s / (double)count;
        double mean = shift0 + dm;
        double var = ss / (double)count - dm * dm;
        if (var < 0.0) var = 0.0;
        double invstd = 1.0 / sqrt(var + eps);
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        if (rm) rm[ch] = (float)(momentum * rm[ch] + (1.0 - momentum) * mean);
        if (rv) {
            double unbiased = count > 1 ? var * (double)count / (double)(count - 1) : var;
            rv[ch] = (float)(momentum * rv[ch] + (1.0 - momentum) * unbiased);
        }
        scale[ch] = (float)(gamma[ch] * invstd);
        shift[ch] = (float)(beta[ch] - mean * gamma[ch] * invstd);
    }
}

__global__ void bn_apply(const float *x, float *y, const float *scale, const float *shift, int64_t c, int64_t inner,
                         int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t ch = (i / inner) % c;
        y[i] = x[i] * scale[ch] + shift[ch];
    }
}

/* Scratch: partial sums (2*c*S doubles), then three float arrays of c. */
static int bn_scratch(int64_t c, int64_t S, double **partial, float **f0, float **f1, float **f2) {
    void *base;
    size_t pbytes = (size_t)(2 * c * S) * sizeof(double);
    UM_TRY(um_cu_scratch(&base, pbytes + (size_t)(3 * c) * sizeof(float)));
    *partial = (double *)base;
    *f0 = (float *)((char *)base + pbytes);
    *f1 = *f0 + c;
    *f2 = *f1 + c;
    return UM_OK;
}

int um_cu_batchnorm_forward_train(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta, um_tensor *y,
                                  um_tensor *save_mean, um_tensor *save_invstd, um_tensor *running_mean,
                                  um_tensor *running_var, double momentum, double eps, int64_t n, int64_t c,
                                  int64_t inner) {
    const int64_t count = n * inner;
    if (c == 0 || count == 0) return UM_OK;
    if (c > 65535) return um_fail(UM_ENOTIMPL, "cuda batch norm: at most 65535 channels, got %lld", (long long)c);
    const int64_t S = splits_for(c, count);
    double *partial;
    float *scale, *shift, *unused;
    UM_TRY(bn_scratch(c, S, &partial, &scale, &shift, &unused));
    bn_partials<<<dim3((unsigned)S, (unsigned)c), BN_THREADS>>>(um_f32(x), NULL, NULL, 0, c, inner, count, S, partial);
    UM_CU_LAUNCHED("bn_partials");
    bn_train_finish<<<um_cu_blocks(c), UM_CU_THREADS>>>(
        um_f32(x), um_f32(gamma), um_f32(beta), partial, S, um_f32(save_mean), um_f32(save_invstd),
        running_mean ? um_f32(running_mean) : NULL, running_var ? um_f32(running_var) : NULL, momentum, eps, c, inner,
        count, scale, shift);
    UM_CU_LAUNCHED("bn_train_finish");
    bn_apply<<<um_cu_blocks(n * c * inner), UM_CU_THREADS>>>(um_f32(x), um_f32(y), scale, shift, c, inner, n * c * inner);
    UM_CU_LAUNCHED("bn_apply");
    return UM_OK;
}

__global__ void bn_eval_kernel(const float *x, const float *gamma, const float *beta, const float *rm, const float *rv,
                               double eps, float *y, int64_t c, int64_t inner, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t ch = (i / inner) % c;
        double invstd = 1.0 / sqrt((double)rv[ch] + eps);
        float scale = (float)(gamma[ch] * invstd), shift = (float)(beta[ch] - rm[ch] * gamma[ch] * invstd);
        y[i] = x[i] * scale + shift;
    }
}

int um_cu_batchnorm_forward_eval(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                 const um_tensor *running_mean, const um_tensor *running_var, double eps, um_tensor *y,
                                 int64_t n, int64_t c, int64_t inner) {
    int64_t total = n * c * inner;
    if (total == 0) return UM_OK;
    bn_eval_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(x), um_f32(gamma), um_f32(beta), um_f32(running_mean),
                                                           um_f32(running_var), eps, um_f32(y), c, inner, total);
    UM_CU_LAUNCHED("bn_eval_kernel");
    return UM_OK;
}

/* One thread per channel: parameter gradients (+=) and the input-gradient coefficients
 * gx = k * (gy - mg - (x - mean) * invstd * mgx) (mg = mgx = 0 in evaluation mode). */
__global__ void bn_backward_finish(const double *partial, int64_t S, const float *gamma, const float *sb, double eps,
                                   int training, int have_sums, int64_t c, int64_t count, float *ggamma, float *gbeta,
                                   float *k_out, float *mg_out, float *mgx_out) {
    UM_CU_FOR(ch, c) {
        const float invstd = training ? sb[ch] : (float)(1.0 / sqrt((double)sb[ch] + eps));
        double sg = 0.0, sgx = 0.0;
        if (have_sums) {
            for (int64_t k = 0; k < S; k++) {
                sg += partial[(ch * S + k) * 2];
                sgx += partial[(ch * S + k) * 2 + 1];
            }
            sgx *= invstd;
        }
        if (ggamma) ggamma[ch] += (float)sgx;
        if (gbeta) gbeta[ch] += (float)sg;
        k_out[ch] = gamma[ch] * invstd;
        mg_out[ch] = training ? (float)(sg / (double)count) : 0.0f;
        mgx_out[ch] = training ? (float)(sgx / (double)count) * invstd : 0.0f;
    }
}

__global__ void bn_input_grad(const float *x, const float *gy, const float *mean, const float *kk, const float *mg,
                              const float *mgx, int training, float *gx, int64_t c, int64_t inner, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t ch = (i / inner) % c;
        gx[i] = training ? kk[ch] * (gy[i] - mg[ch] - (x[i] - mean[ch]) * mgx[ch]) : kk[ch] * gy[i];
    }
}

int um_cu_batchnorm_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma, const um_tensor *stat_a,
                             const um_tensor *stat_b, double eps, int training, um_tensor *gx, um_tensor *ggamma,
                             um_tensor *gbeta, int64_t n, int64_t c, int64_t inner) {
    const int64_t count = n * inner;
    if (c == 0 || count == 0) return UM_OK;
    if (c > 65535) return um_fail(UM_ENOTIMPL, "cuda batch norm: at most 65535 channels, got %lld", (long long)c);
    const int have_sums = ggamma || gbeta || training;
    const int64_t S = splits_for(c, count);
    double *partial;
    float *kk, *mg, *mgx;
    UM_TRY(bn_scratch(c, S, &partial, &kk, &mg, &mgx));
    if (have_sums) {
        bn_partials<<<dim3((unsigned)S, (unsigned)c), BN_THREADS>>>(um_f32(x), um_f32(gy), um_f32(stat_a), 1, c, inner,
                                                                    count, S, partial);
        UM_CU_LAUNCHED("bn_partials");
    }
    bn_backward_finish<<<um_cu_blocks(c), UM_CU_THREADS>>>(partial, S, um_f32(gamma), um_f32(stat_b), eps, training,
                                                           have_sums, c, count, ggamma ? um_f32(ggamma) : NULL,
                                                           gbeta ? um_f32(gbeta) : NULL, kk, mg, mgx);
    UM_CU_LAUNCHED("bn_backward_finish");
    if (gx) {
        bn_input_grad<<<um_cu_blocks(n * c * inner), UM_CU_THREADS>>>(um_f32(x), um_f32(gy), um_f32(stat_a), kk, mg, mgx,
                                                                      training, um_f32(gx), c, inner, n * c * inner);
        UM_CU_LAUNCHED("bn_input_grad");
    }
    return UM_OK;
}
