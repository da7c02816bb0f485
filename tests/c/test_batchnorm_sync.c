/* Synchronised batch norm (core/nn/batchnorm_sync.c) against the training-mode kernel:
 * with a reducer that leaves the sums alone (one process) it must give the same output,
 * running statistics, input and parameter gradients; with a reducer that doubles them
 * (two processes holding the same batch) the statistics, hence the output, stay the
 * same and the parameter gradients are still this process's share. */
#include "nn/layers.h"
#include "nn/module.h"
#include "check_main.h"

static int identity(float *buf, int64_t n, void *ctx) { return UM_OK; }
static int twice(float *buf, int64_t n, void *ctx) {
    for (int64_t i = 0; i < n; i++) buf[i] *= 2;
    return UM_OK;
}

/* forward + backward of a fresh BatchNorm2d(3) on fixed data; out: y, gx, gg, gb, running */
static void run_bn(um_batchnorm_reducer reduce, float *out) {
    um_batchnorm_set_reducer(reduce, NULL);
    int64_t size[4] = {4, 3, 5, 2}, n = 4 * 3 * 5 * 2;
    um_module *bn = NULL;
    um_tensor *x = NULL, *gy = NULL, *y = NULL, *gx = NULL;
    ck_ok(um_batchnorm2d_new(&bn, 3, 0.9, 1e-3));
    ck_ok(um_tensor_new(&x, UM_FLOAT32, 4, size, NULL));
    ck_ok(um_tensor_new(&gy, UM_FLOAT32, 4, size, NULL));
    for (int64_t i = 0; i < n; i++) {
        um_f32(x)[i] = (float)sin(0.37 * i) * 3 + (float)(i % 3);
        um_f32(gy)[i] = (float)cos(0.11 * i);
    }
    for (int ch = 0; ch < 3; ch++) um_f32(bn->params[0])[ch] = 0.5f + ch;
    um_module_train(bn, 1);
    ck_ok(um_module_forward(bn, x, &y));
    ck_ok(um_module_zero_grad(bn));
    ck_ok(um_module_backward(bn, x, gy, &gx));
    memcpy(out, um_f32(y), n * sizeof(float));
    memcpy(out + n, um_f32(gx), n * sizeof(float));
    for (int ch = 0; ch < 3; ch++) {
        out[2 * n + ch] = um_f32(bn->grads[0])[ch];
        out[2 * n + 3 + ch] = um_f32(bn->grads[1])[ch];
        out[2 * n + 6 + ch] = um_f32(bn->buffers[0])[ch];
        out[2 * n + 9 + ch] = um_f32(bn->buffers[1])[ch];
    }
    um_tensor_release(x);
    um_tensor_release(gy);
    um_module_release(bn);
    um_batchnorm_set_reducer(NULL, NULL);
}

START_TEST(sync_matches_the_kernel) {
    enum { N = 2 * 120 + 12 };
    float ref[N], one[N], two[N];
    run_bn(NULL, ref);
    run_bn(identity, one);
    run_bn(twice, two);
    for (int i = 0; i < N; i++) {
        double tol = 2e-5 * (1 + fabs(ref[i]));
        ck_assert_msg(fabs(one[i] - ref[i]) <= tol, "one process: value %d: %g vs %g", i, one[i], ref[i]);
        /* the running variance's Bessel factor counts both processes: 80/79, not 40/39 */
        double want = i >= N - 3 ? 0.9 + (ref[i] - 0.9) * (80.0 / 79.0) / (40.0 / 39.0) : ref[i];
        ck_assert_msg(fabs(two[i] - want) <= tol, "two processes: value %d: %g vs %g", i, two[i], want);
    }
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("batchnorm_sync");
    TCase *tc = tcase_create("sync");
    tcase_add_test(tc, sync_matches_the_kernel);
    suite_add_tcase(s, tc);
    return s;
}
