/* CPU 2-D convolution: im2col per image, then one OpenBLAS sgemm per image, with OpenMP
 * over the images of the batch (each thread owns a column buffer and a private weight-
 * gradient accumulator, summed at the end). Per image the column matrix stays in L2;
 * a whole-batch column matrix would not, and measured slower. Padding cells read as 0. */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include "error.h"
#include "nn_cpu.h"

int um_cpu_blas_serial_begin(void) {
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    return saved;
}

void um_cpu_blas_serial_end(int saved) {
    if (saved != 1) openblas_set_num_threads(saved);
}

static int64_t col_rows(const um_window2d *g) { return g->c * g->kh * g->kw; }
static int64_t col_cols(const um_window2d *g) { return g->oh * g->ow; }

/* A 1x1, stride-1, unpadded convolution reads the image itself as its column matrix. */
static int is_pointwise(const um_window2d *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
}

/* Per thread: a column buffer (K x P), a weight-gradient partial (c_out x K) and a
 * bias-gradient partial (c_out). */
static int64_t per_thread(const um_window2d *g) {
    return col_rows(g) * col_cols(g) + g->c_out * col_rows(g) + g->c_out;
}

int64_t um_cpu_conv2d_workspace(const um_window2d *g) {
    return (int64_t)omp_get_max_threads() * per_thread(g);
}

/* Range of output columns ox whose input column ox*sw - pad + kj lies inside [0, w). */
static void valid_range(int64_t out, int64_t stride, int64_t pad, int64_t k, int64_t in,
                        int64_t *lo, int64_t *hi) {
    int64_t a = pad - k;                 /* need ox*stride >= a */
    int64_t b = in + pad - k;            /* need ox*stride < b */
    int64_t l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int64_t h = b <= 0 ? 0 : (b + stride - 1) / stride;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

/* x (c, h, w) -> col (c*kh*kw, oh*ow) */
static void im2col(const um_window2d *g, const float *x, float *col) {
    const int64_t P = col_cols(g);
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *dst = col + ((c * g->kh + ki) * g->kw + kj) * P;
                int64_t lo, hi;
                valid_range(g->ow, g->sw, g->pad_left, kj, g->w, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++, dst += g->ow) {
                    int64_t iy = oy * g->sh - g->pad_top + ki;
                    if (iy < 0 || iy >= g->h || lo >= hi) {
                        memset(dst, 0, (size_t)g->ow * sizeof(float));
                        continue;
                    }
                    const float *src = x + (c * g->h + iy) * g->w - g->pad_left + kj;
                    if (lo > 0) memset(dst, 0, (size_t)lo * sizeof(float));
                    if (g->sw == 1) {
                        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * g->sw];
                    }
                    if (hi < g->ow) memset(dst + hi, 0, (size_t)(g->ow - hi) * sizeof(float));
                }
            }
}

/* col (c*kh*kw, oh*ow) summed back into gx (c, h, w), which is overwritten. */
static void col2im(const um_window2d *g, const float *col, float *gx) {
    const int64_t P = col_cols(g);
    memset(gx, 0, (size_t)(g->c * g->h * g->w) * sizeof(float));
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *src = col + ((c * g->kh + ki) * g->kw + kj) * P;
                int64_t lo, hi;
                valid_range(g->ow, g->sw, g->pad_left, kj, g->w, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++, src += g->ow) {
                    int64_t iy = oy * g->sh - g->pad_top + ki;
                    if (iy < 0 || iy >= g->h) continue;
                    float *dst = gx + (c * g->h + iy) * g->w - g->pad_left + kj;
                    if (g->sw == 1) {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] += src[ox];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw] += src[ox];
                    }
                }
            }
}

/* Threads to use over n images: all when every thread gets an image, else one thread
 * and a multithreaded BLAS (small batches, e.g. a single PGD example). */
static int image_threads(int64_t n) {
    int t = omp_get_max_threads();
    return n >= t ? t : 1;
}

int um_cpu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                          const um_tensor *bias, um_tensor *y, um_tensor *work) {
    const int64_t K = col_rows(g), P = col_cols(g), O = g->c_out;
    const float *xp = um_f32(x), *wp = um_f32(weight), *bp = bias ? um_f32(bias) : NULL;
    float *yp = um_f32(y), *wk = um_f32(work);
    const int pointwise = is_pointwise(g);
    int nt = image_threads(g->n);
    int saved = nt > 1 ? um_cpu_blas_serial_begin() : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < g->n; i++) {
        const float *xi = xp + i * g->c * g->h * g->w;
        float *yi = yp + i * O * P;
        const float *col = xi;
        if (!pointwise) {
            float *buf = wk + (int64_t)omp_get_thread_num() * per_thread(g);
            im2col(g, xi, buf);
            col = buf;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)P, (int)K, 1.0f,
                    wp, (int)K, col, (int)P, 0.0f, yi, (int)P);
        if (bp)
            for (int64_t o = 0; o < O; o++) {
                float b = bp[o], *row = yi + o * P;
                for (int64_t p = 0; p < P; p++) row[p] += b;
            }
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
    return UM_OK;
}

int um_cpu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                           const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                           um_tensor *gbias, um_tensor *work) {
    const int64_t K = col_rows(g), P = col_cols(g), O = g->c_out, T = per_thread(g);
    const float *gyp = um_f32(gy), *wp = um_f32(weight);
    const float *xp = gweight ? um_f32(x) : NULL;
    float *gxp = gx ? um_f32(gx) : NULL, *wk = um_f32(work);
    const int pointwise = is_pointwise(g);
    int nt = image_threads(g->n);
    int saved = nt > 1 ? um_cpu_blas_serial_begin() : 1;
#pragma omp parallel num_threads(nt)
    {
        float *buf = wk + (int64_t)omp_get_thread_num() * T;
        float *gw_part = buf + K * P, *gb_part = gw_part + O * K;
        if (gweight) memset(gw_part, 0, (size_t)(O * K) * sizeof(float));
        if (gbias) memset(gb_part, 0, (size_t)O * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < g->n; i++) {
            const float *gyi = gyp + i * O * P;
            if (gweight) {
                const float *xi = xp + i * g->c * g->h * g->w, *col = xi;
                if (!pointwise) { im2col(g, xi, buf); col = buf; }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)K, (int)P, 1.0f,
                            gyi, (int)P, col, (int)P, 1.0f, gw_part, (int)K);
            }
            if (gbias)
                for (int64_t o = 0; o < O; o++) {
                    const float *row = gyi + o * P;
                    float s = 0.0f;
                    for (int64_t p = 0; p < P; p++) s += row[p];
                    gb_part[o] += s;
                }
            if (gxp) {
                float *gxi = gxp + i * g->c * g->h * g->w;
                float *gcol = pointwise ? gxi : buf;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)O, 1.0f,
                            wp, (int)K, gyi, (int)P, 0.0f, gcol, (int)P);
                if (!pointwise) col2im(g, gcol, gxi);
            }
        }
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
    /* Sum the per-thread partials in a fixed order, so results do not depend on timing. */
    for (int t = 0; t < nt; t++) {
        const float *gw_part = wk + (int64_t)t * T + K * P, *gb_part = gw_part + O * K;
        if (gweight) {
            float *gw = um_f32(gweight);
            for (int64_t j = 0; j < O * K; j++) gw[j] += gw_part[j];
        }
        if (gbias) {
            float *gb = um_f32(gbias);
            for (int64_t o = 0; o < O; o++) gb[o] += gb_part[o];
        }
    }
    return UM_OK;
}
