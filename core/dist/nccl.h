/* Private to core/dist/: NCCL, loaded at run time (libnccl.so.2, or $UMBRA_NCCL_LIB) the way
 * core/cuda/cuda_load.c loads the CUDA backend, so that umbra builds and runs where NCCL is
 * absent. Only the handful of NCCL 2.x entry points umbra calls are declared here, with the
 * values of nccl.h (test_nccl_abi compares them with the header where it is installed). */
#ifndef UM_DIST_NCCL_H
#define UM_DIST_NCCL_H
#include <stddef.h>

#define UM_NCCL_ID_BYTES 128   /* NCCL_UNIQUE_ID_BYTES */
typedef struct { char internal[UM_NCCL_ID_BYTES]; } um_nccl_id;
enum { UM_NCCL_SUCCESS = 0, UM_NCCL_INT64 = 4, UM_NCCL_FLOAT32 = 7, UM_NCCL_SUM = 0, UM_NCCL_MAX = 2 };
/* The oldest NCCL accepted: 2.4 (ncclCommGetAsyncError). */
#define UM_NCCL_MIN_MAJOR 2
#define UM_NCCL_MIN_MINOR 4

typedef enum { UM_NCCL_ABSENT = 0, UM_NCCL_LOADED = 1, UM_NCCL_UNUSABLE = 2 } um_nccl_state;

/* Load the library once. ABSENT: not installed (or UMBRA_NCCL=off), a reason in why; UNUSABLE:
 * there but not usable (an entry point missing, a version too old): the reason in why. */
um_nccl_state um_nccl_load(char *why, size_t n);
/* "2.28.9" of the loaded library. */
const char *um_nccl_version(void);
/* Thin wrappers: UM_OK or an umbra error naming the NCCL call, its error text and, where the
 * library has ncclGetLastError, its own explanation. */
int um_nccl_unique_id(um_nccl_id *id);
int um_nccl_comm_init(int nranks, const um_nccl_id *id, int rank);
/* In place on count elements of a device buffer (dtype, op: the UM_NCCL_ values), on the
 * default stream, which orders it with umbra's kernels and copies. */
int um_nccl_allreduce(void *buf, size_t count, int dtype, int op);
int um_nccl_broadcast(void *buf, size_t count, int dtype, int root);
int um_nccl_active(void);
void um_nccl_destroy(void);

#endif
