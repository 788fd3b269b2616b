/* Two variants of the same step measured in one process with their steps
 * interleaved (A, B, A, B, ...), so that a shared machine's drift falls on
 * both alike:
 *
 *   pair --compare reduction|precision [--config vitb|cifar|fmnist] --masks 4|1 --batch B
 *        [--micro-batch IMAGES] [--steps K] [--warmup W]
 *
 * reduction: the fast reduction (A) against the deterministic one (B), both
 * f32. B is the per-rank batch of a one-rank run; --micro-batch sets the
 * deterministic split (default: mimae_dist's, up to 8 micro-batches), e.g.
 * 4 for what a rank with B = 8 holds on 4 ranks (global batch 32: 8
 * micro-batches of 4, two a rank).
 * precision: f32 (A) against train.precision = bf16 (B), both with the fast
 * reduction.
 * Configs: vitb (preset vit-b16, the default) or bench_util.h's cifar and
 * fmnist. Threads: OPENBLAS_NUM_THREADS. Prints each arm's median ms/step,
 * the ratio of the medians (B / A), each arm's share of the step in the
 * linear layers' products, and the phases that differ by more than 1 % of
 * the step, then `RESULT pair ...` for bench/run.sh. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/kernels/blas_check.h"
#include "core/kernels/micro_batches.h"
#include "core/kernels/profile.h"

typedef struct {
    int masks, batch, micro_batch, steps, warmup, precision;
    char config[16];
} options_t;

static void usage(void)
{
    fprintf(stderr, "usage: pair --compare reduction|precision [--config vitb|cifar|fmnist] "
                    "--masks N --batch B [--micro-batch IMAGES] [--steps K] [--warmup W]\n");
    exit(2);
}

static options_t parse(int argc, char **argv)
{
    options_t o = {4, 8, 0, 3, 1, -1, "vitb"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--compare") && (!strcmp(v, "reduction") || !strcmp(v, "precision")))
            o.precision = !strcmp(v, "precision");
        else if (!strcmp(a, "--config")) snprintf(o.config, sizeof o.config, "%s", v);
        else if (!strcmp(a, "--masks")) o.masks = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--micro-batch")) o.micro_batch = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else usage();
    }
    if ((argc - 1) % 2 || o.precision < 0 || o.masks < 1 || o.batch < 1 || o.micro_batch < 0 ||
        o.steps < 1 || o.steps > 64 || o.warmup < 0 || (o.precision && o.micro_batch))
        usage();
    return o;
}

/* One variant's model and step, and what its timed steps took. */
typedef struct {
    const char *name;
    step_plan_t plan;
    mimae_model_t *model;
    train_step_t step;
    double ms[64];
    double phase_s[PROFILE_COUNT];
} arm_t;

static void arm_init(arm_t *a, const char *name, const mimae_config_t *c, step_reduction_t r,
                     int micro_batch, int bf16)
{
    char err[512];
    a->name = name;
    if (step_plan_make(&a->plan, c->global_batch, 1, r, micro_batch, err, sizeof err)) {
        fprintf(stderr, "pair: %s: %s\n", name, err);
        exit(2);
    }
    a->plan.bf16 = bf16;
    if (!(a->model = mimae_model_create(c, a->plan.micro_batch, 1, err, sizeof err)) ||
        train_step_init(&a->step, a->model, MPI_COMM_SELF, &a->plan, err, sizeof err)) {
        fprintf(stderr, "pair: %s: %s\n", name, err);
        exit(1);
    }
}

/* One step; timed ones add their time and phases to the arm. */
static void arm_step(arm_t *a, const float *images, const int64_t *idx, int i, int timed)
{
    char err[512];
    mimae_step_stats_t st;
    profile_reset();
    profile_enable(timed);
    const double t0 = bench_now();
    if (train_step_run(&a->step, images, idx, 1, (uint64_t)i, &st, err, sizeof err)) {
        fprintf(stderr, "pair: %s: %s\n", a->name, err);
        exit(1);
    }
    const double dt = bench_now() - t0;
    profile_enable(0);
    if (!timed) return;
    a->ms[i] = 1e3 * dt;
    for (int p = 0; p < PROFILE_COUNT; p++) a->phase_s[p] += profile_seconds((profile_phase_t)p);
}

