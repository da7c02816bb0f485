/* Detection metrics of the OOD literature (detection.h): each is one sweep over the scores of
 * both sets sorted together, grouping equal scores, with exact integer counts; the bootstrap
 * sorts once and sweeps again per resample with the drawn multiplicities as weights. */
#include "ood/detection.h"
#include <math.h>
#include <stdlib.h>
#include "alloc.h"
#include "error.h"
#include "ood/metrics.h"
#include "ood/scores.h"

static int check_pair(const um_tensor *in, const um_tensor *out, const char *fn) {
    int rc = um_check_scores(in, fn, "conf_in");
    return rc ? rc : um_check_scores(out, fn, "conf_out");
}

/* Runs of equal scores in v[0..n), ascending: fn(in_count, out_count, ud) per run. */
typedef void (*run_fn)(int64_t p, int64_t q, void *ud);
static void sweep_runs(const um_scored *v, int64_t n, run_fn fn, void *ud) {
    for (int64_t i = 0; i < n;) {
        int64_t p = 0, q = 0, j = i;
        for (; j < n && v[j].s == v[i].s; j++) v[j].positive ? p++ : q++;
        fn(p, q, ud);
        i = j;
    }
}

typedef struct { int64_t pairs, out_below; } strict_pairs;
static void count_strict(int64_t p, int64_t q, void *ud) {
    strict_pairs *s = ud;
    s->pairs += p * s->out_below;
    s->out_below += q;
}

int um_auroc_conservative(const um_tensor *conf_in, const um_tensor *conf_out, double *auc) {
    int rc = check_pair(conf_in, conf_out, "auroc_conservative");
    um_scored *v;
    if (rc || (rc = um_sorted_scores(conf_in, conf_out, &v))) return rc;
    strict_pairs s = {0, 0};
    sweep_runs(v, conf_in->size[0] + conf_out->size[0], count_strict, &s);
    um_dealloc(v);
    *auc = (double)s.pairs / ((double)conf_in->size[0] * (double)conf_out->size[0]);
    return UM_OK;
}

/* Average precision with the positives flagged `positive_flag`, thresholds from the highest
 * score down (descending = 1) or from the lowest up (descending = 0, i.e. score -s). */
static double average_precision(const um_scored *v, int64_t n, int positive_flag, int descending, int64_t n_pos) {
    int64_t tp = 0, fp = 0, prev_tp = 0;
    double ap = 0;
    for (int64_t k = 0; k < n;) {
        int64_t i = descending ? n - 1 - k : k, j = k;
        for (; j < n; j++) {
            const um_scored *e = &v[descending ? n - 1 - j : j];
            if (e->s != v[i].s) break;
            (e->positive == positive_flag) ? tp++ : fp++;
        }
        ap += (double)(tp - prev_tp) / (double)n_pos * ((double)tp / (double)(tp + fp));
        prev_tp = tp;
        k = j;
    }
    return ap;
}

static int aupr(const um_tensor *in, const um_tensor *out, int in_positive, double *ap, const char *fn) {
    int rc = check_pair(in, out, fn);
    um_scored *v;
    if (rc || (rc = um_sorted_scores(in, out, &v))) return rc;
    int64_t n = in->size[0] + out->size[0];
    *ap = average_precision(v, n, in_positive, in_positive, in_positive ? in->size[0] : out->size[0]);
    um_dealloc(v);
    return UM_OK;
}

int um_aupr_in(const um_tensor *conf_in, const um_tensor *conf_out, double *ap) {
    return aupr(conf_in, conf_out, 1, ap, "aupr_in");
}

int um_aupr_out(const um_tensor *conf_in, const um_tensor *conf_out, double *ap) {
    return aupr(conf_in, conf_out, 0, ap, "aupr_out");
}

typedef struct { int64_t in_le, out_le, n_in, n_out; double tpr, fpr; int found; } ood_positive;
static void first_at_tpr(int64_t p, int64_t q, void *ud) {
    ood_positive *s = ud;
    s->in_le += p;
    s->out_le += q;
    if (!s->found && (double)s->out_le / (double)s->n_out >= s->tpr) {
        s->found = 1;
        s->fpr = (double)s->in_le / (double)s->n_in;
    }
}

