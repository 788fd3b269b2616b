/* mimae report (the rules are in experiments/report.h).
 *
 * Steps: find the run directories, load each results file (and the run's
 * descriptor for the keys results files do not hold), pick the keys whose
 * values differ, build the tables (text, Markdown and CSV cells are built
 * separately: rounded for reading, full precision for the CSV), group the
 * runs that differ only by seed, plot with gnuplot (report_plots.c), write
 * the files. Tables are report_table.c's. */
#include "experiments/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config/config.h"
#include "core/config/config_fields.h"
#include "experiments/descriptor.h"
#include "experiments/report_internal.h"
#include "io/bounded_read.h"
#include "io/io_error.h"
#include "io/io_path.h"
#include "io/results.h"
#include "io/text_escape.h"

#define EXIT_WRITE_FAILED 1
#define EXIT_BAD_INPUT 2

static const char *usage =
    "usage: mimae report SWEEP_DIR [--out DIR] [--no-plots] [--baseline ARM]\n"
    "\n"
    "Summarises the results files of a sweep or of runs side by side:\n"
    "  SWEEP_DIR/results.h5            a single run\n"
    "  SWEEP_DIR/task-NNNN/results.h5  the tasks of a sweep (mimae_dist --task)\n"
    "  SWEEP_DIR/task-NNNN-<arm>-seed<S>/results.h5  the tasks of an arm sweep\n"
    "  SWEEP_DIR/*/results.h5          runs side by side (e.g. demo/mimae, demo/mae)\n"
    "A task directory without a readable results file, a task listed as\n"
    "SWEEP_DIR/tasks/task-NNNN.ini without a directory, and a directory with\n"
    "descriptor.ini or checkpoints/ but no results.h5 are rows marked missing or\n"
    "failed. Only one level of subdirectories is looked at.\n"
    "\n"
    "One row per run, by task number: name (run.name), the configuration keys that\n"
    "differ between the runs (sweep.arm first) plus train.seed, steps done, the loss\n"
    "terms of the last logged step (L, L_rec, L_max, L_min, L_q), the evaluation\n"
    "metrics present (linear_probe_top1, knn_top1, finetune_top1, mi_*, ...),\n"
    "images/s (mean over the logged steps), status: finished, running (the\n"
    "results' status attribute; files without one count as finished), missing or\n"
    "failed. A running run shows its values so far; every mean, std, difference and\n"
    "accuracy plot uses finished runs only.\n"
    "\n"
    "Arm sweeps (some run has sweep.arm; the arm of a run without results comes from\n"
    "SWEEP_DIR/plan.tsv or its directory's name): per arm, in the order of their\n"
    "first task, the number of finished seeds and mean +- sample std (n - 1) of the\n"
    "top-1 accuracies, the MI statistics (mi_*) and the final L_rec; then for each\n"
    "other arm and metric the paired difference to the baseline arm over the seeds\n"
    "both finished, d = arm - baseline, with the 95 % interval mean d +- t(0.975,\n"
    "n - 1) sd(d) / sqrt(n) (paired t; none below 2 pairs) and * when it excludes 0.\n"
    "  --baseline ARM   the arm compared against (default: the lowest task's arm;\n"
    "                   an unknown arm exits 2 naming the arms)\n"
    "Other sweeps: runs that differ only by seed are also shown as mean +- std over\n"
    "the seeds (sample standard deviation).\n"
    "\n"
    "Prints the tables and writes, atomically, to DIR (default SWEEP_DIR):\n"
    "  report.csv         one row per run; for an arm sweep one row per arm and\n"
    "                     metric (arm, metric, n, mean, std, baseline, pairs, diff,\n"
    "                     lo, hi, excludes_zero), the runs in report-runs.csv\n"
    "  report-seeds.csv   mean and std per setting (not for arm sweeps)\n"
    "  report.md          the tables and the plots\n"
    "  report-loss.png    L_rec and L against the step, one line per run\n"
    "  report-<key>.png   top-1 accuracies against each numeric swept key; for an\n"
    "                     arm sweep instead:\n"
    "  report-arms-<metric>.png  each top-1 accuracy per arm, mean +- std bars and\n"
    "                     the seeds' values\n"
    "  report-arms-loss.png      L_rec and L per arm (mean over the finished seeds)\n"
    "                     against the masked views seen: equal-compute arms line up\n"
    "Plots need gnuplot (Debian: gnuplot-nox); --no-plots skips them.\n"
    "\n"
    "Each results file is read in a child process: one that crashes the HDF5\n"
    "library or takes longer than MIMAE_READ_TIMEOUT seconds (default 10, plus 1 s\n"
    "per 20 MB) is a row marked failed, \"unreadable (...)\", and the report goes on.\n"
    "\n"
    "Exit status: 0 done; 2 bad input (one line on stderr, nothing written); 1 a file\n"
    "could not be written or gnuplot failed (the other files are written).\n";

/* ------------------------------------------------------------------------
 * Small helpers. */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int rpt_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* "task-NNNN" (4 or more digits, as mimae_dist names task directories)
 * followed by `suffix`; for a directory (suffix NULL) by nothing, or by
 * "-" and more (an arm sweep's "task-NNNN-<arm>-seed<S>"): the task
 * number, else -1. */
static long task_number(const char *name, const char *suffix)
{
    if (strncmp(name, "task-", 5) != 0) return -1;
    const char *p = name + 5;
    long v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 12) v = v * 10 + (*p++ - '0'), digits++;
    if (digits < 4) return -1;
    if (suffix) return strcmp(p, suffix) == 0 ? v : -1;
    return *p == 0 || (p[0] == '-' && p[1]) ? v : -1;
}

