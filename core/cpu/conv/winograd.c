/* Winograd's minimal filtering F(m x m, r x r) (Lavin and Gray, 2016) for stride-1 3x3
 * and 5x5 convolutions on the CPU: F(2x2, 3x3), F(4x4, 3x3) and F(2x2, 5x5). Each m x m
 * block of outputs ("tile") is read from an a x a patch d of the zero-padded input,
 * a = m + r - 1; per channel pair the tile is A^T [(G w G^T) . (B^T d B)] A, so the r*r
 * multiply-adds per output of a direct convolution become a*a per m*m outputs: 2.25x
 * fewer for F(2x2, 3x3) (16 for 36), 4x for F(4x4, 3x3) (36 for 144), 2.78x for 5x5 (36
 * for 100), at the price of the transforms. Summed over input channels, the elementwise
 * products become a*a sgemms, one per position xi of the transformed patch:
 * M[xi] (c_out x tiles) = U[xi] (c_out x c) V[xi] (c x tiles). um_winograd_tile picks m
 * per layer (and UMBRA_WINOGRAD_TILE=2 forces F(2x2, 3x3) back).
 *
 * Work goes by blocks of whole images, so that a block's transformed input V and products
 * M stay in cache between the input transform, the sgemms and the output transform. The
 * input transform takes one channel's padded plane, kept as its m column phases so that
 * tile t's columns m*t .. m*t+a-1 are whole vectors (phase0[t], phase1[t], ...,
 * phase0[t+1], ...), and computes B^T d B of a tile row's tiles in one pass. The output
 * transform computes A^T m A in one pass per tile row for F(2x2, 3x3); with a = 6 (36
 * streams of M) in two, A^T over all tiles of an image, then A along each tile row. Both
 * write whole tile rows (into y directly). The a*a matrices of V and of M lie a cache line
 * more than their size apart: at a power of two apart (16 channels x 256 tiles) the 16
 * streams of a transform fell into the same L1 sets. One-pass transforms for F(2x2, 3x3)
 * beat two-pass ones clearly (docs/performance.md §4.1).
 *
 * The matrices: for F(2x2, 3x3) Lavin's (points 0, 1, -1, infinity); with a = 6 points 0,
 * 1, -1, 2, -2, infinity (winograd_a6.c). Rounding: the transforms add up to a*a terms
 * before and after the products (with factors up to 8 and 1/24 with a = 6), so results
 * differ from a direct convolution's in the last bits, more so with a = 6. Against a
 * double-precision direct convolution on [0, 1) inputs (He-initialised kernels) the
 * relative RMS error measured 1.3e-7 for 16 -> 16 F(2x2, 3x3) (im2col: 1.4e-7) and 8.3e-7
 * for LeNet's 32 -> 64 5x5 (im2col, 7 input channels: 1.5e-7); F(4x4, 3x3)'s is bounded
 * by tests/c/test_winograd_accuracy.c (docs/performance.md §4.1). The tests bound every
 * path by one tolerance against a double reference. A non-finite input stays within the
 * outputs whose windows read it (the transforms' zero coefficients are not multiplied),
 * but there comes out NaN more often than +-Inf (Inf - Inf in the transforms; a review
 * counted 107 NaN of 144 outputs for one Inf pixel, none through im2col); and the
 * transforms scale magnitudes by up to 4 (F(2x2, 3x3)) or about 100 (a = 6), so inputs
 * beyond about 1e37 or 1e36 overflow where a direct convolution would not. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "cpu/conv/im2col.h"
#include "cpu/conv/winograd.h"
#include "cpu/conv/winograd_a6.h"

/* V and M of a block together at most this many floats (512 KB), at least one image:
 * ResNetSmall's 16 -> 16 (32x32) one image at a time, 32 -> 32 (16x16) two, 64 -> 64
 * (8x8) four (F(2x2, 3x3)); larger blocks measured slower (docs/performance.md §4.1). */
#define BLOCK_FLOATS (128 * 1024)
/* The matrices of V and of M lie GAP floats (a cache line) more than their size apart
 * (above). */
#define GAP 16
#define MAX_ALPHA 6

/* The geometry of F(m x m, r x r) on window g: output tiles of m x m read a x a patches
 * (a = m + r - 1) of the zero-padded plane, m apart; the padded plane is kept as its m
 * column phases (phase p holds columns p, p + m, ...) of pc columns each, so that a tile
 * row's patch columns are whole vectors (column m*t + j at phase j % m, index t + j / m). */
