/* Fault injection under mpirun (2-4 ranks, a tiny synthetic data set, 20
 * steps, a checkpoint every 5): a rank killed (SIGKILL) at chosen steps and
 * in the middle of a checkpoint write (mimae_dist's MIMAE_FAULT test hook),
 * SIGTERM / SIGUSR1 at random steps and before MPI_Init, a full disk during a
 * checkpoint write (a 1 MiB tmpfs when this process may mount one, and the
 * hook's RLIMIT_FSIZE either way), and a non-finite loss or gradient (a NaN
 * injected into a Q gradient; an absurd optim.blr). After each: the job ends
 * within 60 s, the newest checkpoint on disk verifies and loads, and resuming
 * from it (on the same or another rank count) ends with parameters and AdamW
 * moments bitwise equal to an undisturbed run. Random steps come from
 * MIMAE_TEST_SEED (default: the time), printed for replay. */
#define _DEFAULT_SOURCE /* kill */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/vit/model.h"
#include "core/data/rng.h"
#include "core/optim/update.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "ckpt_util.h"
#include "fs_util.h"
#include "mpi_run.h"

#define STEPS 20
#define EVERY 5
#define JOB_TIMEOUT_S 60

static char build_dir[512]; /* where mimae_dist lives */
static char work[64];       /* temporary directory of everything */
static char tiny[128];      /* the tmpfs mount point, "" when none is mounted */
static mimae_model_t *straight; /* the undisturbed run's final model */
static rng_t rng;           /* random steps and ranks */

/* out: a directory name in work, or an absolute path. */
static void out_path(char *buf, size_t len, const char *out)
{
    if (out[0] == '/') snprintf(buf, len, "%s", out);
    else snprintf(buf, len, "%s/%s", work, out);
}

/* Starts `mpirun -n ranks mimae_dist run.ini --set run.out_dir=OUT [--set extra]...`
 * with MIMAE_FAULT = fault (NULL: unset), stdout and stderr into log. */
static pid_t start_run(int ranks, const char *out, const char *log, const char *fault,
                       const char *extra1, const char *extra2)
{
    char prog[640], desc[128], n[8], outset[300], dir[256];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(desc, sizeof desc, "%s/run.ini", work);
    snprintf(n, sizeof n, "%d", ranks);
    out_path(dir, sizeof dir, out);
    snprintf(outset, sizeof outset, "run.out_dir=%s", dir);
    const char *argv[20] = {"mpirun", "-n", n, "--oversubscribe", prog, desc, "--set", outset};
    int argc = 8;
    if (extra1) argv[argc++] = "--set", argv[argc++] = extra1;
    if (extra2) argv[argc++] = "--set", argv[argc++] = extra2;
    argv[argc] = NULL;
    /* local ranks inherit mpirun's environment, MIMAE_FAULT included */
    char fault_env[160];
    snprintf(fault_env, sizeof fault_env, "MIMAE_FAULT=%s", fault ? fault : "");
    const char *env[] = {fault ? fault_env : "MIMAE_FAULT", NULL};
    return run_start(argv, log, env);
}

static void show_log(const char *log)
{
    print_log_tail(log, 12, "step ");
}

/* Runs a job to its end; returns its exit status (the log is shown when it
 * is not `expect`). */
static int run_job(int ranks, const char *out, const char *fault, const char *extra1,
                   const char *extra2, int expect, double *seconds)
{
    char log[256];
    snprintf(log, sizeof log, "%s/%s-%d.log", work, out[0] == '/' ? "abs" : out, ranks);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = run_wait(start_run(ranks, out, log, fault, extra1, extra2), JOB_TIMEOUT_S);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (seconds) *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (status != expect) show_log(log);
    return status;
}

/* The newest valid checkpoint of a run, loaded and verified; its step. */
static mimae_model_t *load_newest(const char *out, long *step)
{
    char dir[256];
    out_path(dir, sizeof dir, out);
    return load_newest_checkpoint(dir, step);
}

/* After a fault: the newest checkpoint is at `expect_step` (or, when
 * expect_step < 0, at any step in [-expect_step, STEPS)); resuming on
 * `ranks` ranks finishes bitwise equal to the undisturbed run. */
