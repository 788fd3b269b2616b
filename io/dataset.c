/* Image data sets in HDF5: the writer (temporary file, extendible /images and
 * /labels, streaming statistics, attributes, fsync, rename) and the reader
 * (validation of the whole schema at open, hyperslab reads of single images
 * or runs of consecutive ones). See dataset.h for the schema.
 *
 * No global mutable state: every handle lives in its writer or reader, so a
 * reader may be used from a background thread (one thread per handle; the
 * HDF5 library itself is not thread-safe, so two threads must not call into
 * it at the same time). HDF5's own error printing is switched off during our
 * calls and every failure is reported as one line in err. */
#include "io/dataset.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5_atomic.h"
#include "io/h5_attr.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define RECREATE "re-create the file with `mimae data`"
#define LABELS_CHUNK 4096
#define IMAGES_CHUNK_BYTES (64 * 1024)
#define IMAGES_CHUNK_MAX 16
#define MAX_SIDE 65536
/* Exact integer pixel sums: sum of squares stays below 2^64. */
#define MAX_PIXELS_PER_CHANNEL (UINT64_MAX / (255u * 255u))

/* Closes any HDF5 identifier we may hold; invalid ones are ignored. */
static void h5close(hid_t *id)
{
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
}

/* A short name for an HDF5 type, for messages ("float32", "int16", ...). */
static const char *type_name(hid_t type, char *buf, size_t len)
{
    size_t size = H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "",
                 8 * size);
        break;
    case H5T_FLOAT: snprintf(buf, len, "float%zu", 8 * size); break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    default: snprintf(buf, len, "a non-numeric type"); break;
    }
    return buf;
}

/* Dataset access properties with a chunk cache holding a few chunks of
 * chunk_bytes (at least 1 MiB, at most 32 MiB). */
static hid_t access_plist(size_t chunk_bytes)
{
    size_t nbytes = 8 * chunk_bytes;
    if (nbytes < ((size_t)1 << 20)) nbytes = (size_t)1 << 20;
    if (nbytes > ((size_t)32 << 20)) nbytes = (size_t)32 << 20;
    size_t chunks = chunk_bytes ? nbytes / chunk_bytes : 1;
    size_t nslots = 100 * (chunks ? chunks : 1) + 1; /* odd, roughly 100x the chunks */
    if (nslots > 100003) nslots = 100003;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl < 0) return dapl;
    if (H5Pset_chunk_cache(dapl, nslots, nbytes, 0.75) < 0) h5close(&dapl);
    return dapl;
}

/* File access: closing the file closes every object still open in it; file
 * locks are used but ignored where the file system has none (NFS, some
 * Lustre mounts; HDF5_USE_FILE_LOCKING in the environment still wins). */
static hid_t strong_close_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) h5close(&fapl);
#if H5_VERSION_GE(1, 10, 7)
    if (fapl >= 0 && H5Pset_file_locking(fapl, 1, 1) < 0) h5close(&fapl);
#endif
    return fapl;
}

/* mkdir -p of the directory part of path. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir) return io_fail(err, errlen, "%s: out of memory", path);
    char failed[PATH_MAX];
    int rc = 0;
    if (io_make_dirs(dir, failed, sizeof failed) != 0) {
        const int e = errno;
        rc = e == ENOTDIR
                 ? io_fail(err, errlen, "%s: cannot create the directory: %s exists and is not a "
                           "directory; choose another output directory", path, failed)
                 : io_fail(err, errlen, "%s: cannot create the directory %s (%s): choose a "
                           "writable output directory", path, failed, strerror(e));
    }
    free(dir);
    return rc;
}

static int check_string(const char *path, const char *what, const char *s, size_t max,
                        int allow_empty, char *err, size_t errlen)
{
    size_t len = s ? strnlen(s, max) : 0;
    if (!s || (!allow_empty && len == 0))
        return io_fail(err, errlen, "%s: the data set's %s is empty: give one", path, what);
    if (len >= max)
        return io_fail(err, errlen, "%s: the data set's %s is longer than %zu characters: "
                       "shorten it", path, what, max - 1);
    return 0;
}

static int check_info(const char *path, const dataset_info_t *info, char *err, size_t errlen)
{
    if (check_string(path, "name", info->name, sizeof info->name, 0, err, errlen) ||
        check_string(path, "split", info->split, sizeof info->split, 0, err, errlen) ||
        check_string(path, "source", info->source, sizeof info->source, 1, err, errlen))
        return -1;
    if (info->h <= 0 || info->w <= 0 || info->c <= 0 || info->h > MAX_SIDE ||
        info->w > MAX_SIDE || info->c > DATASET_MAX_CHANNELS)
        return io_fail(err, errlen, "%s: image shape %dx%dx%d is not supported: height and "
                       "width must be 1..%d and channels 1..%d", path, info->h, info->w,
                       info->c, MAX_SIDE, DATASET_MAX_CHANNELS);
    if (info->num_classes < 1 || info->num_classes > DATASET_MAX_CLASSES)
        return io_fail(err, errlen, "%s: %d classes is not supported: give 1..%d", path,
                       info->num_classes, DATASET_MAX_CLASSES);
    if (!info->class_names)
        return io_fail(err, errlen, "%s: no class names given: give num_classes names", path);
    for (int k = 0; k < info->num_classes; k++) {
        char what[48];
        snprintf(what, sizeof what, "class name %d", k);
        if (check_string(path, what, info->class_names[k], DATASET_NAME_MAX, 0, err, errlen))
            return -1;
    }
    return 0;
}

/* A channel's statistics as the reader accepts them (NaN fails too). */
static int dataset_stats_ok(double mean, double std)
{
    return mean >= 0.0 && mean <= 1.0 && std >= DATASET_MIN_STD && std <= DATASET_MAX_STD;
}

