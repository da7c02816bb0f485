/* CPU 2-D convolution: per image, im2col then OpenBLAS sgemms, or for stride-1 kernels of
 * up to 9 taps with 8+ channels one sgemm per tap without a column matrix (conv_taps.c);
 * OpenMP over the images of the batch (each thread owns its scratch and a private
 * weight-gradient accumulator, summed in a fixed order). Per image the column matrix
 * stays in L2; chunks of images as one wider sgemm measured no faster. Against a serial
 * loop of 2-thread sgemms it measured equal forward and faster input gradients; batches
 * smaller than the thread count use the threaded sgemm. Each product is laid out the way
 * OpenBLAS runs fastest for thin convolutions (see gemm_cols, channel_group, the
 * transposed weight gradient, and the input gradient as a convolution). */
#include <cblas.h>
#include <ctype.h>
#include <omp.h>
#include <string.h>
#include "error.h"
#include "conv_taps.h"
#include "nn_cpu.h"

int um_cpu_blas_serial_begin(void) {
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    return saved;
}

void um_cpu_blas_serial_end(int saved) {
    if (saved != 1) openblas_set_num_threads(saved);
}

static int64_t col_rows(const um_window2d *g) { return g->c * g->kh * g->kw; }
static int64_t col_cols(const um_window2d *g) { return g->oh * g->ow; }

/* A 1x1, stride-1, unpadded convolution reads the image itself as its column matrix. */
static int is_pointwise(const um_window2d *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
}

/* The input gradient of a stride-1 convolution is itself a convolution: of gy, padded
 * by (kernel - 1 - padding) on each side, with the kernel flipped in space and its two
 * channel axes swapped ("transposable": when those paddings are not negative). Computed
 * that way, gx is written directly, instead of an sgemm into a column matrix and col2im's
 * read-add-write passes over gx, one per kernel tap (the backward loop around col2im took
 * 20% of ResNetSmall's input-gradient time under perf, 3% after). With per-tap sgemms
 * (conv_taps.c) that always pays; through im2col of gy it moves c_out/c times the column
 * data, which with c_out = 2c measured 35% slower, so that way is taken while c_out <= c. */
static int transposable(const um_window2d *g) {
    const int64_t pad_bottom = (g->oh - 1) + g->kh - g->h - g->pad_top;
    const int64_t pad_right = (g->ow - 1) + g->kw - g->w - g->pad_left;
    return !is_pointwise(g) && g->sh == 1 && g->sw == 1 && g->pad_top < g->kh && g->pad_left < g->kw &&
           pad_bottom < g->kh && pad_right < g->kw;
}

