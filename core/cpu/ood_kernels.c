/* CPU kernels for noise and PGD: pixel permutation, separable mirror-padded Gaussian
 * low-pass, per-image rescale, random start, the projected ascent step and best-iterate
 * bookkeeping. Images are spread over OpenMP threads. */
#include <math.h>
#include <stdlib.h>
#include "alloc.h"
#include "ood/ood_ops.h"
#include "cpu/cpu.h"

static int cpu_permute_pixels(um_tensor *out, const um_tensor *x, const um_tensor *perms) {
    int64_t n = x->size[0], c = x->size[1], hw = x->size[2] * x->size[3];
    const float *src = um_f32(x);
    float *dst = um_f32(out);
    const int64_t *p = um_i64(perms);
    int in_place = out->storage == x->storage;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float local[4096];
        float *tmp = NULL;
        const float *from = src + i * c * hw;
        if (in_place) {   /* permuting in place needs a copy of the image */
            tmp = c * hw <= 4096 ? local : malloc(sizeof(float) * (size_t)(c * hw));
            for (int64_t k = 0; k < c * hw; k++) tmp[k] = from[k];
            from = tmp;
        }
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t q = 0; q < hw; q++) dst[(i * c + ch) * hw + q] = from[ch * hw + p[i * hw + q]];
        if (tmp && tmp != local) free(tmp);
    }
    return UM_OK;
}

/* SYMMETRIC mirror: index -1 maps to 0, H maps to H-1. */
static inline int64_t mirror(int64_t i, int64_t n) {
    if (i < 0) return -i - 1;
    if (i >= n) return 2 * n - i - 1;
    return i;
}

static int cpu_lowpass(um_tensor *out, const um_tensor *x, const float *taps, int r) {
    int64_t planes = x->size[0] * x->size[1], h = x->size[2], w = x->size[3];
    const float *src = um_f32(x);
    float *dst = um_f32(out);
    float *scratch = um_alloc(sizeof(float) * (size_t)(h * w) * (size_t)planes);
    if (!scratch) return UM_ENOMEM;
    #pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        const float *in = src + p * h * w;
        float *mid = scratch + p * h * w, *o = dst + p * h * w;
        for (int64_t y = 0; y < h; y++)          /* along rows */
            for (int64_t xx = 0; xx < w; xx++) {
                float s = 0;
                for (int t = -r; t <= r; t++) s += taps[t + r] * in[y * w + mirror(xx + t, w)];
                mid[y * w + xx] = s;
            }
        for (int64_t y = 0; y < h; y++)          /* along columns */
            for (int64_t xx = 0; xx < w; xx++) {
                float s = 0;
                for (int t = -r; t <= r; t++) s += taps[t + r] * mid[mirror(y + t, h) * w + xx];
                o[y * w + xx] = s;
            }
    }
    um_dealloc(scratch);
    return UM_OK;
}

static int cpu_rescale(um_tensor *x) {
    int64_t n = x->size[0], d = um_numel(x) / (n ? n : 1);
    float *p = um_f32(x);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *q = p + i * d, lo = q[0], hi = q[0];
        for (int64_t k = 1; k < d; k++) { lo = fminf(lo, q[k]); hi = fmaxf(hi, q[k]); }
        if (hi > lo) {
            float inv = 1.0f / (hi - lo);
            for (int64_t k = 0; k < d; k++) q[k] = (q[k] - lo) * inv;
        }
    }
    return UM_OK;
}

static inline float clip01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

static int cpu_random_start(um_tensor *x, const um_tensor *z, const um_tensor *u, const um_tensor *s) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    const float *zp = um_f32(z), *up = um_f32(u), *sp = um_f32(s);
    float *xp = um_f32(x);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < d; k++) xp[i * d + k] = clip01(zp[i * d + k] + sp[i] * up[i * d + k]);
    return UM_OK;
}

static int cpu_pgd_step(um_tensor *x, const um_tensor *grad, const um_tensor *z, float step, float eps, int p) {
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1);
    float *xp = um_f32(x);
    const float *gp = um_f32(grad), *zp = um_f32(z);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *xi = xp + i * d;
        const float *gi = gp + i * d, *zi = zp + i * d;
        if (p == 0) {
            /* as the authors: step, clip to [0,1], then clip the offset to [-eps, eps]; since
             * z is in [0,1] the result lies in both sets */
            for (int64_t k = 0; k < d; k++) {
                float g = gi[k], v = xi[k] + step * (float)((g > 0) - (g < 0));
                float delta = clip01(v) - zi[k];
                delta = delta < -eps ? -eps : (delta > eps ? eps : delta);
                xi[k] = zi[k] + delta;
            }
        } else {
            double g2 = 0, d2 = 0;
            for (int64_t k = 0; k < d; k++) g2 += (double)gi[k] * gi[k];
            float scale = g2 > 0 ? (float)(step / sqrt(g2)) : 0.0f;
            for (int64_t k = 0; k < d; k++) {
                xi[k] += scale * gi[k];
                d2 += (double)(xi[k] - zi[k]) * (xi[k] - zi[k]);
            }
            float shrink = d2 > (double)eps * eps ? (float)(eps / sqrt(d2)) : 1.0f;
            for (int64_t k = 0; k < d; k++) xi[k] = clip01(zi[k] + shrink * (xi[k] - zi[k]));
        }
    }
    return UM_OK;
}

static int cpu_keep_best(um_tensor *best_x, um_tensor *best_obj, const um_tensor *x, const um_tensor *obj) {
    int64_t n = x->size[0], d = um_numel(x) / (n ? n : 1);
    float *bx = um_f32(best_x), *bo = um_f32(best_obj);
    const float *xp = um_f32(x), *op = um_f32(obj);
    for (int64_t i = 0; i < n; i++) {
        if (!(op[i] > bo[i])) continue;
        bo[i] = op[i];
        for (int64_t k = 0; k < d; k++) bx[i * d + k] = xp[i * d + k];
    }
    return UM_OK;
}

const struct um_ood_ops um_cpu_ood_ops = {
    .permute_pixels = cpu_permute_pixels,
    .lowpass = cpu_lowpass,
    .rescale = cpu_rescale,
    .random_start = cpu_random_start,
    .pgd_step = cpu_pgd_step,
    .keep_best = cpu_keep_best,
    .ibp_input_box = um_cpu_ibp_input_box,
    .ibp_elision = um_cpu_ibp_elision,
    .ibp_confidence = um_cpu_ibp_confidence,
    .ibp_elision_backward = um_cpu_ibp_elision_backward,
    .apgd_step = um_cpu_apgd_step,
    .mpgd_step = um_cpu_mpgd_step,
    .copy_rows = um_cpu_copy_rows,
    .zero_rows = um_cpu_zero_rows,
};
