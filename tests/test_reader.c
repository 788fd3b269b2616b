/* The per-rank reader: the read-ahead thread delivers exactly the requested
 * images in order, double buffering keeps the previous batch valid while the
 * next one is read, ranks' slices of the epoch order partition each global
 * batch, and errors come back as messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data/sampler.h"
#include "io/dataset.h"
#include "io/reader.h"
#include "io/synthetic.h"
#include "fs_util.h"

typedef struct {
    char dir[64];
    char train[96];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    make_tmpdir(f->dir, sizeof f->dir, "mimae-reader");
    char err[512];
    if (synthetic_generate(f->dir, 64, 8, 8, 1, 4, 3, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(f->train, sizeof f->train, "%s/train.h5", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

static void test_prefetch_delivers_requested_images(void **state)
{
    fixture_t *f = *state;
    char err[512];
    dataset_t *d = dataset_open(f->train, err, sizeof err);
    if (!d) fail_msg("%s", err);
    reader_t *r = reader_create(f->train, 8, err, sizeof err);
    if (!r) fail_msg("%s", err);
    const size_t bytes = 8 * 8;
    uint8_t want[8 * 64];
    int32_t want_labels[8];
    const int64_t batches[3][8] = {{5, 1, 63, 0, 7, 7, 30, 2},
                                   {10, 11, 12, 13, 14, 15, 16, 17},
                                   {40, 3, 9, 22, 61, 8, 19, 33}};
    const uint8_t *prev = NULL, *img;
    const int32_t *labels;
    uint8_t prev_copy[8 * 64];
    assert_int_equal(reader_start(r, batches[0], 8, err, sizeof err), 0);
    for (int b = 0; b < 3; b++) {
        double waited = -1;
        assert_int_equal(reader_wait(r, &img, &labels, &waited, err, sizeof err), 0);
        assert_true(waited >= 0.0);
        /* HDF5 is not thread-safe: the direct read happens with no read in flight */
        assert_int_equal(dataset_read(d, batches[b], 8, want, want_labels, err, sizeof err), 0);
        assert_memory_equal(img, want, 8 * bytes);
        assert_memory_equal(labels, want_labels, sizeof want_labels);
        /* the batch before stayed intact while this one was being read */
        if (prev) assert_memory_equal(prev, prev_copy, 8 * bytes);
        memcpy(prev_copy, img, 8 * bytes);
        prev = img;
        if (b + 1 < 3) assert_int_equal(reader_start(r, batches[b + 1], 8, err, sizeof err), 0);
    }
    /* misuse and bad indices are messages, not crashes */
    assert_int_equal(reader_wait(r, &img, &labels, NULL, err, sizeof err), -1);
    const int64_t bad[1] = {64};
    assert_int_equal(reader_start(r, bad, 1, err, sizeof err), 0);
    assert_int_equal(reader_wait(r, &img, &labels, NULL, err, sizeof err), -1);
    printf("  bad index: %s\n", err);
    assert_non_null(strstr(err, "64"));
    assert_int_equal(reader_start(r, bad, 9, err, sizeof err), -1);
    reader_free(r);
    dataset_close(d);
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[512];
    assert_null(reader_create("mimae-no-such-dir/train.h5", 4, err, sizeof err));
    assert_non_null(strstr(err, "mimae-no-such-dir/train.h5"));
}

/* The R slices of a global batch are disjoint and make up the batch that
 * one rank would read; the order does not depend on R. */
static void test_sampler_slices(void **state)
{
    (void)state;
    sampler_t one, four;
    assert_int_equal(sampler_init(&one, 100, 16, 7), 0);
    assert_int_equal(sampler_init(&four, 100, 16, 7), 0);
    assert_int_equal(sampler_steps_per_epoch(&one), 6);
    int64_t whole[16], part[4];
    for (long epoch = 0; epoch < 2; epoch++)
        for (long step = 0; step < 6; step++) {
            sampler_slice(&one, epoch, step, 0, 1, whole);
            for (int r = 0; r < 4; r++) {
                sampler_slice(&four, epoch, step, r, 4, part);
                assert_memory_equal(part, whole + 4 * r, sizeof part);
            }
        }
    int64_t e0[16], e1[16];
    sampler_slice(&one, 0, 0, 0, 1, e0);
    sampler_slice(&one, 1, 0, 0, 1, e1);
    assert_memory_not_equal(e0, e1, sizeof e0);
    sampler_free(&one);
    sampler_free(&four);
    assert_int_equal(sampler_init(&one, 8, 16, 7), -1);
    sampler_free(&one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_delivers_requested_images),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_sampler_slices),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