/* An arm task's directory "task-NNNN-<arm>-seed<S>": its arm and seed (for
 * a run whose results file does not say); 0, else -1. */
static int arm_task_dir(const char *dir, char *arm, size_t alen, char *seed, size_t slen)
{
    if (task_number(dir, NULL) < 0) return -1;
    const char *start = strchr(dir + 5, '-'), *s = NULL;
    for (const char *p = start; p && (p = strstr(p + 1, "-seed")) != NULL;) s = p;
    if (!start || !s || s == start + 1 || !s[5] || strspn(s + 5, "0123456789") != strlen(s + 5))
        return -1;
    if (rpt_fmt(arm, alen, "%.*s", (int)(s - start - 1), start + 1) ||
        rpt_fmt(seed, slen, "%s", s + 5))
        return -1;
    return 0;
}

void rpt_fmt_exact(char *buf, size_t len, double v) { shortest_real(v, 0, buf, len); }

int rpt_parse_number(const char *s, double *v)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* ------------------------------------------------------------------------
 * Ordered key -> value text lists. */

const char *rpt_kv_get(const kvlist_t *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0) return l->items[i].value;
    return NULL;
}

static void kv_set(kvlist_t *l, const char *key, const char *value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0) {
            char *v = dup_str(value);
            if (!v) {
                l->oom = 1;
                return;
            }
            free(l->items[i].value);
            l->items[i].value = v;
            return;
        }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        kv_t *grown = realloc(l->items, (size_t)cap * sizeof *grown);
        if (!grown) {
            l->oom = 1;
            return;
        }
        l->items = grown;
        l->cap = cap;
    }
    kv_t kv = {dup_str(key), dup_str(value)};
    if (!kv.key || !kv.value) {
        free(kv.key);
        free(kv.value);
        l->oom = 1;
        return;
    }
    l->items[l->n++] = kv;
}

static void kv_free(kvlist_t *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int strlist_find(const strlist_t *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->s[i], s) == 0) return i;
    return -1;
}

static void strlist_add(strlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->s, (size_t)cap * sizeof *grown);
        if (!grown) {
            l->oom = 1;
            return;
        }
        l->s = grown;
        l->cap = cap;
    }
    char *d = dup_str(s);
    if (!d) {
        l->oom = 1;
        return;
    }
    l->s[l->n++] = d;
}

static void strlist_add_unique(strlist_t *l, const char *s)
{
    if (strlist_find(l, s) < 0) strlist_add(l, s);
}

static void strlist_free(strlist_t *l)
{
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------------------
 * Runs. */

static const char *const loss_names[5] = {"L", "L_rec", "L_max", "L_min", "L_q"};

static double loss_of(const step_metrics_t *s, int i)
{
    switch (i) {
    case 0: return s->total;
    case 1: return s->rec;
    case 2: return s->max;
    case 3: return s->min;
    default: return s->q;
    }
}

static run_entry_t *add_run(report_t *rp, const char *dir, long task)
{
    if (rp->nruns == rp->cap) {
        int cap = rp->cap ? 2 * rp->cap : 32;
        run_entry_t *grown = realloc(rp->runs, (size_t)cap * sizeof *grown);
        if (!grown) {
            rp->oom = 1;
            return NULL;
        }
        rp->runs = grown;
        rp->cap = cap;
    }
    run_entry_t *r = &rp->runs[rp->nruns++];
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->task = task;
    return r;
}

static run_entry_t *find_task(report_t *rp, long task)
{
    for (int i = 0; i < rp->nruns; i++)
        if (rp->runs[i].task == task) return &rp->runs[i];
    return NULL;
}

/* SWEEP_DIR itself, the tasks by number (then directory name), the others
 * by name. */
static int run_order(const void *pa, const void *pb)
{
    const run_entry_t *a = pa, *b = pb;
    int ga = strcmp(a->dir, ".") == 0 ? 0 : a->task >= 0 ? 1 : 2;
    int gb = strcmp(b->dir, ".") == 0 ? 0 : b->task >= 0 ? 1 : 2;
    if (ga != gb) return ga - gb;
    if (ga == 1 && a->task != b->task) return a->task < b->task ? -1 : 1;
    return strcmp(a->dir, b->dir);
}

/* The tasks `mimae sweep submit` expanded (SWEEP_DIR/tasks/task-NNNN.ini)
 * that have no directory: rows marked missing. */
static void add_listed_tasks(report_t *rp, const char *tasks_dir)
{
    DIR *t = opendir(tasks_dir);
    struct dirent *te;
    while (t && (te = readdir(t)) != NULL && !rp->oom) {
        long id = task_number(te->d_name, ".ini");
        char tdir[32];
        if (id < 0 || find_task(rp, id)) continue;
        snprintf(tdir, sizeof tdir, "task-%04ld", id);
        add_run(rp, tdir, id);
    }
    if (t) closedir(t);
}

/* plan.tsv's arm column (`task<TAB>arm<TAB>...`, an arm sweep's plan): the
 * arm of each task, for the tasks that left no results file. A plan that
 * is absent, unreadable or has no arm column gives none. */
static void load_plan_arms(report_t *rp)
{
    char path[RPATH], why[ERRLEN], line[4096];
    if (rpt_fmt(path, sizeof path, "%s/plan.tsv", rp->sweep_dir) || !exists(path)) return;
    io_file_err_t e = {path, why, sizeof why, 0};
    FILE *f = io_fopen_input(&e, "sweep plan", 0);
    if (!f) return;
    int header = 1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *arm = strchr(line, '\t');
        if (!arm) break;
        *arm++ = 0;
        arm[strcspn(arm, "\t")] = 0;
        if (header) {
            if (strcmp(line, "task") != 0 || strcmp(arm, "arm") != 0) break;
            header = 0;
            continue;
        }
        char *end, key[32];
        const long task = strtol(line, &end, 10);
        if (end == line || *end || task < 0 || !*arm) continue;
        snprintf(key, sizeof key, "%ld", task);
        kv_set(&rp->plan_arms, key, arm);
    }
    fclose(f);
    if (rp->plan_arms.oom) rp->oom = 1;
}

