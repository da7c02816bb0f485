/* Winograd's rounding against a double-precision direct convolution: the relative RMS
 * error (sqrt(sum (got - ref)^2 / sum ref^2)) of the forward and of the input gradient of
 * ResNetSmall's stride-1 3x3 layers (16 -> 16 on 32x32, 32 -> 32 on 16x16, 64 -> 64 on
 * 8x8, `same`) on [0, 1) inputs with the layer's He-initialised kernels and gy in [-1, 1),
 * through F(2x2, 3x3) and through F(4x4, 3x3) (forced by um_winograd_force_tile), each
 * bounded; the errors print, for docs/performance.md §4.1. A transform with one wrong
 * coefficient errs by 1e-2 or more. */
#include <math.h>
#include <stdio.h>
#include "cpu/conv/winograd.h"
#include "gradcheck.h"

/* Bounds: F(2x2, 3x3) measured 1.2e-7 to 2.5e-7 here, F(4x4, 3x3), with its transforms'
 * larger factors (up to 8 and 1/24), 4.7e-7 to 9.6e-7 forward and 1.0e-6 to 1.8e-6 for
 * the input gradient (gy of both signs: more cancellation); about twice that is allowed. */
#define BOUND_F2 5e-7
#define BOUND_F4 4e-6

static int64_t live0;
static void setup(void) { live0 = um_live_bytes(); }
static void teardown(void) { um_winograd_force_tile(0); }

/* y = conv(x, w) and gx = conv^T(gy, w), `same` 3x3 stride 1, in double precision */
static void direct(const float *x, const float *w, const float *gy, int64_t n, int64_t c, int64_t o, int64_t hw,
                   double *y, double *gx) {
    memset(y, 0, sizeof(double) * (size_t)(n * o * hw * hw));
    memset(gx, 0, sizeof(double) * (size_t)(n * c * hw * hw));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < o; k++)
            for (int64_t oy = 0; oy < hw; oy++)
                for (int64_t ox = 0; ox < hw; ox++) {
                    const int64_t yi = ((i * o + k) * hw + oy) * hw + ox;
                    double s = 0;
                    for (int64_t ci = 0; ci < c; ci++)
                        for (int64_t a = 0; a < 3; a++)
                            for (int64_t b = 0; b < 3; b++) {
                                const int64_t iy = oy + a - 1, ix = ox + b - 1;
                                if (iy < 0 || iy >= hw || ix < 0 || ix >= hw) continue;
                                const int64_t xi = ((i * c + ci) * hw + iy) * hw + ix;
                                const double wv = w[((k * c + ci) * 3 + a) * 3 + b];
                                s += wv * x[xi];
                                gx[xi] += wv * gy[yi];
                            }
                    y[yi] = s;
                }
}

static double rel_rms(const float *got, const double *want, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        e += (got[i] - want[i]) * (got[i] - want[i]);
        r += want[i] * want[i];
    }
    return sqrt(e / r);
}

