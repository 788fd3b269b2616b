#include "core/kernels/mlp.h"

#include <stddef.h>

#include "core/kernels/linear.h"

void mlp_forward(const mlp_t *m, float *out, float *pre, float *post, const float *x, int R,
                 const micro_batches_t *mb)
{
    linear_forward(pre, x, m->fc1_w, m->fc1_b, R, m->in, m->hidden, mb);
    activation_forward(m->act, post, pre, (size_t)R * m->hidden);
    linear_forward(out, post, m->fc2_w, m->fc2_b, R, m->hidden, m->out, mb);
}

void mlp_backward(const mlp_t *m, mlp_grads_t *g, float *dx, float *dhidden,
                  const float *dout, const float *x, const float *pre, const float *post,
                  int R, micro_batches_t *mb)
{
    linear_backward(dhidden, g->fc2_w, g->fc2_b, dout, post, m->fc2_w, R, m->hidden, m->out, mb);
    activation_backward(m->act, dhidden, pre, dhidden, (size_t)R * m->hidden);
    linear_backward(dx, g->fc1_w, g->fc1_b, dhidden, x, m->fc1_w, R, m->in, m->hidden, mb);
}
