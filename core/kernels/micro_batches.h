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
 *     are in cache (micro_batches_grads); a linear layer's weight gradient
 *     one tile of its rows at a time, so that the parts and their partial
 *     sums stay in cache, and where the probe found it exact a pair of
 *     sibling parts is formed by one product added onto the other
 *     (micro_batches_weight_grads);
 *   - a product that carries activations (forward, d input) runs once over
 *     all rows where that is exact, else once per micro-batch
 *     (micro_batches_sgemm). Whether it is exact is OpenBLAS's business: its
 *     small-matrix kernels make a row's result depend on how many rows the
 *     call has. So micro_batches_probe tries each product shape of the
 *     model at start, on random data, both ways, and a shape runs whole only
 *     when it gave the same bits.
 *
 * A weight gradient's tiles depend only on its shape, and a rank holding one
 * micro-batch forms it in the same tiles (count 1), so the call that makes
 * a micro-batch's part is the same call whatever the rank count.
 *
 * This needs every parameter to receive its gradient from one call of one
 * backward (true of the ViT, the projector and Q), rows ordered by
 * micro-batch (they are image-major), and every other operation to treat
 * rows (or sequences) independently. */
#ifndef MIMAE_KERNELS_MICRO_BATCHES_H
#define MIMAE_KERNELS_MICRO_BATCHES_H

#include <cblas.h>
#include <stddef.h>

#include "core/kernels/bf16_products.h"
#include "core/kernels/pairwise_sum.h"

/* One product shape: rows M of one micro-batch, N x K, B transposed or not
 * (C = A B^T or A B, row-major). */
typedef struct {
    int rows, n, k;
    CBLAS_TRANSPOSE trans_b;
} product_shape_t;

/* A weight gradient (out x in) from `rows` input rows a micro-batch, or one
 * tile of it (out = the tile's rows). */
typedef struct {
    int out, in, rows;
} grad_shape_t;

#define MICRO_BATCHES_MAX_SHAPES 40

/* Rows of a weight gradient a tile holds at most: 256 rows of 768 floats
 * are 768 KiB, so a tile's partial sums stay in L2/L3 while the products
 * still have rows enough to run at full speed. */
#define MICRO_BATCHES_TILE_ROWS 256

typedef struct {
    int count;          /* micro-batches in the rows, a power of two; 0: not in
                           use (the fast reduction: plain sums) */
    product_shape_t whole[MICRO_BATCHES_MAX_SHAPES]; /* the shapes that run once */
    int n_whole, n_probed;
    grad_shape_t paired[MICRO_BATCHES_MAX_SHAPES]; /* tiles whose sibling parts fuse */
    int n_paired, n_pair_probed;
    pairwise_sum_t sum; /* the parts of one gradient or tile (count > 1) */
    float *bias_part;   /* a tile's bias part of the second sibling of a pair */
    bf16_products_t *bf16; /* not owned; NULL: products in f32 (cblas_sgemm) */
} micro_batches_t;

/* For `count` (>= 1; 0: the fast reduction's plain sums) micro-batches
 * whose largest gradient reduction (a weight and its bias, or a tile of
 * them) has max_floats floats; products run per micro-batch and sibling
 * parts are formed apart until the probes say otherwise, in f32 until
 * micro_batches_use_bf16. 0, or -1 when out of memory. */
int micro_batches_init(micro_batches_t *mb, int count, size_t max_floats);

/* The floats a weight gradient's largest tile (with its bias) takes. */
size_t micro_batches_tile_floats(int out, int in);

/* Runs the products in bf16 (NULL: f32), before the probes: prepares a
 * plan for every product the shapes (micro_batches_probe's and
 * micro_batches_probe_pairs' lists, of one micro-batch) can make. 0, or -1
 * and err. */
int micro_batches_use_bf16(micro_batches_t *mb, bf16_products_t *bf16,
                           const product_shape_t *shapes, int n_shapes,
                           const grad_shape_t *grads, int n_grads, char *err, size_t errlen);
void micro_batches_free(micro_batches_t *mb);

/* Lets each of the shapes (at most MICRO_BATCHES_MAX_SHAPES) run once over
 * all count * rows rows when that gave bitwise the rows of running it per
 * micro-batch, on random data, with the caller's BLAS threads. Allocates and
 * frees its operands. 0, or -1 when out of memory (products then stay per
 * micro-batch). */
int micro_batches_probe(micro_batches_t *mb, const product_shape_t *shapes, int n_shapes);

/* C (M, N) = A (M, K) op(B) + beta C, row-major, op(B) = B^T (B is N x K) or
 * B (K x N): once, or once per micro-batch of the M rows; in mb's precision.
 * mb NULL: once, f32. */
void micro_batches_sgemm(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                         const float *A, const float *B, float beta, float *C);

/* Lets each weight gradient's tiles (at most MICRO_BATCHES_MAX_SHAPES in
 * all) form a pair of sibling parts by adding the second micro-batch's
 * product onto the first's (sgemm, beta 1) when that gave, on random data,
 * bitwise the two parts formed apart and added: true whenever a product's
 * inner dimension is summed in one pass before it meets C. 0, or -1 when out
 * of memory (parts are then formed apart). */
int micro_batches_probe_pairs(micro_batches_t *mb, const grad_shape_t *shapes, int n_shapes);

/* dweight (out x in) += dout^T inp and dbias (out, may be NULL) += the column
 * sums of dout, over T rows: with count >= 1 per micro-batch, tile by tile,
 * the parts added in the tree; mb NULL or count 0: one product over all
 * rows. */
void micro_batches_weight_grads(micro_batches_t *mb, int T, float *dweight, float *dbias,
                                const float *dout, const float *inp, int in, int out);

/* Accumulates into out_a (n_a floats) and out_b (n_b, may be NULL) the
 * contribution of rows [first, first + rows). */
typedef void (*micro_batch_grads_fn)(void *ctx, int first, int rows, float *out_a, float *out_b);

/* a += sum, b += sum over the micro-batches of fn's contribution of each
 * one's share of `rows` rows, the parts added in the tree. mb NULL or count
 * <= 1: fn accumulates straight into a and b over all rows. */
void micro_batches_grads(micro_batches_t *mb, int rows, float *a, size_t n_a, float *b,
                         size_t n_b, micro_batch_grads_fn fn, void *ctx);

#endif
