/* Host-side decisions of the cuDNN convolution (core/cuda/conv.cu), in plain C so that
 * the CPU tests check them (tests/c/test_device_faults.c): which algorithm to run among
 * cudnnFind's results given the workspace that can be had, and whether a geometry fits
 * cuDNN's 32-bit dimensions and element counts (a tensor of 2^31 elements or more is
 * indexed wrongly or refused deep inside cuDNN, even when every dimension fits). */
#ifndef UM_CUDNN_CHOICE_H
#define UM_CUDNN_CHOICE_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "nn/nn_ops.h"

/* One of cudnnFind's (or the heuristics') results, fastest first. */
typedef struct {
    int ok;              /* status CUDNN_STATUS_SUCCESS */
    int tensor_math;     /* needs tensor-op math (TF32): never taken */
    int deterministic;
    size_t memory;       /* workspace bytes */
} um_cudnn_algo;

/* The index of the algorithm to run: among the usable ones whose workspace is at most cap,
 * the first deterministic one, else the first; -1 when none fits. */
static inline int um_cudnn_pick(const um_cudnn_algo *a, int count, size_t cap) {
    int any = -1;
    for (int i = 0; i < count; i++) {
        if (!a[i].ok || a[i].tensor_math || a[i].memory > cap) continue;
        if (a[i].deterministic) return i;
        if (any < 0) any = i;
    }
    return any;
}

/* The next choice after the workspace of a[current] could not be allocated: the pick among
 * those needing strictly less; -1 when there is none. */
static inline int um_cudnn_smaller(const um_cudnn_algo *a, int count, int current) {
    size_t need = a[current].memory;
    return need == 0 ? -1 : um_cudnn_pick(a, count, need - 1);
}

/* 0 when the convolution's tensors fit cuDNN's int sizes (the input as cuDNN sees it is
 * (n, c, hp, wp)); else 1 with the reason in why. */
static inline int um_cudnn_too_big(const um_window2d *g, int64_t hp, int64_t wp, char *why, size_t why_size) {
    const int64_t dims[] = {g->n, g->c, g->c_out, hp, wp, g->oh, g->ow, g->kh, g->kw, g->sh, g->sw, g->pad_top, g->pad_left};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        if (dims[i] < 0 || dims[i] > INT_MAX) {
            snprintf(why, why_size, "a dimension of %lld exceeds cuDNN's 32-bit sizes", (long long)dims[i]);
            return 1;
        }
    /* products of values below 2^31 fit in int64 two at a time; stop once past INT_MAX */
    const struct { const char *what; int64_t a, b, c, d; } t[] = {
        {"input", g->n, g->c, hp, wp}, {"output", g->n, g->c_out, g->oh, g->ow}, {"weight", g->c_out, g->c, g->kh, g->kw}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int64_t ab = t[i].a * t[i].b, cd = t[i].c * t[i].d;
        if (ab > INT_MAX || cd > INT_MAX || (cd > 0 && ab > INT_MAX / cd)) {
            snprintf(why, why_size, "the %s has %lld x %lld x %lld x %lld elements, at least 2^31 (cuDNN's limit)",
                     t[i].what, (long long)t[i].a, (long long)t[i].b, (long long)t[i].c, (long long)t[i].d);
            return 1;
        }
    }
    return 0;
}

#endif
