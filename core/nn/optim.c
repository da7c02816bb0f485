/* Optimiser front end: checks parameter/gradient pairs, allocates the zeroed slot
 * tensors, and runs the backend's fused step per parameter. Adam's bias correction is
 * folded into lr_t once per step, as TF's AdamOptimizer does. */
#include "nn/optim.h"
#include <math.h>
#include <stdio.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "nn/nn_ops.h"

static int check_pairs(const char *who, int n, um_tensor *const *params, um_tensor *const *grads) {
    char a[64], b[64];
    if (n < 0) return um_fail(UM_EINVAL, "%s: negative parameter count %d", who, n);
    for (int i = 0; i < n; i++) {
        const um_tensor *p = params[i], *g = grads[i];
        if (!p || !g) return um_fail(UM_EINVAL, "%s: parameter %d or its gradient is missing", who, i + 1);
        if (p->dtype != UM_FLOAT32 || g->dtype != UM_FLOAT32)
            return um_fail(UM_EINVAL, "%s: parameter %d and its gradient must be float32", who, i + 1);
        if (!um_same_shape(p, g))
            return um_fail(UM_EINVAL, "%s: parameter %d is %s but its gradient is %s", who, i + 1,
                           um_shape_str(p, a, sizeof a), um_shape_str(g, b, sizeof b));
        if (!um_is_contiguous(p) || !um_is_contiguous(g))
            return um_fail(UM_EINVAL, "%s: parameter %d and its gradient must be contiguous", who, i + 1);
        if (um_backend_of(p) != um_backend_of(g))
            return um_fail(UM_EDEVICE, "%s: parameter %d is on %s but its gradient on %s", who, i + 1,
                           um_backend_of(p)->name, um_backend_of(g)->name);
    }
    return UM_OK;
}

void um_optim_free(um_optimizer *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        if (o->params) um_tensor_release(o->params[i]);
        if (o->grads) um_tensor_release(o->grads[i]);
        for (int s = 0; s < 2; s++)
            if (o->slots[s]) um_tensor_release(o->slots[s][i]);
    }
    um_dealloc(o->params);
    um_dealloc(o->grads);
    um_dealloc(o->slots[0]);
    um_dealloc(o->slots[1]);
    um_dealloc(o);
}

static int create(um_optimizer **out, um_optim_kind kind, int n, um_tensor *const *params,
                  um_tensor *const *grads) {
    const char *who = kind == UM_OPTIM_SGD ? "SGD" : "Adam";
    int rc = check_pairs(who, n, params, grads);
    if (rc) return rc;
    int nslots = kind == UM_OPTIM_ADAM ? 2 : 1;
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(um_tensor *);
    um_optimizer *o = um_calloc(sizeof *o);
    if (!o) return UM_ENOMEM;
    o->kind = kind;
    o->params = um_calloc(bytes);
    o->grads = um_calloc(bytes);
    for (int s = 0; s < nslots; s++) o->slots[s] = um_calloc(bytes);
    if (!o->params || !o->grads || !o->slots[0] || (nslots == 2 && !o->slots[1])) {
        um_optim_free(o);
        return UM_ENOMEM;
    }
    o->n = n;   /* arrays are zeroed, so a partial fill frees cleanly */
    for (int i = 0; i < n; i++) {
        um_tensor_retain(params[i]);
        um_tensor_retain(grads[i]);
        o->params[i] = params[i];
        o->grads[i] = grads[i];
        for (int s = 0; s < nslots; s++) {
            rc = um_tensor_zeros(&o->slots[s][i], UM_FLOAT32, params[i]->ndim, params[i]->size,
                                 um_backend_of(params[i]));
            if (rc) {
                um_optim_free(o);
                return rc;
            }
        }
    }
    *out = o;
    return UM_OK;
}

