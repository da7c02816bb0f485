/* The kernel table for layers, losses and optimisers: one per backend, which the backend
 * hands out as its "nn" kernels. Front ends (core/nn/) validate shapes,
 * dtypes and devices once; kernels trust them. Every tensor here is float32 and
 * contiguous unless stated; "+=" marks outputs that are accumulated, not overwritten.
 * The CPU table is in core/cpu/nn_kernels.c, the CUDA one in core/cuda/nn_kernels.cu.
 * Every entry is required except the fused ones marked optional. */
#ifndef UM_NN_OPS_H
#define UM_NN_OPS_H
#include <stdint.h>
#include "backend.h"
#include "tensor.h"

/* Geometry of a 2-D convolution or pooling window, padding already resolved.
 * Bottom/right padding is whatever makes oh/ow come out (TF `same` pads asymmetrically). */
typedef struct um_window2d {
    int64_t n, c, h, w;          /* input  (n, c, h, w) */
    int64_t c_out;               /* convolution output channels (pooling: = c) */
    int64_t kh, kw, sh, sw;      /* window and stride */
    int64_t pad_top, pad_left;
    int64_t oh, ow;              /* output spatial size */
} um_window2d;

typedef enum { UM_LOSS_CROSS_ENTROPY = 0, UM_LOSS_MAX_CONF = 1, UM_LOSS_UNIFORM_CONF = 2 } um_loss_kind;

struct um_nn_ops {
    /* Convolution. x (n,c,h,w), weight (c_out,c,kh,kw), bias (c_out) or NULL,
     * y (n,c_out,oh,ow). work: float32 scratch of at least conv2d_workspace(g) elements
     * (depends on the current thread count, so ask before every call). */
    int64_t (*conv2d_workspace)(const um_window2d *g);
    int (*conv2d_forward)(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                          const um_tensor *bias, um_tensor *y, um_tensor *work);
    /* One pass over the batch computing any of: gx (overwritten), gweight +=, gbias +=.
     * x is needed only when gweight is wanted; NULL outputs are skipped. */
    int (*conv2d_backward)(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                           const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                           um_tensor *gbias, um_tensor *work);
    /* Optional (NULL where not offered): which way the forward (input_grad 0) or the
     * input gradient (1) of g is computed, a short static name ("winograd F(4x4,3x3)",
     * "per-tap", "im2col", ...), for profiles. */
    const char *(*conv2d_path)(const um_window2d *g, int input_grad);

    /* Pooling over g; cells outside the input are ignored (TF `same`): max-pool never
     * picks them, avg-pool divides by the number of real cells. gx is overwritten.
     * Max-pool backward finds the arg-max again from x (first maximum wins). */
    int (*maxpool2d_forward)(const um_window2d *g, const um_tensor *x, um_tensor *y);
    int (*maxpool2d_backward)(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx);
    /* Optional (NULL where not offered): max-pool backward with the ReLU before it folded
     * in. x is the ReLU's output; a window's gradient reaches its first maximum only when
     * that maximum is > 0, so gx is the gradient at the ReLU's input. */
    int (*maxpool2d_relu_backward)(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx);
    int (*avgpool2d_forward)(const um_window2d *g, const um_tensor *x, um_tensor *y);
    int (*avgpool2d_backward)(const um_window2d *g, const um_tensor *gy, um_tensor *gx);

    /* Batch norm on x viewed as (n, c, inner). Training: normalise with the batch mean and
     * biased variance, save mean and 1/sqrt(var+eps) per channel (c), and update
     * running = momentum*running + (1-momentum)*batch, using the unbiased variance for
     * running_var (as TF's fused kernel). running_* may be NULL (no update). */
    int (*batchnorm_forward_train)(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                   um_tensor *y, um_tensor *save_mean, um_tensor *save_invstd,
                                   um_tensor *running_mean, um_tensor *running_var,
                                   double momentum, double eps, int64_t n, int64_t c, int64_t inner);
    int (*batchnorm_forward_eval)(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                  const um_tensor *running_mean, const um_tensor *running_var, double eps,
                                  um_tensor *y, int64_t n, int64_t c, int64_t inner);
    /* Backward with the statistics of the forward. Training: stat_a, stat_b = the saved
     * batch mean and invstd (the input gradient also flows through the batch statistics).
     * Evaluation: stat_a, stat_b = running mean and running variance (eps added here).
     * gx overwritten (may be NULL); ggamma +=, gbeta += (may be NULL). */
    int (*batchnorm_backward)(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                              const um_tensor *stat_a, const um_tensor *stat_b, double eps, int training,
                              um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                              int64_t n, int64_t c, int64_t inner);
    /* Optional (NULL where not offered): batchnorm_backward of a batch norm followed by a
     * ReLU, with gy the gradient at the ReLU's output: the batch norm's backward of (y > 0 ?
     * gy : 0), y the batch norm's output recomputed from x, gamma and beta exactly as its
     * forward computed it (from the parameters and statistics as they are now: like
     * gamma in any batch-norm backward, they must not change between the forward and
     * the backward); the numbers of the two backwards in one pass. */
    int (*batchnorm_relu_backward)(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                                   const um_tensor *beta, const um_tensor *stat_a, const um_tensor *stat_b,
                                   double eps, int training, um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                                   int64_t n, int64_t c, int64_t inner);
    /* Optional (NULL where not offered): batchnorm_relu_backward in evaluation mode, input
     * gradient only, plus add (x's shape: a residual's other branch), in one pass:
     * gx = that gradient + add, the same numbers as the two passes (product rounded before
     * the sum). gx must not be add. */
    int (*batchnorm_relu_backward_eval_add)(const um_tensor *x, const um_tensor *gy, const um_tensor *add,
                                            const um_tensor *gamma, const um_tensor *beta,
                                            const um_tensor *running_mean, const um_tensor *running_var,
                                            double eps, um_tensor *gx, int64_t n, int64_t c, int64_t inner);

