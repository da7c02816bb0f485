/* CUDA optimiser steps, fused and in place, as core/cpu/optim_step.c: SGD with TF's
 * momentum (v = m v + g; w -= lr v, or Nesterov w -= lr (g + m v)), Adam with the bias
 * correction folded into lr_t and eps added to sqrt(v), and the paper's weight decay.
 * Weight decay must return sum w^2 to the host (its interface is a double): partial sums
 * per block in a fixed order, then one 8-byte copy, which waits for the queued work. */
#include <math.h>
#include "cuda_backend.h"

__global__ void sgd_kernel(float *w, const float *g, float *v, float lr, float m, int nesterov, int64_t n) {
    UM_CU_FOR(i, n) {
        float vi = m * v[i] + g[i];
        v[i] = vi;
        w[i] -= nesterov ? lr * (g[i] + m * vi) : lr * vi;
    }
}

int um_cu_sgd_step(um_tensor *w, const um_tensor *g, um_tensor *v, double lr, double momentum, int nesterov) {
    int64_t n = um_numel(w);
    if (n == 0) return UM_OK;
    sgd_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(w), um_f32(g), um_f32(v), (float)lr, (float)momentum,
                                                   nesterov, n);
    UM_CU_LAUNCHED("sgd_kernel");
    return UM_OK;
}

__global__ void adam_kernel(float *w, const float *g, float *m, float *v, float lr, float b1, float b2, float c1,
                            float c2, float eps, int64_t n) {
    UM_CU_FOR(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * mi / (sqrtf(vi) + eps);
    }
}

int um_cu_adam_step(um_tensor *w, const um_tensor *g, um_tensor *m, um_tensor *v, double lr_t, double beta1,
                    double beta2, double eps) {
    int64_t n = um_numel(w);
    if (n == 0) return UM_OK;
    /* 1 - beta in double: 1.0f - 0.999f loses four digits */
    adam_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(w), um_f32(g), um_f32(m), um_f32(v), (float)lr_t,
                                                    (float)beta1, (float)beta2, (float)(1.0 - beta1),
                                                    (float)(1.0 - beta2), (float)eps, n);
    UM_CU_LAUNCHED("adam_kernel");
    return UM_OK;
}

#define DECAY_BLOCKS 256

/* g += 2 lambda w; partial[b] = this block's sum of w^2 (grid of exactly DECAY_BLOCKS). */
__global__ void decay_kernel(const float *w, float *g, float two_l, int64_t n, double *partial) {
    __shared__ double sh[32];
    double s = 0.0;
    UM_CU_FOR(i, n) {
        float wi = w[i];
        s += (double)wi * (double)wi;
        g[i] += two_l * wi;
    }
    s = um_cu_block_sum(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_partials(double *partial, int count) {
    __shared__ double sh[32];
    double s = threadIdx.x < count ? partial[threadIdx.x] : 0.0;
    s = um_cu_block_sum(s, sh);
    if (threadIdx.x == 0) partial[0] = s;
}

int um_cu_weight_decay(const um_tensor *w, um_tensor *g, double lambda, double *sumsq) {
    int64_t n = um_numel(w);
    *sumsq = 0.0;
    if (n == 0) return UM_OK;
    void *scratch;
    UM_TRY(um_cu_scratch(&scratch, DECAY_BLOCKS * sizeof(double)));
    double *partial = (double *)scratch;
    decay_kernel<<<DECAY_BLOCKS, UM_CU_THREADS>>>(um_f32(w), um_f32(g), (float)(2.0 * lambda), n, partial);
    UM_CU_LAUNCHED("decay_kernel");
    sum_partials<<<1, DECAY_BLOCKS>>>(partial, DECAY_BLOCKS);
    UM_CU_LAUNCHED("sum_partials");
    UM_CU(cudaMemcpy(sumsq, partial, sizeof(double), cudaMemcpyDeviceToHost));
    return UM_OK;
}
