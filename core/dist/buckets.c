/* Bucketed gradient allreduce overlapping the backward pass (docs/distributed.md): the
 * gradients, in the backward's order (the list's reverse), are grouped into buckets of at
 * most bucket_bytes (a larger tensor is a bucket alone); while armed, the module hook
 * (um_module_set_grads_ready_hook) counts each module's gradients as the backward computes
 * them, and a bucket whose gradients are all there is packed into its host buffer and its
 * MPI_Iallreduce started at once. finish() starts what is left (gradients the hook never
 * saw), waits for all and unpacks. The extra tensors (the averaged batch-norm statistics,
 * final after the forward) are a bucket started by arm(). CPU tensors. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "dist/dist.h"
#include "error.h"
#include "nn/module.h"

typedef struct {
    int first, count;        /* entries [first, first + count) of the order */
    int pending;             /* gradients not computed yet in this pass */
    int64_t size;            /* floats */
    float *buf;
    MPI_Request req;
    int started, early;      /* started, and whether during the backward */
} bucket;

struct um_dist_buckets {
    int n, n_grads, n_buckets, armed;
    um_tensor **tensors;     /* backward order: the gradients reversed, then the extra */
    int *bucket_of;          /* per entry of tensors */
    bucket *b;
};

static int mpi_fail(const char *call, int err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, text, &len);
    return um_fail(UM_EIO, "%s failed on rank %d of %d: %s", call, um_dist_rank(), um_dist_size(), text);
}

static int active(void) { return um_dist_uses_mpi() && um_dist_size() > 1; }

static int start(bucket *bk, um_tensor **tensors, int early) {
    int64_t at = 0;
    for (int i = bk->first; i < bk->first + bk->count; i++) {
        int64_t k = um_numel(tensors[i]);
        memcpy(bk->buf + at, um_f32(tensors[i]), (size_t)k * sizeof(float));
        at += k;
    }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, bk->buf, (int)bk->size, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &bk->req);
    if (rc != MPI_SUCCESS) return mpi_fail("MPI_Iallreduce", rc);
    bk->started = 1;
    bk->early = early;
    return UM_OK;
}

/* a module's gradients are computed: count them off; start the buckets they complete */
static int on_grads(um_module *m, void *ctx) {
    um_dist_buckets *d = ctx;
    for (int p = 0; p < m->n_params; p++)
        for (int i = 0; i < d->n_grads; i++) {
            if (d->tensors[i] != m->grads[p]) continue;
            bucket *bk = &d->b[d->bucket_of[i]];
            if (bk->pending > 0 && --bk->pending == 0 && !bk->started) {
                int rc = start(bk, d->tensors, 1);
                if (rc) return rc;
            }
        }
    /* Open MPI progresses non-blocking collectives inside MPI calls: give it one */
    int flag = 0;
    for (int k = 0; k < d->n_buckets; k++)
        if (d->b[k].started) MPI_Test(&d->b[k].req, &flag, MPI_STATUS_IGNORE);
    return UM_OK;
}

