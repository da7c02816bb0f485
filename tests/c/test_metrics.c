/* Evaluation metrics against hand-computed values: max confidence, MMC, AUROC with ties
 * (and against an O(n^2) pair count), NumPy's linear percentile, FPR at 95 % TPR, ROC points,
 * resistance with the guard column at index K, row selection; errors and allocation failures. */
#include "check_main.h"
#include "ood/metrics.h"

static double auroc_of(int n_in, const float *in, int n_out, const float *out) {
    um_tensor *a = ck_vec(n_in, in), *b = ck_vec(n_out, out);
    double auc = -1;
    ck_ok(um_auroc(a, b, &auc));
    um_tensor_release(a);
    um_tensor_release(b);
    return auc;
}

static void contains(const char *text) {
    ck_assert_msg(strstr(um_last_error(), text) != NULL, "error '%s' lacks '%s'", um_last_error(), text);
}

START_TEST(max_conf_rows) {
    float p[6] = {0.1f, 0.7f, 0.2f, 0.5f, 0.25f, 0.25f};
    um_tensor *probs = ck_mat(2, 3, p), *c, *pt, *ct;
    ck_ok(um_max_conf(&c, probs));
    ck_assert_int_eq(c->size[0], 2);
    ck_assert(um_f32(c)[0] == 0.7f && um_f32(c)[1] == 0.5f);
    ck_ok(um_transpose(&pt, probs, 0, 1));   /* (3, 2) strided: row maxima 0.5, 0.7, 0.25 */
    ck_ok(um_max_conf(&ct, pt));
    ck_assert(um_f32(ct)[0] == 0.5f && um_f32(ct)[1] == 0.7f && um_f32(ct)[2] == 0.25f);
    ck_fails(um_max_conf(&ct, c), UM_EINVAL);
    contains("max_conf: probs must be a matrix (n, K) with K >= 1, got size 2");
    um_tensor_release(c); um_tensor_release(ct); um_tensor_release(pt); um_tensor_release(probs);
}
END_TEST

START_TEST(mmc_mean) {
    float v[3] = {0.5f, 1.0f, 0.75f};
    um_tensor *c = ck_vec(3, v), *e = ck_vec(0, v);
    double m;
    ck_ok(um_mmc(c, &m));
    ck_close(m, 0.75, 1e-12);
    ck_fails(um_mmc(e, &m), UM_EINVAL);
    contains("mmc: conf is empty");
    um_tensor_release(c); um_tensor_release(e);
}
END_TEST

START_TEST(auroc_hand_values) {
    float hi[2] = {0.9f, 0.8f}, lo[2] = {0.1f, 0.2f};
    ck_close(auroc_of(2, hi, 2, lo), 1.0, 0);               /* perfect separation */
    ck_close(auroc_of(2, lo, 2, hi), 0.0, 0);               /* reversed */
    float same[3] = {0.5f, 0.5f, 0.5f};
    ck_close(auroc_of(3, same, 2, same), 0.5, 0);            /* all equal */
    float in1[3] = {0.9f, 0.5f, 0.5f}, out1[2] = {0.5f, 0.1f};
    ck_close(auroc_of(3, in1, 2, out1), 5.0 / 6.0, 1e-15);   /* (2 + 2 * 1.5) / 6 */
    float in2[4] = {0.3f, 0.7f, 0.7f, 0.2f}, out2[3] = {0.7f, 0.1f, 0.3f};
    ck_close(auroc_of(4, in2, 3, out2), 7.5 / 12.0, 1e-15);  /* 1.5 + 2 * 2.5 + 1 */
    float one_in[1] = {0.4f}, one_out[1] = {0.4f};
    ck_close(auroc_of(1, one_in, 1, one_out), 0.5, 0);
}
END_TEST

