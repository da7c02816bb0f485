/* CPU kernels of the attacks with per-example state (core/ood/ood_ops.h): the APGD step with
 * momentum, the momentum step of Monotone PGD, row copies under a mask and the detection of
 * rows whose gradient is exactly zero. Examples are spread over OpenMP threads. */
#include <math.h>
#include "cpu/cpu.h"
#include "ood/ood_ops.h"

static float clip01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

/* Row xi onto the eps-ball around zi (l-inf clip, or l2 radial shrink), then [0,1]^d. */
static void project(float *xi, const float *zi, int64_t d, float eps, int norm) {
    if (norm == 0) {
        for (int64_t k = 0; k < d; k++) {
            float dz = xi[k] - zi[k];
            dz = dz < -eps ? -eps : (dz > eps ? eps : dz);
            xi[k] = clip01(zi[k] + dz);
        }
        return;
    }
    double d2 = 0;
    for (int64_t k = 0; k < d; k++) d2 += (double)(xi[k] - zi[k]) * (xi[k] - zi[k]);
    float shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
    for (int64_t k = 0; k < d; k++) xi[k] = clip01(zi[k] + shrink * (xi[k] - zi[k]));
}

static double row_norm(const float *g, int64_t d) {
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)g[k] * g[k];
    return sqrt(s);
}

/* Allocation-free: the candidate s is recomputed per entry (l2 needs its distance to z first). */
int um_cpu_apgd_step(um_tensor *x, um_tensor *x_prev, const um_tensor *grad, const um_tensor *z, const um_tensor *eta,
                     float eps, float alpha, int norm) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    float *xp = um_f32(x), *pp = um_f32(x_prev);
    const float *gp = um_f32(grad), *zp = um_f32(z), *ep = um_f32(eta);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *xi = xp + i * d, *pi = pp + i * d;
        const float *gi = gp + i * d, *zi = zp + i * d;
        float scale = norm == 0 ? ep[i] : (float)(ep[i] / (row_norm(gi, d) + 1e-12));
        float shrink = 1;
        if (norm != 0) {
            double d2 = 0;
            for (int64_t k = 0; k < d; k++) {
                double w = (double)xi[k] + scale * gi[k] - zi[k];
                d2 += w * w;
            }
            shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
        }
        for (int64_t k = 0; k < d; k++) {
            float old = xi[k], sk;
            if (norm == 0) {
                float dz = old + scale * (float)((gi[k] > 0) - (gi[k] < 0)) - zi[k];
                sk = clip01(zi[k] + (dz < -eps ? -eps : (dz > eps ? eps : dz)));
            } else {
                sk = clip01(zi[k] + shrink * (old + scale * gi[k] - zi[k]));
            }
            xi[k] = old + alpha * (sk - old) + (1 - alpha) * (old - pi[k]);
            pi[k] = old;
        }
        project(xi, zi, d, eps, norm);
    }
    return UM_OK;
}

int um_cpu_mpgd_step(um_tensor *x, um_tensor *v, const um_tensor *grad, const um_tensor *z, const um_tensor *lr,
                     float eps, float momentum, int norm) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    float *xp = um_f32(x), *vp = um_f32(v);
    const float *gp = um_f32(grad), *zp = um_f32(z), *lp = um_f32(lr);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *xi = xp + i * d, *vi = vp + i * d;
        const float *gi = gp + i * d;
        for (int64_t k = 0; k < d; k++) {
            vi[k] = momentum * vi[k] + gi[k];
            xi[k] += lp[i] * vi[k];
        }
        project(xi, zp + i * d, d, eps, norm);
    }
    return UM_OK;
}

int um_cpu_copy_rows(um_tensor *dst, const um_tensor *src, const um_tensor *mask) {
    int64_t n = dst->size[0], d = um_numel(dst) / (n ? n : 1);
    float *o = um_f32(dst);
    const float *s = um_f32(src), *m = um_f32(mask);
    for (int64_t i = 0; i < n; i++)
        if (m[i] != 0)
            for (int64_t k = 0; k < d; k++) o[i * d + k] = s[i * d + k];
    return UM_OK;
}

int um_cpu_zero_rows(um_tensor *flags, const um_tensor *grad) {
    int64_t n = grad->size[0], d = um_numel(grad) / (n ? n : 1);
    const float *g = um_f32(grad);
    float *f = um_f32(flags);
    for (int64_t i = 0; i < n; i++) {
        int zero = 1;
        for (int64_t k = 0; k < d && zero; k++) zero = g[i * d + k] == 0;
        f[i] = (float)zero;
    }
    return UM_OK;
}
