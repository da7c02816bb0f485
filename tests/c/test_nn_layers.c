/* Layers against hand-computed values: TF `same` padding (asymmetric at stride 2) in
 * conv and pooling, avg-pool's count of real cells, batch-norm outputs and running
 * statistics over two steps, linear, channel padding; and their shape errors. */
#include <math.h>
#include "cpu/conv/winograd.h"
#include "cpu/nn_cpu.h"
#include "gradcheck.h"

static um_generator gen;
static int64_t live0;

static void setup(void) {
    um_generator_init(&gen, 3);
    live0 = um_live_bytes();
}

static void teardown(void) {}

static um_tensor *from(int ndim, const int64_t *size, const float *v) {
    um_tensor *t = gc_tensor(ndim, size);
    memcpy(um_f32(t), v, sizeof(float) * (size_t)um_numel(t));
    return t;
}

static void expect(const um_tensor *t, const float *v, int n, double tol) {
    ck_assert_int_eq(um_numel(t), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(um_f32(t)[i] - v[i]) <= tol, "element %d: %g, expected %g", i, um_f32(t)[i], v[i]);
}

START_TEST(same_padding_rule) {
    int64_t b, a;
    ck_assert_int_eq(um_same_padding(32, 3, 2, &b, &a), 16);   /* the ResNet stride-2 convs */
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(um_same_padding(28, 5, 1, &b, &a), 28);   /* LeNet */
    ck_assert_int_eq(b, 2);
    ck_assert_int_eq(a, 2);
    ck_assert_int_eq(um_same_padding(7, 2, 2, &b, &a), 4);     /* LeNet's second max-pool */
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(um_same_padding(5, 3, 2, &b, &a), 3);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(um_same_padding(4, 1, 3, &b, &a), 2);     /* total would be negative */
    ck_assert_int_eq(b + a, 0);
}
END_TEST

/* x = 1..16 as 4x4; 3x3 stride-2 `same` pads 0 top/left and 1 bottom/right. */
START_TEST(conv_same_stride2_asymmetric) {
    int64_t xs[4] = {1, 1, 4, 4};
    float xv[16];
    for (int i = 0; i < 16; i++) xv[i] = (float)(i + 1);
    um_tensor *x = from(4, xs, xv), *y = NULL;
    um_module *m = NULL;
    um_conv2d_config cfg = {.c_in = 1, .c_out = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME};
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    float *w = um_f32(m->params[0]);
    memset(w, 0, sizeof(float) * 27);
    for (int i = 0; i < 9; i++) w[i] = 1.0f;   /* kernel 0: all ones */
    w[9 + 0] = 1.0f;                           /* kernel 1: top-left tap */
    w[18 + 8] = 1.0f;                          /* kernel 2: bottom-right tap */
    ck_ok(um_module_forward(m, x, &y));
    ck_assert_int_eq(y->size[2], 2);
    ck_assert_int_eq(y->size[3], 2);
    /* ones: rows 0-2 x cols 0-2 = 54; cols 2-3 (+pad) = 45; rows 2-3 = 72; corner = 54 */
    float e[12] = {54, 45, 72, 54, 1, 3, 9, 11, 11, 0, 0, 0};
    expect(y, e, 12, 0);
    um_module_release(m);
    um_tensor_release(x);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(conv_bias_and_explicit_padding) {
    int64_t xs[4] = {1, 1, 2, 2};
    float xv[4] = {1, 2, 3, 4};
    um_tensor *x = from(4, xs, xv), *y = NULL;
    um_module *m = NULL;
    um_conv2d_config cfg = {.c_in = 1, .c_out = 1, .kh = 2, .kw = 2, .padding = UM_PAD_EXPLICIT,
                            .pad = {1, 0, 0, 1}, .bias = 1};
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    float *w = um_f32(m->params[0]);
    w[0] = 1; w[1] = 10; w[2] = 100; w[3] = 1000;
    um_f32(m->params[1])[0] = 0.5f;
    ck_ok(um_module_forward(m, x, &y));
    /* padded input rows: [0 0 0; 1 2 0; 3 4 0] (one row on top, one column on the right) */
    float e[4] = {100 + 2000 + 0.5f, 200 + 0.5f, 1 + 20 + 300 + 4000 + 0.5f, 2 + 400 + 0.5f};
    ck_assert_int_eq(y->size[2], 2);
    ck_assert_int_eq(y->size[3], 2);
    expect(y, e, 4, 1e-3);
    um_module_release(m);
    um_tensor_release(x);
}
END_TEST

/* The fast paths (im2col through padded planes and column phases, pointwise, per-image
 * threads, and from 8 channels in and out one sgemm per kernel tap) against a direct
 * double-precision convolution, forward and all three gradients. */
static void naive_conv(const um_conv2d_config *k, const um_tensor *x, const float *w, const float *b,
                       const um_tensor *gy, int64_t pt, int64_t pl, int64_t oh, int64_t ow,
                       double *y, double *gx, double *gw, double *gb) {
    const int64_t n = x->size[0], c = x->size[1], h = x->size[2], wd = x->size[3];
    const float *xp = um_f32(x), *gp = um_f32(gy);
    memset(gx, 0, sizeof(double) * (size_t)um_numel(x));
    memset(gw, 0, sizeof(double) * (size_t)(k->c_out * c * k->kh * k->kw));
    memset(gb, 0, sizeof(double) * (size_t)k->c_out);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < k->c_out; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t yi = ((i * k->c_out + o) * oh + oy) * ow + ox;
                    double s = b ? b[o] : 0, g = gp[yi];
                    gb[o] += g;
                    for (int64_t ci = 0; ci < c; ci++)
                        for (int64_t ki = 0; ki < k->kh; ki++)
                            for (int64_t kj = 0; kj < k->kw; kj++) {
                                int64_t iy = oy * k->sh - pt + ki, ix = ox * k->sw - pl + kj;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                int64_t xi = ((i * c + ci) * h + iy) * wd + ix;
                                int64_t wi = ((o * c + ci) * k->kh + ki) * k->kw + kj;
                                s += (double)w[wi] * xp[xi];
                                gx[xi] += (double)w[wi] * g;
                                gw[wi] += (double)xp[xi] * g;
                            }
                    y[yi] = s;
                }
}

