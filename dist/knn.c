#include "knn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_check.h"

/* One neighbour candidate; sent between ranks as raw bytes (homogeneous
 * cluster). Unused slots hold the sentinel (-inf, -1, INT64_MAX), which
 * sorts after every real candidate. */
typedef struct {
    float sim;
    int32_t label;
    int64_t idx;  /* global train index */
} knn_entry_t;

enum {
    KNN_TRAIN_BLOCK = 1024,            /* train rows screened per sgemm */
    KNN_LIST_BUDGET = 4 * 1024 * 1024  /* max ranks x batch x k entries in flight */
};

static const knn_entry_t knn_sentinel = {-INFINITY, -1, INT64_MAX};

/* Similarity descending, then global train index ascending. */
static inline int entry_before(const knn_entry_t *x, const knn_entry_t *y)
{
    return x->sim > y->sim || (x->sim == y->sim && x->idx < y->idx);
}

/* Inserts c into the sorted list of k entries if it belongs to the top k. */
static inline void topk_insert(knn_entry_t *list, int k, knn_entry_t c)
{
    if (!entry_before(&c, &list[k - 1])) return;
    int pos = k - 1;
    while (pos > 0 && entry_before(&c, &list[pos - 1])) {
        list[pos] = list[pos - 1];
        pos--;
    }
    list[pos] = c;
}

/* The fixed-order dot product: lane l of 8 float partial sums takes the
 * elements i with i % 8 == l, then ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)).
 * (C11 mode does not contract to FMA and nothing is reassociated.) Every
 * similarity that enters a top-k list comes from here, so it depends only on
 * the two vectors, never on matrix shapes, the batch or the rank. */
static inline float lanes_sum(const float s[8])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot1(const float *x, const float *y, int d)
{
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++) s[l] += x[i + l] * y[i + l];
    for (int l = 0; i + l < d; l++) s[l] += x[i + l] * y[i + l];
    return lanes_sum(s);
}

/* Copies n rows of x to out, each divided by its L2 norm (norm in double;
 * a zero row stays zero). Returns the first row with a non-finite value, or
 * -1. */
static long normalise_rows(float *out, const float *x, long n, int d)
{
    for (long t = 0; t < n; t++) {
        const float *row = x + (size_t)t * d;
        float *o = out + (size_t)t * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)row[j] * row[j];
        if (!isfinite(ss)) return t;
        double inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        for (int j = 0; j < d; j++) o[j] = (float)(row[j] * inv);
    }
    return -1;
}

static long first_bad_label(const int32_t *y, long n, int classes)
{
    for (long t = 0; t < n; t++)
        if (y[t] < 0 || y[t] >= classes) return t;
    return -1;
}

/* Scores the bs normalised query rows Q against the local train rows T
 * (global indices from train_off) into the per-row top-k lists.
 * cblas_sgemm screens a block of train rows (S, bs x KNN_TRAIN_BLOCK); a
 * row whose sgemm similarity is within `margin` of the current k-th exact
 * similarity is recomputed with dot1 and offered to the list. Both values
 * are within d * 2^-24 (1 + O(d 2^-24)) of the exact dot product of unit
 * vectors whatever the summation order, so with margin >= 2 d 2^-24 (we use
 * 3x that) no row that belongs to the top k is screened out: the lists are
 * exactly those of dot1 alone, at sgemm speed. */
static void score_batch(knn_entry_t *lists, int kk, const float *Q, int bs, const float *T,
                        const int32_t *ty, long nt, long train_off, int d, float *S)
{
    const float margin = 6.0f * (float)d * 0x1p-24f;
    for (size_t i = 0; i < (size_t)bs * kk; i++) lists[i] = knn_sentinel;
    for (long j0 = 0; j0 < nt; j0 += KNN_TRAIN_BLOCK) {
        const int nb = (int)(nt - j0 < KNN_TRAIN_BLOCK ? nt - j0 : KNN_TRAIN_BLOCK);
        const float *Tb = T + (size_t)j0 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bs, nb, d, 1.0f, Q, d, Tb, d, 0.0f,
                    S, nb);
        for (int i = 0; i < bs; i++) {
            knn_entry_t *list = lists + (size_t)i * kk;
            const float *q = Q + (size_t)i * d, *row = S + (size_t)i * nb;
            for (int j = 0; j < nb; j++) {
                if (!(row[j] + margin >= list[kk - 1].sim)) continue;
                knn_entry_t c = {dot1(q, Tb + (size_t)j * d, d), ty[j0 + j], train_off + j0 + j};
                topk_insert(list, kk, c);
            }
        }
    }
}

