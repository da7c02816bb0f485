/* CUDA kernels of interval bound propagation, as core/cpu/ibp_kernels.c: the clipped input
 * box (elementwise), the elision of the last Linear layer (one thread per (example, k, j)
 * entry, summing in double) and the confidence bound (one thread per example). */
#include <math.h>
#include "cuda_backend.h"

__device__ __forceinline__ float clip01f(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

__global__ void ibp_box_kernel(float *lo, float *hi, const float *z, float eps, int64_t total) {
    UM_CU_FOR(i, total) {
        lo[i] = clip01f(z[i] - eps);
        hi[i] = clip01f(z[i] + eps);
    }
}

static int cu_ibp_input_box(um_tensor *lo, um_tensor *hi, const um_tensor *z, float eps) {
    int64_t total = um_numel(z);
    if (total == 0) return UM_OK;
    ibp_box_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(lo), um_f32(hi), um_f32(z), eps, total);
    UM_CU_LAUNCHED("ibp_box_kernel");
    return UM_OK;
}

__global__ void ibp_elision_kernel(float *ud, const float *lo, const float *hi, const float *w, const float *b,
                                   int64_t n, int64_t m, int64_t K) {
    UM_CU_FOR(e, n * K * K) {
        int64_t j = e % K, k = (e / K) % K, i = e / (K * K);
        double s = 0;
        if (k != j) {
            const float *wk = w + k * m, *wj = w + j * m, *l = lo + i * m, *h = hi + i * m;
            for (int64_t c = 0; c < m; c++) {
                float d = wk[c] - wj[c];
                s += d > 0 ? (double)d * h[c] : (double)d * l[c];
            }
            if (b) s += (double)b[k] - (double)b[j];
        }
        ud[e] = (float)s;
    }
}

static int cu_ibp_elision(um_tensor *ud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w, const um_tensor *b) {
    int64_t n = lo->size[0], m = lo->size[1], K = w->size[0];
    if (n * K * K == 0) return UM_OK;
    ibp_elision_kernel<<<um_cu_blocks(n * K * K), UM_CU_THREADS>>>(um_f32(ud), um_f32(lo), um_f32(hi), um_f32(w),
                                                                   b ? um_f32(b) : NULL, n, m, K);
    UM_CU_LAUNCHED("ibp_elision_kernel");
    return UM_OK;
}

__global__ void ibp_confidence_kernel(float *conf, const float *ud, int64_t n, int64_t K) {
    UM_CU_FOR(i, n) {
        double best = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            const float *row = ud + (i * K + k) * K;
            double mx = -INFINITY, s = 0;
            for (int64_t j = 0; j < K; j++) mx = fmax(mx, -(double)row[j]);
            for (int64_t j = 0; j < K; j++) s += exp(-(double)row[j] - mx);
            double v = -(mx + log(s));
            if (v > best) best = v;
        }
        conf[i] = (float)exp(best);
    }
}

static int cu_ibp_confidence(um_tensor *conf, const um_tensor *ud) {
    int64_t n = ud->size[0], K = ud->size[1];
    if (n == 0) return UM_OK;
    ibp_confidence_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(conf), um_f32(ud), n, K);
    UM_CU_LAUNCHED("ibp_confidence_kernel");
    return UM_OK;
}

/* Backward of the elision, as core/cpu/ibp_kernels.c: one thread per (example, feature)
 * for the box gradients and one per (class, feature) for the weight gradient, so that no
 * two threads add into one place; one per class for the bias. */
__global__ void ibp_elision_back_box_kernel(float *g_lo, float *g_hi, const float *gud, const float *w, int64_t n,
                                            int64_t m, int64_t K) {
    UM_CU_FOR(e, n * m) {
        int64_t q = e % m, i = e / m;
        float a = 0, b = 0;
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < K; j++) {
                float g = gud[(i * K + k) * K + j];
                if (j == k || g == 0) continue;
                float d = w[k * m + q] - w[j * m + q];
                if (d > 0) b += g * d;
                else a += g * d;
            }
        g_lo[e] = a;
        g_hi[e] = b;
    }
}

__global__ void ibp_elision_back_weight_kernel(float *gw, const float *gud, const float *lo, const float *hi,
                                               const float *w, int64_t n, int64_t m, int64_t K) {
    UM_CU_FOR(e, K * m) {
        int64_t q = e % m, k = e / m;
        float acc = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++) {
                if (j == k) continue;
                float g1 = gud[(i * K + k) * K + j], g2 = gud[(i * K + j) * K + k];
                if (g1 == 0 && g2 == 0) continue;
                float d = w[k * m + q] - w[j * m + q];
                float s1 = d > 0 ? hi[i * m + q] : lo[i * m + q], s2 = d < 0 ? hi[i * m + q] : lo[i * m + q];
                acc += g1 * s1 - g2 * s2;
            }
        gw[e] += acc;
    }
}

__global__ void ibp_elision_back_bias_kernel(float *gb, const float *gud, int64_t n, int64_t K) {
    UM_CU_FOR(k, K) {
        double acc = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++)
                if (j != k) acc += (double)gud[(i * K + k) * K + j] - (double)gud[(i * K + j) * K + k];
        gb[k] += (float)acc;
    }
}

static int cu_ibp_elision_backward(const um_tensor *gud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w,
                                   um_tensor *g_lo, um_tensor *g_hi, um_tensor *gw, um_tensor *gb) {
    int64_t n = lo->size[0], m = lo->size[1], K = w->size[0];
    if (n * m > 0) {
        ibp_elision_back_box_kernel<<<um_cu_blocks(n * m), UM_CU_THREADS>>>(um_f32(g_lo), um_f32(g_hi), um_f32(gud),
                                                                            um_f32(w), n, m, K);
        UM_CU_LAUNCHED("ibp_elision_back_box_kernel");
    }
    if (K * m > 0) {
        ibp_elision_back_weight_kernel<<<um_cu_blocks(K * m), UM_CU_THREADS>>>(um_f32(gw), um_f32(gud), um_f32(lo),
                                                                               um_f32(hi), um_f32(w), n, m, K);
        UM_CU_LAUNCHED("ibp_elision_back_weight_kernel");
    }
    if (gb && K > 0) {
        ibp_elision_back_bias_kernel<<<um_cu_blocks(K), UM_CU_THREADS>>>(um_f32(gb), um_f32(gud), n, K);
        UM_CU_LAUNCHED("ibp_elision_back_bias_kernel");
    }
    return UM_OK;
}

void um_cu_ibp_kernels(struct um_ood_ops *t) {
    t->ibp_input_box = cu_ibp_input_box;
    t->ibp_elision = cu_ibp_elision;
    t->ibp_confidence = cu_ibp_confidence;
    t->ibp_elision_backward = cu_ibp_elision_backward;
}
