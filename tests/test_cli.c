/* Bad input at the command line: each case gets exit status 2, exactly one
 * line on stderr naming the file and the field, and leaves no partial output.
 * Also: a newest checkpoint truncated anywhere is rejected and the previous
 * one used, by the library and by a resuming mimae_dist. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/data/rng.h"
#include "io/checkpoint.h"
#include "io/synthetic.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512], work[64];

static const char *descriptor_text =
    "[model]\npreset = test-small\nchannels = 1\n"
    "[data]\ntrain = %s\n"
    "[train]\nglobal_batch = 8\nmicro_batch = 4\nepochs = 1\nmax_steps = 4\nseed = 2\n"
    "[run]\nout_dir = %s\nlog_every = 100\ncheckpoint_every = 1\nkeep_checkpoints = 4\n";

/* Writes a descriptor for data set `data` and run directory `out` (both in work). */
static void write_descriptor(const char *name, const char *data, const char *out)
{
    char path[256], data_path[256], out_path[256];
    snprintf(path, sizeof path, "%s/%s", work, name);
    snprintf(data_path, sizeof data_path, "%s/%s", work, data);
    snprintf(out_path, sizeof out_path, "%s/%s", work, out);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, descriptor_text, data_path, out_path);
    assert_int_equal(fclose(f), 0);
}

/* Runs a shell command line (programs named relative to the build dir) in
 * the work directory, stderr into work/stderr.txt; returns the exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_captured(work, "%s/%s", build_dir, args);
}

/* Exit status 2, and the run's stderr is exactly one line holding every
 * word given (NULL-terminated). */
#define expect_bad(...) assert_bad_input(work, __VA_ARGS__)

static int exists(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", work, rel);
    return access(path, F_OK) == 0;
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-cli");
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/good", work);
    if (synthetic_generate(dir, 64, 16, 16, 1, 4, 1, err, sizeof err)) return -1;
    snprintf(dir, sizeof dir, "%s/small", work);
    return synthetic_generate(dir, 5, 16, 16, 1, 4, 1, err, sizeof err) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

static void test_missing_data_file(void **state)
{
    (void)state;
    write_descriptor("missing.ini", "nowhere/train.h5", "out_missing");
    expect_bad(run("mimae_dist missing.ini"), "nowhere/train.h5", NULL);
    assert_false(exists("out_missing"));
}

static void test_not_hdf5(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/text.h5", work);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not HDF5\n", f);
    fclose(f);
    write_descriptor("text.ini", "text.h5", "out_text");
    expect_bad(run("mimae_dist text.ini"), "text.h5", "HDF5", NULL);
    assert_false(exists("out_text"));
    expect_bad(run("mimae inspect text.h5"), "text.h5", NULL);
}

/* An HDF5 file edited with the C API: a copy of the good data set with one
 * dataset removed or replaced. */
static void make_broken_copy(const char *name, const char *what)
{
    char src[128], dst[128], cmd[300];
    snprintf(src, sizeof src, "%s/good/train.h5", work);
    snprintf(dst, sizeof dst, "%s/%s", work, name);
    snprintf(cmd, sizeof cmd, "cp %s %s", src, dst);
    assert_int_equal(system(cmd), 0);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    if (strcmp(what, "no-images") == 0) {
        assert_true(H5Ldelete(f, "/images", H5P_DEFAULT) >= 0);
    } else if (strcmp(what, "float-images") == 0 || strcmp(what, "rank-3") == 0) {
        assert_true(H5Ldelete(f, "/images", H5P_DEFAULT) >= 0);
        hsize_t dims[4] = {64, 16, 16, 1};
        int rank = what[0] == 'r' ? 3 : 4;
        hid_t space = H5Screate_simple(rank, dims, NULL);
        hid_t type = what[0] == 'r' ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
        hid_t ds = H5Dcreate2(f, "/images", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(ds >= 0);
        H5Dclose(ds);
        H5Sclose(space);
    } else if (strcmp(what, "bad-label") == 0) {
        hid_t ds = H5Dopen2(f, "/labels", H5P_DEFAULT);
        hsize_t start = 7, one = 1;
        hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL);
        int32_t bad = 99;
        assert_true(H5Dwrite(ds, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &bad) >= 0);
        H5Sclose(ms), H5Sclose(fs), H5Dclose(ds);
    }
    H5Fclose(f);
}

static void test_missing_images_dataset(void **state)
{
    (void)state;
    make_broken_copy("noimages.h5", "no-images");
    write_descriptor("noimages.ini", "noimages.h5", "out_noimages");
    expect_bad(run("mimae_dist noimages.ini"), "noimages.h5", "/images", NULL);
    assert_false(exists("out_noimages"));
}

static void test_wrong_dtype(void **state)
{
    (void)state;
    make_broken_copy("float.h5", "float-images");
    write_descriptor("float.ini", "float.h5", "out_float");
    expect_bad(run("mimae_dist float.ini"), "float.h5", "/images", NULL);
    assert_false(exists("out_float"));
}

static void test_wrong_rank(void **state)
{
    (void)state;
    make_broken_copy("rank3.h5", "rank-3");
    write_descriptor("rank3.ini", "rank3.h5", "out_rank3");
    expect_bad(run("mimae_dist rank3.ini"), "rank3.h5", "/images", NULL);
    assert_false(exists("out_rank3"));
}