/* The run directories under the sweep directory (rules in report.h). */
static int discover(report_t *rp, char *err, size_t errlen)
{
    char path[RPATH];
    DIR *d = opendir(rp->sweep_dir);
    if (!d) return rpt_fmt(err, errlen, "%s: cannot list the directory (%s)", rp->sweep_dir,
                          strerror(errno)), -1;
    struct dirent *e;
    int has_tasks = 0;
    while ((e = readdir(d)) != NULL && !rp->oom) {
        const char *n = e->d_name;
        if (n[0] == '.') continue;
        if (rpt_fmt(path, sizeof path, "%s/%s", rp->sweep_dir, n) || !is_dir(path)) continue;
        long task = task_number(n, NULL);
        if (task >= 0) {
            add_run(rp, n, task);
            continue;
        }
        if (strcmp(n, "tasks") == 0) {
            has_tasks = 1; /* after the directories: a task with one is no placeholder */
            continue;
        }
        char probe[RPATH], probe2[RPATH], probe3[RPATH];
        if (rpt_fmt(probe, sizeof probe, "%s/results.h5", path) ||
            rpt_fmt(probe2, sizeof probe2, "%s/descriptor.ini", path) ||
            rpt_fmt(probe3, sizeof probe3, "%s/checkpoints", path))
            continue;
        if (exists(probe) || exists(probe2) || is_dir(probe3)) add_run(rp, n, -1);
    }
    closedir(d);
    if (has_tasks && !rpt_fmt(path, sizeof path, "%s/tasks", rp->sweep_dir))
        add_listed_tasks(rp, path);
    load_plan_arms(rp);
    if (rp->oom) return rpt_fmt(err, errlen, "out of memory"), -1;
    /* The directory itself: a run when it has results.h5, or (when nothing
     * else is here) a run that left only its descriptor. */
    int self = 0;
    if (!rpt_fmt(path, sizeof path, "%s/results.h5", rp->sweep_dir) && exists(path)) self = 1;
    if (!self && rp->nruns == 0 &&
        !rpt_fmt(path, sizeof path, "%s/descriptor.ini", rp->sweep_dir) && exists(path))
        self = 1;
    if (self && !add_run(rp, ".", -1)) return rpt_fmt(err, errlen, "out of memory"), -1;
    if (rp->nruns == 0)
        return rpt_fmt(err, errlen, "%s: no results files (results.h5, task-NNNN/results.h5 or "
                      "*/results.h5) and no task directories", rp->sweep_dir), -1;
    qsort(rp->runs, (size_t)rp->nruns, sizeof *rp->runs, run_order);
    return 0;
}

