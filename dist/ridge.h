/* The linear probe of docs/METHOD.md step E1: ridge regression of one-hot
 * labels on standardised features, solved with ScaLAPACK on BLACS grids over
 * every rank of a communicator.
 *
 * Data layout. Each rank holds its own rows of the feature matrix, any
 * number including none (row-major float, d columns), and their labels
 * (0 .. classes-1). A row's global index is the rows of lower ranks
 * (MPI_Exscan) plus its local index, so results depend on the rows and their
 * global order only, not on the rank count (up to rounding in the sums).
 *
 * Model. Scores s = [x, 1] W with W of (d+1) x classes: the bias is the
 * last row of W, fitted through a constant-1 column appended to X and not
 * regularised. With n fitting rows, A = [X 1] and Y one-hot,
 *     (A^T A + lambda * n * D) W = A^T Y,   D = diag(1, ..., 1, 0),
 * i.e. W minimises (1/n) |A W - Y|^2 + lambda |W without the bias row|^2,
 * so lambda means the same at any n. Prediction: argmax over classes of the
 * scores (ties: the smaller class).
 *
 * Distribution. A (and Y) go into ScaLAPACK block-cyclic matrices on a 1-D
 * grid of all P ranks (P x 1): rank r's rows form block r, in blocks of the
 * largest local row count (shorter shares padded with zero rows, which add
 * nothing, not even to the bias column). pdsyrk gives A^T A and pdgemm A^T Y
 * on that grid; pdgemr2d moves them to a near-square 2-D grid
 * (blacs_grid_shape: 4 ranks -> 2x2) in square blocks of
 * clamp(ceil((d+1) / (2 max(nprow, npcol))), 1, 64), where pdposv (Cholesky)
 * solves, one fresh copy of the Gram matrix per lambda. The solution is
 * assembled on every rank by an MPI_Allreduce (each element has one owner).
 * Everything is double precision. Collective over comm: every rank calls
 * with the same d, classes, lambdas and val_fraction. Any error is reported
 * on every rank (return -1, one line in err). */
#ifndef MIMAE_DIST_RIDGE_H
#define MIMAE_DIST_RIDGE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double lambda;     /* the chosen ridge strength, lambdas[chosen] */
    double val_top1;   /* top-1 on the held-out training rows at that lambda */
    double test_top1;  /* top-1 on the test rows after refitting on all
                          training rows (NaN when there are no test rows) */
    int chosen;        /* index into lambdas */
} ridge_result_t;

/* The linear probe:
 * (1) standardise: per-feature mean and standard deviation (population,
 *     two passes, MPI_Allreduce in double) over all training rows, applied
 *     to training and test rows; a feature with standard deviation 0 (or
 *     not finite) becomes 0 everywhere;
 * (2) held-out split: training row with global index g is held out when
 *     splitmix64(g + 0x6d696d6165) / 2^64 < val_fraction (the top 53 bits
 *     compared), a fixed pseudo-random pick of about val_fraction of the
 *     rows that ignores the rank count and any ordering of the data (sorted
 *     by class, say); both parts must be non-empty, 0 < val_fraction < 1;
 * (3) Gram matrices of the other ("fitting") rows as described above;
 * (4) for each lambda (>= 0) in order: solve, top-1 on the held-out rows;
 *     the best lambda wins, ties to the smaller index;
 * (5) refit on all training rows with that lambda; top-1 on the test rows.
 * Returns 0 and fills out, or -1 with a message: bad arguments, labels out
 * of range, non-finite features, an empty split, or a ScaLAPACK failure
 * ("ridge: pdposv failed (info N) at lambda X: ..."). */
int ridge_probe(const float *train_x, const int32_t *train_y, long n_train_local,
                const float *test_x, const int32_t *test_y, long n_test_local, int d,
                int classes, const double *lambdas, int n_lambdas, double val_fraction,
                ridge_result_t *out, MPI_Comm comm, char *err, size_t errlen);

/* The raw distributed solve on the given rows (all of them, no
 * standardisation, bias as above, n = total rows over the ranks): W,
 * (d+1) x classes row-major (W[j * classes + c]; row d is the bias), is
 * filled identically on every rank. Returns 0, or -1 with a message. */
int ridge_solve(const float *x_local, const int32_t *y_local, long n_local, int d, int classes,
                double lambda, double *W, MPI_Comm comm, char *err, size_t errlen);

#endif
