/* The in-memory data set: creation, a one-line summary, class counts, and float32
 * batches with the authors' augmentation (flip before crop, zero padding). Random draws
 * are taken in index order before any pixel work, so a seed gives the same batch
 * whatever the thread count. */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "data/data.h"
#include "error.h"

int um_dataset_new(um_dataset **out, const char *name, int64_t n, int c, int h, int w, int num_classes) {
    if (n < 0 || c < 1 || h < 1 || w < 1 || num_classes < 0)
        return um_fail(UM_EINVAL, "dataset: bad shape %lld x %d x %d x %d or %d classes", (long long)n, c, h, w, num_classes);
    int64_t per = (int64_t)c * h * w;
    if (per > ((int64_t)1 << 40) / (n ? n : 1))
        return um_fail(UM_EINVAL, "dataset: %lld images of %dx%dx%d is too large", (long long)n, c, h, w);
    um_dataset *ds = um_calloc(sizeof *ds);
    if (!ds) return UM_ENOMEM;
    ds->pixels = um_alloc((size_t)(n * per) + 1);
    ds->labels = um_alloc((size_t)n * sizeof(int64_t) + 1);
    if (!ds->pixels || !ds->labels) {
        um_dataset_free(ds);
        return UM_ENOMEM;
    }
    snprintf(ds->name, sizeof ds->name, "%s", name ? name : "dataset");
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->num_classes = num_classes;
    *out = ds;
    return UM_OK;
}

void um_dataset_free(um_dataset *ds) {
    if (!ds) return;
    um_dealloc(ds->pixels);
    um_dealloc(ds->labels);
    um_dealloc(ds);
}

const char *um_dataset_describe(const um_dataset *ds, char *buf, size_t n) {
    char classes[32];
    if (ds->num_classes) snprintf(classes, sizeof classes, "%d classes", ds->num_classes);
    else snprintf(classes, sizeof classes, "unlabelled");
    snprintf(buf, n, "%s: %lld images %dx%dx%d, %s", ds->name, (long long)ds->n, ds->c, ds->h, ds->w, classes);
    return buf;
}

int um_dataset_take(um_dataset *ds, int64_t n) {
    if (n < 0) return um_fail(UM_EINVAL, "dataset take: count %lld is negative", (long long)n);
    if (n >= ds->n) return UM_OK;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    uint8_t *pixels = um_alloc(per * (size_t)n + 1);
    int64_t *labels = um_alloc(sizeof(int64_t) * (size_t)n + 1);
    if (!pixels || !labels) {
        um_dealloc(pixels);
        um_dealloc(labels);
        return UM_ENOMEM;
    }
    memcpy(pixels, ds->pixels, per * (size_t)n);
    memcpy(labels, ds->labels, sizeof(int64_t) * (size_t)n);
    um_dealloc(ds->pixels);
    um_dealloc(ds->labels);
    ds->pixels = pixels;
    ds->labels = labels;
    ds->n = n;
    return UM_OK;
}

void um_dataset_class_counts(const um_dataset *ds, int64_t *counts) {
    memset(counts, 0, sizeof(int64_t) * (size_t)ds->num_classes);
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < ds->num_classes) counts[ds->labels[i]]++;
}

