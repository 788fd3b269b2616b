/* Sweep expansion: a descriptor's [sweep] section lists values per key,
 *   mimae.mask_ratio = 0.5, 0.75, 0.9
 *   mimae.w_max = 0, 0.1
 *   seeds = 0, 1, 2            (shorthand for train.seed)
 * and the sweep is their Cartesian product. Task order is stable and
 * documented: nested loops over the keys in file order, the first key
 * slowest and the last fastest, with `seeds` always innermost. Task i runs in
 * run.out_dir/task-NNNN (4 digits) as run.name-taskNNNN.
 *
 * A descriptor with arms ([arm NAME] sections, experiments/descriptor.h) is
 * a sweep of arms x seeds instead: the arms in file order, `seeds` (the
 * only [sweep] key it may have) innermost, one task per arm with the base
 * train.seed when there are no seeds. Task i applies its arm's overrides
 * and runs in run.out_dir/task-NNNN-<arm>-seed<S> as <run.name>-<arm>-seed<S>. */
#ifndef MIMAE_EXPERIMENTS_SWEEP_H
#define MIMAE_EXPERIMENTS_SWEEP_H

#include <stddef.h>

#include "experiments/descriptor.h"

#define SWEEP_MAX_VALUES DESCRIPTOR_SWEEP_MAX_VALUES
#define SWEEP_VALUE_MAX DESCRIPTOR_SWEEP_VALUE_MAX
#define SWEEP_MAX_TASKS 100000
#define SWEEP_ASSIGN_MAX 192
/* Assignments of one task: an arm's overrides or the swept keys, the seed,
 * run.out_dir and run.name. */
#define SWEEP_MAX_ASSIGNMENTS                                                                   \
    ((DESCRIPTOR_ARM_MAX_SETS + 1 > DESCRIPTOR_MAX_SWEEP_KEYS ? DESCRIPTOR_ARM_MAX_SETS + 1       \
                                                              : DESCRIPTOR_MAX_SWEEP_KEYS) + 2)

typedef struct {
    int n_keys;
    char keys[DESCRIPTOR_MAX_SWEEP_KEYS][96];  /* descriptor keys ("seeds" -> train.seed) */
    int n_values[DESCRIPTOR_MAX_SWEEP_KEYS];
    char values[DESCRIPTOR_MAX_SWEEP_KEYS][SWEEP_MAX_VALUES][SWEEP_VALUE_MAX];
    long tasks;                                /* 1 when there is no [sweep] */
    int n_arms;                                /* 0: a Cartesian [sweep] (or none) */
} sweep_t;

/* Splits the value lists (each entry checked as descriptor_load checks it:
 * descriptor_check_sweep_entry) and checks every task's whole config, with
 * the task and its values named. */
int sweep_parse(const descriptor_t *d, sweep_t *s, char *err, size_t errlen);

/* A --set of a swept key would be replaced by every task's value, one of a
 * key an arm sets by that arm's: refused (0, or -1 with one line naming the
 * override; train.epochs and train.view_epochs count as one key).
 * overrides: the user's "section.key=value" list, without the task's
 * assignments. */
int sweep_check_overrides(const sweep_t *s, const descriptor_t *d, const char *const *overrides,
                          int n, char *err, size_t errlen);

/* The "section.key=value" assignments of task `task`: the swept keys'
 * values in key order (n_keys of them), or with arms the arm's overrides in
 * file order and then train.seed when seeds are swept; last run.out_dir and
 * run.name for the task. out holds SWEEP_MAX_ASSIGNMENTS. Returns the
 * count, or -1 when task is out of range. */
int sweep_task_assignments(const sweep_t *s, const descriptor_t *d, long task,
                           char out[][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX]);

/* Whether the descriptor is a sweep (a [sweep] or arms), whose tasks
 * mimae_dist runs with --task ID, rather than one run. */
int sweep_expands(const sweep_t *s);

/* The arm of task `task` (an index into d->arms), or -1 without arms. */
int sweep_arm_index(const sweep_t *s, long task);

/* The value index of key k in task `task`. */
int sweep_value_index(const sweep_t *s, long task, int k);

#endif
