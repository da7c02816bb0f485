/* Data set batches (pixels / 255, labels + base, flip before crop with zero padding,
 * reproducible from a generator), PIL-style bilinear resizing and grayCIFAR, and, where
 * UMBRA_DATA holds them, the real MNIST and CIFAR-10 test files checked against the
 * published counts and the first labels of the real files (else one SKIP line each). */
#include <stdio.h>
#include <unistd.h>
#include "check_main.h"
#include "data/data.h"

/* n images of c x 4 x 5 with pixel (i, ch, r, col) = i*60 + ch*20 + r*5 + col, label i % 3. */
static um_dataset *toy(int n, int c) {
    um_dataset *ds;
    ck_ok(um_dataset_new(&ds, "toy", n, c, 4, 5, 3));
    for (int i = 0; i < n; i++) {
        ds->labels[i] = i % 3;
        for (int k = 0; k < c * 20; k++) ds->pixels[i * c * 20 + k] = (uint8_t)(i * 60 + k);
    }
    return ds;
}

static um_tensor *new4(int64_t n, int64_t c, int64_t h, int64_t w) {
    um_tensor *t;
    int64_t size[4] = {n, c, h, w};
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 4, size, NULL));
    return t;
}

static um_tensor *new_labels(int64_t n) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_INT64, 1, &n, NULL));
    return t;
}

