#include "dist/ridge.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/collectives.h"
#include "dist/mpi_check.h"
#include "dist/scalapack.h"

/* The normal equations of one fit, on the 2-D grid, plus what the solves
 * and evaluations reuse. */
typedef struct {
    MPI_Comm comm;
    int ranks, rank;
    int d, n1, classes; /* n1 = d + 1: features and the bias column */
    int nb;             /* square block size on the 2-D grid */
    blacs_grid_t g1;    /* ranks x 1: the rows of X */
    blacs_grid_t g2;    /* near-square: Gram matrix, right-hand side, solve */
    int descG[9], descB[9];
    int lrG, lcG, lcB;  /* local rows (G and B) and columns on the 2-D grid */
    double *G, *B;      /* A^T A (upper triangle) and A^T Y, local blocks */
    double *A, *X;      /* per-solve copies that pdposv overwrites */
    double *scores;     /* classes */
    long n_rows;        /* rows in the current normal equations */
} ridge_ctx_t;

/* Which rows of a rank's share take part: all (mask NULL) or those with
 * mask[i] == want; features raw (mean NULL) or standardised. */
typedef struct {
    const float *x;
    const int32_t *y;
    long n;
    const double *mean, *inv_std;
    const unsigned char *mask;
    unsigned char want;
} ridge_rows_t;

static int row_used(const ridge_rows_t *r, long i)
{
    return !r->mask || r->mask[i] == r->want;
}

static double feature(const ridge_rows_t *r, int d, long i, int j)
{
    double v = r->x[(size_t)i * (size_t)d + (size_t)j];
    return r->mean ? (v - r->mean[j]) * r->inv_std[j] : v;
}

static void ctx_close(ridge_ctx_t *c)
{
    free(c->G);
    free(c->B);
    free(c->A);
    free(c->X);
    free(c->scores);
    c->G = c->B = c->A = c->X = c->scores = NULL;
    blacs_grid_free(&c->g2);
    blacs_grid_free(&c->g1);
}

static int ctx_open(ridge_ctx_t *c, MPI_Comm comm, int d, int classes, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->g1.ctxt = c->g1.sys = c->g2.ctxt = c->g2.sys = -1;
    c->comm = comm;
    c->d = d;
    c->n1 = d + 1;
    c->classes = classes;
    MPI_CHECK(MPI_Comm_size(comm, &c->ranks));
    MPI_CHECK(MPI_Comm_rank(comm, &c->rank));
    int pr = 1, pc = 1;
    blacs_grid_shape(c->ranks, &pr, &pc);
    if (blacs_grid_create(&c->g1, comm, c->ranks, 1, err, errlen)) return -1;
    if (blacs_grid_create(&c->g2, comm, pr, pc, err, errlen)) {
        ctx_close(c);
        return -1;
    }
    const int pmax = pr > pc ? pr : pc;
    c->nb = (c->n1 + 2 * pmax - 1) / (2 * pmax);
    if (c->nb > 64) c->nb = 64;
    if (c->nb < 1) c->nb = 1;
    if (scalapack_desc(c->descG, &c->g2, c->n1, c->n1, c->nb, c->nb, "the Gram matrix", err, errlen) ||
        scalapack_desc(c->descB, &c->g2, c->n1, classes, c->nb, c->nb, "the right-hand side", err,
                       errlen)) {
        ctx_close(c);
        return -1;
    }
    c->lrG = scalapack_local_count(c->n1, c->nb, c->g2.myrow, c->g2.nprow);
    c->lcG = scalapack_local_count(c->n1, c->nb, c->g2.mycol, c->g2.npcol);
    c->lcB = scalapack_local_count(classes, c->nb, c->g2.mycol, c->g2.npcol);
    const size_t ng = (size_t)c->descG[8] * (size_t)(c->lcG > 0 ? c->lcG : 1);
    const size_t nbk = (size_t)c->descB[8] * (size_t)(c->lcB > 0 ? c->lcB : 1);
    c->G = calloc(ng, sizeof(double));
    c->A = calloc(ng, sizeof(double));
    c->B = calloc(nbk, sizeof(double));
    c->X = calloc(nbk, sizeof(double));
    c->scores = calloc((size_t)classes, sizeof(double));
    if (!dist_all_ok(c->G && c->A && c->B && c->X && c->scores, comm)) {
        snprintf(err, errlen, "ridge: out of memory for the %d x %d normal equations", c->n1,
                 c->n1);
        ctx_close(c);
        return -1;
    }
    return 0;
}

