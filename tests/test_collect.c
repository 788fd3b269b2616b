/* experiments/results/fmnist-ablation/collect.sh, which copies the finished
 * tasks of a sweep directory into the repository, against a sweep directory
 * a cluster has been at: spaces in the paths, odd log names, a log without
 * its start line, links to /etc/passwd at the names it reads, a task
 * directory that is a link out of the sweep, FIFOs where it expects files,
 * and links at the names it writes. It must copy what is finished, never
 * read through a link, never wait on a FIFO, never write through a link, and
 * say in one line what it refused. The script is run from a copy of the
 * repository's layout in a temporary directory (it writes beside itself),
 * with the study's committed results as the tasks' files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_util.h"
#include "mpi_run.h"

#define STUDY "experiments/results/fmnist-ablation"
#define TIMEOUT_S 60 /* the script on a handful of small files takes seconds */

static char build_dir[512], src[1024], work[64];
/* root: a repository layout (with a space in its name); sweep: the sweep
 * directory under it; here: the copy of the study directory the script
 * writes into; out: files outside both */
static char root[256], sweep[320], here[320], out[256];

static void sh(const char *cmd)
{
    if (run_shell("%s", cmd) != 0) fail_msg("setup failed: %s", cmd);
}

/* A fresh repository layout with an empty study directory holding the
 * script, and a sweep directory with the plan, the task descriptors and
 * logs/ (no tasks yet). */
static int setup(void **state)
{
    (void)state;
    char cmd[8192];
    snprintf(root, sizeof root, "%s/repo root", work);
    snprintf(sweep, sizeof sweep, "%s/runs/sweep dir", root);
    snprintf(here, sizeof here, "%s/" STUDY, root);
    snprintf(out, sizeof out, "%s/outside", work);
    remove_tree(root);
    remove_tree(out);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/logs' '%s/tasks' '%s' '%s' && cp '%s/experiments/fmnist_ablation.ini' "
             "'%s/experiments/' && cp '%s/" STUDY "/collect.sh' '%s/' && cp '%s/" STUDY
             "/plan.tsv' '%s/' && cp '%s/" STUDY "/tasks/'task-*.ini '%s/tasks/'",
             sweep, sweep, here, out, src, root, src, here, src, sweep, src, sweep);
    sh(cmd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(root);
    remove_tree(out);
    return 0;
}

/* The log of task n as the job script writes it: its start line (unless
 * !started) and the exit status it ended with. */
static void write_log(int n, int started, int status)
{
    char path[400];
    snprintf(path, sizeof path, "%s/logs/task-%04d.log", sweep, n);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (started)
        fprintf(f, "== 2026-12-05 03:18:48 mimae sweep fmnist_ablation: task %d, job 7 (array 5), "
                "restart 0, 1 ranks on node1\n", n);
    fprintf(f, "mimae_dist: step 10 of 1170\n");
    fprintf(f, "== 2026-12-05 03:45:03 task %d: mimae_dist exited with status %d\n", n, status);
    assert_int_equal(fclose(f), 0);
}

/* Task directory `name` (one of the study's) in dir, with the study's
 * files of that task. */
static void put_task(const char *dir, const char *name)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s' && cp '%s/" STUDY "/%s/'* '%s/%s/'", dir, name,
             src, name, dir, name);
    sh(cmd);
}

/* A finished task: its directory and a log that ends with status 0. */
static void finished_task(int n, const char *name)
{
    put_task(sweep, name);
    write_log(n, 1, 0);
}

/* collect.sh SWEEP (relative to root) from root; its exit status. */
static int run_collect_of(const char *sweep_arg)
{
    return run_shell("cd '%s' && MIMAE='%s/mimae' timeout %d " STUDY "/collect.sh '%s' "
                     ">'%s/stdout.txt' 2>'%s/stderr.txt'",
                     root, build_dir, TIMEOUT_S, sweep_arg, work, work);
}

static int run_collect(void) { return run_collect_of("runs/sweep dir"); }

static void show_output(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    print_log_tail(path, 40, NULL);
}

/* 1 when the two files hold the same bytes. */
static int same_bytes(const char *a, const char *b)
{
    return run_shell("cmp -s '%s' '%s'", a, b) == 0;
}

/* here/<task>/<file> is a regular file with the bytes of the study's. */
static void assert_collected(const char *task, const char *file)
{
    char got[600], want[1600];
    struct stat st;
    snprintf(got, sizeof got, "%s/%s/%s", here, task, file);
    snprintf(want, sizeof want, "%s/" STUDY "/%s/%s", src, task, file);
    if (lstat(got, &st) != 0 || !S_ISREG(st.st_mode)) fail_msg("%s: not collected", got);
    if (!same_bytes(got, want)) fail_msg("%s differs from %s", got, want);
}