/* Quantised random scores (many ties) against the definition: pairs counted one by one. */
START_TEST(auroc_matches_pair_count) {
    enum { NI = 157, NO = 211 };
    float in[NI], out[NO];
    unsigned s = 12345;
    for (int i = 0; i < NI; i++) { s = s * 1103515245u + 12345u; in[i] = (float)((s >> 16) % 23) / 22.0f; }
    for (int i = 0; i < NO; i++) { s = s * 1103515245u + 12345u; out[i] = (float)((s >> 16) % 17) / 22.0f; }
    double pairs = 0;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NO; j++) pairs += in[i] > out[j] ? 1.0 : in[i] == out[j] ? 0.5 : 0.0;
    ck_close(auroc_of(NI, in, NO, out), pairs / (NI * NO), 1e-12);
    /* and the trapezoidal area under the ROC points is the same number (sklearn's route) */
    um_tensor *a = ck_vec(NI, in), *b = ck_vec(NO, out), *f, *t, *th;
    ck_ok(um_roc_curve(a, b, &f, &t, &th));
    double area = 0;
    for (int64_t k = 1; k < f->size[0]; k++)
        area += (um_f32(f)[k] - um_f32(f)[k - 1]) * (um_f32(t)[k] + um_f32(t)[k - 1]) / 2;
    ck_close(area, pairs / (NI * NO), 1e-6);
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(f); um_tensor_release(t); um_tensor_release(th);
}
END_TEST

START_TEST(auroc_errors) {
    float v[2] = {0.5f, NAN};
    um_tensor *a = ck_vec(1, v), *nan = ck_vec(2, v), *e = ck_vec(0, v);
    double auc;
    ck_fails(um_auroc(a, e, &auc), UM_EINVAL);
    contains("auroc: conf_out is empty");
    ck_fails(um_auroc(nan, a, &auc), UM_ENUMERIC);
    contains("auroc: conf_in[1] is NaN");
    int64_t l[1] = {1};
    um_tensor *lab = ck_longs(1, l);
    ck_fails(um_auroc(lab, a, &auc), UM_EINVAL);
    contains("auroc: conf_in must be float32, got int64");
    um_tensor_release(a); um_tensor_release(nan); um_tensor_release(e); um_tensor_release(lab);
}
END_TEST

static double pct(int n, const float *v, double q) {
    um_tensor *t = ck_vec(n, v);
    double r = -1;
    ck_ok(um_percentile(t, q, &r));
    um_tensor_release(t);
    return r;
}

/* Values as np.percentile(x, q) gives them (default method 'linear'). */
START_TEST(percentile_numpy_linear) {
    float x[4] = {4, 1, 3, 2};
    ck_close(pct(4, x, 50), 2.5, 0);
    ck_close(pct(4, x, 5), 1.15, 1e-15);    /* index 0.15 */
    ck_close(pct(4, x, 25), 1.75, 0);       /* index 0.75: 2 - 1 * 0.25 */
    ck_close(pct(4, x, 0), 1, 0);
    ck_close(pct(4, x, 100), 4, 0);
    float one[1] = {7};
    ck_close(pct(1, one, 5), 7, 0);
    float r[21];
    for (int i = 0; i <= 20; i++) r[i] = (float)i;
    ck_close(pct(21, r, 5), 1, 0);          /* index exactly 1 */
    static float big[10000];
    for (int i = 0; i < 10000; i++) big[i] = (float)(9999 - i);
    ck_close(pct(10000, big, 5), 499.95, 1e-9);  /* index 499.95 */
    float tie[5] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    ck_close(pct(5, tie, 5), 0.5, 0);
    um_tensor *t = ck_vec(4, x);
    double v;
    ck_fails(um_percentile(t, 101, &v), UM_EINVAL);
    contains("percentile: q must be in [0, 100], got 101");
    um_tensor_release(t);
}
END_TEST

START_TEST(fpr_at_95) {
    float in[21], out[5] = {0.0f, 0.04f, 0.05f, 0.06f, 1.0f};
    for (int i = 0; i <= 20; i++) in[i] = (float)i / 20.0f;
    um_tensor *a = ck_vec(21, in), *b = ck_vec(5, out);
    double fpr, tau;
    ck_ok(um_fpr_at_tpr(a, b, 0.95, &fpr, &tau));
    ck_assert_msg(tau == (double)0.05f, "tau %.17g", tau);  /* q = 5 exactly: index 1.0 */
    ck_close(fpr, 0.6, 1e-15);              /* 0.05, 0.06, 1.0 reach tau: ties count */
    ck_ok(um_fpr_at_tpr(a, b, 1.0, &fpr, &tau));
    ck_close(tau, 0, 0);
    ck_close(fpr, 1.0, 0);
    um_tensor_release(a); um_tensor_release(b);
    float in2[5] = {1.0f, 0.8f, 0.6f, 0.4f, 0.2f}, out2[4] = {0.23f, 0.25f, 0.1f, 0.9f};
    a = ck_vec(5, in2); b = ck_vec(4, out2);
    ck_ok(um_fpr_at_tpr(a, b, 0.95, &fpr, &tau));
    ck_close(tau, 0.24, 1e-7);              /* index 0.2 between 0.2 and 0.4 */
    ck_close(fpr, 0.5, 0);
    ck_fails(um_fpr_at_tpr(a, b, 0, &fpr, &tau), UM_EINVAL);
    contains("fpr_at_tpr: tpr must be in (0, 1], got 0");
    um_tensor *e = ck_vec(0, in2);
    ck_fails(um_fpr_at_tpr(e, b, 0.95, &fpr, &tau), UM_EINVAL);
    contains("fpr_at_tpr: conf_in is empty");
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(e);
}
END_TEST

