/* Interval bound propagation front end (ibp.h): checks, the clipped input box, the walk up
 * to the last Linear layer through the modules' bound rules, and the elision and
 * confidence kernels of the ood table. */
#include "ood/ibp.h"
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "ood/ood_ops.h"

int um_ibp_unsound_for_tests;

/* Bounds on the input of m's last Linear layer from the box (lo, hi) of m's input:
 * *lo_out, *hi_out new, *last the Linear layer (borrowed). */
static int bound_to_last_linear(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out,
                                um_module **last) {
    if (m->ops == &um_linear_module_ops) {
        um_tensor_retain(lo);
        um_tensor_retain(hi);
        *lo_out = lo;
        *hi_out = hi;
        *last = m;
        return UM_OK;
    }
    if (m->ops != &um_sequential_module_ops || m->n_children == 0)
        return um_fail(UM_EINVAL, "certify: the model must end in a Linear layer (folded into logit differences), "
                       "but it ends in %s", m->ops->type);
    um_tensor *a = lo, *b = hi;
    um_tensor_retain(a);
    um_tensor_retain(b);
    int rc = UM_OK;
    for (int i = 0; i < m->n_children - 1 && !rc; i++) {
        um_tensor *na = NULL, *nb = NULL;
        rc = um_module_child_bound(m, i, a, b, &na, &nb);
        um_tensor_release(a);
        um_tensor_release(b);
        a = na;
        b = nb;
    }
    if (!rc) rc = bound_to_last_linear(m->children[m->n_children - 1], a, b, lo_out, hi_out, last);
    um_tensor_release(a);
    um_tensor_release(b);
    return rc;
}

int um_certify_confidence(um_module *m, const um_tensor *z, double eps, um_tensor **conf, um_tensor **logit_diff) {
    char s[128];
    if (!m || !z) return um_fail(UM_EINVAL, "certify: model and inputs are required");
    if (z->dtype != UM_FLOAT32 || z->ndim < 2 || !um_is_contiguous(z))
        return um_fail(UM_EINVAL, "certify: expected a contiguous float32 batch (n, ...), got %s %s", um_dtype_name(z->dtype),
                       um_shape_str(z, s, sizeof s));
    if (!(eps >= 0)) return um_fail(UM_EINVAL, "certify: eps must be >= 0, got %g", eps);
    const um_backend *be = um_backend_of(z);
    int was_training = m->training;
    int64_t n = z->size[0];
    um_tensor *lo = NULL, *hi = NULL, *pl = NULL, *ph = NULL, *ud = NULL, *c = NULL;
    um_module *last = NULL;
    um_module_train(m, 0);
    int rc = um_tensor_new(&lo, UM_FLOAT32, z->ndim, z->size, be);
    if (!rc) rc = um_tensor_new(&hi, UM_FLOAT32, z->ndim, z->size, be);
    if (!rc) rc = UM_OOD_CALL(be, ibp_input_box, lo, hi, z, (float)eps);
    if (!rc) rc = bound_to_last_linear(m, lo, hi, &pl, &ph, &last);
    if (!rc && (pl->ndim != 2 || pl->size[1] != last->params[0]->size[1]))
        rc = um_fail(UM_EINVAL, "certify: the last Linear layer expects (n, %lld) inputs, its box is %s",
                     (long long)last->params[0]->size[1], um_shape_str(pl, s, sizeof s));
    if (!rc) {
        int64_t k = last->params[0]->size[0], size[3] = {n, k, k};
        um_tensor *w = last->params[0], *b = last->n_params > 1 ? last->params[1] : NULL;
        rc = um_tensor_new(&ud, UM_FLOAT32, 3, size, be);
        if (!rc) rc = um_ibp_unsound_for_tests ? UM_OOD_CALL(be, ibp_elision, ud, ph, pl, w, b)
                                               : UM_OOD_CALL(be, ibp_elision, ud, pl, ph, w, b);
        if (!rc) rc = um_tensor_new(&c, UM_FLOAT32, 1, &n, be);
        if (!rc) rc = UM_OOD_CALL(be, ibp_confidence, c, ud);
    }
    um_module_train(m, was_training);
    um_tensor_release(lo);
    um_tensor_release(hi);
    um_tensor_release(pl);
    um_tensor_release(ph);
    if (rc) {
        um_tensor_release(ud);
        um_tensor_release(c);
        return rc;
    }
    *conf = c;
    if (logit_diff) *logit_diff = ud;
    else um_tensor_release(ud);
    return UM_OK;
}
