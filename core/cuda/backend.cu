/* The CUDA backend: its vtable (memory through the caching allocator, host<->device copies,
 * cuBLAS GEMM, own kernels, cuDNN convolution), registration on first use, the error
 * messages, and the library handles. um_cuda_backend() returns NULL when no device is
 * present, so a build with CUDA runs everywhere and simply has no "cuda" device.
 * GEMM: cuBLAS in CUBLAS_DEFAULT_MATH with FP32 data and compute, which never uses TF32
 * tensor cores (those need CUBLAS_TF32_TENSOR_OP_MATH); results match the CPU's to float
 * rounding. cuDNN convolutions are likewise restricted to CUDNN_FMA_MATH (conv.cu). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_backend.h"

/* UMBRA_CUDA_SYNC=1: wait after every kernel launch, so that a fault is reported with the
 * kernel that made it (compute-sanitizer may not be on the machine); read at start-up. */
static int sync_each_launch;

/* Errors that an earlier kernel leaves for whatever call comes next. */
static int is_kernel_fault(cudaError_t e) {
    return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorMisalignedAddress ||
           e == cudaErrorIllegalInstruction || e == cudaErrorInvalidPc || e == cudaErrorHardwareStackError ||
           e == cudaErrorAssert || e == cudaErrorLaunchTimeout;
}

int um_cu_fail_cuda(cudaError_t e, const char *call, const char *file, int line) {
    return um_fail(UM_EDEVICE, "cuda: %s failed: %s (%s) at %s:%d%s", call, cudaGetErrorString(e), cudaGetErrorName(e),
                   file, line,
                   is_kernel_fault(e) && !sync_each_launch
                       ? "; a fault in an earlier kernel shows here: run with UMBRA_CUDA_SYNC=1 to name it"
                       : "");
}

int um_cu_launched(const char *kernel, const char *file, int line) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return um_fail(UM_EDEVICE, "cuda: kernel %s did not launch: %s (%s) at %s:%d", kernel, cudaGetErrorString(e),
                       cudaGetErrorName(e), file, line);
    if (sync_each_launch && (e = cudaDeviceSynchronize()) != cudaSuccess)
        return um_fail(UM_EDEVICE, "cuda: kernel %s failed: %s (%s) at %s:%d (UMBRA_CUDA_SYNC=1)", kernel,
                       cudaGetErrorString(e), cudaGetErrorName(e), file, line);
    return UM_OK;
}

static const char *cublas_status_text(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown status";
    }
}

int um_cu_fail_cublas(cublasStatus_t s, const char *call, const char *file, int line) {
    return um_fail(UM_EDEVICE, "cublas: %s failed: %s (%d) at %s:%d", call, cublas_status_text(s), (int)s, file, line);
}

int um_cu_fail_cudnn(cudnnStatus_t s, const char *call, const char *file, int line) {
    return um_fail(UM_EDEVICE, "cudnn: %s failed: %s at %s:%d", call, cudnnGetErrorString(s), file, line);
}

/* ---- handles ----------------------------------------------------------------------------- */

static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t blas_handle;
static cudnnHandle_t dnn_handle;

static int create_cublas(void) {
    UM_CUBLAS(cublasCreate(&blas_handle));
    UM_CUBLAS(cublasSetMathMode(blas_handle, CUBLAS_DEFAULT_MATH));
    UM_CUBLAS(cublasSetPointerMode(blas_handle, CUBLAS_POINTER_MODE_HOST));
    return UM_OK;
}

int um_cu_cublas(cublasHandle_t *h) {
    int rc = UM_OK;
    pthread_mutex_lock(&handle_lock);
    if (!blas_handle) {
        rc = create_cublas();
        if (rc && blas_handle) {
            cublasDestroy(blas_handle);
            blas_handle = NULL;
        }
    }
    pthread_mutex_unlock(&handle_lock);
    *h = blas_handle;
    return rc;
}

int um_cu_cudnn(cudnnHandle_t *h) {
    int rc = UM_OK;
    pthread_mutex_lock(&handle_lock);
    if (!dnn_handle) {
        cudnnStatus_t s = cudnnCreate(&dnn_handle);
        if (s != CUDNN_STATUS_SUCCESS) {
            dnn_handle = NULL;
            rc = um_cu_fail_cudnn(s, "cudnnCreate(&handle)", __FILE__, __LINE__);
        }
    }
    pthread_mutex_unlock(&handle_lock);
    *h = dnn_handle;
    return rc;
}

/* ---- memory --------------------------------------------------------------------------------- */

static int cuda_alloc(void **p, size_t bytes) { return um_cu_malloc(p, bytes); }
static void cuda_dealloc(void *p) { um_cu_free(p); }

static int cuda_to_host(void *dst, const void *src, size_t bytes) {
    if (bytes) UM_CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    return UM_OK;
}

