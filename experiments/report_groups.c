/* mimae report's groups (report_internal.h): the runs of an arm, else the
 * runs that differ only by seed; mean +- sample std over each group's
 * finished runs and, for arms, the paired difference of each arm to the
 * baseline arm over the seeds both finished (report_stats.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments/report_internal.h"
#include "experiments/report_stats.h"

#define LEVEL 0.95 /* of the difference intervals */

static const char *arm_of(const run_entry_t *r) { return rpt_kv_get(&r->cfg, ARM_KEY); }

/* Does run a have the same values as run b for every key but the seed? */
static int same_setting(const report_t *rp, const run_entry_t *a, const run_entry_t *b)
{
    for (int k = 0; k < rp->keys.n; k++) {
        if (strcmp(rp->keys.s[k], SEED_KEY) == 0) continue;
        const char *va = rpt_kv_get(&a->cfg, rp->keys.s[k]), *vb = rpt_kv_get(&b->cfg, rp->keys.s[k]);
        if ((va == NULL) != (vb == NULL) || (va && strcmp(va, vb) != 0)) return 0;
    }
    return 1;
}

static int same_group(const report_t *rp, const groups_t *gs, const run_entry_t *a,
                      const run_entry_t *b)
{
    return gs->by_arm ? strcmp(arm_of(a), arm_of(b)) == 0 : same_setting(rp, a, b);
}

/* What the groups summarise: every column but steps; for arms, what a
 * comparison of arms is about: the top-1 accuracies, the MI statistics and
 * the final L_rec. */
static int pick_metrics(const report_t *rp, groups_t *gs)
{
    gs->metrics = calloc((size_t)rp->ncols + 1, sizeof *gs->metrics);
    if (!gs->metrics) return -1;
    int rec = -1;
    for (int m = 1; m < rp->ncols; m++) {
        const mcol_t *c = &rp->cols[m];
        if (c->kind == MC_LOSS && strcmp(c->name, "L_rec") == 0) rec = m;
        if (!gs->by_arm ||
            (c->kind == MC_EVAL && (rpt_is_top1(c->name) || strncmp(c->name, "mi_", 3) == 0)))
            gs->metrics[gs->nmetrics++] = m;
    }
    if (gs->by_arm && rec >= 0) gs->metrics[gs->nmetrics++] = rec;
    return 0;
}

int rpt_make_groups(const report_t *rp, groups_t *gs)
{
    memset(gs, 0, sizeof *gs);
    gs->baseline = -1;
    for (int i = 0; i < rp->nruns && !gs->by_arm; i++) gs->by_arm = arm_of(&rp->runs[i]) != NULL;
    if (!gs->by_arm && (!rp->has_seed || rp->nruns < 2)) return 0;
    if (pick_metrics(rp, gs)) return -1;
    gs->g = calloc((size_t)rp->nruns, sizeof *gs->g);
    if (!gs->g) return -1;
    for (int i = 0; i < rp->nruns; i++) {
        const run_entry_t *r = &rp->runs[i];
        /* left out: runs of no arm in an arm sweep, runs of no known setting */
        if (gs->by_arm ? !arm_of(r) : r->cfg.n == 0) continue;
        int j = 0;
        while (j < gs->n && !same_group(rp, gs, &rp->runs[gs->g[j].members[0]], r)) j++;
        if (j == gs->n) {
            gs->g[j].members = calloc((size_t)rp->nruns, sizeof *gs->g[j].members);
            if (!gs->g[j].members) return -1;
            gs->g[j].arm = gs->by_arm ? arm_of(r) : NULL;
            gs->n++;
        }
        group_t *g = &gs->g[j];
        g->members[g->n++] = i;
        if (r->status == RUN_FINISHED && ++g->n_ok >= 2) gs->show = 1;
    }
    if (gs->by_arm) { /* arms in first-task order: the lowest task's arm first */
        gs->show = 1;
        gs->baseline = 0;
    }
    return 0;
}

void rpt_groups_free(groups_t *gs)
{
    for (int i = 0; gs->g && i < gs->n; i++) free(gs->g[i].members);
    free(gs->g);
    free(gs->metrics);
    memset(gs, 0, sizeof *gs);
}

