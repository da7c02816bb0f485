/* CUDA kernels for noise and PGD, as core/cpu/ood_kernels.c: pixel permutation, separable
 * mirror-padded Gaussian low-pass, per-image rescale (one block per image), random start,
 * the projected ascent step (l-inf elementwise; l2 one block per image for the norms)
 * and best-iterate bookkeeping. The random numbers (permutations, uniform offsets) come
 * from the host's Philox generator, copied in by the front end (core/ood/noise.c). */
#include <math.h>
#include "cuda_backend.h"

#define IMG_THREADS 256

__global__ void permute_kernel(float *out, const float *x, const int64_t *perms, int64_t c, int64_t hw, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t q = i % hw, img = i / (hw * c);
        out[i] = x[(i - q) + perms[img * hw + q]];
    }
}

static int cu_permute_pixels(um_tensor *out, const um_tensor *x, const um_tensor *perms) {
    int64_t n = x->size[0], c = x->size[1], hw = x->size[2] * x->size[3], total = n * c * hw;
    if (total == 0) return UM_OK;
    const float *src = um_f32(x);
    if (out->storage == x->storage) {   /* in place: gather from a copy */
        void *tmp;
        UM_TRY(um_cu_scratch(&tmp, (size_t)total * sizeof(float)));
        UM_CU(cudaMemcpyAsync(tmp, src, (size_t)total * sizeof(float), cudaMemcpyDeviceToDevice, 0));
        src = (const float *)tmp;
    }
    permute_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(out), src, um_i64(perms), c, hw, total);
    UM_CU_LAUNCHED("permute_kernel");
    return UM_OK;
}

#define MAX_TAPS 63

typedef struct {
    float w[MAX_TAPS];
} taps_t;

/* SYMMETRIC mirror: index -1 maps to 0, n maps to n-1. */
__device__ __forceinline__ int64_t mirror(int64_t i, int64_t n) {
    if (i < 0) return -i - 1;
    if (i >= n) return 2 * n - i - 1;
    return i;
}

/* along = 0: filter along rows (x direction), 1: along columns (y direction) */
__global__ void lowpass_kernel(float *out, const float *in, taps_t taps, int r, int64_t h, int64_t w, int along,
                               int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t xx = i % w, y = (i / w) % h, plane = i - y * w - xx;
        float s = 0;
        for (int t = -r; t <= r; t++)
            s += taps.w[t + r] * (along == 0 ? in[plane + y * w + mirror(xx + t, w)] : in[plane + mirror(y + t, h) * w + xx]);
        out[i] = s;
    }
}

static int cu_lowpass(um_tensor *out, const um_tensor *x, const float *taps, int r) {
    if (2 * r + 1 > MAX_TAPS)
        return um_fail(UM_ENOTIMPL, "cuda low-pass: at most %d taps, got %d", MAX_TAPS, 2 * r + 1);
    int64_t h = x->size[2], w = x->size[3], total = um_numel(x);
    if (total == 0) return UM_OK;
    taps_t t;
    for (int k = 0; k < 2 * r + 1; k++) t.w[k] = taps[k];
    void *mid;
    UM_TRY(um_cu_scratch(&mid, (size_t)total * sizeof(float)));
    lowpass_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>((float *)mid, um_f32(x), t, r, h, w, 0, total);
    UM_CU_LAUNCHED("lowpass_kernel");
    lowpass_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(out), (const float *)mid, t, r, h, w, 1, total);
    UM_CU_LAUNCHED("lowpass_kernel");
    return UM_OK;
}

/* Block-wide fminf/fmaxf (NaN-ignoring, as the CPU's fminf/fmaxf scan). */
__device__ __forceinline__ void block_min_max(float &lo, float &hi, float *sh) {
    for (int o = 16; o > 0; o >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) { sh[threadIdx.x >> 5] = lo; sh[32 + (threadIdx.x >> 5)] = hi; }
    __syncthreads();
    for (int k = 0; k < (int)(blockDim.x >> 5); k++) { lo = fminf(lo, sh[k]); hi = fmaxf(hi, sh[32 + k]); }
}

__global__ void rescale_kernel(float *p, int64_t n, int64_t d) {
    __shared__ float sh[64];
    for (int64_t img = blockIdx.x; img < n; img += gridDim.x) {
        float *q = p + img * d;
        float lo = q[0], hi = q[0];
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) { lo = fminf(lo, q[k]); hi = fmaxf(hi, q[k]); }
        block_min_max(lo, hi, sh);
        if (hi > lo) {
            float inv = 1.0f / (hi - lo);
            for (int64_t k = threadIdx.x; k < d; k += blockDim.x) q[k] = (q[k] - lo) * inv;
        }
        __syncthreads();
    }
}

