/* Results of a run, one HDF5 file per run or job-array task, for h5py,
 * h5dump and `mimae report`. The history lives in memory and the whole file
 * is rewritten atomically (temporary name, fsync, rename) by results_write,
 * which the trainer calls at every checkpoint and at the end: the file on
 * disk is always complete, never half written.
 *
 * Layout (format "mimae-results", version 1):
 *   root attributes: format, format_version, "config.<section>.<key>" for
 *     every field of core/config_fields.h, any extra string attributes
 *     (descriptor text, task id, swept values), and env.* (ranks, threads,
 *     mpi, openblas, hdf5, git_commit, host)
 *   /train/<metric>  float64 (steps), extendible, chunked: step, epoch,
 *     views, L_rec, L_max, L_min, L_q, L, lr, grad_norm, images_per_s,
 *     data_wait_s
 *   /eval/<name>     float64 scalar datasets with attributes checkpoint, step
 *   /reconstructions/{original,masked,reconstructed}  uint8 (K, H, W, C), and
 *     PNG files <results path without .h5>-recon-<step>.png next to the file */
#ifndef MIMAE_IO_RESULTS_H
#define MIMAE_IO_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define RESULTS_FORMAT "mimae-results"
#define RESULTS_FORMAT_VERSION 1

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
} results_env_t;

typedef struct results results_t;

results_t *results_new(const mimae_config_t *cfg, const results_env_t *env);
/* Reloads a results file (to resume a run or to report on it). */
results_t *results_load(const char *path, char *err, size_t errlen);
void results_free(results_t *r);

int results_set_attr(results_t *r, const char *key, const char *value);
/* Appends a step; steps <= the last one stored are dropped first (a resumed
 * run re-does them), so the history stays strictly increasing. */
int results_append_step(results_t *r, const step_metrics_t *m);
int results_set_eval(results_t *r, const char *name, double value, const char *checkpoint,
                     long step);
/* K samples of (H, W, C) images in 0..1 floats (clamped when stored). */
int results_set_reconstructions(results_t *r, long step, const float *original,
                                const float *masked, const float *reconstructed, int K, int H,
                                int W, int C);

int results_write(const results_t *r, const char *path, char *err, size_t errlen);

/* Read access for the report tool and tests. */
long results_step_count(const results_t *r);
const step_metrics_t *results_steps(const results_t *r);
const mimae_config_t *results_config(const results_t *r);
const char *results_get_attr(const results_t *r, const char *key); /* NULL if absent */
int results_get_eval(const results_t *r, const char *name, double *value); /* 0 if found */

/* Fills env with this process's library versions, host and git commit
 * (ranks and threads are the caller's). */
void results_env_detect(results_env_t *env);

#endif
