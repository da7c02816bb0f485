/* Winograd transforms on 6 x 6 patches, points 0, 1, -1, 2, -2, infinity, for F(2x2, 5x5)
 * and F(4x4, 3x3) (winograd.c drives them). A^T and G come from Toom-Cook on those points;
 * B^T, solved from them so that the identity holds exactly (checked on random data in
 * double precision), is the same for both (Lavin and Gray's F(4x4, 3x3) matrices):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1]
 *   F(2x2, 5x5): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
 *   F(4x4, 3x3): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1],
 *                G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *                     1/24 -1/12 1/6; 0 0 1]
 * The transforms run over a tile row in whole vectors (winograd.c says what the extra
 * lanes read and write). */
#include "cpu/conv/winograd_a6.h"

void um_wino6_kernel(int64_t m, const float *k, int64_t step, float *out) {
    if (m == 4) {
        const float k0 = k[0], k1 = k[step], k2 = k[2 * step];
        out[0] = k0 / 4.0f;
        out[1] = -(k0 + k1 + k2) / 6.0f;
        out[2] = -(k0 - k1 + k2) / 6.0f;
        out[3] = (k0 + 2.0f * k1 + 4.0f * k2) / 24.0f;
        out[4] = (k0 - 2.0f * k1 + 4.0f * k2) / 24.0f;
        out[5] = k2;
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

/* B^T applied to six values (x0 .. x5) into y0 .. y5 (declared here). */
#define BT6(y, x0, x1, x2, x3, x4, x5)                             \
    const float y##0 = 4.0f * (x0) - 5.0f * (x2) + (x4);           \
    const float y##1 = ((x3) + (x4)) - 4.0f * ((x1) + (x2));       \
    const float y##2 = 4.0f * ((x1) - (x2)) + ((x4) - (x3));       \
    const float y##3 = 2.0f * ((x3) - (x1)) + ((x4) - (x2));       \
    const float y##4 = 2.0f * ((x1) - (x3)) + ((x4) - (x2));       \
    const float y##5 = 4.0f * (x1) - 5.0f * (x3) + (x5)
#define BT6_OF(...) BT6(__VA_ARGS__)   /* PATCH_COL expanded into its six arguments */
#define STORE_ROW(i, z) v[(6 * i) * stride + t] = z##0; v[(6 * i + 1) * stride + t] = z##1;     \
                        v[(6 * i + 2) * stride + t] = z##2; v[(6 * i + 3) * stride + t] = z##3; \
                        v[(6 * i + 4) * stride + t] = z##4; v[(6 * i + 5) * stride + t] = z##5
/* B^T d B of tile t, PATCH_COL(j) giving column j of its patch (six rows) */
#define TRANSFORM_PATCH                                   \
    BT6_OF(c0_, PATCH_COL(0));   /* B^T d, column by column: cj_i is row i of column j */ \
    BT6_OF(c1_, PATCH_COL(1));                            \
    BT6_OF(c2_, PATCH_COL(2));                            \
    BT6_OF(c3_, PATCH_COL(3));                            \
    BT6_OF(c4_, PATCH_COL(4));                            \
    BT6_OF(c5_, PATCH_COL(5));                            \
    BT6(r0_, c0_0, c1_0, c2_0, c3_0, c4_0, c5_0);   /* then B along each row i */ \
    BT6(r1_, c0_1, c1_1, c2_1, c3_1, c4_1, c5_1);         \
    BT6(r2_, c0_2, c1_2, c2_2, c3_2, c4_2, c5_2);         \
    BT6(r3_, c0_3, c1_3, c2_3, c3_3, c4_3, c5_3);         \
    BT6(r4_, c0_4, c1_4, c2_4, c3_4, c4_4, c5_4);         \
    BT6(r5_, c0_5, c1_5, c2_5, c3_5, c4_5, c5_5);         \
    STORE_ROW(0, r0_);                                    \
    STORE_ROW(1, r1_);                                    \
    STORE_ROW(2, r2_);                                    \
    STORE_ROW(3, r3_);                                    \
    STORE_ROW(4, r4_);                                    \
    STORE_ROW(5, r5_)

/* m = 2: tiles 2 columns apart, the padded rows kept as their even (e) and odd (o) columns */
static void input_row_2(const float *restrict e, const float *restrict o, int64_t pc, int64_t n,
                        float *restrict v, int64_t stride) {
#define PATCH_COL(j) (j % 2 ? o : e)[0 * pc + t + j / 2], (j % 2 ? o : e)[1 * pc + t + j / 2], \
                     (j % 2 ? o : e)[2 * pc + t + j / 2], (j % 2 ? o : e)[3 * pc + t + j / 2], \
                     (j % 2 ? o : e)[4 * pc + t + j / 2], (j % 2 ? o : e)[5 * pc + t + j / 2]
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        TRANSFORM_PATCH;
    }
#undef PATCH_COL
}

/* m = 4: tiles 4 columns apart, the padded rows kept as their four column phases q0 .. q3 */
static void input_row_4(const float *restrict q0, const float *restrict q1, const float *restrict q2,
                        const float *restrict q3, int64_t pc, int64_t n, float *restrict v, int64_t stride) {
#define PHASE(j) (j % 4 == 0 ? q0 : j % 4 == 1 ? q1 : j % 4 == 2 ? q2 : q3)
#define PATCH_COL(j) PHASE(j)[0 * pc + t + j / 4], PHASE(j)[1 * pc + t + j / 4], PHASE(j)[2 * pc + t + j / 4], \
                     PHASE(j)[3 * pc + t + j / 4], PHASE(j)[4 * pc + t + j / 4], PHASE(j)[5 * pc + t + j / 4]
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        TRANSFORM_PATCH;
    }
#undef PATCH_COL
#undef PHASE
}
#undef BT6
#undef BT6_OF
#undef STORE_ROW
#undef TRANSFORM_PATCH

