/* Front end of the tensor operations: checks dtypes, shapes and devices, works out
 * broadcasting, allocates results, then hands contiguous outputs to the backend. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "backend.h"
#include "error.h"
#include "ops.h"
#include "ops_int.h"

static const char *binop_names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow",
                                    "eq", "ne", "lt", "le", "gt", "ge"};
static const char *unop_names[] = {"neg", "abs", "sign", "exp", "log", "sqrt", "relu", "square"};
const char *um_binop_name(um_binop op) { return binop_names[op]; }
const char *um_unop_name(um_unop op) { return unop_names[op]; }

static int need_float(const char *what, const um_tensor *t) {
    if (t->dtype != UM_FLOAT32)
        return um_fail(UM_EINVAL, "%s: expected a float32 tensor, got %s", what, um_dtype_name(t->dtype));
    return UM_OK;
}

static int same_device(const char *what, const um_tensor *a, const um_tensor *b) {
    if (um_backend_of(a) != um_backend_of(b))
        return um_fail(UM_EDEVICE, "%s: tensors are on different devices (%s and %s); move one with :to()",
                       what, um_backend_of(a)->name, um_backend_of(b)->name);
    return UM_OK;
}

int um_broadcast_shape(const um_tensor *a, const um_tensor *b, int *ndim, int64_t *size) {
    char b1[128], b2[128];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t sa = ia >= 0 ? a->size[ia] : 1, sb = ib >= 0 ? b->size[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return um_fail(UM_EINVAL, "sizes %s and %s cannot be broadcast together (dimension %d: %lld vs %lld)",
                           um_shape_str(a, b1, sizeof b1), um_shape_str(b, b2, sizeof b2), i + 1, (long long)sa, (long long)sb);
        size[i] = sa == 1 ? sb : sa;
    }
    *ndim = nd;
    return UM_OK;
}

/* A header-only view of t stretched to (nd, size): stride 0 on broadcast dimensions. */
static void expand_view(um_tensor *v, const um_tensor *t, int nd, const int64_t *size) {
    *v = *t;
    v->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int it = t->ndim - nd + i;
        v->size[i] = size[i];
        v->stride[i] = (it >= 0 && t->size[it] == size[i]) ? t->stride[it] : 0;
    }
}

