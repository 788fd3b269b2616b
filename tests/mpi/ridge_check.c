/* Run by tests/test_ridge.c under `mpirun -n R` (R = 1, 2, 4): checks the
 * distributed ridge solver of dist/ridge.h on deterministic synthetic data
 * whose rows are spread unevenly over the ranks.
 *   (a) ridge_solve on the distributed rows equals the serial closed form
 *       computed on rank 0 from all rows with LAPACK's dposv (max relative
 *       difference <= 1e-6), for two lambdas;
 *   (b) ridge_probe on separable classes (one constant feature, one on a
 *       scale of 1000) gives top-1 well above chance (>= 0.6, chance 0.2);
 *   (c) lambda 0 with that constant feature fails on every rank with the
 *       "ridge: pdposv failed (info N) ..." message;
 *   (d) a label out of range on one rank fails on every rank.
 * Usage: ridge_check [OUT]: rank 0 writes the solutions of (a) and the probe
 * result to OUT so runs on different rank counts can be compared. Prints one
 * summary line (rank 0); exit 0 when every check passes, 1 otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "core/data/rng.h"
#include "dist/mpi_check.h"
#include "dist/ridge.h"

/* LAPACK (OpenBLAS provides it); the trailing size_t is the hidden length of
 * the CHARACTER argument. */
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
            double *b, const int *ldb, int *info, size_t uplo_len);

enum { N_SOLVE = 257, D = 24, CLASSES = 5, N_TRAIN = 400, N_TEST = 200, N1 = D + 1 };
static const double solve_lambdas[2] = {1e-3, 1.0};
static const double probe_lambdas[4] = {10.0, 1e-1, 1e-3, 1e-6};

/* First global row of rank r when n rows are cut quadratically (uneven
 * shares: 4 ranks get 16, 48, 80, 113 of 257). */
static long quad_start(long n, int r, int ranks)
{
    return n * r * r / ((long)ranks * ranks);
}

/* As quad_start but rank 0 gets nothing when there are several ranks. */
static long skip0_start(long n, int r, int ranks)
{
    if (r == 0) return 0;
    if (ranks == 1) return n;
    return n * (r - 1) / (ranks - 1);
}

/* (a): a linear model plus noise, features with offsets and scales. */
static void solve_row(uint64_t g, const float *wtrue, float *x, int32_t *y)
{
    rng_t r;
    rng_init(&r, 11, 0, g, RNG_STREAM_EVAL);
    float z[D];
    for (int j = 0; j < D; j++) {
        z[j] = rng_normal(&r);
        x[j] = (float)(0.5 * (j % 5) - 1.0 + (0.5 + 0.1 * j) * z[j]);
    }
    int best = 0;
    double best_s = -INFINITY;
    for (int c = 0; c < CLASSES; c++) {
        double s = 0.5 * rng_normal(&r);
        for (int j = 0; j < D; j++) s += z[j] * wtrue[j * CLASSES + c];
        if (s > best_s) best_s = s, best = c;
    }
    *y = best;
}

/* (b): Gaussian classes around random means; feature 3 constant, feature 5
 * on a large scale. epoch 0: training rows, epoch 2: test rows. */
static void probe_row(uint64_t epoch, uint64_t g, const float *mu, float *x, int32_t *y)
{
    rng_t r;
    rng_init(&r, 23, epoch, g, RNG_STREAM_EVAL);
    const int c = (int)rng_below(&r, CLASSES);
    for (int j = 0; j < D; j++) x[j] = mu[c * D + j] + rng_normal(&r);
    x[3] = 7.0f;
    x[5] = 1000.0f * x[5] + 5000.0f;
    *y = c;
}

/* The closed form on all rows, column-major n1 x classes; 0 or dposv's info. */
static int serial_solve(const float *x, const int32_t *y, long n, double lambda, double *w)
{
    double *g = calloc((size_t)N1 * N1, sizeof(double));
    if (!g) return -1;
    memset(w, 0, sizeof(double) * N1 * CLASSES);
    double a[N1];
    for (long i = 0; i < n; i++) {
        for (int j = 0; j < D; j++) a[j] = x[i * D + j];
        a[D] = 1.0;
        for (int j = 0; j < N1; j++) {
            for (int k = 0; k < N1; k++) g[j + k * N1] += a[j] * a[k];
            w[j + y[i] * N1] += a[j];
        }
    }
    for (int j = 0; j < D; j++) g[j + j * N1] += lambda * (double)n;
    const int n1 = N1, nrhs = CLASSES;
    int info = 0;
    dposv_("U", &n1, &nrhs, g, &n1, w, &n1, &info, 1);
    free(g);
    return info;
}

