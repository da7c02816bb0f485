/* Finite-difference gradient checks of every layer and both containers: input gradients
 * (backward and backward_input) and parameter gradients, batch norm in both modes, conv
 * with every padding kind, and that nothing leaks. */
#include "gradcheck.h"

static um_generator gen;
static int64_t live0;

static void setup(void) {
    um_generator_init(&gen, 7);
    live0 = um_live_bytes();
}

static void teardown(void) {}

static void finish(um_module *m, um_tensor *x) {
    um_module_release(m);
    um_tensor_release(x);
    ck_assert_int_eq(um_live_bytes(), live0);
}

static um_tensor *input4(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed, float away) {
    int64_t size[4] = {n, c, h, w};
    um_tensor *x = gc_tensor(4, size);
    gc_fill(x, seed, -1.0f, 1.0f, away);
    return x;
}

/* Distinct values 0.05 apart in random order, so max-pool has no near ties. */
static um_tensor *spaced4(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed) {
    int64_t size[4] = {n, c, h, w};
    um_tensor *x = gc_tensor(4, size);
    int64_t k = um_numel(x), *perm = malloc(sizeof(int64_t) * (size_t)k);
    um_generator g;
    um_generator_init(&g, seed);
    um_rand_permutation(&g, perm, k);
    for (int64_t i = 0; i < k; i++) um_f32(x)[i] = 0.05f * (float)(perm[i] - k / 2);
    free(perm);
    return x;
}

START_TEST(grad_linear) {
    for (int bias = 0; bias <= 1; bias++) {
        um_module *m = NULL;
        ck_ok(um_linear_new(&m, 4, 5, bias, &gen));
        int64_t size[2] = {3, 4};
        um_tensor *x = gc_tensor(2, size);
        gc_fill(x, 1, -1, 1, 0);
        gc_check_module(m, x, &GC_DEFAULT, 11);
        finish(m, x);
    }
}
END_TEST

static void check_conv(um_conv2d_config cfg, int64_t n, int64_t h, int64_t w) {
    um_module *m = NULL;
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    um_tensor *x = input4(n, cfg.c_in, h, w, 3, 0);
    if (cfg.bias) gc_fill(m->params[1], 5, -0.5f, 0.5f, 0);
    gc_check_module(m, x, &GC_DEFAULT, 13);
    finish(m, x);
}

START_TEST(grad_conv_same) {
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                                  .padding = UM_PAD_SAME, .bias = 1}, 2, 5, 5);
}
END_TEST

START_TEST(grad_conv_same_stride2) {
    /* even input: TF pads 0 before and 1 after; odd input with 5x5 kernel: 2 and 2 */
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
                                  .padding = UM_PAD_SAME}, 2, 6, 6);
    check_conv((um_conv2d_config){.c_in = 1, .c_out = 2, .kh = 5, .kw = 5, .sh = 2, .sw = 2,
                                  .padding = UM_PAD_SAME, .bias = 1}, 1, 7, 7);
}
END_TEST

START_TEST(grad_conv_explicit_valid) {
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 2, .kh = 3, .kw = 2, .sh = 2, .sw = 1,
                                  .padding = UM_PAD_EXPLICIT, .pad = {1, 0, 2, 1}, .bias = 1}, 2, 5, 4);
    check_conv((um_conv2d_config){.c_in = 3, .c_out = 2, .kh = 2, .kw = 3, .sh = 1, .sw = 2,
                                  .padding = UM_PAD_VALID}, 2, 4, 7);
    check_conv((um_conv2d_config){.c_in = 3, .c_out = 4, .kh = 1, .kw = 1, .padding = UM_PAD_VALID, .bias = 1},
               3, 3, 3);
}
END_TEST

START_TEST(grad_conv_stride1_input_grad_as_conv) {
    /* Stride 1 with c_out <= c_in: the CPU backend computes the input gradient as a
     * convolution of gy with the flipped kernel; symmetric, asymmetric (even kernel,
     * `same`), explicit uneven and `valid` padding, and a rectangular kernel. */
    check_conv((um_conv2d_config){.c_in = 3, .c_out = 3, .kh = 3, .kw = 3, .padding = UM_PAD_SAME}, 2, 5, 6);
    check_conv((um_conv2d_config){.c_in = 3, .c_out = 2, .kh = 4, .kw = 4, .padding = UM_PAD_SAME, .bias = 1},
               2, 6, 5);
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 2, .kh = 3, .kw = 2, .padding = UM_PAD_EXPLICIT,
                                  .pad = {2, 0, 1, 1}}, 2, 4, 5);
    check_conv((um_conv2d_config){.c_in = 4, .c_out = 3, .kh = 2, .kw = 3, .padding = UM_PAD_VALID, .bias = 1},
               3, 5, 5);
}
END_TEST

