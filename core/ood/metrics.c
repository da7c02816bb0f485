/* Evaluation metrics (core/ood/metrics.h): the scores are copied once into a sort buffer, so
 * inputs may be strided; every count is exact (integers), and the floating-point steps
 * follow NumPy/sklearn where the authors' numbers came from them (percentile in float32
 * differences, the guard column rounded to float32 like np.insert into a float32 array). */
#include "ood/metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ood/scores.h"

/* A host float32 vector with at least one element and no NaN. */
int um_check_scores(const um_tensor *t, const char *fn, const char *what) {
    char b[64];
    if (!t) return um_fail(UM_EINVAL, "%s: %s is missing", fn, what);
    if (!um_backend_of(t)->is_host)
        return um_fail(UM_EDEVICE, "%s: %s must be on the CPU, got a %s tensor", fn, what, um_backend_of(t)->name);
    if (t->dtype != UM_FLOAT32)
        return um_fail(UM_EINVAL, "%s: %s must be float32, got %s", fn, what, um_dtype_name(t->dtype));
    if (t->ndim != 1)
        return um_fail(UM_EINVAL, "%s: %s must be a vector (n), got size %s", fn, what, um_shape_str(t, b, sizeof b));
    if (t->size[0] == 0) return um_fail(UM_EINVAL, "%s: %s is empty", fn, what);
    for (int64_t i = 0; i < t->size[0]; i++)
        if (isnan(um_score_at(t, i)))
            return um_fail(UM_ENUMERIC, "%s: %s[%lld] is NaN", fn, what, (long long)i);
    return UM_OK;
}

/* A host float32 matrix (n, K), K >= 1. */
static int check_probs(const um_tensor *p, const char *fn) {
    char b[64];
    if (!p) return um_fail(UM_EINVAL, "%s: probs is missing", fn);
    if (!um_backend_of(p)->is_host)
        return um_fail(UM_EDEVICE, "%s: probs must be on the CPU, got a %s tensor", fn, um_backend_of(p)->name);
    if (p->dtype != UM_FLOAT32) return um_fail(UM_EINVAL, "%s: probs must be float32, got %s", fn, um_dtype_name(p->dtype));
    if (p->ndim != 2 || p->size[1] < 1)
        return um_fail(UM_EINVAL, "%s: probs must be a matrix (n, K) with K >= 1, got size %s", fn,
                       um_shape_str(p, b, sizeof b));
    return UM_OK;
}

int um_max_conf(um_tensor **out, const um_tensor *probs) {
    int rc = check_probs(probs, "max_conf");
    if (rc) return rc;
    int64_t n = probs->size[0], k = probs->size[1], s0 = probs->stride[0], s1 = probs->stride[1];
    um_tensor *t;
    if ((rc = um_tensor_new(&t, UM_FLOAT32, 1, &n, NULL))) return rc;
    const float *p = um_f32(probs);
    float *o = um_f32(t);
    for (int64_t i = 0; i < n; i++) {
        float m = p[i * s0];
        for (int64_t j = 1; j < k && !isnan(m); j++) {  /* NaN propagates, as in np.max */
            float v = p[i * s0 + j * s1];
            if (v > m || isnan(v)) m = v;
        }
        o[i] = m;
    }
    *out = t;
    return UM_OK;
}

int um_mmc(const um_tensor *conf, double *mmc) {
    int rc = um_check_scores(conf, "mmc", "conf");
    if (rc) return rc;
    double s = 0;
    for (int64_t i = 0; i < conf->size[0]; i++) s += um_score_at(conf, i);
    *mmc = s / (double)conf->size[0];
    return UM_OK;
}

static int by_score(const void *a, const void *b) {
    float x = ((const um_scored *)a)->s, y = ((const um_scored *)b)->s;
    return (x > y) - (x < y);
}

/* All scores of both sets, sorted ascending, in a new buffer (um_dealloc). */
int um_sorted_scores(const um_tensor *pos, const um_tensor *neg, um_scored **out) {
    int64_t np_ = pos->size[0], nn = neg->size[0];
    um_scored *v = um_alloc(sizeof *v * (size_t)(np_ + nn));
    if (!v) return UM_ENOMEM;
    for (int64_t i = 0; i < np_; i++) v[i] = (um_scored){um_score_at(pos, i), 1};
    for (int64_t i = 0; i < nn; i++) v[np_ + i] = (um_scored){um_score_at(neg, i), 0};
    qsort(v, (size_t)(np_ + nn), sizeof *v, by_score);
    *out = v;
    return UM_OK;
}

