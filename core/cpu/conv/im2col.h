/* The column matrix of one image for CPU convolutions (core/cpu/conv/im2col.c). */
#ifndef UM_IM2COL_H
#define UM_IM2COL_H
#include "nn/nn_ops.h"

/* Floats of scratch that um_im2col and um_col2im need besides the matrix (one channel's
 * padded plane). */
int64_t um_im2col_scratch_floats(const um_window2d *g);
/* One channel's plane (h, w) -> the zero-padded plane the windows read: (oh-1)*sh + kh
 * rows of (ow-1)*sw + kw; with a column stride sw > 1 kept as its sw column phases, and
 * then needing um_im2col_scratch_floats(g) in all. */
void um_pad_plane(const um_window2d *g, const float *plane, float *padded);
/* in[2j] -> even[j], in[2j+1] -> odd[j] for j < n (the three runs apart). */
void um_split_pairs(const float *restrict in, float *restrict even, float *restrict odd, int64_t n);
/* x (c, h, w) -> col (c*kh*kw, oh*ow), any stride and padding. */
void um_im2col(const um_window2d *g, const float *x, float *col, float *scratch);
/* col (c*kh*kw, oh*ow) summed back into gx (c, h, w), which is overwritten. */
void um_col2im(const um_window2d *g, const float *col, float *gx, float *scratch);

#endif
