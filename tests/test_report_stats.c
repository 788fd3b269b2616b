/* experiments/report_stats.h against values worked out by hand (in the
 * comments), and the link: GSL comes in as -lgsl alone, so cblas_sgemm is
 * still OpenBLAS's and not GSL's reference CBLAS. */
#define _GNU_SOURCE /* dladdr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cblas.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "experiments/report_stats.h"

#define T_975_1 12.706204736174707 /* t(0.975, 1), tables */
#define T_975_2 4.302652729749464  /* t(0.975, 2) */
#define T_975_9 2.2621571627409915 /* t(0.975, 9) */

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) fail_msg("got %.17g, want %.17g (tolerance %g)", got, want, tol);
}

static void test_summary(void **state)
{
    (void)state;
    /* {1, 2, 4}: mean 7/3; deviations -4/3, -1/3, 5/3, squares 16/9 + 1/9 +
     * 25/9 = 42/9, / (n - 1) = 7/3, sd sqrt(7/3) = 1.5275252... */
    const double x[] = {1.0, 2.0, 4.0};
    stat_summary_t s = stat_summarise(x, 3);
    assert_int_equal(s.n, 3);
    assert_close(s.mean, 7.0 / 3.0, 1e-15);
    assert_close(s.sd, 1.5275252316519468, 1e-15);

    /* a NaN is a value the run does not have: {1, NaN, 3} is {1, 3}, mean 2,
     * sd sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2) */
    const double y[] = {1.0, NAN, 3.0};
    s = stat_summarise(y, 3);
    assert_int_equal(s.n, 2);
    assert_close(s.mean, 2.0, 0);
    assert_close(s.sd, sqrt(2.0), 1e-15);

    /* an infinite value is none either (a damaged or degenerate metric):
     * {1, Inf, 3} is {1, 3}, and -Inf alone leaves nothing */
    const double z[] = {1.0, INFINITY, 3.0, -INFINITY};
    s = stat_summarise(z, 3);
    assert_int_equal(s.n, 2);
    assert_close(s.mean, 2.0, 0);
    assert_close(s.sd, sqrt(2.0), 1e-15);
    s = stat_summarise(z + 3, 1);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean));

    /* one value: the mean, no standard deviation */
    s = stat_summarise(x + 2, 1);
    assert_int_equal(s.n, 1);
    assert_close(s.mean, 4.0, 0);
    assert_true(isnan(s.sd));

    /* none: nothing */
    s = stat_summarise(y + 1, 1);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean) && isnan(s.sd));
    s = stat_summarise(NULL, 0);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean));
}

static void test_paired_three_seeds(void **state)
{
    (void)state;
    /* a - b = d = {1, 2, 4}: mean 7/3, sd sqrt(7/3); t(0.975, 2) =
     * 4.302652729...; half-width 4.3026527 * sqrt(7/3) / sqrt(3) =
     * 4.3026527 * 0.8819171 = 3.7946...; interval [-1.4612, 6.1279] holds 0 */
    const double a[] = {2.0, 3.0, 7.0}, b[] = {1.0, 1.0, 3.0};
    stat_paired_t p = stat_paired_diff(a, b, 3, 0.95);
    assert_int_equal(p.n, 3);
    assert_close(p.mean, 7.0 / 3.0, 1e-15);
    assert_close(p.sd, sqrt(7.0 / 3.0), 1e-15);
    assert_close(p.t, T_975_2, 1e-9);
    assert_close(p.half, 3.7946, 1e-4);
    assert_close(p.half, T_975_2 * sqrt(7.0 / 9.0), 1e-9);
    assert_close(p.lo, 7.0 / 3.0 - p.half, 1e-15);
    assert_close(p.hi, 7.0 / 3.0 + p.half, 1e-15);
    assert_false(p.excludes_zero);

    /* d = {1.0, 1.1, 0.9}: mean 1.0, sd 0.1 (deviations 0, 0.1, -0.1:
     * 0.02 / 2 = 0.01); half 4.3026527 * 0.1 / sqrt(3) = 0.24841...; [0.7516,
     * 1.2484] excludes 0, and so does its mirror image */
    const double c[] = {2.0, 2.1, 1.9}, e[] = {1.0, 1.0, 1.0};
    p = stat_paired_diff(c, e, 3, 0.95);
    assert_close(p.mean, 1.0, 1e-12);
    assert_close(p.sd, 0.1, 1e-12);
    assert_close(p.half, 0.24841, 1e-5);
    assert_true(p.excludes_zero);
    p = stat_paired_diff(e, c, 3, 0.95);
    assert_close(p.mean, -1.0, 1e-12);
    assert_close(p.hi, -1.0 + 0.24841, 1e-5);
    assert_true(p.excludes_zero);
}

