/* um_dist_*: MPI behind umbra's error convention. A process that no launcher started
 * (no OMPI_/PMI_/PMIX_ rank in its environment) is one rank and never initialises MPI,
 * so a plain run pays nothing but the linked library. Under MPI, errors return (not
 * abort) and become umbra errors naming the call and the rank; the process's exit status
 * decides at exit between MPI_Finalize (0) and MPI_Abort of the whole job (anything else),
 * so that one failing rank stops all instead of leaving them blocked in a collective. */
#include "dist/dist.h"
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "dist/device.h"
#include "dist/nccl.h"
#include "nn/layers.h"

static struct {
    int initialized, mpi, rank, size, local_rank, local_size;
    MPI_Comm local;
} g = {0, 0, 0, 1, 0, 1, MPI_COMM_NULL};

static int launched_by_mpi(void) {
    const char *force = getenv("UMBRA_DIST");
    if (force && strcmp(force, "none") == 0) return 0;
    if (force && strcmp(force, "mpi") == 0) return 1;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK");
}

static int mpi_fail(const char *call, int err) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, text, &len);
    return um_fail(UM_EIO, "%s failed on rank %d of %d: %s", call, g.rank, g.size, text);
}

#define MPI_CHECK(call, expr)                     \
    do {                                          \
        int mpi_rc_ = (expr);                     \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(call, mpi_rc_); \
    } while (0)

/* Exit status 0: leave MPI politely. Anything else (an error in a script, os.exit(1), a
 * failed check) ends every rank now, naming this one: the others may be waiting in a
 * collective this rank will never join. */
static void at_exit(int status, void *unused) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (status != 0) {
        fprintf(stderr, "umbra: rank %d of %d exits with status %d; stopping all ranks\n", g.rank, g.size, status);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    um_nccl_destroy();
    if (g.local != MPI_COMM_NULL) MPI_Comm_free(&g.local);
    MPI_Finalize();
}

int um_dist_init(void) {
    if (g.initialized) return UM_OK;
    if (!launched_by_mpi()) {
        g.initialized = 1;
        return UM_OK;
    }
    int already = 0, provided = 0;
    MPI_Initialized(&already);
    if (!already) MPI_CHECK("MPI_Init_thread", MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    g.mpi = 1;
    MPI_CHECK("MPI_Comm_rank", MPI_Comm_rank(MPI_COMM_WORLD, &g.rank));
    MPI_CHECK("MPI_Comm_size", MPI_Comm_size(MPI_COMM_WORLD, &g.size));
    MPI_CHECK("MPI_Comm_split_type",
              MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &g.local));
    MPI_CHECK("MPI_Comm_rank", MPI_Comm_rank(g.local, &g.local_rank));
    MPI_CHECK("MPI_Comm_size", MPI_Comm_size(g.local, &g.local_size));
    if (!already) on_exit(at_exit, NULL);
    g.initialized = 1;
    return UM_OK;
}

int um_dist_initialized(void) { return g.initialized; }
int um_dist_uses_mpi(void) { return g.mpi; }
int um_dist_rank(void) { return g.rank; }
int um_dist_size(void) { return g.size; }
int um_dist_local_rank(void) { return g.local_rank; }
int um_dist_local_size(void) { return g.local_size; }

static int need_init(const char *what) {
    if (!g.initialized) return um_fail(UM_EINVAL, "%s: call dist.init() first", what);
    return UM_OK;
}

int um_dist_barrier(void) {
    int rc = need_init("dist.barrier");
    if (rc || !g.mpi) return rc;
    MPI_CHECK("MPI_Barrier", MPI_Barrier(MPI_COMM_WORLD));
    return UM_OK;
}

int um_dist_op_parse(const char *name, um_dist_op *op) {
    static const char *names[] = {"sum", "mean", "max"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *op = (um_dist_op)i;
            return UM_OK;
        }
    return um_fail(UM_EINVAL, "dist: reduction must be 'sum', 'mean' or 'max', got '%s'", name ? name : "(none)");
}

static MPI_Datatype mpi_type(um_dtype dt) { return dt == UM_INT64 ? MPI_INT64_T : MPI_FLOAT; }