int rpt_set_baseline(groups_t *gs, const char *name, char *err, size_t errlen)
{
    if (!gs->by_arm)
        return rpt_fmt(err, errlen, "--baseline %s: no run has %s: --baseline compares the arms "
                       "of an arm sweep", name, ARM_KEY), -1;
    for (int j = 0; j < gs->n; j++)
        if (strcmp(gs->g[j].arm, name) == 0) {
            gs->baseline = j;
            return 0;
        }
    size_t used = (size_t)snprintf(err, errlen, "--baseline %s: no such arm; the arms are", name);
    for (int j = 0; j < gs->n && used < errlen; j++)
        used += (size_t)snprintf(err + used, errlen - used, "%s %s", j ? "," : "", gs->g[j].arm);
    return -1;
}

int rpt_group_values(const report_t *rp, const group_t *g, const mcol_t *m, double *vals)
{
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        const run_entry_t *r = &rp->runs[g->members[i]];
        if (r->status != RUN_FINISHED) continue;
        if (rpt_metric_value(r, m, &vals[n])) vals[n] = NAN;
        n++;
    }
    return n;
}

void rpt_seed_range(const groups_t *gs, int *fewest, int *most)
{
    *fewest = *most = 0;
    for (int j = 0; j < gs->n; j++) {
        if (j == 0 || gs->g[j].n_ok < *fewest) *fewest = gs->g[j].n_ok;
        if (gs->g[j].n_ok > *most) *most = gs->g[j].n_ok;
    }
}

/* The first finished run of g with seed `seed` before member `before`
 * (g->n: anywhere); NULL when none. */
static const run_entry_t *run_with_seed(const report_t *rp, const group_t *g, const char *seed,
                                        int before)
{
    for (int i = 0; i < before && i < g->n; i++) {
        const run_entry_t *r = &rp->runs[g->members[i]];
        const char *s = rpt_kv_get(&r->cfg, SEED_KEY);
        if (r->status == RUN_FINISHED && s && strcmp(s, seed) == 0) return r;
    }
    return NULL;
}

/* Column m of arm a minus the baseline b, paired by seed: each seed a
 * finished (its first run, should it have two) against b's first finished
 * run of that seed. va and vb have room for a->n values. */
static stat_paired_t arm_diff(const report_t *rp, const group_t *a, const group_t *b,
                              const mcol_t *m, double *va, double *vb)
{
    int n = 0;
    for (int i = 0; i < a->n; i++) {
        const run_entry_t *r = &rp->runs[a->members[i]];
        const char *seed = rpt_kv_get(&r->cfg, SEED_KEY);
        if (r->status != RUN_FINISHED || !seed || run_with_seed(rp, a, seed, i)) continue;
        const run_entry_t *base = run_with_seed(rp, b, seed, b->n);
        if (!base) continue;
        if (rpt_metric_value(r, m, &va[n])) va[n] = NAN;
        if (rpt_metric_value(base, m, &vb[n])) vb[n] = NAN;
        n++;
    }
    return stat_paired_diff(va, vb, n, LEVEL);
}

/* The seeds of a group's finished runs, "0 1 2". */
static void group_seeds(const report_t *rp, const group_t *g, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < g->n; i++) {
        const run_entry_t *r = &rp->runs[g->members[i]];
        const char *s = rpt_kv_get(&r->cfg, SEED_KEY);
        size_t used = strlen(buf);
        if (r->status == RUN_FINISHED && s && used < len)
            snprintf(buf + used, len - used, "%s%s", used ? " " : "", s);
    }
}

/* Room for a value per run of any group, twice (the pairs); NULL sets oom. */
static double *scratch(const report_t *rp, table_t *t)
{
    double *v = malloc(2 * ((size_t)rp->nruns + 1) * sizeof *v);
    if (!v) t->oom = 1;
    return v;
}

/* A CSV cell at full precision; empty for NaN (no value). */
static void set_exact(table_t *t, int row, int c, double v)
{
    char buf[32] = "";
    if (!isnan(v)) rpt_fmt_exact(buf, sizeof buf, v);
    rpt_table_set(t, row, c, buf);
}

/* "0.7000 ± 0.1414" (text: "+-"); the mean alone for one value, "-" for
 * none; " (n=2)" after it when fewer values than the group's `runs`
 * finished runs (some have no value, or one that is not finite). */
