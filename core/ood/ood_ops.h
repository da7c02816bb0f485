/* Kernel table for the noise generators and the PGD inner steps: one per backend, which
 * the backend hands out as its "ood" kernels.
 * Tensors are contiguous float32 (N, D) or NCHW and already checked. */
#ifndef UM_OOD_OPS_H
#define UM_OOD_OPS_H
#include "backend.h"
#include "rng.h"
#include "tensor.h"

struct um_ood_ops {
    /* out[n,c,p] = x[n,c,perm_n[p]]; perms is int64 (N, H*W) on this backend */
    int (*permute_pixels)(um_tensor *out, const um_tensor *x, const um_tensor *perms);
    /* separable Gaussian low-pass with symmetric mirror padding; taps has 2r+1 weights */
    int (*lowpass)(um_tensor *out, const um_tensor *x, const float *taps, int radius);
    /* per-image min-max rescale to [0,1] over all pixels and channels, in place */
    int (*rescale)(um_tensor *x);
    /* x = z + s_n * u, clipped to [0,1]; u has the shape of z, s has N entries */
    int (*random_start)(um_tensor *x, const um_tensor *z, const um_tensor *u, const um_tensor *s);
    /* one ascent step and projection onto {|x - z| <= eps} ∩ [0,1]^d; p = 0 means l-inf (sign
     * step), p = 2 a step along g/|g|_2 */
    int (*pgd_step)(um_tensor *x, const um_tensor *grad, const um_tensor *z, float step, float eps, int p);
    /* where obj_n > best_obj_n (strictly): best_x_n = x_n, best_obj_n = obj_n */
    int (*keep_best)(um_tensor *best_x, um_tensor *best_obj, const um_tensor *x, const um_tensor *obj);

    /* Interval bounds (core/ood/ibp.c). lo = clip(z - eps, 0, 1), hi = clip(z + eps, 0, 1). */
    int (*ibp_input_box)(um_tensor *lo, um_tensor *hi, const um_tensor *z, float eps);
    /* Elision of the last Linear layer: lo, hi (n, m) bound its input, w (K, m), b (K) or
     * NULL. ud (n, K, K): ud[i,k,j] = sum_c max(D_c, 0) hi_c + min(D_c, 0) lo_c + b_k - b_j
     * with D = w_k - w_j, an upper bound on logit k minus logit j; ud[i,k,k] = 0. */
    int (*ibp_elision)(um_tensor *ud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w, const um_tensor *b);
    /* conf (n) = max_k 1 / sum_j exp(-ud[i,k,j]) = exp(max_k -lse_j(-ud[i,k,j])), in double:
     * an upper bound on the max softmax confidence when ud bounds the logit differences. */
    int (*ibp_confidence)(um_tensor *conf, const um_tensor *ud);
    /* Backward of ibp_elision: from gud (n, K, K), the gradient of a loss with respect to ud,
     * g_lo, g_hi (n, m) overwritten: sum_{k != j} gud[i,k,j] min(D,0) and max(D,0);
     * gw (K, m) += sum_i sum_{j != k} gud[i,k,j] sel_kj - gud[i,j,k] sel_jk, where sel_kj
     * is hi where D = w_k - w_j > 0 and lo elsewhere; gb (K) += sum_i sum_j gud[i,k,j] -
     * gud[i,j,k] (gb may be NULL). The diagonal of gud is ignored (ud[k,k] = 0 is fixed). */
    int (*ibp_elision_backward)(const um_tensor *gud, const um_tensor *lo, const um_tensor *hi, const um_tensor *w,
                                um_tensor *g_lo, um_tensor *g_hi, um_tensor *gw, um_tensor *gb);

    /* Attacks with per-example state (core/ood/apgd.c, mpgd.c). x, x_prev, grad, v, z
     * (n, d); eta, lr, mask, flags (n) float32 on the same backend. Every projection is onto
     * {|x - z| <= eps} (l-inf, norm 0, or l2, norm 2: radial shrink) and then [0,1]^d.
     * APGD step: s = P(x + eta_i sign(g)) (l2: eta_i g/|g|_2), x' = P(x + alpha (s - x) +
     * (1 - alpha)(x - x_prev)); x_prev = x, x = x'. */
    int (*apgd_step)(um_tensor *x, um_tensor *x_prev, const um_tensor *grad, const um_tensor *z, const um_tensor *eta,
                     float eps, float alpha, int norm);
    /* Momentum step on the raw gradient: v = momentum v + g; x = P(x + lr_i v). */
    int (*mpgd_step)(um_tensor *x, um_tensor *v, const um_tensor *grad, const um_tensor *z, const um_tensor *lr,
                     float eps, float momentum, int norm);
    /* dst_i = src_i for the rows with mask_i != 0. */
    int (*copy_rows)(um_tensor *dst, const um_tensor *src, const um_tensor *mask);
    /* flags_i = 1 where every entry of row i of grad is exactly 0, else 0. */
    int (*zero_rows)(um_tensor *flags, const um_tensor *grad);
};

/* The ood table of backend be; an empty table when be has none. */
const struct um_ood_ops *um_ood_kernels(const um_backend *be);
/* Calls ood kernel k of backend be, or fails with UM_ENOTIMPL naming kernel and backend. */
#define UM_OOD_CALL(be, k, ...)                                                          \
    ({                                                                                \
        const struct um_ood_ops *table_ = um_ood_kernels(be); /* asked of the backend once */ \
        table_->k ? table_->k(__VA_ARGS__) : um_kernel_missing((be), #k);              \
    })

#endif
