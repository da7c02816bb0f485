/* Detection metrics against hand-computed values (the worked example of docs/worst-case.md:
 * in = (0.9, 0.8, 0.5), out = (0.5, 0.1)), against O(n^2) / brute-force counts on random
 * scores, the bootstrap against a resample-by-resample recomputation, and the sandwich's
 * checks (a point above its bound and a bound that breaks GAUC <= AAUC are errors). */
#include "check_main.h"
#include "ood/detection.h"
#include "ood/metrics.h"

static void contains(const char *text) {
    ck_assert_msg(strstr(um_last_error(), text) != NULL, "error '%s' lacks '%s'", um_last_error(), text);
}

static const float in3[3] = {0.9f, 0.8f, 0.5f}, out2[2] = {0.5f, 0.1f};

START_TEST(worked_example) {
    um_tensor *a = ck_vec(3, in3), *b = ck_vec(2, out2);
    double v, tau;
    ck_ok(um_auroc(a, b, &v));
    ck_close(v, 5.5 / 6, 1e-15);                 /* the tie counts half */
    ck_ok(um_auroc_conservative(a, b, &v));
    ck_close(v, 5.0 / 6, 1e-15);                 /* the tie counts as a failure */
    ck_ok(um_aupr_in(a, b, &v));
    ck_close(v, 11.0 / 12, 1e-15);               /* 1/3 + 1/3 + 1/3 * 3/4 */
    ck_ok(um_aupr_out(a, b, &v));
    ck_close(v, 5.0 / 6, 1e-15);                 /* 1/2 * 1 + 1/2 * 2/3 */
    ck_ok(um_fpr_at_tpr(a, b, 0.95, &v, &tau));  /* in-distribution positive (the paper) */
    ck_close(tau, 0.53, 1e-6);
    ck_close(v, 0, 0);
    ck_ok(um_fpr_at_tpr_ood_positive(a, b, 0.95, &v));   /* OpenOOD */
    ck_close(v, 1.0 / 3, 1e-15);
    ck_ok(um_detection_error(a, b, &v));
    ck_close(v, 1.0 / 6, 1e-15);                 /* threshold 0.8: one in below, no out above */
    um_tensor_release(a); um_tensor_release(b);
}
END_TEST

/* Random scores on a coarse grid (many ties): conservative AUROC, detection error and the
 * OOD-positive FPR against direct counts over all pairs / thresholds. */
START_TEST(random_against_brute_force) {
    um_generator g;
    um_generator_init(&g, 7);
    for (int trial = 0; trial < 20; trial++) {
        int ni = 1 + (int)um_rand_below(&g, 40), no = 1 + (int)um_rand_below(&g, 40);
        float vi[40], vo[40];
        for (int i = 0; i < ni; i++) vi[i] = (float)um_rand_below(&g, 8) / 8;
        for (int j = 0; j < no; j++) vo[j] = (float)um_rand_below(&g, 8) / 8;
        um_tensor *a = ck_vec(ni, vi), *b = ck_vec(no, vo);
        int64_t gt = 0;
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < no; j++) gt += vi[i] > vo[j];
        double v, best = 0.5, fpr = -1;
        ck_ok(um_auroc_conservative(a, b, &v));
        ck_close(v, (double)gt / (ni * no), 1e-12);
        for (int t = 0; t <= 8; t++) {   /* thresholds at the grid values (others add nothing) */
            float th = (float)t / 8;
            int below = 0, above = 0, in_le = 0, out_le = 0;
            for (int i = 0; i < ni; i++) below += vi[i] < th, in_le += vi[i] <= th;
            for (int j = 0; j < no; j++) above += vo[j] >= th, out_le += vo[j] <= th;
            double e = 0.5 * below / ni + 0.5 * (double)above / no;
            if (e < best) best = e;
            if (fpr < 0 && (double)out_le / no >= 0.95) fpr = (double)in_le / ni;
        }
        ck_ok(um_detection_error(a, b, &v));
        ck_close(v, best, 1e-12);
        ck_ok(um_fpr_at_tpr_ood_positive(a, b, 0.95, &v));
        ck_close(v, fpr, 1e-12);
        um_tensor_release(a); um_tensor_release(b);
    }
}
END_TEST

