/* Data sets in HDF5 (io/dataset.h) and the importers: writer/reader round
 * trip, the real Fashion-MNIST files, CIFAR-10 and folder trees written here,
 * the synthetic shapes, and bad input (each failing with a message that names
 * the file and leaving no output or temporary behind). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/cifar_import.h"
#include "io/dataset.h"
#include "io/folder_import.h"
#include "io/idx_import.h"
#include "io/synthetic.h"

#include "tests/fs_util.h"
#include "tests/image_util.h"

#define FMNIST_DIR IDX_FASHION_MNIST_DIR

static char root[64]; /* per-run temporary directory */
static char err[1024];

/* ------------------------------------------------------------ helpers */

static int setup(void **state)
{
    (void)state;
    make_tmpdir(root, sizeof root, "mimae-test-dataset");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(root);
    return 0;
}

/* A fresh directory root/name (removed first if a test left it). */
static const char *fresh_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", root, name);
    remove_tree(buf);
    assert_int_equal(mkdir(buf, 0755), 0);
    return buf;
}

static void mkdirs(const char *a, const char *b)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", a, b);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* The failure message must name `name` and contain `word`. */
static void assert_err(const char *name, const char *word)
{
    if (getenv("TEST_VERBOSE")) print_message("  error: %s\n", err);
    if (!strstr(err, name) || !strstr(err, word))
        fail_msg("message \"%s\" should name \"%s\" and say \"%s\"", err, name, word);
}

static void expect_open_fails(const char *path, const char *word)
{
    err[0] = '\0';
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (d) {
        dataset_close(d);
        fail_msg("%s opened, expected an error saying \"%s\"", path, word);
    }
    assert_err(path, word);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static dataset_info_t small_info(const char *split, int h, int w, int c, int classes,
                                 char (*names)[DATASET_NAME_MAX])
{
    dataset_info_t info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "small");
    snprintf(info.split, sizeof info.split, "%s", split);
    snprintf(info.source, sizeof info.source, "test_dataset.c");
    info.h = h;
    info.w = w;
    info.c = c;
    info.num_classes = classes;
    for (int k = 0; k < classes; k++) snprintf(names[k], DATASET_NAME_MAX, "class-%d", k);
    info.class_names = names;
    return info;
}

/* Writes a small valid data set of n random images (h=5, w=3, c=2, 3
 * classes) to path; fills images/labels if given. */
