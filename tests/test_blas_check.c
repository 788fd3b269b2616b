/* The advice printed when OpenBLAS runs its generic kernel on a CPU that
 * has a better one (core/kernels/blas_check.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mismatch_follows_kernel_and_cpu),
        cmocka_unit_test(test_user_choice_is_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