/* The window of that convolution: input gy (c_out, oh, ow), output gx (c, h, w). */
static um_window2d transposed_window(const um_window2d *g) {
    um_window2d t = *g;
    t.c = g->c_out; t.c_out = g->c;
    t.h = g->oh; t.w = g->ow; t.oh = g->h; t.ow = g->w;
    t.pad_top = g->kh - 1 - g->pad_top; t.pad_left = g->kw - 1 - g->pad_left;
    return t;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* How each product is computed for window g, and where its scratch lies in the work
 * buffer: per thread, scratch for whichever of those ways are used (one at a time), then
 * a weight-gradient partial (K x c_out, transposed) and a bias-gradient partial (c_out);
 * after all threads' blocks, each c*c_out*kh*kw when used, the per-tap weights (wt), the
 * flipped kernel (wf) and its per-tap form (wft). */
typedef struct {
    int fwd_taps;        /* forward by per-tap sgemms (else im2col) */
    int w_taps;          /* weight gradient by per-tap sgemms (else im2col) */
    int gx_taps;         /* input gradient as a per-tap convolution of gy */
    int gx_im2col;       /* input gradient as an im2col convolution of gy */
    um_window2d tg;      /* the window of that convolution (when either) */
    int64_t per_thread;  /* floats per thread */
    int64_t wt, wf, wft; /* offsets of the shared parts */
    int64_t workspace;   /* floats in all */
} conv_plan;

static int has_small_kernels(void);

/* With a column stride (sw > 1) im2col and col2im work through each input plane split
 * into its sw column phases (phase p holds columns p, p + sw, ...; columns_split), so that
 * every row of the column matrix is a contiguous run of one phase. Element by element
 * the strided gather took 66% of ResNetSmall's 16 -> 32 stride-2 forward under perf, and
 * the strided scatter-add as much of its input gradient. The phases of one plane follow
 * the column matrix in the scratch. */
static int64_t phase_width(const um_window2d *g) { return (g->w + g->sw - 1) / g->sw; }
static int64_t phase_floats(const um_window2d *g) { return g->sw > 1 ? g->sw * g->h * phase_width(g) : 0; }
static int64_t im2col_floats(const um_window2d *g) { return col_rows(g) * col_cols(g) + phase_floats(g); }

static conv_plan plan_of(const um_window2d *g) {
    conv_plan p = {0};
    p.tg = *g;
    p.fwd_taps = !is_pointwise(g) && um_conv_taps_apply(g) && (!has_small_kernels() || um_conv_taps_little_junk(g));
    /* per-tap weight gradients are c x c_out sgemms over the whole image, one per tap:
     * for 16 -> 16 channels (3x3, 32x32) the backward measured 8.6 ms against 9.9 through
     * im2col (batch 128, 1 thread), for 32 -> 32 the same, for 64 -> 64 and LeNet's
     * 32 -> 64 5x5 slower (8.9 against 7.8, 42 against 30) */
    p.w_taps = p.fwd_taps && g->c <= 16 && g->c_out <= 16;
    if (transposable(g)) {
        p.tg = transposed_window(g);
        p.gx_taps = um_conv_taps_apply(&p.tg) && (!has_small_kernels() || um_conv_taps_little_junk(&p.tg));
        p.gx_im2col = !p.gx_taps && g->c_out <= g->c;
    }
    int64_t scratch = 0;
    if (p.fwd_taps) scratch = um_conv_taps_input_floats(g) + um_conv_taps_output_floats(g);
    if (!is_pointwise(g) && !(p.fwd_taps && p.w_taps)) scratch = max64(scratch, im2col_floats(g));
    if (p.gx_taps) scratch = max64(scratch, um_conv_taps_input_floats(&p.tg) + um_conv_taps_output_floats(&p.tg));
    else if (p.gx_im2col) scratch = max64(scratch, im2col_floats(&p.tg));
    else if (!is_pointwise(g)) scratch = max64(scratch, im2col_floats(g));   /* sgemm + col2im */
    p.per_thread = scratch + g->c_out * col_rows(g) + g->c_out;
    const int64_t KO = g->c * g->c_out * g->kh * g->kw;
    p.wt = (int64_t)omp_get_max_threads() * p.per_thread;
    p.wf = p.wt + (p.fwd_taps ? KO : 0);
    p.wft = p.wf + (p.gx_taps || p.gx_im2col ? KO : 0);
    p.workspace = p.wft + (p.gx_taps ? KO : 0);
    return p;
}

int64_t um_cpu_conv2d_workspace(const um_window2d *g) { return plan_of(g).workspace; }

/* wf[c][o][kh-1-i][kw-1-j] = w[o][c][i][j] */
static void flip_kernel(const um_window2d *g, const float *w, float *wf) {
    const int64_t taps = g->kh * g->kw;
    for (int64_t o = 0; o < g->c_out; o++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t t = 0; t < taps; t++)
                wf[(c * g->c_out + o) * taps + (taps - 1 - t)] = w[(o * g->c + c) * taps + t];
}

/* y (m x n, ldc) = op(a) (m x k) * b (k x n, ldb), op = transpose when ta. With a
 * thin side (a convolution's 16 output channels, or a 16-long inner dimension) OpenBLAS's
 * packed sgemm spends about as long copying b as multiplying (16 x 1024 x 144: 81
 * GFLOP/s); on 64-column blocks its small-matrix kernels need no packing and run at
 * 190-245 GFLOP/s (AVX-512, 1 thread). Wider problems keep one call. */
#define GEMM_THIN 32
#define GEMM_BLOCK 64

/* The small-matrix kernels exist for OpenBLAS's AVX-512 cores; with others (Haswell,
 * forced by OPENBLAS_CORETYPE on this workplace's test machines) blocking measured 3%
 * slower, so it is used only there. */
static int has_small_kernels(void) {
    static int known = -1;
    if (known < 0) {
        const char *name = openblas_get_corename();
        char lower[64] = {0};
        for (size_t i = 0; name && name[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)name[i]);
        known = strstr(lower, "skylakex") || strstr(lower, "cooperlake") || strstr(lower, "sapphirerapids");
    }
    return known;
}

/* blocks: has_small_kernels(), asked once before the parallel region */
static void gemm_cols(int blocks, int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *y, int64_t ldc) {
    int64_t nb = blocks && (m <= GEMM_THIN || k <= GEMM_THIN) ? GEMM_BLOCK : n;
    for (int64_t j = 0; j < n; j += nb) {
        int64_t w = n - j < nb ? n - j : nb;
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)m, (int)w, (int)k,
                    1.0f, a, (int)lda, b + j, (int)ldb, beta, y + j, (int)ldc);
    }
}

