/* Reading in a child process with a time bound (io/bounded_read.h): a read
 * that succeeds, fails with its message, is killed by a signal or never ends
 * gives the right result and one line; MIMAE_READ_TIMEOUT sets the bound.
 * Then the programs: `mimae inspect` gives up on files that crash or hang
 * HDF5 1.10.8 (tests/fuzz/inside-hdf5/) with one line and status 2, and
 * `mimae report` marks such runs "unreadable" and reports the others. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config/config.h"
#include "io/bounded_read.h"
#include "io/results.h"

#include "tests/fs_util.h"
#include "tests/mpi_run.h"

static char build_dir[512], source_dir[512], work[128];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------------------------
 * The child's ways to end. */

static int read_ok(const char *path, void *arg, char *err, size_t errlen)
{
    (void)path, (void)err, (void)errlen;
    *(int *)arg = 42; /* lost with the child */
    return 0;
}

static int read_refused(const char *path, void *arg, char *err, size_t errlen)
{
    (void)arg;
    snprintf(err, errlen, "%s: attribute format is missing: not a mimae file", path);
    return -1;
}

static int read_killed(const char *path, void *arg, char *err, size_t errlen)
{
    (void)path, (void)arg, (void)err, (void)errlen;
    kill(getpid(), SIGKILL); /* as a crash inside HDF5 ends it, in every build */
    return 0;
}

static int read_forever(const char *path, void *arg, char *err, size_t errlen)
{
    (void)path, (void)arg, (void)err, (void)errlen;
    for (;;) pause();
    return 0;
}

static void test_child_outcomes(void **state)
{
    (void)state;
    char err[512] = "";
    int value = 0;
    assert_int_equal(bounded_read("f.h5", read_ok, &value, 10.0, err, sizeof err), 0);
    assert_int_equal(value, 0); /* the child's memory is its own */

    assert_int_equal(bounded_read("f.h5", read_refused, NULL, 10.0, err, sizeof err), -1);
    assert_string_equal(err, "f.h5: attribute format is missing: not a mimae file");

    assert_int_equal(bounded_read("f.h5", read_killed, NULL, 10.0, err, sizeof err), -1);
    assert_non_null(strstr(err, "f.h5: unreadable (HDF5 crashed, "));
    assert_null(strchr(err, '\n'));

    const double t0 = now_s();
    assert_int_equal(bounded_read("f.h5", read_forever, NULL, 1.0, err, sizeof err), -1);
    const double took = now_s() - t0;
    assert_true(took >= 0.9 && took < 5.0);
    assert_non_null(strstr(err, "f.h5: unreadable (timed out after 1 s)"));
    assert_null(strchr(err, '\n'));
}

static void test_limit(void **state)
{
    (void)state;
    char err[512] = "", file[256];
    snprintf(file, sizeof file, "%s/40mb", work);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 40000000), 0);
    assert_int_equal(fclose(f), 0);

    unsetenv("MIMAE_READ_TIMEOUT");
    assert_true(bounded_read_limit(NULL, err, sizeof err) == 10.0);
    assert_true(bounded_read_limit(file, err, sizeof err) == 12.0); /* + 1 s per 20 MB */
    setenv("MIMAE_READ_TIMEOUT", "2.5", 1);
    assert_true(bounded_read_limit(file, err, sizeof err) == 4.5);
    const char *bad[] = {"abc", "0", "-3", "5s", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("MIMAE_READ_TIMEOUT", bad[i], 1);
        err[0] = 0;
        assert_true(bounded_read_limit(file, err, sizeof err) < 0);
        assert_non_null(strstr(err, "MIMAE_READ_TIMEOUT"));
    }
    unsetenv("MIMAE_READ_TIMEOUT");
}

/* ------------------------------------------------------------------------
 * The programs, on files HDF5 1.10.8 itself cannot get through. */

static void fixture(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/tests/fuzz/inside-hdf5/%s", source_dir, name);
    assert_int_equal(access(buf, R_OK), 0);
}

