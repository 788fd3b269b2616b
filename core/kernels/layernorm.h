/* LayerNorm over the last dimension (C) of T token rows, eps 1e-6 as in MAE.
 * The forward keeps each row's mean and 1/std for the backward. */
#ifndef MIMAE_KERNELS_LAYERNORM_H
#define MIMAE_KERNELS_LAYERNORM_H

#include "core/kernels/micro_batches.h"

#define LAYERNORM_EPS 1e-6f

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int T, int C);

/* Accumulates into dinp, dweight and dbias (residual streams sum their
 * gradients); dweight and dbias summed over the micro-batches mb
 * hold in the tree (NULL: one). dinp must not alias dout. */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int T, int C, micro_batches_t *mb);

#endif
