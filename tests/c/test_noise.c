/* Noise generators: Gaussian taps, mirror-padded low-pass against a direct 2-D reference,
 * rescale, permutation keeps each image's pixels, the authors' recipe is reproducible. */
#include "check_main.h"
#include "ood/noise.h"

static um_tensor *images(int64_t n, int64_t c, int64_t h, int64_t w, um_generator *g) {
    int64_t s[4] = {n, c, h, w};
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 4, s, NULL));
    um_fill_uniform(g, um_f32(t), um_numel(t), 0, 1);
    return t;
}

START_TEST(taps_sum_to_one) {
    float taps[15];
    um_gaussian_taps(1.7f, taps);
    double s = 0;
    for (int i = 0; i < 15; i++) s += taps[i];
    ck_close(s, 1.0, 1e-6);
    ck_close(taps[7] / taps[8], exp(1.0 / (2 * 1.7 * 1.7)), 1e-5);
    ck_assert(taps[0] == taps[14]);
}
END_TEST

static int mirror(int i, int n) { return i < 0 ? -i - 1 : (i >= n ? 2 * n - i - 1 : i); }

START_TEST(lowpass_matches_direct_2d) {
    um_generator g;
    um_generator_init(&g, 3);
    um_tensor *x = images(2, 3, 9, 11, &g), *y;
    ck_ok(um_tensor_new(&y, UM_FLOAT32, 4, x->size, NULL));
    ck_ok(um_noise_lowpass(y, x, 2.0f));
    float taps[15];
    um_gaussian_taps(2.0f, taps);
    for (int p = 0; p < 6; p++)
        for (int r = 0; r < 9; r++)
            for (int c = 0; c < 11; c++) {
                double s = 0;
                for (int dy = -7; dy <= 7; dy++)
                    for (int dx = -7; dx <= 7; dx++)
                        s += (double)taps[dy + 7] * taps[dx + 7] * um_f32(x)[p * 99 + mirror(r + dy, 9) * 11 + mirror(c + dx, 11)];
                ck_close(um_f32(y)[p * 99 + r * 11 + c], s, 1e-5);
            }
    /* a constant image stays constant */
    ck_ok(um_fill_(x, 0.25));
    ck_ok(um_noise_lowpass(y, x, 1.3f));
    for (int64_t i = 0; i < um_numel(y); i++) ck_close(um_f32(y)[i], 0.25, 1e-6);
    ck_fails(um_noise_lowpass(x, x, 1.0f), UM_EINVAL);
    ck_fails(um_noise_lowpass(y, x, 0.0f), UM_EINVAL);
    um_tensor_release(x); um_tensor_release(y);
}
END_TEST

START_TEST(rescale_min_max) {
    um_generator g;
    um_generator_init(&g, 4);
    um_tensor *x = images(3, 3, 8, 8, &g);
    ck_ok(um_binary_scalar_(UM_MUL, x, 0.3));
    ck_ok(um_binary_scalar_(UM_ADD, x, 0.2));
    ck_ok(um_noise_rescale_(x));
    for (int i = 0; i < 3; i++) {
        float lo = 1e9f, hi = -1e9f;
        for (int k = 0; k < 192; k++) { float v = um_f32(x)[i * 192 + k]; lo = fminf(lo, v); hi = fmaxf(hi, v); }
        ck_close(lo, 0, 1e-7);
        ck_close(hi, 1, 1e-6);
    }
    um_tensor_release(x);
}
END_TEST

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

START_TEST(permutation_keeps_colour_vectors) {
    um_generator g;
    um_generator_init(&g, 5);
    um_tensor *x = images(2, 3, 6, 5, &g), *y;
    ck_ok(um_tensor_new(&y, UM_FLOAT32, 4, x->size, NULL));
    ck_ok(um_noise_permute_pixels(y, x, &g));
    int moved = 0;
    for (int i = 0; i < 2; i++) {
        /* each output pixel's colour vector is some input pixel's colour vector */
        for (int q = 0; q < 30; q++) {
            int found = 0;
            for (int p = 0; p < 30 && !found; p++) {
                found = 1;
                for (int c = 0; c < 3; c++) found &= um_f32(y)[(i * 3 + c) * 30 + q] == um_f32(x)[(i * 3 + c) * 30 + p];
            }
            ck_assert(found);
            moved += um_f32(y)[i * 90 + q] != um_f32(x)[i * 90 + q];
        }
        float a[90], b[90];
        memcpy(a, um_f32(x) + i * 90, sizeof a);
        memcpy(b, um_f32(y) + i * 90, sizeof b);
        qsort(a, 90, sizeof(float), cmp_float);
        qsort(b, 90, sizeof(float), cmp_float);
        ck_assert(memcmp(a, b, sizeof a) == 0);
    }
    ck_assert_int_gt(moved, 40);
    um_tensor_release(x); um_tensor_release(y);
}
END_TEST

START_TEST(authors_recipe_reproducible) {
    um_generator g, g1, g2;
    um_generator_init(&g, 6);
    um_tensor *clean = images(8, 1, 28, 28, &g), *a, *b;
    ck_ok(um_tensor_new(&a, UM_FLOAT32, 4, clean->size, NULL));
    ck_ok(um_tensor_new(&b, UM_FLOAT32, 4, clean->size, NULL));
    um_generator_init(&g1, 9);
    um_generator_init(&g2, 9);
    double s1, s2;
    ck_ok(um_noise_authors(a, clean, 0.5, 1.0, 2.5, &g1, &s1));
    ck_ok(um_noise_authors(b, clean, 0.5, 1.0, 2.5, &g2, &s2));
    ck_assert(s1 == s2 && s1 >= 1.0 && s1 <= 2.5);
    ck_assert(memcmp(um_f32(a), um_f32(b), sizeof(float) * 8 * 784) == 0);
    for (int i = 0; i < 8; i++) {
        float lo = 1, hi = 0;
        for (int k = 0; k < 784; k++) { lo = fminf(lo, um_f32(a)[i * 784 + k]); hi = fmaxf(hi, um_f32(a)[i * 784 + k]); }
        ck_close(lo, 0, 1e-6);
        ck_close(hi, 1, 1e-6);
    }
    ck_fails(um_noise_authors(a, clean, 1.5, 1.0, 2.5, &g1, NULL), UM_EINVAL);
    um_tensor_release(clean); um_tensor_release(a); um_tensor_release(b);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("noise");
    TCase *tc = tcase_create("noise");
    tcase_add_test(tc, taps_sum_to_one);
    tcase_add_test(tc, lowpass_matches_direct_2d);
    tcase_add_test(tc, rescale_min_max);
    tcase_add_test(tc, permutation_keeps_colour_vectors);
    tcase_add_test(tc, authors_recipe_reproducible);
    suite_add_tcase(s, tc);
    return s;
}
