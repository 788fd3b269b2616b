/* mimae report's plots (report_internal.h): gnuplot runs a generated
 * script in a private temporary directory, and each PNG it wrote there is
 * checked and copied into place atomically (io_write_file), so gnuplot never
 * writes through a name in the output directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "experiments/report_internal.h"
#include "experiments/report_stats.h"
#include "io/io_path.h"

extern char **environ;

/* A gnuplot single-quoted string ('' is a quote; no control characters). */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else if ((unsigned char)*s < 0x20) fputc(' ', f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

static void gp_number(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("NaN", f);
}

static void safe_name(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++) {
        char ch = src[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        dst[i] = ok ? ch : '_';
    }
    dst[i] = 0;
}

/* gnuplot opens its outputs by name (following links): it writes into the
 * work directory, ours alone, and make_plots copies each PNG into place. */
static plot_t *new_plot(plots_t *ps, const char *work, const char *file, const char *title)
{
    if (ps->n == MAX_PLOTS) return NULL;
    plot_t *p = &ps->p[ps->n];
    if (rpt_fmt(p->file, sizeof p->file, "%s", file) ||
        rpt_fmt(p->tmp, sizeof p->tmp, "%s/%s", work, file))
        return NULL;
    snprintf(p->title, sizeof p->title, "%s", title);
    ps->n++;
    return p;
}

/* A new file in the work directory (io_create_new: never an existing file
 * or a link); NULL on failure (the caller says what could not be written). */
static FILE *work_file(const char *path)
{
    io_file_err_t e = {path, NULL, 0, 0};
    return io_create_new(path, 0600, &e);
}

/* One line of a loss plot: its data file <work>/<prefix>-<id>.dat holds
 * "x L_rec L" rows. */
typedef struct {
    int id;
    const char *name;
} line_t;

static int line_path(char *path, size_t len, const char *work, const char *prefix, int id)
{
    return rpt_fmt(path, len, "%s/%s-%d.dat", work, prefix, id);
}

/* The two panels, L_rec (top) and L (bottom), against xlabel, one line each. */
static int script_loss_panels(const report_t *rp, FILE *gp, const char *work, plots_t *ps,
                              const char *file, const char *title, const char *xlabel,
                              const char *prefix, const line_t *lines, int nlines)
{
    char path[RPATH], head[RPATH];
    plot_t *p = new_plot(ps, work, file, title);
    if (!p) return -1;
    const int height = 760 + (nlines > 24 ? 14 * (nlines - 24) : 0);
    fprintf(gp, "reset\nset terminal pngcairo size 1200,%d noenhanced font 'sans,10'\nset output ",
            height);
    gp_string(gp, p->tmp);
    fputs("\nset multiplot layout 2,1 title ", gp);
    snprintf(head, sizeof head, "%s: %s", title, rp->sweep_dir);
    gp_string(gp, head);
    fputs("\nset grid\nset lmargin at screen 0.08\nset rmargin at screen 0.74\nset xlabel ", gp);
    gp_string(gp, xlabel);
    fputc('\n', gp);
    for (int panel = 0; panel < 2; panel++) {
        fprintf(gp, "set ylabel '%s'\nset title '%s'\n", panel ? "L" : "L_rec",
                panel ? "total loss L" : "reconstruction loss L_rec");
        if (panel == 0) fputs("set key at screen 0.76, screen 0.93 left top Left reverse\n", gp);
        else fputs("unset key\n", gp);
        fputs("plot", gp);
        for (int i = 0; i < nlines; i++) {
            if (line_path(path, sizeof path, work, prefix, lines[i].id)) return -1;
            fputs(i ? ", \\\n     " : " ", gp);
            gp_string(gp, path);
            fprintf(gp, " using 1:%d with lines lw 1.5 title ", panel ? 3 : 2);
            gp_string(gp, lines[i].name);
        }
        fputc('\n', gp);
    }
    fputs("unset multiplot\nunset output\n", gp);
    return 0;
}

/* A line of a data file: n numbers. */
static void gp_row(FILE *f, const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (i) fputc(' ', f);
        gp_number(f, v[i]);
    }
    fputc('\n', f);
}

/* The loss curves against the step, one line per run with logged steps
 * (running runs too: how far they are). */