int um_auroc(const um_tensor *conf_in, const um_tensor *conf_out, double *auc) {
    int rc = um_check_scores(conf_in, "auroc", "conf_in");
    if (!rc) rc = um_check_scores(conf_out, "auroc", "conf_out");
    if (rc) return rc;
    um_scored *v;
    if ((rc = um_sorted_scores(conf_in, conf_out, &v))) return rc;
    int64_t n = conf_in->size[0] + conf_out->size[0], neg_below = 0;
    int64_t twice_u = 0;  /* 2 U: every (in, out) pair scores 2 if in > out, 1 if tied */
    for (int64_t i = 0; i < n;) {
        int64_t p = 0, q = 0, j = i;
        for (; j < n && v[j].s == v[i].s; j++) v[j].positive ? p++ : q++;
        twice_u += 2 * p * neg_below + p * q;
        neg_below += q;
        i = j;
    }
    um_dealloc(v);
    *auc = (double)twice_u / (2.0 * (double)conf_in->size[0] * (double)conf_out->size[0]);
    return UM_OK;
}

static int by_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* NumPy's linear method: virtual index (n-1) q/100, and _lerp(a, b, g) = a + (b-a) g, or
 * b - (b-a)(1-g) when g >= 0.5, where b-a is a float32 difference of float32 data. */
static double numpy_linear(const float *sorted, int64_t n, double q) {
    volatile double fraction = q / 100.0;
    double vi = (double)(n - 1) * fraction;
    if (vi >= (double)(n - 1)) return sorted[n - 1];
    if (vi <= 0) return sorted[0];
    int64_t lo = (int64_t)floor(vi);
    double g = vi - (double)lo;
    float a = sorted[lo], b = sorted[lo + 1];
    float diff = b - a;
    /* volatile: rounded products as NumPy has them, never fused into an FMA (-mfma) */
    volatile double step = g >= 0.5 ? (double)diff * (1.0 - g) : (double)diff * g;
    return g >= 0.5 ? (double)b - step : (double)a + step;
}

int um_percentile(const um_tensor *x, double q, double *value) {
    int rc = um_check_scores(x, "percentile", "x");
    if (rc) return rc;
    if (!(q >= 0 && q <= 100)) return um_fail(UM_EINVAL, "percentile: q must be in [0, 100], got %g", q);
    int64_t n = x->size[0];
    float *v = um_alloc(sizeof *v * (size_t)n);
    if (!v) return UM_ENOMEM;
    for (int64_t i = 0; i < n; i++) v[i] = um_score_at(x, i);
    qsort(v, (size_t)n, sizeof *v, by_float);
    *value = numpy_linear(v, n, q);
    um_dealloc(v);
    return UM_OK;
}

int um_fpr_at_tpr(const um_tensor *conf_in, const um_tensor *conf_out, double tpr, double *fpr, double *tau) {
    int rc = um_check_scores(conf_in, "fpr_at_tpr", "conf_in");
    if (!rc) rc = um_check_scores(conf_out, "fpr_at_tpr", "conf_out");
    if (rc) return rc;
    if (!(tpr > 0 && tpr <= 1)) return um_fail(UM_EINVAL, "fpr_at_tpr: tpr must be in (0, 1], got %g", tpr);
    /* 100 - 100 tpr, not 100 (1 - tpr), and the product rounded before the difference (no
     * FMA): for tpr = 0.95 this is exactly NumPy's q = 5 */
    volatile double scaled = 100.0 * tpr;
    double t;
    if ((rc = um_percentile(conf_in, 100.0 - scaled, &t))) return rc;
    int64_t above = 0, n = conf_out->size[0];
    for (int64_t i = 0; i < n; i++) above += (double)um_score_at(conf_out, i) >= t;
    *fpr = (double)above / (double)n;
    if (tau) *tau = t;
    return UM_OK;
}

int um_roc_curve(const um_tensor *conf_in, const um_tensor *conf_out, um_tensor **fpr, um_tensor **tpr,
                 um_tensor **thresholds) {
    int rc = um_check_scores(conf_in, "roc_curve", "conf_in");
    if (!rc) rc = um_check_scores(conf_out, "roc_curve", "conf_out");
    if (rc) return rc;
    um_scored *v;
    if ((rc = um_sorted_scores(conf_in, conf_out, &v))) return rc;
    int64_t n = conf_in->size[0] + conf_out->size[0], m = 1;
    for (int64_t i = 1; i < n; i++) m += v[i].s != v[i - 1].s;
    m += 1;  /* the (0, 0) point at +inf */
    um_tensor *f = NULL, *t = NULL, *th = NULL;
    if ((rc = um_tensor_new(&f, UM_FLOAT32, 1, &m, NULL)) || (rc = um_tensor_new(&t, UM_FLOAT32, 1, &m, NULL)) ||
        (thresholds && (rc = um_tensor_new(&th, UM_FLOAT32, 1, &m, NULL)))) {
        um_tensor_release(f);
        um_tensor_release(t);
        um_dealloc(v);
        return rc;
    }
    double n_in = (double)conf_in->size[0], n_out = (double)conf_out->size[0];
    int64_t tp = 0, fp = 0, k = 0;
    um_f32(f)[0] = 0;
    um_f32(t)[0] = 0;
    if (th) um_f32(th)[0] = INFINITY;
    for (int64_t i = n - 1; i >= 0;) {  /* from the highest score down, one point per value */
        int64_t j = i;
        for (; j >= 0 && v[j].s == v[i].s; j--) v[j].positive ? tp++ : fp++;
        k++;
        um_f32(f)[k] = (float)((double)fp / n_out);
        um_f32(t)[k] = (float)((double)tp / n_in);
        if (th) um_f32(th)[k] = v[i].s;
        i = j;
    }
    um_dealloc(v);
    *fpr = f;
    *tpr = t;
    if (thresholds) *thresholds = th;
    return UM_OK;
}

