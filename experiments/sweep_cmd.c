/* `mimae sweep plan|submit` (experiments/sweep_cmd.h). */
#include "experiments/sweep_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "io/bounded_read.h"
#include "io/dataset.h"
#include "io/io_path.h"
#include "io/lock_file.h"
#include "io/results.h"
#include "io/text_escape.h"

enum { EXIT_OK = 0, EXIT_OTHER = 1, EXIT_BAD_INPUT = 2 };

#define MAX_SETS 64
#define MAX_SBATCH_OPTS 256
#define ERR_LEN 2048
#define PATH_LEN (DESCRIPTOR_PATH_MAX + 64)
#define TEMPLATE_FILE "slurm/job.sbatch.in" /* in the repository, beside build/ */
#define TEMPLATE_REL "../" TEMPLATE_FILE
#define TEMPLATE_ENV "MIMAE_SLURM_TEMPLATE"
#define SLURM_DEFAULT_MAX_ARRAY_SIZE 1001 /* slurm.conf(5): MaxArraySize */
#define TASK_FILES_MAX_BYTES (64L << 20)  /* tasks/task-NNNN.ini of one sweep, together */

typedef char assign_t[SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];

static const char *usage =
    "usage: mimae sweep plan EXP.ini [--set section.key=value]...\n"
    "       mimae sweep submit EXP.ini [--ranks R] [--limit L] [--set section.key=value]...\n"
    "                          [--bin DIR] [--template FILE] [--dry-run] [-- SBATCH_OPTION...]\n"
    "\n"
    "plan    prints the tasks of the descriptor's [sweep] (the Cartesian product of its\n"
    "        value lists; the first key slowest, the last fastest, `seeds` innermost):\n"
    "        index, each swept value, the task's directory run.out_dir/task-NNNN. With\n"
    "        [arm NAME] sections the tasks are arms x seeds (arms in file order, seeds\n"
    "        innermost): index, arm, seed, the arm's overrides and the directory\n"
    "        run.out_dir/task-NNNN-NAME-seedS.\n"
    "submit  writes the job script run.out_dir/sweep.sbatch (from slurm/job.sbatch.in),\n"
    "        each task's expanded descriptor run.out_dir/tasks/task-NNNN.ini and\n"
    "        run.out_dir/plan.tsv, then submits the tasks not done yet:\n"
    "          sbatch --array=LIST[%L] --signal=B:USR1@120 --requeue [SBATCH_OPTION...]\n"
    "        LIST leaves out the tasks whose results.h5 says status = finished and those\n"
    "        whose run directory a live job holds (its lock), one line each class\n"
    "        (\"3 of 18 finished: 0-2\"), in compact ranges (3-8,12,15-17); a results.h5\n"
    "        that cannot be read, is a link or is another run's (a config or seed not the\n"
    "        task's) is not finished (one line says so). Nothing left: says so,\n"
    "        exits 0 and runs no sbatch. An --array of yours after -- submits what it says.\n"
    "        Each array task runs `srun --mpi=pmix -n R mimae_dist EXP.ini --task ID` in\n"
    "        the current directory, logs to run.out_dir/logs/task-NNNN.log, and requeues\n"
    "        itself when stopped by SIGUSR1 after a checkpoint, to resume from it. A\n"
    "        descriptor without a [sweep] is one task, run without --task (with its\n"
    "        run.out_dir/task-0000 and name given by --set instead). Nothing is written\n"
    "        when the tasks exceed the cluster's MaxArraySize (scontrol show config, else\n"
    "        Slurm's default 1001) or their files would exceed 64 MiB.\n"
    "\n"
    "  --set section.key=value  override a key of EXP.ini (also passed to every task)\n"
    "  --ranks R                MPI ranks per task (default 1; sbatch --ntasks=R)\n"
    "  --limit L                at most L tasks running at once (sbatch --array=...%L)\n"
    "  --bin DIR                where mimae_dist is (default: next to this program)\n"
    "  --template FILE          job template (default: $" TEMPLATE_ENV ", else\n"
    "                           <program dir>/" TEMPLATE_REL ")\n"
    "  --dry-run                write the files and print the sbatch command (with the array\n"
    "                           it would submit), do not run it\n"
    "  -- SBATCH_OPTION...      passed to sbatch after ours (they win), e.g. -- --time=2:00:00\n"
    "                           --partition=cpu, or --overcommit to run R ranks on 1 CPU\n"
    "\n"
    "Relative paths in EXP.ini (data.*, run.out_dir) are relative to the current\n"
    "directory, where the jobs run too. Exit status: 0 done, 2 bad input, 1 other errors.\n";

typedef struct {
    int submit;
    const char *descriptor;
    const char *sets[MAX_SETS];
    int n_sets;
    long ranks, limit;
    const char *bin_dir, *template_path;
    int dry_run;
    char **sbatch_opts;
    int n_sbatch_opts;
} options_t;

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    text_eprintf("mimae sweep: %s (see mimae sweep --help)", msg);
    return EXIT_BAD_INPUT;
}

static int parse_count(const char *opt, const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v <= 0 || v > 1000000)
        return bad("%s %s: expected a positive integer", opt, text), -1;
    *out = v;
    return 0;
}

