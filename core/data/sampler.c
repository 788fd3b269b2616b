#include "core/data/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/data/rng.h"

int sampler_init(sampler_t *s, long n, int global_batch, uint64_t seed)
{
    s->n = n;
    s->global_batch = global_batch;
    s->seed = seed;
    s->epoch = -1;
    s->order = NULL;
    if (n < global_batch || n <= 0 || n > UINT32_MAX) return -1;
    s->order = malloc((size_t)n * sizeof *s->order);
    return s->order ? 0 : -1;
}

void sampler_free(sampler_t *s)
{
    free(s->order);
    s->order = NULL;
}

long sampler_steps_per_epoch(const sampler_t *s) { return s->n / s->global_batch; }

void sampler_slice(sampler_t *s, long epoch, long step, int rank, int ranks, int64_t *out)
{
    if (s->epoch != epoch) {
        rng_permutation(s->seed, (uint64_t)epoch, (uint32_t)s->n, s->order);
        s->epoch = epoch;
    }
    const long per_rank = s->global_batch / ranks;
    const long start = step * s->global_batch + (long)rank * per_rank;
    for (long i = 0; i < per_rank; i++) out[i] = s->order[start + i];
}

int shard_sampler_init(shard_sampler_t *s, const long *count, int shards, int rank, int ranks,
                       int per_rank, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->shards = shards, s->rank = rank, s->ranks = ranks, s->per_rank = per_rank;
    s->seed = seed;
    s->epoch = -1;
    if (shards < 1 || ranks < 1 || rank < 0 || rank >= ranks || shards % ranks || per_rank < 1)
        return -1;
    s->first = malloc((size_t)shards * sizeof *s->first);
    s->count = malloc((size_t)shards * sizeof *s->count);
    if (!s->first || !s->count) return shard_sampler_free(s), -1;
    long first = 0, largest = 0, fewest = -1;
    for (int i = 0; i < shards; i++) {
        s->first[i] = first;
        s->count[i] = count[i];
        first += count[i];
        if (count[i] > largest) largest = count[i];
    }
    for (int r = 0; r < ranks; r++) { /* every rank's images, for the common step count */
        long n = 0;
        for (int i = r; i < shards; i += ranks) n += count[i];
        if (r == rank) s->images = n;
        if (fewest < 0 || n < fewest) fewest = n;
    }
    s->steps = fewest / per_rank;
    if (s->steps < 1 || first > UINT32_MAX || largest > UINT32_MAX)
        return shard_sampler_free(s), -1;
    s->order = malloc((size_t)s->images * sizeof *s->order);
    s->scratch = malloc((size_t)shards * sizeof *s->scratch);
    if (!s->order || !s->scratch) return shard_sampler_free(s), -1;
    return 0;
}

void shard_sampler_free(shard_sampler_t *s)
{
    free(s->first);
    free(s->count);
    free(s->order);
    free(s->scratch);
    s->first = s->count = NULL;
    s->order = s->scratch = NULL;
}

/* This rank's images of `epoch`: its shards in the epoch's shard order,
 * each shard's images permuted. */
static void shard_order(shard_sampler_t *s, long epoch)
{
    uint32_t *perm = s->scratch;
    rng_permutation_of(s->seed, (uint64_t)epoch, 0, RNG_STREAM_SHARD_ORDER, (uint32_t)s->shards,
                       perm);
    long at = 0;
    for (int k = 0; k < s->shards; k++) {
        const int sh = (int)perm[k];
        if (sh % s->ranks != s->rank) continue;
        /* the within-shard permutation goes to the order directly */
        rng_permutation_of(s->seed, (uint64_t)epoch, (uint64_t)sh + 1, RNG_STREAM_SHARD_ORDER,
                           (uint32_t)s->count[sh], s->order + at);
        for (long i = 0; i < s->count[sh]; i++) s->order[at + i] += (uint32_t)s->first[sh];
        at += s->count[sh];
    }
}

void shard_sampler_slice(shard_sampler_t *s, long epoch, long step, int64_t *out)
{
    if (s->epoch != epoch) {
        shard_order(s, epoch);
        s->epoch = epoch;
    }
    const long start = step * s->per_rank;
    for (long i = 0; i < s->per_rank; i++) out[i] = s->order[start + i];
}
