/* Experiment descriptors: an INI file (read with libinih) whose sections set
 * the model/method/optimiser config (core/config/config_fields.h) and the run
 * settings below. `model.preset` is applied first, then every other key in
 * file order, then `--set section.key=value` overrides; unknown sections or
 * keys and impossible values are rejected with one line naming the file,
 * the line, the key and the fix. A [sweep] section is kept as text for the
 * sweep expander (experiments/sweep.h), and so are arms: sections
 * [arm NAME], each a named set of overrides "section.key = value" that the
 * tasks of that arm apply like --set (checked as a --set of the key is, when
 * the file is read).
 *
 * Sections: [model] [mimae] [optim] [train] [data] [run] [eval] [sweep]
 * [arm NAME].
 * `descriptor_print_reference` lists every key with its default and meaning.
 *
 * Syntax (libinih): `key = value`, comments on their own line starting with
 * ';' or '#', inline comments only as " ;" (a " #" inside a value is an
 * error, not a comment). Indentation is ignored (never a continuation line).
 * Switches take 0/1, true/false, yes/no or on/off. libinih reads lines of at
 * most INI_MAX_LINE - 3 = 197 characters: longer lines (e.g. a very long
 * data path) are refused, not cut; use a shorter path or a symbolic link.
 *
 * Messages: "<file>:<line>: <section>.<key> = '<value>': <what is wrong and
 * what to do>" for one key in the file; "<file>: --set <section>.<key> =
 * '<value>': ..." for an override; "<file>: <message>" for checks across
 * fields; "<file>: cannot read the descriptor (<strerror>)". */
#ifndef MIMAE_EXPERIMENTS_DESCRIPTOR_H
#define MIMAE_EXPERIMENTS_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config/config.h"
#include "core/config/config_fields.h"

#define DESCRIPTOR_PATH_MAX 1024
#define DESCRIPTOR_MAX_SWEEP_KEYS 16
#define DESCRIPTOR_SWEEP_MAX_VALUES 64 /* values of one [sweep] key */
#define DESCRIPTOR_SWEEP_VALUE_MAX 64  /* characters of one value, with the NUL */
#define DESCRIPTOR_SWEEP_SEEDS "seeds" /* [sweep] shorthand of train.seed */
#define DESCRIPTOR_MAX_ARMS 64
#define DESCRIPTOR_ARM_NAME_MAX 40     /* characters of an arm's name */
#define DESCRIPTOR_ARM_MAX_SETS 32     /* overrides of one arm */
#define DESCRIPTOR_ARMS_MAX_SETS 256   /* overrides of all arms together */
#define DESCRIPTOR_ARM_SET_MAX 200     /* "section.key=value" with the NUL: one line of a file */

enum { REDUCTION_DETERMINISTIC = 0, REDUCTION_FAST = 1, REDUCTION_AUTO = 2 };
enum { SAMPLING_GLOBAL = 0, SAMPLING_SHARD_LOCAL = 1 };
enum { PRECISION_F32 = 0, PRECISION_BF16 = 1 };

/* Everything about a run that is not the model itself. */
typedef struct {
    char preset[64];                  /* model.preset (applied before other keys) */
    char train_data[DESCRIPTOR_PATH_MAX]; /* data.train: HDF5 data set */
    char test_data[DESCRIPTOR_PATH_MAX];  /* data.test (evaluation) */
    long train_limit;                 /* data.train_limit: use the first n images (0 = all) */
    long test_limit;                  /* data.test_limit */
    int sampling;                     /* data.sampling: global | shard-local */
    char stage_dir[DESCRIPTOR_PATH_MAX]; /* data.stage_dir: node-local copy (empty: none) */
    char out_dir[DESCRIPTOR_PATH_MAX];/* run.out_dir: checkpoints, results, logs */
    char name[128];                   /* run.name: used in file names and reports */
    long seed;                        /* train.seed */
    long epochs;                      /* train.epochs (resolved from view_epochs when that is set) */
    long view_epochs;                 /* train.view_epochs: epochs x mimae.num_masks (0 = unused) */
    long max_steps;                   /* train.max_steps: stop early (0 = epochs decide) */
    int micro_batch;                  /* train.micro_batch: images per forward pass */
    int reduction;                    /* train.reduction: deterministic | fast | auto */
    int precision;                    /* train.precision: f32 | bf16 */
    double memory_budget_gb;          /* train.memory_budget_gb (0: no limit) */
    int augment;                      /* train.augment: random resized crop + flip */
    double warmup_epochs;             /* optim.warmup_epochs: converted to optim.warmup_iters
                                         unless that is given explicitly */
    long checkpoint_every;            /* run.checkpoint_every: steps (0 = only at the end) */
    int keep_checkpoints;             /* run.keep_checkpoints */
    long log_every;                   /* run.log_every: steps between progress lines */
    int eval_every_epochs;            /* eval.every_epochs (0 = only at the end) */
    int eval_linear_probe, eval_knn, eval_mi, eval_finetune; /* eval.* switches */
    int knn_k;                        /* eval.knn_k: neighbours */
    long mi_images;                   /* eval.mi_images: fixed batch for the MI statistics */
    int finetune_epochs;              /* eval.finetune_epochs */
    double finetune_blr;              /* eval.finetune_blr: lr = blr * global_batch / 256 */
    double layer_decay;               /* eval.layer_decay: layer-wise lr decay */
    double label_smoothing;           /* eval.label_smoothing */
    double label_fraction;            /* eval.label_fraction: labelled share of train (FT 1 %) */
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
    /* [arm NAME] sections in file order; each arm's overrides are
     * arm_sets[first .. first + count - 1], "section.key=value" as written */
    int arm_count, arm_set_count;
    struct {
        char name[DESCRIPTOR_ARM_NAME_MAX + 1];
        int line, first, count; /* line: of its header (0: not from a file) */
    } arms[DESCRIPTOR_MAX_ARMS];
    char arm_sets[DESCRIPTOR_ARMS_MAX_SETS][DESCRIPTOR_ARM_SET_MAX];
    int arm_set_lines[DESCRIPTOR_ARMS_MAX_SETS];
} descriptor_t;