START_TEST(grad_conv_per_tap) {
    /* from 8 channels in and out, stride 1 and rows of 16 runs one sgemm per kernel tap
     * (conv_taps.c) */
    check_conv((um_conv2d_config){.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1},
               2, 4, 16);
    check_conv((um_conv2d_config){.c_in = 8, .c_out = 10, .kh = 2, .kw = 3, .padding = UM_PAD_EXPLICIT,
                                  .pad = {1, 0, 2, 1}},
               1, 3, 16);
}
END_TEST

START_TEST(grad_conv_tiny_inputs) {
    /* kernel taps whose rows all fall in the padding: a 1-row input under 2x2 and 3x3
     * `same` kernels (forward and the input gradient as a convolution), and 4x4 `same`
     * on 2 rows, a 1-column input */
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 2, .kh = 2, .kw = 2, .padding = UM_PAD_SAME}, 2, 1, 4);
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 2, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1}, 2, 1, 3);
    check_conv((um_conv2d_config){.c_in = 3, .c_out = 2, .kh = 4, .kw = 4, .padding = UM_PAD_SAME}, 1, 2, 2);
    check_conv((um_conv2d_config){.c_in = 2, .c_out = 2, .kh = 3, .kw = 3, .padding = UM_PAD_SAME}, 1, 4, 1);
}
END_TEST

START_TEST(grad_conv_batch_not_multiple_of_threads) {
    /* 1 and 3 images: the small-batch path and an uneven split over threads */
    um_conv2d_config cfg = {.c_in = 2, .c_out = 2, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1};
    check_conv(cfg, 1, 4, 4);
    check_conv(cfg, 3, 4, 4);
}
END_TEST

static void check_pool(int is_max, int64_t k, int64_t s, um_padding pad, int64_t h, int64_t w) {
    um_module *m = NULL;
    ck_ok(is_max ? um_maxpool2d_new(&m, k, k, s, s, pad) : um_avgpool2d_new(&m, k, k, s, s, pad));
    um_tensor *x = is_max ? spaced4(2, 2, h, w, 17) : input4(2, 2, h, w, 17, 0);
    gc_check_module(m, x, &GC_DEFAULT, 19);
    finish(m, x);
}

START_TEST(grad_maxpool) {
    check_pool(1, 2, 2, UM_PAD_SAME, 5, 5);
    check_pool(1, 2, 2, UM_PAD_SAME, 4, 6);    /* exact 2x2 tiling: the vectorised path */
    check_pool(1, 3, 2, UM_PAD_VALID, 7, 6);
    check_pool(1, 3, 1, UM_PAD_SAME, 4, 4);
}
END_TEST

START_TEST(grad_avgpool) {
    check_pool(0, 3, 2, UM_PAD_SAME, 6, 5);
    check_pool(0, 2, 2, UM_PAD_VALID, 4, 4);
}
END_TEST

START_TEST(grad_global_avgpool) {
    um_module *m = NULL;
    ck_ok(um_global_avgpool_new(&m));
    um_tensor *x = input4(2, 3, 3, 4, 23, 0);
    gc_check_module(m, x, &GC_DEFAULT, 29);
    finish(m, x);
}
END_TEST

static void check_bn(int training, int ndim) {
    um_module *m = NULL;
    ck_ok(um_batchnorm2d_new(&m, 3, 0.9, 1e-3));
    gc_fill(m->params[0], 31, 0.5f, 1.5f, 0);
    gc_fill(m->params[1], 37, -0.5f, 0.5f, 0);
    gc_fill(m->buffers[0], 41, -0.5f, 0.5f, 0);
    gc_fill(m->buffers[1], 43, 0.5f, 2.0f, 0);
    um_module_train(m, training);
    um_tensor *x;
    if (ndim == 4) {
        x = input4(3, 3, 2, 2, 47, 0);
    } else {
        int64_t size[2] = {6, 3};
        x = gc_tensor(2, size);
        gc_fill(x, 47, -1, 1, 0);
    }
    gc_opts o = GC_DEFAULT;
    o.h = 1e-3;   /* batch statistics make training mode curved */
    o.atol = 5e-3;
    gc_check_module(m, x, &o, 53);
    finish(m, x);
}

START_TEST(grad_batchnorm_train) { check_bn(1, 4); check_bn(1, 2); }
END_TEST

START_TEST(grad_batchnorm_eval) { check_bn(0, 4); check_bn(0, 2); }
END_TEST

START_TEST(grad_relu_flatten_pad_identity) {
    um_module *m = NULL;
    um_tensor *x = input4(2, 2, 3, 3, 59, 0.2f);   /* away from the kink */
    ck_ok(um_relu_new(&m));
    gc_check_module(m, x, &GC_DEFAULT, 61);
    um_module_release(m);
    ck_ok(um_flatten_new(&m));
    gc_check_module(m, x, &GC_DEFAULT, 67);
    um_module_release(m);
    ck_ok(um_channel_pad_new(&m, 1, 2));
    gc_check_module(m, x, &GC_DEFAULT, 71);
    um_module_release(m);
    ck_ok(um_identity_new(&m));
    gc_check_module(m, x, &GC_DEFAULT, 73);
    finish(m, x);
}
END_TEST

