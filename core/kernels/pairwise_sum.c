#include "core/kernels/pairwise_sum.h"

#include <stdlib.h>
#include <string.h>

int pairwise_sum_init(pairwise_sum_t *p, size_t capacity, int leaves)
{
    memset(p, 0, sizeof *p);
    p->capacity = p->n = capacity;
    /* the binary counter holds at most log2(leaves) + 1 partial sums */
    int levels = 1;
    while ((1 << (levels - 1)) < leaves) levels++;
    p->partial = calloc((size_t)levels, sizeof *p->partial);
    p->level = calloc((size_t)levels, sizeof *p->level);
    if (!p->partial || !p->level) return -1;
    p->levels = levels;
    for (int i = 0; i < levels; i++)
        if (!(p->partial[i] = malloc((capacity ? capacity : 1) * sizeof(float)))) return -1;
    return 0;
}

void pairwise_sum_free(pairwise_sum_t *p)
{
    for (int i = 0; p->partial && i < p->levels; i++) free(p->partial[i]);
    free(p->partial);
    free(p->level);
    memset(p, 0, sizeof *p);
}

void pairwise_sum_reset(pairwise_sum_t *p, size_t n)
{
    p->n = n;
    p->depth = 0;
}

void pairwise_sum_add_into(float *left, const float *right, size_t n)
{
    for (size_t i = 0; i < n; i++) left[i] += right[i];
}

float *pairwise_sum_leaf(pairwise_sum_t *p) { return p->partial[p->depth]; }

void pairwise_sum_add_leaf(pairwise_sum_t *p) { pairwise_sum_add_subtree(p, 0); }

void pairwise_sum_add_subtree(pairwise_sum_t *p, int level)
{
    p->level[p->depth++] = level;
    /* Binary-counter merging: two subtrees of the same height become one. */
    while (p->depth >= 2 && p->level[p->depth - 1] == p->level[p->depth - 2]) {
        pairwise_sum_add_into(p->partial[p->depth - 2], p->partial[p->depth - 1], p->n);
        p->level[p->depth - 2]++;
        p->depth--;
    }
}

float *pairwise_sum_total(pairwise_sum_t *p) { return p->partial[0]; }
