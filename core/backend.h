/* The backend vtable: one per device. Front-end functions in core/ validate shapes,
 * dtypes and devices once, then call these. Kernels receive tensors already checked:
 * same backend, shapes agreeing; "contiguous" is stated where a kernel requires it.
 * The CPU backend lives in core/cpu/, the CUDA one in core/cuda/ (it registers itself). */
#ifndef UM_BACKEND_H
#define UM_BACKEND_H
#include "ops.h"
#include "tensor.h"

struct um_backend {
    const char *name;  /* "cpu", "cuda" */
    int is_host;       /* data pointers can be read by the CPU */

    /* memory */
    int (*alloc)(void **p, size_t bytes);
    void (*dealloc)(void *p);
    int (*to_host)(void *dst, const void *src, size_t bytes);
    int (*from_host)(void *dst, const void *src, size_t bytes);

    /* tensor ops; out is contiguous, inputs may be strided (stride 0 = broadcast) */
    int (*copy_strided)(um_tensor *dst, const um_tensor *src);  /* dst any strides, same shape and dtype */
    int (*fill)(um_tensor *t, double value);                     /* t contiguous */
    int (*binary)(um_tensor *out, um_binop op, const um_tensor *a, const um_tensor *b);
    int (*binary_scalar)(um_tensor *out, um_binop op, const um_tensor *a, double s, int reversed);
    int (*unary)(um_tensor *out, um_unop op, const um_tensor *a);
    int (*clamp)(um_tensor *out, const um_tensor *a, double lo, double hi);
    int (*axpy)(um_tensor *a, double alpha, const um_tensor *b);            /* both contiguous */
    /* a contiguous, viewed as (outer, n, inner); out is (outer, inner) */
    int (*reduce)(um_tensor *out, um_redop op, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
    int (*arg_extreme)(um_tensor *out, int want_max, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
    int (*softmax)(um_tensor *out, const um_tensor *a, int64_t outer, int64_t n, int64_t inner, int log);
    /* row-major C = alpha op(A) op(B) + beta C, pointers into this backend's memory */
    int (*gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
    void (*set_num_threads)(int n);

    /* The kernel table this backend has for a concern folder ("nn": core/nn/nn_ops.h,
     * "ood": core/ood/ood_ops.h), or NULL. The concerns ask through their own accessors,
     * which never hand out a NULL entry to call (um_kernel_missing). */
    const void *(*kernels)(const char *concern);
};

/* Registry, so that a CUDA backend can plug itself in without the CPU code knowing. */
void um_register_backend(const um_backend *be);
/* A backend that is loaded on first use (CUDA: core/cuda/cuda_load.c registers one at start-up):
 * find() gives it or NULL, why() says why there is none. */
typedef struct um_backend_provider {
    const char *name;
    const um_backend *(*find)(void);
    const char *(*why)(void);
} um_backend_provider;
void um_register_backend_provider(const um_backend_provider *p);
/* Why there is no backend called name (NULL when there is one). */
const char *um_backend_why_unavailable(const char *name);
/* The error for a kernel a backend lacks: UM_ENOTIMPL, "cuda: kernel maxpool2d_relu_backward
 * is not implemented". */
int um_kernel_missing(const um_backend *be, const char *kernel);
const um_backend *um_find_backend(const char *name); /* NULL if not compiled in / no device */
/* The backend called name, or UM_EDEVICE saying why there is none (for "cuda": no library,
 * a load error, or no device) and UM_EINVAL for a name that is neither cpu nor cuda. */
int um_backend_named(const char *name, const um_backend **out);

#endif