/* In place on n host elements of dtype dt. */
static int reduce_host(void *buf, int64_t n, um_dtype dt, um_dist_op op) {
    if (!g.mpi || n == 0) return UM_OK;
    MPI_Op mop = op == UM_DIST_MAX ? MPI_MAX : MPI_SUM;
    /* MPI counts are int: large buffers go in pieces */
    const int64_t piece = (int64_t)1 << 30;
    char *p = buf;
    for (int64_t done = 0; done < n; done += piece) {
        int count = (int)(n - done < piece ? n - done : piece);
        MPI_CHECK("MPI_Allreduce", MPI_Allreduce(MPI_IN_PLACE, p + done * um_dtype_size(dt), count, mpi_type(dt), mop,
                                                 MPI_COMM_WORLD));
    }
    if (op == UM_DIST_MEAN) {
        float *f = buf, inv = 1.0f / (float)g.size;
        for (int64_t i = 0; i < n; i++) f[i] *= inv;
    }
    return UM_OK;
}

int um_dist_allreduce_f32(float *buf, int64_t n, um_dist_op op) {
    int rc = need_init("dist.allreduce");
    if (rc) return rc;
    return reduce_host(buf, n, UM_FLOAT32, op);
}

static int check_reducible(const um_tensor *t, um_dist_op op, const char *who) {
    char s[64];
    if (!um_is_contiguous(t))
        return um_fail(UM_EINVAL, "%s: expected a contiguous tensor, got a strided view %s (use :contiguous())", who,
                       um_shape_str(t, s, sizeof s));
    if (op == UM_DIST_MEAN && t->dtype != UM_FLOAT32)
        return um_fail(UM_EINVAL, "%s: 'mean' needs a float32 tensor, got %s", who, um_dtype_name(t->dtype));
    return UM_OK;
}

/* Run f on a host copy of t's bytes when t lives on a device, then copy back. */
static int on_host(um_tensor *t, int (*f)(void *buf, int64_t n, um_dtype dt, int arg), int arg, int write_back) {
    const um_backend *be = um_backend_of(t);
    int64_t n = um_numel(t);
    if (be->is_host) return f(um_f32(t), n, t->dtype, arg);
    size_t bytes = (size_t)n * um_dtype_size(t->dtype);
    void *h = um_alloc(bytes ? bytes : 1);
    if (!h) return um_fail(UM_ENOMEM, "dist: cannot allocate %zu bytes for a host copy", bytes);
    int rc = be->to_host(h, (char *)t->storage->data + t->offset * um_dtype_size(t->dtype), bytes);
    if (!rc) rc = f(h, n, t->dtype, arg);
    if (!rc && write_back) rc = be->from_host((char *)t->storage->data + t->offset * um_dtype_size(t->dtype), h, bytes);
    um_dealloc(h);
    return rc;
}

static int reduce_cb(void *buf, int64_t n, um_dtype dt, int op) { return reduce_host(buf, n, dt, (um_dist_op)op); }

int um_dist_allreduce(um_tensor *t, um_dist_op op) {
    int rc = need_init("dist.allreduce");
    if (!rc) rc = check_reducible(t, op, "dist.allreduce");
    if (rc || !g.mpi) return rc;
    if (um_dist_device_route(t)) return um_dist_device_allreduce(t, op);
    return on_host(t, reduce_cb, (int)op, 1);
}