int main(int argc, char **argv)
{
    MPI_CHECK(MPI_Init(&argc, &argv));
    mpi_check_install();
    int rank = 0, ranks = 1;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &ranks));
    int ok = 1;
    char err[512] = "";
    char summary[1024];
    int len = snprintf(summary, sizeof summary, "ridge_check: %d rank%s:", ranks,
                       ranks == 1 ? "" : "s");

    /* ---- (a) distributed solve vs serial closed form ---- */
    float wtrue[D * CLASSES];
    {
        rng_t r;
        rng_init(&r, 11, 1, 0, RNG_STREAM_EVAL);
        for (int i = 0; i < D * CLASSES; i++) wtrue[i] = rng_normal(&r);
    }
    const long a0 = quad_start(N_SOLVE, rank, ranks), a1 = quad_start(N_SOLVE, rank + 1, ranks);
    const long na = a1 - a0;
    float *xa = malloc(sizeof(float) * (size_t)(na > 0 ? na : 1) * D);
    int32_t *ya = malloc(sizeof(int32_t) * (size_t)(na > 0 ? na : 1));
    float *xall = malloc(sizeof(float) * N_SOLVE * D);
    int32_t *yall = malloc(sizeof(int32_t) * N_SOLVE);
    if (!xa || !ya || !xall || !yall) MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < na; i++) solve_row((uint64_t)(a0 + i), wtrue, xa + i * D, ya + i);

    /* rank 0 gathers every row for the serial reference */
    int *counts = malloc(sizeof(int) * (size_t)ranks), *displs = malloc(sizeof(int) * (size_t)ranks);
    int *fcounts = malloc(sizeof(int) * (size_t)ranks), *fdispls = malloc(sizeof(int) * (size_t)ranks);
    if (!counts || !displs || !fcounts || !fdispls) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int r = 0; r < ranks; r++) {
        displs[r] = (int)quad_start(N_SOLVE, r, ranks);
        counts[r] = (int)quad_start(N_SOLVE, r + 1, ranks) - displs[r];
        fcounts[r] = counts[r] * D;
        fdispls[r] = displs[r] * D;
    }
    MPI_CHECK(MPI_Gatherv(xa, (int)na * D, MPI_FLOAT, xall, fcounts, fdispls, MPI_FLOAT, 0,
                          MPI_COMM_WORLD));
    MPI_CHECK(MPI_Gatherv(ya, (int)na, MPI_INT32_T, yall, counts, displs, MPI_INT32_T, 0,
                          MPI_COMM_WORLD));

    double W[2][N1 * CLASSES], rel[2] = {0.0, 0.0};
    for (int l = 0; l < 2; l++) {
        if (ridge_solve(xa, ya, na, D, CLASSES, solve_lambdas[l], W[l], MPI_COMM_WORLD, err,
                        sizeof err)) {
            if (rank == 0) fprintf(stderr, "ridge_check: ridge_solve: %s\n", err);
            ok = 0;
            rel[l] = INFINITY;
            continue;
        }
        if (rank == 0) {
            double ref[N1 * CLASSES];
            int info = serial_solve(xall, yall, N_SOLVE, solve_lambdas[l], ref);
            if (info != 0) {
                fprintf(stderr, "ridge_check: serial dposv info %d\n", info);
                rel[l] = INFINITY;
            } else {
                double diff = 0.0, scale = 0.0;
                for (int j = 0; j < N1; j++)
                    for (int c = 0; c < CLASSES; c++) {
                        diff = fmax(diff, fabs(W[l][j * CLASSES + c] - ref[j + c * N1]));
                        scale = fmax(scale, fabs(ref[j + c * N1]));
                    }
                rel[l] = diff / fmax(scale, 1e-300);
            }
            if (!(rel[l] <= 1e-6)) ok = 0;
        }
    }
    len += snprintf(summary + len, sizeof summary - (size_t)len,
                    " solve vs serial max rel diff %.2e (lambda %g), %.2e (lambda %g);", rel[0],
                    solve_lambdas[0], rel[1], solve_lambdas[1]);

    /* ---- (b) the probe end to end ---- */
    float mu[CLASSES * D];
    {
        rng_t r;
        rng_init(&r, 23, 1, 0, RNG_STREAM_EVAL);
        for (int i = 0; i < CLASSES * D; i++) mu[i] = 0.6f * rng_normal(&r);
    }
    const long t0 = quad_start(N_TRAIN, rank, ranks), t1 = quad_start(N_TRAIN, rank + 1, ranks);
    const long e0 = skip0_start(N_TEST, rank, ranks), e1 = skip0_start(N_TEST, rank + 1, ranks);
    const long nt = t1 - t0, ne = e1 - e0;
    float *xt = malloc(sizeof(float) * (size_t)(nt > 0 ? nt : 1) * D);
    int32_t *yt = malloc(sizeof(int32_t) * (size_t)(nt > 0 ? nt : 1));
    float *xe = malloc(sizeof(float) * (size_t)(ne > 0 ? ne : 1) * D);
    int32_t *ye = malloc(sizeof(int32_t) * (size_t)(ne > 0 ? ne : 1));
    if (!xt || !yt || !xe || !ye) MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < nt; i++) probe_row(0, (uint64_t)(t0 + i), mu, xt + i * D, yt + i);
    for (long i = 0; i < ne; i++) probe_row(2, (uint64_t)(e0 + i), mu, xe + i * D, ye + i);
    ridge_result_t res = {0.0, 0.0, 0.0, -1};
    if (ridge_probe(xt, yt, nt, xe, ye, ne, D, CLASSES, probe_lambdas, 4, 0.25, &res,
                    MPI_COMM_WORLD, err, sizeof err)) {
        if (rank == 0) fprintf(stderr, "ridge_check: ridge_probe: %s\n", err);
        ok = 0;
    } else if (!(res.test_top1 >= 0.6 && res.val_top1 >= 0.6 && res.chosen >= 0 &&
                 res.chosen < 4 && res.lambda == probe_lambdas[res.chosen])) {
        ok = 0;
    }
    len += snprintf(summary + len, sizeof summary - (size_t)len,
                    " probe lambda %g (#%d) held-out top-1 %.3f test top-1 %.3f (chance 0.2);",
                    res.lambda, res.chosen, res.val_top1, res.test_top1);

    /* ---- (c) degenerate features at lambda 0 fail on every rank ---- */
    const double zero_lambda = 0.0;
    ridge_result_t bad;
    int rc = ridge_probe(xt, yt, nt, xe, ye, ne, D, CLASSES, &zero_lambda, 1, 0.25, &bad,
                         MPI_COMM_WORLD, err, sizeof err);
    const int degenerate_ok = rc == -1 && strncmp(err, "ridge: pdposv failed (info ", 27) == 0 &&
                              strstr(err, "degenerate") && !strchr(err, '\n');
    if (!degenerate_ok) ok = 0;
    if (rank == 0) fprintf(stderr, "ridge_check: lambda 0, constant feature: %s\n", err);

    /* ---- (d) a bad label on the last rank only fails on every rank ---- */
    err[0] = '\0';
    int32_t saved = nt > 0 ? yt[0] : 0;
    if (rank == ranks - 1 && nt > 0) yt[0] = CLASSES;
    rc = ridge_probe(xt, yt, nt, xe, ye, ne, D, CLASSES, probe_lambdas, 4, 0.25, &bad,
                     MPI_COMM_WORLD, err, sizeof err);
    if (nt > 0) yt[0] = saved;
    const int label_ok = rc == -1 && strstr(err, "label is outside") != NULL;
    if (!label_ok) ok = 0;
    len += snprintf(summary + len, sizeof summary - (size_t)len,
                    " degenerate lambda 0 %s; bad label %s;", degenerate_ok ? "rejected" : "NOT rejected",
                    label_ok ? "rejected" : "NOT rejected");

    int all_ok = 0;
    MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (rank == 0) {
        if (argc > 1) {
            FILE *f = fopen(argv[1], "w");
            if (!f) {
                perror(argv[1]);
                all_ok = 0;
            } else {
                fprintf(f, "%d %d %d\n", N1, CLASSES, 2);
                for (int l = 0; l < 2; l++)
                    for (int i = 0; i < N1 * CLASSES; i++) fprintf(f, "%.17g\n", W[l][i]);
                fprintf(f, "%d %.17g %.17g\n", res.chosen, res.val_top1, res.test_top1);
                if (fclose(f) != 0) all_ok = 0;
            }
        }
        printf("%s %s\n", summary, all_ok ? "PASS" : "FAIL");
        fflush(stdout);
    }
    MPI_CHECK(MPI_Bcast(&all_ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    free(xa);
    free(ya);
    free(xall);
    free(yall);
    free(counts);
    free(displs);
    free(fcounts);
    free(fdispls);
    free(xt);
    free(yt);
    free(xe);
    free(ye);
    MPI_CHECK(MPI_Finalize());
    return all_ok ? 0 : 1;
}
