#include "core/kernels/linear.h"

#include <cblas.h>
#include <stddef.h>

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int T, int in, int out_dim)
{
    linear_forward_res(out, inp, weight, bias, NULL, T, in, out_dim);
}

void linear_forward_res(float *out, const float *inp, const float *weight, const float *bias,
                        const float *resid, int T, int in, int out_dim)
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out_dim, in, 1.0f, inp, in, weight,
                in, beta, out, out_dim);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int T, int in, int out_dim)
{
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, out_dim, 1.0f, dout,
                    out_dim, weight, in, 0.0f, dinp, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in, T, 1.0f, dout, out_dim,
                inp, in, 1.0f, dweight, in);
    if (dbias) {
        /* rows in order: the sum does not depend on vector width */
        for (int t = 0; t < T; t++) {
            const float *row = dout + (size_t)t * out_dim;
            for (int o = 0; o < out_dim; o++) dbias[o] += row[o];
        }
    }
}
