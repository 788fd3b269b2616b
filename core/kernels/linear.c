#include "core/kernels/linear.h"

#include <cblas.h>
#include <stddef.h>

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int T, int in, int out_dim, const micro_batches_t *mb)
{
    linear_forward_res(out, inp, weight, bias, NULL, T, in, out_dim, mb);
}

void linear_forward_res(float *out, const float *inp, const float *weight, const float *bias,
                        const float *resid, int T, int in, int out_dim,
                        const micro_batches_t *mb)
{
    /* Seed out with bias + residual so sgemm adds the product in its own pass
     * over out (beta = 1) instead of a separate read-modify-write afterwards. */
    float beta = 0.0f;
    if (bias || resid) {
        for (int t = 0; t < T; t++) {
            float *row = out + (size_t)t * out_dim;
            const float *res = resid ? resid + (size_t)t * out_dim : NULL;
            if (bias && res)
                for (int o = 0; o < out_dim; o++) row[o] = bias[o] + res[o];
            else if (bias)
                for (int o = 0; o < out_dim; o++) row[o] = bias[o];
            else
                for (int o = 0; o < out_dim; o++) row[o] = res[o];
        }
        beta = 1.0f;
    }
    micro_batches_sgemm(mb, CblasTrans, T, out_dim, in, inp, weight, beta, out);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int T, int in, int out_dim,
                     micro_batches_t *mb)
{
    if (dinp) micro_batches_sgemm(mb, CblasNoTrans, T, in, out_dim, dout, weight, 0.0f, dinp);
    micro_batches_weight_grads(mb, T, dweight, dbias, dout, inp, in, out_dim);
}
