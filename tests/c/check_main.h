/* Shared main() for the Check suites: each test file defines make_suite() and includes
 * this header last. Also a few helpers every suite uses (checks, small tensors). */
#ifndef UM_CHECK_MAIN_H
#define UM_CHECK_MAIN_H
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umbra.h"
#include "nn/module.h"

#define ck_ok(expr) do { int rc_ = (expr); ck_assert_msg(rc_ == UM_OK, "%s -> %d: %s", #expr, rc_, um_last_error()); } while (0)
#define ck_fails(expr, code) do { int rc_ = (expr); ck_assert_msg(rc_ == (code), "%s -> %d, expected %d (%s)", #expr, rc_, (code), um_last_error()); } while (0)
#define ck_close(a, b, tol) ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g (tol %g)", #a, (double)(a), (double)(b), (double)(tol))

/* A new folder $TMPDIR/um_<tag>_XXXXXX (/tmp when TMPDIR is unset), its path in dir[0..n):
 * scripts/run-tests points TMPDIR at a folder of its own and fails a run that leaves
 * anything there. */
static inline void ck_mkdtemp(char *dir, size_t n, const char *tag) {
    const char *tmp = getenv("TMPDIR");
    ck_assert_int_lt(snprintf(dir, n, "%s/um_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", tag), (int)n);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
}
/* Remove a folder made by ck_mkdtemp, with what it holds. */
static inline void ck_rmtree(const char *dir) {
    char cmd[600];
    ck_assert_int_lt(snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir), (int)sizeof cmd);
    ck_assert_int_eq(system(cmd), 0);
}

/* Small CPU tensors filled from C arrays (new references; n may be 0). */
static inline um_tensor *ck_vec(int64_t n, const float *v) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 1, &n, NULL));
    if (n) memcpy(um_f32(t), v, sizeof(float) * (size_t)n);
    return t;
}
static inline um_tensor *ck_mat(int64_t n, int64_t k, const float *v) {
    um_tensor *t;
    int64_t s[2] = {n, k};
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 2, s, NULL));
    if (n * k > 0) memcpy(um_f32(t), v, sizeof(float) * (size_t)(n * k));
    return t;
}
static inline um_tensor *ck_longs(int64_t n, const int64_t *v) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_INT64, 1, &n, NULL));
    if (n) memcpy(um_i64(t), v, sizeof(int64_t) * (size_t)n);
    return t;
}

/* A Sequential of the given modules (the references passed in are taken over). */
static inline um_module *ck_seq(int n, um_module **parts) {
    um_module *s;
    ck_ok(um_sequential_new(&s));
    for (int i = 0; i < n; i++) {
        ck_ok(um_sequential_add(s, NULL, parts[i]));
        um_module_release(parts[i]);
    }
    return s;
}

Suite *make_suite(void);

int main(void) {
    SRunner *sr = srunner_create(make_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
