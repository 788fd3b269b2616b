/* Two-layer MLP y = fc2(act(fc1(x))) over R rows: the projector (GELU) and
 * Q's mean and log-variance heads (ReLU). */
#ifndef MIMAE_KERNELS_MLP_H
#define MIMAE_KERNELS_MLP_H

#include "core/kernels/activation.h"
#include "core/kernels/micro_batches.h"

typedef struct {
    const float *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    int in, hidden, out;
    activation_t act;
} mlp_t;

typedef struct {
    float *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} mlp_grads_t;

/* pre [R*hidden] (before the activation) and post [R*hidden] are kept; the
 * R rows hold the micro-batches mb (NULL: one). */
void mlp_forward(const mlp_t *m, float *out, float *pre, float *post, const float *x, int R,
                 const micro_batches_t *mb);

/* dhidden [R*hidden] is scratch; dx is overwritten (NULL: not needed); the
 * parameter gradients accumulate summed over the micro-batches mb hold (linear.h). */
void mlp_backward(const mlp_t *m, mlp_grads_t *g, float *dx, float *dhidden,
                  const float *dout, const float *x, const float *pre, const float *post,
                  int R, micro_batches_t *mb);

#endif
