/* mimae_dist: MPI data-parallel MI-MAE pre-training.
 *
 *   mpirun -n 64 mimae_dist exp.ini [--set section.key=value]... [--task ID]
 *
 * Every rank reads its slice of each global batch from the HDF5 data set and
 * the ranks run one training step together (dist/train_step.h). Rank 0
 * writes checkpoints and the results file and prints progress.
 *
 * This file reads top to bottom as the run: the descriptor (setup), the data
 * (reader, augmentation), the step loop (train), the log and the checkpoint
 * (save_progress). The rest lives in run/: the command line (dist_args),
 * stop signals, evaluation (eval_record, evaluate), the progress line and
 * the fault-injection hooks of the tests (faults).
 *
 * Exit status: 0 done; 2 bad input (one line says what; also: run.out_dir
 * in use by another job); 3 stopped by SIGUSR1/SIGTERM/SIGINT after saving
 * everything (RUN/stopped says so; requeue to resume); 4 a
 * non-finite loss (the last good checkpoint is kept); 1 anything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>

#include "core/data/augment.h"
#include "core/data/sampler.h"
#include "core/kernels/bf16_matmul.h"
#include "core/kernels/blas_check.h"
#include "core/optim/update.h"
#include "core/vit/reconstruct.h"
#include "dist/collectives.h"
#include "dist/mpi_check.h"
#include "dist/train_step.h"
#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "io/checkpoint.h"
#include "io/io_error.h"
#include "io/reader.h"
#include "io/results.h"
#include "io/text_escape.h"
#include "run/data_stage.h"
#include "run/eval_record.h"
#include "run/exit_status.h"
#include "run/faults.h"
#include "run/mpi_launch.h"
#include "run/dist_args.h"
#include "run/progress.h"
#include "run/run_dir.h"
#include "run/run_history.h"
#include "run/stop_signal.h"

#define ERR_LEN 4096

/* ---- the run ---- */
typedef struct {
    int rank, ranks;
    descriptor_t desc;
    /* the user's --set overrides, then a sweep task's assignments */
    const char *overrides[DIST_ARGS_MAX_OVERRIDES + SWEEP_MAX_ASSIGNMENTS];
    int n_overrides;
    char task_assign[SWEEP_MAX_ASSIGNMENTS][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];
    char arm[DESCRIPTOR_ARM_NAME_MAX + 1]; /* the task's arm ("": none) */
    mimae_config_t *cfg;     /* desc.model */
    run_config_t *run;       /* desc.run */
    reader_t *reader;
    long n_images;           /* training images used */
    step_plan_t plan;        /* the global batch over ranks and micro-batches */
    size_t image_floats;     /* the model's img_h * img_w * channels */
    size_t image_bytes;      /* a stored image's H*W*C (at least the model's) */
    mimae_model_t *model;
    sampler_t sampler;       /* data.sampling = global */
    shard_sampler_t shard_sampler; /* data.sampling = shard-local */
    int shard_local;
    char train_path[DESCRIPTOR_PATH_MAX + 64]; /* data.train, or its staged copy */
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    /* step buffers */
    int64_t *indices;        /* per_rank */
    float *images;           /* (per_rank, H, W, C) augmented */
    train_step_t step;       /* one training step across the ranks */
    /* bookkeeping */
    train_state_t state;
    long total_steps, steps_per_epoch;
    results_t *results;
    char ckpt_dir[DESCRIPTOR_PATH_MAX + 16], results_path[DESCRIPTOR_PATH_MAX + 16];
    run_lock_t lock;         /* rank 0: this job owns run.out_dir */
    char bf16_isa[32];            /* train.precision = bf16: the ISA oneDNN uses */
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
        if (unlink(path) == 0) text_eprintf("mimae_dist: removed %s (an unfinished write)", path);
    }
    if (d) closedir(d);
}

static int allocate_buffers(run_t *r, char *err, size_t errlen)
{
    r->indices = malloc((size_t)r->plan.per_rank * sizeof *r->indices);
    r->images = malloc((size_t)r->plan.per_rank * r->image_floats * sizeof(float));
    if (!r->indices || !r->images)
        return snprintf(err, errlen, "out of memory for the step buffers (global batch %d)",
                        r->plan.global_batch), -1;
    return train_step_init(&r->step, r->model, MPI_COMM_WORLD, &r->plan, err, errlen);
}

/* Advice when the deterministic reduction must recompute each micro-batch's
 * forward (train.memory_budget_gb too small to keep every one's activations):
 * a third more arithmetic a step. */
