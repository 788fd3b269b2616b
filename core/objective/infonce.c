#include "core/objective/infonce.h"

#include <cblas.h>
#include <stddef.h>

#include "core/kernels/softmax.h"

double infonce_loss(float *dcand, const float *cand, int N, int Bg, int offset, int Bl, int E,
                    float tau, float grad_scale, float *scratch)
{
    if (N < 2) return 0.0;
    const int ld = N * E; /* stride between images of the same mask */
    const double norm = (double)Bg * N * (N - 1);
    const float inv_tau = 1.0f / tau;
    const float dscale = (float)(grad_scale / norm);
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *queries = cand + ((size_t)offset * N + i) * E;
        float *dqueries = dcand + ((size_t)offset * N + i) * E;
        for (int k = 0; k < N; k++) {
            if (k == i) continue;
            const float *keys = cand + (size_t)k * E;
            float *dkeys = dcand + (size_t)k * E;
            /* logits (Bl, Bg) = queries keys^T / tau */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Bl, Bg, E, inv_tau, queries,
                        ld, keys, ld, 0.0f, scratch, Bg);
            for (int b = 0; b < Bl; b++) {
                float *row = scratch + (size_t)b * Bg;
                total += logsumexp_row(row, Bg) - row[offset + b];
            }
            /* dlogits = (softmax - onehot) * dscale, in place */
            softmax_rows(scratch, Bl, Bg, Bg);
            for (int b = 0; b < Bl; b++) {
                float *row = scratch + (size_t)b * Bg;
                row[offset + b] -= 1.0f;
                for (int c = 0; c < Bg; c++) row[c] *= dscale;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Bl, E, Bg, inv_tau, scratch,
                        Bg, keys, ld, 1.0f, dqueries, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Bg, E, Bl, inv_tau, scratch, Bg,
                        queries, ld, 1.0f, dkeys, ld);
        }
    }
    return total / norm;
}
