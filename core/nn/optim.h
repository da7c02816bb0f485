/* Optimisers with fused in-place steps in TensorFlow's forms: SGD with momentum
 * (v = m v + g; w -= lr v; Nesterov: w -= lr (g + m v)) and Adam (lr_t = lr sqrt(1-b2^t) /
 * (1-b1^t); w -= lr_t m / (sqrt(v) + eps)); plus the paper's weight decay lambda * sum w^2.
 * State (slot tensors and the step count) is readable and settable for checkpoints. */
#ifndef UM_OPTIM_H
#define UM_OPTIM_H
#include <stdint.h>
#include "tensor.h"

typedef enum { UM_OPTIM_SGD = 0, UM_OPTIM_ADAM = 1 } um_optim_kind;

typedef struct um_optimizer {
    um_optim_kind kind;
    int n;                        /* parameters */
    um_tensor **params, **grads;  /* held references */
    um_tensor **slots[2];         /* SGD: [0] momentum accumulator; Adam: [0] m, [1] v */
    double lr, momentum;          /* lr may be changed between steps (schedules) */
    int nesterov;
    double beta1, beta2, eps;
    int64_t step;                 /* steps taken so far */
    int bad_param;                /* after a UM_ENUMERIC step: the index of the gradient at fault */
} um_optimizer;

/* params[i] and grads[i]: float32, contiguous, same shape and device. Slots start at 0. */
int um_sgd_new(um_optimizer **out, int n, um_tensor *const *params, um_tensor *const *grads, double lr,
               double momentum, int nesterov);
int um_adam_new(um_optimizer **out, int n, um_tensor *const *params, um_tensor *const *grads, double lr,
                double beta1, double beta2, double eps);
void um_optim_free(um_optimizer *o);   /* NULL is fine */

/* One step over every parameter, with the gradients as they are now. A gradient holding
 * NaN or infinity is UM_ENUMERIC (naming it and the count, bad_param set) before any
 * parameter or slot is written. */
int um_optim_step(um_optimizer *o);

int um_optim_num_slots(const um_optimizer *o);                 /* 1 (SGD) or 2 (Adam) */
const char *um_optim_slot_name(const um_optimizer *o, int s);  /* "momentum"; "m", "v" */

/* Weight decay over a chosen set: grads[i] += 2 lambda params[i]; *penalty = lambda * sum w^2. */
int um_weight_decay(um_tensor *const *params, um_tensor *const *grads, int n, double lambda, double *penalty);

#endif
