/* CUDA losses on logits (n, k) with a fused, stable log-softmax, one warp per example, as
 * core/cpu/softmax_loss.c: lse = max + log sum exp (in double); cross-entropy lse - z_y
 * (or sum_k t_k (lse - z_k)), max_conf = max z - lse (first arg-max, no gradient through
 * the choice), uniform_conf = lse - mean z. A class index outside [0, k) cannot be
 * reported without reading back to the host, which would stall every PGD step: that
 * example's loss and gradient row become NaN instead, which um_loss_value reports. */
#include <math.h>
#include "cuda_backend.h"

#define WARPS 8   /* per block */

/* Per-row statistics: lse, the first arg-max and its value (every lane gets them). */
__device__ __forceinline__ void row_stats(const float *z, int64_t k, int lane, double &lse, int64_t &am) {
    float m = 0.0f;
    int64_t mk = -1;   /* no candidate yet; NaN is never one */
    for (int64_t j = lane; j < k; j += 32) {
        float v = z[j];
        if (!isnan(v) && (mk < 0 || v > m)) { m = v; mk = j; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, m, o);
        int64_t ok = __shfl_xor_sync(0xffffffffu, mk, o);
        if (ok >= 0 && (mk < 0 || ov > m || (ov == m && ok < mk))) { m = ov; mk = ok; }
    }
    if (isnan(z[0]) || mk < 0) mk = 0;   /* the CPU's scan keeps a NaN first element */
    am = mk;
    double mx = (double)z[mk], s = 0.0;
    for (int64_t j = lane; j < k; j += 32) s += exp((double)z[j] - mx);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    lse = mx + log(s);
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void loss_fwd(int kind, const float *zp, const int64_t *labels, const float *tp, float *out, int64_t n,
                         int64_t k) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * WARPS;
    for (int64_t i = (int64_t)blockIdx.x * WARPS + (threadIdx.x >> 5); i < n; i += warps) {
        const float *z = zp + i * k;
        double lse, l = 0.0;
        int64_t am;
        row_stats(z, k, lane, lse, am);
        if (kind == UM_LOSS_CROSS_ENTROPY && labels) {
            int64_t y = labels[i];
            l = y >= 0 && y < k ? lse - z[y] : NAN;
        } else if (kind == UM_LOSS_CROSS_ENTROPY) {
            const float *t = tp + i * k;
            double part = 0.0;
            for (int64_t j = lane; j < k; j += 32) part += (double)t[j] * (lse - z[j]);
            l = warp_sum(part);
        } else if (kind == UM_LOSS_MAX_CONF) {
            l = (double)z[am] - lse;
        } else {
            double part = 0.0;
            for (int64_t j = lane; j < k; j += 32) part += z[j];
            l = lse - warp_sum(part) / (double)k;
        }
        if (lane == 0) out[i] = (float)l;
    }
}

__global__ void loss_bwd(int kind, const float *zp, const int64_t *labels, const float *tp, double scale,
                         const float *wp, float *gp, int64_t n, int64_t k) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * WARPS;
    for (int64_t i = (int64_t)blockIdx.x * WARPS + (threadIdx.x >> 5); i < n; i += warps) {
        const float *z = zp + i * k;
        float *g = gp + i * k;
        double lse;
        int64_t am;
        row_stats(z, k, lane, lse, am);
        double s = scale * (wp ? wp[i] : 1.0);
        const float *t = kind == UM_LOSS_CROSS_ENTROPY && !labels ? tp + i * k : NULL;
        double mass = 1.0;
        if (t) {
            double part = 0.0;
            for (int64_t j = lane; j < k; j += 32) part += t[j];
            mass = warp_sum(part);
        }
        int64_t y = kind == UM_LOSS_CROSS_ENTROPY && labels ? labels[i] : -1;
        bool bad = kind == UM_LOSS_CROSS_ENTROPY && labels && (y < 0 || y >= k);
        double sign = kind == UM_LOSS_MAX_CONF ? -1.0 : 1.0;
        for (int64_t j = lane; j < k; j += 32) {
            float v = (float)(s * sign * mass * exp((double)z[j] - lse));
            switch (kind) {
            case UM_LOSS_CROSS_ENTROPY:
                if (t) v -= (float)(s * t[j]);
                else if (j == y) v -= (float)s;
                break;
            case UM_LOSS_MAX_CONF:
                if (j == am) v += (float)s;
                break;
            default:
                v -= (float)(s / (double)k);
            }
            g[j] = bad ? NAN : v;
        }
    }
}

static unsigned row_blocks(int64_t n) {
    int64_t b = (n + WARPS - 1) / WARPS;
    return (unsigned)(b < 65535 ? b : 65535);
}

int um_cu_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor *losses) {
    const int64_t n = logits->size[0], k = logits->size[1];
    if (n == 0) return UM_OK;
    const int64_t *labels = target && target->dtype == UM_INT64 ? um_i64(target) : NULL;
    const float *probs = target && target->dtype == UM_FLOAT32 ? um_f32(target) : NULL;
    loss_fwd<<<row_blocks(n), WARPS * 32>>>((int)kind, um_f32(logits), labels, probs, um_f32(losses), n, k);
    UM_CU_LAUNCHED("loss_fwd");
    return UM_OK;
}

int um_cu_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, double scale,
                        const um_tensor *w, um_tensor *grad) {
    const int64_t n = logits->size[0], k = logits->size[1];
    if (n == 0) return UM_OK;
    const int64_t *labels = target && target->dtype == UM_INT64 ? um_i64(target) : NULL;
    const float *probs = target && target->dtype == UM_FLOAT32 ? um_f32(target) : NULL;
    loss_bwd<<<row_blocks(n), WARPS * 32>>>((int)kind, um_f32(logits), labels, probs, scale, w ? um_f32(w) : NULL,
                                            um_f32(grad), n, k);
    UM_CU_LAUNCHED("loss_bwd");
    return UM_OK;
}
