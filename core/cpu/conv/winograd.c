/* Winograd's minimal filtering F(2x2, r x r) (Lavin and Gray, 2016) for stride-1 3x3 and
 * 5x5 convolutions on the CPU. Each 2x2 block of outputs ("tile") is read from an a x a
 * patch d of the zero-padded input, a = r + 1; per channel pair the tile is
 * A^T [(G w G^T) . (B^T d B)] A, so the r*r multiply-adds per output of a direct
 * convolution become a*a per 4 outputs: 2.25x fewer for 3x3 (16 for 36), 2.78x for 5x5
 * (36 for 100), at the price of the transforms. Summed over input channels, the
 * elementwise products become a*a sgemms, one per position xi of the transformed patch:
 * M[xi] (c_out x tiles) = U[xi] (c_out x c) V[xi] (c x tiles).
 *
 * Work goes by blocks of whole images, so that a block's transformed input V and products
 * M stay in cache between the input transform, the sgemms and the output transform. The
 * input transform takes one channel's padded plane, kept as its even and its odd columns
 * so that tile t's columns 2t .. 2t+a-1 are whole vectors (even[t], odd[t], even[t+1],
 * ...), and computes B^T d B of a tile row's tiles in one pass. The output transform
 * computes A^T m A in one pass per tile row for 3x3; for 5x5 (36 streams of M) in two,
 * A^T over all tiles of an image, then A along each tile row. Both write whole tile rows
 * (into y directly). The a*a matrices of V and of M lie a cache line more than their size
 * apart: at a power of two apart (16 channels x 256 tiles) the 16 streams of a transform
 * fell into the same L1 sets. One-pass transforms for 3x3 beat two-pass ones clearly
 * (docs/performance.md §4.1).
 *
 * The matrices: for 3x3 Lavin's (points 0, 1, -1, infinity); for 5x5 points 0, 1, -1, 2,
 * -2, infinity, A^T and G by Toom-Cook and B^T solved from them so that the identity
 * holds exactly (checked on random data in double precision). Rounding: the transforms
 * add up to a*a terms before and after the products (with factors up to 5 and 1/24 for
 * 5x5), so results differ from a direct convolution's in the last bits. Against a
 * double-precision direct convolution on [0, 1) inputs (He-initialised kernels) the
 * relative RMS error measured 1.3e-7 for 16 -> 16 3x3 (im2col: 1.4e-7) and 8.3e-7 for
 * LeNet's 32 -> 64 5x5 (im2col, 7 input channels: 1.5e-7); the tests bound every path by
 * the same tolerance against a double reference. A non-finite input stays within the
 * outputs whose windows read it (the transforms' zero coefficients are not multiplied),
 * but there comes out NaN more often than +-Inf (Inf - Inf in the transforms; a review
 * counted 107 NaN of 144 outputs for one Inf pixel, none through im2col); and the
 * transforms scale magnitudes by up to 4 (3x3) or about 100 (5x5), so inputs beyond about
 * 1e37 (3x3) or 1e36 (5x5) overflow where a direct convolution would not. */
#include <cblas.h>
#include <string.h>
#include "cpu/conv/im2col.h"
#include "cpu/conv/winograd.h"

/* V and M of a block together at most this many floats (512 KB), at least one image:
 * ResNetSmall's 16 -> 16 (32x32) one image at a time, 32 -> 32 (16x16) two, 64 -> 64
 * (8x8) four; larger blocks measured slower (docs/performance.md §4.1). */
#define BLOCK_FLOATS (128 * 1024)
/* The matrices of V and of M lie GAP floats (a cache line) more than their size apart
 * (above). */
#define GAP 16
#define MAX_ALPHA 6

static int64_t kernel(const um_window2d *g) { return g->kh; }
static int64_t alpha(const um_window2d *g) { return g->kh + 1; }
static int64_t points(const um_window2d *g) { return alpha(g) * alpha(g); }
static int64_t tiles_y(const um_window2d *g) { return (g->oh + 1) / 2; }
static int64_t tiles_x(const um_window2d *g) { return (g->ow + 1) / 2; }
static int64_t tiles_per_image(const um_window2d *g) { return tiles_y(g) * tiles_x(g); }

