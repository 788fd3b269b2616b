#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>

#include "softmax.h"

void attention_forward(float *out, float *probs, const float *qkv, int S, int T, int C,
                       int NH)
{
    const int dh = C / NH, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int s = 0; s < S; s++) {
        const float *seq = qkv + (size_t)s * T * ld;
        for (int h = 0; h < NH; h++) {
            const float *q = seq + h * dh, *k = seq + C + h * dh, *v = seq + 2 * C + h * dh;
            float *att = probs + ((size_t)s * NH + h) * T * T;
            float *o = out + (size_t)s * T * C + h * dh;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, scale, q, ld, k, ld,
                        0.0f, att, T);
            softmax_rows(att, T, T, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.0f, att, T, v, ld,
                        0.0f, o, C);
        }
    }
}

void attention_backward(float *dqkv, float *dscratch, const float *dout, const float *qkv,
                        const float *probs, int S, int T, int C, int NH)
{
    const int dh = C / NH, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int s = 0; s < S; s++) {
        const float *seq = qkv + (size_t)s * T * ld;
        float *dseq = dqkv + (size_t)s * T * ld;
        for (int h = 0; h < NH; h++) {
            const float *q = seq + h * dh, *k = seq + C + h * dh, *v = seq + 2 * C + h * dh;
            float *dq = dseq + h * dh, *dk = dseq + C + h * dh, *dv = dseq + 2 * C + h * dh;
            const float *att = probs + ((size_t)s * NH + h) * T * T;
            const float *dO = dout + (size_t)s * T * C + h * dh;
            /* dprobs = dO v^T ; dv = probs^T dO */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.0f, dO, C, v, ld,
                        0.0f, dscratch, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.0f, att, T, dO, C,
                        0.0f, dv, ld);
            softmax_rows_backward(dscratch, att, dscratch, T, T, T);
            /* scores = scale q k^T: dq = scale dS k ; dk = scale dS^T q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, scale, dscratch, T,
                        k, ld, 0.0f, dq, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, scale, dscratch, T,
                        q, ld, 0.0f, dk, ld);
        }
    }
}