/* The same draws, resample by resample, through um_auroc and the mean: identical intervals. */
START_TEST(bootstrap_matches_recomputation) {
    enum { NI = 30, NO = 25, B = 50 };
    float vi[NI], vo[NO], ri[NI], ro[NO];
    um_generator g;
    um_generator_init(&g, 3);
    for (int i = 0; i < NI; i++) vi[i] = 0.5f + (float)um_rand_below(&g, 10) / 20;
    for (int j = 0; j < NO; j++) vo[j] = (float)um_rand_below(&g, 14) / 20;
    um_tensor *a = ck_vec(NI, vi), *b = ck_vec(NO, vo), *s, *m;
    double lo, hi, lo2, hi2, auc, stats[B], means[B];
    um_generator g1, g2;
    um_generator_init(&g1, 11);
    um_generator_init(&g2, 11);
    ck_ok(um_bootstrap_auroc(a, b, B, &g1, &lo, &hi));
    for (int k = 0; k < B; k++) {
        for (int i = 0; i < NI; i++) ri[i] = vi[um_rand_below(&g2, NI)];
        for (int j = 0; j < NO; j++) ro[j] = vo[um_rand_below(&g2, NO)];
        um_tensor *x = ck_vec(NI, ri), *y = ck_vec(NO, ro);
        ck_ok(um_auroc(x, y, &stats[k]));
        um_tensor_release(x); um_tensor_release(y);
    }
    float f[B];
    for (int k = 0; k < B; k++) f[k] = (float)stats[k];
    s = ck_vec(B, f);
    ck_ok(um_percentile(s, 2.5, &lo2));
    ck_ok(um_percentile(s, 97.5, &hi2));
    ck_assert(lo == lo2 && hi == hi2);
    ck_ok(um_auroc(a, b, &auc));
    ck_assert(lo <= auc && auc <= hi && lo < hi);
    /* MMC: the same comparison, and a constant set has a zero-width interval */
    um_generator_init(&g1, 5);
    um_generator_init(&g2, 5);
    ck_ok(um_bootstrap_mmc(a, B, &g1, &lo, &hi));
    for (int k = 0; k < B; k++) {
        double t = 0;
        for (int i = 0; i < NI; i++) t += vi[um_rand_below(&g2, NI)];
        f[k] = (float)(t / NI);
        means[k] = f[k];
    }
    m = ck_vec(B, f);
    ck_ok(um_percentile(m, 2.5, &lo2));
    ck_ok(um_percentile(m, 97.5, &hi2));
    ck_assert(lo == lo2 && hi == hi2 && means[0] > 0);
    float c[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    um_tensor *ct = ck_vec(4, c);
    ck_ok(um_bootstrap_mmc(ct, 10, &g1, &lo, &hi));
    ck_assert(lo == 0.25 && hi == 0.25);
    ck_fails(um_bootstrap_mmc(ct, 1, &g1, &lo, &hi), UM_EINVAL);
    contains("bootstrap_mmc: n_boot must be >= 2, got 1");
    ck_fails(um_bootstrap_auroc(a, b, 10, NULL, &lo, &hi), UM_EINVAL);
    contains("bootstrap_auroc: needs a generator");
    um_tensor_release(a); um_tensor_release(b); um_tensor_release(s); um_tensor_release(m); um_tensor_release(ct);
}
END_TEST

START_TEST(sandwich_orders_and_checks) {
    float clean[2] = {0.5f, 0.1f}, attack[2] = {0.85f, 0.6f}, bound[2] = {1.0f, 0.95f};
    um_tensor *in = ck_vec(3, in3), *c = ck_vec(2, clean), *a = ck_vec(2, attack), *u = ck_vec(2, bound);
    um_sandwich s;
    ck_ok(um_sandwich_aucs(in, c, a, u, 0, &s));
    ck_close(s.auc, 5.0 / 6, 1e-15);
    ck_close(s.aauc, 3.0 / 6, 1e-15);   /* 0.9 beats both, 0.8 beats 0.6 only */
    ck_close(s.gauc, 0.0, 0);
    ck_assert_int_eq(s.n, 2);
    ck_ok(um_sandwich_aucs(in, NULL, a, NULL, 0, &s));
    ck_assert(isnan(s.auc) && isnan(s.gauc));
    float low[2] = {1.0f, 0.55f};       /* point 1: attack 0.6 above its bound 0.55 */
    um_tensor *l = ck_vec(2, low);
    ck_fails(um_sandwich_aucs(in, c, a, l, 0, &s), UM_ENUMERIC);
    contains("sandwich: point 2 of 2: the attack's confidence 0.600000024 exceeds the certified bound 0.550000012");
    ck_ok(um_sandwich_aucs(in, c, a, l, 0.1, &s));   /* within the tolerance */
    float weak[2] = {0.4f, 0.6f};       /* point 0: the attack found less than the clean point */
    um_tensor *w = ck_vec(2, weak);
    ck_fails(um_sandwich_aucs(in, c, w, u, 0, &s), UM_ENUMERIC);
    contains("point 1 of 2: the attack's confidence 0.400000006 is below the clean one 0.5");
    um_tensor *one = ck_vec(1, bound);
    ck_fails(um_sandwich_aucs(in, c, a, one, 0, &s), UM_EINVAL);
    contains("sandwich: clean, attack and bound need one value per point, got 2, 2 and 1");
    um_tensor_release(in); um_tensor_release(c); um_tensor_release(a); um_tensor_release(u);
    um_tensor_release(l); um_tensor_release(w); um_tensor_release(one);
}
END_TEST

START_TEST(errors_name_the_input) {
    float nanv[2] = {0.5f, NAN};
    um_tensor *a = ck_vec(3, in3), *n = ck_vec(2, nanv), *e = ck_vec(0, in3);
    double v;
    ck_fails(um_aupr_out(a, n, &v), UM_ENUMERIC);
    contains("aupr_out: conf_out[1] is NaN");
    ck_fails(um_detection_error(e, a, &v), UM_EINVAL);
    contains("detection_error: conf_in is empty");
    ck_fails(um_fpr_at_tpr_ood_positive(a, a, 1.5, &v), UM_EINVAL);
    contains("tpr must be in (0, 1], got 1.5");
    um_tensor_release(a); um_tensor_release(n); um_tensor_release(e);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("detection");
    TCase *t = tcase_create("detection");
    tcase_add_test(t, worked_example);
    tcase_add_test(t, random_against_brute_force);
    tcase_add_test(t, bootstrap_matches_recomputation);
    tcase_add_test(t, sandwich_orders_and_checks);
    tcase_add_test(t, errors_name_the_input);
    suite_add_tcase(s, t);
    return s;
}
#include "check_main.h"
