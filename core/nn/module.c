/* The module base: lifetime, parameters and buffers, children and their names, the
 * forward/backward dispatch with argument checks, error messages prefixed with the
 * failing module's dotted path, and walks over the named tensors of a tree. */
#include "nn/module.h"
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ops.h"
#include "nn/nn_ops.h"

#define MSG_MAX 1024
#define PATH_MAX_LEN 1024

/* Set by a container when it has put its child's name in front of an error message,
 * so that the container above joins with '.' ("a.b.c: msg") instead of ": ". */
static __thread int path_prefixed;

int um_module_create(um_module **out, size_t size, const um_module_ops *ops) {
    um_module *m = um_calloc(size);
    if (!m) return UM_ENOMEM;
    m->ops = ops;
    m->refcount = 1;
    m->training = 1;
    m->in_ndim = -1;
    *out = m;
    return UM_OK;
}

void um_module_retain(um_module *m) {
    if (m) m->refcount++;
}

void um_module_release(um_module *m) {
    if (!m || --m->refcount > 0) return;
    if (m->ops->destroy) m->ops->destroy(m);
    for (int i = 0; i < m->n_params; i++) {
        um_tensor_release(m->params[i]);
        um_tensor_release(m->grads[i]);
    }
    for (int i = 0; i < m->n_buffers; i++) um_tensor_release(m->buffers[i]);
    for (int i = 0; i < m->n_children; i++) {
        m->children[i]->parent = NULL;
        um_module_release(m->children[i]);
        um_dealloc(m->child_names[i]);
    }
    um_dealloc(m->children);
    um_dealloc(m->child_names);
    um_tensor_release(m->output);
    um_tensor_release(m->grad_input);
    um_dealloc(m);
}

int um_module_add_param(um_module *m, const char *name, um_tensor *t) {
    um_tensor *g = NULL;
    if (m->n_params >= UM_MODULE_SLOTS) {
        um_tensor_release(t);
        return um_fail(UM_EINVAL, "%s: too many parameters", m->ops->type);
    }
    int rc = um_tensor_zeros(&g, UM_FLOAT32, t->ndim, t->size, um_backend_of(t));
    if (rc) {
        um_tensor_release(t);
        return rc;
    }
    m->param_names[m->n_params] = name;
    m->params[m->n_params] = t;
    m->grads[m->n_params] = g;
    m->n_params++;
    return UM_OK;
}

int um_module_add_buffer(um_module *m, const char *name, um_tensor *t) {
    if (m->n_buffers >= UM_MODULE_SLOTS) {
        um_tensor_release(t);
        return um_fail(UM_EINVAL, "%s: too many buffers", m->ops->type);
    }
    m->buffer_names[m->n_buffers] = name;
    m->buffers[m->n_buffers] = t;
    m->n_buffers++;
    return UM_OK;
}

