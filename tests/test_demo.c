/* The demo pipeline (experiments/demo.sh, what `make demo` runs) at a tiny
 * size: every promised output exists and is readable: both results files
 * with their evaluations, the report (table as Markdown and CSV, PNG plots),
 * the reconstruction PNGs and the summary saying what was used. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/results.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512], work[64];

static void assert_png(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: missing", path);
    unsigned char sig[8] = {0};
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    const unsigned char want[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n != 8 || memcmp(sig, want, 8)) fail_msg("%s: not a PNG", path);
}

static void assert_text_contains(const char *path, const char *word)
{
    char *text = read_text(path);
    if (!text) fail_msg("%s: missing", path);
    const int found = strstr(text, word) != NULL;
    free(text);
    if (!found) fail_msg("%s does not mention '%s'", path, word);
}

static void test_demo_outputs(void **state)
{
    (void)state;
    char path[512], err[1024];
    int st = run_shell("DEMO_IMAGES=256 DEMO_TEST_IMAGES=128 DEMO_RANKS=2 experiments/demo.sh %s "
                       "%s/demo > %s/demo.log 2>&1", build_dir, work, work);
    if (st != 0) {
        snprintf(path, sizeof path, "%s/demo.log", work);
        print_log_tail(path, 20, NULL);
        fail_msg("demo.sh failed (exit status %d)", st);
    }
    const char *runs[] = {"mimae", "mae"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/demo/%s/results.h5", work, runs[i]);
        results_t *r = results_load(path, err, sizeof err);
        if (!r) fail_msg("%s", err);
        double probe, knn;
        assert_true(results_step_count(r) > 0);
        assert_int_equal(results_get_eval(r, "linear_probe_top1", &probe), 0);
        assert_int_equal(results_get_eval(r, "knn_top1", &knn), 0);
        printf("  %s: %ld steps, linear probe %.3f, k-NN %.3f\n", runs[i], results_step_count(r),
               probe, knn);
        results_free(r);
        snprintf(path, sizeof path, "%s/demo/%s-reconstructions.png", work, runs[i]);
        assert_png(path);
    }
    snprintf(path, sizeof path, "%s/demo/report.md", work);
    assert_text_contains(path, "mimae");
    snprintf(path, sizeof path, "%s/demo/report.csv", work);
    assert_text_contains(path, "linear_probe");
    snprintf(path, sizeof path, "%s/demo/summary.md", work);
    assert_text_contains(path, "What was used");
    assert_text_contains(path, "256 training images");
    glob_t g;
    snprintf(path, sizeof path, "%s/demo/report*.png", work);
    assert_int_equal(glob(path, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 1);
    for (size_t i = 0; i < g.gl_pathc; i++) assert_png(g.gl_pathv[i]);
    globfree(&g);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* demo.sh sets OPENBLAS_NUM_THREADS=1 itself, as mpi_test_init does */
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    make_tmpdir(work, sizeof work, "mimae-demo");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_demo_outputs)};
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (remove_tree(work)) return 1;
    return failed;
}
