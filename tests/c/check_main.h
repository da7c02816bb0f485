/* Shared main() for the Check suites: each test file defines make_suite() and includes
 * this header last. Also a few helpers every suite uses. */
#ifndef UM_CHECK_MAIN_H
#define UM_CHECK_MAIN_H
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "umbra.h"

#define ck_ok(expr) do { int rc_ = (expr); ck_assert_msg(rc_ == UM_OK, "%s -> %d: %s", #expr, rc_, um_last_error()); } while (0)
#define ck_fails(expr, code) do { int rc_ = (expr); ck_assert_msg(rc_ == (code), "%s -> %d, expected %d (%s)", #expr, rc_, (code), um_last_error()); } while (0)
#define ck_close(a, b, tol) ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g (tol %g)", #a, (double)(a), (double)(b), (double)(tol))

Suite *make_suite(void);

int main(void) {
    SRunner *sr = srunner_create(make_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