static void warn_recompute(const run_t *r)
{
    const int k = r->plan.micro_batches;
    if (k < 2 || r->step.keeps_activations) return;
    const double gib = (double)mimae_model_activation_bytes(r->model) / (1u << 30);
    fprintf(stderr, "mimae_dist: warning: %d micro-batches of %d images a rank: recomputing each "
            "forward before its backward, since train.memory_budget_gb = %g does not hold the "
            "activations of %d micro-batches (%.2f GiB each); raise it to train faster\n", k,
            r->plan.micro_batch, r->run->memory_budget_gb, k, gib);
}

static void free_run(run_t *r)
{
    if (r->reader) reader_free(r->reader);
    mimae_model_free(r->model);
    sampler_free(&r->sampler);
    shard_sampler_free(&r->shard_sampler);
    free(r->indices);
    free(r->images);
    train_step_free(&r->step);
    if (r->results) results_free(r->results);
    run_lock_release(&r->lock);
}

static void augment_batch(run_t *r, const uint8_t *raw)
{
    const dataset_info_t *info = reader_info(r->reader);
    augment_params_t aug = augment_defaults();
    const int oh = r->cfg->img_h, ow = r->cfg->img_w;
    for (int i = 0; i < r->plan.per_rank; i++) {
        const uint8_t *src = raw + (size_t)i * r->image_bytes;
        float *dst = r->images + (size_t)i * r->image_floats;
        if (r->run->augment)
            augment_image(src, info->h, info->w, info->c, oh, ow, &aug, r->mean, r->std,
                          (uint64_t)r->state.seed, (uint64_t)r->state.epoch,
                          (uint64_t)r->indices[i], dst);
        else
            augment_centre(src, info->h, info->w, info->c, oh, ow, r->mean, r->std, dst);
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
            const int armed = faults_arm_checkpoint(0, r->state.step, 3 * sizeof(float) *
                              (r->model->table.total + r->model->q_table.total), &saved);
            ok = checkpoint_save(path, r->model, &r->state, err, errlen) == 0;
            if (armed) faults_disarm(&saved);
            ok = ok && checkpoint_prune(r->ckpt_dir, r->run->keep_checkpoints, r->cfg,
                                          &r->state, err, errlen) == 0;
        }
        ok = ok && results_write(r->results, r->results_path, err, errlen) == 0;
    } else if (with_checkpoint) {
        faults_arm_checkpoint(r->rank, r->state.step, 0, NULL);
    }
    MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (!ok && r->rank) snprintf(err, errlen, "rank 0 could not write the checkpoint/results");
    return ok ? 0 : -1;
}

/* Reconstructions of the first images of the data set with the final
 * parameters (rank 0, no read in flight). */
static int record_reconstructions(run_t *r, char *err, size_t errlen)
{
    mimae_model_t *m = r->model;
    const dataset_info_t *info = reader_info(r->reader);
    /* one forward of the images the model holds (a micro-batch, or all the rank's) */
    const int B = m->batch;
    const int K = r->run->recon_samples < B ? r->run->recon_samples : B;
    if (K <= 0) return 0;
    int64_t idx[B];
    /* the first images, of shard 0 (rank 0's own) when the ranks read their shards */
    const long first = r->shard_local ? reader_shard_images(r->reader)[0] : r->n_images;
    for (int i = 0; i < B; i++) idx[i] = i % first;
    const uint8_t *raw;
    if (reader_start(r->reader, idx, B, err, errlen) ||
        reader_wait(r->reader, &raw, NULL, NULL, err, errlen))
        return -1;
    for (int i = 0; i < B; i++)
        augment_centre(raw + (size_t)i * r->image_bytes, info->h, info->w, info->c,
                       r->cfg->img_h, r->cfg->img_w, r->mean, r->std,
                       r->images + (size_t)i * r->image_floats);
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
                                         r->cfg->img_h, r->cfg->img_w, info->c);
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
static int resolve_overrides(run_t *r, const dist_args_t *a, char *err, size_t errlen)
{
    for (int i = 0; i < a->n_overrides; i++) r->overrides[r->n_overrides++] = a->overrides[i];
    if (load_descriptor(r, a->descriptor, 0, err, errlen)) return -1;
    sweep_t *sweep = malloc(sizeof *sweep);
    if (!sweep) return snprintf(err, errlen, "out of memory"), -1;
    int rc = sweep_parse(&r->desc, sweep, err, errlen);
    if (rc == 0) rc = sweep_check_overrides(sweep, &r->desc, r->overrides, r->n_overrides, err,
                                            errlen);
    if (rc == 0 && a->task >= 0 && !sweep_expands(sweep)) {
        /* a task of no sweep would silently run in run.out_dir/task-0000 */
        snprintf(err, errlen, "%s: --task %ld given, but the descriptor has no [sweep] section: "
                 "drop --task to run it as it is, or add a [sweep]", a->descriptor, a->task);
        rc = -1;
    } else if (rc == 0 && a->task < 0 && sweep_expands(sweep)) {
        snprintf(err, errlen, "%s: has a %s of %ld tasks: give --task ID (0..%ld), or "
                 "submit it with `mimae sweep submit`", a->descriptor,
                 sweep->n_arms ? "sweep of arms" : "[sweep]", sweep->tasks, sweep->tasks - 1);
        rc = -1;
    } else if (rc == 0 && a->task >= 0) {
        int n = sweep_task_assignments(sweep, &r->desc, a->task, r->task_assign);
        if (n < 0) {
            snprintf(err, errlen, "--task %ld: %s has %ld tasks (0..%ld)", a->task, a->descriptor,
                     sweep->tasks, sweep->tasks - 1);
            rc = -1;
        }
        for (int i = 0; i < n; i++) r->overrides[r->n_overrides++] = r->task_assign[i];
        const int arm = n < 0 ? -1 : sweep_arm_index(sweep, a->task);
        if (arm >= 0) snprintf(r->arm, sizeof r->arm, "%s", r->desc.arms[arm].name);
    }
    free(sweep);
    return rc;
}

