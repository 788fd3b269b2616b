#include "core/kernels/micro_batches.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int micro_batches_init(micro_batches_t *mb, int count, size_t max_floats)
{
    memset(mb, 0, sizeof *mb);
    mb->count = count;
    if (count <= 1) return 0;
    mb->bias_part = malloc(MICRO_BATCHES_TILE_ROWS * sizeof(float));
    return pairwise_sum_init(&mb->sum, max_floats, count) || !mb->bias_part ? -1 : 0;
}

void micro_batches_free(micro_batches_t *mb)
{
    if (mb->count > 1) pairwise_sum_free(&mb->sum);
    free(mb->bias_part);
    memset(mb, 0, sizeof *mb);
}

static int tile_rows(int out) { return out < MICRO_BATCHES_TILE_ROWS ? out : MICRO_BATCHES_TILE_ROWS; }

/* The row counts of an out-row weight gradient's tiles, into m[2]: a full
 * tile and the last, shorter one (0 when there is none). */
static void tile_shapes(int out, int m[2])
{
    m[0] = tile_rows(out);
    m[1] = out > MICRO_BATCHES_TILE_ROWS ? out % MICRO_BATCHES_TILE_ROWS : 0;
}

size_t micro_batches_tile_floats(int out, int in) { return (size_t)tile_rows(out) * (in + 1); }

/* C (M x N, packed) = op(A) op(B) + beta C, row-major as cblas_sgemm, in
 * the micro-batches' precision: every product of this file goes here. */
