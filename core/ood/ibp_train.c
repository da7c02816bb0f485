/* Interval bounds with a backward pass (ibp_train.h). The box travels as one stacked tensor
 * [lo; hi] of 2n rows, so that a monotone layer runs its own forward and backward once on
 * both ends; an affine layer runs its forward on the centre c = (lo + hi)/2 and |A| on the
 * radius r = hi - c, giving [yc - yr; yc + yr]. Backward, with g_c = g_lo + g_hi and
 * g_r = g_hi - g_lo: g_lo_in = (A^T g_c - |A|^T g_r)/2, g_hi_in = (A^T g_c + |A|^T g_r)/2. */
#include <string.h>
#include "ood/ibp_train.h"
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "ood/ood_ops.h"
#include "ops.h"

typedef struct {
    um_module *parent;   /* the Sequential holding the layer */
    int index;           /* its place there */
    int affine;
    um_tensor *x;        /* monotone: the stacked box it got; affine: the centre */
    um_tensor *r;        /* affine: the radius */
} tape_entry;

struct um_ibp_tape {
    int n, cap;
    tape_entry *e;
    um_module *last;     /* the elided Linear layer */
    um_tensor *box;      /* its input box, stacked (2n, m) */
    int64_t batch;
};

void um_ibp_tape_free(um_ibp_tape *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        um_tensor_release(t->e[i].x);
        um_tensor_release(t->e[i].r);
    }
    um_dealloc(t->e);
    um_tensor_release(t->box);
    um_dealloc(t);
}

static int push(um_ibp_tape *t, tape_entry e) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        tape_entry *ne = um_alloc(sizeof *ne * (size_t)cap);
        if (!ne) return um_fail(UM_ENOMEM, "bound training: out of memory for a tape of %d layers", cap);
        if (t->n) memcpy(ne, t->e, sizeof *ne * (size_t)t->n);
        um_dealloc(t->e);
        t->e = ne;
        t->cap = cap;
    }
    t->e[t->n++] = e;
    return UM_OK;
}

/* The two halves of a stacked tensor, as views. */
static int halves(um_tensor *s, int64_t n, um_tensor **a, um_tensor **b) {
    int rc = um_narrow(a, s, 0, 0, n);
    if (!rc) rc = um_narrow(b, s, 0, n, n);
    if (rc) um_tensor_release(*a);
    return rc;
}

/* [p - q; p + q] (scale 1) or [(p - q)/2; (p + q)/2] (scale 0.5), new. */
static int stack_diff_sum(um_tensor **out, um_tensor *p, um_tensor *q, double scale) {
    um_tensor *d = NULL, *s = NULL;
    int rc = um_binary(&d, UM_SUB, p, q);
    if (!rc) rc = um_binary(&s, UM_ADD, p, q);
    if (!rc) rc = um_cat(out, 2, (um_tensor *[]){d, s}, 0);
    if (!rc && scale != 1) rc = um_binary_scalar_(UM_MUL, *out, scale);
    um_tensor_release(d);
    um_tensor_release(s);
    return rc;
}

static int affine_forward(um_ibp_tape *t, um_module *parent, int i, um_tensor *box, um_tensor **next) {
    um_module *m = parent->children[i];
    um_tensor *lo = NULL, *hi = NULL, *c = NULL, *r = NULL, *yr = NULL;
    int rc = halves(box, t->batch, &lo, &hi);
    if (!rc) rc = um_bound_centre_radius(lo, hi, &c, &r);
    if (!rc) rc = um_module_child_forward(parent, i, c);
    if (!rc) rc = m->ops->abs_forward(m, r, &yr);
    if (!rc) rc = stack_diff_sum(next, m->output, yr, 1);
    um_tensor_release(lo);
    um_tensor_release(hi);
    um_tensor_release(yr);
    if (!rc) rc = push(t, (tape_entry){parent, i, 1, c, r});
    if (rc) {
        um_tensor_release(c);
        um_tensor_release(r);
    }
    return rc;
}

static int monotone_forward(um_ibp_tape *t, um_module *parent, int i, um_tensor *box, um_tensor **next) {
    int rc = um_module_child_forward(parent, i, box);
    if (!rc) rc = push(t, (tape_entry){parent, i, 0, box, NULL});
    if (rc) return rc;
    um_tensor_retain(box);
    *next = parent->children[i]->output;
    um_tensor_retain(*next);   /* held, so the layer's next forward does not overwrite it */
    return UM_OK;
}

