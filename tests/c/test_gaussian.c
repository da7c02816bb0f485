/* The Mahalanobis fit (core/ood/gaussian.h) against hand-computed class means and precision,
 * a strided feature matrix, the ridge for a singular covariance, bad inputs named, and
 * allocation failures that leak nothing. */
#include "check_main.h"
#include "ood/gaussian.h"

/* classes {(0,0), (2,2)} and {(4,0), (4,2)}: means (1,1), (4,1); covariance
 * [[0.5, 0.5], [0.5, 1]]; precision [[4, -2], [-2, 2]] */
static const float X[8] = {0, 0, 2, 2, 4, 0, 4, 2};
static const int64_t Y[4] = {0, 0, 1, 1};

static void check_fit(um_tensor *f, um_tensor *y) {
    um_tensor *mu, *p;
    double ridge = -1;
    ck_ok(um_gaussian_fit(f, y, 2, 0, &mu, &p, &ridge));
    const float want_mu[4] = {1, 1, 4, 1}, want_p[4] = {4, -2, -2, 2};
    for (int i = 0; i < 4; i++) {
        ck_close(um_f32(mu)[i], want_mu[i], 1e-6);
        ck_close(um_f32(p)[i], want_p[i], 1e-5);
    }
    ck_assert(ridge == 0);
    um_tensor_release(mu);
    um_tensor_release(p);
}

START_TEST(hand_values) {
    um_tensor *f = ck_mat(4, 2, X), *y = ck_longs(4, Y), *ft;
    check_fit(f, y);
    /* the same features as the transpose of a (2, 4) matrix: strided rows */
    const float xt[8] = {0, 2, 4, 4, 0, 2, 0, 2};
    um_tensor *g = ck_mat(2, 4, xt);
    ck_ok(um_transpose(&ft, g, 0, 1));
    check_fit(ft, y);
    um_tensor_release(f); um_tensor_release(y); um_tensor_release(g); um_tensor_release(ft);
}
END_TEST

START_TEST(singular_gets_a_ridge) {
    const float x[8] = {0, 1, 2, 1, 4, 1, 5, 1};   /* the second feature is constant */
    um_tensor *f = ck_mat(4, 2, x), *y = ck_longs(4, Y), *mu, *p;
    double ridge = 0;
    ck_ok(um_gaussian_fit(f, y, 2, 0, &mu, &p, &ridge));
    ck_assert(ridge > 0);
    for (int i = 0; i < 4; i++) ck_assert(isfinite(um_f32(p)[i]));
    um_tensor_release(f); um_tensor_release(y); um_tensor_release(mu); um_tensor_release(p);
}
END_TEST

START_TEST(bad_inputs_named) {
    um_tensor *f = ck_mat(4, 2, X), *y = ck_longs(4, Y), *mu = NULL, *p = NULL;
    ck_fails(um_gaussian_fit(f, y, 3, 0, &mu, &p, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "class 2 has no example") != NULL);
    ck_fails(um_gaussian_fit(f, y, 2, 1, &mu, &p, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "labels[1] = 0 is outside 1 .. 2") != NULL);
    ck_fails(um_gaussian_fit(y, y, 2, 0, &mu, &p, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "features must be float32 (n, D)") != NULL);
    const float nan[8] = {0, 0, NAN, 2, 4, 0, 4, 2};
    um_tensor *fn = ck_mat(4, 2, nan);
    ck_fails(um_gaussian_fit(fn, y, 2, 0, &mu, &p, NULL), UM_ENUMERIC);
    ck_assert(mu == NULL && p == NULL);
    um_tensor_release(f); um_tensor_release(y); um_tensor_release(fn);
}
END_TEST

START_TEST(allocation_failures_leak_nothing) {
    um_tensor *f = ck_mat(4, 2, X), *y = ck_longs(4, Y);
    int64_t before = um_live_bytes();
    for (int k = 1; k < 20; k++) {
        um_tensor *mu = NULL, *p = NULL;
        um_alloc_fail_after(k);
        int rc = um_gaussian_fit(f, y, 2, 0, &mu, &p, NULL);
        um_alloc_fail_after(0);
        um_tensor_release(mu);
        um_tensor_release(p);
        ck_assert_int_eq(um_live_bytes(), before);
        if (rc == UM_OK) break;
        ck_assert_int_eq(rc, UM_ENOMEM);
    }
    um_tensor_release(f); um_tensor_release(y);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("gaussian");
    TCase *tc = tcase_create("gaussian");
    tcase_add_test(tc, hand_values);
    tcase_add_test(tc, singular_gets_a_ridge);
    tcase_add_test(tc, bad_inputs_named);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}
