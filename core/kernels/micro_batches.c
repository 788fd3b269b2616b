#include "core/kernels/micro_batches.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int micro_batches_init(micro_batches_t *mb, int count, size_t max_floats)
{
    memset(mb, 0, sizeof *mb);
    mb->count = count;
    return count > 1 ? pairwise_sum_init(&mb->sum, max_floats, count) : 0;
}

void micro_batches_free(micro_batches_t *mb)
{
    if (mb->count > 1) pairwise_sum_free(&mb->sum);
    memset(mb, 0, sizeof *mb);
}

static void sgemm_once(CBLAS_TRANSPOSE trans_b, int M, int N, int K, const float *A,
                       const float *B, float beta, float *C)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b, M, N, K, 1.0f, A, K, B,
                trans_b == CblasTrans ? K : N, beta, C, N);
}

static void sgemm_per_micro_batch(int count, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                                  const float *A, const float *B, float beta, float *C)
{
    const int rows = M / count;
    for (int j = 0; j < count; j++)
        sgemm_once(trans_b, rows, N, K, A + (size_t)j * rows * K, B, beta,
                   C + (size_t)j * rows * N);
}

static int runs_whole(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M, int N, int K)
{
    for (int i = 0; i < mb->n_whole; i++) {
        const product_shape_t *s = &mb->whole[i];
        if (s->rows * mb->count == M && s->n == N && s->k == K && s->trans_b == trans_b) return 1;
    }
    return 0;
}

void micro_batches_sgemm(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                         const float *A, const float *B, float beta, float *C)
{
    if (!mb || mb->count <= 1 || runs_whole(mb, trans_b, M, N, K))
        sgemm_once(trans_b, M, N, K, A, B, beta, C);
    else
        sgemm_per_micro_batch(mb->count, trans_b, M, N, K, A, B, beta, C);
}

/* Uniform floats in [-1, 1) from a fixed xorshift stream. */
static void fill_random(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17;
        x[i] = (float)(*state >> 40) / (float)(1 << 23) - 1.0f;
    }
}

/* 1 when this shape's rows come out the same run whole as per micro-batch. */
static int shape_exact(int count, const product_shape_t *s, float *a, float *b, float *c1,
                       float *c2, uint64_t *state)
{
    const int M = count * s->rows;
    fill_random(a, (size_t)M * s->k, state);
    fill_random(b, (size_t)s->n * s->k, state);
    fill_random(c1, (size_t)M * s->n, state);
    memcpy(c2, c1, (size_t)M * s->n * sizeof(float));
    /* beta 1 as the forward's seeded products use, which covers beta 0's path too */
    sgemm_once(s->trans_b, M, s->n, s->k, a, b, 1.0f, c1);
    sgemm_per_micro_batch(count, s->trans_b, M, s->n, s->k, a, b, 1.0f, c2);
    return memcmp(c1, c2, (size_t)M * s->n * sizeof(float)) == 0;
}

int micro_batches_probe(micro_batches_t *mb, const product_shape_t *shapes, int n_shapes)
{
    mb->n_whole = mb->n_probed = 0;
    if (mb->count <= 1 || n_shapes > MICRO_BATCHES_MAX_SHAPES) return 0;
    size_t most_a = 0, most_b = 0, most_c = 0;
    for (int i = 0; i < n_shapes; i++) {
        const size_t M = (size_t)mb->count * shapes[i].rows;
        if (M * shapes[i].k > most_a) most_a = M * shapes[i].k;
        if ((size_t)shapes[i].n * shapes[i].k > most_b) most_b = (size_t)shapes[i].n * shapes[i].k;
        if (M * shapes[i].n > most_c) most_c = M * shapes[i].n;
    }
    float *a = malloc((most_a + 1) * sizeof(float)), *b = malloc((most_b + 1) * sizeof(float));
    float *c1 = malloc((most_c + 1) * sizeof(float)), *c2 = malloc((most_c + 1) * sizeof(float));
    int rc = -1;
    if (a && b && c1 && c2) {
        uint64_t state = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < n_shapes; i++)
            if (shape_exact(mb->count, &shapes[i], a, b, c1, c2, &state))
                mb->whole[mb->n_whole++] = shapes[i];
        mb->n_probed = n_shapes;
        rc = 0;
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
    return rc;
}

void micro_batches_grads(micro_batches_t *mb, int rows, float *a, size_t n_a, float *b,
                         size_t n_b, micro_batch_grads_fn fn, void *ctx)
{
    if (!mb || mb->count <= 1) {
        fn(ctx, 0, rows, a, b);
        return;
    }
    const size_t n = n_a + (b ? n_b : 0);
    const int share = rows / mb->count;
    pairwise_sum_reset(&mb->sum, n);
    for (int j = 0; j < mb->count; j++) {
        /* each part starts at zero, as a separate backward's gradient block does */
        float *part = pairwise_sum_leaf(&mb->sum);
        memset(part, 0, n * sizeof(float));
        fn(ctx, j * share, share, part, b ? part + n_a : NULL);
        pairwise_sum_add_leaf(&mb->sum);
    }
    const float *total = pairwise_sum_total(&mb->sum);
    pairwise_sum_add_into(a, total, n_a);
    if (b) pairwise_sum_add_into(b, total + n_a, n_b);
}
