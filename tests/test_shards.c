/* Sharded data sets (io/dataset.h, io/data_import.h, `mimae data ... --shards
 * K`): a sharded import reads exactly as the single file of the same data,
 * on 1 and on 3 MPI ranks; every shard is checked at open and while read;
 * bad shards and indexes are refused with one line naming the file; a
 * failed, interrupted or refused import leaves nothing, and keeps the data
 * set it would have replaced. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hdf5.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/data/sampler.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/results.h"
#include "io/synthetic.h"
#include "tests/fs_util.h"
#include "tests/image_util.h"
#include "tests/mpi_run.h"

#define N 300    /* training images of the synthetic sets */
#define SIDE 16
#define CLASSES 4
#define SEED 3
#define K 5      /* shards */

static char build_dir[512], work[256];
static char err[2048];

/* ------------------------------------------------------------ helpers */

static void path_in(char *buf, size_t len, const char *rel)
{
    if ((size_t)snprintf(buf, len, "%s/%s", work, rel) >= len) fail_msg("path too long: %s", rel);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (run_shell("cd %s && %s", work, cmd) != 0) fail_msg("failed: %s", cmd);
}

/* `BUILD/<args>` in the work directory (under mpirun -q -n R when ranks >
 * 0), output in work/stdout.txt and work/stderr.txt; the exit status. */
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

/* A synthetic data set in work/rel (shards 0: single files). */
static void synthetic(const char *rel, int side, int classes, int shards)
{
    char out[512];
    path_in(out, sizeof out, rel);
    const import_opts_t opts = {shards, NULL};
    if (synthetic_generate_opts(out, N, side, side, 1, classes, SEED, &opts, err, sizeof err))
        fail_msg("%s", err);
}

static dataset_t *open_ok(const char *rel)
{
    char path[512];
    path_in(path, sizeof path, rel);
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    return d;
}

/* dataset_open of work/rel fails with a message holding each word. */
#define expect_open_fails(rel, ...)                                                        \
    do {                                                                                   \
        open_fails(rel);                                                                   \
        assert_has_words(err, __VA_ARGS__);                                                \
    } while (0)

static void open_fails(const char *rel)
{
    char path[512];
    path_in(path, sizeof path, rel);
    err[0] = '\0';
    dataset_t *d = dataset_open(path, err, sizeof err);
    printf("  %s\n", err);
    if (d) {
        dataset_close(d);
        fail_msg("%s opened", rel);
    }
}

/* The name of shard i of work/<dir>/<split>.h5 (as its index lists it). */
static void shard_name(const char *dir, const char *split, int i, char *out, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.h5", work, dir, split);
    char **names = NULL;
    const int k = dataset_index_shards(path, &names, NULL);
    if (i >= k) fail_msg("%s lists %d shards, not %d", path, k, i + 1);
    snprintf(out, len, "%s/%s", dir, names[i]);
    free(names);
}

/* Everything a reader sees of two data sets is the same: description,
 * statistics (bit for bit), labels and every image, read in a scattered
 * order that crosses shards. */
static void assert_same_data(const char *rel_a, const char *rel_b)
{
    dataset_t *a = open_ok(rel_a), *b = open_ok(rel_b);
    const dataset_info_t *x = dataset_get_info(a), *y = dataset_get_info(b);
    assert_string_equal(x->name, y->name);
    assert_string_equal(x->split, y->split);
    assert_string_equal(x->source, y->source);
    assert_int_equal(x->n, y->n);
    assert_int_equal(x->h, y->h);
    assert_int_equal(x->w, y->w);
    assert_int_equal(x->c, y->c);
    assert_int_equal(x->num_classes, y->num_classes);
    assert_memory_equal(x->class_names, y->class_names,
                        (size_t)x->num_classes * sizeof *x->class_names);
    assert_memory_equal(x->mean, y->mean, (size_t)x->c * sizeof x->mean[0]);
    assert_memory_equal(x->std, y->std, (size_t)x->c * sizeof x->std[0]);
    assert_memory_equal(dataset_labels(a), dataset_labels(b), (size_t)x->n * sizeof(int32_t));
    const size_t bytes = (size_t)x->h * x->w * x->c;
    enum { BATCH = 37 };
    int64_t idx[BATCH];
    uint8_t *pa = malloc(BATCH * bytes), *pb = malloc(BATCH * bytes);
    int32_t la[BATCH], lb[BATCH];
    assert_non_null(pa);
    assert_non_null(pb);
    for (long start = 0; start < x->n; start += BATCH) {
        int count = 0;
        /* runs of two consecutive images, then jumps: shard ends inside runs */
        for (long i = start; i < x->n && count < BATCH; i++, count++)
            idx[count] = (i * 7 + (i & 1 ? 0 : 3)) % x->n;
        if (dataset_read(a, idx, count, pa, la, err, sizeof err) ||
            dataset_read(b, idx, count, pb, lb, err, sizeof err))
            fail_msg("%s", err);
        assert_memory_equal(pa, pb, (size_t)count * bytes);
        assert_memory_equal(la, lb, (size_t)count * sizeof la[0]);
    }
    free(pa);
    free(pb);
    dataset_close(a);
    dataset_close(b);
}

/* A class-folder tree of JPEG and PNG images of varied sizes under
 * work/rel: classes a, b, c with `per_class` training images each and 7
 * validation images each. */