/* ------------------------------------------------------------------ writer */

struct dataset_writer {
    char *path;
    io_out_t out;        /* the temporary, created by HDF5 (H5F_ACC_EXCL) */
    hid_t file, images, labels;
    dataset_info_t info; /* class_names owned; info.n counts the images written */
    size_t image_bytes;
    uint64_t sum[DATASET_MAX_CHANNELS], sumsq[DATASET_MAX_CHANNELS];
    int failed;          /* a write failed part-way: the file is inconsistent */
};

static void writer_free(dataset_writer_t *w, int remove_tmp)
{
    h5close(&w->images);
    h5close(&w->labels);
    h5close(&w->file);
    if (remove_tmp) io_out_abort(&w->out);
    else if (w->out.fd >= 0) close(w->out.fd);
    dataset_info_free(&w->info);
    free(w->path);
    free(w);
}

static hid_t create_extendible(hid_t file, const char *name, hid_t type, int rank,
                               const hsize_t *dims, const hsize_t *chunk, size_t chunk_bytes)
{
    hsize_t maxdims[4];
    for (int i = 0; i < rank; i++) maxdims[i] = dims[i];
    maxdims[0] = H5S_UNLIMITED;
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = access_plist(chunk_bytes);
    hid_t ds = H5I_INVALID_HID;
    if (space >= 0 && dcpl >= 0 && dapl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0)
        ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, dapl);
    h5close(&space);
    h5close(&dcpl);
    h5close(&dapl);
    return ds;
}

