#include "experiments/report_stats.h"

#include <math.h>
#include <stddef.h>

#include <gsl/gsl_cdf.h>

/* Value i of the sample: a[i], or a[i] - b[i] when b is given (not finite
 * when either is not). */
static double value_at(const double *a, const double *b, int i)
{
    return b ? a[i] - b[i] : a[i];
}

/* Mean and sample standard deviation in two passes (no cancellation of a
 * running sum of squares); the one place both public functions count. */
static stat_summary_t summarise(const double *a, const double *b, int n)
{
    stat_summary_t s = {0, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const double v = value_at(a, b, i);
        if (isfinite(v)) sum += v, s.n++;
    }
    if (s.n == 0) return s;
    s.mean = sum / s.n;
    if (s.n < 2) return s;
    double sq = 0;
    for (int i = 0; i < n; i++) {
        const double v = value_at(a, b, i);
        if (isfinite(v)) sq += (v - s.mean) * (v - s.mean);
    }
    s.sd = sqrt(sq / (s.n - 1));
    return s;
}

stat_summary_t stat_summarise(const double *x, int n) { return summarise(x, NULL, n); }

stat_paired_t stat_paired_diff(const double *a, const double *b, int n, double level)
{
    const stat_summary_t s = summarise(a, b, n);
    stat_paired_t p = {s.n, s.mean, s.sd, NAN, NAN, NAN, NAN, 0};
    /* GSL's default error handler aborts: only valid arguments reach it */
    if (s.n < 2 || !(level > 0 && level < 1)) return p;
    p.t = gsl_cdf_tdist_Pinv(0.5 + level / 2, (double)(s.n - 1));
    p.half = p.t * s.sd / sqrt((double)s.n);
    p.lo = s.mean - p.half;
    p.hi = s.mean + p.half;
    p.excludes_zero = p.lo > 0 || p.hi < 0;
    return p;
}