int um_dist_allreduce_many(um_tensor *const *ts, int n, um_dist_op op) {
    int rc = need_init("dist.allreduce_grads");
    if (rc) return rc;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ts[i]->dtype != UM_FLOAT32)
            return um_fail(UM_EINVAL, "dist.allreduce_grads: tensor %d is %s, expected float32", i + 1,
                           um_dtype_name(ts[i]->dtype));
        if ((rc = check_reducible(ts[i], op, "dist.allreduce_grads"))) return rc;
        total += um_numel(ts[i]);
    }
    if (!g.mpi || total == 0) return UM_OK;
    if (um_dist_device_route(ts[0])) return um_dist_device_allreduce_many(ts, n, op);
    float *flat = um_alloc((size_t)total * sizeof(float));
    if (!flat) return um_fail(UM_ENOMEM, "dist.allreduce_grads: cannot allocate %lld floats", (long long)total);
    int64_t at = 0;
    for (int i = 0; i < n && !rc; i++) {
        const um_backend *be = um_backend_of(ts[i]);
        int64_t k = um_numel(ts[i]);
        if (be->is_host) memcpy(flat + at, um_f32(ts[i]), (size_t)k * sizeof(float));
        else rc = be->to_host(flat + at, um_f32(ts[i]), (size_t)k * sizeof(float));
        at += k;
    }
    if (!rc) rc = reduce_host(flat, total, UM_FLOAT32, op);
    at = 0;
    for (int i = 0; i < n && !rc; i++) {
        const um_backend *be = um_backend_of(ts[i]);
        int64_t k = um_numel(ts[i]);
        if (be->is_host) memcpy(um_f32(ts[i]), flat + at, (size_t)k * sizeof(float));
        else rc = be->from_host(um_f32(ts[i]), flat + at, (size_t)k * sizeof(float));
        at += k;
    }
    um_dealloc(flat);
    return rc;
}

static int bcast_cb(void *buf, int64_t n, um_dtype dt, int root) {
    const int64_t piece = (int64_t)1 << 30;
    char *p = buf;
    for (int64_t done = 0; done < n; done += piece) {
        int count = (int)(n - done < piece ? n - done : piece);
        MPI_CHECK("MPI_Bcast", MPI_Bcast(p + done * um_dtype_size(dt), count, mpi_type(dt), root, MPI_COMM_WORLD));
    }
    return UM_OK;
}

int um_dist_broadcast(um_tensor *t, int root) {
    int rc = need_init("dist.broadcast");
    if (rc) return rc;
    if (root < 0 || root >= g.size)
        return um_fail(UM_EINVAL, "dist.broadcast: root must be a rank in 0..%d, got %d", g.size - 1, root);
    if (!um_is_contiguous(t)) return um_fail(UM_EINVAL, "dist.broadcast: expected a contiguous tensor");
    /* every rank must send or expect the same number of elements, or MPI truncates */
    int64_t n = um_numel(t), n_root = n;
    if (g.mpi) MPI_CHECK("MPI_Bcast", MPI_Bcast(&n_root, 1, MPI_INT64_T, root, MPI_COMM_WORLD));
    if (n_root != n)
        return um_fail(UM_EINVAL, "dist.broadcast: rank %d holds %lld elements, root %d sends %lld", g.rank,
                       (long long)n, root, (long long)n_root);
    if (!g.mpi) return UM_OK;
    if (um_dist_device_route(t)) return um_dist_device_broadcast(t, root);
    return on_host(t, bcast_cb, root, g.rank != root);
}

