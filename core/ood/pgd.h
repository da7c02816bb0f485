/* Projected gradient ascent on the input (docs/method.md §5): l-inf sign steps (or l2 normalised
 * steps), the authors' random start (per-example s ~ U[0,1] times U[-eps, eps]^d), fixed
 * step size, projection onto the eps-ball around the start z intersected with [0,1]^d, and
 * the per-example best iterate (a strictly larger objective replaces). The model runs in
 * evaluation mode with input gradients only; its mode is restored afterwards and its
 * parameters, gradients and running statistics are untouched. */
#ifndef UM_PGD_H
#define UM_PGD_H
#include "nn/module.h"
#include "nn/nn_ops.h"
#include "rng.h"

/* An objective of the caller's (e.g. a Lua function): writes the per-example values (n)
 * at the logits (n, k) and, when grad_logits is not NULL, the gradient of their sum. */
typedef int (*um_objective_fn)(void *ctx, const um_tensor *logits, um_tensor *values, um_tensor *grad_logits);

typedef struct um_pgd_config {
    um_loss_kind objective;  /* UM_LOSS_MAX_CONF, UM_LOSS_UNIFORM_CONF or UM_LOSS_CROSS_ENTROPY */
    double eps;              /* radius of the ball */
    double step;             /* step size */
    int steps;               /* number of ascent steps */
    int norm;                /* 0 = l-inf, 2 = l2 */
    int random_start;        /* 1 = the authors' random start, 0 = start at z */
    um_objective_fn custom;  /* when set, replaces `objective` (labels are not used) */
    void *custom_ctx;
} um_pgd_config;

/* z: (n, ...) float32 in [0,1]; labels: int64 (n) class indices for the cross-entropy
 * objective, else NULL. Returns new tensors: *x_adv (shape of z) and *objective (n), the
 * objective value at the returned points. g is needed for the random start. */
int um_pgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_pgd_config *cfg,
           um_generator *g, um_tensor **x_adv, um_tensor **objective);

/* Per-example objective values (n) of the model's current mode at x (new tensor). */
int um_objective_values(um_module *m, um_tensor *x, um_loss_kind kind, const um_tensor *labels, um_tensor **values);
/* The same into values (n), and with grad_logits != NULL the gradient of their sum with respect
 * to the logits into *grad_logits (made to fit): the scoring step of every attack. */
int um_objective_and_grad(um_module *m, um_tensor *x, um_loss_kind kind, const um_tensor *labels, um_tensor *values,
                          um_tensor **grad_logits);
/* The same with a caller's objective in place of a loss kind. */
int um_custom_objective_and_grad(um_module *m, um_tensor *x, um_objective_fn fn, void *ctx, um_tensor *values,
                                 um_tensor **grad_logits);

#endif
