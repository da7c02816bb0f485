/* Attacks with per-example step sizes (docs/worst-case.md): APGD (Croce & Hein 2020: step-size
 * checkpoints with halving and a return to the best point, momentum 0.75, restarts) and
 * Monotone PGD (a step is kept only if the objective does not drop, else undone and its step
 * halved; grown by 1.1 on success; momentum on the raw gradient). Both maximise the
 * objective over the eps-ball around z (l-inf or l2) intersected with [0,1]^d, keep each
 * example's best point, and can escape flat regions: an example whose input gradient is
 * exactly zero, or whose objective has not changed for escape_after iterations, is redrawn
 * uniformly in the ball (counted in stats). The model runs in evaluation mode with
 * input-only backward passes; its mode, parameters, gradients and statistics are untouched;
 * a warm iteration allocates nothing. */
#ifndef UM_ATTACK_H
#define UM_ATTACK_H
#include "nn/module.h"
#include "nn/nn_ops.h"
#include "ood/pgd.h"
#include "rng.h"

typedef enum {
    UM_START_CLEAN = 0,      /* z itself */
    UM_START_UNIFORM = 1,    /* uniform in the l-inf box (l2: then shrunk into the ball) */
    UM_START_GAUSSIAN = 2,   /* z + N(0, sigma^2) */
    UM_START_CONTRAST = 3    /* z moved toward its image mean by at most eps per pixel */
} um_start_kind;

typedef struct um_apgd_config {
    um_loss_kind objective;
    double eps;
    int norm;            /* 0 = l-inf, 2 = l2 */
    int steps;           /* iterations per restart (N) */
    int restarts;        /* runs from uniform starts; the per-example best is kept (>= 1) */
    double rho;          /* oscillation threshold (0.75) */
    double momentum;     /* 0.75: weight of the new step after the first iteration */
    int escape_after;    /* 0 = no escape; else redraw after this many unchanged iterations */
    um_objective_fn custom;  /* when set, replaces `objective` (labels are not used), as in PGD */
    void *custom_ctx;
} um_apgd_config;

typedef struct um_mpgd_config {
    um_loss_kind objective;
    double eps;
    int norm;
    int steps;           /* T: T + 1 forward passes */
    double step;         /* initial step size (0.1) */
    double momentum;     /* 0.9 */
    um_start_kind start;
    double sigma;        /* of the Gaussian start (1e-4) */
    int escape_after;
    um_objective_fn custom;  /* when set, replaces `objective` (labels are not used), as in PGD */
    void *custom_ctx;
} um_mpgd_config;

typedef struct um_attack_stats {
    int64_t escapes;     /* examples redrawn by the zero-gradient / stall escape */
    int64_t forwards;    /* forward passes over the batch */
} um_attack_stats;

/* z (n, ...) float32 in [0,1]; labels int64 (n) for the ce objective, else NULL; g draws the
 * starts and escapes. New tensors *x_best (shape of z) and *values (n): each example's best
 * point and its objective. stats may be NULL. */
int um_apgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_apgd_config *cfg, um_generator *g,
            um_tensor **x_best, um_tensor **values, um_attack_stats *stats);
int um_mpgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_mpgd_config *cfg, um_generator *g,
            um_tensor **x_best, um_tensor **values, um_attack_stats *stats);

/* x (shape of z, same backend) = a start of the given kind in the eps-ball, inside [0,1]^d. */
int um_attack_start(um_tensor *x, const um_tensor *z, um_start_kind kind, double eps, double sigma, int norm,
                    um_generator *g);

#endif
