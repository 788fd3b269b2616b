/* The bad-input catalogue: descriptors, data sets, checkpoints and results
 * files that are wrong in one way each, given to the real programs
 * (build/mimae_dist, under mpirun where the rank count matters, and
 * build/mimae). Every case asserts exit status 2, exactly one line on
 * stderr naming the problem (the words listed), and no partial output: a
 * fresh run directory is not created, an existing one is left exactly as it
 * was (every file's size and modification time). tests/test_cli.c has the
 * first cases (missing or non-HDF5 data set, missing /images, float or
 * rank-3 images, image size, label out of range, too few images, patch,
 * checkpoint of another config, tool arguments, truncated newest
 * checkpoint) and tests/test_dist.c a batch not divisible by 3 ranks; this
 * file has the rest. The broken files are made by the test itself. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/vit/model.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "io/synthetic.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512], work[64];

static const char *base_text =
    "[model]\npreset = test-small\nchannels = 1\n"
    "[data]\ntrain = %s/good/train.h5\n"
    "[train]\nglobal_batch = 8\nmicro_batch = 4\nepochs = 1\nmax_steps = 4\nseed = 2\n"
    "[run]\nout_dir = %s/%s\nlog_every = 100\ncheckpoint_every = 1\nkeep_checkpoints = 4\n"
    "recon_samples = 2\n[eval]\nmi_images = 8\n";

/* ------------------------------------------------------------------------
 * Running the programs. */

/* Runs `BUILD/<command>` in the work directory (mpirun -q -n R when
 * ranks > 0), stdout and stderr into files there; the exit status. */
static int run_in(int ranks, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_in(int ranks, const char *fmt, ...)
{
    char args[2048], mpi[96] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (ranks > 0) snprintf(mpi, sizeof mpi, "mpirun -q -n %d --oversubscribe ", ranks);
    return run_captured(work, "%s%s/%s", mpi, build_dir, args);
}

#define run(...) run_in(0, __VA_ARGS__)

/* Exit status 2 and exactly one line on stderr holding every given word
 * (NULL-terminated). */
#define expect_bad(...) assert_bad_input(work, __VA_ARGS__)

static int exists(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", work, rel);
    return access(path, F_OK) == 0;
}

/* Every file under work/rel with its size and modification time. */
static char *snapshot(const char *rel)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cd %s/%s && find . -printf '%%p %%s %%T@\\n' | sort", work, rel);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n = fread(s, 1, cap - 1, p);
    s[n] = 0;
    pclose(p);
    return s;
}

static void assert_unchanged(const char *rel, char *before)
{
    char *after = snapshot(rel);
    if (strcmp(before, after)) fail_msg("%s changed:\nbefore:\n%s\nafter:\n%s", rel, before, after);
    free(before);
    free(after);
}

static void sh(const char *fmt, ...)
{
    char cmd[2048], full[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd %s && %s", work, cmd);
    if (system(full) != 0) fail_msg("failed: %s", cmd);
}

/* A descriptor `name` for run directory `out`, the base text plus `extra`
 * (whole lines, with their section headers). */
static void write_desc(const char *name, const char *out, const char *extra)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, base_text, work, work, out);
    if (extra) fputs(extra, f);
    assert_int_equal(fclose(f), 0);
}

/* A descriptor case: `extra` appended to the base, `sets` given as --set
 * options; the run must fail with bad input naming the words and leave no
 * run directory. */
#define DESC_CASE(name, extra, sets, ...)                                   \
    do {                                                                    \
        write_desc(name ".ini", "out_" name, extra);                        \
        expect_bad(run("mimae_dist " name ".ini %s", sets), __VA_ARGS__, NULL); \
        assert_false(exists("out_" name));                                  \
    } while (0)

/* ------------------------------------------------------------------------
 * Setup: a good data set, and two trained runs whose checkpoints and
 * results the other cases break. */

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-bad");
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/good", work);
    if (synthetic_generate(dir, 64, 16, 16, 1, 4, 1, err, sizeof err)) return -1;
    write_desc("base.ini", "trained", NULL);
    if (run("mimae_dist base.ini") != 0) return -1;
    write_desc("other.ini", "trained_tau", NULL);
    if (run("mimae_dist other.ini --set mimae.tau=0.1") != 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

/* ------------------------------------------------------------------------
 * Descriptors. */

static void test_desc_wrong_type_integer(void **state)
{
    (void)state;
    DESC_CASE("d_int", "[mimae]\nnum_masks = two\n", "", "d_int.ini:", "mimae.num_masks",
              "not an integer");
}

static void test_desc_wrong_type_real(void **state)
{
    (void)state;
    DESC_CASE("d_real", "[mimae]\nmask_ratio = 0.7five\n", "", "d_real.ini:",
              "mimae.mask_ratio", "not a finite number");
}

static void test_desc_out_of_range(void **state)
{
    (void)state;
    DESC_CASE("d_range", "[mimae]\nmask_ratio = 1.5\n", "", "d_range.ini", "mimae.mask_ratio",
              "[0, 1)");
}

static void test_desc_negative_seed(void **state)
{
    (void)state;
    DESC_CASE("d_seed", "", "--set train.seed=-1", "d_seed.ini", "train.seed", ">= 0");
}

static void test_desc_unknown_key(void **state)
{
    (void)state;
    DESC_CASE("d_key", "[optim]\nlearning_rate = 0.1\n", "", "d_key.ini:", "learning_rate",
              "unknown key");
}

static void test_desc_unknown_key_typo(void **state)
{
    (void)state;
    DESC_CASE("d_typo", "[eval]\nknn_kk = 5\n", "", "d_typo.ini:", "knn_kk", "did you mean knn_k");
}

static void test_desc_unknown_section(void **state)
{
    (void)state;
    DESC_CASE("d_sec", "[optimizer]\nblr = 0.1\n", "", "d_sec.ini:", "[optimizer]",
              "unknown section");
}

static void test_desc_missing_data_section(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/d_nodata.ini", work);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[model]\npreset = test-small\n[train]\nglobal_batch = 8\n[run]\nout_dir = %s/out_d_nodata\n",
            work);
    fclose(f);
    expect_bad(run("mimae_dist d_nodata.ini"), "d_nodata.ini", "data.train", "no training set",
               NULL);
    assert_false(exists("out_d_nodata"));
}