static int cu_rescale(um_tensor *x) {
    int64_t n = x->size[0], d = um_numel(x) / (n ? n : 1);
    if (n == 0 || d == 0) return UM_OK;
    rescale_kernel<<<(unsigned)(n < 65535 ? n : 65535), IMG_THREADS>>>(um_f32(x), n, d);
    UM_CU_LAUNCHED("rescale_kernel");
    return UM_OK;
}

__device__ __forceinline__ float clip01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

__global__ void random_start_kernel(float *x, const float *z, const float *u, const float *s, int64_t d, int64_t total) {
    UM_CU_FOR(i, total) x[i] = clip01(z[i] + s[i / d] * u[i]);
}

static int cu_random_start(um_tensor *x, const um_tensor *z, const um_tensor *u, const um_tensor *s) {
    int64_t n = z->size[0], total = um_numel(z), d = total / (n ? n : 1);
    if (total == 0) return UM_OK;
    random_start_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(x), um_f32(z), um_f32(u), um_f32(s), d, total);
    UM_CU_LAUNCHED("random_start_kernel");
    return UM_OK;
}

/* As the authors: step, clip to [0,1], then clip the offset to [-eps, eps]. */
__global__ void pgd_linf_kernel(float *x, const float *g, const float *z, float step, float eps, int64_t total) {
    UM_CU_FOR(i, total) {
        float gi = g[i], v = x[i] + step * (float)((gi > 0) - (gi < 0));
        float delta = clip01(v) - z[i];
        delta = delta < -eps ? -eps : (delta > eps ? eps : delta);
        x[i] = z[i] + delta;
    }
}

/* One block per example: x += step g/|g|; shrink x - z into the eps-ball; clip to [0,1].
 * g may be x itself (a zero step that only projects). */
__global__ void pgd_l2_kernel(float *x, const float *g, const float *z, float step, float eps, int64_t n, int64_t d) {
    __shared__ double sh[32];
    for (int64_t img = blockIdx.x; img < n; img += gridDim.x) {
        float *xi = x + img * d;
        const float *gi = g + img * d, *zi = z + img * d;
        double g2 = 0.0;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) g2 += (double)gi[k] * gi[k];
        g2 = um_cu_block_sum(g2, sh);
        float scale = g2 > 0 ? (float)(step / sqrt(g2)) : 0.0f;
        double d2 = 0.0;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
            xi[k] += scale * gi[k];
            d2 += (double)(xi[k] - zi[k]) * (xi[k] - zi[k]);
        }
        d2 = um_cu_block_sum(d2, sh);
        float shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
        for (int64_t k = threadIdx.x; k < d; k += blockDim.x) xi[k] = clip01(zi[k] + shrink * (xi[k] - zi[k]));
    }
}

static int cu_pgd_step(um_tensor *x, const um_tensor *grad, const um_tensor *z, float step, float eps, int p) {
    int64_t n = z->size[0], total = um_numel(z), d = total / (n ? n : 1);
    if (total == 0) return UM_OK;
    if (p == 0) {
        pgd_linf_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(x), um_f32(grad), um_f32(z), step, eps, total);
        UM_CU_LAUNCHED("pgd_linf_kernel");
    } else {
        pgd_l2_kernel<<<(unsigned)(n < 65535 ? n : 65535), IMG_THREADS>>>(um_f32(x), um_f32(grad), um_f32(z), step, eps,
                                                                         n, d);
        UM_CU_LAUNCHED("pgd_l2_kernel");
    }
    return UM_OK;
}

/* Two passes, so that no thread reads best_obj while another writes it. */
__global__ void keep_best_rows(float *bx, const float *bo, const float *x, const float *obj, int64_t d, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t img = i / d;
        if (obj[img] > bo[img]) bx[i] = x[i];
    }
}

__global__ void keep_best_values(float *bo, const float *obj, int64_t n) {
    UM_CU_FOR(i, n) if (obj[i] > bo[i]) bo[i] = obj[i];
}

static int cu_keep_best(um_tensor *best_x, um_tensor *best_obj, const um_tensor *x, const um_tensor *obj) {
    int64_t n = x->size[0], total = um_numel(x), d = total / (n ? n : 1);
    if (n == 0) return UM_OK;
    if (total > 0) {
        keep_best_rows<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(best_x), um_f32(best_obj), um_f32(x), um_f32(obj),
                                                               d, total);
        UM_CU_LAUNCHED("keep_best_rows");
    }
    keep_best_values<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(best_obj), um_f32(obj), n);
    UM_CU_LAUNCHED("keep_best_values");
    return UM_OK;
}

static struct um_ood_ops table;

const struct um_ood_ops *um_cu_ood_ops(void) {
    table.permute_pixels = cu_permute_pixels;
    table.lowpass = cu_lowpass;
    table.rescale = cu_rescale;
    table.random_start = cu_random_start;
    table.pgd_step = cu_pgd_step;
    table.keep_best = cu_keep_best;
    um_cu_ibp_kernels(&table);
    um_cu_attack_kernels(&table);
    return &table;
}
