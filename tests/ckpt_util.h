/* Checking what a training run left: its newest checkpoint loaded as a model,
 * and two models compared bit for bit (the reproducibility contract: rank
 * counts, resumes and faults must not change a single bit). Failures fail the
 * current cmocka test. */
#ifndef MIMAE_CKPT_UTIL_H
#define MIMAE_CKPT_UTIL_H

#include "core/vit/model.h"

/* The small run both the dist and the fault tests train: `images` synthetic
 * 16x16 images in work/data, and work/run.ini (test-small, global batch 16
 * in micro-batches of 4, 20 steps, a checkpoint every 5, 3 kept). 0 or -1. */
int write_small_run(const char *work, int images);

/* The newest valid checkpoint in run_dir/checkpoints (checkpoint_find_latest),
 * verified and loaded into a model of its stored config; its step in *step.
 * The caller frees the model. */
mimae_model_t *load_newest_checkpoint(const char *run_dir, long *step);

/* Same sizes, then parameters and both AdamW moments, of the model and of Q,
 * bit for bit. */
void assert_models_bitwise_equal(const mimae_model_t *a, const mimae_model_t *b);

#endif
