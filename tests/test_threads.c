/* The kernels' results do not depend on the thread count (core/kernels/
 * parallel.h): attention on both of its paths (direct loops for short
 * sequences, per-head sgemm run single-threaded on the pool's threads for
 * long ones), layer norm, a linear layer's products and micro-batched
 * weight gradient, and the gradient norm, each bitwise equal on 1 and 2
 * threads. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "core/kernels/attention.h"
#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/kernels/micro_batches.h"
#include "core/kernels/parallel.h"
#include "core/optim/adamw.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        x[i] = scale * ((float)(rng_state >> 40) / (float)(1 << 24) - 0.5f);
    }
}

static float *floats(size_t n)
{
    float *x = calloc(n, sizeof(float));
    assert_non_null(x);
    return x;
}

/* Runs attention forward and backward on `threads` threads. */
static void attention_on(int threads, float *out, float *probs, float *dqkv, const float *qkv,
                         const float *dout, int S, int T, int C, int NH)
{
    openblas_set_num_threads(threads);
    assert_int_equal(par_threads(), threads);
    attention_forward(out, probs, qkv, S, T, C, NH);
    attention_backward(dqkv, dout, qkv, probs, S, T, C, NH);
}

static void check_attention(int S, int T)
{
    enum { C = 64, NH = 4 };
    const size_t rows = (size_t)S * T;
    float *qkv = floats(rows * 3 * C), *dout = floats(rows * C);
    fill(qkv, rows * 3 * C, 2.0f), fill(dout, rows * C, 1.0f);
    float *out[2], *probs[2], *dqkv[2];
    for (int i = 0; i < 2; i++) {
        out[i] = floats(rows * C), probs[i] = floats((size_t)S * NH * T * T);
        dqkv[i] = floats(rows * 3 * C);
        attention_on(i + 1, out[i], probs[i], dqkv[i], qkv, dout, S, T, C, NH);
    }
    assert_memory_equal(out[0], out[1], rows * C * sizeof(float));
    assert_memory_equal(probs[0], probs[1], (size_t)S * NH * T * T * sizeof(float));
    assert_memory_equal(dqkv[0], dqkv[1], rows * 3 * C * sizeof(float));
    printf("  attention, %d sequence(s) of %d tokens: 1 and 2 threads agree bitwise\n", S, T);
    free(qkv), free(dout);
    for (int i = 0; i < 2; i++) free(out[i]), free(probs[i]), free(dqkv[i]);
}

static void test_attention_short_sequences(void **state)
{
    (void)state;
    check_attention(5, 50); /* the direct loops; a thread's share ends mid-sequence */
}

static void test_attention_long_sequences(void **state)
{
    (void)state;
    check_attention(5, 97); /* per-head sgemm */
}

static void test_attention_one_sequence(void **state)
{
    (void)state;
    /* one sequence's heads shared by the threads (MAE at batch 1) */
    check_attention(1, 50);
    check_attention(1, 97);
}

static void test_layernorm(void **state)
{
    (void)state;
    enum { T = 300, C = 200 };
    float *x = floats(T * C), *dy = floats(T * C), *g = floats(C), *b = floats(C);
    fill(x, T * C, 4.0f), fill(dy, T * C, 1.0f), fill(g, C, 2.0f), fill(b, C, 1.0f);
    float *y[2], *mean[2], *rstd[2], *dx[2], *dg[2], *db[2];
    for (int i = 0; i < 2; i++) {
        openblas_set_num_threads(i + 1);
        y[i] = floats(T * C), mean[i] = floats(T), rstd[i] = floats(T);
        dx[i] = floats(T * C), dg[i] = floats(C), db[i] = floats(C);
        layernorm_forward(y[i], mean[i], rstd[i], x, g, b, T, C);
        layernorm_backward(dx[i], dg[i], db[i], dy, x, g, mean[i], rstd[i], T, C, NULL);
    }
    assert_memory_equal(y[0], y[1], T * C * sizeof(float));
    assert_memory_equal(dx[0], dx[1], T * C * sizeof(float));
    assert_memory_equal(dg[0], dg[1], C * sizeof(float));
    assert_memory_equal(db[0], db[1], C * sizeof(float));
    free(x), free(dy), free(g), free(b);
    for (int i = 0; i < 2; i++)
        free(y[i]), free(mean[i]), free(rstd[i]), free(dx[i]), free(dg[i]), free(db[i]);
}

