/* PGD: the analytic optimum on a linear model, ball and box constraints, best iterate
 * monotonicity, input gradients of every objective against finite differences, and the
 * model untouched (parameters, gradients, BN statistics, mode) after an attack. */
#include "check_main.h"
#include "nn/layers.h"
#include "ood/pgd.h"

static um_tensor *rand_tensor(int ndim, const int64_t *s, um_generator *g, float lo, float hi) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, ndim, s, NULL));
    um_fill_uniform(g, um_f32(t), um_numel(t), lo, hi);
    return t;
}

START_TEST(linear_model_reaches_the_analytic_optimum) {
    um_generator g;
    um_generator_init(&g, 11);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 6, 2, 1, &g));
    int64_t s[2] = {4, 6};
    um_tensor *z = rand_tensor(2, s, &g, 0.2f, 0.8f), *labels;
    int64_t n = 4;
    ck_ok(um_tensor_new(&labels, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < 4; i++) um_i64(labels)[i] = i % 2;
    const float *w = um_f32(lin->params[0]);   /* (out=2, in=6) */
    for (int rs = 0; rs < 2; rs++) {
        um_pgd_config cfg = {UM_LOSS_CROSS_ENTROPY, 0.1, 0.03, 10, 0, rs};
        um_tensor *x, *obj;
        ck_ok(um_pgd(lin, z, labels, &cfg, &g, &x, &obj));
        for (int i = 0; i < 4; i++) {
            int y = i % 2, o = 1 - y;
            for (int k = 0; k < 6; k++) {
                float v = w[o * 6 + k] - w[y * 6 + k];   /* CE grows along w_other - w_true */
                float expect = um_f32(z)[i * 6 + k] + (v > 0 ? 0.1f : -0.1f);
                ck_close(um_f32(x)[i * 6 + k], expect, 1e-6);
            }
        }
        um_tensor_release(x); um_tensor_release(obj);
    }
    um_tensor_release(z); um_tensor_release(labels);
    um_module_release(lin);
}
END_TEST

static um_module *small_convnet(um_generator *g) {
    um_module *seq, *conv, *bn, *relu, *flat, *lin;
    um_conv2d_config c = {.c_in = 1, .c_out = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1};
    ck_ok(um_sequential_new(&seq));
    ck_ok(um_conv2d_new(&conv, &c, g));
    ck_ok(um_batchnorm2d_new(&bn, 3, 0.99, 1e-5));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_flatten_new(&flat));
    ck_ok(um_linear_new(&lin, 3 * 5 * 5, 4, 1, g));
    um_module *parts[] = {conv, bn, relu, flat, lin};
    for (int i = 0; i < 5; i++) { ck_ok(um_sequential_add(seq, NULL, parts[i])); um_module_release(parts[i]); }
    return seq;
}

typedef struct { double sum; } sum_ctx;
static int add_tensor(const char *path, um_tensor *t, void *ud) {
    (void)path;
    sum_ctx *c = ud;
    for (int64_t i = 0; i < um_numel(t); i++) c->sum += (double)um_f32(t)[i] * (double)(i % 7 + 1);
    return 0;
}
static double fingerprint(um_module *m, um_tensor_set which) {
    sum_ctx c = {0};
    um_module_visit(m, which, add_tensor, &c);
    return c.sum;
}

START_TEST(constraints_best_iterate_and_untouched_model) {
    um_generator g;
    um_generator_init(&g, 12);
    um_module *m = small_convnet(&g);
    int64_t s[4] = {6, 1, 5, 5};
    um_tensor *warm = rand_tensor(4, s, &g, 0, 1), *y;
    ck_ok(um_module_forward(m, warm, &y));   /* training mode: BN statistics move once */
    double p0 = fingerprint(m, UM_PARAMS), b0 = fingerprint(m, UM_BUFFERS), g0 = fingerprint(m, UM_GRADS);
    um_tensor *z = rand_tensor(4, s, &g, 0, 1), *start_obj;
    um_module_train(m, 0);
    ck_ok(um_objective_values(m, z, UM_LOSS_MAX_CONF, NULL, &start_obj));
    um_module_train(m, 1);
    for (int norm = 0; norm <= 2; norm += 2) {
        um_pgd_config cfg = {UM_LOSS_MAX_CONF, 0.3, 0.05, 15, norm, 1};
        um_tensor *x, *obj;
        ck_ok(um_pgd(m, z, NULL, &cfg, &g, &x, &obj));
        ck_assert_int_eq(m->training, 1);
        for (int i = 0; i < 6; i++) {
            double d2 = 0;
            for (int k = 0; k < 25; k++) {
                float v = um_f32(x)[i * 25 + k], dz = v - um_f32(z)[i * 25 + k];
                ck_assert(v >= 0 && v <= 1);
                if (norm == 0) ck_assert(fabsf(dz) <= 0.3f + 1e-6f);
                d2 += dz * dz;
            }
            if (norm == 2) ck_assert(sqrt(d2) <= 0.3 + 1e-5);
            ck_assert(um_f32(obj)[i] >= um_f32(start_obj)[i]);
        }
        /* the returned objective is the model's value at the returned points */
        um_tensor *check;
        um_module_train(m, 0);
        ck_ok(um_objective_values(m, x, UM_LOSS_MAX_CONF, NULL, &check));
        um_module_train(m, 1);
        for (int i = 0; i < 6; i++) ck_close(um_f32(check)[i], um_f32(obj)[i], 1e-5);
        um_tensor_release(check); um_tensor_release(x); um_tensor_release(obj);
    }
    ck_assert(fingerprint(m, UM_PARAMS) == p0);
    ck_assert(fingerprint(m, UM_BUFFERS) == b0);
    ck_assert(fingerprint(m, UM_GRADS) == g0);
    um_tensor_release(warm); um_tensor_release(z); um_tensor_release(start_obj);
    um_module_release(m);
}
END_TEST

