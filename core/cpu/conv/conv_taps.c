/* Stride-1 convolution of one image without a column matrix ("one GEMM per kernel tap").
 * The image is copied once into zero-padded planes of width wp = w + pad_left + pad_right.
 * In an output plane of that same width, output pixel (oy, ox) reads tap (ki, kj) at
 * padded index (oy + ki)*wp + ox + kj: the padded planes shifted by ki*wp + kj. So for
 * each tap the whole output is one sgemm,
 *     Y' (c_out x oh*wp) += W_t (c_out x c) * Xpad[:, shift_t ...] (c x oh*wp, row stride = one padded plane),
 * and the last kw-1 columns of each output row are junk, dropped when Y' is copied out.
 * This moves the image twice (pad, copy out) where im2col writes it kh*kw times
 * (docs/performance.md §4.2). The weight gradient is the same products the other way
 * round. */
#include <cblas.h>
#include <string.h>
#include "cpu/conv/conv_taps.h"
#include "cpu/conv/im2col.h"

/* Bottom and right padding implied by the output size. */
static int64_t pad_bottom(const um_window2d *g) { return g->oh - 1 + g->kh - g->h - g->pad_top; }
static int64_t pad_right(const um_window2d *g) { return g->ow - 1 + g->kw - g->w - g->pad_left; }

static int64_t padded_width(const um_window2d *g) { return g->w + g->pad_left + pad_right(g); }
static int64_t padded_plane(const um_window2d *g) { return (g->h + g->pad_top + pad_bottom(g)) * padded_width(g); }

int um_conv_taps_apply(const um_window2d *g) {
    return g->sh == 1 && g->sw == 1 && g->kh * g->kw <= UM_CONV_TAPS_MAX_TAPS &&
           g->c >= UM_CONV_TAPS_MIN_CHANNELS && g->c_out >= UM_CONV_TAPS_MIN_CHANNELS && g->pad_top >= 0 &&
           g->pad_left >= 0 && pad_bottom(g) >= 0 && pad_right(g) >= 0 && g->oh > 0 && g->ow > 0;
}

/* The last tap of the last plane reads kw-1 floats past it (junk columns). */
int um_conv_taps_little_junk(const um_window2d *g) { return (g->kw - 1) * UM_CONV_TAPS_MAX_JUNK <= g->ow; }

int64_t um_conv_taps_input_floats(const um_window2d *g) { return g->c * padded_plane(g) + g->kw; }
int64_t um_conv_taps_output_floats(const um_window2d *g) { return g->c_out * g->oh * padded_width(g); }

void um_conv_taps_weights(const um_window2d *g, const float *w, float *wt) {
    const int64_t taps = g->kh * g->kw, O = g->c_out, C = g->c;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < taps; t++) wt[(t * O + o) * C + c] = w[(o * C + c) * taps + t];
}

void um_conv_taps_pad(const um_window2d *g, const float *x, float *xpad) {
    const int64_t plane = padded_plane(g);
    for (int64_t c = 0; c < g->c; c++) um_pad_plane(g, x + c * g->h * g->w, xpad + c * plane);
    memset(xpad + g->c * plane, 0, (size_t)g->kw * sizeof(float));
}

void um_conv_taps_forward(const um_window2d *g, const float *wt, const float *xpad, float *ybuf, float *y,
                          const float *bias) {
    const int64_t wp = padded_width(g), plane = padded_plane(g), N = g->oh * wp;
    const int64_t O = g->c_out, C = g->c, taps = g->kh * g->kw;
    for (int64_t t = 0; t < taps; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)N, (int)C, 1.0f, wt + t * O * C,
                    (int)C, xpad + (t / g->kw) * wp + t % g->kw, (int)plane, t ? 1.0f : 0.0f, ybuf, (int)N);
    for (int64_t o = 0; o < O; o++) {
        const float b = bias ? bias[o] : 0.0f;
        for (int64_t r = 0; r < g->oh; r++) {
            const float *src = ybuf + o * N + r * wp;
            float *dst = y + (o * g->oh + r) * g->ow;
#pragma omp simd
            for (int64_t j = 0; j < g->ow; j++) dst[j] = src[j] + b;
        }
    }
}

void um_conv_taps_weight_grad(const um_window2d *g, const float *xpad, const float *gy, float *gybuf,
                              float *gw_t) {
    const int64_t wp = padded_width(g), plane = padded_plane(g), N = g->oh * wp;
    const int64_t O = g->c_out, C = g->c, taps = g->kh * g->kw;
    /* gy in the padded-width layout, junk columns zero so that they add nothing */
    for (int64_t o = 0; o < O; o++)
        for (int64_t r = 0; r < g->oh; r++) {
            float *dst = gybuf + o * N + r * wp;
            memcpy(dst, gy + (o * g->oh + r) * g->ow, (size_t)g->ow * sizeof(float));
            memset(dst + g->ow, 0, (size_t)(wp - g->ow) * sizeof(float));
        }
    /* gw_t[c*taps + t][o] += sum_p Xpad_t[c][p] * gy'[o][p] */
    for (int64_t t = 0; t < taps; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)C, (int)O, (int)N, 1.0f,
                    xpad + (t / g->kw) * wp + t % g->kw, (int)plane, gybuf, (int)N, 1.0f, gw_t + t * O,
                    (int)(taps * O));
}
