/* mimae report on an arm sweep, built with the results API as the arm
 * contract says (task-NNNN-<arm>-seed<S>/results.h5 with sweep.arm,
 * train.seed and status; plan.tsv with an arm column): 3 arms x 3 seeds,
 * mae's seed 1 still running and its seed 2 never started, control's
 * seed 1 a file from before `status` and without fine-tuning. Checks the
 * per-arm means and standard deviations, the paired differences and their
 * intervals against values worked out by hand, the marks, the baseline
 * (default, --baseline, an unknown one: exit 2), the plots, and that a
 * Cartesian sweep keeps its report. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config/config.h"
#include "io/results.h"

#include "tests/fs_util.h"
#include "tests/mpi_run.h"
#include "tests/report_util.h"

#define T_975_1 12.706204736174707 /* t(0.975, 1), tables */
#define T_975_2 4.302652729749464  /* t(0.975, 2) */

static char work[512], sweep[600];

/* ------------------------------------------------------------------------
 * The sweep. NaN: the run has no such metric. */

enum { ARMS = 3, SEEDS = 3 };
enum { FINISHED, RUNNING, NO_STATUS, NEVER_STARTED };

typedef struct {
    const char *arm;
    int num_masks;
    float w_max, w_min;
    /* per seed: status, linear probe, k-NN, fine-tuning, mi_club,
     * mi_gaussian, final L_rec */
    int status[SEEDS];
    double probe[SEEDS], knn[SEEDS], ft[SEEDS], club[SEEDS], gauss[SEEDS], rec[SEEDS];
} arm_spec_t;

/* Tasks 0-2 mimae, 3-5 mae, 6-8 control (first-task order; not the
 * alphabetical one). Against mimae, control's differences are (seeds 0, 1,
 * 2): probe {-0.05, -0.049, -0.051}, knn {0, +0.01, -0.01}, ft {-0.01, -,
 * +0.01}, mi_club {+0.01, +0.02, +0.04}, mi_gaussian {+0.1, +0.11, +0.09},
 * L_rec {+0.05, +0.04, +0.06}. mae has seed 0 finished (no MI: N = 1). */
static const arm_spec_t arms[ARMS] = {
    {"mimae", 4, 0.1f, 0.01f, {FINISHED, FINISHED, FINISHED},
     {0.80, 0.82, 0.84}, {0.70, 0.73, 0.76}, {0.90, 0.91, 0.92},
     {0.10, 0.20, 0.30}, {1.0, 1.2, 1.4}, {0.50, 0.52, 0.54}},
    {"mae", 1, 0.0f, 0.0f, {FINISHED, RUNNING, NEVER_STARTED},
     {0.78, 0.99, NAN}, {0.71, 0.99, NAN}, {0.88, 0.99, NAN},
     {NAN, NAN, NAN}, {NAN, NAN, NAN}, {0.60, 0.10, NAN}},
    {"control", 4, 0.0f, 0.0f, {FINISHED, NO_STATUS, FINISHED},
     {0.75, 0.771, 0.789}, {0.70, 0.74, 0.75}, {0.89, NAN, 0.93},
     {0.11, 0.22, 0.34}, {1.1, 1.31, 1.49}, {0.55, 0.56, 0.60}},
};

static void task_dir_name(char *buf, size_t len, int a, int s)
{
    snprintf(buf, len, "task-%04d-%s-seed%d", a * SEEDS + s, arms[a].arm, s);
}

static const char *descriptor =
    "[model]\npreset = fmnist-tiny\n[mimae]\nnum_masks = %d\nw_max = %g\nw_min = %g\n"
    "[data]\ntrain = data/train.h5\n[train]\nseed = %d\n";

static void set_eval(results_t *r, const char *name, double v)
{
    if (!isnan(v)) assert_int_equal(results_set_eval(r, name, v, "ckpt", 30), 0);
}

