/* What the deterministic reduction costs against the fast one on the same
 * ViT-B/16 step, measured in one process with the two steps interleaved
 * (fast, deterministic, fast, ...), so that a shared machine's drift falls
 * on both alike:
 *
 *   reduction --masks 4|1 --batch B [--micro-batch IMAGES] [--steps K] [--warmup W]
 *
 * B is the per-rank batch of a one-rank run; --micro-batch sets the
 * deterministic split (default: mimae_dist's, up to 8 micro-batches), e.g.
 * 4 for what a rank with B = 8 holds on 4 ranks (global batch 32: 8
 * micro-batches of 4, two a rank). Threads: OPENBLAS_NUM_THREADS. Prints
 * each arm's median ms/step, the ratio of the medians and the phases that
 * differ most, then `RESULT reduction ...` for bench/run.sh. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/kernels/blas_check.h"
#include "core/kernels/profile.h"

typedef struct {
    int masks, batch, micro_batch, steps, warmup;
} options_t;

static void usage(void)
{
    fprintf(stderr, "usage: reduction --masks N --batch B [--micro-batch IMAGES] [--steps K] "
                    "[--warmup W]\n");
    exit(2);
}

static options_t parse(int argc, char **argv)
{
    options_t o = {4, 8, 0, 3, 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--masks")) o.masks = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--micro-batch")) o.micro_batch = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else usage();
    }
    if ((argc - 1) % 2 || o.masks < 1 || o.batch < 1 || o.micro_batch < 0 || o.steps < 1 ||
        o.steps > 64 || o.warmup < 0)
        usage();
    return o;
}

/* One reduction's model and step, and what its timed steps took. */
typedef struct {
    const char *name;
    step_plan_t plan;
    mimae_model_t *model;
    train_step_t step;
    double ms[64];
    double phase_s[PROFILE_COUNT];
} arm_t;

static void arm_init(arm_t *a, const char *name, const mimae_config_t *c, step_reduction_t r,
                     int micro_batch)
{
    char err[512];
    a->name = name;
    if (step_plan_make(&a->plan, c->global_batch, 1, r, micro_batch, err, sizeof err) ||
        !(a->model = mimae_model_create(c, a->plan.micro_batch, 1, err, sizeof err)) ||
        train_step_init(&a->step, a->model, MPI_COMM_SELF, &a->plan, err, sizeof err)) {
        fprintf(stderr, "reduction: %s: %s\n", name, err);
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
        fprintf(stderr, "reduction: %s: %s\n", a->name, err);
        exit(1);
    }
    const double dt = bench_now() - t0;
    profile_enable(0);
    if (!timed) return;
    a->ms[i] = 1e3 * dt;
    for (int p = 0; p < PROFILE_COUNT; p++) a->phase_s[p] += profile_seconds((profile_phase_t)p);
}

int main(int argc, char **argv)
{
    blas_quiet_idle_threads(argv); /* as mimae_dist does */
    const options_t o = parse(argc, argv);
    MPI_Init(&argc, &argv);
    mimae_config_t c;
    if (mimae_config_preset(&c, "vit-b16")) return 1;
    c.num_masks = o.masks;
    if (o.masks == 1) c.w_max = c.w_min = 0.0f;
    c.global_batch = o.batch;
    c.warmup_iters = 10;
    c.total_iters = 1000;
    bench_print_blas("reduction");
    arm_t arms[2] = {{0}};
    arm_init(&arms[0], "fast", &c, STEP_FAST, 0);
    arm_init(&arms[1], "deterministic", &c, STEP_DETERMINISTIC, o.micro_batch);

    const size_t n = (size_t)o.batch * c.img_h * c.img_w * c.channels;
    float *images = malloc(n * sizeof *images);
    int64_t *idx = malloc((size_t)o.batch * sizeof *idx);
    if (!images || !idx) return 1;
    bench_images(images, n, 5);
    for (int b = 0; b < o.batch; b++) idx[b] = b;

    for (int i = 0; i < o.warmup; i++)
        for (int a = 0; a < 2; a++) arm_step(&arms[a], images, idx, i, 0);
    for (int i = 0; i < o.steps; i++)
        for (int a = 0; a < 2; a++) arm_step(&arms[a], images, idx, i, 1);

    const char *method = o.masks == 1 ? "MAE" : "MI-MAE";
    const int threads = openblas_get_num_threads();
    const double fast = bench_median(arms[0].ms, o.steps), det = bench_median(arms[1].ms, o.steps);
    printf("reduction %s batch %d, %d thread(s), deterministic as %d micro-batch(es) of %d: "
           "fast %.0f ms/step, deterministic %.0f ms/step = %.3fx (median of %d interleaved "
           "steps each)\n",
           method, o.batch, threads, arms[1].plan.micro_batches, arms[1].plan.micro_batch, fast,
           det, det / fast, o.steps);
    printf("  %-28s %10s %10s %10s\n", "phase (ms/step)", "fast", "determ.", "difference");
    for (int p = 0; p < PROFILE_COUNT; p++) {
        const double f = 1e3 * arms[0].phase_s[p] / o.steps, d = 1e3 * arms[1].phase_s[p] / o.steps;
        if (d - f > 0.01 * fast || f - d > 0.01 * fast)
            printf("  %-28s %10.1f %10.1f %+10.1f\n", profile_phase_name((profile_phase_t)p), f, d,
                   d - f);
    }
    printf("RESULT reduction method=%s batch=%d micro_batch=%d threads=%d fast_ms=%.1f "
           "deterministic_ms=%.1f ratio=%.4f\n",
           method, o.batch, arms[1].plan.micro_batch, threads, fast, det, det / fast);
    for (int a = 0; a < 2; a++) {
        train_step_free(&arms[a].step);
        mimae_model_free(arms[a].model);
    }
    free(images);
    free(idx);
    MPI_Finalize();
    return 0;
}