static void assert_not_collected(const char *task)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/results.h5", here, task);
    if (lstat(path, &st) == 0) fail_msg("%s: collected, but it must not be", path);
}

/* Nothing from /etc/passwd and no temporary of the script's anywhere in
 * the study directory. */
static void assert_clean(void)
{
    if (run_shell("grep -rqs 'root:x:0:0' '%s'", here) == 0)
        fail_msg("/etc/passwd was copied into %s", here);
    if (run_shell("find '%s' -name '.collect*' | grep -q .", here) == 0)
        fail_msg("a temporary of collect.sh was left in %s", here);
}

/* The script got to its end: the report is there. */
static void assert_report(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/report.md", here);
    if (access(path, F_OK) != 0) fail_msg("%s: not written", path);
}

static void assert_stderr_names(const char *word)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    char *text = read_text(path);
    assert_non_null(text);
    const int found = strstr(text, word) != NULL;
    free(text);
    if (!found) fail_msg("stderr does not name %s", word);
}

/* Tasks finished (two of them in the sweep's usual shape), one whose log
 * lost its start line, one requeued (status 3: not finished), and logs
 * with names no task has (one a command in bash arithmetic), the sweep
 * directory given through a link of the user's: the finished ones are
 * copied byte for byte, the report is written, status 0. */
static void test_copies_finished_tasks_whatever_the_names_around(void **state)
{
    (void)state;
    finished_task(6, "task-0006-control-seed0");
    finished_task(9, "task-0009-infonce-seed0");
    put_task(sweep, "task-0012-club-seed0");
    write_log(12, 0, 0); /* the start line is gone: no wall time, still finished */
    put_task(sweep, "task-0015-mimae-seed0");
    write_log(15, 1, 3);
    char cmd[1024];
    /* slurmstepd may write after the job script's last line */
    snprintf(cmd, sizeof cmd, "echo 'slurmstepd-node1: error: Unable to unlink domain socket' "
             ">> '%s/logs/task-0009.log'", sweep);
    sh(cmd);
    snprintf(cmd, sizeof cmd, "cd '%s/logs' && echo junk > task-abc.log && echo junk > "
             "'task-0009 x.log' && echo junk > 'task-0009-old.log' && "
             "echo junk > 'task-0001+a[$(touch PWNED)].log'", sweep);
    sh(cmd);
    snprintf(cmd, sizeof cmd, "ln -s 'sweep dir' '%s/runs/sweep link'", root);
    sh(cmd);
    const int st = run_collect_of("runs/sweep link");
    if (st != 0) {
        show_output();
        fail_msg("collect.sh exited with status %d", st);
    }
    const char *tasks[] = {"task-0006-control-seed0", "task-0009-infonce-seed0",
                           "task-0012-club-seed0"};
    for (int i = 0; i < 3; i++) {
        assert_collected(tasks[i], "results.h5");
        assert_collected(tasks[i], "descriptor.ini");
    }
    assert_not_collected("task-0015-mimae-seed0");
    char path[600];
    snprintf(path, sizeof path, "%s/PWNED", root);
    if (access(path, F_OK) == 0) fail_msg("a log's file name ran as a command (%s)", path);
    snprintf(path, sizeof path, "%s/wall-time.tsv", here);
    char *wall = read_text(path);
    assert_non_null(wall);
    const int rows = strstr(wall, "\n6\t2026-12-05 03:18:48\t2026-12-05 03:45:03\t1575\t0\n") &&
                     strstr(wall, "\n9\t2026-12-05 03:18:48\t2026-12-05 03:45:03\t1575\t0\n") &&
                     !strstr(wall, "\n15\t");
    free(wall);
    if (!rows) fail_msg("%s lacks the rows of tasks 6 and 9 (or holds task 15)", path);
    assert_report();
    assert_clean();
}

/* Links to /etc/passwd at names the script reads (plan.tsv, a results.h5,
 * a descriptor.ini, a task descriptor), a task directory that is a link
 * out of the sweep, FIFOs at a results.h5 and a log: each refused in a
 * line naming it, nothing read through a link, no wait on a FIFO, the
 * finished task beside them copied; status 2. */