/* Walk seq's children from the box *box (replaced as it goes), up to the model's last
 * Linear layer when `ends` (seq is the last of the chain of last children). */
static int walk(um_ibp_tape *t, um_module *seq, um_tensor **box, int ends) {
    for (int i = 0; i < seq->n_children; i++) {
        um_module *m = seq->children[i];
        int last = ends && i == seq->n_children - 1;
        if (m->ops == &um_sequential_module_ops) {
            int rc = walk(t, m, box, last);
            if (rc) return rc;
            continue;
        }
        if (last) {
            if (m->ops != &um_linear_module_ops)
                return um_fail(UM_EINVAL, "bound training: the model must end in a Linear layer (folded into logit "
                               "differences), but it ends in %s", m->ops->type);
            t->last = m;
            return UM_OK;
        }
        um_tensor *next = NULL;
        int rc;
        if (m->ops->abs_forward && m->ops->abs_backward) rc = affine_forward(t, seq, i, *box, &next);
        else if (m->ops->bound == um_bound_monotone) rc = monotone_forward(t, seq, i, *box, &next);
        else {
            char name[64];
            um_module_child_name(seq, i, name, sizeof name);
            rc = um_fail(UM_ENOTIMPL, "bound training: %s (%s) has no training rule through interval bounds (Linear, "
                         "Conv2d, Sequential and monotone layers have; BatchNorm and Residual do not)", name,
                         m->ops->type);
        }
        if (rc) return rc;
        um_tensor_release(*box);
        *box = next;
    }
    return UM_OK;
}

static int input_box(const um_tensor *z, double eps, int clip, um_tensor **box) {
    const um_backend *be = um_backend_of(z);
    um_tensor *lo = NULL, *hi = NULL;
    int rc;
    if (clip) {
        rc = um_tensor_new(&lo, UM_FLOAT32, z->ndim, z->size, be);
        if (!rc) rc = um_tensor_new(&hi, UM_FLOAT32, z->ndim, z->size, be);
        if (!rc) rc = UM_OOD_CALL(be, ibp_input_box, lo, hi, z, (float)eps);
    } else {
        rc = um_binary_scalar(&lo, UM_SUB, z, eps, 0);
        if (!rc) rc = um_binary_scalar(&hi, UM_ADD, z, eps, 0);
    }
    if (!rc) rc = um_cat(box, 2, (um_tensor *[]){lo, hi}, 0);
    um_tensor_release(lo);
    um_tensor_release(hi);
    return rc;
}

int um_ibp_tape_forward(um_module *model, const um_tensor *z, double eps, int clip, um_ibp_tape **tape, um_tensor **ud) {
    char s[128];
    if (!model || !z) return um_fail(UM_EINVAL, "bound training: model and inputs are required");
    if (z->dtype != UM_FLOAT32 || z->ndim < 2 || !um_is_contiguous(z) || z->size[0] < 1)
        return um_fail(UM_EINVAL, "bound training: expected a contiguous float32 batch (n >= 1, ...), got %s %s",
                       um_dtype_name(z->dtype), um_shape_str(z, s, sizeof s));
    if (!(eps >= 0)) return um_fail(UM_EINVAL, "bound training: eps must be >= 0, got %g", eps);
    um_ibp_tape *t = um_calloc(sizeof *t);
    if (!t) return um_fail(UM_ENOMEM, "bound training: out of memory");
    t->batch = z->size[0];
    um_tensor *box = NULL, *u = NULL;
    int rc = input_box(z, eps, clip, &box);
    if (!rc) {
        if (model->ops == &um_linear_module_ops) t->last = model;
        else if (model->ops == &um_sequential_module_ops && model->n_children > 0) rc = walk(t, model, &box, 1);
        else
            rc = um_fail(UM_EINVAL, "bound training: the model must be a Sequential ending in a Linear layer, got %s",
                         model->ops->type);
    }
    um_module *last = t->last;
    if (!rc && (box->ndim != 2 || box->size[1] != last->params[0]->size[1]))
        rc = um_fail(UM_EINVAL, "bound training: the last Linear layer expects (n, %lld) inputs, its box is %s",
                     (long long)last->params[0]->size[1], um_shape_str(box, s, sizeof s));
    if (!rc) {
        const um_backend *be = um_backend_of(box);
        int64_t k = last->params[0]->size[0], size[3] = {t->batch, k, k};
        um_tensor *lo = NULL, *hi = NULL;
        rc = halves(box, t->batch, &lo, &hi);
        if (!rc) rc = um_tensor_new(&u, UM_FLOAT32, 3, size, be);
        if (!rc) rc = UM_OOD_CALL(be, ibp_elision, u, lo, hi, last->params[0], last->n_params > 1 ? last->params[1] : NULL);
        um_tensor_release(lo);
        um_tensor_release(hi);
    }
    t->box = box;
    if (rc) {
        um_tensor_release(u);
        um_ibp_tape_free(t);
        return rc;
    }
    *tape = t;
    *ud = u;
    return UM_OK;
}

