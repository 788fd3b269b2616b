/* Which images a rank trains on (docs/METHOD.md step 1): the epoch's order
 * is a permutation of the data set from (seed, epoch); global batch t of the
 * epoch is the contiguous run [t*G, (t+1)*G) of it (the tail that fills no
 * batch is dropped, as a drop_last loader does); rank r of R takes the slice
 * [r*G/R, (r+1)*G/R).
 * Nothing depends on R except which slice a rank takes. */
#ifndef MIMAE_DATA_SAMPLER_H
#define MIMAE_DATA_SAMPLER_H

#include <stdint.h>

typedef struct {
    long n;            /* images in the data set */
    int global_batch;  /* G */
    uint64_t seed;
    long epoch;        /* epoch whose order `order` holds, -1 before the first */
    uint32_t *order;   /* n entries */
} sampler_t;

/* Allocates the order buffer; -1 when out of memory or n < global_batch. */
int sampler_init(sampler_t *s, long n, int global_batch, uint64_t seed);
void sampler_free(sampler_t *s);

long sampler_steps_per_epoch(const sampler_t *s);

/* The image indices of global batch `step` of `epoch` for rank r of R
 * (G/R of them; G % R == 0 is the caller's check). */
void sampler_slice(sampler_t *s, long epoch, long step, int rank, int ranks, int64_t *out);

#endif
