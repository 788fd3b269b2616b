/* The fuzz targets' entry points, one per loader, shared by the libFuzzer
 * binaries (tests/fuzz/fuzz_*.c, built by tests/fuzz/run.sh) and by
 * tests/test_fuzz_regressions.c, which replays the saved inputs without
 * libFuzzer. Each writes the input to a temporary file, runs the loader on
 * it, and when the loader accepts the input also checks what it got
 * (round trips, bounds); a broken invariant calls abort(). Inputs that the
 * loader rejects are fine: that is what it is for. Return 0. */
#ifndef MIMAE_TESTS_FUZZ_ENTRY_H
#define MIMAE_TESTS_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

/* experiments/descriptor.c: descriptor_load (as training, before the data
 * set is known, and not training), then descriptor_write + descriptor_load
 * must give the same settings; sweep_parse when there is a [sweep]. */
int fuzz_descriptor_one(const uint8_t *data, size_t size);

/* io/dataset.c: dataset_open, then dataset_read of a few images. */
int fuzz_dataset_one(const uint8_t *data, size_t size);

/* io/checkpoint.c: checkpoint_verify, checkpoint_read_config, and for a
 * small config checkpoint_load into a model of that config. */
int fuzz_checkpoint_one(const uint8_t *data, size_t size);

/* io/results.c: results_load, then results_write + results_load again. */
int fuzz_results_one(const uint8_t *data, size_t size);

/* Dispatch by name ("descriptor", "dataset", "checkpoint", "results");
 * -1 for an unknown name. */
int fuzz_run_named(const char *target, const uint8_t *data, size_t size);

#endif