/* Returns -1 on a usage error (message printed), 1 for --help, 0 otherwise. */
static int parse_options(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof *o);
    o->ranks = 1;
    if (argc < 1) return bad("missing plan or submit"), -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    }
    if (strcmp(argv[0], "plan") == 0) o->submit = 0;
    else if (strcmp(argv[0], "submit") == 0) o->submit = 1;
    else return bad("unknown subcommand '%s': use plan or submit", argv[0]), -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (!o->submit) return bad("plan takes no sbatch options"), -1;
            o->sbatch_opts = argv + i + 1;
            o->n_sbatch_opts = argc - i - 1;
            if (o->n_sbatch_opts > MAX_SBATCH_OPTS)
                return bad("more than %d sbatch options", MAX_SBATCH_OPTS), -1;
            break;
        }
        if (a[0] != '-') {
            if (o->descriptor) return bad("unexpected argument '%s' (one descriptor)", a), -1;
            o->descriptor = a;
            continue;
        }
        if (strcmp(a, "--dry-run") == 0 && o->submit) {
            o->dry_run = 1;
            continue;
        }
        const int takes_value = strcmp(a, "--set") == 0 ||
                                (o->submit && (strcmp(a, "--ranks") == 0 ||
                                               strcmp(a, "--limit") == 0 ||
                                               strcmp(a, "--bin") == 0 ||
                                               strcmp(a, "--template") == 0));
        if (!takes_value) return bad("unknown option %s", a), -1;
        if (i + 1 >= argc) return bad("%s needs a value", a), -1;
        const char *v = argv[++i];
        if (strcmp(a, "--set") == 0) {
            if (o->n_sets == MAX_SETS) return bad("more than %d --set options", MAX_SETS), -1;
            o->sets[o->n_sets++] = v;
        } else if (strcmp(a, "--ranks") == 0) {
            if (parse_count(a, v, &o->ranks)) return -1;
        } else if (strcmp(a, "--limit") == 0) {
            if (parse_count(a, v, &o->limit)) return -1;
        } else if (strcmp(a, "--bin") == 0) {
            o->bin_dir = v;
        } else {
            o->template_path = v;
        }
    }
    if (!o->descriptor) return bad("missing EXP.ini"), -1;
    return 0;
}

/* The descriptor with the user's overrides, and its sweep. */
static int load_sweep(const options_t *o, descriptor_t *d, sweep_t *s, char *err, size_t errlen)
{
    if (descriptor_load(d, o->descriptor, o->sets, o->n_sets, 0, err, errlen)) return -1;
    if (sweep_parse(d, s, err, errlen)) return -1;
    return sweep_check_overrides(s, d, o->sets, o->n_sets, err, errlen);
}

/* The overrides of task t: the user's, then the task's assignments (as
 * mimae_dist --task orders them, so the task's values win). */
static int task_overrides(const options_t *o, const sweep_t *s, const descriptor_t *base, long t,
                          assign_t *assign, const char **list)
{
    int n = 0;
    for (int i = 0; i < o->n_sets; i++) list[n++] = o->sets[i];
    int k = sweep_task_assignments(s, base, t, assign);
    for (int i = 0; i < k; i++) list[n++] = assign[i];
    return k < 0 ? -1 : n;
}

/* The run directory of a task from its n assignments (run.out_dir=...
 * comes before run.name, last). */
static const char *task_dir(assign_t *assign, int n)
{
    return strchr(assign[n - 2], '=') + 1;
}

/* ---- plan ---- */

/* Text from the descriptor as the plan shows it: escaped (text_escape.h),
 * so a value cannot drive a terminal or split plan.tsv's columns. */
static const char *shown(char *buf, size_t len, const char *text)
{
    text_escape(buf, len, text);
    return buf;
}

/* The longest cell, an arm's overrides joined, escaped (4 bytes a byte at most). */
#define PLAN_JOINED (DESCRIPTOR_ARM_MAX_SETS * (DESCRIPTOR_ARM_SET_MAX + 2))
enum { PLAN_MAX_COLUMNS = DESCRIPTOR_MAX_SWEEP_KEYS + 4, PLAN_CELL = 4 * PLAN_JOINED + 1 };
typedef char plan_cell_t[PLAN_CELL];

/* The plan's column heads: task, arm (arms only), each swept key (with arms
 * the seed, swept or not), the arm's overrides (arms only), out_dir. */
static int plan_heads(const sweep_t *s, const char **heads)
{
    int n = 0;
    heads[n++] = "task";
    if (s->n_arms) heads[n++] = "arm";
    for (int k = 0; k < s->n_keys; k++) heads[n++] = s->keys[k];
    if (s->n_arms && s->n_keys == 0) heads[n++] = "train.seed";
    if (s->n_arms) heads[n++] = "overrides";
    heads[n++] = "out_dir";
    return n;
}

/* Task t's cells in plan_heads' order, escaped. */
static void plan_row(const descriptor_t *d, const sweep_t *s, long t, assign_t *assign,
                     plan_cell_t *cells)
{
    const int n = sweep_task_assignments(s, d, t, assign), a = sweep_arm_index(s, t);
    int c = 0;
    snprintf(cells[c++], PLAN_CELL, "%ld", t);
    if (a >= 0) shown(cells[c++], PLAN_CELL, d->arms[a].name);
    for (int k = 0; k < s->n_keys; k++)
        shown(cells[c++], PLAN_CELL, s->values[k][sweep_value_index(s, t, k)]);
    if (a >= 0 && s->n_keys == 0) snprintf(cells[c++], PLAN_CELL, "%ld", d->run.seed);
    if (a >= 0) {
        char joined[PLAN_JOINED] = "";
        for (int i = 0; i < d->arms[a].count; i++) { /* the arm's own: the first ones */
            const size_t used = strlen(joined);
            snprintf(joined + used, sizeof joined - used, "%s%s", i ? ", " : "", assign[i]);
        }
        shown(cells[c++], PLAN_CELL, joined[0] ? joined : "(none)");
    }
    shown(cells[c++], PLAN_CELL, task_dir(assign, n));
}

