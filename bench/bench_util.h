/* Shared pieces of the bench programs (header only: every bench C file is its
 * own program): the benchmark configurations, synthetic inputs, timing, the
 * analytic FLOP and memory counts, and the sgemm peak.
 *
 * Configurations (issue 8): "cifar" = 32x32x3 images, "fmnist" = 28x28x1
 * (fmnist-tiny); both with 4x4 patches, encoder 192 x 6 (3 heads), decoder
 * 128 x 2 (4 heads), MLP ratio 4, projector 384 -> 128, Q width 256, mask
 * ratio 0.75, batch 64. MI-MAE: N = 4 masks (w_max 0.1, w_min 0.01); MAE:
 * N = 1, w_max = w_min = 0. */
#ifndef MIMAE_BENCH_UTIL_H
#define MIMAE_BENCH_UTIL_H

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/kernels/blas_check.h"
#include "core/objective/objective.h"
#include "core/vit/model.h"
#include "core/data/rng.h"
#include "core/optim/update.h"
#include "dist/train_step.h"

/* OpenBLAS extensions (declared here: not every cblas.h has them). */
char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* The OpenBLAS kernel in use, and the advice when it is the generic one on a
 * CPU that has a better one: every ratio depends on it. */
static inline void bench_print_blas(const char *prog)
{
    char advice[256];
    printf("%s: OpenBLAS kernel %s, OPENBLAS_CORETYPE=%s, OPENBLAS_THREAD_TIMEOUT=%s, "
           "OMP_WAIT_POLICY=%s\n", prog, blas_kernel_name(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "<unset>",
           getenv("OPENBLAS_THREAD_TIMEOUT") ? getenv("OPENBLAS_THREAD_TIMEOUT") : "<unset>",
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "<unset>");
    if (blas_kernel_mismatch(advice, sizeof advice)) printf("%s: note: %s\n", prog, advice);
}

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* "cifar", "fmnist" or "vitb" (preset vit-b16), N masks (1: MAE), batch
 * images per step. 0, or -1 if unknown. */
static inline int bench_config(mimae_config_t *c, const char *name, int N, int batch)
{
    if (mimae_config_preset(c, strcmp(name, "vitb") == 0 ? "vit-b16" : "fmnist-tiny")) return -1;
    if (strcmp(name, "cifar") == 0) {
        c->img_h = c->img_w = 32;
        c->channels = 3;
    } else if (strcmp(name, "fmnist") != 0 && strcmp(name, "vitb") != 0) {
        return -1;
    }
    c->num_masks = N;
    if (N == 1) c->w_max = c->w_min = 0.0f;
    c->global_batch = batch;
    c->warmup_iters = 10;
    c->total_iters = 1000;
    return 0;
}

/* Standard-normal images (B, H, W, C). */
static inline void bench_images(float *img, size_t n, uint64_t seed)
{
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (size_t i = 0; i < n; i++) img[i] = rng_normal(&r);
}

/* A batch of B synthetic images for c (bench_images) and their data-set
 * indices 0..B-1 (from which a step draws the masks). 0, or -1 when out of
 * memory. */
static inline int bench_batch(const mimae_config_t *c, int B, float **images, int64_t **idx)
{
    const size_t n = (size_t)B * c->img_h * c->img_w * c->channels;
    *images = malloc(n * sizeof **images);
    *idx = malloc((size_t)B * sizeof **idx);
    if (!*images || !*idx) return -1;
    bench_images(*images, n, 5);
    for (int b = 0; b < B; b++) (*idx)[b] = b;
    return 0;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Creates the model (batch = global batch) with masks for images 0..B-1. */
static inline mimae_model_t *bench_model(const mimae_config_t *c)
{
    char err[256];
    mimae_model_t *m = mimae_model_create(c, c->global_batch, 1, err, sizeof err);
    if (!m) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return m;
}

static inline void bench_finalize_mpi(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

/* mimae_dist's step in its plain case (dist/train_step.h: one process, the
 * whole batch) for model m; MPI is initialised (a singleton) on first use. */
static inline void bench_step_init(train_step_t *step, mimae_model_t *m)
{
    int initialized = 0;
    char err[256];
    MPI_Initialized(&initialized);
    if (!initialized) {
        MPI_Init(NULL, NULL);
        atexit(bench_finalize_mpi);
    }
    if (train_step_init_single(step, m, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
}

/* Runs warmup + steps training steps (new masks every step, as training
 * does); returns the median seconds per step, and the minimum in *min_s if
 * not NULL (0 when steps is 0). */
static inline double bench_time_steps(train_step_t *step, const float *images, int warmup,
                                      int steps, double *min_s)
{
    mimae_model_t *m = step->model;
    const int B = m->batch;
    uint64_t *idx = malloc((size_t)B * sizeof *idx);
    double *t = malloc((size_t)(steps > 0 ? steps : 1) * sizeof *t);
    for (int b = 0; b < B; b++) idx[b] = (uint64_t)b;
    char err[256];
    mimae_step_stats_t st;
    for (int i = 0; i < warmup + steps; i++) {
        mimae_sample_masks(m, 1, (uint64_t)i, idx);
        double t0 = bench_now();
        if (train_step_run(step, images, NULL, 0, 0, &st, err, sizeof err)) {
            fprintf(stderr, "bench: %s\n", err);
            exit(1);
        }
        double dt = bench_now() - t0;
        if (i >= warmup) t[i - warmup] = dt;
    }
    if (steps <= 0) {
        free(t);
        free(idx);
        return 0.0;
    }
    double mn = t[0];
    for (int i = 1; i < steps; i++) mn = t[i] < mn ? t[i] : mn;
    if (min_s) *min_s = mn;
    double med = bench_median(t, steps);
    free(t);
    free(idx);
    return med;
}

/* ---- analytic FLOPs of one training step ----
 * Counted: every matrix product the step runs, 2 FLOPs per multiply-add.
 * A linear map of T rows, in -> out costs 2*T*in*out forward, the same for
 * the weight gradient, and the same again for the input gradient where the
 * backward needs it (not for the patch embedding nor Q's embedding, whose
 * inputs are pixels). Attention over S sequences of T tokens of width C:
 * q k^T and p v are 2*S*T*T*C each forward, their four backward products the
 * same each. InfoNCE: N(N-1) logit products of B x B x E, forward and the
 * two gradients. Not counted: elementwise work (LayerNorm, GELU, softmax,
 * residuals, losses, AdamW), which is O(T*width) against O(T*width^2). */
static inline double bench_linear_flops(double T, double in, double out, int dinp)
{
    return (dinp ? 6.0 : 4.0) * T * in * out;
}

/* Attention's six per-head products (two forward, four backward). */
static inline double bench_attention_flops(double S, double T, double C)
{
    return 6.0 * 2.0 * S * T * T * C;
}

static inline double bench_block_flops(double S, double T, double C, double r)
{
    const double R = S * T;
    return bench_linear_flops(R, C, 3 * C, 1) + bench_linear_flops(R, C, C, 1) +
           bench_linear_flops(R, C, r * C, 1) + bench_linear_flops(R, r * C, C, 1) +
           bench_attention_flops(S, T, C);
}

/* The part of bench_step_flops spent in attention's own products. */
static inline double bench_step_attention_flops(const mimae_config_t *c, int B)
{
    const mimae_dims_t d = mimae_config_dims(c);
    const double S = (double)B * c->num_masks;
    return c->enc_depth * bench_attention_flops(S, d.enc_tokens, c->enc_dim) +
           c->dec_depth * bench_attention_flops(S, d.dec_tokens, c->dec_dim);
}

static inline double bench_step_flops(const mimae_config_t *c, int B)
{
    const mimae_dims_t d = mimae_config_dims(c);
    const double N = c->num_masks, S = (double)B * N, V = d.V, P = d.P;
    const double Te = d.enc_tokens, Td = d.dec_tokens, D = c->enc_dim, Dd = c->dec_dim;
    const double H = c->q_hidden, r = c->mlp_ratio, E = d.proj_dim;
    double f = bench_linear_flops(S * V, P, D, 0);                     /* patch embedding */
    f += c->enc_depth * bench_block_flops(S, Te, D, r);                /* encoder */
    f += bench_linear_flops(S * Te, D, Dd, 1);                         /* decoder embedding */
    f += c->dec_depth * bench_block_flops(S, Td, Dd, r);               /* decoder */
    f += bench_linear_flops(S * Td, Dd, P, 1);                         /* prediction */
    if (c->proj_hidden > 0)                                            /* projector */
        f += bench_linear_flops(S, D, c->proj_hidden, 1) +
             bench_linear_flops(S, c->proj_hidden, E, 1);
    f += bench_linear_flops(S * V, P, H, 0);                           /* Q embedding */
    f += 2 * (bench_linear_flops(S, H, H, 1) + bench_linear_flops(S, H, D, 1)); /* Q heads */
    if (N > 1) f += N * (N - 1) * 3.0 * 2.0 * B * B * E;               /* InfoNCE */
    return f;
}

/* ---- analytic memory of one process ----
 * parameters, gradients, AdamW m and v of model and Q (4 floats each), and
 * the activations a step keeps or needs at once: per block of R = S*T rows
 * and width C with hidden h = r*C, the 8 kept (R, C)/(R, 3C)/(R, h) tensors
 * (LN1 out, qkv, attention out, residual, LN2 out, fc1, GELU, block out =
 * C+3C+C+C+C+h+h+C = 8C + 2h floats a row), 4 floats a row of norm
 * statistics and S*heads*T*T softmax probabilities; the embeddings, the
 * final norms, the predictions, targets and the patch pixels; the MI heads'
 * (S rows) tensors; plus the backward's gradients of those and its scratch
 * (one block's widest gradients). */
static inline double bench_block_act_floats(double S, double T, double C, double h,
                                            double heads)
{
    return S * T * (8 * C + 2 * h + 4) + S * heads * T * T;
}

static inline double bench_param_floats(const mimae_model_t *m)
{
    return (double)(m->table.total + m->q_table.total);
}

static inline double bench_act_floats(const mimae_config_t *c, int B)
{
    const mimae_dims_t d = mimae_config_dims(c);
    const double N = c->num_masks, S = (double)B * N, V = d.V, P = d.P, L = d.L;
    const double Te = d.enc_tokens, Td = d.dec_tokens, D = c->enc_dim, Dd = c->dec_dim;
    const double r = c->mlp_ratio, H = c->q_hidden;
    double a = B * L * P * 2 + S * V * P;                                  /* pixels, targets */
    a += S * V * D + S * Te * D;                                           /* embedding, x0 */
    a += c->enc_depth * bench_block_act_floats(S, Te, D, r * D, c->enc_heads);
    a += S * Te * (D + 2);                                                 /* final norm */
    a += S * Te * Dd + S * Td * Dd;                                        /* decoder input */
    a += c->dec_depth * bench_block_act_floats(S, Td, Dd, r * Dd, c->dec_heads);
    a += S * Td * (Dd + 2) + S * Td * P;                                   /* norm, pred */
    a += S * V * H * 2;                                                    /* Q embedding, grad */
    const double E = mimae_config_dims(c).proj_dim, Hp = c->proj_hidden;
    a += S * (2 * Hp + 2 * E + 1 + 3 * H + 2 * (2 * H + D)) + S * D;       /* MI heads, z */
    a += S * (2 * E + 2 * D + Hp + 2 * D + 3 * H);                         /* their gradients */
    /* backward: gradient of the prediction, residual streams, patch
     * embedding gradient, scratch of the widest block (c, qkv, hidden) */
    const double rows = S * Td > S * Te ? S * Td : S * Te, w = D > Dd ? D : Dd;
    a += S * Td * P + S * Td * Dd + S * Te * (D + Dd) + S * Te * D + S * V * D;
    a += rows * w * (1 + 3 + r);
    return a;
}

/* VmRSS (resident now) of this process in KiB (0 if unknown). */
static inline long bench_rss_now_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

static inline long bench_peak_rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

/* GFLOP/s of a large square sgemm (n x n x n) in this process with the
 * current OpenBLAS threads: best of `reps`. */
static inline double bench_sgemm_peak(int n, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
          *c = malloc(sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 97) * 1e-3f;
        b[i] = (float)(i % 89) * 1e-3f;
        c[i] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 0.0;
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        double g = 2.0 * n * (double)n * n / (bench_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

#endif
