/* im2col and col2im for CPU convolutions (conv.c): the column matrix of one image, any
 * stride and padding, through the zero-padded plane of one channel at a time.
 *
 * Row (c, ki, kj) of the column matrix, output row oy, is the run of ow values of the
 * padded plane at row oy*sh + ki from column kj, sw apart. The padded plane of a channel
 * is built once (a few KB, in L1), and every run of the matrix is then copied from it
 * without tests for the border; with a column stride the padded plane is kept as its sw
 * column phases (phase p holds columns p, p + sw, ...), so that the runs are contiguous
 * there too. col2im adds the runs into a zeroed padded plane and copies its inside out.
 * One mechanism for every window, where there were two (long shifted copies with the
 * wrapped columns zeroed after, for stride 1 `same`; element-wise loops with border tests
 * otherwise), and the strided windows no longer go through an element-wise gather, which
 * had dominated ResNetSmall's stride-2 layer (docs/performance.md §4.3). */
#include <string.h>
#include "cpu/conv/im2col.h"

/* Rows and columns of the padded plane that the windows read, and a phase's width. */
static int64_t padded_rows(const um_window2d *g) { return (g->oh - 1) * g->sh + g->kh; }
static int64_t padded_cols(const um_window2d *g) { return (g->ow - 1) * g->sw + g->kw; }
static int64_t phase_cols(const um_window2d *g) { return (padded_cols(g) + g->sw - 1) / g->sw; }
static int64_t phase_floats(const um_window2d *g) { return padded_rows(g) * phase_cols(g); }

int64_t um_im2col_scratch_floats(const um_window2d *g) {
    /* the phases, and one padded row to split from when sw > 1 */
    return g->sw * phase_floats(g) + (g->sw > 1 ? padded_cols(g) : 0);
}

/* The stride-2 split and merge, vectorised (as permutes) once the compiler knows the
 * three runs apart: in[2j] -> even[j], in[2j+1] -> odd[j], and back. */
void um_split_pairs(const float *restrict in, float *restrict even, float *restrict odd, int64_t n) {
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

/* Padded row `in` (padded_cols) -> column j*sw + p at phases[p*phase_floats + j]. */
static void split_row(const um_window2d *g, const float *in, float *phases) {
    const int64_t n = padded_cols(g), sw = g->sw, stride = phase_floats(g);
    if (sw == 2) {
        um_split_pairs(in, phases, phases + stride, n / 2);
        if (n % 2) phases[n / 2] = in[n - 1];
        return;
    }
    for (int64_t q = 0; q < n; q++) phases[(q % sw) * stride + q / sw] = in[q];
}

/* The inverse of split_row. */
static void merge_row(const um_window2d *g, const float *phases, float *out) {
    const int64_t n = padded_cols(g), sw = g->sw, stride = phase_floats(g);
    if (sw == 2) {
        merge_pairs(phases, phases + stride, out, n / 2);
        if (n % 2) out[n - 1] = phases[n / 2];
        return;
    }
    for (int64_t q = 0; q < n; q++) out[q] = phases[(q % sw) * stride + q / sw];
}

/* Input columns [q0, q1) of the padded row fall inside the image. */
static void inside_cols(const um_window2d *g, int64_t *q0, int64_t *q1) {
    const int64_t n = padded_cols(g);
    *q0 = g->pad_left < 0 ? 0 : (g->pad_left < n ? g->pad_left : n);
    *q1 = g->pad_left + g->w < n ? g->pad_left + g->w : n;
    if (*q1 < *q0) *q1 = *q0;
}

/* Stride 1: the padded rows lie one after another, so the zeros after one row's inside
 * and before the next row's are one run. */
static void pad_rows(const um_window2d *g, const float *plane, float *pp) {
    const int64_t rows = padded_rows(g), n = padded_cols(g);
    int64_t q0, q1;
    inside_cols(g, &q0, &q1);
    const int64_t r0 = g->pad_top < 0 ? 0 : (g->pad_top < rows ? g->pad_top : rows);
    const int64_t r1 = g->pad_top + g->h < rows ? g->pad_top + g->h : rows;
    float *zeros = pp;   /* start of the zeros not yet written */
    for (int64_t r = r0; r < r1 && q1 > q0; r++) {
        float *row = pp + r * n;
        memset(zeros, 0, (size_t)(row + q0 - zeros) * sizeof(float));
        memcpy(row + q0, plane + (r - g->pad_top) * g->w + q0 - g->pad_left, (size_t)(q1 - q0) * sizeof(float));
        zeros = row + q1;
    }
    memset(zeros, 0, (size_t)(pp + rows * n - zeros) * sizeof(float));
}

void um_pad_plane(const um_window2d *g, const float *plane, float *pp) {
    if (g->sw == 1) {
        pad_rows(g, plane, pp);
        return;
    }
    const int64_t rows = padded_rows(g), n = padded_cols(g), pw = phase_cols(g);
    float *tmp = pp + g->sw * phase_floats(g);
    int64_t q0, q1;
    inside_cols(g, &q0, &q1);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t iy = r - g->pad_top;
        if (iy < 0 || iy >= g->h) {
            memset(tmp, 0, (size_t)n * sizeof(float));
        } else {
            memset(tmp, 0, (size_t)q0 * sizeof(float));
            if (q1 > q0) memcpy(tmp + q0, plane + iy * g->w + q0 - g->pad_left, (size_t)(q1 - q0) * sizeof(float));
            memset(tmp + q1, 0, (size_t)(n - q1) * sizeof(float));
        }
        split_row(g, tmp, pp + r * pw);
    }
}