static int script_loss(const report_t *rp, FILE *gp, const char *work, plots_t *ps)
{
    char path[RPATH];
    line_t *lines = malloc(((size_t)rp->nruns + 1) * sizeof *lines);
    if (!lines) return -1;
    int n = 0, rc = 0;
    for (int i = 0; i < rp->nruns && !rc; i++) {
        const run_entry_t *r = &rp->runs[i];
        if (!rpt_has_results(r) || results_step_count(r->res) < 1) continue;
        FILE *f = line_path(path, sizeof path, work, "loss", i) ? NULL : work_file(path);
        if (!f) {
            rc = -1;
            break;
        }
        const step_metrics_t *s = results_steps(r->res);
        for (long j = 0; j < results_step_count(r->res); j++)
            gp_row(f, (const double[]){(double)s[j].step, s[j].rec, s[j].total}, 3);
        if (fclose(f) != 0) rc = -1;
        lines[n++] = (line_t){i, r->name};
    }
    if (!rc && n > 0)
        rc = script_loss_panels(rp, gp, work, ps, "report-loss.png", "Loss curves", "step", "loss",
                                lines, n);
    free(lines);
    return rc;
}

/* An arm's mean L_rec and L over its finished runs, at each count of
 * masked views that every one of them logged (rows lost to a failed write,
 * NaN, left out), so arms of equal compute line up; the points written. */
static long arm_curve(const report_t *rp, const group_t *g, const run_entry_t **runs, long *pos,
                      FILE *f)
{
    int nr = 0;
    for (int i = 0; i < g->n; i++) {
        const run_entry_t *r = &rp->runs[g->members[i]];
        if (r->status == RUN_FINISHED && results_step_count(r->res) > 0) runs[nr++] = r;
    }
    if (nr == 0) return 0;
    for (int k = 0; k < nr; k++) pos[k] = 0;
    long points = 0;
    const step_metrics_t *s0 = results_steps(runs[0]->res);
    for (long j = 0; j < results_step_count(runs[0]->res); j++) {
        const double views = s0[j].views;
        double rec = 0, total = 0;
        int all = isfinite(views);
        for (int k = 0; k < nr && all; k++) { /* views grow with the step: scan on */
            const step_metrics_t *s = results_steps(runs[k]->res);
            const long n = results_step_count(runs[k]->res);
            while (pos[k] < n && !(s[pos[k]].views >= views)) pos[k]++;
            all = pos[k] < n && s[pos[k]].views == views && isfinite(s[pos[k]].rec) &&
                  isfinite(s[pos[k]].total);
            if (all) rec += s[pos[k]].rec, total += s[pos[k]].total;
        }
        if (!all) continue;
        gp_row(f, (const double[]){views, rec / nr, total / nr}, 3);
        points++;
    }
    return points;
}

/* The loss curves of the arms against the masked views seen. */
static int script_arm_loss(const report_t *rp, const groups_t *gs, FILE *gp, const char *work,
                           plots_t *ps)
{
    char path[RPATH];
    line_t *lines = malloc(((size_t)gs->n + 1) * sizeof *lines);
    long *pos = malloc(((size_t)rp->nruns + 1) * sizeof *pos);
    const run_entry_t **runs = malloc(((size_t)rp->nruns + 1) * sizeof *runs);
    int n = 0, rc = lines && pos && runs ? 0 : -1;
    for (int gi = 0; gi < gs->n && !rc; gi++) {
        FILE *f = line_path(path, sizeof path, work, "arm-loss", gi) ? NULL : work_file(path);
        if (!f) {
            rc = -1;
            break;
        }
        const long points = arm_curve(rp, &gs->g[gi], runs, pos, f);
        if (fclose(f) != 0) rc = -1;
        if (points > 0) lines[n++] = (line_t){gi, gs->g[gi].arm};
    }
    if (!rc && n > 0)
        rc = script_loss_panels(rp, gp, work, ps, "report-arms-loss.png",
                                "Loss per arm, mean over the finished seeds",
                                "masked views seen", "arm-loss", lines, n);
    free(lines);
    free(pos);
    free(runs);
    return rc;
}

/* Top-1 metric col per arm: the mean over the finished seeds with error
 * bars of one sample standard deviation (none for one seed), and each
 * seed's value beside it. */
