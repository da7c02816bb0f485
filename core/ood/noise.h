/* Noise generators for CEDA/ACET (docs/method.md §3): uniform noise, pixel-permutation noise,
 * the 15x15 Gaussian low-pass with symmetric mirror padding, per-image contrast rescale,
 * and the authors' training-noise recipe composed from them. Images are NCHW float32. */
#ifndef UM_NOISE_H
#define UM_NOISE_H
#include "rng.h"
#include "tensor.h"

#define UM_LOWPASS_RADIUS 7   /* taps at -7..7: a 15x15 kernel */

/* A new tensor on be filled with U[lo,hi), drawn on the host from g so that every device
 * gets the same numbers for a seed. */
int um_uniform_tensor(um_tensor **out, int ndim, const int64_t *size, const um_backend *be, um_generator *g, float lo, float hi);

/* x <- U[0,1] i.i.d. */
int um_noise_uniform_(um_tensor *x, um_generator *g);
/* out <- each image of x with its H*W pixel locations permuted (colour vectors kept);
 * one permutation per image. out may be x. */
int um_noise_permute_pixels(um_tensor *out, const um_tensor *x, um_generator *g);
/* The normalised 1-D taps of N(0, sigma) at -7..7 (the 2-D kernel is their outer product). */
void um_gaussian_taps(float sigma, float taps[2 * UM_LOWPASS_RADIUS + 1]);
/* out <- x convolved per channel with the 15x15 Gaussian of std sigma, the image being
 * mirror-padded (SYMMETRIC) so borders see reflected pixels, then cropped back. out != x. */
int um_noise_lowpass(um_tensor *out, const um_tensor *x, float sigma);
/* Each image rescaled to min 0, max 1 over all its pixels and channels (a constant image is
 * left as it is instead of dividing by zero). */
int um_noise_rescale_(um_tensor *x);
/* The authors' recipe: the first floor(N * frac_perm) rows are pixel-permuted copies of
 * `clean`, the rest uniform noise; one sigma ~ U[sigma_lo, sigma_hi] for the batch (returned
 * in *sigma_used if not NULL); low-pass; rescale. out has clean's shape. */
int um_noise_authors(um_tensor *out, const um_tensor *clean, double frac_perm, double sigma_lo,
                     double sigma_hi, um_generator *g, double *sigma_used);

#endif