/* The transforms run over a tile row in whole vectors of 8 (AVX2) with no remainder loop:
 * short rows (7 tiles for LeNet's 14x14, 4 for 8x8) otherwise ran mostly as scalar
 * remainders, which made the 5x5 input transform a large share of LeNet's 32 -> 64 input
 * gradient (docs/performance.md §4.1).
 * The extra lanes read what follows in the scratch (the next rows, the gap after each
 * matrix, the slack after the rows of A^T m: at least 7 floats, all that a vector of 8
 * can need) and write what is written again later: the next tiles of V (its channels are transformed in order, image after image, and
 * the last channel's spill falls in the gap), or the next rows of y (a row whose spill
 * would leave the plane goes through scratch). */
#define VEC_TILES 8
static int64_t vec_tiles(int64_t n) { return (n + VEC_TILES - 1) / VEC_TILES * VEC_TILES; }

/* The padded plane every tile reads from: 2*tiles_y + r - 1 rows of 2*tiles_x + r - 1
 * columns (one more output row or column of zeros when oh or ow is odd), as im2col.c
 * pads a plane for the window of that many outputs; kept as its even and its odd columns
 * (phase_cols each). */
static um_window2d tile_window(const um_window2d *g) {
    um_window2d t = *g;
    t.oh = 2 * tiles_y(g);
    t.ow = 2 * tiles_x(g);
    return t;
}
static int64_t padded_rows(const um_window2d *g) { return 2 * tiles_y(g) + kernel(g) - 1; }
static int64_t phase_cols(const um_window2d *g) { return tiles_x(g) + kernel(g) / 2; }
static int64_t phase_floats(const um_window2d *g) { return padded_rows(g) * phase_cols(g); }

/* Per image, V and M hold a*a (c + c_out) floats per tile, about 4 (c + c_out) per output
 * for 3x3 against im2col's 9 c: with many more output channels than input ones (8 -> 512
 * on 224x224: hundreds of MB per thread) that is too much scratch for what it saves, so Winograd
 * is taken only while it needs at most 4 times im2col's column matrix (or one block). */
static int scratch_fits(const um_window2d *g) {
    const int64_t wino = points(g) * (g->c + g->c_out) * tiles_per_image(g);
    return wino <= 4 * g->c * g->kh * g->kw * g->oh * g->ow || wino <= BLOCK_FLOATS;
}

int um_winograd_apply(const um_window2d *g) {
    return (g->kh == 3 || g->kh == 5) && g->kw == g->kh && g->sh == 1 && g->sw == 1 && g->pad_top >= 0 &&
           g->pad_left >= 0 && g->c >= UM_WINOGRAD_MIN_CHANNELS && g->c_out >= UM_WINOGRAD_MIN_CHANNELS &&
           g->oh > 0 && g->ow > 0 && scratch_fits(g);
}

int64_t um_winograd_block_images(const um_window2d *g) {
    const int64_t per = BLOCK_FLOATS / (points(g) * (g->c + g->c_out) * tiles_per_image(g));
    return per > 1 ? per : 1;
}

static int64_t block_tiles(const um_window2d *g) { return um_winograd_block_images(g) * tiles_per_image(g); }

/* V (a*a x c x tiles) and M (a*a x c_out x tiles) with their gaps, the padded plane's
 * two column phases, the padded plane, the rows of M combined by A^T (2a, one image, 5x5)
 * and two output rows (whole vectors). */
int64_t um_winograd_scratch_floats(const um_window2d *g) {
    const um_window2d tw = tile_window(g);
    return points(g) * ((g->c + g->c_out) * block_tiles(g) + 2 * GAP) + 2 * phase_floats(g) +
           um_im2col_scratch_floats(&tw) + 2 * alpha(g) * tiles_per_image(g) + VEC_TILES +
           4 * vec_tiles(tiles_x(g));
}

int64_t um_winograd_weight_floats(const um_window2d *g) { return points(g) * g->c * g->c_out; }