dataset_writer_t *dataset_writer_create(const char *path, const dataset_info_t *info,
                                        char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!path || !*path) {
        io_fail(err, errlen, "dataset writer: no output path given");
        return NULL;
    }
    if (!info) {
        io_fail(err, errlen, "%s: no data set description given", path);
        return NULL;
    }
    if (check_info(path, info, err, errlen)) return NULL;

    dataset_writer_t *w = calloc(1, sizeof *w);
    if (!w) {
        io_fail(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    w->file = w->images = w->labels = H5I_INVALID_HID;
    w->out.fd = -1;
    w->out.tmp[0] = '\0';
    w->info = *info;
    w->info.n = 0;
    w->info.class_names = malloc((size_t)info->num_classes * sizeof *info->class_names);
    w->path = strdup(path);
    if (!w->info.class_names || !w->path) {
        io_fail(err, errlen, "%s: out of memory", path);
        writer_free(w, 0);
        return NULL;
    }
    memcpy(w->info.class_names, info->class_names,
           (size_t)info->num_classes * sizeof *info->class_names);
    const int h = info->h, wd = info->w, c = info->c;
    w->image_bytes = (size_t)h * (size_t)wd * (size_t)c;

    io_file_err_t e = {path, err, errlen, 0};
    if (make_parent_dirs(path, err, errlen) || io_out_name(&w->out, w->path, &e)) {
        writer_free(w, 0);
        return NULL;
    }
    /* H5F_ACC_EXCL creates with O_CREAT | O_EXCL: never through a link or
     * into a file that exists; the descriptor HDF5 writes through is then
     * adopted, so the commit checks that the name still names that file */
    hid_t fapl = strong_close_fapl();
    if (fapl >= 0) w->file = H5Fcreate(w->out.tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    void *handle = NULL;
    struct stat st;
    const int created = w->file >= 0;
    if (created && (H5Fget_vfd_handle(w->file, fapl, &handle) < 0 || !handle ||
                    fstat(*(int *)handle, &st) != 0 || io_out_adopt(&w->out, &st, &e))) {
        if (!e.failed) io_fail(err, errlen, "%s: cannot find the file HDF5 created (%s): write "
                               "to a local file system", path, w->out.tmp);
        h5close(&fapl);
        writer_free(w, 1);
        return NULL;
    }
    h5close(&fapl);
    if (!created) {
        io_fail(err, errlen, "%s: cannot create the HDF5 file %s (H5Fcreate failed): check that "
                "the output directory exists and is writable, and free disk space", path,
                w->out.tmp);
        w->out.tmp[0] = '\0'; /* nothing of ours to remove */
        writer_free(w, 0);
        return NULL;
    }

    size_t per_chunk = IMAGES_CHUNK_BYTES / w->image_bytes;
    if (per_chunk < 1) per_chunk = 1;
    if (per_chunk > IMAGES_CHUNK_MAX) per_chunk = IMAGES_CHUNK_MAX;
    const hsize_t idims[4] = { 0, (hsize_t)h, (hsize_t)wd, (hsize_t)c };
    const hsize_t ichunk[4] = { per_chunk, (hsize_t)h, (hsize_t)wd, (hsize_t)c };
    w->images = create_extendible(w->file, "images", H5T_STD_U8LE, 4, idims, ichunk,
                                  per_chunk * w->image_bytes);
    const hsize_t ldims[1] = { 0 }, lchunk[1] = { LABELS_CHUNK };
    if (w->images >= 0)
        w->labels = create_extendible(w->file, "labels", H5T_STD_I32LE, 1, ldims, lchunk,
                                      LABELS_CHUNK * sizeof(int32_t));
    if (w->images < 0 || w->labels < 0) {
        io_fail(err, errlen, "%s: cannot create /%s in %s (H5Dcreate failed): check free disk "
                "space", path, w->images < 0 ? "images" : "labels", w->out.tmp);
        writer_free(w, 1);
        return NULL;
    }
    return w;
}

/* Extends the 1-D or 4-D dataset ds from n to n + count rows and writes buf. */
static int append_rows(hid_t ds, hid_t memtype, int rank, const hsize_t *row, long n,
                       long count, const void *buf)
{
    hsize_t dims[4], start[4] = { 0, 0, 0, 0 }, cnt[4];
    for (int i = 0; i < rank; i++) dims[i] = cnt[i] = row[i];
    dims[0] = (hsize_t)(n + count);
    cnt[0] = (hsize_t)count;
    start[0] = (hsize_t)n;
    if (H5Dset_extent(ds, dims) < 0) return -1;
    hid_t fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(rank, cnt, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    h5close(&fs);
    h5close(&ms);
    return rc;
}

int dataset_writer_append(dataset_writer_t *w, const uint8_t *images, const int32_t *labels,
                          long count, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!w) return io_fail(err, errlen, "dataset_writer_append: no writer");
    if (w->failed)
        return io_fail(err, errlen, "%s: an earlier write failed: abort this writer and write "
                       "the data set again", w->path);
    if (count < 0)
        return io_fail(err, errlen, "%s: cannot append %ld images", w->path, count);
    if (count == 0) return 0;
    if (!images || !labels)
        return io_fail(err, errlen, "%s: append of %ld images without %s", w->path, count,
                       images ? "labels" : "pixels");
    for (long i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= w->info.num_classes)
            return io_fail(err, errlen, "%s: label %ld of image %ld is outside 0..%d (the data "
                           "set has %d classes): fix the labels of the source",
                           w->path, (long)labels[i], w->info.n + i, w->info.num_classes - 1,
                           w->info.num_classes);
    const uint64_t pixels = (uint64_t)(w->info.n + count) * (uint64_t)w->info.h *
                            (uint64_t)w->info.w;
    if (pixels > MAX_PIXELS_PER_CHANNEL)
        return io_fail(err, errlen, "%s: more than %llu pixels per channel: split the data set",
                       w->path, (unsigned long long)MAX_PIXELS_PER_CHANNEL);

    const hsize_t irow[4] = { 0, (hsize_t)w->info.h, (hsize_t)w->info.w, (hsize_t)w->info.c };
    const hsize_t lrow[1] = { 0 };
    if (append_rows(w->images, H5T_NATIVE_UINT8, 4, irow, w->info.n, count, images) < 0 ||
        append_rows(w->labels, H5T_NATIVE_INT32, 1, lrow, w->info.n, count, labels) < 0) {
        w->failed = 1;
        return io_fail(err, errlen, "%s: writing images %ld..%ld to %s failed (H5Dwrite): check "
                       "free disk space", w->path, w->info.n, w->info.n + count - 1, w->out.tmp);
    }

    const int c = w->info.c;
    const size_t values = (size_t)count * w->image_bytes;
    for (int ch = 0; ch < c; ch++) {
        uint64_t s = 0, ss = 0;
        for (size_t i = (size_t)ch; i < values; i += (size_t)c) {
            const uint64_t v = images[i];
            s += v;
            ss += v * v;
        }
        w->sum[ch] += s;
        w->sumsq[ch] += ss;
    }
    w->info.n += count;
    return 0;
}

void dataset_writer_stats(const dataset_writer_t *w, double *mean, double *std)
{
    const double npix = (double)w->info.n * w->info.h * w->info.w;
    for (int ch = 0; ch < w->info.c; ch++) {
        if (npix <= 0) {
            mean[ch] = std[ch] = 0;
            continue;
        }
        const double m = (double)w->sum[ch] / npix;
        double var = (double)w->sumsq[ch] / npix - m * m;
        if (var < 0) var = 0;
        mean[ch] = m / 255.0;
        std[ch] = sqrt(var) / 255.0;
    }
}

/* Writes every root attribute; returns the name of the one that failed. */
static const char *write_attributes(dataset_writer_t *w, const double *mean, const double *std)
{
    const dataset_info_t *in = &w->info;
    const hid_t f = w->file, i32 = H5T_NATIVE_INT, f64 = H5T_NATIVE_DOUBLE;
    const int version = DATASET_FORMAT_VERSION, classes = in->num_classes;
    const char **names = malloc((size_t)classes * sizeof *names);
    if (!names) return "class_names";
    for (int k = 0; k < classes; k++) names[k] = in->class_names[k];
    const char *failed = NULL;
    if (h5_attr_write_string(f, "format", DATASET_FORMAT, NULL)) failed = "format";
    else if (h5_attr_write(f, "format_version", i32, i32, &version, NULL))
        failed = "format_version";
    else if (h5_attr_write_string(f, "name", in->name, NULL)) failed = "name";
    else if (h5_attr_write_string(f, "split", in->split, NULL)) failed = "split";
    else if (h5_attr_write_string(f, "source", in->source, NULL)) failed = "source";
    else if (h5_attr_write(f, "num_classes", i32, i32, &classes, NULL)) failed = "num_classes";
    else if (h5_attr_write_strings(f, "class_names", names, (size_t)classes, NULL))
        failed = "class_names";
    else if (h5_attr_write_array(f, "mean", f64, f64, (size_t)in->c, mean, NULL))
        failed = "mean";
    else if (h5_attr_write_array(f, "std", f64, f64, (size_t)in->c, std, NULL)) failed = "std";
    free(names);
    return failed;
}

int dataset_writer_finish(dataset_writer_t *w, const double *mean, const double *std,
                          char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!w) return io_fail(err, errlen, "dataset_writer_finish: no writer");
    int rc = -1;
    double m[DATASET_MAX_CHANNELS], s[DATASET_MAX_CHANNELS];
    dataset_writer_stats(w, m, s);
    if (mean) memcpy(m, mean, (size_t)w->info.c * sizeof *m);
    if (std) memcpy(s, std, (size_t)w->info.c * sizeof *s);
    const char *bad;

    if (w->failed) {
        io_fail(err, errlen, "%s: an earlier write failed: write the data set again", w->path);
        goto out;
    }
    if (w->info.n == 0) {
        io_fail(err, errlen, "%s: no images were appended: the source holds no images",
                w->path);
        goto out;
    }
    for (int ch = 0; ch < w->info.c; ch++)
        if (!dataset_stats_ok(m[ch], s[ch])) {
            io_fail(err, errlen, "%s: channel %d has mean %g and std %g: the mean must be in "
                    "[0, 1] and the std in [%g, %g] (are all pixels of that channel equal?)",
                    w->path, ch, m[ch], s[ch], DATASET_MIN_STD, DATASET_MAX_STD);
            goto out;
        }
    if ((bad = write_attributes(w, m, s)) != NULL) {
        io_fail(err, errlen, "%s: cannot write the attribute %s to %s (H5Acreate/H5Awrite "
                "failed): check free disk space", w->path, bad, w->out.tmp);
        goto out;
    }
    h5close(&w->images);
    h5close(&w->labels);
    herr_t st = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (st < 0) {
        io_fail(err, errlen, "%s: closing %s failed (H5Fclose): check free disk space",
                w->path, w->out.tmp);
        goto out;
    }
    io_file_err_t e = {w->path, err, errlen, 0};
    if (io_out_commit(&w->out, &e)) goto out;
    rc = 0;
out:
    writer_free(w, rc != 0);
    return rc;
}

void dataset_writer_abort(dataset_writer_t *w)
{
    if (!w) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    writer_free(w, 1);
}

/* ------------------------------------------------------------------ reader */

struct dataset {
    char *path;
    hid_t file, images, space;
    int fd;              /* HDF5's descriptor of the file (-1: none), for fstat */
    io_file_id_t id;     /* the file as opened: a read checks it is unchanged */
    dataset_info_t info;
    size_t image_bytes;
    int32_t *labels;
};

/* Opens attribute `name` of the file; -1 with a message. */
static int open_attr(const dataset_t *d, const char *name, h5_attr_t *a, char *err,
                     size_t errlen)
{
    h5_attr_status_t st = h5_attr_open(d->file, name, a);
    if (st == ATTR_MISSING || st == ATTR_LOOKUP_FAILED)
        return io_fail(err, errlen, "%s: the attribute %s is missing: %s", d->path, name,
                       RECREATE);
    if (st != ATTR_OK)
        return io_fail(err, errlen, "%s: the attribute %s is %s: %s", d->path, name,
                       h5_attr_status_text(st), RECREATE);
    return 0;
}

/* Reads the string attribute `name` (count entries: a scalar or a 1-D array)
 * into out[i * stride], each at most stride - 1 characters; longer ones are
 * an error unless truncate is set. Fixed- and variable-length strings. */
static int read_strings(const dataset_t *d, const char *name, int count, char *out,
                        size_t stride, int truncate, char *err, size_t errlen)
{
    const char *path = d->path;
    h5_attr_t a;
    if (open_attr(d, name, &a, err, errlen)) return -1;
    char tn[32], **v = NULL;
    h5_attr_status_t st;
    int rc = -1;
    if (a.cls != H5T_STRING)
        io_fail(err, errlen, "%s: the attribute %s is %s, not a string: %s", path, name,
                type_name(a.type, tn, sizeof tn), RECREATE);
    else if (a.rank < 0 || a.rank > 1 || a.count != count)
        io_fail(err, errlen, "%s: the attribute %s has %lld entries (rank %d), expected %d: %s",
                path, name, a.count, a.rank, count, RECREATE);
    else if ((st = h5_attr_read_strings(&a, &v)) == ATTR_BAD_TYPE)
        io_fail(err, errlen, "%s: cannot read the attribute %s (string type): %s", path, name,
                RECREATE);
    else if (st == ATTR_NO_MEMORY)
        io_fail(err, errlen, "%s: out of memory reading the attribute %s", path, name);
    else if (st != ATTR_OK)
        io_fail(err, errlen, "%s: cannot read the attribute %s (H5Aread failed): %s", path,
                name, RECREATE);
    else
        rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        size_t len = strlen(v[i]);
        if (len >= stride) {
            if (!truncate) {
                rc = io_fail(err, errlen, "%s: entry %d of the attribute %s is %zu characters "
                             "long, at most %zu are supported: %s", path, i, name, len,
                             stride - 1, RECREATE);
                break;
            }
            len = stride - 1;
        }
        memcpy(out + (size_t)i * stride, v[i], len);
        out[(size_t)i * stride + len] = '\0';
    }
    free(v);
    h5_attr_close(&a);
    return rc;
}

