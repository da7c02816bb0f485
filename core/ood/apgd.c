/* APGD (attack.h): per example a step size eta starting at 2 eps; checkpoints after
 * k0 = 0.22 N iterations, then k shrinking by 0.03 N down to 0.06 N; at a checkpoint an
 * example whose objective rose in at most rho k of the last k steps, or whose best did not
 * improve since the previous checkpoint (when it was not halved there), halves eta and
 * restarts from its best point and that point's gradient. Restarts from uniform starts keep
 * the per-example best (strictly larger wins). Departures from the reference are in
 * docs/worst-case.md. */
#include <math.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "ood/attack_state.h"
#include "ood/ood_ops.h"

static int check(const um_tensor *z, const um_tensor *labels, double eps, int norm, int steps, um_loss_kind kind,
                 int custom, const char *fn) {
    char b[128];
    if (!z || z->dtype != UM_FLOAT32 || z->ndim < 2 || !um_is_contiguous(z))
        return um_fail(UM_EINVAL, "%s: expected a contiguous float32 batch (n, ...), got %s", fn,
                       z ? um_shape_str(z, b, sizeof b) : "nothing");
    if (!custom && kind == UM_LOSS_CROSS_ENTROPY && (!labels || labels->dtype != UM_INT64 || labels->size[0] != z->size[0]))
        return um_fail(UM_EINVAL, "%s: the ce objective needs int64 labels of size %lld", fn, (long long)z->size[0]);
    if (!(eps >= 0) || steps < 0) return um_fail(UM_EINVAL, "%s: need eps >= 0 and steps >= 0, got %g and %d", fn, eps, steps);
    if (norm != 0 && norm != 2) return um_fail(UM_EINVAL, "%s: norm must be inf (0) or 2, got %d", fn, norm);
    return UM_OK;
}

int um_attack_check(const um_tensor *z, const um_tensor *labels, double eps, int norm, int steps, um_loss_kind kind,
                    int custom, const char *fn) {
    return check(z, labels, eps, norm, steps, kind, custom, fn);
}

typedef struct {
    float *eta, *best, *check_best, *prev;
    int *increases, *reduced;
    float *improved, *halve;
} apgd_host;

static int host_new(apgd_host *h, int64_t n) {
    size_t f = sizeof(float) * (size_t)(n ? n : 1), i = sizeof(int) * (size_t)(n ? n : 1);
    h->eta = um_alloc(f); h->best = um_alloc(f); h->check_best = um_alloc(f); h->prev = um_alloc(f);
    h->improved = um_alloc(f); h->halve = um_alloc(f);
    h->increases = um_alloc(i); h->reduced = um_alloc(i);
    return h->eta && h->best && h->check_best && h->prev && h->improved && h->halve && h->increases && h->reduced
               ? UM_OK : UM_ENOMEM;
}

static void host_free(apgd_host *h) {
    void *p[] = {h->eta, h->best, h->check_best, h->prev, h->improved, h->halve, h->increases, h->reduced};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) um_dealloc(p[i]);
}

typedef struct {
    um_tensor *x, *x_prev, *x_best, *g_best, *eta;
} apgd_dev;