/* OpenBLAS (0.3.21, AVX-512 cores) runs a product with m*n*k <= 100^3 through its
 * small-matrix kernels, without packing either side (and on one thread). The forward and
 * input-gradient products of an image split over groups of input channels (the column
 * matrix's rows come per channel) so that each stays under that limit: for LeNet's
 * 32 -> 64 5x5 on 14x14 (64 x 196 x 800 per image) the sgemms alone measured 235 GFLOP/s
 * as 11 products of k = 75 against 196 as one, and the layer's forward 13.9 ms against
 * 16.4, its input gradient (with col2im) 15.1 against 15.9 (batch 128, 1 thread). The
 * channels per group; all of them when the small kernels are not there, when the sgemms
 * may use OpenBLAS's threads (serial 0: fewer images than threads), when the products
 * gemm_cols issues fit already (with at most GEMM_THIN output channels it issues
 * GEMM_BLOCK columns at a time), or when one channel alone does not. */
#define GEMM_SMALL_LIMIT 1000000
static int64_t forced_group;   /* um_cpu_conv2d_force_channel_group */

void um_cpu_conv2d_force_channel_group(int64_t group) { forced_group = group > 0 ? group : 0; }

static int64_t channel_group(int blocks, int serial, const um_window2d *g) {
    if (forced_group) return forced_group < g->c ? forced_group : g->c;
    const int64_t P = col_cols(g), cols = blocks && g->c_out <= GEMM_THIN && P > GEMM_BLOCK ? GEMM_BLOCK : P;
    const int64_t per_channel = g->kh * g->kw * cols * g->c_out;
    if (!blocks || !serial || per_channel * g->c <= GEMM_SMALL_LIMIT || per_channel > GEMM_SMALL_LIMIT) return g->c;
    return GEMM_SMALL_LIMIT / per_channel;
}

/* Channels [c0, c0 + group) of window g (fewer at the end), as a window of its own over
 * x + c0 planes. */
static um_window2d channel_part(const um_window2d *g, int64_t c0, int64_t group) {
    um_window2d part = *g;
    part.c = g->c - c0 < group ? g->c - c0 : group;
    return part;
}

