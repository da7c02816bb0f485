/* PGD on the input of a module tree, entirely in C: per iteration one forward (which also
 * scores the current iterate for the best-point bookkeeping) and one input-only backward.
 * A non-finite input or input gradient is UM_ENUMERIC (never a silent best point), and
 * an interrupt (um_request_interrupt) stops it between iterations with UM_EINTR. */
#include <string.h>
#include "ood/ood_ops.h"
#include "backend.h"
#include "error.h"
#include "ood/noise.h"
#include "ood/pgd.h"

static int check_args(const um_tensor *z, const um_tensor *labels, const um_pgd_config *cfg, um_generator *g) {
    char b[128];
    if (z->dtype != UM_FLOAT32 || z->ndim < 2 || !um_is_contiguous(z))
        return um_fail(UM_EINVAL, "pgd: expected a contiguous float32 batch (n, ...), got %s %s", um_dtype_name(z->dtype), um_shape_str(z, b, sizeof b));
    if (!cfg->custom && cfg->objective == UM_LOSS_CROSS_ENTROPY) {
        if (!labels || labels->dtype != UM_INT64 || labels->ndim != 1 || labels->size[0] != z->size[0])
            return um_fail(UM_EINVAL, "pgd: the ce objective needs int64 labels of size %lld", (long long)z->size[0]);
        if (um_backend_of(labels) != um_backend_of(z))
            return um_fail(UM_EDEVICE, "pgd: labels and inputs are on different devices");
    }
    if (!(cfg->eps >= 0) || !(cfg->step >= 0) || cfg->steps < 0)
        return um_fail(UM_EINVAL, "pgd: need eps >= 0, step >= 0 and steps >= 0, got %g, %g, %d", cfg->eps, cfg->step, cfg->steps);
    if (cfg->norm != 0 && cfg->norm != 2) return um_fail(UM_EINVAL, "pgd: norm must be inf (0) or 2, got %d", cfg->norm);
    if (cfg->random_start && !g) return um_fail(UM_EINVAL, "pgd: the random start needs a generator");
    return UM_OK;
}

/* logits of x -> per-example values (and, if grad_logits, dL_i/dlogits). */
static int score(um_module *m, um_tensor *x, um_loss_kind kind, const um_pgd_config *cfg, const um_tensor *labels,
                 um_tensor *values, um_tensor **grad_logits) {
    char b[128];
    um_tensor *logits;
    int rc = um_module_forward(m, x, &logits);
    if (rc) return rc;
    if (logits->ndim != 2 || logits->size[0] != x->size[0])
        return um_fail(UM_EINVAL, "pgd: the model must return logits (n, classes), got %s", um_shape_str(logits, b, sizeof b));
    const um_backend *be = um_backend_of(x);
    if (grad_logits && (rc = um_tensor_ensure(grad_logits, UM_FLOAT32, 2, logits->size, be))) return rc;
    if (cfg && cfg->custom) return cfg->custom(cfg->custom_ctx, logits, values, grad_logits ? *grad_logits : NULL);
    if ((rc = UM_NN_CALL(be, loss_forward, kind, logits, labels, values))) return rc;
    if (!grad_logits) return UM_OK;
    return UM_NN_CALL(be, loss_backward, kind, logits, labels, 1.0, NULL, *grad_logits);
}

int um_objective_values(um_module *m, um_tensor *x, um_loss_kind kind, const um_tensor *labels, um_tensor **values) {
    int64_t n = x->size[0];
    um_tensor *v;
    int rc = um_tensor_new(&v, UM_FLOAT32, 1, &n, um_backend_of(x));
    if (rc) return rc;
    if ((rc = score(m, x, kind, NULL, labels, v, NULL))) { um_tensor_release(v); return rc; }
    *values = v;
    return UM_OK;
}

int um_objective_and_grad(um_module *m, um_tensor *x, um_loss_kind kind, const um_tensor *labels, um_tensor *values,
                          um_tensor **grad_logits) {
    return score(m, x, kind, NULL, labels, values, grad_logits);
}

