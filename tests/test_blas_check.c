/* The advice printed when OpenBLAS runs its generic kernel on a CPU that
 * has a better one, or fewer threads than asked for (core/kernels/blas_check.h). */
#define _GNU_SOURCE /* sched_setaffinity */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "core/kernels/blas_check.h"

static int cpu_has_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

static void test_mismatch_follows_kernel_and_cpu(void **state)
{
    (void)state;
    unsetenv("OPENBLAS_CORETYPE");
    char msg[256] = "stale";
    const int generic = strcasecmp(blas_kernel_name(), "prescott") == 0;
    const int expected = generic && cpu_has_avx2();
    print_message("OpenBLAS kernel %s, AVX2 %d\n", blas_kernel_name(), !!cpu_has_avx2());
    assert_int_equal(blas_kernel_mismatch(msg, sizeof msg), expected);
    if (expected) {
        assert_non_null(strstr(msg, "OPENBLAS_CORETYPE="));
        assert_non_null(strstr(msg, "Prescott"));
    } else {
        assert_string_equal(msg, "");
    }
}

static void test_user_choice_is_respected(void **state)
{
    (void)state;
    /* read at call time: the loaded kernel does not change, the advice goes */
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    char msg[256] = "stale";
    assert_int_equal(blas_kernel_mismatch(msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    unsetenv("OPENBLAS_CORETYPE");
}

/* A request for more threads than the affinity mask allows is named; one
 * the CPUs can serve is not. The mask is narrowed to one CPU for the test. */
static void test_threads_beyond_the_affinity_are_named(void **state)
{
    (void)state;
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    char msg[320];
    setenv("OPENBLAS_NUM_THREADS", "2", 1);
    const int two = blas_threads_exceed_cpus(msg, sizeof msg);
    char two_msg[320];
    snprintf(two_msg, sizeof two_msg, "%s", msg);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    const int single = blas_threads_exceed_cpus(msg, sizeof msg);
    unsetenv("OPENBLAS_NUM_THREADS");
    setenv("OMP_NUM_THREADS", "3", 1);
    const int omp = blas_threads_exceed_cpus(msg, sizeof msg);
    unsetenv("OMP_NUM_THREADS");
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    assert_int_equal(two, 1);
    assert_non_null(strstr(two_msg, "OPENBLAS_NUM_THREADS=2"));
    assert_non_null(strstr(two_msg, "--bind-to none"));
    assert_int_equal(single, 0);
    assert_int_equal(omp, 1);
    assert_non_null(strstr(msg, "OMP_NUM_THREADS=3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mismatch_follows_kernel_and_cpu),
        cmocka_unit_test(test_user_choice_is_respected),
        cmocka_unit_test(test_threads_beyond_the_affinity_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
