/* Run by tests/test_knn.c under mpirun: the distributed k-NN classifier
 * (dist/knn.h) on deterministic clustered data, each rank holding an uneven
 * share of the train and test rows. Rank 0 gathers every row and the
 * predictions, checks them against a brute-force serial k-NN (double
 * precision, full sort) and writes one line per test row
 * ("index prediction label") and the top-1 line to OUT. Also checks that bad
 * input on one rank makes every rank fail with the same message.
 *
 *   knn_check OUT [--train N] [--test N] [--d D] [--classes C]
 *             [--data-classes C] [--k K] [--batch B] [--train-first N]
 *             [--test-first N] [--seed S] [--dup P]
 *
 * --data-classes: how many classes the data uses (the rest get no rows, so
 * no neighbours); --train-first/--test-first: rank 0's share (the rest split
 * evenly over the other ranks); --dup P: train row g >= P repeats the
 * features of train row g % P with its own label (exact ties); otherwise rank r gets a share proportional
 * to r + 1. Exit 0 when everything agrees, 1 otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "core/data/rng.h"
#include "dist/knn.h"
#include "dist/mpi_check.h"

typedef struct {
    long train, test, train_first, test_first, dup;
    int d, classes, data_classes, k, batch;
    uint64_t seed;
} opts_t;

/* Rows [*lo, *hi) of n for rank r of R. */
static void share(long n, long first, int r, int R, long *lo, long *hi)
{
    if (R == 1) {
        *lo = 0, *hi = n;
    } else if (first >= 0) {
        long rest = n - first, per = rest / (R - 1), extra = rest % (R - 1);
        if (r == 0) {
            *lo = 0, *hi = first;
        } else {
            int q = r - 1;
            *lo = first + q * per + (q < extra ? q : extra);
            *hi = *lo + per + (q < extra);
        }
    } else {
        long total = (long)R * (R + 1) / 2, before = (long)r * (r + 1) / 2;
        *lo = n * before / total;
        *hi = n * (before + r + 1) / total;
    }
}

/* Row g of the data set (train rows 0..train-1, test rows after them):
 * label uniform over data_classes, x = centre[label] + noise. */
static void make_row(const opts_t *o, const float *centres, long g, float *x, int32_t *y)
{
    rng_t r;
    rng_init(&r, o->seed, 0, (uint64_t)g, RNG_STREAM_EVAL);
    int c = (int)rng_below(&r, (uint32_t)o->data_classes);
    *y = c;
    for (int j = 0; j < o->d; j++) x[j] = centres[(size_t)c * o->d + j] + 1.6f * rng_normal(&r);
    /* --dup P: train row g takes the features of train row g % P but keeps
     * its own label, so equal similarities with different labels abound */
    if (o->dup > 0 && g < o->train && g >= o->dup) {
        int32_t own = *y;
        make_row(o, centres, g % o->dup, x, y);
        *y = own;
    }
}

/* Brute force: double precision cosine similarities, full sort, votes
 * exp(sim / T), ties to the smaller class. */
typedef struct { double sim; long idx; } cand_t;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    if (a->sim != b->sim) return a->sim > b->sim ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static void normalise_double(double *out, const float *x, long n, int d)
{
    for (long t = 0; t < n; t++) {
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)x[t * d + j] * x[t * d + j];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int j = 0; j < d; j++) out[t * d + j] = x[t * d + j] * inv;
    }
}

static void brute_force(const float *tx, const int32_t *ty, long nt, const float *qx, long nq,
                        int d, int classes, int k, double T, int32_t *pred)
{
    double *a = malloc((size_t)nt * d * sizeof(double)), *q = malloc((size_t)nq * d * sizeof(double));
    cand_t *c = malloc((size_t)nt * sizeof(cand_t));
    double *votes = malloc((size_t)classes * sizeof(double));
    if (!a || !q || !c || !votes) MPI_Abort(MPI_COMM_WORLD, 1);
    normalise_double(a, tx, nt, d);
    normalise_double(q, qx, nq, d);
    int kk = k < nt ? k : (int)nt;
    for (long i = 0; i < nq; i++) {
        for (long j = 0; j < nt; j++) {
            double s = 0.0;
            for (int e = 0; e < d; e++) s += q[i * d + e] * a[j * d + e];
            c[j].sim = s, c[j].idx = j;
        }
        qsort(c, (size_t)nt, sizeof(cand_t), cand_cmp);
        for (int m = 0; m < classes; m++) votes[m] = 0.0;
        for (int m = 0; m < kk; m++) votes[ty[c[m].idx]] += exp(c[m].sim / T);
        int best = 0;
        for (int m = 1; m < classes; m++)
            if (votes[m] > votes[best]) best = m;
        pred[i] = best;
    }
    free(a), free(q), free(c), free(votes);
}

