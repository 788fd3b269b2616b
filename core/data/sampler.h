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

/* data.sampling = shard-local: rank r of R reads only the shards s with
 * s % R == r (K shards, K a multiple of R; shard s holds count[s] images
 * from index first[s] on). An epoch visits the shards in the order of a
 * permutation of all K from (seed, epoch) (stream RNG_STREAM_SHARD_ORDER,
 * index 0), each rank taking its own in that order, and each shard's images
 * in a permutation from (seed, epoch, shard) (index s + 1): only which
 * shards are a rank's depends on R. Rank r's sequence is cut into steps of
 * per_rank images; an epoch has as many steps as the rank with the fewest
 * images fills (the tails, at most per_rank - 1 images and the shards'
 * difference in size, are left out of that epoch as drop_last does), so
 * every other image is seen once an epoch. */
typedef struct {
    int shards, rank, ranks, per_rank;
    long *first, *count; /* per shard (copies) */
    uint64_t seed;
    long epoch;          /* epoch whose order `order` holds, -1 before the first */
    long images;         /* this rank's images */
    long steps;          /* steps per epoch, the same on every rank */
    uint32_t *order;     /* this rank's images (split indices) in the epoch's order */
    uint32_t *scratch;   /* the epoch's shard order (K) */
} shard_sampler_t;

/* -1 when out of memory, K is not a multiple of R, or a rank's shards
 * hold fewer than per_rank images (no step). */
int shard_sampler_init(shard_sampler_t *s, const long *count, int shards, int rank, int ranks,
                       int per_rank, uint64_t seed);
void shard_sampler_free(shard_sampler_t *s);

/* The split indices of step `step` of `epoch` on this rank (per_rank). */
void shard_sampler_slice(shard_sampler_t *s, long epoch, long step, int64_t *out);

#endif
