/* CUDA 2-D convolution through cuDNN (cross-correlation, NCHW, FP32 with CUDNN_FMA_MATH so
 * no TF32 tensor cores): forward, backward-data and backward-filter. Per geometry a plan
 * keeps the descriptors and, from cudnnFind* (or the _v7 heuristics when Find fails), the
 * candidate algorithms of each pass: it runs the fastest whose workspace is within a cap
 * (UMBRA_CUDA_WORKSPACE_MB, default 1024, and at most half the free device memory),
 * preferring deterministic ones, and when that workspace cannot be allocated it moves to
 * the best one needing less (core/cuda/cudnn_choice.h). One scratch buffer, shared by all
 * calls, holds the cuDNN workspace.
 * cuDNN pads symmetrically; TF `same` padding at stride 2 pads one more cell at the bottom
 * and right. When the symmetric padding does not give the wanted output size, the input
 * is padded explicitly (own kernel) into the scratch buffer and cuDNN runs unpadded; the
 * input gradient is then computed for the padded image and cropped. Bias: own kernels. */
#include <stdlib.h>
#include <string.h>
#include "cuda_backend.h"
#include "cudnn_choice.h"

#define MAX_PLANS 64
#define MAX_ALGOS 16

/* The candidates of one pass (fastest first) and the one in use. */
typedef struct {
    int have, count, chosen;
    int algo[MAX_ALGOS];
    um_cudnn_algo info[MAX_ALGOS];
} choice;

typedef struct {
    um_window2d g;          /* the key */
    int explicit_pad;       /* pad the input ourselves */
    int64_t hp, wp;         /* size of the image cuDNN sees */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    choice fwd, bwd_data, bwd_filter;
} plan;

static plan plans[MAX_PLANS];
static int n_plans, next_victim;

static void destroy_plan(plan *p) {
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

void um_cu_conv_release(void) {
    for (int i = 0; i < n_plans; i++) destroy_plan(&plans[i]);
    n_plans = 0;
}

static int build_plan(plan *p, const um_window2d *g) {
    memset(p, 0, sizeof *p);
    p->g = *g;
    /* symmetric padding pad_top/pad_left gives this output size; if it is not oh/ow, pad */
    int64_t oh_sym = (g->h + 2 * g->pad_top - g->kh) / g->sh + 1;
    int64_t ow_sym = (g->w + 2 * g->pad_left - g->kw) / g->sw + 1;
    p->explicit_pad = g->h + 2 * g->pad_top < g->kh || g->w + 2 * g->pad_left < g->kw || oh_sym != g->oh ||
                      ow_sym != g->ow;
    p->hp = p->explicit_pad ? (g->oh - 1) * g->sh + g->kh : g->h;
    p->wp = p->explicit_pad ? (g->ow - 1) * g->sw + g->kw : g->w;
    int ph = p->explicit_pad ? 0 : (int)g->pad_top, pw = p->explicit_pad ? 0 : (int)g->pad_left;
    char why[192];
    if (um_cudnn_too_big(g, p->hp, p->wp, why, sizeof why)) return um_fail(UM_ENOTIMPL, "cuda conv2d: %s", why);
    UM_CUDNN(cudnnCreateTensorDescriptor(&p->x));
    UM_CUDNN(cudnnCreateTensorDescriptor(&p->y));
    UM_CUDNN(cudnnCreateFilterDescriptor(&p->w));
    UM_CUDNN(cudnnCreateConvolutionDescriptor(&p->conv));
    UM_CUDNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)g->n, (int)g->c, (int)p->hp,
                                        (int)p->wp));
    UM_CUDNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)g->n, (int)g->c_out,
                                        (int)g->oh, (int)g->ow));
    UM_CUDNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)g->c_out, (int)g->c,
                                        (int)g->kh, (int)g->kw));
    UM_CUDNN(cudnnSetConvolution2dDescriptor(p->conv, ph, pw, (int)g->sh, (int)g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT));
    UM_CUDNN(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));
    int dims[4];
    UM_CUDNN(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &dims[0], &dims[1], &dims[2], &dims[3]));
    if (dims[2] != g->oh || dims[3] != g->ow)
        return um_fail(UM_EDEVICE, "cuda conv2d: cuDNN gives a %dx%d output, expected %lldx%lld", dims[2], dims[3],
                       (long long)g->oh, (long long)g->ow);
    return UM_OK;
}

static int get_plan(const um_window2d *g, plan **out) {
    for (int i = 0; i < n_plans; i++)
        if (!memcmp(&plans[i].g, g, sizeof *g)) {
            *out = &plans[i];
            return UM_OK;
        }
    plan *p;
    if (n_plans < MAX_PLANS) {
        p = &plans[n_plans++];
    } else {
        p = &plans[next_victim];
        next_victim = (next_victim + 1) % MAX_PLANS;
        destroy_plan(p);
    }
    int rc = build_plan(p, g);
    if (rc) {
        destroy_plan(p);
        p->g.n = -1;   /* matches no geometry */
        return rc;
    }
    *out = p;
    return UM_OK;
}

