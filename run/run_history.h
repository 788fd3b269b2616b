/* What each start of a run trained on, kept in its results file: one string
 * attribute "run_history.NNNN" per start of mimae_dist (fresh or resumed),
 * NNNN counting from 0000, each one line of tab-separated key=value fields:
 *
 *   step=S  data.train=PATH  data.train_images=N  data.train_bytes=B
 *   data.train_limit=L  data.test=PATH  data.test_limit=L
 *
 * (the data set's identity: its path, image count and file size). A resume
 * whose data.* differ from the previous start's is recorded like any other
 * start and said in one line on stderr, so that a run which changed its
 * data half way can be told from one that did not. */
#ifndef MIMAE_RUN_RUN_HISTORY_H
#define MIMAE_RUN_RUN_HISTORY_H

#include <stddef.h>

#include "experiments/descriptor.h"
#include "io/results.h"

#define RUN_HISTORY_PREFIX "run_history."

/* Appends this start (at `step`, training on `run`'s data.* with
 * `train_images` images in data.train) to res. Returns 1 when a previous
 * start used other data.* values (note then holds one line saying what
 * changed, from what, since which step), 0 otherwise, -1 when the entry
 * could not be stored (note holds why). */
int run_history_record(results_t *res, long step, const run_config_t *run, long train_images,
                       char *note, size_t notelen);

#endif
