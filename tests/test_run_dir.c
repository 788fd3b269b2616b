/* The run directory's life (issue 17): its single owner, the checkpoints it
 * keeps, evaluation as part of its state, the results file agreeing with the
 * checkpoint resumed from, and the exit statuses of a stop. Each case runs
 * mimae_dist (or `mimae run`) under mpirun on the small run of ckpt_util.h
 * (128 synthetic 16x16 images, 8 steps an epoch, at most 20 steps, a
 * checkpoint every 5). */
#define _DEFAULT_SOURCE /* kill */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/vit/model.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "ckpt_util.h"
#include "fs_util.h"
#include "mpi_run.h"

#define JOB_TIMEOUT_S 120

static char build_dir[512], work[64];

/* Starts `mpirun -n 2 mimae_dist ARGS... --set run.out_dir=work/out` (or
 * `mimae run -n 2 ...` when via_launcher) with MIMAE_FAULT = fault (NULL:
 * unset), output into work/<log>. args: NULL-terminated, after run.ini;
 * eval_ckpt: run `mimae_dist eval work/out/checkpoints/<eval_ckpt>` instead. */
static pid_t start(const char *out, const char *log, const char *fault, int via_launcher,
                   const char *eval_ckpt, const char *const *args)
{
    static char prog[640], desc[128], outset[300], logpath[300], ckpt[400], fault_env[200];
    snprintf(prog, sizeof prog, "%s/%s", build_dir, via_launcher ? "mimae" : "mimae_dist");
    snprintf(desc, sizeof desc, "%s/run.ini", work);
    snprintf(outset, sizeof outset, "run.out_dir=%s/%s", work, out);
    snprintf(logpath, sizeof logpath, "%s/%s", work, log);
    const char *argv[40];
    int n = 0;
    if (via_launcher) {
        argv[n++] = prog, argv[n++] = "run", argv[n++] = "-n", argv[n++] = "2";
        argv[n++] = "--mpi", argv[n++] = "--oversubscribe";
    } else {
        argv[n++] = "mpirun", argv[n++] = "-q", argv[n++] = "-n", argv[n++] = "2";
        argv[n++] = "--oversubscribe", argv[n++] = prog;
    }
    if (eval_ckpt) {
        snprintf(ckpt, sizeof ckpt, "%s/%s/checkpoints/%s", work, out, eval_ckpt);
        argv[n++] = "eval", argv[n++] = ckpt;
    } else {
        argv[n++] = desc, argv[n++] = "--set", argv[n++] = outset;
    }
    for (int i = 0; args && args[i] && n < 38; i++) argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(fault_env, sizeof fault_env, "MIMAE_FAULT=%s", fault ? fault : "");
    const char *env[] = {fault ? fault_env : "MIMAE_FAULT", NULL};
    return run_start(argv, logpath, env);
}

/* Runs to the end; the exit status (the log's tail shown when not expect). */
static int run_to_end(const char *out, const char *log, const char *fault, const char *eval_ckpt,
                      const char *const *args, int expect)
{
    const int status = run_wait(start(out, log, fault, 0, eval_ckpt, args), JOB_TIMEOUT_S);
    if (status != expect) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s", work, log);
        print_log_tail(path, 12, "step ");
    }
    return status;
}

static char *text_of(const char *rel)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", work, rel);
    return read_text(path);
}

/* The log holds needle. */
static int log_says(const char *log, const char *needle)
{
    char *t = text_of(log);
    const int yes = t && strstr(t, needle);
    free(t);
    return yes;
}

static int exists(const char *rel)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", work, rel);
    return access(path, F_OK) == 0;
}

static results_t *load_results(const char *out)
{
    char path[400], err[1024];
    snprintf(path, sizeof path, "%s/%s/results.h5", work, out);
    results_t *r = results_load(path, err, sizeof err);
    if (!r) fail_msg("%s", err);
    return r;
}

