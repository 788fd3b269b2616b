#include "core/kernels/attention.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/kernels/parallel.h"
#include "core/kernels/profile.h"
#include "core/kernels/softmax.h"
#include "core/kernels/vecmath.h"

/* Short sequences (Fashion-MNIST's 13 encoder tokens, 50 decoder tokens) make
 * per-head matrix products tiny: there a direct loop per (sequence, head)
 * is faster than any sgemm call, with every inner loop running over an
 * output index (vectorised, no reassociation). Longer sequences use
 * per-head cblas_sgemm. Either way each (sequence, head) is computed whole by
 * one thread (the pairs are spread over the pool, so one sequence's heads
 * still use every thread), in a fixed order: results do not depend on the
 * thread count.
 * The choice depends on T only. */
#define DIRECT_MAX_T 64

/* The two shapes every product of the direct path takes, vectorised in
 * chunks of VW outputs kept in registers (fixed-width inner loops), four
 * rows at a time so the adds of different rows overlap. Each output is a
 * sum over the inner index in increasing order, from zero. */
#define VW 16

/* out[i][j] = scale * sum_k a[i][k] bt[k][j] for i < rows, j < cols;
 * bt (K, ldb) with ldb >= cols rounded up to VW, zero beyond cols. */
VM_CLONES_FMA
static void rows_times_cols(float *out, int ldo, const float *a, int lda, const float *restrict bt,
                            int ldb, int rows, int cols, int K, float scale)
{
    for (int j0 = 0; j0 < cols; j0 += VW) {
        const int nj = cols - j0 < VW ? cols - j0 : VW;
        int i = 0;
        for (; i + 4 <= rows; i += 4) {
            float acc0[VW] = {0}, acc1[VW] = {0}, acc2[VW] = {0}, acc3[VW] = {0};
            const float *a0 = a + (size_t)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            for (int k = 0; k < K; k++) {
                const float *b = bt + (size_t)k * ldb + j0;
                const float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
                for (int jj = 0; jj < VW; jj++) {
                    acc0[jj] += x0 * b[jj];
                    acc1[jj] += x1 * b[jj];
                    acc2[jj] += x2 * b[jj];
                    acc3[jj] += x3 * b[jj];
                }
            }
            for (int jj = 0; jj < nj; jj++) {
                out[(size_t)i * ldo + j0 + jj] = scale * acc0[jj];
                out[(size_t)(i + 1) * ldo + j0 + jj] = scale * acc1[jj];
                out[(size_t)(i + 2) * ldo + j0 + jj] = scale * acc2[jj];
                out[(size_t)(i + 3) * ldo + j0 + jj] = scale * acc3[jj];
            }
        }
        for (; i < rows; i++) {
            float acc[VW] = {0};
            const float *ai = a + (size_t)i * lda;
            for (int k = 0; k < K; k++) {
                const float *b = bt + (size_t)k * ldb + j0;
                const float x = ai[k];
                for (int jj = 0; jj < VW; jj++) acc[jj] += x * b[jj];
            }
            for (int jj = 0; jj < nj; jj++) out[(size_t)i * ldo + j0 + jj] = scale * acc[jj];
        }
    }
}

/* out[i][d] = sum_j w(i, j) x[j][d] for i < rows, d < width, j < inner,
 * w(i, j) = w[i*wsi + j*wsj]. Register tiles of 4 rows x 2 chunks of VW
 * columns (x[j] loaded once for the 4 rows), then 1 row x 1 chunk, then
 * single columns; the sum over j is in increasing order in every case. */