/* Merges the ranks' sorted lists (list s at lists + s * stride, kk each)
 * into the global top kk, then votes. Returns the predicted class. */
static int32_t merge_and_vote(const knn_entry_t *lists, int ranks, size_t stride, int kk,
                              int *head, knn_entry_t *merged, double *votes, int classes,
                              double temperature)
{
    for (int s = 0; s < ranks; s++) head[s] = 0;
    for (int m = 0; m < kk; m++) {
        int best = -1;
        for (int s = 0; s < ranks; s++) {
            if (head[s] >= kk) continue;
            if (best < 0 || entry_before(&lists[s * stride + head[s]], &lists[best * stride + head[best]]))
                best = s;
        }
        merged[m] = lists[best * stride + head[best]];
        head[best]++;
    }
    for (int c = 0; c < classes; c++) votes[c] = 0.0;
    const double top = merged[0].sim;
    for (int m = 0; m < kk; m++)
        if (merged[m].label >= 0) votes[merged[m].label] += exp(((double)merged[m].sim - top) / temperature);
    int32_t pred = 0;
    for (int c = 1; c < classes; c++)
        if (votes[c] > votes[pred]) pred = c;
    return pred;
}

int knn_classify(const float *train_x, const int32_t *train_y, long n_train_local,
                 const float *test_x, const int32_t *test_y, long n_test_local, int d, int classes,
                 int k, float temperature, double *top1, MPI_Comm comm, char *err, size_t errlen)
{
    return knn_classify_ex(train_x, train_y, n_train_local, test_x, test_y, n_test_local, d,
                           classes, k, temperature, 0, NULL, top1, comm, err, errlen);
}

