#include "core/objective/recon_loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define NORM_PIX_EPS 1e-6

void recon_targets(float *target, const float *patches, int B, int L, int P, int norm_pix)
{
    const size_t rows = (size_t)B * L;
    if (!norm_pix) {
        memcpy(target, patches, rows * P * sizeof(float));
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *x = patches + r * P;
        float *t = target + r * P;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < P; i++) mean += x[i];
        mean /= P;
        for (int i = 0; i < P; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= (P > 1 ? P - 1 : 1);
        double inv = 1.0 / sqrt(var + NORM_PIX_EPS);
        for (int i = 0; i < P; i++) t[i] = (float)((x[i] - mean) * inv);
    }
}

double recon_loss(float *dpred, const float *pred, const float *target, const int *token_of,
                  int B, int N, int L, int V, int P, double norm_sequences, float grad_scale)
{
    const int hidden = L - V;
    const size_t seq_len = (size_t)(L + 1) * P;
    /* Each sequence's loss is a mean over its hidden patches and their pixels. */
    const double per_value = 1.0 / ((double)hidden * P * norm_sequences);
    const float dscale = (float)(2.0 * per_value) * grad_scale;
    double total = 0.0;
    memset(dpred, 0, (size_t)B * N * seq_len * sizeof(float));
    for (int s = 0; s < B * N; s++) {
        const float *tgt_img = target + (size_t)(s / N) * L * P;
        for (int l = 0; l < L; l++) {
            if (token_of[(size_t)s * L + l] >= 0) continue;
            const float *p = pred + s * seq_len + (size_t)(1 + l) * P;
            const float *t = tgt_img + (size_t)l * P;
            float *dp = dpred + s * seq_len + (size_t)(1 + l) * P;
            double sq = 0.0;
            for (int i = 0; i < P; i++) {
                float diff = p[i] - t[i];
                sq += (double)diff * diff;
                dp[i] = dscale * diff;
            }
            total += sq;
        }
    }
    return total * per_value;
}