/* G k for one kernel row or column k (r values) -> a values. */
static void transform_kernel(int64_t r, const float *k, int64_t step, float *out) {
    if (r == 3) {
        out[0] = k[0];
        out[1] = 0.5f * (k[0] + k[step] + k[2 * step]);
        out[2] = 0.5f * (k[0] - k[step] + k[2 * step]);
        out[3] = k[2 * step];
        return;
    }
    const float k0 = k[0], k1 = k[step], k2 = k[2 * step], k3 = k[3 * step], k4 = k[4 * step];
    out[0] = k0 / 4.0f;
    out[1] = -(k0 + k1 + k2 + k3 + k4) / 6.0f;
    out[2] = -(k0 - k1 + k2 - k3 + k4) / 6.0f;
    out[3] = (k0 + 2.0f * k1 + 4.0f * k2 + 8.0f * k3 + 16.0f * k4) / 24.0f;
    out[4] = (k0 - 2.0f * k1 + 4.0f * k2 - 8.0f * k3 + 16.0f * k4) / 24.0f;
    out[5] = k4;
}

void um_winograd_weights(const um_window2d *g, const float *w, float *u) {
    const int64_t C = g->c, O = g->c_out, r = kernel(g), a = alpha(g);
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (o * C + c) * r * r;
            float gk[MAX_ALPHA][MAX_ALPHA], col[MAX_ALPHA];
            for (int64_t j = 0; j < r; j++) {   /* G k: column j of the kernel */
                transform_kernel(r, k + j, r, col);
                for (int64_t i = 0; i < a; i++) gk[i][j] = col[i];
            }
            for (int64_t i = 0; i < a; i++) {   /* (G k) G^T: the same along each row */
                transform_kernel(r, gk[i], 1, col);
                for (int64_t j = 0; j < a; j++) u[((i * a + j) * O + o) * C + c] = col[j];
            }
        }
}

/* 3x3: B^T d B of the tiles of one tile row in one pass: e and o are the even and odd
 * columns of its first padded row, the next rows lie pc further on; tile t's 16 values go
 * to v[xi * stride + t]. */
