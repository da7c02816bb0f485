/* CUDA elementwise kernels: strided copy, fill, binary and unary maths, clamp, axpy.
 * Operands may be strided (stride 0 = broadcast): dimensions contiguous in every operand
 * are merged on the host, a single remaining dimension takes a plain strided loop, more
 * take an index decomposition. The maths follows core/cpu/elementwise.c operation for
 * operation (maximum/minimum keep a NaN of the first operand, sign(0) = 0). */
#include <math.h>
#include "cuda_backend.h"

/* Up to three operands over one shape; strides in elements. */
typedef struct {
    int nd;
    int64_t size[UM_MAXDIM];
    int64_t st[3][UM_MAXDIM];
    int64_t numel;
} walk;

static void make_walk(walk *w, const um_tensor *o, const um_tensor *a, const um_tensor *b) {
    const um_tensor *ts[3] = {o, a, b};
    int k = 0;
    w->numel = um_numel(o);
    for (int i = 0; i < o->ndim; i++) {
        if (o->size[i] == 1) continue;
        if (k > 0) {
            int merge = 1;
            for (int t = 0; t < 3; t++)
                if (ts[t]) merge &= w->st[t][k - 1] == ts[t]->stride[i] * o->size[i];
            if (merge) {
                w->size[k - 1] *= o->size[i];
                for (int t = 0; t < 3; t++) w->st[t][k - 1] = ts[t] ? ts[t]->stride[i] : 0;
                continue;
            }
        }
        w->size[k] = o->size[i];
        for (int t = 0; t < 3; t++) w->st[t][k] = ts[t] ? ts[t]->stride[i] : 0;
        k++;
    }
    if (k == 0) {
        w->size[0] = 1;
        for (int t = 0; t < 3; t++) w->st[t][0] = 0;
        k = 1;
    }
    w->nd = k;
}

__device__ __forceinline__ void walk_offsets(const walk &w, int64_t i, int64_t &o0, int64_t &o1, int64_t &o2) {
    o0 = o1 = o2 = 0;
#pragma unroll
    for (int d = UM_MAXDIM - 1; d >= 0; d--) {
        if (d >= w.nd) continue;
        int64_t idx = i % w.size[d];
        i /= w.size[d];
        o0 += idx * w.st[0][d];
        o1 += idx * w.st[1][d];
        o2 += idx * w.st[2][d];
    }
}

/* ---- copy and fill -------------------------------------------------------------------------- */

template <typename T>
__global__ void copy_kernel(T *dst, const T *src, walk w) {
    UM_CU_FOR(i, w.numel) {
        int64_t od, os, unused;
        if (w.nd == 1) {
            od = i * w.st[0][0];
            os = i * w.st[1][0];
        } else {
            walk_offsets(w, i, od, os, unused);
        }
        dst[od] = src[os];
    }
}

int um_cu_copy_strided(um_tensor *dst, const um_tensor *src) {
    walk w;
    make_walk(&w, dst, src, NULL);
    if (w.numel == 0) return UM_OK;
    size_t es = um_dtype_size(dst->dtype);
    char *d = (char *)dst->storage->data + dst->offset * (int64_t)es;
    const char *s = (const char *)src->storage->data + src->offset * (int64_t)es;
    if (w.nd == 1 && w.st[0][0] == 1 && w.st[1][0] == 1) {
        UM_CU(cudaMemcpyAsync(d, s, (size_t)w.numel * es, cudaMemcpyDeviceToDevice, 0));
        return UM_OK;
    }
    if (es == 8) copy_kernel<uint64_t><<<um_cu_blocks(w.numel), UM_CU_THREADS>>>((uint64_t *)d, (const uint64_t *)s, w);
    else copy_kernel<uint32_t><<<um_cu_blocks(w.numel), UM_CU_THREADS>>>((uint32_t *)d, (const uint32_t *)s, w);
    UM_CU_LAUNCHED("copy_kernel");
    return UM_OK;
}

template <typename T>
__global__ void fill_kernel(T *p, int64_t n, T v) {
    UM_CU_FOR(i, n) p[i] = v;
}

int um_cu_fill_floats(float *p, int64_t n, float v) {
    if (n <= 0) return UM_OK;
    if (v == 0.0f && !signbit(v)) {
        UM_CU(cudaMemsetAsync(p, 0, (size_t)n * sizeof(float), 0));
        return UM_OK;
    }
    fill_kernel<float><<<um_cu_blocks(n), UM_CU_THREADS>>>(p, n, v);
    UM_CU_LAUNCHED("fill_kernel");
    return UM_OK;
}