static void check_then_resume(const char *out, long expect_step, int ranks)
{
    long step;
    mimae_model_t *m = load_newest(out, &step);
    mimae_model_free(m);
    if (expect_step >= 0 && step != expect_step)
        fail_msg("%s: newest valid checkpoint at step %ld, expected %ld", out, step, expect_step);
    if (expect_step < 0 && (step < -expect_step || step >= STEPS))
        fail_msg("%s: newest valid checkpoint at step %ld, expected %ld..%d", out, step,
                 -expect_step, STEPS - 1);
    double s;
    assert_int_equal(run_job(ranks, out, NULL, NULL, NULL, 0, &s), 0);
    mimae_model_t *resumed = load_newest(out, &step);
    assert_int_equal(step, STEPS);
    assert_models_bitwise_equal(resumed, straight);
    mimae_model_free(resumed);
    printf("  newest valid checkpoint step %ld loads; resumed on %d rank%s in %.1f s: bitwise "
           "equal to the undisturbed run\n", expect_step >= 0 ? expect_step : -expect_step,
           ranks, ranks > 1 ? "s" : "", s);
}

/* Lines of a log that start with "mimae_dist: " and contain `needle`, but
 * not the advice lines ("mimae_dist: warning: ", e.g. about OpenBLAS's
 * kernel) that a run may print before it fails. */
static int count_lines(const char *out, int ranks, const char *needle, char *first, size_t len)
{
    char log[256], line[2048];
    snprintf(log, sizeof log, "%s/%s-%d.log", work, out, ranks);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "mimae_dist: ", 12) == 0 && strncmp(line + 12, "warning: ", 9) != 0 &&
            strstr(line, needle)) {
            if (n++ == 0 && first) snprintf(first, len, "%s", line);
        }
    fclose(f);
    return n;
}

/* Files in dir whose name contains `part`. */
static int count_named(const char *dir, const char *part, long *size)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, part)) continue;
        n++;
        if (size) {
            char p[600];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            *size = stat(p, &st) == 0 ? (long)st.st_size : -1;
        }
    }
    if (d) closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-faults");
    if (write_small_run(work, 128)) return -1;
    const char *seed_text = getenv("MIMAE_TEST_SEED");
    uint64_t seed = seed_text ? strtoull(seed_text, NULL, 10) : (uint64_t)time(NULL);
    printf("  random steps and ranks from MIMAE_TEST_SEED=%llu\n", (unsigned long long)seed);
    rng_init(&rng, seed, 0, 0, RNG_STREAM_EVAL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (tiny[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "umount %s", tiny);
        if (system(cmd) != 0) fprintf(stderr, "cannot unmount %s\n", tiny);
    }
    mimae_model_free(straight);
    return remove_tree(work);
}

static void test_undisturbed_run(void **state)
{
    (void)state;
    double s;
    assert_int_equal(run_job(2, "straight", NULL, NULL, NULL, 0, &s), 0);
    long step;
    straight = load_newest("straight", &step);
    assert_int_equal(step, STEPS);
    printf("  undisturbed run: %d steps on 2 ranks in %.1f s\n", STEPS, s);
}

/* kill -9 of rank R as step S starts (after the checkpoint of S, if any). */
static void kill_case(const char *out, int ranks, int kill_rank, long step, const char *phase,
                      long expect_ckpt, int resume_ranks)
{
    assert_non_null(straight);
    char fault[128];
    snprintf(fault, sizeof fault, "kill-rank=%d,step=%ld,phase=%s", kill_rank, step, phase);
    double s;
    int status = run_job(ranks, out, fault, NULL, NULL, 128 + SIGKILL, &s);
    printf("  %d ranks, MIMAE_FAULT=%s: mpirun exit status %d after %.1f s\n", ranks, fault,
           status, s);
    assert_true(status > 0 && status != 3 && status != 2); /* -1: hung */
    check_then_resume(out, expect_ckpt, resume_ranks);
}

static void test_kill_rank1_at_step7(void **state)
{
    (void)state;
    kill_case("kill7", 2, 1, 7, "step", 5, 2);
}

static void test_kill_rank3_at_step12_of_4(void **state)
{
    (void)state;
    kill_case("kill12", 4, 3, 12, "step", 10, 2);
}

static void test_kill_rank0_right_after_checkpoint(void **state)
{
    (void)state;
    kill_case("kill15", 2, 0, 15, "step", 15, 1);
}

