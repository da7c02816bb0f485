/* Losses: cross-entropy (class and probability targets), max_conf and uniform_conf
 * against hand values, their stability on huge logits, finite-difference gradients with
 * each reduction and per-example weights, and the errors (bad labels, shapes, NaN). */
#include "gradcheck.h"

static int64_t live0;
static void setup(void) { live0 = um_live_bytes(); }
static void teardown(void) {}

static um_tensor *from(int ndim, const int64_t *size, const float *v) {
    um_tensor *t = gc_tensor(ndim, size);
    memcpy(um_f32(t), v, sizeof(float) * (size_t)um_numel(t));
    return t;
}

static um_tensor *labels(int64_t n, const int64_t *v) {
    um_tensor *t = NULL;
    ck_ok(um_tensor_new(&t, UM_INT64, 1, &n, NULL));
    memcpy(um_i64(t), v, sizeof(int64_t) * (size_t)n);
    return t;
}

static const double LSE0 = 3.40760596444438;   /* log(e + e^2 + e^3) */

START_TEST(values) {
    float zv[6] = {1, 2, 3, 1, 1, 1};
    um_tensor *z = from(2, (int64_t[]){2, 3}, zv), *y = labels(2, (int64_t[]){2, 0}), *l = NULL;
    double v;
    ck_ok(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, y, &l));
    ck_close(um_f32(l)[0], LSE0 - 3, 1e-6);
    ck_close(um_f32(l)[1], log(3.0), 1e-6);
    ck_ok(um_loss_value(UM_LOSS_CROSS_ENTROPY, z, y, UM_REDUCE_MEAN, &v, &l));
    ck_close(v, (LSE0 - 3 + log(3.0)) / 2, 1e-6);
    ck_ok(um_loss_value(UM_LOSS_CROSS_ENTROPY, z, y, UM_REDUCE_SUM, &v, NULL));
    ck_close(v, LSE0 - 3 + log(3.0), 1e-6);
    ck_ok(um_loss_forward(UM_LOSS_MAX_CONF, z, NULL, &l));
    ck_close(um_f32(l)[0], 3 - LSE0, 1e-6);       /* log of the largest softmax probability */
    ck_close(um_f32(l)[1], -log(3.0), 1e-6);      /* uniform: log(1/K), the minimum */
    ck_ok(um_loss_forward(UM_LOSS_UNIFORM_CONF, z, y, &l));   /* target ignored */
    ck_close(um_f32(l)[0], LSE0 - 2, 1e-6);
    ck_close(um_f32(l)[1], log(3.0), 1e-6);
    /* probability rows: uniform rows give uniform_conf, one-hot rows give class CE */
    float tv[6] = {1.f / 3, 1.f / 3, 1.f / 3, 1, 0, 0};
    um_tensor *t = from(2, (int64_t[]){2, 3}, tv);
    ck_ok(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, t, &l));
    ck_close(um_f32(l)[0], LSE0 - 2, 1e-6);
    ck_close(um_f32(l)[1], log(3.0), 1e-6);
    um_tensor_release(t);
    um_tensor_release(l);
    um_tensor_release(z);
    um_tensor_release(y);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(huge_logits_are_stable) {
    float zv[4] = {1000, 0, -1000, 50};
    um_tensor *z = from(2, (int64_t[]){2, 2}, zv), *y = labels(2, (int64_t[]){1, 0}), *l = NULL, *g = NULL;
    ck_ok(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, y, &l));
    ck_close(um_f32(l)[0], 1000, 1e-3);
    ck_close(um_f32(l)[1], 1050, 1e-3);
    ck_ok(um_loss_backward(UM_LOSS_CROSS_ENTROPY, z, y, UM_REDUCE_SUM, 1.0, NULL, &g));
    ck_close(um_f32(g)[0], 1, 1e-6);
    ck_close(um_f32(g)[1], -1, 1e-6);
    ck_close(um_f32(g)[2], -1, 1e-6);
    ck_close(um_f32(g)[3], 1, 1e-6);
    um_tensor_release(g);
    um_tensor_release(l);
    um_tensor_release(z);
    um_tensor_release(y);
}
END_TEST

/* d/dz of sum_i w_i L_i numerically (double accumulation) against backward. */
static void check_grad(um_loss_kind kind, const um_tensor *target, um_reduction red, const um_tensor *w) {
    const int64_t n = 4, k = 5;
    um_tensor *z = gc_tensor(2, (int64_t[]){n, k}), *l = NULL, *g = NULL;
    gc_fill(z, 7, -2, 2, 0);
    for (int64_t i = 0; i < n; i++) um_f32(z)[i * k + i % k] += 1.0f;   /* a clear arg-max per row */
    ck_ok(um_loss_backward(kind, z, target, red, 1.5, w, &g));
    double scale = 1.5 / (red == UM_REDUCE_MEAN ? (double)n : 1.0), h = 1e-2;
    for (int64_t j = 0; j < n * k; j++) {
        float v = um_f32(z)[j];
        double s[2];
        for (int side = 0; side < 2; side++) {
            um_f32(z)[j] = v + (side ? -1 : 1) * (float)h;
            ck_ok(um_loss_forward(kind, z, target, &l));
            s[side] = 0;
            for (int64_t i = 0; i < n; i++) s[side] += (w ? um_f32(w)[i] : 1.0) * um_f32(l)[i];
        }
        um_f32(z)[j] = v;
        double num = scale * (s[0] - s[1]) / (2 * h);
        ck_assert_msg(fabs(num - um_f32(g)[j]) < 1e-3 + 1e-2 * fabs(num), "%s grad[%lld]: numeric %g, analytic %g",
                      um_loss_name(kind), (long long)j, num, um_f32(g)[j]);
    }
    um_tensor_release(l);
    um_tensor_release(g);
    um_tensor_release(z);
}

