/* CPU 2-D convolution: per image, im2col then OpenBLAS sgemms, or for stride-1 kernels of
 * up to 9 taps with 8+ channels one sgemm per tap without a column matrix (conv_taps.c),
 * or for stride-1 3x3 and 5x5 kernels with 8+ channels Winograd's F(4x4, 3x3), F(2x2, 3x3)
 * and F(2x2, 5x5) by blocks of images (winograd.c; forward and input gradient, the weight
 * gradient stays per tap or through im2col). OpenMP over the images of the batch, or over
 * Winograd's blocks of images (each thread owns its scratch and a private weight-gradient
 * accumulator, summed in a fixed order). Per image the column matrix stays in L2, and
 * neither chunks of images as one wider sgemm nor a serial loop of threaded sgemms did
 * better (docs/performance.md §4.4); batches smaller than the thread count use the
 * threaded sgemm. Each product is laid out the way OpenBLAS runs
 * fastest for thin convolutions (see gemm_cols, channel_group, the transposed weight
 * gradient, and the input gradient as a convolution).
 *
 * The per-image loops and the blocks do not depend on the thread count (a review's fuzz
 * of 1,100 windows found 1 and 2 threads bit-identical). Through Winograd an image's
 * result can differ in the last bits with the batch it comes in: its block's sgemms are
 * wider or narrower, and OpenBLAS's kernels round differently with the width. */
#include <cblas.h>
#include <ctype.h>
#include <omp.h>
#include <string.h>
#include "error.h"
#include "cpu/conv/conv_taps.h"
#include "cpu/conv/im2col.h"
#include "cpu/nn_cpu.h"
#include "cpu/conv/winograd.h"

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
 * that way, gx is written directly, instead of an sgemm into a column matrix summed
 * back by col2im (which made one read-add-write pass over gx per kernel tap). With
 * per-tap sgemms (conv_taps.c) that always pays; through im2col of gy it moves c_out/c
 * times the column data, so that way is taken only while c_out <= c
 * (docs/performance.md §4.3). */
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
 * flipped kernel (wf) and its per-tap form (wft), then each um_winograd_weight_floats
 * (16 or 36 times c*c_out) when used, the Winograd kernels of the forward (wu) and of
 * the input gradient (wgu). */
typedef struct {
    int fwd_wino;        /* forward by Winograd: its output tile side (2 or 4), else 0 */
    int fwd_taps;        /* forward by per-tap sgemms (else im2col, unless fwd_wino) */
    int w_taps;          /* weight gradient by per-tap sgemms (else im2col) */
    int gx_taps;         /* input gradient as a per-tap convolution of gy */
    int gx_im2col;       /* input gradient as an im2col convolution of gy */
    int gx_wino;         /* input gradient as a Winograd convolution of gy: its tile, or 0 */
    um_window2d tg;      /* the window of that convolution (when any) */
    int64_t per_thread;  /* floats per thread */
    int64_t wt, wf, wft; /* offsets of the shared parts */
    int64_t wu, wgu;     /* the Winograd kernels of the forward and the input gradient */
    int64_t workspace;   /* floats in all */
} conv_plan;

static int has_small_kernels(void);

/* The column matrix and the scratch of um_im2col / um_col2im after it. */
static int64_t im2col_floats(const um_window2d *g) { return col_rows(g) * col_cols(g) + um_im2col_scratch_floats(g); }