/* The most workspace a convolution may ask for: UMBRA_CUDA_WORKSPACE_MB (default 1024 MiB)
 * and at most half the device memory free now. */
static size_t workspace_cap(void) {
    const char *env = getenv("UMBRA_CUDA_WORKSPACE_MB");
    size_t cap = (size_t)(env && *env ? atol(env) : 1024) << 20, free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 2 < cap) cap = free_b / 2;
    cudaGetLastError();
    return cap;
}

/* Keep cuDNN's results as the candidates and pick the one to run. */
template <typename Perf>
static int take(choice *c, const Perf *perf, int count, const char *kind) {
    c->count = count < MAX_ALGOS ? count : MAX_ALGOS;
    for (int i = 0; i < c->count; i++) {
        c->algo[i] = (int)perf[i].algo;
        c->info[i].ok = perf[i].status == CUDNN_STATUS_SUCCESS;
        c->info[i].tensor_math =
            perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
        c->info[i].deterministic = perf[i].determinism == CUDNN_DETERMINISTIC;
        c->info[i].memory = perf[i].memory;
    }
    size_t cap = workspace_cap();
    c->chosen = um_cudnn_pick(c->info, c->count, cap);
    if (c->chosen < 0)
        return um_fail(UM_EDEVICE, "cudnn: no usable %s algorithm for this convolution within a workspace of %zu bytes",
                       kind, cap);
    c->have = 1;
    return UM_OK;
}

/* Find (which times the algorithms), else the heuristics when Find fails or offers none
 * that fits. */
#define FIND_OR_GUESS(kind, PerfT, COUNT, find_call, get_call)                                      \
    do {                                                                                            \
        PerfT perf[COUNT];                                                                          \
        int count = 0;                                                                              \
        if (find_call == CUDNN_STATUS_SUCCESS && take(c, perf, count, kind) == UM_OK) return UM_OK; \
        cudaGetLastError(); /* a failed Find may leave an allocation error behind */                \
        UM_CUDNN(get_call);                                                                         \
        return take(c, perf, count, kind);                                                          \
    } while (0)

static int choose_fwd(cudnnHandle_t h, plan *p) {
    choice *c = &p->fwd;
    FIND_OR_GUESS("forward", cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                  cudnnFindConvolutionForwardAlgorithm(h, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &count, perf),
                  cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                         &count, perf));
}

static int choose_bwd_data(cudnnHandle_t h, plan *p) {
    choice *c = &p->bwd_data;
    FIND_OR_GUESS("backward-data", cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                  cudnnFindConvolutionBackwardDataAlgorithm(h, p->w, p->y, p->conv, p->x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf),
                  cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
}

static int choose_bwd_filter(cudnnHandle_t h, plan *p) {
    choice *c = &p->bwd_filter;
    FIND_OR_GUESS("backward-filter", cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                  cudnnFindConvolutionBackwardFilterAlgorithm(h, p->x, p->y, p->conv, p->w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf),
                  cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
}

/* xp (n, c, hp, wp) <- x (n, c, h, w) placed at (pad_top, pad_left), zeros around; rows
 * and columns of x past hp - pad_top (never read by any window) are dropped. */
__global__ void pad_kernel(float *xp, const float *x, int64_t h, int64_t w, int64_t hp, int64_t wp, int64_t pt,
                           int64_t pl, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t j = i % wp, r = (i / wp) % hp, plane = i / (wp * hp);
        int64_t iy = r - pt, ix = j - pl;
        xp[i] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(plane * h + iy) * w + ix] : 0.0f;
    }
}

/* gx (n, c, h, w) <- the matching cells of gxp; cells no window reads get 0. */
__global__ void crop_kernel(float *gx, const float *gxp, int64_t h, int64_t w, int64_t hp, int64_t wp, int64_t pt,
                            int64_t pl, int64_t total) {
    UM_CU_FOR(i, total) {
        int64_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        int64_t r = iy + pt, j = ix + pl;
        gx[i] = r < hp && j < wp ? gxp[(plane * hp + r) * wp + j] : 0.0f;
    }
}

static size_t align256(size_t b) { return (b + 255) / 256 * 256; }

/* Scratch layout: [padded image | cuDNN workspace of the chosen algorithm]. When that
 * cannot be allocated, move to the best algorithm needing less workspace and try again. */
static int scratch_for(const plan *p, choice *c, float **padded, void **work) {
    size_t pad_bytes = p->explicit_pad ? align256((size_t)(p->g.n * p->g.c * p->hp * p->wp) * sizeof(float)) : 0;
    void *base;
    for (;;) {
        size_t ws = c->info[c->chosen].memory;
        int rc = um_cu_scratch(&base, pad_bytes + ws), next;
        if (rc == UM_OK) {
            *padded = p->explicit_pad ? (float *)base : NULL;
            *work = ws ? (char *)base + pad_bytes : NULL;
            return UM_OK;
        }
        if (rc != UM_ENOMEM || (next = um_cudnn_smaller(c->info, c->count, c->chosen)) < 0) return rc;
        c->chosen = next;
    }
}