/* d/dx of sum_i L_i(x) through the model, against central differences in double. */
START_TEST(objective_input_gradients_match_finite_differences) {
    um_generator g;
    um_generator_init(&g, 13);
    um_module *m = small_convnet(&g);
    um_module_train(m, 0);
    int64_t s[4] = {3, 1, 5, 5}, n = 3;
    um_tensor *x = rand_tensor(4, s, &g, 0.1f, 0.9f), *labels;
    ck_ok(um_tensor_new(&labels, UM_INT64, 1, &n, NULL));
    for (int i = 0; i < 3; i++) um_i64(labels)[i] = i;
    um_loss_kind kinds[3] = {UM_LOSS_MAX_CONF, UM_LOSS_UNIFORM_CONF, UM_LOSS_CROSS_ENTROPY};
    for (int k = 0; k < 3; k++) {
        const um_tensor *lab = kinds[k] == UM_LOSS_CROSS_ENTROPY ? labels : NULL;
        um_tensor *logits, *glog, *gx;
        ck_ok(um_module_forward(m, x, &logits));
        int64_t ls[2] = {logits->size[0], logits->size[1]};
        ck_ok(um_tensor_new(&glog, UM_FLOAT32, 2, ls, NULL));
        ck_ok(UM_NN_CALL(um_backend_of(x), loss_backward, kinds[k], logits, lab, 1.0, NULL, glog));
        ck_ok(um_module_backward_input(m, x, glog, &gx));
        int checked = 0;
        for (int64_t i = 0; i < um_numel(x); i += 7) {
            float keep = um_f32(x)[i];
            double h = 1e-3, f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                um_f32(x)[i] = keep + (float)(sgn ? h : -h);
                um_tensor *v;
                ck_ok(um_objective_values(m, x, kinds[k], lab, &v));
                f[sgn] = 0;
                for (int e = 0; e < 3; e++) f[sgn] += um_f32(v)[e];
                um_tensor_release(v);
            }
            um_f32(x)[i] = keep;
            double fd = (f[1] - f[0]) / (2 * h);
            ck_assert_msg(fabs(fd - um_f32(gx)[i]) <= 2e-3 + 2e-2 * fabs(fd), "objective %d, x[%lld]: analytic %g, numeric %g",
                          k, (long long)i, um_f32(gx)[i], fd);
            checked++;
        }
        ck_assert_int_gt(checked, 5);
        um_tensor_release(glog);
    }
    um_tensor_release(x); um_tensor_release(labels);
    um_module_release(m);
}
END_TEST

START_TEST(bad_arguments) {
    um_generator g;
    um_generator_init(&g, 14);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 4, 2, 1, &g));
    int64_t s[2] = {3, 4};
    um_tensor *z = rand_tensor(2, s, &g, 0, 1), *x, *o;
    int64_t live = um_live_bytes();
    um_pgd_config cfg = {UM_LOSS_CROSS_ENTROPY, 0.1, 0.01, 3, 0, 0};
    ck_fails(um_pgd(lin, z, NULL, &cfg, &g, &x, &o), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "needs int64 labels") != NULL, "%s", um_last_error());
    um_pgd_config cfg2 = {UM_LOSS_MAX_CONF, -1, 0.01, 3, 0, 0};
    ck_fails(um_pgd(lin, z, NULL, &cfg2, &g, &x, &o), UM_EINVAL);
    um_pgd_config cfg3 = {UM_LOSS_MAX_CONF, 0.1, 0.01, 3, 0, 1};
    ck_fails(um_pgd(lin, z, NULL, &cfg3, NULL, &x, &o), UM_EINVAL);
    int64_t s2[2] = {3, 5};
    um_tensor *wrong = rand_tensor(2, s2, &g, 0, 1);
    int64_t live2 = um_live_bytes();
    ck_fails(um_pgd(lin, wrong, NULL, &cfg3, &g, &x, &o), UM_EINVAL);
    ck_assert_int_eq(um_live_bytes(), live2);
    um_tensor_release(wrong);
    ck_assert_int_eq(um_live_bytes(), live);
    um_tensor_release(z);
    um_module_release(lin);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("pgd");
    TCase *tc = tcase_create("pgd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, linear_model_reaches_the_analytic_optimum);
    tcase_add_test(tc, constraints_best_iterate_and_untouched_model);
    tcase_add_test(tc, objective_input_gradients_match_finite_differences);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
