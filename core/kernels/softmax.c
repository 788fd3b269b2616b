#include "core/kernels/softmax.h"

#include <math.h>
#include <stddef.h>

#include "core/kernels/vecmath.h"

/* The exponentials vectorise (vm_exp); sums run in index order. */
VM_CLONES_FMA static void softmax_row(float *row, int n)
{
    float maxv = row[0];
    for (int i = 1; i < n; i++) maxv = row[i] > maxv ? row[i] : maxv;
    for (int i = 0; i < n; i++) row[i] = vm_exp(row[i] - maxv);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += row[i];
    const float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) row[i] *= inv;
}

void softmax_rows(float *x, int rows, int n, int ld)
{
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * ld, n);
}

void softmax_rows_backward(float *dlogits, const float *p, const float *dp, int rows, int n,
                           int ld)
{
    for (int r = 0; r < rows; r++) {
        const float *pr = p + (size_t)r * ld;
        const float *dpr = dp + (size_t)r * ld;
        float *dl = dlogits + (size_t)r * ld;
        float dot = 0.0f;
        for (int i = 0; i < n; i++) dot += pr[i] * dpr[i];
        for (int i = 0; i < n; i++) dl[i] = pr[i] * (dpr[i] - dot);
    }
}

double logsumexp_row(const float *x, int n)
{
    float maxv = x[0];
    for (int i = 1; i < n; i++) maxv = x[i] > maxv ? x[i] : maxv;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - maxv);
    return maxv + log(sum);
}
