/* Stride-1 3x3 and 5x5 convolutions by Winograd's minimal filtering F(2x2, 3x3),
 * F(4x4, 3x3) and F(2x2, 5x5) (core/cpu/conv/winograd.c); core/cpu/conv/conv.c uses it
 * where um_winograd_tile() is not 0, for the forward and for the input gradient (a
 * convolution of gy with the flipped kernel). tile: the output tile's side m, 2 or 4. */
#ifndef UM_WINOGRAD_H
#define UM_WINOGRAD_H
#include "nn/nn_ops.h"

/* With fewer channels the products per block are too thin to pay for the transforms
 * (ResNetSmall's 3 -> 16 and LeNet's 1 -> 32 first convolutions stay on im2col). */
#define UM_WINOGRAD_MIN_CHANNELS 8

/* The tile for window g: 0 where Winograd does not apply (3x3 or 5x5 kernel, stride 1,
 * non-negative padding on top and left, at least UM_WINOGRAD_MIN_CHANNELS channels in and
 * out, and scratch not much larger than im2col's), else 4 (F(4x4, 3x3)) or 2. */
int um_winograd_tile(const um_window2d *g);
/* Tests and comparisons: 2 takes F(2x2, 3x3) for every 3x3 layer, 4 F(4x4, 3x3) wherever
 * it applies, 0 the rule of um_winograd_tile, -1 the environment variable
 * UMBRA_WINOGRAD_TILE (2 or 4), read at the next use (as before any call). */
void um_winograd_force_tile(int m);
/* UM_OK, or UM_EINVAL naming a UMBRA_WINOGRAD_TILE that is neither 2 nor 4. */
int um_winograd_check_setting(void);
/* Images per block: the unit of work of one thread (its transforms stay in cache). */
int64_t um_winograd_block_images(const um_window2d *g, int tile);
/* Scratch per thread for a block, in floats. */
int64_t um_winograd_scratch_floats(const um_window2d *g, int tile);
/* The transformed kernel: a*a * c_out * c floats, a = tile + kernel size - 1. */
int64_t um_winograd_weight_floats(const um_window2d *g, int tile);
/* w (c_out, c, r, r) -> u[xi][o][c], xi = a*i + j: the a x a G w G^T of each kernel. */
void um_winograd_weights(const um_window2d *g, int tile, const float *w, float *u);
/* y (images, c_out, oh, ow) = conv(x (images, c, h, w)) (+ bias), images at most
 * um_winograd_block_images(g, tile). */
void um_winograd_forward(const um_window2d *g, int tile, const float *u, const float *x, int64_t images, float *y,
                         const float *bias, float *scratch);

#endif
