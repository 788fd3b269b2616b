/* Writes the hand-made regression inputs of tests/fuzz/regressions/: the
 * seeds of run.sh, each broken the way a bug that was fixed needed (the
 * comments say which). Made once and kept with the inputs libFuzzer found;
 * rerun only to remake them:
 *   tests/fuzz/run.sh builds build/fuzz/make_regressions and the seeds, then
 *   build/fuzz/make_regressions build/fuzz/seeds tests/fuzz/regressions */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "core/vit/model.h"
#include "io/checkpoint.h"

static const char *seeds, *out;

static void die(const char *what)
{
    fprintf(stderr, "make_regressions: %s\n", what);
    exit(1);
}

/* Copies seeds/SRC to out/DST and opens the copy for writing. */
static hid_t copy_open(const char *src, const char *dst, char *path, size_t len)
{
    char from[1024];
    snprintf(from, sizeof from, "%s/%s", seeds, src);
    snprintf(path, len, "%s/%s", out, dst);
    FILE *a = fopen(from, "rb"), *b = fopen(path, "wb");
    if (!a || !b) die(from);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) die(path);
    fclose(a);
    if (fclose(b)) die(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) die(path);
    return f;
}

static void put_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n,
                     const void *v)
{
    if (H5Aexists(loc, name) > 0 && H5Adelete(loc, name) < 0) die(name);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = n ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, v) < 0) die(name);
    H5Aclose(a);
    H5Sclose(space);
}