int knn_classify_ex(const float *train_x, const int32_t *train_y, long n_train_local,
                    const float *test_x, const int32_t *test_y, long n_test_local, int d,
                    int classes, int k, float temperature, int batch_rows, int32_t *pred_local,
                    double *top1, MPI_Comm comm, char *err, size_t errlen)
{
    int rank = 0, ranks = 1;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &ranks));
    if (batch_rows <= 0) batch_rows = KNN_BATCH_ROWS;
    if (top1) *top1 = NAN;

    /* 1. the same parameters on every rank */
    int32_t tbits;
    memcpy(&tbits, &temperature, sizeof tbits);
    long mm[10] = {d, -(long)d, classes, -(long)classes, k, -(long)k, tbits, -(long)tbits,
                   batch_rows, -(long)batch_rows};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mm, 10, MPI_LONG, MPI_MAX, comm));
    if (mm[0] != -mm[1] || mm[2] != -mm[3] || mm[4] != -mm[5] || mm[6] != -mm[7] ||
        mm[8] != -mm[9]) {
        snprintf(err, errlen, "knn_classify: d, classes, k, temperature or batch_rows differ "
                 "between ranks: every rank must pass the same values");
        return -1;
    }

    /* 2. local arguments; the first failing rank's message goes to all */
    char msg[256] = "";
    if (d < 1 || classes < 1 || k < 1)
        snprintf(msg, sizeof msg, "knn_classify: d = %d, classes = %d, k = %d must be >= 1", d,
                 classes, k);
    else if (!(temperature > 0.0f) || !isfinite(temperature))
        snprintf(msg, sizeof msg, "knn_classify: temperature %g must be finite and > 0",
                 (double)temperature);
    else if (n_train_local < 0 || n_test_local < 0)
        snprintf(msg, sizeof msg, "knn_classify: rank %d: negative row counts (%ld train, %ld test)",
                 rank, n_train_local, n_test_local);
    else if (!top1 || (n_train_local > 0 && (!train_x || !train_y)) ||
             (n_test_local > 0 && (!test_x || !test_y)))
        snprintf(msg, sizeof msg, "knn_classify: rank %d: NULL data, labels or top1", rank);
    else {
        long t = first_bad_label(train_y, n_train_local, classes);
        long u = t < 0 ? first_bad_label(test_y, n_test_local, classes) : -1;
        if (t >= 0)
            snprintf(msg, sizeof msg, "knn_classify: rank %d: train label %d at local row %ld is "
                     "outside 0..%d", rank, (int)train_y[t], t, classes - 1);
        else if (u >= 0)
            snprintf(msg, sizeof msg, "knn_classify: rank %d: test label %d at local row %ld is "
                     "outside 0..%d", rank, (int)test_y[u], u, classes - 1);
    }

    /* 3. sizes: train offset, global counts, test shares */
    long counts[2] = {n_train_local > 0 ? n_train_local : 0, n_test_local > 0 ? n_test_local : 0};
    long train_off = 0, n_train = 0, n_test = 0;
    MPI_CHECK(MPI_Exscan(&counts[0], &train_off, 1, MPI_LONG, MPI_SUM, comm));
    if (rank == 0) train_off = 0; /* MPI_Exscan leaves rank 0's result undefined */
    long *test_n = malloc((size_t)ranks * sizeof(long));
    long *test_off = malloc((size_t)ranks * sizeof(long));
    int *cnt = malloc((size_t)ranks * 4 * sizeof(int)); /* counts and displacements */
    int *head = malloc((size_t)ranks * sizeof(int));
    int helper_ok = test_n && test_off && cnt && head;
    long tot[2] = {counts[0], counts[1]};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, tot, 2, MPI_LONG, MPI_SUM, comm));
    n_train = tot[0], n_test = tot[1];
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &helper_ok, 1, MPI_INT, MPI_MIN, comm));
    if (!helper_ok) {
        snprintf(err, errlen, "knn_classify: out of memory for %d ranks", ranks);
        free(test_n), free(test_off), free(cnt), free(head);
        return -1;
    }
    MPI_CHECK(MPI_Allgather(&counts[1], 1, MPI_LONG, test_n, 1, MPI_LONG, comm));
    for (int s = 0; s < ranks; s++) test_off[s] = s ? test_off[s - 1] + test_n[s - 1] : 0;
    if (!msg[0] && (n_train == 0 || n_test == 0))
        snprintf(msg, sizeof msg, "knn_classify: %ld train and %ld test rows over all ranks: "
                 "need at least one of each", n_train, n_test);

    /* 4. allocation; then agree on success */
    const int kk = (int)(k < n_train ? k : n_train); /* k clamped to the train set */
    long bsl = batch_rows;
    if (kk > 0 && bsl * ranks * kk > KNN_LIST_BUDGET) bsl = KNN_LIST_BUDGET / ((long)ranks * kk);
    if (bsl < 1) bsl = 1;
    if (bsl > n_test && n_test > 0) bsl = n_test;
    const int bs = (int)bsl;
    if (!msg[0] && ((long)ranks * bs * kk > INT_MAX || (long)bs * d > INT_MAX))
        snprintf(msg, sizeof msg, "knn_classify: k = %d with %d ranks (or d = %d) is too large "
                 "for one exchange", k, ranks, d);
    float *T = NULL, *Qloc = NULL, *Q = NULL;
    float *S = NULL;
    knn_entry_t *lists = NULL, *recv = NULL, *merged = NULL;
    double *votes = NULL;
    MPI_Datatype row_t = MPI_DATATYPE_NULL, entry_t = MPI_DATATYPE_NULL;
    int rc = -1;
    if (!msg[0]) {
        T = malloc((size_t)(n_train_local ? n_train_local : 1) * d * sizeof(float));
        Qloc = malloc((size_t)(n_test_local ? n_test_local : 1) * d * sizeof(float));
        Q = malloc((size_t)bs * d * sizeof(float));
        S = malloc((size_t)bs * KNN_TRAIN_BLOCK * sizeof(float));
        lists = malloc((size_t)bs * kk * sizeof(knn_entry_t));
        recv = malloc((size_t)ranks * bs * kk * sizeof(knn_entry_t));
        merged = malloc((size_t)kk * sizeof(knn_entry_t));
        votes = malloc((size_t)classes * sizeof(double));
        if (!T || !Qloc || !Q || !S || !lists || !recv || !merged || !votes)
            snprintf(msg, sizeof msg, "knn_classify: rank %d: out of memory (%ld train rows of "
                     "d = %d, batch %d x k %d x %d ranks)", rank, n_train_local, d, bs, kk, ranks);
    }
    if (!msg[0]) {
        long bad = normalise_rows(T, train_x, n_train_local, d);
        long bad_test = bad < 0 ? normalise_rows(Qloc, test_x, n_test_local, d) : -1;
        if (bad >= 0 || bad_test >= 0)
            snprintf(msg, sizeof msg, "knn_classify: rank %d: non-finite feature in %s row %ld",
                     rank, bad >= 0 ? "train" : "test", bad >= 0 ? bad : bad_test);
    }
    int failrank = msg[0] ? rank : ranks;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &failrank, 1, MPI_INT, MPI_MIN, comm));
    if (failrank < ranks) {
        MPI_CHECK(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, failrank, comm));
        snprintf(err, errlen, "%s", msg);
        goto done;
    }

    /* 5. the batches */
    MPI_CHECK(MPI_Type_contiguous(d, MPI_FLOAT, &row_t));
    MPI_CHECK(MPI_Type_commit(&row_t));
    MPI_CHECK(MPI_Type_contiguous((int)sizeof(knn_entry_t), MPI_BYTE, &entry_t));
    MPI_CHECK(MPI_Type_commit(&entry_t));
    int *rows_of = cnt, *first_of = cnt + ranks, *rcount = cnt + 2 * ranks, *rdispl = cnt + 3 * ranks;
    long correct = 0;
    const double temp = (double)temperature;
    for (long b0 = 0; b0 < n_test; b0 += bs) {
        const long b1 = b0 + bs < n_test ? b0 + bs : n_test;
        const int nb = (int)(b1 - b0);
        for (int s = 0; s < ranks; s++) {
            long lo = b0 > test_off[s] ? b0 : test_off[s];
            long hi = b1 < test_off[s] + test_n[s] ? b1 : test_off[s] + test_n[s];
            rows_of[s] = hi > lo ? (int)(hi - lo) : 0;
            first_of[s] = hi > lo ? (int)(lo - b0) : 0;
        }
        const int mine = rows_of[rank];
        const long my_first = b0 + first_of[rank] - test_off[rank]; /* local test row */
        MPI_CHECK(MPI_Allgatherv(Qloc + (size_t)(mine ? my_first : 0) * d, mine, row_t, Q,
                                 rows_of, first_of, row_t, comm));
        score_batch(lists, kk, Q, nb, T, train_y, n_train_local, train_off, d, S);
        /* the lists of each test row to the rank that owns it */
        for (int s = 0; s < ranks; s++) {
            rows_of[s] *= kk;
            first_of[s] *= kk;
            rcount[s] = mine * kk;
            rdispl[s] = s * mine * kk;
        }
        MPI_CHECK(MPI_Alltoallv(lists, rows_of, first_of, entry_t, recv, rcount, rdispl, entry_t,
                                comm));
        for (int i = 0; i < mine; i++) {
            int32_t pred = merge_and_vote(recv + (size_t)i * kk, ranks, (size_t)mine * kk, kk, head,
                                          merged, votes, classes, temp);
            long t = my_first + i;
            if (pred_local) pred_local[t] = pred;
            correct += pred == test_y[t];
        }
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &correct, 1, MPI_LONG, MPI_SUM, comm));
    *top1 = (double)correct / (double)n_test;
    rc = 0;
done:
    if (row_t != MPI_DATATYPE_NULL) MPI_CHECK(MPI_Type_free(&row_t));
    if (entry_t != MPI_DATATYPE_NULL) MPI_CHECK(MPI_Type_free(&entry_t));
    free(test_n), free(test_off), free(cnt), free(head);
    free(T), free(Qloc), free(Q), free(S), free(lists), free(recv), free(merged), free(votes);
    return rc;
}
