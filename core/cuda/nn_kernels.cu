/* The CUDA kernel table for layers, losses and optimisers (um_cu_nn_ops), plus the small
 * layer kernels: ReLU, residual add, bias add and bias gradient (per channel, sums in
 * double, split over blocks), mean over the spatial axis (global average pool) and
 * channel zero-padding. Contracts: core/nn/nn_ops.h; the reference is core/cpu/nn_kernels.c. */
#include "cuda_backend.h"

__global__ void relu_fwd(const float *x, float *y, int64_t n) {
    UM_CU_FOR(i, n) y[i] = x[i] <= 0.0f ? 0.0f : x[i];   /* NaN stays NaN (PyTorch) */
}

__global__ void relu_bwd(const float *x, const float *gy, float *gx, int64_t n) {
    UM_CU_FOR(i, n) gx[i] = x[i] <= 0.0f ? 0.0f : gy[i];
}

__global__ void add_kernel(const float *a, const float *b, float *o, int64_t n) {
    UM_CU_FOR(i, n) o[i] = a[i] + b[i];
}

static int relu_forward(const um_tensor *x, um_tensor *y) {
    int64_t n = um_numel(x);
    if (n == 0) return UM_OK;
    relu_fwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(x), um_f32(y), n);
    UM_CU_LAUNCHED("relu_fwd");
    return UM_OK;
}

static int relu_backward(const um_tensor *x, const um_tensor *gy, um_tensor *gx) {
    int64_t n = um_numel(x);
    if (n == 0) return UM_OK;
    relu_bwd<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(x), um_f32(gy), um_f32(gx), n);
    UM_CU_LAUNCHED("relu_bwd");
    return UM_OK;
}

static int add(const um_tensor *a, const um_tensor *b, um_tensor *out) {
    int64_t n = um_numel(a);
    if (n == 0) return UM_OK;
    add_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(a), um_f32(b), um_f32(out), n);
    UM_CU_LAUNCHED("add_kernel");
    return UM_OK;
}

__global__ void bias_add_kernel(float *y, const float *b, int64_t c, int64_t inner, int64_t n) {
    UM_CU_FOR(i, n) y[i] += b[(i / inner) % c];
}

int um_cu_bias_add(um_tensor *y, const um_tensor *bias, int64_t outer, int64_t c, int64_t inner) {
    int64_t n = outer * c * inner;
    if (n == 0) return UM_OK;
    bias_add_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(y), um_f32(bias), c, inner, n);
    UM_CU_LAUNCHED("bias_add_kernel");
    return UM_OK;
}

/* gbias[j] += sum over outer and inner of gy: each channel's sum split over S blocks
 * (partial sums in the scratch buffer), then added in a fixed order per channel. */
__global__ void bias_partials(const float *gy, int64_t c, int64_t inner, int64_t count, int64_t S, double *partial) {
    __shared__ double sh[32];
    const int64_t j = blockIdx.y, s = blockIdx.x, lo = s * count / S, hi = (s + 1) * count / S;
    double sum = 0.0;
    for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x) sum += gy[((e / inner) * c + j) * inner + e % inner];
    sum = um_cu_block_sum(sum, sh);
    if (threadIdx.x == 0) partial[j * S + s] = sum;
}

__global__ void bias_finish(const double *partial, int64_t S, int64_t c, float *gb) {
    UM_CU_FOR(j, c) {
        double sum = 0.0;
        for (int64_t k = 0; k < S; k++) sum += partial[j * S + k];
        gb[j] += (float)sum;
    }
}

int um_cu_bias_grad(const um_tensor *gy, um_tensor *gbias, int64_t outer, int64_t c, int64_t inner) {
    const int64_t count = outer * inner;
    if (c == 0 || count == 0) return UM_OK;
    if (c > 65535) return um_fail(UM_ENOTIMPL, "cuda bias gradient: at most 65535 channels, got %lld", (long long)c);
    int64_t S = (1024 + c - 1) / c, by_size = (count + 4095) / 4096;
    if (S > by_size) S = by_size;
    if (S < 1) S = 1;
    void *scratch;
    UM_TRY(um_cu_scratch(&scratch, (size_t)(c * S) * sizeof(double)));
    bias_partials<<<dim3((unsigned)S, (unsigned)c), 256>>>(um_f32(gy), c, inner, count, S, (double *)scratch);
    UM_CU_LAUNCHED("bias_partials");
    bias_finish<<<um_cu_blocks(c), UM_CU_THREADS>>>((const double *)scratch, S, c, um_f32(gbias));
    UM_CU_LAUNCHED("bias_finish");
    return UM_OK;
}

