/* Evaluating a run's model and recording the metrics: at the end of
 * training, every eval.every_epochs, and for `mimae_dist eval CHECKPOINT`.
 * Collective over MPI_COMM_WORLD; rank 0 records into the results. */
#ifndef MIMAE_RUN_EVAL_RECORD_H
#define MIMAE_RUN_EVAL_RECORD_H

#include <stddef.h>

#include "core/vit/model.h"
#include "experiments/descriptor.h"
#include "io/results.h"
#include "run/evaluate.h"

/* The evaluation settings of a run (data.* and eval.* keys); the strings
 * point into *run. */
eval_config_t eval_config_of(const run_config_t *run);

/* Evaluates m; rank 0 records every metric in results with the checkpoint
 * it came from (ckpt, step) and prints them. 0, EVAL_STOPPED (a stop request:
 * nothing recorded, on every rank), or -1 with a message. */
int eval_record(const mimae_model_t *m, const eval_config_t *cfg, results_t *results,
                const char *ckpt, long step, int rank, char *err, size_t errlen);

/* `mimae_dist eval CHECKPOINT [--set ...]`: the run directory above the
 * checkpoint holds descriptor.ini (what the run used) and results.h5, where
 * the metrics are added. Before anything is written: the evaluation's inputs
 * (evaluate_check), the run directory's lock (run/run_dir.h), and the
 * checkpoint's config against results.h5's (another run's model: exit 2
 * naming both files). A stop request during it saves its state as pending
 * and returns EXIT_REQUEUE; running the command again evaluates it. Returns
 * an exit status (run/exit_status.h). */
int eval_checkpoint_command(const char *checkpoint, const char *const *overrides,
                            int n_overrides, results_env_t *env, int rank, int ranks,
                            char *err, size_t errlen);

#endif
