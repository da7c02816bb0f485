/* The module tree: child names and dotted parameter paths, error messages that name the
 * failing module's path, train/eval and zero_grad over the tree, ownership rules (one
 * parent, no cycles, results not overwritten while held), a warm training step that
 * allocates nothing, and an allocation-failure sweep that must leak nothing. */
#include "gradcheck.h"
#include "nn/optim.h"
#include "ood/ood_ops.h"

static um_generator gen;
static int64_t live0;

static void setup(void) {
    um_generator_init(&gen, 5);
    live0 = um_live_bytes();
}

static void teardown(void) { um_alloc_fail_after(0); }

/* Adds child to seq and drops the caller's reference, also on failure. */
static int add(um_module *seq, const char *name, um_module *child) {
    int rc = um_sequential_add(seq, name, child);
    um_module_release(child);
    return rc;
}

static int conv(um_module **out, int64_t ci, int64_t co, int64_t s) {
    um_conv2d_config cfg = {.c_in = ci, .c_out = co, .kh = 3, .kw = 3, .sh = s, .sw = s, .padding = UM_PAD_SAME};
    return um_conv2d_new(out, &cfg, &gen);
}

/* A small ResNet: block_init{conv}, block_2_0 = Residual(pre{bn1, relu1},
 * main{conv1, bn2, relu2, conv2}, shortcut{pool, pad}), head{bn, relu, gap, fc}.
 * Every step checks its status, so that allocation failures anywhere are exercised. */
static int build(um_module **out) {
    um_module *net = NULL, *seq = NULL, *pre = NULL, *main = NULL, *sc = NULL, *res = NULL, *m = NULL;
    int rc = um_sequential_new(&net);
    if (rc) return rc;
#define TRY(expr) do { if ((rc = (expr))) goto fail; } while (0)
    TRY(um_sequential_new(&seq));
    TRY(add(net, "block_init", seq));
    TRY(conv(&m, 3, 4, 1));
    TRY(add(seq, "conv", m));
    TRY(um_sequential_new(&pre));
    TRY(um_batchnorm2d_new(&m, 4, 0.99, 1e-5));
    TRY(add(pre, "bn1", m));
    TRY(um_relu_new(&m));
    TRY(add(pre, "relu1", m));
    TRY(um_sequential_new(&main));
    TRY(conv(&m, 4, 8, 2));
    TRY(add(main, "conv1", m));
    TRY(um_batchnorm2d_new(&m, 8, 0.99, 1e-5));
    TRY(add(main, "bn2", m));
    TRY(um_relu_new(&m));
    TRY(add(main, "relu2", m));
    TRY(conv(&m, 8, 8, 1));
    TRY(add(main, "conv2", m));
    TRY(um_sequential_new(&sc));
    TRY(um_avgpool2d_new(&m, 2, 2, 2, 2, UM_PAD_VALID));
    TRY(add(sc, "pool", m));
    TRY(um_channel_pad_new(&m, 2, 2));
    TRY(add(sc, "pad", m));
    TRY(um_residual_new(&res, pre, main, sc));
    TRY(add(net, "block_2_0", res));
    res = NULL;
    TRY(um_sequential_new(&seq));
    TRY(add(net, "head", seq));
    TRY(um_batchnorm2d_new(&m, 8, 0.99, 1e-5));
    TRY(add(seq, "bn", m));
    TRY(um_relu_new(&m));
    TRY(add(seq, NULL, m));
    TRY(um_global_avgpool_new(&m));
    TRY(add(seq, NULL, m));
    TRY(um_linear_new(&m, 8, 5, 1, &gen));
    TRY(add(seq, "fc", m));
#undef TRY
fail:
    um_module_release(pre);
    um_module_release(main);
    um_module_release(sc);
    if (rc) {
        um_module_release(net);
        return rc;
    }
    *out = net;
    return UM_OK;
}

