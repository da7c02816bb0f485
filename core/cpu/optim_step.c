/* CPU optimiser steps, fused and in place, in TensorFlow's forms (see core/nn/nn_ops.h):
 * momentum without dampening, Adam with the bias correction folded into lr_t and eps
 * added to sqrt(v) ("epsilon hat"), and the paper's weight decay lambda * sum w^2. */
#include <math.h>
#include "error.h"
#include "cpu/nn_cpu.h"

#define PAR_MIN 32768   /* below this many elements threads cost more than they save */

int um_cpu_sgd_step(um_tensor *w, const um_tensor *g, um_tensor *v, double lr, double momentum, int nesterov) {
    const int64_t n = um_numel(w);
    float *wp = um_f32(w), *vp = um_f32(v);
    const float *gp = um_f32(g);
    const float flr = (float)lr, fm = (float)momentum;
    if (nesterov) {
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float vi = fm * vp[i] + gp[i];
            vp[i] = vi;
            wp[i] -= flr * (gp[i] + fm * vi);
        }
    } else {
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float vi = fm * vp[i] + gp[i];
            vp[i] = vi;
            wp[i] -= flr * vi;
        }
    }
    return UM_OK;
}

int um_cpu_adam_step(um_tensor *w, const um_tensor *g, um_tensor *m, um_tensor *v,
                     double lr_t, double beta1, double beta2, double eps) {
    const int64_t n = um_numel(w);
    float *wp = um_f32(w), *mp = um_f32(m), *vp = um_f32(v);
    const float *gp = um_f32(g);
    /* 1 - beta in double: 1.0f - 0.999f loses four digits */
    const float flr = (float)lr_t, b1 = (float)beta1, b2 = (float)beta2, fe = (float)eps;
    const float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gi = gp[i];
        float mi = b1 * mp[i] + c1 * gi;
        float vi = b2 * vp[i] + c2 * gi * gi;
        mp[i] = mi;
        vp[i] = vi;
        wp[i] -= flr * mi / (sqrtf(vi) + fe);
    }
    return UM_OK;
}

int um_cpu_weight_decay(const um_tensor *w, um_tensor *g, double lambda, double *sumsq) {
    const int64_t n = um_numel(w);
    const float *wp = um_f32(w);
    float *gp = um_f32(g);
    const float two_l = (float)(2.0 * lambda);
    double s = 0.0;
#pragma omp parallel for simd if (n >= PAR_MIN) reduction(+ : s) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        s += (double)wp[i] * (double)wp[i];
        gp[i] += two_l * wp[i];
    }
    *sumsq = s;
    return UM_OK;
}