/* Forms A^T A and A^T Y of the selected rows (A = [X 1], Y one-hot) on the
 * 1-D grid and moves them to the 2-D grid. */
static int ctx_build(ridge_ctx_t *c, const ridge_rows_t *rows, char *err, size_t errlen)
{
    long m_local = 0;
    for (long i = 0; i < rows->n; i++) m_local += row_used(rows, i);
    long mb = 0;
    MPI_CHECK(MPI_Allreduce(&m_local, &mb, 1, MPI_LONG, MPI_MAX, c->comm));
    MPI_CHECK(MPI_Allreduce(&m_local, &c->n_rows, 1, MPI_LONG, MPI_SUM, c->comm));
    if (c->n_rows == 0) {
        snprintf(err, errlen, "ridge: no training rows to fit on any rank");
        return -1;
    }
    if (mb * c->ranks > INT_MAX) {
        snprintf(err, errlen, "ridge: %d ranks x %ld rows exceeds ScaLAPACK's int row count",
                 c->ranks, mb);
        return -1;
    }
    const int mbi = (int)mb, M = mbi * c->ranks, n1 = c->n1, classes = c->classes;
    int descX[9], descY[9], descG1[9], descB1[9];
    if (scalapack_desc(descX, &c->g1, M, n1, mbi, n1, "the feature rows", err, errlen) ||
        scalapack_desc(descY, &c->g1, M, classes, mbi, classes, "the one-hot labels", err, errlen) ||
        scalapack_desc(descG1, &c->g1, n1, n1, c->nb, c->nb, "the 1-D Gram matrix", err, errlen) ||
        scalapack_desc(descB1, &c->g1, n1, classes, c->nb, c->nb, "the 1-D right-hand side", err,
                       errlen))
        return -1;
    /* 1-D grid: every rank holds block `rank` of mbi rows and all columns. */
    const size_t ldx = (size_t)descX[8], ldg = (size_t)descG1[8];
    double *X = calloc(ldx * (size_t)n1, sizeof(double));
    double *Y = calloc(ldx * (size_t)classes, sizeof(double));
    double *G1 = calloc(ldg * (size_t)n1, sizeof(double));
    double *B1 = calloc(ldg * (size_t)classes, sizeof(double));
    int rc = -1;
    if (!dist_all_ok(X && Y && G1 && B1, c->comm)) {
        snprintf(err, errlen, "ridge: out of memory for %d rows x %d features", mbi, n1);
        goto done;
    }
    size_t li = 0;
    for (long i = 0; i < rows->n; i++) {
        if (!row_used(rows, i)) continue;
        for (int j = 0; j < c->d; j++) X[li + (size_t)j * ldx] = feature(rows, c->d, i, j);
        X[li + (size_t)c->d * ldx] = 1.0;
        Y[li + (size_t)rows->y[i] * ldx] = 1.0;
        li++;
    }
    const int one = 1;
    const double alpha = 1.0, beta = 0.0;
    pdsyrk_("U", "T", &n1, &M, &alpha, X, &one, &one, descX, &beta, G1, &one, &one, descG1);
    pdgemm_("T", "N", &n1, &classes, &M, &alpha, X, &one, &one, descX, Y, &one, &one, descY,
            &beta, B1, &one, &one, descB1);
    pdgemr2d_(&n1, &n1, G1, &one, &one, descG1, c->G, &one, &one, c->descG, &c->g1.ctxt);
    pdgemr2d_(&n1, &classes, B1, &one, &one, descB1, c->B, &one, &one, c->descB, &c->g1.ctxt);
    rc = 0;
done:
    free(X);
    free(Y);
    free(G1);
    free(B1);
    return rc;
}

/* Solves (A^T A + lambda n D) W = A^T Y; W (n1 x classes, row-major) on
 * every rank. */
