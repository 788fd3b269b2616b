/* The distributed ridge solver of the linear probe (dist/ridge.h): runs
 * tests/mpi/ridge_check under `mpirun -n R` for R = 1, 2 and 4 (each run
 * checks the solve against a serial LAPACK closed form, the probe end to
 * end, and the error paths; exit 0 when all pass), then compares the
 * solutions the three runs wrote: equal to 1e-6 relative, whatever the rank
 * count. */
#define _DEFAULT_SOURCE /* setenv, mkdtemp, kill */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char build_dir[512]; /* holds tests/mpi/ridge_check */
static char work_dir[64];   /* the runs' solution files and logs */
static const int rank_counts[3] = {1, 2, 4};

static void result_path(char *path, size_t len, int ranks, const char *ext)
{
    snprintf(path, len, "%s/ridge-%d.%s", work_dir, ranks, ext);
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Runs ridge_check on `ranks` ranks (output to a log); its exit status, -1
 * after a timeout (killed), 128+signal when it died by a signal. */
static int run_check(int ranks, int timeout_s)
{
    char prog[640], n[8], out[128], log[128];
    snprintf(prog, sizeof prog, "%s/tests/mpi/ridge_check", build_dir);
    snprintf(n, sizeof n, "%d", ranks);
    result_path(out, sizeof out, ranks, "txt");
    result_path(log, sizeof log, ranks, "log");
    pid_t pid = fork();
    if (pid < 0) return -2;
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(127);
        execlp("mpirun", "mpirun", "-n", n, "--oversubscribe", prog, out, (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; waited < timeout_s * 100; waited++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
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
    const char *tmp = getenv("TMPDIR");
    snprintf(work_dir, sizeof work_dir, "%s/mimae-ridge-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    return mkdtemp(work_dir) ? 0 : -1;
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
    char self[512];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(build_dir, sizeof build_dir, "%s", dirname(dirname(self)));
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0); /* Open MPI's own allocations at exit */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ridge_check_1_rank),
        cmocka_unit_test(test_ridge_check_2_ranks),
        cmocka_unit_test(test_ridge_check_4_ranks),
        cmocka_unit_test(test_solutions_agree_across_rank_counts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
