/* Finite-difference checks of every forward/backward pair of core/.
 *
 * Method: for a module y = F(x, params), take a random projection R of its
 * output and the scalar objective f = sum(y * R), evaluated in double from
 * the float32 kernels. The module's backward with d(y) = R gives the analytic
 * gradient of f; central differences (f(x + e) - f(x - e)) / (2e) over a
 * random sample of the coordinates of every input and parameter give the
 * numeric one. For each sampled coordinate the relative error is
 *   |fd - an| / max(|fd| + |an|, floor),  floor = 0.1 * RMS over the sample of (|fd| + |an|),
 * so coordinates far below the tensor's gradient scale are judged against
 * that scale rather than against their own round-off. Every check prints
 * "name: max rel err X" and must stay below its bound, 1e-2 (float32). The
 * whole-model check uses the 4-point stencil (error O(e^4)) so that its steps
 * can be large enough to keep float32 round-off of a ~10-layer forward small.
 *
 * The losses (reconstruction, InfoNCE, CLUB, Q's NLL) are also compared with
 * naive double-precision implementations written from docs/METHOD.md, and the
 * gathers/scatters of tokens.h and patches.h, which are linear, with the
 * adjoint identity <F(x), r> == <x, F^T(r)>.
 *
 * Sizes are tiny (T ~ 5, C ~ 8) so the whole file runs in about a second. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/activation.h"
#include "core/kernels/attention.h"
#include "core/objective/gaussian_q.h"
#include "core/config/config.h"
#include "core/objective/objective.h"
#include "core/objective/infonce.h"
#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/objective/masks.h"
#include "core/kernels/mlp.h"
#include "core/vit/model.h"
#include "core/vit/params.h"
#include "core/vit/patches.h"
#include "core/objective/recon_loss.h"
#include "core/data/rng.h"
#include "core/kernels/softmax.h"
#include "core/vit/tokens.h"
#include "core/vit/block.h"

#define FD_BOUND 1e-2        /* single modules, float32 central differences */
#define MODEL_FD_BOUND 1e-2  /* whole model, 4-point stencil (see check_model) */
#define ADJOINT_BOUND 1e-5   /* <F x, r> == <x, F^T r> for the linear maps */
#define FD_SAMPLES 40        /* coordinates sampled per tensor (all if fewer) */
#define MODEL_FD_SAMPLES 24
#define MAX_COORDS 256
#define TEST_SEED 0x6d696d6165ull /* "mimae" */
#define LOG_2PI 1.83787706640934548356

/* ------------------------------------------------------------------------ */
/* Per-test bookkeeping: buffers and the model are released in the teardown
 * (which cmocka runs after a failed test too), and numeric checks are soft:
 * each prints its line, and the test fails at its end if any was exceeded,
 * so a failure still shows every other check's error. */

#define MAX_BUFFERS 128

static void *g_buffers[MAX_BUFFERS];
static int g_nbuffers;
static mimae_model_t *g_model;
static int g_failed_checks;

static int test_setup(void **state)
{
    (void)state;
    g_nbuffers = 0;
    g_model = NULL;
    g_failed_checks = 0;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < g_nbuffers; i++) free(g_buffers[i]);
    g_nbuffers = 0;
    mimae_model_free(g_model);
    g_model = NULL;
    return 0;
}

/* A zeroed float buffer owned by the current test. */
static float *fbuf(size_t n)
{
    assert_true(g_nbuffers < MAX_BUFFERS);
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    g_buffers[g_nbuffers++] = p;
    return p;
}

static int *ibuf(size_t n)
{
    assert_true(g_nbuffers < MAX_BUFFERS);
    int *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    g_buffers[g_nbuffers++] = p;
    return p;
}

/* Records one numeric check: prints it and counts it if out of bound. */
static void check_bound(const char *name, const char *what, double err, double bound)
{
    int ok = err < bound; /* false for NaN too */
    printf("  %-44s %s %.3e%s\n", name, what, err, ok ? "" : "   <-- FAILED");
    if (!ok) g_failed_checks++;
}

static void finish_checks(void)
{
    if (g_failed_checks) fail_msg("%d check(s) out of bound, see the lines marked FAILED",
                                  g_failed_checks);
}

/* ------------------------------------------------------------------------ */
/* Random data from the counter-based RNG: one stream per test. */

static rng_t test_rng(uint64_t index)
{
    rng_t r;
    rng_init(&r, TEST_SEED, 0, index, RNG_STREAM_EVAL);
    return r;
}

static void fill_normal(rng_t *r, float *x, size_t n, float mean, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = mean + scale * rng_normal(r);
}

static void fill_uniform(rng_t *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(r);
}

/* Rows of width E scaled to unit length. */
static void fill_unit_rows(rng_t *r, float *x, int rows, int E)
{
    fill_normal(r, x, (size_t)rows * E, 0.0f, 1.0f);
    for (int i = 0; i < rows; i++) {
        double sq = 0.0;
        for (int e = 0; e < E; e++) sq += (double)x[i * E + e] * x[i * E + e];
        for (int e = 0; e < E; e++) x[i * E + e] = (float)(x[i * E + e] / sqrt(sq));
    }
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double rel_diff(double a, double b)
{
    double den = fabs(a) + fabs(b);
    return den > 1e-300 ? fabs(a - b) / den : 0.0;
}

/* Largest |a - b| over n values, relative to the largest |b|. */
static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = d > num ? d : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0.0 ? num / den : num;
}

/* Hash of the sign pattern of x: changes when a ReLU input crosses its kink. */
static uint64_t sign_hash(uint64_t h, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (uint64_t)(x[i] > 0.0f)) * 0x100000001b3ull;
    return h;
}

/* ------------------------------------------------------------------------ */
/* The finite-difference loop. */

typedef struct {
    double (*loss)(void *ctx);    /* runs the forward, returns the scalar objective */
    uint64_t (*kinks)(void *ctx); /* NULL, or the ReLU sign pattern of the last loss() */
    void *ctx;
    int fourth_order;             /* 0: central difference; 1: the 4-point stencil */
} objective_t;

/* Up to `want` distinct coordinates of [0, n) (all of them if n <= want). */
static int sample_coords(rng_t *r, size_t *idx, size_t n, int want)
{
    if (n <= (size_t)want) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        return (int)n;
    }
    int k = 0;
    while (k < want) {
        size_t c = rng_below(r, (uint32_t)n);
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= idx[j] == c;
        if (!dup) idx[k++] = c;
    }
    return k;
}

/* Compares an[idx[k]] with finite differences of the objective in x[idx[k]]
 * (central, or the 4-point stencil). Coordinates where a perturbed evaluation
 * changes a ReLU pattern are skipped (the difference quotient straddles a
 * kink there). Prints the check and returns its max rel err. */
static double fd_check_coords(const char *name, const objective_t *o, float *x,
                              const float *an, const size_t *idx, int n, float eps,
                              double bound)
{
    double fd[MAX_COORDS], ag[MAX_COORDS];
    int used = 0, skipped = 0;
    assert_true(n <= MAX_COORDS);
    double base = o->loss(o->ctx);
    uint64_t base_kinks = o->kinks ? o->kinks(o->ctx) : 0;
    assert_true(isfinite(base));
    const int points = o->fourth_order ? 2 : 1;
    for (int k = 0; k < n; k++) {
        const size_t i = idx[k];
        const float x0 = x[i];
        double diff[2], step[2];
        int kinked = 0;
        for (int j = 0; j < points; j++) {
            x[i] = x0 + (float)(j + 1) * eps;
            const double xp = x[i], fp = o->loss(o->ctx);
            kinked |= o->kinks && o->kinks(o->ctx) != base_kinks;
            x[i] = x0 - (float)(j + 1) * eps;
            const double xm = x[i], fm = o->loss(o->ctx);
            kinked |= o->kinks && o->kinks(o->ctx) != base_kinks;
            diff[j] = fp - fm;
            step[j] = xp - xm; /* the float steps actually taken */
        }
        x[i] = x0;
        if (kinked) {
            skipped++;
            continue;
        }
        if (points == 1)
            fd[used] = diff[0] / step[0];
        else /* (8 (f(+h) - f(-h)) - (f(+2h) - f(-2h))) / 12h, error O(h^4) */
            fd[used] = (8.0 * diff[0] - diff[1]) / (6.0 * step[0]);
        ag[used] = an[i];
        used++;
    }
    o->loss(o->ctx); /* leave the forward state at the unperturbed point */
    double rms = 0.0;
    for (int k = 0; k < used; k++) rms += (fabs(fd[k]) + fabs(ag[k])) * (fabs(fd[k]) + fabs(ag[k]));
    rms = used ? sqrt(rms / used) : 0.0;
    const double floor_ = 0.1 * rms > 1e-30 ? 0.1 * rms : 1e-30;
    double worst = 0.0;
    for (int k = 0; k < used; k++) {
        double den = fabs(fd[k]) + fabs(ag[k]);
        double e = fabs(fd[k] - ag[k]) / (den > floor_ ? den : floor_);
        worst = e > worst ? e : worst;
    }
    char label[160];
    if (skipped)
        snprintf(label, sizeof label, "%s (%d/%d, %d at a kink)", name, used, n, skipped);
    else
        snprintf(label, sizeof label, "%s (%d coords)", name, used);
    check_bound(label, "max rel err", worst, bound);
    if (used < (n + 1) / 2) {
        printf("  %s: too many coordinates at a ReLU kink\n", name);
        g_failed_checks++;
    }
    return worst;
}

