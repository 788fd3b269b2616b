/* 1 vs R ranks at a fixed per-rank batch, for the fast and the deterministic
 * gradient reduction, and a cost model for 64 ranks.
 *
 *   mpirun -n 2 build/bench/scaling [--config fmnist] [--masks 4] [--batch 32]
 *                                   [--steps 3] [--warmup 1] [--reduction fast,deterministic]
 *                                   [--threads 1] [--model-ranks 64]
 *
 * One launch measures both sides, their steps interleaved so that both see
 * the same machine: rank 0 alone (MPI_COMM_SELF; the other ranks wait
 * without spinning), then every rank (MPI_COMM_WORLD), then rank 0 alone
 * again, ..., each with --batch images per rank. The step is mimae_dist's
 * (dist/train_step.h, on synthetic images in memory, no I/O): forward; unit
 * features and latents gathered
 * (MPI_Allgather); InfoNCE/CLUB over the global batch; their gradients
 * reduce-scattered (fast) or tree-summed (deterministic); backward with the
 * bucketed MPI_Iallreduce overlapped (fast) or the fixed-tree sum
 * (deterministic); loss sums; AdamW.
 *
 * Measured per step (median over steps, slowest rank): the step time, the
 * exposed communication (time blocked in MPI calls: the gathers, the
 * reduce-scatter or tree, the final wait for the gradient buckets, the loss
 * sum), and compute = step - exposed. Efficiency = t(1 rank) / t(R ranks)
 * (ideal 1: same per-rank work). Then MPI_Allreduce of the gradient vector and
 * of one float (median of several) give the bandwidth and latency of the
 * cost model (see model_step below), which predicts the step at
 * --model-ranks ranks. Peak RSS per rank is reported against the analytic
 * bytes (bench_util.h) plus the reduction buffers.
 * Prints `RESULT scaling ...` lines for bench/run.sh. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/optim/adamw.h"
#include "dist/collectives.h"
#include "dist/mpi_check.h"
#include "dist/train_step.h"

typedef struct {
    char config[16];
    int masks, batch, steps, warmup, threads, model_ranks;
    char reductions[64];
} options_t;

typedef struct {
    double step, comm, skew, fwd, bwd; /* medians, seconds (slowest rank) */
    double rss_mib, analytic_mib;
} result_t;

static double median_of(double *v, int n) { return bench_median(v, n); }

/* Seconds of MPI_Allreduce of n floats on comm: median of reps. */
static double allreduce_time(MPI_Comm comm, float *buf, int n, int reps)
{
    double t[64];
    if (reps > 64) reps = 64;
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, comm);
    for (int i = 0; i < reps; i++) {
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, comm);
        t[i] = MPI_Wtime() - t0;
    }
    double r = median_of(t, reps);
    MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_DOUBLE, MPI_MAX, comm);
    return r;
}

/* One side of the comparison: a model and mimae_dist's global step on comm. */
typedef struct {
    MPI_Comm comm;
    int rank, R, B, G, N, deterministic;
    mimae_config_t c;
    mimae_model_t *m;
    size_t img_floats;
    float *images;
    int64_t *idx;
    train_step_t step;
    double ts[64], tc[64], tk[64], tf[64], tb[64];
    int nt;
} runner_t;

