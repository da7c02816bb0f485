/* The residual add fused into the BatchNorm2d + ReLU fold (evaluation mode, input gradient
 * only: grad_addend, core/nn/container.c) against the unfused path (the same module's
 * backward with parameter gradients, which adds in a pass of its own): the same numbers,
 * the fused one really taken (the residual's gradient is the batch norm's buffer), not
 * taken in training mode, with pre, or when the main branch does not open with the pair;
 * warm passes allocate nothing, in either order of the two paths. */
#include "gradcheck.h"

static um_generator gen;
static int64_t live0;
static void setup(void) {
    um_generator_init(&gen, 5);
    live0 = um_live_bytes();
}
static void teardown(void) {}

/* Sequential{bn, relu, conv 3x3} (bn_first) or Sequential{conv, bn, relu}; 8 channels */
static um_module *branch(int bn_first) {
    um_module *seq = NULL, *bn = NULL, *relu = NULL, *conv = NULL;
    um_conv2d_config cfg = {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME};
    ck_ok(um_sequential_new(&seq));
    ck_ok(um_batchnorm2d_new(&bn, 8, 0.99, 1e-3));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_conv2d_new(&conv, &cfg, &gen));
    /* statistics and parameters away from the defaults: mean in [-0.5, 0.5), var in
     * [0.5, 1.5), gamma in [0.5, 1.5), beta in [-0.5, 0.5) */
    gc_fill(bn->buffers[0], 31, -0.5f, 0.5f, 0);
    gc_fill(bn->buffers[1], 32, 0.5f, 1.5f, 0);
    gc_fill(bn->params[0], 33, 0.5f, 1.5f, 0);
    gc_fill(bn->params[1], 34, -0.5f, 0.5f, 0);
    um_module *order[3] = {bn_first ? bn : conv, bn_first ? relu : bn, bn_first ? conv : relu};
    for (int i = 0; i < 3; i++) {
        ck_ok(um_sequential_add(seq, NULL, order[i]));
        um_module_release(order[i]);
    }
    return seq;
}

/* gx through backward_input (fused where it applies) and through backward with parameter
 * gradients (never fused), bit for bit; returns whether the fused path was taken. */
static int check_residual(um_module *res, um_module *main, int training) {
    um_module_train(res, training);
    const int64_t xs[4] = {3, 8, 6, 5};
    um_tensor *x = gc_tensor(4, xs), *gy = gc_tensor(4, xs), *y = NULL, *gx = NULL;
    gc_fill(x, 41, -1, 1, 0);
    gc_fill(gy, 42, -1, 1, 0);
    const int64_t n = um_numel(x);
    float *fused = malloc(sizeof(float) * (size_t)n);
    ck_ok(um_module_forward(res, x, &y));
    ck_ok(um_module_backward_input(res, x, gy, &gx));
    memcpy(fused, um_f32(gx), sizeof(float) * (size_t)n);
    const int taken = res->grad_input == main->children[0]->grad_input;
    ck_ok(um_module_backward(res, x, gy, &gx));
    ck_assert_ptr_ne(res->grad_input, main->children[0]->grad_input);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fused[i] == um_f32(gx)[i], "gx[%lld]: %.9g by backward_input, %.9g by backward", (long long)i,
                      fused[i], um_f32(gx)[i]);
    /* warm passes, the two paths in turn: nothing allocated */
    const int64_t warm = um_live_bytes();
    for (int k = 0; k < 2; k++) {
        ck_ok(um_module_forward(res, x, &y));
        ck_ok(um_module_backward_input(res, x, gy, &gx));
        ck_assert_int_eq(memcmp(fused, um_f32(gx), sizeof(float) * (size_t)n), 0);
        ck_ok(um_module_backward(res, x, gy, &gx));
    }
    ck_assert_int_eq(um_live_bytes(), warm);
    free(fused);
    um_tensor_release(gy);
    um_tensor_release(x);
    return taken;
}

START_TEST(fused_residual_add_matches_unfused) {
    um_module *main = branch(1), *res = NULL;
    ck_ok(um_residual_new(&res, NULL, main, NULL));
    ck_assert_int_eq(check_residual(res, main, 0), 1);   /* evaluation: fused */
    ck_assert_int_eq(check_residual(res, main, 1), 0);   /* training: the batch statistics, not fused */
    um_module_release(res);
    um_module_release(main);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(unfused_where_it_does_not_apply) {
    /* the main branch opens with a convolution: nothing to fuse into */
    um_module *main = branch(0), *res = NULL;
    ck_ok(um_residual_new(&res, NULL, main, NULL));
    ck_assert_int_eq(check_residual(res, main, 0), 0);
    um_module_release(res);
    um_module_release(main);
    /* with pre (the first unit of a stage): the gradient goes on through pre's fold */
    um_module *pre = NULL, *bn = NULL, *relu = NULL;
    main = branch(1);
    ck_ok(um_sequential_new(&pre));
    ck_ok(um_batchnorm2d_new(&bn, 8, 0.99, 1e-3));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_sequential_add(pre, NULL, bn));
    ck_ok(um_sequential_add(pre, NULL, relu));
    ck_ok(um_residual_new(&res, pre, main, NULL));
    ck_assert_int_eq(check_residual(res, main, 0), 0);
    um_module_release(bn);
    um_module_release(relu);
    um_module_release(pre);
    um_module_release(res);
    um_module_release(main);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("residual_fusion");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fused_residual_add_matches_unfused);
    tcase_add_test(tc, unfused_where_it_does_not_apply);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