int um_sgd_new(um_optimizer **out, int n, um_tensor *const *params, um_tensor *const *grads, double lr,
               double momentum, int nesterov) {
    if (!(lr >= 0.0) || !(momentum >= 0.0))
        return um_fail(UM_EINVAL, "SGD: lr and momentum must be non-negative, got %g and %g", lr, momentum);
    int rc = create(out, UM_OPTIM_SGD, n, params, grads);
    if (rc) return rc;
    (*out)->lr = lr;
    (*out)->momentum = momentum;
    (*out)->nesterov = nesterov != 0;
    return UM_OK;
}

int um_adam_new(um_optimizer **out, int n, um_tensor *const *params, um_tensor *const *grads, double lr,
                double beta1, double beta2, double eps) {
    if (!(lr >= 0.0) || !(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0) || !(eps >= 0.0))
        return um_fail(UM_EINVAL, "Adam: need lr >= 0, betas in [0, 1) and eps >= 0 (got %g, %g, %g, %g)", lr, beta1,
                       beta2, eps);
    int rc = create(out, UM_OPTIM_ADAM, n, params, grads);
    if (rc) return rc;
    (*out)->lr = lr;
    (*out)->beta1 = beta1;
    (*out)->beta2 = beta2;
    (*out)->eps = eps;
    return UM_OK;
}

/* Before any parameter is written: one reduction per gradient (um_count_nonfinite). */
static int check_gradients(um_optimizer *o) {
    for (int i = 0; i < o->n; i++) {
        int64_t bad = 0;
        int rc = um_count_nonfinite(o->grads[i], &bad);
        if (rc) return rc;
        if (bad > 0) {
            o->bad_param = i;
            return um_fail(UM_ENUMERIC, "step: gradient %d of %d has %lld non-finite values (NaN or infinite) of %lld; "
                           "no parameter was changed", i + 1, o->n, (long long)bad, (long long)um_numel(o->grads[i]));
        }
    }
    return UM_OK;
}

int um_optim_step(um_optimizer *o) {
    if (!(o->lr >= 0.0) || !isfinite(o->lr)) return um_fail(UM_EINVAL, "step: learning rate %g is not valid", o->lr);
    o->bad_param = -1;
    int crc = check_gradients(o);
    if (crc) return crc;
    double lr_t = o->lr;
    if (o->kind == UM_OPTIM_ADAM) {
        double t = (double)(o->step + 1);
        lr_t = o->lr * sqrt(1.0 - pow(o->beta2, t)) / (1.0 - pow(o->beta1, t));
    }
    for (int i = 0; i < o->n; i++) {
        const um_backend *be = um_backend_of(o->params[i]);
        int rc = o->kind == UM_OPTIM_SGD
                     ? UM_NN_CALL(be, sgd_step, o->params[i], o->grads[i], o->slots[0][i], o->lr, o->momentum,
                                  o->nesterov)
                     : UM_NN_CALL(be, adam_step, o->params[i], o->grads[i], o->slots[0][i], o->slots[1][i], lr_t,
                                  o->beta1, o->beta2, o->eps);
        if (rc) return rc;
    }
    o->step++;
    return UM_OK;
}

int um_optim_num_slots(const um_optimizer *o) { return o->kind == UM_OPTIM_ADAM ? 2 : 1; }

const char *um_optim_slot_name(const um_optimizer *o, int s) {
    if (o->kind == UM_OPTIM_SGD) return s == 0 ? "momentum" : NULL;
    return s == 0 ? "m" : s == 1 ? "v" : NULL;
}

int um_weight_decay(um_tensor *const *params, um_tensor *const *grads, int n, double lambda, double *penalty) {
    int rc = check_pairs("weight_decay", n, params, grads);
    if (rc) return rc;
    if (!(lambda >= 0.0)) return um_fail(UM_EINVAL, "weight_decay: lambda must be non-negative, got %g", lambda);
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        rc = UM_NN_CALL(um_backend_of(params[i]), weight_decay, params[i], grads[i], lambda, &s);
        if (rc) return rc;
        total += s;
    }
    *penalty = lambda * total;
    return UM_OK;
}
