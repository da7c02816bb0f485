/* Max-pool over 2x2 windows with stride 2 that tile the input exactly (LeNet's pools), in
 * AVX2: 8 windows at a time, from two rows of 16 floats split into their even and odd
 * columns. The scalar loops of pool.c run one output row at a time and stayed scalar (the
 * compiler does not vectorise their stride-2 reads); these take the same decisions (the
 * first maximum in row order wins, the first NaN wins and stays) with compare masks, and
 * the last windows of a row (LeNet's rows are 14 and 7 windows long) with masked loads
 * and stores instead of a scalar tail. Figures: docs/performance.md §2.4 and §5. */
#include "error.h"
#include "cpu/nn_cpu.h"
#ifdef __AVX2__
#include <immintrin.h>

static inline __m256 even_columns(__m256 lo, __m256 hi) {   /* lo[0,2,4,6], hi[0,2,4,6] */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
}
static inline __m256 odd_columns(__m256 lo, __m256 hi) {    /* lo[1,3,5,7], hi[1,3,5,7] */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}
/* pool.c's TAKES(v, m): v > m, or v is NaN and m is not */
static inline __m256 takes(__m256 v, __m256 m) {
    __m256 v_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q), m_num = _mm256_cmp_ps(m, m, _CMP_ORD_Q);
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_and_ps(v_nan, m_num));
}
static inline __m256i first_lanes(int64_t n) {              /* lanes 0 .. n-1 set */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The windows ox .. ox+7 of one row pair, or with masks the first `left` of them. */
typedef struct { __m256 a, b, c, d; } window4;
static inline window4 load_windows(const float *r0, const float *r1, int masked, __m256i m0, __m256i m1) {
    __m256 x0l, x0h, x1l, x1h;
    if (!masked) {
        x0l = _mm256_loadu_ps(r0); x0h = _mm256_loadu_ps(r0 + 8);
        x1l = _mm256_loadu_ps(r1); x1h = _mm256_loadu_ps(r1 + 8);
    } else {
        x0l = _mm256_maskload_ps(r0, m0); x0h = _mm256_maskload_ps(r0 + 8, m1);
        x1l = _mm256_maskload_ps(r1, m0); x1h = _mm256_maskload_ps(r1 + 8, m1);
    }
    return (window4){even_columns(x0l, x0h), odd_columns(x0l, x0h), even_columns(x1l, x1h), odd_columns(x1l, x1h)};
}
static inline void store_interleaved(float *p, __m256 even, __m256 odd, int masked, __m256i m0, __m256i m1) {
    __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
    if (!masked) { _mm256_storeu_ps(p, first); _mm256_storeu_ps(p + 8, second); }
    else { _mm256_maskstore_ps(p, m0, first); _mm256_maskstore_ps(p + 8, m1, second); }
}

int um_cpu_maxpool2d_2x2_avx2(const um_window2d *g, const float *xp, const float *gyp, float *out, int mode) {
    const int64_t rows = g->n * g->c * g->oh, w = g->w, ow = g->ow, tail = ow % 8;
    const __m256i m0 = first_lanes(2 * tail), m1 = first_lanes(2 * tail - 8), mo = first_lanes(tail);
    const __m256 zero = _mm256_setzero_ps();
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < rows; k++) {
        const float *r0 = xp + 2 * k * w, *r1 = r0 + w;
        for (int64_t ox = 0; ox < ow; ox += 8) {
            const int masked = ow - ox < 8;
            window4 q = load_windows(r0 + 2 * ox, r1 + 2 * ox, masked, m0, m1);
            __m256 sb = takes(q.b, q.a), m = _mm256_blendv_ps(q.a, q.b, sb);
            __m256 sc = takes(q.c, m);
            m = _mm256_blendv_ps(m, q.c, sc);
            __m256 sd = takes(q.d, m);
            m = _mm256_blendv_ps(m, q.d, sd);
            if (mode == UM_POOL2X2_FORWARD) {
                if (!masked) _mm256_storeu_ps(out + k * ow + ox, m);
                else _mm256_maskstore_ps(out + k * ow + ox, mo, m);
                continue;
            }
            __m256 v = masked ? _mm256_maskload_ps(gyp + k * ow + ox, mo) : _mm256_loadu_ps(gyp + k * ow + ox);
            if (mode == UM_POOL2X2_RELU_BACKWARD)   /* a window whose maximum is <= 0 passes nothing */
                v = _mm256_andnot_ps(_mm256_cmp_ps(m, zero, _CMP_LE_OQ), v);
            /* the winner is the last cell that took the maximum: d, else c, else b, else a */
            __m256 cd = _mm256_or_ps(sc, sd);
            __m256 gd = _mm256_and_ps(sd, v), gc = _mm256_andnot_ps(sd, _mm256_and_ps(sc, v));
            __m256 gb = _mm256_andnot_ps(cd, _mm256_and_ps(sb, v)), ga = _mm256_andnot_ps(_mm256_or_ps(cd, sb), v);
            store_interleaved(out + 2 * k * w + 2 * ox, ga, gb, masked, m0, m1);
            store_interleaved(out + (2 * k + 1) * w + 2 * ox, gc, gd, masked, m0, m1);
        }
    }
    return UM_OK;
}
#endif
