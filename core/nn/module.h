/* Modules: layers and containers behind one vtable, so a whole forward or backward pass
 * runs in C. A module owns its parameters, their gradients, its buffers (running
 * statistics) and the tensors it returns: forward's output and backward's input gradient
 * stay owned by the module (borrowed by the caller) and are reused by the next call while
 * shapes allow and nobody else holds them. backward(x, gy) must follow forward(x). */
#ifndef UM_MODULE_H
#define UM_MODULE_H
#include <stddef.h>
#include <stdint.h>
#include "tensor.h"

typedef struct um_module um_module;

/* What a backward pass computes: the input gradient and/or parameter gradients (+=). */
enum { UM_GRAD_INPUT = 1, UM_GRAD_PARAMS = 2 };

/* Which tensors a walk over the tree visits. */
typedef enum { UM_PARAMS = 0, UM_GRADS = 1, UM_BUFFERS = 2 } um_tensor_set;

typedef struct um_module_ops {
    const char *type;   /* "Conv2d", "Sequential", ... */
    /* Check an input shape and give the output shape; allocates nothing. */
    int (*out_shape)(const um_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out);
    /* *y = m->output after the call (borrowed). */
    int (*forward)(um_module *m, um_tensor *x);
    /* flags: UM_GRAD_INPUT and/or UM_GRAD_PARAMS. With UM_GRAD_INPUT, m->grad_input
     * holds the input gradient afterwards. */
    int (*backward)(um_module *m, um_tensor *x, um_tensor *gy, int flags);
    void (*describe)(const um_module *m, char *buf, size_t n);  /* "Conv2d(3 -> 16, 3x3, ...)" */
    void (*destroy)(um_module *m);   /* type-specific resources; NULL if none */
    /* 1 when output and grad_input only alias other modules' buffers (views of the input
     * and of gy: Flatten, Identity; a Sequential's are its children's). A pass drops such
     * stale aliases first, so that the owners can reshape their buffers in place. */
    int aliases;
    /* Optional: the input gradient of prev and of m in one pass, where prev runs just
     * before m in a Sequential (m's input is prev's output; x_prev is prev's input;
     * flags: what prev's backward would be asked for, UM_GRAD_INPUT always). Returns
     * UM_OK with prev->grad_input set (m->grad_input, the gradient between the two, is not
     * computed and keeps its buffer for the passes that are not folded), or UM_NOT_FOLDED,
     * having touched nothing, when it cannot (another kind of prev, a backend without the
     * fused kernel); the Sequential then runs the two. */
    int (*fold_backward)(um_module *m, um_module *prev, um_tensor *x_prev, um_tensor *gy, int flags);
    /* Optional: interval bound propagation (core/ood/ibp.c). From elementwise bounds
     * lo <= x <= hi of an input, new tensors *lo_out, *hi_out bounding m(x) for every such x
     * (evaluation mode; plain float32, no outward rounding). NULL: the module has none, and
     * a certificate through it fails naming the module. */
    int (*bound)(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out);
    /* Optional: training through interval bounds (GOOD, core/ood/ibp_train.c). An affine
     * module y = A x + b (Linear, Conv2d) gives abs_forward: |A| r into a new tensor, and
     * abs_backward: |A|^T g into a new *gr (gr NULL: not wanted) while adding to its
     * parameter gradients the derivative of <g, |A| r>, sign(A) times the weight gradient of
     * (r, g). A module whose bound is um_bound_monotone trains through its own forward and
     * backward; any other module cannot be trained through bounds. */
    int (*abs_forward)(um_module *m, um_tensor *r, um_tensor **out);
    int (*abs_backward)(um_module *m, um_tensor *r, um_tensor *g, um_tensor **gr);
} um_module_ops;

#define UM_NOT_FOLDED 1

#define UM_MODULE_SLOTS 4

