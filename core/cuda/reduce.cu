/* CUDA reductions, arg-max/min and softmax over the middle axis of a contiguous
 * (outer, n, inner) view, with the CPU's semantics (core/cpu/reduce.c): sums in double,
 * max/min propagate NaN, arg-max/min take the first extreme and skip NaN (unless the first
 * element is NaN, which then wins), softmax subtracts the max and sums exp in double.
 * Many outputs with inner > 1: one thread per output walks n in order (coalesced across
 * inner). A few outputs over long rows (a whole tensor's sum, max or arg-max): each row
 * split over a grid of blocks whose partial results one thread per output then combines
 * in a fixed order (deterministic). Otherwise one block (reductions) or one warp (softmax)
 * per row. */
#include <math.h>
#include "cuda_backend.h"

#define BLOCK 256
#define MANY_OUTPUTS 1024

/* ---- sum, mean, max, min -------------------------------------------------------------------- */

__device__ __forceinline__ float pick(int op, float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) ? a : b;
    return op == UM_MAX ? fmaxf(a, b) : fminf(a, b);
}

__global__ void reduce_per_thread(float *y, const float *x, int op, int64_t outer, int64_t n, int64_t inner) {
    UM_CU_FOR(oi, outer * inner) {
        const float *p = x + (oi / inner) * n * inner + oi % inner;
        if (op == UM_SUM || op == UM_MEAN) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += p[k * inner];
            y[oi] = (float)(op == UM_MEAN ? s / (double)n : s);
        } else {
            float m = p[0];
            for (int64_t k = 1; k < n; k++) {
                float v = p[k * inner];
                if (isnan(v)) { m = v; break; }
                if (op == UM_MAX ? v > m : v < m) m = v;
            }
            y[oi] = m;
        }
    }
}

__global__ void reduce_per_block(float *y, const float *x, int op, int64_t outer, int64_t n, int64_t inner) {
    __shared__ double sums[32];
    __shared__ float ext[32];
    for (int64_t oi = blockIdx.x; oi < outer * inner; oi += gridDim.x) {
        const float *p = x + (oi / inner) * n * inner + oi % inner;
        if (op == UM_SUM || op == UM_MEAN) {
            double s = 0;
            for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += p[k * inner];
            s = um_cu_block_sum(s, sums);
            if (threadIdx.x == 0) y[oi] = (float)(op == UM_MEAN ? s / (double)n : s);
        } else {
            float m = p[0];
            for (int64_t k = threadIdx.x; k < n; k += blockDim.x) m = pick(op, m, p[k * inner]);
            for (int o = 16; o > 0; o >>= 1) m = pick(op, m, __shfl_xor_sync(0xffffffffu, m, o));
            __syncthreads();
            if ((threadIdx.x & 31) == 0) ext[threadIdx.x >> 5] = m;
            __syncthreads();
            if (threadIdx.x == 0) {
                for (int w = 1; w < (int)(blockDim.x >> 5); w++) m = pick(op, m, ext[w]);
                y[oi] = m;
            }
        }
    }
}

/* partial[oi * S + s] = the result over slice s of row oi (a float extreme kept in a double). */
__global__ void reduce_partials(double *partial, const float *x, int op, int64_t n, int64_t inner, int64_t S) {
    __shared__ double sums[32];
    __shared__ float ext[32];
    const int64_t oi = blockIdx.y, s = blockIdx.x, lo = s * n / S, hi = (s + 1) * n / S;
    const float *p = x + (oi / inner) * n * inner + oi % inner;
    if (op == UM_SUM || op == UM_MEAN) {
        double v = 0;
        for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) v += p[k * inner];
        v = um_cu_block_sum(v, sums);
        if (threadIdx.x == 0) partial[oi * S + s] = v;
    } else {
        float m = p[lo * inner];
        for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) m = pick(op, m, p[k * inner]);
        for (int o = 16; o > 0; o >>= 1) m = pick(op, m, __shfl_xor_sync(0xffffffffu, m, o));
        if ((threadIdx.x & 31) == 0) ext[threadIdx.x >> 5] = m;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < (int)(blockDim.x >> 5); w++) m = pick(op, m, ext[w]);
            partial[oi * S + s] = m;
        }
    }
}

__global__ void reduce_finish(float *y, const double *partial, int op, int64_t outs, int64_t n, int64_t S) {
    UM_CU_FOR(oi, outs) {
        const double *q = partial + oi * S;
        if (op == UM_SUM || op == UM_MEAN) {
            double v = 0;
            for (int64_t s = 0; s < S; s++) v += q[s];
            y[oi] = (float)(op == UM_MEAN ? v / (double)n : v);
        } else {
            float m = (float)q[0];
            for (int64_t s = 1; s < S; s++) m = pick(op, m, (float)q[s]);
            y[oi] = m;
        }
    }
}

#define GRID_ROW 65536     /* rows at least this long are split when there are few of them */
#define GRID_SLICE 16384   /* elements a block takes at least */
#define GRID_BLOCKS 1024   /* blocks over all outputs, about a few waves on any GPU */

