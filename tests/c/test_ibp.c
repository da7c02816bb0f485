/* Interval bound propagation: the reference cases of docs/worst-case.md (a Linear layer, a
 * batch norm with a negative scale, a residual sum, a max-pool, eps = 0, the identity net);
 * soundness on random nets of every layer type (TF `same` padding at stride 2 on odd sizes,
 * batch norm, pools, residual with channel padding): no PGD attack and no sampled point of
 * the box ever exceeds the bound, and on 2-D inputs no point of a dense grid; the same check
 * must catch a deliberately broken bound; a module without a rule is named. */
#include "check_main.h"
#include "nn/layers.h"
#include "ood/ibp.h"
#include "ood/pgd.h"

#define TOL 1e-5

static um_tensor *tensor_of(int nd, const int64_t *s, const float *v) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, nd, s, NULL));
    if (v) memcpy(um_f32(t), v, sizeof(float) * (size_t)um_numel(t));
    return t;
}

static um_tensor *uniform(int nd, const int64_t *s, um_generator *g, float lo, float hi) {
    um_tensor *t = tensor_of(nd, s, NULL);
    um_fill_uniform(g, um_f32(t), um_numel(t), lo, hi);
    return t;
}

static void set(um_tensor *t, const float *v) { memcpy(um_f32(t), v, sizeof(float) * (size_t)um_numel(t)); }

static void contains(const char *text) {
    ck_assert_msg(strstr(um_last_error(), text) != NULL, "error '%s' lacks '%s'", um_last_error(), text);
}

/* Module-level bounds of one input box, as two host vectors. */
static void box_of(um_module *m, int nd, const int64_t *s, const float *lo, const float *hi, float *ol, float *oh) {
    um_tensor *l = tensor_of(nd, s, lo), *h = tensor_of(nd, s, hi), *a, *b;
    ck_ok(um_module_bound(m, l, h, &a, &b));
    memcpy(ol, um_f32(a), sizeof(float) * (size_t)um_numel(a));
    memcpy(oh, um_f32(b), sizeof(float) * (size_t)um_numel(b));
    um_tensor_release(l); um_tensor_release(h); um_tensor_release(a); um_tensor_release(b);
}

START_TEST(reference_cases) {
    um_generator g;
    um_generator_init(&g, 1);
    float ol[4], oh[4];
    /* W = [[1, -2]], b = 0.5 on [0,1]^2 -> [-1.5, 1.5] */
    um_module *lin;
    ck_ok(um_linear_new(&lin, 2, 1, 1, &g));
    set(lin->params[0], (float[]){1, -2});
    set(lin->params[1], (float[]){0.5f});
    int64_t s2[2] = {1, 2};
    box_of(lin, 2, s2, (float[]){0, 0}, (float[]){1, 1}, ol, oh);
    ck_close(ol[0], -1.5, 1e-6);
    ck_close(oh[0], 1.5, 1e-6);
    /* batch norm with scale -2 and shift 1 on [0,1] -> [-1, 1] (not [1, -1]) */
    um_module *bn;
    ck_ok(um_batchnorm2d_new(&bn, 1, 0.99, 1e-5));
    set(bn->params[0], (float[]){-2});
    set(bn->params[1], (float[]){1});
    set(bn->buffers[1], (float[]){1 - 1e-5f});
    um_module_train(bn, 0);
    int64_t s4[4] = {1, 1, 1, 1};
    box_of(bn, 4, s4, (float[]){0}, (float[]){1}, ol, oh);
    ck_close(ol[0], -1, 1e-5);
    ck_close(oh[0], 1, 1e-5);
    um_module_train(bn, 1);
    um_tensor *l = tensor_of(4, s4, (float[]){0}), *h = tensor_of(4, s4, (float[]){1}), *a, *b;
    ck_fails(um_module_bound(bn, l, h, &a, &b), UM_EINVAL);
    contains("BatchNorm2d: interval bounds need evaluation mode");
    um_tensor_release(l); um_tensor_release(h); um_module_release(bn);
    /* y = x + Linear(-1)(x), x in [0,1] -> [-1, 1]: the branches are bounded apart */
    um_module *neg, *res;
    ck_ok(um_linear_new(&neg, 1, 1, 0, &g));
    set(neg->params[0], (float[]){-1});
    ck_ok(um_residual_new(&res, NULL, neg, NULL));
    um_module_release(neg);
    int64_t s1[2] = {1, 1};
    box_of(res, 2, s1, (float[]){0}, (float[]){1}, ol, oh);
    ck_close(ol[0], -1, 0);
    ck_close(oh[0], 1, 0);
    um_module_release(res);
    /* max-pool of [0,1] and [0.5,0.6] -> [0.5, 1] */
    um_module *mp;
    ck_ok(um_maxpool2d_new(&mp, 1, 2, 1, 2, UM_PAD_VALID));
    int64_t sp[4] = {1, 1, 1, 2};
    box_of(mp, 4, sp, (float[]){0, 0.5f}, (float[]){1, 0.6f}, ol, oh);
    ck_close(ol[0], 0.5, 0);
    ck_close(oh[0], 1, 0);
    um_module_release(mp);
    /* eps = 0: the bound is the confidence; logits (2, 0, -1) -> 0.8437947 */
    um_module *bias_only;
    ck_ok(um_linear_new(&bias_only, 2, 3, 1, &g));
    set(bias_only->params[0], (float[]){0, 0, 0, 0, 0, 0});
    set(bias_only->params[1], (float[]){2, 0, -1});
    um_tensor *z = tensor_of(2, s2, (float[]){0.3f, 0.7f}), *conf, *ud;
    ck_ok(um_certify_confidence(bias_only, z, 0, &conf, &ud));
    ck_close(um_f32(conf)[0], 0.8437947, 1e-6);
    ck_close(um_f32(ud)[1], 2, 1e-6);   /* ud[0][1] = f0 - f1 */
    ck_assert(um_f32(ud)[0] == 0 && um_f32(ud)[4] == 0 && um_f32(ud)[8] == 0);
    um_tensor_release(conf); um_tensor_release(ud); um_module_release(bias_only);
    /* identity on R^2 at (0.5, 0.5), eps 0.1: ud = 0.2 both ways, bound 1/(1+e^-0.2) */
    set(lin->params[1], (float[]){0});
    um_module *id;
    ck_ok(um_linear_new(&id, 2, 2, 0, &g));
    set(id->params[0], (float[]){1, 0, 0, 1});
    um_tensor *c = tensor_of(2, s2, (float[]){0.5f, 0.5f});
    ck_ok(um_certify_confidence(id, c, 0.1, &conf, &ud));
    ck_close(um_f32(ud)[1], 0.2, 1e-6);
    ck_close(um_f32(ud)[2], 0.2, 1e-6);
    ck_close(um_f32(conf)[0], 0.5498340, 1e-6);
    um_tensor_release(conf); um_tensor_release(ud); um_tensor_release(c); um_tensor_release(z);
    um_module_release(id); um_module_release(lin);
}
END_TEST