/* Gathers the rows [lo, hi) of every rank (elem ints/floats per row) to rank 0. */
static void gather_rows(const void *mine, void *all, long lo, long hi, int elem,
                        MPI_Datatype type, int R)
{
    int n = (int)((hi - lo) * elem), off = (int)(lo * elem);
    int *counts = malloc((size_t)R * sizeof(int)), *displs = malloc((size_t)R * sizeof(int));
    if (!counts || !displs) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_CHECK(MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Gather(&off, 1, MPI_INT, displs, 1, MPI_INT, 0, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Gatherv(mine, n, type, all, counts, displs, type, 0, MPI_COMM_WORLD));
    free(counts), free(displs);
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){600, 200, -1, -1, 0, 16, 4, 4, 20, 48, 42};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *key = argv[i];
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(key, "--train")) o->train = v;
        else if (!strcmp(key, "--test")) o->test = v;
        else if (!strcmp(key, "--d")) o->d = (int)v;
        else if (!strcmp(key, "--classes")) o->classes = (int)v;
        else if (!strcmp(key, "--data-classes")) o->data_classes = (int)v;
        else if (!strcmp(key, "--k")) o->k = (int)v;
        else if (!strcmp(key, "--batch")) o->batch = (int)v;
        else if (!strcmp(key, "--train-first")) o->train_first = v;
        else if (!strcmp(key, "--test-first")) o->test_first = v;
        else if (!strcmp(key, "--seed")) o->seed = (uint64_t)v;
        else if (!strcmp(key, "--dup")) o->dup = v;
        else return -1;
    }
    if ((argc - 2) % 2) return -1;
    if (o->data_classes > o->classes) o->data_classes = o->classes;
    return 0;
}

/* Bad input on the last rank: every rank must return -1 with one message. */
static int check_errors(const float *tx, int32_t *ty, long nt, const float *qx, const int32_t *qy,
                        long nq, const opts_t *o, int rank, int R)
{
    int ok = 1;
    char err[256] = "", first[256];
    double top1 = 0.0;
    int32_t saved = nt > 0 ? ty[0] : 0;
    if (rank == R - 1 && nt > 0) ty[0] = (int32_t)o->classes; /* out of range */
    int rc = knn_classify(tx, ty, nt, qx, qy, nq, o->d, o->classes, o->k, 0.07f, &top1,
                          MPI_COMM_WORLD, err, sizeof err);
    if (nt > 0) ty[0] = saved;
    /* (the last rank has train rows in every configuration the tests use) */
    if (rc != -1 || !strstr(err, "train label")) ok = 0;
    if (rank == 0) snprintf(first, sizeof first, "%s", err);
    MPI_CHECK(MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD));
    if (strcmp(first, err)) ok = 0;
    if (rank == 0) printf("  bad label on rank %d: %s\n", R - 1, err);

    err[0] = '\0';
    rc = knn_classify(tx, ty, nt, qx, qy, nq, o->d, o->classes, 0, 0.07f, &top1, MPI_COMM_WORLD,
                      err, sizeof err);
    if (rc != -1 || !err[0]) ok = 0;
    err[0] = '\0';
    rc = knn_classify(tx, ty, nt, qx, qy, nq, o->d, o->classes, o->k, -1.0f, &top1,
                      MPI_COMM_WORLD, err, sizeof err);
    if (rc != -1 || !err[0]) ok = 0;
    if (R > 1) {
        err[0] = '\0';
        rc = knn_classify(tx, ty, nt, qx, qy, nq, o->d, o->classes, o->k + rank, 0.07f, &top1,
                          MPI_COMM_WORLD, err, sizeof err);
        if (rc != -1 || !strstr(err, "differ between ranks")) ok = 0;
        if (rank == 0) printf("  different k per rank: %s\n", err);
    }
    return ok;
}

