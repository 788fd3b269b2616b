/* What the parts of `mimae report` share (report.c: finding, loading and the
 * command; report_groups.c: runs grouped by arm or by setting, their means
 * and the differences between arms; report_table.c: tables as text,
 * Markdown and CSV; report_plots.c: gnuplot). Not an interface for anything
 * else: the rules of the report are in experiments/report.h. */
#ifndef MIMAE_EXPERIMENTS_REPORT_INTERNAL_H
#define MIMAE_EXPERIMENTS_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "io/results.h"

#define RPATH 4096
#define ERRLEN 1024
#define SEED_KEY "train.seed"
#define ARM_KEY "sweep.arm"

/* snprintf that reports truncation: 0, or -1 when the text did not fit. */
int rpt_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A whole string that is a finite number: 0, else -1. */
int rpt_parse_number(const char *s, double *v);
/* A metric name ending in "_top1". */
int rpt_is_top1(const char *name);

/* Ordered key -> value text lists. */
typedef struct {
    char *key, *value;
} kv_t;

typedef struct {
    kv_t *items;
    int n, cap, oom;
} kvlist_t;

const char *rpt_kv_get(const kvlist_t *l, const char *key); /* NULL if absent */

/* A growable list of strings. */
typedef struct {
    char **s;
    int n, cap, oom;
} strlist_t;

/* ------------------------------------------------------------------------
 * Runs. */

/* Finished: the results file says so, or predates the `status` attribute.
 * Running runs show their values so far; every mean, difference and
 * accuracy plot takes finished runs only. */
enum { RUN_FINISHED, RUN_RUNNING, RUN_MISSING, RUN_FAILED };

typedef struct {
    char dir[512];       /* relative to the sweep directory; "." for the directory itself */
    long task;           /* task number, -1 for other runs */
    int status;
    char detail[ERRLEN]; /* why missing or failed (without the path) */
    char brief[160];     /* the same, short */
    char name[256];
    results_t *res;
    kvlist_t cfg;        /* configuration values as text, sweep.arm among them */
} run_entry_t;

/* The run has a results file that loaded (finished or running). */
int rpt_has_results(const run_entry_t *r);

/* The columns after name and the swept keys. */
enum { MC_STEPS, MC_LOSS, MC_EVAL, MC_IMGS };

typedef struct {
    const char *name;    /* CSV header and eval name */
    const char *label;   /* text and Markdown header */
    int kind, index;
} mcol_t;

typedef struct {
    const char *sweep_dir;
    const char *out_dir;
    char sweep_name[256];
    run_entry_t *runs;
    int nruns, cap;
    strlist_t keys;      /* swept keys, train.seed last */
    int *numeric;        /* per key: every value a number */
    int has_seed;        /* train.seed is the last key */
    strlist_t evals;     /* evaluation metric columns */
    kvlist_t plan_arms;  /* task number -> arm, from plan.tsv */
    mcol_t *cols;
    int ncols;
    int oom;
} report_t;

/* A run's value of a column: 0, or -1 when it has none. */
int rpt_metric_value(const run_entry_t *r, const mcol_t *m, double *v);
/* A value rounded for reading, and at full precision (the CSV). */
void rpt_fmt_display(char *buf, size_t len, const mcol_t *m, double v);
void rpt_fmt_exact(char *buf, size_t len, double v);

/* ------------------------------------------------------------------------
 * Tables: cells as text (escaped for printing), printed as aligned text,
 * Markdown or CSV. Out of memory sets oom; later calls then do nothing. */

typedef struct {
    int ncols, nrows, cap, oom;
    char **head;
    int *right;   /* right-aligned (numbers) */
    char **cells; /* nrows x ncols; NULL prints as "" */
} table_t;

void rpt_table_init(table_t *t, int ncols);
void rpt_table_free(table_t *t);
void rpt_table_head(table_t *t, int c, const char *name, int right);
int rpt_table_row(table_t *t); /* the new row's index, -1 when out of memory */
void rpt_table_set(table_t *t, int row, int c, const char *text);
void rpt_table_print_text(const table_t *t, FILE *out);
void rpt_table_print_md(const table_t *t, FILE *out);
void rpt_table_print_csv(const table_t *t, FILE *out);

/* ------------------------------------------------------------------------
 * Groups: the runs of an arm (some run has sweep.arm), else the runs that
 * differ only by seed. Statistics are over each group's finished runs. */

typedef struct {
    int *members; /* run indices, in run order */
    int n, n_ok;  /* runs; finished runs */
    const char *arm; /* the arm's name (arm groups) */
} group_t;

typedef struct {
    group_t *g;
    int n;         /* groups */
    int show;      /* arms, or some setting with two finished runs */
    int by_arm;    /* groups are arms */
    int baseline;  /* the baseline arm's group, -1 when not by arm */
    int *metrics;  /* the columns (rp->cols) summarised */
    int nmetrics;
} groups_t;

/* 0, or -1 when out of memory. An arm sweep's baseline is its first arm. */
int rpt_make_groups(const report_t *rp, groups_t *gs);
void rpt_groups_free(groups_t *gs);
/* Makes arm `name` the baseline: 0, or -1 with one line in err (not an arm
 * sweep; no such arm, listing the arms). */
int rpt_set_baseline(groups_t *gs, const char *name, char *err, size_t errlen);
/* Column m over group g's finished runs: vals (room for g->n) gets each
 * run's value, NaN when it has none; returns how many runs. */
int rpt_group_values(const report_t *rp, const group_t *g, const mcol_t *m, double *vals);
/* The fewest and most finished runs of an arm group. */
void rpt_seed_range(const groups_t *gs, int *fewest, int *most);

/* Mean +- std per group: mode 0 text, 1 Markdown, 2 CSV (mean and std
 * columns; by setting only: arm sweeps write rpt_build_arm_csv). */
void rpt_build_group_table(const report_t *rp, const groups_t *gs, table_t *t, int mode);
/* Each other arm's paired difference to the baseline, per metric. */
void rpt_build_diff_table(const report_t *rp, const groups_t *gs, table_t *t);
/* report.csv of an arm sweep: one row per arm and metric. */
void rpt_build_arm_csv(const report_t *rp, const groups_t *gs, table_t *t);

/* ------------------------------------------------------------------------
 * Plots (gnuplot). */

#define MAX_PLOTS 128 /* further key plots are left out */

typedef struct {
    char file[256];    /* report-....png */
    char title[320];
    char tmp[RPATH];   /* where gnuplot writes it: the private work directory */
} plot_t;

typedef struct {
    plot_t p[MAX_PLOTS];
    int n;
} plots_t;

/* Writes the plots into rp->out_dir; on success ps lists them. */
int rpt_make_plots(const report_t *rp, const groups_t *gs, plots_t *ps, char *err, size_t errlen);

#endif
