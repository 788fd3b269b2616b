/* `mimae run` (run/launcher.h) starts mpirun with the ranks unbound when a
 * rank is to run several BLAS threads, and leaves the placement alone
 * otherwise or when the user placed the ranks. A stand-in `mpirun` first on
 * PATH records the arguments it was given. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/fs_util.h"
#include "tests/mpi_run.h"

static char build_dir[PATH_MAX], work[PATH_MAX];

/* Runs `mimae run EXTRA x.ini` with OPENBLAS_NUM_THREADS=threads (unset
 * when NULL) and returns what the stand-in mpirun was given. */
static char *launched_with(const char *threads, const char *extra)
{
    assert_int_equal(run_shell("rm -f %s/args", work), 0);
    const int rc = run_shell("cd %s && env -u OMP_NUM_THREADS %s%s PATH=%s/fakebin:$PATH "
                             "%s/mimae run %s x.ini >/dev/null 2>&1",
                             work, threads ? "OPENBLAS_NUM_THREADS=" : "-u OPENBLAS_NUM_THREADS",
                             threads ? threads : "", work, build_dir, extra);
    assert_int_equal(rc, 0);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/args", work);
    char *args = read_text(path);
    assert_non_null(args);
    return args;
}

static void test_several_threads_a_rank_unbind_the_ranks(void **state)
{
    (void)state;
    char *two = launched_with("2", "-n 1");
    char *one = launched_with("1", "-n 2");
    char *unset = launched_with(NULL, "-n 2");
    char *placed = launched_with("2", "-n 1 --mpi --map-by --mpi slot:PE=2");
    assert_non_null(strstr(two, "-n 1 --bind-to none "));
    assert_null(strstr(one, "--bind-to"));
    assert_null(strstr(unset, "--bind-to"));
    assert_null(strstr(placed, "--bind-to"));
    assert_non_null(strstr(placed, "--map-by slot:PE=2 "));
    free(two), free(one), free(unset), free(placed);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-launcher");
    /* the stand-in: its arguments on one line, then success */
    return run_shell("mkdir -p %s/fakebin && printf '#!/bin/sh\\necho \"$*\" > %s/args\\n' "
                     "> %s/fakebin/mpirun && chmod +x %s/fakebin/mpirun",
                     work, work, work, work);
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (test_build_dir(argv[0], build_dir, sizeof build_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_several_threads_a_rank_unbind_the_ranks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
