/* Sums of equal-length float vectors in a fixed pairwise tree: the leaves
 * are added in order and merged like a binary counter, so 2^k leaves always
 * sum as ((l0 + l1) + (l2 + l3)) + ... whatever else varies. dist/tree_sum
 * builds the sum across ranks on it, and micro_batches the sum of one
 * parameter's gradient over the micro-batches a backward holds; both trees
 * are the same tree, which is what makes a step bitwise independent of how
 * its micro-batches are spread over ranks. */
#ifndef MIMAE_KERNELS_PAIRWISE_SUM_H
#define MIMAE_KERNELS_PAIRWISE_SUM_H

#include <stddef.h>

typedef struct {
    size_t capacity; /* floats each partial sum can hold */
    size_t n;        /* floats of this round's vectors (<= capacity) */
    int levels;      /* capacity of the partial-sum stack */
    float **partial; /* stack of partial sums */
    int *level;      /* tree level of each stack entry */
    int depth;       /* entries on the stack */
} pairwise_sum_t;

/* For up to `leaves` leaves a round of up to `capacity` floats each. 0, or -1
 * when out of memory (pairwise_sum_free is still safe). */
int pairwise_sum_init(pairwise_sum_t *p, size_t capacity, int leaves);
void pairwise_sum_free(pairwise_sum_t *p);

/* Starts a round of vectors of n floats. */
void pairwise_sum_reset(pairwise_sum_t *p, size_t n);

/* Write the next leaf into pairwise_sum_leaf(p), then pairwise_sum_add_leaf(p). */
float *pairwise_sum_leaf(pairwise_sum_t *p);
void pairwise_sum_add_leaf(pairwise_sum_t *p);

/* As pairwise_sum_add_leaf for a vector that already holds the sum of the
 * next 2^level leaves (formed in this tree's order by the caller). */
void pairwise_sum_add_subtree(pairwise_sum_t *p, int level);

/* The sum so far; after a power of two of leaves it is the whole tree's. */
float *pairwise_sum_total(pairwise_sum_t *p);

/* left += right, element by element: the one addition of every tree. */
void pairwise_sum_add_into(float *left, const float *right, size_t n);

#endif
