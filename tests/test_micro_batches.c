/* core/kernels/micro_batches.h: one backward over rows that hold several
 * micro-batches gives bitwise the parameter gradients of separate
 * micro-batches summed in the pairwise tree, and its products run whole only
 * where that gives the bits of running them per micro-batch. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/kernels/micro_batches.h"
#include "core/kernels/pairwise_sum.h"

/* OUT rows span two of micro_batches_weight_grads' tiles, the second short */
enum { COUNT = 4, ROWS = 37, T = COUNT * ROWS, IN = 24, OUT = MICRO_BATCHES_TILE_ROWS + 44 };

static uint64_t rng_state = 12345;

/* Values of mixed magnitude, so that float sums depend on their order. */
static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        const float u = (float)(rng_state >> 40) / (float)(1 << 24) - 0.5f;
        x[i] = u * (i % 3 ? 1.0f : 1e3f);
    }
}

static float *floats(size_t n)
{
    float *x = calloc(n, sizeof(float));
    assert_non_null(x);
    return x;
}

/* The gradients of the micro-batches run one at a time, each from zero, in
 * the tree: what a rank per micro-batch (holding one, so forming it in the
 * same tiles) and dist/tree_sum compute. */
static void separate_linear(float *dw, float *db, const float *dout, const float *inp,
                            const float *w)
{
    micro_batches_t one;
    assert_int_equal(micro_batches_init(&one, 1, 0), 0);
    pairwise_sum_t sum;
    const size_t n = (size_t)OUT * IN + OUT;
    assert_int_equal(pairwise_sum_init(&sum, n, COUNT), 0);
    pairwise_sum_reset(&sum, n);
    for (int j = 0; j < COUNT; j++) {
        float *part = pairwise_sum_leaf(&sum);
        memset(part, 0, n * sizeof(float));
        linear_backward(NULL, part, part + OUT * IN, dout + (size_t)j * ROWS * OUT,
                        inp + (size_t)j * ROWS * IN, w, ROWS, IN, OUT, &one);
        pairwise_sum_add_leaf(&sum);
    }
    micro_batches_free(&one);
    memset(dw, 0, (size_t)OUT * IN * sizeof(float));
    memset(db, 0, OUT * sizeof(float));
    pairwise_sum_add_into(dw, pairwise_sum_total(&sum), (size_t)OUT * IN);
    pairwise_sum_add_into(db, pairwise_sum_total(&sum) + OUT * IN, OUT);
    pairwise_sum_free(&sum);
}

static void test_linear_grads_equal_separate_micro_batches(void **state)
{
    (void)state;
    float *dout = floats(T * OUT), *inp = floats(T * IN), *w = floats(OUT * IN);
    fill(dout, T * OUT), fill(inp, T * IN), fill(w, OUT * IN);
    float *dw = floats(OUT * IN), *db = floats(OUT), *dw_ref = floats(OUT * IN),
          *db_ref = floats(OUT), *dinp = floats(T * IN), *dinp_ref = floats(T * IN);
    separate_linear(dw_ref, db_ref, dout, inp, w);
    float *unused = floats(OUT * IN);
    for (int j = 0; j < COUNT; j++)
        linear_backward(dinp_ref + (size_t)j * ROWS * IN, unused, NULL,
                        dout + (size_t)j * ROWS * OUT, inp + (size_t)j * ROWS * IN, w, ROWS,
                        IN, OUT, NULL);

    micro_batches_t mb;
    assert_int_equal(micro_batches_init(&mb, COUNT, micro_batches_tile_floats(OUT, IN)), 0);
    /* sibling parts formed apart, then (where the probe allows) fused */
    for (int paired = 0; paired < 2; paired++) {
        if (paired) {
            const grad_shape_t shape = {OUT, IN, ROWS};
            assert_int_equal(micro_batches_probe_pairs(&mb, &shape, 1), 0);
            printf("  linear: %d of 2 tile shapes form sibling parts in one product\n",
                   mb.n_paired);
        }
        memset(dw, 0, (size_t)OUT * IN * sizeof(float));
        memset(db, 0, OUT * sizeof(float));
        linear_backward(dinp, dw, db, dout, inp, w, T, IN, OUT, &mb);
        assert_memory_equal(dw, dw_ref, (size_t)OUT * IN * sizeof(float));
        assert_memory_equal(db, db_ref, OUT * sizeof(float));
        assert_memory_equal(dinp, dinp_ref, (size_t)T * IN * sizeof(float));
    }

    /* all rows as one micro-batch sums in another order: the test can tell */
    memset(dw, 0, (size_t)OUT * IN * sizeof(float));
    linear_backward(NULL, dw, NULL, dout, inp, w, T, IN, OUT, NULL);
    assert_memory_not_equal(dw, dw_ref, (size_t)OUT * IN * sizeof(float));
    /* but to rounding it is the same sum: every tile lands on its own rows */
    float most = 0.0f;
    for (size_t i = 0; i < (size_t)OUT * IN; i++)
        if (fabsf(dw_ref[i]) > most) most = fabsf(dw_ref[i]);
    for (size_t i = 0; i < (size_t)OUT * IN; i++)
        assert_true(fabsf(dw[i] - dw_ref[i]) <= 1e-5f * most);
    micro_batches_free(&mb);
    free(dout), free(inp), free(w), free(dw), free(db), free(dw_ref), free(db_ref), free(dinp),
        free(dinp_ref), free(unused);
    printf("  linear: 4 micro-batches in one backward = 4 separate, summed in the tree\n");
}