static int is_number(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int check_child_name(const um_module *m, const char *name) {
    if (!name) return UM_OK;
    if (!*name) return um_fail(UM_EINVAL, "%s: a child name must not be empty", m->ops->type);
    if (strchr(name, '.'))
        return um_fail(UM_EINVAL, "%s: child name '%s' must not contain '.'", m->ops->type, name);
    if (is_number(name))
        return um_fail(UM_EINVAL, "%s: child name '%s' must not be a number (numbers name children by position)",
                       m->ops->type, name);
    if (strlen(name) >= 64)
        return um_fail(UM_EINVAL, "%s: child name '%s' is longer than 63 characters", m->ops->type, name);
    for (int i = 0; i < m->n_children; i++)
        if (m->child_names[i] && strcmp(m->child_names[i], name) == 0)
            return um_fail(UM_EINVAL, "%s: two children are named '%s'", m->ops->type, name);
    return UM_OK;
}

int um_module_add_child(um_module *m, const char *name, um_module *child) {
    if (!child) return um_fail(UM_EINVAL, "%s: child module is missing", m->ops->type);
    if (child->parent)
        return um_fail(UM_EINVAL, "%s: the %s module already belongs to a container (a module can be used once)",
                       m->ops->type, child->ops->type);
    for (const um_module *p = m; p; p = p->parent)
        if (p == child) return um_fail(UM_EINVAL, "%s: adding this child would make a cycle", m->ops->type);
    int rc = check_child_name(m, name);
    if (rc) return rc;
    if (m->n_children == m->cap_children) {
        int cap = m->cap_children ? 2 * m->cap_children : 4;
        um_module **kids = um_alloc((size_t)cap * sizeof *kids);
        char **names = um_alloc((size_t)cap * sizeof *names);
        if (!kids || !names) {
            um_dealloc(kids);
            um_dealloc(names);
            return UM_ENOMEM;
        }
        if (m->n_children) {
            memcpy(kids, m->children, (size_t)m->n_children * sizeof *kids);
            memcpy(names, m->child_names, (size_t)m->n_children * sizeof *names);
        }
        um_dealloc(m->children);
        um_dealloc(m->child_names);
        m->children = kids;
        m->child_names = names;
        m->cap_children = cap;
    }
    char *copy = NULL;
    if (name) {
        copy = um_alloc(strlen(name) + 1);
        if (!copy) return UM_ENOMEM;
        strcpy(copy, name);
    }
    um_module_retain(child);
    child->parent = m;
    child->training = m->training;
    m->children[m->n_children] = child;
    m->child_names[m->n_children] = copy;
    m->n_children++;
    return UM_OK;
}

int um_module_buffer(um_tensor **buf, int ndim, const int64_t *size, const um_backend *be) {
    /* um_tensor_ensure reuses *buf only when nobody else holds it */
    return um_tensor_ensure(buf, UM_FLOAT32, ndim, size, be);
}

void um_module_set_output(um_module *m, um_tensor *t) {
    um_tensor_retain(t);
    um_tensor_release(m->output);
    m->output = t;
}

void um_module_set_grad_input(um_module *m, um_tensor *t) {
    um_tensor_retain(t);
    um_tensor_release(m->grad_input);
    m->grad_input = t;
}

/* The backend a module computes on: that of its first parameter or buffer, if any. */
static const um_backend *module_backend(const um_module *m) {
    if (m->n_params) return um_backend_of(m->params[0]);
    if (m->n_buffers) return um_backend_of(m->buffers[0]);
    return NULL;
}

int um_module_check_input(const um_module *m, const um_tensor *x, const char *what) {
    char s[64];
    if (!x) return um_fail(UM_EINVAL, "%s: %s is missing", m->ops->type, what);
    if (x->dtype != UM_FLOAT32)
        return um_fail(UM_EINVAL, "%s: %s must be float32, got %s", m->ops->type, what, um_dtype_name(x->dtype));
    if (!um_is_contiguous(x))
        return um_fail(UM_EINVAL, "%s: %s (%s) must be contiguous; call :contiguous() first", m->ops->type, what,
                       um_shape_str(x, s, sizeof s));
    const um_backend *be = module_backend(m);
    if (be && be != um_backend_of(x))
        return um_fail(UM_EDEVICE, "%s: %s is on %s but the module's parameters are on %s", m->ops->type, what,
                       um_backend_of(x)->name, be->name);
    return UM_OK;
}

int um_module_has_params(const um_module *m) {
    if (m->n_params) return 1;
    for (int i = 0; i < m->n_children; i++)
        if (um_module_has_params(m->children[i])) return 1;
    return 0;
}

static int same_sizes(const um_tensor *t, int ndim, const int64_t *size) {
    if (t->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (t->size[d] != size[d]) return 0;
    return 1;
}

/* Drop, below m, the outputs and input gradients that only alias another module's
 * buffer (ops->aliases): a stale Flatten view of a pool's output kept the pool from
 * reshaping its buffer when the batch size changed (ACET: 128 for PGD, 256 for
 * training), as a shared storage cannot be reshaped. */
static void drop_aliases(um_module *m) {
    for (int i = 0; i < m->n_children; i++) {
        um_module *c = m->children[i];
        if (c->ops->aliases) {
            um_module_set_output(c, NULL);
            um_module_set_grad_input(c, NULL);
        }
        drop_aliases(c);
    }
}

/* top: a pass from outside. When its input shape changed, the aliases are dropped after
 * the input is accepted (a refused input keeps the last pass's views); every backward
 * follows a forward of the same shape, so this also covers the input gradients. With a
 * fixed shape the views are reused and a warm pass allocates nothing. */
static int run_forward(um_module *m, um_tensor *x, int top) {
    int rc = um_module_check_input(m, x, "input");
    if (rc) return rc;
    if (top && !same_sizes(x, m->in_ndim, m->in_shape)) drop_aliases(m);
    rc = m->ops->forward(m, x);
    if (rc) return rc;
    m->in_ndim = x->ndim;
    memcpy(m->in_shape, x->size, sizeof(int64_t) * (size_t)x->ndim);
    return UM_OK;
}

/* What a backward of m with input x and output gradient gy needs: a forward of that shape. */
static int check_backward(um_module *m, um_tensor *x, um_tensor *gy) {
    char a[64], b[64];
    if (m->forward_failed)
        return um_fail(UM_EINVAL, "%s: backward after a forward that failed (its layers may hold that "
                       "input's state): run forward again first", m->ops->type);
    if (!m->output || m->in_ndim < 0)
        return um_fail(UM_EINVAL, "%s: backward before forward", m->ops->type);
    int rc = um_module_check_input(m, x, "input");
    if (!rc) rc = um_module_check_input(m, gy, "output gradient");
    if (rc) return rc;
    if (!same_sizes(x, m->in_ndim, m->in_shape))
        return um_fail(UM_EINVAL, "%s: backward input is %s but the last forward input was %s", m->ops->type,
                       um_shape_str(x, a, sizeof a), um_sizes_str(m->in_ndim, m->in_shape, b, sizeof b));
    if (!um_same_shape(gy, m->output))
        return um_fail(UM_EINVAL, "%s: output gradient is %s but the output is %s", m->ops->type,
                       um_shape_str(gy, a, sizeof a), um_shape_str(m->output, b, sizeof b));
    return UM_OK;
}

static um_grads_ready_hook grads_ready;
static void *grads_ready_ctx;

void um_module_set_grads_ready_hook(um_grads_ready_hook hook, void *ctx) {
    grads_ready = hook;
    grads_ready_ctx = ctx;
}

/* m's own parameter gradients were just computed (a module runs once per pass) */
static int notify_grads(um_module *m, int flags) {
    if (!grads_ready || !(flags & UM_GRAD_PARAMS) || m->n_params == 0) return UM_OK;
    return grads_ready(m, grads_ready_ctx);
}

static int run_backward(um_module *m, um_tensor *x, um_tensor *gy, int flags) {
    if (!(flags & UM_GRAD_INPUT) && !um_module_has_params(m)) return UM_OK;
    int rc = check_backward(m, x, gy);
    if (!rc) rc = m->ops->backward(m, x, gy, flags);
    return rc ? rc : notify_grads(m, flags);
}

int um_module_forward(um_module *m, um_tensor *x, um_tensor **y) {
    path_prefixed = 0;
    /* A refused input changes nothing; one accepted and then failing inside leaves the
     * layers part-way, so their state no longer matches the last good forward. */
    int rc = um_module_check_input(m, x, "input");
    if (rc) return rc;
    rc = run_forward(m, x, 1);
    m->forward_failed = rc != UM_OK;
    if (rc) return rc;
    *y = m->output;
    return UM_OK;
}

int um_module_backward(um_module *m, um_tensor *x, um_tensor *gy, um_tensor **gx) {
    path_prefixed = 0;
    int rc = run_backward(m, x, gy, UM_GRAD_PARAMS | (gx ? UM_GRAD_INPUT : 0));
    if (rc) return rc;
    if (gx) *gx = m->grad_input;
    return UM_OK;
}

int um_module_backward_input(um_module *m, um_tensor *x, um_tensor *gy, um_tensor **gx) {
    path_prefixed = 0;
    int rc = run_backward(m, x, gy, UM_GRAD_INPUT);
    if (rc) return rc;
    *gx = m->grad_input;
    return UM_OK;
}

static int child_fail(const um_module *m, int i, int rc) {
    char name[64], msg[MSG_MAX];
    snprintf(msg, sizeof msg, "%s", um_last_error());
    um_module_child_name(m, i, name, sizeof name);
    um_fail(rc, "%s%s%s", name, path_prefixed ? "." : ": ", msg);
    path_prefixed = 1;
    return rc;
}

int um_module_child_forward(um_module *m, int i, um_tensor *x) {
    path_prefixed = 0;
    int rc = run_forward(m->children[i], x, 0);
    return rc ? child_fail(m, i, rc) : UM_OK;
}

int um_module_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    if (!m->ops->bound)
        return um_fail(UM_ENOTIMPL, "%s has no interval bound (its ops lack `bound`)", m->ops->type);
    if (!um_same_shape(lo, hi)) return um_fail(UM_EINVAL, "%s: bound: lo and hi differ in shape", m->ops->type);
    return m->ops->bound(m, lo, hi, lo_out, hi_out);
}

int um_module_child_bound(um_module *m, int i, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out) {
    path_prefixed = 0;
    int rc = um_module_bound(m->children[i], lo, hi, lo_out, hi_out);
    return rc ? child_fail(m, i, rc) : UM_OK;
}

int um_module_child_backward(um_module *m, int i, um_tensor *x, um_tensor *gy, int flags) {
    path_prefixed = 0;
    int rc = run_backward(m->children[i], x, gy, flags);
    return rc ? child_fail(m, i, rc) : UM_OK;
}

int um_module_child_fold_backward(um_module *m, int i, um_tensor *x_prev, um_tensor *gy, int flags) {
    um_module *c = i > 0 ? m->children[i] : NULL, *prev = i > 0 ? m->children[i - 1] : NULL;
    if (!c || !c->ops->fold_backward || !prev->output) return UM_NOT_FOLDED;
    path_prefixed = 0;
    int rc = check_backward(prev, x_prev, prev->output);
    if (rc) return child_fail(m, i - 1, rc);
    if ((rc = check_backward(c, prev->output, gy))) return child_fail(m, i, rc);
    rc = c->ops->fold_backward(c, prev, x_prev, gy, flags | UM_GRAD_INPUT);
    if (rc == UM_OK && ((rc = notify_grads(c, flags)) || (rc = notify_grads(prev, flags)))) return child_fail(m, i, rc);
    return rc < 0 ? child_fail(m, i, rc) : rc;
}

int um_module_child_out_shape(const um_module *m, int i, int ndim, const int64_t *in, int *ondim, int64_t *out) {
    path_prefixed = 0;
    int rc = m->children[i]->ops->out_shape(m->children[i], ndim, in, ondim, out);
    return rc ? child_fail(m, i, rc) : UM_OK;
}

int um_module_out_shape(const um_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out) {
    path_prefixed = 0;
    if (ndim < 0 || ndim > UM_MAXDIM) return um_fail(UM_EINVAL, "%s: bad input rank %d", m->ops->type, ndim);
    return m->ops->out_shape(m, ndim, in, out_ndim, out);
}

void um_module_train(um_module *m, int training) {
    m->training = training ? 1 : 0;
    for (int i = 0; i < m->n_children; i++) um_module_train(m->children[i], training);
}

int um_module_zero_grad(um_module *m) {
    for (int i = 0; i < m->n_params; i++) {
        int rc = um_fill_(m->grads[i], 0.0);
        if (rc) return rc;
    }
    for (int i = 0; i < m->n_children; i++) {
        int rc = um_module_zero_grad(m->children[i]);
        if (rc) return rc;
    }
    return UM_OK;
}

void um_module_describe(const um_module *m, char *buf, size_t n) {
    if (m->ops->describe) m->ops->describe(m, buf, n);
    else snprintf(buf, n, "%s", m->ops->type);
}

const char *um_module_type(const um_module *m) { return m->ops->type; }
int um_module_num_children(const um_module *m) { return m->n_children; }

um_module *um_module_child(const um_module *m, int i) {
    return i >= 0 && i < m->n_children ? m->children[i] : NULL;
}

const char *um_module_child_name(const um_module *m, int i, char *buf, size_t n) {
    if (m->child_names[i]) snprintf(buf, n, "%s", m->child_names[i]);
    else snprintf(buf, n, "%d", i + 1);
    return buf;
}

um_module *um_module_find_child(const um_module *m, const char *name) {
    char buf[64];
    for (int i = 0; i < m->n_children; i++)
        if (strcmp(um_module_child_name(m, i, buf, sizeof buf), name) == 0) return m->children[i];
    return NULL;
}

static int visit(um_module *m, um_tensor_set which, char *path, size_t len, um_tensor_visitor fn, void *ud) {
    int n = which == UM_BUFFERS ? m->n_buffers : m->n_params;
    for (int i = 0; i < n + m->n_children; i++) {
        char name[64];
        const char *part = i < n ? (which == UM_BUFFERS ? m->buffer_names[i] : m->param_names[i])
                                 : um_module_child_name(m, i - n, name, sizeof name);
        int w = snprintf(path + len, PATH_MAX_LEN - len, "%s%s", len ? "." : "", part);
        if (w < 0 || (size_t)w >= PATH_MAX_LEN - len)
            return um_fail(UM_EINVAL, "module path longer than %d characters", PATH_MAX_LEN - 1);
        int rc;
        if (i < n) {
            um_tensor *t = which == UM_PARAMS ? m->params[i] : which == UM_GRADS ? m->grads[i] : m->buffers[i];
            rc = fn(path, t, ud);
        } else {
            rc = visit(m->children[i - n], which, path, len + (size_t)w, fn, ud);
        }
        path[len] = '\0';
        if (rc) return rc;
    }
    return UM_OK;
}

int um_module_visit(um_module *m, um_tensor_set which, um_tensor_visitor fn, void *ud) {
    char path[PATH_MAX_LEN];
    path[0] = '\0';
    return visit(m, which, path, 0, fn, ud);
}

typedef struct { um_tensor **out; int cap, count; int64_t elements; } collect_state;

static int collect(const char *path, um_tensor *t, void *ud) {
    (void)path;
    collect_state *s = ud;
    if (s->count < s->cap) s->out[s->count] = t;
    s->count++;
    s->elements += um_numel(t);
    return 0;
}

int um_module_tensors(um_module *m, um_tensor_set which, um_tensor **out, int cap) {
    collect_state s = {out, cap, 0, 0};
    um_module_visit(m, which, collect, &s);
    return s.count;
}

int64_t um_module_num_elements(um_module *m, um_tensor_set which) {
    collect_state s = {NULL, 0, 0, 0};
    um_module_visit(m, which, collect, &s);
    return s.elements;
}

static int move_tensor(um_tensor **t, const um_backend *be) {
    if (um_backend_of(*t) == be) return UM_OK;
    um_tensor *moved = NULL;
    int rc = um_to_backend(&moved, *t, be);
    if (rc) return rc;
    um_tensor_release(*t);
    *t = moved;
    return UM_OK;
}

int um_module_to(um_module *m, const um_backend *be) {
    int rc = UM_OK;
    for (int i = 0; i < m->n_params && !rc; i++) {
        rc = move_tensor(&m->params[i], be);
        if (!rc) rc = move_tensor(&m->grads[i], be);
    }
    for (int i = 0; i < m->n_buffers && !rc; i++) rc = move_tensor(&m->buffers[i], be);
    for (int i = 0; i < m->n_children && !rc; i++) rc = um_module_to(m->children[i], be);
    um_tensor_release(m->output);
    um_tensor_release(m->grad_input);
    m->output = m->grad_input = NULL;
    m->in_ndim = -1;
    return rc;
}
