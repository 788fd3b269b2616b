/* The training progress line of rank 0: step, epoch, loss terms, lr,
 * images/s and ETA; a bar redrawn in place on a terminal, one line per call
 * otherwise (logs). */
#ifndef MIMAE_RUN_PROGRESS_H
#define MIMAE_RUN_PROGRESS_H

#include "io/results.h"

/* s: the step just done; elapsed seconds over `done` steps of this process
 * estimate the time for the rest of total_steps. */
void progress_print(const step_metrics_t *s, long total_steps, double elapsed, long done);

/* Images a second, readable at every speed: "1234 img/s", "3.1 img/s",
 * "0.36 img/s (2.75 s/img)"; "- img/s" when unknown. */
void progress_format_rate(char *buf, size_t len, double images_per_s);

/* Ends a bar drawn in place (nothing when stderr is not a terminal). */
void progress_end(void);

#endif
