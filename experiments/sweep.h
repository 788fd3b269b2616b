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

#define SWEEP_MAX_VALUES 64
#define SWEEP_VALUE_MAX 64
#define SWEEP_MAX_TASKS 100000
#define SWEEP_ASSIGN_MAX 192

typedef struct {
    int n_keys;
    char keys[DESCRIPTOR_MAX_SWEEP_KEYS][96];  /* descriptor keys ("seeds" -> train.seed) */
    int n_values[DESCRIPTOR_MAX_SWEEP_KEYS];
    char values[DESCRIPTOR_MAX_SWEEP_KEYS][SWEEP_MAX_VALUES][SWEEP_VALUE_MAX];
    long tasks;                                /* 1 when there is no [sweep] */
} sweep_t;

/* Splits the value lists and checks every value by applying it to a copy of
 * the descriptor (unknown keys and impossible values are rejected here, with
 * the key and value named). */
int sweep_parse(const descriptor_t *d, sweep_t *s, char *err, size_t errlen);

/* The "section.key=value" assignments of task `task` (n_keys of them), in
 * key order, plus run.out_dir and run.name for the task. Returns the count,
 * or -1 when task is out of range. */
int sweep_task_assignments(const sweep_t *s, const descriptor_t *d, long task,
                           char out[][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX]);

/* The value index of key k in task `task`. */
int sweep_value_index(const sweep_t *s, long task, int k);

#endif