struct um_module {
    const um_module_ops *ops;
    int refcount;
    int training;                       /* 1 = training mode (the default) */
    um_module *parent;                  /* not owned; a module has at most one */
    int n_params, n_buffers;
    const char *param_names[UM_MODULE_SLOTS];
    um_tensor *params[UM_MODULE_SLOTS], *grads[UM_MODULE_SLOTS];
    const char *buffer_names[UM_MODULE_SLOTS];
    um_tensor *buffers[UM_MODULE_SLOTS];
    int n_children, cap_children;
    um_module **children;
    char **child_names;                 /* NULL entry: named by its 1-based index */
    um_tensor *output, *grad_input;     /* results of the last forward / backward */
    /* Set by the parent for one backward (borrowed, or NULL): a module that can add it
     * into its input gradient in the same pass (a BatchNorm2d + ReLU fold in evaluation
     * mode, through a Sequential whose first two children they are) does so and sets the
     * field back to NULL; otherwise the parent adds it (Residual, core/nn/container.c). */
    um_tensor *grad_addend;
    int64_t in_shape[UM_MAXDIM];        /* input shape of the last forward (for summaries) */
    int in_ndim;                        /* -1 before the first forward */
    int forward_failed;                 /* the last forward from outside raised an error */
};

/* ---- using modules ---- */
void um_module_retain(um_module *m);
void um_module_release(um_module *m);   /* NULL is fine */

/* y = m(x). *y is borrowed: owned by m, valid until m's next forward or its release. */
int um_module_forward(um_module *m, um_tensor *x, um_tensor **y);
/* Input gradient into *gx (borrowed, like y) and parameter gradients accumulated.
 * gx == NULL: the input gradient is not computed (the first layer of a training step). */
int um_module_backward(um_module *m, um_tensor *x, um_tensor *gy, um_tensor **gx);
/* Input gradient only; parameter gradients untouched (PGD). */
int um_module_backward_input(um_module *m, um_tensor *x, um_tensor *gy, um_tensor **gx);
/* Called during every backward pass that computes parameter gradients, as soon as a module's
 * own parameter gradients are computed (in the backward's order: the last layer first), so
 * that data-parallel training can start reducing them while the pass goes on (core/dist/
 * buckets). A nonzero return stops the pass with that error. NULL (the default): none. */
typedef int (*um_grads_ready_hook)(um_module *m, void *ctx);
void um_module_set_grads_ready_hook(um_grads_ready_hook hook, void *ctx);

void um_module_train(um_module *m, int training);   /* recursive */
int um_module_zero_grad(um_module *m);              /* recursive */
int um_module_out_shape(const um_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out);
void um_module_describe(const um_module *m, char *buf, size_t n);
const char *um_module_type(const um_module *m);

/* Children (containers): 0-based in C; the name is the given one or "1", "2", ... */
int um_module_num_children(const um_module *m);
um_module *um_module_child(const um_module *m, int i);            /* borrowed */
const char *um_module_child_name(const um_module *m, int i, char *buf, size_t n);
um_module *um_module_find_child(const um_module *m, const char *name);  /* NULL if none */

/* Walk the tree depth first (own tensors before children's), calling fn with each
 * tensor's dotted path ("block_2_0.main.conv1.weight"). A nonzero return from fn stops
 * the walk and is returned. Paths live on the stack: the walk allocates nothing. */
typedef int (*um_tensor_visitor)(const char *path, um_tensor *t, void *ud);
int um_module_visit(um_module *m, um_tensor_set which, um_tensor_visitor fn, void *ud);
/* Fill out[0..cap) in walk order (borrowed) and return the total count. */
int um_module_tensors(um_module *m, um_tensor_set which, um_tensor **out, int cap);
int64_t um_module_num_elements(um_module *m, um_tensor_set which);
int um_module_has_params(const um_module *m);       /* anywhere in the tree */
/* Move every parameter, gradient and buffer to backend be (work buffers are dropped). */
int um_module_to(um_module *m, const um_backend *be);