static void fmt_mean_sd(char *buf, size_t len, const mcol_t *col, stat_summary_t s, int md,
                        int runs)
{
    char a[64], b[64] = "", n[32] = "";
    if (s.n == 0) {
        snprintf(buf, len, "-");
        return;
    }
    rpt_fmt_display(a, sizeof a, col, s.mean);
    if (s.n > 1) rpt_fmt_display(b, sizeof b, col, s.sd);
    if (s.n < runs) snprintf(n, sizeof n, " (n=%d)", s.n);
    snprintf(buf, len, "%s%s%s%s", a, s.n > 1 ? (md ? " ± " : "+-") : "", b, n);
}

void rpt_build_group_table(const report_t *rp, const groups_t *gs, table_t *t, int mode)
{
    /* the setting's keys (the seed is last), or the arm */
    const int nkeys = gs->by_arm ? 1 : rp->keys.n - 1;
    rpt_table_init(t, nkeys + (mode == 2 ? 3 + 2 * gs->nmetrics : 2 + gs->nmetrics));
    double *vals = scratch(rp, t);
    int c = 0;
    if (gs->by_arm) rpt_table_head(t, c++, "arm", 0);
    for (int k = 0; k < nkeys && !gs->by_arm; k++) rpt_table_head(t, c++, rp->keys.s[k], rp->numeric[k]);
    if (mode == 2) {
        rpt_table_head(t, c++, "runs_with_results", 1);
        rpt_table_head(t, c++, "runs", 1);
    } else {
        rpt_table_head(t, c++, "n", 1);
    }
    rpt_table_head(t, c++, "seeds", 0);
    char name[160], buf[160];
    for (int i = 0; i < gs->nmetrics; i++) {
        const mcol_t *col = &rp->cols[gs->metrics[i]];
        if (mode == 2) {
            snprintf(name, sizeof name, "%s_mean", col->name);
            rpt_table_head(t, c++, name, 1);
            snprintf(name, sizeof name, "%s_std", col->name);
            rpt_table_head(t, c++, name, 1);
        } else {
            rpt_table_head(t, c++, col->label, 1);
        }
    }
    for (int gi = 0; gi < gs->n && vals; gi++) {
        const group_t *g = &gs->g[gi];
        const run_entry_t *first = &rp->runs[g->members[0]];
        int row = rpt_table_row(t);
        if (row < 0) break;
        c = 0;
        if (gs->by_arm) rpt_table_set(t, row, c++, g->arm);
        for (int k = 0; k < nkeys && !gs->by_arm; k++) {
            const char *v = rpt_kv_get(&first->cfg, rp->keys.s[k]);
            rpt_table_set(t, row, c++, v ? v : mode == 2 ? "" : "-");
        }
        if (mode == 2) {
            snprintf(buf, sizeof buf, "%d", g->n_ok);
            rpt_table_set(t, row, c++, buf);
            snprintf(buf, sizeof buf, "%d", g->n);
        } else if (g->n_ok == g->n) {
            snprintf(buf, sizeof buf, "%d", g->n);
        } else {
            snprintf(buf, sizeof buf, "%d/%d", g->n_ok, g->n);
        }
        rpt_table_set(t, row, c++, buf);
        group_seeds(rp, g, buf, sizeof buf);
        rpt_table_set(t, row, c++, mode == 2 || *buf ? buf : "-");
        for (int i = 0; i < gs->nmetrics; i++) {
            const mcol_t *col = &rp->cols[gs->metrics[i]];
            const stat_summary_t s = stat_summarise(vals, rpt_group_values(rp, g, col, vals));
            if (mode != 2) {
                fmt_mean_sd(buf, sizeof buf, col, s, mode == 1, g->n_ok);
                rpt_table_set(t, row, c++, buf);
                continue;
            }
            set_exact(t, row, c++, s.mean);
            set_exact(t, row, c++, s.sd);
        }
    }
    free(vals);
}

/* A difference rounded like its metric, with its sign (none when it rounds
 * to zero: no "-0.0000"). */
static void fmt_signed(char *buf, size_t len, const mcol_t *col, double v)
{
    char a[48];
    rpt_fmt_display(a, sizeof a, col, v);
    const char *digits = a[0] == '-' ? a + 1 : a;
    if (strspn(digits, "0.") == strlen(digits)) snprintf(buf, len, "%s", digits);
    else snprintf(buf, len, "%s%s", a[0] == '-' ? "" : "+", a);
}

