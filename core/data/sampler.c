#include "core/data/sampler.h"

#include <stdlib.h>

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