/* Range of output columns ox whose input column ox*sw - pad + kj lies inside [0, w). */
static void valid_range(int64_t out, int64_t stride, int64_t pad, int64_t k, int64_t in,
                        int64_t *lo, int64_t *hi) {
    int64_t a = pad - k;                 /* need ox*stride >= a */
    int64_t b = in + pad - k;            /* need ox*stride < b */
    int64_t l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int64_t h = b <= 0 ? 0 : (b + stride - 1) / stride;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

/* Stride 1 with ow == w (`same` width): row (c, ki, kj) of the column matrix is the
 * input plane shifted by (di, dj) = (ki - pad_top, kj - pad_left), read as one long run;
 * positions whose column wrapped around (ox + dj outside [0, w)) or whose row falls
 * outside the input are zero. This turns im2col and col2im into long copies and adds. */
static int is_shift_layout(const um_window2d *g) { return g->sh == 1 && g->sw == 1 && g->ow == g->w; }

typedef struct {
    int64_t d0, d1;      /* destination (column-matrix) run with valid rows */
    int64_t shift;       /* source index = destination index + shift */
    int64_t c0, c1;      /* valid columns [c0, c1) */
} shift_run;

static shift_run shift_of(const um_window2d *g, int64_t ki, int64_t kj) {
    const int64_t di = ki - g->pad_top, dj = kj - g->pad_left, w = g->w;
    int64_t lo = di < 0 ? -di : 0, hi = g->h - di < g->oh ? g->h - di : g->oh;
    if (hi < lo) hi = lo;
    shift_run r = {lo * w, hi * w, di * w + dj, dj < 0 ? -dj : 0, dj > 0 ? w - dj : w};
    /* keep source indices inside the plane; the clipped ends are wrapped columns */
    if (r.d0 + r.shift < 0) r.d0 = -r.shift;
    if (r.d1 + r.shift > g->h * w) r.d1 = g->h * w - r.shift;
    /* taps whose rows all fall in the padding (tiny inputs): an empty run inside the
     * matrix, and wrapped-column bounds inside the row */
    const int64_t P = g->oh * w;
    if (r.d0 > P) r.d0 = P;
    if (r.d1 > P) r.d1 = P;
    if (r.d1 < r.d0) r.d1 = r.d0;
    if (r.c0 > w) r.c0 = w;
    if (r.c1 < 0) r.c1 = 0;
    return r;
}

/* Zero the wrapped columns of rows [row0, row1) of a column-matrix row block. */
static void zero_wrapped(float *dst, int64_t w, int64_t row0, int64_t row1, int64_t c0, int64_t c1) {
    for (int64_t oy = row0; oy < row1; oy++) {
        for (int64_t ox = 0; ox < c0; ox++) dst[oy * w + ox] = 0.0f;
        for (int64_t ox = c1; ox < w; ox++) dst[oy * w + ox] = 0.0f;
    }
}

static void im2col_shift(const um_window2d *g, const float *x, float *col) {
    const int64_t P = col_cols(g), w = g->w, plane = g->h * g->w, taps = g->kh * g->kw;
    for (int64_t t = 0; t < taps; t++) {
        const shift_run r = shift_of(g, t / g->kw, t % g->kw);
        const int64_t row0 = r.d0 / w, row1 = (r.d1 + w - 1) / w;
        for (int64_t c = 0; c < g->c; c++) {
            float *dst = col + (c * taps + t) * P;
            const float *src = x + c * plane;
            memset(dst, 0, (size_t)(row0 * w) * sizeof(float));
            memcpy(dst + r.d0, src + r.d0 + r.shift, (size_t)(r.d1 - r.d0) * sizeof(float));
            memset(dst + row1 * w, 0, (size_t)(P - row1 * w) * sizeof(float));
            zero_wrapped(dst, w, row0, row1, r.c0, r.c1);
        }
    }
}

/* col is scratch: its wrapped columns are zeroed so the long add can run over them. */
static void col2im_shift(const um_window2d *g, float *col, float *gx) {
    const int64_t P = col_cols(g), w = g->w, plane = g->h * g->w;
    const int64_t taps = g->kh * g->kw;
    memset(gx, 0, (size_t)(g->c * plane) * sizeof(float));
    for (int64_t t = 0; t < taps; t++) {
        const shift_run r = shift_of(g, t / g->kw, t % g->kw);
        for (int64_t c = 0; c < g->c; c++) {
            float *src = col + (c * taps + t) * P;
            float *dst = gx + c * plane + r.shift;
            zero_wrapped(src, w, r.d0 / w, (r.d1 + w - 1) / w, r.c0, r.c1);
#pragma omp simd
            for (int64_t d = r.d0; d < r.d1; d++) dst[d] += src[d];
        }
    }
}

/* The stride-2 cases, vectorised (as permutes) once the compiler knows the three runs
 * apart: in[2j] -> even[j], in[2j+1] -> odd[j], and back. */
static void split_pairs(const float *restrict in, float *restrict even, float *restrict odd, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        even[j] = in[2 * j];
        odd[j] = in[2 * j + 1];
    }
}

static void merge_pairs(const float *restrict even, const float *restrict odd, float *restrict out, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        out[2 * j] = even[j];
        out[2 * j + 1] = odd[j];
    }
}

/* plane (h, w) -> its sw column phases, phase p (h, phase_width) holding columns p, p +
 * sw, ...; a last phase column past w is left unset (valid_range never reads it). */
