/* mimae_dist: MPI data-parallel MI-MAE pre-training.
 *
 *   mpirun -n 64 mimae_dist exp.ini [--set section.key=value]... [--task ID]
 *
 * Every rank reads its slice of each global batch from the HDF5 data set,
 * runs the forward/backward of core/, and the ranks combine the MI features
 * and gradients over MPI (deterministically, or fast with overlap). Rank 0
 * writes checkpoints and the results file and prints progress.
 *
 * Exit status: 0 done; 2 bad input (one line says what); 3 stopped by
 * SIGUSR1/SIGTERM after writing a checkpoint (requeue to resume); 4 a
 * non-finite loss (the last good checkpoint is kept); 1 anything else. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>

#include "core/optim/adamw.h"
#include "core/data/augment.h"
#include "core/kernels/blas_check.h"
#include "core/objective/objective.h"
#include "core/vit/model.h"
#include "core/vit/reconstruct.h"
#include "core/data/sampler.h"
#include "core/optim/update.h"
#include "dist/collectives.h"
#include "dist/global_step.h"
#include "dist/mpi_check.h"
#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "run/evaluate.h"
#include "io/checkpoint.h"
#include "io/reader.h"
#include "io/results.h"

enum { EXIT_OK = 0, EXIT_FAILURE_INTERNAL = 1, EXIT_BAD_INPUT = 2, EXIT_REQUEUE = 3,
       EXIT_NONFINITE = 4 };

#define ERR_LEN 4096
#define MAX_OVERRIDES 64

static const char *usage =
    "usage: mpirun -n RANKS mimae_dist DESCRIPTOR.ini [--set section.key=value]... [--task ID]\n"
    "       mpirun -n RANKS mimae_dist eval RUN_DIR/checkpoints/ckpt-N.h5 [--set section.key=value]...\n"
    "\n"
    "Pre-trains the encoder described by DESCRIPTOR.ini (keys: README.md, 'Descriptor\n"
    "reference') with MI-MAE or MAE, resuming from the newest valid checkpoint in\n"
    "run.out_dir/checkpoints when there is one, and writes run.out_dir/results.h5.\n"
    "\n"
    "  --set section.key=value   override one descriptor key (repeatable)\n"
    "  --task ID                 run task ID of the descriptor's [sweep] (job arrays)\n"
    "  eval CHECKPOINT           evaluate a checkpoint with the eval.* settings of\n"
    "                            RUN_DIR/descriptor.ini; metrics go to RUN_DIR/results.h5\n"
    "  --help                    this text\n"
    "\n"
    "Exit status: 0 done, 2 bad input, 3 stopped by SIGUSR1/SIGTERM after a checkpoint\n"
    "(requeue to resume), 4 non-finite loss (last good checkpoint kept), 1 other errors.\n";

/* ---- signals: a flag, acted on at the next step boundary by all ranks ---- */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SA_RESTART: a stop request only sets the flag; whatever the process is
 * doing then (MPI_Init, reading the data set) goes on instead of failing with
 * EINTR. */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- fault injection: a test hook (tests/test_faults.c), inert unless the
 * environment sets MIMAE_FAULT to comma-separated key=value pairs, one fault:
 *   kill-rank=R,step=S[,phase=step|checkpoint]
 *       rank R raises SIGKILL on itself at step S (S optimiser updates done):
 *       as the next step starts (phase=step, the default; after the
 *       checkpoint of step S if there is one), or while the checkpoint of
 *       step S is written (phase=checkpoint: rank 0 dies when about half of
 *       the file is on disk; another rank dies while rank 0 writes);
 *   full-disk=BYTES,step=S
 *       rank 0 writes the checkpoint of step S as onto a full disk: no file
 *       grows past BYTES bytes (RLIMIT_FSIZE, writes fail with EFBIG);
 *   nan-grad=TENSOR,step=S
 *       the gradient of parameter TENSOR (core/vit/params.c names, "q.*" for Q)
 *       gets a NaN in the update that follows step S, on every rank;
 *   signal-before-init=TERM|USR1 (no step)
 *       every rank raises the signal on itself just before MPI_Init: a stop
 *       request in a job's first moments. ---- */
typedef struct {
    int kill_rank;      /* -1: no kill */
    int at_checkpoint;  /* phase=checkpoint */
    long step;
    long long full_disk; /* 0: none */
    char nan_grad[64];  /* "": none */
    int early_signal;   /* signal-before-init: 0 none, SIGTERM or SIGUSR1 */
} fault_t;

static fault_t fault = {-1, 0, -1, 0, "", 0};