static void image_tree(const char *rel, int per_class)
{
    static const char *const classes[3] = {"a", "b", "c"};
    uint8_t px[40 * 40 * 3];
    for (int split = 0; split < 2; split++)
        for (int k = 0; k < 3; k++) {
            sh("mkdir -p %s/%s/%s", rel, split ? "val" : "train", classes[k]);
            const int count = split ? 7 : per_class;
            for (int i = 0; i < count; i++) {
                const int w = 12 + (i * 5 + k) % 28, h = 12 + (i * 3 + 2 * k) % 28;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        for (int ch = 0; ch < 3; ch++)
                            px[(y * w + x) * 3 + ch] =
                                (uint8_t)(x * (3 + k) + y * (5 + ch) + i * 11 + split * 50);
                char path[600];
                snprintf(path, sizeof path, "%s/%s/%s/%s/%03d.%s", work, rel,
                         split ? "val" : "train", classes[k], i, i % 3 ? "jpg" : "png");
                if (i % 3) write_jpeg(path, w, h, 3, px);
                else write_png(path, w, h, PNG_FORMAT_RGB, px);
            }
        }
}

/* Nothing of a data set under work/rel: no index, shard or temporary. */
static void assert_no_data(const char *rel)
{
    char dir[512];
    path_in(dir, sizeof dir, rel);
    if (count_entries(dir) != 0) {
        run_shell("ls -la %s", dir);
        fail_msg("%s: %d entries left, expected none", rel, count_entries(dir));
    }
}

/* Sets attribute `name` of an HDF5 file to a string. */
static void set_string(const char *rel, const char *name, const char *value)
{
    char path[512];
    path_in(path, sizeof path, rel);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Adelete(f, name) >= 0);
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    H5Tset_size(type, strlen(value) + 1);
    hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, type, value) >= 0);
    H5Aclose(a), H5Sclose(space), H5Tclose(type), H5Fclose(f);
}

/* Reads the string attribute `name` of an HDF5 file into out. */
static void get_string(const char *rel, const char *name, char *out, size_t len)
{
    char path[512];
    path_in(path, sizeof path, rel);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), type = H5Aget_type(a);
    char buf[256] = "";
    assert_true(H5Tget_size(type) < sizeof buf && H5Aread(a, type, buf) >= 0);
    snprintf(out, len, "%s", buf);
    H5Tclose(type), H5Aclose(a), H5Fclose(f);
}

/* Entry i of the shard list of the index work/rel becomes name (a
 * fixed-length string: name must fit). */
static void set_shard_name(const char *rel, int i, const char *name)
{
    char path[512];
    path_in(path, sizeof path, rel);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, "shards", H5P_DEFAULT), type = H5Aget_type(a), space = H5Aget_space(a);
    const size_t len = H5Tget_size(type);
    const hssize_t k = H5Sget_simple_extent_npoints(space);
    assert_true(i < k && strlen(name) < len);
    char *names = calloc((size_t)k, len);
    assert_true(H5Aread(a, type, names) >= 0);
    snprintf(names + (size_t)i * len, len, "%s", name);
    assert_true(H5Awrite(a, type, names) >= 0);
    free(names);
    H5Sclose(space), H5Tclose(type), H5Aclose(a), H5Fclose(f);
}

/* work/<name>: a descriptor training test-small on `channels` channels of
 * work/<data> (a training set's index) into work/<out>, one epoch of batches
 * of 8, then `extra`: more [data] lines first, then any sections (a section
 * given twice adds to it; a key given twice is refused). */
static void write_run(const char *name, int channels, const char *data, const char *out,
                      const char *extra)
{
    char desc[512];
    path_in(desc, sizeof desc, name);
    FILE *f = fopen(desc, "w");
    assert_non_null(f);
    fprintf(f, "[model]\npreset = test-small\nchannels = %d\n"
               "[train]\nglobal_batch = 8\nmicro_batch = 4\nepochs = 1\nseed = 1\n"
               "[run]\nout_dir = %s/%s\nrecon_samples = 2\nlog_every = 100\n"
               "[eval]\nmi_images = 8\n[data]\ntrain = %s/%s\n%s",
            channels, work, out, work, data, extra ? extra : "");
    assert_int_equal(fclose(f), 0);
}

/* mimae_dist on a short descriptor training on work/<data>: exit 2 and one
 * line on stderr holding each word (NULL-terminated), run directory not
 * made. */
#define expect_training_refused(data, ...)                                                 \
    do {                                                                                   \
        assert_bad_input(work, run_refused(data), __VA_ARGS__);                            \
        char made_[512];                                                                   \
        path_in(made_, sizeof made_, "refused_run");                                       \
        assert_int_equal(access(made_, F_OK), -1);                                         \
    } while (0)

static int run_refused(const char *data)
{
    write_run("refused.ini", 1, data, "refused_run", "[train]\nmax_steps = 2\n");
    return run_in(0, "mimae_dist refused.ini");
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-shards");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(work);
}

/* ------------------------------------------------------------ reading */

static void test_sharded_reads_as_the_single_file(void **state)
{
    (void)state;
    synthetic("one", SIDE, CLASSES, 0);
    synthetic("sharded", SIDE, CLASSES, K);
    assert_same_data("one/train.h5", "sharded/train.h5");
    assert_same_data("one/test.h5", "sharded/test.h5");
    dataset_t *d = open_ok("sharded/train.h5");
    assert_int_equal(dataset_get_info(d)->shards, K);
    dataset_close(d);
    /* the directory moved whole reads the same (shards named relative) */
    sh("mv sharded moved");
    assert_same_data("one/train.h5", "moved/train.h5");
}

/* With few descriptors a process keeps a few shards open and reopens the
 * others, each still the file checked at open. */
