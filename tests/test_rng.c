/* Philox4x32-10 against Random123's known answers, the stream layout of
 * rng_init, the distributions built on it, and the epoch permutation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/data/rng.h"

#define DRAWS 1000000

static void philox_check(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                         uint32_t k0, uint32_t k1,
                         uint32_t e0, uint32_t e1, uint32_t e2, uint32_t e3)
{
    const uint32_t ctr[4] = { c0, c1, c2, c3 };
    const uint32_t key[2] = { k0, k1 };
    uint32_t out[4];
    philox4x32_10(ctr, key, out);
    assert_int_equal(out[0], e0);
    assert_int_equal(out[1], e1);
    assert_int_equal(out[2], e2);
    assert_int_equal(out[3], e3);
}

/* Random123 kat_vectors, lines "philox4x32 10 ctr0..3 key0..1 out0..3". */
static void test_philox_known_answers(void **state)
{
    (void)state;
    philox_check(0, 0, 0, 0, 0, 0,
                 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8);
    philox_check(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
                 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd);
    philox_check(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
                 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1);
}

/* The words of a stream are the blocks (k, stream, index, epoch) keyed by
 * the seed's halves, in order: the layout rng.h documents. */
static void test_stream_layout(void **state)
{
    (void)state;
    const uint64_t seed = 0x0123456789abcdefull;
    const uint32_t key[2] = { 0x89abcdefu, 0x01234567u };
    rng_t r;
    rng_init(&r, seed, 7, 12345, RNG_STREAM_MASK);
    for (uint32_t block = 0; block < 5; block++) {
        const uint32_t ctr[4] = { block, RNG_STREAM_MASK, 12345, 7 };
        uint32_t expect[4];
        philox4x32_10(ctr, key, expect);
        for (int i = 0; i < 4; i++)
            assert_int_equal(rng_u32(&r), expect[i]);
    }
}

static void sequence_fill(uint64_t seed, uint64_t epoch, uint64_t index, uint32_t stream,
                          uint32_t *out, int n)
{
    rng_t r;
    rng_init(&r, seed, epoch, index, stream);
    for (int i = 0; i < n; i++)
        out[i] = rng_u32(&r);
}

/* Two sequences of 64 words that share no word at the same position:
 * unrelated streams agree at a position with probability 2^-32. */
static int sequences_disjoint(const uint32_t *a, const uint32_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] == b[i])
            return 0;
    return 1;
}

static void test_same_inputs_same_sequence(void **state)
{
    (void)state;
    uint32_t a[64], b[64];
    sequence_fill(42, 3, 1000, RNG_STREAM_AUGMENT, a, 64);
    sequence_fill(42, 3, 1000, RNG_STREAM_AUGMENT, b, 64);
    assert_memory_equal(a, b, sizeof a);
}

static void test_different_inputs_different_sequences(void **state)
{
    (void)state;
    uint32_t base[64], other[64];
    sequence_fill(42, 3, 1000, RNG_STREAM_AUGMENT, base, 64);

    sequence_fill(43, 3, 1000, RNG_STREAM_AUGMENT, other, 64);   /* seed, low half */
    assert_true(sequences_disjoint(base, other, 64));
    sequence_fill(42 + (1ull << 32), 3, 1000, RNG_STREAM_AUGMENT, other, 64);   /* seed, high half */
    assert_true(sequences_disjoint(base, other, 64));
    sequence_fill(42, 4, 1000, RNG_STREAM_AUGMENT, other, 64);   /* epoch */
    assert_true(sequences_disjoint(base, other, 64));
    sequence_fill(42, 3, 1001, RNG_STREAM_AUGMENT, other, 64);   /* index */
    assert_true(sequences_disjoint(base, other, 64));
    sequence_fill(42, 3, 1000, RNG_STREAM_MASK, other, 64);      /* stream */
    assert_true(sequences_disjoint(base, other, 64));
    /* Swapping epoch and index must not alias either. */
    uint32_t swapped_a[64], swapped_b[64];
    sequence_fill(42, 3, 1000, RNG_STREAM_MASK, swapped_a, 64);
    sequence_fill(42, 1000, 3, RNG_STREAM_MASK, swapped_b, 64);
    assert_true(sequences_disjoint(swapped_a, swapped_b, 64));
    /* Out-of-contract high halves still give a stream of their own. */
    sequence_fill(42, 3, 1000 + (1ull << 32), RNG_STREAM_AUGMENT, other, 64);
    assert_true(sequences_disjoint(base, other, 64));
    sequence_fill(42, 3 + (1ull << 32), 1000, RNG_STREAM_AUGMENT, other, 64);
    assert_true(sequences_disjoint(base, other, 64));
}

