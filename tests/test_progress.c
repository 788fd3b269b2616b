/* The progress line's rate stays readable at every speed: a ViT-B/16 step
 * on one core runs well under one image a second, which "%.0f img/s" showed
 * as "0 img/s". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "run/progress.h"

static void expect_rate(double images_per_s, const char *want)
{
    char got[64];
    progress_format_rate(got, sizeof got, images_per_s);
    printf("  %g -> '%s'\n", images_per_s, got);
    assert_string_equal(got, want);
}

static void test_rates(void **state)
{
    (void)state;
    expect_rate(1234.4, "1234 img/s");
    expect_rate(100.0, "100 img/s");
    expect_rate(3.14, "3.1 img/s");
    expect_rate(1.0, "1.0 img/s");
    expect_rate(0.364, "0.36 img/s (2.75 s/img)");
    expect_rate(0.004, "0.004 img/s (250 s/img)");
    expect_rate(0.0, "- img/s");
    expect_rate(NAN, "- img/s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
