/* The ood kernel table of a backend (noise, attack steps); a backend without one gets an
 * empty table, so UM_OOD_CALL reports every kernel as missing. */
#include "ood/ood_ops.h"

static const struct um_ood_ops no_kernels;

const struct um_ood_ops *um_ood_kernels(const um_backend *be) {
    const struct um_ood_ops *t = be->kernels ? be->kernels("ood") : NULL;
    return t ? t : &no_kernels;
}