static int script_arm_metric(const report_t *rp, const groups_t *gs, int col, FILE *gp,
                             const char *work, plots_t *ps)
{
    const mcol_t *m = &rp->cols[col];
    char path[RPATH], spath[RPATH];
    double *vals = malloc(((size_t)rp->nruns + 1) * sizeof *vals);
    if (!vals || rpt_fmt(path, sizeof path, "%s/arms-%d.dat", work, col) ||
        rpt_fmt(spath, sizeof spath, "%s/arms-%d-seeds.dat", work, col)) {
        free(vals);
        return -1;
    }
    FILE *f = work_file(path), *fs = work_file(spath);
    int points = 0;
    for (int gi = 0; f && fs && gi < gs->n; gi++) {
        const int n = rpt_group_values(rp, &gs->g[gi], m, vals);
        const stat_summary_t s = stat_summarise(vals, n);
        gp_row(f, (const double[]){gi, s.mean, s.sd}, 3);
        for (int i = 0; i < n; i++) /* beside the mean, not on it */
            if (!isnan(vals[i])) gp_row(fs, (const double[]){gi + 0.15, vals[i]}, 2);
        points += s.n > 0;
    }
    free(vals);
    int rc = (f ? fclose(f) : -1) | (fs ? fclose(fs) : -1);
    if (rc) return -1;
    if (points == 0 || ps->n == MAX_PLOTS) return 0;

    char file[256], safe[160], title[320];
    safe_name(safe, sizeof safe, m->name);
    snprintf(file, sizeof file, "report-arms-%s.png", safe);
    snprintf(title, sizeof title, "%s per arm (mean and std over the finished seeds)", m->name);
    plot_t *p = new_plot(ps, work, file, title);
    if (!p) return -1;
    fprintf(gp, "reset\nset terminal pngcairo size %d,560 noenhanced font 'sans,10'\nset output ",
            700 + (gs->n > 6 ? 60 * (gs->n - 6) : 0));
    gp_string(gp, p->tmp);
    fputs("\nset title ", gp);
    gp_string(gp, title);
    fputs("\nset ylabel ", gp);
    gp_string(gp, m->name);
    fprintf(gp, "\nset grid ytics\nset key outside right top\nset xrange [-0.5:%g]\nset xtics (",
            gs->n - 0.5);
    for (int gi = 0; gi < gs->n; gi++) {
        fputs(gi ? ", " : "", gp);
        gp_string(gp, gs->g[gi].arm);
        fprintf(gp, " %d", gi);
    }
    /* one seed: no std, so no bar (rather than one drawn from NaN) */
    fputs(") rotate by -30\nset offsets 0, 0, graph 0.05, graph 0.05\n"
          "set datafile missing NaN\nplot ", gp);
    gp_string(gp, path);
    fputs(" using 1:2:3 with yerrorbars pt 7 ps 1.5 lw 2 lc 1 title 'mean +- std', \\\n     ", gp);
    gp_string(gp, path);
    fputs(" using 1:2 with points pt 7 ps 1.5 lc 1 notitle, \\\n     ", gp);
    gp_string(gp, spath);
    fputs(" using 1:2 with points pt 6 ps 1 lc 2 title 'seeds'\nunset output\n", gp);
    return 0;
}

/* Top-1 accuracies against swept key k: each run as a point, the mean over
 * the runs with the same value as a line. */
