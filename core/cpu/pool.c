/* CPU max and average pooling, OpenMP over the (n, c) planes. Cells of the window that
 * fall outside the input are ignored, which is TensorFlow's `same` rule: max-pool never
 * selects them and avg-pool divides by the number of real cells. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "error.h"
#include "cpu/nn_cpu.h"

/* Max-pool's choice, as PyTorch's: cell v replaces the running maximum m when larger, or
 * when it is the window's first NaN, so a NaN input gives a NaN output (and gets the
 * gradient) instead of being skipped. */
#define TAKES(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))

/* Clip the window starting at o*stride - pad to [0, in). */
static inline void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in,
                          int64_t *lo, int64_t *hi) {
    int64_t s = o * stride - pad, e = s + k;
    *lo = s < 0 ? 0 : s;
    *hi = e > in ? in : e;
}

/* 2x2 windows with stride 2 that tile the input exactly (LeNet's pools on 28x28 and
 * 14x14, ResNetSmall's average-pool shortcuts): each output reads two row pairs with fixed
 * offsets, with no window clipping (figures in docs/performance.md §5). The compiler
 * vectorises the average but not the max-pool's stride-2 selections, which AVX2 builds
 * run in pool_avx2.c instead (docs/performance.md §2.4). */
static int is_tiled_2x2(const um_window2d *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pad_top == 0 &&
           g->pad_left == 0 && g->oh * 2 == g->h && g->ow * 2 == g->w;
}

/* Forward over exact 2x2 tiles, max or average, one simd loop per output row. */
static void pool_forward_2x2(const um_window2d *g, const float *xp, float *yp, int is_max) {
    const int64_t planes = g->n * g->c, w = g->w, ow = g->ow;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *r0 = xp + (pl * g->h + 2 * oy) * w, *r1 = r0 + w;
            float *out = yp + (pl * g->oh + oy) * ow;
            if (is_max) {
#pragma omp simd
                for (int64_t ox = 0; ox < ow; ox++) {
                    /* as the general loop: from -inf (a window of -inf gives -inf, as
                     * PyTorch), a later cell wins if larger or the first NaN (which
                     * then stays, as in PyTorch) */
                    float m = -INFINITY;
                    m = TAKES(r0[2 * ox], m) ? r0[2 * ox] : m;
                    m = TAKES(r0[2 * ox + 1], m) ? r0[2 * ox + 1] : m;
                    m = TAKES(r1[2 * ox], m) ? r1[2 * ox] : m;
                    m = TAKES(r1[2 * ox + 1], m) ? r1[2 * ox + 1] : m;
                    out[ox] = m;
                }
            } else {
#pragma omp simd
                for (int64_t ox = 0; ox < ow; ox++)   /* the general loop's sum from 0, in its order */
                    out[ox] = (0.0f + r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) / 4.0f;
            }
        }
}

/* The gradient goes to the first maximum of each window (as the general loop) and every
 * other cell gets zero, without branches. */
/* relu: only windows whose maximum is not <= 0 (NaN passes, as through PyTorch's ReLU) pass their gradient on (the ReLU before the
 * pool folded in; x is then the ReLU's output). */
#ifndef __AVX2__
static void maxpool_backward_2x2(const um_window2d *g, const float *xp, const float *gyp, float *gxp, int relu) {
    const int64_t planes = g->n * g->c, w = g->w, ow = g->ow;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const int64_t row = (pl * g->h + 2 * oy) * w;
            const float *r0 = xp + row, *r1 = r0 + w;
            float *g0 = gxp + row, *g1 = g0 + w;
            const float *gy = gyp + (pl * g->oh + oy) * ow;
#pragma omp simd
            for (int64_t ox = 0; ox < ow; ox++) {
                float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
                int sb = TAKES(b, a);
                float m = sb ? b : a;
                int sc = TAKES(c, m);
                m = sc ? c : m;
                int sd = TAKES(d, m);
                m = sd ? d : m;
                float v = relu && m <= 0.0f ? 0.0f : gy[ox];
                g1[2 * ox + 1] = sd ? v : 0.0f;
                g1[2 * ox] = (!sd && sc) ? v : 0.0f;
                g0[2 * ox + 1] = (!sd && !sc && sb) ? v : 0.0f;
                g0[2 * ox] = (!sd && !sc && !sb) ? v : 0.0f;
            }
        }
}
#endif

int um_cpu_maxpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y) {
    const float *xp = um_f32(x);
    float *yp = um_f32(y);
    const int64_t planes = g->n * g->c;
    if (is_tiled_2x2(g)) {
#ifdef __AVX2__
        return um_cpu_maxpool2d_2x2_avx2(g, xp, NULL, yp, UM_POOL2X2_FORWARD);
#else
        pool_forward_2x2(g, xp, yp, 1);
        return UM_OK;
#endif
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = xp + pl * g->h * g->w;
        float *yi = yp + pl * g->oh * g->ow;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            window(oy, g->sh, g->pad_top, g->kh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1;
                window(ox, g->sw, g->pad_left, g->kw, g->w, &x0, &x1);
                float m = -INFINITY;   /* a window of -inf gives -inf, as PyTorch */
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        float v = xi[iy * g->w + ix];
                        if (TAKES(v, m)) m = v;
                    }
                yi[oy * g->ow + ox] = m;
            }
        }
    }
    return UM_OK;
}

/* Windows that tile the input (window == stride, LeNet's 2x2 pools): every cell belongs
 * to at most one window, so each is written once instead of zeroed and accumulated. */
