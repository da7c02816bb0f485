/* Internal declarations of the CPU layer/loss/optimiser kernels, gathered into
 * um_cpu_nn_ops by core/cpu/nn_kernels.c. Shapes and contracts: see core/nn/nn_ops.h. */
#ifndef UM_NN_CPU_H
#define UM_NN_CPU_H
#include "nn/nn_ops.h"

/* Run a BLAS call single-threaded inside our own OpenMP loops: the pthread OpenBLAS
 * would otherwise start its own threads from each of ours. */
int um_cpu_blas_serial_begin(void);      /* returns the previous thread count */
void um_cpu_blas_serial_end(int saved);

int64_t um_cpu_conv2d_workspace(const um_window2d *g);
int um_cpu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                          const um_tensor *bias, um_tensor *y, um_tensor *work);
/* Tests: split every im2col product over groups of this many input channels (0: the
 * automatic choice), so that the grouped paths run whatever OpenBLAS's kernels. */
void um_cpu_conv2d_force_channel_group(int64_t group);
const char *um_cpu_conv2d_path(const um_window2d *g, int input_grad);
int um_cpu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                           const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                           um_tensor *gbias, um_tensor *work);

int um_cpu_maxpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y);
int um_cpu_maxpool2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx);
int um_cpu_maxpool2d_relu_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx);
/* The 2x2, stride 2, exactly tiling max-pool in AVX2 (pool_avx2.c; only when the build
 * targets AVX2): mode FORWARD writes y from x, BACKWARD and RELU_BACKWARD write gx from x and
 * gy, as the scalar loops of pool.c. */
enum { UM_POOL2X2_FORWARD, UM_POOL2X2_BACKWARD, UM_POOL2X2_RELU_BACKWARD };
#ifdef __AVX2__
int um_cpu_maxpool2d_2x2_avx2(const um_window2d *g, const float *xp, const float *gyp, float *out, int mode);
#endif
int um_cpu_avgpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y);
int um_cpu_avgpool2d_backward(const um_window2d *g, const um_tensor *gy, um_tensor *gx);

int um_cpu_batchnorm_forward_train(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                   um_tensor *y, um_tensor *save_mean, um_tensor *save_invstd,
                                   um_tensor *running_mean, um_tensor *running_var,
                                   double momentum, double eps, int64_t n, int64_t c, int64_t inner);
int um_cpu_batchnorm_forward_eval(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                  const um_tensor *running_mean, const um_tensor *running_var, double eps,
                                  um_tensor *y, int64_t n, int64_t c, int64_t inner);
int um_cpu_batchnorm_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                              const um_tensor *stat_a, const um_tensor *stat_b, double eps, int training,
                              um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                              int64_t n, int64_t c, int64_t inner);

int um_cpu_batchnorm_relu_backward_eval_add(const um_tensor *x, const um_tensor *gy, const um_tensor *add,
                                            const um_tensor *gamma, const um_tensor *beta,
                                            const um_tensor *running_mean, const um_tensor *running_var,
                                            double eps, um_tensor *gx, int64_t n, int64_t c, int64_t inner);
int um_cpu_batchnorm_relu_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                                   const um_tensor *beta, const um_tensor *stat_a, const um_tensor *stat_b,
                                   double eps, int training, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                                   int64_t n, int64_t c, int64_t inner);

int um_cpu_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor *losses);
int um_cpu_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target,
                         double scale, const um_tensor *w, um_tensor *grad);

int um_cpu_sgd_step(um_tensor *w, const um_tensor *g, um_tensor *v, double lr, double momentum, int nesterov);
int um_cpu_adam_step(um_tensor *w, const um_tensor *g, um_tensor *m, um_tensor *v,
                     double lr_t, double beta1, double beta2, double eps);
int um_cpu_weight_decay(const um_tensor *w, um_tensor *g, double lambda, double *sumsq);

#endif