static void write_run(const char *sweep_dir, int a, int s)
{
    const arm_spec_t *sp = &arms[a];
    char dir[800], path[900], name[128], seed[16], err[1024];
    task_dir_name(name, sizeof name, a, s);
    path_in(dir, sizeof dir, sweep_dir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    mimae_config_t cfg;
    assert_int_equal(mimae_config_preset(&cfg, "fmnist-tiny"), 0);
    cfg.num_masks = sp->num_masks;
    cfg.w_max = sp->w_max;
    cfg.w_min = sp->w_min;
    results_t *r = results_new(&cfg, NULL);
    assert_non_null(r);
    snprintf(seed, sizeof seed, "%d", s);
    assert_int_equal(results_set_attr(r, "run.name", name), 0);
    assert_int_equal(results_set_attr(r, "sweep.arm", sp->arm), 0);
    assert_int_equal(results_set_attr(r, "train.seed", seed), 0);
    if (sp->status[s] != NO_STATUS)
        assert_int_equal(results_set_attr(r, "status", sp->status[s] == RUNNING ? "running" : "finished"), 0);
    /* L_rec falls to its final value; MAE sees a quarter of the views a step */
    for (int k = 0; k < 3; k++) {
        step_metrics_t m;
        memset(&m, 0, sizeof m);
        m.step = 10L * (k + 1);
        m.views = 64.0 * sp->num_masks * (double)m.step;
        m.rec = sp->rec[s] + 0.1 * (2 - k);
        m.total = m.rec + 0.5;
        m.images_per_s = 100;
        assert_int_equal(results_append_step(r, &m), 0);
    }
    set_eval(r, "linear_probe_top1", sp->probe[s]);
    set_eval(r, "knn_top1", sp->knn[s]);
    set_eval(r, "finetune_top1", sp->ft[s]);
    set_eval(r, "mi_club", sp->club[s]);
    set_eval(r, "mi_gaussian", sp->gauss[s]);
    path_in(path, sizeof path, dir, "results.h5");
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);
}

/* The arm sweep: the runs, tasks/task-NNNN.ini for every task and
 * plan.tsv (task, arm, out_dir). */