static void columns_split(const um_window2d *g, const float *plane, float *phases) {
    const int64_t sw = g->sw, w = g->w, wp = phase_width(g), stride = g->h * wp;
    for (int64_t iy = 0; iy < g->h; iy++) {
        const float *in = plane + iy * w;
        float *out = phases + iy * wp;
        if (sw == 2) {
            split_pairs(in, out, out + stride, w / 2);
            if (w % 2) out[w / 2] = in[w - 1];
            continue;
        }
        for (int64_t ix = 0; ix < w; ix++) out[(ix % sw) * stride + ix / sw] = in[ix];
    }
}

/* The inverse: phases -> plane (h, w), every cell written. */
static void columns_merge(const um_window2d *g, const float *phases, float *plane) {
    const int64_t sw = g->sw, w = g->w, wp = phase_width(g), stride = g->h * wp;
    for (int64_t iy = 0; iy < g->h; iy++) {
        const float *in = phases + iy * wp;
        float *out = plane + iy * w;
        if (sw == 2) {
            merge_pairs(in, in + stride, out, w / 2);
            if (w % 2) out[w - 1] = in[w / 2];
            continue;
        }
        for (int64_t ix = 0; ix < w; ix++) out[ix] = in[(ix % sw) * stride + ix / sw];
    }
}

/* Where the input columns of kernel column kj lie: row iy of the returned base, *row
 * floats apart, holds input column ox*sw - pad_left + kj at index ox (for the valid ox of
 * valid_range). With stride 1 that is the plane shifted; otherwise one column phase. */
static const float *tap_source(const um_window2d *g, int64_t kj, const float *plane, const float *phases,
                               int64_t *row) {
    const int64_t off = kj - g->pad_left;
    if (g->sw == 1) {
        *row = g->w;
        return plane + off;
    }
    const int64_t p = ((off % g->sw) + g->sw) % g->sw;
    *row = phase_width(g);
    return phases + p * g->h * *row + (off - p) / g->sw;
}

/* x (c, h, w) -> col (c*kh*kw, oh*ow), any stride and padding. GCC would turn the copy
 * loops back into memcpy/memset calls, which cost more than they move on short rows. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void im2col(const um_window2d *g, const float *x, float *col) {
    if (is_shift_layout(g)) {
        im2col_shift(g, x, col);
        return;
    }
    const int64_t P = col_cols(g), plane = g->h * g->w;
    float *phases = col + col_rows(g) * P;
    for (int64_t c = 0; c < g->c; c++) {
        const float *xc = x + c * plane;
        if (g->sw > 1) columns_split(g, xc, phases);
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *dst = col + ((c * g->kh + ki) * g->kw + kj) * P;
                int64_t lo, hi, row;
                const float *base = tap_source(g, kj, xc, phases, &row);
                valid_range(g->ow, g->sw, g->pad_left, kj, g->w, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++, dst += g->ow) {
                    int64_t iy = oy * g->sh - g->pad_top + ki;
                    if (iy < 0 || iy >= g->h || lo >= hi) {
                        for (int64_t ox = 0; ox < g->ow; ox++) dst[ox] = 0.0f;
                        continue;
                    }
                    const float *src = base + iy * row;
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
#pragma omp simd
                    for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox];
                    for (int64_t ox = hi; ox < g->ow; ox++) dst[ox] = 0.0f;
                }
            }
    }
}

/* col (c*kh*kw, oh*ow) summed back into gx (c, h, w), which is overwritten; col is
 * scratch and may be changed. */
static void col2im(const um_window2d *g, float *col, float *gx) {
    if (is_shift_layout(g)) {
        col2im_shift(g, col, gx);
        return;
    }
    const int64_t P = col_cols(g), plane = g->h * g->w;
    float *phases = col + col_rows(g) * P;
    for (int64_t c = 0; c < g->c; c++) {
        float *gxc = gx + c * plane;
        /* the sums gather in gx's plane itself, or in its column phases */
        memset(g->sw > 1 ? phases : gxc, 0, (size_t)(g->sw > 1 ? phase_floats(g) : plane) * sizeof(float));
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *src = col + ((c * g->kh + ki) * g->kw + kj) * P;
                int64_t lo, hi, row;
                float *base = (float *)tap_source(g, kj, gxc, phases, &row);
                valid_range(g->ow, g->sw, g->pad_left, kj, g->w, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++, src += g->ow) {
                    int64_t iy = oy * g->sh - g->pad_top + ki;
                    if (iy < 0 || iy >= g->h) continue;
                    float *dst = base + iy * row;
#pragma omp simd
                    for (int64_t ox = lo; ox < hi; ox++) dst[ox] += src[ox];
                }
            }
        if (g->sw > 1) columns_merge(g, phases, gxc);
    }
}

