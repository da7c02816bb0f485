/* Tensor operations against hand-computed values: broadcasting, scalars, unary maths,
 * reductions, argmax, matmul/addmm, softmax; error messages; strided inputs. */
#include <string.h>
#include "check_main.h"

static um_tensor *from(int ndim, const int64_t *size, const float *v) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, ndim, size, NULL));
    memcpy(um_f32(t), v, sizeof(float) * (size_t)um_numel(t));
    return t;
}

static void expect(const um_tensor *t, const float *v, int n, double tol) {
    ck_assert_int_eq(um_numel(t), n);
    for (int i = 0; i < n; i++) ck_assert_msg(fabs(um_f32(t)[i] - v[i]) <= tol, "element %d: %g, expected %g", i, um_f32(t)[i], v[i]);
}

START_TEST(broadcast_add_rows) {
    int64_t s23[2] = {2, 3}, s3[1] = {3};
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    um_tensor *a = from(2, s23, av), *b = from(1, s3, bv), *r;
    ck_ok(um_binary(&r, UM_ADD, a, b));
    float e[6] = {11, 22, 33, 14, 25, 36};
    expect(r, e, 6, 0);
    um_tensor_release(r);
    ck_ok(um_binary(&r, UM_SUB, b, a));
    float e2[6] = {9, 18, 27, 6, 15, 24};
    expect(r, e2, 6, 0);
    um_tensor_release(r);
    ck_ok(um_binary_(UM_MUL, a, b));
    float e3[6] = {10, 40, 90, 40, 100, 180};
    expect(a, e3, 6, 0);
    ck_fails(um_binary_(UM_MUL, b, a), UM_EINVAL);
    um_tensor_release(a); um_tensor_release(b);
}
END_TEST

START_TEST(broadcast_channels) {
    /* (N,C,H,W) * (C,1,1): per-channel scaling */
    int64_t s[4] = {2, 3, 2, 2}, sc[3] = {3, 1, 1};
    float x[24], cv[3] = {1, 10, 100};
    for (int i = 0; i < 24; i++) x[i] = 1;
    um_tensor *a = from(4, s, x), *c = from(3, sc, cv), *r;
    ck_ok(um_binary(&r, UM_MUL, a, c));
    for (int n = 0; n < 2; n++)
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < 4; k++) ck_assert(um_f32(r)[n * 12 + ch * 4 + k] == cv[ch]);
    um_tensor_release(r);
    int64_t bad[1] = {3};
    um_tensor *b = from(1, bad, cv);
    ck_fails(um_binary(&r, UM_ADD, a, b), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "add: sizes 2x3x2x2 and 3 cannot be broadcast together") != NULL, "%s", um_last_error());
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(c);
}
END_TEST

START_TEST(scalars_unary_compare) {
    int64_t s[1] = {4};
    float v[4] = {-2, -0.5f, 0, 4};
    um_tensor *a = from(1, s, v), *r;
    ck_ok(um_binary_scalar(&r, UM_DIV, a, 2, 1));   /* 2 / a */
    float e1[4] = {-1, -4, INFINITY, 0.5f};
    for (int i = 0; i < 4; i++) ck_assert(um_f32(r)[i] == e1[i]);
    um_tensor_release(r);
    ck_ok(um_binary_scalar(&r, UM_SUB, a, 1, 0));
    float e2[4] = {-3, -1.5f, -1, 3};
    expect(r, e2, 4, 0);
    um_tensor_release(r);
    ck_ok(um_binary_scalar(&r, UM_GT, a, 0, 0));
    float e3[4] = {0, 0, 0, 1};
    expect(r, e3, 4, 0);
    um_tensor_release(r);
    ck_ok(um_unary(&r, UM_RELU, a));
    float e4[4] = {0, 0, 0, 4};
    expect(r, e4, 4, 0);
    um_tensor_release(r);
    ck_ok(um_unary(&r, UM_SIGN, a));
    float e5[4] = {-1, -1, 0, 1};
    expect(r, e5, 4, 0);
    um_tensor_release(r);
    ck_ok(um_unary(&r, UM_ABS, a));
    ck_ok(um_unary_(UM_SQRT, r));
    float e6[4] = {1.41421356f, 0.70710678f, 0, 2};
    expect(r, e6, 4, 1e-6);
    ck_ok(um_unary_(UM_EXP, r));
    ck_ok(um_unary_(UM_LOG, r));
    expect(r, e6, 4, 1e-6);
    um_tensor_release(r);
    ck_ok(um_clamp(&r, a, -1, 1));
    float e7[4] = {-1, -0.5f, 0, 1};
    expect(r, e7, 4, 0);
    ck_fails(um_clamp_(r, 2, 1), UM_EINVAL);
    um_tensor_release(r);
    um_tensor_release(a);
}
END_TEST

