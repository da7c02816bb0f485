/* CPU reductions and softmax over the middle axis of a contiguous (outer, n, inner) view.
 * Sums accumulate in double so long reductions keep float32 accuracy. */
#include <float.h>
#include <math.h>
#include "cpu/cpu.h"

int um_cpu_reduce(um_tensor *out, um_redop op, const um_tensor *a, int64_t outer, int64_t n, int64_t inner) {
    const float *x = um_f32(a);
    float *y = um_f32(out);
    #pragma omp parallel for if (outer * n * inner > 65536 && outer * inner > 1) schedule(static)
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        const float *p = x + o * n * inner + i;
        if (op == UM_SUM || op == UM_MEAN) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += p[k * inner];
            y[oi] = (float)(op == UM_MEAN ? s / (double)n : s);
        } else {
            float m = p[0];
            for (int64_t k = 1; k < n; k++) {
                float v = p[k * inner];
                if (isnan(v)) { m = v; break; }
                if (op == UM_MAX ? v > m : v < m) m = v;
            }
            y[oi] = m;
        }
    }
    return UM_OK;
}

int um_cpu_arg_extreme(um_tensor *out, int want_max, const um_tensor *a, int64_t outer, int64_t n, int64_t inner) {
    const float *x = um_f32(a);
    int64_t *y = um_i64(out);
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner, best = 0;
        const float *p = x + o * n * inner + i;
        for (int64_t k = 1; k < n; k++) {
            float v = p[k * inner], m = p[best * inner];
            if (want_max ? v > m : v < m) best = k;   /* first extreme wins ties, as NumPy */
        }
        y[oi] = best;
    }
    return UM_OK;
}

int um_cpu_softmax(um_tensor *out, const um_tensor *a, int64_t outer, int64_t n, int64_t inner, int log_) {
    const float *x = um_f32(a);
    float *y = um_f32(out);
    #pragma omp parallel for if (outer * n * inner > 65536 && outer * inner > 1) schedule(static)
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        const float *p = x + o * n * inner + i;
        float *q = y + o * n * inner + i;
        float m = -INFINITY;
        for (int64_t k = 0; k < n; k++) if (p[k * inner] > m) m = p[k * inner];
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += exp((double)(p[k * inner] - m));
        if (log_) {
            float ls = (float)log(s);
            for (int64_t k = 0; k < n; k++) q[k * inner] = p[k * inner] - m - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t k = 0; k < n; k++) q[k * inner] = expf(p[k * inner] - m) * inv;
        }
    }
    return UM_OK;
}
