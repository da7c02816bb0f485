/* State shared by the attacks of attack.h: buffers made once per attack (so that a warm
 * iteration allocates nothing), scoring with the input gradient, host mirrors of the
 * per-example values, and the zero-gradient / stall escape. Internal to core/ood. */
#ifndef UM_ATTACK_STATE_H
#define UM_ATTACK_STATE_H
#include "ood/attack.h"

typedef struct {
    um_module *m;
    const um_tensor *labels;
    um_loss_kind kind;
    um_objective_fn custom;         /* replaces kind when set */
    void *custom_ctx;
    const um_backend *be;
    int64_t n, d;
    um_tensor *obj, *grad, *glog;   /* values (n) and input gradient (shape of z) on be */
    um_tensor *mask, *flags, *ones; /* (n) on be */
    um_tensor *noise, *fresh;       /* (shape of z) on be: redraws */
    um_tensor *host_n, *host_x;     /* host staging for (n) and (shape of z) when be is a device */
    float *vals;                    /* host copy of obj after each evaluation */
    float *last;                    /* previous values, for the stall count */
    float *redraw;                  /* host mask of the examples an escape redraws */
    int *stalled;
    um_attack_stats stats;
} um_attack_state;

/* Argument checks shared by the attacks (fn names the attack in errors); custom: a caller's
 * objective replaces kind, so no labels are needed. */
int um_attack_check(const um_tensor *z, const um_tensor *labels, double eps, int norm, int steps, um_loss_kind kind,
                    int custom, const char *fn);
/* custom (may be NULL) replaces kind, as in um_pgd_config. */
int um_attack_state_init(um_attack_state *s, um_module *m, const um_tensor *z, const um_tensor *labels,
                         um_loss_kind kind, um_objective_fn custom, void *custom_ctx);
void um_attack_state_free(um_attack_state *s);
/* obj (and s->vals) = objective at x; with want_grad, s->grad = its input gradient. */
int um_attack_eval(um_attack_state *s, um_tensor *x, int want_grad);
/* Upload host values (n) into a backend tensor (n). */
int um_attack_upload(um_attack_state *s, um_tensor *dst, const float *host);
/* Redraw (uniformly in the ball) the examples whose gradient is exactly zero or whose value
 * has not changed for escape_after evaluations, kill their momentum (x_prev, v: may be
 * NULL), and evaluate again when any was redrawn. escape_after 0 does nothing. */
int um_attack_escape(um_attack_state *s, um_tensor *x, um_tensor *other, const um_tensor *z, double eps, int norm,
                     int escape_after, um_generator *g);

#endif