static long newest_step(const char *out)
{
    char dir[300];
    long step;
    snprintf(dir, sizeof dir, "%s/%s", work, out);
    mimae_model_free(load_newest_checkpoint(dir, &step));
    return step;
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-rundir");
    return write_small_run(work, 128);
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

/* ------------------------------------------------------------------------
 * Class 1: pruning trusts only verified checkpoints. */

/* Random bytes named ckpt-0000009999.h5 with run.keep_checkpoints = 1: the
 * run ends with its own newest checkpoint kept (the junk neither counts nor
 * is removed); the same with another run's valid checkpoint (another seed)
 * named for step 500, there before the run and planted while it writes. */
static void test_junk_named_like_a_newer_checkpoint_is_not_counted(void **state)
{
    (void)state;
    assert_int_equal(run_shell("mkdir -p %s/junk/checkpoints && head -c 70000 /dev/urandom > "
                               "%s/junk/checkpoints/ckpt-0000009999.h5", work, work), 0);
    const char *args[] = {"--set", "run.keep_checkpoints=1", NULL};
    assert_int_equal(run_to_end("junk", "junk.log", NULL, NULL, args, 0), 0);
    assert_int_equal(newest_step("junk"), 20);
    assert_true(exists("junk/checkpoints/ckpt-0000000020.h5"));
    assert_true(exists("junk/checkpoints/ckpt-0000009999.h5"));
    assert_false(exists("junk/checkpoints/ckpt-0000000015.h5"));

    /* another run's (another seed) valid checkpoint at a later step */
    const char *seed6[] = {"--set", "train.seed=6", "--set", "train.max_steps=5", NULL};
    assert_int_equal(run_to_end("other", "other.log", NULL, NULL, seed6, 0), 0);
    assert_int_equal(run_shell("mkdir -p %s/foreign/checkpoints && cp %s/other/checkpoints/"
                               "ckpt-0000000005.h5 %s/foreign/checkpoints/ckpt-0000000500.h5",
                               work, work, work), 0);
    /* named for step 500 but storing step 5: skipped as a resume point, kept */
    const char *keep1_steps4[] = {"--set", "run.keep_checkpoints=1", "--set",
                                  "run.checkpoint_every=1", "--set", "train.max_steps=4", NULL};
    assert_int_equal(run_to_end("foreign", "foreign.log", NULL, NULL, keep1_steps4, 0), 0);
    assert_true(exists("foreign/checkpoints/ckpt-0000000500.h5"));
    assert_true(exists("foreign/checkpoints/ckpt-0000000004.h5"));
    assert_false(exists("foreign/checkpoints/ckpt-0000000003.h5"));
    /* planted while a run writes: a fresh run with it at a step it never reaches */
    assert_int_equal(run_shell("rm -rf %s/foreign && mkdir -p %s/foreign/checkpoints", work, work),
                     0);
    const char *planted[] = {"--set", "run.keep_checkpoints=1", "--set", "run.checkpoint_every=1",
                             NULL};
    pid_t job = start("foreign", "foreign2.log", NULL, 0, NULL, planted);
    char log[300];
    snprintf(log, sizeof log, "%s/foreign2.log", work);
    assert_int_equal(wait_for_text(log, "step 2/", JOB_TIMEOUT_S), 0);
    assert_int_equal(run_shell("cp %s/other/checkpoints/ckpt-0000000005.h5 "
                               "%s/foreign/checkpoints/ckpt-0000000500.h5", work, work), 0);
    assert_int_equal(run_wait(job, JOB_TIMEOUT_S), 0);
    assert_true(exists("foreign/checkpoints/ckpt-0000000020.h5"));
    assert_true(exists("foreign/checkpoints/ckpt-0000000500.h5"));
    assert_false(exists("foreign/checkpoints/ckpt-0000000019.h5"));
}

/* ------------------------------------------------------------------------
 * Class 2: one job per run directory. */

/* A long run; then the same descriptor again, another seed on the same
 * out_dir, and `mimae_dist eval` into it: each exits 2 with one line naming
 * the holder's pid, and nothing of the first job's is removed (its
 * checkpoint temporaries included). kill -9 of the first job frees the
 * directory: the next job takes it. */
static void test_second_job_on_a_run_dir_in_use_exits_2(void **state)
{
    (void)state;
    const char *long_run[] = {"--set", "train.max_steps=0", "--set", "train.epochs=1000",
                              "--set", "run.checkpoint_every=1", "--set",
                              "run.keep_checkpoints=100000", NULL};
    pid_t first = start("busy", "busy.log", NULL, 0, NULL, long_run);
    char log[300];
    snprintf(log, sizeof log, "%s/busy.log", work);
    assert_int_equal(wait_for_text(log, "step 3/", JOB_TIMEOUT_S), 0);
    const char *seed7[] = {"--set", "train.seed=7", "--set", "train.max_steps=0", "--set",
                           "train.epochs=1000", NULL};
    const struct {
        const char *log, *eval, *const *args;
    } second[] = {{"busy2.log", NULL, long_run},
                  {"busy3.log", NULL, seed7},
                  {"busy4.log", "ckpt-0000000002.h5", NULL}};
    for (int i = 0; i < 3; i++) {
        const int status = run_to_end("busy", second[i].log, NULL, second[i].eval,
                                      second[i].args, 2);
        char *t = text_of(second[i].log);
        assert_non_null(t);
        printf("  %s", t);
        int lines = 0;
        for (const char *c = t; *c; c++) lines += *c == '\n';
        const int names_holder = strstr(t, "in use by pid") && strstr(t, "busy") != NULL;
        free(t);
        assert_int_equal(status, 2);
        assert_int_equal(lines, 1);
        assert_true(names_holder);
    }
    assert_int_equal(kill(first, 0), 0); /* the first job still runs */
    assert_false(log_says("busy2.log", "unfinished write"));
    pid_t ranks[4];
    assert_int_equal(mpirun_rank_pids(first, ranks, 4), 2);
    kill(ranks[0], SIGKILL);
    kill(ranks[1], SIGKILL);
    const int status = run_wait(first, JOB_TIMEOUT_S);
    assert_true(status != 0 && status != -1);
    /* the dead job's lock is gone with it */
    char newest[64];
    snprintf(newest, sizeof newest, "ckpt-%010ld.h5", newest_step("busy"));
    assert_int_equal(run_to_end("busy", "busy5.log", NULL, newest, NULL, 0), 0);
}

/* Links and other non-files planted at names a run writes (RUN/results.h5,
 * a future checkpoint in RUN/checkpoints, RUN/descriptor.ini) are refused
 * when the run starts: exit 2, one line naming the entry, the link's target
 * untouched and no checkpoint written (they used to fail the run at its
 * first write there, after training had started). */
static void test_planted_outputs_refused_at_start(void **state)
{
    (void)state;
    char target[300], run_dir[300], ckpts[320];
    snprintf(target, sizeof target, "%s/precious.txt", work);
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);
    const struct {
        const char *out, *name;
        int fifo;
    } planted[] = {{"plant1", "results.h5", 0},
                   {"plant2", "checkpoints/ckpt-0000000010.h5", 0},
                   {"plant3", "descriptor.ini", 0},
                   {"plant4", "results.h5", 1}};
    for (size_t i = 0; i < sizeof planted / sizeof planted[0]; i++) {
        snprintf(run_dir, sizeof run_dir, "%s/%s", work, planted[i].out);
        snprintf(ckpts, sizeof ckpts, "%s/checkpoints", run_dir);
        assert_int_equal(mkdir(run_dir, 0777), 0);
        assert_int_equal(mkdir(ckpts, 0777), 0);
        char at[400], log[64];
        snprintf(at, sizeof at, "%s/%s", run_dir, planted[i].name);
        if (planted[i].fifo) assert_int_equal(mkfifo(at, 0666), 0);
        else assert_int_equal(symlink(target, at), 0);
        snprintf(log, sizeof log, "%s.log", planted[i].out);
        const int status = run_to_end(planted[i].out, log, NULL, NULL, NULL, 2);
        char *t = text_of(log);
        assert_non_null(t);
        printf("  %s", t);
        int lines = 0;
        for (const char *c = t; *c; c++) lines += *c == '\n';
        const int named = strstr(t, planted[i].name) != NULL;
        free(t);
        assert_int_equal(status, 2);
        assert_int_equal(lines, 1);
        assert_true(named);
        assert_int_equal(count_entries(ckpts), planted[i].name[0] == 'c' ? 1 : 0);
    }
    char *kept = read_text(target);
    assert_non_null(kept);
    assert_string_equal(kept, "keep me\n");
    free(kept);
}

