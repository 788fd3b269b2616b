#include "layernorm.h"

#include <math.h>
#include <stddef.h>

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int T, int C)
{
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        /* Two passes in double: the variance of near-constant rows stays exact. */
        double m = 0.0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        double v = 0.0;
        for (int i = 0; i < C; i++) {
            double d = x[i] - m;
            v += d * d;
        }
        v /= C;
        float s = (float)(1.0 / sqrt(v + LAYERNORM_EPS));
        float mf = (float)m;
        for (int i = 0; i < C; i++) y[i] = (x[i] - mf) * s * weight[i] + bias[i];
        mean[t] = mf;
        rstd[t] = s;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int T, int C)
{
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        const float *dy = dout + (size_t)t * C;
        float *dx = dinp + (size_t)t * C;
        float m = mean[t], s = rstd[t];
        /* dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            float dxhat = dy[i] * weight[i];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += (double)dxhat * xhat;
        }
        float mean_dxhat = (float)(sum_dxhat / C);
        float mean_dxhat_xhat = (float)(sum_dxhat_xhat / C);
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            float dxhat = dy[i] * weight[i];
            dbias[i] += dy[i];
            dweight[i] += dy[i] * xhat;
            dx[i] += s * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
        }
    }
}
