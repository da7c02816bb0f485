/* Training through interval bounds (core/ood/ibp_train.c): finite-difference checks of the
 * parameter gradients of L = sum R * ud for a fixed random R over a nested net of every
 * trainable kind (Conv2d with TF `same` padding at stride 2, ReLU, max- and average
 * pooling, Flatten, Linear), with the box clipped and unclipped; the tape's bounds equal
 * the certificate's; eps = 0 gives the logits' differences; modules without a rule and
 * bad gradients are refused by name. */
#include "gradcheck.h"
#include "nn/layers.h"
#include "ood/ibp.h"
#include "ood/ibp_train.h"

static um_module *conv(int64_t cin, int64_t cout, int64_t stride, um_generator *g) {
    um_conv2d_config c = {.c_in = cin, .c_out = cout, .kh = 3, .kw = 3, .sh = stride, .sw = stride,
                          .padding = UM_PAD_SAME, .bias = 1};
    um_module *m;
    ck_ok(um_conv2d_new(&m, &c, g));
    return m;
}

/* (n,1,7,7) -> conv s1 -> relu -> maxpool 2 s2 -> [conv s2 -> relu -> avgpool 1] -> flatten
 * -> linear 12 -> 6 -> relu -> linear 6 -> 4 (the inner block a nested Sequential). */
static um_module *small_net(um_generator *g, int maxpool) {
    um_module *a, *b, *r1, *r2, *r3, *mp, *ap, *fl, *l1, *l2;
    a = conv(1, 2, 1, g);
    b = conv(2, 3, 2, g);
    ck_ok(um_relu_new(&r1));
    ck_ok(um_relu_new(&r2));
    ck_ok(um_relu_new(&r3));
    if (maxpool) ck_ok(um_maxpool2d_new(&mp, 2, 2, 2, 2, UM_PAD_SAME));
    else ck_ok(um_avgpool2d_new(&mp, 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_avgpool2d_new(&ap, 1, 1, 1, 1, UM_PAD_SAME));
    ck_ok(um_flatten_new(&fl));
    ck_ok(um_linear_new(&l1, 12, 6, 1, g));
    ck_ok(um_linear_new(&l2, 6, 4, 1, g));
    um_module *inner = ck_seq(3, (um_module *[]){b, r2, ap});
    return ck_seq(8, (um_module *[]){a, r1, mp, inner, fl, l1, r3, l2});
}

typedef struct { um_module *m; um_tensor *z; double eps; int clip; const float *r; } bound_ctx;

static double objective(void *ctx) {
    bound_ctx *c = ctx;
    um_ibp_tape *t = NULL;
    um_tensor *ud = NULL;
    ck_ok(um_ibp_tape_forward(c->m, c->z, c->eps, c->clip, &t, &ud));
    double s = 0;
    for (int64_t i = 0; i < um_numel(ud); i++) s += (double)c->r[i] * um_f32(ud)[i];
    um_ibp_tape_free(t);
    um_tensor_release(ud);
    return s;
}

static void check_gradients(int clip, int maxpool) {
    um_generator g;
    um_generator_init(&g, 7);
    um_module *m = small_net(&g, maxpool);
    int64_t zs[4] = {3, 1, 7, 7}, us[3] = {3, 4, 4};
    um_tensor *z = gc_tensor(4, zs), *gud = gc_tensor(3, us);
    gc_fill(z, 11, 0.0f, 1.0f, 0.0f);
    gc_fill(gud, 12, -1.0f, 1.0f, 0.0f);
    const double eps = 0.05;

    um_ibp_tape *t = NULL;
    um_tensor *ud = NULL;
    ck_ok(um_module_zero_grad(m));
    ck_ok(um_ibp_tape_forward(m, z, eps, clip, &t, &ud));
    ck_ok(um_ibp_tape_backward(t, gud));
    um_ibp_tape_free(t);
    um_tensor_release(ud);

    um_tensor *params[16], *grads[16];
    int np = um_module_tensors(m, UM_PARAMS, params, 16);
    um_module_tensors(m, UM_GRADS, grads, 16);
    ck_assert_int_eq(np, 8);
    /* Normwise: ReLU kinks at the box ends. A max-pool's arg-max also switches inside a
     * step where its window sees nearby values; the error then shrinks with h (3.1 % at
     * 1e-3, 1.3 % at 3e-4 on this net) instead of staying, as a wrong rule's would; with
     * average pooling it is 2.5 % at 3e-3 and under 0.3 % at 3e-4. */
    const gc_opts o = maxpool ? (gc_opts){3e-4, 1e-4, 3e-2, 1} : (gc_opts){3e-4, 1e-4, 3e-3, 1};
    int failures = 0;
    bound_ctx ctx = {m, z, eps, clip, um_f32(gud)};
    for (int k = 0; k < np; k++) {
        int64_t n = um_numel(params[k]);
        double *num = malloc(sizeof(double) * (size_t)n);
        gc_central_differences(um_f32(params[k]), n, o.h, objective, &ctx, num);
        char what[48];
        snprintf(what, sizeof what, "%s %s param %d", clip ? "clipped" : "unclipped", maxpool ? "max" : "avg", k);
        failures += gc_compare(what, num, um_f32(grads[k]), n, &o);
        free(num);
    }
    ck_assert_msg(failures == 0, "%d parameter gradients differ from finite differences", failures);
    um_tensor_release(z);
    um_tensor_release(gud);
    um_module_release(m);
}

START_TEST(gradients_unclipped) { check_gradients(0, 0); check_gradients(0, 1); }
END_TEST

START_TEST(gradients_clipped) { check_gradients(1, 0); check_gradients(1, 1); }
END_TEST

/* The tape (clipped box) gives the certificate's logit-difference bounds; at eps = 0 both
 * are the differences of the logits themselves. */
START_TEST(tape_matches_certificate) {
    um_generator g;
    um_generator_init(&g, 3);
    um_module *m = small_net(&g, 1);
    int64_t zs[4] = {5, 1, 7, 7};
    um_tensor *z = gc_tensor(4, zs);
    gc_fill(z, 5, 0.0f, 1.0f, 0.0f);
    for (int e = 0; e < 2; e++) {
        double eps = e ? 0.1 : 0.0;
        um_ibp_tape *t = NULL;
        um_tensor *ud = NULL, *conf = NULL, *ref = NULL;
        ck_ok(um_ibp_tape_forward(m, z, eps, 1, &t, &ud));
        ck_ok(um_certify_confidence(m, z, eps, &conf, &ref));
        for (int64_t i = 0; i < um_numel(ud); i++)
            ck_close(um_f32(ud)[i], um_f32(ref)[i], 1e-5 * (1 + fabsf(um_f32(ref)[i])));
        if (eps == 0) {
            um_tensor *y = NULL;
            ck_ok(um_module_forward(m, z, &y));
            for (int64_t i = 0; i < 5; i++)
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 4; j++)
                        ck_close(um_f32(ud)[(i * 4 + k) * 4 + j], um_f32(y)[i * 4 + k] - um_f32(y)[i * 4 + j], 1e-5);
        }
        um_ibp_tape_free(t);
        um_tensor_release(ud);
        um_tensor_release(conf);
        um_tensor_release(ref);
    }
    um_tensor_release(z);
    um_module_release(m);
}
END_TEST