/* ------------------------------------------------------------------------
 * Classes 3 and 9: evaluation survives preemption; exit statuses. */

/* SIGTERM to one rank as the final evaluation reaches the MI statistics:
 * exit 3, RUN/stopped names step 20, the evaluation is pending in
 * results.h5; the rerun evaluates (it used to say "already at step 20 of
 * 20" and exit 0 without metrics) and exits 0; a third start has nothing
 * left to do. */
static void test_stop_during_final_evaluation_is_finished_by_the_rerun(void **state)
{
    (void)state;
    assert_int_equal(run_to_end("evstop", "evstop.log", "eval-signal=mi", NULL, NULL, 3), 3);
    char *stopped = text_of("evstop/stopped");
    assert_non_null(stopped);
    printf("  RUN/stopped: %s", stopped);
    const int says_step = strstr(stopped, "stopped at step 20") != NULL;
    free(stopped);
    assert_true(says_step);
    results_t *r = load_results("evstop");
    double v;
    assert_int_equal(results_eval_state(r, 20), RESULTS_EVAL_PENDING);
    assert_int_not_equal(results_get_eval(r, "mi_club", &v), 0);
    results_free(r);

    assert_int_equal(run_to_end("evstop", "evstop2.log", NULL, NULL, NULL, 0), 0);
    assert_true(log_says("evstop2.log", "evaluation of step 20 is pending"));
    assert_false(exists("evstop/stopped"));
    r = load_results("evstop");
    assert_int_equal(results_eval_state(r, 20), RESULTS_EVAL_DONE);
    assert_int_equal(results_get_eval(r, "mi_club", &v), 0);
    assert_int_equal(results_step_count(r), 20);
    results_free(r);
    assert_int_equal(run_to_end("evstop", "evstop3.log", NULL, NULL, NULL, 0), 0);
    assert_true(log_says("evstop3.log", "already at step 20 of 20"));
    assert_false(log_says("evstop3.log", "evaluating"));
}

