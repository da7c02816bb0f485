/* APGD and Monotone PGD: the analytic optimum on linear models (l-inf corner, l2 direction),
 * returned values equal to the objective at the returned points, ball and box constraints,
 * the model untouched, APGD at least as strong as fixed-step PGD on a small convnet, the
 * starts (a flat image has no contrast to reduce), the zero-gradient escape moving an attack
 * that is otherwise stuck on a flat region, a caller's objective in place of a loss, and
 * argument errors. */
#include "check_main.h"
#include "nn/layers.h"
#include "ood/attack.h"
#include "ood/pgd.h"

static um_tensor *uniform(int nd, const int64_t *s, um_generator *g, float lo, float hi) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, nd, s, NULL));
    um_fill_uniform(g, um_f32(t), um_numel(t), lo, hi);
    return t;
}

static void contains(const char *text) {
    ck_assert_msg(strstr(um_last_error(), text) != NULL, "error '%s' lacks '%s'", um_last_error(), text);
}

static um_tensor *labels_mod(int n, int k) {
    um_tensor *t;
    int64_t s = n;
    ck_ok(um_tensor_new(&t, UM_INT64, 1, &s, NULL));
    for (int i = 0; i < n; i++) um_i64(t)[i] = i % k;
    return t;
}

/* Cross-entropy of a 2-class linear model grows along D = w_other - w_true: l-inf optimum
 * z + eps sign(D), l2 optimum z + eps D / |D| (inside the box). */
START_TEST(linear_model_optima) {
    um_generator g;
    um_generator_init(&g, 21);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 6, 2, 1, &g));
    int64_t s[2] = {4, 6};
    um_tensor *z = uniform(2, s, &g, 0.3f, 0.7f), *y = labels_mod(4, 2), *x, *v;
    const float *w = um_f32(lin->params[0]);
    um_apgd_config a = {UM_LOSS_CROSS_ENTROPY, 0.1, 0, 20, 2, 0.75, 0.75, 0, NULL, NULL};
    ck_ok(um_apgd(lin, z, y, &a, &g, &x, &v, NULL));
    um_mpgd_config mp = {UM_LOSS_CROSS_ENTROPY, 0.1, 0, 60, 0.1, 0.9, UM_START_CLEAN, 1e-4, 0, NULL, NULL};
    um_tensor *xm, *vm;
    ck_ok(um_mpgd(lin, z, y, &mp, &g, &xm, &vm, NULL));
    a.norm = 2;
    a.eps = 0.2;
    um_tensor *x2, *v2;
    ck_ok(um_apgd(lin, z, y, &a, &g, &x2, &v2, NULL));
    for (int i = 0; i < 4; i++) {
        int t = i % 2, o = 1 - t;
        double norm = 0;
        for (int k = 0; k < 6; k++) norm += pow(w[o * 6 + k] - w[t * 6 + k], 2);
        norm = sqrt(norm);
        for (int k = 0; k < 6; k++) {
            float dk = w[o * 6 + k] - w[t * 6 + k], zk = um_f32(z)[i * 6 + k];
            ck_close(um_f32(x)[i * 6 + k], zk + (dk > 0 ? 0.1f : -0.1f), 1e-6);
            ck_close(um_f32(xm)[i * 6 + k], zk + (dk > 0 ? 0.1f : -0.1f), 1e-6);
            ck_close(um_f32(x2)[i * 6 + k], zk + 0.2 * dk / norm, 2e-3);
        }
    }
    um_tensor *r;   /* the values are the objective at the returned points */
    ck_ok(um_objective_values(lin, x, UM_LOSS_CROSS_ENTROPY, y, &r));
    for (int i = 0; i < 4; i++) ck_close(um_f32(r)[i], um_f32(v)[i], 1e-5);
    um_tensor *all[] = {z, y, x, v, xm, vm, x2, v2, r};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
    um_module_release(lin);
}
END_TEST

