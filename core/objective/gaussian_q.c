#include "core/objective/gaussian_q.h"

#include <math.h>
#include <stddef.h>

#include "core/config/config.h"

#define LOG_2PI 1.83787706640934548356

/* 0.5 * sum_d (z - mu)^2 w, and optionally its gradient coef * (z - mu) w into dz. */
static double weighted_half_sq(float *dz, float coef, const float *z, const float *mu,
                               const float *w, int D)
{
    double sum = 0.0;
    for (int d = 0; d < D; d++) {
        float diff = z[d] - mu[d];
        sum += (double)diff * diff * w[d];
        dz[d] += coef * diff * w[d];
    }
    return 0.5 * sum;
}

double club_min_loss(float *dzc, const float *zc, const float *mu, const float *logvar,
                     int N, int Bg, int offset, int Bl, int D, int contrast, float grad_scale)
{
    if (N < 2 && contrast == CLUB_CONTRAST_MASKS) return 0.0;
    const double norm = (double)Bg * N;
    const int M = contrast == CLUB_CONTRAST_MASKS ? N : Bg;
    const float pos_coef = (float)(-grad_scale / norm);
    const float neg_coef = (float)(grad_scale / (norm * M));
    float w[D]; /* exp(-logvar) of the current row; D is the encoder width */
    double total = 0.0;
    for (int b = 0; b < Bl; b++) {
        for (int j = 0; j < N; j++) {
            const size_t row = (size_t)b * N + j, grow = (size_t)(offset + b) * N + j;
            const float *m = mu + row * D, *lv = logvar + row * D;
            for (int d = 0; d < D; d++) w[d] = expf(-lv[d]);
            total -= weighted_half_sq(dzc + grow * D, pos_coef, zc + grow * D, m, w, D);
            double neg = 0.0;
            for (int c = 0; c < M; c++) {
                size_t crow = contrast == CLUB_CONTRAST_MASKS ? (size_t)(offset + b) * N + c
                                                              : (size_t)c * N + j;
                neg += weighted_half_sq(dzc + crow * D, neg_coef, zc + crow * D, m, w, D);
            }
            total += neg / M;
        }
    }
    return total / norm;
}

double q_nll_loss(float *dmu, float *dlogvar, const float *z, const float *mu,
                  const float *logvar, int R, int D, double norm_rows, float grad_scale)
{
    const float g = (float)(grad_scale / norm_rows);
    double total = 0.0;
    for (size_t i = 0; i < (size_t)R * D; i++) {
        float diff = z[i] - mu[i];
        float w = expf(-logvar[i]);
        float sq = diff * diff * w;
        total += 0.5 * ((double)sq + logvar[i] + LOG_2PI);
        dmu[i] = -g * diff * w;
        dlogvar[i] = 0.5f * g * (1.0f - sq);
    }
    return total / norm_rows;
}