/* Reads a numeric attribute of count entries (a scalar is 1 entry) as
 * memtype (H5T_NATIVE_INT or H5T_NATIVE_DOUBLE). */
static int read_numbers(const dataset_t *d, const char *name, hid_t memtype, int count,
                        void *out, char *err, size_t errlen)
{
    const char *path = d->path;
    h5_attr_t a;
    if (open_attr(d, name, &a, err, errlen)) return -1;
    char tn[32];
    int rc = -1;
    const int want_int = H5Tequal(memtype, H5T_NATIVE_INT) > 0;
    if (a.cls != H5T_INTEGER && (want_int || a.cls != H5T_FLOAT))
        io_fail(err, errlen, "%s: the attribute %s is %s, expected %s: %s", path, name,
                type_name(a.type, tn, sizeof tn), want_int ? "an integer" : "numbers",
                RECREATE);
    else if (a.rank < 0 || a.rank > 1 || a.count != count)
        io_fail(err, errlen, "%s: the attribute %s has %lld entries, expected %d: %s", path,
                name, a.count, count, RECREATE);
    else if (H5Aread(a.id, memtype, out) < 0)
        io_fail(err, errlen, "%s: cannot read the attribute %s (H5Aread failed): %s", path,
                name, RECREATE);
    else
        rc = 0;
    h5_attr_close(&a);
    return rc;
}

