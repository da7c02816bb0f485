/* Non-finite values are seen, not hidden: ReLU keeps NaN (module, fused backward and the
 * elementwise op, as PyTorch); an optimiser step with a NaN or infinite gradient fails
 * naming the gradient and the count before any parameter or slot is written; PGD refuses
 * a non-finite input or input gradient instead of returning a silent best point; and PGD
 * stops between iterations when an interrupt is requested (UM_EINTR). */
#include "check_main.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "ood/pgd.h"

START_TEST(relu_keeps_nan) {
    const float xv[4] = {NAN, -1.0f, 2.0f, -0.0f}, gv[4] = {5, 6, 7, 8};
    um_tensor *x = ck_vec(4, xv), *gy = ck_vec(4, gv), *y, *gx, *u;
    um_module *m;
    ck_ok(um_relu_new(&m));
    ck_ok(um_module_forward(m, x, &y));
    ck_assert(isnan(um_f32(y)[0]));
    ck_assert(um_f32(y)[1] == 0.0f && um_f32(y)[2] == 2.0f && um_f32(y)[3] == 0.0f);
    ck_ok(um_module_backward(m, x, gy, &gx));
    ck_assert_float_eq(um_f32(gx)[0], 5.0f);   /* PyTorch: x <= 0 ? 0 : gy, so NaN passes */
    ck_assert_float_eq(um_f32(gx)[1], 0.0f);
    ck_assert_float_eq(um_f32(gx)[2], 7.0f);
    ck_ok(um_unary(&u, UM_RELU, x));
    ck_assert(isnan(um_f32(u)[0]));
    ck_assert(um_f32(u)[1] == 0.0f && um_f32(u)[2] == 2.0f);
    um_tensor_release(u);
    um_module_release(m);
    um_tensor_release(x);
    um_tensor_release(gy);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(optimiser_refuses_nonfinite_gradients) {
    const float wv[3] = {1, 2, 3}, ok[3] = {0.1f, 0.1f, 0.1f}, bad[3] = {0.1f, NAN, INFINITY};
    for (int adam = 0; adam <= 1; adam++) {
        um_tensor *w[2] = {ck_vec(3, wv), ck_vec(3, wv)}, *g[2] = {ck_vec(3, ok), ck_vec(3, bad)};
        um_optimizer *o;
        if (adam) ck_ok(um_adam_new(&o, 2, w, g, 0.1, 0.9, 0.999, 1e-8));
        else ck_ok(um_sgd_new(&o, 2, w, g, 0.1, 0.9, 0));
        ck_fails(um_optim_step(o), UM_ENUMERIC);
        ck_assert_msg(strstr(um_last_error(), "gradient 2 of 2 has 2 non-finite values"), "%s", um_last_error());
        ck_assert_int_eq(o->bad_param, 1);
        ck_assert_int_eq(o->step, 0);
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 3; k++) {
                ck_assert_float_eq(um_f32(w[i])[k], wv[k]);           /* no parameter written */
                ck_assert_float_eq(um_f32(o->slots[0][i])[k], 0.0f);  /* nor a slot */
            }
        memcpy(um_f32(g[1]), ok, sizeof ok);
        ck_ok(um_optim_step(o));
        ck_assert_int_eq(o->step, 1);
        um_optim_free(o);
        for (int i = 0; i < 2; i++) { um_tensor_release(w[i]); um_tensor_release(g[i]); }
    }
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

/* A custom objective: values 0; a NaN gradient when ctx->nan_grad; requests an interrupt at
 * its call number ctx->interrupt_at. */
typedef struct { int calls, nan_grad, interrupt_at; } objective_ctx;
static int objective(void *ctx, const um_tensor *logits, um_tensor *values, um_tensor *grad) {
    objective_ctx *c = ctx;
    if (++c->calls == c->interrupt_at) um_request_interrupt();
    memset(um_f32(values), 0, sizeof(float) * (size_t)um_numel(values));
    if (grad)
        for (int64_t i = 0; i < um_numel(grad); i++) um_f32(grad)[i] = c->nan_grad ? NAN : 1.0f;
    (void)logits;
    return UM_OK;
}

START_TEST(pgd_refuses_nonfinite_and_stops_on_interrupt) {
    um_generator g;
    um_generator_init(&g, 3);
    um_module *lin;
    ck_ok(um_linear_new(&lin, 4, 2, 1, &g));
    int64_t s[2] = {2, 4};
    um_tensor *z, *x = NULL, *obj = NULL;
    ck_ok(um_tensor_new(&z, UM_FLOAT32, 2, s, NULL));
    for (int i = 0; i < 8; i++) um_f32(z)[i] = 0.5f;
    um_f32(z)[5] = NAN;
    um_pgd_config cfg = {UM_LOSS_MAX_CONF, 0.1, 0.01, 5, 0, 0, NULL, NULL};
    ck_fails(um_pgd(lin, z, NULL, &cfg, &g, &x, &obj), UM_ENUMERIC);
    ck_assert_msg(strstr(um_last_error(), "pgd: the input holds 1 non-finite values"), "%s", um_last_error());
    um_f32(z)[5] = 0.5f;
    objective_ctx ctx = {0, 1, 0};
    cfg.custom = objective;
    cfg.custom_ctx = &ctx;
    ck_fails(um_pgd(lin, z, NULL, &cfg, &g, &x, &obj), UM_ENUMERIC);
    ck_assert_msg(strstr(um_last_error(), "input gradient at iteration 1 holds 8 non-finite"), "%s", um_last_error());
    ctx = (objective_ctx){0, 0, 3};   /* the start, iterations 0 and 1 score; then Ctrl-C */
    cfg.steps = 1000000000;
    ck_fails(um_pgd(lin, z, NULL, &cfg, &g, &x, &obj), UM_EINTR);
    ck_assert_msg(strstr(um_last_error(), "pgd: interrupted at iteration 2 of 1000000000"), "%s", um_last_error());
    um_clear_interrupt();
    cfg.steps = 3;
    ck_ok(um_pgd(lin, z, NULL, &cfg, &g, &x, &obj));
    um_tensor_release(x);
    um_tensor_release(obj);
    um_tensor_release(z);
    um_module_release(lin);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("nan_guard");
    TCase *tc = tcase_create("guard");
    tcase_add_test(tc, relu_keeps_nan);
    tcase_add_test(tc, optimiser_refuses_nonfinite_gradients);
    tcase_add_test(tc, pgd_refuses_nonfinite_and_stops_on_interrupt);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
