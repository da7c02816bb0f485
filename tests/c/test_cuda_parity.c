/* CUDA against CPU: every tensor op, layer (forward, backward, backward_input), loss,
 * optimiser step, noise generator, a PGD attack, certified bounds and a training step run on both backends
 * from the same random inputs and must agree to a relative error of 1e-4 (float32, no
 * TF32 on the GPU); checkpoints written from either device load on the other. Without a
 * device: one SKIP line with the reason (tests/c/parity.h; under valgrind, UMBRA_MEMCHECK
 * set, CUDA is never loaded). UMBRA_PARITY_BACKEND=cpu runs the suite CPU against CPU, to
 * check the suite itself on machines without a GPU. */
#include <stdio.h>
#include <unistd.h>
#include "ood/ood_ops.h"
#include "parity.h"
#include "io/h5io.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "ood/noise.h"
#include "nn/optim.h"
#include "ood/attack.h"
#include "ood/ibp.h"
#include "ood/pgd.h"

/* ---- tensor ops ------------------------------------------------------------------------ */

START_TEST(elementwise_ops) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 1);
    int64_t sa[3] = {3, 4, 5}, sb[2] = {4, 1}, sc[2] = {5, 4};
    um_tensor *a = rnd(3, sa, &g, 0.1f, 2.0f), *b = rnd(2, sb, &g, 0.1f, 2.0f), *c = rnd(2, sc, &g, -1, 1);
    um_tensor *da = on(a, be), *db = on(b, be), *dc = on(c, be), *ct, *dct, *r1, *r2;
    ck_ok(um_transpose(&ct, c, 0, 1));   /* strided (4, 5) view */
    ck_ok(um_transpose(&dct, dc, 0, 1));
    for (int op = UM_ADD; op <= UM_GE; op++) {
        char what[64];
        snprintf(what, sizeof what, "binary %s", um_binop_name((um_binop)op));
        ck_ok(um_binary(&r1, (um_binop)op, a, b));
        ck_ok(um_binary(&r2, (um_binop)op, da, db));
        close_rel(what, r1, r2, RTOL);
        um_tensor_release(r1); um_tensor_release(r2);
        ck_ok(um_binary(&r1, (um_binop)op, a, ct));
        ck_ok(um_binary(&r2, (um_binop)op, da, dct));
        close_rel(what, r1, r2, RTOL);
        um_tensor_release(r1); um_tensor_release(r2);
        for (int rev = 0; rev < 2; rev++) {
            ck_ok(um_binary_scalar(&r1, (um_binop)op, ct, 0.75, rev));
            ck_ok(um_binary_scalar(&r2, (um_binop)op, dct, 0.75, rev));
            close_rel("binary scalar", r1, r2, RTOL);
            um_tensor_release(r1); um_tensor_release(r2);
        }
    }
    for (int op = UM_NEG; op <= UM_SQUARE; op++) {
        int positive = op == UM_LOG || op == UM_SQRT;
        const um_tensor *src = positive ? a : ct, *dsrc = positive ? da : dct;
        ck_ok(um_unary(&r1, (um_unop)op, src));
        ck_ok(um_unary(&r2, (um_unop)op, dsrc));
        close_rel(um_unop_name((um_unop)op), r1, r2, RTOL);
        um_tensor_release(r1); um_tensor_release(r2);
    }
    ck_ok(um_clamp(&r1, ct, -0.3, 0.4));
    ck_ok(um_clamp(&r2, dct, -0.3, 0.4));
    close_rel("clamp", r1, r2, RTOL);
    /* in place on a strided receiver, axpy, fill, copy, cat, int64 */
    ck_ok(um_axpy_(r1, 0.5, r1));
    ck_ok(um_axpy_(r2, 0.5, r2));
    close_rel("axpy", r1, r2, RTOL);
    ck_ok(um_binary_(UM_MUL, ct, b));
    ck_ok(um_binary_(UM_MUL, dct, db));
    close_rel("in-place strided", c, dc, RTOL);
    ck_ok(um_fill_(ct, -2.5));
    ck_ok(um_fill_(dct, -2.5));
    close_rel("fill", c, dc, RTOL);
    um_tensor *cat1, *cat2, *parts1[2] = {a, a}, *parts2[2] = {da, da};
    ck_ok(um_cat(&cat1, 2, parts1, 1));
    ck_ok(um_cat(&cat2, 2, parts2, 1));
    close_rel("cat", cat1, cat2, RTOL);
    um_tensor *idx, *didx, *sel1, *sel2;
    int64_t ni = 6;
    ck_ok(um_tensor_new(&idx, UM_INT64, 1, &ni, NULL));
    for (int i = 0; i < 6; i++) um_i64(idx)[i] = 7 * i - 3;
    didx = on(idx, be);
    ck_ok(um_narrow(&sel1, idx, 0, 1, 4));
    ck_ok(um_narrow(&sel2, didx, 0, 1, 4));
    um_tensor *cl1, *cl2;
    ck_ok(um_clone(&cl1, sel1));
    ck_ok(um_clone(&cl2, sel2));
    close_rel("int64 copy", cl1, cl2, 0);
    um_tensor *objs[] = {a, b, c, da, db, dc, ct, dct, r1, r2, cat1, cat2, idx, didx, sel1, sel2, cl1, cl2};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) um_tensor_release(objs[i]);
}
END_TEST