/* Seconds of one weight gradient dW (out x in) = dout^T inp over `rows`
 * rows, formed as the fast reduction forms it (one product) or as the
 * deterministic one does (k products of rows / k rows each, in tiles of
 * MICRO_BATCHES_TILE_ROWS output rows), products alone, best of 3. */
static double weight_grad_seconds(const float *dout, const float *inp, float *c, int rows, int out,
                                  int in, int k)
{
    double best = 1e30;
    const int share = rows / k, tile = k > 1 ? MICRO_BATCHES_TILE_ROWS : out;
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = bench_now();
        for (int j = 0; j < k; j++)
            for (int r0 = 0; r0 < out; r0 += tile)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out - r0 < tile ? out - r0 : tile,
                            in, share, 1.0f, dout + (size_t)j * share * out + r0, out,
                            inp + (size_t)j * share * in, in, 1.0f, c + (size_t)r0 * in, in);
        const double dt = bench_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* The floor under the deterministic reduction's cost: every block's weight
 * gradients (qkv, projection, fc1, fc2 of the encoder and decoder) formed
 * per micro-batch against whole, by OpenBLAS alone on random operands,
 * before any sum. Returns the extra milliseconds a step pays. */
static double weight_grad_floor_ms(const mimae_config_t *c, int batch, int k)
{
    const mimae_dims_t d = mimae_config_dims(c);
    const int widths[2] = {c->enc_dim, c->dec_dim}, depths[2] = {c->enc_depth, c->dec_depth};
    const int rows[2] = {batch * c->num_masks * d.enc_tokens, batch * c->num_masks * d.dec_tokens};
    const int hidden_max = c->mlp_ratio * (widths[0] > widths[1] ? widths[0] : widths[1]);
    const int rows_max = rows[0] > rows[1] ? rows[0] : rows[1];
    float *dout = malloc((size_t)rows_max * hidden_max * sizeof(float)),
          *inp = malloc((size_t)rows_max * hidden_max * sizeof(float)),
          *grad = calloc((size_t)hidden_max * hidden_max, sizeof(float));
    if (!dout || !inp || !grad) {
        fprintf(stderr, "pair: out of memory for the weight-gradient floor\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)rows_max * hidden_max; i++)
        dout[i] = (float)(i % 251) / 251.0f - 0.5f, inp[i] = (float)(i % 241) / 241.0f - 0.5f;
    double whole = 0.0, split = 0.0;
    for (int b = 0; b < 2; b++) {
        const int C = widths[b], H = c->mlp_ratio * C;
        const int shapes[4][2] = {{3 * C, C}, {C, C}, {H, C}, {C, H}}; /* out, in */
        for (int s = 0; s < 4; s++) {
            whole += depths[b] * weight_grad_seconds(dout, inp, grad, rows[b], shapes[s][0], shapes[s][1], 1);
            split += depths[b] * weight_grad_seconds(dout, inp, grad, rows[b], shapes[s][0], shapes[s][1], k);
        }
    }
    free(dout);
    free(inp);
    free(grad);
    printf("  floor: the blocks' weight gradients as %d products per micro-batch take %.0f ms, "
           "as one product %.0f ms (OpenBLAS alone, before any sum): %+.0f ms/step\n",
           k, 1e3 * split, 1e3 * whole, 1e3 * (split - whole));
    return 1e3 * (split - whole);
}

int main(int argc, char **argv)
{
    blas_quiet_idle_threads(argv); /* as mimae_dist does */
    const options_t o = parse(argc, argv);
    MPI_Init(&argc, &argv);
    mimae_config_t c;
    if (bench_config(&c, o.config, o.masks, o.batch)) usage();
    bench_print_blas("pair");
    arm_t arms[2] = {{0}};
    if (o.precision) {
        arm_init(&arms[0], "f32", &c, STEP_FAST, 0, 0);
        arm_init(&arms[1], "bf16", &c, STEP_FAST, 0, 1);
    } else {
        arm_init(&arms[0], "fast", &c, STEP_FAST, 0, 0);
        arm_init(&arms[1], "deterministic", &c, STEP_DETERMINISTIC, o.micro_batch, 0);
    }

    float *images;
    int64_t *idx;
    if (bench_batch(&c, o.batch, &images, &idx)) return 1;

    for (int i = 0; i < o.warmup; i++)
        for (int a = 0; a < 2; a++) arm_step(&arms[a], images, idx, i, 0);
    for (int i = 0; i < o.steps; i++)
        for (int a = 0; a < 2; a++) arm_step(&arms[a], images, idx, i, 1);

    const char *method = o.masks == 1 ? "MAE" : "MI-MAE";
    const int threads = openblas_get_num_threads();
    double ms[2], products[2];
    for (int a = 0; a < 2; a++) {
        ms[a] = bench_median(arms[a].ms, o.steps);
        products[a] = 0.0; /* the linear layers' products: the phases before attention */
        for (int p = 0; p < PROFILE_ATTENTION; p++) products[a] += arms[a].phase_s[p];
        products[a] = 1e3 * products[a] / o.steps / ms[a];
    }
    printf("pair %s %s batch %d, %d thread(s): %s %.0f ms/step (products %.0f%%), %s %.0f "
           "ms/step (products %.0f%%) = %.3fx (%s as %d micro-batch(es) of %d; median of %d "
           "interleaved steps each)\n",
           o.config, method, o.batch, threads, arms[0].name, ms[0], 100 * products[0],
           arms[1].name, ms[1], 100 * products[1], ms[1] / ms[0], arms[1].name,
           arms[1].plan.micro_batches, arms[1].plan.micro_batch, o.steps);
    printf("  %-28s %10s %10s %10s\n", "phase (ms/step)", arms[0].name, arms[1].name,
           "difference");
    for (int p = 0; p < PROFILE_COUNT; p++) {
        const double x = 1e3 * arms[0].phase_s[p] / o.steps, y = 1e3 * arms[1].phase_s[p] / o.steps;
        if (y - x > 0.01 * ms[0] || x - y > 0.01 * ms[0])
            printf("  %-28s %10.1f %10.1f %+10.1f\n", profile_phase_name((profile_phase_t)p), x, y,
                   y - x);
    }
    /* the reductions: what OpenBLAS alone charges for the split products,
     * as a ratio floor (the fast step plus that extra) */
    double floor_ratio = 0.0;
    if (!o.precision && arms[1].plan.micro_batches > 1)
        floor_ratio = (ms[0] + weight_grad_floor_ms(&c, o.batch, arms[1].plan.micro_batches)) / ms[0];
    if (floor_ratio > 0.0)
        printf("  so the deterministic step cannot run below %.3fx the fast one with these "
               "products\n", floor_ratio);
    printf("RESULT pair compare=%s config=%s method=%s batch=%d micro_batch=%d threads=%d "
           "a=%s b=%s a_ms=%.1f b_ms=%.1f ratio=%.4f a_products=%.3f b_products=%.3f "
           "floor_ratio=%.4f\n",
           o.precision ? "precision" : "reduction", o.config, method, o.batch,
           arms[1].plan.micro_batch, threads, arms[0].name, arms[1].name, ms[0], ms[1],
           ms[1] / ms[0], products[0], products[1], floor_ratio);
    for (int a = 0; a < 2; a++) {
        train_step_free(&arms[a].step);
        mimae_model_free(arms[a].model);
    }
    free(images);
    free(idx);
    MPI_Finalize();
    return 0;
}
