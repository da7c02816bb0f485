/* int64 tensors (class labels, argmax results) in comparisons and reductions, so that
 * accuracy is one line: pred:eq(labels):sum(). Comparisons with an int64 operand give the
 * same float32 1/0 masks as float comparisons; sum/max/min of an int64 tensor stay int64
 * (exact), mean gives float32. These run on the host: labels are small, and a device
 * tensor is copied there and the result copied back. */
#include <math.h>
#include "backend.h"
#include "error.h"
#include "ops.h"
#include "ops_int.h"

/* t itself (a new reference) when the CPU can read it, else a copy on the CPU. */
static int host_copy(um_tensor **out, const um_tensor *t) {
    if (um_backend_of(t)->is_host) {
        um_tensor_retain((um_tensor *)t);
        *out = (um_tensor *)t;
        return UM_OK;
    }
    return um_to_backend(out, t, um_cpu_backend());
}

static int64_t elem_offset(const um_tensor *t, int nd, const int64_t *idx) {
    int64_t off = 0;
    for (int i = 0; i < nd; i++) {
        int it = t->ndim - nd + i;
        if (it >= 0 && t->size[it] != 1) off += idx[i] * t->stride[it];
    }
    return off;
}

static int compare(um_binop op, const um_tensor *a, int64_t ia, const um_tensor *b, int64_t ib) {
    /* int64 against int64 compares exactly; against float32 in double precision */
    if (a->dtype == UM_INT64 && b->dtype == UM_INT64) {
        int64_t x = um_i64(a)[ia], y = um_i64(b)[ib];
        switch (op) {
        case UM_EQ: return x == y;
        case UM_NE: return x != y;
        case UM_LT: return x < y;
        case UM_LE: return x <= y;
        case UM_GT: return x > y;
        default: return x >= y;
        }
    }
    double x = a->dtype == UM_INT64 ? (double)um_i64(a)[ia] : um_f32(a)[ia];
    double y = b->dtype == UM_INT64 ? (double)um_i64(b)[ib] : um_f32(b)[ib];
    switch (op) {
    case UM_EQ: return x == y;
    case UM_NE: return x != y;
    case UM_LT: return x < y;
    case UM_LE: return x <= y;
    case UM_GT: return x > y;
    default: return x >= y;
    }
}

int um_is_comparison(um_binop op) { return op >= UM_EQ && op <= UM_GE; }

/* The comparison of host tensors ha and hb (broadcast), its mask moved to backend be. */
static int compare_host(um_tensor **out, um_binop op, const um_tensor *ha, const um_tensor *hb,
                        const um_backend *be) {
    const char *what = um_binop_name(op);
    int rc, nd;
    int64_t size[UM_MAXDIM], idx[UM_MAXDIM] = {0};
    if ((rc = um_broadcast_shape(ha, hb, &nd, size))) { um_error_prefix(what); return rc; }
    um_tensor *r;
    if ((rc = um_tensor_new(&r, UM_FLOAT32, nd, size, NULL))) return rc;
    int64_t n = um_numel(r);
    float *y = um_f32(r);
    for (int64_t k = 0; k < n; k++) {
        y[k] = (float)compare(op, ha, elem_offset(ha, nd, idx), hb, elem_offset(hb, nd, idx));
        for (int d = nd - 1; d >= 0 && ++idx[d] == size[d]; d--) idx[d] = 0;
    }
    if (be->is_host) {
        *out = r;
        return UM_OK;
    }
    rc = um_to_backend(out, r, be);
    um_tensor_release(r);
    return rc;
}

int um_compare_int(um_tensor **out, um_binop op, const um_tensor *a, const um_tensor *b) {
    if (um_backend_of(a) != um_backend_of(b))
        return um_fail(UM_EDEVICE, "%s: tensors are on different devices (%s and %s); move one with :to()",
                       um_binop_name(op), um_backend_of(a)->name, um_backend_of(b)->name);
    um_tensor *ha, *hb;
    int rc = host_copy(&ha, a);
    if (rc) return rc;
    if (!(rc = host_copy(&hb, b))) {
        rc = compare_host(out, op, ha, hb, um_backend_of(a));
        um_tensor_release(hb);
    }
    um_tensor_release(ha);
    return rc;
}

int um_compare_int_scalar(um_tensor **out, um_binop op, const um_tensor *a, double s, int reversed) {
    /* the number as an int64 when it is a whole one (exact), else as a float32 */
    um_tensor *st, *ha;
    const int whole = fabs(s) < 9.0e18 && s == floor(s);
    int rc = um_tensor_new(&st, whole ? UM_INT64 : UM_FLOAT32, 0, NULL, NULL);
    if (rc) return rc;
    if (whole) um_i64(st)[0] = (int64_t)s;
    else um_f32(st)[0] = (float)s;
    if (!(rc = host_copy(&ha, a))) {
        rc = reversed ? compare_host(out, op, st, ha, um_backend_of(a)) : compare_host(out, op, ha, st, um_backend_of(a));
        um_tensor_release(ha);
    }
    um_tensor_release(st);
    return rc;
}

int um_reduce_int(um_tensor **out, um_redop op, const um_tensor *a, int dim, int keepdim) {
    static const char *names[] = {"sum", "mean", "max", "min"};
    const char *what = names[op];
    int64_t outer, n, inner, size[UM_MAXDIM];
    int nd, rc = um_reduce_plan(what, a, dim, keepdim, &nd, size, &outer, &n, &inner);
    if (rc) return rc;
    if (n == 0 && (op == UM_MAX || op == UM_MIN)) return um_fail(UM_EINVAL, "%s: the reduced dimension is empty", what);
    um_tensor *h, *c, *r;
    rc = host_copy(&h, a);
    if (rc) return rc;
    rc = um_contiguous(&c, h);
    um_tensor_release(h);
    if (rc) return rc;
    if ((rc = um_tensor_new(&r, op == UM_MEAN ? UM_FLOAT32 : UM_INT64, nd, size, NULL))) {
        um_tensor_release(c);
        return rc;
    }
    const int64_t *x = um_i64(c);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t *p = x + o * n * inner + i;
            int64_t acc = op == UM_SUM || op == UM_MEAN ? 0 : p[0];
            for (int64_t k = 0; k < n; k++) {
                int64_t v = p[k * inner];
                if (op == UM_MAX) acc = v > acc ? v : acc;
                else if (op == UM_MIN) acc = v < acc ? v : acc;
                else acc += v;
            }
            if (op == UM_MEAN) um_f32(r)[o * inner + i] = n ? (float)((double)acc / (double)n) : 0.0f / 0.0f;
            else um_i64(r)[o * inner + i] = acc;
        }
    um_tensor_release(c);
    if (um_backend_of(a)->is_host) {
        *out = r;
        return UM_OK;
    }
    rc = um_to_backend(out, r, um_backend_of(a));
    um_tensor_release(r);
    return rc;
}
