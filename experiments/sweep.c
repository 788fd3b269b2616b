#include "experiments/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/text_escape.h"

typedef char assign_t[SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];

/* Keys vary like nested loops: the last (innermost) fastest. `seeds` is
 * moved to the end when parsing, so it is innermost. */
int sweep_value_index(const sweep_t *s, long task, int k)
{
    long stride = 1;
    for (int j = s->n_keys - 1; j > k; j--) stride *= s->n_values[j];
    return (int)((task / stride) % s->n_values[k]);
}

/* The arms are the outermost loop, around the seeds. */
int sweep_arm_index(const sweep_t *s, long task)
{
    return s->n_arms > 0 ? (int)(task / (s->tasks / s->n_arms)) : -1;
}

int sweep_expands(const sweep_t *s)
{
    return s->n_keys > 0 || s->n_arms > 0;
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

/* "task T (key=value, ...)" of a Cartesian sweep, "[arm NAME] task T (seed
 * S)" of arms: where a message about task t points. */
static void task_label(const sweep_t *s, const descriptor_t *d, long t, char *out, size_t len)
{
    const int a = sweep_arm_index(s, t);
    if (a >= 0) {
        snprintf(out, len, ":%d: [arm %s] task %ld", d->arms[a].line, d->arms[a].name, t);
        for (int k = 0; k < s->n_keys; k++) /* the seeds */
            snprintf(out + strlen(out), len - strlen(out), " (seed %s)",
                     s->values[k][sweep_value_index(s, t, k)]);
        return;
    }
    snprintf(out, len, ": [sweep] task %ld (", t);
    for (int k = 0; k < s->n_keys; k++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s=%s", k ? ", " : "", s->keys[k],
                 s->values[k][sweep_value_index(s, t, k)]);
    snprintf(out + strlen(out), len - strlen(out), ")");
}

/* Every task's whole config must be valid too (cross-field rules such as
 * N x V <= L hold per combination, not per value; train.view_epochs must
 * divide by each task's mimae.num_masks). */
static int sweep_check_tasks(const sweep_t *s, const descriptor_t *d, char *err, size_t errlen)
{
    descriptor_t *copy = malloc(sizeof *copy);
    assign_t *assign = malloc(sizeof(assign_t) * SWEEP_MAX_ASSIGNMENTS);
    int rc = copy && assign ? 0 : -1;
    if (rc) snprintf(err, errlen, "out of memory");
    for (long t = 0; t < s->tasks && rc == 0; t++) {
        *copy = *d;
        char why[1024];
        const int n = sweep_task_assignments(s, d, t, assign);
        for (int i = 0; i < n - 2 && rc == 0; i++) /* not run.out_dir and run.name */
            rc = descriptor_set(copy, assign[i], why, sizeof why);
        if (rc == 0) rc = descriptor_resolve_epochs(copy, why, sizeof why);
        if (rc == 0) rc = mimae_config_validate(&copy->model, why, sizeof why);
        if (rc) {
            char label[512];
            task_label(s, d, t, label, sizeof label);
            snprintf(err, errlen, "%s%s: %s", d->path, label, why);
        }
    }
    free(copy);
    free(assign);
    return rc;
}

/* Arms as descriptor_load leaves them (for a descriptor made some other
 * way): each one's overrides inside the table, within the limits. */
static int check_arms(const descriptor_t *d, char *err, size_t errlen)
{
    if (d->arm_count < 0 || d->arm_count > DESCRIPTOR_MAX_ARMS || d->arm_set_count < 0 ||
        d->arm_set_count > DESCRIPTOR_ARMS_MAX_SETS)
        return snprintf(err, errlen, "%s: internal: %d arms with %d overrides", d->path,
                        d->arm_count, d->arm_set_count), -1;
    for (int a = 0; a < d->arm_count; a++)
        if (d->arms[a].first < 0 || d->arms[a].count < 0 ||
            d->arms[a].count > DESCRIPTOR_ARM_MAX_SETS ||
            d->arms[a].first + d->arms[a].count > d->arm_set_count)
            return snprintf(err, errlen, "%s: internal: arm %d's overrides are outside the "
                            "table", d->path, a), -1;
    return 0;
}

static int parse_sweep(const descriptor_t *d, sweep_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (check_arms(d, err, errlen)) return -1;
    s->n_arms = d->arm_count;
    int seeds = -1;
    for (int i = 0; i < d->sweep_count; i++) {
        if (strcmp(d->sweep_keys[i], DESCRIPTOR_SWEEP_SEEDS) == 0) {
            seeds = i;
            continue;
        }
        if (add_key(s, d, i, err, errlen)) return -1;
    }
    if (seeds >= 0 && add_key(s, d, seeds, err, errlen)) return -1;
    s->tasks = s->n_arms > 0 ? s->n_arms : 1;
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
    const size_t len = SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX;
    const int a = sweep_arm_index(s, task);
    int n = 0;
    for (int i = 0; a >= 0 && i < d->arms[a].count; i++)
        snprintf(out[n++], len, "%s", d->arm_sets[d->arms[a].first + i]);
    long seed = d->run.seed;
    for (int k = 0; k < s->n_keys; k++) {
        const char *v = s->values[k][sweep_value_index(s, task, k)];
        snprintf(out[n++], len, "%s=%s", s->keys[k], v);
        if (strcmp(s->keys[k], "train.seed") == 0) seed = strtol(v, NULL, 10); /* checked */
    }
    if (a >= 0) {
        snprintf(out[n++], len, "run.out_dir=%s/task-%04ld-%s-seed%ld", d->run.out_dir, task,
                 d->arms[a].name, seed);
        snprintf(out[n++], len, "run.name=%s-%s-seed%ld", d->run.name, d->arms[a].name, seed);
        return n;
    }
    snprintf(out[n++], len, "run.out_dir=%s/task-%04ld", d->run.out_dir, task);
    snprintf(out[n++], len, "run.name=%s-task%04ld", d->run.name, task);
    return n;
}

/* The key of an override "section.key=value" (blanks around it dropped)
 * into key; 0, or -1 when there is none or it does not fit. */
static int override_key(const char *a, char *key, size_t len)
{
    const char *eq = strchr(a, '=');
    if (!eq) return -1;
    while (*a == ' ' || *a == '\t') a++;
    const char *end = eq;
    while (end > a && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if ((size_t)(end - a) >= len) return -1;
    memcpy(key, a, (size_t)(end - a));
    key[end - a] = '\0';
    return 0;
}

int sweep_check_overrides(const sweep_t *s, const descriptor_t *d, const char *const *overrides,
                          int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        char key[DESCRIPTOR_ARM_SET_MAX], other[DESCRIPTOR_ARM_SET_MAX];
        if (override_key(overrides[i], key, sizeof key)) continue; /* descriptor_load says so */
        for (int k = 0; k < s->n_keys; k++)
            if (descriptor_same_setting(s->keys[k], key))
                return snprintf(err, errlen, "%s: --set %s: %s is swept by the [sweep], whose "
                                "values every task sets instead: drop the --set or the [sweep] "
                                "entry", d->path, overrides[i], s->keys[k]), -1;
        for (int a = 0; a < s->n_arms; a++)
            for (int j = d->arms[a].first; j < d->arms[a].first + d->arms[a].count; j++) {
                const char *set = d->arm_sets[j];
                snprintf(other, sizeof other, "%.*s", (int)descriptor_arm_set_key_len(set), set);
                if (descriptor_same_setting(other, key))
                    return snprintf(err, errlen, "%s: --set %s: arm %s sets %s (line %d), which "
                                    "its tasks take instead: drop the --set, or set the key in "
                                    "the arms", d->path, overrides[i], d->arms[a].name, other,
                                    d->arm_set_lines[j]), -1;
            }
    }
    return 0;
}
