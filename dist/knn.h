/* Distributed k-nearest-neighbour classifier for evaluation (docs/METHOD.md
 * step E2, k-NN): cosine similarity, k neighbours (default k = 20),
 * votes exp(sim / T) per class (evaluation: T = 0.07), train features spread
 * over the ranks of comm, top-k lists merged across ranks.
 *
 * Every rank holds a contiguous share of the train rows (train_x
 * (n_train_local, d), labels train_y) and of the test rows (test_x
 * (n_test_local, d), labels test_y); the global order of the rows is rank 0's
 * rows, then rank 1's, ... (global index = MPI_Exscan offset + local index).
 * Shares may be uneven or empty. Labels are in 0..classes-1.
 *
 * Algorithm: the features are L2-normalised (copies; a zero row stays zero,
 * similarity 0). The global test set is processed in batches of
 * batch_rows: each batch is allgathered, every rank scores it against its
 * local train rows (cblas_sgemm in blocks of 1024 train rows) and keeps a
 * local top-k (similarity, label, global train index) per test row; the
 * lists go to the rank owning the test row (MPI_Alltoallv), which merges
 * them and votes.
 *
 * Determinism: the order is similarity descending, ties by global train
 * index ascending. sgemm values depend on matrix shapes, so they only screen:
 * every train row whose sgemm similarity comes within a rigorous rounding
 * bound (6 d 2^-24) of the current k-th similarity is recomputed with one
 * fixed-order dot product (8 float partial sums) whose value depends only on
 * the two vectors, and only those values enter the lists. Votes are summed
 * in neighbour order in double. So the predictions and top1 are bitwise
 * identical on any rank count, split of the rows and batch size. Votes are exp((sim - sim_1) / T) with sim_1 the best
 * similarity of the row (the same argmax as exp(sim / T), without overflow
 * for small T); the prediction is the class with the largest vote, ties to
 * the smaller class; classes without neighbours get no vote.
 *
 * k larger than the global train count uses every train row (k is clamped);
 * k larger than a rank's local rows is fine.
 *
 * Collective over comm: every rank must call with the same d, classes, k,
 * temperature (and batch_rows); mismatches and bad arguments on any rank make
 * every rank return -1 with a message in err (no hang). On success returns 0
 * and *top1 = correct / global test rows on every rank.
 * Memory per rank: normalised copies of the local rows, a batch of
 * batch_rows x d test features and ranks x batch x k list entries (the batch
 * is shrunk so that this stays below 4M entries, 64 MB).
 * Time: n_test_global * n_train_local * d multiply-adds per rank in sgemm
 * (10k test x 60k train x d 192: about 10 s on one core, 6 s on two ranks),
 * plus O(k log(n_train / k) + near-ties) exact dot products per test row. */
#ifndef MIMAE_DIST_KNN_H
#define MIMAE_DIST_KNN_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

/* Default test rows per batch. */
#define KNN_BATCH_ROWS 256

int knn_classify(const float *train_x, const int32_t *train_y, long n_train_local,
                 const float *test_x, const int32_t *test_y, long n_test_local, int d, int classes,
                 int k, float temperature, double *top1, MPI_Comm comm, char *err, size_t errlen);

/* As knn_classify, plus: batch_rows test rows per batch (<= 0: the default
 * KNN_BATCH_ROWS), and pred_local (n_test_local, may be NULL) receives the
 * prediction for each local test row. */
int knn_classify_ex(const float *train_x, const int32_t *train_y, long n_train_local,
                    const float *test_x, const int32_t *test_y, long n_test_local, int d,
                    int classes, int k, float temperature, int batch_rows, int32_t *pred_local,
                    double *top1, MPI_Comm comm, char *err, size_t errlen);

#endif