static void transform_tile_row_3(const float *restrict e, const float *restrict o, int64_t pc, int64_t n,
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

/* 3x3: A^T m A of one output channel's tiles in one tile row in one pass:
 * m[xi * stride + t] -> the two output rows y0, y1 (2n each), plus bias. */
static void transform_tile_row_out_3(const float *m, int64_t stride, int64_t n, float bias, float *restrict y0,
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

/* 5x5: B^T applied to six values (x0 .. x5) into y0 .. y5 (declared here). */
#define BT6(y, x0, x1, x2, x3, x4, x5)                             \
    const float y##0 = 4.0f * (x0) - 5.0f * (x2) + (x4);           \
    const float y##1 = ((x3) + (x4)) - 4.0f * ((x1) + (x2));       \
    const float y##2 = 4.0f * ((x1) - (x2)) + ((x4) - (x3));       \
    const float y##3 = 2.0f * ((x3) - (x1)) + ((x4) - (x2));       \
    const float y##4 = 2.0f * ((x1) - (x3)) + ((x4) - (x2));       \
    const float y##5 = 4.0f * (x1) - 5.0f * (x3) + (x5)
/* Column j of the 6x6 patch of tile t, all six rows l: e, o the even and odd columns. */
#define PATCH_COL(j) (j % 2 ? o : e)[0 * pc + t + j / 2], (j % 2 ? o : e)[1 * pc + t + j / 2], \
                     (j % 2 ? o : e)[2 * pc + t + j / 2], (j % 2 ? o : e)[3 * pc + t + j / 2], \
                     (j % 2 ? o : e)[4 * pc + t + j / 2], (j % 2 ? o : e)[5 * pc + t + j / 2]
#define BT6_OF(...) BT6(__VA_ARGS__)   /* PATCH_COL expanded into its six arguments */
#define STORE_ROW(i, z) v[(6 * i) * stride + t] = z##0; v[(6 * i + 1) * stride + t] = z##1;     \
                        v[(6 * i + 2) * stride + t] = z##2; v[(6 * i + 3) * stride + t] = z##3; \
                        v[(6 * i + 4) * stride + t] = z##4; v[(6 * i + 5) * stride + t] = z##5

/* 5x5: B^T d B of the tiles of one tile row in one pass, as transform_tile_row_3. */
static void transform_tile_row_5(const float *restrict e, const float *restrict o, int64_t pc, int64_t n,
                                 float *restrict v, int64_t stride) {
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        BT6_OF(c0_, PATCH_COL(0));   /* B^T d, column by column: cj_i is row i of column j */
        BT6_OF(c1_, PATCH_COL(1));
        BT6_OF(c2_, PATCH_COL(2));
        BT6_OF(c3_, PATCH_COL(3));
        BT6_OF(c4_, PATCH_COL(4));
        BT6_OF(c5_, PATCH_COL(5));
        BT6(r0_, c0_0, c1_0, c2_0, c3_0, c4_0, c5_0);   /* then B along each row i */
        BT6(r1_, c0_1, c1_1, c2_1, c3_1, c4_1, c5_1);
        BT6(r2_, c0_2, c1_2, c2_2, c3_2, c4_2, c5_2);
        BT6(r3_, c0_3, c1_3, c2_3, c3_3, c4_3, c5_3);
        BT6(r4_, c0_4, c1_4, c2_4, c3_4, c4_4, c5_4);
        BT6(r5_, c0_5, c1_5, c2_5, c3_5, c4_5, c5_5);
        STORE_ROW(0, r0_);
        STORE_ROW(1, r1_);
        STORE_ROW(2, r2_);
        STORE_ROW(3, r3_);
        STORE_ROW(4, r4_);
        STORE_ROW(5, r5_);
    }
}
#undef BT6
#undef BT6_OF
#undef PATCH_COL
#undef STORE_ROW

/* 5x5, A^T: y0[t], y1[t] = the two rows of A^T times m[.][t] for n tiles. */
static void transform_a(const float *const *m, float *restrict y0, float *restrict y1, int64_t n) {
    const float *restrict m0 = m[0], *restrict m1 = m[1], *restrict m2 = m[2], *restrict m3 = m[3],
                          *restrict m4 = m[4], *restrict m5 = m[5];
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        y0[t] = m0[t] + (m1[t] + m2[t]) + (m3[t] + m4[t]);
        y1[t] = (m1[t] - m2[t]) + 2.0f * (m3[t] - m4[t]) + m5[t];
    }
}

/* 5x5, A^T along a tile row, interleaved: y[2t], y[2t+1] = the two rows of A^T times
 * m[.][t], plus bias. */
static void transform_a_pairs(const float *const *m, float bias, float *restrict y, int64_t n) {
    const float *restrict m0 = m[0], *restrict m1 = m[1], *restrict m2 = m[2], *restrict m3 = m[3],
                          *restrict m4 = m[4], *restrict m5 = m[5];
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        y[2 * t] = m0[t] + (m1[t] + m2[t]) + (m3[t] + m4[t]) + bias;
        y[2 * t + 1] = (m1[t] - m2[t]) + 2.0f * (m3[t] - m4[t]) + m5[t] + bias;
    }
}

/* B^T d B of every tile of one channel's padded plane, pp its even columns then its odd
 * ones (phase_floats each), into v[xi * stride + t]; whole vectors (vec_tiles). */
static void transform_input(const um_window2d *g, const float *pp, float *v, int64_t stride) {
    const int64_t pc = phase_cols(g), tx = tiles_x(g), odd = phase_floats(g), n = vec_tiles(tx);
    for (int64_t ty = 0; ty < tiles_y(g); ty++) {
        const float *e = pp + 2 * ty * pc, *o = e + odd;
        if (kernel(g) == 3)
            transform_tile_row_3(e, o, pc, n, v + ty * tx, stride);
        else
            transform_tile_row_5(e, o, pc, n, v + ty * tx, stride);
    }
}