/* The table: header, one row per task, the total. tsv: tab-separated, no
 * total. 0, or -1 out of memory. */
static int print_plan(FILE *out, const descriptor_t *d, const sweep_t *s, int tsv)
{
    const char *heads[PLAN_MAX_COLUMNS];
    const int nc = plan_heads(s, heads);
    assign_t *assign = malloc(sizeof(assign_t) * SWEEP_MAX_ASSIGNMENTS);
    plan_cell_t *cells = malloc(sizeof(plan_cell_t) * PLAN_MAX_COLUMNS);
    if (!assign || !cells) {
        free(assign);
        free(cells);
        return -1;
    }
    int width[PLAN_MAX_COLUMNS];
    for (int c = 0; c < nc; c++) width[c] = (int)strlen(shown(cells[0], PLAN_CELL, heads[c]));
    for (long t = 0; t < s->tasks && !tsv; t++) {
        plan_row(d, s, t, assign, cells);
        for (int c = 0; c < nc; c++)
            if ((int)strlen(cells[c]) > width[c]) width[c] = (int)strlen(cells[c]);
    }
    if (!tsv) {
        char a[4 * DESCRIPTOR_PATH_MAX], b[4 * DESCRIPTOR_PATH_MAX], c[4 * DESCRIPTOR_PATH_MAX];
        fprintf(out, "sweep %s: %s, %ld task%s in %s\n", shown(a, sizeof a, d->run.name),
                shown(b, sizeof b, d->path), s->tasks, s->tasks == 1 ? "" : "s",
                shown(c, sizeof c, d->run.out_dir));
    }
    for (long t = -1; t < s->tasks; t++) { /* -1: the header */
        if (t < 0)
            for (int c = 0; c < nc; c++) shown(cells[c], PLAN_CELL, heads[c]);
        else
            plan_row(d, s, t, assign, cells);
        for (int c = 0; c < nc; c++) {
            if (tsv) fprintf(out, "%s%s", c ? "\t" : "", cells[c]);
            else if (c == 0) fprintf(out, "%*s", width[0], cells[0]); /* the index, right */
            else if (c == nc - 1) fprintf(out, "  %s", cells[c]);
            else fprintf(out, "  %-*s", width[c], cells[c]);
        }
        fputc('\n', out);
    }
    if (!tsv) fprintf(out, "%ld task%s\n", s->tasks, s->tasks == 1 ? "" : "s");
    free(assign);
    free(cells);
    return 0;
}

/* ---- submit: files ---- */

/* path made absolute against the current directory, without resolving links
 * (a descriptor's name gives run.name, so a link's own name must stay). */
static int absolute(const char *path, char *out, size_t len, char *err, size_t errlen)
{
    if (path[0] == '/') {
        if (snprintf(out, len, "%s", path) >= (int)len)
            return snprintf(err, errlen, "%.64s...: path too long", path), -1;
        return 0;
    }
    char cwd[PATH_LEN];
    if (!getcwd(cwd, sizeof cwd))
        return snprintf(err, errlen, "cannot read the current directory (%s)", strerror(errno)), -1;
    while (path[0] == '.' && path[1] == '/') path += 2;
    if (snprintf(out, len, "%s/%s", strcmp(cwd, "/") ? cwd : "", path) >= (int)len)
        return snprintf(err, errlen, "%.64s...: path too long", path), -1;
    return 0;
}

/* Characters a #SBATCH line or an unquoted path cannot hold. */
static int plain_path(const char *what, const char *p, char *err, size_t errlen)
{
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || strchr(" \t'\"\\$`%", *c))
            return snprintf(err, errlen, "%s %s: contains a blank, quote, '\\', '$', '`', '%%' or "
                            "control character, which a job script line cannot hold: use a path "
                            "(or a link) without them", what, p), -1;
    return 0;
}

static int write_file_atomic(const char *path, const char *text, mode_t mode, char *err,
                             size_t errlen)
{
    io_file_err_t e = {path, err, errlen, 0};
    return io_write_file(path, mode, text, strlen(text), &e);
}