static int pad_input(const plan *p, const float *x, float *xp) {
    const um_window2d *g = &p->g;
    int64_t total = g->n * g->c * p->hp * p->wp;
    pad_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(xp, x, g->h, g->w, p->hp, p->wp, g->pad_top, g->pad_left, total);
    UM_CU_LAUNCHED("pad_kernel");
    return UM_OK;
}

int64_t um_cu_conv2d_workspace(const um_window2d *g) {
    (void)g;
    return 1;   /* the work lives in the backend's shared scratch buffer */
}

int um_cu_conv2d_forward(const um_window2d *g, const um_tensor *x, const um_tensor *weight, const um_tensor *bias,
                         um_tensor *y, um_tensor *work) {
    (void)work;
    if (g->n == 0 || g->c_out == 0 || g->oh == 0 || g->ow == 0) return UM_OK;
    cudnnHandle_t h;
    plan *p;
    UM_TRY(um_cu_cudnn(&h));
    UM_TRY(get_plan(g, &p));
    if (!p->fwd.have) UM_TRY(choose_fwd(h, p));
    float *xp;
    void *ws;
    UM_TRY(scratch_for(p, &p->fwd, &xp, &ws));
    const float *src = um_f32(x);
    if (xp) {
        UM_TRY(pad_input(p, src, xp));
        src = xp;
    }
    const float one = 1.0f, zero = 0.0f;
    UM_CUDNN(cudnnConvolutionForward(h, &one, p->x, src, p->w, um_f32(weight), p->conv,
                                     (cudnnConvolutionFwdAlgo_t)p->fwd.algo[p->fwd.chosen], ws,
                                     p->fwd.info[p->fwd.chosen].memory, &zero, p->y, um_f32(y)));
    if (bias) UM_TRY(um_cu_bias_add(y, bias, g->n, g->c_out, g->oh * g->ow));
    return UM_OK;
}

int um_cu_conv2d_backward(const um_window2d *g, const um_tensor *x, const um_tensor *gy, const um_tensor *weight,
                          um_tensor *gx, um_tensor *gweight, um_tensor *gbias, um_tensor *work) {
    (void)work;
    if (g->n == 0) return UM_OK;
    if (g->oh == 0 || g->ow == 0 || g->c_out == 0) return gx ? um_cu_fill(gx, 0.0) : UM_OK;
    cudnnHandle_t h;
    plan *p;
    UM_TRY(um_cu_cudnn(&h));
    UM_TRY(get_plan(g, &p));
    if (gweight && !p->bwd_filter.have) UM_TRY(choose_bwd_filter(h, p));
    if (gx && !p->bwd_data.have) UM_TRY(choose_bwd_data(h, p));
    const float one = 1.0f, zero = 0.0f;
    if (gbias) UM_TRY(um_cu_bias_grad(gy, gbias, g->n, g->c_out, g->oh * g->ow));
    if (gweight) {
        float *xp;
        void *ws;
        UM_TRY(scratch_for(p, &p->bwd_filter, &xp, &ws));
        const float *src = um_f32(x);
        if (xp) {
            UM_TRY(pad_input(p, src, xp));
            src = xp;
        }
        const choice *c = &p->bwd_filter;
        UM_CUDNN(cudnnConvolutionBackwardFilter(h, &one, p->x, src, p->y, um_f32(gy), p->conv,
                                                (cudnnConvolutionBwdFilterAlgo_t)c->algo[c->chosen], ws,
                                                c->info[c->chosen].memory, &one, p->w, um_f32(gweight)));
    }
    if (gx) {
        float *gxp;
        void *ws;
        UM_TRY(scratch_for(p, &p->bwd_data, &gxp, &ws));
        const choice *c = &p->bwd_data;
        UM_CUDNN(cudnnConvolutionBackwardData(h, &one, p->w, um_f32(weight), p->y, um_f32(gy), p->conv,
                                              (cudnnConvolutionBwdDataAlgo_t)c->algo[c->chosen], ws,
                                              c->info[c->chosen].memory, &zero, p->x, gxp ? gxp : um_f32(gx)));
        if (gxp) {
            int64_t total = g->n * g->c * g->h * g->w;
            if (total > 0) {
                crop_kernel<<<um_cu_blocks(total), UM_CU_THREADS>>>(um_f32(gx), gxp, g->h, g->w, p->hp, p->wp,
                                                                    g->pad_top, g->pad_left, total);
                UM_CU_LAUNCHED("crop_kernel");
            }
        }
    }
    return UM_OK;
}
