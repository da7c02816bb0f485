/* Storage and tensors: a refcounted buffer on one device, and strided views of it.
 * Sizes and strides are int64, in elements; dimensions count from 0 in C.
 * Constructors return a new reference in *out; um_tensor_release drops one. */
#ifndef UM_TENSOR_H
#define UM_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#define UM_MAXDIM 6

typedef enum { UM_FLOAT32 = 0, UM_INT64 = 1 } um_dtype;

typedef struct um_backend um_backend;

typedef struct um_storage {
    void *data;
    size_t bytes;
    const um_backend *backend;
    int refcount;
} um_storage;

typedef struct um_tensor {
    um_storage *storage;
    int64_t offset;                 /* in elements */
    int ndim;                       /* 0 .. UM_MAXDIM; 0 = scalar */
    int64_t size[UM_MAXDIM];
    int64_t stride[UM_MAXDIM];
    um_dtype dtype;
    int refcount;
} um_tensor;

size_t um_dtype_size(um_dtype dt);
const char *um_dtype_name(um_dtype dt);
const um_backend *um_cpu_backend(void);

/* New contiguous tensor (uninitialised / zero) on a backend (NULL = CPU). */
int um_tensor_new(um_tensor **out, um_dtype dt, int ndim, const int64_t *size, const um_backend *be);
int um_tensor_zeros(um_tensor **out, um_dtype dt, int ndim, const int64_t *size, const um_backend *be);
/* Make *buf a contiguous tensor of this shape, dtype and device: *buf itself, reshaped,
 * when nobody else holds it and its storage is large enough (for module buffers: no
 * allocation once warm, also when batch sizes alternate), else a new tensor. */
int um_tensor_ensure(um_tensor **buf, um_dtype dt, int ndim, const int64_t *size, const um_backend *be);
void um_tensor_retain(um_tensor *t);
void um_tensor_release(um_tensor *t);    /* NULL is fine */

int64_t um_numel(const um_tensor *t);
int um_is_contiguous(const um_tensor *t);
int um_same_shape(const um_tensor *a, const um_tensor *b);
/* Pointer to the first element (CPU or device address). */
static inline float *um_f32(const um_tensor *t) { return (float *)t->storage->data + t->offset; }
static inline int64_t *um_i64(const um_tensor *t) { return (int64_t *)t->storage->data + t->offset; }
static inline const um_backend *um_backend_of(const um_tensor *t) { return t->storage->backend; }
/* "3x4" style shape text into buf (for error messages). */
const char *um_shape_str(const um_tensor *t, char *buf, size_t n);
const char *um_sizes_str(int ndim, const int64_t *size, char *buf, size_t n);

/* Views: share storage. */
int um_view(um_tensor **out, um_tensor *t, int ndim, const int64_t *size); /* contiguous t; one size may be -1 */
int um_reshape(um_tensor **out, um_tensor *t, int ndim, const int64_t *size); /* view, or copy if not contiguous */
int um_narrow(um_tensor **out, um_tensor *t, int dim, int64_t start, int64_t length);
int um_select(um_tensor **out, um_tensor *t, int dim, int64_t index);
int um_transpose(um_tensor **out, um_tensor *t, int d0, int d1);
int um_permute(um_tensor **out, um_tensor *t, const int *perm);
int um_unsqueeze(um_tensor **out, um_tensor *t, int dim);
int um_squeeze(um_tensor **out, um_tensor *t, int dim); /* dim < 0: every size-1 dimension */

/* Copies. */
int um_contiguous(um_tensor **out, um_tensor *t);   /* new reference to t itself if contiguous */
int um_clone(um_tensor **out, const um_tensor *t);
int um_copy_(um_tensor *dst, const um_tensor *src);  /* same shape (or same numel, both contiguous), same dtype */
int um_fill_(um_tensor *t, double value);
int um_cat(um_tensor **out, int n, um_tensor *const *ts, int dim);
int um_to_dtype(um_tensor **out, const um_tensor *t, um_dtype dt);
int um_to_backend(um_tensor **out, const um_tensor *t, const um_backend *be);

/* Element read on CPU tensors (index has t->ndim entries). */
double um_get(const um_tensor *t, const int64_t *index);

#endif
