/* Deterministic sums of vectors over micro-batches spread across ranks: a
 * fixed pairwise tree over the M micro-batches of a global batch, so the
 * float additions happen in the same order on 1, 2, 4, ... ranks and the
 * result is bitwise identical. Requirements: M and R powers of two, R <= M;
 * rank r holds micro-batches [r*M/R, (r+1)*M/R) and pushes them in order. */
#ifndef MIMAE_DIST_TREE_SUM_H
#define MIMAE_DIST_TREE_SUM_H

#include <mpi.h>
#include <stddef.h>

#include "core/kernels/pairwise_sum.h"

typedef struct {
    size_t n;             /* floats per vector */
    pairwise_sum_t local; /* this rank's subtree */
    float *incoming;      /* receive buffer for the cross-rank levels */
} tree_sum_t;

/* For up to `leaves` pushes per round; 0 leaves: tree_sum_finish_in_place
 * only (no buffer for a local subtree). -1 when out of memory. */
int tree_sum_init(tree_sum_t *t, size_t n, int leaves);
void tree_sum_free(tree_sum_t *t);

/* Starts a new round. */
void tree_sum_reset(tree_sum_t *t);

/* Adds the next leaf (copied) in micro-batch order. */
void tree_sum_push(tree_sum_t *t, const float *leaf);

/* The same without the copy: write the next leaf into tree_sum_leaf(t),
 * then tree_sum_add_leaf(t). */
float *tree_sum_leaf(tree_sum_t *t);
void tree_sum_add_leaf(tree_sum_t *t);

/* Combines the ranks' subtrees in tree order and writes the total to out
 * on every rank. Collective over comm. */
void tree_sum_finish(tree_sum_t *t, float *out, MPI_Comm comm);

/* The same for a rank that formed its whole subtree itself, in `subtree`
 * (nothing pushed): the total replaces it on every rank. */
void tree_sum_finish_in_place(tree_sum_t *t, float *subtree, MPI_Comm comm);

#endif
