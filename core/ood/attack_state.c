/* Buffers, scoring and the escape of the attacks with per-example state (attack_state.h),
 * and their start points. */
#include "ood/attack_state.h"
#include <math.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ood/noise.h"
#include "ood/ood_ops.h"
#include "ood/pgd.h"
#include "ops.h"

int um_attack_state_init(um_attack_state *s, um_module *m, const um_tensor *z, const um_tensor *labels,
                         um_loss_kind kind, um_objective_fn custom, void *custom_ctx) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->labels = labels;
    s->kind = kind;
    s->custom = custom;
    s->custom_ctx = custom_ctx;
    s->be = um_backend_of(z);
    s->n = z->size[0];
    s->d = um_numel(z) / (s->n ? s->n : 1);
    int64_t n = s->n;
    int rc = um_tensor_new(&s->obj, UM_FLOAT32, 1, &n, s->be);
    if (!rc) rc = um_tensor_new(&s->grad, UM_FLOAT32, z->ndim, z->size, s->be);
    if (!rc) rc = um_tensor_new(&s->mask, UM_FLOAT32, 1, &n, s->be);
    if (!rc) rc = um_tensor_new(&s->flags, UM_FLOAT32, 1, &n, s->be);
    if (!rc) rc = um_tensor_new(&s->ones, UM_FLOAT32, 1, &n, s->be);
    if (!rc) rc = um_fill_(s->ones, 1.0);
    if (!rc) rc = um_tensor_new(&s->noise, UM_FLOAT32, z->ndim, z->size, s->be);
    if (!rc) rc = um_tensor_new(&s->fresh, UM_FLOAT32, z->ndim, z->size, s->be);
    if (!rc && !s->be->is_host) rc = um_tensor_new(&s->host_n, UM_FLOAT32, 1, &n, NULL);
    if (!rc && !s->be->is_host) rc = um_tensor_new(&s->host_x, UM_FLOAT32, z->ndim, z->size, NULL);
    if (rc) return rc;
    s->vals = um_alloc(sizeof(float) * (size_t)(n ? n : 1));
    s->last = um_alloc(sizeof(float) * (size_t)(n ? n : 1));
    s->redraw = um_alloc(sizeof(float) * (size_t)(n ? n : 1));
    s->stalled = um_alloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!s->vals || !s->last || !s->redraw || !s->stalled) return UM_ENOMEM;
    for (int64_t i = 0; i < n; i++) {
        s->last[i] = NAN;
        s->stalled[i] = 0;
    }
    return UM_OK;
}

void um_attack_state_free(um_attack_state *s) {
    um_tensor *t[] = {s->obj, s->grad, s->glog, s->mask, s->flags, s->ones, s->noise, s->fresh, s->host_n, s->host_x};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) um_tensor_release(t[i]);
    um_dealloc(s->vals);
    um_dealloc(s->last);
    um_dealloc(s->redraw);
    um_dealloc(s->stalled);
}

/* The host view of a backend vector (n): itself on the CPU, else a copy in host_n. */
static int download(um_attack_state *s, const um_tensor *t, const float **out) {
    if (s->be->is_host) {
        *out = um_f32(t);
        return UM_OK;
    }
    int rc = um_copy_(s->host_n, t);
    *out = um_f32(s->host_n);
    return rc;
}

int um_attack_upload(um_attack_state *s, um_tensor *dst, const float *host) {
    if (s->be->is_host) {
        memcpy(um_f32(dst), host, sizeof(float) * (size_t)s->n);
        return UM_OK;
    }
    memcpy(um_f32(s->host_n), host, sizeof(float) * (size_t)s->n);
    return um_copy_(dst, s->host_n);
}

int um_attack_eval(um_attack_state *s, um_tensor *x, int want_grad) {
    um_tensor **glog = want_grad ? &s->glog : NULL;
    int rc = s->custom ? um_custom_objective_and_grad(s->m, x, s->custom, s->custom_ctx, s->obj, glog)
                       : um_objective_and_grad(s->m, x, s->kind, s->labels, s->obj, glog);
    s->stats.forwards++;
    if (!rc && want_grad) {
        um_tensor *gx;
        rc = um_module_backward_input(s->m, x, s->glog, &gx);
        if (!rc) rc = um_copy_(s->grad, gx);
    }
    const float *v;
    if (!rc) rc = download(s, s->obj, &v);
    if (!rc) memcpy(s->vals, v, sizeof(float) * (size_t)s->n);
    return rc;
}

