/* The statistics of `mimae report` over seeds: mean, sample standard
 * deviation (n - 1) and the paired-difference interval of Student's t.
 *
 * A value that is not finite is one a run does not have (NaN: a metric it
 * did not evaluate; +-Inf: none a mean or a difference could hold): it is
 * left out of a sample, and a pair with one on either side drops that
 * seed. The t quantile is GSL's (gsl_cdf_tdist_Pinv). */
#ifndef MIMAE_EXPERIMENTS_REPORT_STATS_H
#define MIMAE_EXPERIMENTS_REPORT_STATS_H

typedef struct {
    int n;       /* values that are finite */
    double mean; /* NaN when n == 0 */
    double sd;   /* sample standard deviation (n - 1); NaN when n < 2 */
} stat_summary_t;

/* Summary of x[0..n-1]. */
stat_summary_t stat_summarise(const double *x, int n);

typedef struct {
    int n;             /* pairs with both values */
    double mean;       /* mean of d_i = a_i - b_i; NaN when n == 0 */
    double sd;         /* sample standard deviation of d; NaN when n < 2 */
    double t;          /* t quantile (1 + level) / 2, n - 1 degrees of freedom; NaN when n < 2 */
    double half;       /* t * sd / sqrt(n); NaN when n < 2 */
    double lo, hi;     /* mean - half, mean + half; NaN when n < 2 */
    int excludes_zero; /* lo > 0 or hi < 0 (never when n < 2) */
} stat_paired_t;

/* The level (0.95: a 95 % interval) confidence interval of the mean
 * difference a - b over the pairs a[i], b[i], i < n, that have both values.
 * A level outside (0, 1) gives no interval (as n < 2 does). */
stat_paired_t stat_paired_diff(const double *a, const double *b, int n, double level);

#endif