/* One warp per row of x (outer, inner). */
__global__ void mean_inner_fwd(const float *x, float *y, int64_t outer, int64_t inner) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < outer; r += warps) {
        double s = 0.0;
        for (int64_t i = lane; i < inner; i += 32) s += x[r * inner + i];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) y[r] = (float)s / (float)inner;
    }
}

__global__ void mean_inner_bwd(const float *gy, float *gx, int64_t outer, int64_t inner) {
    UM_CU_FOR(i, outer * inner) gx[i] = gy[i / inner] / (float)inner;
}

static int mean_inner_forward(const um_tensor *x, um_tensor *y, int64_t outer, int64_t inner) {
    if (outer == 0) return UM_OK;
    int64_t blocks = (outer + 7) / 8;
    mean_inner_fwd<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256>>>(um_f32(x), um_f32(y), outer, inner);
    UM_CU_LAUNCHED("mean_inner_fwd");
    return UM_OK;
}

static int mean_inner_backward(const um_tensor *gy, um_tensor *gx, int64_t outer, int64_t inner) {
    if (outer * inner == 0) return UM_OK;
    mean_inner_bwd<<<um_cu_blocks(outer * inner), UM_CU_THREADS>>>(um_f32(gy), um_f32(gx), outer, inner);
    UM_CU_LAUNCHED("mean_inner_bwd");
    return UM_OK;
}

/* y (n, co, inner) with co = before + c + after; element i of y reads x or is zero. */
__global__ void channel_pad_fwd(const float *x, float *y, int64_t n, int64_t c, int64_t inner, int64_t before,
                                int64_t co) {
    UM_CU_FOR(i, n * co * inner) {
        int64_t k = i % inner, ch = (i / inner) % co - before, img = i / (inner * co);
        y[i] = ch >= 0 && ch < c ? x[(img * c + ch) * inner + k] : 0.0f;
    }
}

__global__ void channel_pad_bwd(const float *gy, float *gx, int64_t n, int64_t c, int64_t inner, int64_t before,
                                int64_t co) {
    UM_CU_FOR(i, n * c * inner) {
        int64_t k = i % inner, ch = (i / inner) % c, img = i / (inner * c);
        gx[i] = gy[(img * co + before + ch) * inner + k];
    }
}

static int channel_pad_forward(const um_tensor *x, um_tensor *y, int64_t n, int64_t c, int64_t inner, int64_t before,
                               int64_t after) {
    int64_t co = before + c + after;
    if (n * co * inner == 0) return UM_OK;
    channel_pad_fwd<<<um_cu_blocks(n * co * inner), UM_CU_THREADS>>>(um_f32(x), um_f32(y), n, c, inner, before, co);
    UM_CU_LAUNCHED("channel_pad_fwd");
    return UM_OK;
}

static int channel_pad_backward(const um_tensor *gy, um_tensor *gx, int64_t n, int64_t c, int64_t inner,
                                int64_t before, int64_t after) {
    int64_t co = before + c + after;
    if (n * c * inner == 0) return UM_OK;
    channel_pad_bwd<<<um_cu_blocks(n * c * inner), UM_CU_THREADS>>>(um_f32(gy), um_f32(gx), n, c, inner, before, co);
    UM_CU_LAUNCHED("channel_pad_bwd");
    return UM_OK;
}

static struct um_nn_ops table;

const struct um_nn_ops *um_cu_nn_ops(void) {
    table.conv2d_workspace = um_cu_conv2d_workspace;
    table.conv2d_forward = um_cu_conv2d_forward;
    table.conv2d_backward = um_cu_conv2d_backward;
    table.maxpool2d_forward = um_cu_maxpool2d_forward;
    table.maxpool2d_backward = um_cu_maxpool2d_backward;
    table.avgpool2d_forward = um_cu_avgpool2d_forward;
    table.avgpool2d_backward = um_cu_avgpool2d_backward;
    table.batchnorm_forward_train = um_cu_batchnorm_forward_train;
    table.batchnorm_forward_eval = um_cu_batchnorm_forward_eval;
    table.batchnorm_backward = um_cu_batchnorm_backward;
    table.relu_forward = relu_forward;
    table.relu_backward = relu_backward;
    table.add = add;
    table.bias_add = um_cu_bias_add;
    table.bias_grad = um_cu_bias_grad;
    table.mean_inner_forward = mean_inner_forward;
    table.mean_inner_backward = mean_inner_backward;
    table.channel_pad_forward = channel_pad_forward;
    table.channel_pad_backward = channel_pad_backward;
    table.loss_forward = um_cu_loss_forward;
    table.loss_backward = um_cu_loss_backward;
    table.sgd_step = um_cu_sgd_step;
    table.adam_step = um_cu_adam_step;
    table.weight_decay = um_cu_weight_decay;
    return &table;
}
