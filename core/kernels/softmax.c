#include "core/kernels/softmax.h"

#include <math.h>
#include <stddef.h>

#include "core/kernels/vecmath.h"

/* The maximum (vm_max), the exponentials (vm_exp) and the sum (vm_sum)
 * vectorise. */
VM_CLONES_FMA static void softmax_row(float *row, int n)
{
    const float maxv = vm_max(row, n);
    for (int i = 0; i < n; i++) row[i] = vm_exp(row[i] - maxv);
    const float inv = 1.0f / vm_sum(row, n);
    for (int i = 0; i < n; i++) row[i] *= inv;
}

void softmax_rows(float *x, int rows, int n, int ld)
{
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * ld, n);
}

VM_CLONES static void softmax_row_backward(float *dl, const float *p, const float *dp, int n)
{
    const float dot = vm_dot(p, dp, n);
    for (int i = 0; i < n; i++) dl[i] = p[i] * (dp[i] - dot);
}

void softmax_rows_backward(float *dlogits, const float *p, const float *dp, int rows, int n,
                           int ld)
{
    for (int r = 0; r < rows; r++)
        softmax_row_backward(dlogits + (size_t)r * ld, p + (size_t)r * ld, dp + (size_t)r * ld, n);
}

double logsumexp_row(const float *x, int n)
{
    float maxv = x[0];
    for (int i = 1; i < n; i++) maxv = x[i] > maxv ? x[i] : maxv;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - maxv);
    return maxv + log(sum);
}