int um_resistance(const um_tensor *probs, const um_tensor *labels, int64_t label_base, double *fraction,
                  um_tensor **not_resisted) {
    char b1[64], b2[64];
    int rc = check_probs(probs, "resistance");
    if (rc) return rc;
    if (!labels || !um_backend_of(labels)->is_host || labels->dtype != UM_INT64 || labels->ndim != 1 ||
        labels->size[0] != probs->size[0])
        return um_fail(UM_EINVAL, "resistance: labels must be an int64 CPU vector of %lld labels (probs %s), got %s%s%s",
                       (long long)probs->size[0], um_shape_str(probs, b1, sizeof b1),
                       labels ? um_dtype_name(labels->dtype) : "nothing", labels ? " " : "",
                       labels ? (um_backend_of(labels)->is_host ? um_shape_str(labels, b2, sizeof b2) : " on a device") : "");
    int64_t n = probs->size[0], k = probs->size[1], s0 = probs->stride[0], s1 = probs->stride[1];
    if (n == 0) return um_fail(UM_EINVAL, "resistance: probs is empty");
    const int64_t *y = um_i64(labels);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = y[i * labels->stride[0]];
        if (c < label_base || c >= label_base + k)
            return um_fail(UM_EINVAL, "resistance: labels[%lld] = %lld is not a class in %lld..%lld", (long long)(i + label_base),
                           (long long)c, (long long)label_base, (long long)(label_base + k - 1));
    }
    um_tensor *mask = NULL;
    if (not_resisted && (rc = um_tensor_new(&mask, UM_FLOAT32, 1, &n, NULL))) return rc;
    const float guard = (float)(1.01 / (double)k);  /* np.insert into float32 probs rounds it */
    const float *p = um_f32(probs);
    int64_t resisted = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (p[i * s0 + j * s1] > p[i * s0 + best * s1]) best = j;
        if (guard > p[i * s0 + best * s1]) best = k;   /* first arg-max: the guard wins only if strictly larger */
        int ok = best == y[i * labels->stride[0]] - label_base;
        resisted += ok;
        if (mask) um_f32(mask)[i] = ok ? 0.0f : 1.0f;
    }
    *fraction = (double)resisted / (double)n;
    if (not_resisted) *not_resisted = mask;
    return UM_OK;
}

int um_select_rows(um_tensor **out, const um_tensor *x, const um_tensor *mask) {
    char b1[64], b2[64];
    if (!x || !mask) return um_fail(UM_EINVAL, "select_rows: x and mask are required");
    if (!um_backend_of(x)->is_host || !um_backend_of(mask)->is_host)
        return um_fail(UM_EDEVICE, "select_rows: x and mask must be on the CPU");
    if (x->ndim < 1 || mask->ndim != 1 || mask->size[0] != x->size[0])
        return um_fail(UM_EINVAL, "select_rows: mask must be a vector of one entry per row of x, got x %s and mask %s",
                       um_shape_str(x, b1, sizeof b1), um_shape_str(mask, b2, sizeof b2));
    int64_t n = x->size[0], m = 0;
    for (int64_t i = 0; i < n; i++)
        m += mask->dtype == UM_FLOAT32 ? um_f32(mask)[i * mask->stride[0]] != 0 : um_i64(mask)[i * mask->stride[0]] != 0;
    um_tensor *src;
    int rc = um_contiguous(&src, (um_tensor *)x);
    if (rc) return rc;
    int64_t size[UM_MAXDIM];
    memcpy(size, x->size, sizeof size);
    size[0] = m;
    um_tensor *t;
    if ((rc = um_tensor_new(&t, x->dtype, x->ndim, size, NULL))) { um_tensor_release(src); return rc; }
    size_t row = um_dtype_size(x->dtype) * (size_t)(n ? um_numel(x) / n : 0);
    const char *s = (const char *)src->storage->data + src->offset * (int64_t)um_dtype_size(x->dtype);
    char *d = (char *)t->storage->data;
    for (int64_t i = 0; i < n; i++) {
        int keep = mask->dtype == UM_FLOAT32 ? um_f32(mask)[i * mask->stride[0]] != 0 : um_i64(mask)[i * mask->stride[0]] != 0;
        if (keep) { memcpy(d, s + (size_t)i * row, row); d += row; }
    }
    um_tensor_release(src);
    *out = t;
    return UM_OK;
}