/* Threads to use over n images: all when every thread gets an image, else one thread
 * and a multithreaded BLAS (small batches, e.g. a single PGD example). */
static int image_threads(int64_t n) {
    int t = omp_get_max_threads();
    return n >= t ? t : 1;
}

/* y (c_out, oh*ow) = w (c_out, K) * the column matrix of image x, built and multiplied a
 * channel group at a time (channel_group) into col, which holds one group's rows. */
static void cols_convolve(const um_window2d *g, int blocks, int64_t group, const float *x, const float *w,
                          float *col, float *y) {
    const int64_t K = col_rows(g), P = col_cols(g), taps = g->kh * g->kw, plane = g->h * g->w;
    for (int64_t c0 = 0; c0 < g->c; c0 += group) {
        const um_window2d part = channel_part(g, c0, group);
        const float *b = x + c0 * plane;
        if (!is_pointwise(g)) {
            im2col(&part, b, col);
            b = col;
        }
        gemm_cols(blocks, 0, g->c_out, P, part.c * taps, w + c0 * taps, K, b, P, c0 ? 1.0f : 0.0f, y, P);
    }
}

int um_cpu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                          const um_tensor *bias, um_tensor *y, um_tensor *work) {
    const int64_t P = col_cols(g), O = g->c_out;
    const float *xp = um_f32(x), *wp = um_f32(weight), *bp = bias ? um_f32(bias) : NULL;
    float *yp = um_f32(y), *wk = um_f32(work);
    int nt = image_threads(g->n);
    const int blocks = has_small_kernels();
    const int serial = nt > 1 || openblas_get_num_threads() == 1;
    const int64_t group = channel_group(blocks, serial, g);
    const conv_plan plan = plan_of(g);
    const int64_t T = plan.per_thread;
    float *wt = wk + plan.wt;
    if (plan.fwd_taps) um_conv_taps_weights(g, wp, wt);
    int saved = nt > 1 ? um_cpu_blas_serial_begin() : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < g->n; i++) {
        const float *xi = xp + i * g->c * g->h * g->w;
        float *yi = yp + i * O * P;
        if (plan.fwd_taps) {
            float *xpad = wk + (int64_t)omp_get_thread_num() * T;
            um_conv_taps_pad(g, xi, xpad);
            um_conv_taps_forward(g, wt, xpad, xpad + um_conv_taps_input_floats(g), yi, bp);
            continue;
        }
        cols_convolve(g, blocks, group, xi, wp, wk + (int64_t)omp_get_thread_num() * T, yi);
        if (bp)
            for (int64_t o = 0; o < O; o++) {
                float b = bp[o], *row = yi + o * P;
                for (int64_t p = 0; p < P; p++) row[p] += b;
            }
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
    return UM_OK;
}

/* gx (c, h, w) of image gy (c_out, oh*ow): the column matrix w^T gy, summed back by
 * col2im (a 1x1 unpadded convolution's is gx itself), a channel group at a time. */
static void cols_input_grad(const um_window2d *g, int blocks, int64_t group, const float *gy, const float *w,
                            float *col, float *gx) {
    const int64_t K = col_rows(g), P = col_cols(g), taps = g->kh * g->kw, plane = g->h * g->w;
    for (int64_t c0 = 0; c0 < g->c; c0 += group) {
        const um_window2d part = channel_part(g, c0, group);
        float *out = gx + c0 * plane;
        if (is_pointwise(g)) {
            gemm_cols(blocks, 1, part.c, P, g->c_out, w + c0, K, gy, P, 0.0f, out, P);
        } else {
            gemm_cols(blocks, 1, part.c * taps, P, g->c_out, w + c0 * taps, K, gy, P, 0.0f, col, P);
            col2im(&part, col, out);
        }
    }
}