static um_module *small_convnet(um_generator *g) {
    um_module *seq, *conv, *bn, *relu, *flat, *lin;
    um_conv2d_config c = {.c_in = 1, .c_out = 3, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1};
    ck_ok(um_sequential_new(&seq));
    ck_ok(um_conv2d_new(&conv, &c, g));
    ck_ok(um_batchnorm2d_new(&bn, 3, 0.99, 1e-5));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_flatten_new(&flat));
    ck_ok(um_linear_new(&lin, 3 * 6 * 6, 5, 1, g));
    um_module *parts[] = {conv, bn, relu, flat, lin};
    for (int i = 0; i < 5; i++) { ck_ok(um_sequential_add(seq, NULL, parts[i])); um_module_release(parts[i]); }
    return seq;
}

static double fingerprint(um_module *m, um_tensor_set which) {
    um_tensor *t[16];
    int k = um_module_tensors(m, which, t, 16);
    double s = 0;
    for (int j = 0; j < k; j++)
        for (int64_t i = 0; i < um_numel(t[j]); i++) s += um_f32(t[j])[i] * (double)(i % 5 + 1);
    return s;
}

START_TEST(convnet_constraints_and_strength) {
    um_generator g;
    um_generator_init(&g, 22);
    um_module *m = small_convnet(&g);
    int64_t s[4] = {8, 1, 6, 6};
    um_tensor *warm = uniform(4, s, &g, 0, 1), *y0;
    ck_ok(um_module_forward(m, warm, &y0));   /* training mode: the statistics move once */
    double p0 = fingerprint(m, UM_PARAMS), b0 = fingerprint(m, UM_BUFFERS);
    um_tensor *z = uniform(4, s, &g, 0, 1), *xa, *va, *xm, *vm, *xp, *vp;
    um_apgd_config a = {UM_LOSS_MAX_CONF, 0.1, 0, 50, 2, 0.75, 0.75, 0, NULL, NULL};
    um_mpgd_config mp = {UM_LOSS_MAX_CONF, 0.1, 0, 50, 0.1, 0.9, UM_START_UNIFORM, 1e-4, 5, NULL, NULL};
    um_pgd_config p = {.objective = UM_LOSS_MAX_CONF, .eps = 0.1, .step = 0.01, .steps = 50, .norm = 0, .random_start = 1};
    um_attack_stats st;
    ck_ok(um_apgd(m, z, NULL, &a, &g, &xa, &va, &st));
    ck_assert_int_eq(st.forwards, 2 * 51);
    ck_ok(um_mpgd(m, z, NULL, &mp, &g, &xm, &vm, NULL));
    ck_ok(um_pgd(m, z, NULL, &p, &g, &xp, &vp));
    ck_assert(m->training == 1);
    ck_assert(fingerprint(m, UM_PARAMS) == p0 && fingerprint(m, UM_BUFFERS) == b0);
    double sa = 0, sp = 0;
    for (int i = 0; i < 8; i++) {
        sa += um_f32(va)[i];
        sp += um_f32(vp)[i];
        for (int k = 0; k < 36; k++) {
            float zk = um_f32(z)[i * 36 + k];
            for (int t = 0; t < 2; t++) {
                float xk = um_f32(t ? xm : xa)[i * 36 + k];
                ck_assert(xk >= 0 && xk <= 1 && fabsf(xk - zk) <= 0.1f + 1e-6f);
            }
        }
    }
    ck_assert_msg(sa >= sp - 1e-4, "APGD (mean %g) weaker than fixed-step PGD (mean %g)", sa / 8, sp / 8);
    um_module_train(m, 0);
    um_tensor *r;
    ck_ok(um_objective_values(m, xm, UM_LOSS_MAX_CONF, NULL, &r));
    for (int i = 0; i < 8; i++) ck_close(um_f32(r)[i], um_f32(vm)[i], 1e-5);
    um_tensor *all[] = {warm, z, xa, va, xm, vm, xp, vp, r};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
    um_module_release(m);
}
END_TEST

