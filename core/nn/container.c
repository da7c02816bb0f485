/* Containers: Sequential (children in order, named by index or by a given name) and
 * Residual (y = main(p) + shortcut(p), p = pre(x) or x). Their results are their
 * children's buffers, held only between a call and the next, so that the children can
 * keep reusing them. Errors from a child carry the child's dotted path. */
#include <stdio.h>
#include <string.h>
#include "backend.h"
#include "error.h"
#include "nn/layers.h"
#include "nn/nn_ops.h"
#include "ops.h"

/* ---- Sequential ---- */

static int seq_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    int64_t cur[UM_MAXDIM], next[UM_MAXDIM];
    int nd = ndim;
    memcpy(cur, in, sizeof(int64_t) * (size_t)ndim);
    for (int i = 0; i < m->n_children; i++) {
        int rc = um_module_child_out_shape(m, i, nd, cur, &nd, next);
        if (rc) return rc;
        memcpy(cur, next, sizeof(int64_t) * (size_t)nd);
    }
    *ondim = nd;
    memcpy(out, cur, sizeof(int64_t) * (size_t)nd);
    return UM_OK;
}

static int seq_forward(um_module *m, um_tensor *x) {
    um_tensor *cur = x;
    um_module_set_output(m, NULL);   /* let the last child reuse its buffer */
    for (int i = 0; i < m->n_children; i++) {
        int rc = um_module_child_forward(m, i, cur);
        if (rc) return rc;
        cur = m->children[i]->output;
    }
    um_module_set_output(m, cur);
    return UM_OK;
}

static int seq_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    um_tensor *g = gy;
    um_module_set_grad_input(m, NULL);
    for (int i = m->n_children - 1; i >= 0; i--) {
        int child_flags = (flags & UM_GRAD_PARAMS) | ((i > 0 || (flags & UM_GRAD_INPUT)) ? UM_GRAD_INPUT : 0);
        um_tensor *in = i > 0 ? m->children[i - 1]->output : x;
        /* a pair that one kernel can take back in one pass (ReLU then MaxPool2d,
         * BatchNorm2d then ReLU) */
        if (i > 1 || (i == 1 && (flags & UM_GRAD_INPUT))) {
            um_tensor *in_prev = i > 1 ? m->children[i - 2]->output : x;
            /* our input gradient plus an addend: the first pair may add it in its pass */
            um_module *first = m->children[0];
            if (i == 1) first->grad_addend = m->grad_addend;
            int rc = um_module_child_fold_backward(m, i, in_prev, g, flags & UM_GRAD_PARAMS);
            if (i == 1) {
                if (m->grad_addend && !first->grad_addend) m->grad_addend = NULL;   /* taken */
                first->grad_addend = NULL;
            }
            if (rc < 0) return rc;
            if (rc == UM_OK) {
                g = m->children[--i]->grad_input;
                continue;
            }
        }
        int rc = um_module_child_backward(m, i, in, g, child_flags);
        if (rc) return rc;
        if (child_flags & UM_GRAD_INPUT) g = m->children[i]->grad_input;
    }
    if (flags & UM_GRAD_INPUT) um_module_set_grad_input(m, g);
    return UM_OK;
}

/* Each child bounds the box its predecessor returned; intermediate boxes are freed. */
static int seq_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    um_tensor *a = lo, *b = hi;
    um_tensor_retain(a);
    um_tensor_retain(b);
    for (int i = 0; i < m->n_children; i++) {
        um_tensor *na, *nb;
        int rc = um_module_child_bound(m, i, a, b, &na, &nb);
        um_tensor_release(a);
        um_tensor_release(b);
        if (rc) return rc;
        a = na;
        b = nb;
    }
    *lo_out = a;
    *hi_out = b;
    return UM_OK;
}

const um_module_ops um_sequential_module_ops = {
    .type = "Sequential",
    .out_shape = seq_out_shape,
    .forward = seq_forward,
    .backward = seq_backward,
    .aliases = 1,
    .bound = seq_bound,
};

int um_sequential_new(um_module **out) { return um_module_create(out, sizeof(um_module), &um_sequential_module_ops); }

int um_sequential_add(um_module *seq, const char *name, um_module *child) {
    if (seq->ops != &um_sequential_module_ops) return um_fail(UM_EINVAL, "add: expected a Sequential, got %s", seq->ops->type);
    return um_module_add_child(seq, name, child);
}

