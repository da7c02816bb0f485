/* The CUDA backend as C code sees it. The .cu files of core/cuda/ are built into a library
 * of their own, libumbra_cuda.so, linked with the CUDA runtime, cuBLAS and cuDNN;
 * core/cuda/cuda_load.c loads it the first time something asks for "cuda", so that work on the
 * CPU does not pay for those libraries (their resident memory, docs/performance.md §6,
 * and their start-up time). Most code
 * should not need this header: um_find_backend("cuda") gives the backend, or NULL when the
 * library is not built, cannot be loaded or finds no device. */
#ifndef UM_CUDA_API_H
#define UM_CUDA_API_H
#include <stdint.h>
#include "tensor.h"

/* Raised whenever this struct or what the library expects of the core changes; the loader
 * refuses a library built with another value (a stale libumbra_cuda.so beside a new core
 * would call through a table of another shape). */
#define UM_CUDA_ABI_VERSION 2

typedef struct um_cuda_api {
    /* UM_CUDA_ABI_VERSION and sizeof(um_cuda_api) of the library's build: first, so that
     * every version can read them. */
    int abi_version;
    int struct_size;
    /* The backend, registered on first call; NULL when no CUDA device is present. */
    const um_backend *(*backend)(void);
    int (*device_count)(void);
    const char *(*device_name)(void);
    /* Wait for all queued device work; a fault inside an earlier kernel is reported here. */
    int (*synchronize)(void);
    /* Device bytes held by tensors, kept in the allocator's cache, and the peak in use. */
    void (*memory)(int64_t *in_use, int64_t *cached, int64_t *peak);
    /* Give cached device memory back to the driver. */
    void (*empty_cache)(void);
    /* Why backend() is NULL: the failing CUDA call with its error name and text
     * ("cudaGetDeviceCount: cudaErrorInsufficientDriver (...)"); "" when there is a device. */
    const char *(*why_no_device)(void);
} um_cuda_api;

/* The library's entry points, loaded once; NULL when it is absent or fails to load. */
const um_cuda_api *um_cuda(void);
/* The entry points if the library has been loaded already, else NULL; never loads it
 * (synchronize, memory and empty_cache have nothing to do in a run that never asked for
 * "cuda", and loading would create a CUDA context). */
const um_cuda_api *um_cuda_if_loaded(void);
/* Why there is no "cuda" backend (the library's absence or load error, or no device);
 * NULL when there is one. */
const char *um_cuda_why_unavailable(void);

/* What libumbra_cuda.so exports for the loader. */
#define UM_CUDA_ENTRY "um_cuda_entry"
typedef const um_cuda_api *(*um_cuda_entry_fn)(void);

#endif