START_TEST(starts) {
    um_generator g;
    um_generator_init(&g, 23);
    int64_t s[4] = {2, 3, 4, 4};
    um_tensor *z = uniform(4, s, &g, 0, 1), *x;
    ck_ok(um_tensor_new(&x, UM_FLOAT32, 4, s, NULL));
    for (int i = 0; i < 48; i++) um_f32(z)[i] = 0.4f;   /* image 0 flat: nothing to reduce */
    ck_ok(um_attack_start(x, z, UM_START_CONTRAST, 0.05, 0, 0, NULL));
    double mean1 = 0;
    for (int i = 48; i < 96; i++) mean1 += um_f32(z)[i] / 48;
    for (int i = 0; i < 96; i++) {
        float zi = um_f32(z)[i], xi = um_f32(x)[i];
        if (i < 48) ck_assert(xi == 0.4f);
        else ck_assert(fabs(xi - mean1) <= fabs(zi - mean1) + 1e-6 && fabsf(xi - zi) <= 0.05f + 1e-6f);
    }
    ck_ok(um_attack_start(x, z, UM_START_GAUSSIAN, 0.05, 1e-4, 0, &g));
    for (int i = 0; i < 96; i++) ck_assert(fabsf(um_f32(x)[i] - um_f32(z)[i]) < 1e-3f);
    ck_fails(um_attack_start(x, z, UM_START_UNIFORM, 0.05, 0, 0, NULL), UM_EINVAL);
    contains("attack: a random start needs a generator");
    um_tensor_release(z); um_tensor_release(x);
}
END_TEST

/* f(x) = (relu(sum x - 3), 0): flat (zero gradient) near z = 0, confident far from it. */
START_TEST(zero_gradient_escape) {
    um_generator g;
    um_generator_init(&g, 24);
    um_module *l1, *relu, *l2;
    ck_ok(um_linear_new(&l1, 8, 1, 1, &g));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_linear_new(&l2, 1, 2, 0, &g));
    for (int k = 0; k < 8; k++) um_f32(l1->params[0])[k] = 1;
    um_f32(l1->params[1])[0] = -3;
    um_f32(l2->params[0])[0] = 1;
    um_f32(l2->params[0])[1] = 0;
    um_module *m;
    ck_ok(um_sequential_new(&m));
    um_module *parts[] = {l1, relu, l2};
    for (int i = 0; i < 3; i++) { ck_ok(um_sequential_add(m, NULL, parts[i])); um_module_release(parts[i]); }
    int64_t s[2] = {6, 8};
    um_tensor *z, *x, *v;
    ck_ok(um_tensor_zeros(&z, UM_FLOAT32, 2, s, NULL));
    um_mpgd_config mp = {UM_LOSS_MAX_CONF, 1.0, 0, 30, 0.1, 0.9, UM_START_CLEAN, 1e-4, 0, NULL, NULL};
    um_attack_stats st;
    ck_ok(um_mpgd(m, z, NULL, &mp, &g, &x, &v, &st));
    ck_assert_int_eq(st.escapes, 0);
    for (int i = 0; i < 6; i++) ck_close(um_f32(v)[i], log(0.5), 1e-6);   /* stuck at z */
    um_tensor_release(x); um_tensor_release(v);
    mp.escape_after = 3;
    ck_ok(um_mpgd(m, z, NULL, &mp, &g, &x, &v, &st));
    ck_assert(st.escapes >= 6);
    for (int i = 0; i < 6; i++) ck_assert_msg(um_f32(v)[i] > log(0.99), "example %d stayed at %g", i, exp(um_f32(v)[i]));
    um_tensor_release(x); um_tensor_release(v); um_tensor_release(z);
    um_module_release(m);
}
END_TEST

/* A caller's objective: the first logit (its gradient e_0); ctx counts the calls, and with
 * a negative count the objective fails once the count reaches zero. */
static int first_logit(void *ctx, const um_tensor *logits, um_tensor *values, um_tensor *grad) {
    int *calls = ctx;
    if (*calls < 0 && ++*calls == 0) return um_fail(UM_EINVAL, "first_logit: failing on purpose");
    if (*calls >= 0) ++*calls;
    int64_t n = logits->size[0], k = logits->size[1];
    for (int64_t i = 0; i < n; i++) {
        um_f32(values)[i] = um_f32(logits)[i * k];
        if (grad)
            for (int64_t j = 0; j < k; j++) um_f32(grad)[i * k + j] = j == 0 ? 1.0f : 0.0f;
    }
    return UM_OK;
}

/* APGD and MPGD maximise a caller's objective (the first logit of a linear model: optimum
 * z + eps sign(w_0)) with no labels even when the kind says ce; its failure is theirs. */