/* Mean 1/2 (sd of the estimate 2.9e-4) and variance 1/12 (sd 7.5e-5). */
static void test_uniform_moments(void **state)
{
    (void)state;
    rng_t r;
    rng_init(&r, 1, 0, 0, RNG_STREAM_EVAL);
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < DRAWS; i++) {
        float u = rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        assert_true(u * 16777216.0f == floorf(u * 16777216.0f));   /* 24 bits */
        sum += u;
        sum_sq += (double)u * u;
    }
    double mean = sum / DRAWS, var = sum_sq / DRAWS - mean * mean;
    assert_float_equal(mean, 0.5, 1.5e-3);
    assert_float_equal(var, 1.0 / 12.0, 5e-4);
}

static void test_uniform_double_moments(void **state)
{
    (void)state;
    rng_t r;
    rng_init(&r, 2, 0, 0, RNG_STREAM_EVAL);
    double sum = 0, sum_sq = 0;
    int below_2_24 = 0;   /* values whose low bits would be lost in a float */
    for (int i = 0; i < DRAWS; i++) {
        double u = rng_uniform_double(&r);
        assert_true(u >= 0.0 && u < 1.0);
        if (u * 16777216.0 != floor(u * 16777216.0))
            below_2_24++;
        sum += u;
        sum_sq += u * u;
    }
    double mean = sum / DRAWS, var = sum_sq / DRAWS - mean * mean;
    assert_float_equal(mean, 0.5, 1.5e-3);
    assert_float_equal(var, 1.0 / 12.0, 5e-4);
    assert_true(below_2_24 > DRAWS - 10);   /* more than 24 bits of resolution */
}

/* Mean 0 (sd 1e-3), variance 1 (sd 1.4e-3), P(|z| < 1) = 0.6827 (sd 4.7e-4). */
static void test_normal_moments(void **state)
{
    (void)state;
    rng_t r;
    rng_init(&r, 3, 0, 0, RNG_STREAM_INIT);
    double sum = 0, sum_sq = 0;
    int within_one = 0;
    for (int i = 0; i < DRAWS; i++) {
        float z = rng_normal(&r);
        assert_true(isfinite(z));
        sum += z;
        sum_sq += (double)z * z;
        within_one += fabsf(z) < 1.0f;
    }
    double mean = sum / DRAWS, var = sum_sq / DRAWS - mean * mean;
    assert_float_equal(mean, 0.0, 5e-3);
    assert_float_equal(var, 1.0, 1e-2);
    assert_float_equal((double)within_one / DRAWS, 0.682689, 3e-3);
}

/* A normal takes exactly four words and caches nothing: after k normals the
 * stream continues at word 4k, and the k-th normal is a function of words
 * 4k..4k+3 alone. */
static void test_normal_consumes_four_words(void **state)
{
    (void)state;
    uint32_t words[16];
    sequence_fill(9, 1, 2, RNG_STREAM_INIT, words, 16);
    rng_t r;
    rng_init(&r, 9, 1, 2, RNG_STREAM_INIT);
    float first = rng_normal(&r);
    float second = rng_normal(&r);
    assert_int_equal(rng_u32(&r), words[8]);

    /* Starting mid-stream at word 4 gives the second normal again. */
    rng_t mid;
    rng_init(&mid, 9, 1, 2, RNG_STREAM_INIT);
    for (int i = 0; i < 4; i++)
        rng_u32(&mid);
    assert_true(rng_normal(&mid) == second);
    assert_true(first != second);
}

/* Pearson chi-square of rng_below(n) over `draws` draws; with df = n-1 the
 * bound is about 6 standard deviations above the mean, so a correct
 * generator fails it with probability around 1e-7. */
