/* Reading TensorFlow V2 checkpoints (tensor bundles) without TensorFlow: PREFIX.index, a
 * LevelDB table from variable names to BundleEntryProto, and PREFIX.data-00000-of-00001,
 * the raw little-endian tensor bytes. Tensors come back in TensorFlow's layout (HWIO conv
 * kernels); float32/float64 as umbra float32, int32/int64 as int64, each CRC-verified. */
#ifndef UM_TFCKPT_H
#define UM_TFCKPT_H
#include <stdint.h>
#include "tensor.h"

/* TensorFlow's DataType enum values for the types umbra reads. */
enum { UM_TF_FLOAT = 1, UM_TF_DOUBLE = 2, UM_TF_INT32 = 3, UM_TF_INT64 = 9 };

typedef struct um_tfckpt um_tfckpt;

/* prefix: the path without ".index". Reads and verifies the whole index (every block CRC,
 * the header: one shard, little endian) and checks the data shard is long enough. */
int um_tfckpt_open(um_tfckpt **out, const char *prefix);
void um_tfckpt_close(um_tfckpt *ck);            /* NULL is fine */

/* Entries are sorted by name; the header entry (empty key) is not one of them. */
int um_tfckpt_count(const um_tfckpt *ck);
/* Entry i (0-based): name (owned by ck), TensorFlow dtype, ndim and sizes
 * (UM_MAXDIM entries; any of the out pointers may be NULL). */
int um_tfckpt_entry(const um_tfckpt *ck, int i, const char **name, int *dtype, int *ndim, int64_t *sizes);
int um_tfckpt_find(const um_tfckpt *ck, const char *name);   /* index, or -1 */
/* Read a variable into a new CPU tensor (its shape; 0-d for scalars), verifying its CRC. */
int um_tfckpt_read(um_tfckpt *ck, const char *name, um_tensor **out);
const char *um_tfckpt_dtype_name(int dtype);     /* "float32", "int32", ... or "dtype(N)" */

#endif
