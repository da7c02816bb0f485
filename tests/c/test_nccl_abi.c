/* core/dist/nccl.h declares the few NCCL entry points and values umbra uses instead of
 * including nccl.h (NCCL is loaded at run time and absent from most machines): where the
 * header is installed, its values must be those; where the library is, it must load, give
 * a version and offer every entry point. Else one SKIP line each. */
#include <stdio.h>
#include "check_main.h"
#include "dist/nccl.h"
#if defined(__has_include)
#if __has_include(<nccl.h>)
#include <nccl.h>
#define HAVE_NCCL_H 1
#endif
#endif

START_TEST(header_values) {
#ifdef HAVE_NCCL_H
    ck_assert_int_eq(sizeof(ncclUniqueId), sizeof(um_nccl_id));
    ck_assert_int_eq(NCCL_UNIQUE_ID_BYTES, UM_NCCL_ID_BYTES);
    ck_assert_int_eq(ncclSuccess, UM_NCCL_SUCCESS);
    ck_assert_int_eq(ncclInt64, UM_NCCL_INT64);
    ck_assert_int_eq(ncclFloat32, UM_NCCL_FLOAT32);
    ck_assert_int_eq(ncclSum, UM_NCCL_SUM);
    ck_assert_int_eq(ncclMax, UM_NCCL_MAX);
#else
    printf("SKIP nccl_abi: no nccl.h to compare core/dist/nccl.h with\n");
#endif
}
END_TEST

START_TEST(library_loads) {
    char why[512];
    um_nccl_state st = um_nccl_load(why, sizeof why);
    if (st == UM_NCCL_ABSENT) {
        printf("SKIP nccl_abi: no NCCL library (%s)\n", why);
        return;
    }
    ck_assert_msg(st == UM_NCCL_LOADED, "NCCL is there but not usable: %s", why);
    ck_assert_msg(strchr(um_nccl_version(), '.') != NULL, "version '%s'", um_nccl_version());
    ck_assert_int_eq(um_nccl_active(), 0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("nccl_abi");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, header_values);
    tcase_add_test(tc, library_loads);
    suite_add_tcase(s, tc);
    return s;
}