static void product(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b,
                    int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C)
{
    if (mb && mb->bf16)
        bf16_products_gemm(mb->bf16, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C);
    else
        cblas_sgemm(CblasRowMajor, trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
}

static void sgemm_once(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M, int N, int K,
                       const float *A, const float *B, float beta, float *C)
{
    product(mb, CblasNoTrans, trans_b, M, N, K, A, K, B, trans_b == CblasTrans ? K : N, beta, C);
}

static void sgemm_per_micro_batch(const micro_batches_t *mb, CBLAS_TRANSPOSE trans_b, int M,
                                  int N, int K, const float *A, const float *B, float beta,
                                  float *C)
{
    const int rows = M / mb->count;
    for (int j = 0; j < mb->count; j++)
        sgemm_once(mb, trans_b, rows, N, K, A + (size_t)j * rows * K, B, beta,
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
        sgemm_once(mb, trans_b, M, N, K, A, B, beta, C);
    else
        sgemm_per_micro_batch(mb, trans_b, M, N, K, A, B, beta, C);
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
static int shape_exact(const micro_batches_t *mb, const product_shape_t *s, float *a, float *b,
                       float *c1, float *c2, uint64_t *state)
{
    const int M = mb->count * s->rows;
    fill_random(a, (size_t)M * s->k, state);
    fill_random(b, (size_t)s->n * s->k, state);
    fill_random(c1, (size_t)M * s->n, state);
    memcpy(c2, c1, (size_t)M * s->n * sizeof(float));
    /* beta 1 as the forward's seeded products use, which covers beta 0's path too */
    sgemm_once(mb, s->trans_b, M, s->n, s->k, a, b, 1.0f, c1);
    sgemm_per_micro_batch(mb, s->trans_b, M, s->n, s->k, a, b, 1.0f, c2);
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
            if (shape_exact(mb, &shapes[i], a, b, c1, c2, &state))
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

/* Rows [r0, r0 + m) of c (m x in) += dout^T inp over input rows
 * [t0, t0 + rows); dout has `out` columns. */
static void tile_product(const micro_batches_t *mb, const float *dout, const float *inp, int t0,
                         int rows, int r0, int m, int in, int out, float *c)
{
    product(mb, CblasTrans, CblasNoTrans, m, in, rows, dout + (size_t)t0 * out + r0, out,
            inp + (size_t)t0 * in, in, 1.0f, c);
}

/* bias[o] += dout[t][r0 + o] over input rows [t0, t0 + rows), in row order
 * (so the sum does not depend on vector width). */
static void bias_sums(const float *dout, int t0, int rows, int r0, int m, int out, float *bias)
{
    for (int t = t0; t < t0 + rows; t++) {
        const float *row = dout + (size_t)t * out + r0;
        for (int o = 0; o < m; o++) bias[o] += row[o];
    }
}

static int pairs_fuse(const micro_batches_t *mb, int m, int in, int rows)
{
    for (int i = 0; i < mb->n_paired; i++) {
        const grad_shape_t *s = &mb->paired[i];
        if (s->out == m && s->in == in && s->rows == rows) return 1;
    }
    return 0;
}

/* 1 when micro-batch 1's product added onto micro-batch 0's gave bitwise
 * the two formed apart and added, for a tile of m rows of an out x in
 * weight gradient; operands from the caller's buffers. */
static int pair_exact(const micro_batches_t *mb, int m, int in, int out, int rows, float *dout,
                      float *inp, float *apart, float *onto, float *second, uint64_t *state)
{
    fill_random(dout, (size_t)2 * rows * out, state);
    fill_random(inp, (size_t)2 * rows * in, state);
    const size_t n = (size_t)m * in;
    memset(apart, 0, n * sizeof(float));
    memset(second, 0, n * sizeof(float));
    memset(onto, 0, n * sizeof(float));
    tile_product(mb, dout, inp, 0, rows, 0, m, in, out, apart);
    tile_product(mb, dout, inp, rows, rows, 0, m, in, out, second);
    pairwise_sum_add_into(apart, second, n);
    tile_product(mb, dout, inp, 0, rows, 0, m, in, out, onto);
    tile_product(mb, dout, inp, rows, rows, 0, m, in, out, onto);
    return memcmp(apart, onto, n * sizeof(float)) == 0;
}

int micro_batches_probe_pairs(micro_batches_t *mb, const grad_shape_t *shapes, int n_shapes)
{
    mb->n_paired = mb->n_pair_probed = 0;
    if (mb->count <= 1) return 0;
    size_t most_dout = 0, most_inp = 0, most_c = 0;
    for (int i = 0; i < n_shapes; i++) {
        const grad_shape_t *s = &shapes[i];
        const size_t rows2 = (size_t)2 * s->rows;
        if (rows2 * s->out > most_dout) most_dout = rows2 * s->out;
        if (rows2 * s->in > most_inp) most_inp = rows2 * s->in;
        if ((size_t)tile_rows(s->out) * s->in > most_c) most_c = (size_t)tile_rows(s->out) * s->in;
    }
    float *dout = malloc((most_dout + 1) * sizeof(float)), *inp = malloc((most_inp + 1) * sizeof(float));
    float *c[3] = {malloc((most_c + 1) * sizeof(float)), malloc((most_c + 1) * sizeof(float)),
                   malloc((most_c + 1) * sizeof(float))};
    int rc = -1;
    if (dout && inp && c[0] && c[1] && c[2]) {
        uint64_t state = 0x2545f4914f6cdd1dull;
        for (int i = 0; i < n_shapes; i++) {
            const grad_shape_t *s = &shapes[i];
            int tiles[2];
            tile_shapes(s->out, tiles);
            for (int t = 0; t < 2; t++) {
                const int m = tiles[t];
                if (!m || pairs_fuse(mb, m, s->in, s->rows) ||
                    mb->n_paired == MICRO_BATCHES_MAX_SHAPES)
                    continue;
                if (pair_exact(mb, m, s->in, s->out, s->rows, dout, inp, c[0], c[1], c[2], &state))
                    mb->paired[mb->n_paired++] = (grad_shape_t){m, s->in, s->rows};
            }
        }
        mb->n_pair_probed = n_shapes;
        rc = 0;
    }
    free(dout);
    free(inp);
    for (int i = 0; i < 3; i++) free(c[i]);
    return rc;
}

void micro_batches_weight_grads(micro_batches_t *mb, int T, float *dweight, float *dbias,
                                const float *dout, const float *inp, int in, int out)
{
    if (!mb || mb->count < 1) {
        tile_product(mb, dout, inp, 0, T, 0, out, in, out, dweight);
        if (dbias) bias_sums(dout, 0, T, 0, out, out, dbias);
        return;
    }
    const int k = mb->count, share = T / k;
    for (int r0 = 0; r0 < out; r0 += MICRO_BATCHES_TILE_ROWS) {
        const int m = tile_rows(out - r0);
        float *w_tile = dweight + (size_t)r0 * in, *b_tile = dbias ? dbias + r0 : NULL;
        if (k == 1) { /* the tree of one leaf: the part is the sum */
            tile_product(mb, dout, inp, 0, T, r0, m, in, out, w_tile);
            if (b_tile) bias_sums(dout, 0, T, r0, m, out, b_tile);
            continue;
        }
        const size_t n_w = (size_t)m * in, n = n_w + (b_tile ? (size_t)m : 0);
        const int fuse = pairs_fuse(mb, m, in, share);
        pairwise_sum_reset(&mb->sum, n);
        for (int j = 0; j < k; j++) {
            /* each part starts at zero, as a separate backward's gradient block does */
            float *part = pairwise_sum_leaf(&mb->sum);
            memset(part, 0, n * sizeof(float));
            tile_product(mb, dout, inp, j * share, share, r0, m, in, out, part);
            if (b_tile) bias_sums(dout, j * share, share, r0, m, out, part + n_w);
            if (!fuse) {
                pairwise_sum_add_subtree(&mb->sum, 0);
                continue;
            }
            /* the sibling's product in sgemm's own pass over the part; its
             * bias apart, then added as the tree adds */
            j++;
            tile_product(mb, dout, inp, j * share, share, r0, m, in, out, part);
            if (b_tile) {
                memset(mb->bias_part, 0, (size_t)m * sizeof(float));
                bias_sums(dout, j * share, share, r0, m, out, mb->bias_part);
                pairwise_sum_add_into(part + n_w, mb->bias_part, (size_t)m);
            }
            pairwise_sum_add_subtree(&mb->sum, 1);
        }
        const float *total = pairwise_sum_total(&mb->sum);
        pairwise_sum_add_into(w_tile, total, n_w);
        if (b_tile) pairwise_sum_add_into(b_tile, total + n_w, (size_t)m);
    }
}

int micro_batches_use_bf16(micro_batches_t *mb, bf16_products_t *bf16,
                           const product_shape_t *shapes, int n_shapes,
                           const grad_shape_t *grads, int n_grads, char *err, size_t errlen)
{
    mb->bf16 = bf16;
    if (!bf16) return 0;
    const int k = mb->count > 1 ? mb->count : 1;
    /* forward (seeded or not) and d input, run whole or per micro-batch */
    for (int i = 0; i < n_shapes; i++)
        for (int whole = 0; whole <= (k > 1); whole++)
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                const product_shape_t *s = &shapes[i];
                const bf16_matmul_dims_t d = {whole ? k * s->rows : s->rows, s->n, s->k,
                                              CblasNoTrans, s->trans_b, accumulate, 1};
                if (bf16_products_prepare(bf16, d, err, errlen)) return -1;
            }
    /* weight gradients: tiles (a full one and the last) per micro-batch, or whole */
    for (int i = 0; i < n_grads; i++) {
        const grad_shape_t *g = &grads[i];
        int tiles[2] = {g->out, 0}; /* the fast reduction's one product */
        if (mb->count >= 1) tile_shapes(g->out, tiles);
        for (int t = 0; t < 2; t++) {
            if (!tiles[t]) continue;
            const bf16_matmul_dims_t d = {tiles[t], g->in, g->rows, CblasTrans, CblasNoTrans, 1, 1};
            if (bf16_products_prepare(bf16, d, err, errlen)) return -1;
        }
    }
    return 0;
}
