/* The linear layers' matrix products in bf16 (train.precision = bf16): the
 * row-major cblas_sgemm calls of core/kernels/micro_batches.c, run instead
 * by oneDNN on bf16 operands with f32 accumulation and f32 results
 * (core/kernels/bf16_matmul.h).
 *
 * One set for a model: oneDNN's engine, one plan per product shape (made
 * by bf16_products_prepare when the step is set up, so a step creates
 * nothing) and two shared buffers into which each call converts its f32
 * operands (any leading dimension: a tile of a weight gradient reads a
 * strided block) packed as bf16. C must be packed (ldc = N).
 *
 * A shape a step meets that was not prepared still runs: its plan is made
 * then and counted (bf16_products_late, which the tests require to stay 0).
 * A oneDNN failure in a step cannot return through the void kernels: it is
 * kept (bf16_products_error) and the rest of the step's products are
 * skipped; the step reports it. */
#ifndef MIMAE_KERNELS_BF16_PRODUCTS_H
#define MIMAE_KERNELS_BF16_PRODUCTS_H

#include <cblas.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kernels/bf16_matmul.h"

typedef struct bf16_products bf16_products_t;

/* Refuses a CPU (or a oneDNN capped by ONEDNN_MAX_CPU_ISA) without bf16
 * instructions with bf16_cpu_check's one line; isa receives the ISA oneDNN
 * will use. oneDNN's threads are set to mimae's (par_threads). NULL and err
 * on failure. */
bf16_products_t *bf16_products_create(char *isa, size_t isalen, char *err, size_t errlen);
void bf16_products_free(bf16_products_t *p); /* NULL: nothing */

/* Makes the plan for one shape (nothing when it exists) and grows the
 * shared operand buffers to hold its operands. 0, or -1 and err. */
int bf16_products_prepare(bf16_products_t *p, bf16_matmul_dims_t dims, char *err, size_t errlen);

/* C (M, N, packed) = op(A) op(B) + beta C, beta 0 or 1, row-major as
 * cblas_sgemm with lda, ldb the operands' row strides. */
void bf16_products_gemm(bf16_products_t *p, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b,
                        int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C);

/* Keeps a bf16 copy of a block of n f32 weights (at most 2 blocks): a
 * product whose operand lies packed inside the block reads the copy instead
 * of converting it at every call. The copy (returned; NULL and err when out
 * of memory) is what the last bf16_products_refresh saw, or what its owner
 * wrote into it since (AdamW writes the update's): keep it current
 * whenever the block changes. */
uint16_t *bf16_products_mirror(bf16_products_t *p, const float *block, size_t n, char *err,
                               size_t errlen);
void bf16_products_refresh(bf16_products_t *p);

/* Plans made during steps (shapes not prepared). */
int bf16_products_late(const bf16_products_t *p);

/* The first oneDNN failure of a product since the last call, as one line,
 * or NULL; clears it. */
const char *bf16_products_error(bf16_products_t *p);

#endif
