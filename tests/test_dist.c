/* mimae_dist under mpirun on a tiny synthetic data set: the deterministic
 * reduction gives bitwise-identical parameters on 1, 2 and 4 ranks, and with
 * each micro-batch's activations kept or recomputed; the fast
 * reduction on 2 ranks matches 1 rank; the global InfoNCE over 2 ranks equals
 * one process; a SIGTERM-stopped run resumed on another rank count ends
 * bitwise equal to an undisturbed run; a killed rank ends the job (no hang)
 * with the newest checkpoint loadable; bad input exits 2 with one line. */
#define _DEFAULT_SOURCE /* kill */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/vit/model.h"
#include "io/checkpoint.h"
#include "ckpt_util.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512];   /* where mimae_dist and tests/mpi/ live */
static char work_dir[64];     /* temporary run directory */

/* Starts `mpirun -n ranks mimae_dist DESC --set run.out_dir=OUT extra...`
 * with stderr (and stdout) into log; returns the pid. */
static pid_t start_run(int ranks, const char *out, const char *log, const char *extra1,
                       const char *extra2)
{
    char prog[640], desc[128], n[8], outset[256];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(desc, sizeof desc, "%s/run.ini", work_dir);
    snprintf(n, sizeof n, "%d", ranks);
    snprintf(outset, sizeof outset, "run.out_dir=%s/%s", work_dir, out);
    const char *argv[16] = {"mpirun", "-n", n, "--oversubscribe", prog, desc, "--set", outset};
    int argc = 8;
    if (extra1) argv[argc++] = "--set", argv[argc++] = extra1;
    if (extra2) argv[argc++] = "--set", argv[argc++] = extra2;
    argv[argc] = NULL;
    return run_start(argv, log, NULL);
}

static int run_to_end(int ranks, const char *out, const char *extra1, const char *extra2)
{
    char log[256];
    snprintf(log, sizeof log, "%s/%s.log", work_dir, out);
    int status = run_wait(start_run(ranks, out, log, extra1, extra2), 120);
    if (status != 0) print_log_tail(log, 5, NULL);
    return status;
}

/* The model of a run's final checkpoint (the newest one). */
static mimae_model_t *load_final(const char *out, long expect_step)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", work_dir, out);
    long step;
    mimae_model_t *m = load_newest_checkpoint(dir, &step);
    if (step != expect_step) {
        mimae_model_free(m);
        fail_msg("%s: newest checkpoint at step %ld, expected %ld", dir, step, expect_step);
    }
    return m;
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work_dir, sizeof work_dir, "mimae-dist");
    return write_small_run(work_dir, 256);
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work_dir);
}

static void test_deterministic_1_2_4_ranks_bitwise(void **state)
{
    (void)state;
    assert_int_equal(run_to_end(1, "det1", NULL, NULL), 0);
    assert_int_equal(run_to_end(2, "det2", NULL, NULL), 0);
    assert_int_equal(run_to_end(4, "det4", NULL, NULL), 0);
    mimae_model_t *m1 = load_final("det1", 20), *m2 = load_final("det2", 20),
                  *m4 = load_final("det4", 20);
    assert_models_bitwise_equal(m1, m2);
    assert_models_bitwise_equal(m1, m4);
    /* the run did train: parameters moved from the seed's initialisation */
    char err[256];
    mimae_model_t *init = mimae_model_create(&m1->cfg, 1, 5, err, sizeof err);
    assert_non_null(init);
    assert_memory_not_equal(init->param_mem, m1->param_mem, m1->table.total * sizeof(float));
    printf("  20 steps on 1, 2 and 4 ranks: parameters and moments bitwise equal\n");
    mimae_model_free(init);
    mimae_model_free(m1);
    mimae_model_free(m2);
    mimae_model_free(m4);
}

/* 1 if the log holds text (read whole with mpi_run.h's read_text). */
static int log_has(const char *log, const char *text)
{
    char *all = read_text(log);
    assert_non_null(all);
    const int found = strstr(all, text) != NULL;
    free(all);
    return found;
}

/* train.precision = bf16 (the linear layers' products through oneDNN)
 * keeps the deterministic reduction's promise: 1, 2 and 4 ranks end
 * bitwise equal; and it did run in bf16 (other bits than f32's). */