static void test_desc_masks_exceed_patches(void **state)
{
    (void)state; /* 16x16 / patch 4: L = 16, V = 4 at 0.75: N x V > L for N = 5 */
    DESC_CASE("d_nvl", "[mimae]\nnum_masks = 5\n", "", "d_nvl.ini", "mimae.num_masks",
              "5 x 4 exceeds the 16 patches");
}

static void test_desc_nan(void **state)
{
    (void)state;
    DESC_CASE("d_nan", "[optim]\nblr = nan\n", "", "d_nan.ini:", "optim.blr",
              "not a finite number");
}

static void test_desc_inf(void **state)
{
    (void)state;
    DESC_CASE("d_inf", "", "--set mimae.tau=inf", "d_inf.ini", "mimae.tau", "not a finite number");
}

static void test_desc_overflowing_real(void **state)
{
    (void)state;
    DESC_CASE("d_huge", "[optim]\nweight_decay = 1e999\n", "", "d_huge.ini:",
              "optim.weight_decay", "not a finite number");
}

static void test_desc_overflowing_integer(void **state)
{
    (void)state;
    DESC_CASE("d_big", "", "--set model.img_h=99999999999", "d_big.ini", "model.img_h",
              "not an integer");
}

static void test_desc_duplicate_key(void **state)
{
    (void)state;
    DESC_CASE("d_dup", "[train]\nseed = 3\n", "", "d_dup.ini:", "seed", "duplicate key");
}

static void test_desc_bad_enum(void **state)
{
    (void)state;
    DESC_CASE("d_enum", "[mimae]\npool = max\n", "", "d_enum.ini:", "mimae.pool",
              "use one of mean, cls");
}

static void test_desc_bad_switch(void **state)
{
    (void)state;
    DESC_CASE("d_switch", "", "--set train.augment=maybe", "d_switch.ini", "train.augment",
              "not a switch");
}

static void test_desc_syntax_error(void **state)
{
    (void)state;
    DESC_CASE("d_syntax", "[eval]\nthis line has no equals sign\n", "", "d_syntax.ini:",
              "not a '[section]' or 'key = value' line");
}

static void test_desc_nul_byte(void **state)
{
    (void)state;
    write_desc("d_nul.ini", "out_d_nul", NULL);
    sh("printf '[eval]\\nknn_k = 5\\000\\n' >> d_nul.ini");
    expect_bad(run("mimae_dist d_nul.ini"), "d_nul.ini:", "NUL byte", NULL);
    assert_false(exists("out_d_nul"));
}

static void test_desc_line_too_long(void **state)
{
    (void)state;
    char extra[400];
    snprintf(extra, sizeof extra, "[data]\ntest = /%0250d\n", 0);
    DESC_CASE("d_long", extra, "", "d_long.ini:", "libinih reads at most");
}

static void test_desc_missing_file(void **state)
{
    (void)state;
    expect_bad(run("mimae_dist d_nowhere.ini"), "d_nowhere.ini", "cannot read the descriptor",
               NULL);
}

static void test_desc_micro_batch_not_divisor(void **state)
{
    (void)state;
    DESC_CASE("d_micro", "", "--set train.micro_batch=3", "d_micro.ini", "train.micro_batch = 3",
              "does not divide");
}

static void test_desc_warmup_longer_than_training(void **state)
{
    (void)state;
    DESC_CASE("d_warm", "[optim]\nwarmup_epochs = 2\n", "", "d_warm.ini:",
              "optim.warmup_epochs", "longer than train.epochs");
}

static void test_desc_run_name_with_slash(void **state)
{
    (void)state;
    DESC_CASE("d_name", "", "--set run.name=a/b", "d_name.ini", "run.name", "'/'");
}

/* Sizes no machine holds used to reach the allocator (and the OOM killer:
 * exit 137 and no message) or overflow int arithmetic. */