static int script_key(const report_t *rp, int k, FILE *gp, const char *work, plots_t *ps)
{
    int acc[3], nacc = 0; /* eval columns plotted */
    for (int e = 0; e < rp->evals.n; e++)
        if (rpt_is_top1(rp->evals.s[e]) && nacc < 3) acc[nacc++] = e;
    if (nacc == 0 || ps->n == MAX_PLOTS) return 0;
    const char *key = rp->keys.s[k];
    double *xs = malloc((size_t)rp->nruns * sizeof *xs);
    if (!xs) return -1;
    char path[RPATH], mpath[RPATH];
    if (rpt_fmt(path, sizeof path, "%s/key-%d.dat", work, k) ||
        rpt_fmt(mpath, sizeof mpath, "%s/key-%d-mean.dat", work, k)) {
        free(xs);
        return -1;
    }
    FILE *f = work_file(path);
    if (!f) {
        free(xs);
        return -1;
    }
    int nx = 0, points = 0;
    for (int i = 0; i < rp->nruns; i++) {
        const run_entry_t *r = &rp->runs[i];
        const char *v = rpt_kv_get(&r->cfg, key);
        double x;
        if (r->status != RUN_FINISHED || !v || rpt_parse_number(v, &x)) continue;
        int have = 0;
        gp_number(f, x);
        for (int a = 0; a < nacc; a++) {
            double y = NAN;
            if (results_get_eval(r->res, rp->evals.s[acc[a]], &y) == 0 && isfinite(y)) have = 1;
            fputc(' ', f);
            gp_number(f, y);
        }
        fputc('\n', f);
        if (!have) continue;
        points++;
        int seen = 0;
        for (int j = 0; j < nx; j++) seen |= xs[j] == x;
        if (!seen) xs[nx++] = x;
    }
    int rc = fclose(f) == 0 ? 0 : -1;
    if (rc || points == 0 || nx < 2) { /* nothing to draw a curve through */
        free(xs);
        return rc;
    }
    /* means per distinct value, in increasing order */
    for (int i = 1; i < nx; i++)
        for (int j = i; j > 0 && xs[j - 1] > xs[j]; j--) {
            double t = xs[j];
            xs[j] = xs[j - 1];
            xs[j - 1] = t;
        }
    f = work_file(mpath);
    if (!f) {
        free(xs);
        return -1;
    }
    for (int j = 0; j < nx; j++) {
        gp_number(f, xs[j]);
        for (int a = 0; a < nacc; a++) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < rp->nruns; i++) {
                const run_entry_t *r = &rp->runs[i];
                const char *v = rpt_kv_get(&r->cfg, key);
                double x, y;
                if (r->status != RUN_FINISHED || !v || rpt_parse_number(v, &x) || x != xs[j]) continue;
                if (results_get_eval(r->res, rp->evals.s[acc[a]], &y) == 0 && isfinite(y))
                    sum += y, n++;
            }
            fputc(' ', f);
            gp_number(f, n ? sum / n : NAN);
        }
        fputc('\n', f);
    }
    free(xs);
    if (fclose(f) != 0) return -1;

    char file[256], safe[160], title[320];
    safe_name(safe, sizeof safe, key);
    snprintf(file, sizeof file, "report-%s.png", safe);
    snprintf(title, sizeof title, "Top-1 accuracy against %s", key);
    plot_t *p = new_plot(ps, work, file, title);
    if (!p) return -1;
    fputs("reset\nset terminal pngcairo size 900,560 noenhanced font 'sans,10'\nset output ", gp);
    gp_string(gp, p->tmp);
    fputs("\nset title ", gp);
    gp_string(gp, title);
    fputs("\nset xlabel ", gp);
    gp_string(gp, key);
    fputs("\nset ylabel 'top-1 accuracy'\nset grid\nset key outside right top\n"
          "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot", gp);
    for (int a = 0; a < nacc; a++) {
        const char *metric = rp->evals.s[acc[a]];
        char label[160];
        fputs(a ? ", \\\n     " : " ", gp);
        gp_string(gp, path);
        fprintf(gp, " using 1:%d with points pt 7 ps 1.2 lc %d title ", a + 2, a + 1);
        snprintf(label, sizeof label, "%s (runs)", metric);
        gp_string(gp, label);
        fputs(", \\\n     ", gp);
        gp_string(gp, mpath);
        fprintf(gp, " using 1:%d with linespoints lw 2 pt 6 ps 1.5 lc %d title ", a + 2, a + 1);
        snprintf(label, sizeof label, "%s (mean)", metric);
        gp_string(gp, label);
    }
    fputs("\nunset output\n", gp);
    return 0;
}

/* The last non-empty line of a file, whitespace collapsed. */
static void last_line(const char *path, char *buf, size_t len)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '^') s++;
        size_t n = strcspn(s, "\r\n");
        s[n] = 0;
        if (*s) rpt_fmt(buf, len, "%s", s);
    }
    fclose(f);
}

/* Runs `gnuplot -d SCRIPT` with its output in LOG. */
static int run_gnuplot(const char *script, const char *log, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return rpt_fmt(err, errlen, "cannot start gnuplot (out of memory)"), -1;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char prog[] = "gnuplot", opt[] = "-d", scr[RPATH];
    snprintf(scr, sizeof scr, "%s", script);
    char *args[] = {prog, opt, scr, NULL};
    pid_t pid;
    fflush(NULL);
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    static const char *missing =
        "gnuplot not found on PATH: install it (apt-get install gnuplot-nox) or pass "
        "--no-plots; the tables were written";
    if (rc == ENOENT) return rpt_fmt(err, errlen, "%s", missing), -1;
    if (rc != 0) return rpt_fmt(err, errlen, "cannot start gnuplot: %s", strerror(rc)), -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return rpt_fmt(err, errlen, "waiting for gnuplot: %s", strerror(errno)), -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return rpt_fmt(err, errlen, "%s", missing), -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char why[400];
        last_line(log, why, sizeof why);
        if (WIFEXITED(st))
            return rpt_fmt(err, errlen, "gnuplot failed (exit status %d): %s", WEXITSTATUS(st),
                          *why ? why : "no message"), -1;
        return rpt_fmt(err, errlen, "gnuplot was killed by signal %d", WTERMSIG(st)), -1;
    }
    return 0;
}