static void test_sharded_reads_with_few_open_files(void **state)
{
    (void)state;
    synthetic("one", SIDE, CLASSES, 0);
    synthetic("many", SIDE, CLASSES, 12);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 40; /* a quarter: 10 shards open at most */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_same_data("one/train.h5", "many/train.h5");
    /* a closed shard replaced meanwhile is not read */
    dataset_t *d = open_ok("many/train.h5");
    char s11[300];
    shard_name("many", "train", 11, s11, sizeof s11);
    sh("cp %s copy.h5 && mv copy.h5 %s", s11, s11);
    uint8_t img[SIDE * SIDE];
    const int64_t last = N - 1, first = 0;
    assert_int_equal(dataset_read(d, &first, 1, img, NULL, err, sizeof err), 0);
    assert_int_equal(dataset_read(d, &last, 1, img, NULL, err, sizeof err), IO_CHANGED);
    printf("  %s\n", err);
    assert_non_null(strstr(err, s11));
    dataset_close(d);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

/* Every shard read, and the index, are checked before and after each read:
 * a shard grown, or cut shorter (HDF5 alone would read its missing images
 * as zeros), fails the read that uses it, not the others. */
static void test_changed_shard_or_index_is_detected(void **state)
{
    (void)state;
    const char *const changes[2] = {"printf x >> %s", "truncate -s 10000 %s"};
    uint8_t img[2 * SIDE * SIDE];
    const int64_t in0[2] = {0, 1}, in2[2] = {2 * N / K, 2 * N / K + 1};
    for (int c = 0; c < 2; c++) {
        const char *dir = c ? "cut" : "grown";
        char index[64], s2[300], cmd[400];
        synthetic(dir, SIDE, CLASSES, K);
        shard_name(dir, "train", 2, s2, sizeof s2);
        snprintf(index, sizeof index, "%s/train.h5", dir);
        dataset_t *d = open_ok(index);
        assert_int_equal(dataset_read(d, in2, 2, img, NULL, err, sizeof err), 0);
        snprintf(cmd, sizeof cmd, changes[c], s2);
        sh("%s", cmd);
        assert_int_equal(dataset_read(d, in0, 2, img, NULL, err, sizeof err), 0); /* not read */
        assert_int_equal(dataset_read(d, in2, 2, img, NULL, err, sizeof err), IO_CHANGED);
        printf("  %s\n", err);
        assert_has_words(err, s2, "changed while the run read it", NULL);
        dataset_close(d);
    }

    dataset_t *d;
    synthetic("again", SIDE, CLASSES, K);
    d = open_ok("again/train.h5");
    sh("touch -d '2001-01-01' again/train.h5"); /* the index rewritten in place */
    assert_int_equal(dataset_read(d, in0, 2, img, NULL, err, sizeof err), IO_CHANGED);
    assert_non_null(strstr(err, "again/train.h5"));
    dataset_close(d);
}

/* Training and evaluation read a sharded set of images stored larger than
 * the model's (20x20 for 16x16): crops for training, the centre for
 * evaluation; the same run on the single file gives the same results. */
static void test_training_on_sharded_larger_images(void **state)
{
    (void)state;
    char one[512], sharded[512];
    path_in(one, sizeof one, "one");
    path_in(sharded, sizeof sharded, "sharded");
    const import_opts_t opts = {K, NULL};
    if (synthetic_generate_opts(one, 96, 20, 20, 1, CLASSES, SEED, NULL, err, sizeof err) ||
        synthetic_generate_opts(sharded, 96, 20, 20, 1, CLASSES, SEED, &opts, err, sizeof err))
        fail_msg("%s", err);
    for (int s = 0; s < 2; s++) {
        const char *data = s ? "sharded" : "one";
        char index[64], test[600], out[64], desc[64];
        snprintf(index, sizeof index, "%s/train.h5", data);
        snprintf(test, sizeof test, "test = %s/%s/test.h5\n[train]\nmax_steps = 3\n[eval]\n"
                 "knn_k = 3\n", work, data);
        snprintf(out, sizeof out, "run_%s", data);
        snprintf(desc, sizeof desc, "%s.ini", data);
        write_run(desc, 1, index, out, test);
        if (run_in(2, "mimae_dist %s", desc) != 0) {
            run_shell("tail -5 %s/stderr.txt", work);
            fail_msg("training on %s failed", data);
        }
    }
    /* the same losses and evaluations, bit for bit */
    results_t *res[2];
    for (int s = 0; s < 2; s++) {
        char path[512];
        path_in(path, sizeof path, s ? "run_sharded/results.h5" : "run_one/results.h5");
        if (!(res[s] = results_load(path, err, sizeof err))) fail_msg("%s", err);
    }
    assert_int_equal(results_step_count(res[0]), 3);
    assert_int_equal(results_step_count(res[1]), 3);
    for (long i = 0; i < 3; i++) {
        assert_true(results_steps(res[0])[i].total == results_steps(res[1])[i].total);
        assert_true(results_steps(res[0])[i].rec == results_steps(res[1])[i].rec);
    }
    double a = -1, b = -2;
    assert_int_equal(results_get_eval(res[0], "knn_top1", &a), 0);
    assert_int_equal(results_get_eval(res[1], "knn_top1", &b), 0);
    assert_true(a == b);
    results_free(res[0]);
    results_free(res[1]);
}

/* ------------------------------------------------------------ bad shards */

static void test_missing_or_truncated_shard_is_refused(void **state)
{
    (void)state;
    synthetic("gone", SIDE, CLASSES, K);
    char s3[300];
    shard_name("gone", "train", 3, s3, sizeof s3);
    sh("rm %s", s3);
    expect_open_fails("gone/train.h5", s3, "is not there", "import it again", NULL);
    expect_training_refused("gone/train.h5", s3, "is not there", NULL);

    synthetic("cut", SIDE, CLASSES, K);
    char s1[300];
    shard_name("cut", "train", 1, s1, sizeof s1);
    sh("truncate -s 20000 %s", s1);
    expect_open_fails("cut/train.h5", s1, "truncated", NULL);
    expect_training_refused("cut/train.h5", s1, "truncated", NULL);
}

static void test_index_naming_absent_shards_is_refused(void **state)
{
    (void)state;
    synthetic("named", SIDE, CLASSES, K);
    /* the shard list rewritten: entry 1 names a file that is not there */
    set_shard_name("named/train.h5", 1, "train-not-there.h5");
    expect_open_fails("named/train.h5", "train-not-there.h5", "is not there", NULL);
    expect_training_refused("named/train.h5", "train-not-there.h5", "is not there", NULL);
    /* one outside the index's directory */
    set_shard_name("named/train.h5", 1, "../train.h5");
    expect_open_fails("named/train.h5", "../train.h5", "not a file in the index's directory",
                      NULL);
}

/* The index's directory holds its shards as regular files: a shard that is
 * a symbolic link (which may lead anywhere) or a FIFO (which would block
 * HDF5's open) is refused with one line, by the reader and by staging, and
 * nothing is copied. */
static void test_shard_that_is_a_link_or_fifo_is_refused(void **state)
{
    (void)state;
    synthetic("ln", SIDE, CLASSES, 4);
    char s2[300];
    shard_name("ln", "train", 2, s2, sizeof s2);
    sh("mkdir elsewhere && mv %s elsewhere/ && ln -s ../elsewhere/%s %s", s2,
       strrchr(s2, '/') + 1, s2);
    expect_open_fails("ln/train.h5", s2, "symbolic link", "cp -L", NULL);
    expect_training_refused("ln/train.h5", s2, "symbolic link", NULL);
    write_run("st.ini", 1, "ln/train.h5", "run_st", "sampling = shard-local\nstage_dir = stage\n");
    assert_bad_input(work, run_in(2, "mimae_dist st.ini"), s2, "symbolic link", NULL);
    char path[512];
    path_in(path, sizeof path, "stage");
    assert_true(access(path, F_OK) != 0 || count_entries(path) == 0);

    synthetic("fifo", SIDE, CLASSES, 4);
    char s3[300];
    shard_name("fifo", "train", 3, s3, sizeof s3);
    sh("rm %s && mkfifo %s", s3, s3);
    expect_open_fails("fifo/train.h5", s3, "FIFO", NULL);
    expect_training_refused("fifo/train.h5", s3, "FIFO", NULL);
    write_run("sf.ini", 1, "fifo/train.h5", "run_sf", "sampling = shard-local\nstage_dir = stage\n");
    assert_bad_input(work, run_in(2, "mimae_dist sf.ini"), s3, "FIFO", NULL);
    assert_true(access(path, F_OK) != 0 || count_entries(path) == 0);
}

/* An index whose shard list or import id points outside its directory:
 * staging (which copies what the index names, to a directory the import id
 * names) refuses it before it reads or writes anything. */
static void test_staging_stays_inside_the_data_and_stage_directories(void **state)
{
    (void)state;
    synthetic("esc", SIDE, CLASSES, 2);
    sh("mkdir -p outside && printf secret > outside/train-x.h5");
    set_shard_name("esc/train.h5", 0, "../outside/train-x.h5"); /* shard 0: rank 0's */
    char path[512];
    write_run("e1.ini", 1, "esc/train.h5", "run_e1", "sampling = shard-local\nstage_dir = stage\n");
    assert_bad_input(work, run_in(2, "mimae_dist e1.ini"), "../outside/train-x.h5",
                     "not a file in the index's directory", NULL);
    char stage[512];
    path_in(stage, sizeof stage, "stage");
    assert_true(access(stage, F_OK) != 0 || count_entries(stage) == 0);

    /* an import id that climbs out of the stage directory (16 characters:
     * stage/../escaped-here. is work/escaped-here.) */
    synthetic("id", SIDE, CLASSES, 2);
    set_string("id/train.h5", "import_id", "../escaped-here.");
    write_run("e2.ini", 1, "id/train.h5", "run_e2", "sampling = shard-local\nstage_dir = stage\n");
    assert_bad_input(work, run_in(2, "mimae_dist e2.ini"), "id/train.h5", "import_id",
                     "hex digits", NULL);
    assert_true(access(stage, F_OK) != 0 || count_entries(stage) == 0);
    path_in(path, sizeof path, "escaped-here.");
    assert_int_equal(access(path, F_OK), -1);
}

/* A shard cut shorter while a run reads it: exit 1, one line naming the
 * shard (test_changed_shard_or_index_is_detected shows the reader's part). */
static void test_shard_cut_during_a_run_stops_it(void **state)
{
    (void)state;
    char s4[300];
    /* slow steps, so that the shard is cut while it trains */
    synthetic("run", SIDE, CLASSES, K);
    shard_name("run", "train", 4, s4, sizeof s4);
    write_run("cut.ini", 1, "run/train.h5", "run_cut", NULL);
    char prog[600], desc[512], log[512], written[512];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    path_in(desc, sizeof desc, "cut.ini");
    path_in(log, sizeof log, "cut.log");
    path_in(written, sizeof written, "run_cut/descriptor.ini"); /* once the run has started */
    const char *argv[] = {"mpirun", "-q", "-n", "1", prog, desc, NULL};
    const char *env[] = {"MIMAE_FAULT=slow-steps=300", NULL}; /* 37 steps: 11 s */
    const pid_t pid = run_start(argv, log, env);
    assert_true(pid > 0);
    for (int i = 0; i < 30000 && access(written, F_OK) != 0; i++) sleep_ms(2);
    sleep_ms(1500); /* a few steps */
    sh("truncate -s 10000 %s", s4);
    assert_one_line(log, run_wait(pid, 120), 1, s4, "changed while the run read it", NULL);
}

/* A shard of another import in place of one of ours: refused, even with
 * the import id made to match, when its image size or classes differ. */
static void test_shards_of_other_imports_are_refused(void **state)
{
    (void)state;
    synthetic("ours", SIDE, CLASSES, K);
    synthetic("small", 8, CLASSES, K);
    synthetic("fewer", SIDE, 3, K);
    char ours[300], small[300], fewer[300], id[64];
    shard_name("ours", "train", 2, ours, sizeof ours);
    shard_name("small", "train", 2, small, sizeof small);
    shard_name("fewer", "train", 2, fewer, sizeof fewer);
    get_string("ours/train.h5", "import_id", id, sizeof id);

    sh("cp %s %s", small, ours);
    expect_open_fails("ours/train.h5", ours, "different imports", NULL);
    set_string(ours, "import_id", id);
    expect_open_fails("ours/train.h5", ours, "different image sizes", "8x8x1", NULL);
    expect_training_refused("ours/train.h5", ours, "different image sizes", NULL);

    sh("cp %s %s", fewer, ours);
    set_string(ours, "import_id", id);
    expect_open_fails("ours/train.h5", ours, "other classes", NULL);
    expect_training_refused("ours/train.h5", ours, "other classes", NULL);

    /* a shard given where the data set is expected */
    expect_open_fails(ours, "one shard of a sharded data set", "give its index", NULL);
}

/* ------------------------------------------------------------ importing */

/* The same folder imported as single files, as shards by one process and as
 * shards by 3 MPI ranks: the same images, labels and attributes. */
static void test_import_on_1_and_3_ranks_is_identical(void **state)
{
    (void)state;
    image_tree("tree", 40);
    assert_int_equal(run_in(0, "mimae data folder tree one --size 12"), 0);
    assert_int_equal(run_in(0, "mimae data folder tree k1 --size 12 --shards 4"), 0);
    assert_int_equal(run_in(3, "mimae data folder tree k3 --size 12 --shards 4"), 0);
    char *out = NULL, path[512];
    path_in(path, sizeof path, "stdout.txt");
    out = read_text(path);
    printf("%s", out ? out : "");
    /* progress lines of rank 0 only, and the stored resolution said */
    assert_non_null(out && strstr(out, "import train: 120 images"));
    assert_non_null(strstr(out, "training crops at random"));
    free(out);
    for (int s = 0; s < 2; s++) {
        const char *split = s ? "test" : "train";
        char a[64], b[64], c[64];
        snprintf(a, sizeof a, "one/%s.h5", split);
        snprintf(b, sizeof b, "k1/%s.h5", split);
        snprintf(c, sizeof c, "k3/%s.h5", split);
        assert_same_data(a, b);
        assert_same_data(b, c);
    }
    /* 4 shards and an index per split, nothing else */
    path_in(path, sizeof path, "k3");
    assert_int_equal(count_entries(path), 10);
    assert_false(has_temporary(path));
}

/* A bad image in the last shard, found by rank 2 of 3 after the others wrote
 * theirs: one line naming it, exit 2, and nothing left; the data set the
 * import would have replaced stays as it was. */
static void test_failed_parallel_import_leaves_nothing(void **state)
{
    (void)state;
    image_tree("tree", 20);
    sh("printf 'not a jpeg' > tree/train/c/019.jpg");
    assert_int_equal(run_in(3, "mimae data folder tree fresh --size 12 --shards 3"), 2);
    assert_bad_input(work, 2, "tree/train/c/019.jpg", "convert or remove it", NULL);
    assert_no_data("fresh");

    /* over an earlier import of the good tree */
    sh("rm -r tree && mkdir kept");
    image_tree("tree", 20);
    assert_int_equal(run_in(3, "mimae data folder tree kept --size 12 --shards 3"), 0);
    assert_int_equal(run_in(0, "mimae data folder tree copy --size 12 --shards 3"), 0);
    sh("printf 'not a jpeg' > tree/train/c/019.jpg");
    assert_int_equal(run_in(3, "mimae data folder tree kept --size 12 --shards 3"), 2);
    char path[512];
    path_in(path, sizeof path, "kept");
    assert_int_equal(count_entries(path), 8);
    assert_same_data("copy/train.h5", "kept/train.h5");
    assert_same_data("copy/test.h5", "kept/test.h5");
}

/* A finished import replaces an earlier one: only the new shards are left. */
static void test_new_import_removes_the_old_shards(void **state)
{
    (void)state;
    synthetic("over", SIDE, CLASSES, K);
    synthetic("over", SIDE, CLASSES, 3);
    char path[512];
    path_in(path, sizeof path, "over");
    assert_int_equal(count_entries(path), 2 + 2 * 3);
    synthetic("over", SIDE, CLASSES, 0);
    assert_int_equal(count_entries(path), 2);
    synthetic("one", SIDE, CLASSES, 0);
    assert_same_data("one/train.h5", "over/train.h5");
}

/* SIGINT or SIGTERM during an import: exit 1, one line, nothing left. */
static void test_interrupted_import_leaves_nothing(void **state)
{
    (void)state;
    char prog[600], out[512], log[512];
    snprintf(prog, sizeof prog, "%s/mimae", build_dir);
    path_in(out, sizeof out, "big");
    path_in(log, sizeof log, "big.log");
    const int signals[2] = {SIGINT, SIGTERM};
    for (int s = 0; s < 2; s++) {
        const char *argv[] = {prog, "data", "synthetic", out, "--n", "200000", "--size",
                              "32x32x3", "--shards", "4", NULL};
        const pid_t pid = run_start(argv, log, NULL);
        assert_true(pid > 0);
        /* until the first shard is being written */
        for (int i = 0; i < 5000 && (access(out, F_OK) || !has_temporary(out)); i++) sleep_ms(2);
        assert_true(access(out, F_OK) == 0 && has_temporary(out));
        kill(pid, signals[s]);
        assert_one_line(log, run_wait(pid, 60), 1, "interrupted by a signal", NULL);
        assert_no_data("big");
    }
}

/* `mimae data synthetic full ... ARGS` of N images of 16x16 with a file size
 * limit (a full disk) of 40000 bytes, which a shard of 60 images or the
 * single file of 300 exceeds: exit 1, one line naming the file and the disk,
 * nothing left. */
static void import_on_full_disk(const char *args, const char *file)
{
    file_size_limit_t lim;
    file_size_limit_set(&lim, 40000);
    const int status = run_in(0, "mimae data synthetic full --n %d --size 16x16x1%s", N, args);
    file_size_limit_restore(&lim);
    char path[512];
    path_in(path, sizeof path, "stderr.txt");
    assert_one_line(path, status, 1, file, "the disk may be full", NULL);
    assert_no_data("full");
}

static void test_full_disk_during_import_leaves_nothing(void **state)
{
    (void)state;
    import_on_full_disk(" --shards 5", "full/train-");
}

/* The same without --shards: the single file is built in memory and written
 * in one go, so the full disk is an ordinary write error (HDF5 1.10 crashed
 * at exit after failing to close a file it wrote to the disk itself). */
static void test_full_disk_during_single_file_import_leaves_nothing(void **state)
{
    (void)state;
    import_on_full_disk("", "full/train.h5");
}

/* A file that would need more than half of the machine's memory to build
 * (a single file, or one shard) is refused before anything is written. */
static void test_import_larger_than_memory_is_refused(void **state)
{
    (void)state;
    const char *big = "mimae data synthetic big --n 100000000 --size 256x256x3"; /* 20 TB */
    assert_bad_input(work, run_in(0, "%s", big), "big/train.h5", "built in memory",
                     "--shards K", NULL);
    assert_no_data("big");
    assert_bad_input(work, run_in(0, "%s --shards 2", big), "big/train-", "a shard",
                     "give more shards", NULL);
    assert_no_data("big");
}

static void test_bad_shard_requests_are_refused(void **state)
{
    (void)state;
    assert_int_equal(run_in(0, "mimae data synthetic few --n 40 --shards 50"), 2);
    assert_bad_input(work, 2, "few/train.h5", "--shards 50", "give at most 40", NULL);
    assert_int_equal(run_in(0, "mimae data synthetic few --n 40 --shards 0"), 2);
    assert_bad_input(work, 2, "--shards 0", "positive", NULL);
    assert_int_equal(run_in(2, "mimae data synthetic few --n 40"), 2);
    assert_bad_input(work, 2, "2 MPI ranks", "--shards K", NULL);
    assert_no_data("few");
    /* statistics normalisation cannot use, from the sums of every rank */
    uint8_t grey[8 * 8 * 3];
    memset(grey, 99, sizeof grey);
    for (int i = 0; i < 4; i++) {
        char path[600];
        sh("mkdir -p flat/%c", 'a' + i % 2);
        snprintf(path, sizeof path, "%s/flat/%c/%d.png", work, 'a' + i % 2, i);
        write_png(path, 8, 8, PNG_FORMAT_RGB, grey);
    }
    assert_int_equal(run_in(2, "mimae data folder flat few --size 8 --shards 2"), 2);
    assert_bad_input(work, 2, "few/train.h5", "std 0", "all pixels of that channel equal", NULL);
    assert_no_data("few");
}

/* srun without an MPI plugin starts N tasks that are each an MPI world of 1
 * (simulated here by srun's variables without a launcher's): the import and
 * mimae_dist refuse before anything is written, the step's first task
 * saying how to start them; a batch script's variables alone (no step) are
 * no reason to refuse. */
static void test_srun_without_mpi_is_refused(void **state)
{
    (void)state;
    const char *srun = "SLURM_STEP_NUM_TASKS=3 SLURM_NTASKS=3 SLURM_PROCID";
    char path[512];
    assert_bad_input(work, run_captured(work, "%s=0 %s/mimae data synthetic s --n 60 --shards 3",
                                        srun, build_dir),
                     "3 tasks", "without an MPI plugin", "srun --mpi=pmix", NULL);
    path_in(path, sizeof path, "s");
    assert_int_equal(access(path, F_OK), -1);
    /* the other tasks say nothing: srun's output holds the line once */
    assert_int_equal(run_captured(work, "%s=2 %s/mimae data synthetic s --n 60", srun, build_dir),
                     2);
    path_in(path, sizeof path, "stderr.txt");
    char *text = read_text(path);
    assert_non_null(text);
    assert_string_equal(text, "");
    free(text);

    synthetic("k3", SIDE, CLASSES, 3);
    write_run("srun.ini", 1, "k3/train.h5", "run_srun", NULL);
    assert_bad_input(work, run_captured(work, "%s=0 %s/mimae_dist srun.ini", srun, build_dir),
                     "mimae_dist", "3 tasks", "srun --mpi=pmix", NULL);
    path_in(path, sizeof path, "run_srun");
    assert_int_equal(access(path, F_OK), -1);

    /* a batch script's environment (no step): one process, as asked */
    assert_int_equal(run_captured(work, "SLURM_NTASKS=3 SLURM_PROCID=0 %s/mimae data synthetic b "
                                  "--n 60 --shards 3", build_dir), 0);
    path_in(path, sizeof path, "b");
    assert_int_equal(count_entries(path), 2 + 2 * 3);
}

/* ------------------------------------------------------------ shard-local */

/* Rank r of R gets only images of its shards (s % R == r), one shard at a
 * time in a per-epoch shard order, no image twice in an epoch over all
 * ranks, every image but the tails, another order the next epoch. */
static void test_shard_local_order(void **state)
{
    (void)state;
    enum { SH = 6, R = 3, PER = 4 };
    const long count[SH] = {10, 11, 10, 11, 10, 12};
    long first[SH], total = 0;
    for (int i = 0; i < SH; i++) first[i] = total, total += count[i];
    int seen[64];
    int64_t step[PER], epoch0[R][40];
    for (long epoch = 0; epoch < 2; epoch++) {
        memset(seen, 0, sizeof seen);
        long used = 0;
        for (int r = 0; r < R; r++) {
            shard_sampler_t s;
            assert_int_equal(shard_sampler_init(&s, count, SH, r, R, PER, 9), 0);
            assert_int_equal(s.steps, 21 / PER); /* the fewest: 10 + 11 on ranks 0 and 1 */
            int changes = 0, last_shard = -1;
            for (long t = 0; t < s.steps; t++) {
                shard_sampler_slice(&s, epoch, t, step);
                for (int i = 0; i < PER; i++) {
                    int sh = 0;
                    while (sh + 1 < SH && first[sh + 1] <= step[i]) sh++;
                    assert_int_equal(sh % R, r); /* only its own shards */
                    if (sh != last_shard) changes += last_shard >= 0, last_shard = sh;
                    assert_int_equal(seen[step[i]]++, 0);
                    if (epoch == 0) epoch0[r][t * PER + i] = step[i];
                }
            }
            assert_true(changes <= SH / R - 1); /* a shard at a time */
            if (epoch == 1) { /* another order */
                shard_sampler_slice(&s, 1, 0, step);
                assert_memory_not_equal(step, epoch0[r], sizeof step);
            }
            used += s.steps * PER;
            shard_sampler_free(&s);
        }
        /* left out: each rank's tail past 5 steps of 4 (1, 1 and 2 of 21, 21, 22) */
        assert_int_equal(used, R * 5 * PER);
        assert_int_equal(total - used, 4);
    }
    /* K not a multiple of R, or too few images for a step: refused */
    shard_sampler_t bad;
    assert_int_equal(shard_sampler_init(&bad, count, SH, 0, 4, PER, 9), -1);
    shard_sampler_free(&bad);
    assert_int_equal(shard_sampler_init(&bad, count, SH, 0, R, 22, 9), -1); /* 21 < 22 */
    shard_sampler_free(&bad);
}

/* A rank of shard-local sampling opens only its own shards: the others may
 * be missing where it reads (a node-local copy of its shards). */
static void test_rank_opens_only_its_shards(void **state)
{
    (void)state;
    synthetic("mine", SIDE, CLASSES, 4);
    char s1[300], s3[300], path[512];
    shard_name("mine", "train", 1, s1, sizeof s1);
    shard_name("mine", "train", 3, s3, sizeof s3);
    sh("rm %s %s", s1, s3);
    path_in(path, sizeof path, "mine/train.h5");
    dataset_t *d = dataset_open_shards(path, 0, 2, err, sizeof err);
    if (!d) fail_msg("%s", err);
    assert_int_equal(dataset_get_info(d)->n, N);
    assert_int_equal(dataset_shard_images(d)[1], N / 4);
    assert_int_equal(dataset_labels(d)[N / 4], -1); /* another rank's */
    uint8_t img[SIDE * SIDE];
    const int64_t own = 2 * N / 4, other = N / 4;
    assert_int_equal(dataset_read(d, &own, 1, img, NULL, err, sizeof err), 0);
    assert_int_equal(dataset_read(d, &other, 1, img, NULL, err, sizeof err), -1);
    dataset_close(d);
    assert_null(dataset_open_shards(path, 1, 2, err, sizeof err)); /* rank 1's are gone */
    assert_null(dataset_open_shards(path, 0, 3, err, sizeof err)); /* 4 shards, 3 ranks */
    printf("  %s\n", err);
    assert_non_null(strstr(err, "multiple of the ranks"));
}

static void test_shard_local_training_and_refusals(void **state)
{
    (void)state;
    synthetic("k4", SIDE, CLASSES, 4);
    write_run("local.ini", 1, "k4/train.h5", "run_local", "sampling = shard-local\n");
    if (run_in(2, "mimae_dist local.ini") != 0) {
        run_shell("tail -3 %s/stderr.txt", work);
        fail_msg("shard-local training failed");
    }
    char path[512];
    path_in(path, sizeof path, "run_local/results.h5");
    results_t *res = results_load(path, err, sizeof err);
    if (!res) fail_msg("%s", err);
    assert_string_equal(results_get_attr(res, "data.sampling"), "shard-local");
    assert_int_equal(results_step_count(res), N / 8); /* 4 shards of 75: 150 a rank */
    results_free(res);

    /* refused before anything is written */
    synthetic("single", SIDE, CLASSES, 0);
    synthetic("k5", SIDE, CLASSES, 5);
    write_run("r1.ini", 1, "single/train.h5", "run_r1", "sampling = shard-local\n");
    assert_int_equal(run_in(2, "mimae_dist r1.ini"), 2);
    assert_bad_input(work, 2, "single/train.h5", "single file", "--shards K", NULL);
    write_run("r2.ini", 1, "k5/train.h5", "run_r2", "sampling = shard-local\n");
    assert_int_equal(run_in(2, "mimae_dist r2.ini"), 2);
    assert_bad_input(work, 2, "k5/train.h5", "5 shards", "2 ranks", NULL);
    write_run("r3.ini", 1, "k4/train.h5", "run_r3", "stage_dir = stage\n");
    assert_int_equal(run_in(1, "mimae_dist r3.ini"), 2);
    assert_bad_input(work, 2, "r3.ini", "data.stage_dir", "shard-local", NULL);
    write_run("r4.ini", 1, "k4/train.h5", "run_r4", "sampling = shard-local\ntrain_limit = 40\n");
    assert_int_equal(run_in(1, "mimae_dist r4.ini"), 2);
    assert_bad_input(work, 2, "r4.ini", "data.train_limit", NULL);
    for (int i = 1; i <= 4; i++) {
        char out[32];
        snprintf(out, sizeof out, "run_r%d", i);
        path_in(path, sizeof path, out);
        assert_int_equal(access(path, F_OK), -1);
    }
}

/* A checkpoint further into its epoch than an epoch of the resumed run is
 * long (10 images in shards of 2, 3, 2, 3: 5 steps of 2 on one rank, 4 on
 * two ranks reading their own shards) is refused, not read past the data
 * order's end. */
static void test_resume_past_the_end_of_a_shorter_epoch_is_refused(void **state)
{
    (void)state;
    char out[512];
    path_in(out, sizeof out, "ten");
    const import_opts_t opts = {4, NULL};
    if (synthetic_generate_opts(out, 10, SIDE, SIDE, 1, CLASSES, SEED, &opts, err, sizeof err))
        fail_msg("%s", err);
    write_run("ten.ini", 1, "ten/train.h5", "run_ten", NULL);
    const char *fixed = "--set train.global_batch=2 --set train.micro_batch=0 --set "
                        "optim.warmup_iters=1 --set optim.total_iters=20 --set eval.mi=0";
    assert_int_equal(run_in(1, "mimae_dist ten.ini %s --set train.max_steps=4", fixed), 0);
    const int status = run_in(2, "mimae_dist ten.ini %s --set train.max_steps=6 --set "
                              "data.sampling=shard-local", fixed);
    assert_bad_input(work, status, "ckpt-0000000004.h5", "4 steps into an epoch",
                     "an epoch has 4 steps now", NULL);
}

static ino_t inode_of(const char *rel)
{
    char path[512];
    path_in(path, sizeof path, rel);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

/* data.stage_dir: copies the index and the shards, not again when they are
 * there and identical, again when one differs; a full disk during the copy
 * exits 1 leaving no partial file. */
static void test_staging_copies_once(void **state)
{
    (void)state;
    synthetic("k4", SIDE, CLASSES, 4);
    char id[64], s2[300], staged[400];
    get_string("k4/train.h5", "import_id", id, sizeof id);
    shard_name("k4", "train", 2, s2, sizeof s2);
    snprintf(staged, sizeof staged, "stage/%s/%s", id, strrchr(s2, '/') + 1);
    write_run("st.ini", 1, "k4/train.h5", "run_st", "sampling = shard-local\nstage_dir = stage\n");
    assert_int_equal(run_in(2, "mimae_dist st.ini"), 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/stage/%s", work, id);
    assert_int_equal(count_entries(dir), 5); /* both ranks here: every shard and the index */
    const ino_t before = inode_of(staged);
    sh("rm -r run_st");
    assert_int_equal(run_in(2, "mimae_dist st.ini"), 0);
    assert_true(inode_of(staged) == before); /* identical: not copied again */
    sh("printf x >> %s && rm -r run_st", staged); /* no longer the source's copy */
    assert_int_equal(run_in(2, "mimae_dist st.ini"), 0);
    assert_true(inode_of(staged) != before);

    sh("rm -r run_st stage");
    setenv("MIMAE_FAULT", "stage-full=20000", 1); /* a shard is 33 kB */
    const int status = run_in(2, "mimae_dist st.ini");
    unsetenv("MIMAE_FAULT");
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    assert_one_line(path, status, 1, "stage/", "the disk may be full", NULL);
    assert_false(has_temporary(dir));
}

/* A stage directory too small for the node's shards: one line naming it,
 * exit 2, nothing copied (on a 1 MiB tmpfs, when this process may mount). */
static void test_full_stage_dir_is_refused(void **state)
{
    (void)state;
    char tiny[512], out[512];
    path_in(tiny, sizeof tiny, "tiny");
    assert_int_equal(mkdir(tiny, 0755), 0);
    if (run_shell("mount -t tmpfs -o size=1m tmpfs %s 2>/dev/null", tiny) != 0) {
        printf("  cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)\n");
        skip();
    }
    path_in(out, sizeof out, "big");
    const import_opts_t opts = {4, NULL};
    const int rc = synthetic_generate_opts(out, 600, 32, 32, 3, CLASSES, SEED, &opts, err,
                                           sizeof err);
    char extra[700];
    snprintf(extra, sizeof extra, "sampling = shard-local\nstage_dir = %s\n", tiny);
    write_run("tiny.ini", 3, "big/train.h5", "run_tiny", extra);
    const int status = rc ? -1 : run_in(2, "mimae_dist tiny.ini");
    const int entries = count_entries(tiny);
    umount(tiny);
    if (rc) fail_msg("%s", err);
    assert_bad_input(work, status, "tiny", "GB are free", "data.stage_dir", NULL);
    assert_true(entries <= 1); /* at most the empty import directory */
    assert_int_equal(access("run_tiny", F_OK), -1);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    unsetenv("MIMAE_FAULT");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *only = getenv("TEST_FILTER"); /* e.g. TEST_FILTER='test_staging*' */
    if (only && *only) cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sharded_reads_as_the_single_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharded_reads_with_few_open_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_shard_or_index_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_training_on_sharded_larger_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_truncated_shard_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_index_naming_absent_shards_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shard_that_is_a_link_or_fifo_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_staging_stays_inside_the_data_and_stage_directories,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_cut_during_a_run_stops_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shards_of_other_imports_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_on_1_and_3_ranks_is_identical, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_parallel_import_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_import_removes_the_old_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_import_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_during_import_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_during_single_file_import_leaves_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_larger_than_memory_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_shard_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srun_without_mpi_is_refused, setup, teardown),
        cmocka_unit_test(test_shard_local_order),
        cmocka_unit_test_setup_teardown(test_rank_opens_only_its_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_local_training_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_past_the_end_of_a_shorter_epoch_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_staging_copies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_stage_dir_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