/* One tape entry backward: *g (stacked) becomes the gradient at the layer's input box,
 * or is dropped for the first layer (want_input 0). */
static int entry_backward(um_ibp_tape *t, tape_entry *e, um_tensor **g, int want_input) {
    um_module *m = e->parent->children[e->index];
    int flags = UM_GRAD_PARAMS | (want_input ? UM_GRAD_INPUT : 0);
    um_tensor *next = NULL;
    int rc;
    if (!e->affine) {
        rc = um_module_child_backward(e->parent, e->index, e->x, *g, flags);
        if (!rc && want_input) {
            next = m->grad_input;
            um_tensor_retain(next);
        }
    } else {
        um_tensor *gl = NULL, *gh = NULL, *gc = NULL, *gr = NULL, *gr_in = NULL;
        rc = halves(*g, t->batch, &gl, &gh);
        if (!rc) rc = um_binary(&gc, UM_ADD, gl, gh);
        if (!rc) rc = um_binary(&gr, UM_SUB, gh, gl);
        if (!rc) rc = um_module_child_backward(e->parent, e->index, e->x, gc, flags);
        if (!rc) rc = m->ops->abs_backward(m, e->r, gr, want_input ? &gr_in : NULL);
        if (!rc && want_input) rc = stack_diff_sum(&next, m->grad_input, gr_in, 0.5);
        um_tensor_release(gl);
        um_tensor_release(gh);
        um_tensor_release(gc);
        um_tensor_release(gr);
        um_tensor_release(gr_in);
    }
    um_tensor_release(*g);
    *g = next;
    return rc;
}

int um_ibp_tape_backward(um_ibp_tape *t, const um_tensor *gud) {
    char s[128];
    if (!t || !gud) return um_fail(UM_EINVAL, "bound training: tape and gradient are required");
    int64_t k = t->last->params[0]->size[0];
    if (gud->dtype != UM_FLOAT32 || gud->ndim != 3 || gud->size[0] != t->batch || gud->size[1] != k ||
        gud->size[2] != k || !um_is_contiguous(gud))
        return um_fail(UM_EINVAL, "bound training: expected a contiguous float32 gradient (%lld, %lld, %lld), got %s %s",
                       (long long)t->batch, (long long)k, (long long)k, um_dtype_name(gud->dtype),
                       um_shape_str(gud, s, sizeof s));
    if (um_backend_of(gud) != um_backend_of(t->box))
        return um_fail(UM_EINVAL, "bound training: the gradient is on %s, the bounds on %s", um_backend_of(gud)->name,
                       um_backend_of(t->box)->name);
    const um_backend *be = um_backend_of(t->box);
    um_module *last = t->last;
    um_tensor *lo = NULL, *hi = NULL, *gl = NULL, *gh = NULL, *g = NULL;
    int rc = halves(t->box, t->batch, &lo, &hi);
    if (!rc) rc = um_tensor_new(&gl, UM_FLOAT32, 2, lo->size, be);
    if (!rc) rc = um_tensor_new(&gh, UM_FLOAT32, 2, lo->size, be);
    if (!rc)
        rc = UM_OOD_CALL(be, ibp_elision_backward, gud, lo, hi, last->params[0], gl, gh, last->grads[0],
                         last->n_params > 1 ? last->grads[1] : NULL);
    if (!rc && t->n > 0) rc = um_cat(&g, 2, (um_tensor *[]){gl, gh}, 0);
    um_tensor_release(lo);
    um_tensor_release(hi);
    um_tensor_release(gl);
    um_tensor_release(gh);
    for (int i = t->n - 1; i >= 0 && !rc; i--) rc = entry_backward(t, &t->e[i], &g, i > 0);
    um_tensor_release(g);
    return rc;
}