/* Opens /name and checks its type (integer of `size` bytes, signed or not)
 * and rank; dims receives the extent. */
static hid_t open_array(dataset_t *d, const char *name, size_t size, H5T_sign_t sign,
                        int rank, hsize_t *dims, char *err, size_t errlen)
{
    const char *path = d->path;
    const char *want = size == 1 ? "uint8" : "int32";
    char tn[32], why[128];
    if (H5Lexists(d->file, name, H5P_DEFAULT) <= 0) {
        io_fail(err, errlen, "%s: /%s is missing: %s", path, name, RECREATE);
        return H5I_INVALID_HID;
    }
    hid_t ds = H5Dopen2(d->file, name, H5P_DEFAULT);
    if (ds < 0) {
        io_fail(err, errlen, "%s: /%s cannot be opened as a dataset (H5Dopen failed): %s",
                path, name, RECREATE);
        return ds;
    }
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = -1;
    if (type < 0 || space < 0) {
        io_fail(err, errlen, "%s: cannot inspect /%s (H5Dget_type/H5Dget_space failed): %s",
                path, name, RECREATE);
    } else if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != size ||
               H5Tget_sign(type) != sign || !h5_type_is_standard_number(type)) {
        io_fail(err, errlen, "%s: /%s is %s, expected %s: %s", path, name,
                type_name(type, tn, sizeof tn), want, RECREATE);
    } else if (h5_dataset_layout_check(ds, why, sizeof why)) {
        io_fail(err, errlen, "%s: /%s has %s: %s", path, name, why, RECREATE);
    } else if (H5Sget_simple_extent_ndims(space) != rank) {
        io_fail(err, errlen, "%s: /%s has rank %d, expected %d%s: %s", path, name,
                H5Sget_simple_extent_ndims(space), rank, rank == 4 ? " (N, H, W, C)" : " (N)",
                RECREATE);
    } else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        io_fail(err, errlen, "%s: cannot read the shape of /%s: %s", path, name, RECREATE);
    } else {
        rc = 0;
    }
    h5close(&type);
    h5close(&space);
    if (rc) h5close(&ds);
    return ds;
}

