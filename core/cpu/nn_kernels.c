/* The CPU kernel table for layers, losses and optimisers (um_cpu_nn_ops), plus the
 * small elementwise kernels of the layers: ReLU, residual add, bias, mean over the
 * spatial axis (global average pool) and channel zero-padding. */
#include <string.h>
#include "error.h"
#include "cpu/nn_cpu.h"

#define PAR_MIN 32768   /* below this many elements threads cost more than they save */

static int relu_forward(const um_tensor *x, um_tensor *y) {
    const int64_t n = um_numel(x);
    const float *xp = um_f32(x);
    float *yp = um_f32(y);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) yp[i] = xp[i] <= 0.0f ? 0.0f : xp[i];   /* NaN stays NaN (PyTorch) */
    return UM_OK;
}

static int relu_backward(const um_tensor *x, const um_tensor *gy, um_tensor *gx) {
    const int64_t n = um_numel(x);
    const float *xp = um_f32(x), *gyp = um_f32(gy);
    float *gxp = um_f32(gx);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gxp[i] = xp[i] <= 0.0f ? 0.0f : gyp[i];
    return UM_OK;
}

static int add(const um_tensor *a, const um_tensor *b, um_tensor *out) {
    const int64_t n = um_numel(a);
    const float *ap = um_f32(a), *bp = um_f32(b);
    float *op = um_f32(out);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) op[i] = ap[i] + bp[i];
    return UM_OK;
}

static int bias_add(um_tensor *y, const um_tensor *bias, int64_t outer, int64_t c, int64_t inner) {
    float *yp = um_f32(y);
    const float *bp = um_f32(bias);
#pragma omp parallel for collapse(2) if (outer * c * inner >= PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < c; j++) {
            float *row = yp + (o * c + j) * inner, b = bp[j];
            for (int64_t i = 0; i < inner; i++) row[i] += b;
        }
    return UM_OK;
}

static int bias_grad(const um_tensor *gy, um_tensor *gbias, int64_t outer, int64_t c, int64_t inner) {
    const float *gp = um_f32(gy);
    float *bp = um_f32(gbias);
#pragma omp parallel for if (outer * c * inner >= PAR_MIN) schedule(static)
    for (int64_t j = 0; j < c; j++) {
        double s = 0.0;
        for (int64_t o = 0; o < outer; o++) {
            const float *row = gp + (o * c + j) * inner;
            float fs = 0.0f;
#pragma omp simd reduction(+ : fs)
            for (int64_t i = 0; i < inner; i++) fs += row[i];
            s += fs;
        }
        bp[j] += (float)s;
    }
    return UM_OK;
}

static int mean_inner_forward(const um_tensor *x, um_tensor *y, int64_t outer, int64_t inner) {
    const float *xp = um_f32(x);
    float *yp = um_f32(y);
#pragma omp parallel for if (outer * inner >= PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const float *row = xp + o * inner;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < inner; i++) s += row[i];
        yp[o] = s / (float)inner;
    }
    return UM_OK;
}

static int mean_inner_backward(const um_tensor *gy, um_tensor *gx, int64_t outer, int64_t inner) {
    const float *gyp = um_f32(gy);
    float *gxp = um_f32(gx);
#pragma omp parallel for if (outer * inner >= PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        float v = gyp[o] / (float)inner, *row = gxp + o * inner;
        for (int64_t i = 0; i < inner; i++) row[i] = v;
    }
    return UM_OK;
}

static int channel_pad_forward(const um_tensor *x, um_tensor *y, int64_t n, int64_t c, int64_t inner,
                               int64_t before, int64_t after) {
    const float *xp = um_f32(x);
    float *yp = um_f32(y);
    const int64_t co = before + c + after;
    for (int64_t i = 0; i < n; i++) {
        float *yi = yp + i * co * inner;
        memset(yi, 0, (size_t)(before * inner) * sizeof(float));
        memcpy(yi + before * inner, xp + i * c * inner, (size_t)(c * inner) * sizeof(float));
        memset(yi + (before + c) * inner, 0, (size_t)(after * inner) * sizeof(float));
    }
    return UM_OK;
}

static int channel_pad_backward(const um_tensor *gy, um_tensor *gx, int64_t n, int64_t c, int64_t inner,
                                int64_t before, int64_t after) {
    const float *gyp = um_f32(gy);
    float *gxp = um_f32(gx);
    const int64_t co = before + c + after;
    for (int64_t i = 0; i < n; i++)
        memcpy(gxp + i * c * inner, gyp + (i * co + before) * inner, (size_t)(c * inner) * sizeof(float));
    return UM_OK;
}

const struct um_nn_ops um_cpu_nn_ops = {
    .conv2d_workspace = um_cpu_conv2d_workspace,
    .conv2d_forward = um_cpu_conv2d_forward,
    .conv2d_backward = um_cpu_conv2d_backward,
    .conv2d_path = um_cpu_conv2d_path,
    .maxpool2d_forward = um_cpu_maxpool2d_forward,
    .maxpool2d_backward = um_cpu_maxpool2d_backward,
    .maxpool2d_relu_backward = um_cpu_maxpool2d_relu_backward,
    .avgpool2d_forward = um_cpu_avgpool2d_forward,
    .avgpool2d_backward = um_cpu_avgpool2d_backward,
    .batchnorm_forward_train = um_cpu_batchnorm_forward_train,
    .batchnorm_forward_eval = um_cpu_batchnorm_forward_eval,
    .batchnorm_backward = um_cpu_batchnorm_backward,
    .batchnorm_relu_backward = um_cpu_batchnorm_relu_backward,
    .batchnorm_relu_backward_eval_add = um_cpu_batchnorm_relu_backward_eval_add,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .add = add,
    .bias_add = bias_add,
    .bias_grad = bias_grad,
    .mean_inner_forward = mean_inner_forward,
    .mean_inner_backward = mean_inner_backward,
    .channel_pad_forward = channel_pad_forward,
    .channel_pad_backward = channel_pad_backward,
    .loss_forward = um_cpu_loss_forward,
    .loss_backward = um_cpu_loss_backward,
    .sgd_step = um_cpu_sgd_step,
    .adam_step = um_cpu_adam_step,
    .weight_decay = um_cpu_weight_decay,
};