static void write_small(const char *path, int n, uint8_t *images, int32_t *labels)
{
    char names[3][DATASET_NAME_MAX];
    dataset_info_t info = small_info("train", 5, 3, 2, 3, names);
    uint8_t *im = malloc((size_t)n * 30);
    int32_t *lb = malloc((size_t)n * sizeof *lb);
    uint32_t s = 12345;
    for (int i = 0; i < n * 30; i++) im[i] = (uint8_t)lcg(&s);
    for (int i = 0; i < n; i++) lb[i] = (int32_t)(lcg(&s) % 3);
    dataset_writer_t *w = dataset_writer_create(path, &info, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(dataset_writer_append(w, im, lb, n, err, sizeof err), 0);
    if (dataset_writer_finish(w, NULL, NULL, err, sizeof err)) fail_msg("%s", err);
    if (images) memcpy(images, im, (size_t)n * 30);
    if (labels) memcpy(labels, lb, (size_t)n * sizeof *lb);
    free(im);
    free(lb);
}

static hid_t h5_rdwr(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* Writes a small valid data set to dir/name (path receives it) and opens it
 * for editing. */
static hid_t edit_small(const char *dir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    write_small(path, 4, NULL, NULL);
    return h5_rdwr(path);
}

static void h5_replace(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims)
{
    H5Ldelete(f, name, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
    (void)state;
    char dir[256], path[512];
    fresh_dir("roundtrip", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sub/rt.h5", dir); /* parent created by the writer */
    enum { N = 40, H = 5, W = 3, C = 2, IMG = H * W * C, CLASSES = 3 };
    char names[CLASSES][DATASET_NAME_MAX];
    dataset_info_t info = small_info("train", H, W, C, CLASSES, names);
    snprintf(names[1], DATASET_NAME_MAX, "T-shirt/top");
    uint8_t *im = malloc(N * IMG);
    int32_t lb[N];
    uint32_t s = 99;
    for (int i = 0; i < N * IMG; i++) im[i] = (uint8_t)lcg(&s);
    for (int i = 0; i < N; i++) lb[i] = (int32_t)(lcg(&s) % CLASSES);

    dataset_writer_t *w = dataset_writer_create(path, &info, err, sizeof err);
    if (!w) fail_msg("%s", err);
    assert_int_equal(dataset_writer_append(w, im, lb, 25, err, sizeof err), 0);
    assert_int_equal(dataset_writer_append(w, im + 25 * IMG, lb + 25, N - 25, err,
                                           sizeof err), 0);
    /* direct statistics */
    double mean[C], std[C], wm[C], ws[C];
    for (int ch = 0; ch < C; ch++) {
        double sum = 0, sq = 0;
        for (int p = 0; p < N * H * W; p++) sum += im[p * C + ch] / 255.0;
        mean[ch] = sum / (N * H * W);
        for (int p = 0; p < N * H * W; p++) {
            double d = im[p * C + ch] / 255.0 - mean[ch];
            sq += d * d;
        }
        std[ch] = sqrt(sq / (N * H * W));
    }
    dataset_writer_stats(w, wm, ws);
    for (int ch = 0; ch < C; ch++) {
        assert_true(fabs(wm[ch] - mean[ch]) < 1e-12);
        assert_true(fabs(ws[ch] - std[ch]) < 1e-12);
    }
    char sub[300]; /* the writer's temporary: PATH.tmp-<pid>-<random> beside it */
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_true(has_temporary(sub));
    assert_false(exists(path));
    if (dataset_writer_finish(w, NULL, NULL, err, sizeof err)) fail_msg("%s", err);
    assert_false(has_temporary(sub));

    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    const dataset_info_t *in = dataset_get_info(d);
    assert_string_equal(in->name, "small");
    assert_string_equal(in->split, "train");
    assert_string_equal(in->source, "test_dataset.c");
    assert_int_equal(in->n, N);
    assert_int_equal(in->h, H);
    assert_int_equal(in->w, W);
    assert_int_equal(in->c, C);
    assert_int_equal(in->num_classes, CLASSES);
    assert_string_equal(in->class_names[0], "class-0");
    assert_string_equal(in->class_names[1], "T-shirt/top");
    assert_string_equal(in->class_names[2], "class-2");
    for (int ch = 0; ch < C; ch++) {
        assert_true(fabs(in->mean[ch] - mean[ch]) < 1e-12);
        assert_true(fabs(in->std[ch] - std[ch]) < 1e-12);
    }
    assert_memory_equal(dataset_labels(d), lb, sizeof lb);

    /* shuffled, with a run of consecutive indices and a repeat */
    const int64_t idx[] = { 31, 0, 39, 16, 17, 18, 5, 24, 25, 2, 31 };
    const int K = (int)(sizeof idx / sizeof idx[0]);
    uint8_t out[11 * IMG];
    int32_t olb[11];
    if (dataset_read(d, idx, K, out, olb, err, sizeof err)) fail_msg("%s", err);
    for (int i = 0; i < K; i++) {
        assert_memory_equal(out + i * IMG, im + idx[i] * IMG, IMG);
        assert_int_equal(olb[i], lb[idx[i]]);
    }
    assert_int_equal(dataset_read(d, idx, 2, out, NULL, err, sizeof err), 0);
    const int64_t bad[] = { 3, N };
    assert_int_equal(dataset_read(d, bad, 2, out, olb, err, sizeof err), -1);
    assert_err(path, "outside");
    dataset_close(d);
    free(im);
    /* given statistics win */
    const double gm[C] = { 0.5, 0.25 }, gs[C] = { 0.125, 2 };
    w = dataset_writer_create(path, &info, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(dataset_writer_append(w, out, olb, 3, err, sizeof err), 0);
    assert_int_equal(dataset_writer_finish(w, gm, gs, err, sizeof err), 0);
    d = dataset_open(path, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(dataset_get_info(d)->n, 3);
    assert_true(dataset_get_info(d)->mean[1] == 0.25 && dataset_get_info(d)->std[0] == 0.125);
    dataset_close(d);
}

/* ------------------------------------------------------------ Fashion-MNIST */

static void test_fashion_mnist(void **state)
{
    (void)state;
    char out[256], train[300], test[300], src[300];
    fresh_dir("fmnist", out, sizeof out);
    snprintf(train, sizeof train, "%s/train.h5", out);
    snprintf(test, sizeof test, "%s/test.h5", out);
    snprintf(src, sizeof src, "%s/train-images-idx3-ubyte.gz", FMNIST_DIR);
    if (!exists(src)) fail_msg("%s missing: install dataset-fashion-mnist (make deps)", src);
    if (idx_import_fashion_mnist(NULL, out, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(count_entries(out), 2);

    dataset_t *tr = dataset_open(train, err, sizeof err);
    if (!tr) fail_msg("%s", err);
    dataset_t *te = dataset_open(test, err, sizeof err);
    if (!te) fail_msg("%s", err);
    const dataset_info_t *a = dataset_get_info(tr), *b = dataset_get_info(te);
    assert_int_equal(a->n, 60000);
    assert_int_equal(b->n, 10000);
    assert_true(a->h == 28 && a->w == 28 && a->c == 1 && b->h == 28 && b->c == 1);
    assert_string_equal(a->name, "fashion-mnist");
    assert_string_equal(a->split, "train");
    assert_string_equal(b->split, "test");
    assert_string_equal(a->source, FMNIST_DIR);
    assert_int_equal(a->num_classes, 10);
    assert_string_equal(a->class_names[0], "T-shirt/top");
    assert_string_equal(a->class_names[9], "Ankle boot");
    assert_string_equal(b->class_names[6], "Shirt");
    const int32_t first_train[5] = { 9, 0, 0, 3, 0 }, first_test[5] = { 9, 2, 1, 1, 6 };
    assert_memory_equal(dataset_labels(tr), first_train, sizeof first_train);
    assert_memory_equal(dataset_labels(te), first_test, sizeof first_test);
    /* measured: mean 0.286041, std 0.353024 (population, 0..1 scale) */
    print_message("fashion-mnist train mean %.6f std %.6f\n", a->mean[0], a->std[0]);
    assert_true(fabs(a->mean[0] - 0.2860) < 1e-3);
    assert_true(fabs(a->std[0] - 0.3530) < 1e-3);
    assert_true(b->mean[0] == a->mean[0] && b->std[0] == a->std[0]);

    /* images 0 and 1 against the gzip'd source, read independently */
    unsigned char ref[16 + 2 * 784];
    gzFile gz = gzopen(src, "rb");
    assert_non_null(gz);
    assert_int_equal(gzread(gz, ref, sizeof ref), (int)sizeof ref);
    gzclose(gz);
    uint8_t img[2 * 784];
    const int64_t idx[2] = { 0, 1 };
    assert_int_equal(dataset_read(tr, idx, 2, img, NULL, err, sizeof err), 0);
    long sum_h5 = 0, sum_gz = 0;
    for (int i = 0; i < 784; i++) {
        sum_h5 += img[i];
        sum_gz += ref[16 + i];
    }
    assert_int_equal(sum_h5, sum_gz);
    assert_int_equal(sum_gz, 76247);
    assert_memory_equal(img, ref + 16, 2 * 784);
    const int64_t last = 59999;
    assert_int_equal(dataset_read(tr, &last, 1, img, NULL, err, sizeof err), 0);
    dataset_close(tr);
    dataset_close(te);
    remove_tree(out);
}

/* ------------------------------------------------------------ fake IDX */

static void write_gz(const char *path, const void *buf, size_t len)
{
    gzFile gz = gzopen(path, "wb1");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX images file of n 28x28 images, of which only `present` are there. */
static void write_idx_images(const char *dir, const char *name, uint32_t magic, int n,
                             int present)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = 16 + (size_t)present * 784;
    unsigned char *buf = malloc(len);
    put_be32(buf, magic);
    put_be32(buf + 4, (uint32_t)n);
    put_be32(buf + 8, 28);
    put_be32(buf + 12, 28);
    for (size_t i = 16; i < len; i++) buf[i] = (unsigned char)(i * 7);
    write_gz(path, buf, len);
    free(buf);
}

static void write_idx_labels(const char *dir, const char *name, uint32_t magic, int n,
                             int bad_label)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char buf[8 + 64];
    put_be32(buf, magic);
    put_be32(buf + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % 10);
    if (bad_label) buf[8 + 3] = 10;
    write_gz(path, buf, 8 + (size_t)n);
}

static void write_fake_fmnist(const char *dir)
{
    write_idx_images(dir, "train-images-idx3-ubyte.gz", 0x803, 20, 20);
    write_idx_labels(dir, "train-labels-idx1-ubyte.gz", 0x801, 20, 0);
    write_idx_images(dir, "t10k-images-idx3-ubyte.gz", 0x803, 10, 10);
    write_idx_labels(dir, "t10k-labels-idx1-ubyte.gz", 0x801, 10, 0);
}

/* Runs the IDX import expecting failure naming `file`, with nothing left in out. */
static void expect_idx_fails(const char *src, const char *out, const char *file,
                             const char *word)
{
    err[0] = '\0';
    assert_int_equal(idx_import_fashion_mnist(src, out, err, sizeof err), -1);
    assert_err(file, word);
    if (count_entries(out) != 0) fail_msg("%s: output left behind after \"%s\"", out, err);
}

static void test_idx_bad_input(void **state)
{
    (void)state;
    char src[256], out[300], base[256], file[400];
    fresh_dir("idx", base, sizeof base);
    fresh_dir("idx/src", src, sizeof src);
    snprintf(out, sizeof out, "%s/out", base);
    write_fake_fmnist(src);
    /* the fake set imports (sanity), then is removed again */
    if (idx_import_fashion_mnist(src, out, err, sizeof err)) fail_msg("%s", err);
    dataset_t *d = dataset_open("/nonexistent", err, sizeof err);
    assert_null(d);
    snprintf(file, sizeof file, "%s/test.h5", out);
    d = dataset_open(file, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(dataset_get_info(d)->n, 10);
    assert_int_equal(dataset_labels(d)[9], 9);
    dataset_close(d);
    remove_tree(out);

    /* truncated train images (half the data): nothing written */
    write_idx_images(src, "train-images-idx3-ubyte.gz", 0x803, 20, 10);
    expect_idx_fails(src, out, "train-images-idx3-ubyte.gz", "truncated");
    /* truncated test images: the train.h5 written first is removed again */
    write_fake_fmnist(src);
    write_idx_images(src, "t10k-images-idx3-ubyte.gz", 0x803, 10, 5);
    expect_idx_fails(src, out, "t10k-images-idx3-ubyte.gz", "truncated");
    /* longer than announced */
    write_fake_fmnist(src);
    write_idx_images(src, "t10k-images-idx3-ubyte.gz", 0x803, 10, 11);
    expect_idx_fails(src, out, "t10k-images-idx3-ubyte.gz", "longer");
    /* wrong magic */
    write_fake_fmnist(src);
    write_idx_labels(src, "train-labels-idx1-ubyte.gz", 0x803, 20, 0);
    expect_idx_fails(src, out, "train-labels-idx1-ubyte.gz", "magic");
    /* count mismatch */
    write_fake_fmnist(src);
    write_idx_labels(src, "t10k-labels-idx1-ubyte.gz", 0x801, 9, 0);
    expect_idx_fails(src, out, "t10k-images-idx3-ubyte.gz", "labels");
    /* label out of range */
    write_fake_fmnist(src);
    write_idx_labels(src, "t10k-labels-idx1-ubyte.gz", 0x801, 10, 1);
    expect_idx_fails(src, out, "t10k-labels-idx1-ubyte.gz", "outside");
    /* missing file */
    write_fake_fmnist(src);
    snprintf(file, sizeof file, "%s/t10k-labels-idx1-ubyte.gz", src);
    unlink(file);
    expect_idx_fails(src, out, "t10k-labels-idx1-ubyte.gz", "No such file");
    /* out_dir under a regular file */
    write_fake_fmnist(src);
    snprintf(file, sizeof file, "%s/plain", base);
    write_bytes(file, "x", 1);
    char bad_out[500];
    snprintf(bad_out, sizeof bad_out, "%s/sub", file);
    err[0] = '\0';
    assert_int_equal(idx_import_fashion_mnist(src, bad_out, err, sizeof err), -1);
    assert_err(file, "not a directory");
    /* src and plain: every failure above came before anything was written,
     * so not even the output directory was made */
    assert_int_equal(count_entries(base), 2);
    assert_int_equal(count_entries(out), 0);
    /* out_dir without write permission (root may write anyway) */
    if (geteuid() != 0) {
        mkdir(out, 0555);
        err[0] = '\0';
        assert_int_equal(idx_import_fashion_mnist(src, out, err, sizeof err), -1);
        assert_err(out, "Permission denied");
        assert_int_equal(count_entries(out), 0);
    }
}

/* ------------------------------------------------------------ data set files */

static void test_open_bad_files(void **state)
{
    (void)state;
    char dir[256], path[400];
    fresh_dir("badfiles", dir, sizeof dir);

    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_open_fails(path, "No such file");

    snprintf(path, sizeof path, "%s/text.h5", dir);
    write_bytes(path, "just some text\n", 15);
    expect_open_fails(path, "not an HDF5 file");

    hid_t f = edit_small(dir, "noimages.h5", path, sizeof path);
    H5Ldelete(f, "images", H5P_DEFAULT);
    H5Fclose(f);
    expect_open_fails(path, "/images is missing");

    f = edit_small(dir, "float.h5", path, sizeof path);
    const hsize_t d4[4] = { 4, 5, 3, 2 };
    h5_replace(f, "images", H5T_IEEE_F32LE, 4, d4);
    H5Fclose(f);
    expect_open_fails(path, "float32");

    f = edit_small(dir, "rank.h5", path, sizeof path);
    h5_replace(f, "images", H5T_STD_U8LE, 3, d4);
    H5Fclose(f);
    expect_open_fails(path, "rank 3");

    f = edit_small(dir, "labels.h5", path, sizeof path);
    const hsize_t d1[1] = { 3 };
    h5_replace(f, "labels", H5T_STD_I32LE, 1, d1);
    H5Fclose(f);
    expect_open_fails(path, "/labels has 3 entries but /images has 4");

    f = edit_small(dir, "range.h5", path, sizeof path);
    hid_t ds = H5Dopen2(f, "labels", H5P_DEFAULT);
    const int32_t bad[4] = { 0, 1, 7, -1 };
    assert_true(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    expect_open_fails(path, "/labels[2] is 7");

    f = edit_small(dir, "version.h5", path, sizeof path);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    const int two = 2;
    assert_true(H5Awrite(a, H5T_NATIVE_INT, &two) >= 0);
    H5Aclose(a);
    H5Fclose(f);
    expect_open_fails(path, "newer mimae");

    f = edit_small(dir, "nostd.h5", path, sizeof path);
    H5Adelete(f, "std");
    H5Fclose(f);
    expect_open_fails(path, "attribute std is missing");

    snprintf(path, sizeof path, "%s/notours.h5", dir);
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Fclose(f);
    expect_open_fails(path, "not a mimae data set");
}

/* Fixed-length string attributes (as h5py writes numpy bytes) are read too. */
static void test_fixed_length_strings(void **state)
{
    (void)state;
    char dir[256], path[400];
    fresh_dir("fixedstr", dir, sizeof dir);
    hid_t f = edit_small(dir, "fixed.h5", path, sizeof path);
    H5Adelete(f, "class_names");
    H5Adelete(f, "name");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 10);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    const char names[3][10] = { "alpha", "beta", { 'g', 'a', 'm', 'm', 'a', '-', 'r', 'a',
                                                   'y', '!' } };
    const hsize_t n3[1] = { 3 };
    hid_t sp = H5Screate_simple(1, n3, NULL);
    hid_t a = H5Acreate2(f, "class_names", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(a, t, names) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    sp = H5Screate(H5S_SCALAR);
    a = H5Acreate2(f, "name", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char name[10] = "fixed";
    assert_true(H5Awrite(a, t, name) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    assert_string_equal(dataset_get_info(d)->name, "fixed");
    assert_string_equal(dataset_get_info(d)->class_names[0], "alpha");
    assert_string_equal(dataset_get_info(d)->class_names[1], "beta");
    assert_string_equal(dataset_get_info(d)->class_names[2], "gamma-ray!");
    dataset_close(d);
}

static void test_writer_bad_input(void **state)
{
    (void)state;
    char dir[256], path[400];
    fresh_dir("badwriter", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.h5", dir);
    char names[3][DATASET_NAME_MAX];
    dataset_info_t info = small_info("train", 2, 2, 1, 3, names);
    uint8_t img[2 * 4] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int32_t lb[2] = { 1, 3 };

    dataset_writer_t *w = dataset_writer_create(path, &info, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(dataset_writer_append(w, img, lb, 2, err, sizeof err), -1);
    assert_err(path, "label 3 of image 1 is outside 0..2");
    dataset_writer_abort(w);
    assert_int_equal(count_entries(dir), 0);

    /* nothing appended: finish fails and removes the temporary */
    w = dataset_writer_create(path, &info, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(dataset_writer_finish(w, NULL, NULL, err, sizeof err), -1);
    assert_err(path, "no images");
    assert_int_equal(count_entries(dir), 0);

    /* constant images cannot be normalised */
    memset(img, 9, sizeof img);
    lb[1] = 2;
    w = dataset_writer_create(path, &info, err, sizeof err);
    assert_int_equal(dataset_writer_append(w, img, lb, 2, err, sizeof err), 0);
    assert_int_equal(dataset_writer_finish(w, NULL, NULL, err, sizeof err), -1);
    assert_err(path, "std");
    assert_int_equal(count_entries(dir), 0);

    /* bad description, unwritable place */
    info.c = 5;
    assert_null(dataset_writer_create(path, &info, err, sizeof err));
    assert_err(path, "channels");
    info.c = 1;
    char plain[400], under[500];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    write_bytes(plain, "x", 1);
    snprintf(under, sizeof under, "%s/x/out.h5", plain);
    assert_null(dataset_writer_create(under, &info, err, sizeof err));
    assert_err(plain, "not a directory");
    assert_int_equal(count_entries(dir), 1);
}

/* ------------------------------------------------------------ CIFAR-10 */

static unsigned char cifar_byte(int file, int rec, int plane, int pos)
{
    return (unsigned char)(plane * 71 + pos * 3 + rec * 11 + file * 29 + (pos >> 5));
}

static void write_cifar_file(const char *dir, const char *name, int file, int records,
                             int bad_label, long chop)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = (size_t)records * 3073;
    unsigned char *buf = malloc(len);
    for (int r = 0; r < records; r++) {
        unsigned char *rec = buf + (size_t)r * 3073;
        rec[0] = (unsigned char)((file * 3 + r) % 10);
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < 1024; i++) rec[1 + p * 1024 + i] = cifar_byte(file, r, p, i);
    }
    if (bad_label) buf[3073] = 10;
    write_bytes(path, buf, len - (size_t)chop);
    free(buf);
}

static void write_fake_cifar(const char *dir)
{
    for (int f = 0; f < 5; f++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        write_cifar_file(dir, name, f, 2, 0, 0);
    }
    write_cifar_file(dir, "test_batch.bin", 5, 2, 0, 0);
}

static void test_cifar10(void **state)
{
    (void)state;
    char base[256], src[300], out[300], path[400];
    fresh_dir("cifar", base, sizeof base);
    snprintf(src, sizeof src, "%s/cifar-10-batches-bin", base);
    mkdir(src, 0755);
    snprintf(out, sizeof out, "%s/out", base);
    write_fake_cifar(src);
    const char meta[] = "zero\none\n\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n";
    snprintf(path, sizeof path, "%s/batches.meta.txt", src);
    write_bytes(path, meta, strlen(meta));
    /* given the directory above the unpacked one */
    if (cifar10_import(base, out, err, sizeof err)) fail_msg("%s", err);

    snprintf(path, sizeof path, "%s/train.h5", out);
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    const dataset_info_t *in = dataset_get_info(d);
    assert_int_equal(in->n, 10);
    assert_true(in->h == 32 && in->w == 32 && in->c == 3 && in->num_classes == 10);
    assert_string_equal(in->class_names[0], "zero");
    assert_string_equal(in->class_names[2], "two");
    assert_string_equal(in->class_names[9], "nine");
    uint8_t *img = malloc(10 * 3072);
    int64_t idx[10];
    int32_t lb[10];
    for (int i = 0; i < 10; i++) idx[i] = i;
    assert_int_equal(dataset_read(d, idx, 10, img, lb, err, sizeof err), 0);
    /* a known pixel: image 3 = file 1 record 1, row 5, column 7, green */
    assert_int_equal(img[3 * 3072 + (5 * 32 + 7) * 3 + 1], cifar_byte(1, 1, 1, 5 * 32 + 7));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(lb[i], ((i / 2) * 3 + i % 2) % 10);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int ch = 0; ch < 3; ch++)
                    assert_int_equal(img[i * 3072 + (y * 32 + x) * 3 + ch],
                                     cifar_byte(i / 2, i % 2, ch, y * 32 + x));
    }
    double mean[3] = { 0, 0, 0 };
    for (int i = 0; i < 10 * 1024; i++)
        for (int ch = 0; ch < 3; ch++) mean[ch] += img[i * 3 + ch] / 255.0 / (10 * 1024);
    for (int ch = 0; ch < 3; ch++) assert_true(fabs(in->mean[ch] - mean[ch]) < 1e-12);
    dataset_close(d);
    snprintf(path, sizeof path, "%s/test.h5", out);
    d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    assert_int_equal(dataset_get_info(d)->n, 2);
    assert_string_equal(dataset_get_info(d)->split, "test");
    for (int ch = 0; ch < 3; ch++)
        assert_true(dataset_get_info(d)->mean[ch] == mean[ch] ||
                    fabs(dataset_get_info(d)->mean[ch] - mean[ch]) < 1e-12);
    assert_int_equal(dataset_read(d, idx, 2, img, lb, err, sizeof err), 0);
    assert_int_equal(img[(31 * 32 + 31) * 3 + 2], cifar_byte(5, 0, 2, 1023));
    dataset_close(d);
    free(img);
    remove_tree(out);

    /* bad input: wrong size, bad label, missing file; nothing left behind */
    write_cifar_file(src, "data_batch_3.bin", 2, 2, 0, 1);
    err[0] = '\0';
    assert_int_equal(cifar10_import(src, out, err, sizeof err), -1);
    assert_err("data_batch_3.bin", "not a whole number");
    assert_int_equal(count_entries(out), 0);
    write_cifar_file(src, "data_batch_3.bin", 2, 2, 0, 0);
    write_cifar_file(src, "test_batch.bin", 5, 2, 1, 0);
    assert_int_equal(cifar10_import(src, out, err, sizeof err), -1);
    assert_err("test_batch.bin", "label 10");
    assert_int_equal(count_entries(out), 0);
    snprintf(path, sizeof path, "%s/test_batch.bin", src);
    unlink(path);
    assert_int_equal(cifar10_import(src, out, err, sizeof err), -1);
    assert_err("test_batch.bin", "No such file");
    assert_int_equal(count_entries(out), 0);
}

/* ------------------------------------------------------------ folders */

static void write_solid(const char *path, int w, int h, int comps, int fmt_png,
                        const uint8_t *colour)
{
    uint8_t *px = malloc((size_t)w * h * comps);
    for (int i = 0; i < w * h; i++) memcpy(px + i * comps, colour, (size_t)comps);
    if (fmt_png >= 0) write_png(path, w, h, fmt_png, px);
    else write_jpeg(path, w, h, comps, px);
    free(px);
}

static uint8_t pattern(int x, int y, int ch)
{
    return (uint8_t)(ch == 0 ? x * 7 : ch == 1 ? y * 13 : x + 3 * y);
}

static void build_tree(const char *src)
{
    char p[600];
    mkdirs(src, "train/cat");
    mkdirs(src, "train/dog");
    mkdirs(src, "val/cat");
    mkdirs(src, "val/dog");
    const uint8_t orange[3] = { 200, 100, 50 }, grey[1] = { 77 }, green[3] = { 10, 200, 30 };
    const uint8_t mid[1] = { 128 };
    snprintf(p, sizeof p, "%s/train/cat/a.png", src);
    write_solid(p, 40, 20, 3, PNG_FORMAT_RGB, orange);
    snprintf(p, sizeof p, "%s/train/cat/b.png", src);
    write_solid(p, 20, 30, 1, PNG_FORMAT_GRAY, grey);
    snprintf(p, sizeof p, "%s/train/cat/.hidden", src);
    write_bytes(p, "skip me", 7);
    /* RGBA 32x16: with size 16 the output is the source's centre columns 8..23 */
    uint8_t rgba[16 * 32 * 4];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 32; x++) {
            for (int ch = 0; ch < 3; ch++) rgba[(y * 32 + x) * 4 + ch] = pattern(x, y, ch);
            rgba[(y * 32 + x) * 4 + 3] = (uint8_t)(255 - x);
        }
    snprintf(p, sizeof p, "%s/train/dog/c.png", src);
    write_png(p, 32, 16, PNG_FORMAT_RGBA, rgba);
    snprintf(p, sizeof p, "%s/train/dog/d.jpg", src);
    write_solid(p, 24, 24, 3, -1, green);
    snprintf(p, sizeof p, "%s/val/cat/e.png", src);
    write_solid(p, 64, 48, 3, PNG_FORMAT_RGB, orange);
    snprintf(p, sizeof p, "%s/val/dog/f.jpg", src);
    write_solid(p, 17, 19, 1, -1, mid);
}

static void assert_solid(const uint8_t *img, int size, int r, int g, int b, int tol)
{
    for (int i = 0; i < size * size; i++)
        if (abs(img[3 * i] - r) > tol || abs(img[3 * i + 1] - g) > tol ||
            abs(img[3 * i + 2] - b) > tol)
            fail_msg("pixel %d is (%d,%d,%d), expected (%d,%d,%d) +- %d", i, img[3 * i],
                     img[3 * i + 1], img[3 * i + 2], r, g, b, tol);
}

static void test_folder(void **state)
{
    (void)state;
    char base[256], src[300], out[300], path[400];
    fresh_dir("folder", base, sizeof base);
    snprintf(src, sizeof src, "%s/pets", base);
    snprintf(out, sizeof out, "%s/out", base);
    build_tree(src);
    enum { S = 16, IMG = S * S * 3 };
    if (folder_import(src, out, S, err, sizeof err)) fail_msg("%s", err);

    snprintf(path, sizeof path, "%s/train.h5", out);
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    const dataset_info_t *in = dataset_get_info(d);
    assert_string_equal(in->name, "pets");
    assert_int_equal(in->n, 4);
    assert_true(in->h == S && in->w == S && in->c == 3);
    assert_int_equal(in->num_classes, 2);
    assert_string_equal(in->class_names[0], "cat");
    assert_string_equal(in->class_names[1], "dog");
    const int32_t want[4] = { 0, 0, 1, 1 };
    assert_memory_equal(dataset_labels(d), want, sizeof want);
    uint8_t img[4 * IMG];
    const int64_t idx[4] = { 0, 1, 2, 3 };
    assert_int_equal(dataset_read(d, idx, 4, img, NULL, err, sizeof err), 0);
    assert_solid(img, S, 200, 100, 50, 0);
    assert_solid(img + IMG, S, 77, 77, 77, 0);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int ch = 0; ch < 3; ch++)
                assert_int_equal(img[2 * IMG + (y * S + x) * 3 + ch], pattern(x + 8, y, ch));
    assert_solid(img + 3 * IMG, S, 10, 200, 30, 4);
    const double train_mean0 = in->mean[0];
    dataset_close(d);

    snprintf(path, sizeof path, "%s/test.h5", out);
    d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    in = dataset_get_info(d);
    assert_int_equal(in->n, 2);
    assert_string_equal(in->split, "test");
    assert_string_equal(in->class_names[1], "dog");
    assert_int_equal(dataset_labels(d)[0], 0);
    assert_int_equal(dataset_labels(d)[1], 1);
    assert_true(in->mean[0] == train_mean0);
    assert_int_equal(dataset_read(d, idx, 2, img, NULL, err, sizeof err), 0);
    assert_solid(img, S, 200, 100, 50, 0);
    assert_solid(img + IMG, S, 128, 128, 128, 2);
    dataset_close(d);
    remove_tree(out);

    /* class folders directly under src: only train.h5 */
    char flat[400];
    snprintf(flat, sizeof flat, "%s/train", src);
    if (folder_import(flat, out, 8, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(count_entries(out), 1);
    snprintf(path, sizeof path, "%s/train.h5", out);
    d = dataset_open(path, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(dataset_get_info(d)->n, 4);
    assert_int_equal(dataset_get_info(d)->h, 8);
    dataset_close(d);
    remove_tree(out);

    /* a corrupt JPEG, a truncated PNG, a text file: errors naming the file */
    snprintf(path, sizeof path, "%s/val/dog/g.jpg", src);
    unsigned char junk[300] = { 0xff, 0xd8, 0xff, 0xe0 };
    for (int i = 4; i < 300; i++) junk[i] = (unsigned char)(i * 37);
    write_bytes(path, junk, sizeof junk);
    assert_int_equal(folder_import(src, out, S, err, sizeof err), -1);
    assert_err("val/dog/g.jpg", "JPEG");
    assert_int_equal(count_entries(out), 0); /* the train.h5 made first is gone too */
    unlink(path);

    snprintf(path, sizeof path, "%s/train/dog/c.png", src);
    FILE *fp = fopen(path, "rb");
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/train/dog/h.png", src);
    write_bytes(path, buf, len / 2);
    assert_int_equal(folder_import(src, out, S, err, sizeof err), -1);
    assert_err("train/dog/h.png", "PNG");
    assert_int_equal(count_entries(out), 0);
    unlink(path);

    snprintf(path, sizeof path, "%s/train/cat/notes.txt", src);
    write_bytes(path, "hello", 5);
    assert_int_equal(folder_import(src, out, S, err, sizeof err), -1);
    assert_err("train/cat/notes.txt", "not a JPEG or PNG");
    assert_int_equal(count_entries(out), 0);
    unlink(path);

    mkdirs(src, "val/bird");
    assert_int_equal(folder_import(src, out, S, err, sizeof err), -1);
    assert_err("val/bird", "not a class");
    assert_int_equal(count_entries(out), 0);
}

/* Area average when shrinking, bilinear when enlarging: checked on ramps. */
static void test_resize(void **state)
{
    (void)state;
    /* 8x4 -> shorter side 2: each output pixel averages a 2x2 block of the
     * centre crop (columns 2..5 of the 4x8 resized... i.e. source columns 2..5) */
    uint8_t src[4 * 8 * 3], dst[2 * 2 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++)
            for (int ch = 0; ch < 3; ch++) src[(y * 8 + x) * 3 + ch] = (uint8_t)(10 * x + 50 * y + ch);
    assert_int_equal(folder_resize_crop(src, 8, 4, 2, dst), 0);
    /* resized to 4x2 (w x h): output column o covers source columns 2o..2o+1;
     * the crop keeps resized columns 1..2, i.e. source columns 2..5 */
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++) {
            const double sx = 2 * (x + 1) + 0.5, sy = 2 * y + 0.5;
            assert_int_equal(dst[(y * 2 + x) * 3], (int)floor(10 * sx + 50 * sy + 0.5));
        }
    /* enlarging a 2x2 ramp to 4x4: bilinear with aligned centres */
    const uint8_t small[2 * 2 * 3] = { 0, 0, 0, 100, 100, 100, 40, 40, 40, 140, 140, 140 };
    uint8_t big[4 * 4 * 3];
    assert_int_equal(folder_resize_crop(small, 2, 2, 4, big), 0);
    const int row0[4] = { 0, 25, 75, 100 };
    for (int x = 0; x < 4; x++) assert_int_equal(big[x * 3], row0[x]);
    assert_int_equal(big[(1 * 4 + 1) * 3], 35); /* 25 + 0.25 * 40 */
}

/* ------------------------------------------------------------ synthetic */

static uint8_t *read_all(const char *path, long *n, int32_t **labels)
{
    dataset_t *d = dataset_open(path, err, sizeof err);
    if (!d) fail_msg("%s", err);
    const dataset_info_t *in = dataset_get_info(d);
    const size_t bytes = (size_t)in->h * in->w * in->c;
    *n = in->n;
    uint8_t *img = malloc((size_t)in->n * bytes);
    int64_t *idx = malloc((size_t)in->n * sizeof *idx);
    *labels = malloc((size_t)in->n * sizeof **labels);
    for (long i = 0; i < in->n; i++) idx[i] = i;
    assert_int_equal(dataset_read(d, idx, (int)in->n, img, *labels, err, sizeof err), 0);
    free(idx);
    dataset_close(d);
    return img;
}

static void test_synthetic(void **state)
{
    (void)state;
    char a[256], b[256], p[400], q[400];
    fresh_dir("synth_a", a, sizeof a);
    fresh_dir("synth_b", b, sizeof b);
    enum { N = 60, H = 16, W = 12, C = 3, K = 10 };
    if (synthetic_generate(a, N, H, W, C, K, 7, err, sizeof err)) fail_msg("%s", err);
    if (synthetic_generate(b, N, H, W, C, K, 7, err, sizeof err)) fail_msg("%s", err);
    long na, nb;
    int32_t *la, *lb;
    snprintf(p, sizeof p, "%s/train.h5", a);
    snprintf(q, sizeof q, "%s/train.h5", b);
    uint8_t *ia = read_all(p, &na, &la), *ib = read_all(q, &nb, &lb);
    assert_int_equal(na, N);
    assert_int_equal(nb, N);
    assert_memory_equal(ia, ib, (size_t)N * H * W * C);
    assert_memory_equal(la, lb, N * sizeof *la);
    int seen[K] = { 0 };
    for (int i = 0; i < N; i++) seen[la[i]]++;
    for (int k = 0; k < K; k++) assert_int_equal(seen[k], N / K);
    /* synthetic_image is what the file holds */
    uint8_t one[H * W * C];
    synthetic_image(one, H, W, C, la[13], 7, 13);
    assert_memory_equal(one, ia + 13 * H * W * C, sizeof one);
    synthetic_image(one, H, W, C, la[13], 8, 13);
    assert_memory_not_equal(one, ia + 13 * H * W * C, sizeof one);
    /* classes differ clearly on average: mean |a - b| of class means */
    double cm[K][H * W * C];
    memset(cm, 0, sizeof cm);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < H * W * C; j++) cm[la[i]][j] += ia[i * H * W * C + j];
    for (int k = 1; k < K; k++) {
        double diff = 0;
        for (int j = 0; j < H * W * C; j++) diff += fabs(cm[k][j] - cm[0][j]) / (N / K);
        assert_true(diff / (H * W * C) > 5);
    }
    free(ia);
    free(ib);
    free(la);
    free(lb);

    snprintf(p, sizeof p, "%s/test.h5", a);
    ia = read_all(p, &na, &la);
    assert_int_equal(na, 12);
    dataset_t *d = dataset_open(p, err, sizeof err);
    assert_non_null(d);
    assert_string_equal(dataset_get_info(d)->name, "synthetic-shapes");
    assert_string_equal(dataset_get_info(d)->split, "test");
    assert_string_equal(dataset_get_info(d)->class_names[0], "square");
    assert_string_equal(dataset_get_info(d)->class_names[8], "square-dark");
    dataset_close(d);
    synthetic_image(one, H, W, C, la[0], 7, SYNTHETIC_TEST_BASE);
    assert_memory_equal(one, ia, sizeof one);
    free(ia);
    free(la);

    /* bad arguments write nothing */
    assert_int_equal(synthetic_generate(b, 5, H, W, C, K, 7, err, sizeof err), -1);
    assert_err(b, "at least one per class");
    assert_int_equal(synthetic_generate(b, N, H, W, 1, 40, 7, err, sizeof err), -1);
    assert_err(b, "classes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_open_bad_files),
        cmocka_unit_test(test_fixed_length_strings),
        cmocka_unit_test(test_writer_bad_input),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_idx_bad_input),
        cmocka_unit_test(test_cifar10),
        cmocka_unit_test(test_folder),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_synthetic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