START_TEST(refusals_name_what_is_wrong) {
    um_generator g;
    um_generator_init(&g, 1);
    um_module *c = conv(1, 2, 1, &g), *bn, *fl, *l;
    ck_ok(um_batchnorm2d_new(&bn, 2, 0.99, 1e-3));
    ck_ok(um_flatten_new(&fl));
    ck_ok(um_linear_new(&l, 2 * 4 * 4, 3, 1, &g));
    um_module *m = ck_seq(4, (um_module *[]){c, bn, fl, l});
    int64_t zs[4] = {2, 1, 4, 4};
    um_tensor *z = gc_tensor(4, zs);
    gc_fill(z, 1, 0.0f, 1.0f, 0.0f);
    um_ibp_tape *t = NULL;
    um_tensor *ud = NULL;
    ck_fails(um_ibp_tape_forward(m, z, 0.1, 0, &t, &ud), UM_ENOTIMPL);
    ck_assert_msg(strstr(um_last_error(), "BatchNorm2d") && strstr(um_last_error(), "2 ("), "%s", um_last_error());
    ck_fails(um_ibp_tape_forward(m, z, -1, 0, &t, &ud), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "eps"), "%s", um_last_error());
    um_module_release(m);

    um_module *fl2, *l2, *r;
    ck_ok(um_flatten_new(&fl2));
    ck_ok(um_linear_new(&l2, 16, 3, 1, &g));
    ck_ok(um_relu_new(&r));
    m = ck_seq(3, (um_module *[]){fl2, l2, r});
    ck_fails(um_ibp_tape_forward(m, z, 0.1, 0, &t, &ud), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "ends in ReLU"), "%s", um_last_error());
    um_module_release(m);

    ck_ok(um_flatten_new(&fl2));
    ck_ok(um_linear_new(&l2, 16, 3, 1, &g));
    m = ck_seq(2, (um_module *[]){fl2, l2});
    ck_ok(um_ibp_tape_forward(m, z, 0.1, 0, &t, &ud));
    int64_t bad[3] = {2, 3, 2};
    um_tensor *gb = gc_tensor(3, bad);
    ck_fails(um_ibp_tape_backward(t, gb), UM_EINVAL);
    ck_assert_msg(strstr(um_last_error(), "(2, 3, 3)"), "%s", um_last_error());
    um_tensor_release(gb);
    um_ibp_tape_free(t);
    um_tensor_release(ud);
    um_tensor_release(z);
    um_module_release(m);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("ibp_train");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, gradients_unclipped);
    tcase_add_test(t, gradients_clipped);
    tcase_add_test(t, tape_matches_certificate);
    tcase_add_test(t, refusals_name_what_is_wrong);
    suite_add_tcase(s, t);
    return s;
}

#include "check_main.h"
