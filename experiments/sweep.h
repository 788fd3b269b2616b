/* Sweep expansion: a descriptor's [sweep] section lists values per key,
 *   mimae.mask_ratio = 0.5, 0.75, 0.9
 *   mimae.w_max = 0, 0.1
 *   seeds = 0, 1, 2            (shorthand for train.seed)
 * and the sweep is their Cartesian product. Task order is stable and
 * documented: nested loops over the keys in file order, the first key
 * slowest and the last fastest, with `seeds` always innermost. Task i runs in
 * run.out_dir/task-NNNN (4 digits) as run.name-taskNNNN. */
#ifndef MIMAE_EXPERIMENTS_SWEEP_H
#define MIMAE_EXPERIMENTS_SWEEP_H

#include <stddef.h>

#include "experiments/descriptor.h"

#define SWEEP_MAX_VALUES DESCRIPTOR_SWEEP_MAX_VALUES
#define SWEEP_VALUE_MAX DESCRIPTOR_SWEEP_VALUE_MAX
#define SWEEP_MAX_TASKS 100000
#define SWEEP_ASSIGN_MAX 192

typedef struct {
    int n_keys;
    char keys[DESCRIPTOR_MAX_SWEEP_KEYS][96];  /* descriptor keys ("seeds" -> train.seed) */
    int n_values[DESCRIPTOR_MAX_SWEEP_KEYS];
    char values[DESCRIPTOR_MAX_SWEEP_KEYS][SWEEP_MAX_VALUES][SWEEP_VALUE_MAX];
    long tasks;                                /* 1 when there is no [sweep] */
} sweep_t;

/* Splits the value lists (each entry checked as descriptor_load checks it:
 * descriptor_check_sweep_entry) and checks every task's whole config, with
 * the task and its values named. */
int sweep_parse(const descriptor_t *d, sweep_t *s, char *err, size_t errlen);

/* A --set of a swept key would be replaced by every task's value: refused
 * (0, or -1 with one line naming the override). overrides: the user's
 * "section.key=value" list, without the task's assignments. */
int sweep_check_overrides(const sweep_t *s, const descriptor_t *d, const char *const *overrides,
                          int n, char *err, size_t errlen);

/* The "section.key=value" assignments of task `task` (n_keys of them), in
 * key order, plus run.out_dir and run.name for the task. Returns the count,
 * or -1 when task is out of range. */
int sweep_task_assignments(const sweep_t *s, const descriptor_t *d, long task,
                           char out[][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX]);

/* The value index of key k in task `task`. */
int sweep_value_index(const sweep_t *s, long task, int k);

#endif
