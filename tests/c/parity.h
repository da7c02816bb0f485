/* Shared by the CUDA parity suites (test_cuda_parity.c, test_cuda_parity_edges.c): the
 * device under test, random tensors, copies between devices, the relative comparison and
 * the suite's set-up. Without a device a suite prints one line, "SKIP cuda: no CUDA device
 * (<reason>)", the reason being the CUDA error that says why, and runs one test of that
 * path; with UMBRA_REQUIRE_CUDA=1 (scripts/gpu-check sets it where nvidia-smi lists a GPU)
 * that test fails instead, naming the reason. With a device every test runs in this one
 * process (CK_FORK=no): one CUDA context, which a forked test could not use. */
#ifndef UM_PARITY_H
#define UM_PARITY_H
#include <stdio.h>
#include "check_main.h"
#include "nn/module.h"

#define RTOL 1e-4

static const char *parity_backend(void) {
    const char *b = getenv("UMBRA_PARITY_BACKEND");
    return b && *b ? b : "cuda";
}

static const um_backend *dev(void) {
    const um_backend *be = um_find_backend(parity_backend());
    ck_assert_msg(be != NULL, "backend %s vanished", parity_backend());
    return be;
}

/* ---- helpers ------------------------------------------------------------------------- */

static um_tensor *rnd(int nd, const int64_t *s, um_generator *g, float lo, float hi) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, nd, s, NULL));
    um_fill_uniform(g, um_f32(t), um_numel(t), lo, hi);
    return t;
}

static um_tensor *on(const um_tensor *t, const um_backend *be) {
    um_tensor *r;
    ck_ok(um_to_backend(&r, t, be));
    return r;
}

/* Compare a CPU reference with a tensor from the device: |a - b| <= RTOL * (|a| + mean|a|)
 * (relative, with the mean magnitude as the floor for values near zero). */
static void close_rel(const char *what, const um_tensor *ref, const um_tensor *got, double rtol) {
    char s1[64], s2[64];
    ck_assert_msg(um_same_shape(ref, got), "%s: shapes %s and %s", what, um_shape_str(ref, s1, sizeof s1),
                  um_shape_str(got, s2, sizeof s2));
    um_tensor *a = on(ref, NULL), *b = on(got, NULL);
    int64_t n = um_numel(a);
    if (a->dtype == UM_INT64) {
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(um_i64(a)[i] == um_i64(b)[i], "%s: element %lld is %lld, expected %lld", what, (long long)i,
                          (long long)um_i64(b)[i], (long long)um_i64(a)[i]);
    } else {
        double mean = 0;
        int64_t finite = 0;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(um_f32(a)[i])) { mean += fabs(um_f32(a)[i]); finite++; }
        mean = finite ? mean / (double)finite : 0;
        for (int64_t i = 0; i < n; i++) {
            double x = um_f32(a)[i], y = um_f32(b)[i];
            if ((isnan(x) && isnan(y)) || x == y) continue;
            ck_assert_msg(fabs(x - y) <= rtol * (fabs(x) + mean), "%s: element %lld is %.9g, expected %.9g (rtol %g)",
                          what, (long long)i, y, x, rtol);
        }
    }
    um_tensor_release(a);
    um_tensor_release(b);
}

/* Every tensor of a set in two module trees. */
static void close_trees(const char *what, um_module *ref, um_module *got, um_tensor_set which, double rtol) {
    um_tensor *ta[64], *tb[64];
    int na = um_module_tensors(ref, which, ta, 64), nb = um_module_tensors(got, which, tb, 64);
    ck_assert_int_eq(na, nb);
    ck_assert_int_le(na, 64);
    for (int i = 0; i < na; i++) {
        char label[128];
        snprintf(label, sizeof label, "%s %d", what, i);
        close_rel(label, ta[i], tb[i], rtol);
    }
}

/* forward, backward (input and parameter gradients) and backward_input of one module on
 * both devices; m_cpu and m_dev hold the same parameters (m_dev already moved). */