/* The padded plane's inside -> plane (h, w); rows and columns the windows never read are
 * zero. pp is the phases when sw > 1, followed by one row of scratch. */
static void unpad_plane(const um_window2d *g, float *pp, float *plane) {
    const int64_t rows = padded_rows(g), n = padded_cols(g), pw = phase_cols(g);
    float *tmp = pp + g->sw * phase_floats(g);
    int64_t q0, q1;
    inside_cols(g, &q0, &q1);
    for (int64_t iy = 0; iy < g->h; iy++) {
        const int64_t r = iy + g->pad_top;
        float *out = plane + iy * g->w;
        if (r < 0 || r >= rows) {
            memset(out, 0, (size_t)g->w * sizeof(float));
            continue;
        }
        const float *in = pp + r * n;
        if (g->sw > 1) {
            merge_row(g, pp + r * pw, tmp);
            in = tmp;
        }
        /* input columns outside [q0, q1) - pad_left are read by no window (all of them
         * when the left padding is wider than what the windows span) */
        const int64_t x0 = q1 > q0 ? q0 - g->pad_left : 0, x1 = q1 > q0 ? q1 - g->pad_left : 0;
        memset(out, 0, (size_t)x0 * sizeof(float));
        memcpy(out + x0, in + q0, (size_t)(x1 - x0) * sizeof(float));
        memset(out + x1, 0, (size_t)(g->w - x1) * sizeof(float));
    }
}

/* Where run (ki, kj, oy = 0) starts in the padded plane: row ki, column kj of phase
 * kj % sw at kj / sw; the next output row's run starts sh rows further. */
static int64_t run_start(const um_window2d *g, int64_t ki, int64_t kj) {
    return (kj % g->sw) * phase_floats(g) + ki * phase_cols(g) + kj / g->sw;
}

/* GCC would turn the short copy loops into memcpy calls, which cost more than they move
 * on runs of 8 to 32 floats. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void um_im2col(const um_window2d *g, const float *x, float *col, float *scratch) {
    const int64_t P = g->oh * g->ow, ow = g->ow, step = g->sh * phase_cols(g);
    for (int64_t c = 0; c < g->c; c++) {
        um_pad_plane(g, x + c * g->h * g->w, scratch);
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *dst = col + ((c * g->kh + ki) * g->kw + kj) * P;
                const float *src = scratch + run_start(g, ki, kj);
                for (int64_t oy = 0; oy < g->oh; oy++, dst += ow, src += step) {
#pragma omp simd
                    for (int64_t ox = 0; ox < ow; ox++) dst[ox] = src[ox];
                }
            }
    }
}

void um_col2im(const um_window2d *g, const float *col, float *gx, float *scratch) {
    const int64_t P = g->oh * g->ow, ow = g->ow, step = g->sh * phase_cols(g);
    for (int64_t c = 0; c < g->c; c++) {
        memset(scratch, 0, (size_t)(g->sw * phase_floats(g)) * sizeof(float));
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *src = col + ((c * g->kh + ki) * g->kw + kj) * P;
                float *dst = scratch + run_start(g, ki, kj);
                for (int64_t oy = 0; oy < g->oh; oy++, src += ow, dst += step) {
#pragma omp simd
                    for (int64_t ox = 0; ox < ow; ox++) dst[ox] += src[ox];
                }
            }
        unpad_plane(g, scratch, gx + c * g->h * g->w);
    }
}
