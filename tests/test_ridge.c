/* The distributed ridge solver of the linear probe (dist/ridge.h): runs
 * tests/mpi/ridge_check under `mpirun -n R` for R = 1, 2 and 4 (each run
 * checks the solve against a serial LAPACK closed form, the probe end to
 * end, and the error paths; exit 0 when all pass), then compares the
 * solutions the three runs wrote: equal to 1e-6 relative, whatever the rank
 * count. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512]; /* holds tests/mpi/ridge_check */
static char work_dir[64];   /* the runs' solution files and logs */
static const int rank_counts[3] = {1, 2, 4};

static void result_path(char *path, size_t len, int ranks, const char *ext)
{
    snprintf(path, len, "%s/ridge-%d.%s", work_dir, ranks, ext);
}

/* Runs ridge_check on `ranks` ranks (output to a log); its exit status
 * (tests/mpi_run.h). */
static int run_check(int ranks, int timeout_s)
{
    char prog[640], n[8], out[128], log[128];
    snprintf(prog, sizeof prog, "%s/tests/mpi/ridge_check", build_dir);
    snprintf(n, sizeof n, "%d", ranks);
    result_path(out, sizeof out, ranks, "txt");
    result_path(log, sizeof log, ranks, "log");
    const char *argv[] = {"mpirun", "-n", n, "--oversubscribe", prog, out, NULL};
    return run_wait(run_start(argv, log, NULL), timeout_s);
}

/* Shows the run's summary line (all of its log when it failed). */
static void show_log(int ranks, int all)
{
    char log[128], line[2048];
    result_path(log, sizeof log, ranks, "log");
    FILE *f = fopen(log, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (all || strncmp(line, "ridge_check: ", 13) == 0) printf("  %s", line);
    fclose(f);
}

static void run_ranks(int ranks)
{
    const int status = run_check(ranks, 60);
    show_log(ranks, status != 0);
    assert_int_equal(status, 0);
}

static void test_ridge_check_1_rank(void **state)
{
    (void)state;
    run_ranks(1);
}

static void test_ridge_check_2_ranks(void **state)
{
    (void)state;
    run_ranks(2);
}

static void test_ridge_check_4_ranks(void **state)
{
    (void)state;
    run_ranks(4);
}

/* A solution file: "n1 classes nlam", nlam * n1 * classes values, then
 * "chosen val_top1 test_top1". Returns the value count, values in *w. */
static int read_result(int ranks, double **w, int *chosen)
{
    char path[128];
    result_path(path, sizeof path, ranks, "txt");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: missing (did the %d-rank run pass?)", path, ranks);
    int n1 = 0, classes = 0, nlam = 0;
    if (fscanf(f, "%d %d %d", &n1, &classes, &nlam) != 3 || n1 < 1 || classes < 1 || nlam < 1 ||
        n1 * classes * nlam > 1000000)
        fail_msg("%s: bad header", path);
    const int count = n1 * classes * nlam;
    double *v = malloc(sizeof(double) * (size_t)count);
    assert_non_null(v);
    for (int i = 0; i < count; i++)
        if (fscanf(f, "%lf", &v[i]) != 1) fail_msg("%s: value %d missing", path, i);
    double val = 0.0, test = 0.0;
    if (fscanf(f, "%d %lf %lf", chosen, &val, &test) != 3) fail_msg("%s: probe line missing", path);
    fclose(f);
    *w = v;
    return count;
}

static void test_solutions_agree_across_rank_counts(void **state)
{
    (void)state;
    double *w1 = NULL;
    int chosen1 = -1;
    const int count = read_result(1, &w1, &chosen1);
    double scale = 0.0;
    for (int i = 0; i < count; i++) scale = fmax(scale, fabs(w1[i]));
    assert_true(scale > 0.0);
    for (int k = 1; k < 3; k++) {
        double *w = NULL;
        int chosen = -1;
        assert_int_equal(read_result(rank_counts[k], &w, &chosen), count);
        double diff = 0.0;
        for (int i = 0; i < count; i++) diff = fmax(diff, fabs(w[i] - w1[i]));
        printf("  W on %d ranks vs 1 rank: max rel diff %.2e; probe chose lambda #%d (1 rank: #%d)\n",
               rank_counts[k], diff / scale, chosen, chosen1);
        free(w);
        assert_true(diff / scale <= 1e-6);
        assert_int_equal(chosen, chosen1);
    }
    free(w1);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work_dir, sizeof work_dir, "mimae-ridge");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    for (int k = 0; k < 3; k++) {
        result_path(path, sizeof path, rank_counts[k], "txt");
        unlink(path);
        result_path(path, sizeof path, rank_counts[k], "log");
        unlink(path);
    }
    return rmdir(work_dir) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ridge_check_1_rank),
        cmocka_unit_test(test_ridge_check_2_ranks),
        cmocka_unit_test(test_ridge_check_4_ranks),
        cmocka_unit_test(test_solutions_agree_across_rank_counts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
