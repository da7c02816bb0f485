/* Philox known answers, stream reproducibility, save/restore, distribution sanity. */
#include "check_main.h"

START_TEST(philox_known_answer) {
    /* Random123's kat_vectors for philox4x32_10: counter 0, key 0 */
    uint32_t w[4];
    um_philox4x32(0, 0, w);
    ck_assert_uint_eq(w[0], 0x6627e8d5u);
    ck_assert_uint_eq(w[1], 0xe169c58du);
    ck_assert_uint_eq(w[2], 0xbc57ac4cu);
    ck_assert_uint_eq(w[3], 0x9b00dbd8u);
}
END_TEST

START_TEST(same_seed_same_stream_and_restore) {
    um_generator g, h;
    um_generator_init(&g, 42);
    um_generator_init(&h, 42);
    float a[100], b[100];
    um_fill_normal(&g, a, 100, 0, 1);
    um_fill_normal(&h, b, 100, 0, 1);
    for (int i = 0; i < 100; i++) ck_assert(a[i] == b[i]);
    um_generator saved = g;
    float x1 = um_rand_uniform(&g), y1 = um_rand_normal(&g);
    g = saved;
    ck_assert(um_rand_uniform(&g) == x1);
    ck_assert(um_rand_normal(&g) == y1);
    um_generator_init(&h, 43);
    ck_assert(um_rand_uniform(&h) != um_rand_uniform(&saved));
}
END_TEST

START_TEST(bulk_fill_positions_are_fixed) {
    /* element i of a fill is word i of the stream: a fill of 10 starts like a fill of 7 */
    um_generator g, h;
    um_generator_init(&g, 7);
    um_generator_init(&h, 7);
    float a[10], b[7];
    um_fill_uniform(&g, a, 10, 0, 1);
    um_fill_uniform(&h, b, 7, 0, 1);
    for (int i = 0; i < 7; i++) ck_assert(a[i] == b[i]);
    ck_assert_uint_eq(g.counter, 3);
    ck_assert_uint_eq(h.counter, 2);
}
END_TEST

START_TEST(distributions) {
    um_generator g;
    um_generator_init(&g, 1);
    enum { N = 200000 };
    static float x[N];
    um_fill_uniform(&g, x, N, -1, 3);
    double s = 0, lo = 1e9, hi = -1e9;
    for (int i = 0; i < N; i++) { s += x[i]; if (x[i] < lo) lo = x[i]; if (x[i] > hi) hi = x[i]; }
    ck_close(s / N, 1.0, 0.02);
    ck_assert(lo >= -1 && hi < 3);
    um_fill_normal(&g, x, N, 2, 3);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += x[i];
    m /= N;
    for (int i = 0; i < N; i++) v += (x[i] - m) * (x[i] - m);
    ck_close(m, 2.0, 0.03);
    ck_close(sqrt(v / N), 3.0, 0.03);
    um_fill_truncated_normal(&g, x, N, 0, 0.5f);
    double mx = 0, var = 0;
    for (int i = 0; i < N; i++) { if (fabs(x[i]) > mx) mx = fabs(x[i]); var += x[i] * x[i]; }
    ck_assert(mx <= 1.0);                       /* 2 sigma */
    ck_close(sqrt(var / N), 0.5 * 0.87962566, 0.005);  /* std of N(0,1) truncated at 2 */
}
END_TEST

START_TEST(permutation_is_a_permutation) {
    um_generator g;
    um_generator_init(&g, 5);
    int64_t p[1000];
    int seen[1000] = {0};
    um_rand_permutation(&g, p, 1000);
    int moved = 0;
    for (int i = 0; i < 1000; i++) { ck_assert(p[i] >= 0 && p[i] < 1000); seen[p[i]]++; moved += p[i] != i; }
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 900);
    for (int i = 0; i < 1000; i++) ck_assert(um_rand_below(&g, 3) < 3);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, philox_known_answer);
    tcase_add_test(tc, same_seed_same_stream_and_restore);
    tcase_add_test(tc, bulk_fill_positions_are_fixed);
    tcase_add_test(tc, distributions);
    tcase_add_test(tc, permutation_is_a_permutation);
    suite_add_tcase(s, tc);
    return s;
}
