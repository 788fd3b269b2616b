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

typedef struct {
    const float *dout, *inp;
    int in, out_dim;
} weight_grads_t;

/* dweight += dout^T inp and dbias += column sums of dout over rows [t0, t0 + T). */
static void weight_grads(void *ctx, int t0, int T, float *dweight, float *dbias)
{
    const weight_grads_t *w = ctx;
    const float *dout = w->dout + (size_t)t0 * w->out_dim, *inp = w->inp + (size_t)t0 * w->in;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w->out_dim, w->in, T, 1.0f, dout,
                w->out_dim, inp, w->in, 1.0f, dweight, w->in);
    if (dbias) {
        /* rows in order: the sum does not depend on vector width */
        for (int t = 0; t < T; t++) {
            const float *row = dout + (size_t)t * w->out_dim;
            for (int o = 0; o < w->out_dim; o++) dbias[o] += row[o];
        }
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int T, int in, int out_dim,
                     micro_batches_t *mb)
{
    if (dinp) micro_batches_sgemm(mb, CblasNoTrans, T, in, out_dim, dout, weight, 0.0f, dinp);
    weight_grads_t w = {dout, inp, in, out_dim};
    micro_batches_grads(mb, T, dweight, (size_t)out_dim * in, dbias, (size_t)out_dim,
                             weight_grads, &w);
}
