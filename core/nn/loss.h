/* Losses (criteria) on logits (n, k): cross-entropy with class-index (int64 (n)) or
 * probability-row (float32 (n, k)) targets, max_conf = log max softmax (the paper's
 * noise loss; the arg-max carries no gradient) and uniform_conf = cross-entropy to the
 * uniform distribution. Per-example values, sum/mean reductions, and gradients. */
#ifndef UM_LOSS_H
#define UM_LOSS_H
#include "nn/nn_ops.h"
#include "tensor.h"

typedef enum { UM_REDUCE_NONE = 0, UM_REDUCE_SUM = 1, UM_REDUCE_MEAN = 2 } um_reduction;

const char *um_loss_name(um_loss_kind kind);                      /* "cross_entropy", ... */
int um_loss_kind_from_name(const char *name, um_loss_kind *kind);  /* UM_EINVAL if unknown */

/* Check logits and target for kind (target is ignored, and may be NULL, for max_conf and
 * uniform_conf). */
int um_loss_check(um_loss_kind kind, const um_tensor *logits, const um_tensor *target);

/* Per-example losses into *losses (n), reused when it already fits (um_tensor_ensure). */
int um_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor **losses);

/* The reduced loss (sum or mean over the batch); UM_ENUMERIC if it is NaN or infinite.
 * work: a tensor slot for the per-example values (reused; NULL = temporary). */
int um_loss_value(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_reduction reduction,
                  double *value, um_tensor **work);

/* *grad (n, k), overwritten: scale * w_i * dL_i/dlogits, where reduction MEAN divides by n
 * (NONE and SUM do not), and w (n) are per-example weights (NULL: all 1). *grad is reused
 * when it already fits, so a view into a larger gradient can receive the result. */
int um_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_reduction reduction,
                     double scale, const um_tensor *w, um_tensor **grad);

#endif
