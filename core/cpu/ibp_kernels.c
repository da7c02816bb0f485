/* CPU kernels of interval bound propagation (core/ood/ood_ops.h): the clipped input box,
 * the elision of the last Linear layer into bounds on logit differences (and its backward,
 * for GOOD training), and the bound on the max softmax confidence. Sums run in double; examples are spread over OpenMP threads. */
#include <math.h>
#include <stdlib.h>
#include "cpu/cpu.h"
#include "ood/ood_ops.h"

static float clip01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

int um_cpu_ibp_input_box(um_tensor *lo, um_tensor *hi, const um_tensor *z, float eps) {
    int64_t total = um_numel(z);
    const float *zp = um_f32(z);
    float *l = um_f32(lo), *h = um_f32(hi);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < total; i++) {
        l[i] = clip01(zp[i] - eps);
        h[i] = clip01(zp[i] + eps);
    }
    return UM_OK;
}

/* In centre/radius form, for each pair k < j at once: with D = w_k - w_j, c = (lo + hi)/2 and
 * r = (hi - lo)/2, ud[k,j] = D.c + |D|.r and ud[j,k] = -D.c + |D|.r (equal to the lo/hi form
 * up to rounding), so each pair costs one pass over m that vectorises. */
int um_cpu_ibp_elision(um_tensor *ud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w, const um_tensor *b) {
    int64_t n = lo->size[0], m = lo->size[1], K = w->size[0];
    const float *l = um_f32(lo), *h = um_f32(hi), *wp = um_f32(w), *bp = b ? um_f32(b) : NULL;
    float *out = um_f32(ud);
    int failed = 0;
    #pragma omp parallel
    {
        float *cr = malloc(sizeof(float) * 2 * (size_t)(m ? m : 1));
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (!cr) {
                failed = 1;
                continue;
            }
            float *c = cr, *r = cr + m;
            for (int64_t q = 0; q < m; q++) {
                c[q] = 0.5f * (l[i * m + q] + h[i * m + q]);
                r[q] = h[i * m + q] - c[q];
            }
            float *o = out + i * K * K;
            for (int64_t k = 0; k < K; k++) {
                o[k * K + k] = 0;
                for (int64_t j = k + 1; j < K; j++) {
                    const float *wk = wp + k * m, *wj = wp + j * m;
                    double centre = 0, radius = 0;
                    for (int64_t q = 0; q < m; q++) {
                        float d = wk[q] - wj[q];
                        centre += (double)(d * c[q]);
                        radius += (double)(fabsf(d) * r[q]);
                    }
                    double bias = bp ? (double)bp[k] - (double)bp[j] : 0;
                    o[k * K + j] = (float)(centre + radius + bias);
                    o[j * K + k] = (float)(-centre + radius - bias);
                }
            }
        }
        free(cr);
    }
    return failed ? UM_ENOMEM : UM_OK;
}

int um_cpu_ibp_confidence(um_tensor *conf, const um_tensor *ud) {
    int64_t n = ud->size[0], K = ud->size[1];
    const float *u = um_f32(ud);
    float *c = um_f32(conf);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double best = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            const float *row = u + (i * K + k) * K;
            double mx = -INFINITY, s = 0;   /* lse_j(-ud[k,j]), stable */
            for (int64_t j = 0; j < K; j++) mx = fmax(mx, -(double)row[j]);
            for (int64_t j = 0; j < K; j++) s += exp(-(double)row[j] - mx);
            double v = -(mx + log(s));
            if (v > best) best = v;
        }
        c[i] = (float)exp(best);
    }
    return UM_OK;
}

/* Per example for the box gradients, then per class row for gw and gb, so that no two
 * threads add into the same place. A pair with gud = 0 (GOOD: all but the arg-max) costs
 * nothing. */
int um_cpu_ibp_elision_backward(const um_tensor *gud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w,
                                um_tensor *g_lo, um_tensor *g_hi, um_tensor *gw, um_tensor *gb) {
    int64_t n = lo->size[0], m = lo->size[1], K = w->size[0];
    const float *gu = um_f32(gud), *l = um_f32(lo), *h = um_f32(hi), *wp = um_f32(w);
    float *gl = um_f32(g_lo), *gh = um_f32(g_hi), *gwp = um_f32(gw), *gbp = gb ? um_f32(gb) : NULL;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *a = gl + i * m, *b = gh + i * m;
        for (int64_t q = 0; q < m; q++) a[q] = b[q] = 0;
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < K; j++) {
                float g = gu[(i * K + k) * K + j];
                if (j == k || g == 0) continue;
                const float *wk = wp + k * m, *wj = wp + j * m;
                for (int64_t q = 0; q < m; q++) {
                    float d = wk[q] - wj[q];
                    if (d > 0) b[q] += g * d;
                    else a[q] += g * d;
                }
            }
    }
    #pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < K; k++) {
        float *row = gwp + k * m;
        double bias = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < K; j++) {
                if (j == k) continue;
                /* k first: d(ud[k,j])/d(w_k) = sel_kj; k second: d(ud[j,k])/d(w_k) = -sel_jk */
                float g1 = gu[(i * K + k) * K + j], g2 = gu[(i * K + j) * K + k];
                if (g1 == 0 && g2 == 0) continue;
                bias += (double)g1 - (double)g2;
                const float *wk = wp + k * m, *wj = wp + j * m, *li = l + i * m, *hi_ = h + i * m;
                for (int64_t q = 0; q < m; q++) {
                    float d = wk[q] - wj[q];
                    /* sel_kj: hi where d > 0; sel_jk: hi where -d > 0 */
                    float s1 = d > 0 ? hi_[q] : li[q], s2 = d < 0 ? hi_[q] : li[q];
                    row[q] += g1 * s1 - g2 * s2;
                }
            }
        if (gbp) gbp[k] += (float)bias;
    }
    return UM_OK;
}