/* A table of arms against the baseline with these headings (right-aligned
 * where right[c]); the room arm_diff needs (two halves: va, vb), NULL when
 * there is no baseline or no memory (oom set). */
static double *start_arm_table(const report_t *rp, const groups_t *gs, table_t *t,
                               const char *const *head, const int *right, int ncols)
{
    rpt_table_init(t, ncols);
    for (int c = 0; c < ncols; c++) rpt_table_head(t, c, head[c], right[c]);
    return gs->baseline < 0 ? NULL : scratch(rp, t);
}

/* A new row starting "arm, metric, n"; its index, -1 when out of memory. */
static int arm_metric_row(table_t *t, const char *arm, const char *metric, int n)
{
    char buf[16];
    const int row = rpt_table_row(t);
    if (row < 0) return -1;
    rpt_table_set(t, row, 0, arm);
    rpt_table_set(t, row, 1, metric);
    snprintf(buf, sizeof buf, "%d", n);
    rpt_table_set(t, row, 2, buf);
    return row;
}

void rpt_build_diff_table(const report_t *rp, const groups_t *gs, table_t *t)
{
    static const char *const head[] = {"arm",    "metric",        "pairs",
                                       "mean d", "95 % interval", "excludes 0"};
    static const int right[] = {0, 0, 1, 1, 1, 0};
    double *va = start_arm_table(rp, gs, t, head, right, 6);
    if (!va) return;
    double *vb = va + rp->nruns + 1;
    const group_t *b = &gs->g[gs->baseline];
    char buf[160], lo[64], hi[64];
    for (int gi = 0; gi < gs->n; gi++) {
        if (gi == gs->baseline) continue;
        for (int i = 0; i < gs->nmetrics; i++) {
            const mcol_t *col = &rp->cols[gs->metrics[i]];
            const stat_paired_t p = arm_diff(rp, &gs->g[gi], b, col, va, vb);
            const int row = arm_metric_row(t, gs->g[gi].arm, col->label, p.n);
            if (row < 0) break;
            if (p.n) fmt_signed(buf, sizeof buf, col, p.mean);
            else snprintf(buf, sizeof buf, "-");
            rpt_table_set(t, row, 3, buf);
            if (p.n >= 2) {
                fmt_signed(lo, sizeof lo, col, p.lo);
                fmt_signed(hi, sizeof hi, col, p.hi);
                snprintf(buf, sizeof buf, "[%s, %s]", lo, hi);
            } else {
                snprintf(buf, sizeof buf, "none: %s", p.n ? "one paired seed" : "no paired seed");
            }
            rpt_table_set(t, row, 4, buf);
            rpt_table_set(t, row, 5, p.excludes_zero ? "*" : "");
        }
    }
    free(va);
}

void rpt_build_arm_csv(const report_t *rp, const groups_t *gs, table_t *t)
{
    static const char *const head[] = {"arm",   "metric", "n",  "mean", "std", "baseline",
                                       "pairs", "diff",   "lo", "hi",   "excludes_zero"};
    static const int left[11] = {0};
    double *va = start_arm_table(rp, gs, t, head, left, 11);
    if (!va) return;
    double *vb = va + rp->nruns + 1;
    const group_t *b = &gs->g[gs->baseline];
    char buf[32];
    for (int gi = 0; gi < gs->n; gi++)
        for (int i = 0; i < gs->nmetrics; i++) {
            const mcol_t *col = &rp->cols[gs->metrics[i]];
            const stat_summary_t s = stat_summarise(va, rpt_group_values(rp, &gs->g[gi], col, va));
            const int row = arm_metric_row(t, gs->g[gi].arm, col->name, s.n);
            if (row < 0) break;
            set_exact(t, row, 3, s.mean);
            set_exact(t, row, 4, s.sd);
            rpt_table_set(t, row, 5, b->arm);
            if (gi == gs->baseline) continue; /* no difference to itself */
            const stat_paired_t p = arm_diff(rp, &gs->g[gi], b, col, va, vb);
            snprintf(buf, sizeof buf, "%d", p.n);
            rpt_table_set(t, row, 6, buf);
            set_exact(t, row, 7, p.mean);
            set_exact(t, row, 8, p.lo);
            set_exact(t, row, 9, p.hi);
            rpt_table_set(t, row, 10, p.n >= 2 ? (p.excludes_zero ? "1" : "0") : "");
        }
    free(va);
}
