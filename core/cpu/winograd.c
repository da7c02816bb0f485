/* Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016) for stride-1 3x3
 * convolutions on the CPU. Each 2x2 block of outputs ("tile") is read from a 4x4 patch d
 * of the zero-padded input; per channel pair the tile is A^T [(G w G^T) . (B^T d B)] A,
 * so the 9 multiply-adds per output of a direct convolution become 16 per 4 outputs:
 * 2.25x fewer, at the price of the two transforms (additions only, and halves in G).
 * Summed over input channels, the elementwise products become 16 sgemms, one per
 * position xi of the 4x4 transformed patch: M[xi] (c_out x tiles) = U[xi] (c_out x c)
 * V[xi] (c x tiles).
 *
 * Work goes by blocks of whole images (about TILES_PER_BLOCK tiles), so that a block's
 * transformed input V and products M stay in cache between the input transform, the
 * sgemms and the output transform. The input transform works on one channel's padded
 * plane split into its even and odd columns, so that a tile row's patches are read as
 * whole vectors (tile t's columns 2t .. 2t+3 are even[t], odd[t], even[t+1], odd[t+1]);
 * the output transform reads the 16 products of a tile from the 16 matrices, contiguous
 * along the tiles, and writes whole tile rows straight into y. The 16 matrices lie a
 * cache line more than their size apart: at a power of two apart (16 channels x 256
 * tiles) the 16 streams of each transform fell into the same L1 sets, and the 16 -> 16
 * forward took 8.9 ms instead of 6.2.
 *
 * Rounding: the transforms add and subtract up to 16 terms before and after the product,
 * so results differ from a direct convolution's in the last bits (the tests bound them
 * by the same tolerance as the other paths against a double reference). */
#include <cblas.h>
#include <string.h>
#include "im2col.h"
#include "winograd.h"

/* Tiles per block (at least one image): 32x32 images one at a time (256 tiles), two 16x16,
 * eight 8x8. ResNetSmall's 32 -> 32 (16x16) forward measured 4.61 ms with 128, 4.72
 * with 256, 5.49 with 512; its 64 -> 64 (8x8) 4.13, 4.75 and 4.85; 32 to 128 within
 * 0.1 ms (batch 128, 1 thread). */
#define TILES_PER_BLOCK 128

static int64_t tiles_y(const um_window2d *g) { return (g->oh + 1) / 2; }
static int64_t tiles_x(const um_window2d *g) { return (g->ow + 1) / 2; }
static int64_t tiles_per_image(const um_window2d *g) { return tiles_y(g) * tiles_x(g); }

/* The padded plane every tile reads from: 2*tiles_y + 2 rows of 2*tiles_x + 2 columns
 * (one more output row or column of zeros when oh or ow is odd), as im2col.c pads a
 * plane for the window of that many outputs. */
static um_window2d tile_window(const um_window2d *g) {
    um_window2d t = *g;
    t.oh = 2 * tiles_y(g);
    t.ow = 2 * tiles_x(g);
    return t;
}
/* It is kept as its even and its odd columns (phase_cols each), so that the input
 * transform reads whole vectors. */
static int64_t phase_cols(const um_window2d *g) { return tiles_x(g) + 1; }
static int64_t phase_floats(const um_window2d *g) { return (2 * tiles_y(g) + 2) * phase_cols(g); }

/* The padded plane (rows of an even length) -> its even and odd columns, row after row:
 * one split of the whole plane. */
static void split_columns(const float *restrict in, float *restrict even, float *restrict odd, int64_t pairs) {
#pragma omp simd
    for (int64_t j = 0; j < pairs; j++) {
        even[j] = in[2 * j];
        odd[j] = in[2 * j + 1];
    }
}

int um_winograd_apply(const um_window2d *g) {
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->pad_top >= 0 && g->pad_left >= 0 &&
           g->c >= UM_WINOGRAD_MIN_CHANNELS && g->c_out >= UM_WINOGRAD_MIN_CHANNELS && g->oh > 0 && g->ow > 0;
}

int64_t um_winograd_block_images(const um_window2d *g) {
    const int64_t per = TILES_PER_BLOCK / tiles_per_image(g);
    return per > 1 ? per : 1;
}

static int64_t block_tiles(const um_window2d *g) { return um_winograd_block_images(g) * tiles_per_image(g); }

