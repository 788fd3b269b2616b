/* Results of a run, one HDF5 file per run or job-array task, for h5py,
 * h5dump and `mimae report`. The history lives in memory and the whole file
 * is rewritten atomically (temporary name, fsync, rename) by results_write,
 * which the trainer calls at every checkpoint and at the end: the file on
 * disk is always complete, never half written.
 *
 * Layout (format "mimae-results", version 1):
 *   root attributes: format, format_version, "config.<section>.<key>" for
 *     every field of core/config/config_fields.h, any extra string attributes
 *     (descriptor text, task id, swept values, run_history.NNNN of
 *     run/run_history.h), and env.* (ranks, threads,
 *     mpi, openblas, hdf5, git_commit, host). mimae_dist's extra ones:
 *     descriptor, run.name, train.seed, train.reduction (resolved: fast or
 *     deterministic), train.epochs (resolved from train.view_epochs when
 *     that was given), sweep.arm (the arm of a task of an arms descriptor,
 *     experiments/sweep.h), and status: "running" from the start of every
 *     run or resume (the file is rewritten then), "finished" once every step
 *     is trained and the final evaluation is recorded (the last write of a
 *     successful run); absent in files from before it (not known finished).
 *   /train/<metric>  float64 (steps), extendible, chunked: step, epoch,
 *     views, L_rec, L_max, L_min, L_q, L, lr, grad_norm, images_per_s,
 *     data_wait_s
 *   /eval/<name>     float64 scalar datasets with attributes checkpoint, step:
 *     the latest evaluation of each metric (the only one files had before
 *     /eval_history; kept as it was, so older readers still work)
 *   /eval_history/<name>  float64 (n, 3), extendible, chunked, attribute
 *     columns = "step, epoch, value": every evaluation of the metric, one row
 *     per evaluated step in increasing step order (a step evaluated again
 *     replaces its row); epoch is /train/epoch at that step (0 at step 0, NaN
 *     when /train has no such step). Absent in older files: loading them
 *     starts each history with the latest value.
 *   /reconstructions/{original,masked,reconstructed}  uint8 (K, H, W, C), and
 *     PNG files <results path without .h5>-recon-<step>.png next to the file
 *   /eval_state      int64 (n, 2), attribute columns = "step, state (0
 *     pending, 1 done)": the evaluation of the checkpoint of each step, by
 *     increasing step: pending from the moment its checkpoint is written (the
 *     evaluation is due) until every metric is recorded, then done. A run
 *     resumed at a step whose evaluation is pending runs it first. Written
 *     only when there is a row; absent in older files (no state known).
 *   After a resume (results_resume_at) /train has a row for every step up to
 *   the checkpoint's: rows lost with a failed write are there with every
 *   metric but step NaN. */
#ifndef MIMAE_IO_RESULTS_H
#define MIMAE_IO_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config/config.h"

#define RESULTS_FORMAT "mimae-results"
#define RESULTS_FORMAT_VERSION 1
#define RESULTS_FILE_NAME "results.h5" /* in a run directory */
#define RESULTS_STATUS "status"        /* root attribute: */
#define RESULTS_STATUS_RUNNING "running"
#define RESULTS_STATUS_FINISHED "finished"

typedef struct {
    long step;
    double epoch;          /* fractional: epoch + position inside it */
    double views;          /* masked views seen: images * num_masks */
    double rec, max, min, q, total;
    double lr, grad_norm, images_per_s, data_wait_s;
} step_metrics_t;

typedef struct {
    int ranks, threads;
    char mpi[160], openblas[160], hdf5[32], git_commit[64], host[128];
    char onednn_isa[32]; /* train.precision = bf16: the ISA oneDNN uses; else empty */
} results_env_t;

/* One evaluation of a metric (a row of /eval_history/<name>). */
typedef struct {
    long step;
    double epoch, value;
} eval_point_t;

/* The evaluation state of a checkpoint (/eval_state). */
enum { RESULTS_EVAL_NONE = -1, RESULTS_EVAL_PENDING = 0, RESULTS_EVAL_DONE = 1 };

typedef struct {
    long step;
    int state; /* RESULTS_EVAL_PENDING or RESULTS_EVAL_DONE */
} eval_state_t;

/* What results_resume_at changed. */
typedef struct {
    long dropped_steps;  /* /train rows after the checkpoint */
    long dropped_evals;  /* evaluation points after it */
    long missing;        /* steps up to it that had no row (now NaN rows) */
    long missing_first, missing_last; /* the first and last of them, -1 when none */
} results_resume_t;

typedef struct results results_t;

results_t *results_new(const mimae_config_t *cfg, const results_env_t *env);
/* Reloads a results file (to resume a run or to report on it). */
results_t *results_load(const char *path, char *err, size_t errlen);
void results_free(results_t *r);