/* One run from a uniform start: x_best and h->best hold the run's per-example best. */
static int run(um_attack_state *s, apgd_dev *t, apgd_host *h, const um_tensor *z, const um_apgd_config *cfg,
               um_generator *g) {
    const um_backend *be = s->be;
    int64_t n = s->n;
    int N = cfg->steps;
    int k = N * 22 / 100 > 1 ? N * 22 / 100 : 1, k_min = N * 6 / 100 > 1 ? N * 6 / 100 : 1;
    int k_dec = N * 3 / 100 > 1 ? N * 3 / 100 : 1, counter = 0;
    int rc = um_attack_start(t->x, z, UM_START_UNIFORM, cfg->eps, 0, cfg->norm, g);
    if (!rc) rc = um_attack_eval(s, t->x, 1);
    if (!rc) rc = um_attack_escape(s, t->x, NULL, z, cfg->eps, cfg->norm, cfg->escape_after, g);
    if (!rc) rc = um_copy_(t->x_best, t->x);
    if (!rc) rc = um_copy_(t->g_best, s->grad);
    if (!rc) rc = um_copy_(t->x_prev, t->x);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++) {
        h->eta[i] = (float)(2 * cfg->eps);
        h->best[i] = h->check_best[i] = h->prev[i] = s->vals[i];
        h->increases[i] = 0;
        h->reduced[i] = 1;
    }
    if ((rc = um_attack_upload(s, t->eta, h->eta))) return rc;
    for (int it = 0; it < N; it++) {
        float alpha = it == 0 ? 1.0f : (float)cfg->momentum;
        if ((rc = UM_OOD_CALL(be, apgd_step, t->x, t->x_prev, s->grad, z, t->eta, (float)cfg->eps, alpha, cfg->norm)) ||
            (rc = um_attack_eval(s, t->x, 1)) ||
            (rc = um_attack_escape(s, t->x, t->x_prev, z, cfg->eps, cfg->norm, cfg->escape_after, g)))
            return rc;
        int any = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = s->vals[i];
            h->increases[i] += v > h->prev[i];
            h->prev[i] = v;
            h->improved[i] = v > h->best[i] ? 1.0f : 0.0f;
            if (h->improved[i] != 0) { h->best[i] = v; any = 1; }
        }
        if (any && ((rc = um_attack_upload(s, s->mask, h->improved)) ||
                    (rc = UM_OOD_CALL(be, copy_rows, t->x_best, t->x, s->mask)) ||
                    (rc = UM_OOD_CALL(be, copy_rows, t->g_best, s->grad, s->mask))))
            return rc;
        if (++counter < k) continue;
        any = 0;
        for (int64_t i = 0; i < n; i++) {
            int cond1 = h->increases[i] <= cfg->rho * k;
            int cond2 = !h->reduced[i] && h->check_best[i] >= h->best[i];
            h->halve[i] = (cond1 || cond2) ? 1.0f : 0.0f;
            h->reduced[i] = cond1 || cond2;
            h->check_best[i] = h->best[i];
            h->increases[i] = 0;
            if (h->halve[i] != 0) { h->eta[i] /= 2; any = 1; }
        }
        if (any && ((rc = um_attack_upload(s, t->eta, h->eta)) || (rc = um_attack_upload(s, s->mask, h->halve)) ||
                    (rc = UM_OOD_CALL(be, copy_rows, t->x, t->x_best, s->mask)) ||
                    (rc = UM_OOD_CALL(be, copy_rows, s->grad, t->g_best, s->mask))))
            return rc;
        counter = 0;
        k = k - k_dec > k_min ? k - k_dec : k_min;
    }
    return UM_OK;
}

int um_apgd(um_module *m, const um_tensor *z, const um_tensor *labels, const um_apgd_config *cfg, um_generator *g,
            um_tensor **x_best, um_tensor **values, um_attack_stats *stats) {
    int rc = check(z, labels, cfg->eps, cfg->norm, cfg->steps, cfg->objective, cfg->custom != NULL, "apgd");
    if (rc) return rc;
    if (!g) return um_fail(UM_EINVAL, "apgd: needs a generator for its uniform starts");
    if (cfg->restarts < 1) return um_fail(UM_EINVAL, "apgd: restarts must be >= 1, got %d", cfg->restarts);
    int was_training = m->training;
    um_module_train(m, 0);
    um_attack_state s;
    apgd_host h = {0};
    apgd_dev t = {0};
    um_tensor *out_x = NULL, *out_v = NULL;
    int64_t n = z->size[0];
    float *overall = NULL;
    rc = um_attack_state_init(&s, m, z, labels, cfg->objective, cfg->custom, cfg->custom_ctx);
    if (!rc) rc = host_new(&h, n);
    if (!rc) rc = um_tensor_new(&t.x, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&t.x_prev, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&t.x_best, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&t.g_best, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&t.eta, UM_FLOAT32, 1, &n, s.be);
    if (!rc) rc = um_tensor_new(&out_x, UM_FLOAT32, z->ndim, z->size, s.be);
    if (!rc) rc = um_tensor_new(&out_v, UM_FLOAT32, 1, &n, s.be);
    if (!rc && !(overall = um_alloc(sizeof(float) * (size_t)(n ? n : 1)))) rc = UM_ENOMEM;
    for (int r = 0; r < cfg->restarts && !rc; r++) {
        rc = run(&s, &t, &h, z, cfg, g);
        if (rc) break;
        int any = 0;
        for (int64_t i = 0; i < n; i++) {
            h.improved[i] = (r == 0 || h.best[i] > overall[i]) ? 1.0f : 0.0f;
            if (h.improved[i] != 0) { overall[i] = h.best[i]; any = 1; }
        }
        if (any && !(rc = um_attack_upload(&s, s.mask, h.improved)))
            rc = UM_OOD_CALL(s.be, copy_rows, out_x, t.x_best, s.mask);
    }
    if (!rc) rc = um_attack_upload(&s, out_v, overall);
    um_module_train(m, was_training);
    if (stats && !rc) *stats = s.stats;
    um_attack_state_free(&s);
    host_free(&h);
    um_dealloc(overall);
    um_tensor *all[] = {t.x, t.x_prev, t.x_best, t.g_best, t.eta};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
    if (rc) {
        um_tensor_release(out_x);
        um_tensor_release(out_v);
        return rc;
    }
    *x_best = out_x;
    *values = out_v;
    return UM_OK;
}