typedef struct {
    int64_t r, m, a, points;   /* kernel side, output tile side, patch side, a * a */
    int64_t ty, tx, tpi;       /* tiles down, across, per image */
    int64_t pc, rows, pf;      /* a phase's columns, the padded plane's rows, floats per phase */
} tiling;

static tiling tiling_of(const um_window2d *g, int64_t m) {
    tiling s;
    s.r = g->kh;
    s.m = m;
    s.a = m + s.r - 1;
    s.points = s.a * s.a;
    s.ty = (g->oh + m - 1) / m;
    s.tx = (g->ow + m - 1) / m;
    s.tpi = s.ty * s.tx;
    s.pc = s.tx + (s.r - 1 + m - 1) / m;
    s.rows = m * s.ty + s.r - 1;
    s.pf = s.rows * s.pc;
    return s;
}

/* The transforms run over a tile row in whole vectors of 8 (AVX2) with no remainder loop:
 * short rows (7 tiles for LeNet's 14x14, 4 for 8x8) otherwise ran mostly as scalar
 * remainders, which made the 5x5 input transform a large share of LeNet's 32 -> 64 input
 * gradient (docs/performance.md §4.1).
 * The extra lanes read what follows in the scratch (the next rows, the next phases, the
 * gap after each matrix, the slack after the rows of A^T m: at least 7 floats, all that a
 * vector of 8 can need) and write what is written again later: the next tiles of V (its
 * channels are transformed in order, image after image, and the last channel's spill
 * falls in the gap), or the next rows of y (a row whose spill would leave the plane goes
 * through scratch). */
#define VEC_TILES 8
static int64_t vec_tiles(int64_t n) { return (n + VEC_TILES - 1) / VEC_TILES * VEC_TILES; }

/* The padded plane every tile reads from: m*ty + r - 1 rows of m*pc columns (zeros
 * beyond the outputs' windows when oh or ow is not a multiple of m), as im2col.c pads a
 * plane for the window of that many outputs. */
static um_window2d tile_window(const um_window2d *g, const tiling *s) {
    um_window2d t = *g;
    t.oh = s->m * s->ty;
    t.ow = s->m * s->pc - (s->r - 1);
    return t;
}

/* Per image, V and M hold a*a (c + c_out) floats per tile, about 4 (c + c_out) per output
 * for F(2x2, 3x3) against im2col's 9 c: with many more output channels than input ones
 * (8 -> 512 on 224x224: hundreds of MB per thread) that is too much scratch for what it
 * saves, so Winograd is taken only while it needs at most 4 times im2col's column matrix
 * (or one block). */
static int scratch_fits(const um_window2d *g, const tiling *s) {
    const int64_t wino = s->points * (g->c + g->c_out) * s->tpi;
    return wino <= 4 * g->c * g->kh * g->kw * g->oh * g->ow || wino <= BLOCK_FLOATS;
}

static int applies(const um_window2d *g) {
    return (g->kh == 3 || g->kh == 5) && g->kw == g->kh && g->sh == 1 && g->sw == 1 && g->pad_top >= 0 &&
           g->pad_left >= 0 && g->c >= UM_WINOGRAD_MIN_CHANNELS && g->c_out >= UM_WINOGRAD_MIN_CHANNELS &&
           g->oh > 0 && g->ow > 0;
}

static int forced_tile = -1;   /* um_winograd_force_tile; -1: not yet read from the environment */
static char bad_setting[32];   /* UMBRA_WINOGRAD_TILE when it was neither 2 nor 4 */

void um_winograd_force_tile(int m) { forced_tile = m == 2 || m == 4 ? m : m < 0 ? -1 : 0; }

static int tile_setting(void) {
    if (forced_tile < 0) {
        const char *env = getenv("UMBRA_WINOGRAD_TILE");
        forced_tile = 0;
        bad_setting[0] = 0;
        if (env && *env) {
            if (!strcmp(env, "2") || !strcmp(env, "4")) forced_tile = env[0] - '0';
            else snprintf(bad_setting, sizeof bad_setting, "%s", env);
        }
    }
    return forced_tile;
}

int um_winograd_check_setting(void) {
    tile_setting();
    if (!bad_setting[0]) return UM_OK;
    return um_fail(UM_EINVAL, "UMBRA_WINOGRAD_TILE: expected 2 (F(2x2, 3x3) everywhere) or 4 (F(4x4, 3x3) "
                              "wherever it applies), or unset; got '%s'", bad_setting);
}