static void test_desc_model_too_deep(void **state)
{
    (void)state;
    DESC_CASE("d_deep", "", "--set model.enc_depth=100000000", "d_deep.ini", "model.enc_depth",
              "at most 1024");
}

static void test_desc_too_many_patches(void **state)
{
    (void)state;
    DESC_CASE("d_patches", "", "--set model.img_h=65536 --set model.img_w=65536 --set model.patch=1",
              "d_patches.ini", "patches per image");
}

static void test_desc_model_too_large(void **state)
{
    (void)state;
    DESC_CASE("d_params", "", "--set model.enc_dim=32768 --set model.enc_heads=2",
              "d_params.ini", "parameters", "make it smaller");
}

static void test_set_unknown_key(void **state)
{
    (void)state;
    DESC_CASE("d_setkey", "", "--set train.epoch=3", "d_setkey.ini", "train.epoch",
              "did you mean train.epochs");
}

static void test_set_malformed(void **state)
{
    (void)state;
    DESC_CASE("d_setbad", "", "--set model.enc_dim", "d_setbad.ini",
              "expected section.key=value");
}

static void test_unknown_option(void **state)
{
    (void)state;
    DESC_CASE("d_opt", "", "--frobnicate", "--frobnicate", "unknown option");
}

static void test_sweep_without_task(void **state)
{
    (void)state;
    DESC_CASE("d_sweep", "[sweep]\nmimae.tau = 0.1, 0.2\n", "", "d_sweep.ini",
              "[sweep] of 2 tasks", "--task");
}

static void test_sweep_task_out_of_range(void **state)
{
    (void)state;
    DESC_CASE("d_task", "[sweep]\nmimae.tau = 0.1, 0.2\n", "--task 7", "--task 7",
              "2 tasks");
}

static void test_sweep_bad_value(void **state)
{
    (void)state;
    DESC_CASE("d_sweepv", "[sweep]\nmimae.tau = 0.1, lots\n", "--task 0", "d_sweepv.ini",
              "mimae.tau", "lots");
}

/* --task of a descriptor without a [sweep] used to run in out_d_notask/task-0000. */
static void test_task_without_sweep(void **state)
{
    (void)state;
    DESC_CASE("d_notask", "", "--task 0", "d_notask.ini", "--task 0", "no [sweep] section");
}

/* Rank counts: the micro-batch count must divide over the ranks, and the
 * fast reduction runs one micro-batch per rank. */
static void test_micro_batches_not_divisible_by_ranks(void **state)
{
    (void)state;
    write_desc("r_micro.ini", "out_r_micro", NULL);
    expect_bad(run_in(2, "mimae_dist r_micro.ini --set train.micro_batch=8"), "r_micro.ini",
               "1 micro-batches", "2 ranks", NULL);
    assert_false(exists("out_r_micro"));
}

static void test_fast_reduction_micro_batch(void **state)
{
    (void)state;
    write_desc("r_fast.ini", "out_r_fast", NULL);
    expect_bad(run_in(2, "mimae_dist r_fast.ini --set train.reduction=fast --set train.micro_batch=2"),
               "r_fast.ini", "train.micro_batch = 2", "set 0 or 4", NULL);
    assert_false(exists("out_r_fast"));
}

/* ------------------------------------------------------------------------
 * Data sets: copies of the good one, edited. */

static void copy_data(const char *name)
{
    sh("cp good/train.h5 %s", name);
}

static hid_t open_rw(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", work, name);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void set_doubles(const char *name, const char *attr, const double *v, int n)
{
    hid_t f = open_rw(name);
    assert_true(H5Adelete(f, attr) >= 0);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(f, attr, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, v) >= 0);
    H5Aclose(a), H5Sclose(space), H5Fclose(f);
}

static void set_int(const char *name, const char *attr, int v)
{
    hid_t f = open_rw(name);
    assert_true(H5Adelete(f, attr) >= 0);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, attr, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a), H5Sclose(space), H5Fclose(f);
}

/* A data set case: mimae_dist on a descriptor pointing at `file`. */
static void data_case(const char *file, const char *w1, const char *w2)
{
    char ini[128], out[128], extra[300];
    snprintf(ini, sizeof ini, "%s.ini", file);
    snprintf(out, sizeof out, "out_%s", file);
    write_desc(ini, out, NULL);
    snprintf(extra, sizeof extra, "--set data.train=%s/%s", work, file);
    expect_bad(run("mimae_dist %s %s", ini, extra), file, w1, w2, NULL);
    assert_false(exists(out));
}

static void test_data_nan_mean(void **state)
{
    (void)state;
    copy_data("s_nan.h5");
    const double v[1] = {NAN};
    set_doubles("s_nan.h5", "mean", v, 1);
    data_case("s_nan.h5", "channel 0 has mean nan", "the mean must be in [0, 1]");
}

static void test_data_inf_std(void **state)
{
    (void)state;
    copy_data("s_inf.h5");
    const double v[1] = {INFINITY};
    set_doubles("s_inf.h5", "std", v, 1);
    data_case("s_inf.h5", "std inf", "the std in");
}

