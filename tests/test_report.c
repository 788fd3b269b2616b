/* mimae report: a sweep directory built with the results API (mask ratio
 * 0.75 and 0.9 x seeds 0 and 1; task-0003 left only its descriptor, task-0004
 * has a damaged results file, tasks/task-0005.ini was never started) gives
 * the right CSV rows and values, marks the missing and failed tasks, groups
 * the seeds as mean +- sample std, writes Markdown and PNG plots atomically;
 * --out and --no-plots; a missing gnuplot is a clear error after the tables;
 * bad input exits 2 with one line; experiments/analyze.py reads the files. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "core/config/config.h"
#include "experiments/report.h"
#include "io/results.h"

#include "tests/fs_util.h"
#include "tests/mpi_run.h"
#include "tests/report_util.h"

static char work[512], sweep[600];

/* ------------------------------------------------------------------------
 * The sweep: tasks 0-2 with results, 3 missing (descriptor only), 4 damaged,
 * 5 listed in tasks/ but never started. */

typedef struct {
    double ratio;
    int seed;
    double probe, knn;
} task_spec_t;

static const task_spec_t specs[3] = {
    {0.75, 0, 0.6, 0.5},
    {0.75, 1, 0.8, 0.7},
    {0.9, 0, 0.55, 0.45},
};

/* Step s (10, 20, 30) of task t. */
static step_metrics_t spec_step(int t, int s)
{
    step_metrics_t m;
    memset(&m, 0, sizeof m);
    m.step = 10L * (s + 1);
    m.epoch = 0.1 * (s + 1);
    m.views = 64.0 * 4 * m.step;
    m.rec = 1.0 - 0.2 * s + 0.01 * t;
    m.max = 4.0 - 0.1 * s;
    m.min = 0.5 + 0.001 * t;
    m.q = 40.0 + t;
    m.total = m.rec + 0.1 * m.max + 0.01 * m.min;
    m.lr = 1e-4;
    m.grad_norm = 1.0;
    m.images_per_s = 100.0 * (s + 1) + t; /* mean over the three: 200 + t */
    return m;
}

