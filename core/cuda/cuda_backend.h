/* Private declarations of the CUDA backend (the .cu files of core/cuda/): status checks
 * that turn every CUDA, cuBLAS and cuDNN error into UM_EDEVICE naming the call, the device
 * allocator, the shared scratch buffer, the library handles, launch helpers and the
 * kernels each file contributes to the vtables. All work runs on the legacy default
 * stream, so kernels, cuBLAS, cuDNN and copies are ordered without explicit syncs. */
#ifndef UM_CUDA_BACKEND_H
#define UM_CUDA_BACKEND_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "alloc.h"
#include "ood/ood_ops.h"
#include "backend.h"
#include "cuda_api.h"
#include "error.h"
#include "nn/nn_ops.h"
#include "ops.h"
#include "tensor.h"

/* The entry points, handed to core/cuda/cuda_load.c as a um_cuda_api table by um_cuda_entry. */
const um_backend *um_cuda_backend(void);
int um_cuda_device_count(void);
int um_cuda_synchronize(void);
void um_cuda_memory(int64_t *in_use, int64_t *cached, int64_t *peak);
void um_cuda_empty_cache(void);
const char *um_cuda_device_name(void);
}

/* ---- status checks: each returns from the calling function on failure ---------------- */
int um_cu_fail_cuda(cudaError_t e, const char *call, const char *file, int line);
int um_cu_fail_cublas(cublasStatus_t s, const char *call, const char *file, int line);
int um_cu_fail_cudnn(cudnnStatus_t s, const char *call, const char *file, int line);

