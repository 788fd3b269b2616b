/* The training step of mimae_dist (dist/train_step.h) in its plain case,
 * one process, for the tests that check a step against PyTorch or by
 * training, with the masks the test set in the model (m->perm). MPI is
 * initialised on first use (a singleton, no mpirun) and finalised at exit. */
#ifndef MIMAE_TESTS_STEP_UTIL_H
#define MIMAE_TESTS_STEP_UTIL_H

#include <stddef.h>

#include "dist/train_step.h"

/* MPI_Init as a singleton, once per process (finalised at exit). 0, or -1
 * with a message. */
int step_util_mpi_init(char *err, size_t errlen);

/* train_step_init_single after MPI_Init. 0, or -1 with a message. */
int single_step_init(train_step_t *s, mimae_model_t *m, char *err, size_t errlen);

/* One step on images (B, H, W, C): train_step_run with the model's masks. */
int single_step_run(train_step_t *s, const float *images, mimae_step_stats_t *stats, char *err,
                    size_t errlen);

#endif