/* gw_t (K x c_out, transposed) += the column matrix of image x times gy^T: transposed,
 * 146 GFLOP/s where gy col^T ran at 54 with 16 output channels. One product: split over
 * channel groups as the others, LeNet's backward measured 48.2 ms against 44.3. */
static void cols_weight_grad(const um_window2d *g, const float *x, const float *gy, float *col, float *gw_t) {
    const float *b = x;
    if (!is_pointwise(g)) {
        im2col(g, x, col);
        b = col;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)col_rows(g), (int)g->c_out, (int)col_cols(g), 1.0f, b,
                (int)col_cols(g), gy, (int)col_cols(g), 1.0f, gw_t, (int)g->c_out);
}

int um_cpu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                           const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                           um_tensor *gbias, um_tensor *work) {
    const conv_plan plan = plan_of(g);
    const int64_t K = col_rows(g), P = col_cols(g), O = g->c_out, T = plan.per_thread;
    const float *gyp = um_f32(gy), *wp = um_f32(weight);
    const float *xp = gweight ? um_f32(x) : NULL;
    float *gxp = gx ? um_f32(gx) : NULL, *wk = um_f32(work);
    int nt = image_threads(g->n);
    const int blocks = has_small_kernels();
    const um_window2d tg = plan.tg;
    const int serial = nt > 1 || openblas_get_num_threads() == 1;
    const int64_t group = channel_group(blocks, serial, g), tgroup = channel_group(blocks, serial, &tg);
    const int w_taps = gweight && plan.w_taps;
    const int x_taps = gxp && plan.gx_taps, transposed = gxp && plan.gx_im2col;
    float *wf = wk + plan.wf, *wft = wk + plan.wft;
    if (x_taps || transposed) flip_kernel(g, wp, wf);
    if (x_taps) um_conv_taps_weights(&tg, wf, wft);
    int saved = nt > 1 ? um_cpu_blas_serial_begin() : 1;
    int team = nt;   /* smaller than nt when called inside another parallel region */
#pragma omp parallel num_threads(nt)
    {
#pragma omp single
        team = omp_get_num_threads();
        float *buf = wk + (int64_t)omp_get_thread_num() * T;
        float *gw_part = buf + T - O * K - O, *gb_part = gw_part + O * K;
        if (gweight) memset(gw_part, 0, (size_t)(O * K) * sizeof(float));
        if (gbias) memset(gb_part, 0, (size_t)O * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < g->n; i++) {
            const float *gyi = gyp + i * O * P;
            if (w_taps) {
                const float *xi = xp + i * g->c * g->h * g->w;
                um_conv_taps_pad(g, xi, buf);
                um_conv_taps_weight_grad(g, buf, gyi, buf + um_conv_taps_input_floats(g), gw_part);
            } else if (gweight) {
                cols_weight_grad(g, xp + i * g->c * g->h * g->w, gyi, buf, gw_part);
            }
            if (gbias)
                for (int64_t o = 0; o < O; o++) {
                    const float *row = gyi + o * P;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int64_t p = 0; p < P; p++) s += row[p];
                    gb_part[o] += s;
                }
            if (x_taps) {
                float *gxi = gxp + i * g->c * g->h * g->w;
                um_conv_taps_pad(&tg, gyi, buf);
                um_conv_taps_forward(&tg, wft, buf, buf + um_conv_taps_input_floats(&tg), gxi, NULL);
            } else if (transposed) {
                cols_convolve(&tg, blocks, tgroup, gyi, wf, buf, gxp + i * g->c * g->h * g->w);
            } else if (gxp) {
                cols_input_grad(g, blocks, group, gyi, wp, buf, gxp + i * g->c * g->h * g->w);
            }
        }
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
    /* Sum the per-thread partials in a fixed order, so results do not depend on timing. */
    for (int t = 0; t < team; t++) {
        const float *gw_part = wk + (int64_t)t * T + T - O * K - O, *gb_part = gw_part + O * K;
        if (gweight) {
            float *gw = um_f32(gweight);
            for (int64_t o = 0; o < O; o++)
                for (int64_t k = 0; k < K; k++) gw[o * K + k] += gw_part[k * O + o];
        }
        if (gbias) {
            float *gb = um_f32(gbias);
            for (int64_t o = 0; o < O; o++) gb[o] += gb_part[o];
        }
    }
    return UM_OK;
}