void um_wino6_input_row(int64_t m, const float *const *ph, int64_t pc, int64_t n, float *v, int64_t stride) {
    if (m == 4)
        input_row_4(ph[0], ph[1], ph[2], ph[3], pc, n, v, stride);
    else
        input_row_2(ph[0], ph[1], pc, n, v, stride);
}

void um_wino6_output_cols(int64_t m, const float *const *in, float *const *out, int64_t n) {
    const float *restrict m0 = in[0], *restrict m1 = in[1], *restrict m2 = in[2], *restrict m3 = in[3],
                          *restrict m4 = in[4], *restrict m5 = in[5];
    float *restrict y0 = out[0], *restrict y1 = out[1];
    if (m == 2) {
#pragma omp simd
        for (int64_t t = 0; t < n; t++) {
            y0[t] = m0[t] + (m1[t] + m2[t]) + (m3[t] + m4[t]);
            y1[t] = (m1[t] - m2[t]) + 2.0f * (m3[t] - m4[t]) + m5[t];
        }
        return;
    }
    float *restrict y2 = out[2], *restrict y3 = out[3];
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float s12 = m1[t] + m2[t], d12 = m1[t] - m2[t], s34 = m3[t] + m4[t], d34 = m3[t] - m4[t];
        y0[t] = m0[t] + s12 + s34;
        y1[t] = d12 + 2.0f * d34;
        y2[t] = s12 + 4.0f * s34;
        y3[t] = d12 + 8.0f * d34 + m5[t];
    }
}

void um_wino6_output_row(int64_t m, const float *const *in, float bias, float *y, int64_t n) {
    const float *restrict m0 = in[0], *restrict m1 = in[1], *restrict m2 = in[2], *restrict m3 = in[3],
                          *restrict m4 = in[4], *restrict m5 = in[5];
    float *restrict yr = y;
    if (m == 2) {
#pragma omp simd
        for (int64_t t = 0; t < n; t++) {
            yr[2 * t] = m0[t] + (m1[t] + m2[t]) + (m3[t] + m4[t]) + bias;
            yr[2 * t + 1] = (m1[t] - m2[t]) + 2.0f * (m3[t] - m4[t]) + m5[t] + bias;
        }
        return;
    }
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float s12 = m1[t] + m2[t], d12 = m1[t] - m2[t], s34 = m3[t] + m4[t], d34 = m3[t] - m4[t];
        yr[4 * t] = m0[t] + s12 + s34 + bias;
        yr[4 * t + 1] = d12 + 2.0f * d34 + bias;
        yr[4 * t + 2] = s12 + 4.0f * s34 + bias;
        yr[4 * t + 3] = d12 + 8.0f * d34 + m5[t] + bias;
    }
}