/* V (16 x c x tiles), M (16 x c_out x tiles), the padded plane's two column phases, the
 * padded plane, and two output rows. */
int64_t um_winograd_scratch_floats(const um_window2d *g) {
    const um_window2d tw = tile_window(g);
    return 16 * ((g->c + g->c_out) * block_tiles(g) + 32) + um_im2col_scratch_floats(&tw) + 2 * phase_floats(g) +
           4 * tiles_x(g);
}

int64_t um_winograd_weight_floats(const um_window2d *g) { return 16 * g->c * g->c_out; }

void um_winograd_weights(const um_window2d *g, const float *w, float *u) {
    const int64_t C = g->c, O = g->c_out;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (o * C + c) * 9;
            float gk[4][3], gg[4][4];
            for (int j = 0; j < 3; j++) {   /* G k: rows k0, (k0+k1+k2)/2, (k0-k1+k2)/2, k2 */
                gk[0][j] = k[j];
                gk[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
                gk[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
                gk[3][j] = k[6 + j];
            }
            for (int i = 0; i < 4; i++) {   /* (G k) G^T, the same along each row */
                gg[i][0] = gk[i][0];
                gg[i][1] = 0.5f * (gk[i][0] + gk[i][1] + gk[i][2]);
                gg[i][2] = 0.5f * (gk[i][0] - gk[i][1] + gk[i][2]);
                gg[i][3] = gk[i][2];
            }
            for (int xi = 0; xi < 16; xi++) u[(xi * O + o) * C + c] = gg[xi / 4][xi % 4];
        }
}

/* B^T d B of the tiles of one tile row: e and o are the even and odd columns of its
 * first padded row, the next rows lie pc further on; tile t's 16 values go to
 * v[xi * stride + t]. */
static void transform_tile_row(const float *restrict e, const float *restrict o, int64_t pc, int64_t n,
                               float *restrict v, int64_t stride) {
    const float *restrict e0 = e, *restrict e1 = e + pc, *restrict e2 = e + 2 * pc, *restrict e3 = e + 3 * pc;
    const float *restrict o0 = o, *restrict o1 = o + pc, *restrict o2 = o + 2 * pc, *restrict o3 = o + 3 * pc;
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        /* B^T d (rows d0 - d2, d1 + d2, d2 - d1, d1 - d3) for the patch's four columns
         * 2t .. 2t + 3: column j of row combination i is rij */
        const float r00 = e0[t] - e2[t], r01 = o0[t] - o2[t], r02 = e0[t + 1] - e2[t + 1], r03 = o0[t + 1] - o2[t + 1];
        const float r10 = e1[t] + e2[t], r11 = o1[t] + o2[t], r12 = e1[t + 1] + e2[t + 1], r13 = o1[t + 1] + o2[t + 1];
        const float r20 = e2[t] - e1[t], r21 = o2[t] - o1[t], r22 = e2[t + 1] - e1[t + 1], r23 = o2[t + 1] - o1[t + 1];
        const float r30 = e1[t] - e3[t], r31 = o1[t] - o3[t], r32 = e1[t + 1] - e3[t + 1], r33 = o1[t + 1] - o3[t + 1];
        /* (B^T d) B: the same along each row */
        v[t] = r00 - r02;
        v[stride + t] = r01 + r02;
        v[2 * stride + t] = r02 - r01;
        v[3 * stride + t] = r01 - r03;
        v[4 * stride + t] = r10 - r12;
        v[5 * stride + t] = r11 + r12;
        v[6 * stride + t] = r12 - r11;
        v[7 * stride + t] = r11 - r13;
        v[8 * stride + t] = r20 - r22;
        v[9 * stride + t] = r21 + r22;
        v[10 * stride + t] = r22 - r21;
        v[11 * stride + t] = r21 - r23;
        v[12 * stride + t] = r30 - r32;
        v[13 * stride + t] = r31 + r32;
        v[14 * stride + t] = r32 - r31;
        v[15 * stride + t] = r31 - r33;
    }
}

/* B^T d B of every tile of one channel's padded plane, pp its even columns and then its
 * odd ones (phase_floats each), into v[xi * stride + t]. */
static void transform_input(const um_window2d *g, const float *pp, float *v, int64_t stride) {
    const int64_t pc = phase_cols(g), tx = tiles_x(g);
    for (int64_t ty = 0; ty < tiles_y(g); ty++)
        transform_tile_row(pp + 2 * ty * pc, pp + phase_floats(g) + 2 * ty * pc, pc, tx, v + ty * tx, stride);
}

