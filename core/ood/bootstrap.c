/* Percentile bootstrap intervals for MMC and AUROC (detection.h). The AUROC resamples reuse
 * one sort of both sets: a resample only changes how often each point counts, so each one is
 * a weighted sweep over the sorted runs, O(n) instead of a new sort. */
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "error.h"
#include "ood/detection.h"
#include "ood/metrics.h"
#include "ood/scores.h"

typedef struct { float s; int positive; int64_t index; } indexed;

static int by_score(const void *a, const void *b) {
    float x = ((const indexed *)a)->s, y = ((const indexed *)b)->s;
    return (x > y) - (x < y);
}

/* The 2.5 and 97.5 percentiles of stats[0..n) (float32, as um_percentile reads them). */
static int interval(const double *stats, int n, double *lo, double *hi) {
    um_tensor *t;
    int64_t size = n;
    int rc = um_tensor_new(&t, UM_FLOAT32, 1, &size, NULL);
    if (rc) return rc;
    for (int i = 0; i < n; i++) um_f32(t)[i] = (float)stats[i];
    if (!(rc = um_percentile(t, 2.5, lo))) rc = um_percentile(t, 97.5, hi);
    um_tensor_release(t);
    return rc;
}

static int check_boot(int n_boot, um_generator *g, const char *fn) {
    if (n_boot < 2) return um_fail(UM_EINVAL, "%s: n_boot must be >= 2, got %d", fn, n_boot);
    if (!g) return um_fail(UM_EINVAL, "%s: needs a generator", fn);
    return UM_OK;
}

int um_bootstrap_mmc(const um_tensor *conf, int n_boot, um_generator *g, double *lo, double *hi) {
    int rc = um_check_scores(conf, "bootstrap_mmc", "conf");
    if (rc || (rc = check_boot(n_boot, g, "bootstrap_mmc"))) return rc;
    int64_t n = conf->size[0];
    double *stats = um_alloc(sizeof *stats * (size_t)n_boot);
    if (!stats) return UM_ENOMEM;
    for (int b = 0; b < n_boot; b++) {
        if (um_interrupt_requested()) { um_dealloc(stats); return um_fail(UM_EINTR, "bootstrap_mmc: interrupted"); }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += um_score_at(conf, (int64_t)um_rand_below(g, (uint64_t)n));
        stats[b] = s / (double)n;
    }
    rc = interval(stats, n_boot, lo, hi);
    um_dealloc(stats);
    return rc;
}

/* AUROC (ties half) of one resample: w[] holds each sorted entry's multiplicity. */
static double weighted_auroc(const indexed *v, const int64_t *w, int64_t n, int64_t n_in, int64_t n_out) {
    int64_t twice_u = 0, out_below = 0;
    for (int64_t i = 0; i < n;) {
        int64_t p = 0, q = 0, j = i;
        for (; j < n && v[j].s == v[i].s; j++) v[j].positive ? (p += w[j]) : (q += w[j]);
        twice_u += 2 * p * out_below + p * q;
        out_below += q;
        i = j;
    }
    return (double)twice_u / (2.0 * (double)n_in * (double)n_out);
}

int um_bootstrap_auroc(const um_tensor *conf_in, const um_tensor *conf_out, int n_boot, um_generator *g,
                       double *lo, double *hi) {
    int rc = um_check_scores(conf_in, "bootstrap_auroc", "conf_in");
    if (!rc) rc = um_check_scores(conf_out, "bootstrap_auroc", "conf_out");
    if (rc || (rc = check_boot(n_boot, g, "bootstrap_auroc"))) return rc;
    int64_t n_in = conf_in->size[0], n_out = conf_out->size[0], n = n_in + n_out;
    indexed *v = um_alloc(sizeof *v * (size_t)n);
    int64_t *where = um_alloc(sizeof *where * (size_t)n), *w = um_alloc(sizeof *w * (size_t)n);
    double *stats = um_alloc(sizeof *stats * (size_t)n_boot);
    if (!v || !where || !w || !stats) { rc = UM_ENOMEM; goto done; }
    for (int64_t i = 0; i < n_in; i++) v[i] = (indexed){um_score_at(conf_in, i), 1, i};
    for (int64_t i = 0; i < n_out; i++) v[n_in + i] = (indexed){um_score_at(conf_out, i), 0, n_in + i};
    qsort(v, (size_t)n, sizeof *v, by_score);
    for (int64_t k = 0; k < n; k++) where[v[k].index] = k;   /* drawn point -> its sorted place */
    for (int b = 0; b < n_boot; b++) {
        if (um_interrupt_requested()) { rc = um_fail(UM_EINTR, "bootstrap_auroc: interrupted"); goto done; }
        memset(w, 0, sizeof *w * (size_t)n);
        for (int64_t i = 0; i < n_in; i++) w[where[um_rand_below(g, (uint64_t)n_in)]]++;
        for (int64_t i = 0; i < n_out; i++) w[where[n_in + (int64_t)um_rand_below(g, (uint64_t)n_out)]]++;
        stats[b] = weighted_auroc(v, w, n, n_in, n_out);
    }
    rc = interval(stats, n_boot, lo, hi);
done:
    um_dealloc(v);
    um_dealloc(where);
    um_dealloc(w);
    um_dealloc(stats);
    return rc;
}
