/* ViT-B/16 (the paper's model, preset vit-b16: 224x224x3, patch 16, encoder
 * 768 x 12, decoder 512 x 8) through mimae_dist's step on one process, for
 * one configuration per run (peak RSS is per process):
 *
 *   vitb --masks 4|1 --batch B --reduction fast|deterministic
 *        [--steps K] [--warmup W] [--peak-n N] [--micro-batch IMAGES]
 *        [--precision f32|bf16]
 *
 * Threads: OPENBLAS_NUM_THREADS (mimae's pool follows it). The step is
 * train_step_run on MPI_COMM_SELF with the per-rank batch B split as
 * mimae_dist splits it (deterministic: up to 8 micro-batches, run as one
 * forward and backward; the line says whether their products ran whole or
 * per micro-batch, core/kernels/micro_batches.h). Prints ms/step (median of K after W), MFU against the
 * cblas_sgemm peak measured around every step in this process (the larger
 * of the two readings), peak RSS against the analytic bytes (bench_util.h:
 * parameters, gradients, moments, the activations of every kept
 * micro-batch and the deterministic sum's gradient buffers), the phase breakdown of the timed steps
 * (core/kernels/profile.h), and the step's ceiling: the rates its products
 * and attention ran at, the MFU it would reach with no time spent between
 * them, and the update's memory traffic. Ends with `RESULT vitb ...`,
 * `RESULT vitb_phase ...` and `RESULT vitb_ceiling ...` lines for bench/run.sh. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/kernels/blas_check.h"
#include "core/kernels/profile.h"

typedef struct {
    int masks, batch, steps, warmup, peak_n, micro_batch, bf16;
    char reduction[16];
} options_t;

static void usage(void)
{
    fprintf(stderr, "usage: vitb --masks N --batch B --reduction fast|deterministic [--steps K] "
                    "[--warmup W] [--peak-n N] [--micro-batch IMAGES] [--precision f32|bf16]\n");
    exit(2);
}

static options_t parse(int argc, char **argv)
{
    options_t o = {4, 8, 2, 1, 1536, 0, 0, "fast"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--masks")) o.masks = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--peak-n")) o.peak_n = atoi(v);
        else if (!strcmp(a, "--micro-batch")) o.micro_batch = atoi(v);
        else if (!strcmp(a, "--precision") && (!strcmp(v, "f32") || !strcmp(v, "bf16")))
            o.bf16 = !strcmp(v, "bf16");
        else if (!strcmp(a, "--reduction")) snprintf(o.reduction, sizeof o.reduction, "%s", v);
        else usage();
    }
    if ((argc - 1) % 2 || o.masks < 1 || o.batch < 1 || o.steps < 1 || o.steps > 64 ||
        o.warmup < 0 || o.micro_batch < 0 || (strcmp(o.reduction, "fast") && strcmp(o.reduction, "deterministic")))
        usage();
    return o;
}

/* A stream triad's bandwidth (a = b + s c over three 128 MiB arrays, best of
 * 3; GB/s counting the two reads and the write), the memory speed the update
 * is held to. Run after the peak RSS is read. 0 if the arrays do not fit. */
static double stream_triad_gbs(void)
{
    const size_t n = (size_t)32 << 20;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)),
          *x = malloc(n * sizeof(float));
    double best = 0.0;
    if (a && b && x) {
        for (size_t i = 0; i < n; i++) a[i] = 0.0f, b[i] = 1.0f, x[i] = 2.0f;
        for (int r = 0; r < 3; r++) {
            const double t0 = bench_now();
            for (size_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * x[i];
            const double gbs = 3.0 * n * sizeof(float) / (bench_now() - t0) / 1e9;
            if (gbs > best) best = gbs;
        }
        if (a[n / 2] != 2.0f) best = 0.0; /* and the loop is not optimised away */
    }
    free(a);
    free(b);
    free(x);
    return best;
}

/* What bounds the step's MFU, from the timed steps' profile: the rates the
 * products and attention ran at, the MFU the step would reach if nothing else
 * took time, and the update's memory traffic (it reads the gradient for the
 * norms, then reads parameters, gradient and both moments and writes three
 * of them back, plus the bf16 copy), which no product can hide. */
