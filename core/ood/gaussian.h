/* Class-conditional Gaussians with one shared covariance (the Mahalanobis OOD score):
 * class means and the precision matrix of features fitted on labelled data, on the host,
 * in double precision (OpenBLAS syrk, LAPACK Cholesky). */
#ifndef UM_GAUSSIAN_H
#define UM_GAUSSIAN_H
#include "tensor.h"

/* features: float32 (n, D) on the CPU; labels: int64 (n) in label_base .. label_base + K - 1.
 * *means = new float32 (K, D), the class means; *precision = new float32 (D, D), the inverse
 * of the maximum-likelihood covariance (divided by n) of the class-centred features. Every
 * class needs at least one example. When the covariance is singular (dead ReLU units, D >= n),
 * ridge * mean(diagonal) is added to its diagonal, ridge the first of 0, 1e-10, 1e-9, ... 1e-2
 * for which the Cholesky factorisation succeeds; *ridge (may be NULL) says which was used. */
int um_gaussian_fit(const um_tensor *features, const um_tensor *labels, int64_t num_classes, int label_base,
                    um_tensor **means, um_tensor **precision, double *ridge);

#endif
