/* Collectives on GPU tensors: NCCL when every rank can load it (core/dist/nccl_load.c),
 * else the host copies through MPI of dist.c. um_dist_device_collectives decides once, the
 * same on every rank (a rank without NCCL makes all use MPI; a rank whose NCCL is broken
 * makes all fail with its reason), and builds the communicator from an id rank 0 sends over
 * MPI. Everything runs on the default stream, ordered with umbra's own kernels. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "dist/device.h"
#include "dist/nccl.h"
#include "error.h"
#include "ops.h"

/* for tests only (a fake libnccl that reduces through MPI): route host tensors too */
static int host_too(void) {
    const char *e = getenv("UMBRA_NCCL_ON_HOST");
    return e && strcmp(e, "1") == 0;
}

int um_dist_device_route(const um_tensor *t) {
    return um_nccl_active() && (!um_backend_of(t)->is_host || host_too());
}

static int mpi_call(const char *call, int err) {
    if (err == MPI_SUCCESS) return UM_OK;
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, text, &len);
    return um_fail(UM_EIO, "%s failed on rank %d of %d: %s", call, um_dist_rank(), um_dist_size(), text);
}

int um_dist_device_collectives(char *how, size_t n) {
    if (!um_dist_initialized()) return um_fail(UM_EINVAL, "dist.device_collectives: call dist.init() first");
    if (!um_dist_uses_mpi() || um_dist_size() == 1) {
        snprintf(how, n, "one rank, no collectives");
        return UM_OK;
    }
    if (um_nccl_active()) {
        snprintf(how, n, "NCCL %s on the device", um_nccl_version());
        return UM_OK;
    }
    char why[512];
    um_nccl_state st = um_nccl_load(why, sizeof why);
    const char *want = getenv("UMBRA_NCCL");
    int required = want && strcmp(want, "require") == 0;
    /* agree: 0 every rank has it, 1 some lack it, 2 some have a broken one */
    int mine = st == UM_NCCL_LOADED ? 0 : st == UM_NCCL_ABSENT ? 1 : 2, worst = 0;
    int rc = mpi_call("MPI_Allreduce", MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (rc) return rc;
    if (worst == 2 || (worst == 1 && required)) {
        if (mine) return um_fail(UM_EDEVICE, "NCCL on rank %d: %s (UMBRA_NCCL=off reduces through MPI on host "
                                 "copies instead)", um_dist_rank(), why);
        return um_fail(UM_EDEVICE, "NCCL: another rank cannot use it (see its message)");
    }
    if (worst == 1) {
        snprintf(how, n, "MPI on host copies (no NCCL%s%s)", mine ? ": " : " on another rank", mine ? why : "");
        return UM_OK;
    }
    /* rank 0's id (or its failure) to every rank */
    struct { int rc; um_nccl_id id; } msg = {0};
    if (um_dist_rank() == 0) msg.rc = um_nccl_unique_id(&msg.id);
    rc = mpi_call("MPI_Bcast", MPI_Bcast(&msg, sizeof msg, MPI_BYTE, 0, MPI_COMM_WORLD));
    if (rc) return rc;
    if (msg.rc) return um_dist_rank() == 0 ? msg.rc : um_fail(UM_EDEVICE, "NCCL: rank 0 could not make an id");
    if ((rc = um_nccl_comm_init(um_dist_size(), &msg.id, um_dist_rank()))) return rc;
    snprintf(how, n, "NCCL %s on the device", um_nccl_version());
    return UM_OK;
}

static int nccl_type(um_dtype dt) { return dt == UM_INT64 ? UM_NCCL_INT64 : UM_NCCL_FLOAT32; }

static int reduce_flat(um_tensor *flat, um_dist_op op) {
    int rc = um_nccl_allreduce((char *)flat->storage->data + flat->offset * um_dtype_size(flat->dtype), (size_t)um_numel(flat),
                               nccl_type(flat->dtype), op == UM_DIST_MAX ? UM_NCCL_MAX : UM_NCCL_SUM);
    if (!rc && op == UM_DIST_MEAN) rc = um_binary_scalar_(UM_MUL, flat, 1.0 / um_dist_size());
    return rc;
}

int um_dist_device_allreduce(um_tensor *t, um_dist_op op) { return um_numel(t) ? reduce_flat(t, op) : UM_OK; }

int um_dist_device_allreduce_many(um_tensor *const *ts, int n, um_dist_op op) {
    int64_t total = 0;
    const um_backend *be = n ? um_backend_of(ts[0]) : NULL;
    for (int i = 0; i < n; i++) {
        if (um_backend_of(ts[i]) != be)
            return um_fail(UM_EINVAL, "dist.allreduce_grads: tensor %d is on %s, tensor 1 on %s: one device for all",
                           i + 1, um_backend_of(ts[i])->name, be->name);
        total += um_numel(ts[i]);
    }
    if (total == 0) return UM_OK;
    um_tensor *flat = NULL, *slice = NULL;
    int rc = um_tensor_new(&flat, UM_FLOAT32, 1, &total, be);
    int64_t at = 0;
    for (int i = 0; i < n && !rc; at += um_numel(ts[i]), i++) {
        if (!um_numel(ts[i])) continue;
        if (!(rc = um_narrow(&slice, flat, 0, at, um_numel(ts[i])))) rc = um_copy_(slice, ts[i]);
        um_tensor_release(slice);
        slice = NULL;
    }
    if (!rc) rc = reduce_flat(flat, op);
    at = 0;
    for (int i = 0; i < n && !rc; at += um_numel(ts[i]), i++) {
        if (!um_numel(ts[i])) continue;
        if (!(rc = um_narrow(&slice, flat, 0, at, um_numel(ts[i])))) rc = um_copy_(ts[i], slice);
        um_tensor_release(slice);
        slice = NULL;
    }
    um_tensor_release(flat);
    return rc;
}

int um_dist_device_broadcast(um_tensor *t, int root) {
    if (!um_numel(t)) return UM_OK;
    return um_nccl_broadcast((char *)t->storage->data + t->offset * um_dtype_size(t->dtype), (size_t)um_numel(t),
                             nccl_type(t->dtype), root);
}
