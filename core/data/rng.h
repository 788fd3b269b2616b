/* Counter-based random numbers (Philox4x32-10, Salmon et al., SC 2011, as in
 * Random123). Every random decision of a run is a pure function of
 * (seed, epoch, index, stream): no generator state travels between images,
 * ranks or steps, so results never depend on the rank count or on the order
 * in which work is done (docs/DESIGN.md, "Reproducibility contract").
 *
 * Layout of one stream, rng_init(r, seed, epoch, index, stream):
 *   key[0] = low 32 bits of seed,  key[1] = high 32 bits of seed
 *   ctr[0] = block counter (0, 1, 2, ... ; each block yields 4 words)
 *   ctr[1] = stream
 *   ctr[2] = index   (image index, or 0 for per-epoch streams)
 *   ctr[3] = epoch
 * index and epoch must be < 2^32. Larger values are not rejected: their high
 * halves are folded into ctr[1], which keeps them apart from every in-range
 * stream but no longer guarantees distinct streams among themselves.
 * One stream gives 2^34 words before it repeats. */
#ifndef MIMAE_DATA_RNG_H
#define MIMAE_DATA_RNG_H

#include <stdint.h>

/* One Philox4x32-10 block: the words of ctr and key in Random123's order
 * (ctr.v[0..3], key.v[0..1]). */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

typedef struct {
    uint32_t key[2];
    uint32_t ctr[4];   /* ctr[0] is the next block to generate */
    uint32_t buf[4];   /* the current block's output */
    int used;          /* words of buf already handed out (4: buf is spent) */
} rng_t;

/* Which random decision a stream serves; distinct values give independent
 * streams for the same (seed, epoch, index). */
enum rng_stream {
    RNG_STREAM_MASK = 1,
    RNG_STREAM_AUGMENT = 2,
    RNG_STREAM_ORDER = 3,
    RNG_STREAM_INIT = 4,
    RNG_STREAM_EVAL = 5,
    RNG_STREAM_SHARD_ORDER = 6 /* data.sampling = shard-local: index 0 the shards, s + 1 shard s */
};

void rng_init(rng_t *r, uint64_t seed, uint64_t epoch, uint64_t index, uint32_t stream);

/* Next word of the stream: block 0 words 0..3, then block 1, ... */
uint32_t rng_u32(rng_t *r);

/* Uniform in [0,1) with 24 random bits (every value exactly representable);
 * consumes one word. */
float rng_uniform(rng_t *r);

/* Uniform in [0,1) with 53 random bits; consumes two words. */
double rng_uniform_double(rng_t *r);

/* Standard normal by Box-Muller (cosine branch) in double; consumes four
 * words and caches nothing, so each value depends only on its position. */
float rng_normal(rng_t *r);

/* Unbiased integer in [0, n) by rejection. Consumes one word, more on the
 * rare rejection; n <= 1 gives 0 and consumes nothing (n == 0 is an error
 * of the caller's, not checked further). */
uint32_t rng_below(rng_t *r, uint32_t n);

/* The data order of an epoch: a uniformly random permutation of 0..n-1 by
 * Fisher-Yates, drawn from stream RNG_STREAM_ORDER with index 0. */
void rng_permutation(uint64_t seed, uint64_t epoch, uint32_t n, uint32_t *out);

/* The same drawn from any stream and index. */
void rng_permutation_of(uint64_t seed, uint64_t epoch, uint64_t index, uint32_t stream,
                        uint32_t n, uint32_t *out);

#endif