static int fault_parse(char *err, size_t errlen)
{
    const char *env = getenv("MIMAE_FAULT");
    if (!env || !*env) return 0;
    char text[256], *save = NULL;
    snprintf(text, sizeof text, "%s", env);
    for (char *kv = strtok_r(text, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '='), *end = NULL;
        if (!eq) return snprintf(err, errlen, "MIMAE_FAULT: '%s' is not key=value", kv), -1;
        *eq = 0;
        const char *v = eq + 1;
        errno = 0;
        if (strcmp(kv, "kill-rank") == 0) fault.kill_rank = (int)strtol(v, &end, 10);
        else if (strcmp(kv, "step") == 0) fault.step = strtol(v, &end, 10);
        else if (strcmp(kv, "full-disk") == 0) fault.full_disk = strtoll(v, &end, 10);
        else if (strcmp(kv, "phase") == 0 && (!strcmp(v, "step") || !strcmp(v, "checkpoint")))
            fault.at_checkpoint = v[0] == 'c', end = (char *)v + strlen(v);
        else if (strcmp(kv, "nan-grad") == 0 && strlen(v) < sizeof fault.nan_grad)
            snprintf(fault.nan_grad, sizeof fault.nan_grad, "%s", v), end = (char *)v + strlen(v);
        else if (strcmp(kv, "signal-before-init") == 0 &&
                 (strcmp(v, "TERM") == 0 || strcmp(v, "USR1") == 0))
            fault.early_signal = v[0] == 'T' ? SIGTERM : SIGUSR1, end = (char *)v + strlen(v);
        if (!end || end == v || *end || errno)
            return snprintf(err, errlen, "MIMAE_FAULT: %s=%s: unknown key or bad value (test "
                            "hook: see mimae_dist.c)", kv, v), -1;
    }
    const int at_step = fault.kill_rank >= 0 || fault.full_disk > 0 || fault.nan_grad[0];
    if (fault.step < 0 && (at_step || !fault.early_signal))
        return snprintf(err, errlen, "MIMAE_FAULT=%s: step=S (>= 0) is required", env), -1;
    return 0;
}

/* The signal-before-init fault (fault_parse, which reports bad values, runs
 * only after MPI_Init). */
static void fault_raise_before_init(void)
{
    const char *env = getenv("MIMAE_FAULT");
    const char *v = env ? strstr(env, "signal-before-init=") : NULL;
    if (!v) return;
    v += strlen("signal-before-init=");
    if (strncmp(v, "TERM", 4) == 0) raise(SIGTERM);
    else if (strncmp(v, "USR1", 4) == 0) raise(SIGUSR1);
}

/* SIGXFSZ while a killed-during-checkpoint rank 0 writes: die as by kill -9. */
static void fault_die(int sig)
{
    (void)sig;
    raise(SIGKILL);
}

/* Arms the fault of phase=checkpoint (and full-disk) before rank `rank`
 * writes or waits for the checkpoint of `step`; file_bytes estimates the
 * checkpoint's size. Returns 1 when an RLIMIT_FSIZE was set (restore with
 * fault_disarm). */
static int fault_arm_checkpoint(int rank, long step, size_t file_bytes, struct rlimit *saved)
{
    if (step != fault.step) return 0;
    if (fault.kill_rank == rank && fault.at_checkpoint && rank != 0) raise(SIGKILL);
    const int kill_writer = rank == 0 && fault.kill_rank == 0 && fault.at_checkpoint;
    const int full = rank == 0 && fault.full_disk > 0;
    if ((!kill_writer && !full) || getrlimit(RLIMIT_FSIZE, saved)) return 0;
    struct rlimit lim = *saved;
    lim.rlim_cur = (rlim_t)(full ? (size_t)fault.full_disk : file_bytes / 2);
    signal(SIGXFSZ, full ? SIG_IGN : fault_die);
    return setrlimit(RLIMIT_FSIZE, &lim) == 0;
}

static void fault_disarm(const struct rlimit *saved)
{
    setrlimit(RLIMIT_FSIZE, saved);
    signal(SIGXFSZ, SIG_DFL);
}

/* The gradient of tensor `name` (model or Q), or NULL. */
static float *fault_gradient(mimae_model_t *m, const char *name)
{
    const param_info_t *p = param_table_find(&m->table, name);
    if (p) return m->grad_mem + p->offset;
    p = param_table_find(&m->q_table, name);
    return p ? m->q_grad_mem + p->offset : NULL;
}

/* ---- command line ---- */
typedef struct {
    const char *eval_checkpoint; /* `mimae_dist eval CHECKPOINT`: evaluate only */
    const char *descriptor;
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    long task; /* -1: no sweep task */
} args_t;

static int parse_args(int argc, char **argv, args_t *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->task = -1;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "eval") == 0) {
        if (argc < 3 || argv[2][0] == '-')
            return snprintf(err, errlen, "eval: missing CHECKPOINT (see --help)"), -1;
        a->eval_checkpoint = argv[2];
        first = 3;
    }
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--set") == 0 || strcmp(s, "--task") == 0) {
            if (i + 1 >= argc) return snprintf(err, errlen, "%s needs a value", s), -1;
            const char *v = argv[++i];
            if (s[2] == 's') {
                if (a->n_overrides == MAX_OVERRIDES)
                    return snprintf(err, errlen, "more than %d --set options", MAX_OVERRIDES), -1;
                a->overrides[a->n_overrides++] = v;
            } else {
                char *end = NULL;
                a->task = strtol(v, &end, 10);
                if (end == v || *end || a->task < 0)
                    return snprintf(err, errlen, "--task %s: expected an integer >= 0", v), -1;
            }
        } else if (s[0] == '-') {
            return snprintf(err, errlen, "unknown option %s (see --help)", s), -1;
        } else if (!a->descriptor && !a->eval_checkpoint) {
            a->descriptor = s;
        } else {
            return snprintf(err, errlen, "unexpected argument '%s' (one descriptor per run)", s), -1;
        }
    }
    if (a->eval_checkpoint && a->task >= 0)
        return snprintf(err, errlen, "eval: --task does not apply (give the task's checkpoint)"), -1;
    if (!a->descriptor && !a->eval_checkpoint)
        return snprintf(err, errlen, "missing DESCRIPTOR.ini (see --help)"), -1;
    return 0;
}

