/* Evaluation metrics of the paper (docs/method.md §6.2, §11.5) on host tensors: max-softmax
 * confidence, mean max confidence, AUROC with exact tie handling, NumPy's linear percentile,
 * FPR at a TPR, ROC curve points, resistance to adversarial samples, row selection by mask.
 * Scores are float32 vectors (n); in-distribution points are the positive class. Empty sets
 * and NaN scores are errors (UM_EINVAL, UM_ENUMERIC), never silent NaN results. */
#ifndef UM_METRICS_H
#define UM_METRICS_H
#include "tensor.h"

/* Max over each row of probs (n, K) float32 -> *out (n) float32 (new tensor). */
int um_max_conf(um_tensor **out, const um_tensor *probs);

/* Mean of the scores (n >= 1), summed in double. */
int um_mmc(const um_tensor *conf, double *mmc);

/* Area under the ROC curve, positives = conf_in, negatives = conf_out: the Mann-Whitney U
 * with midranks, (#{in > out} + 0.5 #{in == out}) / (n_in n_out), from one sort of all scores.
 * Equals sklearn.metrics.roc_auc_score on the concatenation with labels 1 (in) and 0 (out). */
int um_auroc(const um_tensor *conf_in, const um_tensor *conf_out, double *auc);

/* np.percentile(x, q) with the default linear method, q in [0, 100], as NumPy 1.22-1.26
 * computes it on float32 data (a float32 difference of the neighbours, then _lerp in double).
 * NumPy <= 1.21, a (1 - g) + b g, and NumPy 2, a float32 result, differ by one rounding. */
int um_percentile(const um_tensor *x, double q, double *value);

/* The authors' FPR at a TPR: tau = np.percentile(conf_in, 100 - 100 tpr) and
 * fpr = fraction of conf_out >= tau. tpr in (0, 1]. */
int um_fpr_at_tpr(const um_tensor *conf_in, const um_tensor *conf_out, double tpr, double *fpr, double *tau);

/* ROC curve over the distinct scores, highest first (sklearn.roc_curve with
 * drop_intermediate=False): point i counts scores >= thresholds[i]; the first point is
 * (0, 0) at threshold +inf, the last (1, 1). New float32 tensors (m) in *fpr, *tpr, *thresholds
 * (thresholds may be NULL). */
int um_roc_curve(const um_tensor *conf_in, const um_tensor *conf_out, um_tensor **fpr, um_tensor **tpr,
                 um_tensor **thresholds);

/* Resistance to adversarial samples (docs/method.md §11.5): each row of probs (n, K) gets a guard
 * column float32(1.01 / K) appended at index K; a point is resisted iff the first arg-max of
 * its augmented row is its label. labels: int64 (n) in label_base .. label_base + K - 1
 * (0 from C, 1 from Lua). *fraction = resisted / n; *not_resisted (may be NULL) = new
 * float32 (n) mask, 1 where the attack succeeded. */
int um_resistance(const um_tensor *probs, const um_tensor *labels, int64_t label_base, double *fraction,
                  um_tensor **not_resisted);

/* The rows of x (n, ...) whose mask (n, float32 or int64) entry is nonzero, in order, as a
 * new contiguous tensor (m, ...); m may be 0. */
int um_select_rows(um_tensor **out, const um_tensor *x, const um_tensor *mask);

#endif
