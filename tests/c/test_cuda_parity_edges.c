/* CUDA against CPU where the kernels change strategy or meet unusual values: reductions
 * with inner > 1 and 1024+ outputs (a thread per output) and over whole tensors of 4.2 M+
 * elements (a grid of blocks), softmax over rows longer than a warp, losses with 100
 * classes, bias-gradient and batch-norm sums split over blocks (4096+ elements a channel),
 * int64 strided copies and fills, GEMM with k = 0, NaN and infinities through pooling,
 * losses and PGD's keep-best, constant images in the noise rescale, and the batch norm's
 * running variance at momentum 0.99 (its update compared on its own, so that a missing
 * Bessel correction shows). Tolerance 1e-4 relative (close_rel) unless stated. Without a
 * device: one SKIP line with the reason (tests/c/parity.h). */
#include "parity.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "ood/noise.h"
#include "ood/ood_ops.h"

static void release_all(um_tensor **t, size_t n) {
    for (size_t i = 0; i < n; i++) um_tensor_release(t[i]);
}

/* Every reduction over dim (and the arg-extremes) on both devices. */
static void reductions_over(const char *what, const um_tensor *a, const um_tensor *da, int dim) {
    char label[96];
    um_tensor *r1, *r2;
    for (int op = UM_SUM; op <= UM_MIN; op++) {
        snprintf(label, sizeof label, "%s: reduce %d over %d", what, op, dim);
        ck_ok(um_reduce(&r1, (um_redop)op, a, dim, 0));
        ck_ok(um_reduce(&r2, (um_redop)op, da, dim, 0));
        close_rel(label, r1, r2, op <= UM_MEAN && dim < 0 ? 1e-3 : RTOL);   /* float sums of 4 M values */
        um_tensor_release(r1); um_tensor_release(r2);
    }
    if (dim < 0) return;
    for (int want_max = 0; want_max < 2; want_max++) {
        snprintf(label, sizeof label, "%s: arg-%s over %d", what, want_max ? "max" : "min", dim);
        ck_ok(want_max ? um_argmax(&r1, a, dim, 0) : um_argmin(&r1, a, dim, 0));
        ck_ok(want_max ? um_argmax(&r2, da, dim, 0) : um_argmin(&r2, da, dim, 0));
        close_rel(label, r1, r2, 0);
        um_tensor_release(r1); um_tensor_release(r2);
    }
}

START_TEST(reductions_many_outputs_and_whole_tensors) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 21);
    int64_t s3[3] = {3, 50, 400}, big = 4200007, s2[2] = {2, 3000001};
    um_tensor *a = rnd(3, s3, &g, -2, 2), *da = on(a, be);
    reductions_over("inner 400, 1200 outputs", a, da, 1);   /* a thread per output */
    reductions_over("inner 1, 150 outputs", a, da, 2);
    um_tensor *l = rnd(1, &big, &g, 0, 1), *m = rnd(2, s2, &g, -1, 1);
    um_f32(l)[3000000] = 7.0f;   /* the extreme late in the tensor: in another block's slice */
    um_f32(m)[4000000] = -9.0f;
    um_tensor *dl = on(l, be), *dm = on(m, be);
    reductions_over("whole 4.2 M", l, dl, -1);               /* a grid of blocks */
    reductions_over("two rows of 3 M", m, dm, 1);
    um_f32(l)[4100000] = NAN;   /* max and min propagate a NaN from any slice */
    um_tensor_release(dl);
    dl = on(l, be);
    um_tensor *r1, *r2;
    for (int op = UM_MAX; op <= UM_MIN; op++) {
        ck_ok(um_reduce(&r1, (um_redop)op, l, -1, 0));
        ck_ok(um_reduce(&r2, (um_redop)op, dl, -1, 0));
        ck_assert(isnan(um_f32(r1)[0]));
        close_rel("extreme with a late NaN", r1, r2, 0);
        um_tensor_release(r1); um_tensor_release(r2);
    }
    um_tensor *objs[] = {a, da, l, dl, m, dm};
    release_all(objs, 6);
}
END_TEST

