/* The training progress line of rank 0: step, epoch, loss terms, lr,
 * images/s and ETA; a bar redrawn in place on a terminal, one line per call
 * otherwise (logs). And the import's. */
#ifndef MIMAE_RUN_PROGRESS_H
#define MIMAE_RUN_PROGRESS_H

#include "io/data_import.h"
#include "io/results.h"

/* s: the step just done; elapsed seconds over `done` steps of this process
 * estimate the time for the rest of total_steps. */
void progress_print(const step_metrics_t *s, long total_steps, double elapsed, long done);

/* Images a second, readable at every speed: "1234 img/s", "3.1 img/s",
 * "0.36 img/s (2.75 s/img)"; "- img/s" when unknown. */
void progress_format_rate(char *buf, size_t len, double images_per_s);

/* Ends a bar drawn in place (nothing when stderr is not a terminal). */
void progress_end(void);

/* The progress line of `mimae data` on stdout: the images written of a
 * split, images/s and ETA, at most every 2 s (every 30 s when stdout is not a
 * terminal: logs stay short), and one line when the split is done. Over MPI
 * ranks (rank 0 prints), rank 0's share of the shards stands for the whole
 * ("~"): the shards are spread evenly. `next` (start it at 0) is the time
 * of the next line. */
void progress_import(const import_progress_t *p, double *next);

#endif
