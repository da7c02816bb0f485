/* CPU elementwise kernels: copy, fill, binary and unary maths, clamp, axpy.
 * Inputs may be strided (stride 0 = broadcast); rows with unit strides take a loop the
 * compiler vectorises. */
#include <math.h>
#include <string.h>
#include "cpu/cpu.h"

static void copy_row(void *ctx, char *o, int64_t so, const char *a, int64_t sa, const char *b, int64_t sb, int64_t n) {
    size_t es = *(size_t *)ctx;
    if (so == (int64_t)es && sa == (int64_t)es) { memcpy(o, a, (size_t)n * es); return; }
    if (es == 4) for (int64_t i = 0; i < n; i++) *(uint32_t *)(o + i * so) = *(const uint32_t *)(a + i * sa);
    else for (int64_t i = 0; i < n; i++) *(uint64_t *)(o + i * so) = *(const uint64_t *)(a + i * sa);
}

int um_cpu_copy_strided(um_tensor *dst, const um_tensor *src) {
    size_t es = um_dtype_size(dst->dtype);
    um_cpu_for_rows(dst, src, NULL, copy_row, &es);
    return UM_OK;
}

int um_cpu_fill(um_tensor *t, double value) {
    int64_t n = um_numel(t);
    if (t->dtype == UM_INT64) {
        int64_t *p = um_i64(t), v = (int64_t)value;
        for (int64_t i = 0; i < n; i++) p[i] = v;
    } else {
        float *p = um_f32(t), v = (float)value;
        if (v == 0.0f && !signbit(v)) { memset(p, 0, (size_t)n * 4); return UM_OK; }
        for (int64_t i = 0; i < n; i++) p[i] = v;
    }
    return UM_OK;
}

static inline float apply_bin(um_binop op, float x, float y) {
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
    return 0;
}

/* One loop per operator so the switch is hoisted out of the hot loop. */
#define BIN_CASES(LOOP) \
    switch (op) { \
    case UM_ADD: LOOP(x + y); break; \
    case UM_SUB: LOOP(x - y); break; \
    case UM_MUL: LOOP(x * y); break; \
    case UM_DIV: LOOP(x / y); break; \
    default: LOOP(apply_bin(op, x, y)); break; \
    }

static void bin_row(void *ctx, char *o_, int64_t so, const char *a_, int64_t sa, const char *b_, int64_t sb, int64_t n) {
    um_binop op = *(um_binop *)ctx;
    float *o = (float *)o_;
    const float *a = (const float *)a_, *b = (const float *)b_;
    sa /= 4; sb /= 4;
    if (sa == 1 && sb == 1) {
#define L(E) for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (E); }
        BIN_CASES(L)
#undef L
    } else if (sa == 1 && sb == 0) {
        float y = b[0];
#define L(E) for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (E); }
        BIN_CASES(L)
#undef L
    } else {
#define L(E) for (int64_t i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i] = (E); }
        BIN_CASES(L)
#undef L
    }
}

int um_cpu_binary(um_tensor *out, um_binop op, const um_tensor *a, const um_tensor *b) {
    um_cpu_for_rows(out, a, b, bin_row, &op);
    return UM_OK;
}

typedef struct { um_binop op; float s; int rev; } scalar_ctx;

static void bin_scalar_row(void *ctx_, char *o_, int64_t so, const char *a_, int64_t sa, const char *b_, int64_t sb, int64_t n) {
    scalar_ctx *c = ctx_;
    um_binop op = c->op;
    float *o = (float *)o_;
    const float *a = (const float *)a_;
    sa /= 4;
    if (!c->rev) {
        float y = c->s;
#define L(E) for (int64_t i = 0; i < n; i++) { float x = a[i * sa]; o[i] = (E); }
        BIN_CASES(L)
#undef L
    } else {
        float x = c->s;
#define L(E) for (int64_t i = 0; i < n; i++) { float y = a[i * sa]; o[i] = (E); }
        BIN_CASES(L)
#undef L
    }
}

int um_cpu_binary_scalar(um_tensor *out, um_binop op, const um_tensor *a, double s, int reversed) {
    scalar_ctx c = {op, (float)s, reversed};
    um_cpu_for_rows(out, a, NULL, bin_scalar_row, &c);
    return UM_OK;
}

static void unary_row(void *ctx, char *o_, int64_t so, const char *a_, int64_t sa, const char *b_, int64_t sb, int64_t n) {
    um_unop op = *(um_unop *)ctx;
    float *o = (float *)o_;
    const float *a = (const float *)a_;
    sa /= 4;
#define L(E) for (int64_t i = 0; i < n; i++) { float x = a[i * sa]; o[i] = (E); } break;
    switch (op) {
    case UM_NEG: L(-x)
    case UM_ABS: L(fabsf(x))
    case UM_SIGN: L((float)((x > 0) - (x < 0)))
    case UM_EXP: L(expf(x))
    case UM_LOG: L(logf(x))
    case UM_SQRT: L(sqrtf(x))
    case UM_RELU: L(x <= 0 ? 0.0f : x)   /* NaN stays NaN (PyTorch) */
    case UM_SQUARE: L(x * x)
    }
#undef L
}

int um_cpu_unary(um_tensor *out, um_unop op, const um_tensor *a) {
    um_cpu_for_rows(out, a, NULL, unary_row, &op);
    return UM_OK;
}

typedef struct { float lo, hi; } clamp_ctx;

static void clamp_row(void *ctx, char *o_, int64_t so, const char *a_, int64_t sa, const char *b_, int64_t sb, int64_t n) {
    clamp_ctx *c = ctx;
    float *o = (float *)o_;
    const float *a = (const float *)a_;
    sa /= 4;
    for (int64_t i = 0; i < n; i++) {
        float x = a[i * sa];
        o[i] = x < c->lo ? c->lo : (x > c->hi ? c->hi : x);
    }
}

int um_cpu_clamp(um_tensor *out, const um_tensor *a, double lo, double hi) {
    clamp_ctx c = {(float)lo, (float)hi};
    um_cpu_for_rows(out, a, NULL, clamp_row, &c);
    return UM_OK;
}

int um_cpu_axpy(um_tensor *a, double alpha, const um_tensor *b) {
    float *x = um_f32(a), al = (float)alpha;
    const float *y = um_f32(b);
    int64_t n = um_numel(a);
    #pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] += al * y[i];
    return UM_OK;
}
