/* core/gaussian_mi: the Gaussian MI estimate from the joint covariance
 * against the analytic I = -d/2 log(1 - rho^2) of correlated Gaussians
 * (rho = 0.9 and 0.5), ~0 for independent data, the exact one-dimensional
 * formula -1/2 log(1 - r^2) of the sample correlation, invariance under
 * per-feature affine maps, and clean failures (n < d, constant features,
 * b == a) with the message that says to raise the ridge. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/objective/gaussian_mi.h"
#include "core/data/rng.h"

#define NOT_PD "covariance not positive definite: n too small for d or features constant; raise the ridge"

/* b = rho * a + sqrt(1 - rho^2) * noise, a and noise standard normal,
 * independent per dimension; row t from stream (seed, 0, t, EVAL). */
static void correlated(float *a, float *b, long n, int d, double rho, uint64_t seed)
{
    const double s = sqrt(1.0 - rho * rho);
    for (long t = 0; t < n; t++) {
        rng_t r;
        rng_init(&r, seed, 0, (uint64_t)t, RNG_STREAM_EVAL);
        for (int j = 0; j < d; j++) {
            double x = rng_normal(&r), e = rng_normal(&r);
            a[(size_t)t * d + j] = (float)x;
            b[(size_t)t * d + j] = (float)(rho * x + s * e);
        }
    }
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check_rho(double rho, long n, int d, double rel_tol)
{
    float *a = malloc((size_t)n * d * sizeof(float)), *b = malloc((size_t)n * d * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    correlated(a, b, n, d, rho, 2025);
    char err[256] = "";
    double mi = 0.0, t0 = seconds();
    int rc = gaussian_mi(a, b, n, d, 0.0, &mi, err, sizeof err);
    double dt = seconds() - t0;
    double exact = -0.5 * d * log(1.0 - rho * rho);
    printf("  rho %.2f d %d n %ld: I = %.6f, analytic %.6f, rel err %.2e (%.3f s)\n", rho, d, n,
           mi, exact, fabs(mi - exact) / exact, dt);
    assert_int_equal(rc, 0);
    assert_true(fabs(mi - exact) <= rel_tol * exact);
    free(a), free(b);
}

static void test_rho_09(void **state)
{
    (void)state;
    check_rho(0.9, 200000, 8, 0.02);
}

static void test_rho_05(void **state)
{
    (void)state;
    check_rho(0.5, 200000, 8, 0.02);
}

static void test_independent_is_zero(void **state)
{
    (void)state;
    const long n = 200000;
    const int d = 8;
    float *a = malloc((size_t)n * d * sizeof(float)), *b = malloc((size_t)n * d * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    correlated(a, b, n, d, 0.0, 7);
    char err[256] = "";
    double mi = 1.0;
    assert_int_equal(gaussian_mi(a, b, n, d, 0.0, &mi, err, sizeof err), 0);
    printf("  independent d %d n %ld: I = %.2e\n", d, n, mi);
    assert_true(fabs(mi) < 0.01);
    free(a), free(b);
}

/* d = 1: I = -1/2 log(1 - r^2) with r the sample correlation, to rounding. */
static void test_one_dimension_exact(void **state)
{
    (void)state;
    const long n = 5000;
    float a[5000], b[5000];
    correlated(a, b, n, 1, 0.7, 11);
    double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
    for (long t = 0; t < n; t++) ma += a[t], mb += b[t];
    ma /= n, mb /= n;
    for (long t = 0; t < n; t++) {
        double x = a[t] - ma, y = b[t] - mb;
        saa += x * x, sbb += y * y, sab += x * y;
    }
    double r = sab / sqrt(saa * sbb), exact = -0.5 * log(1.0 - r * r);
    char err[256] = "";
    double mi = 0.0;
    assert_int_equal(gaussian_mi(a, b, n, 1, 0.0, &mi, err, sizeof err), 0);
    printf("  d 1: I = %.12f, -1/2 log(1 - r^2) = %.12f\n", mi, exact);
    assert_true(fabs(mi - exact) <= 1e-10 * exact);
}

/* MI does not change when each feature is scaled and shifted. */
static void test_affine_invariance(void **state)
{
    (void)state;
    const long n = 20000;
    const int d = 4;
    float *a = malloc((size_t)n * d * sizeof(float)), *b = malloc((size_t)n * d * sizeof(float));
    float *a2 = malloc((size_t)n * d * sizeof(float)), *b2 = malloc((size_t)n * d * sizeof(float));
    assert_true(a && b && a2 && b2);
    correlated(a, b, n, d, 0.8, 3);
    for (long i = 0; i < n * d; i++) {
        int j = (int)(i % d);
        a2[i] = (float)(0.25 * (j + 1) * a[i] + 3.0 * j);
        b2[i] = (float)(-4.0 * b[i] - 1.5);
    }
    char err[256] = "";
    double m1 = 0, m2 = 0;
    assert_int_equal(gaussian_mi(a, b, n, d, 0.0, &m1, err, sizeof err), 0);
    assert_int_equal(gaussian_mi(a2, b2, n, d, 0.0, &m2, err, sizeof err), 0);
    printf("  affine: %.9f vs %.9f\n", m1, m2);
    assert_true(fabs(m1 - m2) <= 1e-4 * m1);
    free(a), free(b), free(a2), free(b2);
}

static void test_too_few_samples_fails(void **state)
{
    (void)state;
    const int d = 8;
    float a[5 * 8], b[5 * 8];
    correlated(a, b, 5, d, 0.9, 1);
    char err[256] = "";
    double mi = 0.0;
    assert_int_equal(gaussian_mi(a, b, 5, d, 0.0, &mi, err, sizeof err), -1);
    printf("  n 5 < d 8: %s\n", err);
    assert_non_null(strstr(err, NOT_PD));
    assert_true(isnan(mi));
    /* a negligible ridge passes the rank check but not the factorisation */
    err[0] = '\0';
    assert_int_equal(gaussian_mi(a, b, 5, d, 1e-20, &mi, err, sizeof err), -1);
    printf("  n 5 < d 8, ridge 1e-20: %s\n", err);
    assert_non_null(strstr(err, NOT_PD));
    /* a ridge makes it well defined */
    assert_int_equal(gaussian_mi(a, b, 5, d, 0.1, &mi, err, sizeof err), 0);
    assert_true(isfinite(mi) && mi >= 0.0);
    /* n = 12: Sa and Sb are fine but the joint (16 x 16) is singular by rank */
    float a12[12 * 8], b12[12 * 8];
    correlated(a12, b12, 12, d, 0.9, 1);
    err[0] = '\0';
    assert_int_equal(gaussian_mi(a12, b12, 12, d, 0.0, &mi, err, sizeof err), -1);
    assert_non_null(strstr(err, NOT_PD));
    /* bad arguments */
    assert_int_equal(gaussian_mi(a, b, 1, d, 0.1, &mi, err, sizeof err), -1);
    assert_int_equal(gaussian_mi(a, b, 5, 0, 0.1, &mi, err, sizeof err), -1);
    assert_int_equal(gaussian_mi(a, b, 5, d, -1.0, &mi, err, sizeof err), -1);
    assert_int_equal(gaussian_mi(a, b, 5, d, NAN, &mi, err, sizeof err), -1);
    assert_int_equal(gaussian_mi(NULL, b, 5, d, 0.1, &mi, err, sizeof err), -1);
    a[3] = NAN;
    assert_int_equal(gaussian_mi(a, b, 5, d, 0.1, &mi, err, sizeof err), -1);
    assert_non_null(strstr(err, "non-finite"));
}

static void test_constant_or_duplicate_features_fail(void **state)
{
    (void)state;
    const long n = 1000;
    const int d = 3;
    float *a = malloc((size_t)n * d * sizeof(float)), *b = malloc((size_t)n * d * sizeof(float));
    assert_true(a && b);
    correlated(a, b, n, d, 0.6, 5);
    for (long t = 0; t < n; t++) b[t * d + 1] = 0.3f; /* constant feature */
    char err[256] = "";
    double mi = 0.0;
    assert_int_equal(gaussian_mi(a, b, n, d, 0.0, &mi, err, sizeof err), -1);
    printf("  constant feature: %s\n", err);
    assert_non_null(strstr(err, NOT_PD));
    assert_int_equal(gaussian_mi(a, b, n, d, 1e-3, &mi, err, sizeof err), 0);
    assert_true(isfinite(mi) && mi > 0.0);
    /* b == a: the joint covariance is singular (infinite MI) */
    err[0] = '\0';
    assert_int_equal(gaussian_mi(a, a, n, d, 0.0, &mi, err, sizeof err), -1);
    printf("  b == a: %s\n", err);
    assert_non_null(strstr(err, NOT_PD));
    free(a), free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rho_09),
        cmocka_unit_test(test_rho_05),
        cmocka_unit_test(test_independent_is_zero),
        cmocka_unit_test(test_one_dimension_exact),
        cmocka_unit_test(test_affine_invariance),
        cmocka_unit_test(test_too_few_samples_fails),
        cmocka_unit_test(test_constant_or_duplicate_features_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
