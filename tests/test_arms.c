/* Sweeps of named arms (issue 14): [arm NAME] sections expand to arms x
 * seeds in file order with their own directories and names, every refusal
 * of an arm's header or line names file:line and the arm, a --set of a key
 * an arm sets is refused; train.view_epochs resolves to epochs =
 * view_epochs / num_masks; mimae_dist records sweep.arm, the resolved
 * train.epochs and status (running from the start, finished after the final
 * evaluation) in results.h5; `mimae sweep submit` leaves out finished and
 * running tasks and submits the rest in compact ranges. */
#define _DEFAULT_SOURCE /* kill */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "io/results.h"
#include "ckpt_util.h"
#include "fs_util.h"
#include "mpi_run.h"

#define JOB_TIMEOUT_S 120

static char build_dir[512], work[64];
typedef char assign_t[SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];

/* work/name with text in it; its path in path (300). */
static void write_file(const char *name, const char *text, char *path)
{
    snprintf(path, 300, "%s/%s", work, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* work/name (the files run_captured leaves there, a run's files). */
static const char *in_work(const char *name)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/%s", work, name);
    return path;
}

/* Fails the test unless the file holds every word of the NULL-terminated
 * list (present) or none of them (!present); show: prints the file first. */
static void check_words(const char *path, int present, int show, const char *first, ...)
{
    char *text = read_text(path);
    if (!text) fail_msg("%s: cannot read it", path);
    if (show) printf("%s", text);
    va_list ap;
    va_start(ap, first);
    for (const char *w = first; w; w = va_arg(ap, const char *))
        if ((strstr(text, w) != NULL) != present) {
            va_end(ap);
            free(text);
            fail_msg("%s %s \"%s\"", path, present ? "lacks" : "holds", w);
        }
    va_end(ap);
    free(text);
}

/* A descriptor of fmnist-tiny (out_dir /runs/s, name s) followed by text,
 * loaded and expanded; 0, -1 (load) or -2 (sweep) with err. */
static int load(descriptor_t *d, sweep_t *s, const char *text, char *err, size_t errlen)
{
    char path[300], full[4096];
    snprintf(full, sizeof full, "[model]\npreset = fmnist-tiny\n[run]\nout_dir = /runs/s\n"
             "name = s\n%s", text);
    write_file("arms.ini", full, path);
    err[0] = '\0';
    if (descriptor_load(d, path, NULL, 0, -1, err, errlen)) return -1;
    return sweep_parse(d, s, err, errlen) ? -2 : 0;
}

/* ------------------------------------------------------------------------
 * Parsing, order, names and directories. */

static void test_arms_times_seeds_in_file_order(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    static assign_t assign[SWEEP_MAX_ASSIGNMENTS];
    char err[1024];
    if (load(&d, &s, "[sweep]\nseeds = 0, 1, 2\n[arm mi-mae]\n[arm mae_N1.v2]\n"
                     "mimae.num_masks = 1\nmimae.w_max = 0\nmimae.w_min = 0\n"
                     "[arm tau]\nmimae.tau = 0.2\n", err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(d.arm_count, 3);
    assert_string_equal(d.arms[1].name, "mae_N1.v2");
    assert_int_equal(d.arms[1].line, 9);
    assert_int_equal(s.n_arms, 3);
    assert_int_equal(s.tasks, 9);
    /* arms in file order, seeds innermost */
    const char *arm_of[9] = {"mi-mae", "mi-mae", "mi-mae", "mae_N1.v2", "mae_N1.v2",
                             "mae_N1.v2", "tau", "tau", "tau"};
    for (long t = 0; t < 9; t++) {
        assert_string_equal(d.arms[sweep_arm_index(&s, t)].name, arm_of[t]);
        assert_int_equal(sweep_value_index(&s, t, 0), t % 3);
    }
    int n = sweep_task_assignments(&s, &d, 4, assign);
    assert_int_equal(n, 6);
    assert_string_equal(assign[0], "mimae.num_masks=1");
    assert_string_equal(assign[1], "mimae.w_max=0");
    assert_string_equal(assign[2], "mimae.w_min=0");
    assert_string_equal(assign[3], "train.seed=1");
    assert_string_equal(assign[4], "run.out_dir=/runs/s/task-0004-mae_N1.v2-seed1");
    assert_string_equal(assign[5], "run.name=s-mae_N1.v2-seed1");
    n = sweep_task_assignments(&s, &d, 0, assign); /* an arm of no overrides */
    assert_int_equal(n, 3);
    assert_string_equal(assign[1], "run.out_dir=/runs/s/task-0000-mi-mae-seed0");
    assert_int_equal(sweep_task_assignments(&s, &d, 9, assign), -1);

    /* without seeds: one task per arm, with the base seed */
    if (load(&d, &s, "[train]\nseed = 7\n[arm a]\nmimae.tau = 0.1\n[arm b]\n", err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(s.tasks, 2);
    assert_int_equal(s.n_keys, 0);
    n = sweep_task_assignments(&s, &d, 1, assign);
    assert_int_equal(n, 2);
    assert_string_equal(assign[0], "run.out_dir=/runs/s/task-0001-b-seed7");
    assert_string_equal(assign[1], "run.name=s-b-seed7");

    /* a Cartesian [sweep] is as it was */
    if (load(&d, &s, "[sweep]\nmimae.tau = 0.1, 0.2\n", err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(s.n_arms, 0);
    n = sweep_task_assignments(&s, &d, 1, assign);
    assert_int_equal(n, 3);
    assert_string_equal(assign[1], "run.out_dir=/runs/s/task-0001");

    /* the arms are written back and read again the same */
    if (load(&d, &s, "[sweep]\nseeds = 0, 1\n[arm x]\nmimae.tau = 0.3 ; a comment\n[arm y]\n",
             err, sizeof err))
        fail_msg("%s", err);
    static descriptor_t back;
    char out[300];
    snprintf(out, sizeof out, "%s/written.ini", work);
    if (descriptor_write(&d, out, err, sizeof err)) fail_msg("%s", err);
    if (descriptor_load(&back, out, NULL, 0, -1, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(back.arm_count, 2);
    assert_string_equal(back.arms[1].name, "y");
    assert_int_equal(back.arm_set_count, 1);
    assert_string_equal(back.arm_sets[0], "mimae.tau=0.3");
}

/* Every refusal: one line, exit -1 from the load (or -2 from the sweep's
 * checks across a task's keys), naming file:line, the arm and the fix. */
static void test_arm_refusals(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    char err[2048];
    const struct {
        const char *text;
        int rc;
        const char *words[4];
    } cases[] = {
        {"[arm a b]\n", -1, {"arms.ini:6: [arm a b]", "letters, digits", "rename it"}},
        {"[arm]\n", -1, {"arms.ini:6: [arm ]", "1 to 40"}},
        {"[arm x/y]\n", -1, {"arms.ini:6: [arm x/y]", "'-', '_' or '.'"}},
        {"[arm a23456789012345678901234567890123456789012]\n", -1,
         {"arms.ini:6:", "1 to 40", "rename it"}},
        {"[arm a]\n[arm b]\n[arm a]\n", -1,
         {"arms.ini:8: [arm a]", "second arm", "first is on line 6", "rename one"}},
        {"[arm a]\nmimae.tauu = 0.1\n", -1,
         {"arms.ini:7: [arm a] mimae.tauu: unknown key", "did you mean mimae.tau"}},
        {"[arm a]\nmimae.mask_ratio = 1.5\n", -1,
         {"arms.ini:7: [arm a] mimae.mask_ratio = '1.5'", "must be"}},
        {"[arm a]\ntrain.epochs = 0\n", -1, {"arms.ini:7: [arm a] train.epochs = '0'", "1"}},
        {"[arm a]\nmimae.pool = max\n", -1, {"arms.ini:7: [arm a] mimae.pool = 'max'", "mean"}},
        {"[arm a]\nepochs = 3\n", -1, {"arms.ini:7: [arm a] epochs", "section.key"}},
        {"[arm a]\nsweep.seeds = 1\n", -1, {"arms.ini:7: [arm a] sweep.seeds: unknown key"}},
        {"[arm a]\nrun.out_dir = /x\n", -1,
         {"arms.ini:7: [arm a] run.out_dir", "cannot be set in an arm"}},
        {"[arm a]\nrun.name = x\n", -1, {"arms.ini:7: [arm a] run.name", "cannot be set"}},
        {"[arm a]\nmodel.preset = test-small\n", -1,
         {"arms.ini:7: [arm a] model.preset", "cannot be set"}},
        {"[arm a]\ntrain.seed = 3\n", -1,
         {"arms.ini:7: [arm a] train.seed", "cannot be set", "[sweep] seeds"}},
        {"[arm a]\nmimae.tau = 0.1\nmimae.tau = 0.2\n", -1,
         {"arms.ini:8: [arm a] mimae.tau", "set twice", "line 7", "keep one"}},
        {"[arm a]\ntrain.epochs = 2\ntrain.view_epochs = 8\n", -1,
         {"arms.ini:8: [arm a] train.view_epochs", "train.epochs on line 7", "keep one"}},
        {"[sweep]\nmimae.w_max = 0, 0.1\n[arm a]\n", -1,
         {"arms.ini:7: [sweep] mimae.w_max", "sweeps only seeds", "put the values into arms"}},
        {"[arm a]\n[sweep]\nseeds = 0, 1\nmimae.tau = 0.1, 0.2\n", -1,
         {"arms.ini:9: [sweep] mimae.tau", "put the values into arms"}},
        {"[arm big]\nmimae.num_masks = 8\n", -2, {"arms.ini:6: [arm big] task 0", "num_masks"}},
        {"[train]\nview_epochs = 20\n[arm mae]\nmimae.num_masks = 1\n[arm three]\n"
         "mimae.num_masks = 3\n", -2,
         {"arms.ini:10: [arm three] task 1", "view_epochs = 20 is not a multiple of "
          "mimae.num_masks = 3", "18 or 21"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int rc = load(&d, &s, cases[i].text, err, sizeof err);
        printf("  %s    -> %s\n", cases[i].text, err);
        assert_int_equal(rc, cases[i].rc);
        assert_null(strchr(err, '\n'));
        for (int w = 0; w < 4 && cases[i].words[w]; w++)
            if (!strstr(err, cases[i].words[w]))
                fail_msg("\"%s\" lacks \"%s\"", err, cases[i].words[w]);
    }
}

/* A --set of a key an arm sets would be replaced by the arm's value in its
 * tasks: refused, the two spellings of the training length alike; in the
 * program, exit 2 with one line. */
static void test_set_of_an_arm_key_is_refused(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    char err[1024];
    if (load(&d, &s, "[arm mae]\nmimae.num_masks = 1\n[arm short]\ntrain.epochs = 2\n", err,
             sizeof err))
        fail_msg("%s", err);
    const char *ok[] = {"mimae.tau=0.2", "train.max_steps=3"};
    assert_int_equal(sweep_check_overrides(&s, &d, ok, 2, err, sizeof err), 0);
    const char *masks[] = {"mimae.tau=0.2", " mimae.num_masks = 2"};
    assert_int_equal(sweep_check_overrides(&s, &d, masks, 2, err, sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "--set  mimae.num_masks = 2: arm mae sets mimae.num_masks"));
    const char *views[] = {"train.view_epochs=8"};
    assert_int_equal(sweep_check_overrides(&s, &d, views, 1, err, sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "arm short sets train.epochs (line 9)"));

    /* the same through `mimae sweep plan` and mimae_dist */
    char path[300];
    write_file("setarm.ini", "[data]\ntrain = data/train.h5\n[arm mae]\nmimae.num_masks = 1\n",
               path);
    assert_bad_input(work, run_captured(work, "%s/mimae sweep plan setarm.ini --set "
                                        "mimae.num_masks=2", build_dir),
                     "--set mimae.num_masks=2", "arm mae sets", NULL);
    assert_bad_input(work, run_captured(work, "%s/mimae_dist setarm.ini --task 0 --set "
                                        "mimae.num_masks=2", build_dir),
                     "--set mimae.num_masks=2", "arm mae sets", NULL);
}

/* ------------------------------------------------------------------------
 * train.view_epochs. */

/* Loads work/view.ini (text) with the overrides; -1 with err. */
static int load_view(descriptor_t *d, const char *text, const char *const *sets, int n,
                     char *err, size_t errlen)
{
    char path[300];
    write_file("view.ini", text, path);
    err[0] = '\0';
    return descriptor_load(d, path, sets, n, -1, err, errlen);
}

/* The descriptor at path and its sweep, or the test fails. */
static void load_sweep(descriptor_t *d, sweep_t *s, const char *path)
{
    char err[1024];
    if (descriptor_load(d, path, NULL, 0, -1, err, sizeof err) || sweep_parse(d, s, err, sizeof err))
        fail_msg("%s", err);
}

/* Task t of the sweep s of d (read from path), loaded as mimae_dist --task
 * loads it: the task's assignments as overrides. */
static void load_task(descriptor_t *task, const char *path, const sweep_t *s,
                      const descriptor_t *d, long t)
{
    static assign_t assign[SWEEP_MAX_ASSIGNMENTS];
    const char *list[SWEEP_MAX_ASSIGNMENTS];
    char err[1024];
    const int n = sweep_task_assignments(s, d, t, assign);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) list[i] = assign[i];
    if (descriptor_load(task, path, list, n, -1, err, sizeof err)) fail_msg("%s", err);
}

static void test_view_epochs_resolve_to_epochs(void **state)
{
    (void)state;
    static descriptor_t d;
    char err[1024];
    const struct {
        const char *text;
        long epochs;
    } ok[] = {
        {"[train]\nview_epochs = 20\n", 5},                       /* 4 masks (default) */
        {"[train]\nview_epochs = 20\n[mimae]\nnum_masks = 1\n", 20},
        {"[train]\nview_epochs = 20\n[mimae]\nnum_masks = 2\n", 10},
        {"[train]\nepochs = 7\nview_epochs = 0\n", 7},            /* 0: unused */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (load_view(&d, ok[i].text, NULL, 0, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(d.run.epochs, ok[i].epochs);
    }
    assert_int_equal(load_view(&d, "[train]\nview_epochs = 20\n[mimae]\nnum_masks = 3\n", NULL,
                               0, err, sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "view.ini:2: train.view_epochs = 20 is not a multiple of "
                                "mimae.num_masks = 3"));
    assert_non_null(strstr(err, "use a multiple of 3 (18 or 21), or give train.epochs"));
    /* at the top of the range there is no multiple above it to offer (the
     * sum that would give it overflows a long) */
    assert_int_equal(load_view(&d, "[train]\nview_epochs = 9223372036854775807\n", NULL, 0, err,
                               sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "use a multiple of 4 (9223372036854775804), or give train.epochs"));
    assert_int_equal(load_view(&d, "[train]\nepochs = 5\nview_epochs = 20\n", NULL, 0, err,
                               sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "view.ini:3: train.view_epochs: train.epochs is given too "
                                "(line 2)"));
    assert_non_null(strstr(err, "keep one of them"));

    /* an assignment of one spelling replaces the other */
    const char *epochs7[] = {"train.epochs=7"}, *views8[] = {"train.view_epochs=8"};
    if (load_view(&d, "[train]\nview_epochs = 20\n", epochs7, 1, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(d.run.epochs, 7);
    assert_int_equal(d.run.view_epochs, 0);
    if (load_view(&d, "[train]\nepochs = 10\n", views8, 1, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d.run.epochs, 2);
    const char *masks3[] = {"mimae.num_masks=3"};
    assert_int_equal(load_view(&d, "[train]\nview_epochs = 20\n", masks3, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "view.ini:2: train.view_epochs = 20"));

    /* arms: an arm's epochs over the base's view_epochs, an arm's num_masks
     * under it; loaded as mimae_dist --task loads a task */
    static sweep_t s;
    static descriptor_t task;
    char path[300];
    write_file("armview.ini", "[mimae]\nnum_masks = 2\n[train]\nview_epochs = 20\n"
               "[run]\nname = av\n[arm mimae]\n[arm mae]\nmimae.num_masks = 1\n"
               "[arm five]\ntrain.epochs = 5\n", path);
    load_sweep(&d, &s, path);
    const long expect[] = {10, 20, 5};
    for (long t = 0; t < 3; t++) {
        load_task(&task, path, &s, &d, t);
        assert_int_equal(task.run.epochs, expect[t]);
        /* the task's effective descriptor shows the resolved epochs */
        descriptor_as_run(&task);
        char line[64];
        if (descriptor_write(&task, in_work("task.ini"), err, sizeof err)) fail_msg("%s", err);
        snprintf(line, sizeof line, "\nepochs = %ld\n", expect[t]);
        check_words(in_work("task.ini"), 1, 0, line, "\nview_epochs = 0\n", NULL);
    }
    /* the shipped ablation: six arms x 3 seeds, every arm 20 masked views an
     * image except MAE at equal passes (5 epochs, as the 4-mask arms) */
    char shipped[700];
    snprintf(shipped, sizeof shipped, "%s/../experiments/fmnist_ablation.ini", build_dir);
    load_sweep(&d, &s, shipped);
    assert_int_equal(s.tasks, 18);
    static const struct { const char *arm; long epochs, masks; float w_max, w_min; } arms[] = {
        {"mae-equal-passes", 5, 1, 0, 0}, {"mae-equal-compute", 20, 1, 0, 0},
        {"control", 5, 4, 0, 0},          {"infonce", 5, 4, 0.1f, 0},
        {"club", 5, 4, 0, 0.01f},         {"mimae", 5, 4, 0.1f, 0.01f},
    };
    for (long t = 0; t < 18; t++) {
        load_task(&task, shipped, &s, &d, t);
        const long a = t / 3;
        char dir[128];
        snprintf(dir, sizeof dir, "task-%04ld-%s-seed%ld", t, arms[a].arm, t % 3);
        assert_non_null(strstr(task.run.out_dir, dir));
        assert_int_equal(task.run.seed, t % 3);
        assert_int_equal(task.run.epochs, arms[a].epochs);
        assert_int_equal(task.model.num_masks, arms[a].masks);
        assert_true(task.model.w_max == arms[a].w_max);
        assert_true(task.model.w_min == arms[a].w_min);
    }
    if (load_view(&d, "[train]\nview_epochs = 20\n[mimae]\nnum_masks = 2\n[arm mimae]\n"
                  "[arm mae]\nmimae.num_masks = 1\n[arm five]\ntrain.epochs = 5\n", NULL, 0, err,
                  sizeof err) ||
        sweep_parse(&d, &s, err, sizeof err))
        fail_msg("%s", err);

    /* the base written as it is (view_epochs in effect) loads back the same */
    char out[300];
    snprintf(out, sizeof out, "%s/base.ini", work);
    static descriptor_t back;
    if (descriptor_write(&d, out, err, sizeof err) ||
        descriptor_load(&back, out, NULL, 0, -1, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(back.run.epochs, 10);
    assert_int_equal(back.run.view_epochs, 20);
    assert_int_equal(back.arm_count, 3);
}

/* ------------------------------------------------------------------------
 * `mimae sweep plan` and `submit`. */

/* A script named `name` in work/fakebin: prints text, touches work/<name>.ran. */
static void fake_command(const char *name, const char *text)
{
    assert_int_equal(run_shell("mkdir -p %s/fakebin && printf '#!/bin/sh\\ntouch %s/%s.ran\\n"
                               "echo \"%s\"\\n' > %s/fakebin/%s && chmod +x %s/fakebin/%s",
                               work, work, name, text, work, name, work, name), 0);
}

/* The arms sweep of the submit tests: arms a, b x seeds 0, 1, 2. */
static const char *const sub_text =
    "[model]\npreset = test-small\nchannels = 1\n[data]\ntrain = data/train.h5\n"
    "[train]\nglobal_batch = 16\n[run]\nout_dir = runs/sub\n[sweep]\nseeds = 0, 1, 2\n"
    "[arm a]\n[arm b]\nmimae.num_masks = 1\n";

static const char *const sub_dirs[6] = {"task-0000-a-seed0", "task-0001-a-seed1",
                                        "task-0002-a-seed2", "task-0003-b-seed0",
                                        "task-0004-b-seed1", "task-0005-b-seed2"};

/* runs/sub/<task dir>/results.h5 of task `task` saying status (NULL: not
 * an HDF5 file), with the model config and seed of task `as_task` (task
 * itself: its own results; another: a file of another run), read from
 * runs/sub/tasks/task-NNNN.ini (a submit writes it). */
static void task_results_as(int task, int as_task, const char *status)
{
    char dir[300], path[400], err[1024], seed[32];
    snprintf(dir, sizeof dir, "%s/runs/sub/%s", work, sub_dirs[task]);
    assert_int_equal(run_shell("mkdir -p %s && rm -f %s/results.h5", dir, dir), 0);
    snprintf(path, sizeof path, "%s/results.h5", dir);
    if (!status) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("not an HDF5 file\n", f);
        assert_int_equal(fclose(f), 0);
        return;
    }
    static descriptor_t d;
    char ini[300];
    snprintf(ini, sizeof ini, "%s/runs/sub/tasks/task-%04d.ini", work, as_task);
    if (descriptor_load(&d, ini, NULL, 0, -1, err, sizeof err)) fail_msg("%s", err);
    results_env_t env;
    memset(&env, 0, sizeof env);
    results_t *r = results_new(&d.model, &env);
    assert_non_null(r);
    snprintf(seed, sizeof seed, "%ld", d.run.seed);
    assert_int_equal(results_set_attr(r, "train.seed", seed), 0);
    assert_int_equal(results_set_attr(r, RESULTS_STATUS, status), 0);
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);
}

static void task_results(int task, const char *status) { task_results_as(task, task, status); }

/* What the last run_captured printed on stderr (shown), and its lines. */
static char *captured_stderr(int *lines)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    char *text = read_text(path);
    assert_non_null(text);
    printf("%s", text);
    *lines = 0;
    for (const char *c = text; *c; c++) *lines += *c == '\n';
    return text;
}

static void test_plan_shows_arms(void **state)
{
    (void)state;
    char path[300];
    write_file("sub.ini", sub_text, path);
    assert_int_equal(run_captured(work, "%s/mimae sweep plan sub.ini", build_dir), 0);
    check_words(in_work("stdout.txt"), 1, 1, "task  arm  train.seed  overrides          out_dir",
                "   4  b    1           mimae.num_masks=1  runs/sub/task-0004-b-seed1",
                "   0  a    0           (none)             runs/sub/task-0000-a-seed0", "6 tasks",
                NULL);
    fake_command("scontrol", "MaxArraySize = 1001");
    assert_int_equal(run_captured(work, "PATH=%s/fakebin:$PATH %s/mimae sweep submit sub.ini "
                                  "--dry-run", work, build_dir), 0);
    check_words(in_work("runs/sub/plan.tsv"), 1, 0, "task\tarm\ttrain.seed\toverrides\tout_dir\n",
                "\n5\tb\t2\tmimae.num_masks=1\truns/sub/task-0005-b-seed2\n", NULL);
    /* each task file is what the task runs, with its arm applied */
    check_words(in_work("runs/sub/tasks/task-0003.ini"), 1, 0, "\nnum_masks = 1\n",
                "\nout_dir = runs/sub/task-0003-b-seed0\n", NULL);
    check_words(in_work("runs/sub/tasks/task-0003.ini"), 0, 0, "[arm", "[sweep]", NULL);
}

/* Tasks 0-2 finished, 3 running by its status, 4 with a damaged results.h5
 * (not finished: one line, submitted), 5 without results: the array is
 * 3-5. Task 5's run directory locked by a live process (this one): 3-4, and
 * 5 said running. Everything finished: nothing submitted, exit 0, sbatch
 * never run; an --array of the user's still goes to sbatch. */
static void test_submit_leaves_out_finished_and_running(void **state)
{
    (void)state;
    char path[300];
    write_file("sub.ini", sub_text, path);
    fake_command("scontrol", "MaxArraySize = 1001");
    fake_command("sbatch", "4242");
    const char *submit = "PATH=%s/fakebin:$PATH %s/mimae sweep submit sub.ini %s";
    assert_int_equal(run_shell("rm -rf %s/runs/sub", work), 0);
    assert_int_equal(run_captured(work, submit, work, build_dir, "--dry-run"), 0); /* tasks/ */
    check_words(in_work("stdout.txt"), 1, 1, "--array=0-5 ", NULL);
    for (int t = 0; t < 3; t++) task_results(t, RESULTS_STATUS_FINISHED);
    task_results(3, RESULTS_STATUS_RUNNING);
    task_results(4, NULL);
    assert_int_equal(run_captured(work, submit, work, build_dir, "--dry-run"), 0);
    check_words(in_work("stdout.txt"), 1, 1, "3 of 6 finished: 0-2\n", "--array=3-5 ", NULL);
    int lines;
    char *warn = captured_stderr(&lines);
    const int says = strstr(warn, "task 4:") && strstr(warn, "task-0004-b-seed1/results.h5") &&
                     strstr(warn, "not finished");
    free(warn);
    assert_int_equal(lines, 1);
    assert_true(says);

    /* a live job holds task 5's run directory */
    char lock[300];
    snprintf(lock, sizeof lock, "%s/runs/sub/%s", work, sub_dirs[5]);
    assert_int_equal(run_shell("mkdir -p %s", lock), 0);
    snprintf(lock + strlen(lock), sizeof lock - strlen(lock), "/.lock");
    const int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
    assert_int_equal(run_captured(work, submit, work, build_dir, "--dry-run --limit 2"), 0);
    close(fd); /* the job ends: its lock goes */
    check_words(in_work("stdout.txt"), 1, 1, "3 of 6 finished: 0-2\n", "1 of 6 running", ": 5\n", "--array=3-4%2 ", NULL);

    /* all finished: nothing to do, and sbatch is not run */
    for (int t = 3; t < 6; t++) task_results(t, RESULTS_STATUS_FINISHED);
    assert_int_equal(run_captured(work, submit, work, build_dir, ""), 0);
    check_words(in_work("stdout.txt"), 1, 1, "6 of 6 finished: 0-5\n", "nothing to submit", NULL);
    snprintf(path, sizeof path, "%s/sbatch.ran", work);
    assert_int_not_equal(access(path, F_OK), 0);
    /* the user's --array wins */
    assert_int_equal(run_captured(work, submit, work, build_dir, "-- --array=1"), 0);
    check_words(in_work("stdout.txt"), 1, 1, "Submitted batch job 4242", NULL);
    assert_int_equal(access(path, F_OK), 0);
}

/* Only a task's own finished results count: a results.h5 that is a link
 * (the task would refuse it), one of another arm's configuration and one of
 * another seed (the task would refuse to resume either) say finished, but
 * the tasks are submitted, one line each naming the file and why. */
static void test_submit_counts_only_a_tasks_own_results(void **state)
{
    (void)state;
    char path[300], other[300];
    write_file("sub.ini", sub_text, path);
    fake_command("scontrol", "MaxArraySize = 1001");
    const char *submit = "PATH=%s/fakebin:$PATH %s/mimae sweep submit sub.ini --dry-run";
    assert_int_equal(run_shell("rm -rf %s/runs/sub", work), 0);
    assert_int_equal(run_captured(work, submit, work, build_dir), 0); /* tasks/ */
    for (int t = 0; t < 6; t++) task_results(t, RESULTS_STATUS_FINISHED);
    /* task 1's results.h5: a link to a file that is task 1's in every value */
    snprintf(other, sizeof other, "%s/elsewhere.h5", work);
    snprintf(path, sizeof path, "%s/runs/sub/%s/results.h5", work, sub_dirs[1]);
    assert_int_equal(rename(path, other), 0);
    assert_int_equal(symlink(other, path), 0);
    task_results_as(3, 0, RESULTS_STATUS_FINISHED); /* arm a's (4 masks) in arm b's task */
    task_results_as(4, 3, RESULTS_STATUS_FINISHED); /* arm b, seed 0 in seed 1's task */
    assert_int_equal(run_captured(work, submit, work, build_dir), 0);
    check_words(in_work("stdout.txt"), 1, 1, "3 of 6 finished: 0,2,5\n", "--array=1,3-4 ", NULL);
    int lines;
    char *warn = captured_stderr(&lines);
    const char *t1 = strstr(warn, "task 1:"), *t3 = strstr(warn, "task 3:"),
               *t4 = strstr(warn, "task 4:");
    const int says = t1 && strstr(t1, "task-0001-a-seed1/results.h5") &&
                     strstr(t1, "symbolic link") && t3 && strstr(t3, "mimae.num_masks") &&
                     t4 && strstr(t4, "train.seed") && strstr(warn, "not finished");
    free(warn);
    assert_int_equal(lines, 3);
    assert_true(says);
}

/* ------------------------------------------------------------------------
 * What mimae_dist records (2 ranks, the small run of ckpt_util.h as arms). */

/* `mpirun -n 2 mimae_dist arms_run.ini --task 0 ARGS...` to the end, with
 * MIMAE_FAULT = fault (NULL: unset); its exit status. */
static int run_task(const char *log, const char *fault, const char *const *args)
{
    char prog[600], desc[128], logpath[128], fault_env[128];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(desc, sizeof desc, "%s/arms_run.ini", work);
    snprintf(logpath, sizeof logpath, "%s/%s", work, log);
    const char *argv[24] = {"mpirun", "-q", "-n", "2", "--oversubscribe", prog, desc, "--task",
                            "0"};
    int n = 9;
    for (int i = 0; args && args[i] && n < 22; i++) argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(fault_env, sizeof fault_env, "MIMAE_FAULT=%s", fault ? fault : "");
    const char *env[] = {fault ? fault_env : "MIMAE_FAULT", NULL};
    const int status = run_wait(run_start(argv, logpath, env), JOB_TIMEOUT_S);
    printf("  %s (%s): exit status %d\n", log, fault ? fault : "no fault", status);
    return status;
}

/* The task's results.h5 says status, after `steps` steps of `epochs`
 * epochs, with its arm and name. */
static void expect_results(const char *status, long steps, const char *epochs)
{
    char path[300], err[1024];
    snprintf(path, sizeof path, "%s/arms/task-0000-mimae-seed5/results.h5", work);
    results_t *r = results_load(path, err, sizeof err);
    if (!r) fail_msg("%s", err);
    const char *st = results_get_attr(r, RESULTS_STATUS), *arm = results_get_attr(r, "sweep.arm");
    const char *ep = results_get_attr(r, "train.epochs"), *name = results_get_attr(r, "run.name");
    printf("  status %s, sweep.arm %s, train.epochs %s, run.name %s, %ld steps\n",
           st ? st : "(none)", arm ? arm : "(none)", ep ? ep : "(none)", name ? name : "(none)",
           results_step_count(r));
    const int ok = st && strcmp(st, status) == 0 && arm && strcmp(arm, "mimae") == 0 && ep &&
                   strcmp(ep, epochs) == 0 && name && strcmp(name, "arms_run-mimae-seed5") == 0 &&
                   results_step_count(r) == steps &&
                   results_finished(r) == (strcmp(status, RESULTS_STATUS_FINISHED) == 0);
    results_free(r);
    assert_true(ok);
}

/* Task 0 of an arms descriptor with view_epochs = 8 and 4 masks: 2 epochs
 * of 8 steps in task-0000-mimae-seed5, stopped at 12 by train.max_steps. A
 * stop during the final evaluation leaves every step trained and status
 * running; the rerun evaluates and says finished; a resume to all 16 steps
 * says running from its start (killed before its first checkpoint, the
 * file still says so), and finished once it ends. */
static void test_results_say_running_then_finished(void **state)
{
    (void)state;
    char path[300], text[1024];
    snprintf(text, sizeof text,
             "[model]\npreset = test-small\nchannels = 1\n[data]\ntrain = %s/data/train.h5\n"
             "[train]\nglobal_batch = 16\nmicro_batch = 4\nview_epochs = 8\nseed = 5\n"
             "max_steps = 12\n"
             "[optim]\nblr = 0.01\nwarmup_epochs = 0.5\n[run]\nout_dir = %s/arms\n"
             "log_every = 1\ncheckpoint_every = 5\nkeep_checkpoints = 3\n"
             "[arm mimae]\n[arm mae]\nmimae.num_masks = 1\nmimae.w_max = 0\nmimae.w_min = 0\n",
             work, work);
    write_file("arms_run.ini", text, path);
    assert_int_equal(run_task("s1.log", "eval-signal=mi", NULL), 3);
    expect_results(RESULTS_STATUS_RUNNING, 12, "2");
    assert_int_equal(run_task("s2.log", NULL, NULL), 0);
    expect_results(RESULTS_STATUS_FINISHED, 12, "2");
    /* the task directory's descriptor shows the resolved epochs */
    check_words(in_work("arms/task-0000-mimae-seed5/descriptor.ini"), 1, 0, "\nepochs = 2\n",
                "\nview_epochs = 0\n", NULL);

    const char *longer[] = {"--set", "train.max_steps=0", NULL};
    const int killed = run_task("s3.log", "kill-rank=0,step=14", longer);
    assert_true(killed != 0 && killed != -1);
    expect_results(RESULTS_STATUS_RUNNING, 12, "2"); /* as written when it started */
    assert_int_equal(run_task("s4.log", NULL, longer), 0);
    expect_results(RESULTS_STATUS_FINISHED, 16, "2");
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-arms");
    return write_small_run(work, 128);
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    unsetenv("MIMAE_SLURM_TEMPLATE"); /* the repository's template */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arms_times_seeds_in_file_order),
        cmocka_unit_test(test_arm_refusals),
        cmocka_unit_test(test_set_of_an_arm_key_is_refused),
        cmocka_unit_test(test_view_epochs_resolve_to_epochs),
        cmocka_unit_test(test_plan_shows_arms),
        cmocka_unit_test(test_submit_leaves_out_finished_and_running),
        cmocka_unit_test(test_submit_counts_only_a_tasks_own_results),
        cmocka_unit_test(test_results_say_running_then_finished),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