static void runner_init(runner_t *r, const options_t *o, MPI_Comm comm, int deterministic)
{
    memset(r, 0, sizeof *r);
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    MPI_Comm_size(comm, &r->R);
    r->B = o->batch, r->G = o->batch * r->R, r->N = o->masks, r->deterministic = deterministic;
    bench_config(&r->c, o->config, r->N, r->G);
    char err[256];
    r->m = mimae_model_create(&r->c, r->B, 1, err, sizeof err);
    if (!r->m) {
        fprintf(stderr, "scaling: %s\n", err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    r->img_floats = (size_t)r->c.img_h * r->c.img_w * r->c.channels;
    r->images = malloc((size_t)r->B * r->img_floats * sizeof(float));
    r->idx = malloc((size_t)r->B * sizeof *r->idx);
    step_plan_t plan;
    if (!r->images || !r->idx ||
        step_plan_make(&plan, r->G, r->R, deterministic ? STEP_DETERMINISTIC : STEP_FAST, r->B,
                       err, sizeof err) ||
        train_step_init(&r->step, r->m, comm, &plan, err, sizeof err)) {
        fprintf(stderr, "scaling: %s\n", r->images && r->idx ? err : "out of memory");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bench_images(r->images, (size_t)r->B * r->img_floats, 100 + (uint64_t)r->rank);
    for (int b = 0; b < r->B; b++) r->idx[b] = (int64_t)r->rank * r->B + b;
}

/* One training step, mimae_dist's (train_step_run: the gradients, the loss
 * sum and AdamW); timings kept when `record`. */
static void runner_step(runner_t *r, int it, int record)
{
    MPI_Barrier(r->comm);
    r->step.timing = (step_timing_t){.barriers = 1};
    const double t0 = MPI_Wtime();
    mimae_step_stats_t st;
    char err[512];
    if (train_step_run(&r->step, r->images, r->idx, 1, (uint64_t)it, &st, err, sizeof err)) {
        fprintf(stderr, "scaling: %s\n", err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const double step = MPI_Wtime() - t0;
    const step_timing_t timing = r->step.timing;
    if (record && r->nt < 64) {
        const int k = r->nt++;
        r->ts[k] = step, r->tc[k] = timing.comm_s, r->tk[k] = timing.imbalance_s;
        r->tf[k] = timing.forward_s, r->tb[k] = timing.backward_s;
    }
}

/* Medians over the recorded steps, slowest rank (collective on r->comm);
 * the analytic bytes add the reduction buffers to bench_util.h's count. */
static void runner_result(runner_t *r, result_t *res)
{
    const int n = r->nt > 0 ? r->nt : 1;
    double v[5] = {median_of(r->ts, n), median_of(r->tc, n), median_of(r->tk, n),
                   median_of(r->tf, n), median_of(r->tb, n)};
    MPI_Allreduce(MPI_IN_PLACE, v, 5, MPI_DOUBLE, MPI_MAX, r->comm);
    res->step = v[0], res->comm = v[1], res->skew = v[2], res->fwd = v[3], res->bwd = v[4];
    const double MB = 1024.0 * 1024.0, E = (double)r->m->dims.proj_dim, D = r->c.enc_dim;
    const double F = (double)r->G * r->N * (E + D), grads = bench_param_floats(r->m);
    /* cand_u + cand_z (F), dcand and dcand_total (2F), mu and logvar saved
     * (2 B N D), the rank's feature gradients (B N (E + D)); the tree: stack
     * and receive buffers */
    double extra = (3.0 * F + 2.0 * r->B * r->N * D + r->B * r->N * (E + D)) * sizeof(float);
    if (r->deterministic) extra += (3.0 * grads + 3.0 * F) * sizeof(float);
    res->analytic_mib = (4.0 * bench_param_floats(r->m) * sizeof(float) +
                         bench_act_floats(&r->c, r->B) * sizeof(float) + extra) / MB;
}

static void runner_free(runner_t *r)
{
    train_step_free(&r->step);
    free(r->images);
    free(r->idx);
    mimae_model_free(r->m);
}

/* Waits at a barrier of MPI_COMM_WORLD without spinning (a rank with
 * nothing to do leaves its core to the others). */
static void idle_barrier(void)
{
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int done = 0; !done;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

/* Both sides of the comparison with their steps interleaved (1 rank, then R
 * ranks, then 1 rank, ...) so that both see the same machine: rank 0 alone
 * on MPI_COMM_SELF while the other ranks wait without spinning, then all
 * ranks. RSS per rank is taken before the 1-rank model exists. */
static void compare(const options_t *o, int deterministic, result_t *one, result_t *all)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    runner_t world, self;
    runner_init(&world, o, MPI_COMM_WORLD, deterministic);
    runner_step(&world, 0, 0);
    /* resident now, after a whole step touched every page: this rank's
     * memory for the R-rank run alone (the peak of the process would also
     * count the earlier reduction's models) */
    double rss = bench_rss_now_kb() / 1024.0;
    MPI_Allreduce(MPI_IN_PLACE, &rss, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) runner_init(&self, o, MPI_COMM_SELF, deterministic);
    for (int it = 0; it < o->warmup + o->steps; it++) {
        const int record = it >= o->warmup;
        if (rank == 0) runner_step(&self, it, record);
        idle_barrier();
        runner_step(&world, it + 1, record);
    }
    if (rank == 0) {
        runner_result(&self, one);
        one->rss_mib = rss;
        one->analytic_mib = 0.0;
        runner_free(&self);
    }
    runner_result(&world, all);
    all->rss_mib = rss;
    runner_free(&world);
    MPI_Bcast(one, (int)(sizeof *one / sizeof(double)), MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

/* Step time at P ranks. Compute (forward + losses + backward + update) does
 * not change with P at a fixed per-rank batch, except InfoNCE's logits,
 * which grow with the global batch (added by the caller). Communication,
 * alpha-beta (alpha: latency of one small allreduce step; beta: bandwidth
 * from the measured 2-rank allreduce of the n-float gradient vector, where
 * each rank sends and receives ~n floats; gamma: floats per second of the
 * tree's local additions, measured):
 *   fast: ring allreduce 2 (P-1)/P n/beta + 2 (P-1) alpha, overlapped with
 *         the backward: exposed = max(0, that - backward time), plus the
 *         last bucket, which nothing overlaps (2 (P-1)/P bucket/beta); the
 *         MI features: allgather and reduce-scatter, (P-1)/P of the global
 *         feature bytes each;
 *   deterministic: dist/tree_sum.c, a binomial reduce of whole vectors to
 *         rank 0 (log2 P levels of alpha + n/beta + n/gamma, not
 *         overlapped) and a broadcast (pipelined by MPI for large messages:
 *         n/beta + log2 P alpha), for the gradients and for the MI-feature
 *         gradients (the global feature array), plus the allgathers. */
static double model_step(int P, int deterministic, double compute, double bwd, double n_grad,
                         double n_feat, double bucket, double alpha, double beta, double gamma)
{
    const double lg = log2((double)P), f = (P - 1.0) / P;
    const double gathers = 2.0 * f * n_feat / beta + 2.0 * (P - 1) * alpha;
    if (deterministic) {
        const double tree = lg * (alpha + n_grad / beta + n_grad / gamma) + n_grad / beta +
                            lg * alpha;
        const double tree_feat = lg * (alpha + n_feat / beta + n_feat / gamma) + n_feat / beta +
                                 lg * alpha;
        return compute + tree + tree_feat + f * n_feat / beta + (P - 1) * alpha;
    }
    const double ring = 2.0 * f * n_grad / beta + 2.0 * (P - 1) * alpha;
    const double exposed = (ring > bwd ? ring - bwd : 0.0) + 2.0 * f * bucket / beta;
    return compute + exposed + gathers + 2.0 * lg * alpha;
}

/* Floats per second of a[i] += b[i] over n floats (dist/tree_sum's addition). */
static double add_rate(size_t n)
{
    float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float));
    if (!a || !b) {
        free(a);
        free(b);
        return 1e9;
    }
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        const double t0 = MPI_Wtime();
        for (size_t i = 0; i < n; i++) a[i] += b[i];
        const double t = MPI_Wtime() - t0;
        best = t < best ? t : best;
    }
    const double rate = (double)n / (best > 1e-9 ? best : 1e-9) + 0.0 * a[n / 2];
    free(a);
    free(b);
    return rate;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    mpi_check_install();
    int rank, R;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &R);
    options_t o = {"fmnist", 4, 32, 3, 1, 1, 64, "fast,deterministic"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--config")) snprintf(o.config, sizeof o.config, "%s", v);
        else if (!strcmp(a, "--masks")) o.masks = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--threads")) o.threads = atoi(v);
        else if (!strcmp(a, "--model-ranks")) o.model_ranks = atoi(v);
        else if (!strcmp(a, "--reduction")) snprintf(o.reductions, sizeof o.reductions, "%s", v);
    }
    mimae_config_t probe;
    if (bench_config(&probe, o.config, o.masks, o.batch) || o.steps < 1 || o.steps > 60 ||
        o.batch < 1) {
        if (rank == 0) fprintf(stderr, "scaling: bad options\n");
        MPI_Finalize();
        return 2;
    }
    openblas_set_num_threads(o.threads);
    if (rank == 0)
        printf("scaling: %s, %s, %d images per rank, %d thread(s) per rank, %d vs %d rank(s), "
               "median of %d steps\n", o.config, o.masks == 1 ? "MAE" : "MI-MAE", o.batch,
               o.threads, 1, R, o.steps);

    /* network figures for the cost model */
    mimae_model_t *probe_m = NULL;
    char err[256];
    probe.global_batch = o.batch;
    probe_m = mimae_model_create(&probe, o.batch, 1, err, sizeof err);
    const double n_grad = (double)(probe_m->table.total + probe_m->q_table.total);
    const double n_feat = (double)o.batch * R * o.masks *
                          (probe_m->dims.proj_dim + probe.enc_dim);
    const double probe_e = probe_m->dims.proj_dim;
    mimae_model_free(probe_m);
    double alpha = 0.0, beta = 0.0;
    const double gamma = add_rate((size_t)n_grad);
    const double bucket = (double)(1u << 20); /* grad_reduce bucket, as mimae_dist */
    if (R > 1) {
        float *buf = calloc((size_t)n_grad, sizeof(float));
        const double t_big = allreduce_time(MPI_COMM_WORLD, buf, (int)n_grad, 5);
        const double t_small = allreduce_time(MPI_COMM_WORLD, buf, 1, 50);
        free(buf);
        /* 2 ranks: each sends and receives ~n floats: t = 2 alpha + n/beta (floats/s) */
        alpha = t_small / 2.0;
        beta = n_grad / (t_big - 2.0 * alpha > 1e-9 ? t_big - 2.0 * alpha : 1e-9);
        if (rank == 0)
            printf("allreduce %d ranks: %.0f floats (gradients) %.2f ms = %.2f GB/s; one float "
                   "%.1f us; local additions %.2f Gfloat/s\n", R, n_grad, 1e3 * t_big,
                   4.0 * n_grad / t_big / 1e9, 1e6 * t_small, gamma / 1e9);
    }
    if (rank == 0)
        printf("%-13s %5s %9s %9s %8s %9s %8s %7s %8s %8s %9s\n", "reduction", "ranks", "ms/step",
               "comm ms", "comm %", "imbal ms", "img/s", "eff", "eff-imb", "RSS MiB",
               "RSS/anal.");
    char reds[64];
    snprintf(reds, sizeof reds, "%s", o.reductions);
    for (char *sp = NULL, *red = strtok_r(reds, ",", &sp); red; red = strtok_r(NULL, ",", &sp)) {
        const int det = !strcmp(red, "deterministic");
        result_t one, all;
        compare(&o, det, &one, &all);
        if (rank != 0) continue;
        const double eff = one.step / all.step;
        const result_t *rs[2] = {&one, &all};
        const int ranks[2] = {1, R};
        for (int k = 0; k < 2; k++) {
            printf("%-13s %5d %9.1f %9.2f %7.2f%% %9.1f %8.1f %7.3f %8.3f", red, ranks[k],
                   1e3 * rs[k]->step, 1e3 * rs[k]->comm, 100.0 * rs[k]->comm / rs[k]->step,
                   1e3 * rs[k]->skew, ranks[k] * o.batch / rs[k]->step, one.step / rs[k]->step,
                   one.step / (rs[k]->step - rs[k]->skew));
            if (k) printf(" %8.1f %9.3f\n", rs[k]->rss_mib, rs[k]->rss_mib / rs[k]->analytic_mib);
            else printf(" %8s %9s\n", "-", "-");
        }
        printf("RESULT scaling reduction=%s ranks=%d step1_ms=%.1f stepR_ms=%.1f eff=%.4f "
               "comm_ms=%.2f comm_frac=%.4f imbalance_ms=%.2f rss_mib=%.1f rss_ratio=%.4f\n", red,
               R, 1e3 * one.step, 1e3 * all.step, eff, 1e3 * all.comm, all.comm / all.step,
               1e3 * all.skew, all.rss_mib, all.rss_mib / all.analytic_mib);
        if (R > 1) {
            /* compute from the 1-rank run (no communication, no imbalance) */
            const double compute = one.step - one.comm;
            const double nf = n_feat / R * 1.0; /* features of the R-rank global batch / R */
            /* InfoNCE's logits grow with the global batch: B x G x E per mask
             * pair, forward and two gradients, at the step's FLOP rate */
            mimae_config_t c1;
            bench_config(&c1, o.config, o.masks, o.batch);
            const double rate = bench_step_flops(&c1, o.batch) / compute;
            const double per_rank_logits = o.masks > 1 ? o.masks * (o.masks - 1) * 6.0 * o.batch *
                                                             o.batch * probe_e : 0.0;
            const int P = o.model_ranks;
            const double pred2 = model_step(R, det, compute + (R - 1) * per_rank_logits / rate,
                                            one.bwd, n_grad, nf * R, bucket, alpha, beta, gamma);
            const double predP = model_step(P, det, compute + (P - 1) * per_rank_logits / rate,
                                            one.bwd, n_grad, nf * P, bucket, alpha, beta, gamma);
            printf("  cost model: compute %.1f ms (1 rank; backward %.1f ms), allreduce alpha "
                   "%.1f us, %.2f GB/s: predicted %d ranks %.1f ms (measured %.1f), "
                   "%d ranks %.1f ms, efficiency %.3f\n", 1e3 * compute, 1e3 * one.bwd, 1e6 * alpha,
                   4.0 * beta / 1e9, R, 1e3 * pred2, 1e3 * all.step, P, 1e3 * predP,
                   one.step / predP);
            printf("RESULT scaling_model reduction=%s ranks=%d pred_ms=%.1f eff=%.4f "
                   "pred2_ms=%.1f\n", red, P, 1e3 * predP, one.step / predP, 1e3 * pred2);
        }
        fflush(stdout);
    }
    MPI_Finalize();
    return 0;
}
