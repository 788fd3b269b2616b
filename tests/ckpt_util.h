/* Checking what a training run left: its newest checkpoint loaded as a model,
 * and two models compared bit for bit (the reproducibility contract: rank
 * counts, resumes and faults must not change a single bit). Failures fail the
 * current cmocka test. */
#ifndef MIMAE_CKPT_UTIL_H
#define MIMAE_CKPT_UTIL_H

#include "core/model.h"

/* The newest valid checkpoint in run_dir/checkpoints (checkpoint_find_latest),
 * verified and loaded into a model of its stored config; its step in *step.
 * The caller frees the model. */
mimae_model_t *load_newest_checkpoint(const char *run_dir, long *step);

/* Same sizes, then parameters and both AdamW moments, of the model and of Q,
 * bit for bit. */
void assert_models_bitwise_equal(const mimae_model_t *a, const mimae_model_t *b);

#endif