/* The micro-batched weight gradient (tiles, fused sibling pairs) and the
 * products around it, with OpenBLAS splitting them over 1 or 2 threads.
 * Inner dimensions stay at most 384: beyond that OpenBLAS 0.3.21 blocks
 * some of them differently when threaded (600 and 769 do, 768 and 3072 do
 * not; docs/DESIGN.md "Reproducibility contract"), which is its arithmetic, not ours. */
static void test_linear_micro_batches(void **state)
{
    (void)state;
    enum { COUNT = 4, ROWS = 150, T = COUNT * ROWS, IN = 200, OUT = 300 };
    float *x = floats(T * IN), *w = floats(OUT * IN), *bias = floats(OUT), *dy = floats(T * OUT);
    fill(x, T * IN, 2.0f), fill(w, OUT * IN, 0.1f), fill(bias, OUT, 1.0f), fill(dy, T * OUT, 1.0f);
    const grad_shape_t shape = {OUT, IN, ROWS};
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int i = 0; i < 2; i++) {
        openblas_set_num_threads(i + 1);
        micro_batches_t mb;
        assert_int_equal(micro_batches_init(&mb, COUNT, micro_batches_tile_floats(OUT, IN)), 0);
        assert_int_equal(micro_batches_probe_pairs(&mb, &shape, 1), 0);
        y[i] = floats(T * OUT), dx[i] = floats(T * IN), dw[i] = floats(OUT * IN);
        db[i] = floats(OUT);
        linear_forward(y[i], x, w, bias, T, IN, OUT, &mb);
        linear_backward(dx[i], dw[i], db[i], dy, x, w, T, IN, OUT, &mb);
        micro_batches_free(&mb);
    }
    assert_memory_equal(y[0], y[1], (size_t)T * OUT * sizeof(float));
    assert_memory_equal(dx[0], dx[1], (size_t)T * IN * sizeof(float));
    assert_memory_equal(dw[0], dw[1], (size_t)OUT * IN * sizeof(float));
    assert_memory_equal(db[0], db[1], OUT * sizeof(float));
    free(x), free(w), free(bias), free(dy);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]), free(db[i]);
}

/* The gradient norm over a vector long enough for both threads (and not a
 * multiple of its blocks), and over a short one: the same bits on 1 and 2
 * threads, and the norm a long double sum gives. */
static void test_grad_norm(void **state)
{
    (void)state;
    const size_t sizes[2] = {((size_t)1 << 21) + 37, 5};
    for (int s = 0; s < 2; s++) {
        const size_t n = sizes[s];
        float *g = floats(n);
        fill(g, n, 3.0f);
        double norm[2];
        for (int i = 0; i < 2; i++) {
            openblas_set_num_threads(i + 1);
            norm[i] = grad_norm(g, n);
        }
        long double exact = 0.0L;
        for (size_t k = 0; k < n; k++) exact += (long double)g[k] * g[k];
        assert_memory_equal(&norm[0], &norm[1], sizeof(double));
        assert_true(fabs(norm[0] - (double)sqrtl(exact)) <= 1e-12 * norm[0]);
        printf("  grad_norm of %zu floats: 1 and 2 threads agree bitwise, %.17g\n", n, norm[0]);
        free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_short_sequences),
        cmocka_unit_test(test_attention_long_sequences),
        cmocka_unit_test(test_attention_one_sequence),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_linear_micro_batches),
        cmocka_unit_test(test_grad_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