static void test_bf16_1_2_4_ranks_bitwise(void **state)
{
    (void)state;
    const char *bf16 = "train.precision=bf16";
    assert_int_equal(run_to_end(1, "bf16_1", bf16, NULL), 0);
    assert_int_equal(run_to_end(2, "bf16_2", bf16, NULL), 0);
    assert_int_equal(run_to_end(4, "bf16_4", bf16, NULL), 0);
    char log[256];
    snprintf(log, sizeof log, "%s/bf16_1.log", work_dir);
    assert_true(log_has(log, "bf16 products through oneDNN on"));
    mimae_model_t *m1 = load_final("bf16_1", 20), *m2 = load_final("bf16_2", 20),
                  *m4 = load_final("bf16_4", 20);
    assert_models_bitwise_equal(m1, m2);
    assert_models_bitwise_equal(m1, m4);
    /* against the f32 run of test_deterministic_1_2_4_ranks_bitwise (made
     * here when this test runs alone) */
    char f32_dir[256];
    snprintf(f32_dir, sizeof f32_dir, "%s/det1", work_dir);
    if (access(f32_dir, F_OK) != 0) assert_int_equal(run_to_end(1, "det1", NULL, NULL), 0);
    mimae_model_t *f32 = load_final("det1", 20);
    assert_memory_not_equal(f32->param_mem, m1->param_mem, m1->table.total * sizeof(float));
    mimae_model_free(f32);
    printf("  bf16, 20 steps on 1, 2 and 4 ranks: parameters and moments bitwise equal\n");
    mimae_model_free(m1);
    mimae_model_free(m2);
    mimae_model_free(m4);
}

/* A CPU without bf16 instructions (here: oneDNN capped below them) refuses
 * train.precision = bf16 with one line naming what is missing, exit 2,
 * before writing anything. */
static void test_bf16_without_cpu_support_exits_2(void **state)
{
    (void)state;
    char prog[640], desc[128], outset[128], log[128], out[96];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(desc, sizeof desc, "%s/run.ini", work_dir);
    snprintf(out, sizeof out, "%s/nobf16", work_dir);
    snprintf(outset, sizeof outset, "run.out_dir=%s", out);
    snprintf(log, sizeof log, "%s/nobf16.log", work_dir);
    const char *argv[] = {prog, desc, "--set", outset, "--set", "train.precision=bf16", NULL};
    const char *env[] = {"ONEDNN_MAX_CPU_ISA=AVX2", NULL};
    assert_int_equal(run_wait(run_start(argv, log, env), 60), 2);
    assert_true(log_has(log, "train.precision = bf16 needs"));
    assert_int_not_equal(access(out, F_OK), 0);
}

/* A rank with several micro-batches keeps each one's activations from its
 * forward to its backward; a memory budget too small for that makes it
 * recompute each forward instead, with a warning at start. Both end with
 * bitwise-equal parameters. */
static void test_kept_activations_equal_recomputed(void **state)
{
    (void)state;
    assert_int_equal(run_to_end(1, "kept", NULL, NULL), 0);
    assert_int_equal(run_to_end(1, "recomputed", "train.memory_budget_gb=0.000001", NULL), 0);
    char log[256];
    snprintf(log, sizeof log, "%s/kept.log", work_dir);
    char *kept_log = read_text(log);
    snprintf(log, sizeof log, "%s/recomputed.log", work_dir);
    char *recomputed_log = read_text(log);
    assert_non_null(kept_log);
    assert_non_null(recomputed_log);
    assert_null(strstr(kept_log, "recomputing"));
    assert_non_null(strstr(recomputed_log, "mimae_dist: warning: 4 micro-batches of 4 images a "
                                           "rank: recomputing each forward"));
    free(kept_log);
    free(recomputed_log);
    mimae_model_t *kept = load_final("kept", 20), *recomputed = load_final("recomputed", 20);
    assert_models_bitwise_equal(kept, recomputed);
    printf("  1 rank, 4 micro-batches: kept and recomputed activations give bitwise-equal "
           "parameters\n");
    mimae_model_free(kept);
    mimae_model_free(recomputed);
}

static void test_fast_two_ranks_match_one(void **state)
{
    (void)state;
    assert_int_equal(run_to_end(1, "fast1", "train.reduction=fast", "train.micro_batch=0"), 0);
    assert_int_equal(run_to_end(2, "fast2", "train.reduction=fast", "train.micro_batch=0"), 0);
    mimae_model_t *a = load_final("fast1", 20), *b = load_final("fast2", 20);
    double worst = 0.0;
    const char *worst_name = "";
    const param_table_t *tables[2] = {&a->table, &a->q_table};
    const float *pa[2] = {a->param_mem, a->q_param_mem}, *pb[2] = {b->param_mem, b->q_param_mem};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < tables[t]->count; i++) {
            const param_info_t *p = &tables[t]->info[i];
            double diff = 0.0, ref = 0.0;
            for (size_t j = 0; j < p->count; j++) {
                double x = pa[t][p->offset + j], y = pb[t][p->offset + j];
                diff += (x - y) * (x - y);
                ref += x * x;
            }
            double e = sqrt(diff) / fmax(sqrt(ref), 1e-12);
            if (e > worst) worst = e, worst_name = p->name;
        }
    printf("  fast path, 2 ranks vs 1 after 20 steps: worst tensor %s rel %.2e\n", worst_name, worst);
    mimae_model_free(a);
    mimae_model_free(b);
    assert_true(worst <= 1e-5);
}

