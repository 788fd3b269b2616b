/* Elementwise non-linearities: GELU (erf form, as PyTorch's default) and ReLU. */
#ifndef MIMAE_KERNELS_ACTIVATION_H
#define MIMAE_KERNELS_ACTIVATION_H

#include <stddef.h>

typedef enum { ACT_GELU = 0, ACT_RELU = 1 } activation_t;

/* out must not overlap inp. */
void activation_forward(activation_t act, float *out, const float *inp, size_t n);

/* dinp = dout * act'(inp); dinp may be dout itself (no other overlap). */
void activation_backward(activation_t act, float *dinp, const float *inp, const float *dout,
                         size_t n);

#endif
