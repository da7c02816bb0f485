/* Tensors: construction, views sharing storage, copies, cat, errors, allocation sweep. */
#include "check_main.h"

static um_tensor *arange(int ndim, const int64_t *size) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, ndim, size, NULL));
    for (int64_t i = 0; i < um_numel(t); i++) um_f32(t)[i] = (float)i;
    return t;
}

START_TEST(create_and_release) {
    int64_t live = um_live_bytes();
    int64_t s[3] = {2, 3, 4};
    um_tensor *t;
    ck_ok(um_tensor_zeros(&t, UM_FLOAT32, 3, s, NULL));
    ck_assert_int_eq(um_numel(t), 24);
    ck_assert(um_is_contiguous(t));
    ck_assert_int_eq(t->stride[0], 12);
    ck_assert_int_eq(t->stride[2], 1);
    for (int i = 0; i < 24; i++) ck_assert(um_f32(t)[i] == 0.0f);
    ck_assert_int_ge(um_live_bytes() - live, 96);
    um_tensor_release(t);
    ck_assert_int_eq(um_live_bytes(), live);
}
END_TEST

START_TEST(views_share_storage) {
    int64_t s[2] = {3, 4};
    um_tensor *t = arange(2, s), *row, *col, *tt, *nar;
    ck_ok(um_select(&row, t, 0, 1));
    ck_assert_int_eq(row->ndim, 1);
    ck_assert(um_f32(row)[0] == 4.0f);
    ck_ok(um_select(&col, t, 1, 2));
    int64_t i1 = 2;
    ck_assert(um_get(col, &i1) == 10.0);
    ck_ok(um_transpose(&tt, t, 0, 1));
    ck_assert(!um_is_contiguous(tt));
    int64_t idx[2] = {3, 1};
    ck_assert(um_get(tt, idx) == 7.0);
    ck_ok(um_narrow(&nar, t, 1, 1, 2));
    ck_ok(um_fill_(nar, -1));
    ck_assert(um_f32(t)[1] == -1.0f && um_f32(t)[2] == -1.0f && um_f32(t)[3] == 3.0f && um_f32(t)[0] == 0.0f);
    ck_assert(um_f32(t)[9] == -1.0f && um_f32(t)[11] == 11.0f);
    um_tensor *c;
    ck_ok(um_contiguous(&c, tt));
    ck_assert(um_is_contiguous(c));
    ck_assert(um_f32(c)[1] == 4.0f);   /* c[0][1] = t[1][0] */
    um_tensor *v, *u, *sq;
    int64_t vs[2] = {-1, 6};
    ck_ok(um_view(&v, t, 2, vs));
    ck_assert_int_eq(v->size[0], 2);
    ck_fails(um_view(&u, tt, 2, vs), UM_EINVAL);
    ck_ok(um_reshape(&u, tt, 2, vs));
    ck_assert(um_f32(u)[1] == 4.0f);
    um_tensor *un;
    ck_ok(um_unsqueeze(&un, t, 1));
    ck_assert_int_eq(un->ndim, 3);
    ck_assert_int_eq(un->size[1], 1);
    ck_ok(um_squeeze(&sq, un, -1));
    ck_assert(um_same_shape(sq, t));
    int perm[2] = {1, 0};
    um_tensor *p;
    ck_ok(um_permute(&p, t, perm));
    ck_assert_int_eq(p->size[0], 4);
    um_tensor *all[] = {row, col, tt, nar, c, v, u, un, sq, p, t};
    for (unsigned i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
}
END_TEST

START_TEST(cat_and_copy) {
    int64_t s1[2] = {2, 3}, s2[2] = {1, 3};
    um_tensor *a = arange(2, s1), *b = arange(2, s2), *r, *r2;
    um_tensor *ts[2] = {a, b};
    ck_ok(um_cat(&r, 2, ts, 0));
    ck_assert_int_eq(r->size[0], 3);
    float expect[9] = {0, 1, 2, 3, 4, 5, 0, 1, 2};
    for (int i = 0; i < 9; i++) ck_assert(um_f32(r)[i] == expect[i]);
    ck_fails(um_cat(&r2, 2, ts, 1), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "cat: tensor 2 has size 1x3") != NULL, "%s", um_last_error());
    um_tensor *cl;
    ck_ok(um_clone(&cl, a));
    um_f32(cl)[0] = 9;
    ck_assert(um_f32(a)[0] == 0.0f);
    ck_fails(um_copy_(a, b), UM_EINVAL);
    um_tensor *l;
    ck_ok(um_to_dtype(&l, a, UM_INT64));
    ck_assert_int_eq(um_i64(l)[5], 5);
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(r); um_tensor_release(cl); um_tensor_release(l);
}
END_TEST