int main(int argc, char **argv)
{
    if (argc != 3) die("usage: make_regressions SEEDS_DIR OUT_DIR");
    seeds = argv[1], out = argv[2];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char path[1024], err[1024];
    hid_t f;

    /* A long fixed-length string attribute (as h5py writes numpy bytes). The
     * reader converted fixed-length strings in place to a longer memory
     * type, and fuzz_dataset caught HDF5's conversion copying overlapping
     * memory (a type size of ~7 MB from corrupt metadata; that input was not
     * kept): h5_attr.c now reads them with the file's own type, converting
     * nothing. This input keeps the fixed-length path exercised. */
    f = copy_open("dataset/gray_train.h5", "dataset/fixed-string.h5", path, sizeof path);
    {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4000);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        char *s = calloc(1, 4000);
        if (!s) die("memory");
        memset(s, 'x', 3999);
        put_attr(f, "source", t, t, 0, s);
        free(s);
        H5Tclose(t);
    }
    H5Fclose(f);

    /* A std that underflows to 0 as a float: every normalised pixel became
     * infinite and training diverged (dataset.c: std in [1e-6, 1e6]). */
    f = copy_open("dataset/gray_train.h5", "dataset/std-1e-300.h5", path, sizeof path);
    const double tiny = 1e-300;
    put_attr(f, "std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &tiny);
    H5Fclose(f);

    /* /labels extended to 2^31 - 1 entries that were never written: the
     * reader allocated 8 GiB for them (dataset.c: fully_stored). */
    f = copy_open("dataset/gray_train.h5", "dataset/labels-unstored.h5", path, sizeof path);
    {
        hid_t ds = H5Dopen2(f, "labels", H5P_DEFAULT), ids = H5Dopen2(f, "images", H5P_DEFAULT);
        hsize_t n = 2147483647u, idims[4] = {n, 8, 8, 1};
        if (ds < 0 || ids < 0 || H5Dset_extent(ds, &n) < 0 || H5Dset_extent(ids, idims) < 0)
            die("labels extent");
        H5Dclose(ds);
        H5Dclose(ids);
    }
    H5Fclose(f);

    /* A NaN parameter under a valid checksum loaded without a word
     * (checkpoint.c now rejects non-finite values). */
    snprintf(path, sizeof path, "%s/checkpoint/ckpt-1.h5", seeds);
    mimae_config_t cfg;
    if (checkpoint_read_config(path, &cfg, err, sizeof err)) die(err);
    mimae_model_t *m = mimae_model_create(&cfg, 1, 0, err, sizeof err);
    train_state_t st;
    if (!m || checkpoint_load(path, m, &st, err, sizeof err)) die(err);
    m->param_mem[5] = NAN;
    snprintf(path, sizeof path, "%s/checkpoint/nan-parameter.h5", out);
    if (checkpoint_save(path, m, &st, err, sizeof err)) die(err);
    mimae_model_free(m);

    /* config.model.dec_depth = 2^30: verification built parameter tables
     * for a billion blocks before looking at the file (config_limits.h). */
    f = copy_open("checkpoint/ckpt-1.h5", "checkpoint/dec-depth-2-30.h5", path, sizeof path);
    const int deep = 1 << 30;
    put_attr(f, "config.model.dec_depth", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &deep);
    H5Fclose(f);

    /* An int config field stored as 1e300: cast to int unchecked, which is
     * undefined (results.c read_config). */
    f = copy_open("results/results.h5", "results/enc-dim-1e300.h5", path, sizeof path);
    const double big = 1e300;
    put_attr(f, "config.model.enc_dim", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &big);
    H5Fclose(f);

    /* /train/step holding NaN: cast to long unchecked (results.c read_train). */
    f = copy_open("results/results.h5", "results/step-nan.h5", path, sizeof path);
    {
        hid_t ds = H5Dopen2(f, "train/step", H5P_DEFAULT);
        const double v[3] = {1, NAN, 3};
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
            die("train/step");
        H5Dclose(ds);
    }
    H5Fclose(f);

    /* Every /train metric extended to 2^40 entries never written: 8 TiB
     * allocated (results.c check_stored). */
    f = copy_open("results/results.h5", "results/train-unstored.h5", path, sizeof path);
    {
        const char *names[] = {"step", "epoch", "views", "L_rec", "L_max", "L_min", "L_q", "L",
                               "lr", "grad_norm", "images_per_s", "data_wait_s"};
        hsize_t n = (hsize_t)1 << 40;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "train/%s", names[i]);
            hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
            if (ds < 0 || H5Dset_extent(ds, &n) < 0) die(name);
            H5Dclose(ds);
        }
    }
    H5Fclose(f);

    /* A variable-length string attribute in a file whose format attribute is
     * fixed-length: every string attribute used to be variable-length, read
     * through HDF5's global heap, where damaged heaps crashed H5HG_read or
     * looped in its parser (the most frequent failure of the results, data set
     * and checkpoint targets). h5_attr_open refuses it from the type alone. */
    f = copy_open("results/results.h5", "results/variable-string.h5", path, sizeof path);
    {
        hid_t t = H5Tcopy(H5T_C_S1);
        if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0) die("string type");
        const char *name = "damaged";
        put_attr(f, "run.name", t, t, 0, &name);
        H5Tclose(t);
    }
    H5Fclose(f);

    /* /labels re-created in compressed chunks of 2^25 entries (128 MiB, of
     * which the file holds ~130 kB), which HDF5 allocates and inflates whole
     * to read the four labels there are (h5_attr.c: h5_dataset_layout_check,
     * at most 64 MiB a chunk). */
    f = copy_open("dataset/gray_train.h5", "dataset/labels-chunk-128mib.h5", path, sizeof path);
    {
        const int32_t labels[4] = {0, 1, 2, 3};
        const hsize_t n = 4, most = H5S_UNLIMITED, chunk = (hsize_t)1 << 25;
        hid_t space = H5Screate_simple(1, &n, &most), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, &chunk) < 0 ||
            H5Pset_deflate(dcpl, 9) < 0 || H5Ldelete(f, "labels", H5P_DEFAULT) < 0)
            die("labels chunks");
        hid_t ds = H5Dcreate2(f, "labels", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0)
            die("labels");
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Fclose(f);

    /* step as a 24-bit integer, a type no writer makes: HDF5's conversions
     * of such damaged types are not to be trusted (h5_attr.c:
     * h5_type_is_standard_number). */
    f = copy_open("checkpoint/ckpt-1.h5", "checkpoint/step-int24.h5", path, sizeof path);
    {
        hid_t t = H5Tcopy(H5T_STD_I32LE);
        if (t < 0 || H5Tset_precision(t, 24) < 0 || H5Tset_size(t, 3) < 0) die("int24");
        const long long one = 1;
        put_attr(f, "step", t, H5T_NATIVE_LLONG, 0, &one);
        H5Tclose(t);
    }
    H5Fclose(f);
    return 0;
}