/* Rank 0 dies with half of ckpt-10 on disk: the temporary is left, ckpt-5
 * is the newest, and the resumed run removes the temporary. */
static void test_kill_writer_during_checkpoint(void **state)
{
    (void)state;
    kill_case("killw10", 2, 0, 10, "checkpoint", 5, 2);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/killw10/checkpoints", work);
    assert_int_equal(count_named(dir, ".tmp-", NULL), 0);
    assert_int_equal(count_lines("killw10", 2, "an unfinished write", NULL, 0), 1);
}

static void test_kill_writer_during_checkpoint_leaves_partial_file(void **state)
{
    (void)state;
    assert_non_null(straight);
    double s;
    const char *fault = "kill-rank=0,step=20,phase=checkpoint"; /* the final checkpoint */
    int status = run_job(2, "killw20", fault, NULL, NULL, 128 + SIGKILL, &s);
    assert_true(status > 0 && status != 3 && status != 2);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/killw20/checkpoints", work);
    long size = 0;
    assert_int_equal(count_named(dir, ".tmp-", &size), 1);
    assert_int_equal(count_named(dir, "ckpt-0000000020.h5", NULL), 1); /* the temporary only */
    printf("  MIMAE_FAULT=%s: exit %d, %ld bytes of ckpt-20 written when rank 0 died\n", fault,
           status, size);
    assert_true(size > 0);
    check_then_resume("killw20", 15, 4);
}

/* Rank 1 dies while rank 0 writes: whether ckpt-15 got finished races with
 * mpirun's ending of the job; either way the newest on disk is complete. */
static void test_kill_other_rank_during_checkpoint(void **state)
{
    (void)state;
    kill_case("killo15", 4, 1, 15, "checkpoint", -10, 4);
}

/* SIGTERM or SIGUSR1 once step k (random) has been logged, to a random rank
 * or to mpirun (which forwards SIGUSR1): exit 3 after a checkpoint. */
static void signal_case(const char *out, int ranks, int sig, int to_mpirun, int resume_ranks)
{
    assert_non_null(straight);
    const long k = 1 + (long)rng_below(&rng, STEPS - 4);
    char log[256], needle[32];
    snprintf(log, sizeof log, "%s/%s-%d.log", work, out, ranks);
    snprintf(needle, sizeof needle, "step %ld/", k);
    pid_t run = start_run(ranks, out, log, NULL, NULL, NULL);
    assert_int_equal(wait_for_text(log, needle, JOB_TIMEOUT_S), 0);
    pid_t target = run;
    int which = -1;
    if (!to_mpirun) {
        pid_t pids[8];
        int n = mpirun_rank_pids(run, pids, 8);
        assert_int_equal(n, ranks);
        which = (int)rng_below(&rng, (uint32_t)n);
        target = pids[which];
    }
    kill(target, sig);
    int status = run_wait(run, JOB_TIMEOUT_S);
    printf("  %d ranks, %s to %s after step %ld: exit status %d\n", ranks,
           sig == SIGTERM ? "SIGTERM" : "SIGUSR1", to_mpirun ? "mpirun" : "one rank", k, status);
    if (status != 3) show_log(log);
    assert_int_equal(status, 3);
    check_then_resume(out, -k, resume_ranks);
}

static void test_sigterm_to_a_rank_at_a_random_step(void **state)
{
    (void)state;
    signal_case("term", 2, SIGTERM, 0, 1);
}

static void test_sigusr1_to_a_rank_of_4_at_a_random_step(void **state)
{
    (void)state;
    signal_case("usr1", 4, SIGUSR1, 0, 2);
}

static void test_sigusr1_to_mpirun_at_a_random_step(void **state)
{
    (void)state;
    signal_case("usr1m", 2, SIGUSR1, 1, 4);
}

/* A stop request as the job starts: every rank raises the signal just before
 * MPI_Init (MIMAE_FAULT=signal-before-init=...). The handler is already in
 * place, so the ranks stop at the first step boundary with a checkpoint of
 * step 0 and exit 3 instead of dying by the signal; resuming gives the
 * undisturbed run. */