static char *read_text(const char *path, char *err, size_t errlen)
{
    char why[ERR_LEN / 2];
    io_file_err_t e = {path, why, sizeof why, 0};
    FILE *f = io_fopen_input(&e, "job template", 1);
    if (!f) return snprintf(err, errlen, "%s: give --template FILE", why), NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (len < cap - 1) break;
        char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown, cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        free(buf);
        snprintf(err, errlen, "%s: cannot read the job template", path);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* A growing string. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text_t;

static void text_add(text_t *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p, t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void text_str(text_t *t, const char *s) { text_add(t, s, strlen(s)); }

/* s in single quotes for the shell. */
static void text_quoted(text_t *t, const char *s)
{
    text_str(t, "'");
    for (; *s; s++) {
        if (*s == '\'') text_str(t, "'\\''");
        else text_add(t, s, 1);
    }
    text_str(t, "'");
}

typedef struct {
    const char *name, *value;
} field_t;

/* Replaces every @NAME@ (NAME of capitals, digits and '_') by its value;
 * other '@' stay. An unknown @NAME@ is an error (a template typo). */
static int fill_template(const char *tpl, const char *tpl_path, const field_t *fields, int n,
                         text_t *out, char *err, size_t errlen)
{
    const char *p = tpl;
    while (*p) {
        const char *at = strchr(p, '@');
        if (!at) {
            text_str(out, p);
            break;
        }
        text_add(out, p, (size_t)(at - p));
        const char *q = at + 1;
        while ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') q++;
        if (*q != '@' || q == at + 1 || !(at[1] >= 'A' && at[1] <= 'Z')) {
            text_str(out, "@");
            p = at + 1;
            continue;
        }
        const size_t len = (size_t)(q - at - 1);
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (strlen(fields[i].name) == len && strncmp(fields[i].name, at + 1, len) == 0) found = i;
        if (found < 0)
            return snprintf(err, errlen, "%s: unknown field @%.*s@ in the job template", tpl_path,
                            (int)len, at + 1), -1;
        text_str(out, fields[found].value);
        p = q + 1;
    }
    if (out->failed) return snprintf(err, errlen, "out of memory filling the job template"), -1;
    return 0;
}

/* The directory of the running program (/proc/self/exe). */
static int program_dir(char *out, size_t len, char *err, size_t errlen)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    if (n <= 0 || (size_t)n >= len - 1)
        return snprintf(err, errlen, "cannot find this program's directory (/proc/self/exe): "
                        "give --bin DIR and --template FILE"), -1;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (slash == out) slash[1] = 0;
    else if (slash) *slash = 0;
    return 0;
}

/* The job template: --template FILE, else $MIMAE_SLURM_TEMPLATE, else
 * <program dir>/../slurm/job.sbatch.in (the repository's, for a program in
 * build/ or build-san/, from whatever directory it is run). 0, or -1 with
 * one line naming the path tried, where it came from and the fixes. */
static int find_template(const options_t *o, const char *exe_dir, char *out, size_t len, char *err,
                         size_t errlen)
{
    const char *env = getenv(TEMPLATE_ENV);
    char source[PATH_LEN + 64];
    int n;
    if (o->template_path) {
        snprintf(source, sizeof source, "from --template");
        n = snprintf(out, len, "%s", o->template_path);
    } else if (env && *env) {
        snprintf(source, sizeof source, "from " TEMPLATE_ENV);
        n = snprintf(out, len, "%s", env);
    } else { /* <program dir>/.. spelled without "..": /proc/self/exe has no links */
        snprintf(source, sizeof source, "the default for a program in %s", exe_dir);
        const char *slash = strrchr(exe_dir, '/');
        const int parent_len = slash && slash != exe_dir ? (int)(slash - exe_dir) : 0;
        n = snprintf(out, len, "%.*s/" TEMPLATE_FILE, parent_len, exe_dir);
    }
    if (n < 0 || (size_t)n >= len) return snprintf(err, errlen, "job template path too long"), -1;
    if (access(out, R_OK))
        return snprintf(err, errlen, "no job template at %.900s (%.700s; %s): give --template FILE or set "
                        TEMPLATE_ENV "=FILE, the repository's " TEMPLATE_FILE, out, source,
                        strerror(errno)), -1;
    return 0;
}

/* Data set sizes, opened once per path. */
typedef struct {
    char path[DESCRIPTOR_PATH_MAX];
    long n;
} size_cache_t;

static long train_images(size_cache_t *cache, int *n_cache, int cap, const char *path, char *err,
                         size_t errlen)
{
    for (int i = 0; i < *n_cache; i++)
        if (strcmp(cache[i].path, path) == 0) return cache[i].n;
    dataset_t *ds = dataset_open(path, err, errlen);
    if (!ds) return -1;
    long n = dataset_get_info(ds)->n;
    dataset_close(ds);
    if (*n_cache < cap) {
        snprintf(cache[*n_cache].path, sizeof cache[0].path, "%s", path);
        cache[(*n_cache)++].n = n;
    }
    return n;
}

/* The task files together, estimated from the first (the others differ
 * in a few values), must stay below TASK_FILES_MAX_BYTES. Returns 0,
 * EXIT_BAD_INPUT (too big, or task 0 cannot be written) or EXIT_OTHER (out
 * of memory). */
static int check_task_files_size(const descriptor_t *first, long tasks, char *err, size_t errlen)
{
    char *text = NULL, why[ERR_LEN / 2];
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp) return snprintf(err, errlen, "out of memory"), EXIT_OTHER;
    const int bad = descriptor_print(first, fp, why, sizeof why);
    const int failed = fclose(fp) != 0;
    free(text);
    if (bad) return snprintf(err, errlen, "task 0: %s", why), EXIT_BAD_INPUT;
    if (failed) return snprintf(err, errlen, "out of memory"), EXIT_OTHER;
    if ((double)len * (double)tasks <= (double)TASK_FILES_MAX_BYTES) return 0;
    snprintf(err, errlen, "%s: the %ld task files would take about %.0f MiB (%zu bytes each), "
             "more than the %ld MiB a sweep may write: split the [sweep] into smaller ones",
             first->path, tasks, (double)len * (double)tasks / (1 << 20), len,
             TASK_FILES_MAX_BYTES >> 20);
    return EXIT_BAD_INPUT;
}

/* What a task runs as its results file records it: the model config (the
 * schedule derived from its data set) and the seed. */
typedef struct {
    mimae_config_t model;
    long seed;
} task_run_t;

/* Every task's expanded descriptor, as mimae_dist --task would load it (the
 * schedule derived from the task's data set), written to dir/task-NNNN.ini
 * (dir NULL: only checked), and into runs[t] when runs is not NULL. Returns
 * 0, EXIT_BAD_INPUT (a task that cannot run) or EXIT_OTHER (a write failed,
 * out of memory). */