VM_CLONES_FMA
static void weighted_rows(float *out, int ldo, const float *w, int wsi, int wsj, const float *x,
                          int ldx, int rows, int inner, int width)
{
    int i = 0;
    for (; i + 4 <= rows; i += 4) {
        const float *w0 = w + (size_t)i * wsi, *w1 = w0 + wsi, *w2 = w1 + wsi, *w3 = w2 + wsi;
        float *o0 = out + (size_t)i * ldo, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
        int d0 = 0;
        for (; d0 + 2 * VW <= width; d0 += 2 * VW) {
            float a0[VW] = {0}, a1[VW] = {0}, a2[VW] = {0}, a3[VW] = {0};
            float b0[VW] = {0}, b1[VW] = {0}, b2[VW] = {0}, b3[VW] = {0};
            for (int j = 0; j < inner; j++) {
                const float *xj = x + (size_t)j * ldx + d0;
                const size_t wj = (size_t)j * wsj;
                const float c0 = w0[wj], c1 = w1[wj], c2 = w2[wj], c3 = w3[wj];
                for (int dd = 0; dd < VW; dd++) {
                    const float xa = xj[dd], xb = xj[VW + dd];
                    a0[dd] += c0 * xa;
                    a1[dd] += c1 * xa;
                    a2[dd] += c2 * xa;
                    a3[dd] += c3 * xa;
                    b0[dd] += c0 * xb;
                    b1[dd] += c1 * xb;
                    b2[dd] += c2 * xb;
                    b3[dd] += c3 * xb;
                }
            }
            for (int dd = 0; dd < VW; dd++) {
                o0[d0 + dd] = a0[dd], o0[d0 + VW + dd] = b0[dd];
                o1[d0 + dd] = a1[dd], o1[d0 + VW + dd] = b1[dd];
                o2[d0 + dd] = a2[dd], o2[d0 + VW + dd] = b2[dd];
                o3[d0 + dd] = a3[dd], o3[d0 + VW + dd] = b3[dd];
            }
        }
        for (; d0 + VW <= width; d0 += VW) {
            float a0[VW] = {0}, a1[VW] = {0}, a2[VW] = {0}, a3[VW] = {0};
            for (int j = 0; j < inner; j++) {
                const float *xj = x + (size_t)j * ldx + d0;
                const size_t wj = (size_t)j * wsj;
                const float c0 = w0[wj], c1 = w1[wj], c2 = w2[wj], c3 = w3[wj];
                for (int dd = 0; dd < VW; dd++) {
                    const float xa = xj[dd];
                    a0[dd] += c0 * xa;
                    a1[dd] += c1 * xa;
                    a2[dd] += c2 * xa;
                    a3[dd] += c3 * xa;
                }
            }
            for (int dd = 0; dd < VW; dd++) {
                o0[d0 + dd] = a0[dd];
                o1[d0 + dd] = a1[dd];
                o2[d0 + dd] = a2[dd];
                o3[d0 + dd] = a3[dd];
            }
        }
        for (int d = d0; d < width; d++)
            for (int r = 0; r < 4; r++) {
                const float *wr = w0 + (size_t)r * wsi;
                float acc = 0.0f;
                for (int j = 0; j < inner; j++) acc += wr[(size_t)j * wsj] * x[(size_t)j * ldx + d];
                out[(size_t)(i + r) * ldo + d] = acc;
            }
    }
    for (; i < rows; i++) {
        const float *wi = w + (size_t)i * wsi;
        float *oi = out + (size_t)i * ldo;
        int d0 = 0;
        for (; d0 + VW <= width; d0 += VW) {
            float a0[VW] = {0};
            for (int j = 0; j < inner; j++) {
                const float *xj = x + (size_t)j * ldx + d0;
                const float c0 = wi[(size_t)j * wsj];
                for (int dd = 0; dd < VW; dd++) a0[dd] += c0 * xj[dd];
            }
            for (int dd = 0; dd < VW; dd++) oi[d0 + dd] = a0[dd];
        }
        for (int d = d0; d < width; d++) {
            float acc = 0.0f;
            for (int j = 0; j < inner; j++) acc += wi[(size_t)j * wsj] * x[(size_t)j * ldx + d];
            oi[d] = acc;
        }
    }
}

/* xt (K, ldt) = x^T for x (cols, K) with row stride ldx; columns beyond
 * cols up to ldt are zero. */
static void transpose_pad(float *xt, int ldt, const float *x, int ldx, int cols, int K)
{
    for (int k = 0; k < K; k++) {
        float *row = xt + (size_t)k * ldt;
        for (int j = 0; j < cols; j++) row[j] = x[(size_t)j * ldx + k];
        for (int j = cols; j < ldt; j++) row[j] = 0.0f;
    }
}

static int padded(int T) { return (T + VW - 1) / VW * VW; }

typedef struct {
    float *out, *probs;
    const float *qkv;
    int S, T, C, NH;
} fwd_job_t;

/* Head h of sequence s. */
static void forward_head(const fwd_job_t *j, int s, int h, float *kt)
{
    const int T = j->T, C = j->C, NH = j->NH, dh = C / NH, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)dh);
    const float *seq = j->qkv + (size_t)s * T * ld;
    const float *q = seq + h * dh, *k = seq + C + h * dh, *v = seq + 2 * C + h * dh;
    float *att = j->probs + ((size_t)s * NH + h) * T * T;
    float *o = j->out + (size_t)s * T * C + h * dh;
    if (T <= DIRECT_MAX_T) {
        transpose_pad(kt, padded(T), k, ld, T, dh);
        rows_times_cols(att, T, q, ld, kt, padded(T), T, T, dh, scale);
        PROFILED(PROFILE_SOFTMAX, softmax_rows(att, T, T, T));
        weighted_rows(o, C, att, T, 1, v, ld, T, T, dh);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, scale, q, ld, k, ld, 0.0f, att, T);
        PROFILED(PROFILE_SOFTMAX, softmax_rows(att, T, T, T));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.0f, att, T, v, ld, 0.0f, o, C);
    }
}

