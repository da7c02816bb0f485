/* Training through interval bounds (GOOD, docs/good-and-scores.md): the bounds on logit
 * differences over an l-inf box, differentiable with respect to the parameters. The
 * forward pass records a tape; the backward pass takes the gradient of a loss with
 * respect to the bounds and adds the parameter gradients (it never zeroes them). */
#ifndef UM_IBP_TRAIN_H
#define UM_IBP_TRAIN_H
#include "nn/module.h"

typedef struct um_ibp_tape um_ibp_tape;

/* z: (n, ...) float32. The box is [z - eps, z + eps], clipped to [0,1] when clip is set
 * (evaluation) and not when it is not (GOOD's training). The model is a Linear layer or a
 * Sequential tree ending in one, made of layers with a training rule (Linear, Conv2d and
 * the monotone layers: ReLU, pooling, Flatten, ...); a module without one is named in the
 * error. New *ud (n, K, K): upper bounds on logit k minus logit j (0 on the diagonal), as
 * um_certify_confidence's; new *tape for um_ibp_tape_backward. The model's mode is left
 * as it is; modules' forward buffers are reused, so a forward/backward pass of the model
 * must not run between the two calls. */
int um_ibp_tape_forward(um_module *model, const um_tensor *z, double eps, int clip, um_ibp_tape **tape, um_tensor **ud);
/* gud (n, K, K): the gradient of the loss with respect to ud. Parameter gradients +=. */
int um_ibp_tape_backward(um_ibp_tape *tape, const um_tensor *gud);
void um_ibp_tape_free(um_ibp_tape *tape);   /* NULL is fine */

#endif
