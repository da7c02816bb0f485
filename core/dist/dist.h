/* Data-parallel collectives for umbra (docs/distributed.md): a thin layer over MPI
 * (Open MPI, or any MPI a launcher such as mpirun or Slurm's srun starts). um_dist_init is
 * idempotent; a process not started by a launcher is one rank and never touches MPI, so a
 * plain build/umbra works without mpirun. Errors are umbra errors naming the MPI call and the
 * rank. Tensors on a device go through NCCL after um_dist_device_collectives found it, else
 * through host copies. */
#ifndef UM_DIST_H
#define UM_DIST_H
#include <stdint.h>
#include "tensor.h"

typedef enum { UM_DIST_SUM = 0, UM_DIST_MEAN = 1, UM_DIST_MAX = 2 } um_dist_op;

/* Start (or join) the job: MPI_Init_thread when a launcher started this process, else one
 * rank. Later calls do nothing. */
int um_dist_init(void);
int um_dist_initialized(void);
/* Whether this process runs under MPI (1 even for a one-rank mpirun). */
int um_dist_uses_mpi(void);
int um_dist_rank(void);        /* 0 before init */
int um_dist_size(void);        /* 1 before init */
int um_dist_local_rank(void);  /* rank among the ranks on this machine */
int um_dist_local_size(void);
int um_dist_barrier(void);

/* Parse "sum" | "mean" | "max". */
int um_dist_op_parse(const char *name, um_dist_op *op);
/* In place on a contiguous float32 or int64 tensor (any device; mean only for float32). */
int um_dist_allreduce(um_tensor *t, um_dist_op op);
/* In place on n float32 values in host memory. */
int um_dist_allreduce_f32(float *buf, int64_t n, um_dist_op op);
/* Every tensor of the list reduced, packed into one flat buffer: one collective for all
 * (float32, contiguous, one device). */
int um_dist_allreduce_many(um_tensor *const *ts, int n, um_dist_op op);
/* Root's contents into every rank's t (same shape and dtype on every rank). */
int um_dist_broadcast(um_tensor *t, int root);
/* The ranks' tensors concatenated along dimension 0 in rank order into a new tensor on t's
 * device; the first dimension may differ between ranks, the others must agree. */
int um_dist_allgather(um_tensor **out, const um_tensor *t);
/* Batch norms in training mode use the statistics of all ranks' batches (on) or their
 * own (off, the default); one rank leaves them alone. CPU tensors only. */
int um_dist_sync_batchnorm(int on);
/* One GPU per rank: before the CUDA library is loaded, make this process see only the
 * (local rank mod count)-th of the GPUs it would see (CUDA_VISIBLE_DEVICES's list, else
 * the driver's /proc/driver/nvidia/gpus), by setting CUDA_VISIBLE_DEVICES. Writes the
 * chosen device ("" when there is no GPU to choose from) into chosen. */
int um_dist_pick_local_gpu(char *chosen, size_t n);
/* Gradients reduced (summed) in buckets of at most bucket_bytes whose MPI_Iallreduce starts
 * during the backward pass, as soon as the bucket's gradients are computed (buckets.c).
 * grads: the model's gradients in the tree's order (the backward runs it in reverse);
 * extra: tensors final before the backward (the averaged batch-norm statistics), one
 * bucket started by arm. Contiguous float32 CPU tensors, the same list on every rank. */
typedef struct um_dist_buckets um_dist_buckets;
int um_dist_buckets_new(um_dist_buckets **out, um_tensor *const *grads, int n_grads, um_tensor *const *extra,
                        int n_extra, int64_t bucket_bytes);
int um_dist_buckets_count(const um_dist_buckets *d);
/* Before the backward that completes the gradients (after zero_grad and any other pass). */
int um_dist_buckets_arm(um_dist_buckets *d);
/* After it: start what the pass did not, wait for all, write the sums into the tensors;
 * *started_early: how many buckets started during the backward. */
int um_dist_buckets_finish(um_dist_buckets *d, int *started_early);
void um_dist_buckets_free(um_dist_buckets *d);   /* NULL is fine */
/* Collectives on device tensors from now on: through NCCL when every rank can load it
 * (libnccl.so.2, $UMBRA_NCCL_LIB; UMBRA_NCCL=off never, =require fails without it), else
 * through MPI on host copies. Every rank calls it (it is collective), after its device is
 * chosen. Writes which it is into how ("NCCL 2.28.9 on the device", "MPI on host copies (no
 * NCCL: ...)"). A rank whose NCCL is there but unusable (too old, an entry point missing, a
 * communicator that cannot be made) fails on every rank with the reason. */
int um_dist_device_collectives(char *how, size_t n);
/* End the whole job now with this exit code (all ranks), saying which rank asked and why. */
void um_dist_abort(int code, const char *why);

#endif