static conv_plan plan_of(const um_window2d *g) {
    conv_plan p = {0};
    p.tg = *g;
    /* Winograd where it applies: faster than per tap or im2col for every 3x3 and 5x5
     * layer of ResNetSmall and LeNet it applies to, with the tile um_winograd_tile picks
     * (docs/performance.md §4.1) */
    p.fwd_wino = um_winograd_tile(g);
    const int taps = !is_pointwise(g) && um_conv_taps_apply(g) && (!has_small_kernels() || um_conv_taps_little_junk(g));
    p.fwd_taps = taps && !p.fwd_wino;
    /* per-tap weight gradients are c x c_out sgemms over the whole image, one per tap:
     * faster than im2col up to 16 channels, slower beyond (docs/performance.md §4.2) */
    p.w_taps = taps && g->c <= 16 && g->c_out <= 16;
    if (transposable(g)) {
        p.tg = transposed_window(g);
        p.gx_wino = um_winograd_tile(&p.tg);
        p.gx_taps = !p.gx_wino && um_conv_taps_apply(&p.tg) &&
                    (!has_small_kernels() || um_conv_taps_little_junk(&p.tg));
        p.gx_im2col = !p.gx_wino && !p.gx_taps && g->c_out <= g->c;
    }
    int64_t scratch = 0;
    if (p.fwd_taps || p.w_taps) scratch = um_conv_taps_input_floats(g) + um_conv_taps_output_floats(g);
    if (!is_pointwise(g) && ((!p.fwd_taps && !p.fwd_wino) || !p.w_taps)) scratch = max64(scratch, im2col_floats(g));
    if (p.fwd_wino) scratch = max64(scratch, um_winograd_scratch_floats(g, p.fwd_wino));
    if (p.gx_wino) scratch = max64(scratch, um_winograd_scratch_floats(&p.tg, p.gx_wino));
    else if (p.gx_taps) scratch = max64(scratch, um_conv_taps_input_floats(&p.tg) + um_conv_taps_output_floats(&p.tg));
    else if (p.gx_im2col) scratch = max64(scratch, im2col_floats(&p.tg));
    else if (!is_pointwise(g)) scratch = max64(scratch, im2col_floats(g));   /* sgemm + col2im */
    p.per_thread = scratch + g->c_out * col_rows(g) + g->c_out;
    const int64_t KO = g->c * g->c_out * g->kh * g->kw;
    p.wt = (int64_t)omp_get_max_threads() * p.per_thread;
    p.wf = p.wt + (p.fwd_taps ? KO : 0);
    p.wft = p.wf + (p.gx_taps || p.gx_im2col || p.gx_wino ? KO : 0);
    p.wu = p.wft + (p.gx_taps ? KO : 0);
    p.wgu = p.wu + (p.fwd_wino ? um_winograd_weight_floats(g, p.fwd_wino) : 0);
    p.workspace = p.wgu + (p.gx_wino ? um_winograd_weight_floats(&p.tg, p.gx_wino) : 0);
    return p;
}

int64_t um_cpu_conv2d_workspace(const um_window2d *g) { return plan_of(g).workspace; }

static const char *winograd_name(const um_window2d *g, int tile) {
    if (g->kh == 5) return "winograd F(2x2,5x5)";
    return tile == 4 ? "winograd F(4x4,3x3)" : "winograd F(2x2,3x3)";
}

const char *um_cpu_conv2d_path(const um_window2d *g, int input_grad) {
    const conv_plan p = plan_of(g);
    if (!input_grad) {
        if (p.fwd_wino) return winograd_name(g, p.fwd_wino);
        if (p.fwd_taps) return "per-tap";
        return is_pointwise(g) ? "sgemm" : "im2col";
    }
    if (p.gx_wino) return winograd_name(&p.tg, p.gx_wino);
    if (p.gx_taps) return "per-tap of gy";
    if (p.gx_im2col) return "im2col of gy";
    return is_pointwise(g) ? "sgemm" : "sgemm + col2im";
}

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
 * packed sgemm spends about as long copying b as multiplying; on 64-column blocks its
 * small-matrix kernels need no packing and run more than twice as fast
 * (docs/performance.md §4.4). Wider problems keep one call. */
#define GEMM_THIN 32
#define GEMM_BLOCK 64

