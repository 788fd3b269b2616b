/* A forward and backward over rows that hold several micro-batches, with
 * every result bitwise what the micro-batches run one at a time give.
 *
 * The deterministic reduction sums each micro-batch's gradient in a fixed
 * pairwise tree (dist/tree_sum.h), so that a step is bitwise the same on 1,
 * 2, 4 or 8 ranks. A rank holding k micro-batches could run k backwards of
 * one micro-batch each, but then every product has one micro-batch's rows
 * and every backward zeroes and sums a whole gradient vector. Instead it
 * runs one forward and one backward over all its rows:
 *   - a sum over rows into a parameter's gradient is formed per micro-batch
 *     and the k parts are added in the same tree, layer by layer while they
 *     are in cache (micro_batches_grads);
 *   - a product that carries activations (forward, d input) runs once over
 *     all rows where that is exact, else once per micro-batch
 *     (micro_batches_sgemm). Whether it is exact is OpenBLAS's business: its
 *     small-matrix kernels make a row's result depend on how many rows the
 *     call has. So micro_batches_probe tries each product shape of the
 *     model at start, on random data, both ways, and a shape runs whole only
 *     when it gave the same bits.
 *
 * This needs every parameter to receive its gradient from one call of one
 * backward (true of the ViT, the projector and Q), rows ordered by
 * micro-batch (they are image-major), and every other operation to treat
 * rows (or sequences) independently. */
#ifndef MIMAE_KERNELS_MICRO_BATCHES_H
#define MIMAE_KERNELS_MICRO_BATCHES_H

#include <cblas.h>
#include <stddef.h>

#include "core/kernels/pairwise_sum.h"

/* One product shape: rows M of one micro-batch, N x K, B transposed or not
 * (C = A B^T or A B, row-major). */
typedef struct {
    int rows, n, k;
    CBLAS_TRANSPOSE trans_b;
} product_shape_t;

#define MICRO_BATCHES_MAX_SHAPES 40

typedef struct {
    int count;          /* micro-batches in the rows: a power of two */
    product_shape_t whole[MICRO_BATCHES_MAX_SHAPES]; /* the shapes that run once */
    int n_whole, n_probed;
    pairwise_sum_t sum; /* the parts of one gradient, each up to the largest */
} micro_batches_t;

/* For `count` micro-batches whose largest gradient reduction (a weight and
 * its bias together) has max_floats floats; products run per micro-batch
 * until micro_batches_probe says otherwise. 0, or -1 when out of memory. */
int micro_batches_init(micro_batches_t *mb, int count, size_t max_floats);
void micro_batches_free(micro_batches_t *mb);

/* Lets each of the shapes (at most MICRO_BATCHES_MAX_SHAPES) run once over
 * all count * rows rows when that gave bitwise the rows of running it per
 * micro-batch, on random data, with the caller's BLAS threads. Allocates and
 * frees its operands. 0, or -1 when out of memory (products then stay per
 * micro-batch). */
int micro_batches_probe(micro_batches_t *mb, const product_shape_t *shapes, int n_shapes);

/* C (M, N) = A (M, K) op(B) + beta C, row-major, op(B) = B^T (B is N x K) or
 * B (K x N): once, or once per micro-batch of the M rows. mb NULL: once. */
void micro_batches_sgemm(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                         const float *A, const float *B, float beta, float *C);

/* Accumulates into out_a (n_a floats) and out_b (n_b, may be NULL) the
 * contribution of rows [first, first + rows). */
typedef void (*micro_batch_grads_fn)(void *ctx, int first, int rows, float *out_a, float *out_b);

/* a += sum, b += sum over the micro-batches of fn's contribution of each
 * one's share of `rows` rows, the parts added in the tree. mb NULL or count
 * 1: fn accumulates straight into a and b over all rows. */
void micro_batches_grads(micro_batches_t *mb, int rows, float *a, size_t n_a, float *b,
                         size_t n_b, micro_batch_grads_fn fn, void *ctx);

#endif