static void test_never_follows_links_or_opens_fifos_in_the_sweep(void **state)
{
    (void)state;
    char cmd[2048];
    finished_task(9, "task-0009-infonce-seed0");
    finished_task(0, "task-0000-mae-equal-passes-seed0");
    finished_task(3, "task-0003-mae-equal-compute-seed0"); /* the report's baseline */
    finished_task(12, "task-0012-club-seed0");
    finished_task(15, "task-0015-mimae-seed0");
    put_task(sweep, "task-0006-control-seed0");
    put_task(out, "task-0001-mae-equal-passes-seed1");
    write_log(1, 1, 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ln -sf /etc/passwd plan.tsv && ln -sf /etc/passwd tasks/task-0004.ini && "
             "ln -sf /etc/passwd task-0000-mae-equal-passes-seed0/results.h5 && "
             "ln -s '%s/task-0001-mae-equal-passes-seed1' task-0001-mae-equal-passes-seed1 && "
             "rm task-0012-club-seed0/results.h5 && mkfifo task-0012-club-seed0/results.h5 && "
             "ln -sf /etc/passwd task-0015-mimae-seed0/descriptor.ini && "
             "mkfifo logs/task-0006.log",
             sweep, out);
    sh(cmd);
    const int st = run_collect();
    show_output();
    if (st == 124) fail_msg("collect.sh hung (on a FIFO?): killed after %d s", TIMEOUT_S);
    assert_int_equal(st, 2);
    assert_collected("task-0009-infonce-seed0", "results.h5");
    assert_collected("task-0003-mae-equal-compute-seed0", "results.h5");
    assert_not_collected("task-0000-mae-equal-passes-seed0");
    assert_not_collected("task-0001-mae-equal-passes-seed1");
    assert_not_collected("task-0012-club-seed0");
    assert_not_collected("task-0015-mimae-seed0");
    assert_not_collected("task-0006-control-seed0");
    assert_stderr_names("plan.tsv");
    assert_stderr_names("task-0004.ini");
    assert_stderr_names("task-0000-mae-equal-passes-seed0/results.h5");
    assert_stderr_names("task-0001-mae-equal-passes-seed1");
    assert_stderr_names("task-0012-club-seed0/results.h5");
    assert_stderr_names("task-0015-mimae-seed0/descriptor.ini");
    assert_stderr_names("task-0006.log");
    assert_report();
    assert_clean();
}

/* A victim file outside the study directory with known text. */
static void victim(const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", out, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("VICTIM\n", f);
    assert_int_equal(fclose(f), 0);
}

static void assert_victim(const char *path)
{
    char *text = read_text(path);
    assert_non_null(text);
    const int intact = strcmp(text, "VICTIM\n") == 0;
    free(text);
    if (!intact) fail_msg("%s was written through a link", path);
}

/* Links at names the script writes (plan.tsv, wall-time.tsv, a task
 * descriptor, a task's results.h5) and a task directory of the study that
 * is a link: their targets stay as they were, each is refused in a line;
 * status 2. */
static void test_never_writes_through_links_in_the_study_directory(void **state)
{
    (void)state;
    char v_plan[300], v_wall[300], v_ini[300], v_res[300], v_dir[300], cmd[8192];
    finished_task(3, "task-0003-mae-equal-compute-seed0"); /* the report's baseline */
    finished_task(6, "task-0006-control-seed0");
    finished_task(9, "task-0009-infonce-seed0");
    victim("plan", v_plan, sizeof v_plan);
    victim("wall", v_wall, sizeof v_wall);
    victim("ini", v_ini, sizeof v_ini);
    victim("res", v_res, sizeof v_res);
    snprintf(v_dir, sizeof v_dir, "%s/victim-dir", out);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' '%s/tasks' '%s/task-0009-infonce-seed0' && cd '%s' && "
             "ln -s '%s' plan.tsv && ln -s '%s' wall-time.tsv && ln -s '%s' tasks/task-0000.ini && "
             "ln -s '%s' task-0009-infonce-seed0/results.h5 && ln -s '%s' task-0006-control-seed0",
             v_dir, here, here, here, v_plan, v_wall, v_ini, v_res, v_dir);
    sh(cmd);
    const int st = run_collect();
    show_output();
    assert_int_equal(st, 2);
    assert_victim(v_plan);
    assert_victim(v_wall);
    assert_victim(v_ini);
    assert_victim(v_res);
    assert_int_equal(count_entries(v_dir), 0);
    assert_stderr_names("plan.tsv");
    assert_stderr_names("wall-time.tsv");
    assert_stderr_names("task-0000.ini");
    assert_stderr_names("task-0009-infonce-seed0/results.h5");
    assert_stderr_names("task-0006-control-seed0");
    assert_collected("task-0003-mae-equal-compute-seed0", "results.h5");
    assert_report();
    assert_clean();
}

int main(int argc, char **argv)
{
    (void)argc;
    if (test_build_dir(argv[0], build_dir, sizeof build_dir)) return 1;
    if (!getcwd(src, sizeof src)) return 1;
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/" STUDY "/collect.sh", src);
    if (access(probe, R_OK)) {
        fprintf(stderr, "test_collect: run from the repository root (no %s)\n", probe);
        return 1;
    }
    make_tmpdir(work, sizeof work, "mimae-collect");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copies_finished_tasks_whatever_the_names_around, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_never_follows_links_or_opens_fifos_in_the_sweep, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_never_writes_through_links_in_the_study_directory,
                                        setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (remove_tree(work)) return 1;
    return failed;
}