START_TEST(winograd_error_against_double) {
    const int64_t shapes[][2] = {{16, 32}, {32, 16}, {64, 8}};   /* channels, side */
    const int64_t n = 2;
    for (size_t s = 0; s < 3; s++) {
        const int64_t c = shapes[s][0], hw = shapes[s][1];
        um_generator gen;
        um_generator_init(&gen, 7 + s);
        um_conv2d_config cfg = {.c_in = c, .c_out = c, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME};
        um_module *m = NULL;
        ck_ok(um_conv2d_new(&m, &cfg, &gen));
        const int64_t xs[4] = {n, c, hw, hw};
        um_tensor *x = gc_tensor(4, xs), *gy = gc_tensor(4, xs);
        gc_fill(x, 11 + s, 0, 1, 0);
        gc_fill(gy, 21 + s, -1, 1, 0);
        const int64_t count = n * c * hw * hw;
        double *ry = malloc(sizeof(double) * (size_t)count), *rgx = malloc(sizeof(double) * (size_t)count);
        direct(um_f32(x), um_f32(m->params[0]), um_f32(gy), n, c, c, hw, ry, rgx);
        for (int tile = 2; tile <= 4; tile += 2) {
            um_winograd_force_tile(tile);
            um_tensor *y = NULL, *gx = NULL;
            ck_ok(um_module_forward(m, x, &y));
            ck_ok(um_module_backward_input(m, x, gy, &gx));
            const double ey = rel_rms(um_f32(y), ry, count), egx = rel_rms(um_f32(gx), rgx, count);
            const double bound = tile == 4 ? BOUND_F4 : BOUND_F2;
            printf("F(%dx%d, 3x3) %lld -> %lld on %lldx%lld: relative RMS error forward %.2e, input gradient %.2e\n",
                   tile, tile, (long long)c, (long long)c, (long long)hw, (long long)hw, ey, egx);
            ck_assert_msg(ey <= bound && egx <= bound, "F(%dx%d, 3x3) %lld channels on %lld: errors %.3g and %.3g, bound %g",
                          tile, tile, (long long)c, (long long)hw, ey, egx, bound);
        }
        free(ry);
        free(rgx);
        um_tensor_release(gy);
        um_tensor_release(x);
        um_module_release(m);
    }
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

static um_window2d window(int64_t c, int64_t k, int64_t side, int64_t stride) {
    const int64_t out = (side + stride - 1) / stride;
    return (um_window2d){.n = 1, .c = c, .h = side, .w = side, .c_out = c, .kh = k, .kw = k, .sh = stride,
                         .sw = stride, .pad_top = k / 2, .pad_left = k / 2, .oh = out, .ow = out};
}

/* The rule (F(4x4) on 3x3 layers with outputs of 16 x 16 or more), the switch both ways,
 * and UMBRA_WINOGRAD_TILE: 2 forces F(2x2), anything but 2 or 4 is an error naming it. */
START_TEST(winograd_tile_rule_and_switch) {
    const um_window2d big = window(16, 3, 32, 1), mid = window(32, 3, 16, 1), small = window(64, 3, 8, 1);
    const um_window2d five = window(32, 5, 14, 1), strided = window(16, 3, 32, 2), thin = window(3, 3, 32, 1);
    ck_assert_int_eq(um_winograd_tile(&big), 4);
    ck_assert_int_eq(um_winograd_tile(&mid), 4);
    ck_assert_int_eq(um_winograd_tile(&small), 2);
    ck_assert_int_eq(um_winograd_tile(&five), 2);
    ck_assert_int_eq(um_winograd_tile(&strided), 0);
    ck_assert_int_eq(um_winograd_tile(&thin), 0);
    um_winograd_force_tile(2);
    ck_assert_int_eq(um_winograd_tile(&big), 2);
    um_winograd_force_tile(4);
    ck_assert_int_eq(um_winograd_tile(&small), 4);
    ck_assert_int_eq(um_winograd_tile(&five), 2);
    ck_assert_int_eq(um_winograd_tile(&strided), 0);

    setenv("UMBRA_WINOGRAD_TILE", "2", 1);
    um_winograd_force_tile(-1);
    ck_ok(um_winograd_check_setting());
    ck_assert_int_eq(um_winograd_tile(&big), 2);
    setenv("UMBRA_WINOGRAD_TILE", "3x3", 1);
    um_winograd_force_tile(-1);
    ck_assert_int_eq(um_winograd_check_setting(), UM_EINVAL);
    ck_assert_ptr_nonnull(strstr(um_last_error(), "UMBRA_WINOGRAD_TILE"));
    ck_assert_ptr_nonnull(strstr(um_last_error(), "'3x3'"));
    um_generator gen;
    um_generator_init(&gen, 1);
    um_conv2d_config cfg = {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME};
    um_module *m = NULL;
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    const int64_t xs[4] = {1, 8, 4, 4};
    um_tensor *x = gc_tensor(4, xs), *y = NULL;
    gc_fill(x, 1, 0, 1, 0);
    ck_fails(um_module_forward(m, x, &y), UM_EINVAL);
    unsetenv("UMBRA_WINOGRAD_TILE");
    um_winograd_force_tile(-1);
    ck_ok(um_module_forward(m, x, &y));
    ck_assert_int_eq(um_winograd_tile(&big), 4);
    um_tensor_release(x);
    um_module_release(m);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("winograd_accuracy");
    TCase *tc = tcase_create("error");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, winograd_error_against_double);
    tcase_add_test(tc, winograd_tile_rule_and_switch);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
