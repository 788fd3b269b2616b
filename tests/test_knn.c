/* dist/knn under mpirun (tests/mpi/knn_check): on clustered synthetic data
 * the distributed k-NN matches a brute-force serial k-NN on rank 0, and the
 * predictions are byte-identical on 1, 2 and 3 ranks with uneven shares,
 * also with exact similarity ties (duplicated train rows with different
 * labels, where only the tie-break by global index decides), with k larger
 * than a rank's (or every) train share, with ranks that hold no rows, and
 * with classes that have no rows (no neighbours); bad input on one rank fails
 * on every rank with one message. Accuracy is well above chance (1/4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512]; /* where tests/mpi/knn_check lives */
static char work_dir[64];   /* prediction files */

/* `mpirun -n ranks knn_check WORK/out extra`; returns the exit status
 * (tests/mpi_run.h). */
static int run_check(int ranks, const char *out, const char *extra)
{
    return run_shell("mpirun -n %d --oversubscribe %s/tests/mpi/knn_check %s/%s %s", ranks,
                     build_dir, work_dir, out, extra ? extra : "");
}

/* The whole file WORK/name (NUL-terminated, not empty; caller frees). */
static char *slurp(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", work_dir, name);
    char *s = read_text(path);
    assert_non_null(s);
    assert_true(s[0] != '\0');
    return s;
}

static double top1_of(const char *text)
{
    const char *p = strstr(text, "top1 ");
    assert_non_null(p);
    return strtod(p + 5, NULL);
}

/* Runs the configuration on each rank count in `ranks` (0-terminated),
 * asserts exit 0 and byte-identical prediction files; returns the top-1. */
static double same_on_all(const char *tag, const int *ranks, const char *extra)
{
    char first[64], name[64];
    snprintf(first, sizeof first, "%s-%d.txt", tag, ranks[0]);
    assert_int_equal(run_check(ranks[0], first, extra), 0);
    char *ref = slurp(first);
    for (int i = 1; ranks[i]; i++) {
        snprintf(name, sizeof name, "%s-%d.txt", tag, ranks[i]);
        assert_int_equal(run_check(ranks[i], name, extra), 0);
        char *other = slurp(name);
        if (strcmp(ref, other)) fail_msg("%s: predictions on %d and %d ranks differ", tag, ranks[0], ranks[i]);
        free(other);
    }
    double top1 = top1_of(ref);
    printf("  %s (%s): top1 %.4f, identical on %d", tag, extra ? extra : "defaults", top1, ranks[0]);
    for (int i = 1; ranks[i]; i++) printf(", %d", ranks[i]);
    printf(" ranks\n");
    free(ref);
    return top1;
}

static const int one_two_three[] = {1, 2, 3, 0};
static const int one_two[] = {1, 2, 0};

static void test_identical_on_1_2_3_ranks(void **state)
{
    (void)state;
    double top1 = same_on_all("base", one_two_three, NULL);
    assert_true(top1 >= 0.75); /* chance: 0.25 */
    /* the default batch (one batch of 256) and tiny batches give the same */
    double t2 = same_on_all("batch", one_two, "--batch 0");
    double t3 = same_on_all("batch1", one_two, "--batch 1");
    assert_true(t2 == top1 && t3 == top1);
    char *a = slurp("base-1.txt"), *b = slurp("batch-2.txt"), *c = slurp("batch1-2.txt");
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a), free(b), free(c);
    /* higher dimension (not a multiple of 8) and more classes */
    double t4 = same_on_all("wide", one_two_three, "--d 37 --classes 10 --data-classes 10 --train 900");
    assert_true(t4 >= 0.5); /* chance: 0.1 */
}

static void test_exact_ties_broken_by_global_index(void **state)
{
    (void)state;
    /* train rows 150.. repeat rows 0..149 with other labels: k = 19 cuts
     * through groups of equal similarities */
    same_on_all("ties19", one_two_three, "--dup 150 --k 19");
    same_on_all("ties7", one_two_three, "--dup 150 --k 7 --batch 5");
}

static void test_k_larger_than_local_rows(void **state)
{
    (void)state;
    /* rank 0 holds 5 train rows (k = 20) and no test rows */
    double t = same_on_all("k-local", one_two_three, "--train-first 5 --test-first 0 --batch 7");
    char *a = slurp("base-1.txt"), *b = slurp("k-local-3.txt");
    assert_string_equal(a, b); /* the same data and k: the same answer as the even split */
    free(a), free(b);
    assert_true(t >= 0.75);
    /* rank 0 holds nothing at all */
    same_on_all("k-empty", one_two_three, "--train-first 0 --test-first 0");
    /* k = 50 larger than the whole train set (12 rows): every row votes */
    double t12 = same_on_all("k-all", one_two_three, "--train 12 --k 50 --train-first 0");
    assert_true(t12 > 0.0);
}

static void test_classes_without_neighbours(void **state)
{
    (void)state;
    /* 7 classes, the data uses 4: classes 4..6 get no votes and the answer
     * is the 4-class one */
    same_on_all("classes7", one_two_three, "--classes 7");
    char *a = slurp("base-1.txt"), *b = slurp("classes7-2.txt");
    assert_string_equal(a, b);
    free(a), free(b);
    /* one class only: everything predicted 0, top1 = 1 */
    double t = same_on_all("classes-one", one_two, "--classes 3 --data-classes 1");
    assert_true(t == 1.0);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work_dir, sizeof work_dir, "mimae-knn");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work_dir);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_on_1_2_3_ranks),
        cmocka_unit_test(test_exact_ties_broken_by_global_index),
        cmocka_unit_test(test_k_larger_than_local_rows),
        cmocka_unit_test(test_classes_without_neighbours),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
