/* The training progress line of rank 0: step, epoch, loss terms, lr,
 * images/s and ETA; a bar redrawn in place on a terminal, one line per call
 * otherwise (logs). */
#ifndef MIMAE_RUN_PROGRESS_H
#define MIMAE_RUN_PROGRESS_H

#include "io/results.h"

/* s: the step just done; elapsed seconds over `done` steps of this process
 * estimate the time for the rest of total_steps. */
void progress_print(const step_metrics_t *s, long total_steps, double elapsed, long done);

/* Ends a bar drawn in place (nothing when stderr is not a terminal). */
void progress_end(void);

#endif
