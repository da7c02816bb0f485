/* CUDA max and average pooling with TensorFlow's `same` rule, as core/cpu/pool.c: window
 * cells outside the input are ignored (max-pool never picks them, avg-pool divides by the
 * real cells). Forward: one thread per output. Backward gathers instead of scattering:
 * one thread per input cell visits the windows that contain it in the CPU's order
 * (oy, then ox, ascending), so sums are deterministic and equal to the CPU's, and max-pool
 * re-finds each window's arg-max (first maximum wins) exactly as the CPU does. */
#include <float.h>
#include "cuda_backend.h"

/* Clip the window starting at o*stride - pad to [0, in). */
__device__ __forceinline__ void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in, int64_t &lo,
                                       int64_t &hi) {
    int64_t s = o * stride - pad, e = s + k;
    lo = s < 0 ? 0 : s;
    hi = e > in ? in : e;
}

/* Outputs o whose window [o*stride - pad, o*stride - pad + k) contains input cell i. */
__device__ __forceinline__ void covering(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t out, int64_t &lo,
                                         int64_t &hi) {
    int64_t a = i + pad - k + 1;             /* o*stride >= a */
    lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    hi = (i + pad) / stride + 1;             /* o*stride <= i + pad */
    if (hi > out) hi = out;
}

/* Max-pool's choice, as the CPU's (core/cpu/pool.c) and PyTorch's: larger, or the window's
 * first NaN, which then stays. */
#define TAKES(v, m) ((v) > (m) || ((v) != (v) && (m) == (m)))

/* Flat index (within the plane) of the window's first maximum, as the CPU's backward picks it. */
__device__ __forceinline__ int64_t argmax_cell(const float *xi, int64_t w, int64_t y0, int64_t y1, int64_t x0,
                                               int64_t x1) {
    float m = -FLT_MAX;
    int64_t best = -1;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            float v = xi[iy * w + ix];
            if (TAKES(v, m) || best < 0) { m = v; best = iy * w + ix; }
        }
    return best;
}

__global__ void maxpool_fwd(um_window2d g, const float *x, float *y) {
    UM_CU_FOR(i, g.n * g.c * g.oh * g.ow) {
        int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh, pl = i / (g.ow * g.oh);
        const float *xi = x + pl * g.h * g.w;
        int64_t y0, y1, x0, x1;
        window(oy, g.sh, g.pad_top, g.kh, g.h, y0, y1);
        window(ox, g.sw, g.pad_left, g.kw, g.w, x0, x1);
        float m = -INFINITY;   /* a window of -inf gives -inf, as the CPU and PyTorch */
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
                float v = xi[iy * g.w + ix];
                if (TAKES(v, m)) m = v;
            }
        y[i] = m;
    }
}

__global__ void maxpool_bwd(um_window2d g, const float *x, const float *gy, float *gx) {
    UM_CU_FOR(i, g.n * g.c * g.h * g.w) {
        int64_t ix = i % g.w, iy = (i / g.w) % g.h, pl = i / (g.w * g.h);
        const float *xi = x + pl * g.h * g.w, *gyi = gy + pl * g.oh * g.ow;
        int64_t oy0, oy1, ox0, ox1, self = iy * g.w + ix;
        covering(iy, g.sh, g.pad_top, g.kh, g.oh, oy0, oy1);
        covering(ix, g.sw, g.pad_left, g.kw, g.ow, ox0, ox1);
        float s = 0.0f;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            int64_t y0, y1;
            window(oy, g.sh, g.pad_top, g.kh, g.h, y0, y1);
            for (int64_t ox = ox0; ox < ox1; ox++) {
                int64_t x0, x1;
                window(ox, g.sw, g.pad_left, g.kw, g.w, x0, x1);
                if (argmax_cell(xi, g.w, y0, y1, x0, x1) == self) s += gyi[oy * g.ow + ox];
            }
        }
        gx[i] = s;
    }
}

__global__ void avgpool_fwd(um_window2d g, const float *x, float *y) {
    UM_CU_FOR(i, g.n * g.c * g.oh * g.ow) {
        int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh, pl = i / (g.ow * g.oh);
        const float *xi = x + pl * g.h * g.w;
        int64_t y0, y1, x0, x1;
        window(oy, g.sh, g.pad_top, g.kh, g.h, y0, y1);
        window(ox, g.sw, g.pad_left, g.kw, g.w, x0, x1);
        float s = 0.0f;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) s += xi[iy * g.w + ix];
        int64_t count = (y1 - y0) * (x1 - x0);
        y[i] = count > 0 ? s / (float)count : 0.0f;
    }
}

__global__ void avgpool_bwd(um_window2d g, const float *gy, float *gx) {
    UM_CU_FOR(i, g.n * g.c * g.h * g.w) {
        int64_t ix = i % g.w, iy = (i / g.w) % g.h, pl = i / (g.w * g.h);
        const float *gyi = gy + pl * g.oh * g.ow;
        int64_t oy0, oy1, ox0, ox1;
        covering(iy, g.sh, g.pad_top, g.kh, g.oh, oy0, oy1);
        covering(ix, g.sw, g.pad_left, g.kw, g.ow, ox0, ox1);
        float s = 0.0f;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            int64_t y0, y1;
            window(oy, g.sh, g.pad_top, g.kh, g.h, y0, y1);
            for (int64_t ox = ox0; ox < ox1; ox++) {
                int64_t x0, x1;
                window(ox, g.sw, g.pad_left, g.kw, g.w, x0, x1);
                int64_t count = (y1 - y0) * (x1 - x0);
                if (count > 0) s += gyi[oy * g.ow + ox] / (float)count;
            }
        }
        gx[i] = s;
    }
}

int um_cu_maxpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y) {
    int64_t n = g->n * g->c * g->oh * g->ow;
    if (n == 0) return UM_OK;
    maxpool_fwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(*g, um_f32(x), um_f32(y));
    UM_CU_LAUNCHED("maxpool_fwd");
    return UM_OK;
}

int um_cu_maxpool2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx) {
    int64_t n = g->n * g->c * g->h * g->w;
    if (n == 0) return UM_OK;
    maxpool_bwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(*g, um_f32(x), um_f32(gy), um_f32(gx));
    UM_CU_LAUNCHED("maxpool_bwd");
    return UM_OK;
}

int um_cu_avgpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y) {
    int64_t n = g->n * g->c * g->oh * g->ow;
    if (n == 0) return UM_OK;
    avgpool_fwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(*g, um_f32(x), um_f32(y));
    UM_CU_LAUNCHED("avgpool_fwd");
    return UM_OK;
}

int um_cu_avgpool2d_backward(const um_window2d *g, const um_tensor *gy, um_tensor *gx) {
    int64_t n = g->n * g->c * g->h * g->w;
    if (n == 0) return UM_OK;
    avgpool_bwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(*g, um_f32(gy), um_f32(gx));
    UM_CU_LAUNCHED("avgpool_bwd");
    return UM_OK;
}