START_TEST(softmax_long_rows_and_losses_with_100_classes) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 22);
    int64_t shapes[][2] = {{3000, 33}, {37, 100}, {5, 1000}};
    for (int i = 0; i < 3; i++) {
        um_tensor *a = rnd(2, shapes[i], &g, -8, 8), *da = on(a, be), *r1, *r2;
        for (int lg = 0; lg < 2; lg++) {
            ck_ok(lg ? um_log_softmax(&r1, a, 1) : um_softmax(&r1, a, 1));
            ck_ok(lg ? um_log_softmax(&r2, da, 1) : um_softmax(&r2, da, 1));
            close_rel("softmax of long rows", r1, r2, RTOL);
            um_tensor_release(r1); um_tensor_release(r2);
        }
        um_tensor_release(a); um_tensor_release(da);
    }
    int64_t s[2] = {64, 100}, n = 64;
    um_tensor *z = rnd(2, s, &g, -6, 6), *p = rnd(2, s, &g, 0, 1), *lab;
    ck_ok(um_tensor_new(&lab, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < n; i++) um_i64(lab)[i] = um_rand_below(&g, 100);
    um_f32(z)[5 * 100 + 70] = um_f32(z)[5 * 100 + 3] = 9.0f;   /* a tie past the first warp's lanes */
    um_tensor *dz = on(z, be), *dp = on(p, be), *dlab = on(lab, be);
    const um_tensor *targets[] = {lab, p, NULL, NULL}, *dtargets[] = {dlab, dp, NULL, NULL};
    const um_loss_kind kinds[] = {UM_LOSS_CROSS_ENTROPY, UM_LOSS_CROSS_ENTROPY, UM_LOSS_MAX_CONF, UM_LOSS_UNIFORM_CONF};
    for (int i = 0; i < 4; i++) {
        um_tensor *l1 = NULL, *l2 = NULL, *g1 = NULL, *g2 = NULL;
        ck_ok(um_loss_forward(kinds[i], z, targets[i], &l1));
        ck_ok(um_loss_forward(kinds[i], dz, dtargets[i], &l2));
        close_rel("loss, 100 classes", l1, l2, RTOL);
        ck_ok(um_loss_backward(kinds[i], z, targets[i], UM_REDUCE_MEAN, 1.0, NULL, &g1));
        ck_ok(um_loss_backward(kinds[i], dz, dtargets[i], UM_REDUCE_MEAN, 1.0, NULL, &g2));
        close_rel("loss gradient, 100 classes", g1, g2, RTOL);
        um_tensor_release(l1); um_tensor_release(l2); um_tensor_release(g1); um_tensor_release(g2);
    }
    um_tensor *objs[] = {z, p, lab, dz, dp, dlab};
    release_all(objs, 6);
}
END_TEST

/* Bias gradients and batch-norm sums over 4096+ elements a channel: split over blocks. */
START_TEST(split_partial_sums) {
    um_conv2d_config c = {.c_in = 2, .c_out = 3, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1};
    int64_t conv_in[4] = {16, 2, 64, 64}, bn_in[4] = {8, 3, 40, 40};
    um_generator g1, g2;
    um_generator_init(&g1, 23);
    um_generator_init(&g2, 23);
    um_module *a, *b;
    ck_ok(um_conv2d_new(&a, &c, &g1));
    ck_ok(um_conv2d_new(&b, &c, &g2));
    pair(a, b, "conv bias over 65536 a channel", 4, conv_in, 600);
    ck_ok(um_batchnorm2d_new(&a, 3, 0.9, 1e-3));
    ck_ok(um_batchnorm2d_new(&b, 3, 0.9, 1e-3));
    pair(a, b, "batch norm over 12800 a channel", 4, bn_in, 601);
}
END_TEST

