/* Stride-1 convolution of one image as one sgemm per kernel tap over zero-padded planes
 * (core/cpu/conv/conv_taps.c); core/cpu/conv/conv.c uses it where um_conv_taps_apply() holds. */
#ifndef UM_CONV_TAPS_H
#define UM_CONV_TAPS_H
#include "nn/nn_ops.h"

/* With fewer input or output channels each per-tap sgemm is too thin to pay (ResNetSmall's
 * first convolution, 3 -> 16, and its input gradient; docs/performance.md §4.2). */
#define UM_CONV_TAPS_MIN_CHANNELS 8
/* Each output row carries kw-1 junk columns, and every tap one more sgemm: beyond 3x3 the
 * junk and the extra calls cost more than im2col saves (docs/performance.md §4.2). */
#define UM_CONV_TAPS_MAX_TAPS 9
/* Where those small-matrix kernels run im2col's products (conv.c, channel_group), per tap
 * only while the junk columns are at most 1/UM_CONV_TAPS_MAX_JUNK of a row: ResNetSmall's
 * 64 -> 64 on 8x8 (10 columns computed for 8) is faster through im2col, its 32 -> 32 on
 * 16x16 (18 for 16) per tap (docs/performance.md §4.2). */
#define UM_CONV_TAPS_MAX_JUNK 8

/* Stride 1, non-negative padding on all four sides, at most UM_CONV_TAPS_MAX_TAPS taps
 * and at least UM_CONV_TAPS_MIN_CHANNELS channels in and out. */
int um_conv_taps_apply(const um_window2d *g);
/* kw-1 <= ow / UM_CONV_TAPS_MAX_JUNK */
int um_conv_taps_little_junk(const um_window2d *g);
/* Scratch sizes per image: the padded input, and one output (or gy) in padded width. */
int64_t um_conv_taps_input_floats(const um_window2d *g);
int64_t um_conv_taps_output_floats(const um_window2d *g);
/* wt[t][o][c] = w[o][c][t], t = ki*kw + kj: one c_out x c matrix per tap. */
void um_conv_taps_weights(const um_window2d *g, const float *w, float *wt);
/* x (c, h, w) -> xpad: planes of (h + pad_top + pad_bottom) x wp, zero around x. */
void um_conv_taps_pad(const um_window2d *g, const float *x, float *xpad);
/* y (c_out, oh, ow) = conv(x) (+ bias) from xpad; ybuf is scratch (output floats). */
void um_conv_taps_forward(const um_window2d *g, const float *wt, const float *xpad, float *ybuf, float *y,
                          const float *bias);
/* gw_t (c*kh*kw x c_out, the weight gradient transposed) += from xpad and gy (c_out, oh,
 * ow); gybuf is scratch (output floats). */
void um_conv_taps_weight_grad(const um_window2d *g, const float *xpad, const float *gy, float *gybuf,
                              float *gw_t);

#endif