static void write_task(int t)
{
    char dir[700], path[800], name[64], seed[16], err[1024];
    snprintf(name, sizeof name, "task-%04d", t);
    path_in(dir, sizeof dir, sweep, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    mimae_config_t cfg;
    assert_int_equal(mimae_config_preset(&cfg, "fmnist-tiny"), 0);
    cfg.mask_ratio = specs[t].ratio;
    results_t *r = results_new(&cfg, NULL);
    assert_non_null(r);
    snprintf(name, sizeof name, "ratio-task%04d", t);
    snprintf(seed, sizeof seed, "%d", specs[t].seed);
    assert_int_equal(results_set_attr(r, "run.name", name), 0);
    assert_int_equal(results_set_attr(r, "train.seed", seed), 0);
    for (int s = 0; s < 3; s++) {
        step_metrics_t m = spec_step(t, s);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    assert_int_equal(results_set_eval(r, "linear_probe_top1", specs[t].probe, "ckpt", 30), 0);
    assert_int_equal(results_set_eval(r, "knn_top1", specs[t].knn, "ckpt", 30), 0);
    if (t == 0) assert_int_equal(results_set_eval(r, "mi_club", 0.25, "ckpt", 30), 0);
    path_in(path, sizeof path, dir, "results.h5");
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);
}

static const char *missing_descriptor =
    "[model]\npreset = fmnist-tiny\n[mimae]\nmask_ratio = 0.9\n"
    "[data]\ntrain = data/train.h5\n[train]\nseed = %d\n";

static int setup_sweep(void **state)
{
    (void)state;
    char dir[700], path[800], text[512];
    make_tmpdir(work, sizeof work, "mimae-report");
    path_in(sweep, sizeof sweep, work, "sweep");
    if (mkdir(sweep, 0755)) return -1;
    for (int t = 0; t < 3; t++) write_task(t);
    /* task 3: started (its descriptor is there), no results */
    path_in(dir, sizeof dir, sweep, "task-0003");
    if (mkdir(dir, 0755)) return -1;
    path_in(path, sizeof path, dir, "descriptor.ini");
    snprintf(text, sizeof text, missing_descriptor, 1);
    write_text(path, text);
    /* task 4: a damaged results file */
    path_in(dir, sizeof dir, sweep, "task-0004");
    if (mkdir(dir, 0755)) return -1;
    path_in(path, sizeof path, dir, "results.h5");
    write_text(path, "this is not an HDF5 file\n");
    /* task 5: submitted, never started */
    path_in(dir, sizeof dir, sweep, "tasks");
    if (mkdir(dir, 0755)) return -1;
    path_in(path, sizeof path, dir, "task-0005.ini");
    snprintf(text, sizeof text, missing_descriptor, 2);
    write_text(path, text);
    return 0;
}

static int teardown_sweep(void **state)
{
    (void)state;
    remove_tree(work);
    return 0;
}

/* ------------------------------------------------------------------------
 * Tests */

static void test_tables(void **state)
{
    (void)state;
    const char *args[] = {sweep};
    captured_t c = run_report(work, 1, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    assert_string_equal(c.err, "");

    char path[800];
    csv_t t;
    path_in(path, sizeof path, sweep, "report.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 1 + 6); /* header + tasks 0..5 */
    /* the swept key and the seed are columns; unswept keys are not */
    csv_col(&t, "mimae.mask_ratio");
    csv_col(&t, "train.seed");
    for (int col = 0; col < t.ncols; col++)
        assert_string_not_equal(t.cells[0][col], "mimae.num_masks");
    /* rows in task order */
    for (int r = 1; r <= 6; r++) {
        char dir[16];
        snprintf(dir, sizeof dir, "task-%04d", r - 1);
        assert_string_equal(csv_get(&t, r, "dir"), dir);
    }
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "ratio-task%04d", k);
        int r = csv_row(&t, "name", name);
        step_metrics_t last = spec_step(k, 2);
        assert_string_equal(csv_get(&t, r, "status"), "finished");
        assert_true(csv_num(&t, r, "mimae.mask_ratio") == specs[k].ratio);
        assert_true(csv_num(&t, r, "train.seed") == specs[k].seed);
        assert_true(csv_num(&t, r, "steps") == 30);
        assert_true(csv_num(&t, r, "L") == last.total);
        assert_true(csv_num(&t, r, "L_rec") == last.rec);
        assert_true(csv_num(&t, r, "L_max") == last.max);
        assert_true(csv_num(&t, r, "L_min") == last.min);
        assert_true(csv_num(&t, r, "L_q") == last.q);
        assert_true(csv_num(&t, r, "linear_probe_top1") == specs[k].probe);
        assert_true(csv_num(&t, r, "knn_top1") == specs[k].knn);
        assert_true(fabs(csv_num(&t, r, "images_per_s") - (200.0 + k)) < 1e-9);
        if (k == 0) assert_true(csv_num(&t, r, "mi_club") == 0.25);
        else assert_string_equal(csv_get(&t, r, "mi_club"), "");
    }
    /* the missing task keeps its swept values (from its descriptor) */
    int r = csv_row(&t, "dir", "task-0003");
    assert_string_equal(csv_get(&t, r, "status"), "missing");
    assert_string_equal(csv_get(&t, r, "detail"), "no results.h5");
    assert_string_equal(csv_get(&t, r, "mimae.mask_ratio"), "0.9");
    assert_string_equal(csv_get(&t, r, "train.seed"), "1");
    assert_string_equal(csv_get(&t, r, "L_rec"), "");
    r = csv_row(&t, "dir", "task-0004");
    assert_string_equal(csv_get(&t, r, "status"), "failed");
    assert_non_null(strstr(csv_get(&t, r, "detail"), "not a readable HDF5 file"));
    r = csv_row(&t, "dir", "task-0005");
    assert_string_equal(csv_get(&t, r, "status"), "missing");
    assert_string_equal(csv_get(&t, r, "detail"), "no task directory");
    assert_string_equal(csv_get(&t, r, "train.seed"), "2");
    csv_free(&t);

    /* mean +- sample std over seeds */
    path_in(path, sizeof path, sweep, "report-seeds.csv");
    csv_load(&t, path);
    r = csv_row(&t, "mimae.mask_ratio", "0.75");
    assert_string_equal(csv_get(&t, r, "runs_with_results"), "2");
    assert_string_equal(csv_get(&t, r, "runs"), "2");
    assert_string_equal(csv_get(&t, r, "seeds"), "0 1");
    assert_true(fabs(csv_num(&t, r, "linear_probe_top1_mean") - 0.7) < 1e-12);
    assert_true(fabs(csv_num(&t, r, "linear_probe_top1_std") - sqrt(0.02)) < 1e-12);
    assert_true(fabs(csv_num(&t, r, "knn_top1_mean") - 0.6) < 1e-12);
    assert_true(fabs(csv_num(&t, r, "knn_top1_std") - sqrt(0.02)) < 1e-12);
    const double rec0 = spec_step(0, 2).rec, rec1 = spec_step(1, 2).rec;
    assert_true(fabs(csv_num(&t, r, "L_rec_mean") - (rec0 + rec1) / 2) < 1e-12);
    assert_true(fabs(csv_num(&t, r, "L_rec_std") - fabs(rec0 - rec1) / sqrt(2.0)) < 1e-12);
    r = csv_row(&t, "mimae.mask_ratio", "0.9"); /* task 2 with results, task 3 missing */
    assert_string_equal(csv_get(&t, r, "runs_with_results"), "1");
    assert_string_equal(csv_get(&t, r, "runs"), "3"); /* tasks 2, 3 and 5 (mask 0.9 listed) */
    assert_true(csv_num(&t, r, "linear_probe_top1_mean") == 0.55);
    assert_string_equal(csv_get(&t, r, "linear_probe_top1_std"), "");
    csv_free(&t);

    /* stdout: the aligned table with the marks and the grouped table */
    assert_non_null(strstr(c.out, "ratio-task0001"));
    assert_non_null(strstr(c.out, "missing: no results.h5"));
    assert_non_null(strstr(c.out, "missing: no task directory"));
    assert_non_null(strstr(c.out, "failed: not a readable HDF5 file"));
    assert_non_null(strstr(c.out, "0.7000+-0.1414"));
    assert_non_null(strstr(c.out, "6 runs, 3 finished, 2 missing, 1 failed"));

    /* Markdown */
    path_in(path, sizeof path, sweep, "report.md");
    char *md = read_text(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "| name | mimae.mask_ratio | train.seed |"));
    assert_non_null(strstr(md, "| task-0003 | 0.9 | 1 |"));
    assert_non_null(strstr(md, "0.7000 ± 0.1414"));
    assert_non_null(strstr(md, "![Loss curves](report-loss.png)"));
    assert_non_null(strstr(md, "(report-mimae.mask_ratio.png)"));
    free(md);

    /* plots */
    path_in(path, sizeof path, sweep, "report-loss.png");
    assert_true(has_png_signature(path));
    path_in(path, sizeof path, sweep, "report-mimae.mask_ratio.png");
    assert_true(has_png_signature(path));
    path_in(path, sizeof path, sweep, "report-train.seed.png"); /* the seed is not plotted */
    assert_int_equal(access(path, F_OK), -1);
    assert_false(has_temporary(sweep));
    captured_free(&c);
}