START_TEST(int64_strided_copies_fills_and_empty_gemm) {
    const um_backend *be = dev();
    int64_t s[2] = {6, 7};
    um_tensor *a, *t, *dt, *c1, *c2, *v1, *v2;
    ck_ok(um_tensor_new(&a, UM_INT64, 2, s, NULL));
    for (int i = 0; i < 42; i++) um_i64(a)[i] = (int64_t)i * 1000003 - (1LL << 40);   /* beyond 32 bits */
    um_tensor *da = on(a, be);
    ck_ok(um_transpose(&t, a, 0, 1));
    ck_ok(um_transpose(&dt, da, 0, 1));
    ck_ok(um_clone(&c1, t));    /* a strided int64 copy */
    ck_ok(um_clone(&c2, dt));
    close_rel("int64 strided copy", c1, c2, 0);
    ck_ok(um_narrow(&v1, t, 0, 2, 3));
    ck_ok(um_narrow(&v2, dt, 0, 2, 3));
    ck_ok(um_fill_(v1, -123456789012.0));   /* a strided int64 fill */
    ck_ok(um_fill_(v2, -123456789012.0));
    close_rel("int64 strided fill", a, da, 0);
    um_tensor *objs[] = {a, da, t, dt, c1, c2, v1, v2};
    release_all(objs, 8);
    /* GEMM with k = 0: the product is zero, beta still scales c */
    um_generator g;
    um_generator_init(&g, 24);
    int64_t sa[2] = {5, 0}, sb[2] = {0, 4}, sc[2] = {5, 4};
    um_tensor *x, *y, *z = rnd(2, sc, &g, -1, 1), *r1, *r2;
    ck_ok(um_tensor_new(&x, UM_FLOAT32, 2, sa, NULL));
    ck_ok(um_tensor_new(&y, UM_FLOAT32, 2, sb, NULL));
    um_tensor *dx = on(x, be), *dy = on(y, be), *dz = on(z, be);
    ck_ok(um_matmul(&r1, x, y));
    ck_ok(um_matmul(&r2, dx, dy));
    close_rel("matmul with k = 0", r1, r2, 0);
    um_tensor_release(r1); um_tensor_release(r2);
    ck_ok(um_addmm(&r1, z, x, y, 0.5, 2.0));
    ck_ok(um_addmm(&r2, dz, dx, dy, 0.5, 2.0));
    close_rel("addmm with k = 0", r1, r2, 0);
    um_tensor *more[] = {x, y, z, dx, dy, dz, r1, r2};
    release_all(more, 8);
}
END_TEST

START_TEST(elementwise_over_4m_elements) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 25);
    int64_t s[2] = {2100, 2100};   /* 4.41 M: past the 16384-block grid of 256 threads */
    um_tensor *a = rnd(2, s, &g, -1, 1), *b = rnd(2, s, &g, 0.5f, 1), *da = on(a, be), *db = on(b, be);
    um_tensor *t1, *t2, *r1, *r2;
    ck_ok(um_transpose(&t1, a, 0, 1));
    ck_ok(um_transpose(&t2, da, 0, 1));
    ck_ok(um_binary(&r1, UM_DIV, t1, b));
    ck_ok(um_binary(&r2, UM_DIV, t2, db));
    close_rel("strided divide, 4.4 M", r1, r2, RTOL);
    um_tensor_release(r1); um_tensor_release(r2);
    ck_ok(um_clone(&r1, t1));
    ck_ok(um_clone(&r2, t2));
    close_rel("strided copy, 4.4 M", r1, r2, 0);
    ck_ok(um_unary_(UM_EXP, r1));
    ck_ok(um_unary_(UM_EXP, r2));
    close_rel("exp, 4.4 M", r1, r2, RTOL);
    um_tensor *objs[] = {a, b, da, db, t1, t2, r1, r2};
    release_all(objs, 8);
}
END_TEST

/* NaN and infinities: pooling windows holding them, losses on such logits, keep-best with
 * NaN objectives (never better: the CPU's obj > best is false for NaN). */
