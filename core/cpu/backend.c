/* The CPU backend: host memory through the counting allocator, OpenBLAS GEMM, the tensor
 * kernels, and the kernel tables of the concern folders (nn_kernels.c, ood_kernels.c). */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include "alloc.h"
#include "ood/ood_ops.h"
#include "nn/nn_ops.h"
#include "cpu/cpu.h"

static int cpu_alloc(void **p, size_t bytes) {
    *p = um_alloc(bytes);
    return *p ? UM_OK : UM_ENOMEM;
}
static void cpu_dealloc(void *p) { um_dealloc(p); }
static int cpu_memcpy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); return UM_OK; }

int um_cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return UM_OK;
}

static int num_threads = 0;

void um_cpu_set_num_threads(int n) {
    num_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

void um_set_num_threads(int n) {
    if (n < 1) n = 1;
    um_cpu_set_num_threads(n);
}

int um_get_num_threads(void) { return num_threads > 0 ? num_threads : omp_get_max_threads(); }


static const void *cpu_kernels(const char *concern) {
    if (!strcmp(concern, "nn")) return &um_cpu_nn_ops;
    if (!strcmp(concern, "ood")) return &um_cpu_ood_ops;
    return NULL;
}

static um_backend cpu_backend = {
    .name = "cpu",
    .is_host = 1,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .to_host = cpu_memcpy,
    .from_host = cpu_memcpy,
    .copy_strided = um_cpu_copy_strided,
    .fill = um_cpu_fill,
    .binary = um_cpu_binary,
    .binary_scalar = um_cpu_binary_scalar,
    .unary = um_cpu_unary,
    .clamp = um_cpu_clamp,
    .axpy = um_cpu_axpy,
    .reduce = um_cpu_reduce,
    .arg_extreme = um_cpu_arg_extreme,
    .softmax = um_cpu_softmax,
    .gemm = um_cpu_gemm,
    .set_num_threads = um_cpu_set_num_threads,
    .kernels = cpu_kernels,
};

const um_backend *um_cpu_backend(void) { return &cpu_backend; }
