/* Image data sets in HDF5: the writer (temporary file, extendible /images and
 * /labels, streaming statistics, attributes, fsync, rename), shard files and
 * the index over them; the reader is dataset_read.c. See dataset.h for the
 * schema.
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
#include "io/dataset_internal.h"
#include "io/io_path.h"

#define LABELS_CHUNK 4096
#define IMAGES_CHUNK_BYTES (64 * 1024)
#define IMAGES_CHUNK_MAX 16
/* Exact integer pixel sums: sum of squares stays below 2^64. */
#define MAX_PIXELS_PER_CHANNEL (UINT64_MAX / (255u * 255u))

/* Closes any HDF5 identifier we may hold; invalid ones are ignored. */

void ds_h5close(hid_t *id)
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
const char *ds_type_name(hid_t type, char *buf, size_t len)
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
hid_t ds_access_plist(size_t chunk_bytes)
{
    size_t nbytes = 8 * chunk_bytes;
    if (nbytes < ((size_t)1 << 20)) nbytes = (size_t)1 << 20;
    if (nbytes > ((size_t)32 << 20)) nbytes = (size_t)32 << 20;
    size_t chunks = chunk_bytes ? nbytes / chunk_bytes : 1;
    size_t nslots = 100 * (chunks ? chunks : 1) + 1; /* odd, roughly 100x the chunks */
    if (nslots > 100003) nslots = 100003;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl < 0) return dapl;
    if (H5Pset_chunk_cache(dapl, nslots, nbytes, 0.75) < 0) ds_h5close(&dapl);
    return dapl;
}

/* File access: closing the file closes every object still open in it; file
 * locks are used but ignored where the file system has none (NFS, some
 * Lustre mounts; HDF5_USE_FILE_LOCKING in the environment still wins). */
hid_t ds_strong_close_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) ds_h5close(&fapl);
#if H5_VERSION_GE(1, 10, 7)
    if (fapl >= 0 && H5Pset_file_locking(fapl, 1, 1) < 0) ds_h5close(&fapl);
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
    if (info->h <= 0 || info->w <= 0 || info->c <= 0 || info->h > DS_MAX_SIDE ||
        info->w > DS_MAX_SIDE || info->c > DATASET_MAX_CHANNELS)
        return io_fail(err, errlen, "%s: image shape %dx%dx%d is not supported: height and "
                       "width must be 1..%d and channels 1..%d", path, info->h, info->w,
                       info->c, DS_MAX_SIDE, DATASET_MAX_CHANNELS);
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
int ds_stats_ok(double mean, double std)
{
    return mean >= 0.0 && mean <= 1.0 && std >= DATASET_MIN_STD && std <= DATASET_MAX_STD;
}


/* ------------------------------------------------------------------ writer */

struct dataset_writer {
    char *path;
    hid_t file, images, labels;
    dataset_info_t info; /* class_names owned; info.n counts the images written */
    size_t image_bytes;
    uint64_t sum[DATASET_MAX_CHANNELS], sumsq[DATASET_MAX_CHANNELS];
    int failed;          /* a write failed part-way: the file is inconsistent */
    int is_shard;        /* a shard file: `shard` says which */
    dataset_shard_t shard;
    h5_mem_file_t *mem;  /* the file, in memory until parked (its temporary made at create) */
};

static void writer_free(dataset_writer_t *w)
{
    ds_h5close(&w->images);
    ds_h5close(&w->labels);
    w->file = H5I_INVALID_HID; /* closed by h5_mem_abort */
    h5_mem_abort(w->mem);      /* and the temporary removed */
    dataset_info_free(&w->info);
    free(w->path);
    free(w);
}

/* The most memory a file built in memory may take: half the machine's (a
 * guess that leaves room for everything else; 0 when unknown). */
static size_t memory_budget(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (size_t)((double)pages * (double)page / 2);
}