static void write_arm_sweep(const char *sweep_dir, int with_plan)
{
    char dir[800], path[900], text[512], name[128];
    assert_int_equal(mkdir(sweep_dir, 0755), 0);
    path_in(dir, sizeof dir, sweep_dir, "tasks");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *plan = NULL;
    size_t plan_len = 0;
    FILE *pf = open_memstream(&plan, &plan_len);
    assert_non_null(pf);
    fprintf(pf, "task\tarm\tout_dir\n");
    for (int a = 0; a < ARMS; a++)
        for (int s = 0; s < SEEDS; s++) {
            const int task = a * SEEDS + s;
            snprintf(name, sizeof name, "task-%04d.ini", task);
            path_in(path, sizeof path, dir, name);
            snprintf(text, sizeof text, descriptor, arms[a].num_masks, arms[a].w_max,
                     arms[a].w_min, s);
            write_text(path, text);
            task_dir_name(name, sizeof name, a, s);
            fprintf(pf, "%d\t%s\t%s/%s\n", task, arms[a].arm, sweep_dir, name);
            if (arms[a].status[s] != NEVER_STARTED) write_run(sweep_dir, a, s);
        }
    assert_int_equal(fclose(pf), 0);
    if (with_plan) {
        path_in(path, sizeof path, sweep_dir, "plan.tsv");
        write_text(path, plan);
    }
    free(plan);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-report-arms");
    path_in(sweep, sizeof sweep, work, "arms");
    write_arm_sweep(sweep, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(work);
    return 0;
}

/* ------------------------------------------------------------------------
 * Checks */

static void assert_close(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* The report.csv row of arm x metric. */
static int arm_row(const csv_t *t, const char *arm, const char *metric)
{
    for (int r = 1; r < t->nrows; r++)
        if (strcmp(csv_get(t, r, "arm"), arm) == 0 && strcmp(csv_get(t, r, "metric"), metric) == 0)
            return r;
    fail_msg("report.csv: no row for %s, %s", arm, metric);
    return -1;
}

/* A difference with an interval: mean d, half-width, the mark. */
static void expect_diff(const csv_t *t, const char *arm, const char *metric, int pairs,
                        double mean, double half, int excludes)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s", arm, metric);
    const int r = arm_row(t, arm, metric);
    assert_int_equal((int)csv_num(t, r, "pairs"), pairs);
    assert_close(csv_num(t, r, "diff"), mean, 1e-12, what);
    assert_close(csv_num(t, r, "lo"), mean - half, 1e-9, what);
    assert_close(csv_num(t, r, "hi"), mean + half, 1e-9, what);
    assert_string_equal(csv_get(t, r, "excludes_zero"), excludes ? "1" : "0");
}

static void expect_in(const char *text, const char *needle, const char *where)
{
    if (strstr(text, needle)) return;
    fprintf(stderr, "%s:\n%s\n", where, text); /* whole: cmocka cuts long messages */
    fail_msg("%s lacks \"%s\"", where, needle);
}

static char *read_file_in(const char *dir, const char *name)
{
    char path[900];
    path_in(path, sizeof path, dir, name);
    char *s = read_text(path);
    if (!s) fail_msg("%s was not written", path);
    return s;
}

/* ------------------------------------------------------------------------
 * Tests */

static void test_arm_tables(void **state)
{
    (void)state;
    const char *args[] = {sweep};
    captured_t c = run_report(work, 1, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    assert_string_equal(c.err, "");

    /* the runs: in task order, their status, mae's seed 2 from plan.tsv */
    char path[900];
    csv_t t;
    path_in(path, sizeof path, sweep, "report-runs.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 1 + ARMS * SEEDS);
    static const char *const status[ARMS][SEEDS] = {{"finished", "finished", "finished"},
                                                    {"finished", "running", "missing"},
                                                    {"finished", "finished", "finished"}};
    for (int a = 0; a < ARMS; a++)
        for (int s = 0; s < SEEDS; s++) {
            const int r = 1 + a * SEEDS + s;
            char want[16];
            assert_string_equal(csv_get(&t, r, "sweep.arm"), arms[a].arm);
            assert_string_equal(csv_get(&t, r, "status"), status[a][s]);
            snprintf(want, sizeof want, "%d", s);
            assert_string_equal(csv_get(&t, r, "train.seed"), want);
        }
    assert_string_equal(csv_get(&t, 6, "dir"), "task-0005"); /* never started */
    assert_true(csv_num(&t, 5, "linear_probe_top1") == 0.99); /* running: its value so far */
    assert_int_equal(csv_col(&t, "sweep.arm"), 4);            /* the first key */
    csv_free(&t);

    /* per arm: mean and sample std over the finished seeds */
    path_in(path, sizeof path, sweep, "report.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 1 + ARMS * 6); /* 3 top-1, 2 MI, L_rec */
    int r = arm_row(&t, "mimae", "linear_probe_top1");
    assert_int_equal((int)csv_num(&t, r, "n"), 3);
    assert_close(csv_num(&t, r, "mean"), 0.82, 1e-12, "mimae probe mean");
    assert_close(csv_num(&t, r, "std"), 0.02, 1e-12, "mimae probe std"); /* sqrt(0.0008 / 2) */
    assert_string_equal(csv_get(&t, r, "baseline"), "mimae");
    assert_string_equal(csv_get(&t, r, "diff"), ""); /* the baseline itself */
    r = arm_row(&t, "mae", "linear_probe_top1");      /* the running 0.99 left out */
    assert_int_equal((int)csv_num(&t, r, "n"), 1);
    assert_close(csv_num(&t, r, "mean"), 0.78, 0, "mae probe");
    assert_string_equal(csv_get(&t, r, "std"), "");
    r = arm_row(&t, "mae", "mi_club"); /* n: the seeds that have the metric */
    assert_int_equal((int)csv_num(&t, r, "n"), 0);
    assert_string_equal(csv_get(&t, r, "mean"), "");
    r = arm_row(&t, "control", "finetune_top1"); /* seed 1 has none: (0.89 + 0.93) / 2 */
    assert_int_equal((int)csv_num(&t, r, "n"), 2);
    assert_close(csv_num(&t, r, "mean"), 0.91, 1e-12, "control ft mean");
    assert_close(csv_num(&t, r, "std"), sqrt(0.0008), 1e-12, "control ft std");
    r = arm_row(&t, "control", "L_rec");
    assert_close(csv_num(&t, r, "mean"), 1.71 / 3, 1e-12, "control L_rec");
    for (int a = 0; a < ARMS; a++) /* arms in first-task order */
        assert_string_equal(csv_get(&t, 1 + 6 * a, "arm"), arms[a].arm);
    assert_string_equal(csv_get(&t, 1, "metric"), "linear_probe_top1");
    assert_string_equal(csv_get(&t, 6, "metric"), "L_rec");

    /* control - mimae, 3 pairs: t(0.975, 2) * sd / sqrt(3) */
    const double t2 = T_975_2 / sqrt(3.0);
    expect_diff(&t, "control", "linear_probe_top1", 3, -0.05, t2 * 0.001, 1);
    expect_diff(&t, "control", "knn_top1", 3, 0.0, t2 * 0.01, 0);
    /* d = {0.01, 0.02, 0.04}: mean 7/300, sd sqrt(7/3) / 100 */
    expect_diff(&t, "control", "mi_club", 3, 0.07 / 3, t2 * sqrt(7.0 / 3) / 100, 0);
    expect_diff(&t, "control", "mi_gaussian", 3, 0.1, t2 * 0.01, 1);
    expect_diff(&t, "control", "L_rec", 3, 0.05, t2 * 0.01, 1);
    /* seed 1 has no fine-tuning: 2 pairs, d = {-0.01, 0.01}, sd sqrt(0.0002) */
    expect_diff(&t, "control", "finetune_top1", 2, 0.0, T_975_1 * sqrt(0.0002) / sqrt(2.0), 0);
    /* mae: one paired seed (no interval), none for MI */
    r = arm_row(&t, "mae", "linear_probe_top1");
    assert_int_equal((int)csv_num(&t, r, "pairs"), 1);
    assert_close(csv_num(&t, r, "diff"), -0.02, 1e-12, "mae probe diff");
    assert_string_equal(csv_get(&t, r, "lo"), "");
    assert_string_equal(csv_get(&t, r, "excludes_zero"), "");
    r = arm_row(&t, "mae", "mi_gaussian");
    assert_int_equal((int)csv_num(&t, r, "pairs"), 0);
    assert_string_equal(csv_get(&t, r, "diff"), "");
    csv_free(&t);

    /* stdout and report.md: the tables, the marks, the line on the test */
    const char *line = "Differences to the baseline arm mimae, paired by seed";
    expect_in(c.out, "9 runs, 7 finished, 1 running, 1 missing", "stdout");
    expect_in(c.out, line, "stdout");
    expect_in(c.out, "paired t, 95 %", "stdout");
    expect_in(c.out, "n = 1 to 3 seeds per arm", "stdout");
    expect_in(c.out, "0.8200+-0.0200", "stdout");
    expect_in(c.out, "[-0.0525, -0.0475]  *", "stdout");
    expect_in(c.out, "none: one paired seed", "stdout");
    expect_in(c.out, "none: no paired seed", "stdout");
    /* a mean over fewer seeds than the arm finished says over how many */
    expect_in(c.out, "0.9100+-0.0283 (n=2)", "stdout");
    char *md = read_file_in(sweep, "report.md");
    expect_in(md, "## Arms", "report.md");
    expect_in(md, "| mae | 1/3 | 0 | 0.7800 |", "report.md");
    expect_in(md, "| mimae | 3 | 0 1 2 | 0.8200 ± 0.0200 |", "report.md");
    expect_in(md, "| 0.9100 ± 0.0283 (n=2) |", "report.md"); /* control's fine-tuning */
    expect_in(md, line, "report.md");
    expect_in(md, "| control | L_rec | 3 | +0.0500 | [+0.0252, +0.0748] | * |", "report.md");
    expect_in(md, "| control | knn_top1 | 3 | 0.0000 | [-0.0248, +0.0248] |  |", "report.md");
    expect_in(md, "(report-arms-linear_probe_top1.png)", "report.md");
    free(md);

    /* plots: accuracy per arm, loss per arm against the views; no key plots */
    static const char *const pngs[] = {"report-loss.png", "report-arms-loss.png",
                                       "report-arms-linear_probe_top1.png",
                                       "report-arms-knn_top1.png", "report-arms-finetune_top1.png"};
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        path_in(path, sizeof path, sweep, pngs[i]);
        if (!has_png_signature(path)) fail_msg("%s is not a PNG", path);
    }
    path_in(path, sizeof path, sweep, "report-mimae.num_masks.png");
    assert_int_equal(access(path, F_OK), -1);
    path_in(path, sizeof path, sweep, "report-seeds.csv");
    assert_int_equal(access(path, F_OK), -1);
    assert_false(has_temporary(sweep));
    captured_free(&c);
}

static void test_baseline_option(void **state)
{
    (void)state;
    char out[700], path[900];
    path_in(out, sizeof out, work, "vs-control");
    const char *args[] = {sweep, "--baseline", "control", "--out", out, "--no-plots"};
    captured_t c = run_report(work, 6, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    expect_in(c.out, "Differences to the baseline arm control", "stdout");
    csv_t t;
    path_in(path, sizeof path, out, "report.csv");
    csv_load(&t, path);
    assert_string_equal(csv_get(&t, 1, "baseline"), "control");
    assert_string_equal(csv_get(&t, arm_row(&t, "control", "knn_top1"), "diff"), "");
    /* mimae - control: the signs turn, the half-widths stay */
    const double t2 = T_975_2 / sqrt(3.0);
    expect_diff(&t, "mimae", "linear_probe_top1", 3, 0.05, t2 * 0.001, 1);
    expect_diff(&t, "mimae", "L_rec", 3, -0.05, t2 * 0.01, 1);
    csv_free(&t);
    captured_free(&c);
}

static void test_unknown_baseline(void **state)
{
    (void)state;
    char out[700];
    path_in(out, sizeof out, work, "never-written");
    const char *args[] = {sweep, "--baseline", "nope", "--out", out};
    captured_t c = run_report(work, 5, args);
    assert_int_equal(c.rc, 2);
    assert_int_equal(count_lines(c.err), 1);
    expect_in(c.err, "--baseline nope: no such arm; the arms are mimae, mae, control", "stderr");
    assert_string_equal(c.out, "");
    assert_int_equal(access(out, F_OK), -1); /* nothing written, not even --out */
    captured_free(&c);
    const char *missing[] = {sweep, "--baseline"};
    c = run_report(work, 2, missing);
    assert_int_equal(c.rc, 2);
    expect_in(c.err, "--baseline needs an arm", "stderr");
    captured_free(&c);
}

/* Without plan.tsv a task that never wrote results takes its arm and seed
 * from its directory's name; a task never started has no arm. */
static void test_arm_from_directory_name(void **state)
{
    (void)state;
    char dir[700], run[800], path[900];
    path_in(dir, sizeof dir, work, "no-plan");
    write_arm_sweep(dir, 0);
    path_in(run, sizeof run, dir, "task-0009-mae-seed3");
    assert_int_equal(mkdir(run, 0755), 0); /* started, crashed before any results */
    const char *args[] = {dir, "--no-plots"};
    captured_t c = run_report(work, 2, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    csv_t t;
    path_in(path, sizeof path, dir, "report-runs.csv");
    csv_load(&t, path);
    int r = csv_row(&t, "dir", "task-0009-mae-seed3");
    assert_string_equal(csv_get(&t, r, "status"), "missing");
    assert_string_equal(csv_get(&t, r, "sweep.arm"), "mae");
    assert_string_equal(csv_get(&t, r, "train.seed"), "3");
    r = csv_row(&t, "dir", "task-0005");
    assert_string_equal(csv_get(&t, r, "sweep.arm"), "");
    csv_free(&t);
    char *md = read_file_in(dir, "report.md");
    expect_in(md, "| mae | 1/3 | 0 |", "report.md"); /* seeds 0, 1 (running), 3 */
    free(md);
    captured_free(&c);
}

/* A Cartesian sweep (no sweep.arm) keeps its report: report.csv per run,
 * report-seeds.csv, the key plots; --baseline is refused. */
static void test_cartesian_sweep_unchanged(void **state)
{
    (void)state;
    char dir[700], run[800], path[900], err[1024];
    path_in(dir, sizeof dir, work, "cartesian");
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int t = 0; t < 4; t++) {
        char name[32], seed[8];
        snprintf(name, sizeof name, "task-%04d", t);
        path_in(run, sizeof run, dir, name);
        assert_int_equal(mkdir(run, 0755), 0);
        mimae_config_t cfg;
        assert_int_equal(mimae_config_preset(&cfg, "fmnist-tiny"), 0);
        cfg.mask_ratio = t < 2 ? 0.75 : 0.9;
        results_t *r = results_new(&cfg, NULL);
        assert_non_null(r);
        snprintf(seed, sizeof seed, "%d", t % 2);
        assert_int_equal(results_set_attr(r, "train.seed", seed), 0);
        step_metrics_t m = {.step = 10, .views = 640, .rec = 0.5, .total = 0.6};
        assert_int_equal(results_append_step(r, &m), 0);
        assert_int_equal(results_set_eval(r, "knn_top1", 0.5 + 0.1 * t, "ckpt", 10), 0);
        path_in(path, sizeof path, run, "results.h5");
        if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
        results_free(r);
    }
    /* stale files of an arm report in the same place go */
    path_in(path, sizeof path, dir, "report-runs.csv");
    write_text(path, "stale\n");
    const char *args[] = {dir};
    captured_t c = run_report(work, 1, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    assert_int_equal(access(path, F_OK), -1);
    csv_t t;
    path_in(path, sizeof path, dir, "report.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 5);
    assert_string_equal(csv_get(&t, 1, "dir"), "task-0000");
    csv_free(&t);
    path_in(path, sizeof path, dir, "report-seeds.csv");
    assert_int_equal(access(path, F_OK), 0);
    path_in(path, sizeof path, dir, "report-mimae.mask_ratio.png");
    assert_true(has_png_signature(path));
    path_in(path, sizeof path, dir, "report-arms-loss.png");
    assert_int_equal(access(path, F_OK), -1);
    captured_free(&c);

    const char *bad[] = {dir, "--baseline", "x"};
    c = run_report(work, 3, bad);
    assert_int_equal(c.rc, 2);
    expect_in(c.err, "no run has sweep.arm", "stderr");
    assert_int_equal(count_lines(c.err), 1);
    captured_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arm_tables),
        cmocka_unit_test(test_baseline_option),
        cmocka_unit_test(test_unknown_baseline),
        cmocka_unit_test(test_arm_from_directory_name),
        cmocka_unit_test(test_cartesian_sweep_unchanged),
    };
    const char *only = getenv("TEST_FILTER");
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, setup, teardown);
}
