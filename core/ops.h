/* Tensor operations, front end: validate shapes, dtypes and devices, then call the
 * backend of the tensors' storage. Out-of-place ops return a new tensor in *out;
 * ops ending in _ change their first argument. Arithmetic is float32 only. */
#ifndef UM_OPS_H
#define UM_OPS_H
#include "tensor.h"

typedef enum {
    UM_ADD, UM_SUB, UM_MUL, UM_DIV, UM_MAXIMUM, UM_MINIMUM, UM_POW,
    UM_EQ, UM_NE, UM_LT, UM_LE, UM_GT, UM_GE   /* comparisons give 1.0 / 0.0 masks */
} um_binop;

typedef enum { UM_NEG, UM_ABS, UM_SIGN, UM_EXP, UM_LOG, UM_SQRT, UM_RELU, UM_SQUARE } um_unop;
typedef enum { UM_SUM, UM_MEAN, UM_MAX, UM_MIN } um_redop;

const char *um_binop_name(um_binop op);
const char *um_unop_name(um_unop op);

/* Broadcasting as NumPy: sizes align from the right; size 1 (or missing) stretches. */
int um_broadcast_shape(const um_tensor *a, const um_tensor *b, int *ndim, int64_t *size);
int um_binary(um_tensor **out, um_binop op, const um_tensor *a, const um_tensor *b);
int um_binary_(um_binop op, um_tensor *a, const um_tensor *b);   /* b broadcast to a */
/* scalar: a op s, or s op a when reversed is nonzero. */
int um_binary_scalar(um_tensor **out, um_binop op, const um_tensor *a, double s, int reversed);
int um_binary_scalar_(um_binop op, um_tensor *a, double s);
int um_unary(um_tensor **out, um_unop op, const um_tensor *a);
int um_unary_(um_unop op, um_tensor *a);
int um_clamp(um_tensor **out, const um_tensor *a, double lo, double hi);
int um_clamp_(um_tensor *a, double lo, double hi);
/* a += alpha * b (same shape): the workhorse of gradient accumulation. */
int um_axpy_(um_tensor *a, double alpha, const um_tensor *b);

/* Reductions: dim < 0 reduces everything to a 0-dim tensor. */
int um_reduce(um_tensor **out, um_redop op, const um_tensor *a, int dim, int keepdim);
int um_argmax(um_tensor **out, const um_tensor *a, int dim, int keepdim); /* int64; dim < 0: flat index */
int um_argmin(um_tensor **out, const um_tensor *a, int dim, int keepdim);
/* The sum of every element (float32), read back to the host; errors of the device pass up. */
int um_sum_all(const um_tensor *a, double *sum);
/* How many elements of a (float32, any device) are NaN or infinite. Host tensors: one
 * pass, no allocation. Devices: one reduction (the sum); the count is made on the host
 * only when the sum is not finite (finite values whose sum overflows count 0). */
int um_count_nonfinite(const um_tensor *a, int64_t *count);

/* Linear algebra (2-D float32). out = beta*c + alpha*op(a) op(b) */
int um_matmul(um_tensor **out, const um_tensor *a, const um_tensor *b);
int um_addmm(um_tensor **out, const um_tensor *c, const um_tensor *a, const um_tensor *b,
             double beta, double alpha);

int um_softmax(um_tensor **out, const um_tensor *a, int dim);
int um_log_softmax(um_tensor **out, const um_tensor *a, int dim);

/* Threads for OpenMP and OpenBLAS together. */
void um_set_num_threads(int n);
int um_get_num_threads(void);

#endif