static void test_out_dir_no_plots(void **state)
{
    (void)state;
    char out[700], path[800];
    path_in(out, sizeof out, work, "elsewhere/deeper");
    const char *args[] = {"--no-plots", sweep, "--out", out};
    captured_t c = run_report(work, 4, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    path_in(path, sizeof path, out, "report.csv");
    assert_int_equal(access(path, F_OK), 0);
    path_in(path, sizeof path, out, "report.md");
    assert_int_equal(access(path, F_OK), 0);
    path_in(path, sizeof path, out, "report-loss.png");
    assert_int_equal(access(path, F_OK), -1);
    assert_false(has_temporary(out));
    captured_free(&c);
}

/* Without gnuplot on PATH: the tables are written, then one clear line and
 * exit status 1. */
static void test_gnuplot_missing(void **state)
{
    (void)state;
    char out[700], path[800];
    path_in(out, sizeof out, work, "nognuplot");
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", "/nonexistent-mimae-test", 1);
    const char *args[] = {sweep, "--out", out};
    captured_t c = run_report(work, 3, args);
    if (saved) setenv("PATH", saved, 1);
    else unsetenv("PATH");
    free(saved);
    assert_int_equal(c.rc, 1);
    assert_int_equal(count_lines(c.err), 1);
    assert_non_null(strstr(c.err, "gnuplot not found"));
    path_in(path, sizeof path, out, "report.csv");
    assert_int_equal(access(path, F_OK), 0);
    path_in(path, sizeof path, out, "report-loss.png");
    assert_int_equal(access(path, F_OK), -1);
    assert_false(has_temporary(out));
    captured_free(&c);
}

static void expect_bad_input(int argc, const char *const *args, const char *words)
{
    captured_t c = run_report(work, argc, args);
    assert_int_equal(c.rc, 2);
    if (count_lines(c.err) != 1) fail_msg("expected one line, got: %s", c.err);
    if (!strstr(c.err, words)) fail_msg("expected '%s' in: %s", words, c.err);
    assert_string_equal(c.out, "");
    captured_free(&c);
}

static void test_bad_input(void **state)
{
    (void)state;
    char missing[700], empty[700], other[700];
    path_in(missing, sizeof missing, work, "no-such-sweep");
    path_in(empty, sizeof empty, work, "empty");
    path_in(other, sizeof other, empty, "unrelated");
    assert_int_equal(mkdir(empty, 0755), 0);
    assert_int_equal(mkdir(other, 0755), 0); /* no results, descriptor or checkpoints */
    const char *a1[] = {missing};
    expect_bad_input(1, a1, "No such file or directory");
    const char *a2[] = {empty};
    expect_bad_input(1, a2, "no results files");
    assert_int_equal(count_entries(empty), 1); /* nothing written */
    const char *a3[] = {sweep, "--bogus"};
    expect_bad_input(2, a3, "unknown option --bogus");
    const char *a4[] = {sweep, "--out"};
    expect_bad_input(2, a4, "--out needs a directory");
    expect_bad_input(0, NULL, "missing SWEEP_DIR");
    const char *a5[] = {sweep, sweep};
    expect_bad_input(2, a5, "unexpected argument");
    const char *a6[] = {"--help"};
    captured_t c = run_report(work, 1, a6);
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "usage: mimae report SWEEP_DIR"));
    captured_free(&c);
}

