/* Constructors of the layer modules (see module.h for how modules are used). Weights are
 * initialised as the paper's authors did, from the generator passed in: conv kernels
 * truncated normal (2 sigma) with sigma = sqrt(2/(k*k*c_in)), dense weights normal with
 * sigma = sqrt(2/n_in), biases 0; batch norm gamma 1, beta 0, running mean 0, var 1. */
#ifndef UM_LAYERS_H
#define UM_LAYERS_H
#include "nn/module.h"
#include "rng.h"

/* y = x W^T + b; x (n, in), W (out, in), b (out). */
int um_linear_new(um_module **out, int64_t in_features, int64_t out_features, int bias, um_generator *g);
/* Its ops table: certificates fold the last Linear layer into logit differences. */
extern const um_module_ops um_linear_module_ops;

typedef enum { UM_PAD_EXPLICIT = 0, UM_PAD_SAME = 1, UM_PAD_VALID = 2 } um_padding;

typedef struct um_conv2d_config {
    int64_t c_in, c_out, kh, kw;
    int64_t sh, sw;              /* stride (0 means 1) */
    um_padding padding;          /* SAME: TensorFlow's rule; VALID: none; EXPLICIT: pad[] */
    int64_t pad[4];              /* top, bottom, left, right for UM_PAD_EXPLICIT */
    int bias;
} um_conv2d_config;

/* x (n, c_in, h, w) -> y (n, c_out, oh, ow); weight (c_out, c_in, kh, kw), bias (c_out). */
int um_conv2d_new(um_module **out, const um_conv2d_config *cfg, um_generator *g);
/* Which way Conv2d m's backend computes its forward (input_grad 0) or input gradient
 * (1) for an input of sizes in (ndim of them): a short name, "unknown" where the
 * backend does not say; UM_EINVAL when m is not a Conv2d or the shape does not fit. */
int um_conv2d_path(const um_module *m, int ndim, const int64_t *in, int input_grad, const char **name);

/* TF `same`: pad_total = max((ceil(in/s) - 1)*s + k - in, 0), before = total/2, after = rest.
 * Fills *before, *after and returns the output size. */
int64_t um_same_padding(int64_t in, int64_t k, int64_t s, int64_t *before, int64_t *after);

/* Resolve the padding of one spatial axis (conv and pooling): the leading padding and
 * the output size, or UM_EINVAL naming `type` and `axis` when the window does not fit. */
int um_window_axis(const char *type, const char *axis, int64_t in, int64_t k, int64_t s, um_padding mode,
                   int64_t pad_before, int64_t pad_after, int64_t *before, int64_t *out);

/* Pooling windows with `same` (TF: padding cells ignored) or `valid` padding. */
int um_maxpool2d_new(um_module **out, int64_t kh, int64_t kw, int64_t sh, int64_t sw, um_padding padding);
int um_avgpool2d_new(um_module **out, int64_t kh, int64_t kw, int64_t sh, int64_t sw, um_padding padding);
/* (n, c, h, w) -> (n, c): mean over h and w. */
int um_global_avgpool_new(um_module **out);

/* Batch norm over the channels of (n, c, ...) inputs; TF's momentum convention:
 * running = momentum * running + (1 - momentum) * batch (momentum 0.99, eps 1e-5 in TF). */
int um_batchnorm2d_new(um_module **out, int64_t channels, double momentum, double eps);
/* Synchronised batch statistics (data parallel, core/dist/): with a reducer set, every
 * BatchNorm2d in training mode normalises with the mean and variance of the batch of all
 * processes, summing its per-channel partial sums through reduce (in place, n floats, the
 * same on every process), and its backward reduces the statistics' gradients likewise.
 * NULL (the default) keeps per-process statistics. CPU tensors only. */
typedef int (*um_batchnorm_reducer)(float *buf, int64_t n, void *ctx);
void um_batchnorm_set_reducer(um_batchnorm_reducer reduce, void *ctx);

int um_relu_new(um_module **out);
/* The ops tables of the layers that fused backward passes recognise as their partner
 * (ReLU before a MaxPool2d, BatchNorm2d before a ReLU). */
extern const um_module_ops um_relu_module_ops;
extern const um_module_ops um_batchnorm2d_module_ops;
/* ReLU's ops->fold_backward (core/nn/layer_batchnorm.c): after a BatchNorm2d, its backward (in
 * the mode of its last forward, with the flags asked) of the ReLU's gradient, the ReLU's
 * mask recomputed from the batch norm's input in the same pass; UM_NOT_FOLDED where the
 * backend has no such kernel. */
int um_batchnorm_relu_fold_backward(um_module *relu, um_module *bn, um_tensor *x, um_tensor *gy, int flags);
int um_flatten_new(um_module **out);                 /* (n, ...) -> (n, rest) view */
int um_identity_new(um_module **out);
/* (n, c, ...) -> (n, before + c + after, ...), the new channels zero. */
int um_channel_pad_new(um_module **out, int64_t before, int64_t after);

#endif
