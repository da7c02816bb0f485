/* A stand-in for libnccl.so.2 for the tests (no GPU here): the NCCL entry points umbra
 * loads, with "device" buffers in host memory and the reductions done through MPI, so that
 * the NCCL path of core/dist/ (loading, agreement between ranks, the id rank 0 sends, the
 * flat buffer) runs under mpirun with UMBRA_NCCL_ON_HOST=1. FAKE_NCCL_VERSION sets the
 * version it reports, FAKE_NCCL_INIT_FAIL=1 makes ncclCommInitRank fail as a mismatched
 * driver does, FAKE_NCCL_LOG=1 prints each collective. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char internal[128]; } fake_id;
typedef struct { int rank, size; long calls; } fake_comm;

int ncclGetVersion(int *version) {
    const char *v = getenv("FAKE_NCCL_VERSION");
    *version = v ? atoi(v) : 22809;
    return 0;
}

int ncclGetUniqueId(fake_id *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "fake-nccl-id-%d", (int)getpid());
    return 0;
}

/* the id must be the one rank 0 made: rank 0 sends its copy over MPI to compare */
int ncclCommInitRank(fake_comm **comm, int nranks, fake_id id, int rank) {
    if (getenv("FAKE_NCCL_INIT_FAIL")) return 1;   /* ncclUnhandledCudaError */
    fake_id root = id;
    MPI_Bcast(&root, sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (memcmp(&root, &id, sizeof id) != 0 || strncmp(id.internal, "fake-nccl-id-", 13) != 0) return 4;
    *comm = calloc(1, sizeof **comm);
    if (!*comm) return 2;
    (*comm)->rank = rank;
    (*comm)->size = nranks;
    return 0;
}

int ncclCommDestroy(fake_comm *comm) {
    free(comm);
    return 0;
}

static MPI_Datatype type_of(int dt) { return dt == 4 ? MPI_INT64_T : MPI_FLOAT; }

int ncclAllReduce(const void *send, void *recv, size_t count, int dt, int op, fake_comm *comm, void *stream) {
    if (dt != 7 && dt != 4) return 4;
    if (getenv("FAKE_NCCL_LOG")) printf("fake ncclAllReduce rank %d: %zu values\n", comm->rank, count);
    comm->calls++;
    return MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, type_of(dt), op == 2 ? MPI_MAX : MPI_SUM,
                         MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : 2;
}

int ncclBroadcast(const void *send, void *recv, size_t count, int dt, int root, fake_comm *comm, void *stream) {
    if (getenv("FAKE_NCCL_LOG")) printf("fake ncclBroadcast rank %d: %zu values\n", comm->rank, count);
    if (send != recv && comm->rank == root) memcpy(recv, send, count * (dt == 4 ? 8 : 4));
    return MPI_Bcast(recv, (int)count, type_of(dt), root, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : 2;
}

const char *ncclGetErrorString(int result) {
    static const char *names[] = {"no error", "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
                                  "unhandled system error", "internal error", "invalid argument", "invalid usage"};
    return result >= 0 && result < 6 ? names[result] : "unknown result code";
}

const char *ncclGetLastError(fake_comm *comm) {
    return getenv("FAKE_NCCL_INIT_FAIL") ? "Cuda failure 'CUDA driver version is insufficient for CUDA runtime version'"
                                         : "";
}
