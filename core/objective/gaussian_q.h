/* CLUB terms (docs/METHOD.md steps 7-8), Gaussian q(z|x) = N(mu, exp(logvar)).
 *
 * club_min_loss: the upper bound L_min that the encoder minimises. mu and
 * logvar are constants here (no gradient reaches Q). Candidates are given as
 * a plain array like InfoNCE's: zc (Bg*N, D) image-major; this process's
 * images are rows offset*N .. ; mu/logvar (Bl*N, D) are this process's. For
 * local image b and mask j, with M contrast latents:
 *   l = -0.5 |z_bj - mu_bj|^2_w + (1/M) sum_c 0.5 |z_c - mu_bj|^2_w,
 *   w = exp(-logvar_bj); contrast c = the N masks of image b (CLUB_CONTRAST_MASKS)
 *   or mask j of every image of the global batch (CLUB_CONTRAST_BATCH).
 * Returns sum / (Bg*N); dzc accumulates grad_scale * dL/dzc.
 *
 * q_nll_loss: L_q, Q's Gaussian negative log-likelihood of the detached
 * latents, 0.5 sum_d [(z-mu)^2 exp(-logvar) + logvar + log 2pi], summed over
 * the R local rows / norm_rows. dmu and dlogvar are overwritten. */
#ifndef MIMAE_OBJECTIVE_GAUSSIAN_Q_H
#define MIMAE_OBJECTIVE_GAUSSIAN_Q_H

double club_min_loss(float *dzc, const float *zc, const float *mu, const float *logvar,
                     int N, int Bg, int offset, int Bl, int D, int contrast, float grad_scale);

double q_nll_loss(float *dmu, float *dlogvar, const float *z, const float *mu,
                  const float *logvar, int R, int D, double norm_rows, float grad_scale);

#endif