int um_cu_fill(um_tensor *t, double value) {
    int64_t n = um_numel(t);
    if (n == 0) return UM_OK;
    if (t->dtype == UM_FLOAT32) return um_cu_fill_floats(um_f32(t), n, (float)value);
    int64_t v = (int64_t)value;
    if (v == 0) {
        UM_CU(cudaMemsetAsync(um_i64(t), 0, (size_t)n * sizeof(int64_t), 0));
        return UM_OK;
    }
    fill_kernel<int64_t><<<um_cu_blocks(n), UM_CU_THREADS>>>(um_i64(t), n, v);
    UM_CU_LAUNCHED("fill_kernel");
    return UM_OK;
}

/* ---- maths ---------------------------------------------------------------------------------- */

__device__ __forceinline__ float apply_bin(int op, float x, float y) {
    switch (op) {
    case UM_ADD: return x + y;
    case UM_SUB: return x - y;
    case UM_MUL: return x * y;
    case UM_DIV: return x / y;
    case UM_MAXIMUM: return x > y || isnan(x) ? x : y;
    case UM_MINIMUM: return x < y || isnan(x) ? x : y;
    case UM_POW: return powf(x, y);
    case UM_EQ: return x == y;
    case UM_NE: return x != y;
    case UM_LT: return x < y;
    case UM_LE: return x <= y;
    case UM_GT: return x > y;
    case UM_GE: return x >= y;
    }
    return 0.0f;
}

__device__ __forceinline__ float apply_un(int op, float x) {
    switch (op) {
    case UM_NEG: return -x;
    case UM_ABS: return fabsf(x);
    case UM_SIGN: return (float)((x > 0) - (x < 0));
    case UM_EXP: return expf(x);
    case UM_LOG: return logf(x);
    case UM_SQRT: return sqrtf(x);
    case UM_RELU: return x <= 0 ? 0.0f : x;   /* NaN stays NaN (PyTorch) */
    case UM_SQUARE: return x * x;
    }
    return 0.0f;
}

/* What one kernel computes: kind 0 binary, 1 scalar (s op a when rev), 2 unary, 3 clamp. */
typedef struct {
    int kind, op, rev;
    float s, lo, hi;
} math_op;

__device__ __forceinline__ float apply(const math_op &m, float a, float b) {
    switch (m.kind) {
    case 0: return apply_bin(m.op, a, b);
    case 1: return m.rev ? apply_bin(m.op, m.s, a) : apply_bin(m.op, a, m.s);
    case 2: return apply_un(m.op, a);
    default: return a < m.lo ? m.lo : (a > m.hi ? m.hi : a);
    }
}

__global__ void math_kernel(float *o, const float *a, const float *b, walk w, math_op m) {
    UM_CU_FOR(i, w.numel) {
        int64_t oo, oa, ob;
        if (w.nd == 1) {
            oo = i * w.st[0][0];
            oa = i * w.st[1][0];
            ob = i * w.st[2][0];
        } else {
            walk_offsets(w, i, oo, oa, ob);
        }
        o[oo] = apply(m, a[oa], b ? b[ob] : 0.0f);
    }
}

static int run_math(um_tensor *out, const um_tensor *a, const um_tensor *b, math_op m) {
    walk w;
    make_walk(&w, out, a, b);
    if (w.numel == 0) return UM_OK;
    math_kernel<<<um_cu_blocks(w.numel), UM_CU_THREADS>>>(um_f32(out), um_f32(a), b ? um_f32(b) : NULL, w, m);
    UM_CU_LAUNCHED("math_kernel");
    return UM_OK;
}

int um_cu_binary(um_tensor *out, um_binop op, const um_tensor *a, const um_tensor *b) {
    math_op m = {0, (int)op, 0, 0.0f, 0.0f, 0.0f};
    return run_math(out, a, b, m);
}

int um_cu_binary_scalar(um_tensor *out, um_binop op, const um_tensor *a, double s, int reversed) {
    math_op m = {1, (int)op, reversed, (float)s, 0.0f, 0.0f};
    return run_math(out, a, NULL, m);
}

int um_cu_unary(um_tensor *out, um_unop op, const um_tensor *a) {
    math_op m = {2, (int)op, 0, 0.0f, 0.0f, 0.0f};
    return run_math(out, a, NULL, m);
}

int um_cu_clamp(um_tensor *out, const um_tensor *a, double lo, double hi) {
    math_op m = {3, 0, 0, 0.0f, (float)lo, (float)hi};
    return run_math(out, a, NULL, m);
}

__global__ void axpy_kernel(float *x, float alpha, const float *y, int64_t n) {
    UM_CU_FOR(i, n) x[i] += alpha * y[i];
}

int um_cu_axpy(um_tensor *a, double alpha, const um_tensor *b) {
    int64_t n = um_numel(a);
    if (n == 0) return UM_OK;
    axpy_kernel<<<um_cu_blocks(n), UM_CU_THREADS>>>(um_f32(a), (float)alpha, um_f32(b), n);
    UM_CU_LAUNCHED("axpy_kernel");
    return UM_OK;
}
