/* Front end of the noise generators: checks shapes, draws the random numbers on the host
 * from the caller's generator (so a seed gives the same noise on every device) and calls
 * the backend kernels. */
#include <math.h>
#include "alloc.h"
#include "ood/ood_ops.h"
#include "backend.h"
#include "error.h"
#include "ood/noise.h"

static int need_images(const char *what, const um_tensor *x) {
    char b[128];
    if (x->dtype != UM_FLOAT32 || x->ndim != 4 || !um_is_contiguous(x))
        return um_fail(UM_EINVAL, "%s: expected a contiguous float32 NCHW batch, got %s %s", what,
                       um_dtype_name(x->dtype), um_shape_str(x, b, sizeof b));
    return UM_OK;
}

static int need_same(const char *what, const um_tensor *a, const um_tensor *b) {
    char b1[128], b2[128];
    if (!um_same_shape(a, b) || um_backend_of(a) != um_backend_of(b))
        return um_fail(UM_EINVAL, "%s: output %s (%s) and input %s (%s) must have the same size and device", what,
                       um_shape_str(a, b1, sizeof b1), um_backend_of(a)->name, um_shape_str(b, b2, sizeof b2), um_backend_of(b)->name);
    return UM_OK;
}

int um_uniform_tensor(um_tensor **out, int ndim, const int64_t *size, const um_backend *be, um_generator *g, float lo, float hi) {
    if (!be) be = um_cpu_backend();
    um_tensor *h, *d;
    int rc = um_tensor_new(&h, UM_FLOAT32, ndim, size, NULL);
    if (rc) return rc;
    um_fill_uniform(g, um_f32(h), um_numel(h), lo, hi);
    if (be == um_cpu_backend()) { *out = h; return UM_OK; }
    rc = um_to_backend(&d, h, be);
    um_tensor_release(h);
    if (!rc) *out = d;
    return rc;
}

int um_noise_uniform_(um_tensor *x, um_generator *g) {
    int rc = need_images("uniform noise", x);
    if (rc) return rc;
    um_tensor *u;
    if ((rc = um_uniform_tensor(&u, x->ndim, x->size, um_backend_of(x), g, 0, 1))) return rc;
    rc = um_copy_(x, u);
    um_tensor_release(u);
    return rc;
}

int um_noise_permute_pixels(um_tensor *out, const um_tensor *x, um_generator *g) {
    int rc;
    if ((rc = need_images("permutation noise", x)) || (rc = need_images("permutation noise", out)) ||
        (rc = need_same("permutation noise", out, x))) return rc;
    int64_t n = x->size[0], hw = x->size[2] * x->size[3], ps[2] = {n, hw};
    um_tensor *perms, *dev;
    if ((rc = um_tensor_new(&perms, UM_INT64, 2, ps, NULL))) return rc;
    for (int64_t i = 0; i < n; i++) um_rand_permutation(g, um_i64(perms) + i * hw, hw);
    if (um_backend_of(x) == um_cpu_backend()) dev = perms;
    else if ((rc = um_to_backend(&dev, perms, um_backend_of(x)))) { um_tensor_release(perms); return rc; }
    rc = UM_OOD_CALL(um_backend_of(x), permute_pixels, out, x, dev);
    if (dev != perms) um_tensor_release(dev);
    um_tensor_release(perms);
    return rc;
}

void um_gaussian_taps(float sigma, float taps[2 * UM_LOWPASS_RADIUS + 1]) {
    double w[2 * UM_LOWPASS_RADIUS + 1], s = 0;
    for (int t = -UM_LOWPASS_RADIUS; t <= UM_LOWPASS_RADIUS; t++) {
        w[t + UM_LOWPASS_RADIUS] = exp(-(double)t * t / (2.0 * sigma * sigma));
        s += w[t + UM_LOWPASS_RADIUS];
    }
    for (int i = 0; i < 2 * UM_LOWPASS_RADIUS + 1; i++) taps[i] = (float)(w[i] / s);
}

int um_noise_lowpass(um_tensor *out, const um_tensor *x, float sigma) {
    int rc;
    if ((rc = need_images("low-pass", x)) || (rc = need_images("low-pass", out)) || (rc = need_same("low-pass", out, x))) return rc;
    if (out->storage == x->storage) return um_fail(UM_EINVAL, "low-pass: the output must not share storage with the input");
    if (!(sigma > 0)) return um_fail(UM_EINVAL, "low-pass: sigma must be positive, got %g", sigma);
    if (x->size[2] < UM_LOWPASS_RADIUS + 1 || x->size[3] < UM_LOWPASS_RADIUS + 1)
        return um_fail(UM_EINVAL, "low-pass: images must be at least %dx%d for the mirror padding, got %lldx%lld",
                       UM_LOWPASS_RADIUS + 1, UM_LOWPASS_RADIUS + 1, (long long)x->size[2], (long long)x->size[3]);
    float taps[2 * UM_LOWPASS_RADIUS + 1];
    um_gaussian_taps(sigma, taps);
    return UM_OOD_CALL(um_backend_of(x), lowpass, out, x, taps, UM_LOWPASS_RADIUS);
}

int um_noise_rescale_(um_tensor *x) {
    int rc = need_images("rescale", x);
    if (rc) return rc;
    return UM_OOD_CALL(um_backend_of(x), rescale, x);
}

int um_noise_authors(um_tensor *out, const um_tensor *clean, double frac_perm, double sigma_lo,
                     double sigma_hi, um_generator *g, double *sigma_used) {
    int rc;
    if ((rc = need_images("training noise", clean)) || (rc = need_images("training noise", out)) ||
        (rc = need_same("training noise", out, clean))) return rc;
    if (out->storage == clean->storage) return um_fail(UM_EINVAL, "training noise: the output must not share storage with the clean batch");
    if (frac_perm < 0 || frac_perm > 1) return um_fail(UM_EINVAL, "training noise: frac_perm must be in [0,1], got %g", frac_perm);
    if (!(sigma_lo > 0) || sigma_hi < sigma_lo) return um_fail(UM_EINVAL, "training noise: need 0 < sigma_lo <= sigma_hi, got %g, %g", sigma_lo, sigma_hi);
    int64_t n = clean->size[0], n_perm = (int64_t)floor((double)n * frac_perm);
    um_tensor *mixed = NULL, *part_in = NULL, *part_out = NULL;
    if ((rc = um_tensor_new(&mixed, UM_FLOAT32, 4, clean->size, um_backend_of(clean)))) return rc;
    if (n_perm > 0) {
        if ((rc = um_narrow(&part_in, (um_tensor *)clean, 0, 0, n_perm)) || (rc = um_narrow(&part_out, mixed, 0, 0, n_perm)) ||
            (rc = um_noise_permute_pixels(part_out, part_in, g))) goto done;
        um_tensor_release(part_in); um_tensor_release(part_out);
        part_in = part_out = NULL;
    }
    if (n_perm < n) {
        if ((rc = um_narrow(&part_out, mixed, 0, n_perm, n - n_perm)) || (rc = um_noise_uniform_(part_out, g))) goto done;
    }
    double sigma = sigma_lo + (sigma_hi - sigma_lo) * um_rand_uniform_double(g);
    if (sigma_used) *sigma_used = sigma;
    if ((rc = um_noise_lowpass(out, mixed, (float)sigma))) goto done;
    rc = um_noise_rescale_(out);
done:
    um_tensor_release(part_in);
    um_tensor_release(part_out);
    um_tensor_release(mixed);
    return rc;
}