static void test_layernorm_grads_equal_separate_micro_batches(void **state)
{
    (void)state;
    enum { C = 40 };
    float *x = floats(T * C), *dy = floats(T * C), *g = floats(C), *b = floats(C);
    fill(x, T * C), fill(dy, T * C), fill(g, C), fill(b, C);
    float *y = floats(T * C), *mean = floats(T), *rstd = floats(T);
    layernorm_forward(y, mean, rstd, x, g, b, T, C);

    micro_batches_t one;
    assert_int_equal(micro_batches_init(&one, 1, 0), 0);
    pairwise_sum_t sum;
    assert_int_equal(pairwise_sum_init(&sum, 2 * C, COUNT), 0);
    pairwise_sum_reset(&sum, 2 * C);
    float *dx = floats(T * C);
    for (int j = 0; j < COUNT; j++) {
        float *part = pairwise_sum_leaf(&sum);
        memset(part, 0, 2 * C * sizeof(float));
        const size_t r = (size_t)j * ROWS;
        layernorm_backward(dx + r * C, part, part + C, dy + r * C, x + r * C, g, mean + r,
                           rstd + r, ROWS, C, &one);
        pairwise_sum_add_leaf(&sum);
    }
    micro_batches_free(&one);
    float *dg_ref = floats(C), *db_ref = floats(C);
    pairwise_sum_add_into(dg_ref, pairwise_sum_total(&sum), C);
    pairwise_sum_add_into(db_ref, pairwise_sum_total(&sum) + C, C);

    micro_batches_t mb;
    assert_int_equal(micro_batches_init(&mb, COUNT, 2 * C), 0);
    float *dx2 = floats(T * C), *dg = floats(C), *dbeta = floats(C);
    layernorm_backward(dx2, dg, dbeta, dy, x, g, mean, rstd, T, C, &mb);
    assert_memory_equal(dg, dg_ref, C * sizeof(float));
    assert_memory_equal(dbeta, db_ref, C * sizeof(float));
    assert_memory_equal(dx2, dx, (size_t)T * C * sizeof(float));
    micro_batches_free(&mb);
    pairwise_sum_free(&sum);
    free(x), free(dy), free(g), free(b), free(y), free(mean), free(rstd), free(dx), free(dg_ref),
        free(db_ref), free(dx2), free(dg), free(dbeta);
}

/* Products run whole only when the probe found them exact; then they are,
 * on other data too. Small shapes (OpenBLAS's small-matrix kernels) and
 * large ones are both tried; which way each goes is the BLAS's business. */
static void test_products_whole_only_where_exact(void **state)
{
    (void)state;
    const product_shape_t shapes[] = {
        {9, 48, 32, CblasTrans}, {9, 32, 48, CblasNoTrans},
        {200, 384, 256, CblasTrans}, {200, 256, 384, CblasNoTrans},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const product_shape_t *s = &shapes[i];
        micro_batches_t mb;
        assert_int_equal(micro_batches_init(&mb, COUNT, 1), 0);
        assert_int_equal(micro_batches_probe(&mb, s, 1), 0);
        const int probed_whole = mb.n_whole;
        const int M = COUNT * s->rows;
        float *a = floats((size_t)M * s->k), *bm = floats((size_t)s->n * s->k);
        float *whole = floats((size_t)M * s->n), *parts = floats((size_t)M * s->n);
        fill(a, (size_t)M * s->k), fill(bm, (size_t)s->n * s->k);
        fill(whole, (size_t)M * s->n);
        memcpy(parts, whole, (size_t)M * s->n * sizeof(float));
        micro_batches_sgemm(&mb, s->trans_b, M, s->n, s->k, a, bm, 1.0f, whole);
        mb.n_whole = 0;
        micro_batches_sgemm(&mb, s->trans_b, M, s->n, s->k, a, bm, 1.0f, parts);
        assert_memory_equal(whole, parts, (size_t)M * s->n * sizeof(float));
        printf("  %d rows x %d x %d (B%s): products %s\n", s->rows, s->n, s->k,
               s->trans_b == CblasTrans ? "^T" : "", probed_whole ? "whole" : "per micro-batch");
        free(a), free(bm), free(whole), free(parts);
        micro_batches_free(&mb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_grads_equal_separate_micro_batches),
        cmocka_unit_test(test_layernorm_grads_equal_separate_micro_batches),
        cmocka_unit_test(test_products_whole_only_where_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
