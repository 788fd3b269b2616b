/* Linear map y = x W^T + b over token-major rows, on cblas_sgemm.
 * Shapes: inp (T, in), weight (out, in) as PyTorch stores it, out (T, out). */
#ifndef MIMAE_LINEAR_H
#define MIMAE_LINEAR_H

/* bias may be NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int T, int in, int out_dim);

/* Accumulates dweight += dout^T inp and dbias += column sums of dout
 * (dbias may be NULL); overwrites dinp = dout W unless dinp is NULL. */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int T, int in, int out_dim);

#endif