START_TEST(reductions) {
    int64_t s[3] = {2, 2, 3};
    float v[12] = {1, 2, 3, 4, 5, 6, -1, 0, 7, 2, 2, 2};
    um_tensor *a = from(3, s, v), *r;
    double total = 0;
    ck_ok(um_sum_all(a, &total));
    ck_close(total, 33, 0);
    ck_ok(um_reduce(&r, UM_SUM, a, 1, 0));
    float e1[6] = {5, 7, 9, 1, 2, 9};
    ck_assert_int_eq(r->ndim, 2);
    expect(r, e1, 6, 0);
    um_tensor_release(r);
    ck_ok(um_reduce(&r, UM_MEAN, a, 2, 1));
    ck_assert_int_eq(r->ndim, 3);
    ck_assert_int_eq(r->size[2], 1);
    float e2[4] = {2, 5, 2, 2};
    expect(r, e2, 4, 1e-6);
    um_tensor_release(r);
    ck_ok(um_reduce(&r, UM_MAX, a, 0, 0));
    float e3[6] = {1, 2, 7, 4, 5, 6};
    expect(r, e3, 6, 0);
    um_tensor_release(r);
    ck_ok(um_reduce(&r, UM_MIN, a, -1, 0));
    ck_assert_int_eq(r->ndim, 0);
    ck_assert(um_f32(r)[0] == -1);
    um_tensor_release(r);
    ck_ok(um_argmax(&r, a, 2, 0));
    int64_t e4[4] = {2, 2, 2, 0};   /* ties: the first */
    for (int i = 0; i < 4; i++) ck_assert_int_eq(um_i64(r)[i], e4[i]);
    um_tensor_release(r);
    ck_ok(um_argmin(&r, a, -1, 0));
    ck_assert_int_eq(um_i64(r)[0], 6);
    um_tensor_release(r);
    ck_fails(um_reduce(&r, UM_SUM, a, 3, 0), UM_EINVAL);
    /* strided input: sum over a transposed view */
    um_tensor *t;
    int64_t s2[2] = {2, 3};
    um_tensor *m = from(2, s2, v);
    ck_ok(um_transpose(&t, m, 0, 1));
    ck_ok(um_reduce(&r, UM_SUM, t, 1, 0));
    float e5[3] = {5, 7, 9};
    expect(r, e5, 3, 0);
    um_tensor_release(r); um_tensor_release(t); um_tensor_release(m);
    um_tensor_release(a);
}
END_TEST

START_TEST(matmul_and_addmm) {
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s22[2] = {2, 2};
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {7, 8, 9, 10, 11, 12}, cv[4] = {1, 1, 1, 1};
    um_tensor *a = from(2, s23, av), *b = from(2, s32, bv), *c = from(2, s22, cv), *r;
    ck_ok(um_matmul(&r, a, b));
    float e[4] = {58, 64, 139, 154};
    expect(r, e, 4, 0);
    um_tensor_release(r);
    ck_ok(um_addmm(&r, c, a, b, 2, 0.5));
    float e2[4] = {31, 34, 71.5f, 79};
    expect(r, e2, 4, 0);
    um_tensor_release(r);
    ck_fails(um_matmul(&r, a, a), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "matmul: sizes (2x3) and (2x3) do not match");
    /* transposed (strided) operand */
    um_tensor *at;
    ck_ok(um_transpose(&at, a, 0, 1));
    ck_ok(um_matmul(&r, at, a));
    ck_assert(um_f32(r)[0] == 17 && um_f32(r)[8] == 45);
    um_tensor_release(r); um_tensor_release(at);
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(c);
}
END_TEST

START_TEST(softmax_stable) {
    int64_t s[2] = {2, 3};
    float v[6] = {1000, 1001, 1002, -5, 0, 5};
    um_tensor *a = from(2, s, v), *r, *l;
    ck_ok(um_softmax(&r, a, 1));
    double z = 1 + exp(1) + exp(2);
    float e[3] = {(float)(1 / z), (float)(exp(1) / z), (float)(exp(2) / z)};
    for (int k = 0; k < 3; k++) ck_close(um_f32(r)[k], e[k], 1e-6);
    ck_ok(um_log_softmax(&l, a, 1));
    ck_close(um_f32(l)[2], log(exp(2) / z), 1e-5);
    ck_close(um_f32(l)[3], -10 - log(1 + exp(-5) + exp(-10)), 1e-5);
    for (int i = 0; i < 6; i++) ck_assert(isfinite(um_f32(l)[i]));
    um_tensor_release(r); um_tensor_release(l);
    ck_ok(um_softmax(&r, a, 0));
    ck_close(um_f32(r)[0] + um_f32(r)[3], 1.0, 1e-6);
    um_tensor_release(r);
    um_tensor_release(a);
}
END_TEST

