/* Loss front end: validates logits, targets and weights, then calls the backend's fused
 * log-softmax loss kernels (core/cpu/softmax_loss.c), and reduces per-example values. */
#include "nn/loss.h"
#include <math.h>
#include <string.h>
#include "backend.h"
#include "error.h"
#include "ops.h"
#include "nn/nn_ops.h"

static const char *const names[] = {"cross_entropy", "max_conf", "uniform_conf"};

const char *um_loss_name(um_loss_kind kind) {
    return (unsigned)kind < 3 ? names[kind] : "unknown";
}

int um_loss_kind_from_name(const char *name, um_loss_kind *kind) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *kind = (um_loss_kind)i;
            return UM_OK;
        }
    return um_fail(UM_EINVAL, "unknown loss '%s' (expected cross_entropy, max_conf or uniform_conf)", name);
}

int um_loss_check(um_loss_kind kind, const um_tensor *logits, const um_tensor *target) {
    char a[64], b[64];
    const char *what = um_loss_name(kind);
    if ((unsigned)kind > UM_LOSS_UNIFORM_CONF) return um_fail(UM_EINVAL, "unknown loss kind %d", (int)kind);
    if (!logits) return um_fail(UM_EINVAL, "%s: logits are missing", what);
    if (logits->ndim != 2 || logits->dtype != UM_FLOAT32)
        return um_fail(UM_EINVAL, "%s: logits must be a float32 matrix (batch, classes), got %s %s", what,
                       um_dtype_name(logits->dtype), um_shape_str(logits, a, sizeof a));
    if (logits->size[1] < 1) return um_fail(UM_EINVAL, "%s: logits have no classes", what);
    if (!um_is_contiguous(logits)) return um_fail(UM_EINVAL, "%s: logits must be contiguous", what);
    if (kind != UM_LOSS_CROSS_ENTROPY) return UM_OK;
    if (!target) return um_fail(UM_EINVAL, "%s: targets are missing", what);
    if (um_backend_of(target) != um_backend_of(logits))
        return um_fail(UM_EDEVICE, "%s: targets are on %s, logits on %s", what, um_backend_of(target)->name,
                       um_backend_of(logits)->name);
    if (!um_is_contiguous(target)) return um_fail(UM_EINVAL, "%s: targets must be contiguous", what);
    if (target->dtype == UM_INT64) {
        if (target->ndim != 1 || target->size[0] != logits->size[0])
            return um_fail(UM_EINVAL, "%s: class targets must be a vector of %lld int64 labels, got %s", what,
                           (long long)logits->size[0], um_shape_str(target, a, sizeof a));
    } else if (!um_same_shape(target, logits)) {
        return um_fail(UM_EINVAL, "%s: probability targets must match the logits %s, got %s", what,
                       um_shape_str(logits, a, sizeof a), um_shape_str(target, b, sizeof b));
    }
    return UM_OK;
}

int um_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor **losses) {
    int rc = um_loss_check(kind, logits, target);
    if (rc) return rc;
    const um_backend *be = um_backend_of(logits);
    rc = um_tensor_ensure(losses, UM_FLOAT32, 1, logits->size, be);
    return rc ? rc : UM_NN_CALL(be, loss_forward, kind, logits, kind == UM_LOSS_CROSS_ENTROPY ? target : NULL, *losses);
}

int um_loss_value(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_reduction reduction,
                  double *value, um_tensor **work) {
    um_tensor *tmp = NULL, **slot = work ? work : &tmp;
    if (reduction != UM_REDUCE_SUM && reduction != UM_REDUCE_MEAN)
        return um_fail(UM_EINVAL, "%s: a loss value needs the sum or mean reduction", um_loss_name(kind));
    int rc = um_loss_forward(kind, logits, target, slot);
    if (!rc) {
        double s = 0.0;
        if (um_backend_of(*slot)->is_host) {   /* double accumulation where we can read */
            const float *v = um_f32(*slot);
            for (int64_t i = 0; i < logits->size[0]; i++) s += v[i];
        } else if ((rc = um_sum_all(*slot, &s))) {
            um_tensor_release(tmp);
            return rc;
        }
        if (reduction == UM_REDUCE_MEAN && logits->size[0] > 0) s /= (double)logits->size[0];
        if (!isfinite(s))
            rc = um_fail(UM_ENUMERIC, "%s: the loss is %s (are there NaN or infinite logits?)", um_loss_name(kind),
                         isnan(s) ? "NaN" : "infinite");
        else *value = s;
    }
    um_tensor_release(tmp);
    return rc;
}

int um_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_reduction reduction,
                     double scale, const um_tensor *w, um_tensor **grad) {
    char a[64];
    int rc = um_loss_check(kind, logits, target);
    if (rc) return rc;
    if (w && (w->dtype != UM_FLOAT32 || w->ndim != 1 || w->size[0] != logits->size[0] || !um_is_contiguous(w) ||
              um_backend_of(w) != um_backend_of(logits)))
        return um_fail(UM_EINVAL, "%s: per-example weights must be a contiguous float32 vector of %lld, got %s %s",
                       um_loss_name(kind), (long long)logits->size[0], um_dtype_name(w->dtype),
                       um_shape_str(w, a, sizeof a));
    if (reduction == UM_REDUCE_MEAN && logits->size[0] > 0) scale /= (double)logits->size[0];
    const um_backend *be = um_backend_of(logits);
    rc = um_tensor_ensure(grad, UM_FLOAT32, 2, logits->size, be);
    return rc ? rc
              : UM_NN_CALL(be, loss_backward, kind, logits, kind == UM_LOSS_CROSS_ENTROPY ? target : NULL, scale, w, *grad);
}