static void test_global_infonce_two_ranks(void **state)
{
    (void)state;
    assert_int_equal(run_shell("mpirun -n 2 --oversubscribe %s/tests/mpi/global_infonce", build_dir), 0);
}

static void test_sigterm_then_resume_on_one_rank(void **state)
{
    (void)state;
    char log[256];
    snprintf(log, sizeof log, "%s/stop.log", work_dir);
    pid_t run = start_run(2, "stop", log, NULL, NULL);
    assert_int_equal(wait_for_text(log, "step 10/", 60), 0);
    pid_t ranks[8];
    int n = mpirun_rank_pids(run, ranks, 8);
    assert_int_equal(n, 2);
    /* Freeze the ranks so the stop lands soon after step 10, then ask them to stop. */
    for (int i = 0; i < n; i++) kill(ranks[i], SIGSTOP);
    for (int i = 0; i < n; i++) kill(ranks[i], SIGTERM);
    for (int i = 0; i < n; i++) kill(ranks[i], SIGCONT);
    int status = run_wait(run, 60);
    printf("  SIGTERM after step 10: exit status %d\n", status);
    assert_int_equal(status, 3);
    char dir[256], path[512], err[1024];
    snprintf(dir, sizeof dir, "%s/stop/checkpoints", work_dir);
    assert_int_equal(checkpoint_find_latest(dir, path, sizeof path, err, sizeof err), 1);
    printf("  stopped with %s\n", path);
    assert_null(strstr(path, "0000000020")); /* it stopped before the end */

    /* resume on 1 rank and finish; compare with an undisturbed 2-rank run */
    assert_int_equal(run_to_end(1, "stop", NULL, NULL), 0);
    assert_int_equal(run_to_end(2, "straight", NULL, NULL), 0);
    mimae_model_t *resumed = load_final("stop", 20), *straight = load_final("straight", 20);
    assert_models_bitwise_equal(resumed, straight);
    mimae_model_free(resumed);
    mimae_model_free(straight);
}

static void test_killed_rank_ends_job(void **state)
{
    (void)state;
    char log[256];
    snprintf(log, sizeof log, "%s/kill.log", work_dir);
    pid_t run = start_run(2, "kill", log, "train.max_steps=0", "train.epochs=200");
    assert_int_equal(wait_for_text(log, "step 12/", 60), 0);
    pid_t ranks[8];
    assert_int_equal(mpirun_rank_pids(run, ranks, 8), 2);
    time_t t0 = time(NULL);
    kill(ranks[1], SIGKILL);
    int status = run_wait(run, 60);
    printf("  kill -9 of one rank: mpirun exit status %d after %ld s\n", status,
           (long)(time(NULL) - t0));
    assert_true(status > 0 && status != 3);
    char dir[256], path[512], err[1024];
    snprintf(dir, sizeof dir, "%s/kill/checkpoints", work_dir);
    assert_int_equal(checkpoint_find_latest(dir, path, sizeof path, err, sizeof err), 1);
    assert_int_equal(checkpoint_verify(path, err, sizeof err), 0);
    printf("  newest checkpoint %s verifies\n", path);
}

/* Bad input: one line naming the problem, exit status 2, nothing written. */
static void test_bad_input_exits_2(void **state)
{
    (void)state;
    char log[256], line[1024];
    snprintf(log, sizeof log, "%s/bad.log", work_dir);
    int status = run_wait(start_run(3, "bad3", log, NULL, NULL), 60);
    assert_int_equal(status, 2);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int lines = 0, named = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "mimae_dist:")) lines++, named += strstr(line, "global_batch") != NULL;
    fclose(f);
    assert_int_equal(lines, 1);
    assert_int_equal(named, 1);
    char out[256];
    snprintf(out, sizeof out, "%s/bad3", work_dir);
    assert_int_not_equal(access(out, F_OK), 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_infonce_two_ranks),
        cmocka_unit_test(test_deterministic_1_2_4_ranks_bitwise),
        cmocka_unit_test(test_kept_activations_equal_recomputed),
        cmocka_unit_test(test_bf16_1_2_4_ranks_bitwise),
        cmocka_unit_test(test_bf16_without_cpu_support_exits_2),
        cmocka_unit_test(test_fast_two_ranks_match_one),
        cmocka_unit_test(test_sigterm_then_resume_on_one_rank),
        cmocka_unit_test(test_killed_rank_ends_job),
        cmocka_unit_test(test_bad_input_exits_2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
