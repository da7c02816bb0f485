/* Optimisers against hand-computed steps in TensorFlow's forms (SGD with momentum and
 * Nesterov, Adam with bias correction in lr_t), the paper's weight decay, state and
 * errors; and learning itself: an MLP fits XOR. */
#include "gradcheck.h"
#include "nn/optim.h"

static int64_t live0;
static void setup(void) { live0 = um_live_bytes(); }
static void teardown(void) {}

static um_tensor *scalar_vec(int64_t n, float v) {
    um_tensor *t = NULL;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 1, &n, NULL));
    for (int64_t i = 0; i < n; i++) um_f32(t)[i] = v;
    return t;
}

START_TEST(sgd_momentum_steps) {
    um_tensor *w = scalar_vec(3, 1.0f), *g = scalar_vec(3, 0.5f);
    um_optimizer *o = NULL;
    ck_ok(um_sgd_new(&o, 1, &w, &g, 0.1, 0.9, 0));
    ck_ok(um_optim_step(o));                 /* v = 0.5, w = 1 - 0.05 */
    ck_close(um_f32(w)[0], 0.95, 1e-7);
    ck_close(um_f32(o->slots[0][0])[2], 0.5, 1e-7);
    ck_ok(um_optim_step(o));                 /* v = 0.45 + 0.5, w = 0.95 - 0.095 */
    ck_close(um_f32(w)[1], 0.855, 1e-6);
    ck_assert_int_eq(o->step, 2);
    o->lr = 0.01;                            /* schedules change lr between steps */
    ck_ok(um_optim_step(o));                 /* v = 0.855 + 0.5 = 1.355, w -= 0.01355 */
    ck_close(um_f32(w)[0], 0.855 - 0.01355, 1e-6);
    ck_assert_str_eq(um_optim_slot_name(o, 0), "momentum");
    ck_assert_int_eq(um_optim_num_slots(o), 1);
    um_optim_free(o);
    /* Nesterov as TF: w -= lr * (g + m * v_new) */
    um_f32(w)[0] = 1.0f;
    ck_ok(um_sgd_new(&o, 1, &w, &g, 0.1, 0.9, 1));
    ck_ok(um_optim_step(o));
    ck_close(um_f32(w)[0], 1 - 0.1 * (0.5 + 0.9 * 0.5), 1e-7);
    ck_ok(um_optim_step(o));                 /* v = 0.95; w -= 0.1 * (0.5 + 0.855) */
    ck_close(um_f32(w)[0], 0.905 - 0.1355, 1e-6);
    um_optim_free(o);
    um_tensor_release(w);
    um_tensor_release(g);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

/* Step 1: g = 0.5: m = 0.05, v = 2.5e-4, lr_t = 1e-3 sqrt(1e-3)/0.1 = 3.16228e-4,
 * w = 1 - lr_t * 0.05 / (0.0158114 + 1e-8) = 0.99900000063.
 * Step 2: g = -0.25: m = 0.02, v = 3.1225e-4, lr_t = 1e-3 sqrt(1 - 0.999^2)/(1 - 0.81)
 * = 2.35317e-4, w = 0.99900000063 - lr_t * 0.02 / 0.0176706 = 0.99873366. */
START_TEST(adam_steps) {
    um_tensor *w = scalar_vec(2, 1.0f), *g = scalar_vec(2, 0.5f);
    um_optimizer *o = NULL;
    ck_ok(um_adam_new(&o, 1, &w, &g, 1e-3, 0.9, 0.999, 1e-8));
    ck_ok(um_optim_step(o));
    ck_close(um_f32(w)[0], 0.99900000063, 1e-7);
    ck_close(um_f32(o->slots[0][0])[0], 0.05, 1e-7);
    ck_close(um_f32(o->slots[1][0])[0], 2.5e-4, 1e-10);
    um_f32(g)[0] = um_f32(g)[1] = -0.25f;
    ck_ok(um_optim_step(o));
    ck_close(um_f32(w)[1], 0.99873366374, 2e-7);
    ck_assert_str_eq(um_optim_slot_name(o, 1), "v");
    ck_assert_int_eq(o->step, 2);
    um_optim_free(o);
    um_tensor_release(w);
    um_tensor_release(g);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(weight_decay_values) {
    um_tensor *w[2] = {scalar_vec(2, 1.0f), scalar_vec(1, -2.0f)};
    um_tensor *g[2] = {scalar_vec(2, 0.25f), scalar_vec(1, 0.0f)};
    double pen = 0;
    ck_ok(um_weight_decay(w, g, 2, 0.5, &pen));
    ck_close(pen, 0.5 * (1 + 1 + 4), 1e-12);   /* lambda * sum w^2, no 1/2 */
    ck_close(um_f32(g[0])[1], 0.25 + 2 * 0.5 * 1, 1e-7);
    ck_close(um_f32(g[1])[0], 2 * 0.5 * -2, 1e-7);
    ck_ok(um_weight_decay(w, g, 0, 0.5, &pen));
    ck_close(pen, 0, 0);
    ck_fails(um_weight_decay(w, g, 2, -1, &pen), UM_EINVAL);
    for (int i = 0; i < 2; i++) {
        um_tensor_release(w[i]);
        um_tensor_release(g[i]);
    }
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

START_TEST(errors) {
    um_tensor *w = scalar_vec(3, 1.0f), *g = scalar_vec(2, 0.5f), *gi = NULL;
    um_optimizer *o = NULL;
    ck_fails(um_sgd_new(&o, 1, &w, &g, 0.1, 0.9, 0), UM_EINVAL);
    ck_assert_str_eq(um_last_error(), "SGD: parameter 1 is 3 but its gradient is 2");
    ck_fails(um_sgd_new(&o, 1, &w, &w, -0.1, 0.9, 0), UM_EINVAL);
    ck_fails(um_adam_new(&o, 1, &w, &w, 0.1, 1.0, 0.999, 1e-8), UM_EINVAL);
    ck_ok(um_tensor_zeros(&gi, UM_INT64, 1, (int64_t[]){3}, NULL));
    ck_fails(um_adam_new(&o, 1, &w, &gi, 0.1, 0.9, 0.999, 1e-8), UM_EINVAL);
    ck_ok(um_sgd_new(&o, 1, &w, &w, 0.1, 0.0, 0));
    o->lr = NAN;
    ck_fails(um_optim_step(o), UM_EINVAL);
    um_optim_free(o);
    /* allocation failures while creating slots leak nothing */
    for (int k = 1; k < 20; k++) {
        um_alloc_fail_after(k);
        int rc = um_adam_new(&o, 1, &w, &w, 0.1, 0.9, 0.999, 1e-8);
        um_alloc_fail_after(0);
        if (rc == UM_OK) {
            um_optim_free(o);
            break;
        }
        ck_assert_int_eq(rc, UM_ENOMEM);
    }
    um_tensor_release(w);
    um_tensor_release(g);
    um_tensor_release(gi);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

static void add(um_module *seq, um_module *child) {
    ck_ok(um_sequential_add(seq, NULL, child));
    um_module_release(child);
}

START_TEST(mlp_learns_xor) {
    um_generator gen;
    um_generator_init(&gen, 1);
    um_module *net = NULL, *m = NULL;
    ck_ok(um_sequential_new(&net));
    ck_ok(um_linear_new(&m, 2, 16, 1, &gen));
    add(net, m);
    ck_ok(um_relu_new(&m));
    add(net, m);
    ck_ok(um_linear_new(&m, 16, 16, 1, &gen));
    add(net, m);
    ck_ok(um_relu_new(&m));
    add(net, m);
    ck_ok(um_linear_new(&m, 16, 2, 1, &gen));
    add(net, m);
    float xv[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    um_tensor *x = gc_tensor(2, (int64_t[]){4, 2}), *y = NULL, *logits = NULL, *glog = NULL;
    memcpy(um_f32(x), xv, sizeof xv);
    ck_ok(um_tensor_new(&y, UM_INT64, 1, (int64_t[]){4}, NULL));
    int64_t yv[4] = {0, 1, 1, 0};
    memcpy(um_i64(y), yv, sizeof yv);
    um_tensor *params[8], *grads[8];
    int n = um_module_tensors(net, UM_PARAMS, params, 8);
    um_module_tensors(net, UM_GRADS, grads, 8);
    um_optimizer *opt = NULL;
    ck_ok(um_adam_new(&opt, n, params, grads, 0.01, 0.9, 0.999, 1e-8));
    double loss = 0;
    for (int step = 0; step < 300; step++) {
        ck_ok(um_module_zero_grad(net));
        ck_ok(um_module_forward(net, x, &logits));
        ck_ok(um_loss_value(UM_LOSS_CROSS_ENTROPY, logits, y, UM_REDUCE_MEAN, &loss, NULL));
        ck_ok(um_loss_backward(UM_LOSS_CROSS_ENTROPY, logits, y, UM_REDUCE_MEAN, 1.0, NULL, &glog));
        ck_ok(um_module_backward(net, x, glog, NULL));
        ck_ok(um_optim_step(opt));
    }
    ck_ok(um_module_forward(net, x, &logits));
    for (int i = 0; i < 4; i++) {
        const float *row = um_f32(logits) + 2 * i;
        ck_assert_int_eq(row[1] > row[0], yv[i]);
    }
    ck_assert_msg(loss < 0.05, "loss after 300 steps: %g", loss);
    um_optim_free(opt);
    um_tensor_release(glog);
    um_tensor_release(x);
    um_tensor_release(y);
    um_module_release(net);
    ck_assert_int_eq(um_live_bytes(), live0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sgd_momentum_steps);
    tcase_add_test(tc, adam_steps);
    tcase_add_test(tc, weight_decay_values);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, mlp_learns_xor);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