/* ---- Residual ---- */

typedef struct {
    um_module base;
    int pre, main, shortcut;   /* child indices; pre = -1 when absent */
    um_tensor *grad_p;         /* gradient at pre's output */
    um_tensor *grad_sum;       /* the branches' gradients summed, without pre (grad_input borrows it) */
} residual_module;

static int shapes_differ(int na, const int64_t *a, int nb, const int64_t *b) {
    if (na != nb) return 1;
    for (int d = 0; d < na; d++)
        if (a[d] != b[d]) return 1;
    return 0;
}

static int branch_mismatch(int na, const int64_t *a, int nb, const int64_t *b) {
    char sa[64], sb[64];
    return um_fail(UM_EINVAL, "Residual: the main branch gives %s but the shortcut gives %s",
                   um_sizes_str(na, a, sa, sizeof sa), um_sizes_str(nb, b, sb, sizeof sb));
}

static int res_out_shape(const um_module *m, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    const residual_module *r = (const residual_module *)m;
    int64_t p[UM_MAXDIM], a[UM_MAXDIM], b[UM_MAXDIM];
    int np = ndim, na, nb, rc = UM_OK;
    memcpy(p, in, sizeof(int64_t) * (size_t)ndim);
    if (r->pre >= 0) rc = um_module_child_out_shape(m, r->pre, ndim, in, &np, p);
    if (!rc) rc = um_module_child_out_shape(m, r->main, np, p, &na, a);
    if (!rc) rc = um_module_child_out_shape(m, r->shortcut, np, p, &nb, b);
    if (rc) return rc;
    if (shapes_differ(na, a, nb, b)) return branch_mismatch(na, a, nb, b);
    *ondim = na;
    memcpy(out, a, sizeof(int64_t) * (size_t)na);
    return UM_OK;
}

static int res_forward(um_module *m, um_tensor *x) {
    residual_module *r = (residual_module *)m;
    um_tensor *p = x;
    int rc = UM_OK;
    if (r->pre >= 0) {
        rc = um_module_child_forward(m, r->pre, x);
        if (rc) return rc;
        p = m->children[r->pre]->output;
    }
    rc = um_module_child_forward(m, r->main, p);
    if (!rc) rc = um_module_child_forward(m, r->shortcut, p);
    if (rc) return rc;
    um_tensor *a = m->children[r->main]->output, *b = m->children[r->shortcut]->output;
    if (!um_same_shape(a, b)) return branch_mismatch(a->ndim, a->size, b->ndim, b->size);
    const um_backend *be = um_backend_of(x);
    rc = um_module_buffer(&m->output, a->ndim, a->size, be);
    return rc ? rc : UM_NN_CALL(be, add, a, b, m->output);
}

/* The input gradient only, without pre: the shortcut's gradient first, then the main
 * branch's with that added in its own last pass when it can (a BatchNorm2d + ReLU fold in
 * evaluation mode: one pass over the activation instead of two; grad_addend). *done: 1
 * when it was taken and grad_input is set. */
static int res_backward_fused(um_module *m, um_tensor *x, um_tensor *gy, int *done) {
    residual_module *r = (residual_module *)m;
    um_module *main = m->children[r->main];
    *done = 0;
    int rc = um_module_child_backward(m, r->shortcut, x, gy, UM_GRAD_INPUT);
    if (rc) return rc;
    main->grad_addend = m->children[r->shortcut]->grad_input;
    rc = um_module_child_backward(m, r->main, x, gy, UM_GRAD_INPUT);
    *done = !rc && !main->grad_addend;
    main->grad_addend = NULL;
    if (*done) um_module_set_grad_input(m, main->grad_input);
    return rc;
}