int um_custom_objective_and_grad(um_module *m, um_tensor *x, um_objective_fn fn, void *ctx, um_tensor *values,
                                 um_tensor **grad_logits) {
    um_pgd_config cfg = {0};
    cfg.custom = fn;
    cfg.custom_ctx = ctx;
    return score(m, x, UM_LOSS_MAX_CONF, &cfg, NULL, values, grad_logits);
}

int um_pgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_pgd_config *cfg,
           um_generator *g, um_tensor **x_adv, um_tensor **objective) {
    int rc = check_args(z, labels, cfg, g);
    if (rc) return rc;
    const um_backend *be = um_backend_of(z);
    int was_training = m->training;
    int64_t n = z->size[0], d = um_numel(z) / (n ? n : 1), flat[2] = {n, d};
    um_tensor *zz = NULL, *x = NULL, *best = NULL, *best_obj = NULL, *obj = NULL, *glog = NULL;
    um_tensor *u = NULL, *s = NULL;
    int64_t bad = 0;
    if ((rc = um_count_nonfinite(z, &bad))) return rc;
    if (bad) return um_fail(UM_ENUMERIC, "pgd: the input holds %lld non-finite values (NaN or infinite)", (long long)bad);
    um_module_train(m, 0);
    if ((rc = um_view(&zz, (um_tensor *)z, 2, flat)) || (rc = um_clone(&x, z)) || (rc = um_clone(&best, z)) ||
        (rc = um_tensor_new(&best_obj, UM_FLOAT32, 1, &n, be)) || (rc = um_tensor_new(&obj, UM_FLOAT32, 1, &n, be)))
        goto done;
    if ((rc = score(m, x, cfg->objective, cfg, labels, best_obj, NULL))) goto done;
    if (cfg->random_start) {
        if ((rc = um_uniform_tensor(&u, z->ndim, z->size, be, g, (float)-cfg->eps, (float)cfg->eps)) ||
            (rc = um_uniform_tensor(&s, 1, &n, be, g, 0.0f, 1.0f)) || (rc = UM_OOD_CALL(be, random_start, x, z, u, s)))
            goto done;
        /* the start is drawn in the l-inf box; for l2 a zero step projects it into the ball */
        if (cfg->norm == 2 && (rc = UM_OOD_CALL(be, pgd_step, x, x, z, 0.0f, (float)cfg->eps, 2))) goto done;
    }
    for (int it = 0; it <= cfg->steps; it++) {
        int last = it == cfg->steps;
        if (um_interrupt_requested()) {
            rc = um_fail(UM_EINTR, "pgd: interrupted at iteration %d of %d", it, cfg->steps);
            goto done;
        }
        if (it == 0 && !cfg->random_start && last) break;   /* no steps: the start was scored */
        if ((rc = score(m, x, cfg->objective, cfg, labels, obj, last ? NULL : &glog))) goto done;
        if ((rc = UM_OOD_CALL(be, keep_best, best, best_obj, x, obj))) goto done;
        if (last) break;
        um_tensor *gx;
        if ((rc = um_module_backward_input(m, x, glog, &gx)) || (rc = um_count_nonfinite(gx, &bad))) goto done;
        if (bad) {
            rc = um_fail(UM_ENUMERIC, "pgd: the input gradient at iteration %d holds %lld non-finite values (NaN or infinite)",
                         it + 1, (long long)bad);
            goto done;
        }
        if ((rc = UM_OOD_CALL(be, pgd_step, x, gx, z, (float)cfg->step, (float)cfg->eps, cfg->norm))) goto done;
    }
    *x_adv = best;
    *objective = best_obj;
    best = best_obj = NULL;
done:
    um_module_train(m, was_training);
    um_tensor_release(zz);
    um_tensor_release(x);
    um_tensor_release(best);
    um_tensor_release(best_obj);
    um_tensor_release(obj);
    um_tensor_release(glog);
    um_tensor_release(u);
    um_tensor_release(s);
    return rc;
}