/* F(4x4, 3x3) for 3x3 kernels whose output rows hold at least 4 tiles of 4 (16 columns)
 * and as many rows, unless forced: it does 2.25 multiplications per output and channel
 * pair where F(2x2, 3x3) does 4, and its V and M hold 2.25 floats per output and channel
 * where F(2x2) holds 4, but its transforms cost more per output (about 18 flops per output
 * and input channel against 8, 9 per output and output channel against 7) and run over
 * whole vectors of 8 tiles per tile row: on 8 x 8 outputs (2 tiles a row) three quarters
 * of their lanes are junk. Counted by callgrind on ResNetSmall's layers
 * (scripts/bench/count-conv-paths, figures in docs/performance.md §4.1), F(4x4) took fewer
 * instructions than F(2x2) on 32 x 32 and 16 x 16 outputs and more on 8 x 8, forward and
 * input gradient alike. */
#define F4_MIN_SIDE 16
int um_winograd_tile(const um_window2d *g) {
    if (!applies(g)) return 0;
    const int setting = tile_setting();
    if (g->kh == 3 && (setting == 4 || (setting == 0 && g->oh >= F4_MIN_SIDE && g->ow >= F4_MIN_SIDE))) {
        const tiling s4 = tiling_of(g, 4);
        if (scratch_fits(g, &s4)) return 4;
    }
    const tiling s2 = tiling_of(g, 2);
    return scratch_fits(g, &s2) ? 2 : 0;
}

int64_t um_winograd_block_images(const um_window2d *g, int m) {
    const tiling s = tiling_of(g, m);
    const int64_t per = BLOCK_FLOATS / (s.points * (g->c + g->c_out) * s.tpi);
    return per > 1 ? per : 1;
}

/* V (a*a x c x tiles) and M (a*a x c_out x tiles) with their gaps, the padded plane's m
 * column phases, the padded plane, the rows of M combined by A^T (m a of them, one image;
 * a = 6) and output rows (whole vectors: 4 vec_tiles). */
int64_t um_winograd_scratch_floats(const um_window2d *g, int m) {
    const tiling s = tiling_of(g, m);
    const um_window2d tw = tile_window(g, &s);
    return s.points * ((g->c + g->c_out) * um_winograd_block_images(g, m) * s.tpi + 2 * GAP) + m * s.pf +
           um_im2col_scratch_floats(&tw) + m * s.a * s.tpi + VEC_TILES + 4 * vec_tiles(s.tx);
}

int64_t um_winograd_weight_floats(const um_window2d *g, int m) { return tiling_of(g, m).points * g->c * g->c_out; }

/* G k for one kernel row or column k (r values) -> a values. */
static void transform_kernel(int64_t m, int64_t a, const float *k, int64_t step, float *out) {
    if (a == 6) {
        um_wino6_kernel(m, k, step, out);
        return;
    }
    out[0] = k[0];
    out[1] = 0.5f * (k[0] + k[step] + k[2 * step]);
    out[2] = 0.5f * (k[0] - k[step] + k[2 * step]);
    out[3] = k[2 * step];
}