static void maxpool_backward_tiled(const um_window2d *g, const float *xp, const float *gyp, float *gxp, int relu) {
    const int64_t planes = g->n * g->c;
    const int covered = (g->oh * g->sh - g->pad_top >= g->h) && (g->ow * g->sw - g->pad_left >= g->w) &&
                        g->pad_top == 0 && g->pad_left == 0;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = xp + pl * g->h * g->w, *gyi = gyp + pl * g->oh * g->ow;
        float *gxi = gxp + pl * g->h * g->w;
        if (!covered) memset(gxi, 0, (size_t)(g->h * g->w) * sizeof(float));
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            window(oy, g->sh, g->pad_top, g->kh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1;
                window(ox, g->sw, g->pad_left, g->kw, g->w, &x0, &x1);
                int64_t best = y0 * g->w + x0;
                float m = xi[best];
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        float v = xi[iy * g->w + ix];
                        if (TAKES(v, m)) { m = v; best = iy * g->w + ix; }
                        gxi[iy * g->w + ix] = 0.0f;
                    }
                gxi[best] = relu && m <= 0.0f ? 0.0f : gyi[oy * g->ow + ox];
            }
        }
    }
}

static int maxpool_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx, int relu) {
    const float *xp = um_f32(x), *gyp = um_f32(gy);
    float *gxp = um_f32(gx);
    const int64_t planes = g->n * g->c;
    if (is_tiled_2x2(g)) {
#ifdef __AVX2__
        return um_cpu_maxpool2d_2x2_avx2(g, xp, gyp, gxp, relu ? UM_POOL2X2_RELU_BACKWARD : UM_POOL2X2_BACKWARD);
#else
        maxpool_backward_2x2(g, xp, gyp, gxp, relu);
        return UM_OK;
#endif
    }
    if (g->kh == g->sh && g->kw == g->sw) {
        maxpool_backward_tiled(g, xp, gyp, gxp, relu);
        return UM_OK;
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = xp + pl * g->h * g->w, *gyi = gyp + pl * g->oh * g->ow;
        float *gxi = gxp + pl * g->h * g->w;
        memset(gxi, 0, (size_t)(g->h * g->w) * sizeof(float));
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            window(oy, g->sh, g->pad_top, g->kh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1, best = -1;
                window(ox, g->sw, g->pad_left, g->kw, g->w, &x0, &x1);
                float m = -FLT_MAX;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        float v = xi[iy * g->w + ix];
                        if (TAKES(v, m) || best < 0) { m = v; best = iy * g->w + ix; }
                    }
                if (best >= 0 && (!relu || !(m <= 0.0f))) gxi[best] += gyi[oy * g->ow + ox];
            }
        }
    }
    return UM_OK;
}

int um_cpu_maxpool2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx) {
    return maxpool_backward(g, x, gy, gx, 0);
}

int um_cpu_maxpool2d_relu_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx) {
    return maxpool_backward(g, x, gy, gx, 1);
}

/* Average-pool backward over exact 2x2 tiles (ResNetSmall's shortcuts: window = stride
 * = 2, `valid`, even sizes): each cell gets 0 + gy/4 as from the general loops (so -0
 * stays +0), without their window clipping (docs/performance.md §5). */
static void avgpool_backward_2x2(const um_window2d *g, const float *gyp, float *gxp) {
    const int64_t planes = g->n * g->c, w = g->w, ow = g->ow;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            float *g0 = gxp + (pl * g->h + 2 * oy) * w, *g1 = g0 + w;
            const float *gy = gyp + (pl * g->oh + oy) * ow;
#pragma omp simd
            for (int64_t ox = 0; ox < ow; ox++) {
                const float v = 0.0f + gy[ox] / 4.0f;   /* as the general loop's zeroed sum */
                g0[2 * ox] = v; g0[2 * ox + 1] = v; g1[2 * ox] = v; g1[2 * ox + 1] = v;
            }
        }
}

int um_cpu_avgpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y) {
    const float *xp = um_f32(x);
    float *yp = um_f32(y);
    const int64_t planes = g->n * g->c;
    if (is_tiled_2x2(g)) {
        pool_forward_2x2(g, xp, yp, 0);
        return UM_OK;
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = xp + pl * g->h * g->w;
        float *yi = yp + pl * g->oh * g->ow;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            window(oy, g->sh, g->pad_top, g->kh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1;
                window(ox, g->sw, g->pad_left, g->kw, g->w, &x0, &x1);
                float s = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) s += xi[iy * g->w + ix];
                int64_t count = (y1 - y0) * (x1 - x0);
                yi[oy * g->ow + ox] = count > 0 ? s / (float)count : 0.0f;
            }
        }
    }
    return UM_OK;
}

int um_cpu_avgpool2d_backward(const um_window2d *g, const um_tensor *gy, um_tensor *gx) {
    const float *gyp = um_f32(gy);
    float *gxp = um_f32(gx);
    const int64_t planes = g->n * g->c;
    if (is_tiled_2x2(g)) {
        avgpool_backward_2x2(g, gyp, gxp);
        return UM_OK;
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *gyi = gyp + pl * g->oh * g->ow;
        float *gxi = gxp + pl * g->h * g->w;
        memset(gxi, 0, (size_t)(g->h * g->w) * sizeof(float));
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0, y1;
            window(oy, g->sh, g->pad_top, g->kh, g->h, &y0, &y1);
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0, x1;
                window(ox, g->sw, g->pad_left, g->kw, g->w, &x0, &x1);
                int64_t count = (y1 - y0) * (x1 - x0);
                if (count <= 0) continue;
                float v = gyi[oy * g->ow + ox] / (float)count;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) gxi[iy * g->w + ix] += v;
            }
        }
    }
    return UM_OK;
}