/* Whether ds stores `bytes` (always true for a compressed one). */
static int fully_stored(hid_t ds, double bytes)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    const int filtered = dcpl < 0 || H5Pget_nfilters(dcpl) != 0;
    h5close(&dcpl);
    return filtered || (double)H5Dget_storage_size(ds) >= bytes;
}

/* Reopens /images with a chunk cache sized for its chunks. */
static int reopen_images_with_cache(dataset_t *d)
{
    size_t chunk_bytes = d->image_bytes;
    hid_t dcpl = H5Dget_create_plist(d->images);
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t chunk[4];
        if (H5Pget_chunk(dcpl, 4, chunk) == 4)
            chunk_bytes = (size_t)(chunk[0] * chunk[1] * chunk[2] * chunk[3]);
    }
    h5close(&dcpl);
    hid_t dapl = access_plist(chunk_bytes);
    if (dapl < 0) return -1;
    h5close(&d->images);
    d->images = H5Dopen2(d->file, "images", dapl);
    h5close(&dapl);
    return d->images < 0 ? -1 : 0;
}

static int open_and_validate(dataset_t *d, char *err, size_t errlen)
{
    const char *path = d->path;
    dataset_info_t *in = &d->info;
    /* a regular file (a FIFO would block HDF5's open for ever), and the file
     * HDF5 opened; its identity is what dataset_read checks against */
    io_file_err_t e = {path, err, errlen, 0};
    struct stat st;
    hid_t fapl = strong_close_fapl();
    if (fapl >= 0) d->file = h5_open_input("data set", fapl, &st, &d->fd, &e);
    h5close(&fapl);
    if (e.failed) return -1;
    if (d->file < 0) {
        if (H5Fis_hdf5(path) == 0)
            return io_fail(err, errlen, "%s: not an HDF5 file (H5Fopen failed): give a data set "
                           "made by `mimae data`", path);
        return io_fail(err, errlen, "%s: cannot open as HDF5 (H5Fopen failed; damaged, "
                       "unreadable, or locked by a writer; on a file system without locks "
                       "set HDF5_USE_FILE_LOCKING=FALSE): check the file or %s", path, RECREATE);
    }
    io_file_id_of(&st, &d->id);

    char format[64];
    if (H5Aexists(d->file, "format") <= 0)
        return io_fail(err, errlen, "%s: no attribute format: not a mimae data set; create one "
                       "with `mimae data`", path);
    if (read_strings(d, "format", 1, format, sizeof format, 1, err, errlen)) return -1;
    if (strcmp(format, DATASET_FORMAT) != 0)
        return io_fail(err, errlen, "%s: the attribute format is \"%s\", not \"%s\": not a mimae "
                       "data set; create one with `mimae data`", path, format, DATASET_FORMAT);
    int version = 0;
    if (read_numbers(d, "format_version", H5T_NATIVE_INT, 1, &version, err, errlen))
        return -1;
    if (version > DATASET_FORMAT_VERSION)
        return io_fail(err, errlen, "%s: format_version %d was written by a newer mimae (this "
                       "one reads version %d): update mimae", path, version,
                       DATASET_FORMAT_VERSION);
    if (version < DATASET_FORMAT_VERSION)
        return io_fail(err, errlen, "%s: format_version %d was written by an older mimae (this "
                       "one reads version %d): %s", path, version, DATASET_FORMAT_VERSION,
                       RECREATE);

    hsize_t idims[4], ldims[1];
    d->images = open_array(d, "images", 1, H5T_SGN_NONE, 4, idims, err, errlen);
    if (d->images < 0) return -1;
    hid_t labels = open_array(d, "labels", 4, H5T_SGN_2, 1, ldims, err, errlen);
    if (labels < 0) return -1;
    if (ldims[0] != idims[0]) {
        h5close(&labels);
        return io_fail(err, errlen, "%s: /labels has %llu entries but /images has %llu: %s", path,
                       (unsigned long long)ldims[0], (unsigned long long)idims[0], RECREATE);
    }
    if (idims[0] == 0 || idims[0] > (hsize_t)INT32_MAX) {
        h5close(&labels);
        return io_fail(err, errlen, "%s: /images holds %llu images (supported: 1..%ld): %s",
                       path, (unsigned long long)idims[0], (long)INT32_MAX, RECREATE);
    }
    if (idims[1] < 1 || idims[1] > MAX_SIDE || idims[2] < 1 || idims[2] > MAX_SIDE ||
        idims[3] < 1 || idims[3] > DATASET_MAX_CHANNELS) {
        h5close(&labels);
        return io_fail(err, errlen, "%s: /images has images of %llux%llux%llu (H x W x C): "
                       "height and width must be 1..%d and channels 1..%d: %s", path,
                       (unsigned long long)idims[1], (unsigned long long)idims[2],
                       (unsigned long long)idims[3], MAX_SIDE, DATASET_MAX_CHANNELS, RECREATE);
    }
    in->n = (long)idims[0];
    in->h = (int)idims[1];
    in->w = (int)idims[2];
    in->c = (int)idims[3];
    d->image_bytes = (size_t)in->h * (size_t)in->w * (size_t)in->c;
    /* all of it written (unless compressed, when the size cannot tell): a
     * damaged header must not make us allocate, or train on, what the file
     * does not hold (HDF5 returns zeros for unwritten parts) */
    const char *short_one = NULL;
    if (!fully_stored(labels, (double)in->n * 4.0)) short_one = "labels";
    else if (!fully_stored(d->images, (double)in->n * (double)d->image_bytes)) short_one = "images";
    if (short_one) {
        h5close(&labels);
        return io_fail(err, errlen, "%s: /%s is not completely stored in the file (truncated "
                       "or damaged): %s", path, short_one, RECREATE);
    }

    d->labels = malloc((size_t)in->n * sizeof *d->labels);
    if (!d->labels) {
        h5close(&labels);
        return io_fail(err, errlen, "%s: out of memory for %ld labels", path, in->n);
    }
    herr_t rd = H5Dread(labels, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->labels);
    h5close(&labels);
    if (rd < 0)
        return io_fail(err, errlen, "%s: cannot read /labels (H5Dread failed): %s", path,
                       RECREATE);

    if (read_strings(d, "name", 1, in->name, sizeof in->name, 0, err, errlen) ||
        read_strings(d, "split", 1, in->split, sizeof in->split, 0, err, errlen) ||
        read_strings(d, "source", 1, in->source, sizeof in->source, 1, err, errlen) ||
        read_numbers(d, "num_classes", H5T_NATIVE_INT, 1, &in->num_classes, err, errlen))
        return -1;
    if (in->num_classes < 1 || in->num_classes > DATASET_MAX_CLASSES)
        return io_fail(err, errlen, "%s: the attribute num_classes is %d (supported: 1..%d): %s",
                       path, in->num_classes, DATASET_MAX_CLASSES, RECREATE);
    in->class_names = calloc((size_t)in->num_classes, sizeof *in->class_names);
    if (!in->class_names)
        return io_fail(err, errlen, "%s: out of memory for %d class names", path,
                       in->num_classes);
    if (read_strings(d, "class_names", in->num_classes, in->class_names[0],
                     DATASET_NAME_MAX, 0, err, errlen) ||
        read_numbers(d, "mean", H5T_NATIVE_DOUBLE, in->c, in->mean, err, errlen) ||
        read_numbers(d, "std", H5T_NATIVE_DOUBLE, in->c, in->std, err, errlen))
        return -1;
    /* pixels are 0..1 here: a mean outside that, or a std the normalisation
     * (x - mean) / std in float would blow up on, is damage, not data */
    for (int ch = 0; ch < in->c; ch++)
        if (!dataset_stats_ok(in->mean[ch], in->std[ch]))
            return io_fail(err, errlen, "%s: channel %d has mean %g and std %g (on the 0..1 pixel "
                           "scale the mean must be in [0, 1], the std in [%g, %g]): %s", path, ch,
                           in->mean[ch], in->std[ch], DATASET_MIN_STD, DATASET_MAX_STD, RECREATE);
    for (long i = 0; i < in->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= in->num_classes)
            return io_fail(err, errlen, "%s: /labels[%ld] is %ld, outside 0..%d (num_classes "
                           "%d): %s", path, i, (long)d->labels[i], in->num_classes - 1,
                           in->num_classes, RECREATE);

    if (reopen_images_with_cache(d) < 0 || (d->space = H5Dget_space(d->images)) < 0)
        return io_fail(err, errlen, "%s: cannot reopen /images (H5Dopen failed): %s", path,
                       RECREATE);
    return 0;
}