static void remove_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[RPATH];
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            !rpt_fmt(path, sizeof path, "%s/%s", dir, e->d_name))
            unlink(path);
    if (d) closedir(d);
    rmdir(dir);
}

/* Copies the PNG gnuplot wrote into the work directory to OUT_DIR/file
 * (io_write_file: a temporary of ours, renamed into place). */
static int install_plot(const plot_t *p, const char *out_dir, char *err, size_t errlen)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    char final[RPATH];
    if (rpt_fmt(final, sizeof final, "%s/%s", out_dir, p->file))
        return rpt_fmt(err, errlen, "%s/%s: path too long", out_dir, p->file), -1;
    char why[ERRLEN];
    io_file_err_t in = {p->tmp, why, sizeof why, 0};
    FILE *f = io_fopen_input(&in, "PNG", 0);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    while (f && !ferror(f) && !feof(f)) {
        if (len == cap) {
            unsigned char *grown = realloc(buf, cap = cap ? 2 * cap : 1 << 16);
            if (!grown) break;
            buf = grown;
        }
        len += fread(buf + len, 1, cap - len, f);
    }
    const int read_ok = f && feof(f) && !ferror(f);
    if (f) fclose(f);
    int rc = -1;
    if (!read_ok || len < sizeof sig || memcmp(buf, sig, sizeof sig) != 0) {
        rpt_fmt(err, errlen, "gnuplot wrote no PNG for %s", p->file);
    } else {
        io_file_err_t out = {final, err, errlen, 0};
        rc = io_write_file(final, 0644, buf, len, &out);
    }
    free(buf);
    return rc;
}

/* Writes the plots; on success ps lists them (copied into place). */
int rpt_make_plots(const report_t *rp, const groups_t *gs, plots_t *ps, char *err, size_t errlen)
{
    ps->n = 0;
    const char *base = getenv("TMPDIR");
    char work[RPATH], script[RPATH], log[RPATH];
    if (rpt_fmt(work, sizeof work, "%s/mimae-report-XXXXXX", base && *base ? base : "/tmp") ||
        !mkdtemp(work))
        return rpt_fmt(err, errlen, "cannot create a temporary directory for the plots (%s)",
                      strerror(errno)), -1;
    int rc = rpt_fmt(script, sizeof script, "%s/plots.gp", work) |
             rpt_fmt(log, sizeof log, "%s/gnuplot.log", work);
    FILE *gp = rc ? NULL : work_file(script);
    if (!gp) {
        remove_dir_files(work);
        return rpt_fmt(err, errlen, "%s: cannot write the gnuplot script", work), -1;
    }
    rc = script_loss(rp, gp, work, ps);
    if (gs->by_arm) { /* what varies is the arm: accuracy and loss per arm */
        for (int i = 0; i < gs->nmetrics && !rc; i++)
            if (rpt_is_top1(rp->cols[gs->metrics[i]].name))
                rc = script_arm_metric(rp, gs, gs->metrics[i], gp, work, ps);
        if (!rc) rc = script_arm_loss(rp, gs, gp, work, ps);
    } else {
        for (int k = 0; k < rp->keys.n && !rc; k++)
            if (rp->numeric[k] && strcmp(rp->keys.s[k], SEED_KEY) != 0)
                rc = script_key(rp, k, gp, work, ps);
    }
    if (fclose(gp) != 0) rc = -1;
    if (rc) rpt_fmt(err, errlen, "%s: cannot write the plot data (disk full?)", work);
    else if (ps->n > 0) rc = run_gnuplot(script, log, err, errlen);
    for (int i = 0; i < ps->n && !rc; i++) rc = install_plot(&ps->p[i], rp->out_dir, err, errlen);
    if (rc) ps->n = 0;
    remove_dir_files(work);
    return rc;
}