/* ---- containers ---- */
extern const um_module_ops um_sequential_module_ops;
int um_sequential_new(um_module **out);
/* Append child (a new reference is taken); name NULL = by index. A name must be
 * non-empty, unique, contain no '.', and not be a number. */
int um_sequential_add(um_module *seq, const char *name, um_module *child);
/* y = main(p) + shortcut(p) with p = pre(x), or p = x when pre is NULL; shortcut NULL =
 * identity. Children are named "pre", "main", "shortcut" (pre-activation ResNet units
 * share pre's output between both branches). */
int um_residual_new(um_module **out, um_module *pre, um_module *main, um_module *shortcut);

/* ---- for implementers of module types (core/nn/layer_*.c) ---- */
/* Allocate a zeroed module of `size` bytes (a struct whose first member is um_module). */
int um_module_create(um_module **out, size_t size, const um_module_ops *ops);
/* Register a parameter (takes the reference; its zero gradient is created) or buffer. */
int um_module_add_param(um_module *m, const char *name, um_tensor *t);
int um_module_add_buffer(um_module *m, const char *name, um_tensor *t);
int um_module_add_child(um_module *m, const char *name, um_module *child);
/* Make *buf a contiguous float32 tensor of this shape on be, reusing it when it matches
 * and nobody else holds it (so a caller keeping an old result never sees it change). */
int um_module_buffer(um_tensor **buf, int ndim, const int64_t *size, const um_backend *be);
/* Run child i (forward / backward), prefixing its path to any error message. */
int um_module_child_forward(um_module *m, int i, um_tensor *x);
int um_module_child_backward(um_module *m, int i, um_tensor *x, um_tensor *gy, int flags);
/* Input gradients of children i-1 and i in one pass (ops->fold_backward of child i, with
 * flags for child i-1); UM_NOT_FOLDED when they cannot be, else as above. */
int um_module_child_fold_backward(um_module *m, int i, um_tensor *x_prev, um_tensor *gy, int flags);
/* Interval bounds of m (ops->bound), or UM_ENOTIMPL naming the module type that has none;
 * the child form prefixes the child's path to errors. */
int um_module_bound(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out);
int um_module_child_bound(um_module *m, int i, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out);
/* Bound rules for layer implementers (core/nn/bound.c). Monotone (nondecreasing in every
 * input: ReLU, pooling, views, channel padding): m's forward on lo and on hi. Affine
 * y = A x + b: the forward of the centre (lo + hi)/2 plus or minus |A| applied to the
 * radius (hi - lo)/2, which abs_linear computes into a new tensor. */
int um_bound_monotone(um_module *m, um_tensor *lo, um_tensor *hi, um_tensor **lo_out, um_tensor **hi_out);
typedef int (*um_abs_linear_fn)(um_module *m, um_tensor *r, um_tensor **out);
/* The centre (lo + hi)/2 and radius hi - centre (>= 0) of a box, new tensors. */
int um_bound_centre_radius(const um_tensor *lo, const um_tensor *hi, um_tensor **c, um_tensor **r);
int um_bound_affine(um_module *m, um_tensor *lo, um_tensor *hi, um_abs_linear_fn abs_linear, um_tensor **lo_out,
                    um_tensor **hi_out);
/* For abs_backward: grads[0] of m += sign(params[0]) * raw (raw: the weight gradient of
 * the radius pass computed with |W|). */
int um_bound_add_signed_grad(um_module *m, const um_tensor *raw);
/* Shape check of child i with the same error prefixing. */
int um_module_child_out_shape(const um_module *m, int i, int ndim, const int64_t *in, int *ondim, int64_t *out);
/* Common argument checks: float32, contiguous, same backend as the module's parameters. */
int um_module_check_input(const um_module *m, const um_tensor *x, const char *what);
/* Set the output/grad_input to (a new reference of) t, releasing the previous one. */
void um_module_set_output(um_module *m, um_tensor *t);
void um_module_set_grad_input(um_module *m, um_tensor *t);

#endif