#define UM_CU(call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) return um_cu_fail_cuda(e_, #call, __FILE__, __LINE__); } while (0)
#define UM_CUBLAS(call) do { cublasStatus_t s_ = (call); \
    if (s_ != CUBLAS_STATUS_SUCCESS) return um_cu_fail_cublas(s_, #call, __FILE__, __LINE__); } while (0)
#define UM_CUDNN(call) do { cudnnStatus_t s_ = (call); \
    if (s_ != CUDNN_STATUS_SUCCESS) return um_cu_fail_cudnn(s_, #call, __FILE__, __LINE__); } while (0)
/* After a kernel launch: a launch error names the kernel; faults inside it show at a later
 * call, unless UMBRA_CUDA_SYNC=1 makes this wait for the kernel (debug runs). */
int um_cu_launched(const char *kernel, const char *file, int line);
#define UM_CU_LAUNCHED(name) do { int lrc_ = um_cu_launched(name, __FILE__, __LINE__); if (lrc_) return lrc_; } while (0)
/* Propagate an int status. */
#define UM_TRY(expr) do { int rc_ = (expr); if (rc_) return rc_; } while (0)

/* ---- device memory (core/cuda/device_alloc.cu) ---------------------------------------- */
/* cudaMalloc behind a cache of freed blocks (cudaFree synchronises the device; reuse in
 * stream order is safe with one stream). On failure: drop the cache, run the core's OOM
 * hook (a Lua full GC) once, drop the cache again, retry; then UM_ENOMEM. */
int um_cu_malloc(void **p, size_t bytes);
void um_cu_free(void *p);
/* The one scratch buffer shared by every call (cuDNN workspaces, padded images, partial
 * sums): grown on demand, valid until the next um_cu_scratch call. */
int um_cu_scratch(void **p, size_t bytes);

/* ---- library handles (core/cuda/backend.cu), created on first use ---------------------- */
int um_cu_cublas(cublasHandle_t *h);
int um_cu_cudnn(cudnnHandle_t *h);

/* ---- launch helpers ------------------------------------------------------------------- */
#define UM_CU_THREADS 256
/* Blocks for a grid-stride loop over n elements (n > 0). */
static inline unsigned um_cu_blocks(int64_t n) {
    int64_t b = (n + UM_CU_THREADS - 1) / UM_CU_THREADS;
    return (unsigned)(b > 16384 ? 16384 : (b < 1 ? 1 : b));
}
#define UM_CU_FOR(i, n) for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                             i += (int64_t)gridDim.x * blockDim.x)

/* Block-wide sum of a double over blockDim.x threads (a multiple of 32, at most 1024);
 * every thread gets the total. shared: 32 doubles. */
__device__ __forceinline__ double um_cu_block_sum(double v, double *shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    __syncthreads();   /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- kernels of the base table (elementwise.cu, reduce.cu) ------------------------------ */
int um_cu_copy_strided(um_tensor *dst, const um_tensor *src);
int um_cu_fill(um_tensor *t, double value);
int um_cu_binary(um_tensor *out, um_binop op, const um_tensor *a, const um_tensor *b);
int um_cu_binary_scalar(um_tensor *out, um_binop op, const um_tensor *a, double s, int reversed);
int um_cu_unary(um_tensor *out, um_unop op, const um_tensor *a);
int um_cu_clamp(um_tensor *out, const um_tensor *a, double lo, double hi);
int um_cu_axpy(um_tensor *a, double alpha, const um_tensor *b);
int um_cu_reduce(um_tensor *out, um_redop op, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
int um_cu_arg_extreme(um_tensor *out, int want_max, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
int um_cu_softmax(um_tensor *out, const um_tensor *a, int64_t outer, int64_t n, int64_t inner, int log);
/* Fill n floats at p with v (device pointer). */
int um_cu_fill_floats(float *p, int64_t n, float v);

/* ---- layers, losses, optimisers (conv.cu, pool.cu, batchnorm.cu, nn_ops.cu, loss.cu,
 *      optim.cu) and the attack table (attack.cu) ---------------------------------------- */
int64_t um_cu_conv2d_workspace(const um_window2d *g);
int um_cu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight,
                         const um_tensor *bias, um_tensor *y, um_tensor *work);
int um_cu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy,
                          const um_tensor *weight, um_tensor *gx, um_tensor *gweight,
                          um_tensor *gbias, um_tensor *work);
void um_cu_conv_release(void);   /* descriptors and plans, at exit */

int um_cu_maxpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y);
int um_cu_maxpool2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, um_tensor *gx);
int um_cu_avgpool2d_forward(const um_window2d *g, const um_tensor *x, um_tensor *y);
int um_cu_avgpool2d_backward(const um_window2d *g, const um_tensor *gy, um_tensor *gx);

int um_cu_batchnorm_forward_train(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                  um_tensor *y, um_tensor *save_mean, um_tensor *save_invstd,
                                  um_tensor *running_mean, um_tensor *running_var,
                                  double momentum, double eps, int64_t n, int64_t c, int64_t inner);
int um_cu_batchnorm_forward_eval(const um_tensor *x, const um_tensor *gamma, const um_tensor *beta,
                                 const um_tensor *running_mean, const um_tensor *running_var, double eps,
                                 um_tensor *y, int64_t n, int64_t c, int64_t inner);
int um_cu_batchnorm_backward(const um_tensor *x, const um_tensor *gy, const um_tensor *gamma,
                             const um_tensor *stat_a, const um_tensor *stat_b, double eps, int training,
                             um_tensor *gx, um_tensor *ggamma, um_tensor *gbeta,
                             int64_t n, int64_t c, int64_t inner);

/* y (outer, c, inner) += bias; gbias += sums of gy (also used by the convolution). */
int um_cu_bias_add(um_tensor *y, const um_tensor *bias, int64_t outer, int64_t c, int64_t inner);
int um_cu_bias_grad(const um_tensor *gy, um_tensor *gbias, int64_t outer, int64_t c, int64_t inner);

int um_cu_loss_forward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target, um_tensor *losses);
int um_cu_loss_backward(um_loss_kind kind, const um_tensor *logits, const um_tensor *target,
                        double scale, const um_tensor *w, um_tensor *grad);

int um_cu_sgd_step(um_tensor *w, const um_tensor *g, um_tensor *v, double lr, double momentum, int nesterov);
int um_cu_adam_step(um_tensor *w, const um_tensor *g, um_tensor *m, um_tensor *v,
                    double lr_t, double beta1, double beta2, double eps);
int um_cu_weight_decay(const um_tensor *w, um_tensor *g, double lambda, double *sumsq);

extern const struct um_nn_ops *um_cu_nn_ops(void);
extern const struct um_ood_ops *um_cu_ood_ops(void);
/* Fills the interval-bound entries of the ood table (core/cuda/ibp_kernels.cu). */
void um_cu_ibp_kernels(struct um_ood_ops *t);
/* Fills the attack entries of the ood table (core/cuda/attack_kernels.cu). */
void um_cu_attack_kernels(struct um_ood_ops *t);

#endif