static int cuda_from_host(void *dst, const void *src, size_t bytes) {
    if (bytes) UM_CU(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    return UM_OK;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

__global__ void scale_matrix(float *c, int64_t m, int64_t n, int64_t ldc, float beta) {
    UM_CU_FOR(i, m * n) {
        float *p = c + (i / n) * ldc + i % n;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

/* Row-major C = alpha op(A) op(B) + beta C through column-major cuBLAS: a row-major matrix
 * is its transpose in column-major order, so compute C^T = op(B)^T op(A)^T, i.e. swap the
 * operands and the sizes m and n; leading dimensions stay as they are. */
static int cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return UM_OK;
    if (k == 0) {
        scale_matrix<<<um_cu_blocks(m * n), UM_CU_THREADS>>>(c, m, n, ldc, beta);
        UM_CU_LAUNCHED("scale_matrix");
        return UM_OK;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
        return um_fail(UM_ENOTIMPL, "cuda gemm: sizes %lld x %lld x %lld exceed cuBLAS's 32-bit sizes", (long long)m,
                       (long long)n, (long long)k);
    cublasHandle_t h;
    UM_TRY(um_cu_cublas(&h));
    UM_CUBLAS(cublasSgemm(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m,
                          (int)k, &alpha, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc));
    return UM_OK;
}

static void cuda_set_num_threads(int n) { (void)n; }

/* ---- the vtable and registration ------------------------------------------------------------- */

static um_backend cuda_backend;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int device_count;
static char device_name[256];

static void release_at_exit(void) {
    um_cu_conv_release();
    if (dnn_handle) cudnnDestroy(dnn_handle);
    if (blas_handle) cublasDestroy(blas_handle);
    dnn_handle = NULL;
    blas_handle = NULL;
}

/* The CUDA kernel tables of the concern folders (nn_kernels.cu, ood_kernels.cu). */
static const void *cuda_kernels(const char *concern) {
    if (!strcmp(concern, "nn")) return um_cu_nn_ops();
    if (!strcmp(concern, "ood")) return um_cu_ood_ops();
    return NULL;
}

static char no_device[512];   /* why there is no "cuda": the failing call and its error */

static void keep_reason(const char *call, cudaError_t e) {
    snprintf(no_device, sizeof no_device, "%s: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
    cudaGetLastError();   /* no driver or no device: not an error, just no "cuda" */
}

static void init_backend(void) {
    int n = 0;
    const char *sync = getenv("UMBRA_CUDA_SYNC");
    sync_each_launch = sync && *sync && strcmp(sync, "0") != 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return keep_reason("cudaGetDeviceCount", e);
    if (n < 1) {
        snprintf(no_device, sizeof no_device, "cudaGetDeviceCount reports 0 devices");
        return;
    }
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) return keep_reason("cudaGetDeviceProperties", e);
    snprintf(device_name, sizeof device_name, "%s", prop.name);
    if ((e = cudaSetDevice(0)) != cudaSuccess) return keep_reason("cudaSetDevice(0)", e);
    um_backend *be = &cuda_backend;
    be->name = "cuda";
    be->is_host = 0;
    be->alloc = cuda_alloc;
    be->dealloc = cuda_dealloc;
    be->to_host = cuda_to_host;
    be->from_host = cuda_from_host;
    be->copy_strided = um_cu_copy_strided;
    be->fill = um_cu_fill;
    be->binary = um_cu_binary;
    be->binary_scalar = um_cu_binary_scalar;
    be->unary = um_cu_unary;
    be->clamp = um_cu_clamp;
    be->axpy = um_cu_axpy;
    be->reduce = um_cu_reduce;
    be->arg_extreme = um_cu_arg_extreme;
    be->softmax = um_cu_softmax;
    be->gemm = cuda_gemm;
    be->set_num_threads = cuda_set_num_threads;
    be->kernels = cuda_kernels;
    device_count = n;
    atexit(release_at_exit);
    um_register_backend(be);
}

extern "C" const um_backend *um_cuda_backend(void) {
    pthread_once(&init_once, init_backend);
    return device_count > 0 ? &cuda_backend : NULL;
}

extern "C" int um_cuda_device_count(void) {
    pthread_once(&init_once, init_backend);
    return device_count;
}

extern "C" const char *um_cuda_device_name(void) {
    pthread_once(&init_once, init_backend);
    return device_count > 0 ? device_name : "";
}

/* Wait for all queued work; also where a fault inside an earlier kernel is reported. */
extern "C" int um_cuda_synchronize(void) {
    if (!um_cuda_backend()) return um_fail(UM_EDEVICE, "cuda: no CUDA device");
    UM_CU(cudaDeviceSynchronize());
    return UM_OK;
}

static const char *why_no_device(void) {
    pthread_once(&init_once, init_backend);
    return device_count > 0 ? "" : no_device;
}

/* The table core/cuda/cuda_load.c asks for after loading this library. */
extern "C" const um_cuda_api *um_cuda_entry(void) {
    static const um_cuda_api table = {UM_CUDA_ABI_VERSION, (int)sizeof(um_cuda_api), um_cuda_backend,
                                      um_cuda_device_count, um_cuda_device_name, um_cuda_synchronize,
                                      um_cuda_memory, um_cuda_empty_cache, why_no_device};
    return &table;
}
