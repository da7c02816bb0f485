/* Class means and shared precision of features (core/ood/gaussian.h): the fit behind the
 * Mahalanobis score. Double precision throughout: the centred features go through one
 * syrk, the covariance through a Cholesky factorisation and its inverse (LAPACK). */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ood/gaussian.h"

/* LAPACK (in OpenBLAS): Cholesky factor and the inverse from it, column-major. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

static int check_inputs(const um_tensor *f, const um_tensor *y, int64_t k, int base) {
    char a[64], b[64];
    const char *fn = "gaussian_fit";
    if (!f || !y) return um_fail(UM_EINVAL, "%s: features and labels are required", fn);
    if (!um_backend_of(f)->is_host || !um_backend_of(y)->is_host)
        return um_fail(UM_EDEVICE, "%s: features and labels must be on the CPU", fn);
    if (f->dtype != UM_FLOAT32 || f->ndim != 2 || f->size[0] < 1 || f->size[1] < 1)
        return um_fail(UM_EINVAL, "%s: features must be float32 (n, D) with n, D >= 1, got %s %s", fn,
                       um_dtype_name(f->dtype), um_shape_str(f, a, sizeof a));
    if (y->dtype != UM_INT64 || y->ndim != 1 || y->size[0] != f->size[0])
        return um_fail(UM_EINVAL, "%s: labels must be int64 (%lld) to match the features, got %s %s", fn,
                       (long long)f->size[0], um_dtype_name(y->dtype), um_shape_str(y, b, sizeof b));
    if (k < 1) return um_fail(UM_EINVAL, "%s: num_classes must be >= 1, got %lld", fn, (long long)k);
    if (f->size[1] > 46340) return um_fail(UM_EINVAL, "%s: D = %lld features is too many", fn, (long long)f->size[1]);
    for (int64_t i = 0; i < y->size[0]; i++) {
        int64_t c = um_i64(y)[i * y->stride[0]];
        if (c < base || c >= base + k)
            return um_fail(UM_EINVAL, "%s: labels[%lld] = %lld is outside %d .. %lld", fn, (long long)(i + base),
                           (long long)c, base, (long long)(base + k - 1));
    }
    return UM_OK;
}

/* Class means into mu (k, d) and centred features into z (n, d), both double row-major. */
static int centre(const um_tensor *f, const um_tensor *y, int64_t k, int base, double *mu, double *z) {
    int64_t n = f->size[0], d = f->size[1];
    const float *x = um_f32(f);
    int64_t *count = um_alloc((size_t)k * sizeof *count);
    if (!count) return UM_ENOMEM;
    memset(count, 0, (size_t)k * sizeof *count);
    memset(mu, 0, (size_t)(k * d) * sizeof *mu);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = um_i64(y)[i * y->stride[0]] - base;
        count[c]++;
        for (int64_t j = 0; j < d; j++) mu[c * d + j] += x[i * f->stride[0] + j * f->stride[1]];
    }
    for (int64_t c = 0; c < k; c++) {
        if (!count[c]) {
            um_dealloc(count);
            return um_fail(UM_EINVAL, "gaussian_fit: class %lld has no example (every class needs one)",
                           (long long)(c + base));
        }
        for (int64_t j = 0; j < d; j++) mu[c * d + j] /= (double)count[c];
    }
    um_dealloc(count);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = um_i64(y)[i * y->stride[0]] - base;
        for (int64_t j = 0; j < d; j++) z[i * d + j] = x[i * f->stride[0] + j * f->stride[1]] - mu[c * d + j];
    }
    return UM_OK;
}

/* Invert the covariance cov (d, d; lower triangle valid) into inv, adding ridges until it
 * is positive definite. */
static int invert(const double *cov, int d, double *inv, double *ridge_used) {
    double trace = 0;
    for (int j = 0; j < d; j++) trace += cov[(size_t)j * d + j];
    double scale = trace > 0 ? trace / d : 1.0;
    static const double ridges[] = {0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
    for (size_t r = 0; r < sizeof ridges / sizeof *ridges; r++) {
        memcpy(inv, cov, (size_t)d * d * sizeof *inv);
        for (int j = 0; j < d; j++) inv[(size_t)j * d + j] += ridges[r] * scale;
        int info = 0;
        /* row-major lower = column-major upper */
        dpotrf_("U", &d, inv, &d, &info);
        if (info != 0) continue;
        dpotri_("U", &d, inv, &d, &info);
        if (info != 0) continue;
        for (int i = 0; i < d; i++)   /* mirror the lower triangle (row-major) into the upper */
            for (int j = i + 1; j < d; j++) inv[(size_t)i * d + j] = inv[(size_t)j * d + i];
        *ridge_used = ridges[r];
        return UM_OK;
    }
    return um_fail(UM_ENUMERIC, "gaussian_fit: the feature covariance is not positive definite even with a "
                                "ridge of 1e-2 times its mean variance (constant or non-finite features?)");
}

int um_gaussian_fit(const um_tensor *features, const um_tensor *labels, int64_t num_classes, int label_base,
                    um_tensor **means, um_tensor **precision, double *ridge) {
    int rc = check_inputs(features, labels, num_classes, label_base);
    if (rc) return rc;
    int64_t n = features->size[0], d = features->size[1], k = num_classes;
    double *mu = um_alloc((size_t)(k * d) * sizeof *mu), *z = um_alloc((size_t)(n * d) * sizeof *z);
    double *cov = um_alloc((size_t)(d * d) * sizeof *cov), *inv = um_alloc((size_t)(d * d) * sizeof *inv);
    um_tensor *m = NULL, *p = NULL;
    double used = 0;
    if (!mu || !z || !cov || !inv) rc = UM_ENOMEM;
    if (!rc) rc = centre(features, labels, k, label_base, mu, z);
    if (!rc) {
        memset(cov, 0, (size_t)(d * d) * sizeof *cov);   /* syrk writes the lower triangle only */
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)n, 1.0 / (double)n, z, (int)d, 0.0, cov,
                    (int)d);
        for (int64_t i = 0; i < d * d && !rc; i++)
            if (!isfinite(cov[i])) rc = um_fail(UM_ENUMERIC, "gaussian_fit: the features are not all finite");
    }
    if (!rc) rc = invert(cov, (int)d, inv, &used);
    int64_t ms[2] = {k, d}, ps[2] = {d, d};
    if (!rc) rc = um_tensor_new(&m, UM_FLOAT32, 2, ms, NULL);
    if (!rc) rc = um_tensor_new(&p, UM_FLOAT32, 2, ps, NULL);
    if (!rc) {
        for (int64_t i = 0; i < k * d; i++) um_f32(m)[i] = (float)mu[i];
        for (int64_t i = 0; i < d * d; i++) um_f32(p)[i] = (float)inv[i];
        *means = m;
        *precision = p;
        if (ridge) *ridge = used;
        m = p = NULL;
    }
    um_tensor_release(m);
    um_tensor_release(p);
    um_dealloc(mu);
    um_dealloc(z);
    um_dealloc(cov);
    um_dealloc(inv);
    return rc;
}