START_TEST(reductions_and_softmax) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 2);
    int64_t s[3] = {5, 37, 6}, big = 100003;
    um_tensor *a = rnd(3, s, &g, -3, 3), *da = on(a, be), *r1, *r2;
    for (int op = UM_SUM; op <= UM_MIN; op++)
        for (int dim = -1; dim < 3; dim++) {
            ck_ok(um_reduce(&r1, (um_redop)op, a, dim, dim == 1));
            ck_ok(um_reduce(&r2, (um_redop)op, da, dim, dim == 1));
            close_rel("reduce", r1, r2, RTOL);
            um_tensor_release(r1); um_tensor_release(r2);
        }
    for (int dim = -1; dim < 3; dim++) {
        ck_ok(um_argmax(&r1, a, dim, 0));
        ck_ok(um_argmax(&r2, da, dim, 0));
        close_rel("argmax", r1, r2, 0);
        um_tensor_release(r1); um_tensor_release(r2);
        ck_ok(um_argmin(&r1, a, dim, 1));
        ck_ok(um_argmin(&r2, da, dim, 1));
        close_rel("argmin", r1, r2, 0);
        um_tensor_release(r1); um_tensor_release(r2);
    }
    for (int dim = 0; dim < 3; dim++)
        for (int lg = 0; lg < 2; lg++) {
            ck_ok(lg ? um_log_softmax(&r1, a, dim) : um_softmax(&r1, a, dim));
            ck_ok(lg ? um_log_softmax(&r2, da, dim) : um_softmax(&r2, da, dim));
            close_rel("softmax", r1, r2, RTOL);
            um_tensor_release(r1); um_tensor_release(r2);
        }
    int64_t se[3] = {3, 0, 2};   /* reductions over an empty dimension: sum 0, mean NaN */
    um_tensor *e, *de;
    ck_ok(um_tensor_new(&e, UM_FLOAT32, 3, se, NULL));
    de = on(e, be);
    for (int op = UM_SUM; op <= UM_MEAN; op++) {
        ck_ok(um_reduce(&r1, (um_redop)op, e, 1, 0));
        ck_ok(um_reduce(&r2, (um_redop)op, de, 1, 0));
        close_rel("reduce over nothing", r1, r2, RTOL);
        um_tensor_release(r1); um_tensor_release(r2);
    }
    um_tensor_release(e); um_tensor_release(de);
    /* one long row (block reductions) with ties and a NaN */
    um_tensor *l = rnd(1, &big, &g, 0, 1), *dl;
    um_f32(l)[17] = 5.0f;
    um_f32(l)[90001] = 5.0f;
    dl = on(l, be);
    ck_ok(um_argmax(&r1, l, 0, 0));
    ck_ok(um_argmax(&r2, dl, 0, 0));
    close_rel("argmax long", r1, r2, 0);
    um_tensor_release(r1); um_tensor_release(r2);
    ck_ok(um_reduce(&r1, UM_SUM, l, 0, 0));
    ck_ok(um_reduce(&r2, UM_SUM, dl, 0, 0));
    close_rel("sum long", r1, r2, RTOL);
    um_tensor_release(r1); um_tensor_release(r2);
    um_f32(l)[500] = NAN;
    um_tensor_release(dl);
    dl = on(l, be);
    ck_ok(um_reduce(&r2, UM_MAX, dl, 0, 0));
    ck_ok(um_reduce(&r1, UM_MAX, l, 0, 0));
    ck_assert(isnan(um_f32(r1)[0]));
    close_rel("max with NaN", r1, r2, RTOL);
    um_tensor_release(r1); um_tensor_release(r2);
    ck_ok(um_argmax(&r1, l, 0, 0));
    ck_ok(um_argmax(&r2, dl, 0, 0));
    close_rel("argmax with NaN", r1, r2, 0);
    double sum_dev, sum_cpu;
    ck_ok(um_sum_all(da, &sum_dev));
    ck_ok(um_sum_all(a, &sum_cpu));
    ck_close(sum_dev, sum_cpu, 1e-3);
    um_tensor_release(r1); um_tensor_release(r2);
    um_tensor_release(a); um_tensor_release(da); um_tensor_release(l); um_tensor_release(dl);
}
END_TEST