/* "<prefix>: <err>", when it fits: names the descriptor in messages about its
 * keys that do not say which file they came from. */
static void prefix_message(char *err, size_t errlen, const char *prefix)
{
    const size_t pl = strlen(prefix) + 2, n = strlen(err);
    if (pl + n >= errlen) return;
    memmove(err + pl, err, n + 1);
    memcpy(err, prefix, pl - 2);
    memcpy(err + pl - 2, ": ", 2);
}

/* Makes the results agree with the checkpoint resumed from (rank 0), and
 * says what that changed. */
static int reconcile_results(run_t *r, char *err, size_t errlen)
{
    results_resume_t w;
    if (results_resume_at(r->results, r->state.step, &w))
        return snprintf(err, errlen, "out of memory reconciling %s", r->results_path), -1;
    if (w.dropped_steps || w.dropped_evals)
        fprintf(stderr, "mimae_dist: %s: dropped %ld training rows and %ld evaluations after "
                "step %ld (the checkpoint resumed from): they are redone\n", r->results_path,
                w.dropped_steps, w.dropped_evals, r->state.step);
    if (w.missing)
        fprintf(stderr, "mimae_dist: %s: no training rows for %ld steps between %ld and %ld "
                "(lost with an earlier failed write): recorded as NaN rows\n", r->results_path,
                w.missing, w.missing_first, w.missing_last);
    return 0;
}

/* What the run is, as its results' root attributes (rank 0): status
 * running from this start on; sweep.arm only for a task of arms. 0, or -1
 * out of memory. */
