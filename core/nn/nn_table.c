/* The nn kernel table of a backend, asked of the backend once per call site; a backend
 * without one gets an empty table, so UM_NN_CALL reports every kernel as missing. */
#include "nn/nn_ops.h"

static const struct um_nn_ops no_kernels;

const struct um_nn_ops *um_nn_kernels(const um_backend *be) {
    const struct um_nn_ops *t = be->kernels ? be->kernels("nn") : NULL;
    return t ? t : &no_kernels;
}