/* ---- soundness ---- */

/* Max softmax confidence of each row of the model's output at x. */
static void confidences(um_module *m, um_tensor *x, float *out) {
    um_tensor *y;
    ck_ok(um_module_forward(m, x, &y));
    int64_t n = y->size[0], k = y->size[1];
    for (int64_t i = 0; i < n; i++) {
        const float *r = um_f32(y) + i * k;
        double mx = r[0], s = 0;
        for (int64_t j = 1; j < k; j++) mx = fmax(mx, r[j]);
        for (int64_t j = 0; j < k; j++) s += exp(r[j] - mx);
        out[i] = (float)(1 / s);
    }
}

/* Points of the box around each of z's n rows: random, corners and PGD's best; returns the
 * number of (point, eps) pairs whose bound some point exceeds by more than TOL. */
static int violations(um_module *m, um_tensor *z, double eps, int samples, um_generator *g, double *checked) {
    int64_t n = z->size[0], d = um_numel(z) / n;
    um_tensor *bound, *x;
    ck_ok(um_certify_confidence(m, z, eps, &bound, NULL));
    ck_ok(um_clone(&x, z));
    float conf[64];
    ck_assert(n <= 64);
    int *bad = calloc((size_t)n, sizeof(int));
    for (int s = 0; s <= samples; s++) {
        for (int64_t i = 0; i < n * d; i++) {
            float u = um_rand_uniform(g), zc = um_f32(z)[i];
            float off = s % 2 ? (u < 0.5f ? -1.0f : 1.0f) : 2 * u - 1;   /* corners, then inside */
            float v = zc + (float)eps * off;
            um_f32(x)[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        if (s == samples) {   /* last: PGD on the confidence from a random start */
            um_pgd_config cfg = {UM_LOSS_MAX_CONF, eps, eps / 4, 20, 0, 1};
            um_tensor *adv, *obj;
            ck_ok(um_pgd(m, z, NULL, &cfg, g, &adv, &obj));
            um_tensor_release(x);
            x = adv;
            um_tensor_release(obj);
        }
        um_module_train(m, 0);
        confidences(m, x, conf);
        for (int64_t i = 0; i < n; i++) bad[i] |= conf[i] > um_f32(bound)[i] + TOL;
    }
    int count = 0;
    for (int64_t i = 0; i < n; i++) count += bad[i];
    *checked += (double)n;
    free(bad);
    um_tensor_release(bound);
    um_tensor_release(x);
    return count;
}

/* conv (same, stride 2) -> BN -> ReLU -> maxpool (same) -> residual(conv -> ReLU, channel
 * pad) -> avgpool -> GAP -> Linear; 7x7 inputs so that `same` pads asymmetrically. */
static um_module *zoo_net(um_generator *g) {
    um_conv2d_config c1 = {.c_in = 2, .c_out = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME, .bias = 1};
    um_conv2d_config c2 = {.c_in = 4, .c_out = 6, .kh = 2, .kw = 2, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1};
    um_module *conv1, *bn, *relu1, *mp, *conv2, *relu2, *pad, *res, *ap, *gap, *lin;
    ck_ok(um_conv2d_new(&conv1, &c1, g));
    ck_ok(um_batchnorm2d_new(&bn, 4, 0.99, 1e-5));
    um_fill_uniform(g, um_f32(bn->params[0]), 4, -2, 2);   /* some scales negative */
    um_fill_uniform(g, um_f32(bn->params[1]), 4, -0.5f, 0.5f);
    um_fill_uniform(g, um_f32(bn->buffers[0]), 4, -0.3f, 0.3f);
    um_fill_uniform(g, um_f32(bn->buffers[1]), 4, 0.2f, 2);
    ck_ok(um_relu_new(&relu1));
    ck_ok(um_maxpool2d_new(&mp, 2, 2, 1, 1, UM_PAD_SAME));
    ck_ok(um_conv2d_new(&conv2, &c2, g));
    ck_ok(um_relu_new(&relu2));
    ck_ok(um_channel_pad_new(&pad, 1, 1));
    um_module *main = ck_seq(2, (um_module *[]){conv2, relu2});
    um_module *pre;
    ck_ok(um_relu_new(&pre));   /* shared by both branches */
    ck_ok(um_residual_new(&res, pre, main, pad));
    um_module_release(pre);
    um_module_release(main);
    um_module_release(pad);
    ck_ok(um_avgpool2d_new(&ap, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_global_avgpool_new(&gap));
    ck_ok(um_linear_new(&lin, 6, 5, 1, g));
    um_fill_uniform(g, um_f32(lin->params[0]), 30, -3, 3);   /* confident enough to matter */
    return ck_seq(8, (um_module *[]){conv1, bn, relu1, mp, res, ap, gap, lin});
}

/* conv (valid) -> ReLU -> Flatten -> Linear -> ReLU -> Linear */
static um_module *flat_net(um_generator *g) {
    um_conv2d_config c = {.c_in = 1, .c_out = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_VALID, .bias = 1};
    um_module *conv, *relu, *flat, *l1, *relu2, *l2;
    ck_ok(um_conv2d_new(&conv, &c, g));
    ck_ok(um_relu_new(&relu));
    ck_ok(um_flatten_new(&flat));
    ck_ok(um_linear_new(&l1, 27, 8, 1, g));
    ck_ok(um_relu_new(&relu2));
    ck_ok(um_linear_new(&l2, 8, 4, 1, g));
    return ck_seq(6, (um_module *[]){conv, relu, flat, l1, relu2, l2});
}

static int soundness_sweep(int trials, double *checked) {
    um_generator g;
    um_generator_init(&g, 2019);
    static const double eps[4] = {0.01, 0.05, 0.2, 0.5};
    int bad = 0;
    for (int t = 0; t < trials; t++) {
        um_module *a = zoo_net(&g), *b = flat_net(&g);
        int64_t sa[4] = {16, 2, 7, 7}, sb[4] = {16, 1, 5, 5};
        um_tensor *za = uniform(4, sa, &g, 0, 1), *zb = uniform(4, sb, &g, 0, 1);
        for (int e = 0; e < 4; e++) {
            bad += violations(a, za, eps[e], 6, &g, checked);
            bad += violations(b, zb, eps[e], 6, &g, checked);
        }
        um_tensor_release(za); um_tensor_release(zb);
        um_module_release(a); um_module_release(b);
    }
    return bad;
}

START_TEST(random_nets_are_never_above_their_bound) {
    double checked = 0;
    ck_assert_int_eq(soundness_sweep(16, &checked), 0);
    ck_assert(checked >= 2000);   /* (point, eps) pairs */
}
END_TEST

/* 2-D inputs: every point of a 41 x 41 grid over the box is at or below the bound. */
START_TEST(dense_grids_in_two_dimensions) {
    um_generator g;
    um_generator_init(&g, 7);
    for (int t = 0; t < 6; t++) {
        um_module *l1, *r1, *l2, *r2, *l3;
        ck_ok(um_linear_new(&l1, 2, 12, 1, &g));
        ck_ok(um_relu_new(&r1));
        ck_ok(um_linear_new(&l2, 12, 12, 1, &g));
        ck_ok(um_relu_new(&r2));
        ck_ok(um_linear_new(&l3, 12, 3, 1, &g));
        um_fill_uniform(&g, um_f32(l1->params[1]), 12, -1, 1);
        um_module *m = ck_seq(5, (um_module *[]){l1, r1, l2, r2, l3});
        int64_t one[2] = {1, 2}, grid[2] = {41 * 41, 2};
        um_tensor *z = uniform(2, one, &g, 0, 1), *x = tensor_of(2, grid, NULL), *bound;
        float *conf = malloc(sizeof(float) * 41 * 41), best = 0;
        for (int e = 0; e < 3; e++) {
            double eps = (double[]){0.02, 0.1, 0.4}[e];
            ck_ok(um_certify_confidence(m, z, eps, &bound, NULL));
            for (int i = 0; i < 41; i++)
                for (int j = 0; j < 41; j++) {
                    float *p = um_f32(x) + (i * 41 + j) * 2;
                    float u = um_f32(z)[0] + (float)eps * (i / 20.0f - 1), v = um_f32(z)[1] + (float)eps * (j / 20.0f - 1);
                    p[0] = u < 0 ? 0 : (u > 1 ? 1 : u);
                    p[1] = v < 0 ? 0 : (v > 1 ? 1 : v);
                }
            confidences(m, x, conf);
            for (int k = 0; k < 41 * 41; k++) best = conf[k] > best ? conf[k] : best;
            ck_assert_msg(best <= um_f32(bound)[0] + TOL, "grid point %.7f above bound %.7f", best, um_f32(bound)[0]);
            um_tensor_release(bound);
        }
        free(conf);
        um_tensor_release(z); um_tensor_release(x); um_module_release(m);
    }
}
END_TEST

/* The checker above must fail when one sign of the bound is flipped. */
START_TEST(broken_bound_is_caught) {
    double checked = 0;
    um_ibp_unsound_for_tests = 1;
    int bad = soundness_sweep(1, &checked);
    um_ibp_unsound_for_tests = 0;
    ck_assert_msg(bad > 0, "a bound with one sign flipped passed the soundness check on %.0f pairs", checked);
}
END_TEST

static int plain_forward(um_module *m, um_tensor *x) { um_module_set_output(m, x); return UM_OK; }
static int plain_shape(const um_module *m, int nd, const int64_t *in, int *ond, int64_t *out) {
    *ond = nd;
    memcpy(out, in, sizeof(int64_t) * (size_t)nd);
    return UM_OK;
}
static const um_module_ops no_bound_ops = {.type = "Custom", .out_shape = plain_shape, .forward = plain_forward};

START_TEST(errors_name_the_module) {
    um_generator g;
    um_generator_init(&g, 3);
    um_module *custom, *flat, *lin, *lin2;
    ck_ok(um_module_create(&custom, sizeof(um_module), &no_bound_ops));
    ck_ok(um_flatten_new(&flat));
    ck_ok(um_linear_new(&lin, 4, 2, 1, &g));
    um_module *m = ck_seq(3, (um_module *[]){flat, custom, lin});
    int64_t s[2] = {3, 4};
    um_tensor *z = uniform(2, s, &g, 0, 1), *conf;
    ck_fails(um_certify_confidence(m, z, 0.1, &conf, NULL), UM_ENOTIMPL);
    contains("2: Custom has no interval bound");
    ck_fails(um_certify_confidence(m, z, -1, &conf, NULL), UM_EINVAL);
    contains("certify: eps must be >= 0, got -1");
    um_module *relu;
    ck_ok(um_relu_new(&relu));
    ck_ok(um_linear_new(&lin2, 4, 2, 1, &g));
    um_module *m2 = ck_seq(2, (um_module *[]){lin2, relu});
    ck_fails(um_certify_confidence(m2, z, 0.1, &conf, NULL), UM_EINVAL);
    contains("the model must end in a Linear layer (folded into logit differences), but it ends in ReLU");
    um_tensor_release(z); um_module_release(m); um_module_release(m2);
}
END_TEST

Suite *make_suite(void) {
    um_set_num_threads(1);   /* tiny tensors: threads would only wait for each other */
    Suite *s = suite_create("ibp");
    TCase *t = tcase_create("ibp");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, reference_cases);
    tcase_add_test(t, random_nets_are_never_above_their_bound);
    tcase_add_test(t, dense_grids_in_two_dimensions);
    tcase_add_test(t, broken_bound_is_caught);
    tcase_add_test(t, errors_name_the_module);
    suite_add_tcase(s, t);
    return s;
}
#include "check_main.h"