/* "PATH: reason: advice" -> detail "reason: advice", brief "reason". */
static void set_failure(run_entry_t *r, const char *path, const char *msg)
{
    size_t pl = strlen(path);
    if (strncmp(msg, path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0) msg += pl + 2;
    snprintf(r->detail, sizeof r->detail, "%s", msg);
    const char *cut = strstr(msg, ": ");
    int n = cut ? (int)(cut - msg) : (int)strlen(msg);
    if (n > (int)sizeof r->brief - 1) n = (int)sizeof r->brief - 1;
    snprintf(r->brief, sizeof r->brief, "%.*s", n, msg);
}

/* The first descriptor of the run that loads (its own effective descriptor,
 * else the sweep's expanded one for the task); NULL when none. */
static descriptor_t *load_descriptor(const report_t *rp, const run_entry_t *r, const char *dirpath)
{
    char cand[2][RPATH];
    int nc = 0;
    if (!rpt_fmt(cand[nc], RPATH, "%s/descriptor.ini", dirpath)) nc++;
    if (r->task >= 0 && !rpt_fmt(cand[nc], RPATH, "%s/tasks/task-%04ld.ini", rp->sweep_dir, r->task))
        nc++;
    descriptor_t *d = malloc(sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < nc; i++) {
        char why[ERRLEN];
        if (exists(cand[i]) && descriptor_load(d, cand[i], NULL, 0, -1, why, sizeof why) == 0)
            return d;
    }
    free(d);
    return NULL;
}

/* The results' `status` attribute: running or finished (absent in files
 * from before it: finished, as the report always took them). */
static void set_status(run_entry_t *r)
{
    const char *s = results_get_attr(r->res, "status");
    if (!s || strcmp(s, "finished") == 0) {
        r->status = RUN_FINISHED;
    } else if (strcmp(s, "running") == 0) {
        r->status = RUN_RUNNING;
    } else {
        r->status = RUN_FAILED;
        snprintf(r->detail, sizeof r->detail, "status '%.200s' in results.h5 (expected running "
                 "or finished)", s);
        snprintf(r->brief, sizeof r->brief, "unknown status");
    }
}

int rpt_has_results(const run_entry_t *r)
{
    return r->status == RUN_FINISHED || r->status == RUN_RUNNING;
}

static void load_run(report_t *rp, run_entry_t *r)
{
    char dirpath[RPATH], path[RPATH], msg[ERRLEN];
    const int self = strcmp(r->dir, ".") == 0;
    if (self) snprintf(dirpath, sizeof dirpath, "%s", rp->sweep_dir);
    else if (rpt_fmt(dirpath, sizeof dirpath, "%s/%s", rp->sweep_dir, r->dir)) dirpath[0] = 0;
    if (rpt_fmt(path, sizeof path, "%s/results.h5", dirpath)) path[0] = 0;
    if (!is_dir(dirpath)) {
        r->status = RUN_MISSING;
        snprintf(r->detail, sizeof r->detail, "no task directory");
        snprintf(r->brief, sizeof r->brief, "no task directory");
    } else if (!exists(path)) {
        r->status = RUN_MISSING;
        snprintf(r->detail, sizeof r->detail, "no results.h5");
        snprintf(r->brief, sizeof r->brief, "no results.h5");
    } else if ((r->res = bounded_results_load(path, msg, sizeof msg)) == NULL) {
        r->status = RUN_FAILED;
        set_failure(r, path, msg);
    } else {
        set_status(r);
    }
    const char *name = r->res ? results_get_attr(r->res, "run.name") : NULL;
    if (name && *name) snprintf(r->name, sizeof r->name, "%s", name);
    else rpt_fmt(r->name, sizeof r->name, "%s", self ? rp->sweep_name : r->dir);

    /* Configuration: the results' model config (else the descriptor's), the
     * descriptor's run keys, then the results' extra attributes. */
    descriptor_t *d = load_descriptor(rp, r, dirpath);
    const mimae_config_t *model = r->res ? results_config(r->res) : d ? &d->model : NULL;
    char key[160], value[128];
    if (model)
        for (int i = 0; i < mimae_config_field_count; i++) {
            const config_field_t *f = &mimae_config_fields[i];
            snprintf(key, sizeof key, "%s.%s", f->section, f->key);
            config_field_format_short(f, model, value, sizeof value);
            kv_set(&r->cfg, key, value);
        }
    if (d)
        for (int i = 0; i < run_config_field_count; i++) {
            const config_field_t *f = &run_config_fields[i];
            /* run.*: bookkeeping, not the experiment; text keys (paths, the preset
             * name) are where and how, the model keys above say what */
            if (strcmp(f->section, "run") == 0 || f->type == FIELD_TEXT) continue;
            snprintf(key, sizeof key, "%s.%s", f->section, f->key);
            config_field_format_short(f, &d->run, value, sizeof value);
            kv_set(&r->cfg, key, value);
        }
    free(d);
    /* the results' own "section.key" attributes fill in what no descriptor
     * said (train.seed when there is no descriptor.ini); the descriptor's
     * value wins otherwise (train.reduction: "auto" there, the resolved
     * "deterministic" or "fast" in the results) so that runs with and
     * without results compare alike */
    for (int i = 0; r->res && i < results_attr_count(r->res); i++) {
        const char *k, *v;
        if (results_attr_at(r->res, i, &k, &v) || !strchr(k, '.') || strncmp(k, "run.", 4) == 0 ||
            rpt_kv_get(&r->cfg, k))
            continue;
        kv_set(&r->cfg, k, v);
    }
    /* an arm task whose results do not say (none, or older): its arm from
     * plan.tsv or its directory's name, its seed from the name */
    char arm[256], seed[32], task[32];
    const int named = arm_task_dir(r->dir, arm, sizeof arm, seed, sizeof seed) == 0;
    snprintf(task, sizeof task, "%ld", r->task);
    const char *planned = r->task >= 0 ? rpt_kv_get(&rp->plan_arms, task) : NULL;
    if (!rpt_kv_get(&r->cfg, ARM_KEY) && (planned || named))
        kv_set(&r->cfg, ARM_KEY, planned ? planned : arm);
    if (!rpt_kv_get(&r->cfg, SEED_KEY) && named) kv_set(&r->cfg, SEED_KEY, seed);
    if (r->cfg.oom) rp->oom = 1;
}

/* ------------------------------------------------------------------------
 * Columns. */

/* The keys whose values differ between the runs that have them: sweep.arm
 * first, the others in the order first seen, train.seed last whenever a
 * run has it. */
static void pick_keys(report_t *rp)
{
    strlist_t all = {0};
    strlist_add(&all, ARM_KEY); /* no run that has it: it does not differ */
    for (int i = 0; i < rp->nruns; i++)
        for (int j = 0; j < rp->runs[i].cfg.n; j++) strlist_add_unique(&all, rp->runs[i].cfg.items[j].key);
    for (int k = 0; k < all.n; k++) {
        if (strcmp(all.s[k], SEED_KEY) == 0) continue;
        const char *first = NULL;
        int differs = 0;
        for (int i = 0; i < rp->nruns && !differs; i++) {
            const char *v = rpt_kv_get(&rp->runs[i].cfg, all.s[k]);
            if (!v) continue;
            if (!first) first = v;
            else if (strcmp(first, v) != 0) differs = 1;
        }
        if (differs) strlist_add(&rp->keys, all.s[k]);
    }
    if (strlist_find(&all, SEED_KEY) >= 0) {
        strlist_add(&rp->keys, SEED_KEY);
        rp->has_seed = 1;
    }
    if (all.oom || rp->keys.oom) rp->oom = 1;
    strlist_free(&all);
    rp->numeric = calloc((size_t)rp->keys.n + 1, sizeof *rp->numeric);
    if (!rp->numeric) {
        rp->oom = 1;
        return;
    }
    for (int k = 0; k < rp->keys.n; k++) {
        int numeric = 1;
        for (int i = 0; i < rp->nruns; i++) {
            const char *v = rpt_kv_get(&rp->runs[i].cfg, rp->keys.s[k]);
            double x;
            if (v && rpt_parse_number(v, &x)) numeric = 0;
        }
        rp->numeric[k] = numeric;
    }
}

int rpt_is_top1(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, "_top1") == 0;
}