/* ---- the run ---- */
typedef struct {
    int rank, ranks;
    descriptor_t desc;
    /* the user's --set overrides, then a sweep task's assignments */
    const char *overrides[MAX_OVERRIDES + DESCRIPTOR_MAX_SWEEP_KEYS + 2];
    int n_overrides;
    char task_assign[DESCRIPTOR_MAX_SWEEP_KEYS + 2][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];
    mimae_config_t *cfg;     /* desc.model */
    run_config_t *run;       /* desc.run */
    reader_t *reader;
    long n_images;           /* training images used */
    int deterministic;
    int G, per_rank, mb, k;  /* global batch, images per rank, micro-batch, micro-batches per rank */
    size_t image_floats;     /* H*W*C */
    mimae_model_t *model;
    sampler_t sampler;
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    /* step buffers */
    int64_t *indices;        /* per_rank */
    float *images;           /* (per_rank, H, W, C) augmented */
    global_step_t step;      /* the gradients of a global batch across ranks */
    /* bookkeeping */
    train_state_t state;
    long total_steps, steps_per_epoch;
    results_t *results;
    char ckpt_dir[DESCRIPTOR_PATH_MAX + 16], results_path[DESCRIPTOR_PATH_MAX + 16];
} run_t;

/* Removes the temporaries of checkpoint writes that never finished (a writer
 * killed mid-write leaves DIR/ckpt-N.h5.tmp-<pid>, as big as a checkpoint).
 * Runs before this run writes anything there. */
static void remove_stale_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "ckpt-", 5) || !strstr(e->d_name, ".h5.tmp-")) continue;
        char path[DESCRIPTOR_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) fprintf(stderr, "mimae_dist: removed %s (an unfinished write)\n", path);
    }
    if (d) closedir(d);
}

/* A config value as the user wrote it: the shortest text that reads back
 * to the same float or double (0.07, not 0.0700000003). */
static void config_value_text(const config_field_t *f, const mimae_config_t *c, char *buf,
                              size_t len)
{
    config_field_format(f, c, buf, len);
    if (f->type != FIELD_FLOAT && f->type != FIELD_DOUBLE) return;
    const double v = config_field_get_number(f, c);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (f->type == FIELD_FLOAT ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            return;
    }
}

/* A results file resumed must be this run's: the same model config. */
static int results_match_config(const results_t *res, const char *path,
                                const mimae_config_t *cfg, char *err, size_t errlen)
{
    const mimae_config_t *stored = results_config(res);
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char a[64], b[64];
        config_value_text(f, stored, a, sizeof a);
        config_value_text(f, cfg, b, sizeof b);
        if (strcmp(a, b) == 0) continue;
        snprintf(err, errlen, "%s: %s.%s is %s in the results file but %s in this run: it "
                 "belongs to another run; move it away or use a fresh run.out_dir", path,
                 f->section, f->key, a, b);
        return -1;
    }
    return 0;
}

/* Sizes of the work: how the global batch splits over ranks and micro-batches. */
static int plan_batches(run_t *r, char *err, size_t errlen)
{
    const int G = r->cfg->global_batch, R = r->ranks;
    if (G % R) {
        snprintf(err, errlen, "train.global_batch = %d is not divisible by the %d ranks: use a "
                 "multiple of %d or another rank count", G, R, R);
        return -1;
    }
    r->G = G;
    r->per_rank = G / R;
    if (r->run->reduction == REDUCTION_AUTO)
        r->deterministic = R <= 8;
    else
        r->deterministic = r->run->reduction == REDUCTION_DETERMINISTIC;
    if (!r->deterministic) {
        if (r->run->micro_batch && r->run->micro_batch != r->per_rank) {
            snprintf(err, errlen, "train.micro_batch = %d: the fast reduction runs each rank's %d "
                     "images as one micro-batch; set 0 or %d", r->run->micro_batch, r->per_rank,
                     r->per_rank);
            return -1;
        }
        r->mb = r->per_rank;
        r->k = 1;
        return 0;
    }
    /* deterministic: M micro-batches of mb images, a power of two, R | M */
    int mb = r->run->micro_batch;
    if (!mb) { /* default: up to 8 micro-batches, so up to 8 ranks can share the work */
        int M = 8;
        while (G % M) M /= 2;
        mb = G / M;
    }
    const int M = G / mb;
    if (G % mb || (M & (M - 1)) || (R & (R - 1)) || M % R) {
        snprintf(err, errlen, "train.reduction = deterministic splits the global batch %d into "
                 "%d micro-batches of %d; that count must be a power of two divisible by the "
                 "%d ranks: use 1, 2, 4 or 8 ranks, set train.micro_batch, or use "
                 "train.reduction = fast", G, M, mb, R);
        return -1;
    }
    r->mb = mb;
    r->k = M / R;
    return 0;
}

static int allocate_buffers(run_t *r)
{
    r->indices = malloc((size_t)r->per_rank * sizeof *r->indices);
    r->images = malloc((size_t)r->per_rank * r->image_floats * sizeof(float));
    if (!r->indices || !r->images) return -1;
    return global_step_init(&r->step, r->model, MPI_COMM_WORLD, r->G, r->per_rank, r->mb,
                            r->deterministic, r->image_floats);
}