int main(int argc, char **argv)
{
    MPI_CHECK(MPI_Init(&argc, &argv));
    mpi_check_install();
    int rank, R;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &R));
    opts_t o;
    if (argc < 2 || parse(argc, argv, &o)) {
        if (rank == 0) fprintf(stderr, "usage: knn_check OUT [--train N] [--test N] [--d D] "
                               "[--classes C] [--data-classes C] [--k K] [--batch B] "
                               "[--train-first N] [--test-first N] [--seed S] [--dup P]\n");
        MPI_Finalize();
        return 1;
    }
    const int d = o.d;
    float *centres = malloc((size_t)o.classes * d * sizeof(float));
    if (!centres) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int c = 0; c < o.classes; c++) {
        rng_t r;
        rng_init(&r, o.seed + 1000003, 0, (uint64_t)c, RNG_STREAM_EVAL);
        for (int j = 0; j < d; j++) centres[(size_t)c * d + j] = rng_normal(&r);
    }
    long tr_lo, tr_hi, te_lo, te_hi;
    share(o.train, o.train_first, rank, R, &tr_lo, &tr_hi);
    share(o.test, o.test_first, rank, R, &te_lo, &te_hi);
    const long nt = tr_hi - tr_lo, nq = te_hi - te_lo;
    float *tx = malloc((size_t)(nt + 1) * d * sizeof(float)), *qx = malloc((size_t)(nq + 1) * d * sizeof(float));
    int32_t *ty = malloc((size_t)(nt + 1) * sizeof(int32_t)), *qy = malloc((size_t)(nq + 1) * sizeof(int32_t));
    int32_t *pred = malloc((size_t)(nq + 1) * sizeof(int32_t));
    if (!tx || !qx || !ty || !qy || !pred) MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < nt; i++) make_row(&o, centres, tr_lo + i, tx + i * d, ty + i);
    for (long i = 0; i < nq; i++) make_row(&o, centres, o.train + te_lo + i, qx + i * d, qy + i);
    printf("  rank %d of %d: train rows %ld..%ld, test rows %ld..%ld\n", rank, R, tr_lo, tr_hi, te_lo,
           te_hi);

    char err[256] = "";
    double top1 = -1.0, top1_default = -2.0;
    double t0 = MPI_Wtime();
    int rc = knn_classify_ex(tx, ty, nt, qx, qy, nq, d, o.classes, o.k, 0.07f, o.batch, pred, &top1,
                             MPI_COMM_WORLD, err, sizeof err);
    double dt = MPI_Wtime() - t0;
    int rc2 = knn_classify(tx, ty, nt, qx, qy, nq, d, o.classes, o.k, 0.07f, &top1_default,
                           MPI_COMM_WORLD, err, sizeof err);
    int ok = rc == 0 && rc2 == 0 && top1 == top1_default;
    if (rc || rc2) fprintf(stderr, "knn_check: rank %d: %s\n", rank, err);
    double top1_0 = top1;
    MPI_CHECK(MPI_Bcast(&top1_0, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    if (top1_0 != top1) ok = 0; /* the same on every rank */

    /* everything to rank 0 and the brute force there */
    float *all_tx = NULL, *all_qx = NULL;
    int32_t *all_ty = NULL, *all_qy = NULL, *all_pred = NULL, *ref = NULL;
    if (rank == 0) {
        all_tx = malloc((size_t)o.train * d * sizeof(float));
        all_qx = malloc((size_t)o.test * d * sizeof(float));
        all_ty = malloc((size_t)o.train * sizeof(int32_t));
        all_qy = malloc((size_t)o.test * sizeof(int32_t));
        all_pred = malloc((size_t)o.test * sizeof(int32_t));
        ref = malloc((size_t)o.test * sizeof(int32_t));
        if (!all_tx || !all_qx || !all_ty || !all_qy || !all_pred || !ref) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    gather_rows(tx, all_tx, tr_lo, tr_hi, d, MPI_FLOAT, R);
    gather_rows(qx, all_qx, te_lo, te_hi, d, MPI_FLOAT, R);
    gather_rows(ty, all_ty, tr_lo, tr_hi, 1, MPI_INT32_T, R);
    gather_rows(qy, all_qy, te_lo, te_hi, 1, MPI_INT32_T, R);
    gather_rows(pred, all_pred, te_lo, te_hi, 1, MPI_INT32_T, R);
    if (rank == 0) {
        brute_force(all_tx, all_ty, o.train, all_qx, o.test, d, o.classes, o.k, 0.07, ref);
        long same = 0, correct_ref = 0;
        for (long i = 0; i < o.test; i++) {
            same += all_pred[i] == ref[i];
            correct_ref += ref[i] == all_qy[i];
            if (all_pred[i] != ref[i])
                printf("  test row %ld: prediction %d, brute force %d\n", i, all_pred[i], ref[i]);
        }
        printf("  %d ranks: top1 %.4f (brute force %.4f), %ld/%ld predictions equal, %.3f s\n", R,
               top1, (double)correct_ref / o.test, same, o.test, dt);
        if (same != o.test) ok = 0;
        FILE *f = fopen(argv[1], "w");
        if (!f) {
            perror(argv[1]);
            ok = 0;
        } else {
            for (long i = 0; i < o.test; i++) fprintf(f, "%ld %d %d\n", i, all_pred[i], all_qy[i]);
            fprintf(f, "top1 %.17g\n", top1);
            if (fclose(f)) ok = 0;
        }
    }
    ok &= check_errors(tx, ty, nt, qx, qy, nq, &o, rank, R);
    int all_ok = 0;
    MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (rank == 0) printf("  knn_check: %s\n", all_ok ? "ok" : "FAILED");
    free(centres), free(tx), free(qx), free(ty), free(qy), free(pred);
    free(all_tx), free(all_qx), free(all_ty), free(all_qy), free(all_pred), free(ref);
    MPI_CHECK(MPI_Finalize());
    return all_ok ? 0 : 1;
}