START_TEST(matrix_products) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 3);
    int64_t sa[2] = {33, 70}, sb[2] = {70, 19}, sc[2] = {33, 19}, sbt[2] = {19, 70};
    um_tensor *a = rnd(2, sa, &g, -1, 1), *b = rnd(2, sb, &g, -1, 1), *c = rnd(2, sc, &g, -1, 1);
    um_tensor *bt0 = rnd(2, sbt, &g, -1, 1), *bt;
    ck_ok(um_transpose(&bt, bt0, 0, 1));
    um_tensor *da = on(a, be), *db = on(b, be), *dc = on(c, be), *dbt0 = on(bt0, be), *dbt, *r1, *r2;
    ck_ok(um_transpose(&dbt, dbt0, 0, 1));
    ck_ok(um_matmul(&r1, a, b));
    ck_ok(um_matmul(&r2, da, db));
    close_rel("matmul", r1, r2, RTOL);
    um_tensor_release(r1); um_tensor_release(r2);
    ck_ok(um_addmm(&r1, c, a, bt, 0.5, -2.0));
    ck_ok(um_addmm(&r2, dc, da, dbt, 0.5, -2.0));
    close_rel("addmm", r1, r2, RTOL);
    um_tensor *objs[] = {a, b, c, bt0, bt, da, db, dc, dbt0, dbt, r1, r2};
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) um_tensor_release(objs[i]);
}
END_TEST

/* ---- layers ------------------------------------------------------------------------------ */