static int ctx_solve(ridge_ctx_t *c, double lambda, double *W, char *err, size_t errlen)
{
    const size_t ldg = (size_t)c->descG[8], ldb = (size_t)c->descB[8];
    memcpy(c->A, c->G, ldg * (size_t)(c->lcG > 0 ? c->lcG : 1) * sizeof(double));
    memcpy(c->X, c->B, ldb * (size_t)(c->lcB > 0 ? c->lcB : 1) * sizeof(double));
    const double shift = lambda * (double)c->n_rows;
    for (int jl = 0; jl < c->lcG; jl++) {
        const int j = scalapack_global_index(jl, c->nb, c->g2.mycol, c->g2.npcol);
        if (j >= c->d) continue; /* the bias is not regularised */
        for (int il = 0; il < c->lrG; il++)
            if (scalapack_global_index(il, c->nb, c->g2.myrow, c->g2.nprow) == j)
                c->A[(size_t)il + (size_t)jl * ldg] += shift;
    }
    const int one = 1;
    int info = 0;
    pdposv_("U", &c->n1, &c->classes, c->A, &one, &one, c->descG, c->X, &one, &one, c->descB,
            &info, 1);
    /* info may be known to part of the grid only: agree on it. */
    int lo = 0, hi = 0;
    MPI_CHECK(MPI_Allreduce(&info, &lo, 1, MPI_INT, MPI_MIN, c->comm));
    MPI_CHECK(MPI_Allreduce(&info, &hi, 1, MPI_INT, MPI_MAX, c->comm));
    info = lo < 0 ? lo : hi;
    if (info > 0) {
        snprintf(err, errlen,
                 "ridge: pdposv failed (info %d) at lambda %g: features are degenerate; the "
                 "regularised Gram matrix of %ld rows x %d features (+ bias) is not positive "
                 "definite, use a larger lambda",
                 info, lambda, c->n_rows, c->d);
        return -1;
    }
    if (info < 0) {
        snprintf(err, errlen, "ridge: pdposv failed (info %d) at lambda %g: argument %d rejected",
                 info, lambda, -info);
        return -1;
    }
    const size_t nw = (size_t)c->n1 * (size_t)c->classes;
    memset(W, 0, nw * sizeof(double));
    for (int jl = 0; jl < c->lcB; jl++) {
        const int k = scalapack_global_index(jl, c->nb, c->g2.mycol, c->g2.npcol);
        for (int il = 0; il < c->lrG; il++) {
            const int j = scalapack_global_index(il, c->nb, c->g2.myrow, c->g2.nprow);
            W[(size_t)j * (size_t)c->classes + (size_t)k] = c->X[(size_t)il + (size_t)jl * ldb];
        }
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, W, (int)nw, MPI_DOUBLE, MPI_SUM, c->comm));
    return 0;
}

/* Top-1 of the selected rows over all ranks; NaN when there are none. */
static double ctx_top1(ridge_ctx_t *c, const ridge_rows_t *rows, const double *W)
{
    const int d = c->d, classes = c->classes;
    long counts[2] = {0, 0}; /* correct, total */
    for (long i = 0; i < rows->n; i++) {
        if (!row_used(rows, i)) continue;
        for (int k = 0; k < classes; k++) c->scores[k] = W[(size_t)d * (size_t)classes + (size_t)k];
        for (int j = 0; j < d; j++) {
            const double z = feature(rows, d, i, j);
            const double *w = W + (size_t)j * (size_t)classes;
            for (int k = 0; k < classes; k++) c->scores[k] += z * w[k];
        }
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (c->scores[k] > c->scores[best]) best = k;
        counts[0] += best == rows->y[i];
        counts[1]++;
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_LONG, MPI_SUM, c->comm));
    return counts[1] > 0 ? (double)counts[0] / (double)counts[1] : NAN;
}

/* Shape checks every rank makes alike (same arguments everywhere). */
static int check_shape(int d, int classes, char *err, size_t errlen)
{
    if (d < 1 || classes < 2) {
        snprintf(err, errlen, "ridge: need d >= 1 features and >= 2 classes (got d %d, classes %d)",
                 d, classes);
        return -1;
    }
    if ((long)(d + 1L) * classes > INT_MAX / 2) {
        snprintf(err, errlen, "ridge: %d features x %d classes is too large", d, classes);
        return -1;
    }
    return 0;
}

/* Rank-local input checks, agreed over the ranks: 0, or the smallest
 * problem code any rank found, with its message. */