/* Evaluation metrics: the three top-1 accuracies, then mi_*, then the rest,
 * each group in the order first seen. */
static void pick_evals(report_t *rp)
{
    static const char *const first[] = {"linear_probe_top1", "knn_top1", "finetune_top1"};
    strlist_t seen = {0};
    for (int i = 0; i < rp->nruns; i++) {
        const results_t *res = rp->runs[i].res;
        for (int j = 0; res && j < results_eval_count(res); j++) {
            const char *name;
            if (results_eval_at(res, j, &name, NULL, NULL, NULL) == 0) strlist_add_unique(&seen, name);
        }
    }
    for (int k = 0; k < 3; k++)
        if (strlist_find(&seen, first[k]) >= 0) strlist_add(&rp->evals, first[k]);
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < seen.n; j++)
            if ((strncmp(seen.s[j], "mi_", 3) == 0) == (pass == 0))
                strlist_add_unique(&rp->evals, seen.s[j]);
    if (seen.oom || rp->evals.oom) rp->oom = 1;
    strlist_free(&seen);
}

static void build_cols(report_t *rp)
{
    rp->cols = calloc((size_t)(7 + rp->evals.n), sizeof *rp->cols);
    if (!rp->cols) {
        rp->oom = 1;
        return;
    }
    int n = 0;
    rp->cols[n++] = (mcol_t){"steps", "steps", MC_STEPS, 0};
    for (int i = 0; i < 5; i++) rp->cols[n++] = (mcol_t){loss_names[i], loss_names[i], MC_LOSS, i};
    for (int i = 0; i < rp->evals.n; i++)
        rp->cols[n++] = (mcol_t){rp->evals.s[i], rp->evals.s[i], MC_EVAL, i};
    rp->cols[n++] = (mcol_t){"images_per_s", "img/s", MC_IMGS, 0};
    rp->ncols = n;
}

/* A run's value of a column: 0, or -1 when it has none. */
int rpt_metric_value(const run_entry_t *r, const mcol_t *m, double *v)
{
    if (!rpt_has_results(r)) return -1;
    const long n = results_step_count(r->res);
    const step_metrics_t *s = results_steps(r->res);
    switch (m->kind) {
    case MC_STEPS:
        if (n < 1) return -1;
        *v = (double)s[n - 1].step;
        return 0;
    case MC_LOSS:
        if (n < 1) return -1;
        *v = loss_of(&s[n - 1], m->index);
        return 0;
    case MC_EVAL: return results_get_eval(r->res, m->name, v) ? -1 : 0;
    default: {
        double sum = 0;
        long count = 0;
        for (long i = 0; i < n; i++)
            if (isfinite(s[i].images_per_s)) sum += s[i].images_per_s, count++;
        if (count == 0) return -1;
        *v = sum / (double)count;
        return 0;
    }
    }
}

/* Rounded for reading. */
void rpt_fmt_display(char *buf, size_t len, const mcol_t *m, double v)
{
    if (m->kind == MC_STEPS) snprintf(buf, len, "%.0f", v);
    else if (m->kind == MC_IMGS) snprintf(buf, len, "%.1f", v);
    else if (m->kind == MC_LOSS || rpt_is_top1(m->name) || strncmp(m->name, "mi_", 3) == 0)
        snprintf(buf, len, "%.4f", v);
    else snprintf(buf, len, "%.4g", v);
}

/* ------------------------------------------------------------------------
 * The per-run table. */

static const char *status_name(int s)
{
    static const char *const names[] = {"finished", "running", "missing", "failed"};
    return names[s];
}

/* csv: full precision, dir/status/detail columns; else rounded, "-" for none. */
static void build_run_table(const report_t *rp, table_t *t, int csv)
{
    const int ncols = 1 + (csv ? 3 : 1) + rp->keys.n + rp->ncols;
    rpt_table_init(t, ncols);
    int c = 0;
    rpt_table_head(t, c++, "name", 0);
    if (csv) {
        rpt_table_head(t, c++, "dir", 0);
        rpt_table_head(t, c++, "status", 0);
        rpt_table_head(t, c++, "detail", 0);
    }
    for (int k = 0; k < rp->keys.n; k++) rpt_table_head(t, c++, rp->keys.s[k], rp->numeric[k]);
    for (int m = 0; m < rp->ncols; m++) rpt_table_head(t, c++, csv ? rp->cols[m].name : rp->cols[m].label, 1);
    if (!csv) rpt_table_head(t, c++, "status", 0);
    char buf[ERRLEN + 32];
    for (int i = 0; i < rp->nruns; i++) {
        const run_entry_t *r = &rp->runs[i];
        int row = rpt_table_row(t);
        if (row < 0) return;
        c = 0;
        rpt_table_set(t, row, c++, r->name);
        if (csv) {
            rpt_table_set(t, row, c++, r->dir);
            rpt_table_set(t, row, c++, status_name(r->status));
            rpt_table_set(t, row, c++, rpt_has_results(r) ? "" : r->detail);
        }
        for (int k = 0; k < rp->keys.n; k++) {
            const char *v = rpt_kv_get(&r->cfg, rp->keys.s[k]);
            rpt_table_set(t, row, c++, v ? v : csv ? "" : "-");
        }
        for (int m = 0; m < rp->ncols; m++) {
            double v;
            if (rpt_metric_value(r, &rp->cols[m], &v)) snprintf(buf, sizeof buf, "%s", csv ? "" : "-");
            else if (csv) rpt_fmt_exact(buf, sizeof buf, v);
            else rpt_fmt_display(buf, sizeof buf, &rp->cols[m], v);
            rpt_table_set(t, row, c++, buf);
        }
        if (!csv) {
            if (rpt_has_results(r)) snprintf(buf, sizeof buf, "%s", status_name(r->status));
            else snprintf(buf, sizeof buf, "%s: %s", status_name(r->status), r->brief);
            rpt_table_set(t, row, c++, buf);
        }
    }
}