/* A std that is finite and positive but underflows to 0 as a float made
 * every normalised pixel infinite: training diverged (exit 4) instead of
 * rejecting the file. */
static void test_data_tiny_std(void **state)
{
    (void)state;
    copy_data("s_tiny.h5");
    const double v[1] = {1e-300};
    set_doubles("s_tiny.h5", "std", v, 1);
    data_case("s_tiny.h5", "std 1e-300", "the std in [1e-06");
}

static void test_data_mean_out_of_range(void **state)
{
    (void)state;
    copy_data("s_mean.h5");
    const double v[1] = {255.0}; /* the 0..255 scale instead of 0..1 */
    set_doubles("s_mean.h5", "mean", v, 1);
    data_case("s_mean.h5", "mean 255", "0..1 pixel scale");
}

static void test_data_stats_wrong_length(void **state)
{
    (void)state;
    copy_data("s_len.h5");
    const double v[3] = {0.5, 0.5, 0.5};
    set_doubles("s_len.h5", "std", v, 3);
    data_case("s_len.h5", "attribute std", "expected 1");
}

static void test_data_truncated(void **state)
{
    (void)state;
    copy_data("s_trunc.h5");
    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/s_trunc.h5", work);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    data_case("s_trunc.h5", "HDF5", NULL);
    expect_bad(run("mimae inspect s_trunc.h5"), "s_trunc.h5", NULL);
}

static void test_data_bit_flipped(void **state)
{
    (void)state;
    copy_data("s_flip.h5");
    sh("printf '\\x09' | dd of=s_flip.h5 bs=1 seek=0 count=1 conv=notrunc 2>/dev/null");
    data_case("s_flip.h5", "not an HDF5 file", NULL);
}

static void test_data_empty_file(void **state)
{
    (void)state;
    sh(": > s_empty.h5");
    data_case("s_empty.h5", "0 bytes", "too short"); /* refused before HDF5 opens it */
}

static void test_data_is_a_directory(void **state)
{
    (void)state;
    sh("mkdir s_dir.h5");
    data_case("s_dir.h5", "is a directory", NULL);
}

static void test_data_is_a_checkpoint(void **state)
{
    (void)state;
    sh("cp trained/checkpoints/ckpt-0000000004.h5 s_ckpt.h5");
    data_case("s_ckpt.h5", "\"mimae-checkpoint\"", "not a mimae data set");
}

static void test_data_newer_format(void **state)
{
    (void)state;
    copy_data("s_ver.h5");
    set_int("s_ver.h5", "format_version", 2);
    data_case("s_ver.h5", "format_version 2", "newer mimae");
}

static void test_data_no_classes(void **state)
{
    (void)state;
    copy_data("s_cls.h5");
    set_int("s_cls.h5", "num_classes", 0);
    data_case("s_cls.h5", "num_classes is 0", NULL);
}

static void test_data_labels_shorter_than_images(void **state)
{
    (void)state;
    copy_data("s_lab.h5");
    hid_t f = open_rw("s_lab.h5");
    hid_t ds = H5Dopen2(f, "labels", H5P_DEFAULT);
    hsize_t n = 63;
    assert_true(H5Dset_extent(ds, &n) >= 0);
    H5Dclose(ds), H5Fclose(f);
    data_case("s_lab.h5", "/labels has 63 entries but /images has 64", NULL);
}

static void test_data_labels_wrong_type(void **state)
{
    (void)state;
    copy_data("s_ltype.h5");
    hid_t f = open_rw("s_ltype.h5");
    assert_true(H5Ldelete(f, "labels", H5P_DEFAULT) >= 0);
    hsize_t n = 64;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "labels", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    H5Dclose(ds), H5Sclose(space), H5Fclose(f);
    data_case("s_ltype.h5", "/labels is float32", "expected int32");
}

/* ------------------------------------------------------------------------
 * Checkpoints: copies of the trained run, one checkpoint broken, given to
 * `mimae_dist eval` (and `mimae inspect`); the copy must stay as it was. */

static void copy_run(const char *dir)
{
    sh("rm -rf %s && cp -a trained %s", dir, dir);
}

static void eval_case(const char *dir, const char *w1, const char *w2)
{
    char *before = snapshot(dir);
    expect_bad(run("mimae_dist eval %s/checkpoints/ckpt-0000000004.h5", dir), w1, w2, NULL);
    assert_unchanged(dir, before);
}

/* Flips one bit in the middle of the data of /params/<name>. */
static void flip_tensor_bit(const char *file, const char *name)
{
    char path[256], dsname[128];
    snprintf(path, sizeof path, "%s/%s", work, file);
    snprintf(dsname, sizeof dsname, "/params/%s", name);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, dsname, H5P_DEFAULT);
    assert_true(ds >= 0);
    haddr_t off = H5Dget_offset(ds);
    hsize_t bytes = H5Dget_storage_size(ds);
    H5Dclose(ds), H5Fclose(f);
    assert_true(off != HADDR_UNDEF && bytes > 8);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)(off + bytes / 2), SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, (long)(off + bytes / 2), SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