static int write_task_descriptors(const options_t *o, const char *desc_path,
                                  const descriptor_t *base, const sweep_t *s, const char *dir,
                                  task_run_t *runs, char *err, size_t errlen)
{
    enum { CACHE = 16 };
    descriptor_t *d = malloc(sizeof *d);
    assign_t *assign = malloc(sizeof(assign_t) * SWEEP_MAX_ASSIGNMENTS);
    size_cache_t *cache = malloc(sizeof *cache * CACHE);
    int n_cache = 0, rc = 0;
    if (!d || !assign || !cache) {
        snprintf(err, errlen, "out of memory");
        rc = EXIT_OTHER;
    }
    const char *list[MAX_SETS + SWEEP_MAX_ASSIGNMENTS];
    char path[PATH_LEN + 96], why[ERR_LEN / 2];
    for (long t = 0; t < s->tasks && rc == 0; t++) {
        const int n = task_overrides(o, s, base, t, assign, list);
        rc = EXIT_BAD_INPUT;
        if (descriptor_load(d, desc_path, list, n, 0, why, sizeof why)) {
            snprintf(err, errlen, "task %ld: %s", t, why);
            break;
        }
        const long images = train_images(cache, &n_cache, CACHE, d->run.train_data, why, sizeof why);
        if (images < 0) {
            snprintf(err, errlen, "task %ld: %s (data.train is read now to derive the schedule "
                     "of each task's descriptor; paths are relative to the current directory)",
                     t, why);
            break;
        }
        if (descriptor_load(d, desc_path, list, n, images, why, sizeof why)) {
            snprintf(err, errlen, "task %ld: %s", t, why);
            break;
        }
        if (d->model.global_batch % o->ranks) {
            snprintf(err, errlen, "task %ld: train.global_batch = %d is not divisible by --ranks "
                     "%ld: use a divisor of it", t, d->model.global_batch, o->ranks);
            break;
        }
        descriptor_as_run(d); /* what the task runs: no [sweep] or arms left in it */
        if (runs) runs[t] = (task_run_t){d->model, d->run.seed};
        rc = !dir && t == 0 ? check_task_files_size(d, s->tasks, err, errlen) : 0;
        if (rc) break;
        if (!dir) continue;
        snprintf(path, sizeof path, "%s/task-%04ld.ini", dir, t);
        if (descriptor_write(d, path, err, errlen)) rc = EXIT_OTHER;
    }
    free(d);
    free(assign);
    free(cache);
    return rc;
}

/* ---- submit: what is left to do ---- */

/* Whether the user's sbatch options choose the array themselves (they come
 * after ours, so they win). */
static int user_array(const options_t *o)
{
    for (int i = 0; i < o->n_sbatch_opts; i++) {
        const char *a = o->sbatch_opts[i];
        if ((strncmp(a, "--array", 7) == 0 && (a[7] == '=' || a[7] == '\0')) ||
            strncmp(a, "-a", 2) == 0)
            return 1;
    }
    return 0;
}

enum { TASK_TODO = 0, TASK_FINISHED = 1, TASK_RUNNING = 2 };

/* Whether the results at path are task t's own, finished: status finished,
 * and the config and seed the task runs with (a file the task would refuse
 * to resume from is another run's). 0 with a line saying why not. */
static int own_finished_results(const results_t *res, const char *path, long t,
                                const task_run_t *want)
{
    char why[ERR_LEN], other[64];
    if (!results_finished(res)) return 0;
    snprintf(other, sizeof other, "task %ld", t);
    if (results_check_config(res, path, &want->model, other, "another run's results", why,
                             sizeof why)) {
        text_eprintf("mimae sweep: task %ld: %s: not finished, so submitted again (move the "
                     "directory away to keep those results)", t, why);
        return 0;
    }
    const char *seed = results_get_attr(res, "train.seed");
    char *end = NULL;
    const long v = seed ? strtol(seed, &end, 10) : want->seed;
    if (seed && (end == seed || *end || v != want->seed)) {
        text_eprintf("mimae sweep: task %ld: %s: train.seed is %s in the results file but %ld in "
                     "task %ld: another run's results, not finished, so submitted again (move the "
                     "directory away to keep those results)", t, path, seed, want->seed, t);
        return 0;
    }
    return 1;
}

/* What the run directory of task t says: its lock held by a live job
 * (running), its results.h5 the task's own and finished, or neither (to
 * do). A results.h5 that is not a regular file (the task refuses it), cannot
 * be read (in a child process with a time bound: io/bounded_read.h) or is
 * another run's is not finished, said in one line. */
