/* Experiment descriptors: an INI file (read with libinih) whose sections set
 * the model/method/optimiser config (core/config_fields.h) and the run
 * settings below. `model.preset` is applied first, then every other key in
 * file order, then `--set section.key=value` overrides; unknown sections or
 * keys and impossible values are rejected with one line naming the file,
 * the line, the key and the fix. A [sweep] section is kept as text for the
 * sweep expander (experiments/sweep.h). */
#ifndef MIMAE_EXPERIMENTS_DESCRIPTOR_H
#define MIMAE_EXPERIMENTS_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/config_fields.h"

#define DESCRIPTOR_PATH_MAX 1024
#define DESCRIPTOR_MAX_SWEEP_KEYS 16

enum { REDUCTION_DETERMINISTIC = 0, REDUCTION_FAST = 1, REDUCTION_AUTO = 2 };

/* Everything about a run that is not the model itself. */
typedef struct {
    char preset[64];                  /* model.preset (applied before other keys) */
    char train_data[DESCRIPTOR_PATH_MAX]; /* data.train: HDF5 data set */
    char test_data[DESCRIPTOR_PATH_MAX];  /* data.test (evaluation) */
    long train_limit;                 /* data.train_limit: use the first n images (0 = all) */
    long test_limit;                  /* data.test_limit */
    char out_dir[DESCRIPTOR_PATH_MAX];/* run.out_dir: checkpoints, results, logs */
    char name[128];                   /* run.name: used in file names and reports */
    long seed;                        /* train.seed */
    long epochs;                      /* train.epochs */
    long max_steps;                   /* train.max_steps: stop early (0 = epochs decide) */
    int micro_batch;                  /* train.micro_batch: images per forward pass */
    int reduction;                    /* train.reduction: deterministic | fast | auto */
    int augment;                      /* train.augment: random resized crop + flip */
    double warmup_epochs;             /* optim.warmup_epochs: converted to optim.warmup_iters
                                         unless that is given explicitly */
    long checkpoint_every;            /* run.checkpoint_every: steps (0 = only at the end) */
    int keep_checkpoints;             /* run.keep_checkpoints */
    long log_every;                   /* run.log_every: steps between progress lines */
    int eval_every_epochs;            /* eval.every_epochs (0 = only at the end) */
    int eval_linear_probe, eval_knn, eval_mi, eval_finetune; /* eval.* switches */
    int recon_samples;                /* run.recon_samples: images in the reconstruction PNG */
} run_config_t;

typedef struct {
    mimae_config_t model;
    run_config_t run;
    char path[DESCRIPTOR_PATH_MAX];   /* the descriptor file */
    /* [sweep] keys and their raw value lists, in file order */
    int sweep_count;
    char sweep_keys[DESCRIPTOR_MAX_SWEEP_KEYS][96];
    char sweep_values[DESCRIPTOR_MAX_SWEEP_KEYS][512];
} descriptor_t;

/* The fields of run_config_t, in the same table form as the model's. */
extern const config_field_t run_config_fields[];
extern const int run_config_field_count;

/* Defaults, then the file, then the overrides ("section.key=value"). Derives
 * optim.total_iters and warmup_iters from epochs and the data set size when
 * `train_images` > 0 (pass 0 to skip), and validates everything. Returns 0 or
 * -1 with a one-line message. */
int descriptor_load(descriptor_t *d, const char *path, const char *const *overrides,
                    int n_overrides, long train_images, char *err, size_t errlen);

/* Applies one "section.key=value" (model or run field). */
int descriptor_set(descriptor_t *d, const char *assignment, char *err, size_t errlen);

/* Writes the effective descriptor (every key, current values) as INI text. */
int descriptor_write(const descriptor_t *d, const char *path, char *err, size_t errlen);

/* Markdown table of every key: section.key, default, meaning (for README). */
void descriptor_print_reference(FILE *out);

#endif