/* ------------------------------------------------------------------------
 * Files. */

/* data -> a temporary of our own beside PATH (never through a link),
 * fsync, rename onto PATH; on failure nothing. */
static int write_atomic(const char *path, const char *data, size_t n, char *err, size_t errlen)
{
    io_file_err_t e = {path, err, errlen, 0};
    return io_write_file(path, 0644, data, n, &e);
}

/* A memory stream for building a file. */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} membuf_t;

static int membuf_open(membuf_t *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    return m->f ? 0 : -1;
}

/* Closes the stream and writes it to path; frees the buffer. */
static int membuf_commit(membuf_t *m, const char *path, char *err, size_t errlen)
{
    int rc = fclose(m->f) == 0 ? 0 : -1;
    m->f = NULL;
    if (rc) rpt_fmt(err, errlen, "%s: out of memory", path);
    else rc = write_atomic(path, m->buf, m->len, err, errlen);
    free(m->buf);
    m->buf = NULL;
    return rc;
}

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char failed[RPATH];
    if (io_make_dirs(dir, failed, sizeof failed) == 0) return 0;
    const int e = errno;
    if (e == ENOTDIR && strcmp(failed, dir) == 0)
        return rpt_fmt(err, errlen, "--out %s: not a directory", dir), -1;
    return rpt_fmt(err, errlen, "--out %s: cannot create %s (%s)", dir, failed, strerror(e)), -1;
}


/* ------------------------------------------------------------------------
 * The report. */

/* "N runs, K finished, R running, M missing, F failed" */
static void print_counts(const report_t *rp, FILE *out)
{
    int count[4] = {0};
    for (int i = 0; i < rp->nruns; i++) count[rp->runs[i].status]++;
    fprintf(out, "%d run%s, %d finished", rp->nruns, rp->nruns == 1 ? "" : "s", count[RUN_FINISHED]);
    for (int s = RUN_RUNNING; s <= RUN_FAILED; s++)
        if (count[s]) fprintf(out, ", %d %s", count[s], status_name(s));
}

/* What the differences are, in a line: the baseline, the test, the seeds. */
static void print_diff_note(const groups_t *gs, FILE *out, int md)
{
    int fewest, most;
    rpt_seed_range(gs, &fewest, &most);
    char base[4 * 256]; /* a name from the results files, as it may be printed */
    text_escape(base, sizeof base, gs->g[gs->baseline].arm);
    if (gs->n < 2) {
        fprintf(out, "Only one arm (%s): nothing to compare.\n", base);
        return;
    }
    fprintf(out, "Differences to the baseline arm %s, paired by seed: d = arm - %s for each seed "
            "both finished; paired t, 95 %%: mean d %s t(0.975, n - 1) sd(d) / sqrt(n); * the "
            "interval excludes 0. ", base, base, md ? "±" : "+-");
    if (fewest == most) fprintf(out, "n = %d seed%s per arm.\n", most, most == 1 ? "" : "s");
    else fprintf(out, "n = %d to %d seeds per arm.\n", fewest, most);
}

static const char *no_keys_note(const report_t *rp)
{
    return rp->keys.n - rp->has_seed == 0 ? " No configuration key differs between the runs." : "";
}

/* The tables of report.md; groups, diffs: NULL when not shown. */
typedef struct {
    const table_t *runs, *groups, *diffs;
} md_tables_t;

