/* Private helpers shared by h5io.c (writing) and h5io_read.c (reading): quieting the
 * HDF5 error printer, turning the HDF5 error stack into one line, string copies through
 * the counting allocator, and group paths created or checked one component at a time. */
#ifndef UM_H5IO_UTIL_H
#define UM_H5IO_UTIL_H
#include <hdf5.h>

/* HDF5 prints its error stack to stderr by default; the core reports through um_fail. */
typedef struct { H5E_auto2_t func; void *data; } um_h5_quiet;
void um_h5_quiet_begin(um_h5_quiet *q);
void um_h5_quiet_end(const um_h5_quiet *q);

/* "; HDF5: <innermost message>" from the current error stack (then cleared), or "". */
const char *um_h5_reason(char *buf, size_t n);

char *um_h5_strdup(const char *s);   /* um_alloc'ed copy, NULL on failure (message set) */

/* Whether the object at path (relative to loc, components separated by '/') exists,
 * checking each component so that a missing group is not an HDF5 error: 1, 0 or < 0. */
int um_h5_path_exists(hid_t loc, const char *path);

#endif