/* fd_check_coords over a random sample of the n coordinates of x. */
static double fd_check(const char *name, const objective_t *o, float *x, const float *an,
                       size_t n, float eps, double bound, rng_t *r, int samples)
{
    size_t idx[MAX_COORDS];
    int k = sample_coords(r, idx, n, samples);
    return fd_check_coords(name, o, x, an, idx, k, eps, bound);
}

/* ======================================================================== */
/* 1. linear: y = x W^T + b. Proves dinp = dout W, dW = dout^T x, db = colsum
 * (dout); that dW/db ACCUMULATE and dinp is OVERWRITTEN; bias/dinp NULL. */

typedef struct {
    float *out, *x, *w, *b, *r;
    int T, in, out_dim;
} linear_ctx_t;

static double linear_loss(void *p)
{
    linear_ctx_t *c = p;
    linear_forward(c->out, c->x, c->w, c->b, c->T, c->in, c->out_dim, NULL);
    return dot(c->out, c->r, (size_t)c->T * c->out_dim);
}

static void test_linear(void **state)
{
    (void)state;
    rng_t r = test_rng(1);
    const int T = 5, in = 8, out = 6;
    linear_ctx_t c = {fbuf((size_t)T * out), fbuf((size_t)T * in), fbuf((size_t)out * in),
                      fbuf(out), fbuf((size_t)T * out), T, in, out};
    fill_normal(&r, c.x, (size_t)T * in, 0.0f, 1.0f);
    fill_normal(&r, c.w, (size_t)out * in, 0.0f, 0.4f);
    fill_normal(&r, c.b, out, 0.0f, 0.5f);
    fill_normal(&r, c.r, (size_t)T * out, 0.0f, 1.0f);
    float *dx = fbuf((size_t)T * in), *dw = fbuf((size_t)out * in), *db = fbuf(out);
    for (int i = 0; i < T * in; i++) dx[i] = 123.0f; /* must be overwritten */
    linear_forward(c.out, c.x, c.w, c.b, T, in, out, NULL);
    linear_backward(dx, dw, db, c.r, c.x, c.w, T, in, out, NULL);

    objective_t o = {linear_loss, NULL, &c, 0};
    fd_check("linear dx", &o, c.x, dx, (size_t)T * in, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    fd_check("linear dW", &o, c.w, dw, (size_t)out * in, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    fd_check("linear db", &o, c.b, db, out, 1e-2f, FD_BOUND, &r, FD_SAMPLES);

    /* A second backward doubles dW and db and rewrites dx unchanged. */
    float *dx2 = fbuf((size_t)T * in), *dw2 = fbuf((size_t)out * in), *db2 = fbuf(out);
    memcpy(dw2, dw, sizeof(float) * out * in);
    memcpy(db2, db, sizeof(float) * out);
    for (int i = 0; i < T * in; i++) dx2[i] = -7.0f;
    linear_backward(dx2, dw2, db2, c.r, c.x, c.w, T, in, out, NULL);
    for (int i = 0; i < out * in; i++) dw[i] *= 2.0f;
    for (int i = 0; i < out; i++) db[i] *= 2.0f;
    check_bound("linear dW accumulates (2 calls = 2x)", "max rel diff",
                max_rel_diff(dw2, dw, (size_t)out * in), 1e-6);
    check_bound("linear db accumulates (2 calls = 2x)", "max rel diff",
                max_rel_diff(db2, db, out), 1e-6);
    check_bound("linear dx overwritten", "max rel diff", max_rel_diff(dx2, dx, (size_t)T * in),
                1e-6);

    /* No bias: the output is the biased one minus b; dinp/dbias NULL skip them. */
    float *nob = fbuf((size_t)T * out);
    linear_forward(nob, c.x, c.w, NULL, T, in, out, NULL);
    double worst = 0.0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < out; j++) {
            double d = fabs(nob[t * out + j] + c.b[j] - c.out[t * out + j]);
            worst = d > worst ? d : worst;
        }
    check_bound("linear without bias = with bias - b", "max abs diff", worst, 1e-5);
    float *dw3 = fbuf((size_t)out * in);
    linear_backward(NULL, dw3, NULL, c.r, c.x, c.w, T, in, out, NULL);
    for (int i = 0; i < out * in; i++) dw3[i] *= 2.0f;
    check_bound("linear dW with dinp = dbias = NULL", "max rel diff",
                max_rel_diff(dw3, dw, (size_t)out * in), 1e-6);
    finish_checks();
}

/* ======================================================================== */
/* 2. layernorm over rows of width C. Proves the gradients of x, weight and
 * bias, all three ACCUMULATED onto what the buffers held (prefilled here). */

typedef struct {
    float *out, *mean, *rstd, *x, *w, *b, *r;
    int T, C;
} layernorm_ctx_t;

static double layernorm_loss(void *p)
{
    layernorm_ctx_t *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->T, c->C);
    return dot(c->out, c->r, (size_t)c->T * c->C);
}

