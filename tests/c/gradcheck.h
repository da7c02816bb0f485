/* Finite-difference gradient checks for modules and losses, shared by the nn suites:
 * the objective is L = sum_i r_i y_i with fixed random r, accumulated in double; central
 * differences of L are compared with backward's input and parameter gradients. */
#ifndef UM_GRADCHECK_H
#define UM_GRADCHECK_H
#include <stdio.h>
#include "check_main.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "umbra.h"

typedef struct {
    double h;        /* step */
    double atol, rtol;
    int normwise;    /* compare whole vectors (for trees with ReLU kinks) instead of elements */
} gc_opts;

static const gc_opts GC_DEFAULT = {1e-2, 5e-4, 2e-3, 0};

static inline um_tensor *gc_tensor(int ndim, const int64_t *size) {
    um_tensor *t = NULL;
    ck_assert_msg(um_tensor_new(&t, UM_FLOAT32, ndim, size, NULL) == UM_OK, "%s", um_last_error());
    return t;
}

/* Uniform values in [lo, hi); with away > 0, magnitudes are pushed to at least `away`
 * (inputs kept off ReLU kinks). */
static inline void gc_fill(um_tensor *t, uint64_t seed, float lo, float hi, float away) {
    um_generator g;
    um_generator_init(&g, seed);
    float *p = um_f32(t);
    um_fill_uniform(&g, p, um_numel(t), lo, hi);
    if (away > 0)
        for (int64_t i = 0; i < um_numel(t); i++) p[i] = p[i] < 0 ? p[i] - away : p[i] + away;
}

static inline double gc_objective(um_module *m, um_tensor *x, const double *r) {
    um_tensor *y = NULL;
    ck_assert_msg(um_module_forward(m, x, &y) == UM_OK, "forward: %s", um_last_error());
    const float *p = um_f32(y);
    double s = 0.0;
    for (int64_t i = 0; i < um_numel(y); i++) s += r[i] * (double)p[i];
    return s;
}

/* Compare numeric with analytic values; returns the number of failures (and prints them). */
static inline int gc_compare(const char *what, const double *num, const float *ana, int64_t n, const gc_opts *o) {
    if (o->normwise) {
        double d = 0, a = 0, b = 0;
        for (int64_t i = 0; i < n; i++) {
            d += (num[i] - ana[i]) * (num[i] - ana[i]);
            a += num[i] * num[i];
            b += (double)ana[i] * ana[i];
        }
        double rel = sqrt(d) / fmax(fmax(sqrt(a), sqrt(b)), 1e-6);
        if (rel > o->rtol) {
            fprintf(stderr, "%s: normwise relative error %g\n", what, rel);
            return 1;
        }
        return 0;
    }
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs(num[i] - ana[i]);
        if (err > o->atol + o->rtol * fmax(fabs(num[i]), fabs(ana[i]))) {
            if (bad < 5) fprintf(stderr, "%s[%lld]: numeric %.6g, analytic %.6g\n", what, (long long)i, num[i], ana[i]);
            bad++;
        }
    }
    return bad;
}

/* Central differences of f with respect to each of the n floats at p, into num: each is
 * moved by +-h in place and restored. */
static inline void gc_central_differences(float *p, int64_t n, double h, double (*f)(void *ctx), void *ctx,
                                          double *num) {
    for (int64_t i = 0; i < n; i++) {
        float v = p[i];
        p[i] = v + (float)h;
        double lp = f(ctx);
        p[i] = v - (float)h;
        double lm = f(ctx);
        p[i] = v;
        num[i] = (lp - lm) / (2 * h);
    }
}

typedef struct { um_module *m; um_tensor *x; const double *r; } gc_module_ctx;
static inline double gc_module_objective(void *ctx) {
    gc_module_ctx *c = ctx;
    return gc_objective(c->m, c->x, c->r);
}

/* Full check of module m at input x: input gradient of backward and backward_input,
 * every parameter gradient, and that backward_input leaves parameter gradients alone. */
static inline void gc_check_module(um_module *m, um_tensor *x, const gc_opts *o, uint64_t seed) {
    um_tensor *y = NULL, *gx = NULL, *gy = NULL;
    ck_assert_msg(um_module_forward(m, x, &y) == UM_OK, "forward: %s", um_last_error());
    const int64_t ny = um_numel(y), nx = um_numel(x);
    double *r = malloc(sizeof(double) * (size_t)ny);
    gy = gc_tensor(y->ndim, y->size);
    gc_fill(gy, seed + 1000, -1.0f, 1.0f, 0.0f);
    for (int64_t i = 0; i < ny; i++) r[i] = um_f32(gy)[i];

    /* analytic gradients */
    ck_assert_int_eq(um_module_zero_grad(m), UM_OK);
    ck_assert_msg(um_module_backward(m, x, gy, &gx) == UM_OK, "backward: %s", um_last_error());
    float *ana_x = malloc(sizeof(float) * (size_t)nx);
    memcpy(ana_x, um_f32(gx), sizeof(float) * (size_t)nx);
    int np = um_module_tensors(m, UM_PARAMS, NULL, 0);
    um_tensor *params[64], *grads[64];
    ck_assert_int_le(np, 64);
    um_module_tensors(m, UM_PARAMS, params, np);
    um_module_tensors(m, UM_GRADS, grads, np);
    float *ana_p[64];
    for (int k = 0; k < np; k++) {
        ana_p[k] = malloc(sizeof(float) * (size_t)um_numel(grads[k]));
        memcpy(ana_p[k], um_f32(grads[k]), sizeof(float) * (size_t)um_numel(grads[k]));
    }

    /* backward_input agrees and does not touch the parameter gradients */
    ck_assert_msg(um_module_forward(m, x, &y) == UM_OK, "forward: %s", um_last_error());
    ck_assert_msg(um_module_backward_input(m, x, gy, &gx) == UM_OK, "backward_input: %s", um_last_error());
    for (int64_t i = 0; i < nx; i++) ck_assert_float_eq_tol(um_f32(gx)[i], ana_x[i], 1e-5f * (1 + fabsf(ana_x[i])));
    for (int k = 0; k < np; k++)
        ck_assert_msg(memcmp(ana_p[k], um_f32(grads[k]), sizeof(float) * (size_t)um_numel(grads[k])) == 0,
                      "backward_input changed parameter gradient %d", k);

    /* numeric gradients */
    int failures = 0;
    double *num = calloc((size_t)(nx > 0 ? nx : 1), sizeof(double));
    gc_module_ctx ctx = {m, x, r};
    gc_central_differences(um_f32(x), nx, o->h, gc_module_objective, &ctx, num);
    failures += gc_compare("input", num, ana_x, nx, o);
    free(num);
    for (int k = 0; k < np; k++) {
        int64_t n = um_numel(params[k]);
        double *pn = malloc(sizeof(double) * (size_t)n);
        gc_central_differences(um_f32(params[k]), n, o->h, gc_module_objective, &ctx, pn);
        char what[32];
        snprintf(what, sizeof what, "param %d", k);
        failures += gc_compare(what, pn, ana_p[k], n, o);
        free(pn);
        free(ana_p[k]);
    }
    free(ana_x);
    free(r);
    um_tensor_release(gy);
    ck_assert_msg(failures == 0, "%d gradient mismatches in %s", failures, um_module_type(m));
}

#endif