/* The same in an evaluation between epochs (eval.every_epochs = 1, stop at
 * the k-NN of step 8 with a test set) and in `mimae_dist eval` (stop in
 * feature extraction): exit 3, and the rerun finishes what was pending. */
static void test_stop_during_an_epoch_evaluation_and_during_eval_command(void **state)
{
    (void)state;
    char test_set[300];
    snprintf(test_set, sizeof test_set, "data.test=%s/data/test.h5", work);
    const char *every[] = {"--set", "eval.every_epochs=1", "--set", test_set, "--set",
                           "eval.mi=0", NULL};
    assert_int_equal(run_to_end("evepoch", "evepoch.log", "eval-signal=knn", NULL, every, 3), 3);
    assert_int_equal(newest_step("evepoch"), 8);
    assert_int_equal(run_to_end("evepoch", "evepoch2.log", NULL, NULL, every, 0), 0);
    assert_true(log_says("evepoch2.log", "evaluation of step 8 is pending"));
    results_t *r = load_results("evepoch");
    const eval_point_t *p;
    assert_int_equal(results_eval_history(r, "knn_top1", &p), 3);
    assert_int_equal(p[0].step, 8);
    assert_int_equal(p[1].step, 16);
    assert_int_equal(p[2].step, 20);
    results_free(r);

    assert_int_equal(run_to_end("evepoch", "evcmd.log", "eval-signal=features",
                                "ckpt-0000000016.h5", NULL, 3), 3);
    r = load_results("evepoch");
    assert_int_equal(results_eval_state(r, 16), RESULTS_EVAL_PENDING);
    results_free(r);
    assert_int_equal(run_to_end("evepoch", "evcmd2.log", NULL, "ckpt-0000000016.h5", NULL, 0), 0);
    r = load_results("evepoch");
    assert_int_equal(results_eval_state(r, 16), RESULTS_EVAL_DONE);
    results_free(r);
}

/* SIGTERM and SIGINT to `mimae run` once step 3 is logged: exit 3 (mpirun
 * signalled directly exits 1), a valid checkpoint, RUN/stopped; mpirun sent
 * SIGTERM directly still exits 1, but leaves RUN/stopped and the
 * checkpoint, so a wrapper can tell a clean stop from a failure. The runs
 * are long (200 steps) so that the stop lands in the middle. */
static const char *const long_run[] = {"--set", "train.max_steps=0", "--set", "train.epochs=25",
                                       NULL};

static void stop_case(const char *out, int sig, int via_launcher, int expect)
{
    char log[64], path[300];
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(path, sizeof path, "%s/%s", work, log);
    pid_t job = start(out, log, NULL, via_launcher, NULL, long_run);
    assert_int_equal(wait_for_text(path, "step 3/", JOB_TIMEOUT_S), 0);
    kill(job, sig);
    const int status = run_wait(job, JOB_TIMEOUT_S);
    const long step = newest_step(out);
    printf("  %s to %s: exit status %d, newest checkpoint: step %ld\n",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", via_launcher ? "mimae run" : "mpirun", status,
           step);
    if (status != expect) print_log_tail(path, 12, "step ");
    assert_int_equal(status, expect);
    assert_true(step >= 3 && step < 200);
    char rel[128], needle[64];
    snprintf(rel, sizeof rel, "%s/stopped", out);
    char *stopped = text_of(rel);
    assert_non_null(stopped);
    snprintf(needle, sizeof needle, "stopped at step %ld:", step);
    const int ok = strstr(stopped, needle) != NULL;
    free(stopped);
    assert_true(ok);
}

