/* Gaussian estimate of the mutual information between two sets of paired
 * vectors (docs/METHOD.md step E3, MI statistics): I(z_i; z_k) between the
 * latents of two masks of the same images, from their joint covariance.
 *
 * a, b (n, d): row t of a and row t of b are one pair (the same image).
 * Covariances are formed in double after centring (divided by n - 1):
 *   Sa = cov(a) (d x d), Sb = cov(b) (d x d), S = cov([a b]) (2d x 2d),
 * each plus ridge * I, and
 *   I = 0.5 * (logdet Sa + logdet Sb - logdet S)      (nats)
 * with log-determinants from a Cholesky factorisation (LAPACK dpotrf):
 * logdet = 2 * sum log diag(L). For jointly Gaussian a, b this is the exact
 * mutual information; otherwise it is the MI of the Gaussian with the same
 * second moments.
 *
 * ridge >= 0 (0 allowed) regularises rank-deficient cases (n <= 2d, constant
 * or linearly dependent features). A factorisation that fails, or a pivot
 * below 1e-12 of its diagonal entry (a numerically singular matrix, e.g.
 * b == a), returns -1 with a message containing "covariance not positive
 * definite: n too small for d or features constant; raise the ridge"; so does
 * ridge == 0 with n - 1 < 2d (the joint covariance is singular by rank).
 * Bad arguments (n < 2, d < 1, ridge < 0 or not finite, non-finite data,
 * NULL pointers) also return -1 with a message. On success returns 0 and
 * stores the estimate in *mi (it may be slightly negative for independent
 * data: sampling noise); on failure *mi (if not NULL) is set to NaN.
 * Memory: O(d^2 + 256 d) doubles; time O(n d^2) (cblas_dsyrk in chunks). */
#ifndef MIMAE_OBJECTIVE_GAUSSIAN_MI_H
#define MIMAE_OBJECTIVE_GAUSSIAN_MI_H

#include <stddef.h>

int gaussian_mi(const float *a, const float *b, long n, int d, double ridge, double *mi,
                char *err, size_t errlen);

#endif