/* A^T m A of one output channel's tiles in one tile row: m[xi * stride + t] -> the two
 * output rows y0, y1 (2 * tiles_x each), plus bias. */
static void transform_output(const float *m, int64_t stride, int64_t n, float bias, float *restrict y0,
                             float *restrict y1) {
    const float *restrict m0 = m, *restrict m1 = m + stride, *restrict m2 = m + 2 * stride,
                          *restrict m3 = m + 3 * stride, *restrict m4 = m + 4 * stride, *restrict m5 = m + 5 * stride,
                          *restrict m6 = m + 6 * stride, *restrict m7 = m + 7 * stride, *restrict m8 = m + 8 * stride,
                          *restrict m9 = m + 9 * stride, *restrict m10 = m + 10 * stride,
                          *restrict m11 = m + 11 * stride, *restrict m12 = m + 12 * stride,
                          *restrict m13 = m + 13 * stride, *restrict m14 = m + 14 * stride,
                          *restrict m15 = m + 15 * stride;
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        /* A^T m: rows m0 + m1 + m2 and m1 - m2 - m3 (of the 4x4 m, row i = xi / 4) */
        const float a0 = m0[t] + m4[t] + m8[t], a1 = m1[t] + m5[t] + m9[t], a2 = m2[t] + m6[t] + m10[t],
                    a3 = m3[t] + m7[t] + m11[t];
        const float b0 = m4[t] - m8[t] - m12[t], b1 = m5[t] - m9[t] - m13[t], b2 = m6[t] - m10[t] - m14[t],
                    b3 = m7[t] - m11[t] - m15[t];
        y0[2 * t] = a0 + a1 + a2 + bias;
        y0[2 * t + 1] = a1 - a2 - a3 + bias;
        y1[2 * t] = b0 + b1 + b2 + bias;
        y1[2 * t + 1] = b1 - b2 - b3 + bias;
    }
}

void um_winograd_forward(const um_window2d *g, const float *u, const float *x, int64_t images, float *y,
                         const float *bias, float *scratch) {
    const int64_t C = g->c, O = g->c_out, tpi = tiles_per_image(g), tx = tiles_x(g), T = images * tpi;
    const int64_t plane = g->h * g->w, oplane = g->oh * g->ow;
    const um_window2d tw = tile_window(g);
    /* the 16 matrices of V and of M a cache line more than their size apart (above) */
    const int64_t vs = C * T + 16, ms = O * T + 16;
    float *v = scratch, *m = v + 16 * vs, *pp = m + 16 * ms, *pad = pp + 2 * phase_floats(g);
    float *out = pad + um_im2col_scratch_floats(&tw);
    for (int64_t i = 0; i < images; i++)
        for (int64_t c = 0; c < C; c++) {
            um_pad_plane(&tw, x + (i * C + c) * plane, pad);
            split_columns(pad, pp, pp + phase_floats(g), phase_floats(g));
            transform_input(g, pp, v + c * T + i * tpi, vs);
        }
    for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)T, (int)C, 1.0f, u + xi * O * C,
                    (int)C, v + xi * vs, (int)T, 0.0f, m + xi * ms, (int)T);
    /* whole tile rows go straight to y; an odd last row or column through out */
    const int even_cols = g->ow % 2 == 0;
    for (int64_t i = 0; i < images; i++)
        for (int64_t o = 0; o < O; o++) {
            float *yo = y + (i * O + o) * oplane;
            const float b = bias ? bias[o] : 0.0f;
            for (int64_t ty = 0; ty < tiles_y(g); ty++) {
                const float *mt = m + o * T + i * tpi + ty * tx;
                float *y0 = yo + 2 * ty * g->ow;
                if (even_cols && 2 * ty + 1 < g->oh) {
                    transform_output(mt, ms, tx, b, y0, y0 + g->ow);
                    continue;
                }
                transform_output(mt, ms, tx, b, out, out + 2 * tx);
                for (int64_t r = 0; r < 2 && 2 * ty + r < g->oh; r++)
                    memcpy(y0 + r * g->ow, out + r * 2 * tx, (size_t)g->ow * sizeof(float));
            }
        }
}