START_TEST(roc_points) {
    float in[3] = {0.9f, 0.5f, 0.5f}, out[2] = {0.5f, 0.1f};
    um_tensor *a = ck_vec(3, in), *b = ck_vec(2, out), *f, *t, *th;
    ck_ok(um_roc_curve(a, b, &f, &t, &th));
    ck_assert_int_eq(f->size[0], 4);
    float ef[4] = {0, 0, 0.5f, 1}, et[4] = {0, 1.0f / 3, 1, 1}, eth[4] = {INFINITY, 0.9f, 0.5f, 0.1f};
    for (int i = 0; i < 4; i++) {
        ck_close(um_f32(f)[i], ef[i], 1e-7);
        ck_close(um_f32(t)[i], et[i], 1e-7);
        ck_assert(um_f32(th)[i] == eth[i]);
    }
    um_tensor_release(f); um_tensor_release(t); um_tensor_release(th);
    ck_ok(um_roc_curve(a, a, &f, &t, NULL));  /* the same scores: the diagonal */
    ck_assert_int_eq(f->size[0], 3);
    ck_close(um_f32(f)[1], 1.0 / 3, 1e-7);
    ck_close(um_f32(t)[1], 1.0 / 3, 1e-7);
    um_tensor_release(f); um_tensor_release(t);
    um_tensor_release(a); um_tensor_release(b);
}
END_TEST

START_TEST(resistance_guard_at_k) {
    float p[18] = {0.8f, 0.1f, 0.1f,        /* label 0: resisted */
                   0.1f, 0.8f, 0.1f,        /* label 0: attack won */
                   0.34f, 0.33f, 0.33f,     /* label 0: 0.34 > guard 0.33667: resisted */
                   0.335f, 0.333f, 0.332f,  /* label 0: the guard is the arg-max */
                   0.5f, 0.5f, 0.0f,        /* label 1: tie, the first arg-max is class 0 */
                   1.0f / 3, 1.0f / 3, 1.0f / 3};  /* label 2: uniform: the guard */
    int64_t y[6] = {0, 0, 0, 0, 1, 2}, y1[6] = {1, 1, 1, 1, 2, 3};
    um_tensor *probs = ck_mat(6, 3, p), *l0 = ck_longs(6, y), *l1 = ck_longs(6, y1), *mask;
    double frac;
    ck_ok(um_resistance(probs, l0, 0, &frac, &mask));
    ck_close(frac, 2.0 / 6, 1e-15);
    float em[6] = {0, 1, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++) ck_assert(um_f32(mask)[i] == em[i]);
    um_tensor_release(mask);
    ck_ok(um_resistance(probs, l1, 1, &frac, NULL));   /* Lua's 1..K labels */
    ck_close(frac, 2.0 / 6, 1e-15);
    ck_fails(um_resistance(probs, l1, 0, &frac, NULL), UM_EINVAL);
    contains("resistance: labels[5] = 3 is not a class in 0..2");
    um_tensor *short_l = ck_longs(2, y);
    ck_fails(um_resistance(probs, short_l, 0, &frac, NULL), UM_EINVAL);
    contains("labels must be an int64 CPU vector of 6 labels (probs 6x3), got int64 2");
    um_tensor_release(probs); um_tensor_release(l0); um_tensor_release(l1); um_tensor_release(short_l);
}
END_TEST