static void print_ceiling(const mimae_config_t *c, const options_t *o, const mimae_model_t *m,
                          double flops, double peak)
{
    double products = 0.0;
    for (int p = PROFILE_QKV; p <= PROFILE_HEADS; p++)
        products += profile_seconds((profile_phase_t)p) / o->steps;
    const double attention = profile_seconds(PROFILE_ATTENTION) / o->steps;
    const double update = profile_seconds(PROFILE_ADAMW) / o->steps;
    const double attention_flops = bench_step_attention_flops(c, o->batch);
    const double products_eff = (flops - attention_flops) / products / 1e9 / peak;
    const double attention_eff = attention_flops / attention / 1e9 / peak;
    const double ceiling = flops / (products + attention) / 1e9 / peak;
    const double update_gb = (8.0 + (o->bf16 ? 0.5 : 0.0)) * sizeof(float) * bench_param_floats(m) / 1e9;
    const double triad = stream_triad_gbs();
    printf("  ceiling: products at %.1f%% of the peak, attention at %.1f%%; with no time outside "
           "them the step would reach %.1f%% MFU; the update moves %.2f GB in %.0f ms (%.1f GB/s; "
           "a stream triad: %.1f GB/s)\n",
           100 * products_eff, 100 * attention_eff, 100 * ceiling, update_gb, 1e3 * update,
           update_gb / update, triad);
    printf("RESULT vitb_ceiling method=%s batch=%d reduction=%s precision=%s threads=%d "
           "products_eff=%.4f attention_eff=%.4f mfu_ceiling=%.4f update_gb=%.3f update_gbs=%.2f "
           "triad_gbs=%.2f\n",
           o->masks == 1 ? "MAE" : "MI-MAE", o->batch, o->reduction, o->bf16 ? "bf16" : "f32",
           openblas_get_num_threads(), products_eff, attention_eff, ceiling, update_gb,
           update_gb / update, triad);
}