static int res_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    residual_module *r = (residual_module *)m;
    const int has_pre = r->pre >= 0;
    um_module *pre = has_pre ? m->children[r->pre] : NULL;
    um_tensor *p = has_pre ? pre->output : x;
    /* grad_input is borrowed (pre's, main's or grad_sum): let its owner reuse it */
    um_module_set_grad_input(m, NULL);
    if (!has_pre && flags == UM_GRAD_INPUT) {
        int done, rc = res_backward_fused(m, x, gy, &done);
        if (rc || done) return rc;
        const um_backend *be = um_backend_of(x);
        rc = um_module_buffer(&r->grad_sum, x->ndim, x->size, be);
        if (!rc) rc = UM_NN_CALL(be, add, m->children[r->main]->grad_input, m->children[r->shortcut]->grad_input,
                                 r->grad_sum);
        if (!rc) um_module_set_grad_input(m, r->grad_sum);
        return rc;
    }
    /* The gradient at p is needed for our input gradient, or for pre's parameters. */
    const int pre_needed = has_pre && ((flags & UM_GRAD_INPUT) || ((flags & UM_GRAD_PARAMS) && um_module_has_params(pre)));
    const int need_gp = has_pre ? pre_needed : (flags & UM_GRAD_INPUT) != 0;
    const int branch_flags = (flags & UM_GRAD_PARAMS) | (need_gp ? UM_GRAD_INPUT : 0);
    int rc = um_module_child_backward(m, r->main, p, gy, branch_flags);
    if (!rc) rc = um_module_child_backward(m, r->shortcut, p, gy, branch_flags);
    if (rc || !need_gp) return rc;
    const um_backend *be = um_backend_of(x);
    um_tensor **gp = has_pre ? &r->grad_p : &r->grad_sum;
    rc = um_module_buffer(gp, p->ndim, p->size, be);
    if (!rc) rc = UM_NN_CALL(be, add, m->children[r->main]->grad_input, m->children[r->shortcut]->grad_input, *gp);
    if (!rc && !has_pre) um_module_set_grad_input(m, r->grad_sum);
    if (rc || !has_pre) return rc;
    rc = um_module_child_backward(m, r->pre, x, r->grad_p, flags);
    if (!rc && (flags & UM_GRAD_INPUT)) um_module_set_grad_input(m, pre->grad_input);
    return rc;
}

/* Both branches bound p's box independently (no correlation between them), then add. */
static int res_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    residual_module *r = (residual_module *)m;
    um_tensor *pl = lo, *ph = hi, *al = NULL, *ah = NULL, *bl = NULL, *bh = NULL, *yl = NULL, *yh = NULL;
    int rc = UM_OK;
    if (r->pre >= 0) rc = um_module_child_bound(m, r->pre, lo, hi, &pl, &ph);
    if (!rc) rc = um_module_child_bound(m, r->main, pl, ph, &al, &ah);
    if (!rc) rc = um_module_child_bound(m, r->shortcut, pl, ph, &bl, &bh);
    if (!rc && !um_same_shape(al, bl)) rc = branch_mismatch(al->ndim, al->size, bl->ndim, bl->size);
    if (!rc) rc = um_binary(&yl, UM_ADD, al, bl);
    if (!rc) rc = um_binary(&yh, UM_ADD, ah, bh);
    if (r->pre >= 0 && pl != lo) {
        um_tensor_release(pl);
        um_tensor_release(ph);
    }
    um_tensor_release(al);
    um_tensor_release(ah);
    um_tensor_release(bl);
    um_tensor_release(bh);
    if (rc) {
        um_tensor_release(yl);
        um_tensor_release(yh);
        return rc;
    }
    *lo_out = yl;
    *hi_out = yh;
    return UM_OK;
}

static void res_destroy(um_module *m) {
    um_tensor_release(((residual_module *)m)->grad_p);
    um_tensor_release(((residual_module *)m)->grad_sum);
}

static const um_module_ops res_ops = {
    .type = "Residual",
    .out_shape = res_out_shape,
    .forward = res_forward,
    .backward = res_backward,
    .destroy = res_destroy,
    .bound = res_bound,
};

int um_residual_new(um_module **out, um_module *pre, um_module *main, um_module *shortcut) {
    if (!main) return um_fail(UM_EINVAL, "Residual: the main branch is missing");
    um_module *m = NULL, *id = NULL;
    int rc = um_module_create(&m, sizeof(residual_module), &res_ops);
    if (rc) return rc;
    residual_module *r = (residual_module *)m;
    r->pre = -1;
    if (pre) {
        r->pre = m->n_children;
        rc = um_module_add_child(m, "pre", pre);
    }
    if (!rc) {
        r->main = m->n_children;
        rc = um_module_add_child(m, "main", main);
    }
    if (!rc && !shortcut) rc = um_identity_new(&id);
    if (!rc) {
        r->shortcut = m->n_children;
        rc = um_module_add_child(m, "shortcut", shortcut ? shortcut : id);
    }
    um_module_release(id);
    if (rc) {
        um_module_release(m);
        return rc;
    }
    *out = m;
    return UM_OK;
}