START_TEST(dtype_and_device_errors) {
    int64_t s[1] = {3};
    um_tensor *i, *f, *r;
    ck_ok(um_tensor_zeros(&i, UM_INT64, 1, s, NULL));
    ck_ok(um_tensor_zeros(&f, UM_FLOAT32, 1, s, NULL));
    ck_fails(um_binary(&r, UM_ADD, f, i), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "add: expected a float32 tensor, got int64");
    ck_fails(um_unary(&r, UM_EXP, i), UM_EINVAL);
    um_tensor_release(i); um_tensor_release(f);
}
END_TEST

/* int64 labels against predictions: exact masks (also past 2^24) and exact int64 sums. */
START_TEST(int64_compare_and_sum) {
    int64_t s[2] = {2, 2}, row[1] = {2};
    um_tensor *a, *b, *r, *t;
    ck_ok(um_tensor_new(&a, UM_INT64, 2, s, NULL));
    ck_ok(um_tensor_new(&b, UM_INT64, 1, row, NULL));
    const int64_t av[4] = {1, 16777217, 3, 16777216}, bv[2] = {1, 16777216};
    memcpy(um_i64(a), av, sizeof av);
    memcpy(um_i64(b), bv, sizeof bv);
    ck_ok(um_binary(&r, UM_EQ, a, b));   /* b broadcast over rows */
    ck_assert_int_eq(r->dtype, UM_FLOAT32);
    ck_assert(um_f32(r)[0] == 1 && um_f32(r)[1] == 0 && um_f32(r)[2] == 0 && um_f32(r)[3] == 1);
    um_tensor_release(r);
    ck_ok(um_binary_scalar(&r, UM_GT, a, 2.0, 0));
    ck_assert(um_f32(r)[0] == 0 && um_f32(r)[1] == 1 && um_f32(r)[2] == 1 && um_f32(r)[3] == 1);
    um_tensor_release(r);
    ck_ok(um_binary_scalar(&r, UM_GT, a, 2.0, 1));   /* 2 > a */
    ck_assert(um_f32(r)[0] == 1 && um_f32(r)[1] == 0 && um_f32(r)[2] == 0 && um_f32(r)[3] == 0);
    um_tensor_release(r);
    ck_ok(um_reduce(&r, UM_SUM, a, -1, 0));
    ck_assert_int_eq(r->dtype, UM_INT64);
    ck_assert_int_eq(um_i64(r)[0], 1 + 16777217 + 3 + 16777216);
    um_tensor_release(r);
    ck_ok(um_reduce(&t, UM_MAX, a, 0, 0));
    ck_assert(um_i64(t)[0] == 3 && um_i64(t)[1] == 16777217);
    um_tensor_release(t);
    ck_ok(um_reduce(&t, UM_MEAN, a, 1, 1));
    ck_assert_int_eq(t->dtype, UM_FLOAT32);
    ck_assert_int_eq(t->ndim, 2);
    ck_close(um_f32(t)[0], 8388609.0, 1);
    um_tensor_release(t);
    ck_fails(um_binary(&r, UM_SUB, a, b), UM_EINVAL);
    um_tensor_release(a); um_tensor_release(b);
}
END_TEST

START_TEST(threads) {
    um_set_num_threads(2);
    ck_assert_int_eq(um_get_num_threads(), 2);
    um_set_num_threads(1);
    ck_assert_int_eq(um_get_num_threads(), 1);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, broadcast_add_rows);
    tcase_add_test(tc, broadcast_channels);
    tcase_add_test(tc, scalars_unary_compare);
    tcase_add_test(tc, reductions);
    tcase_add_test(tc, matmul_and_addmm);
    tcase_add_test(tc, softmax_stable);
    tcase_add_test(tc, dtype_and_device_errors);
    tcase_add_test(tc, int64_compare_and_sum);
    tcase_add_test(tc, threads);
    suite_add_tcase(s, tc);
    return s;
}