static void layer_parity(const char *what, um_module *m_cpu, um_module *m_dev, int nd, const int64_t *in,
                         um_generator *g) {
    const um_backend *be = dev();
    um_tensor *x = rnd(nd, in, g, -1, 1), *dx = on(x, be), *y1, *y2, *gx1, *gx2;
    char label[160];
    for (int pass = 0; pass < 2; pass++) {   /* twice: buffers and plans are reused */
        ck_ok(um_module_forward(m_cpu, x, &y1));
        ck_ok(um_module_forward(m_dev, dx, &y2));
        snprintf(label, sizeof label, "%s forward", what);
        close_rel(label, y1, y2, RTOL);
        um_tensor *gy = rnd(y1->ndim, y1->size, g, -1, 1), *dgy = on(gy, be);
        ck_ok(um_module_zero_grad(m_cpu));
        ck_ok(um_module_zero_grad(m_dev));
        ck_ok(um_module_backward(m_cpu, x, gy, &gx1));
        ck_ok(um_module_backward(m_dev, dx, dgy, &gx2));
        snprintf(label, sizeof label, "%s backward", what);
        close_rel(label, gx1, gx2, RTOL);
        snprintf(label, sizeof label, "%s parameter gradient", what);
        close_trees(label, m_cpu, m_dev, UM_GRADS, RTOL);
        snprintf(label, sizeof label, "%s buffer", what);
        close_trees(label, m_cpu, m_dev, UM_BUFFERS, RTOL);
        ck_ok(um_module_backward_input(m_cpu, x, gy, &gx1));
        ck_ok(um_module_backward_input(m_dev, dx, dgy, &gx2));
        snprintf(label, sizeof label, "%s backward_input", what);
        close_rel(label, gx1, gx2, RTOL);
        um_tensor_release(gy);
        um_tensor_release(dgy);
        um_module_train(m_cpu, 0);   /* second pass in evaluation mode (batch norm) */
        um_module_train(m_dev, 0);
    }
    um_tensor_release(x);
    um_tensor_release(dx);
}

static __attribute__((unused)) void pair(um_module *cpu, um_module *other, const char *what, int nd, const int64_t *in, uint64_t seed) {
    um_generator g;
    um_generator_init(&g, seed);
    ck_ok(um_module_to(other, dev()));
    layer_parity(what, cpu, other, nd, in, &g);
    um_module_release(cpu);
    um_module_release(other);
}

/* ---- the suite's set-up ------------------------------------------------------------------ */

static int cuda_required(void) {
    const char *r = getenv("UMBRA_REQUIRE_CUDA");
    return r && *r && strcmp(r, "0") != 0;
}

START_TEST(skipped_without_device) {
    const char *why = um_backend_why_unavailable(parity_backend());
    ck_assert_msg(!cuda_required(), "UMBRA_REQUIRE_CUDA=1, but there is no %s device: %s", parity_backend(),
                  why ? why : "(no reason given)");
    ck_assert_ptr_null(um_find_backend(parity_backend()));
}
END_TEST

/* Under valgrind (scripts/run-tests sets UMBRA_MEMCHECK) the CUDA runtime is not even
 * loaded: its dlopen of the driver trips valgrind's checks of the dynamic loader. */
START_TEST(skipped_under_valgrind) {
    ck_assert_ptr_nonnull(getenv("UMBRA_MEMCHECK"));
}
END_TEST

/* A suite of one test case: add_tests adds the parity tests when the device is there. */
static Suite *parity_suite(const char *name, void (*add_tests)(TCase *)) {
    Suite *s = suite_create(name);
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 120);
    if (getenv("UMBRA_MEMCHECK")) {
        printf("SKIP cuda: not run under valgrind\n");
        tcase_add_test(tc, skipped_under_valgrind);
    } else if (!um_find_backend(parity_backend())) {
        const char *why = um_backend_why_unavailable(parity_backend());
        printf("%s cuda: no CUDA device (%s)\n", cuda_required() ? "FAIL" : "SKIP", why ? why : "no reason given");
        tcase_add_test(tc, skipped_without_device);
    } else {
        setenv("CK_FORK", "no", 0);   /* the context made by the probe above serves every test */
        add_tests(tc);
    }
    fflush(stdout);
    suite_add_tcase(s, tc);
    return s;
}

#endif