/* An extra string attribute (set again: replaced). -1 for an empty key, one
 * containing '/', or a reserved one: "format", "format_version", "config.*",
 * "env.*". */
int results_set_attr(results_t *r, const char *key, const char *value);
/* Appends a step; every stored entry with step >= m->step is dropped first (a
 * resumed run re-does them), so the history stays strictly increasing. */
int results_append_step(results_t *r, const step_metrics_t *m);
/* Records an evaluation: the metric's latest value (set again: replaced) and
 * a point of its history (see the layout). name: an HDF5 link name (no '/').
 * checkpoint may be NULL. */
int results_set_eval(results_t *r, const char *name, double value, const char *checkpoint,
                     long step);
/* Records the evaluation state of the checkpoint at `step` (replaced when
 * set again); 0, or -1 for a bad argument or out of memory. */
int results_set_eval_state(results_t *r, long step, int state);
/* RESULTS_EVAL_PENDING, RESULTS_EVAL_DONE, or RESULTS_EVAL_NONE when not
 * recorded. */
int results_eval_state(const results_t *r, long step);
/* 0 when the results' config is cfg; otherwise -1 and one line: "<path>:
 * <section>.<key> is A in the results file but B in <other>: <fix>". */
int results_check_config(const results_t *r, const char *path, const mimae_config_t *cfg,
                         const char *other, const char *fix, char *err, size_t errlen);
/* Makes the results agree with the checkpoint of `step` a run resumes from:
 * /train rows, evaluation points and states after it are dropped (the run
 * redoes that part; a metric's latest value falls back to its last point
 * left, with no checkpoint name, or the metric goes when none is left), and
 * each step 1..step without a /train row gets one with every metric but
 * step NaN, so a gap is marked instead of hidden. *what (may be NULL) says
 * what changed. 0, or -1 (out of memory, bad argument). */
int results_resume_at(results_t *r, long step, results_resume_t *what);
/* K samples of (H, W, C) images in 0..1 floats, C = 1 or 3; stored as uint8
 * round(clamp(x, 0, 1) * 255) at once. Only the latest set is kept. The PNG
 * (3 rows: original, masked, reconstructed; K columns; zoomed so a tile is
 * at least 96 px) is written by results_write. */
int results_set_reconstructions(results_t *r, long step, const float *original,
                                const float *masked, const float *reconstructed, int K, int H,
                                int W, int C);

/* Rewrites PATH atomically (PATH.tmp-<pid>-<random>, fsync, rename; on failure PATH
 * is untouched and the temporary removed), then the reconstruction PNG (if
 * any); -1 with a message if either fails. */
int results_write(const results_t *r, const char *path, char *err, size_t errlen);

/* Read access for the report tool and tests. */
long results_step_count(const results_t *r);
const step_metrics_t *results_steps(const results_t *r);
const mimae_config_t *results_config(const results_t *r);
const char *results_get_attr(const results_t *r, const char *key); /* NULL if absent */
/* 1 when the status attribute says finished, else 0. */
int results_finished(const results_t *r);
int results_get_eval(const results_t *r, const char *name, double *value); /* 0 if found */
const results_env_t *results_env(const results_t *r);
/* Extra attributes and evaluation metrics in the order they were first set
 * (kept across write/load); i in 0..count-1, -1 when out of range. */
int results_attr_count(const results_t *r);
int results_attr_at(const results_t *r, int i, const char **key, const char **value);
int results_eval_count(const results_t *r);
int results_eval_at(const results_t *r, int i, const char **name, double *value,
                    const char **checkpoint, long *step);
/* Every evaluation of metric `name`, by increasing step, in *points (valid
 * until the results change; may be NULL); the count, -1 for no such metric. */
long results_eval_history(const results_t *r, const char *name, const eval_point_t **points);
/* The stored reconstructions, (K, H, W, C) uint8 each; -1 when none. Any
 * output pointer may be NULL. */
int results_get_reconstructions(const results_t *r, long *step, int *K, int *H, int *W,
                                int *C, const uint8_t **original, const uint8_t **masked,
                                const uint8_t **reconstructed);

/* Fills env with this process's library versions (mpi_version as the caller
 * has it, e.g. dist_library_version, since io/ makes no MPI calls;
 * openblas_get_config; H5get_libversion), host and mimae's git commit as
 * the Makefile embedded it at build time (`git rev-parse --short HEAD` of
 * the source tree, "-dirty" when it had changes, "unknown" outside a git
 * checkout; $MIMAE_GIT_COMMIT overrides). ranks and threads are the
 * caller's and are left as they are. Runs nothing. */
void results_env_detect(results_env_t *env, const char *mpi_version);

#endif
