/* Private to core/dist/: collectives on device tensors through NCCL (dist_device.c) once
 * um_dist_device_collectives has set up a communicator; dist.c routes tensors here. */
#ifndef UM_DIST_DEVICE_H
#define UM_DIST_DEVICE_H
#include "dist/dist.h"

/* Whether NCCL takes the collectives on t (a device tensor with a communicator set up). */
int um_dist_device_route(const um_tensor *t);
int um_dist_device_allreduce(um_tensor *t, um_dist_op op);
/* The tensors (one device, float32, contiguous) packed into one flat device buffer, one
 * ncclAllReduce, unpacked. */
int um_dist_device_allreduce_many(um_tensor *const *ts, int n, um_dist_op op);
int um_dist_device_broadcast(um_tensor *t, int root);

#endif