START_TEST(plain_batch) {
    um_dataset *ds = toy(4, 2);
    um_tensor *x = new4(2, 2, 4, 5), *y = new_labels(2);
    const int64_t idx[2] = {3, 1};
    ck_ok(um_dataset_batch(ds, idx, 2, x, y, 1, NULL, NULL));
    ck_close(um_f32(x)[0], (3 * 60) / 255.0, 1e-7);
    ck_close(um_f32(x)[40 + 20 + 7], (60 + 20 + 7) / 255.0, 1e-7);
    ck_assert_int_eq(um_i64(y)[0], 1);
    ck_assert_int_eq(um_i64(y)[1], 2);
    um_tensor_release(x);
    um_tensor_release(y);
    um_dataset_free(ds);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

/* Replays the batch's draws on a copy of the generator and checks every pixel. */
START_TEST(augmented_batch_matches_the_rule) {
    um_dataset *ds = toy(3, 2);
    um_tensor *x = new4(3, 2, 4, 5);
    const int64_t idx[3] = {0, 1, 2};
    um_generator g, replay;
    um_generator_init(&g, 42);
    replay = g;
    um_augment aug = {.flip = 1, .crop_pad = 2};
    int flips = 0, shifted = 0;
    for (int round = 0; round < 20; round++) {
        ck_ok(um_dataset_batch(ds, idx, 3, x, NULL, 0, &aug, &g));
        for (int i = 0; i < 3; i++) {
            int flip = um_rand_uniform(&replay) < 0.5f;
            int dy = (int)um_rand_below(&replay, 5) - 2, dx = (int)um_rand_below(&replay, 5) - 2;
            flips += flip;
            shifted += dy != 0 || dx != 0;
            for (int ch = 0; ch < 2; ch++)
                for (int r = 0; r < 4; r++)
                    for (int col = 0; col < 5; col++) {
                        int sr = r + dy, sc = col + dx;
                        double want = 0.0;
                        if (sr >= 0 && sr < 4 && sc >= 0 && sc < 5)
                            want = ds->pixels[i * 40 + ch * 20 + sr * 5 + (flip ? 4 - sc : sc)] / 255.0;
                        ck_close(um_f32(x)[i * 40 + ch * 20 + r * 5 + col], want, 1e-7);
                    }
        }
    }
    ck_assert(flips > 10 && flips < 50);
    ck_assert(shifted > 30);
    ck_assert(g.counter == replay.counter);
    um_tensor_release(x);
    um_dataset_free(ds);
}
END_TEST

START_TEST(batch_refusals) {
    um_dataset *ds = toy(3, 1);
    um_tensor *x = new4(2, 1, 4, 5), *bad = new4(2, 1, 5, 4), *y = new_labels(3);
    int64_t idx[2] = {0, 3};
    um_augment aug = {.flip = 1, .crop_pad = 0};
    ck_fails(um_dataset_batch(ds, idx, 2, x, NULL, 0, NULL, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "index 3 outside 0..2"));
    idx[1] = 1;
    ck_fails(um_dataset_batch(ds, idx, 2, bad, NULL, 0, NULL, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "float32 of shape 2x1x4x5, got float32 2x1x5x4"));
    ck_fails(um_dataset_batch(ds, idx, 2, x, y, 0, NULL, NULL), UM_EINVAL);
    ck_fails(um_dataset_batch(ds, idx, 2, x, NULL, 0, &aug, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "needs a generator"));
    um_tensor_release(x);
    um_tensor_release(bad);
    um_tensor_release(y);
    um_dataset_free(ds);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(resize_like_pil) {
    float src[16], dst[16];
    for (int k = 0; k < 16; k++) src[k] = (float)k;
    ck_ok(um_resize_plane(src, 4, 4, dst, 4, 4));            /* same size: identity */
    for (int k = 0; k < 16; k++) ck_close(dst[k], src[k], 1e-6);
    /* 4 -> 2 along a row: weights (.75 .75 .25)/1.75 and (.25 .75 .75)/1.75 (PIL's taps) */
    float row[4] = {0, 1, 2, 3}, half[2];
    ck_ok(um_resize_plane(row, 1, 4, half, 1, 2));
    ck_close(half[0], (0.75 * 0 + 0.75 * 1 + 0.25 * 2) / 1.75, 1e-6);
    ck_close(half[1], (0.25 * 1 + 0.75 * 2 + 0.75 * 3) / 1.75, 1e-6);
    /* 2 -> 4: plain bilinear over half-pixel centres, edges clamped */
    float two[2] = {0, 4}, four[4];
    ck_ok(um_resize_plane(two, 1, 2, four, 1, 4));
    ck_close(four[0], 0.0, 1e-6);
    ck_close(four[1], 1.0, 1e-6);
    ck_close(four[2], 3.0, 1e-6);
    ck_close(four[3], 4.0, 1e-6);
    ck_fails(um_resize_plane(src, 4, 4, dst, 0, 4), UM_EINVAL);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(gray_cifar) {
    um_dataset *rgb;
    ck_ok(um_dataset_new(&rgb, "cifar", 2, 3, 32, 32, 10));
    for (int i = 0; i < 2; i++) {
        rgb->labels[i] = 7 - i;
        for (int ch = 0; ch < 3; ch++) memset(rgb->pixels + (i * 3 + ch) * 1024, 30 * (ch + 1) + i, 1024);
    }
    um_dataset *g;
    ck_ok(um_dataset_gray_resize(&g, rgb, 28, 28, "gray_cifar10 test"));
    ck_assert_int_eq(g->c, 1);
    ck_assert_int_eq(g->h, 28);
    ck_assert_int_eq(g->labels[1], 6);
    for (int k = 0; k < 784; k++) {
        ck_assert_int_eq(g->pixels[k], 60);
        ck_assert_int_eq(g->pixels[784 + k], 61);
    }
    um_dataset_free(g);
    um_dataset_free(rgb);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

/* ---- the real files, where UMBRA_DATA (default data/) has them ---- */

static const char *data_root(void) {
    const char *d = getenv("UMBRA_DATA");
    return d && *d ? d : "data";
}

static int have(const char *a, const char *b) {
    return access(a, R_OK) == 0 && (!b || access(b, R_OK) == 0);
}

START_TEST(real_mnist) {
    char im[512], lb[512], im2[512], lb2[512];
    snprintf(im, sizeof im, "%s/mnist/train-images-idx3-ubyte.gz", data_root());
    snprintf(lb, sizeof lb, "%s/mnist/train-labels-idx1-ubyte.gz", data_root());
    snprintf(im2, sizeof im2, "%s/mnist/t10k-images-idx3-ubyte.gz", data_root());
    snprintf(lb2, sizeof lb2, "%s/mnist/t10k-labels-idx1-ubyte.gz", data_root());
    if (!have(im, lb) || !have(im2, lb2)) {
        printf("SKIP data: real MNIST not found under %s/mnist (set UMBRA_DATA)\n", data_root());
        return;
    }
    static const int64_t train_counts[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    static const int64_t test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    static const int train_first[10] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4}, test_first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    um_dataset *ds;
    int64_t counts[10];
    ck_ok(um_read_idx(&ds, im, lb, "mnist train", 0, 0, 10));
    ck_assert_int_eq(ds->n, 60000);
    um_dataset_class_counts(ds, counts);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(counts[k], train_counts[k]);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(ds->labels[k], train_first[k]);
    um_dataset_free(ds);
    ck_ok(um_read_idx(&ds, im2, lb2, "mnist test", 0, 0, 10));
    ck_assert_int_eq(ds->n, 10000);
    um_dataset_class_counts(ds, counts);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(counts[k], test_counts[k]);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(ds->labels[k], test_first[k]);
    um_dataset_free(ds);
}
END_TEST

START_TEST(real_cifar10_test) {
    char p[512];
    snprintf(p, sizeof p, "%s/cifar10/test_batch.bin.gz", data_root());
    if (!have(p, NULL)) {
        printf("SKIP data: real CIFAR-10 test not found at %s (set UMBRA_DATA)\n", p);
        return;
    }
    static const int first[20] = {3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6};
    const char *paths[1] = {p};
    const int64_t records[1] = {10000};
    um_dataset *ds, *gray;
    int64_t counts[10];
    ck_ok(um_read_cifar(&ds, 1, paths, records, 1, 10, "cifar10 test"));
    um_dataset_class_counts(ds, counts);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(counts[k], 1000);
    for (int k = 0; k < 20; k++) ck_assert_int_eq(ds->labels[k], first[k]);
    ck_ok(um_dataset_gray_resize(&gray, ds, 28, 28, "gray_cifar10 test"));
    ck_assert_int_eq(gray->n, 10000);
    um_dataset_free(gray);
    um_dataset_free(ds);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("data_batch");
    TCase *tc = tcase_create("batches");
    tcase_add_test(tc, plain_batch);
    tcase_add_test(tc, augmented_batch_matches_the_rule);
    tcase_add_test(tc, batch_refusals);
    tcase_add_test(tc, resize_like_pil);
    tcase_add_test(tc, gray_cifar);
    suite_add_tcase(s, tc);
    TCase *real = tcase_create("real files");
    tcase_set_timeout(real, 60);
    tcase_add_test(real, real_mnist);
    tcase_add_test(real, real_cifar10_test);
    suite_add_tcase(s, real);
    return s;
}

#include "check_main.h"
