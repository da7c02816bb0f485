/* Monotone PGD (attack.h), after ProoD's MonotonePGD: per example a step size lr (start
 * `step`); each iteration evaluates the current point, and an example whose objective dropped
 * (strictly) below its last accepted value goes back to that point and its momentum, and
 * halves lr; otherwise the point is accepted and lr grows by 1.1. The momentum
 * v = momentum v + g takes the gradient of the evaluated point; the step is x += lr v. The
 * accepted point is returned with its value (the reference returns the last evaluated one). */
#include <math.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ood/attack_state.h"
#include "ood/ood_ops.h"
#include "ops.h"

int um_mpgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_mpgd_config *cfg, um_generator *g,
            um_tensor **x_best, um_tensor **values, um_attack_stats *stats) {
    int rc = um_attack_check(z, labels, cfg->eps, cfg->norm, cfg->steps, cfg->objective, cfg->custom != NULL, "mpgd");
    if (rc) return rc;
    if (!(cfg->step > 0)) return um_fail(UM_EINVAL, "mpgd: step must be > 0, got %g", cfg->step);
    if (!g && (cfg->start == UM_START_UNIFORM || cfg->start == UM_START_GAUSSIAN || cfg->escape_after > 0))
        return um_fail(UM_EINVAL, "mpgd: a random start or the escape needs a generator");
    int was_training = m->training;
    um_module_train(m, 0);
    um_attack_state s;
    int64_t n = z->size[0];
    um_tensor *x = NULL, *v = NULL, *x_acc = NULL, *v_acc = NULL, *lr = NULL, *out_v = NULL;
    float *acc = NULL, *lrh = NULL, *rej = NULL;
    rc = um_attack_state_init(&s, m, z, labels, cfg->objective, cfg->custom, cfg->custom_ctx);
    if (!rc) rc = um_tensor_new(&x, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_zeros(&v, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&x_acc, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_zeros(&v_acc, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&lr, UM_FLOAT32, 1, &n, s.be);
    if (!rc) rc = um_tensor_new(&out_v, UM_FLOAT32, 1, &n, s.be);
    size_t fb = sizeof(float) * (size_t)(n ? n : 1);
    if (!rc && (!(acc = um_alloc(fb)) || !(lrh = um_alloc(fb)) || !(rej = um_alloc(fb)))) rc = UM_ENOMEM;
    if (!rc) rc = um_attack_start(x, z, cfg->start, cfg->eps, cfg->sigma, cfg->norm, g);
    if (!rc) rc = um_copy_(x_acc, x);
    for (int64_t i = 0; i < n && !rc; i++) {
        acc[i] = -INFINITY;
        lrh[i] = (float)cfg->step;
    }
    for (int it = 0; it <= cfg->steps && !rc; it++) {
        int last = it == cfg->steps;
        if ((rc = um_attack_eval(&s, x, !last))) break;
        if (!last && (rc = um_attack_escape(&s, x, v, z, cfg->eps, cfg->norm, cfg->escape_after, g))) break;
        int any = 0;
        for (int64_t i = 0; i < n; i++) {
            rej[i] = s.vals[i] < acc[i] ? 1.0f : 0.0f;   /* ties are accepted */
            if (rej[i] != 0) any = 1;
            else acc[i] = s.vals[i];
            if (it > 0) lrh[i] *= rej[i] != 0 ? 0.5f : 1.1f;
        }
        if (any && ((rc = um_attack_upload(&s, s.mask, rej)) || (rc = UM_OOD_CALL(s.be, copy_rows, x, x_acc, s.mask)) ||
                    (rc = UM_OOD_CALL(s.be, copy_rows, v, v_acc, s.mask))))
            break;
        if ((rc = um_copy_(x_acc, x)) || (rc = um_copy_(v_acc, v))) break;
        if (last) break;
        if ((rc = um_attack_upload(&s, lr, lrh)) ||
            (rc = UM_OOD_CALL(s.be, mpgd_step, x, v, s.grad, z, lr, (float)cfg->eps, (float)cfg->momentum, cfg->norm)))
            break;
    }
    if (!rc) rc = um_attack_upload(&s, out_v, acc);
    um_module_train(m, was_training);
    if (stats && !rc) *stats = s.stats;
    um_attack_state_free(&s);
    um_dealloc(acc);
    um_dealloc(lrh);
    um_dealloc(rej);
    um_tensor_release(x);
    um_tensor_release(v);
    um_tensor_release(v_acc);
    um_tensor_release(lr);
    if (rc) {
        um_tensor_release(x_acc);
        um_tensor_release(out_v);
        return rc;
    }
    *x_best = x_acc;
    *values = out_v;
    return UM_OK;
}