static void test_inspect_gives_up(void **state)
{
    (void)state;
    char loop[700], crash[700], asan[1024];
    fixture(loop, sizeof loop, "legacy-heap-loop.h5");
    fixture(crash, sizeof crash, "legacy-heap-crash.h5");
    /* under AddressSanitizer HDF5's bug is reported before it crashes: into
     * a file, so that stderr holds what the user sees (ignored otherwise) */
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%slog_path=%s/asan", old ? old : "", old && *old ? ":" : "",
             work);
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("MIMAE_READ_TIMEOUT", "1", 1);
    const double t0 = now_s();
    int st = run_captured(work, "%s/mimae inspect '%s'", build_dir, loop);
    assert_true(now_s() - t0 < 20.0);
    assert_bad_input(work, st, "legacy-heap-loop.h5", "unreadable (timed out after 1 s)", NULL);
    st = run_captured(work, "%s/mimae inspect '%s'", build_dir, crash);
    assert_bad_input(work, st, "legacy-heap-crash.h5", "unreadable (HDF5 crashed", NULL);
    unsetenv("MIMAE_READ_TIMEOUT");
    if (old) setenv("ASAN_OPTIONS", old, 1);
    else unsetenv("ASAN_OPTIONS");
}

static void write_good_run(const char *dir)
{
    assert_int_equal(mkdir(dir, 0755), 0);
    mimae_config_t cfg;
    assert_int_equal(mimae_config_preset(&cfg, "test-small"), 0);
    results_t *r = results_new(&cfg, NULL);
    assert_non_null(r);
    for (long s = 1; s <= 3; s++) {
        const step_metrics_t m = {.step = s, .epoch = 0.1 * s, .total = 1.0 / s};
        assert_int_equal(results_append_step(r, &m), 0);
    }
    assert_int_equal(results_set_attr(r, "run.name", "good"), 0);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/results.h5", dir);
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);
}

static void copy_fixture(const char *name, const char *dir)
{
    char src[700];
    fixture(src, sizeof src, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(run_shell("cp '%s' '%s/results.h5'", src, dir), 0);
}

static void test_report_goes_on(void **state)
{
    (void)state;
    char runs[256], dir[300];
    snprintf(runs, sizeof runs, "%s/runs", work);
    assert_int_equal(mkdir(runs, 0755), 0);
    snprintf(dir, sizeof dir, "%s/a-good", runs);
    write_good_run(dir);
    snprintf(dir, sizeof dir, "%s/b-hang", runs);
    copy_fixture("legacy-heap-loop.h5", dir);
    snprintf(dir, sizeof dir, "%s/c-crash", runs);
    copy_fixture("legacy-heap-crash.h5", dir);

    setenv("MIMAE_READ_TIMEOUT", "1", 1);
    const int st = run_captured(work, "%s/mimae report '%s' --no-plots", build_dir, runs);
    unsetenv("MIMAE_READ_TIMEOUT");
    char path[400];
    snprintf(path, sizeof path, "%s/stdout.txt", work);
    char *out = read_text(path);
    assert_non_null(out);
    printf("%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "unreadable (timed out after 1 s)"));
    assert_non_null(strstr(out, "unreadable (HDF5 crashed"));
    free(out);
    snprintf(path, sizeof path, "%s/report.csv", runs);
    char *csv = read_text(path);
    assert_non_null(csv);
    /* one row each, the good one complete */
    assert_non_null(strstr(csv, "\ngood,a-good,finished,"));
    assert_non_null(strstr(csv, "\nb-hang,b-hang,failed,"));
    assert_non_null(strstr(csv, "\nc-crash,c-crash,failed,"));
    free(csv);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-bounded");
    return 0;
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
    char parent[512];
    snprintf(parent, sizeof parent, "%s", build_dir);
    snprintf(source_dir, sizeof source_dir, "%s", dirname(parent));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_outcomes),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_inspect_gives_up),
        cmocka_unit_test(test_report_goes_on),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
