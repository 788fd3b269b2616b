#include "experiments/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/text_escape.h"

/* Trims spaces in place and returns the start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

/* Keys vary like nested loops: the last (innermost) fastest. `seeds` is
 * moved to the end when parsing, so it is innermost. */
int sweep_value_index(const sweep_t *s, long task, int k)
{
    long stride = 1;
    for (int j = s->n_keys - 1; j > k; j--) stride *= s->n_values[j];
    return (int)((task / stride) % s->n_values[k]);
}

static int add_key(sweep_t *s, const descriptor_t *d, const char *key, const char *list,
                   char *err, size_t errlen)
{
    const int k = s->n_keys++;
    snprintf(s->keys[k], sizeof s->keys[k], "%s", strcmp(key, "seeds") == 0 ? "train.seed" : key);
    char buf[sizeof d->sweep_values[0]];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *tok = buf; tok; ) { /* split on ',' keeping empty items, to reject them */
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        char *v = trim(tok);
        tok = comma ? comma + 1 : NULL;
        if (!*v) return snprintf(err, errlen, "%s: [sweep] %s: empty value in '%s'", d->path, key, list), -1;
        if (n == SWEEP_MAX_VALUES)
            return snprintf(err, errlen, "%s: [sweep] %s: more than %d values", d->path, key,
                            SWEEP_MAX_VALUES), -1;
        if (strlen(v) >= SWEEP_VALUE_MAX)
            return snprintf(err, errlen, "%s: [sweep] %s: value '%s' is too long", d->path, key, v), -1;
        for (int j = 0; j < n; j++)
            if (strcmp(s->values[k][j], v) == 0)
                return snprintf(err, errlen, "%s: [sweep] %s: value %s listed twice", d->path, key, v), -1;
        snprintf(s->values[k][n++], SWEEP_VALUE_MAX, "%s", v);
    }
    if (n == 0) return snprintf(err, errlen, "%s: [sweep] %s: no values", d->path, key), -1;
    s->n_values[k] = n;
    /* every value must be one the descriptor accepts for that key */
    descriptor_t *copy = malloc(sizeof *copy);
    if (!copy) return snprintf(err, errlen, "out of memory"), -1;
    int rc = 0;
    for (int j = 0; j < n && rc == 0; j++) {
        char assign[SWEEP_ASSIGN_MAX], why[1024];
        *copy = *d;
        snprintf(assign, sizeof assign, "%s=%s", s->keys[k], s->values[k][j]);
        if (descriptor_set(copy, assign, why, sizeof why)) {
            snprintf(err, errlen, "%s: [sweep] %s: %s", d->path, key, why);
            rc = -1;
        }
    }
    free(copy);
    return rc;
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
        if (strcmp(d->sweep_keys[i], "seeds") == 0) {
            seeds = i;
            continue;
        }
        if (add_key(s, d, d->sweep_keys[i], d->sweep_values[i], err, errlen)) return -1;
    }
    if (seeds >= 0 && add_key(s, d, "seeds", d->sweep_values[seeds], err, errlen)) return -1;
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
