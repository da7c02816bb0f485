/* Private to core/nn/: the synchronised batch norm (batchnorm_sync.c) called by
 * layer_batchnorm.c when a reducer is set. */
#ifndef UM_NN_BATCHNORM_SYNC_H
#define UM_NN_BATCHNORM_SYNC_H
#include "nn/module.h"

int um_batchnorm_sync_on(void);
/* y = gamma (x - mean) / sqrt(var + eps) + beta with the global batch mean and biased
 * variance (saved in *mean, *var), running statistics updated from them (TF convention,
 * unbiased variance of the global count). */
int um_batchnorm_sync_forward(um_module *m, um_tensor *x, um_tensor **mean, um_tensor **var, double momentum,
                              double eps);
/* The training-mode backward with global sums of gy and gy*xhat; ggamma and gbeta get
 * this process's share (+=), as the data-parallel gradient sum expects. */
int um_batchnorm_sync_backward(um_module *m, um_tensor *x, um_tensor *gy, const um_tensor *mean, const um_tensor *var,
                               double eps, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta);

#endif