enum { BAD_NONE = 0, BAD_COUNT = 1, BAD_POINTER = 2, BAD_LABEL = 3, BAD_VALUE = 4 };

static int local_rows_problem(const float *x, const int32_t *y, long n, int d, int classes)
{
    if (n < 0) return BAD_COUNT;
    if (n > 0 && (!x || !y)) return BAD_POINTER;
    for (long i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes) return BAD_LABEL;
    const size_t nx = (size_t)n * (size_t)d;
    for (size_t i = 0; i < nx; i++)
        if (!isfinite(x[i])) return BAD_VALUE;
    return BAD_NONE;
}

static int agree_on_rows(int problem, const char *what, int classes, MPI_Comm comm, char *err,
                         size_t errlen)
{
    int code = problem == BAD_NONE ? INT_MAX : problem, worst = 0;
    MPI_CHECK(MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MIN, comm));
    switch (worst) {
    case BAD_COUNT:
        snprintf(err, errlen, "ridge: a rank passed a negative number of %s rows", what);
        return -1;
    case BAD_POINTER:
        snprintf(err, errlen, "ridge: a rank passed %s rows without their features or labels",
                 what);
        return -1;
    case BAD_LABEL:
        snprintf(err, errlen, "ridge: a %s label is outside 0..%d", what, classes - 1);
        return -1;
    case BAD_VALUE:
        snprintf(err, errlen, "ridge: a %s feature is not finite (NaN or Inf)", what);
        return -1;
    default:
        return 0;
    }
}

int ridge_solve(const float *x_local, const int32_t *y_local, long n_local, int d, int classes,
                double lambda, double *W, MPI_Comm comm, char *err, size_t errlen)
{
    if (check_shape(d, classes, err, errlen)) return -1;
    if (!(lambda >= 0.0) || !isfinite(lambda)) {
        snprintf(err, errlen, "ridge: lambda %g must be finite and >= 0", lambda);
        return -1;
    }
    if (agree_on_rows(local_rows_problem(x_local, y_local, n_local, d, classes), "training",
                      classes, comm, err, errlen))
        return -1;
    ridge_ctx_t c;
    if (ctx_open(&c, comm, d, classes, err, errlen)) return -1;
    const ridge_rows_t rows = {x_local, y_local, n_local, NULL, NULL, NULL, 0};
    int rc = ctx_build(&c, &rows, err, errlen);
    if (rc == 0) rc = ctx_solve(&c, lambda, W, err, errlen);
    ctx_close(&c);
    return rc;
}

/* splitmix64 (Steele, Lea, Flood 2014): one output for state z. */
static uint64_t splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int held_out(uint64_t global_row, double val_fraction)
{
    const uint64_t h = splitmix64(global_row + 0x6d696d6165ULL);
    return (double)(h >> 11) * 0x1p-53 < val_fraction;
}

/* Per-feature mean and 1/std over all ranks' training rows (two passes);
 * a feature with no spread gets 1/std = 0. */
static void standardisation(const float *x, long n_local, long n_global, int d, double *mean,
                            double *inv_std, MPI_Comm comm)
{
    for (int j = 0; j < d; j++) mean[j] = 0.0, inv_std[j] = 0.0;
    for (long i = 0; i < n_local; i++)
        for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * (size_t)d + (size_t)j];
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mean, d, MPI_DOUBLE, MPI_SUM, comm));
    for (int j = 0; j < d; j++) mean[j] /= (double)n_global;
    for (long i = 0; i < n_local; i++)
        for (int j = 0; j < d; j++) {
            const double v = x[(size_t)i * (size_t)d + (size_t)j] - mean[j];
            inv_std[j] += v * v;
        }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, inv_std, d, MPI_DOUBLE, MPI_SUM, comm));
    for (int j = 0; j < d; j++) {
        const double sd = sqrt(inv_std[j] / (double)n_global);
        inv_std[j] = sd > 0.0 && isfinite(1.0 / sd) ? 1.0 / sd : 0.0;
    }
}