static void free_run(run_t *r)
{
    if (r->reader) reader_free(r->reader);
    mimae_model_free(r->model);
    sampler_free(&r->sampler);
    free(r->indices);
    free(r->images);
    global_step_free(&r->step);
    if (r->results) results_free(r->results);
}

static void augment_batch(run_t *r, const uint8_t *raw)
{
    const dataset_info_t *info = reader_info(r->reader);
    augment_params_t aug = augment_defaults();
    for (int i = 0; i < r->per_rank; i++) {
        const uint8_t *src = raw + (size_t)i * r->image_floats;
        float *dst = r->images + (size_t)i * r->image_floats;
        if (r->run->augment)
            augment_image(src, info->h, info->w, info->c, &aug, r->mean, r->std,
                          (uint64_t)r->state.seed, (uint64_t)r->state.epoch,
                          (uint64_t)r->indices[i], dst);
        else
            augment_normalise(src, info->h, info->w, info->c, r->mean, r->std, dst);
    }
}

/* Rank 0 writes a checkpoint and the results; every rank learns whether it
 * worked. */
static int save_progress(run_t *r, int with_checkpoint, char *err, size_t errlen)
{
    int ok = 1;
    if (r->rank == 0) {
        if (with_checkpoint) {
            char path[DESCRIPTOR_PATH_MAX + 64];
            checkpoint_path(path, sizeof path, r->ckpt_dir, r->state.step);
            struct rlimit saved;
            const int armed = fault_arm_checkpoint(0, r->state.step, 3 * sizeof(float) *
                              (r->model->table.total + r->model->q_table.total), &saved);
            ok = checkpoint_save(path, r->model, &r->state, err, errlen) == 0;
            if (armed) fault_disarm(&saved);
            ok = ok && checkpoint_prune(r->ckpt_dir, r->run->keep_checkpoints, err, errlen) == 0;
        }
        ok = ok && results_write(r->results, r->results_path, err, errlen) == 0;
    } else if (with_checkpoint) {
        fault_arm_checkpoint(r->rank, r->state.step, 0, NULL);
    }
    MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (!ok && r->rank) snprintf(err, errlen, "rank 0 could not write the checkpoint/results");
    return ok ? 0 : -1;
}

static void format_duration(char *buf, size_t len, double s)
{
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)s;
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

static void print_progress(const run_t *r, const step_metrics_t *s, double elapsed, long done)
{
    char eta[32];
    format_duration(eta, sizeof eta, elapsed / (double)(done > 0 ? done : 1) *
                                         (double)(r->total_steps - r->state.step));
    const int tty = isatty(STDERR_FILENO);
    if (tty) {
        const int width = 20;
        int filled = (int)(width * (double)r->state.step / (double)r->total_steps);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] ", bar);
    }
    fprintf(stderr, "step %ld/%ld ep %.2f L %.4f rec %.4f max %.4f min %.4f q %.3f lr %.2e "
            "%.0f img/s ETA %s%s", s->step, r->total_steps, s->epoch, s->total, s->rec, s->max,
            s->min, s->q, s->lr, s->images_per_s, eta, tty ? "   " : "\n");
}

/* Reconstructions of the first images of the data set with the final
 * parameters (rank 0, no read in flight). */
static int record_reconstructions(run_t *r, char *err, size_t errlen)
{
    mimae_model_t *m = r->model;
    const dataset_info_t *info = reader_info(r->reader);
    const int K = r->run->recon_samples < r->mb ? r->run->recon_samples : r->mb;
    if (K <= 0) return 0;
    int64_t idx[r->mb];
    for (int i = 0; i < r->mb; i++) idx[i] = i % r->n_images;
    const uint8_t *raw;
    if (reader_start(r->reader, idx, r->mb, err, errlen) ||
        reader_wait(r->reader, &raw, NULL, NULL, err, errlen))
        return -1;
    for (int i = 0; i < r->mb; i++)
        augment_normalise(raw + (size_t)i * r->image_floats, info->h, info->w, info->c, r->mean,
                          r->std, r->images + (size_t)i * r->image_floats);
    mimae_sample_masks(m, (uint64_t)r->state.seed, 0, (const uint64_t *)idx);
    mimae_forward(m, r->images);
    const size_t n = r->image_floats;
    float *buf = malloc((3 * (size_t)K * n + 2 * (size_t)m->dims.L * m->dims.P) * sizeof(float));
    if (!buf) return snprintf(err, errlen, "out of memory for reconstructions"), -1;
    float *orig = buf, *masked = buf + K * n, *recon = buf + 2 * K * n, *scratch = buf + 3 * K * n;
    for (int i = 0; i < K; i++)
        mimae_reconstruct(m, i, 0, r->mean, r->std, orig + i * n, masked + i * n, recon + i * n,
                          scratch);
    int rc = results_set_reconstructions(r->results, r->state.step, orig, masked, recon, K,
                                         info->h, info->w, info->c);
    free(buf);
    if (rc) snprintf(err, errlen, "out of memory storing reconstructions");
    return rc;
}

static int load_descriptor(run_t *r, const char *path, long n_images, char *err, size_t errlen)
{
    return descriptor_load(&r->desc, path, r->overrides, r->n_overrides, n_images, err, errlen);
}

/* The overrides of this run: the user's, then (with --task) the sweep task's
 * values, run.out_dir and run.name, which therefore win. */
