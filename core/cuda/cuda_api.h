/* The CUDA backend's entry points for C code that must also link without it (CPU-only
 * builds, `make CUDA=0`): declared weak, so each is NULL there. Test before calling:
 *     const um_backend *be = um_cuda_backend ? um_cuda_backend() : NULL;
 * Most code should not need this header: um_find_backend("cuda") gives the backend, or
 * NULL when it is not compiled in or no device is present. */
#ifndef UM_CUDA_API_H
#define UM_CUDA_API_H
#include <stdint.h>
#include "tensor.h"

/* The backend, registered on first call; NULL when no CUDA device is present. */
__attribute__((weak)) const um_backend *um_cuda_backend(void);
__attribute__((weak)) int um_cuda_device_count(void);
__attribute__((weak)) const char *um_cuda_device_name(void);
/* Wait for all queued device work; a fault inside an earlier kernel is reported here. */
__attribute__((weak)) int um_cuda_synchronize(void);
/* Device bytes held by tensors, kept in the allocator's cache, and the peak in use. */
__attribute__((weak)) void um_cuda_memory(int64_t *in_use, int64_t *cached, int64_t *peak);
/* Give cached device memory back to the driver. */
__attribute__((weak)) void um_cuda_empty_cache(void);

#endif