static void forward_thread(void *ctx, int t, int n)
{
    const fwd_job_t *j = ctx;
    int lo, hi;
    par_range(j->S * j->NH, 1, t, n, &lo, &hi);
    float *kt = par_scratch((size_t)padded(j->T) * (j->C / j->NH));
    for (int u = lo; u < hi; u++) forward_head(j, u / j->NH, u % j->NH, kt);
}

void attention_forward(float *out, float *probs, const float *qkv, int S, int T, int C,
                       int NH)
{
    fwd_job_t j = {out, probs, qkv, S, T, C, NH};
    /* per-head products are too small for OpenBLAS's threads: the (sequence,
     * head) pairs are spread over the pool, each thread's products
     * single-threaded */
    par_run_serial_blas(forward_thread, &j, S * NH > 1 ? par_threads() : 1);
}

/* The backward of one head, direct form. dprob (T, T) and vt (dh, padded T)
 * are scratch. dq, dk, dv have row stride ld and are overwritten. */
static void head_backward(float *dq, float *dk, float *dv, float *dprob, float *vt,
                          const float *dO, int ldo, const float *q, const float *k,
                          const float *v, const float *p, int T, int dh, int ld, float scale)
{
    /* dprob = dO v^T ; dv = p^T dO */
    transpose_pad(vt, padded(T), v, ld, T, dh);
    rows_times_cols(dprob, T, dO, ldo, vt, padded(T), T, T, dh, 1.0f);
    weighted_rows(dv, ld, p, 1, T, dO, ldo, T, T, dh);
    /* through the softmax and the score scale: ds = scale p (dprob - p.dprob) */
    for (int i = 0; i < T; i++) {
        float *row = dprob + (size_t)i * T;
        const float *pi = p + (size_t)i * T;
        const float dot = vm_dot(pi, row, T);
        for (int j = 0; j < T; j++) row[j] = scale * (pi[j] * (row[j] - dot));
    }
    /* dq = ds k ; dk = ds^T q */
    weighted_rows(dq, ld, dprob, T, 1, k, ld, T, T, dh);
    weighted_rows(dk, ld, dprob, 1, T, q, ld, T, T, dh);
}

typedef struct {
    float *dqkv;
    const float *dout, *qkv, *probs;
    int S, T, C, NH;
} bwd_job_t;

/* Head h of sequence s. */
static void backward_head(const bwd_job_t *j, int s, int h, float *scratch)
{
    const int T = j->T, C = j->C, NH = j->NH, dh = C / NH, ld = 3 * C;
    const float scale = 1.0f / sqrtf((float)dh);
    const float *seq = j->qkv + (size_t)s * T * ld;
    float *dseq = j->dqkv + (size_t)s * T * ld;
    float *dprob = scratch, *vt = scratch + (size_t)T * T;
    const float *q = seq + h * dh, *k = seq + C + h * dh, *v = seq + 2 * C + h * dh;
    float *dq = dseq + h * dh, *dk = dseq + C + h * dh, *dv = dseq + 2 * C + h * dh;
    const float *att = j->probs + ((size_t)s * NH + h) * T * T;
    const float *dO = j->dout + (size_t)s * T * C + h * dh;
    if (T <= DIRECT_MAX_T) {
        head_backward(dq, dk, dv, dprob, vt, dO, C, q, k, v, att, T, dh, ld, scale);
        return;
    }
    /* dprobs = dO v^T ; dv = probs^T dO */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.0f, dO, C, v, ld, 0.0f, dprob, T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.0f, att, T, dO, C, 0.0f, dv, ld);
    PROFILED(PROFILE_SOFTMAX, softmax_rows_backward(dprob, att, dprob, T, T, T));
    /* scores = scale q k^T: dq = scale dS k ; dk = scale dS^T q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, scale, dprob, T, k, ld, 0.0f, dq, ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, scale, dprob, T, q, ld, 0.0f, dk, ld);
}

static void backward_thread(void *ctx, int t, int n)
{
    const bwd_job_t *j = ctx;
    int lo, hi;
    par_range(j->S * j->NH, 1, t, n, &lo, &hi);
    float *scratch = par_scratch((size_t)j->T * j->T + (size_t)padded(j->T) * (j->C / j->NH));
    for (int u = lo; u < hi; u++) backward_head(j, u / j->NH, u % j->NH, scratch);
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                        int S, int T, int C, int NH)
{
    bwd_job_t j = {dqkv, dout, qkv, probs, S, T, C, NH};
    par_run_serial_blas(backward_thread, &j, S * NH > 1 ? par_threads() : 1);
}
