/* Interval bound rules shared by the layers (module.h): monotone layers run their forward
 * on both ends of the box; affine layers propagate the box's centre through their forward
 * and its radius through |A|, the form that stays correct whatever the signs of A. */
#include "error.h"
#include "nn/module.h"
#include "ops.h"

/* A copy of m's forward on x (the module reuses its output buffer on the next call). */
static int forward_copy(um_module *m, um_tensor *x, um_tensor **out) {
    um_tensor *y;
    int rc = um_module_forward(m, x, &y);
    return rc ? rc : um_clone(out, y);
}

int um_bound_monotone(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    um_tensor *a = NULL, *b = NULL;
    int rc = forward_copy(m, lo, &a);
    if (!rc) rc = forward_copy(m, hi, &b);
    if (rc) {
        um_tensor_release(a);
        return rc;
    }
    *lo_out = a;
    *hi_out = b;
    return UM_OK;
}

int um_bound_centre_radius(const um_tensor *lo, const um_tensor *hi, um_tensor **c, um_tensor **r) {
    *c = *r = NULL;
    int rc = um_binary(c, UM_ADD, lo, hi);
    if (!rc) rc = um_binary_scalar_(UM_MUL, *c, 0.5);
    if (!rc) rc = um_binary(r, UM_SUB, hi, *c);   /* hi - c, not (hi - lo)/2: c + r reaches hi */
    if (!rc) rc = um_clamp_(*r, 0, 1e30);        /* rounding can leave a tiny negative */
    if (rc) {
        um_tensor_release(*c);
        um_tensor_release(*r);
        *c = *r = NULL;
    }
    return rc;
}

int um_bound_affine(um_module *m, um_tensor *lo, um_tensor *hi, um_abs_linear_fn abs_linear, um_tensor **lo_out,
                    um_tensor **hi_out) {
    um_tensor *c = NULL, *r = NULL, *yc = NULL, *yr = NULL, *b = NULL;
    int rc = um_bound_centre_radius(lo, hi, &c, &r);
    if (!rc) rc = forward_copy(m, c, &yc);
    um_tensor_release(c);
    if (!rc) rc = abs_linear(m, r, &yr);
    um_tensor_release(r);
    if (!rc) rc = um_binary(&b, UM_ADD, yc, yr);
    if (!rc) rc = um_binary_(UM_SUB, yc, yr);   /* the centre becomes the lower end */
    um_tensor_release(yr);
    if (rc) {
        um_tensor_release(yc);
        um_tensor_release(b);
        return rc;
    }
    *lo_out = yc;
    *hi_out = b;
    return UM_OK;
}

int um_bound_add_signed_grad(um_module *m, const um_tensor *raw) {
    um_tensor *sg = NULL;
    int rc = um_unary(&sg, UM_SIGN, m->params[0]);
    if (!rc) rc = um_binary_(UM_MUL, sg, raw);
    if (!rc) rc = um_binary_(UM_ADD, m->grads[0], sg);
    um_tensor_release(sg);
    return rc;
}