/* The small-matrix kernels exist for OpenBLAS's AVX-512 cores; with others (Haswell,
 * forced by OPENBLAS_CORETYPE on this workplace's test machines) blocking is slower, so
 * it is used only there. */
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
 * matrix's rows come per channel) so that each stays under that limit, which pays for
 * LeNet's 32 -> 64 5x5 on 14x14 (docs/performance.md §4.4). The channels per group: all
 * of them when the small kernels are not there, when the sgemms may use OpenBLAS's
 * threads (serial 0: fewer images than threads), when the products gemm_cols issues fit
 * already (with at most GEMM_THIN output channels it issues GEMM_BLOCK columns at a
 * time), or when one channel alone does not. */
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
            um_im2col(&part, b, col, col + col_rows(&part) * P);
            b = col;
        }
        gemm_cols(blocks, 0, g->c_out, P, part.c * taps, w + c0 * taps, K, b, P, c0 ? 1.0f : 0.0f, y, P);
    }
}

/* y = conv(x) over the batch by Winograd blocks of images: a thread per block while every
 * thread gets one (thread t's scratch at wk + t * per_thread), else one thread and a
 * multithreaded BLAS, as image_threads does for images. The blocks do not depend on the
 * thread count, so neither do the results. */
static void winograd_batch(const um_window2d *g, int tile, const float *u, const float *x, float *y,
                           const float *bias, float *wk, int64_t per_thread) {
    const int64_t per = um_winograd_block_images(g, tile), blocks = (g->n + per - 1) / per;
    const int64_t in = g->c * g->h * g->w, out = g->c_out * g->oh * g->ow;
    const int nt = image_threads(blocks);
    int saved = nt > 1 ? um_cpu_blas_serial_begin() : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i = b * per, k = g->n - i < per ? g->n - i : per;
        um_winograd_forward(g, tile, u, x + i * in, k, y + i * out, bias, wk + (int64_t)omp_get_thread_num() * per_thread);
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
}

int um_cpu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                          const um_tensor *bias, um_tensor *y, um_tensor *work) {
    int rc = um_winograd_check_setting();
    if (rc) return rc;
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
    if (plan.fwd_wino) {
        um_winograd_weights(g, plan.fwd_wino, wp, wk + plan.wu);
        winograd_batch(g, plan.fwd_wino, wk + plan.wu, xp, yp, bp, wk, T);
        return UM_OK;
    }
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
            um_col2im(&part, col, out, col + col_rows(&part) * P);
        }
    }
}

/* gw_t (K x c_out, transposed) += the column matrix of image x times gy^T: transposed,
 * because gy col^T runs far slower with 16 output channels. One product: split over
 * channel groups as the others it was slower (docs/performance.md §4.4). */
static void cols_weight_grad(const um_window2d *g, const float *x, const float *gy, float *col, float *gw_t) {
    const float *b = x;
    if (!is_pointwise(g)) {
        um_im2col(g, x, col, col + col_rows(g) * col_cols(g));
        b = col;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)col_rows(g), (int)g->c_out, (int)col_cols(g), 1.0f, b,
                (int)col_cols(g), gy, (int)col_cols(g), 1.0f, gw_t, (int)g->c_out);
}

int um_cpu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                           const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                           um_tensor *gbias, um_tensor *work) {
    int rc = um_winograd_check_setting();
    if (rc) return rc;
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
    const int x_wino = gxp && plan.gx_wino;   /* after the per-image loop, by blocks */
    if (x_taps || transposed || x_wino) flip_kernel(g, wp, wf);
    if (x_taps) um_conv_taps_weights(&tg, wf, wft);
    if (x_wino) um_winograd_weights(&tg, plan.gx_wino, wf, wk + plan.wgu);
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
            } else if (gxp && !x_wino) {
                cols_input_grad(g, blocks, group, gyi, wp, buf, gxp + i * g->c * g->h * g->w);
            }
        }
    }
    if (nt > 1) um_cpu_blas_serial_end(saved);
    if (x_wino) winograd_batch(&tg, plan.gx_wino, wk + plan.wgu, gyp, gxp, NULL, wk, T);
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