START_TEST(nan_and_infinity) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 26);
    int64_t s[4] = {2, 2, 6, 6};
    um_tensor *x = rnd(4, s, &g, -1, 1);
    um_f32(x)[0] = NAN;
    um_f32(x)[7] = INFINITY;
    um_f32(x)[40] = -INFINITY;
    um_f32(x)[41] = INFINITY;   /* inf and -inf in one window: NaN average */
    um_tensor *dx = on(x, be);
    for (int max = 0; max < 2; max++) {
        um_module *a, *b;
        ck_ok(max ? um_maxpool2d_new(&a, 2, 2, 2, 2, UM_PAD_VALID) : um_avgpool2d_new(&a, 2, 2, 2, 2, UM_PAD_VALID));
        ck_ok(max ? um_maxpool2d_new(&b, 2, 2, 2, 2, UM_PAD_VALID) : um_avgpool2d_new(&b, 2, 2, 2, 2, UM_PAD_VALID));
        ck_ok(um_module_to(b, be));
        um_tensor *y1, *y2, *gy, *dgy, *g1, *g2;
        ck_ok(um_module_forward(a, x, &y1));
        ck_ok(um_module_forward(b, dx, &y2));
        close_rel(max ? "max-pool with NaN and inf" : "avg-pool with NaN and inf", y1, y2, RTOL);
        gy = rnd(y1->ndim, y1->size, &g, -1, 1);
        dgy = on(gy, be);
        ck_ok(um_module_backward_input(a, x, gy, &g1));
        ck_ok(um_module_backward_input(b, dx, dgy, &g2));
        close_rel(max ? "max-pool gradient with NaN and inf" : "avg-pool gradient with NaN and inf", g1, g2, RTOL);
        um_tensor_release(gy); um_tensor_release(dgy);
        um_module_release(a); um_module_release(b);
    }
    int64_t sz[2] = {6, 5}, n = 6;
    um_tensor *z = rnd(2, sz, &g, -2, 2), *lab;
    um_f32(z)[1] = NAN;            /* row 0 */
    um_f32(z)[7] = INFINITY;       /* row 1 */
    um_f32(z)[10] = -INFINITY;     /* row 2 */
    ck_ok(um_tensor_new(&lab, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < n; i++) um_i64(lab)[i] = i % 5;
    um_tensor *dz = on(z, be), *dlab = on(lab, be);
    for (int k = UM_LOSS_CROSS_ENTROPY; k <= UM_LOSS_UNIFORM_CONF; k++) {
        um_tensor *l1 = NULL, *l2 = NULL, *g1 = NULL, *g2 = NULL;
        const um_tensor *t = k == UM_LOSS_CROSS_ENTROPY ? lab : NULL, *dt = k == UM_LOSS_CROSS_ENTROPY ? dlab : NULL;
        ck_ok(um_loss_forward((um_loss_kind)k, z, t, &l1));
        ck_ok(um_loss_forward((um_loss_kind)k, dz, dt, &l2));
        close_rel("loss on NaN and inf logits", l1, l2, RTOL);
        ck_ok(um_loss_backward((um_loss_kind)k, z, t, UM_REDUCE_SUM, 1.0, NULL, &g1));
        ck_ok(um_loss_backward((um_loss_kind)k, dz, dt, UM_REDUCE_SUM, 1.0, NULL, &g2));
        close_rel("loss gradient on NaN and inf logits", g1, g2, RTOL);
        um_tensor_release(l1); um_tensor_release(l2); um_tensor_release(g1); um_tensor_release(g2);
    }
    /* keep-best: objectives NaN, -inf, +inf, equal, better, worse */
    int64_t sx[2] = {6, 4};
    um_tensor *bx = rnd(2, sx, &g, 0, 1), *cx = rnd(2, sx, &g, 0, 1), *bo, *obj;
    ck_ok(um_tensor_new(&bo, UM_FLOAT32, 1, &n, NULL));
    ck_ok(um_tensor_new(&obj, UM_FLOAT32, 1, &n, NULL));
    const float best[6] = {0.5f, NAN, 1.0f, 0.2f, -INFINITY, 0.7f}, now[6] = {NAN, 0.3f, -INFINITY, 0.2f, INFINITY, 0.1f};
    memcpy(um_f32(bo), best, sizeof best);
    memcpy(um_f32(obj), now, sizeof now);
    um_tensor *dbx = on(bx, be), *dcx = on(cx, be), *dbo = on(bo, be), *dobj = on(obj, be);
    ck_ok(UM_OOD_CALL(um_cpu_backend(), keep_best, bx, bo, cx, obj));
    ck_ok(UM_OOD_CALL(be, keep_best, dbx, dbo, dcx, dobj));
    close_rel("keep-best rows with NaN and inf", bx, dbx, 0);
    close_rel("keep-best values with NaN and inf", bo, dbo, 0);
    um_tensor *objs[] = {x, dx, z, lab, dz, dlab, bx, cx, bo, obj, dbx, dcx, dbo, dobj};
    release_all(objs, 14);
}
END_TEST

