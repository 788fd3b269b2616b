/* Row softmax over n-wide rows, numerically stable (max subtracted). */
#ifndef MIMAE_KERNELS_SOFTMAX_H
#define MIMAE_KERNELS_SOFTMAX_H

/* In place on `rows` rows of width n with row stride ld. */
void softmax_rows(float *x, int rows, int n, int ld);

/* dlogits = p * (dp - sum(p * dp)) per row; dlogits may alias dp. */
void softmax_rows_backward(float *dlogits, const float *p, const float *dp, int rows, int n,
                           int ld);

/* log(sum(exp(row))) of one row, stable. */
double logsumexp_row(const float *x, int n);

#endif