/* t (shape of z, on the backend) = uniform in [lo, hi]^d, drawn on the host. */
static int fill_uniform(um_attack_state *s, um_tensor *t, um_generator *g, float lo, float hi) {
    um_tensor *h = s->be->is_host ? t : s->host_x;
    um_fill_uniform(g, um_f32(h), um_numel(h), lo, hi);
    return h == t ? UM_OK : um_copy_(t, h);
}

int um_attack_escape(um_attack_state *s, um_tensor *x, um_tensor *other, const um_tensor *z, double eps, int norm,
                     int escape_after, um_generator *g) {
    if (escape_after <= 0) return UM_OK;
    int rc = UM_OOD_CALL(s->be, zero_rows, s->flags, s->grad);
    const float *zero;
    if (!rc) rc = download(s, s->flags, &zero);
    if (rc) return rc;
    float *redraw = s->redraw;
    int64_t count = 0;
    for (int64_t i = 0; i < s->n; i++) {
        s->stalled[i] = s->vals[i] == s->last[i] ? s->stalled[i] + 1 : 0;
        s->last[i] = s->vals[i];
        redraw[i] = (zero[i] != 0 || s->stalled[i] >= escape_after) ? 1.0f : 0.0f;
        if (redraw[i] != 0) {
            count++;
            s->stalled[i] = 0;
        }
    }
    if (count > 0) {
        s->stats.escapes += count;
        rc = um_attack_upload(s, s->mask, redraw);
        if (!rc) rc = fill_uniform(s, s->noise, g, (float)-eps, (float)eps);
        if (!rc) rc = UM_OOD_CALL(s->be, random_start, s->fresh, z, s->noise, s->ones);
        if (!rc && norm == 2) rc = UM_OOD_CALL(s->be, pgd_step, s->fresh, s->fresh, z, 0.0f, (float)eps, 2);
        if (!rc) rc = UM_OOD_CALL(s->be, copy_rows, x, s->fresh, s->mask);
        if (!rc && other) rc = UM_OOD_CALL(s->be, copy_rows, other, x, s->mask);
        if (!rc) rc = um_attack_eval(s, x, 1);
    }
    return rc;
}

int um_attack_start(um_tensor *x, const um_tensor *z, um_start_kind kind, double eps, double sigma, int norm,
                    um_generator *g) {
    const um_backend *be = um_backend_of(z);
    int64_t n = z->size[0];
    um_tensor *u = NULL, *ones = NULL, *mean = NULL, *flat = NULL;
    int64_t fs[2] = {n, um_numel(z) / (n ? n : 1)};
    if (kind != UM_START_CLEAN && kind != UM_START_CONTRAST && !g)
        return um_fail(UM_EINVAL, "attack: a random start needs a generator");
    int rc = um_tensor_new(&ones, UM_FLOAT32, 1, &n, be);
    if (!rc) rc = um_fill_(ones, 1.0);
    switch (kind) {
    case UM_START_CLEAN:
        if (!rc) rc = um_copy_(x, z);
        break;
    case UM_START_UNIFORM:
        if (!rc) rc = um_uniform_tensor(&u, z->ndim, z->size, be, g, (float)-eps, (float)eps);
        break;
    case UM_START_GAUSSIAN:
        if (!rc) rc = um_tensor_new(&u, UM_FLOAT32, z->ndim, z->size, NULL);
        if (!rc) um_fill_normal(g, um_f32(u), um_numel(u), 0.0f, (float)sigma);
        if (!rc && !be->is_host) {
            um_tensor *d = NULL;
            rc = um_to_backend(&d, u, be);
            um_tensor_release(u);
            u = d;
        }
        break;
    case UM_START_CONTRAST:   /* toward the image's mean over channels and pixels */
        if (!rc) rc = um_view(&flat, (um_tensor *)z, 2, fs);
        if (!rc) rc = um_reduce(&mean, UM_MEAN, flat, 1, 1);
        if (!rc) rc = um_binary(&u, UM_SUB, mean, flat);
        if (!rc) rc = um_clamp_(u, -eps, eps);
        break;
    default:
        rc = um_fail(UM_EINVAL, "attack: unknown start kind %d", (int)kind);
    }
    if (!rc && u) rc = UM_OOD_CALL(be, random_start, x, z, u, ones);   /* x = clip01(z + u) */
    if (!rc && u && norm == 2) rc = UM_OOD_CALL(be, pgd_step, x, x, z, 0.0f, (float)eps, 2);
    um_tensor_release(u);
    um_tensor_release(ones);
    um_tensor_release(mean);
    um_tensor_release(flat);
    return rc;
}