START_TEST(custom_objective) {
    um_generator g;
    um_generator_init(&g, 27);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 5, 3, 1, &g));
    int64_t s[2] = {3, 5};
    um_tensor *z = uniform(2, s, &g, 0.3f, 0.7f), *x, *v, *xm, *vm;
    int calls = 0;
    um_apgd_config a = {UM_LOSS_CROSS_ENTROPY, 0.1, 0, 20, 1, 0.75, 0.75, 0, first_logit, &calls};
    ck_ok(um_apgd(lin, z, NULL, &a, &g, &x, &v, NULL));
    ck_assert_int_gt(calls, 20);
    um_mpgd_config mp = {UM_LOSS_CROSS_ENTROPY, 0.1, 0, 60, 0.1, 0.9, UM_START_CLEAN, 1e-4, 0, first_logit, &calls};
    ck_ok(um_mpgd(lin, z, NULL, &mp, &g, &xm, &vm, NULL));
    const float *w = um_f32(lin->params[0]), *b = um_f32(lin->params[1]);
    for (int i = 0; i < 3; i++) {
        double logit = b[0];
        for (int k = 0; k < 5; k++) {
            float zk = um_f32(z)[i * 5 + k], want = zk + (w[k] > 0 ? 0.1f : -0.1f);
            ck_close(um_f32(x)[i * 5 + k], want, 1e-6);
            ck_close(um_f32(xm)[i * 5 + k], want, 1e-6);
            logit += w[k] * (double)want;
        }
        ck_close(um_f32(v)[i], logit, 1e-5);
        ck_close(um_f32(vm)[i], logit, 1e-5);
    }
    um_tensor_release(x);
    um_tensor_release(v);
    calls = -5;   /* fails on its fifth call */
    ck_fails(um_apgd(lin, z, NULL, &a, &g, &x, &v, NULL), UM_EINVAL);
    contains("first_logit: failing on purpose");
    ck_assert_int_eq(lin->training, 1);   /* the mode is restored on failure too */
    um_tensor *all[] = {z, xm, vm};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
    um_module_release(lin);
}
END_TEST

START_TEST(errors) {
    um_generator g;
    um_generator_init(&g, 25);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 3, 2, 1, &g));
    int64_t s[2] = {2, 3};
    um_tensor *z = uniform(2, s, &g, 0, 1), *x, *v;
    um_apgd_config a = {UM_LOSS_MAX_CONF, 0.1, 1, 10, 1, 0.75, 0.75, 0, NULL, NULL};
    ck_fails(um_apgd(lin, z, NULL, &a, &g, &x, &v, NULL), UM_EINVAL);
    contains("apgd: norm must be inf (0) or 2, got 1");
    a.norm = 0;
    a.restarts = 0;
    ck_fails(um_apgd(lin, z, NULL, &a, &g, &x, &v, NULL), UM_EINVAL);
    contains("apgd: restarts must be >= 1, got 0");
    a.objective = UM_LOSS_CROSS_ENTROPY;
    ck_fails(um_apgd(lin, z, NULL, &a, &g, &x, &v, NULL), UM_EINVAL);
    contains("apgd: the ce objective needs int64 labels of size 2");
    um_mpgd_config mp = {UM_LOSS_MAX_CONF, 0.1, 0, 10, 0, 0.9, UM_START_CLEAN, 1e-4, 0, NULL, NULL};
    ck_fails(um_mpgd(lin, z, NULL, &mp, &g, &x, &v, NULL), UM_EINVAL);
    contains("mpgd: step must be > 0, got 0");
    um_tensor_release(z);
    um_module_release(lin);
}
END_TEST

Suite *make_suite(void) {
    um_set_num_threads(1);   /* tiny tensors */
    Suite *s = suite_create("attacks");
    TCase *t = tcase_create("attacks");
    tcase_add_test(t, linear_model_optima);
    tcase_add_test(t, convnet_constraints_and_strength);
    tcase_add_test(t, starts);
    tcase_add_test(t, zero_gradient_escape);
    tcase_add_test(t, custom_objective);
    tcase_add_test(t, errors);
    suite_add_tcase(s, t);
    return s;
}
#include "check_main.h"
