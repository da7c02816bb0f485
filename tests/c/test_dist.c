/* core/dist/ as one rank (no launcher): init is idempotent, the collectives keep their
 * arguments' values, and bad arguments are refused with messages. Multi-rank behaviour
 * is tested under mpirun by tests/lua/dist_spec.lua. */
#include "dist/dist.h"
#include "check_main.h"

START_TEST(one_rank_without_launcher) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    ck_fails(um_dist_barrier(), UM_EINVAL);   /* before init */
    ck_ok(um_dist_init());
    ck_ok(um_dist_init());
    ck_assert_int_eq(um_dist_rank(), 0);
    ck_assert_int_eq(um_dist_size(), 1);
    ck_assert_int_eq(um_dist_local_rank(), 0);
    ck_assert_int_eq(um_dist_uses_mpi(), 0);
    ck_ok(um_dist_barrier());
    int64_t size[2] = {2, 3};
    um_tensor *t = NULL, *g = NULL;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 2, size, NULL));
    for (int i = 0; i < 6; i++) um_f32(t)[i] = (float)i;
    ck_ok(um_dist_allreduce(t, UM_DIST_MEAN));
    ck_ok(um_dist_broadcast(t, 0));
    ck_ok(um_dist_allreduce_many(&t, 1, UM_DIST_SUM));
    for (int i = 0; i < 6; i++) ck_assert(um_f32(t)[i] == (float)i);
    ck_ok(um_dist_allgather(&g, t));
    ck_assert_int_eq(g->size[0], 2);
    ck_assert(um_f32(g)[5] == 5.0f && g->storage != t->storage);
    um_tensor_release(g);
    um_tensor_release(t);
}
END_TEST

START_TEST(bad_arguments_are_refused) {
    ck_ok(um_dist_init());
    um_dist_op op;
    ck_fails(um_dist_op_parse("min", &op), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "'min'") != NULL);
    ck_ok(um_dist_op_parse("max", &op));
    ck_assert_int_eq(op, UM_DIST_MAX);
    int64_t size[2] = {2, 3};
    um_tensor *t = NULL, *v = NULL, *i = NULL;
    ck_ok(um_tensor_zeros(&t, UM_FLOAT32, 2, size, NULL));
    ck_ok(um_transpose(&v, t, 0, 1));
    ck_fails(um_dist_allreduce(v, UM_DIST_SUM), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "contiguous") != NULL);
    ck_fails(um_dist_broadcast(t, 1), UM_EINVAL);
    ck_ok(um_tensor_zeros(&i, UM_INT64, 2, size, NULL));
    ck_fails(um_dist_allreduce(i, UM_DIST_MEAN), UM_EINVAL);
    ck_ok(um_dist_allreduce(i, UM_DIST_SUM));
    ck_fails(um_dist_allreduce_many(&i, 1, UM_DIST_SUM), UM_EINVAL);
    um_tensor_release(i);
    um_tensor_release(v);
    um_tensor_release(t);
}
END_TEST

START_TEST(one_gpu_per_local_rank) {
    ck_ok(um_dist_init());
    char chosen[32];
    setenv("CUDA_VISIBLE_DEVICES", "3,5", 1);
    ck_ok(um_dist_pick_local_gpu(chosen, sizeof chosen));
    ck_assert_str_eq(chosen, "3");   /* local rank 0 of the list */
    ck_assert_str_eq(getenv("CUDA_VISIBLE_DEVICES"), "3");
    unsetenv("CUDA_VISIBLE_DEVICES");
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("one rank");
    tcase_add_test(tc, one_rank_without_launcher);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, one_gpu_per_local_rank);
    suite_add_tcase(s, tc);
    return s;
}