static void test_paired_ten_seeds(void **state)
{
    (void)state;
    /* d = 0..9: mean 4.5, sum of squared deviations 2 * (0.25 + 2.25 + 6.25 +
     * 12.25 + 20.25) = 82.5, var 82.5 / 9, sd 3.0276504; t(0.975, 9) =
     * 2.2621572; half 2.2621572 * 3.0276504 / sqrt(10) = 2.16585... */
    double a[10], b[10];
    for (int i = 0; i < 10; i++) a[i] = i + 0.5, b[i] = 0.5;
    stat_paired_t p = stat_paired_diff(a, b, 10, 0.95);
    assert_int_equal(p.n, 10);
    assert_close(p.t, T_975_9, 1e-9);
    assert_close(p.sd, sqrt(82.5 / 9), 1e-12);
    assert_close(p.half, 2.16585, 1e-5);
    assert_true(p.excludes_zero); /* [2.334, 6.666] */
}

static void test_paired_missing_values(void **state)
{
    (void)state;
    /* a NaN on either side drops that seed: pairs (2, 1) and (7, 3) are left,
     * d = {1, 4}: mean 2.5, sd |4 - 1| / sqrt(2) = 2.1213; t(0.975, 1) =
     * 12.7062047; half 12.7062047 * 2.1213203 / sqrt(2) = 12.7062047 * 1.5 =
     * 19.059307 */
    const double a[] = {2.0, NAN, 7.0, 3.0}, b[] = {1.0, 1.0, 3.0, NAN};
    stat_paired_t p = stat_paired_diff(a, b, 4, 0.95);
    assert_int_equal(p.n, 2);
    assert_close(p.mean, 2.5, 0);
    assert_close(p.t, T_975_1, 1e-9);
    assert_close(p.half, 19.059307, 1e-6);
    assert_false(p.excludes_zero);

    /* so does an infinite value: the pairs of {2, Inf, 7} - {1, 1, -Inf} leave
     * d = {1}: no interval from inf - inf or inf - 1 */
    const double ai[] = {2.0, INFINITY, 7.0}, bi[] = {1.0, 1.0, -INFINITY};
    p = stat_paired_diff(ai, bi, 3, 0.95);
    assert_int_equal(p.n, 1);
    assert_close(p.mean, 1.0, 0);

    /* one pair: the difference, no interval */
    p = stat_paired_diff(a, b, 2, 0.95);
    assert_int_equal(p.n, 1);
    assert_close(p.mean, 1.0, 0);
    assert_true(isnan(p.sd) && isnan(p.t) && isnan(p.half) && isnan(p.lo) && isnan(p.hi));
    assert_false(p.excludes_zero);

    /* no pair: nothing */
    p = stat_paired_diff(a + 1, b + 1, 1, 0.95); /* (NaN, 1) */
    assert_int_equal(p.n, 0);
    assert_true(isnan(p.mean) && isnan(p.lo));
    assert_false(p.excludes_zero);
    p = stat_paired_diff(NULL, NULL, 0, 0.95);
    assert_int_equal(p.n, 0);

    /* a level outside (0, 1): no interval, and no call GSL would abort on */
    p = stat_paired_diff(a, b, 4, 1.0);
    assert_int_equal(p.n, 2);
    assert_true(isnan(p.half));
}

/* The cblas_sgemm the program binds is OpenBLAS's: the Makefile links -lgsl
 * but not -lgslcblas, whose reference cblas_sgemm would be far slower. The
 * call makes this program need cblas_sgemm as ours do, so a link that put
 * another CBLAS first would bind it here too. */
static void test_cblas_sgemm_is_openblas(void **state)
{
    (void)state;
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    float c[4] = {0};
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    assert_true(c[0] == 19 && c[1] == 22 && c[2] == 43 && c[3] == 50);
    void *sym = dlsym(RTLD_DEFAULT, "cblas_sgemm");
    assert_non_null(sym);
    Dl_info info;
    assert_true(dladdr(sym, &info) != 0 && info.dli_fname);
    char real[PATH_MAX];
    const char *lib = realpath(info.dli_fname, real) ? real : info.dli_fname;
    print_message("cblas_sgemm from %s\n", lib);
    if (!strstr(lib, "openblas") || strstr(lib, "gslcblas"))
        fail_msg("cblas_sgemm is bound to %s, not OpenBLAS", lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_paired_three_seeds),
        cmocka_unit_test(test_paired_ten_seeds),
        cmocka_unit_test(test_paired_missing_values),
        cmocka_unit_test(test_cblas_sgemm_is_openblas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
