#include "core/objective/gaussian_mi.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (in OpenBLAS): Cholesky factorisation of a symmetric positive
 * definite matrix. The trailing length is gfortran's hidden CHARACTER length;
 * passing it is harmless for OpenBLAS's C implementation. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
                    size_t uplo_len);

enum { GMI_CHUNK = 256 };          /* rows centred and accumulated per dsyrk */
#define GMI_PIVOT_REL 1e-12        /* smallest pivot^2 / diagonal accepted */

static const char gmi_not_pd[] =
    "covariance not positive definite: n too small for d or features constant; raise the ridge";

/* Log-determinant of the m x m diagonal block of the symmetric matrix S
 * (leading dimension lds) starting at row/column `at`, via Cholesky in work
 * (m x m). Returns 0, or the 1-based failing pivot. */
static int block_logdet(const double *S, int lds, int at, int m, double *work, double *logdet)
{
    for (int i = 0; i < m; i++)
        memcpy(work + (size_t)i * m, S + (size_t)(at + i) * lds + at, (size_t)m * sizeof(double));
    int info = 0;
    dpotrf_("L", &m, work, &m, &info, 1);
    if (info < 0) return 1;
    /* on info > 0 the leading info - 1 pivots are computed: report the first
     * one that is already numerically zero, if any */
    const int valid = info > 0 ? info - 1 : m;
    double sum = 0.0;
    for (int i = 0; i < valid; i++) {
        double l = work[(size_t)i * m + i], diag = S[(size_t)(at + i) * lds + at + i];
        if (!(l > 0.0) || !(l * l > GMI_PIVOT_REL * diag)) return i + 1;
        sum += log(l);
    }
    if (info > 0) return info;
    *logdet = 2.0 * sum;
    return 0;
}

int gaussian_mi(const float *a, const float *b, long n, int d, double ridge, double *mi,
                char *err, size_t errlen)
{
    if (mi) *mi = NAN;
    if (!a || !b || !mi) {
        snprintf(err, errlen, "gaussian_mi: a, b and mi must not be NULL");
        return -1;
    }
    if (d < 1 || d > 16384) {
        snprintf(err, errlen, "gaussian_mi: d = %d must be in 1..16384", d);
        return -1;
    }
    if (n < 2) {
        snprintf(err, errlen, "gaussian_mi: n = %ld samples: need at least 2 (and more than 2d = %d "
                 "without a ridge)", n, 2 * d);
        return -1;
    }
    if (!isfinite(ridge) || ridge < 0.0) {
        snprintf(err, errlen, "gaussian_mi: ridge = %g must be finite and >= 0", ridge);
        return -1;
    }
    const int D2 = 2 * d;
    if (ridge == 0.0 && n - 1 < D2) {
        snprintf(err, errlen, "%s (n = %ld samples give a joint covariance of rank at most %ld < 2d "
                 "= %d)", gmi_not_pd, n, n - 1, D2);
        return -1;
    }
    double *mean = calloc((size_t)D2, sizeof(double));
    double *S = calloc((size_t)D2 * D2, sizeof(double));
    double *X = malloc((size_t)GMI_CHUNK * D2 * sizeof(double));
    double *work = malloc((size_t)D2 * D2 * sizeof(double));
    int rc = -1;
    if (!mean || !S || !X || !work) {
        snprintf(err, errlen, "gaussian_mi: out of memory for d = %d", d);
        goto done;
    }

    /* Means in double; every input must be finite. n < 2^29 copies of one
     * float sum exactly in double, so a constant feature centres to exact
     * zeros (and then fails the factorisation unless ridge > 0). */
    for (long t = 0; t < n; t++) {
        const float *ra = a + (size_t)t * d, *rb = b + (size_t)t * d;
        for (int j = 0; j < d; j++) {
            if (!isfinite(ra[j]) || !isfinite(rb[j])) {
                snprintf(err, errlen, "gaussian_mi: non-finite value in %s at row %ld, column %d",
                         isfinite(ra[j]) ? "b" : "a", t, j);
                goto done;
            }
            mean[j] += ra[j];
            mean[d + j] += rb[j];
        }
    }
    for (int j = 0; j < D2; j++) mean[j] /= (double)n;

    /* S (upper triangle) += X^T X over centred chunks of rows [a b]. */
    for (long t0 = 0; t0 < n; t0 += GMI_CHUNK) {
        int rows = (int)(n - t0 < GMI_CHUNK ? n - t0 : GMI_CHUNK);
        for (int r = 0; r < rows; r++) {
            const float *ra = a + (size_t)(t0 + r) * d, *rb = b + (size_t)(t0 + r) * d;
            double *x = X + (size_t)r * D2;
            for (int j = 0; j < d; j++) {
                x[j] = (double)ra[j] - mean[j];
                x[d + j] = (double)rb[j] - mean[d + j];
            }
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D2, rows, 1.0, X, D2, 1.0, S, D2);
    }
    const double scale = 1.0 / (double)(n - 1);
    for (int i = 0; i < D2; i++) {
        for (int j = i; j < D2; j++) {
            double v = S[(size_t)i * D2 + j] * scale;
            S[(size_t)i * D2 + j] = v;
            S[(size_t)j * D2 + i] = v;
        }
        S[(size_t)i * D2 + i] += ridge;
    }

    double ld_a = 0.0, ld_b = 0.0, ld_s = 0.0;
    const char *which = "a";
    int piv = block_logdet(S, D2, 0, d, work, &ld_a);
    if (!piv) which = "b", piv = block_logdet(S, D2, d, d, work, &ld_b);
    if (!piv) which = "joint", piv = block_logdet(S, D2, 0, D2, work, &ld_s);
    if (piv) {
        int m = strcmp(which, "joint") == 0 ? D2 : d;
        snprintf(err, errlen, "%s (%s covariance %d x %d from n = %ld samples, ridge %g, pivot %d)",
                 gmi_not_pd, which, m, m, n, ridge, piv);
        goto done;
    }
    *mi = 0.5 * (ld_a + ld_b - ld_s);
    rc = 0;
done:
    free(mean), free(S), free(X), free(work);
    return rc;
}
