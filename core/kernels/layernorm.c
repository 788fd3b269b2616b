#include "core/kernels/layernorm.h"

#include <math.h>
#include <stddef.h>

#include "core/kernels/parallel.h"
#include "core/kernels/vecmath.h"

/* Row statistics in double over 8 interleaved partial sums (combined in a
 * fixed tree, then the tail in order): vectorised, and the same result
 * whatever the thread count, since a row is always summed the same way. */
#define LANES 8

static inline double tree8(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

VM_CLONES static void forward_rows(float *out, float *mean, float *rstd, const float *inp,
                                   const float *weight, const float *bias, int t0, int t1, int C)
{
    const int Cv = C / LANES * LANES;
    for (int t = t0; t < t1; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        /* Two passes in double: the variance of near-constant rows stays exact. */
        double acc[LANES] = {0};
        for (int i = 0; i < Cv; i += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
        double m = tree8(acc);
        for (int i = Cv; i < C; i++) m += x[i];
        m /= C;
        double vacc[LANES] = {0};
        for (int i = 0; i < Cv; i += LANES)
            for (int l = 0; l < LANES; l++) {
                const double d = x[i + l] - m;
                vacc[l] += d * d;
            }
        double v = tree8(vacc);
        for (int i = Cv; i < C; i++) {
            const double d = x[i] - m;
            v += d * d;
        }
        v /= C;
        const float s = (float)(1.0 / sqrt(v + LAYERNORM_EPS));
        const float mf = (float)m;
        for (int i = 0; i < C; i++) y[i] = (x[i] - mf) * s * weight[i] + bias[i];
        mean[t] = mf;
        rstd[t] = s;
    }
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dweight, *dbias;
    const float *inp, *weight, *bias, *dout;
    int T, C;
} ln_job_t;

static void forward_thread(void *ctx, int th, int n)
{
    const ln_job_t *j = ctx;
    int lo, hi;
    par_range(j->T, 16, th, n, &lo, &hi);
    forward_rows(j->out, j->mean, j->rstd, j->inp, j->weight, j->bias, lo, hi, j->C);
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int T, int C)
{
    ln_job_t j = {out, mean, rstd, NULL, NULL, NULL, inp, weight, bias, NULL, T, C};
    par_run(forward_thread, &j, (size_t)T * C >= 32768 ? par_threads() : 1);
}

/* dx += s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), rows [t0, t1). */
VM_CLONES static void backward_rows(float *dinp, const float *dout, const float *inp,
                                    const float *weight, const float *mean, const float *rstd,
                                    int t0, int t1, int C)
{
    const int Cv = C / LANES * LANES;
    for (int t = t0; t < t1; t++) {
        const float *x = inp + (size_t)t * C;
        const float *dy = dout + (size_t)t * C;
        float *dx = dinp + (size_t)t * C;
        const float m = mean[t], s = rstd[t];
        double a1[LANES] = {0}, a2[LANES] = {0};
        for (int i = 0; i < Cv; i += LANES)
            for (int l = 0; l < LANES; l++) a1[l] += (double)(dy[i + l] * weight[i + l]);
        for (int i = 0; i < Cv; i += LANES)
            for (int l = 0; l < LANES; l++)
                a2[l] += (double)(dy[i + l] * weight[i + l]) * (double)((x[i + l] - m) * s);
        double sum_dxhat = tree8(a1), sum_dxhat_xhat = tree8(a2);
        for (int i = Cv; i < C; i++) {
            const float xhat = (x[i] - m) * s;
            const float dxhat = dy[i] * weight[i];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += (double)dxhat * xhat;
        }
        const float mean_dxhat = (float)(sum_dxhat / C);
        const float mean_dxhat_xhat = (float)(sum_dxhat_xhat / C);
        for (int i = 0; i < C; i++) {
            const float xhat = (x[i] - m) * s;
            const float dxhat = dy[i] * weight[i];
            dx[i] += s * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
        }
    }
}

/* dweight[c] += sum_t dy * xhat, dbias[c] += sum_t dy over every row, for
 * columns [c0, c1): rows in order, so any column split gives the same sums. */
VM_CLONES static void backward_params(float *dweight, float *dbias, const float *dout,
                                      const float *inp, const float *mean, const float *rstd,
                                      int T, int C, int c0, int c1)
{
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        const float *dy = dout + (size_t)t * C;
        const float m = mean[t], s = rstd[t];
        for (int i = c0; i < c1; i++) {
            const float xhat = (x[i] - m) * s;
            dbias[i] += dy[i];
            dweight[i] += dy[i] * xhat;
        }
    }
}

static void backward_rows_thread(void *ctx, int th, int n)
{
    const ln_job_t *j = ctx;
    int lo, hi;
    par_range(j->T, 16, th, n, &lo, &hi);
    backward_rows(j->dinp, j->dout, j->inp, j->weight, j->mean, j->rstd, lo, hi, j->C);
}

static void backward_params_thread(void *ctx, int th, int n)
{
    const ln_job_t *j = ctx;
    int lo, hi;
    par_range(j->C, 16, th, n, &lo, &hi);
    backward_params(j->dweight, j->dbias, j->dout, j->inp, j->mean, j->rstd, j->T, j->C, lo, hi);
}

static int threads_for(int T, int C) { return (size_t)T * C >= 32768 ? par_threads() : 1; }

/* The parameters' share of rows [t0, t0 + T) (a micro_batches callback). */
static void params_of_rows(void *ctx, int t0, int T, float *dweight, float *dbias)
{
    const ln_job_t *all = ctx;
    const size_t C = (size_t)all->C;
    ln_job_t j = {NULL, all->mean + t0, all->rstd + t0, NULL, dweight, dbias,
                  all->inp + t0 * C, NULL, NULL, all->dout + t0 * C, T, all->C};
    par_run(backward_params_thread, &j, threads_for(T, all->C));
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int T, int C, micro_batches_t *mb)
{
    ln_job_t j = {NULL, (float *)mean, (float *)rstd, dinp, dweight, dbias,
                  inp, weight, NULL, dout, T, C};
    par_run(backward_rows_thread, &j, threads_for(T, C));
    micro_batches_grads(mb, T, dweight, (size_t)C, dbias, (size_t)C, params_of_rows, &j);
}