/* A^T m A of output channel o's tiles of one image (m[xi * stride + t], tiles_per_image
 * of them) into yo (oh, ow), plus bias; whole vectors of tiles (vec_tiles), each output
 * row written straight into y unless its junk would fall beyond the plane, or (3x3) into
 * the second row of its tile row before that is written: then through out (two rows of
 * 2 vec_tiles). rows: 2a rows of A^T m (5x5). */
static void transform_output(const um_window2d *g, const float *m, int64_t stride, float bias, float *rows,
                             float *out, float *yo) {
    const int64_t a = alpha(g), tx = tiles_x(g), tpi = tiles_per_image(g), n = vec_tiles(tx);
    const int64_t ow = g->ow, end = g->oh * ow;
    if (a == 4) {
        for (int64_t ty = 0; ty < tiles_y(g); ty++) {
            float *y0 = yo + 2 * ty * ow, *y1 = y0 + ow;
            const int direct0 = 2 * ty * ow + 2 * n <= end;
            const int direct1 = 2 * n == ow && (2 * ty + 1) * ow + 2 * n <= end;
            transform_tile_row_out_3(m + ty * tx, stride, n, bias, direct0 ? y0 : out, direct1 ? y1 : out + 2 * n);
            if (!direct0) memcpy(y0, out, (size_t)ow * sizeof(float));
            if (!direct1 && 2 * ty + 1 < g->oh) memcpy(y1, out + 2 * n, (size_t)ow * sizeof(float));
        }
        return;
    }
    const float *in[MAX_ALPHA];
    for (int64_t j = 0; j < a; j++) {   /* A^T over the rows i of column j, all tiles */
        for (int64_t i = 0; i < a; i++) in[i] = m + (i * a + j) * stride;
        transform_a(in, rows + j * tpi, rows + (a + j) * tpi, tpi);
    }
    for (int64_t ty = 0; ty < tiles_y(g); ty++)   /* then A along the columns, row by row */
        for (int64_t q = 0; q < 2 && 2 * ty + q < g->oh; q++) {
            for (int64_t j = 0; j < a; j++) in[j] = rows + (q * a + j) * tpi + ty * tx;
            float *dst = yo + (2 * ty + q) * ow;
            const int direct = (2 * ty + q) * ow + 2 * n <= end;
            transform_a_pairs(in, bias, direct ? dst : out, n);
            if (!direct) memcpy(dst, out, (size_t)ow * sizeof(float));
        }
}

void um_winograd_forward(const um_window2d *g, const float *u, const float *x, int64_t images, float *y,
                         const float *bias, float *scratch) {
    const int64_t C = g->c, O = g->c_out, P = points(g), tpi = tiles_per_image(g), T = images * tpi;
    const int64_t plane = g->h * g->w, oplane = g->oh * g->ow, pf = phase_floats(g);
    const um_window2d tw = tile_window(g);
    const int64_t vs = C * T + GAP, ms = O * T + GAP;
    float *v = scratch, *m = v + P * vs, *pp = m + P * ms, *pad = pp + 2 * pf;
    /* the rows of A^T m with VEC_TILES of slack, so that their extra lanes' reads never
     * alias out (written through restrict pointers) */
    float *orows = pad + um_im2col_scratch_floats(&tw), *out = orows + 2 * alpha(g) * tpi + VEC_TILES;
    for (int64_t c = 0; c < C; c++)   /* in this order for vec_tiles */
        for (int64_t i = 0; i < images; i++) {
            um_pad_plane(&tw, x + (i * C + c) * plane, pad);
            um_split_pairs(pad, pp, pp + pf, pf);   /* the padded rows have even length */
            transform_input(g, pp, v + c * T + i * tpi, vs);
        }
    for (int64_t xi = 0; xi < P; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)T, (int)C, 1.0f, u + xi * O * C,
                    (int)C, v + xi * vs, (int)T, 0.0f, m + xi * ms, (int)T);
    for (int64_t i = 0; i < images; i++)
        for (int64_t o = 0; o < O; o++)
            transform_output(g, m + o * T + i * tpi, ms, bias ? bias[o] : 0.0f, orows, out,
                             y + (i * O + o) * oplane);
}