int ridge_probe(const float *train_x, const int32_t *train_y, long n_train_local,
                const float *test_x, const int32_t *test_y, long n_test_local, int d,
                int classes, const double *lambdas, int n_lambdas, double val_fraction,
                ridge_result_t *out, MPI_Comm comm, char *err, size_t errlen)
{
    if (check_shape(d, classes, err, errlen)) return -1;
    if (n_lambdas < 1 || !lambdas || !out) {
        snprintf(err, errlen, "ridge: need at least one lambda and a result to fill");
        return -1;
    }
    for (int i = 0; i < n_lambdas; i++)
        if (!(lambdas[i] >= 0.0) || !isfinite(lambdas[i])) {
            snprintf(err, errlen, "ridge: lambda %g (entry %d) must be finite and >= 0",
                     lambdas[i], i);
            return -1;
        }
    if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
        snprintf(err, errlen, "ridge: val_fraction %g must lie strictly between 0 and 1",
                 val_fraction);
        return -1;
    }
    if (agree_on_rows(local_rows_problem(train_x, train_y, n_train_local, d, classes), "training",
                      classes, comm, err, errlen) ||
        agree_on_rows(local_rows_problem(test_x, test_y, n_test_local, d, classes), "test",
                      classes, comm, err, errlen))
        return -1;

    /* the held-out split by global row index */
    long offset = 0, n_train = 0;
    MPI_CHECK(MPI_Exscan(&n_train_local, &offset, 1, MPI_LONG, MPI_SUM, comm));
    int rank = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    if (rank == 0) offset = 0; /* MPI_Exscan leaves rank 0's result undefined */
    MPI_CHECK(MPI_Allreduce(&n_train_local, &n_train, 1, MPI_LONG, MPI_SUM, comm));
    unsigned char *val = malloc((size_t)(n_train_local > 0 ? n_train_local : 1));
    double *mean = malloc((size_t)d * sizeof(double));
    double *inv_std = malloc((size_t)d * sizeof(double));
    double *W = malloc((size_t)(d + 1) * (size_t)classes * sizeof(double));
    int rc = -1;
    ridge_ctx_t c;
    int ctx_is_open = 0;
    if (!dist_all_ok(val && mean && inv_std && W, comm)) {
        snprintf(err, errlen, "ridge: out of memory for %ld rows x %d features", n_train_local, d);
        goto done;
    }
    long counts[2] = {0, 0}; /* held out, fitting */
    for (long i = 0; i < n_train_local; i++) {
        val[i] = (unsigned char)held_out((uint64_t)(offset + i), val_fraction);
        counts[val[i] ? 0 : 1]++;
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_LONG, MPI_SUM, comm));
    if (counts[0] == 0 || counts[1] == 0) {
        snprintf(err, errlen,
                 "ridge: the held-out split of %ld training rows at val_fraction %g leaves %ld "
                 "held-out and %ld fitting rows; both must be non-empty",
                 n_train, val_fraction, counts[0], counts[1]);
        goto done;
    }
    standardisation(train_x, n_train_local, n_train, d, mean, inv_std, comm);

    if (ctx_open(&c, comm, d, classes, err, errlen)) goto done;
    ctx_is_open = 1;
    const ridge_rows_t fit = {train_x, train_y, n_train_local, mean, inv_std, val, 0};
    const ridge_rows_t held = {train_x, train_y, n_train_local, mean, inv_std, val, 1};
    if (ctx_build(&c, &fit, err, errlen)) goto done;
    int best = -1;
    double best_top1 = -1.0;
    for (int i = 0; i < n_lambdas; i++) {
        if (ctx_solve(&c, lambdas[i], W, err, errlen)) goto done;
        const double top1 = ctx_top1(&c, &held, W);
        if (top1 > best_top1) best = i, best_top1 = top1;
    }

    const ridge_rows_t all = {train_x, train_y, n_train_local, mean, inv_std, NULL, 0};
    const ridge_rows_t test = {test_x, test_y, n_test_local, mean, inv_std, NULL, 0};
    if (ctx_build(&c, &all, err, errlen) || ctx_solve(&c, lambdas[best], W, err, errlen)) goto done;
    out->lambda = lambdas[best];
    out->val_top1 = best_top1;
    out->test_top1 = ctx_top1(&c, &test, W);
    out->chosen = best;
    rc = 0;
done:
    if (ctx_is_open) ctx_close(&c);
    free(val);
    free(mean);
    free(inv_std);
    free(W);
    return rc;
}