START_TEST(conv2d_geometries) {
    struct { um_conv2d_config c; int64_t in[4]; const char *what; } cases[] = {
        {{.c_in = 3, .c_out = 5, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1}, {4, 3, 9, 8}, "3x3 same"},
        {{.c_in = 3, .c_out = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME}, {3, 3, 8, 8}, "3x3 same stride 2 (asymmetric)"},
        {{.c_in = 2, .c_out = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME, .bias = 1}, {2, 2, 7, 9}, "3x3 same stride 2 odd"},
        {{.c_in = 1, .c_out = 6, .kh = 5, .kw = 5, .padding = UM_PAD_SAME, .bias = 1}, {3, 1, 12, 12}, "5x5 same (LeNet)"},
        {{.c_in = 2, .c_out = 3, .kh = 4, .kw = 2, .padding = UM_PAD_SAME}, {2, 2, 6, 7}, "4x2 same stride 1 (asymmetric)"},
        {{.c_in = 3, .c_out = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 3, .padding = UM_PAD_VALID, .bias = 1}, {2, 3, 10, 11}, "valid stride 2x3"},
        {{.c_in = 2, .c_out = 3, .kh = 3, .kw = 3, .padding = UM_PAD_EXPLICIT, .pad = {2, 0, 1, 3}}, {2, 2, 5, 6}, "explicit 2,0,1,3"},
        {{.c_in = 4, .c_out = 8, .kh = 1, .kw = 1, .bias = 1}, {2, 4, 5, 5}, "1x1"},
        {{.c_in = 16, .c_out = 32, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME}, {8, 16, 16, 16}, "ResNet stage change"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        um_generator g1, g2;
        um_generator_init(&g1, 40 + i);
        um_generator_init(&g2, 40 + i);
        um_module *a, *b;
        ck_ok(um_conv2d_new(&a, &cases[i].c, &g1));
        ck_ok(um_conv2d_new(&b, &cases[i].c, &g2));
        pair(a, b, cases[i].what, 4, cases[i].in, 100 + i);
    }
}
END_TEST

START_TEST(pooling_geometries) {
    struct { int max; int64_t k, s; um_padding p; int64_t in[4]; } cases[] = {
        {1, 2, 2, UM_PAD_SAME, {2, 3, 7, 7}}, {1, 3, 2, UM_PAD_SAME, {2, 2, 8, 9}}, {1, 3, 1, UM_PAD_SAME, {1, 2, 5, 6}},
        {0, 2, 2, UM_PAD_VALID, {2, 3, 8, 8}}, {0, 3, 2, UM_PAD_SAME, {2, 2, 7, 8}}, {0, 2, 2, UM_PAD_SAME, {2, 1, 5, 5}},
        {1, 2, 2, UM_PAD_VALID, {2, 2, 5, 7}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        um_module *a, *b;
        if (cases[i].max) {
            ck_ok(um_maxpool2d_new(&a, cases[i].k, cases[i].k, cases[i].s, cases[i].s, cases[i].p));
            ck_ok(um_maxpool2d_new(&b, cases[i].k, cases[i].k, cases[i].s, cases[i].s, cases[i].p));
        } else {
            ck_ok(um_avgpool2d_new(&a, cases[i].k, cases[i].k, cases[i].s, cases[i].s, cases[i].p));
            ck_ok(um_avgpool2d_new(&b, cases[i].k, cases[i].k, cases[i].s, cases[i].s, cases[i].p));
        }
        pair(a, b, cases[i].max ? "max-pool" : "avg-pool", 4, cases[i].in, 200 + i);
    }
    /* max-pool ties: equal values, the first one takes the gradient */
    um_module *a, *b;
    ck_ok(um_maxpool2d_new(&a, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_maxpool2d_new(&b, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_module_to(b, dev()));
    int64_t in[4] = {1, 1, 4, 4};
    um_tensor *x, *dx, *gy, *dgy, *y1, *y2, *g1, *g2;
    ck_ok(um_tensor_zeros(&x, UM_FLOAT32, 4, in, NULL));
    dx = on(x, dev());
    ck_ok(um_module_forward(a, x, &y1));
    ck_ok(um_module_forward(b, dx, &y2));
    ck_ok(um_tensor_new(&gy, UM_FLOAT32, 4, y1->size, NULL));
    ck_ok(um_fill_(gy, 1.0));
    dgy = on(gy, dev());
    ck_ok(um_module_backward_input(a, x, gy, &g1));
    ck_ok(um_module_backward_input(b, dx, dgy, &g2));
    close_rel("max-pool ties", g1, g2, 0);
    um_tensor *objs[] = {x, dx, gy, dgy};
    for (size_t i = 0; i < 4; i++) um_tensor_release(objs[i]);
    um_module_release(a);
    um_module_release(b);
}
END_TEST

START_TEST(batchnorm_linear_and_simple_layers) {
    um_module *a, *b;
    int64_t in4[4] = {6, 5, 7, 3}, in3[3] = {4, 3, 50}, in2[2] = {9, 12};
    ck_ok(um_batchnorm2d_new(&a, 5, 0.9, 1e-3));
    ck_ok(um_batchnorm2d_new(&b, 5, 0.9, 1e-3));
    pair(a, b, "batch norm", 4, in4, 300);
    ck_ok(um_batchnorm2d_new(&a, 3, 0.99, 1.001e-5));
    ck_ok(um_batchnorm2d_new(&b, 3, 0.99, 1.001e-5));
    pair(a, b, "batch norm 3-d", 3, in3, 301);
    um_generator g1, g2;
    um_generator_init(&g1, 5);
    um_generator_init(&g2, 5);
    ck_ok(um_linear_new(&a, 12, 7, 1, &g1));
    ck_ok(um_linear_new(&b, 12, 7, 1, &g2));
    pair(a, b, "linear", 2, in2, 302);
    ck_ok(um_relu_new(&a)); ck_ok(um_relu_new(&b));
    pair(a, b, "relu", 4, in4, 303);
    ck_ok(um_flatten_new(&a)); ck_ok(um_flatten_new(&b));
    pair(a, b, "flatten", 4, in4, 304);
    ck_ok(um_global_avgpool_new(&a)); ck_ok(um_global_avgpool_new(&b));
    pair(a, b, "global avg-pool", 4, in4, 305);
    ck_ok(um_channel_pad_new(&a, 2, 3)); ck_ok(um_channel_pad_new(&b, 2, 3));
    pair(a, b, "channel pad", 4, in4, 306);
    ck_ok(um_identity_new(&a)); ck_ok(um_identity_new(&b));
    pair(a, b, "identity", 4, in4, 307);
}
END_TEST

/* A pre-activation residual net with every layer type: conv (same, stride 2), batch norm,
 * ReLU, residual with avg-pool + channel-pad shortcut, global pool, linear. */
static um_module *small_resnet(uint64_t seed, int classes) {
    um_generator g;
    um_generator_init(&g, seed);
    um_module *net, *conv0, *pre, *bn1, *relu1, *main, *conv1, *bn2, *relu2, *conv2, *sc, *pool, *pad, *res;
    um_module *bn3, *relu3, *gpool, *fc;
    um_conv2d_config c0 = {.c_in = 3, .c_out = 4, .kh = 3, .kw = 3, .padding = UM_PAD_SAME};
    um_conv2d_config c1 = {.c_in = 4, .c_out = 8, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME};
    um_conv2d_config c2 = {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1};
    ck_ok(um_sequential_new(&net));
    ck_ok(um_conv2d_new(&conv0, &c0, &g));
    ck_ok(um_sequential_new(&pre));
    ck_ok(um_batchnorm2d_new(&bn1, 4, 0.9, 1e-5));
    ck_ok(um_relu_new(&relu1));
    ck_ok(um_sequential_add(pre, "bn1", bn1));
    ck_ok(um_sequential_add(pre, "relu1", relu1));
    ck_ok(um_sequential_new(&main));
    ck_ok(um_conv2d_new(&conv1, &c1, &g));
    ck_ok(um_batchnorm2d_new(&bn2, 8, 0.9, 1e-5));
    ck_ok(um_relu_new(&relu2));
    ck_ok(um_conv2d_new(&conv2, &c2, &g));
    ck_ok(um_sequential_add(main, "conv1", conv1));
    ck_ok(um_sequential_add(main, "bn2", bn2));
    ck_ok(um_sequential_add(main, "relu2", relu2));
    ck_ok(um_sequential_add(main, "conv2", conv2));
    ck_ok(um_sequential_new(&sc));
    ck_ok(um_avgpool2d_new(&pool, 2, 2, 2, 2, UM_PAD_VALID));
    ck_ok(um_channel_pad_new(&pad, 2, 2));
    ck_ok(um_sequential_add(sc, "pool", pool));
    ck_ok(um_sequential_add(sc, "pad", pad));
    ck_ok(um_residual_new(&res, pre, main, sc));
    ck_ok(um_batchnorm2d_new(&bn3, 8, 0.9, 1e-5));
    ck_ok(um_relu_new(&relu3));
    ck_ok(um_global_avgpool_new(&gpool));
    ck_ok(um_linear_new(&fc, 8, classes, 1, &g));
    um_module *parts[] = {conv0, res, bn3, relu3, gpool, fc};
    const char *names[] = {"conv0", "block", "bn", "relu", "pool", "fc"};
    for (int i = 0; i < 6; i++) ck_ok(um_sequential_add(net, names[i], parts[i]));
    um_module *all[] = {conv0, pre, bn1, relu1, main, conv1, bn2, relu2, conv2, sc, pool, pad, res, bn3, relu3, gpool, fc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_module_release(all[i]);
    return net;
}

START_TEST(module_tree) {
    int64_t in[4] = {4, 3, 8, 8};
    pair(small_resnet(7, 5), small_resnet(7, 5), "residual net", 4, in, 400);
}
END_TEST

/* ---- losses, optimisers ------------------------------------------------------------------- */

START_TEST(losses) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 8);
    int64_t s[2] = {37, 10}, n = 37;
    um_tensor *z = rnd(2, s, &g, -4, 4), *p = rnd(2, s, &g, 0, 1), *w = rnd(1, &n, &g, 0, 2), *lab;
    ck_ok(um_tensor_new(&lab, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < n; i++) um_i64(lab)[i] = um_rand_below(&g, 10);
    um_f32(z)[13] = um_f32(z)[14];   /* a tie for max_conf's arg-max */
    um_tensor *dz = on(z, be), *dp = on(p, be), *dw = on(w, be), *dlab = on(lab, be);
    struct { um_loss_kind k; const um_tensor *t, *dt; const char *what; } cases[] = {
        {UM_LOSS_CROSS_ENTROPY, lab, dlab, "cross-entropy (labels)"},
        {UM_LOSS_CROSS_ENTROPY, p, dp, "cross-entropy (probabilities)"},
        {UM_LOSS_MAX_CONF, NULL, NULL, "max_conf"},
        {UM_LOSS_UNIFORM_CONF, NULL, NULL, "uniform_conf"},
    };
    for (size_t i = 0; i < 4; i++) {
        um_tensor *l1 = NULL, *l2 = NULL, *g1 = NULL, *g2 = NULL;
        ck_ok(um_loss_forward(cases[i].k, z, cases[i].t, &l1));
        ck_ok(um_loss_forward(cases[i].k, dz, cases[i].dt, &l2));
        close_rel(cases[i].what, l1, l2, RTOL);
        double v1, v2;
        ck_ok(um_loss_value(cases[i].k, z, cases[i].t, UM_REDUCE_MEAN, &v1, NULL));
        ck_ok(um_loss_value(cases[i].k, dz, cases[i].dt, UM_REDUCE_MEAN, &v2, NULL));
        ck_assert_msg(fabs(v1 - v2) <= RTOL * fabs(v1) + 1e-7, "%s value %.9g vs %.9g", cases[i].what, v2, v1);
        ck_ok(um_loss_backward(cases[i].k, z, cases[i].t, UM_REDUCE_MEAN, 1.5, w, &g1));
        ck_ok(um_loss_backward(cases[i].k, dz, cases[i].dt, UM_REDUCE_MEAN, 1.5, dw, &g2));
        close_rel(cases[i].what, g1, g2, RTOL);
        um_tensor_release(l1); um_tensor_release(l2); um_tensor_release(g1); um_tensor_release(g2);
    }
    um_tensor *objs[] = {z, p, w, lab, dz, dp, dw, dlab};
    for (size_t i = 0; i < 8; i++) um_tensor_release(objs[i]);
}
END_TEST

START_TEST(optimisers) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 9);
    int64_t s[2] = {300, 70};
    for (int kind = 0; kind < 3; kind++) {
        um_tensor *w = rnd(2, s, &g, -1, 1), *gr = rnd(2, s, &g, -1, 1), *dw = on(w, be), *dg = on(gr, be);
        um_optimizer *o1, *o2;
        if (kind == 2) {
            ck_ok(um_adam_new(&o1, 1, &w, &gr, 1e-2, 0.9, 0.999, 1e-8));
            ck_ok(um_adam_new(&o2, 1, &dw, &dg, 1e-2, 0.9, 0.999, 1e-8));
        } else {
            ck_ok(um_sgd_new(&o1, 1, &w, &gr, 0.1, 0.9, kind));
            ck_ok(um_sgd_new(&o2, 1, &dw, &dg, 0.1, 0.9, kind));
        }
        for (int step = 0; step < 3; step++) {
            double p1, p2;
            ck_ok(um_weight_decay(&w, &gr, 1, 5e-4, &p1));
            ck_ok(um_weight_decay(&dw, &dg, 1, 5e-4, &p2));
            ck_assert_msg(fabs(p1 - p2) <= RTOL * fabs(p1), "weight decay penalty %.9g vs %.9g", p2, p1);
            close_rel("weight decay gradient", gr, dg, RTOL);
            ck_ok(um_optim_step(o1));
            ck_ok(um_optim_step(o2));
            close_rel(kind == 2 ? "adam" : "sgd", w, dw, RTOL);
            close_rel("optimiser slot", o1->slots[0][0], o2->slots[0][0], RTOL);
        }
        um_optim_free(o1); um_optim_free(o2);
        um_tensor_release(w); um_tensor_release(gr); um_tensor_release(dw); um_tensor_release(dg);
    }
}
END_TEST

/* ---- noise, PGD, a training step, checkpoints ------------------------------------------------- */

START_TEST(noise_generators) {
    const um_backend *be = dev();
    um_generator g;
    um_generator_init(&g, 10);
    int64_t s[4] = {9, 3, 17, 15};
    um_tensor *clean = rnd(4, s, &g, 0, 1), *dclean = on(clean, be), *o1, *o2;
    ck_ok(um_tensor_new(&o1, UM_FLOAT32, 4, s, NULL));
    ck_ok(um_tensor_new(&o2, UM_FLOAT32, 4, s, be));
    um_generator g1, g2;
    um_generator_init(&g1, 77);
    um_generator_init(&g2, 77);
    double s1, s2;
    ck_ok(um_noise_authors(o1, clean, 0.5, 1.0, 2.5, &g1, &s1));
    ck_ok(um_noise_authors(o2, dclean, 0.5, 1.0, 2.5, &g2, &s2));
    ck_assert(s1 == s2);
    close_rel("authors' noise", o1, o2, RTOL);
    ck_ok(um_noise_permute_pixels(clean, clean, &g1));   /* in place */
    ck_ok(um_noise_permute_pixels(dclean, dclean, &g2));
    close_rel("permutation in place", clean, dclean, 0);
    ck_ok(um_noise_lowpass(o1, clean, 1.7f));
    ck_ok(um_noise_lowpass(o2, dclean, 1.7f));
    close_rel("low-pass", o1, o2, RTOL);
    ck_ok(um_noise_rescale_(o1));
    ck_ok(um_noise_rescale_(o2));
    close_rel("rescale", o1, o2, RTOL);
    ck_ok(um_noise_uniform_(o1, &g1));
    ck_ok(um_noise_uniform_(o2, &g2));
    close_rel("uniform", o1, o2, 0);
    um_tensor_release(clean); um_tensor_release(dclean); um_tensor_release(o1); um_tensor_release(o2);
}
END_TEST

/* The iterates follow sign(gradient): a gradient component within rounding of zero may
 * take the other sign on the other device, so at most 1% of the coordinates may differ
 * (each by at most 2 eps). Objective values agree to RTOL when the iterates do, else to
 * 1e-2 (the paths have parted). */
START_TEST(pgd_attacks) {
    const um_backend *be = dev();
    um_module *a = small_resnet(11, 4), *b = small_resnet(11, 4);
    ck_ok(um_module_to(b, be));
    um_generator g;
    um_generator_init(&g, 12);
    int64_t s[4] = {6, 3, 8, 8}, n = 6;
    um_tensor *z = rnd(4, s, &g, 0, 1), *dz = on(z, be), *lab, *dlab;
    ck_ok(um_tensor_new(&lab, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < n; i++) um_i64(lab)[i] = i % 4;
    dlab = on(lab, be);
    um_pgd_config cfgs[] = {
        {UM_LOSS_MAX_CONF, 0.3, 0.05, 8, 0, 1, NULL, NULL},
        {UM_LOSS_UNIFORM_CONF, 0.3, 0.05, 5, 0, 0, NULL, NULL},
        {UM_LOSS_CROSS_ENTROPY, 0.1, 0.02, 5, 0, 1, NULL, NULL},
        {UM_LOSS_MAX_CONF, 2.0, 0.5, 6, 2, 1, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        um_generator g1, g2;
        um_generator_init(&g1, 500 + i);
        um_generator_init(&g2, 500 + i);
        um_tensor *x1, *x2, *v1, *v2;
        ck_ok(um_pgd(a, z, lab, &cfgs[i], &g1, &x1, &v1));
        ck_ok(um_pgd(b, dz, dlab, &cfgs[i], &g2, &x2, &v2));
        um_tensor *hx = on(x2, NULL);
        int64_t total = um_numel(x1), off = 0;
        for (int64_t k = 0; k < total; k++) {
            double d = fabs(um_f32(x1)[k] - um_f32(hx)[k]);
            ck_assert_msg(d <= 2 * cfgs[i].eps + 1e-6, "pgd iterate %lld differs by %g", (long long)k, d);
            off += d > 1e-5;
        }
        ck_assert_msg(off * 100 <= total, "pgd: %lld of %lld coordinates differ", (long long)off, (long long)total);
        close_rel("pgd objective", v1, v2, off ? 1e-2 : RTOL);
        um_tensor_release(x1); um_tensor_release(x2); um_tensor_release(v1); um_tensor_release(v2);
        um_tensor_release(hx);
    }
    close_trees("pgd leaves buffers", a, b, UM_BUFFERS, RTOL);
    um_tensor_release(z); um_tensor_release(dz); um_tensor_release(lab); um_tensor_release(dlab);
    um_module_release(a); um_module_release(b);
}
END_TEST

/* APGD (l-inf and l2) and Monotone PGD with the escape on: the same draws on both backends;
 * sign steps can part where a gradient entry is near zero, so the values are compared
 * loosely and the points must stay in the ball. */
START_TEST(attacks_with_state) {
    const um_backend *be = dev();
    um_module *a = small_resnet(31, 4), *b = small_resnet(31, 4);
    ck_ok(um_module_to(b, be));
    um_generator g;
    um_generator_init(&g, 32);
    int64_t s[4] = {4, 3, 8, 8};
    um_tensor *z = rnd(4, s, &g, 0, 1), *dz = on(z, be);
    for (int k = 0; k < 3; k++) {
        um_generator g1, g2;
        um_generator_init(&g1, 600 + k);
        um_generator_init(&g2, 600 + k);
        um_tensor *x1, *x2, *v1, *v2;
        if (k < 2) {
            um_apgd_config c = {UM_LOSS_MAX_CONF, k ? 1.0 : 0.1, k ? 2 : 0, 12, 2, 0.75, 0.75, 0, NULL, NULL};
            ck_ok(um_apgd(a, z, NULL, &c, &g1, &x1, &v1, NULL));
            ck_ok(um_apgd(b, dz, NULL, &c, &g2, &x2, &v2, NULL));
        } else {
            um_mpgd_config c = {UM_LOSS_MAX_CONF, 0.1, 0, 12, 0.1, 0.9, UM_START_CONTRAST, 1e-4, 4, NULL, NULL};
            ck_ok(um_mpgd(a, z, NULL, &c, &g1, &x1, &v1, NULL));
            ck_ok(um_mpgd(b, dz, NULL, &c, &g2, &x2, &v2, NULL));
        }
        close_rel("attack values", v1, v2, 1e-2);
        um_tensor *hx = on(x2, NULL);
        for (int64_t i = 0; i < um_numel(hx); i++) ck_assert(um_f32(hx)[i] >= 0 && um_f32(hx)[i] <= 1);
        um_tensor_release(x1); um_tensor_release(x2); um_tensor_release(v1); um_tensor_release(v2);
        um_tensor_release(hx);
    }
    um_tensor_release(z); um_tensor_release(dz);
    um_module_release(a); um_module_release(b);
}
END_TEST

/* Interval bounds (the box, every layer's rule, elision, the confidence bound) on the
 * residual net in evaluation mode, after one training forward moved the BN statistics. */
START_TEST(certified_bounds) {
    const um_backend *be = dev();
    um_module *a = small_resnet(21, 5), *b = small_resnet(21, 5);
    um_generator g;
    um_generator_init(&g, 22);
    int64_t s[4] = {5, 3, 8, 8};
    um_tensor *z = rnd(4, s, &g, 0, 1), *dz = on(z, be), *y;
    ck_ok(um_module_forward(a, z, &y));
    ck_ok(um_module_forward(b, z, &y));
    ck_ok(um_module_to(b, be));
    for (int e = 0; e < 3; e++) {
        double eps = (double[]){0, 0.01, 0.1}[e];
        um_tensor *c1, *c2, *u1, *u2;
        ck_ok(um_certify_confidence(a, z, eps, &c1, &u1));
        ck_ok(um_certify_confidence(b, dz, eps, &c2, &u2));
        close_rel("certified confidence", c1, c2, RTOL);
        close_rel("certified logit differences", u1, u2, RTOL);
        um_tensor_release(c1); um_tensor_release(c2); um_tensor_release(u1); um_tensor_release(u2);
    }
    um_tensor_release(z); um_tensor_release(dz);
    um_module_release(a); um_module_release(b);
}
END_TEST

/* Three SGD steps of the residual net with cross-entropy and weight decay. */
static void train_steps(um_module *m, const um_tensor *x, const um_tensor *y, int steps) {
    um_tensor *params[64], *grads[64];
    int np = um_module_tensors(m, UM_PARAMS, params, 64);
    um_module_tensors(m, UM_GRADS, grads, 64);
    um_optimizer *o;
    ck_ok(um_sgd_new(&o, np, params, grads, 0.05, 0.9, 0));
    for (int s = 0; s < steps; s++) {
        um_tensor *logits, *gl = NULL;
        double penalty;
        ck_ok(um_module_zero_grad(m));
        ck_ok(um_module_forward(m, (um_tensor *)x, &logits));
        ck_ok(um_loss_backward(UM_LOSS_CROSS_ENTROPY, logits, y, UM_REDUCE_MEAN, 1.0, NULL, &gl));
        ck_ok(um_module_backward(m, (um_tensor *)x, gl, NULL));
        ck_ok(um_weight_decay(params, grads, np, 5e-4, &penalty));
        ck_ok(um_optim_step(o));
        um_tensor_release(gl);
    }
    um_optim_free(o);
}

START_TEST(training_step) {
    const um_backend *be = dev();
    um_module *a = small_resnet(13, 5), *b = small_resnet(13, 5);
    ck_ok(um_module_to(b, be));
    um_generator g;
    um_generator_init(&g, 14);
    int64_t s[4] = {8, 3, 8, 8}, n = 8;
    um_tensor *x = rnd(4, s, &g, 0, 1), *dx = on(x, be), *y, *dy;
    ck_ok(um_tensor_new(&y, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < n; i++) um_i64(y)[i] = i % 5;
    dy = on(y, be);
    train_steps(a, x, y, 3);
    train_steps(b, dx, dy, 3);
    close_trees("trained parameter", a, b, UM_PARAMS, 2 * RTOL);
    close_trees("trained running statistic", a, b, UM_BUFFERS, 2 * RTOL);
    um_tensor_release(x); um_tensor_release(dx); um_tensor_release(y); um_tensor_release(dy);
    um_module_release(a); um_module_release(b);
}
END_TEST

typedef struct { um_h5_entry e[64]; char names[64][160]; int n; } entry_list;

static int add_entry(const char *path, um_tensor *t, void *ud) {
    entry_list *l = ud;
    if (l->n >= 64) return 1;
    snprintf(l->names[l->n], sizeof l->names[l->n], "model/%s", path);
    l->e[l->n].path = l->names[l->n];
    l->e[l->n].tensor = t;
    l->n++;
    return 0;
}

static void save_load(um_module *from, um_module *to, const char *file) {
    entry_list src = {.n = 0}, dst = {.n = 0};
    ck_ok(um_module_visit(from, UM_PARAMS, add_entry, &src));
    ck_ok(um_module_visit(to, UM_PARAMS, add_entry, &dst));
    ck_ok(um_h5_save(file, src.n, src.e, 0, NULL));
    ck_ok(um_h5_load(file, dst.n, dst.e));
    close_trees("checkpoint", from, to, UM_PARAMS, 0);
    unlink(file);
}

START_TEST(checkpoints_cross_devices) {
    const um_backend *be = dev();
    char f1[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(f1, sizeof f1, "%s/um_parity_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(f1);
    ck_assert_int_ge(fd, 0);
    close(fd);
    um_module *gpu_net = small_resnet(15, 3), *cpu_net = small_resnet(16, 3);
    ck_ok(um_module_to(gpu_net, be));
    save_load(gpu_net, cpu_net, f1);     /* GPU -> file -> CPU */
    um_module *gpu2 = small_resnet(17, 3), *cpu2 = small_resnet(18, 3);
    ck_ok(um_module_to(gpu2, be));
    save_load(cpu2, gpu2, f1);           /* CPU -> file -> GPU */
    um_module_release(gpu_net); um_module_release(cpu_net); um_module_release(gpu2); um_module_release(cpu2);
}
END_TEST

START_TEST(device_errors_are_clear) {
    const um_backend *be = dev();
    int64_t s[2] = {2, 3};
    um_tensor *a, *b, *r = NULL;
    ck_ok(um_tensor_zeros(&a, UM_FLOAT32, 2, s, NULL));
    ck_ok(um_tensor_zeros(&b, UM_FLOAT32, 2, s, be));
    if (be != um_cpu_backend()) {
        ck_fails(um_binary(&r, UM_ADD, a, b), UM_EDEVICE);
        ck_assert_msg(strstr(um_last_error(), "different devices") != NULL, "%s", um_last_error());
    }
    um_tensor_release(a); um_tensor_release(b);
}
END_TEST

static void add_tests(TCase *tc) {
    tcase_add_test(tc, elementwise_ops);
    tcase_add_test(tc, reductions_and_softmax);
    tcase_add_test(tc, matrix_products);
    tcase_add_test(tc, conv2d_geometries);
    tcase_add_test(tc, pooling_geometries);
    tcase_add_test(tc, batchnorm_linear_and_simple_layers);
    tcase_add_test(tc, module_tree);
    tcase_add_test(tc, losses);
    tcase_add_test(tc, optimisers);
    tcase_add_test(tc, noise_generators);
    tcase_add_test(tc, pgd_attacks);
    tcase_add_test(tc, certified_bounds);
    tcase_add_test(tc, attacks_with_state);
    tcase_add_test(tc, training_step);
    tcase_add_test(tc, checkpoints_cross_devices);
    tcase_add_test(tc, device_errors_are_clear);
}

Suite *make_suite(void) { return parity_suite("cuda_parity", add_tests); }
