/* CUDA kernels of the attacks with per-example state, as core/cpu/attack_kernels.c: one
 * block per example for the steps (the l2 norms are block reductions), elementwise row
 * copies under a mask, and one block per example for the zero-gradient test. */
#include <math.h>
#include "cuda_backend.h"

#define ROW_THREADS 256

__device__ __forceinline__ float clip01a(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

/* Sum of v over the block (every thread gets it). */
__device__ double block_sum(double v) {
    __shared__ double part[ROW_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    double r = part[0];
    __syncthreads();
    return r;
}

/* Row xi onto the ball around zi, then [0,1]. */
__device__ void project_row(float *xi, const float *zi, int64_t d, float eps, int norm) {
    if (norm == 0) {
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            float dz = xi[k] - zi[k];
            dz = dz < -eps ? -eps : (dz > eps ? eps : dz);
            xi[k] = clip01a(zi[k] + dz);
        }
        return;
    }
    double d2 = 0;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) d2 += (double)(xi[k] - zi[k]) * (xi[k] - zi[k]);
    d2 = block_sum(d2);
    float shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) xi[k] = clip01a(zi[k] + shrink * (xi[k] - zi[k]));
}

__global__ void apgd_kernel(float *x, float *xp, const float *g, const float *z, const float *eta, float eps,
                            float alpha, int norm, int64_t n, int64_t d) {
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        float *xi = x + i * d, *pi = xp + i * d;
        const float *gi = g + i * d, *zi = z + i * d;
        float scale = eta[i], shrink = 1;
        if (norm != 0) {
            double g2 = 0;
            for (int64_t k = threadIdx.x; k < d; k += blockDim.x) g2 += (double)gi[k] * gi[k];
            scale = (float)(eta[i] / (sqrt(block_sum(g2)) + 1e-12));
            double d2 = 0;
            for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
                double w = (double)xi[k] + scale * gi[k] - zi[k];
                d2 += w * w;
            }
            d2 = block_sum(d2);
            shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
        }
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            float old = xi[k], sk;
            if (norm == 0) {
                float dz = old + scale * (float)((gi[k] > 0) - (gi[k] < 0)) - zi[k];
                sk = clip01a(zi[k] + (dz < -eps ? -eps : (dz > eps ? eps : dz)));
            } else {
                sk = clip01a(zi[k] + shrink * (old + scale * gi[k] - zi[k]));
            }
            xi[k] = old + alpha * (sk - old) + (1 - alpha) * (old - pi[k]);
            pi[k] = old;
        }
        __syncthreads();
        project_row(xi, zi, d, eps, norm);
    }
}

static int cu_apgd_step(um_tensor *x, um_tensor *x_prev, const um_tensor *grad, const um_tensor *z, const um_tensor *eta,
                        float eps, float alpha, int norm) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    if (n == 0) return UM_OK;
    apgd_kernel<<<(unsigned)(n < 65535 ? n : 65535), ROW_THREADS>>>(um_f32(x), um_f32(x_prev), um_f32(grad), um_f32(z),
                                                                    um_f32(eta), eps, alpha, norm, n, d);
    UM_CU_LAUNCHED("apgd_kernel");
    return UM_OK;
}

__global__ void mpgd_kernel(float *x, float *v, const float *g, const float *z, const float *lr, float eps, float mom,
                            int norm, int64_t n, int64_t d) {
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        float *xi = x + i * d, *vi = v + i * d;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            vi[k] = mom * vi[k] + g[i * d + k];
            xi[k] += lr[i] * vi[k];
        }
        __syncthreads();
        project_row(xi, z + i * d, d, eps, norm);
    }
}

static int cu_mpgd_step(um_tensor *x, um_tensor *v, const um_tensor *grad, const um_tensor *z, const um_tensor *lr,
                        float eps, float momentum, int norm) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    if (n == 0) return UM_OK;
    mpgd_kernel<<<(unsigned)(n < 65535 ? n : 65535), ROW_THREADS>>>(um_f32(x), um_f32(v), um_f32(grad), um_f32(z),
                                                                    um_f32(lr), eps, momentum, norm, n, d);
    UM_CU_LAUNCHED("mpgd_kernel");
    return UM_OK;
}

__global__ void copy_rows_kernel(float *dst, const float *src, const float *mask, int64_t d, int64_t total) {
    UM_CU_FOR(i, total) if (mask[i / d] != 0) dst[i] = src[i];
}

static int cu_copy_rows(um_tensor *dst, const um_tensor *src, const um_tensor *mask) {
    int64_t n = dst->size[0], total = um_numel(dst), d = total / (n ? n : 1);
    if (total == 0) return UM_OK;
    copy_rows_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(dst), um_f32(src), um_f32(mask), d, total);
    UM_CU_LAUNCHED("copy_rows_kernel");
    return UM_OK;
}

__global__ void zero_rows_kernel(float *flags, const float *g, int64_t n, int64_t d) {
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        double nonzero = 0;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) nonzero += g[i * d + k] != 0;
        nonzero = block_sum(nonzero);
        if (threadIdx.x == 0) flags[i] = nonzero == 0 ? 1.0f : 0.0f;
    }
}

static int cu_zero_rows(um_tensor *flags, const um_tensor *grad) {
    int64_t n = grad->size[0], d = um_numel(grad) / (n ? n : 1);
    if (n == 0) return UM_OK;
    zero_rows_kernel<<<(unsigned)(n < 65535 ? n : 65535), ROW_THREADS>>>(um_f32(flags), um_f32(grad), n, d);
    UM_CU_LAUNCHED("zero_rows_kernel");
    return UM_OK;
}

void um_cu_attack_kernels(struct um_ood_ops *t) {
    t->apgd_step = cu_apgd_step;
    t->mpgd_step = cu_mpgd_step;
    t->copy_rows = cu_copy_rows;
    t->zero_rows = cu_zero_rows;
}
