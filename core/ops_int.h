/* int64 tensors in comparisons (float32 1/0 masks) and reductions (sum/max/min exact in
 * int64, mean in float32); ops.c hands them here. */
#ifndef UM_OPS_INT_H
#define UM_OPS_INT_H
#include "ops.h"

int um_is_comparison(um_binop op);
int um_compare_int(um_tensor **out, um_binop op, const um_tensor *a, const um_tensor *b);
int um_compare_int_scalar(um_tensor **out, um_binop op, const um_tensor *a, double s, int reversed);
/* Shape of a reduction of a over dim (< 0: everything): result (nd, size) and the loop
 * extents outer x n x inner of a contiguous a. */
int um_reduce_plan(const char *what, const um_tensor *a, int dim, int keepdim, int *nd, int64_t *size,
                   int64_t *outer, int64_t *n, int64_t *inner);
int um_reduce_int(um_tensor **out, um_redop op, const um_tensor *a, int dim, int keepdim);
#endif