static int record_run_attributes(run_t *r, const char *descriptor)
{
    char seed[32], epochs[32];
    snprintf(seed, sizeof seed, "%ld", r->run->seed);
    snprintf(epochs, sizeof epochs, "%ld", r->run->epochs); /* resolved from view_epochs */
    const char *const attrs[][2] = {
        {"descriptor", descriptor},
        {"run.name", r->run->name},
        {"train.seed", seed},
        {"train.reduction", r->plan.deterministic ? "deterministic" : "fast"},
        {"train.precision", r->plan.bf16 ? "bf16" : "f32"},
        {"train.epochs", epochs},
        {"sweep.arm", r->arm},
        {"data.sampling", r->shard_local ? "shard-local" : "global"},
        {"data.stage_dir", r->run->stage_dir},
        {RESULTS_STATUS, RESULTS_STATUS_RUNNING},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (attrs[i][1][0] && results_set_attr(r->results, attrs[i][0], attrs[i][1])) return -1;
    return 0;
}

/* The training data: staged to data.stage_dir first when set, opened whole
 * (global sampling) or only this rank's shards (shard-local), and the
 * images an epoch uses (r->n_images: data.train_limit, or what the ranks'
 * shards fill in whole steps). An exit status. */
static int open_training_data(run_t *r, const char *descriptor, char *err, size_t errlen)
{
    const run_config_t *run = r->run;
    r->shard_local = run->sampling == SAMPLING_SHARD_LOCAL;
    const char *refusal = NULL;
    if (run->stage_dir[0] && !r->shard_local)
        refusal = "data.stage_dir is set with data.sampling = global, where every rank reads "
                  "every shard: set data.sampling = shard-local, or leave data.stage_dir empty";
    else if (r->shard_local && run->train_limit > 0)
        refusal = "data.train_limit needs data.sampling = global (shard-local reads whole "
                  "shards): leave data.train_limit at 0, or sample globally";
    if (refusal) {
        snprintf(err, errlen, "%s: %s", descriptor, refusal);
        return EXIT_BAD_INPUT;
    }
    snprintf(r->train_path, sizeof r->train_path, "%s", run->train_data);
    if (run->stage_dir[0]) {
        const int st = data_stage(run->train_data, run->stage_dir, r->rank, r->ranks,
                                  r->train_path, sizeof r->train_path, err, errlen);
        if (st != EXIT_OK) return st;
        if (r->rank == 0)
            text_eprintf("mimae_dist: training from %s (data.stage_dir)", r->train_path);
    }
    r->reader = r->shard_local ? reader_create_shards(r->train_path, r->plan.per_rank, r->rank,
                                                      r->ranks, err, errlen)
                               : reader_create(r->train_path, r->plan.per_rank, err, errlen);
    if (!dist_all_ok(r->reader != NULL, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    const dataset_info_t *info = reader_info(r->reader);
    r->n_images = info->n;
    if (run->train_limit > 0 && run->train_limit < r->n_images) r->n_images = run->train_limit;
    if (!r->shard_local) return EXIT_OK;
    if (!info->shards) {
        snprintf(err, errlen, "%s: data.sampling = shard-local needs a sharded data set: import it "
                 "with --shards K (a multiple of the ranks), or sample globally", r->train_path);
        return EXIT_BAD_INPUT;
    }
    if (shard_sampler_init(&r->shard_sampler, reader_shard_images(r->reader), info->shards,
                           r->rank, r->ranks, r->plan.per_rank, (uint64_t)run->seed)) {
        snprintf(err, errlen, "%s: the %d shards give some of the %d ranks fewer images than "
                 "their share of one global batch (%d): lower train.global_batch or use more "
                 "data", r->train_path, info->shards, r->ranks, r->plan.per_rank);
        return EXIT_BAD_INPUT;
    }
    /* whole steps of every rank: the schedule counts these */
    r->n_images = r->shard_sampler.steps * r->plan.global_batch;
    return EXIT_OK;
}

/* Everything before the first step; returns an exit status (EXIT_OK to go on). */
static int setup(run_t *r, const dist_args_t *a, results_env_t *env, char *err, size_t errlen)
{
    /* The descriptor is read twice: first for the data path, then with the
     * data set's size, which the schedule (iterations per epoch) needs. */
    if (resolve_overrides(r, a, err, errlen) || load_descriptor(r, a->descriptor, 0, err, errlen))
        return EXIT_BAD_INPUT;
    r->cfg = &r->desc.model;
    r->run = &r->desc.run;
    _Static_assert(REDUCTION_DETERMINISTIC == (int)STEP_DETERMINISTIC &&
                   REDUCTION_FAST == (int)STEP_FAST && REDUCTION_AUTO == (int)STEP_AUTO,
                   "train.reduction's values are dist/train_step.h's");
    if (step_plan_make(&r->plan, r->cfg->global_batch, r->ranks,
                       (step_reduction_t)r->run->reduction, r->run->micro_batch, err, errlen)) {
        prefix_message(err, errlen, a->descriptor); /* as its other messages do */
        return EXIT_BAD_INPUT;
    }
    /* bf16 needs the CPU's bf16 instructions: refused before anything is read or written */
    r->plan.bf16 = r->run->precision == PRECISION_BF16;
    if (r->plan.bf16 &&
        !dist_all_ok(bf16_cpu_check(r->bf16_isa, sizeof r->bf16_isa, err, errlen) == 0,
                     MPI_COMM_WORLD)) {
        if (!err[0]) snprintf(err, errlen, "another rank's CPU has no bf16 instructions");
        prefix_message(err, errlen, a->descriptor);
        return EXIT_BAD_INPUT;
    }
    const int status = open_training_data(r, a->descriptor, err, errlen);
    if (status != EXIT_OK) return status;
    const dataset_info_t *info = reader_info(r->reader);
    if (load_descriptor(r, a->descriptor, r->n_images, err, errlen)) return EXIT_BAD_INPUT;
    /* images stored larger than the model's are cropped to it (augment.h) */
    if (info->h < r->cfg->img_h || info->w < r->cfg->img_w || info->c != r->cfg->channels) {
        snprintf(err, errlen, "%s: images are %dx%dx%d but the model expects %dx%dx%d (or larger "
                 "images of its channels, which are cropped): set model.img_h/img_w/channels or "
                 "use another data set", r->run->train_data, info->h, info->w, info->c,
                 r->cfg->img_h, r->cfg->img_w, r->cfg->channels);
        return EXIT_BAD_INPUT;
    }
    if (r->n_images < r->plan.global_batch) {
        snprintf(err, errlen, "%s: %ld training images are fewer than one global batch (%d): "
                 "lower train.global_batch or use more data", r->run->train_data, r->n_images,
                 r->plan.global_batch);
        return EXIT_BAD_INPUT;
    }
    for (int ch = 0; ch < info->c; ch++) {
        r->mean[ch] = (float)info->mean[ch];
        r->std[ch] = (float)info->std[ch];
    }
    r->image_floats = (size_t)r->cfg->img_h * r->cfg->img_w * info->c;
    r->image_bytes = (size_t)info->h * info->w * info->c;
    if (!r->shard_local &&
        sampler_init(&r->sampler, r->n_images, r->plan.global_batch, (uint64_t)r->run->seed)) {
        snprintf(err, errlen, "out of memory for the data order of %ld images", r->n_images);
        return EXIT_FAILURE_INTERNAL;
    }
    r->steps_per_epoch = r->shard_local ? r->shard_sampler.steps
                                        : sampler_steps_per_epoch(&r->sampler);
    r->total_steps = r->run->epochs * r->steps_per_epoch;
    if (r->run->max_steps > 0 && r->run->max_steps < r->total_steps) r->total_steps = r->run->max_steps;

    r->model = mimae_model_create(r->cfg, r->plan.micro_batch, (uint64_t)r->run->seed, err, errlen);
    if (!r->model) return EXIT_BAD_INPUT;
    r->plan.memory_budget = (size_t)(r->run->memory_budget_gb * (double)(1ull << 30));
    if (allocate_buffers(r, err, errlen)) return EXIT_FAILURE_INTERNAL;
    if (faults_attach(&r->step, r->model, err, errlen)) return EXIT_BAD_INPUT;
    snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", r->run->out_dir);
    snprintf(r->results_path, sizeof r->results_path, "%s/" RESULTS_FILE_NAME, r->run->out_dir);
    /* What the evaluations will need is checked now, not after training. */
    const eval_config_t ecfg = eval_config_of(r->run);
    if (!dist_all_ok(evaluate_check(r->cfg, &ecfg, r->ranks, err, errlen) == 0, MPI_COMM_WORLD)) {
        prefix_message(err, errlen, a->descriptor);
        return EXIT_BAD_INPUT;
    }
    /* The run directory is this job's before anything in it is read or
     * written; another job holding it: exit 2. */
    const int lock_status = run_lock_take(&r->lock, r->run->out_dir, r->rank, err, errlen);
    if (lock_status != EXIT_OK) return lock_status;
    const int outputs_ok = r->rank != 0 || run_dir_check_outputs(r->run->out_dir, err, errlen) == 0;
    if (!dist_all_ok(outputs_ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
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
        /* the data order picks up at (epoch, epoch_step): a position past the
         * end of this run's epoch would index past the order */
        if (r->state.epoch_step >= r->steps_per_epoch) {
            snprintf(err, errlen, "%s: written %ld steps into an epoch, but an epoch has %ld steps "
                     "now (data.train, data.train_limit, data.sampling or the rank count changed "
                     "since): resume with what it was trained with, or use a fresh run.out_dir",
                     path, r->state.epoch_step, r->steps_per_epoch);
            return EXIT_BAD_INPUT;
        }
    }
    if (r->rank == 0) {
        env->ranks = r->ranks;
        env->threads = openblas_get_num_threads();
        snprintf(env->onednn_isa, sizeof env->onednn_isa, "%s", r->plan.bf16 ? r->bf16_isa : "");
        if (found && access(r->results_path, F_OK) == 0) {
            r->results = results_load(r->results_path, err, errlen);
            ok = r->results &&
                 results_check_config(r->results, r->results_path, r->cfg, "this run",
                                      "it belongs to another run; move it away or use a fresh "
                                      "run.out_dir", err, errlen) == 0;
        } else {
            r->results = results_new(r->cfg, env);
            ok = r->results != NULL;
            if (!ok) snprintf(err, errlen, "out of memory for the results");
        }
        if (ok && found) ok = reconcile_results(r, err, errlen) == 0;
        if (ok) {
            char history_note[2 * DESCRIPTOR_PATH_MAX];
            ok = record_run_attributes(r, a->descriptor) == 0;
            if (!ok) snprintf(err, errlen, "out of memory for the results");
            const int changed = !ok ? 0 : run_history_record(r->results, r->state.step, r->run,
                                                             info->n, history_note,
                                                             sizeof history_note);
            if (changed > 0) fprintf(stderr, "mimae_dist: %s\n", history_note);
            if (changed < 0) snprintf(err, errlen, "%s", history_note), ok = 0;
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
            descriptor_as_run(ran);
            ok = descriptor_make_run_dir(r->run->out_dir, "checkpoints", err, errlen) == 0 &&
                 descriptor_write(ran, effective, err, errlen) == 0;
            free(ran);
        }
        if (ok) remove_stale_temporaries(r->ckpt_dir);
        ok = ok && run_lock_record_holder(&r->lock, err, errlen) == 0 &&
             run_stopped_clear(r->run->out_dir, err, errlen) == 0;
        /* a file left by an earlier start may say finished: from now on it
         * says running (sweep submit resubmits what is not finished) */
        if (ok && access(r->results_path, F_OK) == 0)
            ok = results_write(r->results, r->results_path, err, errlen) == 0;
        if (ok && found)
            text_eprintf("mimae_dist: resuming from %s (step %ld)", path, r->state.step);
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_BAD_INPUT;
    return EXIT_OK;
}

/* The exit status of a failed read, the same on every rank: the data set
 * changed under the run (on any rank) is a failure of the run, exit 1 with
 * the last checkpoint intact; any other read error is bad input. */
static int read_failure_status(int read)
{
    int changed = read == IO_CHANGED;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &changed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return changed ? EXIT_FAILURE_INTERNAL : EXIT_BAD_INPUT;
}

/* The indices of the step `state` points at, for this rank. */
static void step_indices(run_t *r, const train_state_t *st, int64_t *out)
{
    if (r->shard_local) shard_sampler_slice(&r->shard_sampler, st->epoch, st->epoch_step, out);
    else sampler_slice(&r->sampler, st->epoch, st->epoch_step, r->rank, r->ranks, out);
}

static void advance(train_state_t *st, long steps_per_epoch)
{
    st->step++;
    if (++st->epoch_step == steps_per_epoch) {
        st->epoch++;
        st->epoch_step = 0;
    }
}

/* After a stop request, with everything saved: RUN/stopped says so to a
 * wrapper that cannot see our status (mpirun sent SIGTERM exits 1). */
static int stopped(run_t *r, const char *what)
{
    char err[ERR_LEN];
    if (r->rank == 0 && run_stopped_mark(r->run->out_dir, r->state.step, what, err, sizeof err))
        fprintf(stderr, "mimae_dist: warning: %s\n", err);
    return EXIT_REQUEUE;
}

/* Records (rank 0) that the checkpoint of this step is to be evaluated:
 * saved with it, so a run stopped or killed before the evaluation ends
 * finds it pending when it is started again. */
static int mark_evaluation_pending(run_t *r, char *err, size_t errlen)
{
    const int ok = r->rank != 0 ||
                   results_set_eval_state(r->results, r->state.step, RESULTS_EVAL_PENDING) == 0;
    if (!dist_all_ok(ok, MPI_COMM_WORLD))
        return snprintf(err, errlen, "out of memory recording the evaluation state"), -1;
    return 0;
}

/* Whether the checkpoint the run stands at still needs its evaluation: it
 * is pending, or it is the last one and not known to be done. */
static int evaluation_pending(const run_t *r)
{
    int pending = 0;
    if (r->rank == 0) {
        const int state = results_eval_state(r->results, r->state.step);
        pending = state == RESULTS_EVAL_PENDING ||
                  (r->state.step >= r->total_steps && state != RESULTS_EVAL_DONE);
    }
    MPI_CHECK(MPI_Bcast(&pending, 1, MPI_INT, 0, MPI_COMM_WORLD));
    return pending;
}

/* Every step trained and the final evaluation recorded: the results say so
 * from their next write, the run's last (rank 0). */
static int mark_finished(run_t *r)
{
    return results_set_attr(r->results, RESULTS_STATUS, RESULTS_STATUS_FINISHED);
}

/* Evaluates the checkpoint of this step (written already) and saves the
 * results with its state: done, or still pending after a stop request
 * (EXIT_REQUEUE: running the job again does it). An exit status. */
static int evaluate_checkpoint(run_t *r, char *err, size_t errlen)
{
    char ckpt[DESCRIPTOR_PATH_MAX + 64];
    checkpoint_path(ckpt, sizeof ckpt, r->ckpt_dir, r->state.step);
    const eval_config_t cfg = eval_config_of(r->run);
    const int rc = eval_record(r->model, &cfg, r->results, ckpt, r->state.step, r->rank, err,
                               errlen);
    if (rc < 0) return EXIT_FAILURE_INTERNAL; /* its inputs were checked at the start */
    const int ok = rc == EVAL_STOPPED || r->rank != 0 ||
                   (results_set_eval_state(r->results, r->state.step, RESULTS_EVAL_DONE) == 0 &&
                    (r->state.step < r->total_steps || mark_finished(r) == 0));
    if (!dist_all_ok(ok, MPI_COMM_WORLD))
        return snprintf(err, errlen, "out of memory recording the evaluation state"),
               EXIT_FAILURE_INTERNAL;
    if (save_progress(r, 0, err, errlen)) return EXIT_FAILURE_INTERNAL;
    if (rc != EVAL_STOPPED) return EXIT_OK;
    if (r->rank == 0)
        fprintf(stderr, "\nmimae_dist: stop requested during the evaluation of step %ld: results "
                "saved, the evaluation is pending (running the job again does it)\n",
                r->state.step);
    return stopped(r, "evaluation pending");
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
        text_eprintf("mimae_dist: %s", save_err);
    return EXIT_NONFINITE;
}

static int train(run_t *r, char *err, size_t errlen)
{
    if (evaluation_pending(r)) { /* a job stopped or killed during it, or before it */
        if (r->rank == 0)
            fprintf(stderr, "mimae_dist: the evaluation of step %ld is pending: running it\n",
                    r->state.step);
        const int status = evaluate_checkpoint(r, err, errlen);
        if (status != EXIT_OK) return status;
    }
    if (r->state.step >= r->total_steps) {
        if (r->rank == 0) fprintf(stderr, "mimae_dist: already at step %ld of %ld\n",
                                  r->state.step, r->total_steps);
        /* its final evaluation is done (evaluation_pending ran it otherwise) */
        if (!dist_all_ok(r->rank != 0 || mark_finished(r) == 0, MPI_COMM_WORLD))
            return snprintf(err, errlen, "out of memory recording the status"), EXIT_FAILURE_INTERNAL;
        return save_progress(r, 0, err, errlen) ? EXIT_FAILURE_INTERNAL : EXIT_OK;
    }
    char blas_advice[256]; /* here, not earlier: a run that cannot start says one line */
    if (r->rank == 0 && blas_kernel_mismatch(blas_advice, sizeof blas_advice))
        fprintf(stderr, "mimae_dist: warning: %s\n", blas_advice);
    const int oversubscribed = blas_threads_exceed_cpus(blas_advice, sizeof blas_advice);
    if (!dist_all_ok(!oversubscribed, MPI_COMM_WORLD) && r->rank == 0)
        fprintf(stderr, "mimae_dist: warning: %s\n",
                oversubscribed ? blas_advice
                               : "some ranks may use fewer CPUs than OPENBLAS_NUM_THREADS asks "
                                 "for (start with mpirun --bind-to none or --map-by slot:PE=N)");
    if (r->rank == 0) warn_recompute(r);
    if (r->rank == 0 && r->plan.bf16)
        fprintf(stderr, "mimae_dist: bf16 products through oneDNN on %s\n", r->bf16_isa);
    const double t_start = MPI_Wtime();
    const long first_step = r->state.step;
    int pending_checkpoint = 0;
    step_indices(r, &r->state, r->indices);
    if (reader_start(r->reader, r->indices, r->plan.per_rank, err, errlen)) return EXIT_FAILURE_INTERNAL;
    while (r->state.step < r->total_steps) {
        const uint8_t *raw;
        double wait_s = 0.0;
        const double t0 = MPI_Wtime();
        const int read = reader_wait(r->reader, &raw, NULL, &wait_s, err, errlen);
        if (!dist_all_ok(read == 0, MPI_COMM_WORLD)) return read_failure_status(read);
        /* No read in flight: HDF5 writes are safe here. */
        const int evaluate_now = pending_checkpoint && evaluation_due(r) &&
                                 r->state.step > first_step;
        if (pending_checkpoint && state_guard(r, err, errlen)) return EXIT_NONFINITE;
        if (evaluate_now && mark_evaluation_pending(r, err, errlen)) return EXIT_FAILURE_INTERNAL;
        if (pending_checkpoint && save_progress(r, 1, err, errlen)) return EXIT_FAILURE_INTERNAL;
        if (evaluate_now) {
            const int status = evaluate_checkpoint(r, err, errlen);
            if (status != EXIT_OK) return status;
        }
        pending_checkpoint = 0;
        faults_at_step(r->rank, r->state.step);
        int stop = stop_signal_requested();
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
        if (stop) {
            if (r->rank == 0) fprintf(stderr, "\nmimae_dist: stop requested; writing a checkpoint at step %ld\n", r->state.step);
            if (state_guard(r, err, errlen)) return EXIT_NONFINITE;
            return save_progress(r, 1, err, errlen) ? EXIT_FAILURE_INTERNAL
                                                    : stopped(r, "stop requested");
        }
        augment_batch(r, raw); /* uses r->indices of this step */
        train_state_t next = r->state;
        advance(&next, r->steps_per_epoch);

        mimae_step_stats_t st;
        if (train_step_run(&r->step, r->images, r->indices, (uint64_t)r->state.seed,
                           (uint64_t)r->state.epoch, &st, err, errlen)) {
            char save_err[ERR_LEN]; /* keep the history; the last checkpoint stays the newest */
            if (save_progress(r, 0, save_err, sizeof save_err) && r->rank == 0)
                text_eprintf("mimae_dist: %s", save_err);
            return EXIT_NONFINITE;
        }

        /* Start reading the next step's images before the bookkeeping. */
        if (next.step < r->total_steps) {
            step_indices(r, &next, r->indices);
            if (reader_start(r->reader, r->indices, r->plan.per_rank, err, errlen)) return EXIT_FAILURE_INTERNAL;
        }
        const double dt = MPI_Wtime() - t0;
        step_metrics_t s = {next.step, (double)r->state.epoch +
                            (double)(r->state.epoch_step + 1) / (double)r->steps_per_epoch,
                            (double)next.step * r->plan.global_batch * r->cfg->num_masks, st.loss.rec,
                            st.loss.max, st.loss.min, st.loss.q, st.loss.total, st.lr,
                            st.grad_norm, r->plan.global_batch / dt, wait_s};
        r->state = next;
        if (r->rank == 0) {
            results_append_step(r->results, &s);
            if (r->state.step % r->run->log_every == 0 || r->state.step == r->total_steps)
                progress_print(&s, r->total_steps, MPI_Wtime() - t_start, r->state.step - first_step);
        }
        pending_checkpoint = (r->run->checkpoint_every > 0 &&
                              r->state.step % r->run->checkpoint_every == 0) ||
                             evaluation_due(r);
    }
    if (r->rank == 0) progress_end();
    int ok = 1;
    if (r->rank == 0) ok = record_reconstructions(r, err, errlen) == 0;
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return EXIT_FAILURE_INTERNAL;
    if (state_guard(r, err, errlen)) return EXIT_NONFINITE;
    if (mark_evaluation_pending(r, err, errlen) || save_progress(r, 1, err, errlen))
        return EXIT_FAILURE_INTERNAL;
    return evaluate_checkpoint(r, err, errlen);
}

int main(int argc, char **argv)
{
    blas_quiet_idle_threads(argv); /* may execute mimae_dist again, first of all */
    /* Then: Slurm or a user may signal a job in its first moments
     * (startup, MPI_Init), and the default action would kill the rank
     * instead of stopping the job at the first step boundary with a
     * checkpoint (exit 3). Open MPI 4.1's MPI_Init installs handlers for
     * SIGSEGV, SIGBUS and the like only and leaves ours for SIGTERM/SIGUSR1
     * in place (sigaction after MPI_Init, under mpirun and as a singleton);
     * they are installed again after MPI_Init in case another MPI library
     * does take them. test_faults' *_before_mpi_init cases signal every rank
     * just before MPI_Init. */
    stop_signal_install();
    if (dist_args_want_help(argc, argv)) {
        fputs(dist_args_usage, stdout);
        return EXIT_OK;
    }
    /* Library versions, host and git commit: detected before MPI_Init
     * because finding the commit forks `git`. */
    results_env_t env;
    char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    dist_library_version(mpi_version, sizeof mpi_version);
    results_env_detect(&env, mpi_version);
    char err[ERR_LEN] = "";
    int speak;
    if (mpi_launch_unconnected("mimae_dist", &speak, err, sizeof err)) {
        /* N trainings of one rank on the same run directory: before MPI_Init,
         * which some MPI libraries abort in when srun started them this way */
        if (speak) text_eprintf("mimae_dist: %s", err);
        return EXIT_BAD_INPUT;
    }
    faults_before_mpi_init(); /* test hook, run/faults.h */
    MPI_CHECK(MPI_Init(&argc, &argv));
    mpi_check_install();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    stop_signal_install(); /* again: see above */
    run_t r;
    memset(&r, 0, sizeof r);
    r.lock.fd = -1;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &r.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &r.ranks));
    dist_args_t args;
    int status = dist_args_parse(argc, argv, &args, err, sizeof err) || faults_parse(err, sizeof err)
                     ? EXIT_BAD_INPUT : EXIT_OK;
    if (status == EXIT_OK && args.eval_checkpoint) {
        status = eval_checkpoint_command(args.eval_checkpoint, args.overrides, args.n_overrides,
                                         &env, r.rank, r.ranks, err, sizeof err);
    } else if (status == EXIT_OK) {
        status = setup(&r, &args, &env, err, sizeof err);
        if (status == EXIT_OK) status = train(&r, err, sizeof err);
    }
    /* Errors are usually the same on every rank (a bad descriptor): the lowest
     * rank that has a message says it, once. */
    int speaker = err[0] && status != EXIT_OK && status != EXIT_REQUEUE ? r.rank : r.ranks;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &speaker, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (speaker == r.rank) text_eprintf("mimae_dist: %s", err);
    free_run(&r);
    MPI_Finalize();
    return status;
}
