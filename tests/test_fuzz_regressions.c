/* Replays the saved fuzz inputs without libFuzzer: every file of
 * tests/fuzz/regressions/<target>/ (inputs that crashed, hung, exhausted
 * memory or broke an invariant before their fix) and the committed
 * descriptor seeds go through the same entry points as the fuzz targets
 * (tests/fuzz/fuzz_entry.c, compiled in here), so `make test` (and
 * `make test SANITIZE=1`, with ASan and UBSan) keeps them fixed. A broken
 * invariant aborts the binary, which the runner reports as a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_entry.c"
#include "mpi_run.h"

static char source_dir[512]; /* the repository: the build directory's parent */

/* Feeds every file of tests/fuzz/<sub>/ to the target; the count. */
static int replay(const char *target, const char *sub)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", source_dir, sub);
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot list %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("cannot read %s", path);
        uint8_t *buf = malloc(1 << 22);
        assert_non_null(buf);
        size_t len = fread(buf, 1, 1 << 22, f);
        fclose(f);
        printf("  %s <- %s/%s (%zu bytes)\n", target, sub, e->d_name, len);
        fflush(stdout);
        assert_int_equal(fuzz_run_named(target, buf, len), 0);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void test_descriptor_inputs(void **state)
{
    (void)state;
    int n = replay("descriptor", "seeds/descriptor") + replay("descriptor", "regressions/descriptor");
    assert_true(n > 0);
}

static void test_dataset_inputs(void **state)
{
    (void)state;
    assert_true(replay("dataset", "regressions/dataset") > 0);
}

static void test_checkpoint_inputs(void **state)
{
    (void)state;
    assert_true(replay("checkpoint", "regressions/checkpoint") > 0);
}

static void test_results_inputs(void **state)
{
    (void)state;
    assert_true(replay("results", "regressions/results") > 0);
}

/* The inputs of checks made before HDF5 reads an object end in their own
 * one-line refusal, not in a later check or a success. */
static void test_refused_before_reading(void **state)
{
    (void)state;
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/regressions/results/variable-string.h5",
             source_dir);
    err[0] = 0;
    assert_null(results_load(path, err, sizeof err));
    printf("  %s\n", err);
    assert_non_null(strstr(err, "attribute run.name is a variable-length string"));

    snprintf(path, sizeof path, "%s/tests/fuzz/regressions/dataset/labels-chunk-128mib.h5",
             source_dir);
    err[0] = 0;
    assert_null(dataset_open(path, err, sizeof err));
    printf("  %s\n", err);
    assert_non_null(strstr(err, "/labels has chunks of 134217728 bytes"));

    snprintf(path, sizeof path, "%s/tests/fuzz/regressions/checkpoint/step-int24.h5",
             source_dir);
    err[0] = 0;
    assert_int_equal(checkpoint_verify(path, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "attribute step is of a type mimae never writes"));
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[512];
    if (test_build_dir(argv[0], self, sizeof self)) return 1; /* BUILD */
    snprintf(source_dir, sizeof source_dir, "%s", dirname(self));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_inputs),
        cmocka_unit_test(test_dataset_inputs),
        cmocka_unit_test(test_checkpoint_inputs),
        cmocka_unit_test(test_results_inputs),
        cmocka_unit_test(test_refused_before_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