int um_binary(um_tensor **out, um_binop op, const um_tensor *a, const um_tensor *b) {
    int rc, nd;
    int64_t size[UM_MAXDIM];
    const char *what = um_binop_name(op);
    if ((a->dtype == UM_INT64 || b->dtype == UM_INT64) && um_is_comparison(op)) return um_compare_int(out, op, a, b);
    if ((rc = need_float(what, a)) || (rc = need_float(what, b)) || (rc = same_device(what, a, b))) return rc;
    if ((rc = um_broadcast_shape(a, b, &nd, size))) { um_error_prefix(what); return rc; }
    um_tensor *r, va, vb;
    if ((rc = um_tensor_new(&r, UM_FLOAT32, nd, size, um_backend_of(a)))) return rc;
    expand_view(&va, a, nd, size);
    expand_view(&vb, b, nd, size);
    if ((rc = um_backend_of(a)->binary(r, op, &va, &vb))) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

/* In-place ops on a non-contiguous receiver compute into a temporary, then copy back. */
static int write_back(um_tensor *a, um_tensor *tmp) {
    int rc = um_backend_of(a)->copy_strided(a, tmp);
    um_tensor_release(tmp);
    return rc;
}

int um_binary_(um_binop op, um_tensor *a, const um_tensor *b) {
    char b1[128], b2[128];
    int rc, nd;
    int64_t size[UM_MAXDIM];
    const char *what = um_binop_name(op);
    if ((rc = need_float(what, a)) || (rc = need_float(what, b)) || (rc = same_device(what, a, b))) return rc;
    if ((rc = um_broadcast_shape(a, b, &nd, size))) { um_error_prefix(what); return rc; }
    if (nd != a->ndim || memcmp(size, a->size, sizeof(int64_t) * (size_t)nd))
        return um_fail(UM_EINVAL, "%s_: the result would have size %s, but the receiver has size %s", what,
                       um_sizes_str(nd, size, b1, sizeof b1), um_shape_str(a, b2, sizeof b2));
    um_tensor vb;
    expand_view(&vb, b, nd, size);
    if (um_is_contiguous(a)) return um_backend_of(a)->binary(a, op, a, &vb);
    um_tensor *tmp;
    if ((rc = um_tensor_new(&tmp, UM_FLOAT32, nd, size, um_backend_of(a)))) return rc;
    if ((rc = um_backend_of(a)->binary(tmp, op, a, &vb))) { um_tensor_release(tmp); return rc; }
    return write_back(a, tmp);
}

int um_binary_scalar(um_tensor **out, um_binop op, const um_tensor *a, double s, int reversed) {
    int rc;
    if (a->dtype == UM_INT64 && um_is_comparison(op)) return um_compare_int_scalar(out, op, a, s, reversed);
    if ((rc = need_float(um_binop_name(op), a))) return rc;
    um_tensor *r;
    if ((rc = um_tensor_new(&r, UM_FLOAT32, a->ndim, a->size, um_backend_of(a)))) return rc;
    if ((rc = um_backend_of(a)->binary_scalar(r, op, a, s, reversed))) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

int um_binary_scalar_(um_binop op, um_tensor *a, double s) {
    int rc;
    if ((rc = need_float(um_binop_name(op), a))) return rc;
    if (um_is_contiguous(a)) return um_backend_of(a)->binary_scalar(a, op, a, s, 0);
    um_tensor *tmp;
    if ((rc = um_binary_scalar(&tmp, op, a, s, 0))) return rc;
    return write_back(a, tmp);
}

int um_unary(um_tensor **out, um_unop op, const um_tensor *a) {
    int rc;
    if ((rc = need_float(um_unop_name(op), a))) return rc;
    um_tensor *r;
    if ((rc = um_tensor_new(&r, UM_FLOAT32, a->ndim, a->size, um_backend_of(a)))) return rc;
    if ((rc = um_backend_of(a)->unary(r, op, a))) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

int um_unary_(um_unop op, um_tensor *a) {
    int rc;
    if ((rc = need_float(um_unop_name(op), a))) return rc;
    if (um_is_contiguous(a)) return um_backend_of(a)->unary(a, op, a);
    um_tensor *tmp;
    if ((rc = um_unary(&tmp, op, a))) return rc;
    return write_back(a, tmp);
}

static int check_clamp(const um_tensor *a, double lo, double hi) {
    int rc = need_float("clamp", a);
    if (rc) return rc;
    if (lo > hi) return um_fail(UM_EINVAL, "clamp: lower bound %g is above upper bound %g", lo, hi);
    return UM_OK;
}

int um_clamp(um_tensor **out, const um_tensor *a, double lo, double hi) {
    int rc;
    if ((rc = check_clamp(a, lo, hi))) return rc;
    um_tensor *r;
    if ((rc = um_tensor_new(&r, UM_FLOAT32, a->ndim, a->size, um_backend_of(a)))) return rc;
    if ((rc = um_backend_of(a)->clamp(r, a, lo, hi))) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

int um_clamp_(um_tensor *a, double lo, double hi) {
    int rc;
    if ((rc = check_clamp(a, lo, hi))) return rc;
    if (um_is_contiguous(a)) return um_backend_of(a)->clamp(a, a, lo, hi);
    um_tensor *tmp;
    if ((rc = um_clamp(&tmp, a, lo, hi))) return rc;
    return write_back(a, tmp);
}

int um_axpy_(um_tensor *a, double alpha, const um_tensor *b) {
    char b1[128], b2[128];
    int rc;
    if ((rc = need_float("axpy", a)) || (rc = need_float("axpy", b)) || (rc = same_device("axpy", a, b))) return rc;
    if (!um_same_shape(a, b))
        return um_fail(UM_EINVAL, "axpy: sizes %s and %s differ", um_shape_str(a, b1, sizeof b1), um_shape_str(b, b2, sizeof b2));
    if (um_is_contiguous(a) && um_is_contiguous(b)) return um_backend_of(a)->axpy(a, alpha, b);
    um_tensor *scaled;
    if ((rc = um_binary_scalar(&scaled, UM_MUL, b, alpha, 0))) return rc;
    rc = um_binary_(UM_ADD, a, scaled);
    um_tensor_release(scaled);
    return rc;
}

/* Shape of a reduction over dim of a (outer, n, inner); ops_int.c shares it. */
int um_reduce_plan(const char *what, const um_tensor *a, int dim, int keepdim, int *nd, int64_t *size,
                   int64_t *outer, int64_t *n, int64_t *inner) {
    if (dim >= a->ndim)
        return um_fail(UM_EINVAL, "%s: dimension %d out of range for a %d-dimensional tensor", what, dim + 1, a->ndim);
    if (dim < 0) {
        *outer = 1; *n = um_numel(a); *inner = 1; *nd = 0;
        return UM_OK;
    }
    *outer = 1; *inner = 1; *n = a->size[dim];
    for (int i = 0; i < dim; i++) *outer *= a->size[i];
    for (int i = dim + 1; i < a->ndim; i++) *inner *= a->size[i];
    int k = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i == dim) { if (keepdim) size[k++] = 1; }
        else size[k++] = a->size[i];
    }
    *nd = k;
    return UM_OK;
}

static const char *redop_names[] = {"sum", "mean", "max", "min"};

int um_reduce(um_tensor **out, um_redop op, const um_tensor *a, int dim, int keepdim) {
    int rc, nd;
    int64_t size[UM_MAXDIM], outer, n, inner;
    const char *what = redop_names[op];
    if (a->dtype == UM_INT64) return um_reduce_int(out, op, a, dim, keepdim);
    if ((rc = need_float(what, a)) || (rc = um_reduce_plan(what, a, dim, keepdim, &nd, size, &outer, &n, &inner))) return rc;
    if (n == 0 && (op == UM_MAX || op == UM_MIN)) return um_fail(UM_EINVAL, "%s: the reduced dimension is empty", what);
    um_tensor *c, *r;
    if ((rc = um_contiguous(&c, (um_tensor *)a))) return rc;
    if (!(rc = um_tensor_new(&r, UM_FLOAT32, nd, size, um_backend_of(a)))) {
        if ((rc = um_backend_of(a)->reduce(r, op, c, outer, n, inner))) um_tensor_release(r);
        else *out = r;
    }
    um_tensor_release(c);
    return rc;
}

static int arg_extreme(um_tensor **out, int want_max, const um_tensor *a, int dim, int keepdim) {
    int rc, nd;
    int64_t size[UM_MAXDIM], outer, n, inner;
    const char *what = want_max ? "argmax" : "argmin";
    if ((rc = need_float(what, a)) || (rc = um_reduce_plan(what, a, dim, keepdim, &nd, size, &outer, &n, &inner))) return rc;
    if (n == 0) return um_fail(UM_EINVAL, "%s: the reduced dimension is empty", what);
    um_tensor *c, *r;
    if ((rc = um_contiguous(&c, (um_tensor *)a))) return rc;
    if (!(rc = um_tensor_new(&r, UM_INT64, nd, size, um_backend_of(a)))) {
        if ((rc = um_backend_of(a)->arg_extreme(r, want_max, c, outer, n, inner))) um_tensor_release(r);
        else *out = r;
    }
    um_tensor_release(c);
    return rc;
}

int um_argmax(um_tensor **out, const um_tensor *a, int dim, int keepdim) { return arg_extreme(out, 1, a, dim, keepdim); }
int um_argmin(um_tensor **out, const um_tensor *a, int dim, int keepdim) { return arg_extreme(out, 0, a, dim, keepdim); }

int um_sum_all(const um_tensor *a, double *sum) {
    um_tensor *r;
    int rc = um_reduce(&r, UM_SUM, a, -1, 0);
    if (rc) return rc;
    float v = 0.0f;
    rc = um_backend_of(r)->to_host(&v, um_f32(r), sizeof v);   /* a device fault shows here */
    um_tensor_release(r);
    if (!rc) *sum = v;
    return rc;
}

/* Host tensors: one pass, no allocation (x - x is 0 for finite x, NaN otherwise). */
static int64_t count_host_nonfinite(const float *p, int64_t n) {
    int64_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (int64_t i = 0; i < n; i++) bad += !(p[i] - p[i] == 0.0f);
    return bad;
}

int um_count_nonfinite(const um_tensor *t, int64_t *count) {
    *count = 0;
    if (um_backend_of(t)->is_host && um_is_contiguous(t)) {
        *count = count_host_nonfinite(um_f32(t), um_numel(t));
        return UM_OK;
    }
    double sum = 0.0;
    int rc = um_sum_all(t, &sum);
    if (rc || isfinite(sum)) return rc;   /* devices: one reduction */
    um_tensor *h, *c;
    if ((rc = um_to_backend(&h, t, um_cpu_backend()))) return rc;
    if ((rc = um_contiguous(&c, h))) { um_tensor_release(h); return rc; }
    *count = count_host_nonfinite(um_f32(c), um_numel(c));
    um_tensor_release(c);
    um_tensor_release(h);
    return UM_OK;
}

int um_addmm(um_tensor **out, const um_tensor *c, const um_tensor *a, const um_tensor *b, double beta, double alpha) {
    char b1[128], b2[128], b3[128];
    int rc;
    if ((rc = need_float("matmul", a)) || (rc = need_float("matmul", b)) || (rc = same_device("matmul", a, b))) return rc;
    if (a->ndim != 2 || b->ndim != 2 || a->size[1] != b->size[0])
        return um_fail(UM_EINVAL, "matmul: sizes (%s) and (%s) do not match", um_shape_str(a, b1, sizeof b1), um_shape_str(b, b2, sizeof b2));
    int64_t m = a->size[0], k = a->size[1], n = b->size[1], size[2] = {m, n};
    if (c && ((rc = need_float("addmm", c)) || (rc = same_device("addmm", a, c)))) return rc;
    if (c && (c->ndim != 2 || c->size[0] != m || c->size[1] != n))
        return um_fail(UM_EINVAL, "addmm: the added matrix has size (%s), expected (%s)", um_shape_str(c, b3, sizeof b3), um_sizes_str(2, size, b1, sizeof b1));
    um_tensor *ca = NULL, *cb = NULL, *r = NULL;
    if ((rc = um_contiguous(&ca, (um_tensor *)a)) || (rc = um_contiguous(&cb, (um_tensor *)b))) goto done;
    if (c) rc = um_clone(&r, c);
    else rc = um_tensor_zeros(&r, UM_FLOAT32, 2, size, um_backend_of(a));
    if (rc) goto done;
    if (m && n) rc = um_backend_of(a)->gemm(0, 0, m, n, k, (float)alpha, um_f32(ca), k, um_f32(cb), n,
                                            c ? (float)beta : 0.0f, um_f32(r), n);
    if (!rc) { *out = r; r = NULL; }
done:
    um_tensor_release(ca);
    um_tensor_release(cb);
    um_tensor_release(r);
    return rc;
}

int um_matmul(um_tensor **out, const um_tensor *a, const um_tensor *b) { return um_addmm(out, NULL, a, b, 0.0, 1.0); }

static int softmax_common(um_tensor **out, const um_tensor *a, int dim, int log_) {
    int rc, nd;
    int64_t size[UM_MAXDIM], outer, n, inner;
    const char *what = log_ ? "log_softmax" : "softmax";
    if ((rc = need_float(what, a))) return rc;
    if (dim < 0 || dim >= a->ndim)
        return um_fail(UM_EINVAL, "%s: dimension %d out of range for a %d-dimensional tensor", what, dim + 1, a->ndim);
    if ((rc = um_reduce_plan(what, a, dim, 1, &nd, size, &outer, &n, &inner))) return rc;
    um_tensor *c, *r;
    if ((rc = um_contiguous(&c, (um_tensor *)a))) return rc;
    if (!(rc = um_tensor_new(&r, UM_FLOAT32, a->ndim, a->size, um_backend_of(a)))) {
        if ((rc = um_backend_of(a)->softmax(r, c, outer, n, inner, log_))) um_tensor_release(r);
        else *out = r;
    }
    um_tensor_release(c);
    return rc;
}

int um_softmax(um_tensor **out, const um_tensor *a, int dim) { return softmax_common(out, a, dim, 0); }
int um_log_softmax(um_tensor **out, const um_tensor *a, int dim) { return softmax_common(out, a, dim, 1); }
