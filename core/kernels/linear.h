/* Linear map y = x W^T + b over token-major rows, on cblas_sgemm.
 * Shapes: inp (T, in), weight (out, in) as PyTorch stores it, out (T, out).
 * Bias and residual seed the output, which sgemm then accumulates into. */
#ifndef MIMAE_KERNELS_LINEAR_H
#define MIMAE_KERNELS_LINEAR_H

#include "core/kernels/micro_batches.h"

/* The T rows hold the micro-batches mb (NULL: one); see micro_batches.h. */

/* bias may be NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int T, int in, int out_dim, const micro_batches_t *mb);

/* out = inp W^T + bias + resid; resid (T, out_dim) may be NULL, as may bias.
 * out must not alias inp or resid. */
void linear_forward_res(float *out, const float *inp, const float *weight, const float *bias,
                        const float *resid, int T, int in, int out_dim,
                        const micro_batches_t *mb);

/* Accumulates dweight += dout^T inp and dbias += column sums of dout
 * (dbias may be NULL), summed over the micro-batches in the tree;
 * overwrites dinp = dout W unless dinp is NULL. */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int T, int in, int out_dim,
                     micro_batches_t *mb);

#endif