int um_cu_reduce(um_tensor *out, um_redop op, const um_tensor *a, int64_t outer, int64_t n, int64_t inner) {
    int64_t outs = outer * inner;
    if (outs == 0) return UM_OK;
    if (n == 0)   /* sum 0, mean 0/0 as the CPU; the front end refuses max/min of nothing */
        return um_cu_fill_floats(um_f32(out), outs, op == UM_MEAN ? NAN : 0.0f);
    if (n >= GRID_ROW && outs < GRID_BLOCKS / 4) {
        int64_t S = (n + GRID_SLICE - 1) / GRID_SLICE, most = GRID_BLOCKS / outs;
        if (S > most) S = most;
        void *scratch;
        UM_TRY(um_cu_scratch(&scratch, (size_t)(outs * S) * sizeof(double)));
        reduce_partials<<<dim3((unsigned)S, (unsigned)outs), BLOCK>>>((double *)scratch, um_f32(a), (int)op, n, inner, S);
        UM_CU_LAUNCHED("reduce_partials");
        reduce_finish<<<um_cu_blocks(outs), UM_CU_THREADS>>>(um_f32(out), (const double *)scratch, (int)op, outs, n, S);
        UM_CU_LAUNCHED("reduce_finish");
        return UM_OK;
    }
    if (inner > 1 && outs >= MANY_OUTPUTS) {
        reduce_per_thread<<<um_cu_blocks(outs), UM_CU_THREADS>>>(um_f32(out), um_f32(a), (int)op, outer, n, inner);
        UM_CU_LAUNCHED("reduce_per_thread");
    } else {
        unsigned blocks = (unsigned)(outs < 65535 ? outs : 65535);
        reduce_per_block<<<blocks, BLOCK>>>(um_f32(out), um_f32(a), (int)op, outer, n, inner);
        UM_CU_LAUNCHED("reduce_per_block");
    }
    return UM_OK;
}

/* ---- arg-max / arg-min ----------------------------------------------------------------------- */

__global__ void arg_per_thread(int64_t *y, const float *x, int want_max, int64_t outer, int64_t n, int64_t inner) {
    UM_CU_FOR(oi, outer * inner) {
        const float *p = x + (oi / inner) * n * inner + oi % inner;
        int64_t best = 0;
        for (int64_t k = 1; k < n; k++) {
            float v = p[k * inner], m = p[best * inner];
            if (want_max ? v > m : v < m) best = k;
        }
        y[oi] = best;
    }
}

/* b replaces a when it is a better candidate: more extreme, or as extreme and earlier. */
__device__ __forceinline__ bool better(int want_max, float bv, int64_t bk, float av, int64_t ak) {
    if (bk < 0) return false;
    if (ak < 0) return true;
    if (bv == av) return bk < ak;
    return want_max ? bv > av : bv < av;
}

__global__ void arg_per_block(int64_t *y, const float *x, int want_max, int64_t outer, int64_t n, int64_t inner) {
    __shared__ float sv[32];
    __shared__ int64_t sk[32];
    for (int64_t oi = blockIdx.x; oi < outer * inner; oi += gridDim.x) {
        const float *p = x + (oi / inner) * n * inner + oi % inner;
        float bv = 0.0f;
        int64_t bk = -1;   /* no candidate yet; NaN never becomes one */
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
            float v = p[k * inner];
            if (!isnan(v) && better(want_max, v, k, bv, bk)) { bv = v; bk = k; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int64_t ok = __shfl_xor_sync(0xffffffffu, bk, o);
            if (better(want_max, ov, ok, bv, bk)) { bv = ov; bk = ok; }
        }
        __syncthreads();
        if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = bv; sk[threadIdx.x >> 5] = bk; }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < (int)(blockDim.x >> 5); w++)
                if (better(want_max, sv[w], sk[w], bv, bk)) { bv = sv[w]; bk = sk[w]; }
            y[oi] = isnan(p[0]) || bk < 0 ? 0 : bk;   /* the CPU's scan never leaves a NaN first element */
        }
    }
}

/* Slice s of row oi: its best non-NaN value and index (-1: none) at partial[oi * S + s]. */
__global__ void arg_partials(double *val, int64_t *idx, const float *x, int want_max, int64_t n, int64_t inner,
                             int64_t S) {
    __shared__ float sv[32];
    __shared__ int64_t sk[32];
    const int64_t oi = blockIdx.y, s = blockIdx.x, lo = s * n / S, hi = (s + 1) * n / S;
    const float *p = x + (oi / inner) * n * inner + oi % inner;
    float bv = 0.0f;
    int64_t bk = -1;
    for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) {
        float v = p[k * inner];
        if (!isnan(v) && better(want_max, v, k, bv, bk)) { bv = v; bk = k; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int64_t ok = __shfl_xor_sync(0xffffffffu, bk, o);
        if (better(want_max, ov, ok, bv, bk)) { bv = ov; bk = ok; }
    }
    if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = bv; sk[threadIdx.x >> 5] = bk; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (better(want_max, sv[w], sk[w], bv, bk)) { bv = sv[w]; bk = sk[w]; }
        val[oi * S + s] = bv;
        idx[oi * S + s] = bk;
    }
}