static hid_t create_extendible(hid_t file, const char *name, hid_t type, int rank,
                               const hsize_t *dims, const hsize_t *chunk, size_t chunk_bytes)
{
    hsize_t maxdims[4];
    for (int i = 0; i < rank; i++) maxdims[i] = dims[i];
    maxdims[0] = H5S_UNLIMITED;
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = ds_access_plist(chunk_bytes);
    hid_t ds = H5I_INVALID_HID;
    if (space >= 0 && dcpl >= 0 && dapl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0)
        ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, dapl);
    ds_h5close(&space);
    ds_h5close(&dcpl);
    ds_h5close(&dapl);
    return ds;
}

/* A writer of a single-file data set (shard NULL) or of a shard file. */
static dataset_writer_t *writer_create(const char *path, const dataset_info_t *info,
                                       const dataset_shard_t *shard, char *err, size_t errlen)
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
    w->info = *info;
    w->info.n = 0;
    w->info.shards = 0;
    if (shard) w->is_shard = 1, w->shard = *shard;
    w->info.class_names = malloc((size_t)info->num_classes * sizeof *info->class_names);
    w->path = strdup(path);
    if (!w->info.class_names || !w->path) {
        io_fail(err, errlen, "%s: out of memory", path);
        writer_free(w);
        return NULL;
    }
    memcpy(w->info.class_names, info->class_names,
           (size_t)info->num_classes * sizeof *info->class_names);
    const int h = info->h, wd = info->w, c = info->c;
    w->image_bytes = (size_t)h * (size_t)wd * (size_t)c;

    io_file_err_t e = {path, err, errlen, 0};
    if (make_parent_dirs(path, err, errlen)) {
        writer_free(w);
        return NULL;
    }
    size_t per_chunk = IMAGES_CHUNK_BYTES / w->image_bytes;
    if (per_chunk < 1) per_chunk = 1;
    if (per_chunk > IMAGES_CHUNK_MAX) per_chunk = IMAGES_CHUNK_MAX;
    /* Built in memory, sized for the images expected (one allocation; it
     * grows when more come), written in one go when parked: a full disk is
     * then an ordinary write error (h5_atomic.h), which HDF5 1.10 cannot
     * recover from in the middle of its own writes. */
    const long expect = shard ? shard->images : info->n > 0 ? info->n : 0;
    const size_t chunks = ((size_t)expect + per_chunk - 1) / per_chunk;
    const double bytes = (double)chunks * (double)per_chunk * (double)w->image_bytes +
                         ((double)expect / LABELS_CHUNK + 1) * LABELS_CHUNK * 4 + (1 << 20);
    const size_t budget = memory_budget();
    if (budget && bytes > (double)budget) {
        io_fail(err, errlen, "%s: %s is built in memory and needs %.3g GB, more than half of "
                "this machine's memory (%.3g GB): %s", path, shard ? "a shard" : "a data set file",
                bytes / 1e9, 2.0 * (double)budget / 1e9,
                shard ? "give more shards (--shards)" : "import it as shards (--shards K)");
        writer_free(w);
        return NULL;
    }
    if (!(w->mem = h5_mem_create(w->path, (size_t)bytes, H5P_DEFAULT, 0, &e))) {
        writer_free(w);
        return NULL;
    }
    w->file = h5_mem_file(w->mem);

    const hsize_t idims[4] = { 0, (hsize_t)h, (hsize_t)wd, (hsize_t)c };
    const hsize_t ichunk[4] = { per_chunk, (hsize_t)h, (hsize_t)wd, (hsize_t)c };
    w->images = create_extendible(w->file, "images", H5T_STD_U8LE, 4, idims, ichunk,
                                  per_chunk * w->image_bytes);
    const hsize_t ldims[1] = { 0 }, lchunk[1] = { LABELS_CHUNK };
    if (w->images >= 0)
        w->labels = create_extendible(w->file, "labels", H5T_STD_I32LE, 1, ldims, lchunk,
                                      LABELS_CHUNK * sizeof(int32_t));
    if (w->images < 0 || w->labels < 0) {
        io_fail(err, errlen, "%s: cannot create /%s in the file in memory (H5Dcreate failed): "
                "out of memory?", path, w->images < 0 ? "images" : "labels");
        writer_free(w);
        return NULL;
    }
    return w;
}