/* Constant images (max = min) are left as they are by the rescale, on both devices. */
START_TEST(rescale_of_constant_images) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 27);
    int64_t s[4] = {4, 3, 9, 9}, d = 3 * 9 * 9;
    um_tensor *x = rnd(4, s, &g, 0, 1);
    for (int64_t k = 0; k < d; k++) um_f32(x)[k] = 0.3f;           /* image 0 constant */
    for (int64_t k = 0; k < d; k++) um_f32(x)[2 * d + k] = 0.0f;   /* image 2 all zero */
    um_tensor *dx = on(x, be);
    ck_ok(um_noise_rescale_(x));
    ck_ok(um_noise_rescale_(dx));
    close_rel("rescale with constant images", x, dx, RTOL);
    ck_assert(um_f32(x)[5] == 0.3f);
    um_tensor_release(x); um_tensor_release(dx);
}
END_TEST

/* One training-mode forward at momentum 0.99 over 6 values a channel: the update
 * (running - 0.99 old) / 0.01 is the batch's unbiased variance, 6/5 of the biased one, a
 * difference the running value itself hides below 1e-4. */
START_TEST(batchnorm_running_variance_at_momentum_099) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 28);
    int64_t s[4] = {3, 4, 1, 2};
    um_module *a, *b;
    ck_ok(um_batchnorm2d_new(&a, 4, 0.99, 1e-5));
    ck_ok(um_batchnorm2d_new(&b, 4, 0.99, 1e-5));
    ck_ok(um_module_to(b, be));
    um_tensor *x = rnd(4, s, &g, -3, 3), *dx = on(x, be), *y1, *y2, *ba[8], *bb[8];
    ck_ok(um_module_forward(a, x, &y1));
    ck_ok(um_module_forward(b, dx, &y2));
    int na = um_module_tensors(a, UM_BUFFERS, ba, 8), nb = um_module_tensors(b, UM_BUFFERS, bb, 8);
    ck_assert_int_eq(na, nb);
    ck_assert_int_ge(na, 2);
    for (int i = 0; i < na; i++) {
        um_tensor *ha = on(ba[i], NULL), *hb = on(bb[i], NULL);
        for (int64_t k = 0; k < um_numel(ha); k++) {
            /* both start at 0 (mean) or 1 (variance): recover the batch statistic */
            double start = i == 0 ? 0.0 : 1.0, ua = (um_f32(ha)[k] - 0.99 * start) / 0.01,
                   ub = (um_f32(hb)[k] - 0.99 * start) / 0.01;
            ck_assert_msg(fabs(ua - ub) <= 1e-3 * (fabs(ua) + 1e-3), "buffer %d channel %lld: update %.7g, expected %.7g",
                          i, (long long)k, ub, ua);
        }
        um_tensor_release(ha); um_tensor_release(hb);
    }
    um_tensor_release(x); um_tensor_release(dx);
    um_module_release(a); um_module_release(b);
}
END_TEST

static void add_tests(TCase *tc) {
    tcase_add_test(tc, reductions_many_outputs_and_whole_tensors);
    tcase_add_test(tc, softmax_long_rows_and_losses_with_100_classes);
    tcase_add_test(tc, split_partial_sums);
    tcase_add_test(tc, int64_strided_copies_fills_and_empty_gemm);
    tcase_add_test(tc, elementwise_over_4m_elements);
    tcase_add_test(tc, nan_and_infinity);
    tcase_add_test(tc, rescale_of_constant_images);
    tcase_add_test(tc, batchnorm_running_variance_at_momentum_099);
}

Suite *make_suite(void) { return parity_suite("cuda_parity_edges", add_tests); }
