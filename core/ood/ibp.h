/* Certified upper bounds on a model's confidence over an l-inf ball (interval bound
 * propagation, docs/worst-case.md): the box [z - eps, z + eps] clipped to [0,1]^d is pushed
 * through every module's bound rule (module ops `bound`) up to the model's last Linear
 * layer, which is folded into bounds on logit differences (elision). The model runs in
 * evaluation mode, its mode restored afterwards. */
#ifndef UM_IBP_H
#define UM_IBP_H
#include "nn/module.h"

/* z: (n, ...) float32 in [0,1], eps >= 0. The model must end in a Linear layer (itself, or
 * the last child of nested Sequentials). New tensors: *conf (n), an upper bound on the max
 * softmax confidence over the ball; *logit_diff (n, K, K) (may be NULL), upper bounds on
 * logit k minus logit j. A module without a bound rule fails with UM_ENOTIMPL naming it. */
int um_certify_confidence(um_module *m, const um_tensor *z, double eps, um_tensor **conf, um_tensor **logit_diff);

/* Test only: nonzero makes the elision use the wrong end of the box for every weight
 * difference (one sign flipped), an unsound bound that the soundness tests must catch. */
extern int um_ibp_unsound_for_tests;

#endif