int um_dist_allgather(um_tensor **out, const um_tensor *t) {
    int rc = need_init("dist.allgather");
    if (rc) return rc;
    char s[64];
    if (t->ndim < 1) return um_fail(UM_EINVAL, "dist.allgather: expected a tensor with at least one dimension, got a scalar");
    if (!um_is_contiguous(t)) return um_fail(UM_EINVAL, "dist.allgather: expected a contiguous tensor");
    if (!g.mpi) return um_clone(out, t);
    /* every rank's shape, to check the trailing dimensions and size the result */
    enum { W = UM_MAXDIM + 2 };
    int64_t mine[W] = {t->ndim, (int64_t)t->dtype};
    for (int d = 0; d < t->ndim; d++) mine[2 + d] = t->size[d];
    int64_t *all = um_alloc((size_t)g.size * W * sizeof(int64_t));
    int *counts = um_alloc((size_t)g.size * 2 * sizeof(int));
    um_tensor *host = NULL, *result = NULL;
    if (!all || !counts) {
        rc = um_fail(UM_ENOMEM, "dist.allgather: cannot allocate the shape table");
        goto done;
    }
    int mpi_rc = MPI_Allgather(mine, W, MPI_INT64_T, all, W, MPI_INT64_T, MPI_COMM_WORLD);
    if (mpi_rc != MPI_SUCCESS) {
        rc = mpi_fail("MPI_Allgather", mpi_rc);
        goto done;
    }
    int64_t rows = 0, row_elems = 1, total = 0;
    for (int d = 1; d < t->ndim; d++) row_elems *= t->size[d];
    for (int r = 0; r < g.size; r++) {
        const int64_t *o = all + (size_t)r * W;
        int same = o[0] == mine[0] && o[1] == mine[1];
        for (int d = 1; same && d < t->ndim; d++) same = o[2 + d] == mine[2 + d];
        if (!same) {
            rc = um_fail(UM_EINVAL, "dist.allgather: rank %d has %s %s, rank %d has a tensor of %lld dimensions (%s) "
                         "whose sizes after the first differ", g.rank, um_dtype_name(t->dtype), um_shape_str(t, s, sizeof s),
                         r, (long long)o[0], um_dtype_name((um_dtype)o[1]));
            goto done;
        }
        rows += o[2];
        total += o[2] * row_elems;
        if (total > INT32_MAX) {
            rc = um_fail(UM_EINVAL, "dist.allgather: %lld elements in all exceed MPI's int counts", (long long)total);
            goto done;
        }
    }
    int *displs = counts + g.size, at = 0;
    for (int r = 0; r < g.size; r++) {
        counts[r] = (int)(all[(size_t)r * W + 2] * row_elems);
        displs[r] = at;
        at += counts[r];
    }
    int64_t size[UM_MAXDIM];
    memcpy(size, t->size, sizeof size);
    size[0] = rows;
    const um_backend *be = um_backend_of(t);
    rc = um_tensor_new(&host, t->dtype, t->ndim, size, NULL);
    if (rc) goto done;
    um_tensor *src = NULL;
    if (!be->is_host && (rc = um_to_backend(&src, t, NULL))) goto done;
    mpi_rc = MPI_Allgatherv(src ? um_f32(src) : um_f32(t), counts[g.rank], mpi_type(t->dtype), host->storage->data, counts,
                            displs, mpi_type(t->dtype), MPI_COMM_WORLD);
    um_tensor_release(src);
    if (mpi_rc != MPI_SUCCESS) {
        rc = mpi_fail("MPI_Allgatherv", mpi_rc);
        goto done;
    }
    if (be->is_host) {
        *out = host;
        host = NULL;
    } else if (!(rc = um_to_backend(&result, host, be))) {
        *out = result;
    }
done:
    um_tensor_release(host);
    um_dealloc(all);
    um_dealloc(counts);
    return rc;
}

static int bn_reduce(float *buf, int64_t n, void *ctx) { return reduce_host(buf, n, UM_FLOAT32, UM_DIST_SUM); }

int um_dist_sync_batchnorm(int on) {
    int rc = need_init("dist.sync_batchnorm");
    if (rc) return rc;
    um_batchnorm_set_reducer(on && g.mpi && g.size > 1 ? bn_reduce : NULL, NULL);
    return UM_OK;
}

int um_dist_pick_local_gpu(char *chosen, size_t n) {
    int rc = need_init("dist.pick_local_gpu");
    if (rc) return rc;
    char ids[64][32];
    int count = 0;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (visible) {
        for (const char *p = visible; *p && count < 64;) {
            size_t len = strcspn(p, ",");
            if (len > 0 && len < sizeof ids[0]) snprintf(ids[count++], sizeof ids[0], "%.*s", (int)len, p);
            p += len + (p[len] == ',');
        }
    } else {
        DIR *d = opendir("/proc/driver/nvidia/gpus");
        for (struct dirent *e; d && (e = readdir(d)) && count < 64;)
            if (e->d_name[0] != '.') snprintf(ids[count], sizeof ids[0], "%d", count), count++;
        if (d) closedir(d);
    }
    snprintf(chosen, n, "%s", count ? ids[g.local_rank % count] : "");
    if (count) setenv("CUDA_VISIBLE_DEVICES", chosen, 1);
    return UM_OK;
}

void um_dist_abort(int code, const char *why) {
    fprintf(stderr, "umbra: rank %d of %d stops the job: %s\n", g.rank, g.size, why ? why : "(no reason given)");
    fflush(stderr);
    if (g.mpi) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);
}