static int write_markdown(const report_t *rp, const groups_t *gs, const md_tables_t *tb,
                          const plots_t *ps, char *err, size_t errlen)
{
    char path[RPATH];
    membuf_t m;
    if (rpt_fmt(path, sizeof path, "%s/report.md", rp->out_dir))
        return rpt_fmt(err, errlen, "%s: path too long", rp->out_dir), -1;
    if (membuf_open(&m)) return rpt_fmt(err, errlen, "out of memory"), -1;
    fprintf(m.f, "# mimae report: %s\n\n`%s`: ", rp->sweep_name, rp->sweep_dir);
    print_counts(rp, m.f);
    fprintf(m.f, ".%s\n\n", no_keys_note(rp));
    if (gs->by_arm) {
        fputs("## Arms\n\nMean ± sample standard deviation (n - 1) over the finished seeds of "
              "each arm, in the order of their first task; n is the number of finished seeds (of "
              "the arm's runs, when some are running, missing or failed), and (n=K) after a "
              "mean the number of them with a finite value of that metric when fewer. Top-1 and MI "
              "statistics: the latest evaluation; L_rec: the last logged step.\n\n", m.f);
        rpt_table_print_md(tb->groups, m.f);
        fputs("\n## Differences to the baseline\n\n", m.f);
        print_diff_note(gs, m.f, 1);
        if (tb->diffs) {
            fputc('\n', m.f);
            rpt_table_print_md(tb->diffs, m.f);
        }
        fputc('\n', m.f);
    }
    fputs("## Runs\n\nLoss terms at the last logged step; img/s is the mean over the logged "
          "steps; the columns between name and steps are the configuration keys that differ "
          "between the runs, and train.seed. A running run shows its values so far and is left "
          "out of every mean.\n\n", m.f);
    rpt_table_print_md(tb->runs, m.f);
    if (tb->groups && !gs->by_arm) {
        fputs("\n## Mean ± standard deviation over seeds\n\nSample standard deviation (n - 1) "
              "over the finished runs of each setting; n is the number of those runs "
              "(of the setting's runs, when some are running, missing or failed), and (n=K) "
              "after a mean the number of them with a finite value when fewer.\n\n", m.f);
        rpt_table_print_md(tb->groups, m.f);
    }
    if (ps->n) {
        fputs("\n## Plots\n\n", m.f);
        for (int i = 0; i < ps->n; i++) {
            fprintf(m.f, "![%s](", ps->p[i].title);
            fputs(ps->p[i].file, m.f);
            fputs(")\n\n", m.f);
        }
    }
    return membuf_commit(&m, path, err, errlen);
}

static int write_csv(const char *dir, const char *file, const table_t *t, char *err, size_t errlen)
{
    char path[RPATH];
    membuf_t m;
    if (rpt_fmt(path, sizeof path, "%s/%s", dir, file))
        return rpt_fmt(err, errlen, "%s: path too long", dir), -1;
    if (membuf_open(&m)) return rpt_fmt(err, errlen, "out of memory"), -1;
    rpt_table_print_csv(t, m.f);
    return membuf_commit(&m, path, err, errlen);
}

static void report_free(report_t *rp)
{
    for (int i = 0; i < rp->nruns; i++) {
        results_free(rp->runs[i].res);
        kv_free(&rp->runs[i].cfg);
    }
    free(rp->runs);
    kv_free(&rp->plan_arms);
    strlist_free(&rp->keys);
    strlist_free(&rp->evals);
    free(rp->numeric);
    free(rp->cols);
}

static void strip_slashes(char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = 0;
}

/* The directory's own name (for the title and a single run's name): its
 * last component, the working directory's for ".". */
static void sweep_base_name(const char *dir, char *buf, size_t len)
{
    char tmp[RPATH], cwd[RPATH];
    rpt_fmt(tmp, sizeof tmp, "%s", dir);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    if (n >= 2 && strcmp(tmp + n - 2, "/.") == 0) tmp[n -= 2] = 0;
    const char *slash = strrchr(tmp, '/');
    const char *base = slash && slash[1] ? slash + 1 : tmp;
    if ((strcmp(base, ".") == 0 || !*base) && getcwd(cwd, sizeof cwd) && strrchr(cwd, '/') &&
        strrchr(cwd, '/')[1])
        base = strrchr(cwd, '/') + 1;
    rpt_fmt(buf, len, "%s", *base ? base : dir);
}

static int bad(const char *msg)
{
    text_eprintf("mimae report: %s", msg);
    return EXIT_BAD_INPUT;
}