int main(int argc, char **argv)
{
    blas_quiet_idle_threads(argv); /* as mimae_dist does */
    const options_t o = parse(argc, argv);
    MPI_Init(&argc, &argv);
    char err[512];
    mimae_config_t c;
    if (bench_config(&c, "vitb", o.masks, o.batch)) return 1;
    const int deterministic = !strcmp(o.reduction, "deterministic");
    step_plan_t plan;
    if (step_plan_make(&plan, o.batch, 1, deterministic ? STEP_DETERMINISTIC : STEP_FAST, o.micro_batch, err,
                       sizeof err)) {
        fprintf(stderr, "vitb: %s\n", err);
        return 2;
    }
    plan.bf16 = o.bf16;
    const int threads = openblas_get_num_threads();
    bench_print_blas("vitb");
    mimae_model_t *m = mimae_model_create(&c, plan.micro_batch, 1, err, sizeof err);
    train_step_t step;
    if (!m || train_step_init(&step, m, MPI_COMM_SELF, &plan, err, sizeof err)) {
        fprintf(stderr, "vitb: %s\n", err);
        return 1;
    }
    float *images;
    int64_t *idx;
    if (bench_batch(&c, o.batch, &images, &idx)) return 1;

    const double flops = bench_step_flops(&c, o.batch);
    double t[64], peak[64];
    double before = bench_sgemm_peak(o.peak_n, 1);
    mimae_step_stats_t st;
    for (int i = 0; i < o.warmup + o.steps; i++) {
        if (i == o.warmup) {
            profile_reset();
            profile_enable(1);
        }
        const double t0 = bench_now();
        if (train_step_run(&step, images, idx, 1, (uint64_t)i, &st, err, sizeof err)) {
            fprintf(stderr, "vitb: %s\n", err);
            return 1;
        }
        const double dt = bench_now() - t0;
        profile_enable(0);
        const double after = bench_sgemm_peak(o.peak_n, 1);
        if (i >= o.warmup) {
            t[i - o.warmup] = dt;
            peak[i - o.warmup] = before > after ? before : after;
        }
        before = after;
        if (i >= o.warmup && i + 1 < o.warmup + o.steps) profile_enable(1);
    }
    double total = 0.0;
    for (int i = 0; i < o.steps; i++) total += t[i];
    const double ms = 1e3 * bench_median(t, o.steps), pk = bench_median(peak, o.steps);
    const double mfu = flops / (ms / 1e3) / 1e9 / pk;
    const double MB = 1024.0 * 1024.0;
    /* the deterministic sum's buffers: the gradient vector the backward
     * writes as the rank's leaf of the tree (dist/tree_sum.c), and with k
     * micro-batches the log2(k) + 1 partial sums of the largest reduction:
     * a weight's tile of 256 rows with its bias, or a vector and its bias
     * (core/kernels/micro_batches.c) */
    double tree = 0.0;
    if (plan.deterministic) tree = bench_param_floats(m);
    if (plan.deterministic && plan.micro_batches > 1) {
        double largest = 0.0;
        for (int i = 0; i < m->table.count; i++) {
            const param_info_t *p = &m->table.info[i];
            const double floats = p->ndim == 2
                                      ? (double)micro_batches_tile_floats(p->shape[0], p->shape[1])
                                      : 2.0 * (double)p->count;
            if (floats > largest) largest = floats;
        }
        tree += (log2((double)plan.micro_batches) + 1.0) * largest;
    }
    /* bf16: the weights' bf16 copy (half a float each; the shared operand
     * buffers, at most a few activations' worth, are left out) */
    const double mirror = o.bf16 ? 0.5 * bench_param_floats(m) : 0.0;
    const double analytic = (4.0 * bench_param_floats(m) + tree + mirror +
                             plan.micro_batches * bench_act_floats(&c, plan.micro_batch)) *
                            sizeof(float) / MB;
    const double rss = bench_peak_rss_kb() / 1024.0;
    const char *method = o.masks == 1 ? "MAE" : "MI-MAE";
    int shapes;
    const int whole = mimae_model_whole_products(m, &shapes);
    const char *precision = o.bf16 ? "bf16" : "f32";
    printf("vitb %s batch %d %s %s, %d thread(s), %d micro-batch(es) of %d, %d of %d product "
           "shapes whole: %.0f ms/step, "
           "%.3f img/s, %.1f GFLOP/step, %.1f GFLOP/s = %.1f%% of the sgemm peak %.1f; "
           "peak RSS %.0f MiB / analytic %.0f MiB = %.2f\n",
           method, o.batch, o.reduction, precision, threads, plan.micro_batches, plan.micro_batch,
           whole, shapes, ms,
           o.batch / (ms / 1e3), flops / 1e9, flops / (ms / 1e3) / 1e9, 100 * mfu, pk, rss,
           analytic, rss / analytic);
    printf("RESULT vitb method=%s batch=%d reduction=%s precision=%s threads=%d ms=%.1f "
           "img_s=%.4f gflop=%.2f mfu=%.4f peak=%.2f rss_mib=%.0f analytic_mib=%.0f "
           "state_mib=%.0f\n",
           method, o.batch, o.reduction, precision, threads, ms, o.batch / (ms / 1e3), flops / 1e9, mfu, pk,
           rss, analytic, (4.0 * bench_param_floats(m) + mirror) * sizeof(float) / MB);
    /* where the time goes (timed steps, per step) */
    double accounted = 0.0;
    printf("  %-28s %10s %7s\n", "phase", "ms/step", "share");
    for (int p = 0; p < PROFILE_COUNT; p++) {
        const double s = profile_seconds((profile_phase_t)p) / o.steps;
        if (p != PROFILE_SOFTMAX) accounted += s; /* softmax is inside attention */
        printf("  %-28s %10.1f %6.1f%%\n", profile_phase_name((profile_phase_t)p), 1e3 * s,
               100 * s / (total / o.steps));
        printf("RESULT vitb_phase method=%s batch=%d reduction=%s threads=%d phase=%d ms=%.2f\n",
               method, o.batch, o.reduction, threads, p, 1e3 * s);
    }
    const double rest = total / o.steps - accounted;
    printf("  %-28s %10.1f %6.1f%%\n", "unaccounted", 1e3 * rest, 100 * rest / (total / o.steps));
    print_ceiling(&c, &o, m, flops, pk);
    train_step_free(&step);
    mimae_model_free(m);
    free(images);
    free(idx);
    MPI_Finalize();
    return 0;
}