/* Every key of run_config_t, in the same table form as the model's
 * (core/config/config_fields.h): name, type, default, range, meaning. */
extern const config_field_t run_config_fields[];
extern const int run_config_field_count;

/* Defaults, then the file, then the overrides ("section.key=value"). Derives
 * optim.total_iters and warmup_iters from epochs and the data set size when
 * `train_images` > 0 (pass 0 to skip), and validates everything. Returns 0 or
 * -1 with a one-line message.
 *
 * Order: model.preset first (the last `--set model.preset=...`, else the
 * file's, else fmnist-tiny), then the file's other keys in order, then the
 * overrides in order (a later override of the same key wins; a key twice in
 * the file is an error).
 *
 * train_images: > 0  the training set's size: steps_per_epoch =
 *                    floor(n / global_batch) with n = data.train_limit when
 *                    that is set and smaller; optim.total_iters = epochs x
 *                    steps_per_epoch and optim.warmup_iters =
 *                    round(warmup_epochs x steps_per_epoch), each unless given
 *                    explicitly (file or --set); fewer images than one global
 *                    batch is an error.
 *                 0  size not known yet: nothing derived (load again with the
 *                    size once data.train is open); data.train is required.
 *                    A total_iters not given stays a placeholder of at least
 *                    warmup_iters (so an explicit warmup_iters loads).
 *                -1  not training (evaluation only): nothing derived (the
 *                    placeholder as for 0) and data.train may be empty.
 *
 * Checks: every key against the range in its table row (run keys with the
 * file line or --set they came from), the limits across keys of
 * core/config/config_limits.h, mimae_config_validate's, and: data.train
 * non-empty (unless -1); micro_batch divides global_batch (whether it
 * divides the per-rank batch depends on the rank count: the trainer's
 * check); optim.warmup_epochs <= epochs when it is used; run.name non-empty
 * without '/' (default: the file's base name without .ini); run.out_dir
 * non-empty (default runs/<name>). On error *d holds partial values.
 *
 * Training length: train.epochs and train.view_epochs are two spellings of
 * one quantity (view_epochs = epochs x mimae.num_masks, the masked views
 * each image is seen through). The file may give one of them, not both; an
 * override of one replaces the other (descriptor_set); a view_epochs in
 * effect sets epochs = view_epochs / num_masks, which must divide
 * (descriptor_resolve_epochs). Arms: see "Arms" below. */
int descriptor_load(descriptor_t *d, const char *path, const char *const *overrides,
                    int n_overrides, long train_images, char *err, size_t errlen);

/* Applies one "section.key=value" (model or run field; blanks around the
 * parts allowed) with the file's strictness for the value itself. It does no
 * checks across fields (combine settings through descriptor_load's
 * overrides, which validates the result) and does not re-derive the
 * schedule. `model.preset` here resets every model field to the preset;
 * train.epochs drops train.view_epochs (the other spelling), whose value
 * descriptor_resolve_epochs turns into epochs.
 * Errors read "--set section.key = 'value': ..."; d is unchanged then. */
int descriptor_set(descriptor_t *d, const char *assignment, char *err, size_t errlen);

/* train.epochs = train.view_epochs / mimae.num_masks when view_epochs is
 * set (> 0); 0, or -1 with "train.view_epochs = V is not a multiple of
 * mimae.num_masks = N ..." when N does not divide it. descriptor_load does
 * this itself; for a descriptor changed by descriptor_set afterwards. */
