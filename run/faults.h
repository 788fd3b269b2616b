/* Fault injection for the fault tests (tests/test_faults.c): inert unless
 * the environment sets MIMAE_FAULT to comma-separated key=value pairs
 * describing one fault:
 *
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
 *       the gradient of parameter TENSOR (core/vit/params.c names, "q.*" for
 *       Q) gets a NaN in the update that follows step S, on every rank;
 *   signal-before-init=TERM|USR1 (no step)
 *       every rank raises the signal on itself just before MPI_Init: a stop
 *       request in a job's first moments;
 *   eval-signal=features|probe|knn|mi|finetune (no step)
 *       the highest rank raises SIGTERM on itself when an evaluation enters
 *       that phase (the first time in the process): a stop request during
 *       evaluation, which only that rank receives;
 *   slow-steps=MS (no step)
 *       every step starts MS milliseconds late: a run of known length that a
 *       test can signal mid-way however fast the machine is;
 *   stage-full=BYTES (no step)
 *       every rank copies data.stage_dir's files as onto a full disk: no file
 *       grows past BYTES bytes (MPI's own files stay unlimited).
 *
 * The trainer calls these at its edges (start, step boundary, checkpoint
 * write) and the step through its gradient hook; nothing else knows of
 * them. */
#ifndef MIMAE_RUN_FAULTS_H
#define MIMAE_RUN_FAULTS_H

#include <stddef.h>
#include <sys/resource.h>

#include "dist/train_step.h"

/* Before MPI_Init: the signal-before-init fault (reported bad values wait
 * for faults_parse). */
void faults_before_mpi_init(void);

/* Reads MIMAE_FAULT. 0, or -1 with a one-line message. */
int faults_parse(char *err, size_t errlen);

/* Hooks the nan-grad fault into the step of model m. 0, or -1 when the
 * tensor does not exist. */
int faults_attach(train_step_t *step, mimae_model_t *m, char *err, size_t errlen);

/* At the start of evaluation phase `phase` (run/evaluate.c) on rank `rank`
 * of `ranks`. */
void faults_at_eval_phase(const char *phase, int rank, int ranks);

/* At the start of step `step` (optimiser updates done) on rank `rank`. */
void faults_at_step(int rank, long step);

/* Around the checkpoint of `step` on rank `rank` (file_bytes: the
 * checkpoint's estimated size): faults_arm_checkpoint returns 1 when it
 * limited the file size; faults_disarm restores *saved. */
int faults_arm_checkpoint(int rank, long step, size_t file_bytes, struct rlimit *saved);
void faults_disarm(const struct rlimit *saved);

/* Around the copies of data.stage_dir: 1 when the stage-full fault limited
 * the file size (faults_disarm restores it). */
int faults_arm_stage(struct rlimit *saved);

#endif