int um_dist_buckets_new(um_dist_buckets **out, um_tensor *const *grads, int n_grads, um_tensor *const *extra,
                        int n_extra, int64_t bucket_bytes) {
    int n = n_grads + n_extra;
    for (int i = 0; i < n; i++) {
        const um_tensor *t = i < n_grads ? grads[i] : extra[i - n_grads];
        if (t->dtype != UM_FLOAT32 || !um_is_contiguous(t) || !um_backend_of(t)->is_host)
            return um_fail(UM_EINVAL, "dist.buckets: tensor %d must be a contiguous float32 CPU tensor, got %s on %s%s",
                           i + 1, um_dtype_name(t->dtype), um_backend_of(t)->name,
                           um_is_contiguous(t) ? "" : " (strided)");
        if (um_numel(t) > INT_MAX)
            return um_fail(UM_EINVAL, "dist.buckets: tensor %d has %lld values, more than MPI's int count", i + 1,
                           (long long)um_numel(t));
    }
    if (bucket_bytes < 4) return um_fail(UM_EINVAL, "dist.buckets: bucket size must be >= 4 bytes, got %lld",
                                         (long long)bucket_bytes);
    um_dist_buckets *d = um_alloc(sizeof *d);
    if (!d) return um_fail(UM_ENOMEM, "dist.buckets: out of memory");
    memset(d, 0, sizeof *d);
    d->n_grads = n_grads;
    d->tensors = um_alloc(sizeof(um_tensor *) * (size_t)(n ? n : 1));
    d->bucket_of = um_alloc(sizeof(int) * (size_t)(n ? n : 1));
    d->b = um_alloc(sizeof(bucket) * (size_t)(n ? n : 1));
    if (!d->tensors || !d->bucket_of || !d->b) {
        um_dist_buckets_free(d);
        return um_fail(UM_ENOMEM, "dist.buckets: out of memory");
    }
    memset(d->b, 0, sizeof(bucket) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        d->tensors[i] = i < n_grads ? grads[n_grads - 1 - i] : extra[i - n_grads];
        um_tensor_retain(d->tensors[i]);
    }
    d->n = n;   /* from here on, free releases them */
    /* the gradients in buckets of at most bucket_bytes; the extra tensors one bucket */
    for (int i = 0; i < n; i++) {
        int64_t k = um_numel(d->tensors[i]);
        bucket *cur = d->n_buckets ? &d->b[d->n_buckets - 1] : NULL;
        int boundary = i == n_grads;   /* the extra tensors start their own */
        if (!cur || boundary || (i < n_grads && (cur->size + k) * 4 > bucket_bytes && cur->count > 0) ||
            cur->size + k > INT_MAX) {
            cur = &d->b[d->n_buckets++];
            cur->first = i;
        }
        cur->count++;
        cur->size += k;
        d->bucket_of[i] = d->n_buckets - 1;
    }
    for (int k = 0; k < d->n_buckets; k++) {
        d->b[k].req = MPI_REQUEST_NULL;
        d->b[k].buf = um_alloc((size_t)(d->b[k].size ? d->b[k].size : 1) * sizeof(float));
        if (!d->b[k].buf) {
            um_dist_buckets_free(d);
            return um_fail(UM_ENOMEM, "dist.buckets: cannot allocate a bucket of %lld floats", (long long)d->b[k].size);
        }
    }
    *out = d;
    return UM_OK;
}

int um_dist_buckets_count(const um_dist_buckets *d) { return d->n_buckets; }

int um_dist_buckets_arm(um_dist_buckets *d) {
    if (d->armed) return um_fail(UM_EINVAL, "dist.buckets: arm() twice without finish()");
    if (!active()) return UM_OK;
    for (int k = 0; k < d->n_buckets; k++) {
        bucket *bk = &d->b[k];
        bk->started = bk->early = 0;
        bk->pending = bk->first < d->n_grads ? bk->count : 0;
    }
    d->armed = 1;
    um_module_set_grads_ready_hook(on_grads, d);
    /* the extra tensors (statistics of the forward) are final already */
    for (int k = 0; k < d->n_buckets; k++)
        if (d->b[k].first >= d->n_grads) {
            int rc = start(&d->b[k], d->tensors, 0);
            if (rc) return rc;
        }
    return UM_OK;
}

int um_dist_buckets_finish(um_dist_buckets *d, int *started_early) {
    if (started_early) *started_early = 0;
    if (!active()) return UM_OK;
    if (!d->armed) return um_fail(UM_EINVAL, "dist.buckets: finish() without arm()");
    um_module_set_grads_ready_hook(NULL, NULL);
    d->armed = 0;
    int rc = UM_OK;
    /* gradients the hook did not see (a module outside the tree, a pass without them) */
    for (int k = 0; k < d->n_buckets && !rc; k++)
        if (!d->b[k].started) rc = start(&d->b[k], d->tensors, 0);
    for (int k = 0; k < d->n_buckets; k++) {
        bucket *bk = &d->b[k];
        if (!bk->started) continue;
        int err = MPI_Wait(&bk->req, MPI_STATUS_IGNORE);
        bk->started = 0;
        if (err != MPI_SUCCESS && !rc) rc = mpi_fail("MPI_Wait (MPI_Iallreduce)", err);
        if (rc) continue;
        int64_t at = 0;
        for (int i = bk->first; i < bk->first + bk->count; i++) {
            int64_t n = um_numel(d->tensors[i]);
            memcpy(um_f32(d->tensors[i]), bk->buf + at, (size_t)n * sizeof(float));
            at += n;
        }
        if (started_early) *started_early += bk->early;
    }
    return rc;
}

void um_dist_buckets_free(um_dist_buckets *d) {
    if (!d) return;
    if (d->armed) um_module_set_grads_ready_hook(NULL, NULL);
    for (int i = 0; d->tensors && i < d->n; i++) um_tensor_release(d->tensors[i]);
    /* freed while armed: a failed step on its way out. Waiting could hang (the other ranks
     * may never join), and MPI may still write the buffers of started buckets: those stay. */
    for (int k = 0; d->b && k < d->n_buckets; k++)
        if (!(d->armed && d->b[k].started)) um_dealloc(d->b[k].buf);
    um_dealloc(d->tensors);
    um_dealloc(d->bucket_of);
    um_dealloc(d->b);
    um_dealloc(d);
}