__global__ void arg_finish(int64_t *y, const double *val, const int64_t *idx, const float *x, int want_max,
                           int64_t outs, int64_t n, int64_t inner, int64_t S) {
    UM_CU_FOR(oi, outs) {
        float bv = 0.0f;
        int64_t bk = -1;
        for (int64_t s = 0; s < S; s++)   /* slices in order: ties keep the earlier index */
            if (better(want_max, (float)val[oi * S + s], idx[oi * S + s], bv, bk)) {
                bv = (float)val[oi * S + s];
                bk = idx[oi * S + s];
            }
        const float first = x[(oi / inner) * n * inner + oi % inner];
        y[oi] = isnan(first) || bk < 0 ? 0 : bk;   /* as arg_per_block */
    }
}

int um_cu_arg_extreme(um_tensor *out, int want_max, const um_tensor *a, int64_t outer, int64_t n, int64_t inner) {
    int64_t outs = outer * inner;
    if (outs == 0) return UM_OK;
    if (n >= GRID_ROW && outs < GRID_BLOCKS / 4) {   /* an arg-max over a whole tensor: a grid */
        int64_t S = (n + GRID_SLICE - 1) / GRID_SLICE, most = GRID_BLOCKS / outs;
        if (S > most) S = most;
        void *scratch;
        UM_TRY(um_cu_scratch(&scratch, (size_t)(outs * S) * (sizeof(double) + sizeof(int64_t))));
        double *val = (double *)scratch;
        int64_t *idx = (int64_t *)(val + outs * S);
        arg_partials<<<dim3((unsigned)S, (unsigned)outs), BLOCK>>>(val, idx, um_f32(a), want_max, n, inner, S);
        UM_CU_LAUNCHED("arg_partials");
        arg_finish<<<um_cu_blocks(outs), UM_CU_THREADS>>>(um_i64(out), val, idx, um_f32(a), want_max, outs, n, inner, S);
        UM_CU_LAUNCHED("arg_finish");
        return UM_OK;
    }
    if (outs >= MANY_OUTPUTS || n <= 32) {
        arg_per_thread<<<um_cu_blocks(outs), UM_CU_THREADS>>>(um_i64(out), um_f32(a), want_max, outer, n, inner);
        UM_CU_LAUNCHED("arg_per_thread");
    } else {
        unsigned blocks = (unsigned)(outs < 65535 ? outs : 65535);
        arg_per_block<<<blocks, BLOCK>>>(um_i64(out), um_f32(a), want_max, outer, n, inner);
        UM_CU_LAUNCHED("arg_per_block");
    }
    return UM_OK;
}

/* ---- softmax ----------------------------------------------------------------------------------- */

__global__ void softmax_per_thread(float *y, const float *x, int64_t outer, int64_t n, int64_t inner, int log_) {
    UM_CU_FOR(oi, outer * inner) {
        int64_t base = (oi / inner) * n * inner + oi % inner;
        const float *p = x + base;
        float *q = y + base;
        float m = -INFINITY;
        for (int64_t k = 0; k < n; k++) if (p[k * inner] > m) m = p[k * inner];
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += exp((double)(p[k * inner] - m));
        if (log_) {
            float ls = (float)log(s);
            for (int64_t k = 0; k < n; k++) q[k * inner] = p[k * inner] - m - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t k = 0; k < n; k++) q[k * inner] = expf(p[k * inner] - m) * inv;
        }
    }
}

/* inner == 1: one warp per row. */
__global__ void softmax_per_warp(float *y, const float *x, int64_t rows, int64_t n, int log_) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const float *p = x + r * n;
        float *q = y + r * n;
        float m = -INFINITY;
        for (int64_t k = lane; k < n; k += 32) if (p[k] > m) m = p[k];
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        double s = 0;
        for (int64_t k = lane; k < n; k += 32) s += exp((double)(p[k] - m));
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (log_) {
            float ls = (float)log(s);
            for (int64_t k = lane; k < n; k += 32) q[k] = p[k] - m - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t k = lane; k < n; k += 32) q[k] = expf(p[k] - m) * inv;
        }
    }
}

int um_cu_softmax(um_tensor *out, const um_tensor *a, int64_t outer, int64_t n, int64_t inner, int log_) {
    int64_t outs = outer * inner;
    if (outs == 0 || n == 0) return UM_OK;
    if (inner == 1) {
        int64_t blocks = (outs + 7) / 8;
        softmax_per_warp<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256>>>(um_f32(out), um_f32(a), outs, n, log_);
        UM_CU_LAUNCHED("softmax_per_warp");
    } else {
        softmax_per_thread<<<um_cu_blocks(outs), UM_CU_THREADS>>>(um_f32(out), um_f32(a), outer, n, inner, log_);
        UM_CU_LAUNCHED("softmax_per_thread");
    }
    return UM_OK;
}