int report_command(int argc, char **argv)
{
    const char *sweep_dir = NULL, *out_dir = NULL, *baseline = NULL;
    int plots = 1;
    char err[ERRLEN + 256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) return bad("--out needs a directory (see mimae report --help)");
            out_dir = argv[++i];
        } else if (strcmp(a, "--baseline") == 0) {
            if (i + 1 >= argc) return bad("--baseline needs an arm (see mimae report --help)");
            baseline = argv[++i];
        } else if (strcmp(a, "--no-plots") == 0) {
            plots = 0;
        } else if (a[0] == '-' && a[1]) {
            snprintf(err, sizeof err, "unknown option %s (see mimae report --help)", a);
            return bad(err);
        } else if (sweep_dir) {
            snprintf(err, sizeof err, "unexpected argument '%s': give one SWEEP_DIR", a);
            return bad(err);
        } else {
            sweep_dir = a;
        }
    }
    if (!sweep_dir) return bad("missing SWEEP_DIR (see mimae report --help)");
    if (bounded_read_limit(NULL, err, sizeof err) < 0) return bad(err);
    struct stat st;
    if (stat(sweep_dir, &st) != 0) {
        snprintf(err, sizeof err, "%s: %s", sweep_dir, strerror(errno));
        return bad(err);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, sizeof err, "%s: not a directory (give the sweep or run directory)", sweep_dir);
        return bad(err);
    }

    /* without trailing slashes, for the file names shown */
    char sweep_buf[RPATH], out_buf[RPATH];
    if (rpt_fmt(sweep_buf, sizeof sweep_buf, "%s", sweep_dir) ||
        rpt_fmt(out_buf, sizeof out_buf, "%s", out_dir ? out_dir : sweep_dir))
        return bad("path too long");
    strip_slashes(sweep_buf);
    strip_slashes(out_buf);
    report_t rp;
    memset(&rp, 0, sizeof rp);
    rp.sweep_dir = sweep_buf;
    rp.out_dir = out_buf;
    sweep_base_name(sweep_dir, rp.sweep_name, sizeof rp.sweep_name);
    if (discover(&rp, err, sizeof err)) {
        int oom = rp.oom;
        report_free(&rp);
        if (oom) {
            text_eprintf("mimae report: %s", err);
            return EXIT_WRITE_FAILED;
        }
        return bad(err);
    }
    for (int i = 0; i < rp.nruns; i++) load_run(&rp, &rp.runs[i]);
    pick_keys(&rp);
    pick_evals(&rp);
    build_cols(&rp);
    groups_t gs = {0};
    if (rp.oom || rpt_make_groups(&rp, &gs)) {
        rpt_groups_free(&gs);
        report_free(&rp);
        fprintf(stderr, "mimae report: out of memory\n");
        return EXIT_WRITE_FAILED;
    }
    /* bad input found by now is refused before anything is written */
    if ((baseline && rpt_set_baseline(&gs, baseline, err, sizeof err)) ||
        (out_dir && mkdir_p(out_dir, err, sizeof err))) {
        rpt_groups_free(&gs);
        report_free(&rp);
        return bad(err);
    }

    /* the runs (report.csv, or report-runs.csv beside an arm sweep's arm
     * rows), the groups (report-seeds.csv by setting), the differences */
    table_t text, csv, gtext, gmd, gcsv, diffs;
    table_t *all[] = {&text, &csv, &gtext, &gmd, &gcsv, &diffs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) memset(all[i], 0, sizeof *all[i]);
    build_run_table(&rp, &text, 0);
    build_run_table(&rp, &csv, 1);
    if (gs.show) {
        rpt_build_group_table(&rp, &gs, &gtext, 0);
        rpt_build_group_table(&rp, &gs, &gmd, 1);
        if (gs.by_arm) rpt_build_arm_csv(&rp, &gs, &gcsv);
        else rpt_build_group_table(&rp, &gs, &gcsv, 2);
    }
    if (gs.by_arm && gs.n > 1) rpt_build_diff_table(&rp, &gs, &diffs);
    int status = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->oom) status = EXIT_WRITE_FAILED;
    if (status) {
        fprintf(stderr, "mimae report: out of memory\n");
        goto done;
    }

    /* stdout */
    char shown_dir[4 * RPATH]; /* command-line paths, as they may be printed */
    text_escape(shown_dir, sizeof shown_dir, rp.sweep_dir);
    printf("mimae report: %s: ", shown_dir);
    print_counts(&rp, stdout);
    printf(".%s\n\n", no_keys_note(&rp));
    rpt_table_print_text(&text, stdout);
    printf("(loss terms: the last logged step; img/s: mean over the logged steps; a running run: "
           "its values so far, left out of every mean)\n");
    if (gs.by_arm) {
        fputs("\nper arm, mean +- std over the finished seeds (sample std, n - 1; n: finished "
              "seeds, /all when some are running, missing or failed):\n", stdout);
        rpt_table_print_text(&gtext, stdout);
        fputc('\n', stdout);
        print_diff_note(&gs, stdout, 0);
        if (gs.n > 1) rpt_table_print_text(&diffs, stdout);
    } else if (gs.show) {
        fputs("\nmean +- std over seeds (sample std, n - 1; n: finished runs, /all when "
              "some are running, missing or failed):\n", stdout);
        rpt_table_print_text(&gtext, stdout);
    }

    /* files: plots first, so that report.md shows only those written */
    plots_t *ps = calloc(1, sizeof *ps);
    char plot_err[ERRLEN + 256] = "";
    if (!ps) {
        fprintf(stderr, "mimae report: out of memory\n");
        status = EXIT_WRITE_FAILED;
        goto done;
    }
    if (plots && rpt_make_plots(&rp, &gs, ps, plot_err, sizeof plot_err)) status = EXIT_WRITE_FAILED;
    /* each CSV this kind of report writes, and the others removed: an
     * earlier report's must not stand beside the new tables */
    const struct {
        const char *file;
        const table_t *t;
    } csvs[] = {
        {"report.csv", gs.by_arm ? &gcsv : &csv},
        {"report-runs.csv", gs.by_arm ? &csv : NULL},
        {"report-seeds.csv", gs.show && !gs.by_arm ? &gcsv : NULL},
    };
    char werr[ERRLEN + 256] = "", written[256] = "";
    int wrc = 0;
    for (size_t i = 0; i < sizeof csvs / sizeof csvs[0] && !wrc; i++) {
        char stale[RPATH];
        if (csvs[i].t) {
            wrc = write_csv(rp.out_dir, csvs[i].file, csvs[i].t, werr, sizeof werr);
            size_t used = strlen(written);
            snprintf(written + used, sizeof written - used, "%s%s", used ? ", " : "", csvs[i].file);
        } else if (!rpt_fmt(stale, sizeof stale, "%s/%s", rp.out_dir, csvs[i].file)) {
            unlink(stale);
        }
    }
    const md_tables_t tb = {&text, gs.show ? &gmd : NULL, gs.by_arm && gs.n > 1 ? &diffs : NULL};
    if (!wrc) wrc = write_markdown(&rp, &gs, &tb, ps, werr, sizeof werr);
    if (!wrc) {
        text_escape(shown_dir, sizeof shown_dir, rp.out_dir);
        printf("\nwrote %s/%s, report.md", shown_dir, written);
        for (int i = 0; i < ps->n; i++) printf(", %s", ps->p[i].file);
        printf("\n");
    }
    fflush(stdout);
    if (wrc) {
        text_eprintf("mimae report: %s", werr);
        status = EXIT_WRITE_FAILED;
    } else if (*plot_err) {
        text_eprintf("mimae report: %s", plot_err);
    }
    free(ps);

done:
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) rpt_table_free(all[i]);
    rpt_groups_free(&gs);
    report_free(&rp);
    return status;
}
