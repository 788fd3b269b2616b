/* The start history of a run (run/run_history.h). */
#include "run/run_history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The data.* fields an entry holds after its step, in order. */
static const char *const data_fields[] = {"data.train", "data.train_images", "data.train_bytes",
                                          "data.train_limit", "data.test", "data.test_limit"};
#define DATA_FIELDS ((int)(sizeof data_fields / sizeof data_fields[0]))
#define ENTRY_MAX (4 * DESCRIPTOR_PATH_MAX)

/* The value of `key` in a tab-separated entry, copied to out ("" when absent). */
static void entry_value(const char *entry, const char *key, char *out, size_t len)
{
    const size_t k = strlen(key);
    out[0] = '\0';
    for (const char *p = entry; p; p = strchr(p, '\t')) {
        if (*p == '\t') p++;
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            const int n = (int)strcspn(p + k + 1, "\t");
            snprintf(out, len, "%.*s", n, p + k + 1);
            return;
        }
    }
}

/* The latest start recorded in res (NULL: none) and the next free number. */
static const char *latest_entry(const results_t *res, long *next)
{
    const char *latest = NULL, *key, *value;
    long best = -1;
    for (int i = 0; results_attr_at(res, i, &key, &value) == 0; i++) {
        if (strncmp(key, RUN_HISTORY_PREFIX, strlen(RUN_HISTORY_PREFIX))) continue;
        char *end;
        const long index = strtol(key + strlen(RUN_HISTORY_PREFIX), &end, 10);
        if (*end || index < 0) continue; /* not one of ours */
        if (index > best) best = index, latest = value;
    }
    *next = best + 1;
    return latest;
}

int run_history_record(results_t *res, long step, const run_config_t *run, long train_images,
                       char *note, size_t notelen)
{
    struct stat st;
    const long long bytes = stat(run->train_data, &st) == 0 ? (long long)st.st_size : -1;
    char values[DATA_FIELDS][DESCRIPTOR_PATH_MAX + 32];
    snprintf(values[0], sizeof values[0], "%s", run->train_data);
    snprintf(values[1], sizeof values[1], "%ld", train_images);
    snprintf(values[2], sizeof values[2], "%lld", bytes);
    snprintf(values[3], sizeof values[3], "%ld", run->train_limit);
    snprintf(values[4], sizeof values[4], "%s", run->test_data);
    snprintf(values[5], sizeof values[5], "%ld", run->test_limit);

    char entry[ENTRY_MAX], key[64];
    int used = snprintf(entry, sizeof entry, "step=%ld", step);
    for (int i = 0; i < DATA_FIELDS && used > 0 && (size_t)used < sizeof entry; i++)
        used += snprintf(entry + used, sizeof entry - (size_t)used, "\t%s=%s", data_fields[i],
                         values[i]);

    /* what changed since the previous start, before this one is added */
    long next;
    const char *previous = latest_entry(res, &next);
    int changed = 0;
    if (previous) {
        char before[DESCRIPTOR_PATH_MAX + 32], since[32];
        entry_value(previous, "step", since, sizeof since);
        int n = snprintf(note, notelen, "resuming at step %ld with other data than the start at "
                         "step %s:", step, since);
        for (int i = 0; i < DATA_FIELDS; i++) {
            entry_value(previous, data_fields[i], before, sizeof before);
            if (strcmp(before, values[i]) == 0) continue;
            if (n > 0 && (size_t)n < notelen)
                n += snprintf(note + n, notelen - (size_t)n, "%s %s = %s (was %s)",
                              changed ? "," : "", data_fields[i], values[i], before);
            changed = 1;
        }
        if (changed && n > 0 && (size_t)n < notelen)
            snprintf(note + n, notelen - (size_t)n, "; recorded as " RUN_HISTORY_PREFIX "%04ld "
                     "in the results file", next);
    }
    snprintf(key, sizeof key, RUN_HISTORY_PREFIX "%04ld", next);
    if (results_set_attr(res, key, entry)) {
        snprintf(note, notelen, "out of memory recording the run history");
        return -1;
    }
    return changed;
}