dataset_t *dataset_open(const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!path || !*path) {
        io_fail(err, errlen, "dataset_open: no path given");
        return NULL;
    }
    dataset_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        io_fail(err, errlen, "%s: out of memory", path);
        free(d);
        return NULL;
    }
    d->file = d->images = d->space = H5I_INVALID_HID;
    d->fd = -1;
    if (open_and_validate(d, err, errlen)) {
        dataset_close(d);
        return NULL;
    }
    return d;
}

const dataset_info_t *dataset_get_info(const dataset_t *d) { return &d->info; }

const int32_t *dataset_labels(const dataset_t *d) { return d->labels; }

int dataset_read(dataset_t *d, const int64_t *indices, int count, uint8_t *images,
                 int32_t *labels, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!d) return io_fail(err, errlen, "dataset_read: no data set");
    if (count < 0) return io_fail(err, errlen, "%s: cannot read %d images", d->path, count);
    if (count == 0) return 0;
    if (!indices || !images)
        return io_fail(err, errlen, "%s: dataset_read without %s", d->path,
                       indices ? "an image buffer" : "indices");
    const dataset_info_t *in = &d->info;
    for (int i = 0; i < count; i++)
        if (indices[i] < 0 || indices[i] >= in->n)
            return io_fail(err, errlen, "%s: image index %lld (entry %d of the request) is "
                           "outside 0..%ld", d->path, (long long)indices[i], i, in->n - 1);
    /* A file truncated, grown, rewritten or replaced under us would be read
     * as zeros or as other images (HDF5 fills what is past the end): checked
     * before and after the read, so a batch read while it changed is never
     * returned. HDF5 checked at open that the file holds everything its
     * header addresses; the same size and identity keep that true. */
    io_file_err_t e = {d->path, err, errlen, 0};
    if (io_check_unchanged(&e, d->fd, &d->id)) return IO_CHANGED;
    /* Runs of consecutive indices are read with one hyperslab each. */
    for (int i = 0; i < count;) {
        int run = 1;
        while (i + run < count && indices[i + run] == indices[i + run - 1] + 1) run++;
        const hsize_t start[4] = { (hsize_t)indices[i], 0, 0, 0 };
        const hsize_t cnt[4] = { (hsize_t)run, (hsize_t)in->h, (hsize_t)in->w,
                                 (hsize_t)in->c };
        hid_t ms = H5Screate_simple(4, cnt, NULL);
        int ok = ms >= 0 &&
                 H5Sselect_hyperslab(d->space, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
                 H5Dread(d->images, H5T_NATIVE_UINT8, ms, d->space, H5P_DEFAULT,
                         images + (size_t)i * d->image_bytes) >= 0;
        h5close(&ms);
        if (!ok && io_check_unchanged(&e, d->fd, &d->id)) return IO_CHANGED;
        if (!ok)
            return io_fail(err, errlen, "%s: reading /images %lld..%lld failed (H5Dread): the "
                           "file may be damaged; %s", d->path, (long long)indices[i],
                           (long long)indices[i] + run - 1, RECREATE);
        if (labels)
            memcpy(labels + i, d->labels + indices[i], (size_t)run * sizeof *labels);
        i += run;
    }
    return io_check_unchanged(&e, d->fd, &d->id);
}

void dataset_close(dataset_t *d)
{
    if (!d) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h5close(&d->space);
    h5close(&d->images);
    h5close(&d->file);
    dataset_info_free(&d->info);
    free(d->labels);
    free(d->path);
    free(d);
}

void dataset_info_free(dataset_info_t *info)
{
    if (!info) return;
    free(info->class_names);
    info->class_names = NULL;
}
