#include "experiments/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/text_escape.h"

/* Keys vary like nested loops: the last (innermost) fastest. `seeds` is
 * moved to the end when parsing, so it is innermost. */
int sweep_value_index(const sweep_t *s, long task, int k)
{
    long stride = 1;
    for (int j = s->n_keys - 1; j > k; j--) stride *= s->n_values[j];
    return (int)((task / stride) % s->n_values[k]);
}

/* Entry i of the [sweep]: checked as descriptor_load checks it (for a
 * descriptor made some other way), then its values split into s. */
static int add_key(sweep_t *s, const descriptor_t *d, int i, char *err, size_t errlen)
{
    char why[DESCRIPTOR_PATH_MAX];
    const int k = s->n_keys++;
    snprintf(s->keys[k], sizeof s->keys[k], "%s", descriptor_sweep_target(d->sweep_keys[i]));
    if (descriptor_check_sweep_entry(d, i, why, sizeof why) ||
        (s->n_values[k] = descriptor_sweep_split(d->sweep_values[i], s->values[k],
                                                 SWEEP_MAX_VALUES, why, sizeof why)) < 0)
        return snprintf(err, errlen, "%s: [sweep] %s", d->path, why), -1;
    return 0;
}

/* Every task's whole config must be valid too (cross-field rules such as
 * N x V <= L hold per combination, not per value). */
static int sweep_check_tasks(const sweep_t *s, const descriptor_t *d, char *err, size_t errlen)
{
    descriptor_t *copy = malloc(sizeof *copy);
    if (!copy) return snprintf(err, errlen, "out of memory"), -1;
    int rc = 0;
    for (long t = 0; t < s->tasks && rc == 0; t++) {
        *copy = *d;
        char why[1024], assign[SWEEP_ASSIGN_MAX];
        for (int k = 0; k < s->n_keys && rc == 0; k++) {
            snprintf(assign, sizeof assign, "%s=%s", s->keys[k],
                     s->values[k][sweep_value_index(s, t, k)]);
            rc = descriptor_set(copy, assign, why, sizeof why);
        }
        if (rc == 0) rc = mimae_config_validate(&copy->model, why, sizeof why);
        if (rc) {
            char combo[512] = "";
            for (int k = 0; k < s->n_keys; k++) {
                size_t used = strlen(combo);
                snprintf(combo + used, sizeof combo - used, "%s%s=%s", k ? ", " : "", s->keys[k],
                         s->values[k][sweep_value_index(s, t, k)]);
            }
            snprintf(err, errlen, "%s: [sweep] task %ld (%s): %s", d->path, t, combo, why);
        }
    }
    free(copy);
    return rc;
}

static int parse_sweep(const descriptor_t *d, sweep_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    int seeds = -1;
    for (int i = 0; i < d->sweep_count; i++) {
        if (strcmp(d->sweep_keys[i], DESCRIPTOR_SWEEP_SEEDS) == 0) {
            seeds = i;
            continue;
        }
        if (add_key(s, d, i, err, errlen)) return -1;
    }
    if (seeds >= 0 && add_key(s, d, seeds, err, errlen)) return -1;
    s->tasks = 1;
    for (int k = 0; k < s->n_keys; k++) {
        s->tasks *= s->n_values[k];
        if (s->tasks > SWEEP_MAX_TASKS)
            return snprintf(err, errlen, "%s: [sweep] expands to more than %d tasks: split it",
                            d->path, SWEEP_MAX_TASKS), -1;
    }
    return sweep_check_tasks(s, d, err, errlen);
}

int sweep_parse(const descriptor_t *d, sweep_t *s, char *err, size_t errlen)
{
    const int rc = parse_sweep(d, s, err, errlen);
    if (rc) text_escape_in_place(err, errlen); /* it quotes the descriptor's values */
    return rc;
}

int sweep_task_assignments(const sweep_t *s, const descriptor_t *d, long task,
                           char out[][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX])
{
    if (task < 0 || task >= s->tasks) return -1;
    int n = 0;
    for (int k = 0; k < s->n_keys; k++)
        snprintf(out[n++], SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX, "%s=%s", s->keys[k],
                 s->values[k][sweep_value_index(s, task, k)]);
    snprintf(out[n++], SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX, "run.out_dir=%s/task-%04ld",
             d->run.out_dir, task);
    snprintf(out[n++], SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX, "run.name=%s-task%04ld",
             d->run.name, task);
    return n;
}

int sweep_check_overrides(const sweep_t *s, const descriptor_t *d, const char *const *overrides,
                          int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        const char *a = overrides[i], *eq = strchr(a, '=');
        if (!eq) continue; /* malformed: descriptor_load says so */
        while (*a == ' ' || *a == '\t') a++;
        const char *end = eq;
        while (end > a && (end[-1] == ' ' || end[-1] == '\t')) end--;
        const size_t len = (size_t)(end - a);
        for (int k = 0; k < s->n_keys; k++)
            if (strlen(s->keys[k]) == len && strncmp(s->keys[k], a, len) == 0)
                return snprintf(err, errlen, "%s: --set %s: %s is swept by the [sweep], whose "
                                "values every task sets instead: drop the --set or the [sweep] "
                                "entry", d->path, overrides[i], s->keys[k]), -1;
    }
    return 0;
}