int um_fpr_at_tpr_ood_positive(const um_tensor *conf_in, const um_tensor *conf_out, double tpr, double *fpr) {
    int rc = check_pair(conf_in, conf_out, "fpr_at_tpr_ood_positive");
    if (rc) return rc;
    if (!(tpr > 0 && tpr <= 1)) return um_fail(UM_EINVAL, "fpr_at_tpr_ood_positive: tpr must be in (0, 1], got %g", tpr);
    um_scored *v;
    if ((rc = um_sorted_scores(conf_in, conf_out, &v))) return rc;
    ood_positive s = {0, 0, conf_in->size[0], conf_out->size[0], tpr, 1.0, 0};
    sweep_runs(v, s.n_in + s.n_out, first_at_tpr, &s);
    um_dealloc(v);
    *fpr = s.fpr;   /* found always: at the highest score every OOD point is flagged */
    return UM_OK;
}

typedef struct { int64_t in_below, out_below, n_in, n_out; double best; } detection;
static void detection_at(int64_t p, int64_t q, void *ud) {
    detection *s = ud;   /* threshold t = this run's score: in < t and out >= t are errors */
    double e = 0.5 * (double)s->in_below / (double)s->n_in + 0.5 * (double)(s->n_out - s->out_below) / (double)s->n_out;
    if (e < s->best) s->best = e;
    s->in_below += p;
    s->out_below += q;
}

int um_detection_error(const um_tensor *conf_in, const um_tensor *conf_out, double *err) {
    int rc = check_pair(conf_in, conf_out, "detection_error");
    um_scored *v;
    if (rc || (rc = um_sorted_scores(conf_in, conf_out, &v))) return rc;
    detection s = {0, 0, conf_in->size[0], conf_out->size[0], 0.5};   /* t = +-inf: 0.5 */
    sweep_runs(v, s.n_in + s.n_out, detection_at, &s);
    um_dealloc(v);
    *err = s.best;
    return UM_OK;
}

int um_sandwich_aucs(const um_tensor *conf_in, const um_tensor *clean, const um_tensor *attack,
                     const um_tensor *bound, double tol, um_sandwich *out) {
    const char *fn = "sandwich";
    int rc = um_check_scores(conf_in, fn, "conf_in");
    if (!rc) rc = um_check_scores(attack, fn, "attack");
    if (!rc && clean) rc = um_check_scores(clean, fn, "clean");
    if (!rc && bound) rc = um_check_scores(bound, fn, "bound");
    if (rc) return rc;
    if (!(tol >= 0)) return um_fail(UM_EINVAL, "sandwich: tol must be >= 0, got %g", tol);
    int64_t n = attack->size[0];
    if ((clean && clean->size[0] != n) || (bound && bound->size[0] != n))
        return um_fail(UM_EINVAL, "sandwich: clean, attack and bound need one value per point, got %lld, %lld and %lld",
                       (long long)(clean ? clean->size[0] : n), (long long)n, (long long)(bound ? bound->size[0] : n));
    for (int64_t i = 0; i < n; i++) {
        double a = um_score_at(attack, i);
        if (clean && (double)um_score_at(clean, i) > a + tol)
            return um_fail(UM_ENUMERIC, "sandwich: point %lld of %lld: the attack's confidence %.9g is below the clean one %.9g",
                           (long long)(i + 1), (long long)n, a, (double)um_score_at(clean, i));
        if (bound && a > (double)um_score_at(bound, i) + tol)
            return um_fail(UM_ENUMERIC, "sandwich: point %lld of %lld: the attack's confidence %.9g exceeds the certified bound %.9g "
                           "(an unsound bound or a wrong attack)", (long long)(i + 1), (long long)n, a, (double)um_score_at(bound, i));
    }
    um_sandwich s = {NAN, NAN, NAN, n};
    if ((rc = um_auroc_conservative(conf_in, attack, &s.aauc))) return rc;
    if (clean && (rc = um_auroc_conservative(conf_in, clean, &s.auc))) return rc;
    if (bound && (rc = um_auroc_conservative(conf_in, bound, &s.gauc))) return rc;
    if ((clean && s.aauc > s.auc) || (bound && s.gauc > s.aauc))
        return um_fail(UM_ENUMERIC, "sandwich: need GAUC <= AAUC <= AUC, got GAUC %.9g, AAUC %.9g, AUC %.9g", s.gauc, s.aauc,
                       s.auc);
    *out = s;
    return UM_OK;
}