static void compare(const char *what, const float *got, const double *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-4 * (1 + fabs(want[i])), "%s[%lld]: %g, expected %g", what,
                      (long long)i, got[i], want[i]);
}

/* One convolution of cfg on an input of size (n, c_in, h, w) against naive_conv: forward,
 * gx, gw and gb. */
static void check_conv(const um_conv2d_config *cfg, const int64_t size[3], uint64_t seed) {
    um_module *m = NULL;
    ck_ok(um_conv2d_new(&m, cfg, &gen));
    if (cfg->bias) gc_fill(m->params[1], 100 + seed, -1, 1, 0);
    int64_t xs[4] = {size[0], cfg->c_in, size[1], size[2]};
    um_tensor *x = gc_tensor(4, xs), *y = NULL, *gx = NULL;
    gc_fill(x, 200 + seed, -1, 1, 0);
    ck_ok(um_module_forward(m, x, &y));
    um_tensor *gy = gc_tensor(y->ndim, y->size);
    gc_fill(gy, 300 + seed, -1, 1, 0);
    ck_ok(um_module_zero_grad(m));
    ck_ok(um_module_backward(m, x, gy, &gx));
    int64_t pt, pl, tmp;
    if (cfg->padding == UM_PAD_SAME) {
        um_same_padding(xs[2], cfg->kh, cfg->sh, &pt, &tmp);
        um_same_padding(xs[3], cfg->kw, cfg->sw, &pl, &tmp);
    } else {
        pt = cfg->padding == UM_PAD_EXPLICIT ? cfg->pad[0] : 0;
        pl = cfg->padding == UM_PAD_EXPLICIT ? cfg->pad[2] : 0;
    }
    int64_t nw = um_numel(m->params[0]);
    double *ry = malloc(sizeof(double) * (size_t)um_numel(y)), *rgx = malloc(sizeof(double) * (size_t)um_numel(x));
    double *rgw = malloc(sizeof(double) * (size_t)nw), *rgb = malloc(sizeof(double) * (size_t)cfg->c_out);
    naive_conv(cfg, x, um_f32(m->params[0]), cfg->bias ? um_f32(m->params[1]) : NULL, gy, pt, pl, y->size[2],
               y->size[3], ry, rgx, rgw, rgb);
    compare("y", um_f32(y), ry, um_numel(y));
    compare("gx", um_f32(gx), rgx, um_numel(x));
    compare("gw", um_f32(m->grads[0]), rgw, nw);
    if (cfg->bias) compare("gb", um_f32(m->grads[1]), rgb, cfg->c_out);
    free(ry); free(rgx); free(rgw); free(rgb);
    um_tensor_release(gy);
    um_tensor_release(x);
    um_module_release(m);
}