/* A single run directory, and runs side by side (demo/mimae, demo/mae). */
static void test_single_and_side_by_side(void **state)
{
    (void)state;
    char demo[700], src[700], dst[700], cmd[2400], path[800];
    path_in(demo, sizeof demo, work, "demo");
    assert_int_equal(mkdir(demo, 0755), 0);
    path_in(src, sizeof src, sweep, "task-0000");
    path_in(dst, sizeof dst, demo, "mimae");
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dst);
    assert_int_equal(system(cmd), 0);
    path_in(src, sizeof src, sweep, "task-0002");
    path_in(dst, sizeof dst, demo, "mae");
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dst);
    assert_int_equal(system(cmd), 0);

    const char *args[] = {demo, "--no-plots"};
    captured_t c = run_report(work, 2, args);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    csv_t t;
    path_in(path, sizeof path, demo, "report.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 3);
    assert_string_equal(csv_get(&t, 1, "dir"), "mae"); /* by name */
    assert_string_equal(csv_get(&t, 2, "dir"), "mimae");
    assert_string_equal(csv_get(&t, 1, "mimae.mask_ratio"), "0.9");
    csv_free(&t);
    captured_free(&c);

    const char *one[] = {dst, "--no-plots"}; /* the run directory itself */
    c = run_report(work, 2, one);
    if (c.rc != 0) fail_msg("exit %d: %s", c.rc, c.err);
    path_in(path, sizeof path, dst, "report.csv");
    csv_load(&t, path);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(csv_get(&t, 1, "dir"), ".");
    assert_string_equal(csv_get(&t, 1, "name"), "ratio-task0002");
    csv_free(&t);
    captured_free(&c);
}

/* experiments/analyze.py (run from the source tree, as `make test` does). */
static void test_analyze_py(void **state)
{
    (void)state;
    if (access("experiments/analyze.py", R_OK) != 0)
        fail_msg("experiments/analyze.py not found: run the test from the source directory");
    char png[700], log[700], cmd[2400];
    path_in(png, sizeof png, work, "analyze.png");
    path_in(log, sizeof log, work, "analyze.txt");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 experiments/analyze.py '%s' --out '%s' >'%s' 2>&1",
             sweep, png, log);
    int st = system(cmd);
    char *out = read_text(log);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("analyze.py failed: %s", out ? out : "");
    assert_non_null(out);
    assert_non_null(strstr(out, "ratio-task0000"));
    assert_non_null(strstr(out, "ratio-task0002"));
    assert_non_null(strstr(out, "cannot read")); /* the damaged task-0004 */
    assert_true(has_png_signature(png));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_out_dir_no_plots),
        cmocka_unit_test(test_gnuplot_missing),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_single_and_side_by_side),
        cmocka_unit_test(test_analyze_py),
    };
    const char *only = getenv("TEST_FILTER");
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, setup_sweep, teardown_sweep);
}