static void test_sigterm_and_sigint_to_the_launcher_exit_3(void **state)
{
    (void)state;
    stop_case("launch_term", SIGTERM, 1, 3);
    stop_case("launch_int", SIGINT, 1, 3);
    stop_case("mpirun_term", SIGTERM, 0, 1);
    /* the launcher resumes and finishes like mimae_dist */
    const int status = run_wait(start("launch_term", "launch_term2.log", NULL, 1, NULL, long_run),
                                JOB_TIMEOUT_S);
    assert_int_equal(status, 0);
    assert_int_equal(newest_step("launch_term"), 200);
    assert_false(exists("launch_term/stopped"));
}

/* ------------------------------------------------------------------------
 * Class 8: results agree with the checkpoint resumed from. */

/* Keeps only the /train rows of steps <= upto in a run's results.h5 (what a
 * failed rewrite leaves: an older file). */
static void truncate_results(const char *out, long upto)
{
    char path[400], err[1024];
    snprintf(path, sizeof path, "%s/%s/results.h5", work, out);
    results_t *old = results_load(path, err, sizeof err);
    if (!old) fail_msg("%s", err);
    results_t *r = results_new(results_config(old), results_env(old));
    assert_non_null(r);
    for (long i = 0; i < results_step_count(old) && results_steps(old)[i].step <= upto; i++)
        assert_int_equal(results_append_step(r, &results_steps(old)[i]), 0);
    assert_int_equal(results_write(r, path, err, sizeof err), 0);
    results_free(r);
    results_free(old);
}

/* The instance: results.h5 last written at step 2, checkpoints up to
 * 10 (then the job failed): the resume marks steps 3..10 as missing instead
 * of /train/step reading 1, 2, 11, 12, ...; and a results file ahead of the
 * checkpoint (ckpt-15 and ckpt-20 lost) has its later rows dropped. */
static void test_resume_reconciles_results_with_the_checkpoint(void **state)
{
    (void)state;
    const char *ten[] = {"--set", "train.max_steps=10", "--set", "eval.mi=0", NULL};
    assert_int_equal(run_to_end("gap", "gap.log", NULL, NULL, ten, 0), 0);
    truncate_results("gap", 2);
    const char *all[] = {"--set", "eval.mi=0", NULL};
    assert_int_equal(run_to_end("gap", "gap2.log", NULL, NULL, all, 0), 0);
    assert_true(log_says("gap2.log", "no training rows for 8 steps between 3 and 10"));
    results_t *r = load_results("gap");
    const step_metrics_t *s = results_steps(r);
    assert_int_equal(results_step_count(r), 20);
    for (long i = 0; i < 20; i++) {
        assert_int_equal(s[i].step, i + 1);
        const int missing = i + 1 >= 3 && i + 1 <= 10;
        if (missing != (isnan(s[i].total) != 0)) fail_msg("step %ld: L = %g", i + 1, s[i].total);
    }
    results_free(r);

    assert_int_equal(run_shell("rm %s/gap/checkpoints/ckpt-0000000020.h5 "
                               "%s/gap/checkpoints/ckpt-0000000015.h5", work, work), 0);
    const char *twelve[] = {"--set", "eval.mi=0", "--set", "train.max_steps=12", NULL};
    assert_int_equal(run_to_end("gap", "gap3.log", NULL, NULL, twelve, 0), 0);
    assert_true(log_says("gap3.log", "dropped 10 training rows"));
    r = load_results("gap");
    assert_int_equal(results_step_count(r), 12);
    assert_int_equal(results_steps(r)[11].step, 12);
    results_free(r);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_junk_named_like_a_newer_checkpoint_is_not_counted),
        cmocka_unit_test(test_second_job_on_a_run_dir_in_use_exits_2),
        cmocka_unit_test(test_planted_outputs_refused_at_start),
        cmocka_unit_test(test_stop_during_final_evaluation_is_finished_by_the_rerun),
        cmocka_unit_test(test_stop_during_an_epoch_evaluation_and_during_eval_command),
        cmocka_unit_test(test_sigterm_and_sigint_to_the_launcher_exit_3),
        cmocka_unit_test(test_resume_reconciles_results_with_the_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
