/* Detection metrics in the conventions of the OOD literature (docs/worst-case.md): AUROC with
 * ties counted as failures (conservative), average precision with either class positive,
 * FPR at 95 % TPR with the OOD set as the positive class, detection error, percentile
 * bootstrap intervals, and the worst-case sandwich (AUC, AAUC, GAUC) with its checks.
 * Scores are host float32 vectors, higher = in-distribution; NaN and empty sets are errors. */
#ifndef UM_DETECTION_H
#define UM_DETECTION_H
#include "rng.h"
#include "tensor.h"

/* #{in > out} / (n_in n_out): a tied pair counts as a failure (GOOD and ProoD tables). */
int um_auroc_conservative(const um_tensor *conf_in, const um_tensor *conf_out, double *auc);

/* Average precision (sklearn average_precision_score: sum_n (R_n - R_{n-1}) P_n over the
 * distinct thresholds, not interpolated). AUPR-In: in-distribution positive, score s;
 * AUPR-Out: OOD positive, score -s. */
int um_aupr_in(const um_tensor *conf_in, const um_tensor *conf_out, double *ap);
int um_aupr_out(const um_tensor *conf_in, const um_tensor *conf_out, double *ap);

/* FPR at a TPR with the OOD set positive (OpenOOD): the lowest threshold t over the distinct
 * scores at which #{out <= t} >= tpr n_out; *fpr = #{in <= t} / n_in (the share of
 * in-distribution points flagged as OOD). um_fpr_at_tpr (metrics.h) is the other convention. */
int um_fpr_at_tpr_ood_positive(const um_tensor *conf_in, const um_tensor *conf_out, double tpr, double *fpr);

/* min over thresholds t (all score values and +-inf) of
 * 0.5 #{in < t} / n_in + 0.5 #{out >= t} / n_out: the lowest error of a threshold detector
 * when both sets are equally likely. */
int um_detection_error(const um_tensor *conf_in, const um_tensor *conf_out, double *err);

/* Percentile bootstrap 95 % intervals (2.5 and 97.5 percentiles, NumPy's linear rule) over
 * n_boot resamples with replacement drawn from g: of the mean of conf, and of the AUROC
 * (ties half) with both sets resampled independently. n_boot >= 2. */
int um_bootstrap_mmc(const um_tensor *conf, int n_boot, um_generator *g, double *lo, double *hi);
int um_bootstrap_auroc(const um_tensor *conf_in, const um_tensor *conf_out, int n_boot, um_generator *g,
                       double *lo, double *hi);

/* The worst-case sandwich on one OOD set: clean, attacked and certified confidences per point
 * (same length). Checks clean[i] <= attack[i] + tol (when clean is given) and
 * attack[i] <= bound[i] + tol for every i (UM_ENUMERIC naming the first point that breaks it),
 * then *auc, *aauc, *gauc = conservative AUROC of conf_in against clean, attack and bound,
 * and checks gauc <= aauc <= auc. clean or bound may be NULL (their AUC is then NaN). */
typedef struct { double auc, aauc, gauc; int64_t n; } um_sandwich;
int um_sandwich_aucs(const um_tensor *conf_in, const um_tensor *clean, const um_tensor *attack,
                     const um_tensor *bound, double tol, um_sandwich *out);

#endif
