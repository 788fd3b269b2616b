#include "core/data/rng.h"

#include <math.h>
#include <stddef.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u   /* golden ratio */
#define PHILOX_W1 0xBB67AE85u   /* sqrt(3) - 1 */
#define PHILOX_ROUNDS 10

/* Not in strict C11's <math.h>. */
static const double two_pi = 6.283185307179586476925286766559;

/* One Philox S-box round, exactly Random123's _philox4x32round. */
static void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t y0 = hi1 ^ x[1] ^ k[0];
    uint32_t y2 = hi0 ^ x[3] ^ k[1];
    x[0] = y0;
    x[1] = lo1;
    x[2] = y2;
    x[3] = lo0;
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t x[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
    uint32_t k[2] = { key[0], key[1] };
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round > 0) {   /* the key schedule bumps before every round but the first */
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    out[0] = x[0];
    out[1] = x[1];
    out[2] = x[2];
    out[3] = x[3];
}

void rng_init(rng_t *r, uint64_t seed, uint64_t epoch, uint64_t index, uint32_t stream)
{
    /* Out-of-contract high halves land in ctr[1] multiplied by odd constants:
     * zero for every in-range call, so the documented layout is exact there. */
    uint32_t index_hi = (uint32_t)(index >> 32);
    uint32_t epoch_hi = (uint32_t)(epoch >> 32);
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = stream ^ (index_hi * PHILOX_W0) ^ (epoch_hi * PHILOX_W1);
    r->ctr[2] = (uint32_t)index;
    r->ctr[3] = (uint32_t)epoch;
    r->buf[0] = r->buf[1] = r->buf[2] = r->buf[3] = 0;
    r->used = 4;
}

uint32_t rng_u32(rng_t *r)
{
    if (r->used >= 4) {
        philox4x32_10(r->ctr, r->key, r->buf);
        r->ctr[0]++;
        r->used = 0;
    }
    return r->buf[r->used++];
}

float rng_uniform(rng_t *r)
{
    return (float)(rng_u32(r) >> 8) * 0x1p-24f;
}

double rng_uniform_double(rng_t *r)
{
    uint64_t hi = rng_u32(r) >> 5;   /* 27 bits */
    uint64_t lo = rng_u32(r) >> 6;   /* 26 bits */
    return (double)((hi << 26) | lo) * 0x1p-53;
}

float rng_normal(rng_t *r)
{
    /* 1 - u lies in (0, 1], so the logarithm is finite. */
    double u1 = rng_uniform_double(r);
    double u2 = rng_uniform_double(r);
    double radius = sqrt(-2.0 * log(1.0 - u1));
    return (float)(radius * cos(two_pi * u2));
}

uint32_t rng_below(rng_t *r, uint32_t n)
{
    if (n <= 1)
        return 0;
    /* Words below 2^32 mod n would make the small residues more likely;
     * above it every residue appears equally often. */
    uint32_t reject_below = (0u - n) % n;
    for (;;) {
        uint32_t x = rng_u32(r);
        if (x >= reject_below)
            return x % n;
    }
}

void rng_permutation(uint64_t seed, uint64_t epoch, uint32_t n, uint32_t *out)
{
    rng_permutation_of(seed, epoch, 0, RNG_STREAM_ORDER, n, out);
}

void rng_permutation_of(uint64_t seed, uint64_t epoch, uint64_t index, uint32_t stream,
                        uint32_t n, uint32_t *out)
{
    rng_t r;
    rng_init(&r, seed, epoch, index, stream);
    for (uint32_t i = 0; i < n; i++)
        out[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(&r, i);
        uint32_t tmp = out[i - 1];
        out[i - 1] = out[j];
        out[j] = tmp;
    }
}