typedef struct { char paths[64][96]; int n; } path_list;

static int record(const char *path, um_tensor *t, void *ud) {
    (void)t;
    path_list *l = ud;
    snprintf(l->paths[l->n++], 96, "%s", path);
    return 0;
}

START_TEST(paths_and_names) {
    um_module *net = NULL;
    ck_ok(build(&net));
    path_list p = {.n = 0};
    ck_ok(um_module_visit(net, UM_PARAMS, record, &p));
    const char *want[] = {"block_init.conv.weight", "block_2_0.pre.bn1.weight", "block_2_0.pre.bn1.bias",
                          "block_2_0.main.conv1.weight", "block_2_0.main.bn2.weight", "block_2_0.main.bn2.bias",
                          "block_2_0.main.conv2.weight", "head.bn.weight", "head.bn.bias", "head.fc.weight",
                          "head.fc.bias"};
    ck_assert_int_eq(p.n, 11);
    for (int i = 0; i < 11; i++) ck_assert_str_eq(p.paths[i], want[i]);
    path_list b = {.n = 0};
    ck_ok(um_module_visit(net, UM_BUFFERS, record, &b));
    ck_assert_int_eq(b.n, 6);
    ck_assert_str_eq(b.paths[0], "block_2_0.pre.bn1.running_mean");
    ck_assert_str_eq(b.paths[5], "head.bn.running_var");
    ck_assert_int_eq(um_module_tensors(net, UM_GRADS, NULL, 0), 11);
    ck_assert_int_eq(um_module_num_elements(net, UM_PARAMS),
                     108 + 8 + 288 + 16 + 576 + 16 + 40 + 5);
    /* children by name and index; unnamed children are "1", "2", ... */
    um_module *head = um_module_find_child(net, "head");
    ck_assert_ptr_nonnull(head);
    char buf[16];
    ck_assert_str_eq(um_module_child_name(head, 1, buf, sizeof buf), "2");
    ck_assert_str_eq(um_module_type(um_module_find_child(head, "3")), "GlobalAvgPool");
    ck_assert_ptr_null(um_module_find_child(net, "nope"));
    um_module *res = um_module_find_child(net, "block_2_0");
    ck_assert_str_eq(um_module_type(res), "Residual");
    ck_assert_str_eq(um_module_child_name(res, 0, buf, sizeof buf), "pre");
    int64_t in[4] = {2, 3, 8, 8}, out[UM_MAXDIM];
    int nd;
    ck_ok(um_module_out_shape(net, 4, in, &nd, out));
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(out[1], 5);
    um_module_release(net);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(errors_name_the_path) {
    um_module *net = NULL;
    ck_ok(build(&net));
    int64_t in[4] = {2, 4, 8, 8}, out[UM_MAXDIM];
    int nd;
    ck_fails(um_module_out_shape(net, 4, in, &nd, out), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "block_init.conv: Conv2d: expected 3 input channels, got 4 (input 2x4x8x8)");
    /* feed block_2_0 directly with the wrong width: the path starts at the given module */
    um_module *res = um_module_find_child(net, "block_2_0");
    um_tensor *x = gc_tensor(4, (int64_t[]){2, 3, 8, 8}), *y = NULL;
    gc_fill(x, 1, 0, 1, 0);
    ck_fails(um_module_forward(res, x, &y), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "pre.bn1: BatchNorm2d: expected 4 channels, got 3 (input 2x3x8x8)");
    /* a shape error deep inside a forward pass */
    um_tensor *x2 = gc_tensor(4, (int64_t[]){2, 3, 8, 8});
    gc_fill(x2, 1, 0, 1, 0);
    um_module *conv2 = um_module_find_child(um_module_find_child(res, "main"), "conv2");
    ck_assert_ptr_nonnull(conv2);
    ((int64_t *)((char *)conv2 + sizeof(um_module)))[0] = 7;   /* corrupt c_in (first config field) */
    ck_fails(um_module_forward(net, x2, &y), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "block_2_0.main.conv2: Conv2d: expected 7 input channels, got 8"), "%s",
                  um_last_error());
    ((int64_t *)((char *)conv2 + sizeof(um_module)))[0] = 8;
    ck_ok(um_module_forward(net, x2, &y));
    um_tensor_release(x);
    um_tensor_release(x2);
    um_module_release(net);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(residual_branch_mismatch) {
    um_module *main = NULL, *res = NULL;
    ck_ok(conv(&main, 2, 4, 2));
    ck_ok(um_residual_new(&res, NULL, main, NULL));
    um_module_release(main);
    int64_t in[4] = {1, 2, 4, 4}, out[UM_MAXDIM];
    int nd;
    ck_fails(um_module_out_shape(res, 4, in, &nd, out), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "Residual: the main branch gives 1x4x2x2 but the shortcut gives 1x2x4x4");
    um_module_release(res);
}
END_TEST

START_TEST(ownership_rules) {
    um_module *a = NULL, *b = NULL, *r = NULL;
    ck_ok(um_sequential_new(&a));
    ck_ok(um_sequential_new(&b));
    ck_ok(um_relu_new(&r));
    ck_ok(um_sequential_add(a, "r", r));
    ck_fails(um_sequential_add(b, "r", r), UM_EINVAL);   /* one parent */
    ck_assert(strstr(um_last_error(), "already belongs"));
    ck_ok(um_sequential_add(a, "b", b));
    ck_fails(um_sequential_add(b, "a", a), UM_EINVAL);   /* a cycle (a already has no parent though) */
    ck_fails(um_sequential_add(b, NULL, b), UM_EINVAL);
    um_module *c = NULL;
    ck_ok(um_relu_new(&c));
    ck_fails(um_sequential_add(a, "r", c), UM_EINVAL);   /* duplicate name */
    ck_fails(um_sequential_add(a, "3", c), UM_EINVAL);   /* numeric name */
    ck_fails(um_sequential_add(a, "x.y", c), UM_EINVAL);
    ck_fails(um_sequential_add(a, "", c), UM_EINVAL);
    ck_fails(um_sequential_add(r, NULL, c), UM_EINVAL);  /* not a Sequential */
    um_module_release(c);
    um_module_release(r);   /* still held by a */
    ck_assert_str_eq(um_module_type(um_module_find_child(a, "r")), "ReLU");
    um_module_release(b);
    um_module_release(a);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(held_results_are_not_overwritten) {
    um_module *m = NULL;
    ck_ok(um_relu_new(&m));
    um_tensor *x = gc_tensor(1, (int64_t[]){3}), *y = NULL, *y2 = NULL;
    um_f32(x)[0] = 1;
    um_f32(x)[1] = -1;
    um_f32(x)[2] = 2;
    ck_ok(um_module_forward(m, x, &y));
    um_tensor_retain(y);             /* a caller (e.g. Lua) keeps the result */
    um_f32(x)[2] = 5;
    ck_ok(um_module_forward(m, x, &y2));
    ck_assert_ptr_ne(y, y2);
    ck_assert_float_eq(um_f32(y)[2], 2.0f);
    ck_assert_float_eq(um_f32(y2)[2], 5.0f);
    um_tensor_release(y);
    um_tensor_release(x);
    um_module_release(m);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(train_eval_and_zero_grad) {
    um_module *net = NULL;
    ck_ok(build(&net));
    um_module_train(net, 0);
    um_module *bn = um_module_find_child(um_module_find_child(net, "head"), "bn");
    ck_assert_int_eq(bn->training, 0);
    um_module_train(net, 1);
    ck_assert_int_eq(bn->training, 1);
    um_tensor *grads[16];
    int n = um_module_tensors(net, UM_GRADS, grads, 16);
    for (int i = 0; i < n; i++) ck_ok(um_fill_(grads[i], 3.0));
    ck_ok(um_module_zero_grad(net));
    for (int i = 0; i < n; i++) ck_assert_float_eq(um_f32(grads[i])[0], 0.0f);
    um_module_release(net);
}
END_TEST

/* After one step to warm up, a whole training step (forward, loss, backward, weight
 * decay, SGD) and a PGD-style input gradient on pgd_images of the 4 images must not
 * allocate at all: with pgd_images < 4 the batch size alternates as in an ACET step, and
 * the buffers sized for 4 images serve 2, reshaped. */
static void warm_steps(int64_t pgd_images) {
    um_module *net = NULL;
    ck_ok(build(&net));
    um_tensor *x = gc_tensor(4, (int64_t[]){4, 3, 8, 8}), *labels = NULL, *y = NULL, *gx = NULL;
    gc_fill(x, 2, 0, 1, 0);
    um_tensor *xp = gc_tensor(4, (int64_t[]){pgd_images, 3, 8, 8});
    gc_fill(xp, 4, 0, 1, 0);
    ck_ok(um_tensor_zeros(&labels, UM_INT64, 1, (int64_t[]){4}, NULL));
    um_i64(labels)[1] = 3;
    um_tensor *params[16], *grads[16], *losses = NULL, *glog = NULL;
    int n = um_module_tensors(net, UM_PARAMS, params, 16);
    um_module_tensors(net, UM_GRADS, grads, 16);
    um_optimizer *opt = NULL;
    ck_ok(um_sgd_new(&opt, n, params, grads, 0.1, 0.9, 0));
    for (int step = 0; step < 3; step++) {
        if (step == 2) um_alloc_fail_after(1);   /* any allocation now fails the test */
        double loss, pen;
        ck_ok(um_module_zero_grad(net));
        ck_ok(um_module_forward(net, x, &y));
        ck_ok(um_loss_value(UM_LOSS_CROSS_ENTROPY, y, labels, UM_REDUCE_MEAN, &loss, &losses));
        ck_ok(um_loss_backward(UM_LOSS_CROSS_ENTROPY, y, labels, UM_REDUCE_MEAN, 1.0, NULL, &glog));
        ck_ok(um_module_backward(net, x, glog, NULL));
        ck_ok(um_weight_decay(params, grads, n, 5e-4, &pen));
        ck_ok(um_optim_step(opt));
        um_module_train(net, 0);
        ck_ok(um_module_forward(net, xp, &y));
        ck_ok(um_loss_backward(UM_LOSS_MAX_CONF, y, NULL, UM_REDUCE_SUM, 1.0, NULL, &glog));
        ck_ok(um_module_backward_input(net, xp, glog, &gx));
        um_module_train(net, 1);
    }
    um_alloc_fail_after(0);
    um_optim_free(opt);
    um_tensor_release(losses);
    um_tensor_release(glog);
    um_tensor_release(labels);
    um_tensor_release(x);
    um_tensor_release(xp);
    um_module_release(net);
    ck_assert_int_eq(um_live_bytes(), live0);
}

/* Flatten's output is a view of the pool's buffer and its input gradient a view of the
 * linear layer's: when the batch size changes, these stale views are dropped first, so
 * the pool and the linear layer keep their (larger) buffers instead of reallocating. */
START_TEST(views_do_not_pin_buffers_across_batch_sizes) {
    um_module *net = NULL, *m = NULL;
    ck_ok(um_sequential_new(&net));
    ck_ok(conv(&m, 3, 4, 1));
    ck_ok(add(net, "conv", m));
    ck_ok(um_maxpool2d_new(&m, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(add(net, "pool", m));
    ck_ok(um_flatten_new(&m));
    ck_ok(add(net, "flatten", m));
    ck_ok(um_linear_new(&m, 64, 3, 1, &gen));
    ck_ok(add(net, "fc", m));
    um_module *pool = um_module_child(net, 1), *fc = um_module_child(net, 3);
    um_tensor *big = gc_tensor(4, (int64_t[]){4, 3, 8, 8}), *small = gc_tensor(4, (int64_t[]){2, 3, 8, 8});
    gc_fill(big, 1, 0, 1, 0);
    gc_fill(small, 2, 0, 1, 0);
    um_tensor *gbig = gc_tensor(2, (int64_t[]){4, 3}), *gsmall = gc_tensor(2, (int64_t[]){2, 3}), *y, *gx;
    gc_fill(gbig, 3, -1, 1, 0);
    gc_fill(gsmall, 4, -1, 1, 0);
    const float *pool_out = NULL, *fc_grad = NULL;
    for (int round = 0; round < 3; round++) {
        ck_ok(um_module_forward(net, big, &y));
        ck_ok(um_module_backward_input(net, big, gbig, &gx));
        if (round == 0) { pool_out = um_f32(pool->output); fc_grad = um_f32(fc->grad_input); }
        ck_ok(um_module_forward(net, small, &y));
        ck_ok(um_module_backward_input(net, small, gsmall, &gx));
        ck_assert_int_eq(y->size[0], 2);
        ck_assert_ptr_eq(um_f32(pool->output), pool_out);
        ck_assert_ptr_eq(um_f32(fc->grad_input), fc_grad);
    }
    um_tensor_release(big);
    um_tensor_release(small);
    um_tensor_release(gbig);
    um_tensor_release(gsmall);
    um_module_release(net);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* conv, ReLU, max-pool three times (2x2 tiling exactly, 3x3 stride 2 `same`, 2x2 stride 2
 * `same` on an odd size: the three max-pool kernels), from generator seed; with an
 * Identity between each ReLU and its pool when apart, which keeps them from folding. */
static um_module *relu_pool_net(uint64_t seed, int apart) {
    um_generator_init(&gen, seed);
    um_module *net = NULL, *m = NULL;
    const int64_t pools[3][3] = {{2, 2, UM_PAD_SAME}, {3, 2, UM_PAD_SAME}, {2, 2, UM_PAD_SAME}};
    const int64_t widths[4] = {2, 3, 4, 2};
    ck_ok(um_sequential_new(&net));
    for (int b = 0; b < 3; b++) {
        ck_ok(conv(&m, widths[b], widths[b + 1], 1));
        ck_ok(add(net, NULL, m));
        ck_ok(um_relu_new(&m));
        ck_ok(add(net, NULL, m));
        if (apart) {
            ck_ok(um_identity_new(&m));
            ck_ok(add(net, NULL, m));
        }
        ck_ok(um_maxpool2d_new(&m, pools[b][0], pools[b][0], pools[b][1], pools[b][1], (um_padding)pools[b][2]));
        ck_ok(add(net, NULL, m));
    }
    return net;
}

typedef struct { um_tensor *t[16]; int n; } tensor_list;

static int collect(const char *path, um_tensor *t, void *ud) {
    (void)path;
    tensor_list *l = ud;
    ck_assert_int_lt(l->n, 16);
    l->t[l->n++] = t;
    return 0;
}

static void same_floats(const um_tensor *a, const um_tensor *b) {
    ck_assert_int_eq(um_numel(a), um_numel(b));
    ck_assert_int_eq(memcmp(um_f32(a), um_f32(b), sizeof(float) * (size_t)um_numel(a)), 0);
}

/* Zeroes both nets' gradients, runs the same backward (with parameter gradients when
 * params, else input only) on both, checks that their input gradients and all their
 * parameter gradients (the same parameters in the same order) are bit-identical, and
 * returns a's input gradient. */
static um_tensor *backward_both_same(um_module *a, um_module *b, um_tensor *x, um_tensor *gy, int params) {
    um_tensor *ga, *gb;
    tensor_list la = {.n = 0}, lb = {.n = 0};
    ck_ok(um_module_zero_grad(a));
    ck_ok(um_module_zero_grad(b));
    if (params) {
        ck_ok(um_module_backward(a, x, gy, &ga));
        ck_ok(um_module_backward(b, x, gy, &gb));
    } else {
        ck_ok(um_module_backward_input(a, x, gy, &ga));
        ck_ok(um_module_backward_input(b, x, gy, &gb));
    }
    same_floats(ga, gb);
    ck_ok(um_module_visit(a, UM_GRADS, collect, &la));
    ck_ok(um_module_visit(b, UM_GRADS, collect, &lb));
    ck_assert_int_eq(la.n, lb.n);
    for (int i = 0; i < la.n; i++) same_floats(la.t[i], lb.t[i]);
    return ga;
}

static void release_twins(um_module *a, um_module *b, um_tensor *x, um_tensor *gy) {
    um_tensor_release(x);
    um_tensor_release(gy);
    um_module_release(a);
    um_module_release(b);
    ck_assert_int_eq(um_live_bytes(), live0);
}

/* The folded ReLU + max-pool backward gives exactly the numbers of the two backwards,
 * input and parameter gradients; the pools never compute (or allocate) their own. */
START_TEST(relu_maxpool_fold_matches_two_backwards) {
    um_module *folded = relu_pool_net(5, 0), *apart = relu_pool_net(5, 1);
    um_tensor *x = gc_tensor(4, (int64_t[]){3, 2, 20, 20}), *ya, *yb, *ga = NULL;
    gc_fill(x, 9, -1, 1, 0);   /* about half the ReLU inputs negative, some whole windows */
    ck_ok(um_module_forward(folded, x, &ya));
    ck_ok(um_module_forward(apart, x, &yb));
    same_floats(ya, yb);
    um_tensor *gy = gc_tensor(ya->ndim, ya->size);
    gc_fill(gy, 10, -1, 1, 0);
    for (int pass = 0; pass < 2; pass++) {   /* with parameter gradients, then input only */
        ga = backward_both_same(folded, apart, x, gy, pass == 0);
        for (int b = 0; b < 3; b++) {
            ck_assert_ptr_null(um_module_child(folded, 3 * b + 2)->grad_input);
            ck_assert_ptr_nonnull(um_module_child(apart, 4 * b + 3)->grad_input);
        }
    }
    double nz = 0;
    for (int64_t i = 0; i < um_numel(ga); i++) nz += um_f32(ga)[i] != 0.0f;
    ck_assert(nz > 0);
    release_twins(folded, apart, x, gy);
}
END_TEST

/* BN, ReLU, conv twice (a batch norm first, as in ResNetSmall's pre-activation units), with
 * an Identity between each BN and ReLU when apart; gammas of both signs. */
static um_module *bn_relu_net(uint64_t seed, int apart) {
    um_generator_init(&gen, seed);
    um_module *net = NULL, *m = NULL;
    ck_ok(um_sequential_new(&net));
    for (int b = 0; b < 2; b++) {
        ck_ok(um_batchnorm2d_new(&m, 3, 0.9, 1e-3));
        gc_fill(m->params[0], 20 + b, -1.5, 1.5, 0);
        gc_fill(m->params[1], 30 + b, -0.5, 0.5, 0);
        ck_ok(add(net, NULL, m));
        if (apart) {
            ck_ok(um_identity_new(&m));
            ck_ok(add(net, NULL, m));
        }
        ck_ok(um_relu_new(&m));
        ck_ok(add(net, NULL, m));
        ck_ok(conv(&m, 3, 3, 1));
        ck_ok(add(net, NULL, m));
    }
    return net;
}

/* BN then ReLU is taken back in one pass, in both modes, with and without parameter
 * gradients, with exactly the numbers of the two backwards; the ReLUs never compute (or
 * allocate) their own gradient. */
START_TEST(bn_relu_fold_matches_two_backwards) {
    um_module *folded = bn_relu_net(6, 0), *apart = bn_relu_net(6, 1);
    um_tensor *x = gc_tensor(4, (int64_t[]){4, 3, 6, 5}), *y;
    gc_fill(x, 11, -1, 2, 0);
    for (int i = 0; i < 3; i++) {   /* running statistics away from their start */
        ck_ok(um_module_forward(folded, x, &y));
        ck_ok(um_module_forward(apart, x, &y));
    }
    um_tensor *gy = gc_tensor(y->ndim, y->size);
    gc_fill(gy, 12, -1, 1, 0);
    /* eval input-only, train with parameters, train input-only, eval with parameters */
    for (int pass = 0; pass < 4; pass++) {
        um_module_train(folded, pass == 1 || pass == 2);
        um_module_train(apart, pass == 1 || pass == 2);
        ck_ok(um_module_forward(folded, x, &y));
        ck_ok(um_module_forward(apart, x, &y));
        backward_both_same(folded, apart, x, gy, pass == 1 || pass == 3);
        ck_assert_ptr_null(um_module_child(folded, 1)->grad_input);
        ck_assert_ptr_null(um_module_child(folded, 4)->grad_input);
    }
    release_twins(folded, apart, x, gy);
}
END_TEST

/* The grads-ready hook (core/dist/ starts reducing buckets from it): once per module with
 * parameters, in the backward's order, the folded BN+ReLU pairs included; never in an
 * input-only pass (PGD); an error from it stops the pass with that error. */
static um_module *seen[16];
static int n_seen, fail_at;
static int record_grads_ready(um_module *m, void *ctx) {
    if (n_seen < 16) seen[n_seen] = m;
    n_seen++;
    return n_seen == fail_at ? um_fail(UM_EIO, "hook failing on purpose") : UM_OK;
}

START_TEST(grads_ready_hook_in_backward_order) {
    um_module *net = bn_relu_net(7, 0);   /* BN, ReLU, conv, BN, ReLU, conv: folded pairs */
    um_tensor *x = gc_tensor(4, (int64_t[]){2, 3, 6, 5}), *y, *gx;
    gc_fill(x, 5, -1, 1, 0);
    ck_ok(um_module_forward(net, x, &y));
    um_tensor *gy = gc_tensor(y->ndim, y->size);
    gc_fill(gy, 6, -1, 1, 0);
    um_module_set_grads_ready_hook(record_grads_ready, NULL);
    n_seen = 0, fail_at = 0;
    ck_ok(um_module_backward_input(net, x, gy, &gx));
    ck_assert_int_eq(n_seen, 0);
    ck_ok(um_module_backward(net, x, gy, &gx));
    int expect[] = {5, 3, 2, 0};   /* children with parameters, last first */
    ck_assert_int_eq(n_seen, 4);
    for (int i = 0; i < 4; i++) ck_assert_ptr_eq(seen[i], um_module_child(net, expect[i]));
    n_seen = 0, fail_at = 2;
    ck_fails(um_module_backward(net, x, gy, &gx), UM_EIO);
    ck_assert_msg(strstr(um_last_error(), "hook failing on purpose") != NULL, "%s", um_last_error());
    ck_assert_int_eq(n_seen, 2);
    um_module_set_grads_ready_hook(NULL, NULL);
    n_seen = 0;
    ck_ok(um_module_backward(net, x, gy, &gx));
    ck_assert_int_eq(n_seen, 0);
    um_tensor_release(gy);
    um_tensor_release(x);
    um_module_release(net);
}
END_TEST

START_TEST(warm_step_allocates_nothing) { warm_steps(4); }
END_TEST

START_TEST(warm_alternating_batches_allocate_nothing) { warm_steps(2); }
END_TEST

static int build_and_run(void) {
    um_module *net = NULL;
    um_tensor *x = NULL, *y = NULL, *gy = NULL, *gx = NULL;
    int rc = build(&net);
    if (!rc) rc = um_tensor_new(&x, UM_FLOAT32, 4, (int64_t[]){2, 3, 8, 8}, NULL);
    if (!rc) {
        gc_fill(x, 3, 0, 1, 0);
        rc = um_module_forward(net, x, &y);
    }
    if (!rc) rc = um_tensor_zeros(&gy, UM_FLOAT32, 2, y->size, NULL);
    if (!rc) rc = um_module_backward(net, x, gy, &gx);
    if (!rc) rc = um_module_backward_input(net, x, gy, &gx);
    um_tensor_release(gy);
    um_tensor_release(x);
    um_module_release(net);
    return rc;
}

START_TEST(allocation_failures_leak_nothing) {
    int failures = 0;
    for (int k = 1; k < 2000; k++) {
        um_alloc_fail_after(k);
        int rc = build_and_run();
        um_alloc_fail_after(0);
        ck_assert_msg(um_live_bytes() == live0, "allocation %d failing leaked %lld bytes (%s)", k,
                      (long long)(um_live_bytes() - live0), um_last_error());
        if (rc == UM_OK) break;
        ck_assert_int_eq(rc, UM_ENOMEM);
        failures++;
    }
    ck_assert_int_gt(failures, 50);
}
END_TEST

/* A backend with memory but without kernel tables: every layer kernel answers UM_ENOTIMPL
 * naming the kernel and the backend, fused passes fall back, nothing calls NULL. */
static const void *no_tables(const char *concern) { return NULL; }

START_TEST(missing_kernels_are_reported) {
    um_backend bare = *um_cpu_backend();
    bare.name = "bare";
    bare.kernels = no_tables;
    um_module *seq, *relu, *pool;
    ck_ok(um_sequential_new(&seq));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_maxpool2d_new(&pool, 2, 2, 2, 2, UM_PAD_VALID));
    ck_ok(add(seq, "act", relu));
    ck_ok(add(seq, "pool", pool));
    int64_t xs[4] = {1, 1, 4, 4};
    um_tensor *x, *y;
    ck_ok(um_tensor_new(&x, UM_FLOAT32, 4, xs, &bare));
    ck_ok(um_fill_(x, 1.0));
    ck_assert_int_eq(um_module_forward(seq, x, &y), UM_ENOTIMPL);
    ck_assert_str_eq(um_last_error(), "act: bare: kernel relu_forward is not implemented");
    ck_assert_ptr_eq(um_nn_kernels(&bare)->relu_forward, NULL);
    ck_assert_ptr_eq(um_ood_kernels(&bare)->pgd_step, NULL);
    ck_assert_int_eq(UM_OOD_CALL(&bare, rescale, x), UM_ENOTIMPL);
    ck_assert_str_eq(um_last_error(), "bare: kernel rescale is not implemented");
    um_tensor_release(x);
    um_module_release(seq);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("nn_module");
    TCase *tc = tcase_create("tree");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, paths_and_names);
    tcase_add_test(tc, missing_kernels_are_reported);
    tcase_add_test(tc, errors_name_the_path);
    tcase_add_test(tc, residual_branch_mismatch);
    tcase_add_test(tc, ownership_rules);
    tcase_add_test(tc, held_results_are_not_overwritten);
    tcase_add_test(tc, train_eval_and_zero_grad);
    tcase_add_test(tc, warm_step_allocates_nothing);
    tcase_add_test(tc, warm_alternating_batches_allocate_nothing);
    tcase_add_test(tc, relu_maxpool_fold_matches_two_backwards);
    tcase_add_test(tc, bn_relu_fold_matches_two_backwards);
    tcase_add_test(tc, grads_ready_hook_in_backward_order);
    tcase_add_test(tc, views_do_not_pin_buffers_across_batch_sizes);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