static void test_ckpt_bit_flipped(void **state)
{
    (void)state;
    copy_run("c_flip");
    flip_tensor_bit("c_flip/checkpoints/ckpt-0000000004.h5", "blocks.0.attn.qkv.weight");
    eval_case("c_flip", "ckpt-0000000004.h5", "checksum mismatch");
    expect_bad(run("mimae inspect c_flip/checkpoints/ckpt-0000000004.h5"), "ckpt-0000000004.h5",
               "checksum mismatch", NULL);
}

static void test_ckpt_truncated(void **state)
{
    (void)state;
    copy_run("c_trunc");
    sh("truncate -s 100000 c_trunc/checkpoints/ckpt-0000000004.h5");
    eval_case("c_trunc", "ckpt-0000000004.h5", "not a readable HDF5 file");
}

static void test_ckpt_missing_tensor(void **state)
{
    (void)state;
    copy_run("c_miss");
    hid_t f = open_rw("c_miss/checkpoints/ckpt-0000000004.h5");
    assert_true(H5Ldelete(f, "/adam_v/norm.bias", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    eval_case("c_miss", "ckpt-0000000004.h5", "/adam_v");
}

/* A NaN parameter under a valid checksum (as a run that saved after a
 * non-finite update would have written) used to load without a word. */
static void test_ckpt_nan_parameter(void **state)
{
    (void)state;
    copy_run("c_nan");
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/c_nan/checkpoints/ckpt-0000000004.h5", work);
    mimae_config_t cfg;
    assert_int_equal(checkpoint_read_config(path, &cfg, err, sizeof err), 0);
    mimae_model_t *m = mimae_model_create(&cfg, 1, 0, err, sizeof err);
    assert_non_null(m);
    train_state_t st;
    assert_int_equal(checkpoint_load(path, m, &st, err, sizeof err), 0);
    m->q_param_mem[3] = NAN;
    assert_int_equal(checkpoint_save(path, m, &st, err, sizeof err), 0);
    mimae_model_free(m);
    sh("touch -r trained/checkpoints/ckpt-0000000004.h5 %s", path);
    eval_case("c_nan", "ckpt-0000000004.h5: /params/q.", "not a finite number");
    expect_bad(run("mimae inspect c_nan/checkpoints/ckpt-0000000004.h5"), "not a finite number",
               NULL);
}

static void test_ckpt_invalid_config(void **state)
{
    (void)state;
    copy_run("c_cfg");
    set_int("c_cfg/checkpoints/ckpt-0000000004.h5", "config.model.patch", 5);
    eval_case("c_cfg", "ckpt-0000000004.h5: stored config is invalid", "model.patch = 5");
}

static void test_ckpt_impossible_size(void **state)
{
    (void)state;
    copy_run("c_size");
    set_int("c_size/checkpoints/ckpt-0000000004.h5", "config.model.dec_depth", 1 << 30);
    eval_case("c_size", "ckpt-0000000004.h5: stored config is invalid", "model.dec_depth");
}

static void test_ckpt_is_a_data_set(void **state)
{
    (void)state;
    copy_run("c_kind");
    sh("cp good/train.h5 c_kind/checkpoints/ckpt-0000000004.h5");
    eval_case("c_kind", "ckpt-0000000004.h5: format is 'mimae-dataset'", "not a mimae checkpoint");
}

static void test_ckpt_eval_without_descriptor(void **state)
{
    (void)state;
    copy_run("c_desc");
    sh("rm c_desc/descriptor.ini");
    eval_case("c_desc", "c_desc/descriptor.ini", "cannot read the descriptor");
}

/* Resuming with another seed: the checkpoint's data order and masks would
 * not continue. Nothing in the run directory changes. */
static void test_ckpt_resume_with_another_seed(void **state)
{
    (void)state;
    copy_run("c_seed");
    write_desc("c_seed.ini", "c_seed", NULL);
    char *before = snapshot("c_seed");
    expect_bad(run("mimae_dist c_seed.ini --set train.seed=3"), "ckpt-0000000004.h5",
               "train.seed = 2", "says 3", NULL);
    assert_unchanged("c_seed", before);
}

/* ------------------------------------------------------------------------
 * Results files: a trained run resumed (its checkpoint is good) with a bad
 * results.h5; nothing in the run directory changes. */

static void resume_case(const char *dir, const char *w1, const char *w2)
{
    char ini[128];
    snprintf(ini, sizeof ini, "%s.ini", dir);
    write_desc(ini, dir, NULL);
    char *before = snapshot(dir);
    expect_bad(run("mimae_dist %s", ini), "results.h5", w1, w2, NULL);
    assert_unchanged(dir, before);
}

static void test_results_truncated(void **state)
{
    (void)state;
    copy_run("r_trunc");
    sh("truncate -s 5000 r_trunc/results.h5 && touch -r trained/results.h5 r_trunc/results.h5");
    resume_case("r_trunc", "not a readable HDF5 file", NULL);
    expect_bad(run("mimae inspect r_trunc/results.h5"), "r_trunc/results.h5", NULL);
}

static void test_results_bit_flipped(void **state)
{
    (void)state;
    copy_run("r_flip");
    sh("printf 'X' | dd of=r_flip/results.h5 bs=1 seek=1 count=1 conv=notrunc 2>/dev/null && "
       "touch -r trained/results.h5 r_flip/results.h5");
    resume_case("r_flip", "not a readable HDF5 file", NULL);
}

static void test_results_is_a_data_set(void **state)
{
    (void)state;
    copy_run("r_kind");
    sh("cp -p good/train.h5 r_kind/results.h5");
    resume_case("r_kind", "not a mimae results file", NULL);
}

/* results.h5 of another run (another mimae.tau) put in this run's
 * directory: appending to it would mix two runs' histories. */
static void test_results_of_another_config(void **state)
{
    (void)state;
    copy_run("r_cfg");
    sh("cp -p trained_tau/results.h5 r_cfg/results.h5");
    resume_case("r_cfg", "mimae.tau is 0.1 in the results file but 0.07", "another run");
}

static void test_results_metric_wrong_type(void **state)
{
    (void)state;
    copy_run("r_type");
    hid_t f = open_rw("r_type/results.h5");
    assert_true(H5Ldelete(f, "/train/L_rec", H5P_DEFAULT) >= 0);
    hsize_t n = 4;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "/train/L_rec", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    assert_true(ds >= 0);
    H5Dclose(ds), H5Sclose(space), H5Fclose(f);
    sh("touch -r trained/results.h5 r_type/results.h5");
    resume_case("r_type", "/train/L_rec", NULL);
}

/* An integer config field stored as a real with a fraction: it used to be
 * cast to int unchecked (undefined behaviour). */
static void test_results_config_not_an_integer(void **state)
{
    (void)state;
    copy_run("r_int");
    hid_t f = open_rw("r_int/results.h5");
    assert_true(H5Adelete(f, "config.model.enc_dim") >= 0);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "config.model.enc_dim", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const double v = 1e300;
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a), H5Sclose(space), H5Fclose(f);
    sh("touch -r trained/results.h5 r_int/results.h5");
    resume_case("r_int", "config.model.enc_dim = 1e+300", "not a whole number");
    expect_bad(run("mimae inspect r_int/results.h5"), "config.model.enc_dim", NULL);
}

/* ------------------------------------------------------------------------
 * What evaluation needs, checked before training starts or anything is
 * written (issue 17, classes 3 and 4): it used to be found after training,
 * or to overflow the heap (a test set of larger images). */

/* work/<name>/{train,test}.h5: synthetic, of the given shape and classes. */
static void make_data(const char *name, int h, int w, int c, int classes)
{
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    if (access(dir, F_OK) == 0) return;
    if (synthetic_generate(dir, 64, h, w, c, classes, 3, err, sizeof err)) fail_msg("%s", err);
}

static void test_eval_test_set_of_other_image_shape(void **state)
{
    (void)state;
    make_data("big", 32, 32, 3, 4);
    char sets[256];
    snprintf(sets, sizeof sets, "--set data.test=%s/big/test.h5", work);
    DESC_CASE("v_shape", NULL, sets, "v_shape.ini:", "big/test.h5", "32x32x3", "16x16x1",
              "data.test");
}

static void test_eval_test_set_of_other_classes(void **state)
{
    (void)state;
    make_data("three", 16, 16, 1, 3);
    char sets[256];
    snprintf(sets, sizeof sets, "--set data.test=%s/three/test.h5", work);
    DESC_CASE("v_classes", NULL, sets, "three/test.h5", "3 classes", "has 4", "data.test");
}

static void test_eval_label_fraction_too_small(void **state)
{
    (void)state;
    char sets[256];
    snprintf(sets, sizeof sets, "--set data.test=%s/good/test.h5 --set eval.finetune=1 "
             "--set eval.label_fraction=0.05", work);
    DESC_CASE("v_frac", NULL, sets, "v_frac.ini:", "eval.label_fraction = 0.05", "3 labelled");
}

static void test_eval_mi_images_too_few_for_ranks(void **state)
{
    (void)state;
    write_desc("v_mi.ini", "out_v_mi", NULL);
    expect_bad(run_in(2, "mimae_dist v_mi.ini --set eval.mi_images=3"), "v_mi.ini:",
               "eval.mi_images = 3", "2 ranks", NULL);
    assert_false(exists("out_v_mi"));
}

/* `mimae_dist eval` of another run's checkpoint (another mimae.tau) put in
 * this run's directory: its metrics would land in this run's results.h5. */
static void test_eval_checkpoint_of_another_run(void **state)
{
    (void)state;
    copy_run("e_other");
    sh("cp -p trained_tau/checkpoints/ckpt-0000000004.h5 e_other/checkpoints/");
    eval_case("e_other", "e_other/results.h5: mimae.tau is 0.07 in the results file but 0.1 in",
              "ckpt-0000000004.h5");
}

static void test_eval_command_test_set_of_other_image_shape(void **state)
{
    (void)state;
    make_data("big", 32, 32, 3, 4);
    copy_run("e_shape");
    char *before = snapshot("e_shape");
    expect_bad(run("mimae_dist eval e_shape/checkpoints/ckpt-0000000004.h5 --set "
                   "data.test=%s/big/test.h5", work), "big/test.h5", "32x32x3", "data.test",
               NULL);
    assert_unchanged("e_shape", before);
}

/* ------------------------------------------------------------------------
 * Issue 17, classes 10 and 11: reals that underflow, sweeps that would not
 * mean what they say (refused before anything is written), and two inputs
 * that are not bad (an explicit warmup_iters alone; a resume with another
 * data set, which is recorded). */

static void test_desc_tau_underflow(void **state)
{
    (void)state; /* trained into a non-finite stop (exit 4) with advice to lower the lr */
    DESC_CASE("d_tau", "[mimae]\ntau = 1e-40\n", "", "d_tau.ini:21:", "mimae.tau = '1e-40'",
              "must be >=");
}

static void test_desc_eps_underflow(void **state)
{
    (void)state; /* was reported as "optim.eps = '0'" */
    DESC_CASE("d_eps", "", "--set optim.eps=1e-46", "d_eps.ini", "optim.eps = '1e-46'",
              "must be >= 1e-15");
}

static void test_desc_weight_denormal(void **state)
{
    (void)state;
    DESC_CASE("d_wmax", "[mimae]\nw_max = 1e-42\n", "", "d_wmax.ini:21:", "mimae.w_max = '1e-42'",
              "too small to be held as a float");
}

static void test_sweep_seeds_and_train_seed(void **state)
{
    (void)state; /* the plan labelled tasks with seeds they did not run */
    DESC_CASE("d_seeds", "[sweep]\nseeds = 0, 1\ntrain.seed = 2, 3\n", "--task 0",
              "d_seeds.ini:22:", "train.seed", "seeds");
}

static void test_sweep_run_name(void **state)
{
    (void)state; /* accepted, then every task's own name replaced it */
    DESC_CASE("d_sname", "[sweep]\nrun.name = a, b\n", "--task 1", "d_sname.ini:21:",
              "run.name", "cannot be swept");
}

static void test_sweep_set_of_swept_key(void **state)
{
    (void)state; /* the task's value replaced the --set */
    DESC_CASE("d_sset", "[sweep]\nmimae.tau = 0.1, 0.2\n", "--task 0 --set mimae.tau=0.3",
              "d_sset.ini", "--set mimae.tau=0.3", "swept");
}

static void test_sweep_list_starting_with_comment(void **state)
{
    (void)state; /* loaded as ';;', written back as a comment: an empty list */
    DESC_CASE("d_scomm", "[sweep]\nseeds =;;\n", "--task 0", "d_scomm.ini:21:", "seeds = ';;'",
              "comment");
}

static void test_desc_warmup_iters_alone_runs(void **state)
{
    (void)state; /* was refused: "optim.warmup_iters = 2, total_iters = 1" */
    write_desc("warm_iters.ini", "out_warm_iters", "[optim]\nwarmup_iters = 2\n");
    assert_int_equal(run("mimae_dist warm_iters.ini --set train.max_steps=1"), 0);
    assert_true(exists("out_warm_iters/results.h5"));
    sh("grep -q '^warmup_iters = 2$' out_warm_iters/descriptor.ini");
    sh("grep -q '^total_iters = 8$' out_warm_iters/descriptor.ini"); /* 64 images / 8 */
}

/* A resume with another data.train used to leave no trace: now one line at
 * the start and a run_history entry per start in the results file. */
static void test_resume_with_other_data_is_recorded(void **state)
{
    (void)state;
    char err[512], data[128];
    snprintf(data, sizeof data, "%s/other", work);
    if (synthetic_generate(data, 64, 16, 16, 1, 4, 7, err, sizeof err)) fail_msg("%s", err);
    copy_run("h_data");
    write_desc("h_data.ini", "h_data", NULL);
    assert_int_equal(run("mimae_dist h_data.ini --set data.train=%s/other/train.h5 "
                         "--set train.max_steps=6", work), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    char *text = read_text(path);
    assert_non_null(text);
    printf("  %s", text);
    const char *line = strstr(text, "resuming at step 4 with other data");
    assert_non_null(line);
    assert_non_null(strstr(line, "other/train.h5 (was "));
    assert_non_null(strstr(line, "good/train.h5"));
    assert_non_null(strstr(line, "run_history.0001"));
    free(text);
    snprintf(path, sizeof path, "%s/h_data/results.h5", work);
    results_t *res = results_load(path, err, sizeof err);
    if (!res) fail_msg("%s", err);
    const char *first = results_get_attr(res, "run_history.0000");
    const char *second = results_get_attr(res, "run_history.0001");
    assert_non_null(first);
    assert_non_null(second);
    printf("  run_history.0000: %s\n  run_history.0001: %s\n", first, second);
    assert_non_null(strstr(first, "step=0\tdata.train="));
    assert_non_null(strstr(first, "good/train.h5\tdata.train_images=64\tdata.train_bytes="));
    assert_non_null(strstr(second, "step=4\tdata.train="));
    assert_non_null(strstr(second, "other/train.h5\tdata.train_images=64"));
    assert_null(results_get_attr(res, "run_history.0002"));
    results_free(res);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    unsetenv("MIMAE_FAULT");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desc_wrong_type_integer),
        cmocka_unit_test(test_desc_wrong_type_real),
        cmocka_unit_test(test_desc_out_of_range),
        cmocka_unit_test(test_desc_negative_seed),
        cmocka_unit_test(test_desc_unknown_key),
        cmocka_unit_test(test_desc_unknown_key_typo),
        cmocka_unit_test(test_desc_unknown_section),
        cmocka_unit_test(test_desc_missing_data_section),
        cmocka_unit_test(test_desc_masks_exceed_patches),
        cmocka_unit_test(test_desc_nan),
        cmocka_unit_test(test_desc_inf),
        cmocka_unit_test(test_desc_overflowing_real),
        cmocka_unit_test(test_desc_overflowing_integer),
        cmocka_unit_test(test_desc_duplicate_key),
        cmocka_unit_test(test_desc_bad_enum),
        cmocka_unit_test(test_desc_bad_switch),
        cmocka_unit_test(test_desc_syntax_error),
        cmocka_unit_test(test_desc_nul_byte),
        cmocka_unit_test(test_desc_line_too_long),
        cmocka_unit_test(test_desc_missing_file),
        cmocka_unit_test(test_desc_micro_batch_not_divisor),
        cmocka_unit_test(test_desc_warmup_longer_than_training),
        cmocka_unit_test(test_desc_run_name_with_slash),
        cmocka_unit_test(test_desc_model_too_deep),
        cmocka_unit_test(test_desc_too_many_patches),
        cmocka_unit_test(test_desc_model_too_large),
        cmocka_unit_test(test_set_unknown_key),
        cmocka_unit_test(test_set_malformed),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_sweep_without_task),
        cmocka_unit_test(test_sweep_task_out_of_range),
        cmocka_unit_test(test_sweep_bad_value),
        cmocka_unit_test(test_task_without_sweep),
        cmocka_unit_test(test_micro_batches_not_divisible_by_ranks),
        cmocka_unit_test(test_fast_reduction_micro_batch),
        cmocka_unit_test(test_data_nan_mean),
        cmocka_unit_test(test_data_inf_std),
        cmocka_unit_test(test_data_tiny_std),
        cmocka_unit_test(test_data_mean_out_of_range),
        cmocka_unit_test(test_data_stats_wrong_length),
        cmocka_unit_test(test_data_truncated),
        cmocka_unit_test(test_data_bit_flipped),
        cmocka_unit_test(test_data_empty_file),
        cmocka_unit_test(test_data_is_a_directory),
        cmocka_unit_test(test_data_is_a_checkpoint),
        cmocka_unit_test(test_data_newer_format),
        cmocka_unit_test(test_data_no_classes),
        cmocka_unit_test(test_data_labels_shorter_than_images),
        cmocka_unit_test(test_data_labels_wrong_type),
        cmocka_unit_test(test_ckpt_bit_flipped),
        cmocka_unit_test(test_ckpt_truncated),
        cmocka_unit_test(test_ckpt_missing_tensor),
        cmocka_unit_test(test_ckpt_nan_parameter),
        cmocka_unit_test(test_ckpt_invalid_config),
        cmocka_unit_test(test_ckpt_impossible_size),
        cmocka_unit_test(test_ckpt_is_a_data_set),
        cmocka_unit_test(test_ckpt_eval_without_descriptor),
        cmocka_unit_test(test_ckpt_resume_with_another_seed),
        cmocka_unit_test(test_results_truncated),
        cmocka_unit_test(test_results_bit_flipped),
        cmocka_unit_test(test_results_is_a_data_set),
        cmocka_unit_test(test_results_of_another_config),
        cmocka_unit_test(test_results_metric_wrong_type),
        cmocka_unit_test(test_results_config_not_an_integer),
        cmocka_unit_test(test_eval_test_set_of_other_image_shape),
        cmocka_unit_test(test_eval_test_set_of_other_classes),
        cmocka_unit_test(test_eval_label_fraction_too_small),
        cmocka_unit_test(test_eval_mi_images_too_few_for_ranks),
        cmocka_unit_test(test_eval_checkpoint_of_another_run),
        cmocka_unit_test(test_eval_command_test_set_of_other_image_shape),
        cmocka_unit_test(test_desc_tau_underflow),
        cmocka_unit_test(test_desc_eps_underflow),
        cmocka_unit_test(test_desc_weight_denormal),
        cmocka_unit_test(test_sweep_seeds_and_train_seed),
        cmocka_unit_test(test_sweep_run_name),
        cmocka_unit_test(test_sweep_set_of_swept_key),
        cmocka_unit_test(test_sweep_list_starting_with_comment),
        cmocka_unit_test(test_desc_warmup_iters_alone_runs),
        cmocka_unit_test(test_resume_with_other_data_is_recorded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