static int resolve_overrides(run_t *r, const args_t *a, char *err, size_t errlen)
{
    for (int i = 0; i < a->n_overrides; i++) r->overrides[r->n_overrides++] = a->overrides[i];
    if (load_descriptor(r, a->descriptor, 0, err, errlen)) return -1;
    sweep_t *sweep = malloc(sizeof *sweep);
    if (!sweep) return snprintf(err, errlen, "out of memory"), -1;
    int rc = sweep_parse(&r->desc, sweep, err, errlen);
    if (rc == 0 && a->task >= 0 && sweep->n_keys == 0) {
        /* a task of no sweep would silently run in run.out_dir/task-0000 */
        snprintf(err, errlen, "%s: --task %ld given, but the descriptor has no [sweep] section: "
                 "drop --task to run it as it is, or add a [sweep]", a->descriptor, a->task);
        rc = -1;
    } else if (rc == 0 && a->task < 0 && sweep->n_keys > 0) {
        snprintf(err, errlen, "%s: has a [sweep] of %ld tasks: give --task ID (0..%ld), or "
                 "submit it with `mimae sweep submit`", a->descriptor, sweep->tasks,
                 sweep->tasks - 1);
        rc = -1;
    } else if (rc == 0 && a->task >= 0) {
        int n = sweep_task_assignments(sweep, &r->desc, a->task, r->task_assign);
        if (n < 0) {
            snprintf(err, errlen, "--task %ld: %s has %ld tasks (0..%ld)", a->task, a->descriptor,
                     sweep->tasks, sweep->tasks - 1);
            rc = -1;
        }
        for (int i = 0; i < n; i++) r->overrides[r->n_overrides++] = r->task_assign[i];
    }
    free(sweep);
    return rc;
}