void um_winograd_weights(const um_window2d *g, int m, const float *w, float *u) {
    const tiling s = tiling_of(g, m);
    const int64_t C = g->c, O = g->c_out, r = s.r, a = s.a;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (o * C + c) * r * r;
            float gk[MAX_ALPHA][MAX_ALPHA], col[MAX_ALPHA];
            for (int64_t j = 0; j < r; j++) {   /* G k: column j of the kernel */
                transform_kernel(m, a, k + j, r, col);
                for (int64_t i = 0; i < a; i++) gk[i][j] = col[i];
            }
            for (int64_t i = 0; i < a; i++) {   /* (G k) G^T: the same along each row */
                transform_kernel(m, a, gk[i], 1, col);
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


/* in[4j + p] -> phase p at [j], j < n (the five runs apart) */
static void split_quads(const float *restrict in, float *restrict p0, float *restrict p1, float *restrict p2,
                        float *restrict p3, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        p0[j] = in[4 * j];
        p1[j] = in[4 * j + 1];
        p2[j] = in[4 * j + 2];
        p3[j] = in[4 * j + 3];
    }
}

/* B^T d B of every tile of one channel's padded plane, pp its m column phases (pf floats
 * each), into v[xi * stride + t]; whole vectors (vec_tiles). */
static void transform_input(const tiling *s, const float *pp, float *v, int64_t stride) {
    const int64_t n = vec_tiles(s->tx);
    for (int64_t ty = 0; ty < s->ty; ty++) {
        const float *row = pp + s->m * ty * s->pc;
        if (s->a == 4) {
            transform_tile_row_3(row, row + s->pf, s->pc, n, v + ty * s->tx, stride);
            continue;
        }
        const float *ph[4] = {row, row + s->pf, row + 2 * s->pf, row + 3 * s->pf};
        um_wino6_input_row(s->m, ph, s->pc, n, v + ty * s->tx, stride);
    }
}

/* A^T m A of output channel o's tiles of one image (m[xi * stride + t], tpi of them) into
 * yo (oh, ow), plus bias; whole vectors of tiles (vec_tiles), each output row written
 * straight into y unless its junk would fall beyond the plane, or (F(2x2, 3x3)) into the
 * second row of its tile row before that is written: then through out (4 vec_tiles).
 * rows: m*a rows of A^T m (a = 6). */
static void transform_output(const um_window2d *g, const tiling *s, const float *m, int64_t stride, float bias,
                             float *rows, float *out, float *yo) {
    const int64_t a = s->a, tx = s->tx, tpi = s->tpi, n = vec_tiles(tx), tm = s->m;
    const int64_t ow = g->ow, end = g->oh * ow;
    if (a == 4) {
        for (int64_t ty = 0; ty < s->ty; ty++) {
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
    float *cols[4];
    for (int64_t j = 0; j < a; j++) {   /* A^T over the rows i of column j, all tiles */
        for (int64_t i = 0; i < a; i++) in[i] = m + (i * a + j) * stride;
        for (int64_t q = 0; q < tm; q++) cols[q] = rows + (q * a + j) * tpi;
        um_wino6_output_cols(tm, in, cols, tpi);
    }
    for (int64_t ty = 0; ty < s->ty; ty++)   /* then A along the columns, row by row */
        for (int64_t q = 0; q < tm && tm * ty + q < g->oh; q++) {
            for (int64_t j = 0; j < a; j++) in[j] = rows + (q * a + j) * tpi + ty * tx;
            float *dst = yo + (tm * ty + q) * ow;
            const int direct = (tm * ty + q) * ow + tm * n <= end;
            um_wino6_output_row(tm, in, bias, direct ? dst : out, n);
            if (!direct) memcpy(dst, out, (size_t)ow * sizeof(float));
        }
}

void um_winograd_forward(const um_window2d *g, int tile, const float *u, const float *x, int64_t images, float *y,
                         const float *bias, float *scratch) {
    const tiling s = tiling_of(g, tile);
    const int64_t C = g->c, O = g->c_out, P = s.points, tpi = s.tpi, T = images * tpi;
    const int64_t plane = g->h * g->w, oplane = g->oh * g->ow, pf = s.pf;
    const um_window2d tw = tile_window(g, &s);
    const int64_t vs = C * T + GAP, ms = O * T + GAP;
    float *v = scratch, *m = v + P * vs, *pp = m + P * ms, *pad = pp + tile * pf;
    /* the rows of A^T m with VEC_TILES of slack, so that their extra lanes' reads never
     * alias out (written through restrict pointers) */
    float *orows = pad + um_im2col_scratch_floats(&tw), *out = orows + tile * s.a * tpi + VEC_TILES;
    for (int64_t c = 0; c < C; c++)   /* in this order for vec_tiles */
        for (int64_t i = 0; i < images; i++) {
            um_pad_plane(&tw, x + (i * C + c) * plane, pad);
            if (tile == 4)   /* the padded rows have m*pc columns */
                split_quads(pad, pp, pp + pf, pp + 2 * pf, pp + 3 * pf, pf);
            else
                um_split_pairs(pad, pp, pp + pf, pf);
            transform_input(&s, pp, v + c * T + i * tpi, vs);
        }
    for (int64_t xi = 0; xi < P; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)T, (int)C, 1.0f, u + xi * O * C,
                    (int)C, v + xi * vs, (int)T, 0.0f, m + xi * ms, (int)T);
    for (int64_t i = 0; i < images; i++)
        for (int64_t o = 0; o < O; o++)
            transform_output(g, &s, m + o * T + i * tpi, ms, bias ? bias[o] : 0.0f, orows, out,
                             y + (i * O + o) * oplane);
}