int descriptor_resolve_epochs(descriptor_t *d, char *err, size_t errlen);

/* 1 when the keys a and b ("section.key", or the [sweep] shorthand
 * "seeds") set the same thing: the same key, seeds and train.seed,
 * train.epochs and train.view_epochs. An override of one of them replaces
 * what the other said. */
int descriptor_same_setting(const char *a, const char *b);

/* What a run ran, for its effective descriptor (RUN/descriptor.ini,
 * tasks/task-NNNN.ini): no [sweep] and no arms left, and the training
 * length as the resolved train.epochs (view_epochs dropped). */
void descriptor_as_run(descriptor_t *d);

/* Writes the effective descriptor (every key, current values, the [sweep]
 * section and the arms if any) as INI text, through `path`.tmp renamed to
 * `path`. With train.view_epochs set the epochs line is a comment showing
 * what it resolved to (the file may set only one of the two). Real
 * numbers get the shortest text that reads back to the same bits, and
 * warmup_iters/total_iters are explicit, so descriptor_load of the file
 * reproduces model and run exactly whatever train_images it is given. Fails
 * for a text value that could not be read back (too long, control
 * characters, " ;" or " #"). */
int descriptor_write(const descriptor_t *d, const char *path, char *err, size_t errlen);

/* descriptor_write's text to a stream (e.g. open_memstream, to measure it):
 * 0, or -1 with a message before anything is printed. */
int descriptor_print(const descriptor_t *d, FILE *fp, char *err, size_t errlen);

/* [sweep] entries. descriptor_load checks each entry as it reads it (the
 * file's line in the message): the key is `seeds` or a known section.key,
 * not one the sweep decides per task itself (run.out_dir, run.name) nor
 * model.preset, and not swept twice (seeds is train.seed); the list has no
 * empty item, at most DESCRIPTOR_SWEEP_MAX_VALUES values, each valid for
 * the key and no two equal in meaning (0.5 and 0.50); a swept
 * optim.warmup_epochs needs optim.warmup_iters neither given nor swept
 * (an explicit warmup_iters wins, the sweep would change nothing). Checks
 * across the keys of a task are sweep_parse's (experiments/sweep.h). */

/* The key an entry sets: "train.seed" for "seeds", else the entry itself. */
const char *descriptor_sweep_target(const char *entry);

/* Splits a value list on ',' (blanks around values trimmed) into values;
 * the count, or -1 with why for an empty value, more than max values or a
 * value of DESCRIPTOR_SWEEP_VALUE_MAX characters or more. */
int descriptor_sweep_split(const char *list, char values[][DESCRIPTOR_SWEEP_VALUE_MAX], int max,
                           char *why, size_t whylen);

/* Entry i of d->sweep_keys/sweep_values against the key tables and the
 * entries before it, as descriptor_load checks it; 0, or -1 with why (the
 * message after "[sweep] "). */
int descriptor_check_sweep_entry(const descriptor_t *d, int i, char *why, size_t whylen);

/* Arms. descriptor_load reads a section [arm NAME] (NAME: 1 to
 * DESCRIPTOR_ARM_NAME_MAX letters, digits, '-', '_' or '.', unique in the
 * file) as an arm, and each of its lines `section.key = value` as an
 * override of its tasks, checked as a --set of the key is (known key,
 * valid value), with "<file>:<line>: [arm NAME] section.key ..." in the
 * message. Refused in an arm: keys every task sets itself (run.out_dir,
 * run.name, train.seed: the seed comes from [sweep] seeds or [train]),
 * model.preset, a key set twice (train.epochs and train.view_epochs are
 * one). With arms, [sweep] may list only seeds. Checks across the keys of
 * an arm's tasks are sweep_parse's. */

/* The key of an arm override "section.key=value": its length before '='. */
size_t descriptor_arm_set_key_len(const char *set);

/* Markdown table of every key: section.key, default, meaning; the README's
 * "Descriptor reference" is this output (tests/test_keys.c checks). 0, or
 * -1 after a message on stderr. */
int descriptor_print_reference(FILE *out);

/* Creates a directory of a run's output (mkdir -p under run.out_dir); the
 * error names the directory and says to change run.out_dir. */
int descriptor_make_out_dir(const char *path, char *err, size_t errlen);

/* mkdir -p of out_dir (links in it followed: the user's choice), then of
 * out_dir/sub, a directory of ours (e.g. "checkpoints"): a symbolic link
 * planted there is refused with one line, never written through. */
int descriptor_make_run_dir(const char *out_dir, const char *sub, char *err, size_t errlen);

#endif
