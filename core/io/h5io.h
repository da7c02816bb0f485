/* HDF5 checkpoints: named float32/int64 tensors stored as datasets at slash paths
 * ("model/params/block_2_0.main.conv1.weight": groups model/params, dataset name with
 * dots) and typed attributes (string, int64, double) on the root or on a group
 * ("optim/lr" is attribute lr of group /optim). Files carry format = "umbra-checkpoint",
 * version = 2 and layout = "NCHW" on the root, are written atomically (temporary name,
 * fsync, rename) in HDF5's checksummed (1.8+) format after a 512-byte digest block that is
 * verified before HDF5 reads the file (h5io_seal.h, docs/checkpoints.md), and are read by
 * h5dump and h5py. HDF5 errors become UM_EFORMAT/UM_EIO messages. */
#ifndef UM_H5IO_H
#define UM_H5IO_H
#include <stdint.h>
#include "tensor.h"

#define UM_H5_FORMAT "umbra-checkpoint"
#define UM_H5_VERSION 2        /* written; version 1 files (no digest block) still load */

typedef enum { UM_H5_STRING, UM_H5_INT, UM_H5_DOUBLE } um_h5_attr_kind;

typedef struct um_h5_attr {
    const char *name;     /* "epoch", or "group/path/name" for a group attribute */
    um_h5_attr_kind kind;
    const char *s;
    int64_t i;
    double d;
} um_h5_attr;

typedef struct um_h5_entry {
    const char *path;     /* "model/params/conv1.weight"; a leading "/" is optional */
    um_tensor *tensor;    /* any device, any strides */
} um_h5_entry;

/* Everything read from a file. Names are paths without the leading "/". */
typedef struct um_h5_contents {
    int n_tensors;
    char **names;
    um_tensor **tensors;  /* NULL entries when read without data */
    int *dtypes;          /* um_dtype of each dataset */
    int *ndims;
    int64_t (*sizes)[UM_MAXDIM];
    int n_attrs;
    um_h5_attr *attrs;    /* names and strings owned by the contents */
} um_h5_contents;

/* Write entries and attributes (plus format, version, layout) to path, atomically. A name
 * used twice, a reserved attribute name or an empty path is UM_EINVAL before anything is
 * written. Tensors are stored with their shape; ndim >= 1 datasets carry a Fletcher-32
 * checksum so that damaged data is refused on reading. */
int um_h5_save(const char *path, int n, const um_h5_entry *entries, int nattr, const um_h5_attr *attrs);

/* Read the datasets at entries[i].path into entries[i].tensor. Checks the format and
 * version attributes, then that every path exists with the tensor's dtype and shape,
 * before reading anything; the first offender is named. The tensors are only written
 * once every dataset has been read successfully. */
int um_h5_load(const char *path, int n, const um_h5_entry *entries);

/* Read the datasets whose path starts with prefix (NULL or "" = all; "optim" matches
 * "optim/..." only), with their data when with_data (as float32 for any float type and
 * int64 for any integer type), and every attribute. check_format: refuse files that are
 * not umbra checkpoints (and of another version). */
int um_h5_read(um_h5_contents **out, const char *path, const char *prefix, int with_data, int check_format);
void um_h5_contents_free(um_h5_contents *c);  /* NULL is fine */
/* The attribute called name, or NULL. */
const um_h5_attr *um_h5_find_attr(const um_h5_contents *c, const char *name);

#endif