dataset_writer_t *dataset_writer_create(const char *path, const dataset_info_t *info,
                                        char *err, size_t errlen)
{
    return writer_create(path, info, NULL, err, errlen);
}

dataset_writer_t *dataset_writer_create_shard(const char *path, const dataset_info_t *info,
                                              const dataset_shard_t *shard, char *err,
                                              size_t errlen)
{
    if (!shard || shard->count < 1 || shard->count > DATASET_MAX_SHARDS || shard->index < 0 ||
        shard->index >= shard->count || shard->first < 0 || shard->images < 1 ||
        strlen(shard->import_id) != DATASET_IMPORT_ID_LEN) {
        io_fail(err, errlen, "%s: internal error: no valid shard position given", path);
        return NULL;
    }
    return writer_create(path, info, shard, err, errlen);
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
    ds_h5close(&fs);
    ds_h5close(&ms);
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
        io_fail(err, errlen, "%s: writing images %ld..%ld to the file in memory failed "
                "(H5Dwrite): out of memory?", w->path, w->info.n, w->info.n + count - 1);
        return IO_WRITE_FAILED;
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

void dataset_stats_from_sums(long n, int h, int w, int c, const uint64_t *sum,
                             const uint64_t *sumsq, double *mean, double *std)
{
    const double npix = (double)n * h * w;
    for (int ch = 0; ch < c; ch++) {
        if (npix <= 0) {
            mean[ch] = std[ch] = 0;
            continue;
        }
        const double m = (double)sum[ch] / npix;
        double var = (double)sumsq[ch] / npix - m * m;
        if (var < 0) var = 0;
        mean[ch] = m / 255.0;
        std[ch] = sqrt(var) / 255.0;
    }
}

void dataset_writer_sums(const dataset_writer_t *w, uint64_t *sum, uint64_t *sumsq)
{
    memcpy(sum, w->sum, (size_t)w->info.c * sizeof *sum);
    memcpy(sumsq, w->sumsq, (size_t)w->info.c * sizeof *sumsq);
}

void dataset_writer_stats(const dataset_writer_t *w, double *mean, double *std)
{
    dataset_stats_from_sums(w->info.n, w->info.h, w->info.w, w->info.c, w->sum, w->sumsq, mean,
                            std);
}

int dataset_stats_check(const char *path, int c, const double *mean, const double *std,
                        char *err, size_t errlen)
{
    for (int ch = 0; ch < c; ch++)
        if (!ds_stats_ok(mean[ch], std[ch]))
            return io_fail(err, errlen, "%s: channel %d has mean %g and std %g: the mean must be "
                           "in [0, 1] and the std in [%g, %g] (are all pixels of that channel "
                           "equal?)", path, ch, mean[ch], std[ch], DATASET_MIN_STD,
                           DATASET_MAX_STD);
    return 0;
}

/* The attributes every data-set file has (format, version, name, split,
 * source, classes); returns the name of the one that failed, or NULL. */
static const char *write_common_attributes(hid_t f, const char *format, const dataset_info_t *in)
{
    const hid_t i32 = H5T_NATIVE_INT;
    const int version = DATASET_FORMAT_VERSION, classes = in->num_classes;
    const char **names = malloc((size_t)classes * sizeof *names);
    if (!names) return "class_names";
    for (int k = 0; k < classes; k++) names[k] = in->class_names[k];
    const char *failed = NULL;
    if (h5_attr_write_string(f, "format", format, NULL)) failed = "format";
    else if (h5_attr_write(f, "format_version", i32, i32, &version, NULL))
        failed = "format_version";
    else if (h5_attr_write_string(f, "name", in->name, NULL)) failed = "name";
    else if (h5_attr_write_string(f, "split", in->split, NULL)) failed = "split";
    else if (h5_attr_write_string(f, "source", in->source, NULL)) failed = "source";
    else if (h5_attr_write(f, "num_classes", i32, i32, &classes, NULL)) failed = "num_classes";
    else if (h5_attr_write_strings(f, "class_names", names, (size_t)classes, NULL))
        failed = "class_names";
    free(names);
    return failed;
}

/* mean and std per channel; the name of the one that failed, or NULL. */
static const char *write_stats_attributes(hid_t f, int c, const double *mean, const double *std)
{
    const hid_t f64 = H5T_NATIVE_DOUBLE;
    if (h5_attr_write_array(f, "mean", f64, f64, (size_t)c, mean, NULL)) return "mean";
    if (h5_attr_write_array(f, "std", f64, f64, (size_t)c, std, NULL)) return "std";
    return NULL;
}

/* A shard's position in its split; the name of the one that failed, or NULL. */
static const char *write_shard_attributes(hid_t f, const dataset_shard_t *sh)
{
    const hid_t i32 = H5T_NATIVE_INT, i64 = H5T_STD_I64LE;
    const long long first = sh->first;
    if (h5_attr_write(f, DS_ATTR_SHARD_INDEX, i32, i32, &sh->index, NULL))
        return DS_ATTR_SHARD_INDEX;
    if (h5_attr_write(f, DS_ATTR_SHARD_COUNT, i32, i32, &sh->count, NULL))
        return DS_ATTR_SHARD_COUNT;
    if (h5_attr_write(f, DS_ATTR_FIRST_IMAGE, i64, H5T_NATIVE_LLONG, &first, NULL))
        return DS_ATTR_FIRST_IMAGE;
    if (h5_attr_write_string(f, DS_ATTR_IMPORT_ID, sh->import_id, NULL)) return DS_ATTR_IMPORT_ID;
    return NULL;
}

int dataset_writer_park(dataset_writer_t *w, const double *mean, const double *std,
                        io_pending_t *out, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    out->path = out->tmp = NULL;
    if (!w) return io_fail(err, errlen, "dataset_writer_park: no writer");
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
    if (!w->is_shard && dataset_stats_check(w->path, w->info.c, m, s, err, errlen)) goto out;
    rc = IO_WRITE_FAILED; /* from here on only memory and the disk can fail */
    bad = write_common_attributes(w->file, w->is_shard ? DATASET_SHARD_FORMAT : DATASET_FORMAT,
                                  &w->info);
    if (!bad) bad = w->is_shard ? write_shard_attributes(w->file, &w->shard)
                                : write_stats_attributes(w->file, w->info.c, m, s);
    if (bad) {
        io_fail(err, errlen, "%s: cannot write the attribute %s to the file in memory "
                "(H5Acreate/H5Awrite failed): out of memory?", w->path, bad);
        goto out;
    }
    ds_h5close(&w->images);
    ds_h5close(&w->labels);
    io_file_err_t e = {w->path, err, errlen, 0};
    w->file = H5I_INVALID_HID;
    const int st = h5_mem_finish(w->mem, out, &e); /* frees mem, removes the temporary on failure */
    w->mem = NULL;
    if (st == 0) rc = 0;
out:
    writer_free(w);
    return rc;
}

int dataset_writer_finish(dataset_writer_t *w, const double *mean, const double *std,
                          char *err, size_t errlen)
{
    io_pending_t p;
    int rc = dataset_writer_park(w, mean, std, &p, err, errlen);
    if (rc) return rc;
    io_file_err_t e = {p.path, err, errlen, 0};
    rc = io_pending_commit(&p, &e) ? IO_WRITE_FAILED : 0;
    io_pending_free(&p);
    return rc;
}

void dataset_writer_abort(dataset_writer_t *w)
{
    if (!w) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    writer_free(w);
}


/* ------------------------------------------------------------------ index */

void dataset_shard_name(char *buf, size_t len, const char *split, const char *import_id, int i,
                        int count)
{
    snprintf(buf, len, "%s-%s-%05d-of-%05d.h5", split, import_id, i, count);
}

typedef struct {
    const dataset_info_t *info;
    const char *import_id;
    const char *const *names;
    const long *counts;
    int shards;
} index_arg_t;

/* /name as a virtual dataset of `rank` dimensions (rows of `row`, row[0]
 * unused) over the shards' /name, each shard's rows in turn. */
static hid_t create_virtual(hid_t file, const char *name, hid_t type, int rank,
                            const hsize_t *row, const index_arg_t *a)
{
    hsize_t dims[4], start[4] = {0, 0, 0, 0}, count[4];
    for (int i = 0; i < rank; i++) dims[i] = count[i] = row[i];
    dims[0] = (hsize_t)a->info->n;
    hid_t vspace = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = H5I_INVALID_HID;
    int ok = vspace >= 0 && dcpl >= 0;
    char source[16];
    snprintf(source, sizeof source, "/%s", name);
    for (int i = 0; ok && i < a->shards; i++) {
        count[0] = (hsize_t)a->counts[i];
        hid_t sel = H5Scopy(vspace), src = H5Screate_simple(rank, count, NULL);
        ok = sel >= 0 && src >= 0 &&
             H5Sselect_hyperslab(sel, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Pset_virtual(dcpl, sel, a->names[i], source, src) >= 0;
        ds_h5close(&sel);
        ds_h5close(&src);
        start[0] += count[0];
    }
    if (ok) ds = H5Dcreate2(file, name, type, vspace, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ds_h5close(&vspace);
    ds_h5close(&dcpl);
    return ds;
}

static int fill_index(hid_t f, const void *arg, io_file_err_t *e)
{
    const index_arg_t *a = arg;
    const dataset_info_t *in = a->info;
    const char *bad = write_common_attributes(f, DATASET_FORMAT, in);
    if (!bad) bad = write_stats_attributes(f, in->c, in->mean, in->std);
    if (!bad && h5_attr_write_strings(f, DS_ATTR_SHARDS, a->names, (size_t)a->shards, NULL))
        bad = DS_ATTR_SHARDS;
    long long *counts = bad ? NULL : malloc((size_t)a->shards * sizeof *counts);
    if (!bad && !counts) bad = DS_ATTR_SHARD_IMAGES;
    for (int i = 0; counts && i < a->shards; i++) counts[i] = a->counts[i];
    if (!bad && h5_attr_write_array(f, DS_ATTR_SHARD_IMAGES, H5T_STD_I64LE, H5T_NATIVE_LLONG,
                                    (size_t)a->shards, counts, NULL))
        bad = DS_ATTR_SHARD_IMAGES;
    free(counts);
    if (!bad && h5_attr_write_string(f, DS_ATTR_IMPORT_ID, a->import_id, NULL))
        bad = DS_ATTR_IMPORT_ID;
    if (bad) return io_file_fail(e, "cannot write the attribute %s (out of memory?)", bad);
    const hsize_t irow[4] = {0, (hsize_t)in->h, (hsize_t)in->w, (hsize_t)in->c}, lrow[1] = {0};
    hid_t images = create_virtual(f, "images", H5T_STD_U8LE, 4, irow, a);
    hid_t labels = images < 0 ? H5I_INVALID_HID
                              : create_virtual(f, "labels", H5T_STD_I32LE, 1, lrow, a);
    const int ok = images >= 0 && labels >= 0;
    ds_h5close(&images);
    ds_h5close(&labels);
    return ok ? 0 : io_file_fail(e, "cannot create the virtual /images and /labels over %d "
                                 "shards (H5Dcreate failed; out of memory?)", a->shards);
}

int dataset_index_write(const char *path, const dataset_info_t *info, const char *import_id,
                        const char *const *shard_names, const long *shard_images, int shards,
                        char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (check_info(path, info, err, errlen) ||
        dataset_stats_check(path, info->c, info->mean, info->std, err, errlen))
        return -1;
    long total = 0;
    for (int i = 0; i < shards; i++) total += shard_images[i];
    if (shards < 1 || shards > DATASET_MAX_SHARDS || total != info->n)
        return io_fail(err, errlen, "%s: internal error: %d shards of %ld images for %ld", path,
                       shards, total, info->n);
    const index_arg_t a = {info, import_id, shard_names, shard_images, shards};
    io_file_err_t e = {path, err, errlen, 0};
    /* the shard list grows with K: about 100 bytes a shard per dataset */
    const size_t increment = 65536 + (size_t)shards * 512;
    return h5_atomic_write_v110(path, increment, fill_index, &a, &e) ? IO_WRITE_FAILED : 0;
}

int dataset_shard_path(const char *index, int i, const char *name, char **path, char *err,
                       size_t errlen)
{
    *path = NULL;
    if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return io_fail(err, errlen, "%s: the attribute %s names shard %d \"%s\", not a file in "
                       "the index's directory: %s", index, DS_ATTR_SHARDS, i, name, DS_RECREATE);
    /* relative to the index's directory, as HDF5 resolves the virtual
     * datasets' sources */
    const char *slash = strrchr(index, '/');
    const int dirlen = slash ? (int)(slash - index) + 1 : 0;
    const size_t len = (size_t)dirlen + strlen(name) + 1;
    if (!(*path = malloc(len))) return io_fail(err, errlen, "%s: out of memory", index);
    snprintf(*path, len, "%.*s%s", dirlen, index, name);
    struct stat st;
    io_file_err_t e = {*path, err, errlen, 0};
    int rc = 0;
    if (lstat(*path, &st) != 0)
        rc = io_fail(err, errlen, "%s: shard %d of %s is not there (%s): copy the data set's "
                     "directory whole, or import it again", *path, i, index, strerror(errno));
    else if (S_ISLNK(st.st_mode))
        rc = io_fail(err, errlen, "%s: shard %d of %s is a symbolic link: shards are read only as "
                     "regular files in the index's directory (a link may lead out of it); put "
                     "the file itself there (cp -L), or import the data set again", *path, i,
                     index);
    else
        rc = io_check_input(&e, "data set shard", 1, NULL);
    if (rc) {
        free(*path);
        *path = NULL;
    }
    return rc ? -1 : 0;
}

/* An import id as the importer makes them: DATASET_IMPORT_ID_LEN hex digits
 * (it names staging's directory: nothing else may pass). */
static int import_id_ok(const char *id)
{
    if (strlen(id) != DATASET_IMPORT_ID_LEN) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

int dataset_index_shards(const char *path, char ***names, char *import_id)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *names = NULL;
    if (import_id) import_id[0] = '\0';
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    io_file_err_t e = {path, NULL, 0, 0};
    hid_t fapl = ds_strong_close_fapl();
    hid_t f = fapl < 0 ? H5I_INVALID_HID : h5_open_input("data set", fapl, NULL, NULL, &e);
    ds_h5close(&fapl);
    if (f < 0) return 0;
    h5_attr_t a;
    int n = 0;
    if (h5_attr_open(f, DS_ATTR_SHARDS, &a) == ATTR_OK) {
        if (a.cls == H5T_STRING && a.rank == 1 && a.count >= 1 &&
            a.count <= DATASET_MAX_SHARDS && h5_attr_read_strings(&a, names) == ATTR_OK)
            n = (int)a.count;
        h5_attr_close(&a);
    }
    char id[64] = "";
    if (n && import_id && h5_attr_open(f, DS_ATTR_IMPORT_ID, &a) == ATTR_OK) {
        if (a.cls == H5T_STRING && a.count == 1 &&
            h5_attr_read_string(&a, id, sizeof id) == ATTR_OK && import_id_ok(id))
            memcpy(import_id, id, DATASET_IMPORT_ID_LEN + 1);
        h5_attr_close(&a);
    }
    ds_h5close(&f);
    return n;
}

dataset_info_t dataset_info_of_import(const char *name, const char *source, int side, int c,
                                      int num_classes, char (*names)[DATASET_NAME_MAX])
{
    dataset_info_t info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "%s", name);
    snprintf(info.source, sizeof info.source, "%s", source);
    info.h = info.w = side;
    info.c = c;
    info.num_classes = num_classes;
    info.class_names = names;
    return info;
}