/* Everything before the first step; returns an exit status (EXIT_OK to go on). */
static int setup(run_t *r, const args_t *a, results_env_t *env, char *err, size_t errlen)
{
    /* The descriptor is read twice: first for the data path, then with the
     * data set's size, which the schedule (iterations per epoch) needs. */
    if (resolve_overrides(r, a, err, errlen) || load_descriptor(r, a->descriptor, 0, err, errlen))
        return EXIT_BAD_INPUT;
    r->cfg = &r->desc.model;
    r->run = &r->desc.run;
    if (plan_batches(r, err, errlen)) { /* name the descriptor, as its other messages do */
        const size_t pl = strlen(a->descriptor) + 2, n = strlen(err);
        if (pl + n < errlen) {
            memmove(err + pl, err, n + 1);
            memcpy(err, a->descriptor, pl - 2);
            memcpy(err + pl - 2, ": ", 2);
        }
        return EXIT_BAD_INPUT;
    }
    r->reader = reader_create(r->run->train_data, r->per_rank, err, errlen);
    if (!dist_all_ok(r->reader != NULL, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    const dataset_info_t *info = reader_info(r->reader);
    r->n_images = info->n;
    if (r->run->train_limit > 0 && r->run->train_limit < r->n_images)
        r->n_images = r->run->train_limit;
    if (load_descriptor(r, a->descriptor, r->n_images, err, errlen)) return EXIT_BAD_INPUT;
    if (info->h != r->cfg->img_h || info->w != r->cfg->img_w || info->c != r->cfg->channels) {
        snprintf(err, errlen, "%s: images are %dx%dx%d but the model expects %dx%dx%d: set "
                 "model.img_h/img_w/channels or use another data set", r->run->train_data,
                 info->h, info->w, info->c, r->cfg->img_h, r->cfg->img_w, r->cfg->channels);
        return EXIT_BAD_INPUT;
    }
    if (r->n_images < r->G) {
        snprintf(err, errlen, "%s: %ld training images are fewer than one global batch (%d): "
                 "lower train.global_batch or use more data", r->run->train_data, r->n_images,
                 r->G);
        return EXIT_BAD_INPUT;
    }
    for (int ch = 0; ch < info->c; ch++) {
        r->mean[ch] = (float)info->mean[ch];
        r->std[ch] = (float)info->std[ch];
    }
    r->image_floats = (size_t)info->h * info->w * info->c;
    if (sampler_init(&r->sampler, r->n_images, r->G, (uint64_t)r->run->seed)) {
        snprintf(err, errlen, "out of memory for the data order of %ld images", r->n_images);
        return EXIT_FAILURE_INTERNAL;
    }
    r->steps_per_epoch = sampler_steps_per_epoch(&r->sampler);
    r->total_steps = r->run->epochs * r->steps_per_epoch;
    if (r->run->max_steps > 0 && r->run->max_steps < r->total_steps) r->total_steps = r->run->max_steps;

    r->model = mimae_model_create(r->cfg, r->mb, (uint64_t)r->run->seed, err, errlen);
    if (!r->model) return EXIT_BAD_INPUT;
    if (fault.nan_grad[0] && !fault_gradient(r->model, fault.nan_grad)) {
        snprintf(err, errlen, "MIMAE_FAULT: nan-grad=%s: no such tensor", fault.nan_grad);
        return EXIT_BAD_INPUT;
    }
    if (allocate_buffers(r)) {
        snprintf(err, errlen, "out of memory for the step buffers (global batch %d)", r->G);
        return EXIT_FAILURE_INTERNAL;
    }
    snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", r->run->out_dir);
    snprintf(r->results_path, sizeof r->results_path, "%s/results.h5", r->run->out_dir);
    /* Resume from the newest valid checkpoint, on any rank count. Nothing is
     * written before the checkpoint and the results file have been checked. */
    int ok = 1;
    char path[DESCRIPTOR_PATH_MAX + 64] = "";
    int found = 0;
    if (r->rank == 0 && access(r->ckpt_dir, F_OK) == 0) {
        found = checkpoint_find_latest(r->ckpt_dir, path, sizeof path, err, errlen);
        if (found < 0) ok = 0;
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD));
    r->state = (train_state_t){0, 0, 0, (uint64_t)r->run->seed};
    if (found) {
        ok = checkpoint_load(path, r->model, &r->state, err, errlen) == 0;
        if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
        if (r->state.seed != (uint64_t)r->run->seed) {
            snprintf(err, errlen, "%s: written with train.seed = %llu, the descriptor says %ld: "
                     "use the same seed or a fresh run.out_dir", path,
                     (unsigned long long)r->state.seed, r->run->seed);
            return EXIT_BAD_INPUT;
        }
    }
    if (r->rank == 0) {
        env->ranks = r->ranks;
        env->threads = openblas_get_num_threads();
        if (found && access(r->results_path, F_OK) == 0) {
            r->results = results_load(r->results_path, err, errlen);
            ok = r->results && results_match_config(r->results, r->results_path, r->cfg, err,
                                                    errlen) == 0;
        } else {
            r->results = results_new(r->cfg, env);
            ok = r->results != NULL;
            if (!ok) snprintf(err, errlen, "out of memory for the results");
        }
        if (ok) {
            char text[64];
            results_set_attr(r->results, "descriptor", a->descriptor);
            results_set_attr(r->results, "run.name", r->run->name);
            snprintf(text, sizeof text, "%ld", r->run->seed);
            results_set_attr(r->results, "train.seed", text);
            results_set_attr(r->results, "train.reduction",
                             r->deterministic ? "deterministic" : "fast");
        }
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    if (r->rank == 0) { /* the run directory, with the effective descriptor in it */
        char effective[DESCRIPTOR_PATH_MAX + 32];
        snprintf(effective, sizeof effective, "%s/descriptor.ini", r->run->out_dir);
        descriptor_t *ran = malloc(sizeof *ran); /* what ran: no [sweep] left in it */
        ok = ran != NULL;
        if (ran) {
            *ran = r->desc;
            ran->sweep_count = 0;
            ok = descriptor_make_out_dir(r->ckpt_dir, err, errlen) == 0 &&
                 descriptor_write(ran, effective, err, errlen) == 0;
            free(ran);
        }
        if (ok) remove_stale_temporaries(r->ckpt_dir);
        if (ok && found)
            fprintf(stderr, "mimae_dist: resuming from %s (step %ld)\n", path, r->state.step);
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    return EXIT_OK;
}

/* The indices of the step `state` points at, for this rank. */
static void step_indices(run_t *r, const train_state_t *st, int64_t *out)
{
    sampler_slice(&r->sampler, st->epoch, st->epoch_step, r->rank, r->ranks, out);
}

static void advance(train_state_t *st, long steps_per_epoch)
{
    st->step++;
    if (++st->epoch_step == steps_per_epoch) {
        st->epoch++;
        st->epoch_step = 0;
    }
}

/* Evaluates the model (collective); rank 0 records the metrics in the
 * results with the checkpoint they came from and prints them. */
static int record_evaluation(const mimae_model_t *m, const descriptor_t *d, results_t *results,
                             const char *ckpt, long step, int rank, char *err, size_t errlen)
{
    eval_results_t ev;
    if (rank == 0) fprintf(stderr, "mimae_dist: evaluating %s\n", ckpt);
    if (evaluate_model(m, d, &ev, err, errlen)) return -1;
    if (rank != 0) return 0;
    const struct { int have; const char *name; double value; } metric[] = {
        {ev.have_probe, "linear_probe_top1", ev.probe_top1},
        {ev.have_probe, "linear_probe_lambda", ev.probe_lambda},
        {ev.have_knn, "knn_top1", ev.knn_top1},
        {ev.have_mi, "mi_infonce_bound", ev.infonce_bound},
        {ev.have_mi, "mi_club", ev.club},
        {ev.have_mi, "mi_gaussian", ev.gaussian_mi},
        {ev.have_finetune, "finetune_top1", ev.finetune_top1},
    };
    fprintf(stderr, "mimae_dist: eval at step %ld:", step);
    for (size_t i = 0; i < sizeof metric / sizeof metric[0]; i++) {
        if (!metric[i].have) continue;
        if (results_set_eval(results, metric[i].name, metric[i].value, ckpt, step))
            return snprintf(err, errlen, "out of memory recording %s", metric[i].name), -1;
        fprintf(stderr, " %s %.4f", metric[i].name, metric[i].value);
    }
    fprintf(stderr, "\n");
    return 0;
}

static int run_evaluation(run_t *r, char *err, size_t errlen)
{
    char ckpt[DESCRIPTOR_PATH_MAX + 64];
    checkpoint_path(ckpt, sizeof ckpt, r->ckpt_dir, r->state.step);
    return record_evaluation(r->model, &r->desc, r->results, ckpt, r->state.step, r->rank, err,
                             errlen);
}

static int evaluation_due(const run_t *r)
{
    const int every = r->run->eval_every_epochs;
    return every > 0 && r->state.epoch_step == 0 && r->state.epoch % every == 0 &&
           r->state.step < r->total_steps;
}

/* Before a checkpoint: the state to be saved must be finite (an update can
 * overflow with finite gradients). All ranks agree; on failure the results
 * are saved, the previous checkpoint stays the newest, and the status is
 * EXIT_NONFINITE. */
static int state_guard(run_t *r, char *err, size_t errlen)
{
    int bad = mimae_check_state(r->model, err, errlen) != 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (!bad) return EXIT_OK;
    if (!err[0]) snprintf(err, errlen, "non-finite training state on another rank");
    char save_err[ERR_LEN];
    if (save_progress(r, 0, save_err, sizeof save_err) && r->rank == 0)
        fprintf(stderr, "mimae_dist: %s\n", save_err);
    return EXIT_NONFINITE;
}

static int train(run_t *r, char *err, size_t errlen)
{
    if (r->state.step >= r->total_steps) {
        if (r->rank == 0) fprintf(stderr, "mimae_dist: already at step %ld of %ld\n",
                                  r->state.step, r->total_steps);
        return save_progress(r, 0, err, errlen) ? EXIT_FAILURE_INTERNAL : EXIT_OK;
    }
    char blas_advice[256]; /* here, not earlier: a run that cannot start says one line */
    if (r->rank == 0 && blas_kernel_mismatch(blas_advice, sizeof blas_advice))
        fprintf(stderr, "mimae_dist: warning: %s\n", blas_advice);
    const double t_start = MPI_Wtime();
    const long first_step = r->state.step;
    int pending_checkpoint = 0;
    step_indices(r, &r->state, r->indices);
    if (reader_start(r->reader, r->indices, r->per_rank, err, errlen)) return EXIT_FAILURE_INTERNAL;
    while (r->state.step < r->total_steps) {
        const uint8_t *raw;
        double wait_s = 0.0;
        const double t0 = MPI_Wtime();
        int ok = reader_wait(r->reader, &raw, NULL, &wait_s, err, errlen) == 0;
        if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
        /* No read in flight: HDF5 writes are safe here. */
        if (pending_checkpoint && state_guard(r, err, errlen)) return EXIT_NONFINITE;
        if (pending_checkpoint && save_progress(r, 1, err, errlen)) return EXIT_FAILURE_INTERNAL;
        if (pending_checkpoint && evaluation_due(r) && r->state.step > first_step) {
            if (run_evaluation(r, err, errlen)) return EXIT_BAD_INPUT;
            if (save_progress(r, 0, err, errlen)) return EXIT_FAILURE_INTERNAL;
        }
        pending_checkpoint = 0;
        if (fault.kill_rank == r->rank && !fault.at_checkpoint && r->state.step == fault.step)
            raise(SIGKILL); /* test hook, see fault_t */
        int stop = stop_requested;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
        if (stop) {
            if (r->rank == 0) fprintf(stderr, "\nmimae_dist: stop requested; writing a checkpoint at step %ld\n", r->state.step);
            if (state_guard(r, err, errlen)) return EXIT_NONFINITE;
            return save_progress(r, 1, err, errlen) ? EXIT_FAILURE_INTERNAL : EXIT_REQUEUE;
        }
        augment_batch(r, raw); /* uses r->indices of this step */
        train_state_t next = r->state;
        advance(&next, r->steps_per_epoch);

        mimae_losses_t loss;
        global_step_run(&r->step, r->images, r->indices, (uint64_t)r->state.seed,
                        (uint64_t)r->state.epoch, &loss, NULL);
        double terms[4] = {loss.rec, loss.max, loss.min, loss.q};
        dist_sum_doubles(terms, 4, MPI_COMM_WORLD);
        loss.rec = terms[0], loss.max = terms[1], loss.min = terms[2], loss.q = terms[3];
        mimae_losses_total(r->cfg, &loss);
        if (fault.nan_grad[0] && r->state.step == fault.step) /* test hook, see fault_t */
            fault_gradient(r->model, fault.nan_grad)[0] = NAN;
        const double gnorm = grad_norm(r->model->grad_mem, r->model->table.total);
        if (mimae_check_finite(r->model, &loss, gnorm, err, errlen)) {
            char save_err[ERR_LEN]; /* keep the history; the last checkpoint stays the newest */
            if (save_progress(r, 0, save_err, sizeof save_err) && r->rank == 0)
                fprintf(stderr, "mimae_dist: %s\n", save_err);
            return EXIT_NONFINITE;
        }
        const float lr = mimae_apply_update(r->model);

        /* Start reading the next step's images before the bookkeeping. */
        if (next.step < r->total_steps) {
            step_indices(r, &next, r->indices);
            if (reader_start(r->reader, r->indices, r->per_rank, err, errlen)) return EXIT_FAILURE_INTERNAL;
        }
        const double dt = MPI_Wtime() - t0;
        step_metrics_t s = {next.step, (double)r->state.epoch +
                            (double)(r->state.epoch_step + 1) / (double)r->steps_per_epoch,
                            (double)next.step * r->G * r->cfg->num_masks, loss.rec, loss.max,
                            loss.min, loss.q, loss.total, lr, gnorm, r->G / dt, wait_s};
        r->state = next;
        if (r->rank == 0) {
            results_append_step(r->results, &s);
            if (r->state.step % r->run->log_every == 0 || r->state.step == r->total_steps)
                print_progress(r, &s, MPI_Wtime() - t_start, r->state.step - first_step);
        }
        pending_checkpoint = (r->run->checkpoint_every > 0 &&
                              r->state.step % r->run->checkpoint_every == 0) ||
                             evaluation_due(r);
    }
    if (r->rank == 0 && isatty(STDERR_FILENO)) fprintf(stderr, "\n");
    int ok = 1;
    if (r->rank == 0) ok = record_reconstructions(r, err, errlen) == 0;
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_FAILURE_INTERNAL;
    if (state_guard(r, err, errlen)) return EXIT_NONFINITE;
    if (save_progress(r, 1, err, errlen)) return EXIT_FAILURE_INTERNAL;
    if (run_evaluation(r, err, errlen)) return EXIT_BAD_INPUT;
    return save_progress(r, 0, err, errlen) ? EXIT_FAILURE_INTERNAL : EXIT_OK;
}

/* `mimae_dist eval CHECKPOINT`: the run directory holds descriptor.ini
 * (what the run used) and results.h5, where the metrics are added. */
static int evaluate_checkpoint(run_t *r, const args_t *a, results_env_t *env, char *err,
                               size_t errlen)
{
    char run_dir[DESCRIPTOR_PATH_MAX], desc_path[DESCRIPTOR_PATH_MAX + 32];
    snprintf(run_dir, sizeof run_dir, "%s", a->eval_checkpoint);
    for (int up = 0; up < 2; up++) { /* RUN_DIR/checkpoints/ckpt-N.h5 -> RUN_DIR */
        char *slash = strrchr(run_dir, '/');
        if (slash) *slash = 0;
        else snprintf(run_dir, sizeof run_dir, ".");
    }
    snprintf(desc_path, sizeof desc_path, "%s/descriptor.ini", run_dir);
    for (int i = 0; i < a->n_overrides; i++) r->overrides[r->n_overrides++] = a->overrides[i];
    if (load_descriptor(r, desc_path, 0, err, errlen)) return EXIT_BAD_INPUT;
    mimae_config_t cfg;
    if (checkpoint_read_config(a->eval_checkpoint, &cfg, err, errlen)) return EXIT_BAD_INPUT;
    r->desc.model = cfg;
    const int batch = cfg.global_batch < 32 ? cfg.global_batch : 32;
    r->model = mimae_model_create(&cfg, batch, 0, err, errlen);
    if (!r->model) return EXIT_BAD_INPUT;
    train_state_t st;
    if (!dist_all_ok(checkpoint_load(a->eval_checkpoint, r->model, &st, err, errlen) == 0,
                     MPI_COMM_WORLD))
        return EXIT_BAD_INPUT;
    snprintf(r->results_path, sizeof r->results_path, "%s/results.h5", run_dir);
    int ok = 1;
    if (r->rank == 0) {
        env->ranks = r->ranks;
        env->threads = openblas_get_num_threads();
        r->results = access(r->results_path, F_OK) == 0
                         ? results_load(r->results_path, err, errlen)
                         : results_new(&cfg, env);
        ok = r->results != NULL;
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    if (record_evaluation(r->model, &r->desc, r->results, a->eval_checkpoint, st.step, r->rank,
                          err, errlen))
        return EXIT_BAD_INPUT;
    if (r->rank == 0) ok = results_write(r->results, r->results_path, err, errlen) == 0;
    return dist_all_ok(ok, MPI_COMM_WORLD) ? EXIT_OK : EXIT_FAILURE_INTERNAL;
}

int main(int argc, char **argv)
{
    /* First of all: Slurm or a user may signal a job in its first moments
     * (startup, MPI_Init), and the default action would kill the rank
     * instead of stopping the job at the first step boundary with a
     * checkpoint (exit 3). Open MPI 4.1's MPI_Init installs handlers for
     * SIGSEGV, SIGBUS and the like only and leaves ours for SIGTERM/SIGUSR1
     * in place (sigaction after MPI_Init, under mpirun and as a singleton);
     * they are installed again after MPI_Init in case another MPI library
     * does take them. test_faults' *_before_mpi_init cases signal every rank
     * just before MPI_Init. */
    install_signal_handlers();
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
    /* Library versions, host and git commit: detected before MPI_Init
     * because finding the commit forks `git`. */
    results_env_t env;
    results_env_detect(&env);
    fault_raise_before_init(); /* test hook, see fault_t */
    MPI_CHECK(MPI_Init(&argc, &argv));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    install_signal_handlers(); /* again: see above */
    run_t r;
    memset(&r, 0, sizeof r);
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &r.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &r.ranks));
    char err[ERR_LEN] = "";
    args_t args;
    int status = parse_args(argc, argv, &args, err, sizeof err) || fault_parse(err, sizeof err)
                     ? EXIT_BAD_INPUT : EXIT_OK;
    if (status == EXIT_OK && args.eval_checkpoint) {
        status = evaluate_checkpoint(&r, &args, &env, err, sizeof err);
    } else if (status == EXIT_OK) {
        status = setup(&r, &args, &env, err, sizeof err);
        if (status == EXIT_OK) status = train(&r, err, sizeof err);
    }
    /* Errors are usually the same on every rank (a bad descriptor): the lowest
     * rank that has a message says it, once. */
    int speaker = err[0] && status != EXIT_OK && status != EXIT_REQUEUE ? r.rank : r.ranks;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &speaker, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (speaker == r.rank) fprintf(stderr, "mimae_dist: %s\n", err);
    free_run(&r);
    MPI_Finalize();
    return status;
}
