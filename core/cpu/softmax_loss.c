/* CPU losses on logits (n, k) with a fused, stable log-softmax (max subtracted, sums in
 * double). With lse = log sum exp z:  cross-entropy -log p_y = lse - z_y (or, for
 * probability rows t, sum_k t_k (lse - z_k));  max_conf = log max_k p_k = max z - lse
 * (the arg-max is a constant: no gradient flows through the choice);
 * uniform_conf = -(1/k) sum_k log p_k = lse - mean z. */
#include <math.h>
#include "error.h"
#include "cpu/nn_cpu.h"

static double row_lse(const float *z, int64_t k, int64_t *argmax) {
    float m = z[0];
    int64_t am = 0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > m) { m = z[j]; am = j; }
    double s = 0.0;
    for (int64_t j = 0; j < k; j++) s += exp((double)z[j] - (double)m);
    if (argmax) *argmax = am;
    return (double)m + log(s);
}

static int check_targets(um_loss_kind kind, const um_tensor *target, int64_t n, int64_t k) {
    if (kind != UM_LOSS_CROSS_ENTROPY || target->dtype != UM_INT64) return UM_OK;
    const int64_t *t = um_i64(target);
    for (int64_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= k)
            return um_fail(UM_EINVAL, "class index %lld of example %lld is outside [0, %lld)",
                           (long long)t[i], (long long)i, (long long)k);
    return UM_OK;
}

int um_cpu_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor *losses) {
    const int64_t n = logits->size[0], k = logits->size[1];
    int rc = check_targets(kind, target, n, k);
    if (rc) return rc;
    const float *zp = um_f32(logits);
    float *lp = um_f32(losses);
    for (int64_t i = 0; i < n; i++) {
        const float *z = zp + i * k;
        int64_t am;
        double lse = row_lse(z, k, &am), l = 0.0;
        switch (kind) {
        case UM_LOSS_CROSS_ENTROPY:
            if (target->dtype == UM_INT64) {
                l = lse - z[um_i64(target)[i]];
            } else {
                const float *t = um_f32(target) + i * k;
                for (int64_t j = 0; j < k; j++) l += (double)t[j] * (lse - z[j]);
            }
            break;
        case UM_LOSS_MAX_CONF:
            l = (double)z[am] - lse;
            break;
        case UM_LOSS_UNIFORM_CONF: {
            double mz = 0.0;
            for (int64_t j = 0; j < k; j++) mz += z[j];
            l = lse - mz / (double)k;
            break;
        }
        }
        lp[i] = (float)l;
    }
    return UM_OK;
}

int um_cpu_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target,
                         double scale, const um_tensor *w, um_tensor *grad) {
    const int64_t n = logits->size[0], k = logits->size[1];
    int rc = check_targets(kind, target, n, k);
    if (rc) return rc;
    const float *zp = um_f32(logits), *wp = w ? um_f32(w) : NULL;
    float *gp = um_f32(grad);
    for (int64_t i = 0; i < n; i++) {
        const float *z = zp + i * k;
        float *g = gp + i * k;
        int64_t am;
        double lse = row_lse(z, k, &am);
        double s = scale * (wp ? wp[i] : 1.0);
        /* mass: how much of softmax enters the gradient (sum of the target row for CE). */
        double mass = 1.0;
        const float *t = NULL;
        if (kind == UM_LOSS_CROSS_ENTROPY && target->dtype == UM_FLOAT32) {
            t = um_f32(target) + i * k;
            mass = 0.0;
            for (int64_t j = 0; j < k; j++) mass += t[j];
        }
        double sign = kind == UM_LOSS_MAX_CONF ? -1.0 : 1.0;
        for (int64_t j = 0; j < k; j++) g[j] = (float)(s * sign * mass * exp((double)z[j] - lse));
        switch (kind) {
        case UM_LOSS_CROSS_ENTROPY:
            if (t) {
                for (int64_t j = 0; j < k; j++) g[j] -= (float)(s * t[j]);
            } else {
                g[um_i64(target)[i]] -= (float)s;
            }
            break;
        case UM_LOSS_MAX_CONF:
            g[am] += (float)s;
            break;
        case UM_LOSS_UNIFORM_CONF:
            for (int64_t j = 0; j < k; j++) g[j] -= (float)(s / (double)k);
            break;
        }
    }
    return UM_OK;
}
