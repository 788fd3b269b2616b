/* The deterministic sum of dist/tree_sum.h on one process: leaves pushed
 * whole and leaves written in place (as the backward writes them) give the
 * same bits as the pairwise tree written out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dist/tree_sum.h"
#include "tests/step_util.h"

enum { LEAVES = 8, N = 1000 };

/* Values whose float sums depend on the order of the additions. */
static float leaf_value(int leaf, int i)
{
    uint32_t x = (uint32_t)(leaf * 7919 + i * 104729 + 1) * 2654435761u;
    return (float)((x >> 8) % 100000) * (leaf % 2 ? 1e-3f : 1e3f) * (i % 3 ? 1.0f : -1.0f);
}

static void fill(float *v, int leaf)
{
    for (int i = 0; i < N; i++) v[i] = leaf_value(leaf, i);
}

/* ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)), element by element. */
static float by_hand(int i)
{
    float l[LEAVES];
    for (int k = 0; k < LEAVES; k++) l[k] = leaf_value(k, i);
    const float a = l[0] + l[1], b = l[2] + l[3], c = l[4] + l[5], d = l[6] + l[7];
    const float ab = a + b, cd = c + d;
    return ab + cd;
}

static void test_pushed_and_in_place_leaves_sum_in_tree_order(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(step_util_mpi_init(err, sizeof err), 0);
    static float leaf[N], pushed[N], in_place[N], expected[N];
    for (int i = 0; i < N; i++) expected[i] = by_hand(i);

    tree_sum_t t;
    assert_int_equal(tree_sum_init(&t, N, LEAVES), 0);
    tree_sum_reset(&t);
    for (int k = 0; k < LEAVES; k++) {
        fill(leaf, k);
        tree_sum_push(&t, leaf);
    }
    tree_sum_finish(&t, pushed, MPI_COMM_SELF);

    /* the same leaves written into the tree's next slot */
    tree_sum_reset(&t);
    for (int k = 0; k < LEAVES; k++) {
        fill(tree_sum_leaf(&t), k);
        tree_sum_add_leaf(&t);
    }
    tree_sum_finish(&t, in_place, MPI_COMM_SELF);
    tree_sum_free(&t);

    assert_memory_equal(pushed, expected, sizeof expected);
    assert_memory_equal(in_place, expected, sizeof expected);
    /* and the order matters for these values: a left-to-right sum differs */
    int differs = 0;
    for (int i = 0; i < N && !differs; i++) {
        float sequential = 0.0f;
        for (int k = 0; k < LEAVES; k++) sequential += leaf_value(k, i);
        differs = sequential != expected[i];
    }
    assert_true(differs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pushed_and_in_place_leaves_sum_in_tree_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