START_TEST(bad_arguments) {
    int64_t live = um_live_bytes();
    int64_t s[2] = {2, -3}, ok[2] = {2, 3};
    um_tensor *t, *v;
    ck_fails(um_tensor_new(&t, UM_FLOAT32, 2, s, NULL), UM_EINVAL);
    ck_fails(um_tensor_new(&t, UM_FLOAT32, 7, ok, NULL), UM_EINVAL);
    t = arange(2, ok);
    ck_fails(um_select(&v, t, 0, 2), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "index 3 out of range for dimension 1 of size 2");
    ck_fails(um_narrow(&v, t, 1, 2, 2), UM_EINVAL);
    ck_fails(um_transpose(&v, t, 0, 2), UM_EINVAL);
    int64_t bad[1] = {5};
    ck_fails(um_view(&v, t, 1, bad), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "has 5 elements, the tensor has 6") != NULL, "%s", um_last_error());
    um_tensor_release(t);
    ck_assert_int_eq(um_live_bytes(), live);
}
END_TEST

START_TEST(tensor_ensure_reuses) {
    int64_t s[2] = {4, 5};
    um_tensor *buf = NULL;
    ck_ok(um_tensor_ensure(&buf, UM_FLOAT32, 2, s, NULL));
    um_tensor *first = buf;
    ck_ok(um_tensor_ensure(&buf, UM_FLOAT32, 2, s, NULL));
    ck_assert_ptr_eq(buf, first);
    s[0] = 3;
    ck_ok(um_tensor_ensure(&buf, UM_FLOAT32, 2, s, NULL));
    ck_assert_int_eq(buf->size[0], 3);
    um_tensor_release(buf);
}
END_TEST

/* Every allocation of a composite operation fails in turn; nothing may leak. */
START_TEST(allocation_failure_sweep) {
    int64_t s[2] = {3, 4}, s3[3] = {2, 3, 4};
    int64_t live = um_live_bytes();
    for (int n = 1; n < 40; n++) {
        um_tensor *a = arange(2, s), *b = arange(3, s3), *r = NULL, *tt = NULL;
        um_alloc_fail_after(n);
        int rc = um_binary(&r, UM_ADD, a, b);
        if (!rc) um_tensor_release(r);
        if (!um_transpose(&tt, a, 0, 1)) {
            if (!um_reduce(&r, UM_SUM, tt, 0, 0)) um_tensor_release(r);
            if (!um_softmax(&r, tt, 1)) um_tensor_release(r);
            if (!um_clone(&r, tt)) um_tensor_release(r);
            if (!um_matmul(&r, a, tt)) um_tensor_release(r);
            um_tensor *both[2] = {a, a};
            if (!um_cat(&r, 2, both, 0)) um_tensor_release(r);
            if (!um_argmax(&r, tt, 1, 0)) um_tensor_release(r);
            um_tensor_release(tt);
        }
        um_alloc_fail_after(0);
        um_tensor_release(a);
        um_tensor_release(b);
        ck_assert_int_eq(um_live_bytes(), live);
    }
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, create_and_release);
    tcase_add_test(tc, views_share_storage);
    tcase_add_test(tc, cat_and_copy);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, tensor_ensure_reuses);
    tcase_add_test(tc, allocation_failure_sweep);
    suite_add_tcase(s, tc);
    return s;
}