/* With K = 100 the guard is 0.0101 at index 100; the authors' index 10 would misjudge class 50. */
START_TEST(resistance_hundred_classes) {
    static float p[2 * 100];
    for (int j = 0; j < 100; j++) p[j] = p[100 + j] = 0.5f / 99;
    p[50] = 0.5f;                 /* confident and right */
    p[100 + 50] = 0.0102f;        /* barely above the guard: still resisted */
    for (int j = 0; j < 100; j++) if (j != 50) p[100 + j] = (1 - 0.0102f) / 99;  /* 0.00999 < guard */
    int64_t y[2] = {50, 50};
    um_tensor *probs = ck_mat(2, 100, p), *l = ck_longs(2, y);
    double frac;
    ck_ok(um_resistance(probs, l, 0, &frac, NULL));
    ck_close(frac, 1.0, 0);
    um_f32(probs)[100 + 50] = 0.0100f;   /* below 1.01 / 100: the guard wins */
    ck_ok(um_resistance(probs, l, 0, &frac, NULL));
    ck_close(frac, 0.5, 0);
    um_tensor_release(probs); um_tensor_release(l);
}
END_TEST

START_TEST(select_rows_by_mask) {
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, m[4] = {1, 0, 0, 1}, none[4] = {0};
    int64_t mi[4] = {0, 1, 0, 0};
    um_tensor *xt = ck_mat(4, 2, x), *mt = ck_vec(4, m), *mit = ck_longs(4, mi), *z = ck_vec(4, none), *r;
    ck_ok(um_select_rows(&r, xt, mt));
    ck_assert_int_eq(r->size[0], 2);
    ck_assert(um_f32(r)[0] == 1 && um_f32(r)[1] == 2 && um_f32(r)[2] == 7 && um_f32(r)[3] == 8);
    um_tensor_release(r);
    ck_ok(um_select_rows(&r, xt, mit));
    ck_assert(r->size[0] == 1 && um_f32(r)[0] == 3 && um_f32(r)[1] == 4);
    um_tensor_release(r);
    ck_ok(um_select_rows(&r, xt, z));
    ck_assert(r->size[0] == 0 && r->size[1] == 2);
    um_tensor_release(r);
    ck_fails(um_select_rows(&r, xt, xt), UM_EINVAL);
    contains("select_rows: mask must be a vector of one entry per row of x, got x 4x2 and mask 4x2");
    um_tensor_release(xt); um_tensor_release(mt); um_tensor_release(mit); um_tensor_release(z);
}
END_TEST

/* Every allocation of every metric fails in turn: an error, and nothing left allocated. */
START_TEST(allocation_failures_leak_nothing) {
    float in[4] = {0.9f, 0.5f, 0.5f, 0.2f}, out[3] = {0.5f, 0.1f, 0.7f}, p[6] = {0.6f, 0.4f, 0.3f, 0.7f, 0.5f, 0.5f};
    int64_t y[3] = {0, 0, 1};
    um_tensor *a = ck_vec(4, in), *b = ck_vec(3, out), *probs = ck_mat(3, 2, p), *l = ck_longs(3, y);
    int64_t before = um_live_bytes();
    for (int which = 0; which < 6; which++) {
        for (int n = 1;; n++) {
            um_alloc_fail_after(n);
            um_tensor *r1 = NULL, *r2 = NULL, *r3 = NULL;
            double v, w;
            int rc = which == 0 ? um_auroc(a, b, &v)
                   : which == 1 ? um_percentile(a, 5, &v)
                   : which == 2 ? um_roc_curve(a, b, &r1, &r2, &r3)
                   : which == 3 ? um_resistance(probs, l, 0, &v, &r1)
                   : which == 4 ? um_max_conf(&r1, probs)
                                : um_fpr_at_tpr(a, b, 0.95, &v, &w);
            um_alloc_fail_after(0);
            um_tensor_release(r1); um_tensor_release(r2); um_tensor_release(r3);
            ck_assert_int_eq(um_live_bytes(), before);
            if (rc == UM_OK) break;
            ck_assert_int_eq(rc, UM_ENOMEM);
        }
    }
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(probs); um_tensor_release(l);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, max_conf_rows);
    tcase_add_test(tc, mmc_mean);
    tcase_add_test(tc, auroc_hand_values);
    tcase_add_test(tc, auroc_matches_pair_count);
    tcase_add_test(tc, auroc_errors);
    tcase_add_test(tc, percentile_numpy_linear);
    tcase_add_test(tc, fpr_at_95);
    tcase_add_test(tc, roc_points);
    tcase_add_test(tc, resistance_guard_at_k);
    tcase_add_test(tc, resistance_hundred_classes);
    tcase_add_test(tc, select_rows_by_mask);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}
