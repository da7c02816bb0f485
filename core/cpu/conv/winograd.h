/* Stride-1 3x3 and 5x5 convolutions by Winograd's minimal filtering F(2x2, 3x3) and
 * F(2x2, 5x5) (core/cpu/conv/winograd.c); core/cpu/conv/conv.c uses it where um_winograd_apply()
 * holds, for the forward and for the input gradient (a convolution of gy with the flipped
 * kernel). */
#ifndef UM_WINOGRAD_H
#define UM_WINOGRAD_H
#include "nn/nn_ops.h"

/* With fewer channels the products per block are too thin to pay for the transforms
 * (ResNetSmall's 3 -> 16 and LeNet's 1 -> 32 first convolutions stay on im2col). */
#define UM_WINOGRAD_MIN_CHANNELS 8

/* 3x3 or 5x5 kernel, stride 1, non-negative padding on top and left, at least
 * UM_WINOGRAD_MIN_CHANNELS channels in and out, and scratch not much larger than im2col's
 * (winograd.c). */
int um_winograd_apply(const um_window2d *g);
/* Images per block: the unit of work of one thread (its transforms stay in cache). */
int64_t um_winograd_block_images(const um_window2d *g);
/* Scratch per thread for a block, in floats. */
int64_t um_winograd_scratch_floats(const um_window2d *g);
/* The transformed kernel: a*a * c_out * c floats, a = kernel size + 1. */
int64_t um_winograd_weight_floats(const um_window2d *g);
/* w (c_out, c, r, r) -> u[xi][o][c], xi = a*i + j: the a x a G w G^T of each kernel. */
void um_winograd_weights(const um_window2d *g, const float *w, float *u);
/* y (images, c_out, oh, ow) = conv(x (images, c, h, w)) (+ bias), images at most
 * um_winograd_block_images(g). */
void um_winograd_forward(const um_window2d *g, const float *u, const float *x, int64_t images, float *y,
                         const float *bias, float *scratch);

#endif