static void test_wrong_shape_for_model(void **state)
{
    (void)state;
    write_descriptor("shape.ini", "good/train.h5", "out_shape");
    expect_bad(run("mimae_dist shape.ini --set model.img_h=20 --set model.img_w=20"),
               "good/train.h5", "model.img_h", NULL);
    assert_false(exists("out_shape"));
}

static void test_label_out_of_range(void **state)
{
    (void)state;
    make_broken_copy("label.h5", "bad-label");
    write_descriptor("label.ini", "label.h5", "out_label");
    expect_bad(run("mimae_dist label.ini"), "label.h5", "99", NULL);
    assert_false(exists("out_label"));
}

static void test_fewer_images_than_a_batch(void **state)
{
    (void)state;
    write_descriptor("small.ini", "small/train.h5", "out_small");
    expect_bad(run("mimae_dist small.ini"), "small/train.h5", "global_batch", NULL);
    assert_false(exists("out_small"));
}

static void test_patch_does_not_divide(void **state)
{
    (void)state;
    write_descriptor("patch.ini", "good/train.h5", "out_patch");
    expect_bad(run("mimae_dist patch.ini --set model.patch=5"), "patch.ini", "model.patch", NULL);
    assert_false(exists("out_patch"));
}

static void test_checkpoint_of_another_config(void **state)
{
    (void)state;
    write_descriptor("first.ini", "good/train.h5", "out_cfg");
    assert_int_equal(run("mimae_dist first.ini"), 0);
    assert_true(exists("out_cfg/checkpoints/ckpt-0000000004.h5"));
    expect_bad(run("mimae_dist first.ini --set model.enc_dim=64 --set mimae.proj_hidden=128"),
               "ckpt-0000000004.h5", "model.enc_dim", NULL);
    assert_false(exists("out_cfg/checkpoints/ckpt-0000000005.h5"));
}

static void test_tool_bad_input(void **state)
{
    (void)state;
    expect_bad(run("mimae data fashion-mnist fm_out --src %s/nowhere", work), "nowhere", NULL);
    assert_false(exists("fm_out/train.h5"));
    expect_bad(run("mimae data synthetic syn_out --size 16x16"), "--size", NULL);
    assert_false(exists("syn_out"));
    expect_bad(run("mimae inspect no_such_file.h5"), "no_such_file.h5", NULL);
    expect_bad(run("mimae_dist"), "DESCRIPTOR", NULL);
}

/* The newest checkpoint cut at random offsets is skipped for the previous one. */
static void test_truncated_checkpoint_falls_back(void **state)
{
    (void)state;
    write_descriptor("trunc.ini", "good/train.h5", "out_trunc");
    assert_int_equal(run("mimae_dist trunc.ini --set train.max_steps=3"), 0);
    char dir[128], newest[256], saved[256], cmd[1024], path[512], err[512];
    snprintf(dir, sizeof dir, "%s/out_trunc/checkpoints", work);
    snprintf(newest, sizeof newest, "%s/ckpt-0000000003.h5", dir);
    snprintf(saved, sizeof saved, "%s/saved.h5", work);
    snprintf(cmd, sizeof cmd, "cp %s %s", newest, saved);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(saved, &st), 0);
    rng_t r;
    rng_init(&r, 4, 0, 0, RNG_STREAM_EVAL);
    for (int trial = 0; trial < 12; trial++) {
        off_t cut = (off_t)rng_below(&r, (uint32_t)st.st_size);
        snprintf(cmd, sizeof cmd, "cp %s %s && truncate -s %lld %s", saved, newest, (long long)cut, newest);
        assert_int_equal(system(cmd), 0);
        /* find_latest reports the skipped file on stderr: keep that out of the log */
        fflush(stderr);
        int saved_stderr = dup(STDERR_FILENO), null_fd = open("/dev/null", O_WRONLY);
        assert_true(saved_stderr >= 0 && null_fd >= 0);
        dup2(null_fd, STDERR_FILENO);
        int found = checkpoint_find_latest(dir, path, sizeof path, err, sizeof err);
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        close(null_fd);
        if (found != 1 || !strstr(path, "ckpt-0000000002.h5"))
            fail_msg("cut at %lld of %lld: picked %s", (long long)cut, (long long)st.st_size, path);
    }
    /* and a resuming run says so and goes on from step 2 */
    assert_int_equal(run("mimae_dist trunc.ini --set train.max_steps=4"), 0);
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    char *text = read_text(path);
    assert_non_null(text);
    printf("%s", text);
    const int skipping = strstr(text, "skipping") != NULL,
              resuming = strstr(text, "resuming from") != NULL,
              from_2 = strstr(text, "ckpt-0000000002.h5") != NULL;
    free(text);
    assert_true(skipping);
    assert_true(resuming);
    assert_true(from_2);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_data_file),
        cmocka_unit_test(test_not_hdf5),
        cmocka_unit_test(test_missing_images_dataset),
        cmocka_unit_test(test_wrong_dtype),
        cmocka_unit_test(test_wrong_rank),
        cmocka_unit_test(test_wrong_shape_for_model),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_fewer_images_than_a_batch),
        cmocka_unit_test(test_patch_does_not_divide),
        cmocka_unit_test(test_checkpoint_of_another_config),
        cmocka_unit_test(test_tool_bad_input),
        cmocka_unit_test(test_truncated_checkpoint_falls_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