static unsigned char task_state(const char *dir, long t, const task_run_t *want)
{
    char path[PATH_LEN + 32], why[ERR_LEN];
    snprintf(path, sizeof path, "%s/" LOCK_FILE_RUN_NAME, dir);
    if (lock_file_probe(path, why, sizeof why, why, sizeof why) == 1) return TASK_RUNNING;
    snprintf(path, sizeof path, "%s/" RESULTS_FILE_NAME, dir);
    struct stat st;
    if (lstat(path, &st) != 0) return TASK_TODO;
    if (!S_ISREG(st.st_mode)) {
        text_eprintf("mimae sweep: task %ld: %s: %s, not a regular file (the task refuses it: "
                     "remove it): not finished, so submitted again", t, path,
                     S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file");
        return TASK_TODO;
    }
    results_t *res = bounded_results_load(path, why, sizeof why);
    if (!res) {
        text_eprintf("mimae sweep: task %ld: %s: not finished, so submitted again", t, why);
        return TASK_TODO;
    }
    const int finished = own_finished_results(res, path, t, want);
    results_free(res);
    return finished ? TASK_FINISHED : TASK_TODO;
}

/* The tasks t with mark[t] == want as Slurm's compact list: "0-2,5,7-9". */
static void task_ranges(text_t *out, const unsigned char *mark, long n, unsigned char want)
{
    int first = 1;
    for (long t = 0; t < n; t++) {
        if (mark[t] != want) continue;
        long end = t;
        while (end + 1 < n && mark[end + 1] == want) end++;
        char range[64];
        if (end > t) snprintf(range, sizeof range, "%s%ld-%ld", first ? "" : ",", t, end);
        else snprintf(range, sizeof range, "%s%ld", first ? "" : ",", t);
        text_str(out, range);
        first = 0;
        t = end;
    }
}

/* Each task's state into state[] (runs: what each runs); one line per class
 * not submitted ("3 of 18 finished: 0-2"). The count left to do, or -1 out
 * of memory. */
static long classify_tasks(const descriptor_t *d, const sweep_t *s, const task_run_t *runs,
                           unsigned char *state)
{
    assign_t *assign = malloc(sizeof(assign_t) * SWEEP_MAX_ASSIGNMENTS);
    if (!assign) return -1;
    long count[3] = {0, 0, 0};
    for (long t = 0; t < s->tasks; t++) {
        const int n = sweep_task_assignments(s, d, t, assign);
        state[t] = task_state(task_dir(assign, n), t, &runs[t]);
        count[state[t]]++;
    }
    free(assign);
    static const struct {
        unsigned char state;
        const char *what;
    } skipped[] = {{TASK_FINISHED, "finished"},
                   {TASK_RUNNING, "running (their run directory is locked by a live job)"}};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        if (count[skipped[i].state] == 0) continue;
        text_t list = {0};
        task_ranges(&list, state, s->tasks, skipped[i].state);
        if (list.failed) return free(list.p), -1;
        printf("%ld of %ld %s: %s\n", count[skipped[i].state], s->tasks, skipped[i].what, list.p);
        free(list.p);
    }
    return count[TASK_TODO];
}

/* ---- submit: sbatch ---- */

/* Runs argv, its stdout into out (NUL-terminated; stderr shown, or dropped
 * when quiet); returns the exit status, 127 when it cannot be started, -1
 * on an error here. */
static int run_capture(char *const *argv, char *out, size_t len, int quiet)
{
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], STDOUT_FILENO) < 0) _exit(127);
        close(fd[1]);
        if (quiet) {
            const int null = open("/dev/null", O_WRONLY);
            if (null < 0 || dup2(null, STDERR_FILENO) < 0) _exit(127);
            close(null);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t used = 0;
    for (;;) {
        char buf[512];
        ssize_t n = read(fd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n && used + 1 < len; i++) out[used++] = buf[i];
    }
    out[used] = 0;
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void print_command(FILE *out, char *const *argv)
{
    text_t t = {0};
    for (int i = 0; argv[i]; i++) {
        if (i) text_str(&t, " ");
        int plain = argv[i][0] != 0;
        for (const char *c = argv[i]; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@%+",
                        *c))
                plain = 0;
        if (plain) text_str(&t, argv[i]);
        else text_quoted(&t, argv[i]);
    }
    fprintf(out, "%s\n", t.p ? t.p : "");
    free(t.p);
}

/* Slurm's MaxArraySize: from `scontrol show config` ("MaxArraySize = N")
 * when it answers, else Slurm's default; `source` says which. */
static long max_array_size(char *source, size_t len)
{
    enum { OUT = 1 << 18 }; /* the whole configuration is a few tens of kB */
    char *out = malloc(OUT);
    char *const argv[] = {"timeout", "20", "scontrol", "show", "config", NULL};
    long size = -1;
    if (out && run_capture(argv, out, OUT, 1) == 0) {
        for (const char *line = out; line && size < 0; line = strchr(line, '\n')) {
            while (*line == '\n') line++;
            if (strncmp(line, "MaxArraySize", 12)) continue;
            const char *eq = strchr(line, '=');
            char *end = NULL;
            if (eq && eq < line + strcspn(line, "\n")) size = strtol(eq + 1, &end, 10);
            if (!end || end == eq + 1 || size < 0) size = -1;
        }
    }
    free(out);
    if (size >= 0) {
        snprintf(source, len, "from scontrol show config");
        return size;
    }
    snprintf(source, len, "Slurm's default: scontrol show config did not answer");
    return SLURM_DEFAULT_MAX_ARRAY_SIZE;
}

/* An array Slurm would refuse is refused here, before anything is written
 * (a 10,000-task sweep used to write its task files, then sbatch said no). */
static int check_array_size(const options_t *o, const descriptor_t *d, const sweep_t *s,
                            char *err, size_t errlen)
{
    char source[128];
    const long max = max_array_size(source, sizeof source);
    if (max == 0)
        return snprintf(err, errlen, "%s: job arrays are disabled on this cluster "
                        "(MaxArraySize = 0, %s): ask for MaxArraySize in slurm.conf, or run "
                        "the tasks with mimae_dist --task", d->path, source), -1;
    if (s->tasks > max)
        return snprintf(err, errlen, "%s: the sweep has %ld tasks, more than the job array "
                        "limit MaxArraySize = %ld (%s): split the [sweep] into descriptors of at "
                        "most %ld tasks", d->path, s->tasks, max, source, max), -1;
    if (o->limit > max)
        return snprintf(err, errlen, "--limit %ld: more than the job array limit "
                        "MaxArraySize = %ld (%s): use at most %ld", o->limit, max, source,
                        max), -1;
    return 0;
}