static void below_chi_square_check(uint32_t n, int draws, uint64_t seed)
{
    static int counts[1000];
    assert_true(n <= 1000);
    memset(counts, 0, sizeof counts);
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (int i = 0; i < draws; i++) {
        uint32_t v = rng_below(&r, n);
        assert_true(v < n);
        counts[v]++;
    }
    double expected = (double)draws / n, chi2 = 0;
    for (uint32_t v = 0; v < n; v++)
        chi2 += (counts[v] - expected) * (counts[v] - expected) / expected;
    double df = n - 1;
    assert_true(chi2 < df + 6.0 * sqrt(2.0 * df) + 10.0);
}

static void test_below_range_and_counts(void **state)
{
    (void)state;
    below_chi_square_check(2, DRAWS, 10);
    below_chi_square_check(7, DRAWS, 11);
    below_chi_square_check(10, DRAWS, 12);
    below_chi_square_check(1000, DRAWS, 13);

    rng_t r;
    rng_init(&r, 14, 0, 0, RNG_STREAM_EVAL);
    const uint32_t large[] = { 0x80000001u, 0xfffffffeu, 0xffffffffu, 3u };
    for (size_t k = 0; k < sizeof large / sizeof large[0]; k++)
        for (int i = 0; i < 100000; i++)
            assert_true(rng_below(&r, large[k]) < large[k]);
    assert_int_equal(rng_below(&r, 1), 0);
    assert_int_equal(rng_below(&r, 0), 0);
}

/* With n = 3 * 2^30, x % n without rejection lands in [0, 2^30) with
 * probability 1/2 instead of 1/3; rejection restores 1/3 (sd 1.5e-3). */
static void test_below_unbiased_for_large_n(void **state)
{
    (void)state;
    const uint32_t n = 0xC0000000u;
    rng_t r;
    rng_init(&r, 15, 0, 0, RNG_STREAM_EVAL);
    int low = 0, draws = 100000;
    for (int i = 0; i < draws; i++)
        low += rng_below(&r, n) < 0x40000000u;
    assert_float_equal((double)low / draws, 1.0 / 3.0, 0.01);
}

#define PERM_N 10000

static int permutation_valid(const uint32_t *p, uint32_t n)
{
    static unsigned char seen[PERM_N];
    memset(seen, 0, n);
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] >= n || seen[p[i]])
            return 0;
        seen[p[i]] = 1;
    }
    return 1;
}

static void test_permutation(void **state)
{
    (void)state;
    static uint32_t a[PERM_N], b[PERM_N], c[PERM_N], d[PERM_N];
    rng_permutation(5, 0, PERM_N, a);
    rng_permutation(5, 0, PERM_N, b);
    rng_permutation(5, 1, PERM_N, c);
    rng_permutation(6, 0, PERM_N, d);
    assert_true(permutation_valid(a, PERM_N));
    assert_true(permutation_valid(c, PERM_N));
    assert_true(permutation_valid(d, PERM_N));
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_memory_not_equal(a, d, sizeof a);
    /* A shuffled order, not the identity: few fixed points (expected 1). */
    int fixed = 0;
    for (uint32_t i = 0; i < PERM_N; i++)
        fixed += a[i] == i;
    assert_true(fixed < 10);

    uint32_t one = 99;
    rng_permutation(5, 0, 1, &one);
    assert_int_equal(one, 0);
    rng_permutation(5, 0, 0, NULL);   /* empty: touches nothing */
}

/* Over many epochs the 6 orders of 3 items come up equally often
 * (chi-square, df = 5): Fisher-Yates is correct, not merely a permutation. */
static void test_permutation_uniform(void **state)
{
    (void)state;
    int counts[6] = { 0 };
    const int epochs = 60000;
    for (int e = 0; e < epochs; e++) {
        uint32_t p[3];
        rng_permutation(7, (uint64_t)e, 3, p);
        assert_true(permutation_valid(p, 3));
        /* Lehmer code of p: 0..5. */
        int code = (int)p[0] * 2 + (p[1] > p[2]);
        counts[code]++;
    }
    double expected = epochs / 6.0, chi2 = 0;
    for (int k = 0; k < 6; k++)
        chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
    assert_true(chi2 < 35.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_stream_layout),
        cmocka_unit_test(test_same_inputs_same_sequence),
        cmocka_unit_test(test_different_inputs_different_sequences),
        cmocka_unit_test(test_uniform_moments),
        cmocka_unit_test(test_uniform_double_moments),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_normal_consumes_four_words),
        cmocka_unit_test(test_below_range_and_counts),
        cmocka_unit_test(test_below_unbiased_for_large_n),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_permutation_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