START_TEST(conv_matches_direct_reference) {
    const um_conv2d_config cfgs[] = {
        {.c_in = 3, .c_out = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        {.c_in = 2, .c_out = 5, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        {.c_in = 4, .c_out = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME},
        {.c_in = 2, .c_out = 3, .kh = 3, .kw = 5, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT, .pad = {0, 2, 2, 2}},
        {.c_in = 2, .c_out = 2, .kh = 2, .kw = 3, .sh = 1, .sw = 2, .padding = UM_PAD_EXPLICIT, .pad = {2, 1, 0, 3}},
        {.c_in = 3, .c_out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_VALID, .bias = 1},
        {.c_in = 5, .c_out = 3, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .padding = UM_PAD_VALID, .bias = 1},
        /* 8+ channels: per-tap sgemms (Winograd for the 3x3 ones, except where the input
         * gradient is not a convolution): symmetric and asymmetric `same`, explicit (one
         * side wider than the kernel: input gradient the other way), `valid`, a padded
         * 1x1, a 1-row input */
        {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        {.c_in = 8, .c_out = 12, .kh = 2, .kw = 4, .sh = 1, .sw = 1, .padding = UM_PAD_SAME},
        {.c_in = 12, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT, .pad = {0, 2, 2, 0}},
        {.c_in = 9, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT, .pad = {3, 0, 1, 3}},
        {.c_in = 8, .c_out = 9, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_VALID, .bias = 1},
        {.c_in = 8, .c_out = 8, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT, .pad = {1, 0, 0, 1}},
        {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME},
        /* Winograd forward and input gradient, weight gradient through im2col (> 16 channels) */
        {.c_in = 20, .c_out = 9, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        /* column strides through the padded plane's column phases: stride 2 on odd and
         * even widths with padding 1, stride 3, a 1x1 stride 2 */
        {.c_in = 3, .c_out = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_EXPLICIT, .pad = {1, 1, 1, 1}},
        {.c_in = 2, .c_out = 3, .kh = 3, .kw = 4, .sh = 1, .sw = 3, .padding = UM_PAD_EXPLICIT, .pad = {0, 1, 2, 1}},
        {.c_in = 3, .c_out = 2, .kh = 1, .kw = 1, .sh = 2, .sw = 2, .padding = UM_PAD_VALID, .bias = 1},
        {.c_in = 16, .c_out = 8, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME},
        /* `valid` stride 2 leaving the last input row and column unread (zero gradient) */
        {.c_in = 2, .c_out = 3, .kh = 2, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_VALID, .bias = 1},
        /* left padding wider than the columns the windows span: no input column is read */
        {.c_in = 1, .c_out = 1, .kh = 1, .kw = 1, .sh = 3, .sw = 3, .padding = UM_PAD_EXPLICIT, .pad = {0, 0, 2, 0}},
        {.c_in = 1, .c_out = 2, .kh = 2, .kw = 2, .sh = 1, .sw = 4, .padding = UM_PAD_EXPLICIT, .pad = {0, 0, 3, 0}},
        /* Winograd F(2x2, 3x3) (3x3 stride 1, 8+ channels; the 8 -> 8 and 12 -> 8 above
         * too): odd output rows and columns (a last half tile), `valid`, padding on two
         * sides only (several blocks of images: winograd_matches_direct_reference) */
        {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        {.c_in = 10, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_VALID},
        {.c_in = 8, .c_out = 12, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT, .pad = {2, 0, 0, 1}},
    };
    /* per-tap rows wide enough for their junk columns (UM_CONV_TAPS_MAX_JUNK), forward and
     * input gradient */
    const int64_t sizes[][3] = {{3, 6, 7}, {2, 5, 4}, {4, 7, 6}, {1, 4, 6}, {3, 5, 5}, {2, 6, 5}, {3, 3, 4},
                                {3, 6, 16}, {2, 5, 24}, {1, 4, 16}, {2, 5, 16}, {3, 6, 18}, {2, 3, 4}, {3, 1, 16},
                                {3, 4, 16}, {2, 7, 9}, {2, 5, 11}, {2, 5, 8}, {3, 8, 8}, {2, 5, 8}, {1, 1, 1}, {2, 3, 2},
                                {5, 13, 17}, {3, 7, 9}, {2, 6, 9}};
    /* im2col products whole (or as OpenBLAS's kernels make best), and split over groups of
     * 1, 2 and 3 input channels (uneven last groups included) */
    for (int64_t group = 0; group <= 3; group++)
        for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
            um_cpu_conv2d_force_channel_group(group);
            check_conv(&cfgs[t], sizes[t], t);
        }
    um_cpu_conv2d_force_channel_group(0);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* Winograd F(2x2, 3x3), F(4x4, 3x3) and F(2x2, 5x5) (stride 1, 8+ channels; the 3x3
 * ones forced each way, F(4x4) on outputs smaller than a tile too) on many output sizes:
 * rows of 1 to 9 tiles, whole vectors of 8 tiles or not (the extra lanes' writes fall on
 * later rows, or through scratch at the end of a plane), sides that are not multiples of
 * the tile; `same`, `valid` and one-sided padding; then layers whose blocks hold one or
 * several images, several blocks with a partial last one. */
START_TEST(winograd_matches_direct_reference) {
    const int64_t hw[][2] = {{1, 1}, {1, 17}, {2, 3}, {3, 2}, {7, 7}, {9, 14}, {14, 14}, {17, 9}, {16, 15}, {5, 33},
                             {6, 10}};
    uint64_t seed = 1000;
    for (int pass = 0; pass < 3; pass++)   /* 3x3 by F(2x2), 3x3 by F(4x4), 5x5 by F(2x2) */
        for (size_t s = 0; s < sizeof hw / sizeof hw[0]; s++) {
            const int64_t k = pass == 2 ? 5 : 3;
            um_winograd_force_tile(pass == 1 ? 4 : 2);
            const um_conv2d_config cfgs[] = {
                {.c_in = 8, .c_out = 9, .kh = k, .kw = k, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
                {.c_in = 9, .c_out = 8, .kh = k, .kw = k, .sh = 1, .sw = 1, .padding = UM_PAD_VALID},
                {.c_in = 8, .c_out = 8, .kh = k, .kw = k, .sh = 1, .sw = 1, .padding = UM_PAD_EXPLICIT,
                 .pad = {k - 1, 0, 1, k - 2}},
            };
            for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
                if (cfgs[t].padding == UM_PAD_VALID && (hw[s][0] < k || hw[s][1] < k)) continue;
                const int64_t size[3] = {1 + (int64_t)(s + t) % 4, hw[s][0], hw[s][1]};
                check_conv(&cfgs[t], size, seed++);
            }
        }
    /* blocks of one image (32x32 3x3, 14x14 5x5: forward and input gradient) and of
     * several 16x16 or 8x8 images with a partial last block: several blocks, on every
     * thread; the 3x3 ones by either tile */
    const um_conv2d_config wide[] = {
        {.c_in = 16, .c_out = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME},
        {.c_in = 16, .c_out = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
        {.c_in = 64, .c_out = 64, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME},
        {.c_in = 32, .c_out = 64, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1},
    };
    const int64_t wide_sizes[][3] = {{3, 32, 32}, {5, 16, 16}, {9, 8, 8}, {3, 14, 14}};
    for (int tile = 2; tile <= 4; tile += 2) {
        um_winograd_force_tile(tile);
        for (size_t t = 0; t < sizeof wide / sizeof wide[0]; t++)
            if (tile == 2 || wide[t].kh == 3) check_conv(&wide[t], wide_sizes[t], seed++);
    }
    um_winograd_force_tile(0);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* 2x2 windows tiling the input (the vectorised path): the gradient goes to the first
 * maximum in row order on ties, as in the general loop; windows [1 1; 1 1], [0 2; 2 2],
 * [0 0; 3 3] and [-1 -2; -3 5]. */
START_TEST(maxpool_2x2_ties_first_maximum) {
    int64_t xs[4] = {1, 1, 2, 8};
    float xv[16] = {1, 1, 0, 2, 0, 0, -1, -2,
                    1, 1, 2, 2, 3, 3, -3, 5};
    um_tensor *x = from(4, xs, xv), *y = NULL, *gy = NULL, *gx = NULL;
    um_module *m = NULL;
    ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_module_forward(m, x, &y));
    float e[4] = {1, 2, 3, 5};
    expect(y, e, 4, 0);
    float gv[4] = {10, 20, 30, 40};
    gy = from(4, y->size, gv);
    ck_ok(um_module_backward(m, x, gy, &gx));
    float ge[16] = {10, 0, 0, 20, 0, 0, 0, 0,
                    0, 0, 0, 0, 30, 0, 0, 40};
    expect(gx, ge, 16, 0);
    um_tensor_release(gy);
    um_module_release(m);
    um_tensor_release(x);
}
END_TEST

/* The 2x2 tiled max-pool (AVX2 in AVX2 builds, pool_avx2.c) against a plain loop written
 * here, bit for bit: forward, backward and the ReLU-folded backward, on rows of 1, 7, 14,
 * 16, 9, 4 and 13 windows (masked tails of 1 to 7 windows, LeNet's rows, full vectors), on
 * values drawn from {-inf, -1, -0, 0, 1, 2} with NaNs (ties everywhere: the first maximum in
 * row order must win; the first NaN wins and stays; a window of -inf gives -inf, as
 * PyTorch). The outputs are views at the start of larger tensors whose rest must stay
 * untouched: the row tails' masked stores may not write past the data. */
static float pick_value(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    const float v[7] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f, NAN, -INFINITY};
    return v[(*s >> 16) % 7];
}

static void reference_maxpool_2x2(const um_window2d *g, const float *x, const float *gy, float *y, float *gx, int relu) {
    for (int64_t pl = 0; pl < g->n * g->c; pl++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t best = -1;
                float m = 0.0f;
                for (int64_t dy = 0; dy < 2; dy++)
                    for (int64_t dx = 0; dx < 2; dx++) {
                        int64_t i = (pl * g->h + 2 * oy + dy) * g->w + 2 * ox + dx;
                        float v = x[i];
                        if (best < 0 || v > m || (isnan(v) && !isnan(m))) { best = i; m = v; }
                        gx[i] = 0.0f;
                    }
                int64_t o = (pl * g->oh + oy) * g->ow + ox;
                y[o] = m;
                gx[best] = relu && m <= 0.0f ? 0.0f : gy[o];
            }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

START_TEST(maxpool_2x2_fast_path_matches_reference) {
    const int64_t shapes[][2] = {{2, 2}, {14, 14}, {28, 28}, {4, 32}, {6, 18}, {2, 8}, {2, 26}};
    uint32_t s = 7;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int64_t xs[4] = {2, 3, shapes[t][0], shapes[t][1]}, ys[4] = {2, 3, shapes[t][0] / 2, shapes[t][1] / 2};
        int64_t xs_big[4] = {3, 3, xs[2], xs[3]}, ys_big[4] = {3, 3, ys[2], ys[3]};
        um_window2d g = {.n = 2, .c = 3, .h = xs[2], .w = xs[3], .c_out = 3, .kh = 2, .kw = 2, .sh = 2, .sw = 2,
                         .oh = ys[2], .ow = ys[3]};
        um_tensor *x = gc_tensor(4, xs), *gy = gc_tensor(4, ys), *y_big = gc_tensor(4, ys_big),
                  *gx_big = gc_tensor(4, xs_big), *y = NULL, *gx = NULL;
        ck_ok(um_narrow(&y, y_big, 0, 0, 2));
        ck_ok(um_narrow(&gx, gx_big, 0, 0, 2));
        int64_t nx = um_numel(x), ny = um_numel(y);
        for (int64_t i = 0; i < um_numel(y_big); i++) um_f32(y_big)[i] = 77.0f;
        for (int64_t i = 0; i < um_numel(gx_big); i++) um_f32(gx_big)[i] = 77.0f;
        for (int64_t i = 0; i < nx; i++) um_f32(x)[i] = pick_value(&s);
        for (int64_t i = 0; i < ny; i++) um_f32(gy)[i] = 1.0f + (float)i;
        float *ry = malloc(sizeof(float) * (size_t)ny), *rgx = malloc(sizeof(float) * (size_t)nx);
        for (int relu = 0; relu < 2; relu++) {
            reference_maxpool_2x2(&g, um_f32(x), um_f32(gy), ry, rgx, relu);
            ck_ok(um_cpu_maxpool2d_forward(&g, x, y));
            for (int64_t i = 0; i < ny; i++)
                ck_assert_msg(same_bits(um_f32(y)[i], ry[i]), "%lldx%lld forward %lld: %g, expected %g",
                              (long long)xs[2], (long long)xs[3], (long long)i, um_f32(y)[i], ry[i]);
            for (int64_t i = 0; i < nx; i++) um_f32(gx)[i] = 99.0f;   /* every cell must be written */
            ck_ok(relu ? um_cpu_maxpool2d_relu_backward(&g, x, gy, gx) : um_cpu_maxpool2d_backward(&g, x, gy, gx));
            for (int64_t i = 0; i < nx; i++)
                ck_assert_msg(same_bits(um_f32(gx)[i], rgx[i]), "%lldx%lld backward (relu %d) %lld: %g, expected %g",
                              (long long)xs[2], (long long)xs[3], relu, (long long)i, um_f32(gx)[i], rgx[i]);
        }
        for (int64_t i = ny; i < um_numel(y_big); i++)
            ck_assert_msg(um_f32(y_big)[i] == 77.0f, "forward wrote past its output at %lld", (long long)i);
        for (int64_t i = nx; i < um_numel(gx_big); i++)
            ck_assert_msg(um_f32(gx_big)[i] == 77.0f, "backward wrote past its output at %lld", (long long)i);
        free(ry);
        free(rgx);
        um_tensor_release(x);
        um_tensor_release(gy);
        um_tensor_release(y);
        um_tensor_release(gx);
        um_tensor_release(y_big);
        um_tensor_release(gx_big);
    }
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* NaN propagates as in PyTorch: a window holding NaN gives NaN (the first NaN wins and gets
 * the gradient), on the 2x2 path (4x2 input, tiled), the general one (3x3 input, 2x2
 * `same`) and the tiled one (3x3 windows, stride 3): windows [NaN 1; 2 3] -> NaN and
 * [5 NaN; NaN NaN] -> NaN; a window without NaN is unchanged. */
START_TEST(maxpool_propagates_nan) {
    for (int path = 0; path < 3; path++) {
        int64_t xs[4] = {1, 1, path == 0 ? 2 : 3, path == 0 ? 4 : path == 1 ? 3 : 6};
        float t4[8] = {NAN, 1, 5, NAN, 2, 3, NAN, NAN};
        float t3[9] = {NAN, 1, 5, 2, 3, NAN, -1, -1, -1};
        float t6[18] = {1, 2, 3, 4, 5, 6, 7, NAN, 9, 1, 1, 1, 0, 0, 0, 2, 2, 2};
        um_tensor *x = from(4, xs, path == 0 ? t4 : path == 1 ? t3 : t6), *y = NULL, *gy = NULL, *gx = NULL;
        um_module *m = NULL;
        if (path == 2) ck_ok(um_maxpool2d_new(&m, 3, 3, 3, 3, UM_PAD_VALID));
        else ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
        ck_ok(um_module_forward(m, x, &y));
        ck_assert_msg(isnan(um_f32(y)[0]), "path %d: window 1 gives %g", path, um_f32(y)[0]);
        if (path < 2) ck_assert_msg(isnan(um_f32(y)[1]), "path %d: window 2 gives %g", path, um_f32(y)[1]);
        else ck_assert_float_eq(um_f32(y)[1], 6.0f);
        float g[4] = {10, 20, 30, 40};
        gy = from(4, y->size, g);
        ck_ok(um_module_backward(m, x, gy, &gx));
        /* the first NaN in row order of window 1 took its gradient */
        int64_t first_nan = path == 2 ? 7 : 0;
        ck_assert_float_eq(um_f32(gx)[first_nan], 10.0f);
        um_tensor_release(gy);
        um_module_release(m);
        um_tensor_release(x);
    }
}
END_TEST

START_TEST(maxpool_same_ignores_padding) {
    int64_t xs[4] = {1, 1, 3, 3};
    float xv[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    um_tensor *x = from(4, xs, xv), *y = NULL, *gy = NULL, *gx = NULL;
    um_module *m = NULL;
    ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_module_forward(m, x, &y));
    float e[4] = {-1, -3, -7, -9};   /* a zero padding cell would have won */
    expect(y, e, 4, 0);
    float gv[4] = {1, 2, 3, 4};
    gy = from(4, y->size, gv);
    ck_ok(um_module_backward(m, x, gy, &gx));
    float ge[9] = {1, 0, 2, 0, 0, 0, 3, 0, 4};
    expect(gx, ge, 9, 0);
    um_tensor_release(gy);
    um_module_release(m);
    um_tensor_release(x);
}
END_TEST

START_TEST(avgpool_same_divides_by_real_cells) {
    int64_t xs[4] = {1, 1, 3, 3};
    float xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    um_tensor *x = from(4, xs, xv), *y = NULL;
    um_module *m = NULL;
    ck_ok(um_avgpool2d_new(&m, 3, 3, 1, 1, UM_PAD_SAME));
    ck_ok(um_module_forward(m, x, &y));
    float e[9] = {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7};
    expect(y, e, 9, 1e-6);
    um_module_release(m);
    ck_ok(um_avgpool2d_new(&m, 2, 2, 2, 2, UM_PAD_VALID));
    ck_ok(um_module_forward(m, x, &y));
    ck_assert_int_eq(y->size[2], 1);
    float e2[1] = {3};
    expect(y, e2, 1, 1e-6);
    /* exact 2x2 tiles (the vectorised path): a 2x4 plane, forward and backward */
    int64_t ts[4] = {1, 1, 2, 4};
    float tv[8] = {1, 2, 3, 5, 7, 8, 11, 13}, gv[2] = {4, -8};
    um_tensor *xt = from(4, ts, tv), *gy = from(4, (int64_t[]){1, 1, 1, 2}, gv), *gx = NULL;
    ck_ok(um_module_forward(m, xt, &y));
    float e3[2] = {4.5f, 8};
    expect(y, e3, 2, 1e-6);
    ck_ok(um_module_backward(m, xt, gy, &gx));
    float e4[8] = {1, 1, -2, -2, 1, 1, -2, -2};
    expect(gx, e4, 8, 0);
    /* as the general loops' sums from zero: -0 cells give +0, forward and backward */
    for (int i = 0; i < 8; i++) um_f32(xt)[i] = -0.0f;
    um_f32(gy)[0] = um_f32(gy)[1] = -0.0f;
    ck_ok(um_module_forward(m, xt, &y));
    ck_ok(um_module_backward(m, xt, gy, &gx));
    for (int i = 0; i < 2; i++) ck_assert_msg(!signbit(um_f32(y)[i]), "y[%d] is -0", i);
    for (int i = 0; i < 8; i++) ck_assert_msg(!signbit(um_f32(gx)[i]), "gx[%d] is -0", i);
    um_module_release(m);
    um_tensor_release(gy);
    um_tensor_release(xt);
    um_tensor_release(x);
}
END_TEST

/* Channel 0 sees {1,2,3,4} then {2,4,6,8}: running mean 0.025 then 0.07475; running var
 * 0.99*1 + 0.01*(5/3) = 1.0066667, then 0.99*1.0066667 + 0.01*(20/3) = 1.0632667
 * (unbiased batch variance, as TF's fused batch norm). */
START_TEST(batchnorm_running_stats_two_steps) {
    int64_t xs[4] = {2, 1, 1, 2};
    float x1v[4] = {1, 2, 3, 4}, x2v[4] = {2, 4, 6, 8};
    um_tensor *x1 = from(4, xs, x1v), *x2 = from(4, xs, x2v), *y = NULL;
    um_module *m = NULL;
    ck_ok(um_batchnorm2d_new(&m, 1, 0.99, 1e-5));
    ck_ok(um_module_forward(m, x1, &y));
    double inv = 1.0 / sqrt(1.25 + 1e-5);   /* biased variance normalises */
    float e[4] = {(float)(-1.5 * inv), (float)(-0.5 * inv), (float)(0.5 * inv), (float)(1.5 * inv)};
    expect(y, e, 4, 1e-5);
    ck_close(um_f32(m->buffers[0])[0], 0.025, 1e-7);
    ck_close(um_f32(m->buffers[1])[0], 1.0066667, 1e-6);
    ck_ok(um_module_forward(m, x2, &y));
    ck_close(um_f32(m->buffers[0])[0], 0.07475, 1e-7);
    ck_close(um_f32(m->buffers[1])[0], 1.0632667, 1e-6);
    /* evaluation mode uses the running statistics and leaves them alone */
    um_module_train(m, 0);
    ck_ok(um_module_forward(m, x1, &y));
    ck_close(um_f32(y)[0], (1 - 0.07475) / sqrt(1.0632667 + 1e-5), 1e-5);
    ck_close(um_f32(m->buffers[0])[0], 0.07475, 1e-7);
    um_module_release(m);
    um_tensor_release(x1);
    um_tensor_release(x2);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(linear_values) {
    int64_t xs[2] = {2, 3};
    float xv[6] = {1, 2, 3, 4, 5, 6};
    um_tensor *x = from(2, xs, xv), *y = NULL;
    um_module *m = NULL;
    ck_ok(um_linear_new(&m, 3, 2, 1, &gen));
    float wv[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, bv[2] = {10, 20};
    memcpy(um_f32(m->params[0]), wv, sizeof wv);
    memcpy(um_f32(m->params[1]), bv, sizeof bv);
    ck_ok(um_module_forward(m, x, &y));
    float e[4] = {8, 23, 8, 27.5f};
    expect(y, e, 4, 1e-5);
    um_module_release(m);
    um_tensor_release(x);
}
END_TEST

START_TEST(channel_pad_values) {
    int64_t xs[4] = {2, 1, 1, 2};
    float xv[4] = {1, 2, 3, 4};
    um_tensor *x = from(4, xs, xv), *y = NULL;
    um_module *m = NULL;
    ck_ok(um_channel_pad_new(&m, 1, 2));
    ck_ok(um_module_forward(m, x, &y));
    ck_assert_int_eq(y->size[1], 4);
    float e[16] = {0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0};
    expect(y, e, 16, 0);
    um_module_release(m);
    um_tensor_release(x);
}
END_TEST

START_TEST(initialisation_statistics) {
    um_module *m = NULL;
    um_conv2d_config cfg = {.c_in = 16, .c_out = 64, .kh = 3, .kw = 3, .padding = UM_PAD_SAME};
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    const float *w = um_f32(m->params[0]);
    int64_t n = um_numel(m->params[0]);
    double sd = sqrt(2.0 / (9 * 16)), s = 0, ss = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        s += w[i];
        ss += (double)w[i] * w[i];
        if (fabs(w[i]) > mx) mx = fabs(w[i]);
    }
    ck_assert(mx <= 2 * sd + 1e-6);     /* truncated at 2 sigma */
    ck_assert(fabs(s / n) < 0.01);
    /* a normal truncated at 2 sigma keeps about 0.774 of its variance */
    ck_close(sqrt(ss / n), sd * sqrt(0.7737), 0.05 * sd);
    um_module_release(m);
    ck_ok(um_linear_new(&m, 400, 300, 1, &gen));
    w = um_f32(m->params[0]);
    n = um_numel(m->params[0]);
    ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)w[i] * w[i];
    ck_close(sqrt(ss / n), sqrt(2.0 / 400), 0.02 * sqrt(2.0 / 400));
    ck_assert_float_eq(um_f32(m->params[1])[0], 0.0f);
    um_module_release(m);
    ck_ok(um_batchnorm2d_new(&m, 4, 0.99, 1.001e-5));
    ck_assert_float_eq(um_f32(m->params[0])[3], 1.0f);
    ck_assert_float_eq(um_f32(m->params[1])[3], 0.0f);
    ck_assert_float_eq(um_f32(m->buffers[0])[3], 0.0f);
    ck_assert_float_eq(um_f32(m->buffers[1])[3], 1.0f);
    um_module_release(m);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(same_generator_same_weights) {
    um_generator g1, g2;
    um_generator_init(&g1, 42);
    um_generator_init(&g2, 42);
    um_module *a = NULL, *b = NULL;
    ck_ok(um_linear_new(&a, 5, 4, 1, &g1));
    ck_ok(um_linear_new(&b, 5, 4, 1, &g2));
    ck_assert(memcmp(um_f32(a->params[0]), um_f32(b->params[0]), sizeof(float) * 20) == 0);
    um_module_release(a);
    um_module_release(b);
}
END_TEST

static void expect_error(um_module *m, int ndim, const int64_t *size, const char *needle) {
    um_tensor *x = gc_tensor(ndim, size), *y = NULL;
    memset(um_f32(x), 0, sizeof(float) * (size_t)um_numel(x));
    int64_t before = um_live_bytes();
    ck_fails(um_module_forward(m, x, &y), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), needle), "message '%s' lacks '%s'", um_last_error(), needle);
    ck_assert_int_eq(um_live_bytes(), before);
    um_tensor_release(x);
}

START_TEST(shape_errors) {
    um_module *m = NULL;
    um_conv2d_config cfg = {.c_in = 16, .c_out = 32, .kh = 3, .kw = 3, .padding = UM_PAD_VALID};
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    int64_t s1[4] = {2, 3, 8, 8}, s2[3] = {2, 16, 8}, s3[4] = {1, 16, 2, 8};
    expect_error(m, 4, s1, "expected 16 input channels, got 3");
    expect_error(m, 3, s2, "expected a 4-D input");
    expect_error(m, 4, s3, "smaller than the window");
    um_module_release(m);
    ck_ok(um_linear_new(&m, 3136, 10, 1, &gen));
    int64_t s4[2] = {2, 3200}, s5[4] = {2, 64, 7, 7};
    expect_error(m, 2, s4, "expected 3136 input features, got 3200");
    expect_error(m, 4, s5, "flatten");
    um_module_release(m);
    ck_ok(um_batchnorm2d_new(&m, 8, 0.99, 1e-5));
    expect_error(m, 4, s1, "expected 8 channels, got 3");
    um_module_release(m);
    ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
    expect_error(m, 2, s4, "4-D");
    um_module_release(m);
    /* bad constructor arguments */
    ck_fails(um_linear_new(&m, 0, 3, 1, &gen), UM_EINVAL);
    ck_fails(um_linear_new(&m, 2, 3, 1, NULL), UM_EINVAL);
    cfg.sh = -1;
    ck_fails(um_conv2d_new(&m, &cfg, &gen), UM_EINVAL);
    ck_fails(um_batchnorm2d_new(&m, 4, 1.5, 1e-5), UM_EINVAL);
    ck_fails(um_batchnorm2d_new(&m, 4, 0.9, 0), UM_EINVAL);
    ck_fails(um_maxpool2d_new(&m, 0, 2, 2, 2, UM_PAD_SAME), UM_EINVAL);
    ck_fails(um_channel_pad_new(&m, -1, 2), UM_EINVAL);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(type_errors) {
    um_module *m = NULL;
    ck_ok(um_relu_new(&m));
    int64_t s[2] = {2, 3};
    um_tensor *xi = NULL, *x = gc_tensor(2, s), *xt = NULL, *y = NULL, *gy = NULL;
    ck_ok(um_tensor_zeros(&xi, UM_INT64, 2, s, NULL));
    ck_fails(um_module_forward(m, xi, &y), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "float32"));
    ck_ok(um_transpose(&xt, x, 0, 1));
    ck_fails(um_module_forward(m, xt, &y), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "contiguous"));
    ck_ok(um_module_backward(m, x, x, NULL));   /* nothing to compute: no parameters, no gx wanted */
    um_module_release(m);
    ck_ok(um_linear_new(&m, 3, 2, 1, &gen));
    ck_fails(um_module_backward(m, x, x, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "backward before forward"));
    ck_ok(um_module_forward(m, x, &y));
    gy = gc_tensor(2, s);
    ck_fails(um_module_backward(m, x, gy, NULL), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "output gradient is 2x3 but the output is 2x2"), "%s", um_last_error());
    um_module_release(m);
    um_tensor_release(xi);
    um_tensor_release(x);
    um_tensor_release(xt);
    um_tensor_release(gy);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("nn_layers");
    TCase *tc = tcase_create("values");
    tcase_set_timeout(tc, 60);   /* the reference convolutions take seconds on a loaded machine */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, same_padding_rule);
    tcase_add_test(tc, conv_same_stride2_asymmetric);
    tcase_add_test(tc, conv_bias_and_explicit_padding);
    tcase_add_test(tc, conv_matches_direct_reference);
    tcase_add_test(tc, winograd_matches_direct_reference);
    tcase_add_test(tc, maxpool_same_ignores_padding);
    tcase_add_test(tc, maxpool_2x2_ties_first_maximum);
    tcase_add_test(tc, maxpool_2x2_fast_path_matches_reference);
    tcase_add_test(tc, maxpool_propagates_nan);
    tcase_add_test(tc, avgpool_same_divides_by_real_cells);
    tcase_add_test(tc, batchnorm_running_stats_two_steps);
    tcase_add_test(tc, linear_values);
    tcase_add_test(tc, channel_pad_values);
    tcase_add_test(tc, initialisation_statistics);
    tcase_add_test(tc, same_generator_same_weights);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_checked_fixture(te, setup, teardown);
    tcase_add_test(te, shape_errors);
    tcase_add_test(te, type_errors);
    suite_add_tcase(s, te);
    return s;
}

#include "check_main.h"