static int submit(const options_t *o, const descriptor_t *d, const sweep_t *s)
{
    char err[ERR_LEN] = "";
    char exe_dir[PATH_LEN], desc_abs[PATH_LEN], out_abs[PATH_LEN], cwd[PATH_LEN];
    char dist[PATH_LEN + 16], tpl_path[PATH_LEN + 32], dir[PATH_LEN + 16];
    char script[PATH_LEN + 16], logs[PATH_LEN + 16];
    int status = EXIT_BAD_INPUT;
    char *tpl = NULL;
    unsigned char *state = NULL;
    task_run_t *runs = NULL;
    text_t body = {0}, sets = {0}, q_work = {0}, q_dist = {0}, q_desc = {0}, task_args = {0};
    text_t array = {0}, opt_array = {0};

    /* where things are */
    if ((!o->bin_dir || !o->template_path) && program_dir(exe_dir, sizeof exe_dir, err, sizeof err))
        goto fail;
    char dist_rel[PATH_LEN + 16];
    snprintf(dist_rel, sizeof dist_rel, "%s/mimae_dist", o->bin_dir ? o->bin_dir : exe_dir);
    if (absolute(dist_rel, dist, sizeof dist, err, sizeof err)) goto fail;
    if (access(dist, X_OK)) {
        snprintf(err, sizeof err, "%s: no mimae_dist program there (%s): build it (make) or give "
                 "--bin DIR", dist, strerror(errno));
        goto fail;
    }
    if (find_template(o, exe_dir, tpl_path, sizeof tpl_path, err, sizeof err)) goto fail;
    if (!(tpl = read_text(tpl_path, err, sizeof err))) goto fail;
    if (absolute(o->descriptor, desc_abs, sizeof desc_abs, err, sizeof err) ||
        absolute(d->run.out_dir, out_abs, sizeof out_abs, err, sizeof err))
        goto fail;
    if (!getcwd(cwd, sizeof cwd)) {
        snprintf(err, sizeof err, "cannot read the current directory (%s)", strerror(errno));
        goto fail;
    }
    if (plain_path("run.out_dir", out_abs, err, sizeof err) ||
        plain_path("the current directory", cwd, err, sizeof err) ||
        plain_path("the descriptor", desc_abs, err, sizeof err) ||
        plain_path("mimae_dist", dist, err, sizeof err))
        goto fail;

    /* The array as Slurm will take it, and every task as mimae_dist will
     * load it, before anything is written. */
    if (check_array_size(o, d, s, err, sizeof err)) goto fail;
    snprintf(dir, sizeof dir, "%s/tasks", out_abs);
    snprintf(logs, sizeof logs, "%s/logs", out_abs);
    status = EXIT_OTHER;
    if (!user_array(o) && !(runs = malloc((size_t)s->tasks * sizeof *runs))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    status = write_task_descriptors(o, desc_abs, d, s, NULL, runs, err, sizeof err);
    if (status) goto fail;

    /* What is left to do: tasks whose own results say finished, or whose
     * run directory a live job holds, are not submitted again (unless the
     * user's own --array chooses). */
    status = EXIT_OTHER;
    if (!(state = calloc((size_t)s->tasks, 1))) { /* every task TASK_TODO */
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (runs) {
        status = EXIT_BAD_INPUT;
        if (bounded_read_limit(NULL, err, sizeof err) < 0) goto fail;
        status = EXIT_OTHER;
        const long left = classify_tasks(d, s, runs, state);
        if (left < 0) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        if (left == 0) {
            printf("nothing to submit: every task is finished or running\n");
            status = EXIT_OK;
            goto done;
        }
    }

    /* the job script, in memory */
    status = EXIT_BAD_INPUT;
    char ranks[32], tasks[32], job_name[sizeof d->run.name];
    task_ranges(&array, state, s->tasks, TASK_TODO);
    if (o->limit > 0) {
        char limit[32];
        snprintf(limit, sizeof limit, "%%%ld", o->limit);
        text_str(&array, limit);
    }
    text_str(&opt_array, "--array=");
    text_str(&opt_array, array.p ? array.p : "");
    snprintf(ranks, sizeof ranks, "%ld", o->ranks);
    snprintf(tasks, sizeof tasks, "%ld", s->tasks);
    snprintf(job_name, sizeof job_name, "%s", d->run.name);
    for (char *c = job_name; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c)) *c = '_';
    for (int i = 0; i < o->n_sets; i++) {
        text_str(&sets, " --set ");
        text_quoted(&sets, o->sets[i]);
    }
    /* How the job names its task to mimae_dist: --task ID for a [sweep]. A
     * descriptor without one is a single task that mimae_dist must run
     * without --task (it refuses --task there), so the job gets that task's
     * directory and name as --set options, after the user's as --task
     * would order them: the same run in run.out_dir/task-0000. */
    if (sweep_expands(s)) {
        text_str(&task_args, " --task \"$task\"");
    } else {
        assign_t single[2]; /* run.out_dir and run.name: no swept keys */
        const int n_assign = sweep_task_assignments(s, d, 0, single);
        for (int i = 0; i < n_assign && i < 2; i++) {
            text_str(&task_args, " --set ");
            text_quoted(&task_args, single[i]);
        }
    }
    text_quoted(&q_work, cwd);
    text_quoted(&q_dist, dist);
    text_quoted(&q_desc, desc_abs);
    snprintf(script, sizeof script, "%s/sweep.sbatch", out_abs);
    const field_t fields[] = {
        {"SWEEP_NAME", job_name}, {"JOB_NAME", job_name},  {"TASKS", tasks},
        {"ARRAY", array.p},       {"RANKS", ranks},        {"DESCRIPTOR", desc_abs},
        {"DESCRIPTOR_Q", q_desc.p}, {"MIMAE_DIST", dist},  {"MIMAE_DIST_Q", q_dist.p},
        {"WORKDIR", cwd},         {"WORKDIR_Q", q_work.p}, {"OUT_DIR", out_abs},
        {"LOG_DIR", logs},        {"SCRIPT", script},      {"SET_ARGS", sets.p ? sets.p : ""},
        {"TASK_ARGS", task_args.p ? task_args.p : ""},
    };
    if (sets.failed || q_work.failed || q_dist.failed || q_desc.failed || task_args.failed ||
        array.failed || opt_array.failed) {
        snprintf(err, sizeof err, "out of memory");
        status = EXIT_OTHER;
        goto fail;
    }
    if (fill_template(tpl, tpl_path, fields, (int)(sizeof fields / sizeof fields[0]), &body, err,
                      sizeof err))
        goto fail;

    /* the sweep directory: tasks/, logs/, plan.tsv, sweep.sbatch */
    status = EXIT_OTHER;
    if (descriptor_make_run_dir(out_abs, "tasks", err, sizeof err) ||
        descriptor_make_run_dir(out_abs, "logs", err, sizeof err))
        goto fail;
    status = write_task_descriptors(o, desc_abs, d, s, dir, NULL, err, sizeof err);
    if (status) goto fail;
    status = EXIT_OTHER;
    {
        char plan_path[PATH_LEN + 16];
        snprintf(plan_path, sizeof plan_path, "%s/plan.tsv", out_abs);
        io_file_err_t pe = {plan_path, err, sizeof err, 0};
        io_out_t plan;
        if (io_out_open(&plan, plan_path, 0644, &pe)) goto fail;
        FILE *f = io_out_stream(&plan, &pe);
        if (f && print_plan(f, d, s, 1)) snprintf(err, sizeof err, "out of memory"), f = NULL;
        if (!f || io_out_commit(&plan, &pe)) {
            io_out_abort(&plan);
            goto fail;
        }
    }
    if (write_file_atomic(script, body.p, 0755, err, sizeof err)) goto fail;

    /* sbatch */
    char *argv[MAX_SBATCH_OPTS + 8];
    int n = 0;
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    argv[n++] = opt_array.p;
    argv[n++] = "--signal=B:USR1@120";
    argv[n++] = "--requeue";
    for (int i = 0; i < o->n_sbatch_opts; i++) argv[n++] = o->sbatch_opts[i];
    argv[n++] = script;
    argv[n] = NULL;
    printf("sweep %s: %ld task%s x %ld rank%s, script %s\n", d->run.name, s->tasks,
           s->tasks == 1 ? "" : "s", o->ranks, o->ranks == 1 ? "" : "s", script);
    if (o->dry_run) {
        print_command(stdout, argv);
        status = EXIT_OK;
        goto done;
    }
    char out[4096];
    int rc = run_capture(argv, out, sizeof out, 0);
    if (rc != 0) {
        if (rc == 127) snprintf(err, sizeof err, "cannot run sbatch (not installed, or not on PATH): "
                                "install Slurm's client commands or submit %s by hand", script);
        else snprintf(err, sizeof err, "sbatch failed (status %d; its message is above); the "
                      "script is %s", rc, script);
        goto fail;
    }
    char *job = out;
    while (*job == ' ' || *job == '\n') job++;
    job[strcspn(job, ";\n ")] = 0;
    if (!*job) {
        snprintf(err, sizeof err, "sbatch printed no job id");
        goto fail;
    }
    printf("Submitted batch job %s\n", job);
    {
        char log_path[PATH_LEN + 32], when[64];
        snprintf(log_path, sizeof log_path, "%s/submissions.log", out_abs);
        time_t now = time(NULL);
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
        io_file_err_t le = {log_path, NULL, 0, 0};
        FILE *f = io_open_append(log_path, 0644, &le);
        if (f) { /* a convenience: never a reason to fail after submitting */
            fprintf(f, "%s\tjob %s\tarray %s\t", when, job, array.p);
            print_command(f, argv);
            fclose(f);
        }
    }
    status = EXIT_OK;
    goto done;
fail:
    text_eprintf("mimae sweep: %s", err);
done:
    free(tpl);
    free(body.p);
    free(sets.p);
    free(q_work.p);
    free(q_dist.p);
    free(q_desc.p);
    free(task_args.p);
    free(array.p);
    free(opt_array.p);
    free(state);
    free(runs);
    return status;
}

int sweep_command(int argc, char **argv)
{
    options_t o;
    int rc = parse_options(argc, argv, &o);
    if (rc > 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (rc < 0) return EXIT_BAD_INPUT;
    descriptor_t *d = malloc(sizeof *d);
    sweep_t *s = malloc(sizeof *s);
    char err[ERR_LEN] = "";
    int status = EXIT_OK;
    if (!d || !s) {
        fprintf(stderr, "mimae sweep: out of memory\n");
        status = EXIT_OTHER;
    } else if (load_sweep(&o, d, s, err, sizeof err)) {
        text_eprintf("mimae sweep: %s", err);
        status = EXIT_BAD_INPUT;
    } else if (!o.submit) {
        if (print_plan(stdout, d, s, 0)) {
            fprintf(stderr, "mimae sweep: out of memory\n");
            status = EXIT_OTHER;
        }
        fflush(stdout);
    } else {
        status = submit(&o, d, s);
    }
    free(d);
    free(s);
    return status;
}