static um_module *conv(int64_t ci, int64_t co, int64_t s, int bias) {
    um_module *m = NULL;
    um_conv2d_config cfg = {.c_in = ci, .c_out = co, .kh = 3, .kw = 3, .sh = s, .sw = s,
                            .padding = UM_PAD_SAME, .bias = bias};
    ck_ok(um_conv2d_new(&m, &cfg, &gen));
    return m;
}

static void add(um_module *seq, const char *name, um_module *child) {
    ck_ok(um_sequential_add(seq, name, child));
    um_module_release(child);
}

START_TEST(grad_sequential) {
    um_module *seq = NULL, *m = NULL;
    ck_ok(um_sequential_new(&seq));
    add(seq, "conv", conv(2, 3, 1, 1));
    ck_ok(um_relu_new(&m));
    add(seq, NULL, m);
    ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
    add(seq, NULL, m);
    ck_ok(um_flatten_new(&m));
    add(seq, NULL, m);
    ck_ok(um_linear_new(&m, 3 * 3 * 3, 4, 1, &gen));
    add(seq, "fc", m);
    um_tensor *x = input4(2, 2, 5, 5, 79, 0);
    gc_opts o = GC_DEFAULT;
    o.h = 1e-3;
    o.normwise = 1;   /* a rare ReLU kink or max-pool swap must not fail the test */
    o.rtol = 1e-2;
    gc_check_module(seq, x, &o, 83);
    finish(seq, x);
}
END_TEST

/* A ResNetSmall unit that widens: pre = BN + ReLU shared by both branches, main = conv
 * stride 2, BN, ReLU, conv; shortcut = 2x2 avg-pool stride 2 + channel padding. */
START_TEST(grad_residual_pre_shortcut) {
    um_module *pre = NULL, *main = NULL, *sc = NULL, *m = NULL, *res = NULL;
    ck_ok(um_sequential_new(&pre));
    ck_ok(um_batchnorm2d_new(&m, 2, 0.99, 1e-5));
    add(pre, "bn1", m);
    ck_ok(um_relu_new(&m));
    add(pre, "relu1", m);
    ck_ok(um_sequential_new(&main));
    add(main, "conv1", conv(2, 4, 2, 0));
    ck_ok(um_batchnorm2d_new(&m, 4, 0.99, 1e-5));
    add(main, "bn2", m);
    ck_ok(um_relu_new(&m));
    add(main, "relu2", m);
    add(main, "conv2", conv(4, 4, 1, 0));
    ck_ok(um_sequential_new(&sc));
    ck_ok(um_avgpool2d_new(&m, 2, 2, 2, 2, UM_PAD_VALID));
    add(sc, "pool", m);
    ck_ok(um_channel_pad_new(&m, 1, 1));
    add(sc, "pad", m);
    ck_ok(um_residual_new(&res, pre, main, sc));
    um_module_release(pre);
    um_module_release(main);
    um_module_release(sc);
    um_tensor *x = input4(3, 2, 4, 4, 89, 0);
    gc_opts o = GC_DEFAULT;
    o.h = 1e-3;
    o.normwise = 1;
    o.rtol = 2e-2;
    gc_check_module(res, x, &o, 97);
    um_module_train(res, 0);
    gc_check_module(res, x, &o, 101);
    finish(res, x);
}
END_TEST

START_TEST(grad_residual_identity) {
    um_module *main = NULL, *res = NULL, *m = NULL;
    ck_ok(um_sequential_new(&main));
    add(main, NULL, conv(2, 2, 1, 1));
    ck_ok(um_relu_new(&m));
    add(main, NULL, m);
    add(main, NULL, conv(2, 2, 1, 0));
    ck_ok(um_residual_new(&res, NULL, main, NULL));
    um_module_release(main);
    um_tensor *x = input4(2, 2, 3, 3, 103, 0);
    gc_opts o = GC_DEFAULT;
    o.h = 1e-3;
    o.normwise = 1;
    gc_check_module(res, x, &o, 107);
    finish(res, x);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("nn_grad");
    TCase *tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, grad_linear);
    tcase_add_test(tc, grad_conv_same);
    tcase_add_test(tc, grad_conv_same_stride2);
    tcase_add_test(tc, grad_conv_explicit_valid);
    tcase_add_test(tc, grad_conv_stride1_input_grad_as_conv);
    tcase_add_test(tc, grad_conv_per_tap);
    tcase_add_test(tc, grad_conv_tiny_inputs);
    tcase_add_test(tc, grad_conv_batch_not_multiple_of_threads);
    tcase_add_test(tc, grad_maxpool);
    tcase_add_test(tc, grad_avgpool);
    tcase_add_test(tc, grad_global_avgpool);
    tcase_add_test(tc, grad_batchnorm_train);
    tcase_add_test(tc, grad_batchnorm_eval);
    tcase_add_test(tc, grad_relu_flatten_pad_identity);
    tcase_add_test(tc, grad_sequential);
    tcase_add_test(tc, grad_residual_pre_shortcut);
    tcase_add_test(tc, grad_residual_identity);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