    /* Elementwise helpers of the layers. y, x, gy, gx have numel elements. */
    int (*relu_forward)(const um_tensor *x, um_tensor *y);
    int (*relu_backward)(const um_tensor *x, const um_tensor *gy, um_tensor *gx);   /* gx = gy * (x > 0) */
    int (*add)(const um_tensor *a, const um_tensor *b, um_tensor *out);             /* out = a + b */
    /* y (outer, c, inner) += bias (c) broadcast; gbias (c) += sum of gy over outer and inner. */
    int (*bias_add)(um_tensor *y, const um_tensor *bias, int64_t outer, int64_t c, int64_t inner);
    int (*bias_grad)(const um_tensor *gy, um_tensor *gbias, int64_t outer, int64_t c, int64_t inner);
    /* Mean over inner: x (outer, inner) -> y (outer); backward spreads gy/inner. */
    int (*mean_inner_forward)(const um_tensor *x, um_tensor *y, int64_t outer, int64_t inner);
    int (*mean_inner_backward)(const um_tensor *gy, um_tensor *gx, int64_t outer, int64_t inner);
    /* Channel zero-padding: x (n, c, inner) -> y (n, before+c+after, inner) and back. */
    int (*channel_pad_forward)(const um_tensor *x, um_tensor *y, int64_t n, int64_t c, int64_t inner,
                               int64_t before, int64_t after);
    int (*channel_pad_backward)(const um_tensor *gy, um_tensor *gx, int64_t n, int64_t c, int64_t inner,
                                int64_t before, int64_t after);

    /* Losses on logits (n, k) with a fused, stable log-softmax. target: int64 class
     * indices (n) for cross-entropy, or float32 probability rows (n, k); NULL for
     * max_conf and uniform_conf. losses (n) per example. Backward overwrites grad (n, k)
     * with scale * w_i * dL_i/dlogits, w (n) per-example weights or NULL (all 1). */
    int (*loss_forward)(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor *losses);
    int (*loss_backward)(um_loss_kind kind, const um_tensor *logits, const um_tensor *target,
                         double scale, const um_tensor *w, um_tensor *grad);

    /* Optimiser steps, in place on one parameter (all tensors the same numel).
     * SGD (TF): v = momentum*v + g; w -= lr*v, or with Nesterov w -= lr*(g + momentum*v).
     * Adam (TF): m = b1*m + (1-b1)g; v = b2*v + (1-b2)g^2; w -= lr_t*m/(sqrt(v)+eps).
     * Weight decay: g += 2*lambda*w; *sumsq = sum of w^2 (accumulated in double). */
    int (*sgd_step)(um_tensor *w, const um_tensor *g, um_tensor *v, double lr, double momentum, int nesterov);
    int (*adam_step)(um_tensor *w, const um_tensor *g, um_tensor *m, um_tensor *v,
                     double lr_t, double beta1, double beta2, double eps);
    int (*weight_decay)(const um_tensor *w, um_tensor *g, double lambda, double *sumsq);
};

/* The nn table of backend be; an empty table when be has none. */
const struct um_nn_ops *um_nn_kernels(const um_backend *be);
/* Calls nn kernel k of backend be, or fails with UM_ENOTIMPL naming the kernel and the
 * backend when be lacks it: no entry is ever called as NULL. */
#define UM_NN_CALL(be, k, ...)                                                          \
    ({                                                                                \
        const struct um_nn_ops *table_ = um_nn_kernels(be); /* asked of the backend once */ \
        table_->k ? table_->k(__VA_ARGS__) : um_kernel_missing((be), #k);              \
    })

#endif