static void early_signal_case(const char *out, const char *sig)
{
    assert_non_null(straight);
    char fault[64];
    snprintf(fault, sizeof fault, "signal-before-init=%s", sig);
    double s;
    int status = run_job(2, out, fault, NULL, NULL, 3, &s);
    printf("  2 ranks, MIMAE_FAULT=%s: exit status %d after %.1f s\n", fault, status, s);
    assert_int_equal(status, 3);
    check_then_resume(out, 0, 2);
}

static void test_sigterm_before_mpi_init(void **state)
{
    (void)state;
    early_signal_case("early_term", "TERM");
}

static void test_sigusr1_before_mpi_init(void **state)
{
    (void)state;
    early_signal_case("early_usr1", "USR1");
}

/* The disk fills while ckpt-10 is written (the hook: files cannot grow past
 * 100 kB): exit 1 with one line naming the write, the temporary removed,
 * ckpt-5 the newest, and the run resumes once there is space again. */
static void test_full_disk_during_checkpoint_hook(void **state)
{
    (void)state;
    assert_non_null(straight);
    double s;
    int status = run_job(2, "full", "full-disk=100000,step=10", NULL, NULL, 1, &s);
    assert_int_equal(status, 1);
    char line[2048] = "";
    assert_int_equal(count_lines("full", 2, "", line, sizeof line), 1);
    printf("  %s", line);
    assert_non_null(strstr(line, "ckpt-0000000010.h5"));
    assert_non_null(strstr(line, "free space"));
    char dir[300];
    snprintf(dir, sizeof dir, "%s/full/checkpoints", work);
    assert_int_equal(count_named(dir, ".tmp-", NULL), 0);
    check_then_resume("full", 5, 2);
}

/* The same on a real full file system: the run directory on a 1 MiB tmpfs,
 * which ckpt-5 and results.h5 fit but ckpt-10 does not (ENOSPC). */
static void test_full_disk_during_checkpoint_tmpfs(void **state)
{
    (void)state;
    assert_non_null(straight);
    char cmd[300];
    snprintf(tiny, sizeof tiny, "%s/tiny", work);
    assert_int_equal(mkdir(tiny, 0755), 0);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1m tmpfs %s 2>/dev/null", tiny);
    if (system(cmd) != 0) {
        tiny[0] = 0;
        printf("  cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): the hook's "
               "full-disk case stands for this one\n");
        skip();
    }
    char out[200];
    snprintf(out, sizeof out, "%s/run", tiny);
    double s;
    int status = run_job(2, out, NULL, NULL, NULL, 1, &s);
    assert_int_equal(status, 1);
    char line[2048] = "";
    assert_int_equal(count_lines("abs", 2, "", line, sizeof line), 1);
    printf("  1 MiB tmpfs: %s", line);
    assert_non_null(strstr(line, "ckpt-0000000010.h5"));
    assert_non_null(strstr(line, "No space left on device"));
    char dir[300];
    snprintf(dir, sizeof dir, "%s/checkpoints", out);
    assert_int_equal(count_named(dir, ".tmp-", NULL), 0);
    snprintf(cmd, sizeof cmd, "mount -o remount,size=16m %s", tiny); /* space again */
    assert_int_equal(system(cmd), 0);
    check_then_resume(out, 5, 2);
}

/* A NaN in a gradient of Q at step 7 (the loss terms stay finite): exit 4,
 * one line with the step, the loss terms and the tensor; ckpt-5 kept as the
 * newest and results.h5 readable with the 7 good steps. */
static void test_nan_gradient_stops_with_exit_4(void **state)
{
    (void)state;
    assert_non_null(straight);
    double s;
    int status = run_job(2, "nan", "nan-grad=q.mu.fc1.weight,step=7", NULL, NULL, 4, &s);
    assert_int_equal(status, 4);
    char line[2048] = "";
    assert_int_equal(count_lines("nan", 2, "non-finite", line, sizeof line), 1);
    printf("  %s", line);
    const char *words[] = {"at step 7", "L_rec=", "L_max=", "L_min=", "L_q=",
                           "worst gradient: q.mu.fc1.weight"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strstr(line, words[i])) fail_msg("the message does not say '%s'", words[i]);
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/nan/results.h5", work);
    results_t *res = results_load(path, err, sizeof err);
    if (!res) fail_msg("%s", err);
    assert_int_equal(results_step_count(res), 7);
    results_free(res);
    check_then_resume("nan", 5, 2);
}

