/* Internal declarations shared by the CPU backend's files. */
#ifndef UM_CPU_H
#define UM_CPU_H
#include "backend.h"
#include "error.h"

/* Walk up to three same-shaped strided tensors row by row (dimensions merged where the
 * strides allow), calling fn on each innermost row; rows are spread over OpenMP threads. */
typedef void (*um_row_fn)(void *ctx, char *o, int64_t so, const char *a, int64_t sa,
                          const char *b, int64_t sb, int64_t n);
void um_cpu_for_rows(const um_tensor *o, const um_tensor *a, const um_tensor *b, um_row_fn fn, void *ctx);

int um_cpu_copy_strided(um_tensor *dst, const um_tensor *src);
/* Interval-bound kernels of the ood table (core/cpu/ibp_kernels.c). */
int um_cpu_ibp_input_box(um_tensor *lo, um_tensor *hi, const um_tensor *z, float eps);
int um_cpu_ibp_elision(um_tensor *ud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w, const um_tensor *b);
int um_cpu_ibp_confidence(um_tensor *conf, const um_tensor *ud);
int um_cpu_ibp_elision_backward(const um_tensor *gud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w,
                                um_tensor *g_lo, um_tensor *g_hi, um_tensor *gw, um_tensor *gb);
/* Attack kernels of the ood table (core/cpu/attack_kernels.c). */
int um_cpu_apgd_step(um_tensor *x, um_tensor *x_prev, const um_tensor *grad, const um_tensor *z, const um_tensor *eta,
                     float eps, float alpha, int norm);
int um_cpu_mpgd_step(um_tensor *x, um_tensor *v, const um_tensor *grad, const um_tensor *z, const um_tensor *lr,
                     float eps, float momentum, int norm);
int um_cpu_copy_rows(um_tensor *dst, const um_tensor *src, const um_tensor *mask);
int um_cpu_zero_rows(um_tensor *flags, const um_tensor *grad);
int um_cpu_fill(um_tensor *t, double value);
int um_cpu_binary(um_tensor *out, um_binop op, const um_tensor *a, const um_tensor *b);
int um_cpu_binary_scalar(um_tensor *out, um_binop op, const um_tensor *a, double s, int reversed);
int um_cpu_unary(um_tensor *out, um_unop op, const um_tensor *a);
int um_cpu_clamp(um_tensor *out, const um_tensor *a, double lo, double hi);
int um_cpu_axpy(um_tensor *a, double alpha, const um_tensor *b);
int um_cpu_reduce(um_tensor *out, um_redop op, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
int um_cpu_arg_extreme(um_tensor *out, int want_max, const um_tensor *a, int64_t outer, int64_t n, int64_t inner);
int um_cpu_softmax(um_tensor *out, const um_tensor *a, int64_t outer, int64_t n, int64_t inner, int log);
int um_cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void um_cpu_set_num_threads(int n);

/* The CPU's kernel tables for the concern folders (nn_kernels.c, ood_kernels.c). */
extern const struct um_nn_ops um_cpu_nn_ops;
extern const struct um_ood_ops um_cpu_ood_ops;

#endif