static void test_layernorm(void **state)
{
    (void)state;
    rng_t r = test_rng(2);
    const int T = 5, C = 8;
    const size_t n = (size_t)T * C;
    layernorm_ctx_t c = {fbuf(n), fbuf(T), fbuf(T), fbuf(n), fbuf(C), fbuf(C), fbuf(n), T, C};
    fill_normal(&r, c.x, n, 0.5f, 2.0f);
    fill_normal(&r, c.w, C, 1.0f, 0.3f);
    fill_normal(&r, c.b, C, 0.0f, 0.3f);
    fill_normal(&r, c.r, n, 0.0f, 1.0f);
    const float pre_x = 0.5f, pre_w = -0.25f, pre_b = 2.0f;
    float *dx = fbuf(n), *dw = fbuf(C), *db = fbuf(C);
    for (size_t i = 0; i < n; i++) dx[i] = pre_x;
    for (int i = 0; i < C; i++) dw[i] = pre_w, db[i] = pre_b;
    layernorm_forward(c.out, c.mean, c.rstd, c.x, c.w, c.b, T, C);
    layernorm_backward(dx, dw, db, c.r, c.x, c.w, c.mean, c.rstd, T, C, NULL);
    for (size_t i = 0; i < n; i++) dx[i] -= pre_x;
    for (int i = 0; i < C; i++) dw[i] -= pre_w, db[i] -= pre_b;

    objective_t o = {layernorm_loss, NULL, &c, 0};
    fd_check("layernorm dx (accumulated)", &o, c.x, dx, n, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    fd_check("layernorm dweight (accumulated)", &o, c.w, dw, C, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    fd_check("layernorm dbias (accumulated)", &o, c.b, db, C, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    finish_checks();
}

/* ======================================================================== */
/* 3. GELU (erf form) and ReLU. Proves act'(x) for both (ReLU sampled away
 * from its kink), and that dinp may alias dout. */

typedef struct {
    activation_t act;
    float *out, *x, *r;
    size_t n;
} activation_ctx_t;

static double activation_loss(void *p)
{
    activation_ctx_t *c = p;
    activation_forward(c->act, c->out, c->x, c->n);
    return dot(c->out, c->r, c->n);
}

static void check_activation(activation_t act, const char *name, rng_t *r)
{
    const size_t n = 48;
    activation_ctx_t c = {act, fbuf(n), fbuf(n), fbuf(n), n};
    if (act == ACT_GELU) {
        fill_uniform(r, c.x, n, -3.0f, 3.0f);
    } else {
        fill_uniform(r, c.x, n, 0.1f, 2.0f); /* |x| >= 0.1: eps never crosses 0 */
        for (size_t i = 0; i < n; i += 2) c.x[i] = -c.x[i];
    }
    fill_normal(r, c.r, n, 0.0f, 1.0f);
    float *dx = fbuf(n), *alias = fbuf(n);
    activation_backward(act, dx, c.x, c.r, n);
    memcpy(alias, c.r, n * sizeof(float));
    activation_backward(act, alias, c.x, alias, n);

    char label[64];
    objective_t o = {activation_loss, NULL, &c, 0};
    snprintf(label, sizeof label, "%s dx", name);
    fd_check(label, &o, c.x, dx, n, 1e-3f, FD_BOUND, r, FD_SAMPLES);
    snprintf(label, sizeof label, "%s dx with dinp aliasing dout", name);
    check_bound(label, "max rel diff", max_rel_diff(alias, dx, n), 1e-7);
}

static void test_activation(void **state)
{
    (void)state;
    rng_t r = test_rng(3);
    check_activation(ACT_GELU, "gelu", &r);
    check_activation(ACT_RELU, "relu", &r);
    /* GELU's value at a known point: x * Phi(x), Phi(1) = 0.8413447460685429. */
    float one = 1.0f, g;
    activation_forward(ACT_GELU, &g, &one, 1);
    check_bound("gelu(1) = Phi(1)", "abs diff", fabs(g - 0.8413447460685429), 1e-6);
    finish_checks();
}

/* ======================================================================== */
/* 4. Row softmax with a row stride ld > n. Proves the Jacobian-vector product
 * of softmax_rows_backward (also when dlogits aliases dp), that the padding
 * columns are left alone, and logsumexp_row against double. */

typedef struct {
    float *work, *x, *r;
    int rows, n, ld;
} softmax_ctx_t;

static double softmax_loss(void *p)
{
    softmax_ctx_t *c = p;
    memcpy(c->work, c->x, sizeof(float) * c->rows * c->ld);
    softmax_rows(c->work, c->rows, c->n, c->ld);
    double s = 0.0;
    for (int i = 0; i < c->rows; i++) s += dot(c->work + i * c->ld, c->r + i * c->ld, c->n);
    return s;
}

static void test_softmax(void **state)
{
    (void)state;
    rng_t r = test_rng(4);
    const int rows = 4, n = 5, ld = 7;
    const size_t total = (size_t)rows * ld;
    softmax_ctx_t c = {fbuf(total), fbuf(total), fbuf(total), rows, n, ld};
    fill_normal(&r, c.x, total, 0.0f, 2.0f);
    fill_normal(&r, c.r, total, 0.0f, 1.0f);
    softmax_loss(&c);
    float *p = fbuf(total), *dl = fbuf(total), *alias = fbuf(total);
    memcpy(p, c.work, total * sizeof(float));
    int pad_ok = 1;
    double sum_err = 0.0;
    for (int i = 0; i < rows; i++) {
        double s = 0.0;
        for (int j = 0; j < n; j++) s += p[i * ld + j];
        sum_err = fmax(sum_err, fabs(s - 1.0));
        for (int j = n; j < ld; j++) pad_ok &= p[i * ld + j] == c.x[i * ld + j];
    }
    check_bound("softmax rows sum to 1", "max abs err", sum_err, 1e-6);
    assert_true(pad_ok);
    /* gradient only for the n columns; the padding of dl stays 0 */
    softmax_rows_backward(dl, p, c.r, rows, n, ld);
    memcpy(alias, c.r, total * sizeof(float));
    softmax_rows_backward(alias, p, alias, rows, n, ld);

    size_t idx[MAX_COORDS];
    int k = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < n; j++) idx[k++] = (size_t)i * ld + j;
    objective_t o = {softmax_loss, NULL, &c, 0};
    fd_check_coords("softmax dlogits", &o, c.x, dl, idx, k, 1e-2f, FD_BOUND);
    double ad = 0.0;
    for (int q = 0; q < k; q++) ad = fmax(ad, fabs((double)alias[idx[q]] - dl[idx[q]]));
    check_bound("softmax dlogits aliasing dp", "max abs diff", ad, 1e-7);

    double lse_err = 0.0;
    for (int i = 0; i < rows; i++) {
        double s = 0.0;
        for (int j = 0; j < n; j++) s += exp((double)c.x[i * ld + j]);
        lse_err = fmax(lse_err, rel_diff(logsumexp_row(c.x + i * ld, n), log(s)));
    }
    check_bound("logsumexp_row vs double", "max rel err", lse_err, 1e-6);
    finish_checks();
}

/* ======================================================================== */
/* 5. Multi-head attention core, S = 2 sequences, T = 5, C = 8, NH = 2.
 * Proves the gradients of the q, k and v columns of qkv (dqkv overwritten). */

typedef struct {
    float *out, *probs, *qkv, *r;
    int S, T, C, NH;
} attention_ctx_t;

static double attention_loss(void *p)
{
    attention_ctx_t *c = p;
    attention_forward(c->out, c->probs, c->qkv, c->S, c->T, c->C, c->NH);
    return dot(c->out, c->r, (size_t)c->S * c->T * c->C);
}

static void test_attention(void **state)
{
    (void)state;
    rng_t r = test_rng(5);
    const int S = 2, T = 5, C = 8, NH = 2;
    const size_t R = (size_t)S * T;
    attention_ctx_t c = {fbuf(R * C), fbuf((size_t)S * NH * T * T), fbuf(R * 3 * C),
                         fbuf(R * C), S, T, C, NH};
    fill_normal(&r, c.qkv, R * 3 * C, 0.0f, 1.0f);
    fill_normal(&r, c.r, R * C, 0.0f, 1.0f);
    float *dqkv = fbuf(R * 3 * C);
    for (size_t i = 0; i < R * 3 * C; i++) dqkv[i] = 99.0f; /* must be overwritten */
    attention_forward(c.out, c.probs, c.qkv, S, T, C, NH);
    attention_backward(dqkv, c.r, c.qkv, c.probs, S, T, C, NH);

    objective_t o = {attention_loss, NULL, &c, 0};
    const char *names[3] = {"attention dq", "attention dk", "attention dv"};
    for (int part = 0; part < 3; part++) {
        size_t idx[MAX_COORDS];
        int k = 0;
        for (size_t t = 0; t < R; t++)
            for (int j = 0; j < C; j++) idx[k++] = t * 3 * C + (size_t)part * C + j;
        fd_check_coords(names[part], &o, c.qkv, dqkv, idx, k, 1e-2f, FD_BOUND);
    }
    finish_checks();
}

/* ======================================================================== */
/* 6. One pre-norm ViT block. Proves d(x) and the gradients of all 12
 * parameters of block_params_t, with acts/scratch laid out here at the sizes
 * vit_block.h documents (each buffer its own allocation, so ASan sees any
 * overrun). */

#define BLOCK_TENSORS 12

typedef struct {
    block_acts_t a;
    block_params_t p;
    block_dims_t d;
    float *x, *r;
} block_ctx_t;

static double block_loss(void *ptr)
{
    block_ctx_t *c = ptr;
    vit_block_forward(&c->a, &c->p, c->x, &c->d);
    return dot(c->a.out, c->r, (size_t)c->d.S * c->d.T * c->d.C);
}

/* The 12 tensors of a block in params.h order, with their sizes. */
static void block_fields(block_params_t *p, float **f[BLOCK_TENSORS])
{
    float **all[BLOCK_TENSORS] = {&p->ln1_w, &p->ln1_b, &p->qkv_w, &p->qkv_b,
                                  &p->proj_w, &p->proj_b, &p->ln2_w, &p->ln2_b,
                                  &p->fc1_w, &p->fc1_b, &p->fc2_w, &p->fc2_b};
    memcpy(f, all, sizeof all);
}

static void test_vit_block(void **state)
{
    (void)state;
    rng_t r = test_rng(6);
    const int S = 2, T = 5, C = 8, heads = 2, hidden = 32;
    const size_t R = (size_t)S * T;
    const char *names[BLOCK_TENSORS] = {"ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
                                        "ln2_w", "ln2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"};
    const size_t sizes[BLOCK_TENSORS] = {C, C, 3 * C * C, 3 * C, C * C, C,
                                         C, C, (size_t)hidden * C, hidden, (size_t)C * hidden, C};
    const int fan_in[BLOCK_TENSORS] = {0, 0, C, 0, C, 0, 0, 0, C, 0, hidden, 0};
    block_ctx_t c;
    memset(&c, 0, sizeof c);
    c.d = (block_dims_t){S, T, C, heads, hidden, NULL};
    c.x = fbuf(R * C);
    c.r = fbuf(R * C);
    block_acts_t *a = &c.a;
    a->ln1 = fbuf(R * C), a->ln1_mean = fbuf(R), a->ln1_rstd = fbuf(R);
    a->qkv = fbuf(R * 3 * C);
    a->probs = fbuf((size_t)S * heads * T * T);
    a->att = fbuf(R * C), a->res1 = fbuf(R * C);
    a->ln2 = fbuf(R * C), a->ln2_mean = fbuf(R), a->ln2_rstd = fbuf(R);
    a->fc1 = fbuf(R * hidden), a->gelu = fbuf(R * hidden);
    a->out = fbuf(R * C);
    block_scratch_t s = {fbuf(R * C), fbuf(R * 3 * C), fbuf(R * hidden)};

    block_params_t g;
    float **pf[BLOCK_TENSORS], **gf[BLOCK_TENSORS];
    block_fields(&c.p, pf);
    block_fields(&g, gf);
    for (int i = 0; i < BLOCK_TENSORS; i++) {
        *pf[i] = fbuf(sizes[i]);
        *gf[i] = fbuf(sizes[i]);
        if (fan_in[i]) /* matrices ~ 1/sqrt(fan_in); norm weights ~1, biases ~0.1 */
            fill_normal(&r, *pf[i], sizes[i], 0.0f, 1.0f / sqrtf((float)fan_in[i]));
        else
            fill_normal(&r, *pf[i], sizes[i], (i == 0 || i == 6) ? 1.0f : 0.0f, 0.2f);
    }
    fill_normal(&r, c.x, R * C, 0.0f, 1.0f);
    fill_normal(&r, c.r, R * C, 0.0f, 1.0f);

    float *dx = fbuf(R * C);
    block_loss(&c);
    memcpy(dx, c.r, R * C * sizeof(float));
    vit_block_backward(dx, &g, &c.p, &c.a, c.x, &s, &c.d);

    objective_t o = {block_loss, NULL, &c, 0};
    fd_check("vit_block dx", &o, c.x, dx, R * C, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    for (int i = 0; i < BLOCK_TENSORS; i++) {
        char label[64];
        snprintf(label, sizeof label, "vit_block d%s", names[i]);
        fd_check(label, &o, *pf[i], *gf[i], sizes[i], 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    }
    finish_checks();
}

/* ======================================================================== */
/* 7. Two-layer MLP with GELU (projector) and ReLU (Q's heads). Proves d(x)
 * (overwritten) and the gradients of fc1/fc2 weights and biases; ReLU
 * coordinates whose step crosses a kink are skipped. */

typedef struct {
    mlp_t m;
    float *out, *pre, *post, *x, *r;
    int R;
} mlp_ctx_t;

static double mlp_loss(void *p)
{
    mlp_ctx_t *c = p;
    mlp_forward(&c->m, c->out, c->pre, c->post, c->x, c->R, NULL);
    return dot(c->out, c->r, (size_t)c->R * c->m.out);
}

static uint64_t mlp_kinks(void *p)
{
    mlp_ctx_t *c = p;
    return c->m.act == ACT_RELU ? sign_hash(1469598103934665603ull, c->pre,
                                            (size_t)c->R * c->m.hidden)
                                : 0;
}

static void check_mlp(activation_t act, const char *name, rng_t *r)
{
    const int R = 5, in = 8, hidden = 12, out = 6;
    float *w1 = fbuf((size_t)hidden * in), *b1 = fbuf(hidden);
    float *w2 = fbuf((size_t)out * hidden), *b2 = fbuf(out);
    fill_normal(r, w1, (size_t)hidden * in, 0.0f, 0.4f);
    fill_normal(r, b1, hidden, 0.0f, 0.2f);
    fill_normal(r, w2, (size_t)out * hidden, 0.0f, 0.3f);
    fill_normal(r, b2, out, 0.0f, 0.2f);
    mlp_ctx_t c = {{w1, b1, w2, b2, in, hidden, out, act},
                   fbuf((size_t)R * out), fbuf((size_t)R * hidden), fbuf((size_t)R * hidden),
                   fbuf((size_t)R * in), fbuf((size_t)R * out), R};
    fill_normal(r, c.x, (size_t)R * in, 0.0f, 1.0f);
    fill_normal(r, c.r, (size_t)R * out, 0.0f, 1.0f);
    mlp_grads_t g = {fbuf((size_t)hidden * in), fbuf(hidden), fbuf((size_t)out * hidden),
                     fbuf(out)};
    float *dx = fbuf((size_t)R * in), *dh = fbuf((size_t)R * hidden);
    for (int i = 0; i < R * in; i++) dx[i] = 5.0f; /* must be overwritten */
    mlp_loss(&c);
    mlp_backward(&c.m, &g, dx, dh, c.r, c.x, c.pre, c.post, R, NULL);

    objective_t o = {mlp_loss, mlp_kinks, &c, 0};
    const float eps = act == ACT_RELU ? 1e-3f : 1e-2f;
    struct { const char *what; float *x; const float *g; size_t n; } t[5] = {
        {"dx", c.x, dx, (size_t)R * in},
        {"dfc1_w", w1, g.fc1_w, (size_t)hidden * in},
        {"dfc1_b", b1, g.fc1_b, hidden},
        {"dfc2_w", w2, g.fc2_w, (size_t)out * hidden},
        {"dfc2_b", b2, g.fc2_b, out},
    };
    for (int i = 0; i < 5; i++) {
        char label[64];
        snprintf(label, sizeof label, "mlp %s %s", name, t[i].what);
        fd_check(label, &o, t[i].x, t[i].g, t[i].n, eps, FD_BOUND, r, FD_SAMPLES);
    }
}

static void test_mlp(void **state)
{
    (void)state;
    rng_t r = test_rng(7);
    check_mlp(ACT_GELU, "gelu", &r);
    check_mlp(ACT_RELU, "relu", &r);
    finish_checks();
}

/* ======================================================================== */
/* 8. The gathers/scatters of tokens.h and patches.h. They are linear (affine
 * with the position table), so each backward must be the exact adjoint of
 * its forward with pos = 0: <F(x), r> == <x, F^T(r)>. A finite-difference
 * check with a non-zero pos table confirms the same gradients; accumulation
 * and overwrite semantics of each backward are checked too. */

typedef struct {
    int B, N, S, L, V, D;
    int *perm, *vis_patch, *token_of;
} token_layout_t;

static token_layout_t token_layout(int B, int N, int L, int V, int D)
{
    token_layout_t t = {B, N, B * N, L, V, D, ibuf((size_t)B * L), ibuf((size_t)B * N * V),
                        ibuf((size_t)B * N * L)};
    float *u = fbuf(L);
    for (int b = 0; b < B; b++) mask_permutation(t.perm + b * L, u, L, TEST_SEED, 0, b);
    mask_tables(t.vis_patch, t.token_of, t.perm, B, N, L, V);
    return t;
}

typedef struct {
    const token_layout_t *t;
    int which;            /* 0 encoder, 1 decoder, 2 pool mean, 3 pool cls, 4 summary */
    float *x, *x2, *pos;  /* x2: cls or mask token */
    float *out, *r;
    size_t out_n;
} tokens_ctx_t;

static void tokens_apply(tokens_ctx_t *c, const float *pos)
{
    const token_layout_t *t = c->t;
    switch (c->which) {
    case 0: tokens_encoder_forward(c->out, c->x, c->x2, pos, t->vis_patch, t->S, t->V, t->D); break;
    case 1: tokens_decoder_forward(c->out, c->x, c->x2, pos, t->token_of, t->S, t->L, t->V, t->D); break;
    case 2: tokens_pool_forward(c->out, c->x, t->S, t->V, t->D, POOL_MEAN); break;
    case 3: tokens_pool_forward(c->out, c->x, t->S, t->V, t->D, POOL_CLS); break;
    default: tokens_summary_forward(c->out, c->x, pos, t->vis_patch, t->S, t->V, t->D); break;
    }
}

static double tokens_loss(void *p)
{
    tokens_ctx_t *c = p;
    tokens_apply(c, c->pos);
    return dot(c->out, c->r, c->out_n);
}

static void check_tokens(const token_layout_t *t, int which, const char *name, rng_t *r)
{
    const int S = t->S, V = t->V, L = t->L, D = t->D;
    size_t xn, outn, posn;
    switch (which) {
    case 0: xn = (size_t)S * V * D, outn = (size_t)S * (V + 1) * D, posn = (size_t)(L + 1) * D; break;
    case 1: xn = (size_t)S * (V + 1) * D, outn = (size_t)S * (L + 1) * D, posn = (size_t)(L + 1) * D; break;
    case 2:
    case 3: xn = (size_t)S * (V + 1) * D, outn = (size_t)S * D, posn = 1; break;
    default: xn = (size_t)S * V * D, outn = (size_t)S * D, posn = (size_t)L * D; break;
    }
    const int has_x2 = which <= 1;
    tokens_ctx_t c = {t, which, fbuf(xn), has_x2 ? fbuf(D) : NULL, fbuf(posn), fbuf(outn),
                      fbuf(outn), outn};
    fill_normal(r, c.x, xn, 0.0f, 1.0f);
    if (has_x2) fill_normal(r, c.x2, D, 0.0f, 1.0f);
    fill_normal(r, c.pos, posn, 0.0f, 1.0f);
    fill_normal(r, c.r, outn, 0.0f, 1.0f);

    /* Backward of r, with the semantics each header states. */
    const float pre = 0.75f;
    float *dx = fbuf(xn), *dx2 = has_x2 ? fbuf(D) : NULL;
    switch (which) {
    case 0:
    case 1:
        for (size_t i = 0; i < xn; i++) dx[i] = 42.0f;     /* overwritten */
        for (int i = 0; i < D; i++) dx2[i] = pre;         /* accumulated */
        if (which == 0) tokens_encoder_backward(dx, dx2, c.r, S, V, D, NULL);
        else tokens_decoder_backward(dx, dx2, c.r, t->token_of, S, L, V, D, NULL);
        for (int i = 0; i < D; i++) dx2[i] -= pre;
        break;
    case 2:
    case 3:
        for (size_t i = 0; i < xn; i++) dx[i] = pre;       /* accumulated */
        tokens_pool_backward(dx, c.r, S, V, D, which == 3 ? POOL_CLS : POOL_MEAN);
        for (size_t i = 0; i < xn; i++) dx[i] -= pre;
        break;
    default:
        for (size_t i = 0; i < xn; i++) dx[i] = 42.0f;     /* overwritten */
        tokens_summary_backward(dx, c.r, S, V, D);
        break;
    }

    /* adjoint identity with pos = 0 */
    float *zero_pos = fbuf(posn);
    tokens_apply(&c, zero_pos);
    double lhs = dot(c.out, c.r, outn);
    double rhs = dot(c.x, dx, xn) + (has_x2 ? dot(c.x2, dx2, D) : 0.0);
    char label[80];
    snprintf(label, sizeof label, "%s adjoint <F x, r> = <x, F^T r>", name);
    check_bound(label, "rel diff", rel_diff(lhs, rhs), ADJOINT_BOUND);

    objective_t o = {tokens_loss, NULL, &c, 0};
    snprintf(label, sizeof label, "%s dx", name);
    fd_check(label, &o, c.x, dx, xn, 1e-2f, FD_BOUND, r, FD_SAMPLES);
    if (has_x2) {
        snprintf(label, sizeof label, "%s d%s", name, which == 0 ? "cls" : "mask_token");
        fd_check(label, &o, c.x2, dx2, D, 1e-2f, FD_BOUND, r, FD_SAMPLES);
    }
}

static void test_tokens(void **state)
{
    (void)state;
    rng_t r = test_rng(8);
    const token_layout_t t = token_layout(2, 2, 8, 3, 6);
    check_tokens(&t, 0, "tokens_encoder (emb, cls)", &r);
    check_tokens(&t, 1, "tokens_decoder (y, mask_token)", &r);
    check_tokens(&t, 2, "tokens_pool POOL_MEAN", &r);
    check_tokens(&t, 3, "tokens_pool POOL_CLS", &r);
    check_tokens(&t, 4, "tokens_summary", &r);
    finish_checks();
}

/* patchify is a permutation: unpatchify inverts it bitwise, it is its own
 * adjoint's inverse, and one element is checked by hand. */
static void test_patches(void **state)
{
    (void)state;
    rng_t r = test_rng(9);
    /* Hand-computed: 4x4x2 image, p = 2, pixel value = its flat (h, w, c) index.
     * Patch 3 is (row 1, col 1); its element (r=1, c=0, ch=1) is number
     * (1*2 + 0)*2 + 1 = 5 and comes from pixel (h=3, w=2, ch=1) = (3*4 + 2)*2 + 1 = 29. */
    float img[32], pat[32];
    for (int i = 0; i < 32; i++) img[i] = (float)i;
    patchify(pat, img, 1, 4, 4, 2, 2);
    assert_true(pat[3 * 8 + 5] == 29.0f);
    /* patch 1 = (row 0, col 1): element 2 = (r=0, c=1, ch=0) <- pixel (0, 3, 0) = 6 */
    assert_true(pat[1 * 8 + 2] == 6.0f);
    /* patch 2 = (row 1, col 0): element 4 = (r=1, c=0, ch=0) <- pixel (3, 0, 0) = 24 */
    assert_true(pat[2 * 8 + 4] == 24.0f);

    const int B = 2, H = 8, W = 12, C = 3, p = 4;
    const size_t n = (size_t)B * H * W * C;
    float *x = fbuf(n), *pt = fbuf(n), *back = fbuf(n), *rr = fbuf(n), *ur = fbuf(n);
    fill_normal(&r, x, n, 0.0f, 1.0f);
    fill_normal(&r, rr, n, 0.0f, 1.0f);
    patchify(pt, x, B, H, W, C, p);
    unpatchify(back, pt, B, H, W, C, p);
    assert_memory_equal(back, x, n * sizeof(float));
    unpatchify(ur, rr, B, H, W, C, p);
    patchify(back, ur, B, H, W, C, p);
    assert_memory_equal(back, rr, n * sizeof(float));
    /* adjoint of patchify = unpatchify (a permutation's adjoint is its inverse) */
    check_bound("patchify adjoint <P x, r> = <x, P^-1 r>", "rel diff",
                rel_diff(dot(pt, rr, n), dot(x, ur, n)), ADJOINT_BOUND);
    finish_checks();
}

/* ======================================================================== */
/* 9. Reconstruction loss. Proves recon_targets' norm_pix (unbiased var) and
 * copy modes against a naive version, the loss value against a naive mean
 * over hidden patches (visibility taken from perm directly), dpred =
 * grad_scale * dloss/dpred by FD, and exact zeros on cls and visible rows. */

typedef struct {
    const token_layout_t *t;
    float *dpred, *pred, *target;
    int P;
    double norm_seq;
    float scale;
} recon_ctx_t;

static double recon_objective(void *p)
{
    recon_ctx_t *c = p;
    const token_layout_t *t = c->t;
    return c->scale * recon_loss(c->dpred, c->pred, c->target, t->token_of, t->B, t->N, t->L,
                                 t->V, c->P, c->norm_seq, c->scale);
}

static int naive_visible(const token_layout_t *t, int s, int l)
{
    const int b = s / t->N, k = s % t->N;
    for (int i = 0; i < t->V; i++)
        if (t->perm[b * t->L + k * t->V + i] == l) return 1;
    return 0;
}

static void test_recon_loss(void **state)
{
    (void)state;
    rng_t r = test_rng(10);
    const token_layout_t t = token_layout(2, 2, 8, 3, 1);
    const int P = 6, S = t.S, L = t.L, B = t.B;
    const size_t np = (size_t)B * L * P, npred = (size_t)S * (L + 1) * P;
    float *patches = fbuf(np), *target = fbuf(np), *copy = fbuf(np);
    fill_normal(&r, patches, np, 0.3f, 1.5f);
    recon_targets(target, patches, B, L, P, 1);
    recon_targets(copy, patches, B, L, P, 0);
    assert_memory_equal(copy, patches, np * sizeof(float));
    double terr = 0.0;
    for (int row = 0; row < B * L; row++) {
        const float *x = patches + (size_t)row * P;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < P; i++) mean += x[i];
        mean /= P;
        for (int i = 0; i < P; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= P - 1;
        for (int i = 0; i < P; i++)
            terr = fmax(terr, fabs(target[row * P + i] - (x[i] - mean) / sqrt(var + 1e-6)));
    }
    check_bound("recon_targets norm_pix vs naive", "max abs err", terr, 1e-5);

    recon_ctx_t c = {&t, fbuf(npred), fbuf(npred), target, P, 2.0 * S, 0.7f};
    fill_normal(&r, c.pred, npred, 0.0f, 1.0f);
    float *dpred = fbuf(npred);
    for (size_t i = 0; i < npred; i++) dpred[i] = 13.0f; /* overwritten, zeros included */
    double value = recon_loss(dpred, c.pred, target, t.token_of, B, t.N, L, t.V, P, c.norm_seq,
                              c.scale);
    double naive = 0.0;
    int zeros_ok = 1;
    for (int s = 0; s < S; s++) {
        const float *ps = c.pred + (size_t)s * (L + 1) * P, *ds = dpred + (size_t)s * (L + 1) * P;
        double seq = 0.0;
        for (int i = 0; i < P; i++) zeros_ok &= ds[i] == 0.0f; /* cls row */
        for (int l = 0; l < L; l++) {
            if (naive_visible(&t, s, l)) {
                for (int i = 0; i < P; i++) zeros_ok &= ds[(1 + l) * P + i] == 0.0f;
                continue;
            }
            for (int i = 0; i < P; i++) {
                double d = (double)ps[(1 + l) * P + i] - target[((size_t)(s / t.N) * L + l) * P + i];
                seq += d * d;
            }
        }
        naive += seq / ((double)(L - t.V) * P);
    }
    naive /= c.norm_seq;
    check_bound("recon_loss value vs naive", "rel diff", rel_diff(value, naive), 1e-6);
    assert_true(zeros_ok);
    printf("  recon_loss: cls and visible rows of dpred are exactly 0\n");

    objective_t o = {recon_objective, NULL, &c, 0};
    fd_check("recon_loss dpred", &o, c.pred, dpred, npred, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    finish_checks();
}

/* ======================================================================== */
/* 10. InfoNCE over a candidate array. Proves dcand (queries and keys) by FD,
 * the value against a naive double implementation of docs/METHOD.md step 6, the
 * split property (two processes' shares sum to the single-process loss and
 * gradient) and N = 1 -> 0. */

typedef struct {
    float *dcand, *cand, *scratch;
    int N, Bg, offset, Bl, E;
    float tau, scale;
} infonce_ctx_t;

static double infonce_objective(void *p)
{
    infonce_ctx_t *c = p;
    return c->scale * infonce_loss(c->dcand, c->cand, c->N, c->Bg, c->offset, c->Bl, c->E,
                                   c->tau, c->scale, c->scratch);
}

/* Mean over ordered pairs i != k of the cross entropy of image b's logits
 * u_i[b] . u_k[b'] / tau against b, over the Bl images from offset, / Bg. */
static double infonce_naive(const float *cand, int N, int Bg, int offset, int Bl, int E,
                            double tau)
{
    if (N < 2) return 0.0;
    double total = 0.0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            if (i == k) continue;
            for (int b = offset; b < offset + Bl; b++) {
                double logit_b = 0.0, sum = 0.0;
                for (int bp = 0; bp < Bg; bp++) {
                    double lg = 0.0;
                    for (int e = 0; e < E; e++)
                        lg += (double)cand[(b * N + i) * E + e] * cand[(bp * N + k) * E + e];
                    lg /= tau;
                    sum += exp(lg);
                    if (bp == b) logit_b = lg;
                }
                total += log(sum) - logit_b;
            }
        }
    return total / ((double)Bg * N * (N - 1));
}

static void test_infonce(void **state)
{
    (void)state;
    rng_t r = test_rng(11);
    const int N = 3, Bg = 4, E = 5;
    const size_t n = (size_t)Bg * N * E;
    infonce_ctx_t c = {fbuf(n), fbuf(n), fbuf((size_t)Bg * Bg), N, Bg, 0, Bg, E, 0.5f, 0.8f};
    fill_unit_rows(&r, c.cand, Bg * N, E);
    float *dcand = fbuf(n);
    double value = infonce_loss(dcand, c.cand, N, Bg, 0, Bg, E, c.tau, c.scale, c.scratch);
    check_bound("infonce value vs naive (METHOD step 6)", "rel diff",
                rel_diff(value, infonce_naive(c.cand, N, Bg, 0, Bg, E, c.tau)), 1e-5);
    objective_t o = {infonce_objective, NULL, &c, 0};
    fd_check("infonce dcand", &o, c.cand, dcand, n, 1e-2f, FD_BOUND, &r, FD_SAMPLES);

    /* split: Bg = 6 over two "processes" of 3 images each */
    const int Bs = 6;
    const size_t ns = (size_t)Bs * N * E;
    float *cand = fbuf(ns), *d_split = fbuf(ns), *d_one = fbuf(ns), *scr = fbuf((size_t)Bs * Bs);
    fill_unit_rows(&r, cand, Bs * N, E);
    double l_split = infonce_loss(d_split, cand, N, Bs, 0, 3, E, c.tau, c.scale, scr) +
                     infonce_loss(d_split, cand, N, Bs, 3, 3, E, c.tau, c.scale, scr);
    double l_one = infonce_loss(d_one, cand, N, Bs, 0, Bs, E, c.tau, c.scale, scr);
    check_bound("infonce split loss (0,3)+(3,3) = (0,6)", "rel diff", rel_diff(l_split, l_one),
                1e-6);
    check_bound("infonce split dcand (0,3)+(3,3) = (0,6)", "max rel diff",
                max_rel_diff(d_split, d_one, ns), 1e-6);
    check_bound("infonce offset 3 share vs naive", "rel diff",
                rel_diff(infonce_loss(d_split, cand, N, Bs, 3, 3, E, c.tau, c.scale, scr),
                         infonce_naive(cand, N, Bs, 3, 3, E, c.tau)), 1e-5);

    /* N = 1: no pairs, 0, and dcand untouched */
    float *d1 = fbuf((size_t)Bg * E);
    assert_true(infonce_loss(d1, cand, 1, Bg, 0, Bg, E, c.tau, 1.0f, scr) == 0.0);
    for (int i = 0; i < Bg * E; i++) assert_true(d1[i] == 0.0f);
    finish_checks();
}

/* ======================================================================== */
/* 11-12. CLUB and Q's NLL. Proves dzc by FD for both contrast modes, the
 * value against a literal implementation of docs/METHOD.md step 7 (full Gaussian
 * log-densities, whose logvar and 2pi terms must cancel), the split property,
 * N = 1 -> 0 for the masks contrast; for q_nll_loss the gradients in mu and
 * logvar (overwritten) and the value against the Gaussian NLL. */

typedef struct {
    float *dzc, *zc, *mu, *lv;
    int N, Bg, offset, Bl, D, contrast;
    float scale;
} club_ctx_t;

static double club_objective(void *p)
{
    club_ctx_t *c = p;
    return c->scale * club_min_loss(c->dzc, c->zc, c->mu, c->lv, c->N, c->Bg, c->offset, c->Bl,
                                     c->D, c->contrast, c->scale);
}

/* log N(z; mu, diag(exp(lv))) */
static double log_gauss(const float *z, const float *mu, const float *lv, int D)
{
    double s = 0.0;
    for (int d = 0; d < D; d++) {
        double diff = (double)z[d] - mu[d];
        s += -0.5 * (diff * diff * exp(-(double)lv[d]) + lv[d] + LOG_2PI);
    }
    return s;
}

/* sum over local (b, j) of log q(z_bj | s_bj) - mean_c log q(z_c | s_bj), / (Bg N). */
static double club_naive(const float *zc, const float *mu, const float *lv, int N, int Bg,
                         int offset, int Bl, int D, int contrast)
{
    double total = 0.0;
    for (int b = 0; b < Bl; b++)
        for (int j = 0; j < N; j++) {
            const float *m = mu + ((size_t)b * N + j) * D, *v = lv + ((size_t)b * N + j) * D;
            const int g = offset + b, M = contrast == CLUB_CONTRAST_MASKS ? N : Bg;
            double neg = 0.0;
            for (int c = 0; c < M; c++) {
                int row = contrast == CLUB_CONTRAST_MASKS ? g * N + c : c * N + j;
                neg += log_gauss(zc + (size_t)row * D, m, v, D);
            }
            total += log_gauss(zc + ((size_t)g * N + j) * D, m, v, D) - neg / M;
        }
    return total / ((double)Bg * N);
}

static void check_club(int contrast, const char *name, rng_t *r)
{
    const int N = 3, Bg = 4, D = 5;
    const size_t n = (size_t)Bg * N * D;
    club_ctx_t c = {fbuf(n), fbuf(n), fbuf(n), fbuf(n), N, Bg, 0, Bg, D, contrast, 0.6f};
    fill_normal(r, c.zc, n, 0.0f, 1.0f);
    fill_normal(r, c.mu, n, 0.0f, 1.0f);
    fill_uniform(r, c.lv, n, -0.9f, 0.9f); /* tanh range, as the model's */
    float *dzc = fbuf(n);
    double value = club_min_loss(dzc, c.zc, c.mu, c.lv, N, Bg, 0, Bg, D, contrast, c.scale);
    char label[96];
    snprintf(label, sizeof label, "club %s value vs naive (METHOD step 7)", name);
    check_bound(label, "rel diff",
                rel_diff(value, club_naive(c.zc, c.mu, c.lv, N, Bg, 0, Bg, D, contrast)), 1e-5);
    objective_t o = {club_objective, NULL, &c, 0};
    snprintf(label, sizeof label, "club %s dzc", name);
    fd_check(label, &o, c.zc, dzc, n, 1e-2f, FD_BOUND, r, FD_SAMPLES);

    /* split over two processes of 3 images, Bg = 6 */
    const int Bs = 6;
    const size_t ns = (size_t)Bs * N * D;
    float *zc = fbuf(ns), *mu = fbuf(ns), *lv = fbuf(ns), *d_split = fbuf(ns), *d_one = fbuf(ns);
    fill_normal(r, zc, ns, 0.0f, 1.0f);
    fill_normal(r, mu, ns, 0.0f, 1.0f);
    fill_uniform(r, lv, ns, -0.9f, 0.9f);
    const size_t half = (size_t)3 * N * D; /* mu/logvar are per process */
    double l_split = club_min_loss(d_split, zc, mu, lv, N, Bs, 0, 3, D, contrast, c.scale) +
                     club_min_loss(d_split, zc, mu + half, lv + half, N, Bs, 3, 3, D, contrast,
                                   c.scale);
    double l_one = club_min_loss(d_one, zc, mu, lv, N, Bs, 0, Bs, D, contrast, c.scale);
    snprintf(label, sizeof label, "club %s split loss (0,3)+(3,3) = (0,6)", name);
    check_bound(label, "rel diff", rel_diff(l_split, l_one), 1e-6);
    snprintf(label, sizeof label, "club %s split dzc (0,3)+(3,3) = (0,6)", name);
    check_bound(label, "max rel diff", max_rel_diff(d_split, d_one, ns), 1e-6);
}

static void test_club(void **state)
{
    (void)state;
    rng_t r = test_rng(12);
    check_club(CLUB_CONTRAST_MASKS, "masks", &r);
    check_club(CLUB_CONTRAST_BATCH, "batch", &r);
    /* N = 1 with the masks contrast: no other mask, L_min = 0, dzc untouched */
    float z[8], mu[8], lv[8], dz[8] = {0};
    fill_normal(&r, z, 8, 0.0f, 1.0f);
    fill_normal(&r, mu, 8, 0.0f, 1.0f);
    fill_normal(&r, lv, 8, 0.0f, 0.5f);
    assert_true(club_min_loss(dz, z, mu, lv, 1, 2, 0, 2, 4, CLUB_CONTRAST_MASKS, 1.0f) == 0.0);
    for (int i = 0; i < 8; i++) assert_true(dz[i] == 0.0f);
    finish_checks();
}

typedef struct {
    float *dmu, *dlv, *z, *mu, *lv;
    int R, D;
    double norm;
    float scale;
} qnll_ctx_t;

static double qnll_objective(void *p)
{
    qnll_ctx_t *c = p;
    return c->scale * q_nll_loss(c->dmu, c->dlv, c->z, c->mu, c->lv, c->R, c->D, c->norm,
                                 c->scale);
}

static void test_q_nll(void **state)
{
    (void)state;
    rng_t r = test_rng(13);
    const int R = 6, D = 5;
    const size_t n = (size_t)R * D;
    qnll_ctx_t c = {fbuf(n), fbuf(n), fbuf(n), fbuf(n), fbuf(n), R, D, 12.0, 0.9f};
    fill_normal(&r, c.z, n, 0.0f, 1.0f);
    fill_normal(&r, c.mu, n, 0.0f, 1.0f);
    fill_uniform(&r, c.lv, n, -0.9f, 0.9f);
    float *dmu = fbuf(n), *dlv = fbuf(n);
    for (size_t i = 0; i < n; i++) dmu[i] = dlv[i] = 77.0f; /* overwritten */
    double value = q_nll_loss(dmu, dlv, c.z, c.mu, c.lv, R, D, c.norm, c.scale);
    double naive = 0.0;
    for (int i = 0; i < R; i++)
        naive -= log_gauss(c.z + (size_t)i * D, c.mu + (size_t)i * D, c.lv + (size_t)i * D, D);
    check_bound("q_nll value vs naive Gaussian NLL", "rel diff", rel_diff(value, naive / c.norm),
                1e-6);
    objective_t o = {qnll_objective, NULL, &c, 0};
    fd_check("q_nll dmu", &o, c.mu, dmu, n, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    fd_check("q_nll dlogvar", &o, c.lv, dlv, n, 1e-2f, FD_BOUND, &r, FD_SAMPLES);
    finish_checks();
}

/* ======================================================================== */
/* 13. The whole model: forward -> losses -> backward on a tiny config. FD of
 * L = l.total over a sample of EVERY model tensor (encoder, decoder,
 * projector) proves mimae_backward's gradient of L, which must not contain
 * L_q (z is detached for Q) nor anything through Q's mu/logvar; FD of L_q over
 * every Q tensor proves Q's gradient block holds exactly dL_q/dtheta. Run for
 * the default setting and with POOL_CLS, without projector, with the batch
 * CLUB contrast, and with N = 3 and plain pixel targets. */

typedef struct {
    mimae_model_t *m;
    const float *images;
    int use_q;  /* objective: 0 -> l.total, 1 -> l.q */
    mimae_losses_t last;
} model_ctx_t;

static double model_objective(void *p)
{
    model_ctx_t *c = p;
    mimae_model_t *m = c->m;
    const int S = m->batch * m->cfg.num_masks;
    mimae_forward(m, c->images);
    memset(m->acts.du, 0, (size_t)S * m->dims.proj_dim * sizeof(float));
    memset(m->acts.dz, 0, (size_t)S * m->cfg.enc_dim * sizeof(float));
    mimae_losses(m, m->acts.u, m->acts.z, m->batch, 0, m->acts.du, m->acts.dz, &c->last);
    return c->use_q ? c->last.q : c->last.total;
}

/* ReLU patterns of Q's two heads (the only kinks of the model). */
static uint64_t model_kinks(void *p)
{
    model_ctx_t *c = p;
    const activations_t *a = &c->m->acts;
    const size_t n = (size_t)c->m->batch * c->m->cfg.num_masks * c->m->cfg.q_hidden;
    return sign_hash(sign_hash(1469598103934665603ull, a->mu_pre, n), a->lv_pre, n);
}

static void tiny_config(mimae_config_t *cfg)
{
    assert_int_equal(mimae_config_preset(cfg, "test-small"), 0);
    cfg->img_h = 8, cfg->img_w = 8, cfg->channels = 2, cfg->patch = 2; /* L = 16, P = 8 */
    cfg->enc_dim = 8, cfg->enc_depth = 1, cfg->enc_heads = 2;
    cfg->dec_dim = 8, cfg->dec_depth = 1, cfg->dec_heads = 2;
    cfg->num_masks = 2, cfg->mask_ratio = 0.75; /* V = 4 */
    cfg->proj_hidden = 16, cfg->proj_out = 8, cfg->q_hidden = 8;
    cfg->tau = 0.5f, cfg->w_rec = 1.0f, cfg->w_max = 0.5f, cfg->w_min = 0.3f;
    cfg->global_batch = 3, cfg->total_iters = 10;
}

/* Moves every tensor off MAE's init (zero biases, unit norms, tiny tokens) so
 * that no gradient is trivially structured; matrices keep xavier values. */
static void randomize_params(const param_table_t *t, float *block, rng_t *r)
{
    for (int i = 0; i < t->count; i++) {
        const param_info_t *info = &t->info[i];
        float *p = block + info->offset;
        if (info->ndim == 2) continue;
        for (size_t j = 0; j < info->count; j++) p[j] += 0.2f * rng_normal(r);
    }
}

static double tensor_rms(const float *p, size_t n)
{
    return sqrt(dot(p, p, n) / (double)n);
}

/* FD over every tensor of `t`, parameters at base, gradients at grad, with
 * steps of rel_step times the tensor's RMS (never below rel_step * 0.1). */
static void model_fd_tensors(const char *tag, const char *which, model_ctx_t *c,
                             const param_table_t *t, float *base, const float *grad,
                             double rel_step, int fourth_order, rng_t *r)
{
    objective_t o = {model_objective, model_kinks, c, fourth_order};
    for (int i = 0; i < t->count; i++) {
        const param_info_t *info = &t->info[i];
        float *p = base + info->offset;
        double scale = tensor_rms(p, info->count);
        float eps = (float)(rel_step * (scale > 0.1 ? scale : 0.1));
        char label[160];
        snprintf(label, sizeof label, "%s %s/%s", tag, which, info->name);
        fd_check(label, &o, p, grad + info->offset, info->count, eps, MODEL_FD_BOUND, r,
                 MODEL_FD_SAMPLES);
    }
}

static void check_model(const mimae_config_t *cfg, const char *tag, uint64_t seed)
{
    rng_t r = test_rng(100 + seed);
    char err[256] = "";
    const int B = cfg->global_batch;
    mimae_model_t *m = mimae_model_create(cfg, B, seed, err, sizeof err);
    if (!m) fail_msg("mimae_model_create (%s): %s", tag, err);
    g_model = m;
    randomize_params(&m->table, m->param_mem, &r);
    randomize_params(&m->q_table, m->q_param_mem, &r);

    const size_t nimg = (size_t)B * cfg->img_h * cfg->img_w * cfg->channels;
    float *images = fbuf(nimg);
    fill_normal(&r, images, nimg, 0.0f, 1.0f);
    uint64_t index[16];
    for (int b = 0; b < B; b++) index[b] = 10 + (uint64_t)b;
    mimae_sample_masks(m, seed, 0, index);

    /* analytic: forward, losses, backward; copy the gradient blocks */
    model_ctx_t c = {.m = m, .images = images, .use_q = 0};
    model_objective(&c);
    const mimae_losses_t l = c.last;
    mimae_backward(m, m->acts.du, m->acts.dz);
    float *grad = fbuf(m->table.total), *qgrad = fbuf(m->q_table.total);
    memcpy(grad, m->grad_mem, m->table.total * sizeof(float));
    memcpy(qgrad, m->q_grad_mem, m->q_table.total * sizeof(float));
    printf("  %s: L_rec %.5f L_max %.5f L_min %.5f L_q %.5f total %.5f\n", tag, l.rec, l.max,
           l.min, l.q, l.total);
    assert_true(isfinite(l.total) && isfinite(l.q));
    const double total = (double)cfg->w_rec * l.rec + (double)cfg->w_max * l.max +
                         (double)cfg->w_min * l.min;
    char label[96];
    snprintf(label, sizeof label, "%s total = w_rec rec + w_max max + w_min min", tag);
    check_bound(label, "rel diff", rel_diff(total, l.total), 1e-6);

    /* L is smooth (GELU, LayerNorm, softmax, tanh): the 4-point stencil with 5%
     * steps keeps float32 round-off far below the bound. L_q goes through Q's
     * ReLUs: central differences with 1% steps, fewer kinks in reach. */
    c.use_q = 0;
    model_fd_tensors(tag, "L", &c, &m->table, m->param_mem, grad, 5e-2, 1, &r);
    c.use_q = 1;
    model_fd_tensors(tag, "L_q", &c, &m->q_table, m->q_param_mem, qgrad, 1e-2, 0, &r);
    finish_checks();
}

static void test_model_default(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    check_model(&cfg, "model[mean]", 1);
}

static void test_model_pool_cls(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.pool = POOL_CLS;
    check_model(&cfg, "model[cls]", 2);
}

static void test_model_no_projector(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.proj_hidden = 0;
    check_model(&cfg, "model[noproj]", 3);
}

static void test_model_club_batch(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.club_contrast = CLUB_CONTRAST_BATCH;
    check_model(&cfg, "model[clubbatch]", 4);
}

static void test_model_three_masks(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.num_masks = 3;
    cfg.norm_pix = 0;
    check_model(&cfg, "model[N3,pix]", 5);
}

/* mimae_sample_masks must leave every other activation alone: its argsort
 * scratch has to hold L floats. With a micro-batch of 1 and global_batch 1 on
 * a 6x6 grid (L = 36), the (B, global_batch) InfoNCE scratch it borrows is
 * only 16 floats after padding. */
static void test_model_sample_masks_scratch(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.img_h = cfg.img_w = 12; /* L = 36 */
    cfg.global_batch = 1;
    char err[256] = "";
    mimae_model_t *m = mimae_model_create(&cfg, 1, 7, err, sizeof err);
    if (!m) fail_msg("mimae_model_create: %s", err);
    g_model = m;
    const int L = m->dims.L;
    /* everything laid out after mi_scratch: the three position tables */
    float *tables = m->acts.pos_enc;
    const size_t n = (size_t)(m->act_mem + m->act_floats - tables);
    float *before = fbuf(n);
    memcpy(before, tables, n * sizeof(float));
    uint64_t index = 3;
    mimae_sample_masks(m, 7, 0, &index);
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) changed += memcmp(&before[i], &tables[i], sizeof(float)) != 0;
    int seen[64] = {0}, perm_ok = 1;
    for (int l = 0; l < L; l++) {
        int v = m->perm[l];
        perm_ok &= v >= 0 && v < L && !seen[v];
        if (v >= 0 && v < L) seen[v] = 1;
    }
    assert_true(perm_ok);
    printf("  mimae_sample_masks (L = %d, B = global_batch = 1): %zu position-table "
           "values overwritten\n", L, changed);
    if (changed)
        fail_msg("mimae_sample_masks overwrote %zu values of pos_enc/pos_dec/pos_q: it uses "
                 "acts.mi_scratch (B * global_batch floats) as L floats of scratch", changed);
}

/* A mask ratio of 0 (N = 1, V = L) is accepted by mimae_config_validate, so
 * the reconstruction loss must then stay finite: there is no hidden patch,
 * and the mean over an empty set must not become 0 * inf = NaN. Either
 * rejecting that config or returning a finite loss passes. */
static void test_recon_loss_no_hidden_patch(void **state)
{
    (void)state;
    mimae_config_t cfg;
    tiny_config(&cfg);
    cfg.num_masks = 1;
    cfg.mask_ratio = 0.0;
    char err[256] = "";
    const int rejected = mimae_config_validate(&cfg, err, sizeof err) != 0;
    const mimae_dims_t d = mimae_config_dims(&cfg);
    const int L = d.L, P = d.P;
    float *pred = fbuf((size_t)(L + 1) * P), *dpred = fbuf((size_t)(L + 1) * P);
    float *target = fbuf((size_t)L * P);
    int *perm = ibuf(L), *vis = ibuf(L), *tok = ibuf(L);
    rng_t r = test_rng(14);
    fill_normal(&r, pred, (size_t)(L + 1) * P, 0.0f, 1.0f);
    fill_normal(&r, target, (size_t)L * P, 0.0f, 1.0f);
    for (int l = 0; l < L; l++) perm[l] = l;
    mask_tables(vis, tok, perm, 1, 1, L, d.V);
    double v = recon_loss(dpred, pred, target, tok, 1, 1, L, d.V, P, 1.0, 1.0f);
    printf("  mask_ratio 0 (V = L = %d): config %s, recon_loss = %g\n", L,
           rejected ? "rejected" : "accepted", v);
    if (!rejected && !isfinite(v))
        fail_msg("recon_loss returns %g when no patch is hidden (V = L), a config "
                 "mimae_config_validate accepts (num_masks 1, mask_ratio 0)", v);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep our lines in order with cmocka's */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_layernorm, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_activation, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_softmax, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_attention, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_vit_block, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_mlp, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_tokens, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_patches, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_recon_loss, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_infonce, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_club, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_q_nll, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_default, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_pool_cls, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_no_projector, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_club_batch, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_three_masks, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_model_sample_masks_scratch, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_recon_loss_no_hidden_patch, test_setup,
                                        test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