static int check_batch_args(const um_dataset *ds, const int64_t *indices, int64_t n, const um_tensor *x,
                            const um_tensor *y, const um_augment *aug, const um_generator *g) {
    char shape[128];
    const int64_t want[4] = {n, ds->c, ds->h, ds->w};
    int same = x->ndim == 4;
    for (int d = 0; same && d < 4; d++) same = x->size[d] == want[d];
    if (x->dtype != UM_FLOAT32 || !same)
        return um_fail(UM_EINVAL, "dataset batch: x must be float32 of shape %lldx%dx%dx%d, got %s %s", (long long)n,
                       ds->c, ds->h, ds->w, um_dtype_name(x->dtype), um_shape_str(x, shape, sizeof shape));
    if (!um_backend_of(x)->is_host || !um_is_contiguous(x))
        return um_fail(UM_EINVAL, "dataset batch: x must be a contiguous CPU tensor");
    if (y && (y->dtype != UM_INT64 || y->ndim != 1 || y->size[0] != n || !um_backend_of(y)->is_host || !um_is_contiguous(y)))
        return um_fail(UM_EINVAL, "dataset batch: y must be a contiguous CPU int64 tensor of %lld elements, got %s %s",
                       (long long)n, um_dtype_name(y->dtype), um_shape_str(y, shape, sizeof shape));
    if (aug && (aug->crop_pad < 0 || aug->crop_pad > ds->h || aug->crop_pad > ds->w))
        return um_fail(UM_EINVAL, "dataset batch: crop padding %d outside 0..%d", aug->crop_pad, ds->h < ds->w ? ds->h : ds->w);
    if (aug && (aug->flip || aug->crop_pad) && !g)
        return um_fail(UM_EINVAL, "dataset batch: augmentation needs a generator");
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= ds->n)
            return um_fail(UM_EINVAL, "dataset batch: index %lld outside 0..%lld (%s)", (long long)indices[i], (long long)ds->n - 1, ds->name);
    return UM_OK;
}

/* One image into out (C x H x W floats): flipped when flip, shifted by (dy, dx) with
 * zeros where the shifted window leaves the image (crop from the padded image). */
static void place_image(const uint8_t *src, float *out, int c, int h, int w, int flip, int dy, int dx) {
    const float scale = 1.0f / 255.0f;
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *plane = src + (size_t)ch * h * w;
        float *o = out + (size_t)ch * h * w;
        for (int r = 0; r < h; r++) {
            int sr = r + dy;
            for (int col = 0; col < w; col++) {
                int sc = col + dx;
                float v = 0.0f;
                if (sr >= 0 && sr < h && sc >= 0 && sc < w) v = plane[(size_t)sr * w + (flip ? w - 1 - sc : sc)] * scale;
                o[(size_t)r * w + col] = v;
            }
        }
    }
}

int um_dataset_batch(const um_dataset *ds, const int64_t *indices, int64_t n, um_tensor *x,
                     um_tensor *y, int64_t label_base, const um_augment *aug, um_generator *g) {
    int rc = check_batch_args(ds, indices, n, x, y, aug, g);
    if (rc) return rc;
    int flip = aug && aug->flip, pad = aug ? aug->crop_pad : 0;
    int *draws = NULL;
    if (flip || pad) {
        draws = um_alloc((size_t)(3 * n + 1) * sizeof *draws);
        if (!draws) return UM_ENOMEM;
        for (int64_t i = 0; i < n; i++) {
            draws[3 * i] = flip ? um_rand_uniform(g) < 0.5f : 0;
            /* the crop's top-left corner in the padded image, minus the padding */
            draws[3 * i + 1] = pad ? (int)um_rand_below(g, (uint64_t)(2 * pad + 1)) - pad : 0;
            draws[3 * i + 2] = pad ? (int)um_rand_below(g, (uint64_t)(2 * pad + 1)) - pad : 0;
        }
    }
    const size_t per = (size_t)ds->c * ds->h * ds->w;
    float *out = um_f32(x);
#pragma omp parallel for schedule(static) if (n * (int64_t)per > 200000)
    for (int64_t i = 0; i < n; i++) {
        const int *d = draws ? draws + 3 * i : NULL;
        place_image(ds->pixels + (size_t)indices[i] * per, out + (size_t)i * per, ds->c, ds->h, ds->w,
                    d ? d[0] : 0, d ? d[1] : 0, d ? d[2] : 0);
    }
    if (y) {
        int64_t *labels = um_i64(y);
        for (int64_t i = 0; i < n; i++) labels[i] = ds->labels[indices[i]] + label_base;
    }
    um_dealloc(draws);
    return UM_OK;
}