/* The highest step among DIR/ckpt-*.h5 (valid or not), -1 for none. */
static long highest_checkpoint(const char *dir)
{
    DIR *d = opendir(dir);
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        long step;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%10ld.%3s", &step, tail) == 2 && strcmp(tail, "h5") == 0 &&
            strlen(e->d_name) == 18 && step > best)
            best = step;
    }
    if (d) closedir(d);
    return best;
}

/* optim.blr = 1e6 diverges within a few steps: exit 4, one line; the
 * newest checkpoint on disk (one per step here) verifies (finite
 * parameters and moments) and is the last good state: the step the failed
 * update started from ("at step K"), or the one before an update that
 * overflowed the state ("after step K"). */
static void test_divergence_stops_with_exit_4(void **state)
{
    (void)state;
    double s;
    int status = run_job(2, "diverge", NULL, "optim.blr=1e6", "run.checkpoint_every=1", 4, &s);
    assert_int_equal(status, 4);
    char line[2048] = "";
    assert_int_equal(count_lines("diverge", 2, "non-finite", line, sizeof line), 1);
    printf("  optim.blr = 1e6: %s", line);
    long k = -1, good;
    const char *at = strstr(line, " at step "), *after = strstr(line, " after step ");
    if (at) k = atol(at + 9), good = k;
    else if (after) k = atol(after + 12), good = k - 1;
    else fail_msg("the message names no step");
    if (at) assert_non_null(strstr(line, "worst gradient: "));
    else assert_true(strstr(line, "/params/") || strstr(line, "/adam_"));
    char dir[300], path[600], err[1024];
    snprintf(dir, sizeof dir, "%s/diverge/checkpoints", work);
    const long newest = highest_checkpoint(dir);
    if (newest != good) fail_msg("newest checkpoint on disk: step %ld, expected %ld", newest, good);
    checkpoint_path(path, sizeof path, dir, newest);
    if (checkpoint_verify(path, err, sizeof err)) fail_msg("%s", err);
    long step;
    mimae_model_free(load_newest("diverge", &step));
    assert_int_equal(step, good);
}

/* The check mimae_dist runs before every checkpoint (an update can overflow
 * the state with finite gradients): it names the first non-finite value. */
static void test_state_check_names_the_value(void **state)
{
    (void)state;
    mimae_config_t cfg;
    char err[512];
    mimae_config_preset(&cfg, "test-small");
    mimae_model_t *m = mimae_model_create(&cfg, 1, 3, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(mimae_check_state(m, err, sizeof err), 0);
    const param_info_t *p = param_table_find(&m->q_table, "q.mu.fc2.bias");
    assert_non_null(p);
    m->q_v_mem[p->offset + 2] = INFINITY;
    m->step = 12;
    assert_int_equal(mimae_check_state(m, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "after step 12: /adam_v/q.mu.fc2.bias[2] is inf"));
    mimae_model_free(m);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undisturbed_run),
        cmocka_unit_test(test_kill_rank1_at_step7),
        cmocka_unit_test(test_kill_rank3_at_step12_of_4),
        cmocka_unit_test(test_kill_rank0_right_after_checkpoint),
        cmocka_unit_test(test_kill_writer_during_checkpoint),
        cmocka_unit_test(test_kill_writer_during_checkpoint_leaves_partial_file),
        cmocka_unit_test(test_kill_other_rank_during_checkpoint),
        cmocka_unit_test(test_sigterm_to_a_rank_at_a_random_step),
        cmocka_unit_test(test_sigusr1_to_a_rank_of_4_at_a_random_step),
        cmocka_unit_test(test_sigusr1_to_mpirun_at_a_random_step),
        cmocka_unit_test(test_sigterm_before_mpi_init),
        cmocka_unit_test(test_sigusr1_before_mpi_init),
        cmocka_unit_test(test_full_disk_during_checkpoint_hook),
        cmocka_unit_test(test_full_disk_during_checkpoint_tmpfs),
        cmocka_unit_test(test_nan_gradient_stops_with_exit_4),
        cmocka_unit_test(test_divergence_stops_with_exit_4),
        cmocka_unit_test(test_state_check_names_the_value),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
