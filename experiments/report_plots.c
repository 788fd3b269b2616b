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

/* The loss curves: L_rec (top) and L (bottom) against the step, one line
 * per run with logged steps. */
static int script_loss(const report_t *rp, FILE *gp, const char *work, plots_t *ps)
{
    char path[RPATH];
    int lines = 0;
    for (int i = 0; i < rp->nruns; i++) {
        const run_entry_t *r = &rp->runs[i];
        if (r->status != RUN_OK || results_step_count(r->res) < 1) continue;
        if (rpt_fmt(path, sizeof path, "%s/loss-%d.dat", work, i)) return -1;
        FILE *f = work_file(path);
        if (!f) return -1;
        const step_metrics_t *s = results_steps(r->res);
        for (long j = 0; j < results_step_count(r->res); j++) {
            fprintf(f, "%ld ", s[j].step);
            gp_number(f, s[j].rec);
            fputc(' ', f);
            gp_number(f, s[j].total);
            fputc('\n', f);
        }
        if (fclose(f) != 0) return -1;
        lines++;
    }
    if (lines == 0) return 0;
    plot_t *p = new_plot(ps, work, "report-loss.png", "Loss curves");
    if (!p) return -1;
    const int height = 760 + (lines > 24 ? 14 * (lines - 24) : 0);
    fprintf(gp, "reset\nset terminal pngcairo size 1200,%d noenhanced font 'sans,10'\nset output ",
            height);
    gp_string(gp, p->tmp);
    fputs("\nset multiplot layout 2,1 title ", gp);
    char title[RPATH];
    snprintf(title, sizeof title, "Loss curves: %s", rp->sweep_dir);
    gp_string(gp, title);
    fputs("\nset grid\nset lmargin at screen 0.08\nset rmargin at screen 0.74\n"
          "set xlabel 'step'\n", gp);
    for (int panel = 0; panel < 2; panel++) {
        fprintf(gp, "set ylabel '%s'\nset title '%s'\n", panel ? "L" : "L_rec",
                panel ? "total loss L" : "reconstruction loss L_rec");
        if (panel == 0) fputs("set key at screen 0.76, screen 0.93 left top Left reverse\n", gp);
        else fputs("unset key\n", gp);
        fputs("plot", gp);
        int first = 1;
        for (int i = 0; i < rp->nruns; i++) {
            const run_entry_t *r = &rp->runs[i];
            if (r->status != RUN_OK || results_step_count(r->res) < 1) continue;
            rpt_fmt(path, sizeof path, "%s/loss-%d.dat", work, i);
            fputs(first ? " " : ", \\\n     ", gp);
            gp_string(gp, path);
            fprintf(gp, " using 1:%d with lines lw 1.5 title ", panel ? 3 : 2);
            gp_string(gp, r->name);
            first = 0;
        }
        fputc('\n', gp);
    }
    fputs("unset multiplot\nunset output\n", gp);
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
        if (r->status != RUN_OK || !v || rpt_parse_number(v, &x)) continue;
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
                if (r->status != RUN_OK || !v || rpt_parse_number(v, &x) || x != xs[j]) continue;
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
int rpt_make_plots(const report_t *rp, plots_t *ps, char *err, size_t errlen)
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
    for (int k = 0; k < rp->keys.n && !rc; k++)
        if (rp->numeric[k] && strcmp(rp->keys.s[k], SEED_KEY) != 0)
            rc = script_key(rp, k, gp, work, ps);
    if (fclose(gp) != 0) rc = -1;
    if (rc) rpt_fmt(err, errlen, "%s: cannot write the plot data (disk full?)", work);
    else if (ps->n > 0) rc = run_gnuplot(script, log, err, errlen);
    for (int i = 0; i < ps->n && !rc; i++) rc = install_plot(&ps->p[i], rp->out_dir, err, errlen);
    if (rc) ps->n = 0;
    remove_dir_files(work);
    return rc;
}
