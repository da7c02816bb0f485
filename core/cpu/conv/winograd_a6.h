/* Winograd transforms on 6 x 6 patches (points 0, 1, -1, 2, -2, infinity), shared by
 * F(2x2, 5x5) and F(4x4, 3x3) (core/cpu/conv/winograd_a6.c): the input transform B^T d B
 * is the same for both, the kernel transform G and the output transform A^T differ.
 * m is the output tile's side: 2 (5x5 kernels) or 4 (3x3 kernels). */
#ifndef UM_WINOGRAD_A6_H
#define UM_WINOGRAD_A6_H
#include <stdint.h>

/* G k for one kernel row or column of 6 - m + 1 values, step apart -> 6 values. */
void um_wino6_kernel(int64_t m, const float *k, int64_t step, float *out);
/* B^T d B of the n tiles of one tile row: ph[p] is the first patch row's column phase p
 * (column m*t + j of a padded row lies at ph[j % m][t + j / m]; m phases), the patch's
 * next rows pc further on; tile t's 36 values go to v[xi * stride + t]. */
void um_wino6_input_row(int64_t m, const float *const *ph, int64_t pc, int64_t n, float *v, int64_t stride);
/* A^T over the six rows i of one patch column, n tiles: out[q][t] = (A^T in[.][t])_q,
 * q < m. */
void um_wino6_output_cols(int64_t m, const float *const *in, float *const *out, int64_t n);
/* A along one output row of n tiles, interleaved: y[m*t + q] = (A^T in[.][t])_q + bias. */
void um_wino6_output_row(int64_t m, const float *const *in, float bias, float *y, int64_t n);

#endif