START_TEST(gradients) {
    um_tensor *y = labels(4, (int64_t[]){0, 3, 4, 1});
    um_tensor *t = gc_tensor(2, (int64_t[]){4, 5}), *w = gc_tensor(1, (int64_t[]){4});
    gc_fill(t, 9, 0, 1, 0);   /* rows need not sum to one */
    gc_fill(w, 11, 0, 2, 0);
    for (int red = UM_REDUCE_NONE; red <= UM_REDUCE_MEAN; red++) {
        check_grad(UM_LOSS_CROSS_ENTROPY, y, (um_reduction)red, NULL);
        check_grad(UM_LOSS_CROSS_ENTROPY, t, (um_reduction)red, NULL);
        check_grad(UM_LOSS_MAX_CONF, NULL, (um_reduction)red, NULL);
        check_grad(UM_LOSS_UNIFORM_CONF, NULL, (um_reduction)red, NULL);
    }
    check_grad(UM_LOSS_CROSS_ENTROPY, y, UM_REDUCE_NONE, w);
    check_grad(UM_LOSS_MAX_CONF, NULL, UM_REDUCE_MEAN, w);
    um_tensor_release(y);
    um_tensor_release(t);
    um_tensor_release(w);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* The gradient can be written into a view, e.g. the noise rows of a [noise; clean] batch. */
START_TEST(gradient_into_view) {
    um_tensor *z = gc_tensor(2, (int64_t[]){4, 3}), *full = NULL, *top = NULL, *slot = NULL;
    gc_fill(z, 13, -1, 1, 0);
    ck_ok(um_tensor_zeros(&full, UM_FLOAT32, 2, (int64_t[]){6, 3}, NULL));
    ck_ok(um_narrow(&top, full, 0, 2, 4));
    slot = top;
    ck_ok(um_loss_backward(UM_LOSS_UNIFORM_CONF, z, NULL, UM_REDUCE_SUM, 1.0, NULL, &slot));
    ck_assert_ptr_eq(slot, top);
    ck_assert_float_eq(um_f32(full)[0], 0.0f);
    double s = 0;
    for (int i = 6; i < 18; i++) s += um_f32(full)[i];
    ck_close(s, 0.0, 1e-5);   /* softmax - 1/K sums to zero per row */
    ck_assert(um_f32(full)[6] != 0.0f);
    um_tensor_release(top);
    um_tensor_release(full);
    um_tensor_release(z);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(errors) {
    um_tensor *z = gc_tensor(2, (int64_t[]){2, 3}), *l = NULL, *g = NULL;
    gc_fill(z, 1, -1, 1, 0);
    um_tensor *bad = labels(2, (int64_t[]){0, 5}), *short_y = labels(1, (int64_t[]){0});
    double v;
    ck_fails(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, bad, &l), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "class index 5 of example 1 is outside [0, 3)");
    ck_fails(um_loss_backward(UM_LOSS_CROSS_ENTROPY, z, bad, UM_REDUCE_MEAN, 1, NULL, &g), UM_EINVAL);
    ck_fails(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, short_y, &l), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "vector of 2 int64 labels"));
    ck_fails(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, NULL, &l), UM_EINVAL);
    um_tensor *t = gc_tensor(2, (int64_t[]){2, 4});
    ck_fails(um_loss_forward(UM_LOSS_CROSS_ENTROPY, z, t, &l), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "must match the logits 2x3, got 2x4"));
    um_tensor *z3 = gc_tensor(1, (int64_t[]){3});
    ck_fails(um_loss_forward(UM_LOSS_MAX_CONF, z3, NULL, &l), UM_EINVAL);
    ck_fails(um_loss_value(UM_LOSS_MAX_CONF, z, NULL, UM_REDUCE_NONE, &v, NULL), UM_EINVAL);
    um_f32(z)[4] = NAN;
    ck_fails(um_loss_value(UM_LOSS_MAX_CONF, z, NULL, UM_REDUCE_MEAN, &v, NULL), UM_ENUMERIC);
    ck_assert(strstr(um_last_error(), "NaN"));
    um_loss_kind kind;
    ck_ok(um_loss_kind_from_name("uniform_conf", &kind));
    ck_assert_int_eq(kind, UM_LOSS_UNIFORM_CONF);
    ck_fails(um_loss_kind_from_name("hinge", &kind), UM_EINVAL);
    um_tensor_release(l);
    um_tensor_release(g);   /* slots are the caller's, also after a failure */
    um_tensor_release(z3);
    um_tensor_release(t);
    um_tensor_release(bad);
    um_tensor_release(short_y);
    um_tensor_release(z);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, values);
    tcase_add_test(tc, huge_logits_are_stable);
    tcase_add_test(tc, gradients);
    tcase_add_test(tc, gradient_into_view);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
