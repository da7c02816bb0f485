/* Image resizing as PIL's Image.resize(BILINEAR) does it (what torchvision's Resize used
 * for the authors' LSUN and grayCIFAR sets): separable triangle filter over half-pixel
 * centres, support widened by the scale factor when shrinking (antialiasing), computed
 * in float with one rounding at the end (PIL rounds after each pass; differences <= 1/255). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "data/data.h"
#include "error.h"

/* Filter taps of one axis: output i reads inputs start[i] .. start[i]+count[i]-1 with
 * weights w[i*k ..]. */
typedef struct { int k; int *start, *count; float *w; } axis_taps;
typedef struct { int sh, sw, dh, dw; axis_taps rows, cols; float *tmp; } resize_plan;

static int taps_init(axis_taps *t, int in, int out) {
    double scale = (double)in / out, fs = scale > 1.0 ? scale : 1.0, support = fs; /* triangle support 1 */
    t->k = (int)ceil(support) * 2 + 1;
    t->start = um_alloc(sizeof(int) * (size_t)out);
    t->count = um_alloc(sizeof(int) * (size_t)out);
    t->w = um_alloc(sizeof(float) * (size_t)out * t->k);
    if (!t->start || !t->count || !t->w) return UM_ENOMEM;
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale, total = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        if (hi - lo > t->k) hi = lo + t->k;
        float *w = t->w + (size_t)i * t->k;
        for (int j = lo; j < hi; j++) {
            double x = fabs((j - center + 0.5) / fs);
            w[j - lo] = (float)(x < 1.0 ? 1.0 - x : 0.0);
            total += w[j - lo];
        }
        for (int j = lo; j < hi; j++) w[j - lo] = total > 0 ? (float)(w[j - lo] / total) : 0.0f;
        t->start[i] = lo;
        t->count[i] = hi - lo;
    }
    return UM_OK;
}

static void taps_free(axis_taps *t) {
    um_dealloc(t->start);
    um_dealloc(t->count);
    um_dealloc(t->w);
}

static void plan_free(resize_plan *p) {
    taps_free(&p->rows);
    taps_free(&p->cols);
    um_dealloc(p->tmp);
}

static int plan_init(resize_plan *p, int sh, int sw, int dh, int dw) {
    memset(p, 0, sizeof *p);
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1)
        return um_fail(UM_EINVAL, "resize: sizes must be positive, got %dx%d -> %dx%d", sh, sw, dh, dw);
    *p = (resize_plan){.sh = sh, .sw = sw, .dh = dh, .dw = dw};
    int rc = taps_init(&p->rows, sh, dh);
    if (!rc) rc = taps_init(&p->cols, sw, dw);
    if (!rc && !(p->tmp = um_alloc(sizeof(float) * (size_t)sh * dw))) rc = UM_ENOMEM;
    if (rc) plan_free(p);
    return rc;
}

/* Horizontal pass into tmp (sh x dw), then vertical into dst (dh x dw). */
static void plan_apply(const resize_plan *p, const float *src, float *dst) {
    for (int r = 0; r < p->sh; r++)
        for (int c = 0; c < p->dw; c++) {
            const float *w = p->cols.w + (size_t)c * p->cols.k, *s = src + (size_t)r * p->sw + p->cols.start[c];
            float acc = 0.0f;
            for (int j = 0; j < p->cols.count[c]; j++) acc += w[j] * s[j];
            p->tmp[(size_t)r * p->dw + c] = acc;
        }
    for (int r = 0; r < p->dh; r++) {
        const float *w = p->rows.w + (size_t)r * p->rows.k;
        for (int c = 0; c < p->dw; c++) {
            float acc = 0.0f;
            for (int j = 0; j < p->rows.count[r]; j++) acc += w[j] * p->tmp[(size_t)(p->rows.start[r] + j) * p->dw + c];
            dst[(size_t)r * p->dw + c] = acc;
        }
    }
}

static uint8_t to_byte(float v) {
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)lrintf(v);
}

int um_resize_plane(const float *src, int sh, int sw, float *dst, int dh, int dw) {
    resize_plan p;
    int rc = plan_init(&p, sh, sw, dh, dw);
    if (rc) return rc;
    plan_apply(&p, src, dst);
    plan_free(&p);
    return UM_OK;
}

int um_resize_u8(const uint8_t *src, int c, int sh, int sw, uint8_t *dst, int dh, int dw) {
    resize_plan p;
    int rc = plan_init(&p, sh, sw, dh, dw);
    if (rc) return rc;
    float *in = um_alloc(sizeof(float) * (size_t)sh * sw), *out = um_alloc(sizeof(float) * (size_t)dh * dw);
    if (!in || !out) rc = UM_ENOMEM;
    for (int ch = 0; ch < c && !rc; ch++) {
        const uint8_t *s = src + (size_t)ch * sh * sw;
        for (size_t i = 0; i < (size_t)sh * sw; i++) in[i] = s[i];
        plan_apply(&p, in, out);
        uint8_t *d = dst + (size_t)ch * dh * dw;
        for (size_t i = 0; i < (size_t)dh * dw; i++) d[i] = to_byte(out[i]);
    }
    um_dealloc(in);
    um_dealloc(out);
    plan_free(&p);
    return rc;
}

int um_dataset_gray_resize(um_dataset **out, const um_dataset *src, int h, int w, const char *name) {
    resize_plan p;
    um_dataset *ds = NULL;
    float *mean = NULL, *res = NULL;
    int rc = plan_init(&p, src->h, src->w, h, w);
    if (rc) return rc;
    const size_t plane = (size_t)src->h * src->w;
    if (!(rc = um_dataset_new(&ds, name, src->n, 1, h, w, src->num_classes)) &&
        (!(mean = um_alloc(sizeof(float) * plane)) || !(res = um_alloc(sizeof(float) * (size_t)h * w))))
        rc = UM_ENOMEM;
    for (int64_t i = 0; i < src->n && !rc; i++) {
        const uint8_t *img = src->pixels + (size_t)i * plane * src->c;
        for (size_t k = 0; k < plane; k++) {
            float acc = 0.0f;
            for (int ch = 0; ch < src->c; ch++) acc += img[(size_t)ch * plane + k];
            mean[k] = acc / (float)src->c;
        }
        plan_apply(&p, mean, res);
        for (size_t k = 0; k < (size_t)h * w; k++) ds->pixels[(size_t)i * h * w + k] = to_byte(res[k]);
        ds->labels[i] = src->labels[i];
    }
    um_dealloc(mean);
    um_dealloc(res);
    plan_free(&p);
    if (rc) um_dataset_free(ds);
    else *out = ds;
    return rc;
}
