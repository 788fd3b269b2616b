/* Image data sets in HDF5, the reader: validation of the whole schema at
 * open (of an index and every shard it lists, or of a single file), hyperslab
 * reads of single images or runs of consecutive ones, change detection of
 * every file read. See dataset.h for the schema.
 *
 * No global mutable state: every handle lives in its reader, so a reader may
 * be used from a background thread (one thread per handle; the HDF5 library
 * itself is not thread-safe, so two threads must not call into it at the
 * same time). HDF5's own error printing is switched off during our calls and
 * every failure is reported as one line in err. */
#include "io/dataset.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset_internal.h"
#include "io/h5_atomic.h"
#include "io/h5_attr.h"
#include "io/io_error.h"
#include "io/io_path.h"

/* One file the images are read from: the data set itself, or one shard. */
typedef struct {
    char *path;
    hid_t file, images, space; /* H5I_INVALID_HID while closed */
    int fd;                    /* HDF5's descriptor of the file (-1: none), for fstat */
    io_file_id_t id;           /* the file as checked at open: read only while unchanged */
    long first, n;             /* its images in the split: [first, first + n) */
    unsigned long used;        /* the read that used it last (closing the least recent) */
    unsigned long checked;     /* the read that checked it last */
    int absent;                /* another rank's shard: not opened, not readable here */
} part_t;

struct dataset {
    char *path;
    dataset_info_t info;
    size_t image_bytes;
    int32_t *labels;
    part_t *parts;             /* one for a single file, one per shard for an index */
    int nparts;
    /* an index: kept open, so a read can check it is unchanged */
    hid_t index;
    int index_fd;
    io_file_id_t index_id;
    int open_parts, max_open;  /* shards open now, and at most */
    unsigned long reads;       /* dataset_read calls so far */
    int rank, ranks;           /* this reader takes the shards s with s % ranks == rank */
    long *shard_images;        /* an index's image count of each shard */
};

/* Opens attribute `name` of file; -1 with a message. */
static int open_attr(hid_t file, const char *path, const char *name, h5_attr_t *a, char *err,
                     size_t errlen)
{
    h5_attr_status_t st = h5_attr_open(file, name, a);
    if (st == ATTR_MISSING || st == ATTR_LOOKUP_FAILED)
        return io_fail(err, errlen, "%s: the attribute %s is missing: %s", path, name,
                       DS_RECREATE);
    if (st != ATTR_OK)
        return io_fail(err, errlen, "%s: the attribute %s is %s: %s", path, name,
                       h5_attr_status_text(st), DS_RECREATE);
    return 0;
}

/* Every string of the string attribute `name` into *v (one block, freed
 * with free): count entries, or any number (1..max) when count is 0. The
 * number read, or -1 with a message. */
static int read_string_list(hid_t file, const char *path, const char *name, int count, int max,
                            char ***v, char *err, size_t errlen)
{
    h5_attr_t a;
    *v = NULL;
    if (open_attr(file, path, name, &a, err, errlen)) return -1;
    char tn[32];
    h5_attr_status_t st;
    int rc = -1;
    if (a.cls != H5T_STRING)
        io_fail(err, errlen, "%s: the attribute %s is %s, not a string: %s", path, name,
                ds_type_name(a.type, tn, sizeof tn), DS_RECREATE);
    else if (a.rank < 0 || a.rank > 1 || (count ? a.count != count : a.count < 1 || a.count > max))
        io_fail(err, errlen, count ? "%s: the attribute %s has %lld entries (rank %d), expected "
                "%d: %s" : "%s: the attribute %s has %lld entries (rank %d), expected 1..%d: %s",
                path, name, a.count, a.rank, count ? count : max, DS_RECREATE);
    else if ((st = h5_attr_read_strings(&a, v)) == ATTR_BAD_TYPE)
        io_fail(err, errlen, "%s: cannot read the attribute %s (string type): %s", path, name,
                DS_RECREATE);
    else if (st == ATTR_NO_MEMORY)
        io_fail(err, errlen, "%s: out of memory reading the attribute %s", path, name);
    else if (st != ATTR_OK)
        io_fail(err, errlen, "%s: cannot read the attribute %s (H5Aread failed): %s", path,
                name, DS_RECREATE);
    else
        rc = (int)a.count;
    h5_attr_close(&a);
    return rc;
}

/* Reads the string attribute `name` (count entries: a scalar or a 1-D array)
 * into out[i * stride], each at most stride - 1 characters; longer ones are
 * an error unless truncate is set. Fixed- and variable-length strings. */
static int read_strings(hid_t file, const char *path, const char *name, int count, char *out,
                        size_t stride, int truncate, char *err, size_t errlen)
{
    char **v = NULL;
    int rc = read_string_list(file, path, name, count, count, &v, err, errlen) < 0 ? -1 : 0;
    for (int i = 0; i < count && rc == 0; i++) {
        size_t len = strlen(v[i]);
        if (len >= stride) {
            if (!truncate) {
                rc = io_fail(err, errlen, "%s: entry %d of the attribute %s is %zu characters "
                             "long, at most %zu are supported: %s", path, i, name, len,
                             stride - 1, DS_RECREATE);
                break;
            }
            len = stride - 1;
        }
        memcpy(out + (size_t)i * stride, v[i], len);
        out[(size_t)i * stride + len] = '\0';
    }
    free(v);
    return rc;
}

/* Reads a numeric attribute of count entries (a scalar is 1 entry) as
 * memtype (H5T_NATIVE_INT, H5T_NATIVE_LLONG or H5T_NATIVE_DOUBLE). */
static int read_numbers(hid_t file, const char *path, const char *name, hid_t memtype,
                        int count, void *out, char *err, size_t errlen)
{
    h5_attr_t a;
    if (open_attr(file, path, name, &a, err, errlen)) return -1;
    char tn[32];
    int rc = -1;
    const int want_int = H5Tequal(memtype, H5T_NATIVE_INT) > 0 ||
                         H5Tequal(memtype, H5T_NATIVE_LLONG) > 0;
    if (a.cls != H5T_INTEGER && (want_int || a.cls != H5T_FLOAT))
        io_fail(err, errlen, "%s: the attribute %s is %s, expected %s: %s", path, name,
                ds_type_name(a.type, tn, sizeof tn), want_int ? "an integer" : "numbers",
                DS_RECREATE);
    else if (a.rank < 0 || a.rank > 1 || a.count != count)
        io_fail(err, errlen, "%s: the attribute %s has %lld entries, expected %d: %s", path,
                name, a.count, count, DS_RECREATE);
    else if (H5Aread(a.id, memtype, out) < 0)
        io_fail(err, errlen, "%s: cannot read the attribute %s (H5Aread failed): %s", path,
                name, DS_RECREATE);
    else
        rc = 0;
    h5_attr_close(&a);
    return rc;
}

/* Opens /name of p's file and checks its type (integer of `size` bytes,
 * signed or not) and rank; dims receives the extent. */
static hid_t open_array(const part_t *p, const char *name, size_t size, H5T_sign_t sign,
                        int rank, hsize_t *dims, char *err, size_t errlen)
{
    const char *path = p->path;
    const char *want = size == 1 ? "uint8" : "int32";
    char tn[32], why[128];
    if (H5Lexists(p->file, name, H5P_DEFAULT) <= 0) {
        io_fail(err, errlen, "%s: /%s is missing: %s", path, name, DS_RECREATE);
        return H5I_INVALID_HID;
    }
    hid_t ds = H5Dopen2(p->file, name, H5P_DEFAULT);
    if (ds < 0) {
        io_fail(err, errlen, "%s: /%s cannot be opened as a dataset (H5Dopen failed): %s",
                path, name, DS_RECREATE);
        return ds;
    }
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = -1;
    if (type < 0 || space < 0) {
        io_fail(err, errlen, "%s: cannot inspect /%s (H5Dget_type/H5Dget_space failed): %s",
                path, name, DS_RECREATE);
    } else if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != size ||
               H5Tget_sign(type) != sign || !h5_type_is_standard_number(type)) {
        io_fail(err, errlen, "%s: /%s is %s, expected %s: %s", path, name,
                ds_type_name(type, tn, sizeof tn), want, DS_RECREATE);
    } else if (h5_dataset_layout_check(ds, why, sizeof why)) {
        io_fail(err, errlen, "%s: /%s has %s: %s", path, name, why, DS_RECREATE);
    } else if (H5Sget_simple_extent_ndims(space) != rank) {
        io_fail(err, errlen, "%s: /%s has rank %d, expected %d%s: %s", path, name,
                H5Sget_simple_extent_ndims(space), rank, rank == 4 ? " (N, H, W, C)" : " (N)",
                DS_RECREATE);
    } else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        io_fail(err, errlen, "%s: cannot read the shape of /%s: %s", path, name, DS_RECREATE);
    } else {
        rc = 0;
    }
    ds_h5close(&type);
    ds_h5close(&space);
    if (rc) ds_h5close(&ds);
    return ds;
}

/* Whether ds stores `bytes` (always true for a compressed one). */
static int fully_stored(hid_t ds, double bytes)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    const int filtered = dcpl < 0 || H5Pget_nfilters(dcpl) != 0;
    ds_h5close(&dcpl);
    return filtered || (double)H5Dget_storage_size(ds) >= bytes;
}

/* Opens p's /images with a chunk cache sized for its chunks, and its space. */
static int open_images_with_cache(part_t *p, size_t image_bytes)
{
    size_t chunk_bytes = image_bytes;
    if (p->images < 0) p->images = H5Dopen2(p->file, "images", H5P_DEFAULT);
    hid_t dcpl = p->images < 0 ? H5I_INVALID_HID : H5Dget_create_plist(p->images);
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t chunk[4];
        if (H5Pget_chunk(dcpl, 4, chunk) == 4)
            chunk_bytes = (size_t)(chunk[0] * chunk[1] * chunk[2] * chunk[3]);
    }
    ds_h5close(&dcpl);
    hid_t dapl = ds_access_plist(chunk_bytes);
    if (dapl < 0) return -1;
    ds_h5close(&p->images);
    p->images = H5Dopen2(p->file, "images", dapl);
    ds_h5close(&dapl);
    if (p->images >= 0) p->space = H5Dget_space(p->images);
    return p->images < 0 || p->space < 0 ? -1 : 0;
}

/* Opens path read-only with HDF5 after the input checks (a regular file, the
 * one HDF5 opened); *fd and *id describe it. -1 with a message. */
static hid_t open_file(const char *path, const char *what, int *fd, io_file_id_t *id,
                       char *err, size_t errlen)
{
    /* a regular file (a FIFO would block HDF5's open for ever), and the file
     * HDF5 opened; its identity is what dataset_read checks against */
    io_file_err_t e = {path, err, errlen, 0};
    struct stat st;
    hid_t fapl = ds_strong_close_fapl(), file = H5I_INVALID_HID;
    if (fapl >= 0) file = h5_open_input(what, fapl, &st, fd, &e);
    ds_h5close(&fapl);
    if (e.failed) return H5I_INVALID_HID;
    if (file < 0) {
        if (H5Fis_hdf5(path) == 0)
            io_fail(err, errlen, "%s: not an HDF5 file (H5Fopen failed): give a data set made "
                    "by `mimae data`", path);
        else
            io_fail(err, errlen, "%s: cannot open as HDF5 (H5Fopen failed; damaged, truncated, "
                    "unreadable, or locked by a writer; on a file system without locks set "
                    "HDF5_USE_FILE_LOCKING=FALSE): check the file or %s", path, DS_RECREATE);
        return H5I_INVALID_HID;
    }
    io_file_id_of(&st, id);
    return file;
}

/* The format and format_version attributes: `want`, this version. */
static int check_format(hid_t file, const char *path, const char *want, char *err,
                        size_t errlen)
{
    char format[64];
    if (H5Aexists(file, "format") <= 0)
        return io_fail(err, errlen, "%s: no attribute format: not a mimae data set; create one "
                       "with `mimae data`", path);
    if (read_strings(file, path, "format", 1, format, sizeof format, 1, err, errlen)) return -1;
    if (strcmp(format, want) != 0) {
        if (strcmp(format, DATASET_SHARD_FORMAT) == 0)
            return io_fail(err, errlen, "%s: is one shard of a sharded data set: give its index "
                           "(the <split>.h5 beside it)", path);
        return io_fail(err, errlen, "%s: the attribute format is \"%s\", not \"%s\": not a %s; "
                       "create one with `mimae data`", path, format, want,
                       strcmp(want, DATASET_FORMAT) ? "shard of a mimae data set"
                                                    : "mimae data set");
    }
    int version = 0;
    if (read_numbers(file, path, "format_version", H5T_NATIVE_INT, 1, &version, err, errlen))
        return -1;
    if (version > DATASET_FORMAT_VERSION)
        return io_fail(err, errlen, "%s: format_version %d was written by a newer mimae (this "
                       "one reads version %d): update mimae", path, version,
                       DATASET_FORMAT_VERSION);
    if (version < DATASET_FORMAT_VERSION)
        return io_fail(err, errlen, "%s: format_version %d was written by an older mimae (this "
                       "one reads version %d): %s", path, version, DATASET_FORMAT_VERSION,
                       DS_RECREATE);
    return 0;
}

/* Opens p's /images and /labels and checks them: n images of h x w x c
 * (dims), all stored, every label read into labels (n of them: `want_n`
 * when that is >= 0; *labels malloc'd when NULL). */
static int open_arrays(part_t *p, long want_n, hsize_t *idims, int32_t **labels, char *err,
                       size_t errlen)
{
    const char *path = p->path;
    hsize_t ldims[1];
    p->images = open_array(p, "images", 1, H5T_SGN_NONE, 4, idims, err, errlen);
    if (p->images < 0) return -1;
    hid_t lab = open_array(p, "labels", 4, H5T_SGN_2, 1, ldims, err, errlen);
    if (lab < 0) return -1;
    int rc = -1;
    if (ldims[0] != idims[0])
        io_fail(err, errlen, "%s: /labels has %llu entries but /images has %llu: %s", path,
                (unsigned long long)ldims[0], (unsigned long long)idims[0], DS_RECREATE);
    else if (idims[0] == 0 || idims[0] > (hsize_t)INT32_MAX)
        io_fail(err, errlen, "%s: /images holds %llu images (supported: 1..%ld): %s", path,
                (unsigned long long)idims[0], (long)INT32_MAX, DS_RECREATE);
    else if (want_n >= 0 && idims[0] != (hsize_t)want_n)
        io_fail(err, errlen, "%s: holds %llu images, its index lists %ld: the shard was replaced "
                "or the index damaged; import the data set again", path,
                (unsigned long long)idims[0], want_n);
    else if (idims[1] < 1 || idims[1] > DS_MAX_SIDE || idims[2] < 1 || idims[2] > DS_MAX_SIDE ||
             idims[3] < 1 || idims[3] > DATASET_MAX_CHANNELS)
        io_fail(err, errlen, "%s: /images has images of %llux%llux%llu (H x W x C): height and "
                "width must be 1..%d and channels 1..%d: %s", path,
                (unsigned long long)idims[1], (unsigned long long)idims[2],
                (unsigned long long)idims[3], DS_MAX_SIDE, DATASET_MAX_CHANNELS, DS_RECREATE);
    else
        rc = 0;
    /* all of it written (unless compressed, when the size cannot tell): a
     * damaged header must not make us allocate, or train on, what the file
     * does not hold (HDF5 returns zeros for unwritten parts) */
    const double n = (double)idims[0];
    const char *short_one = NULL;
    if (rc == 0 && !fully_stored(lab, n * 4.0)) short_one = "labels";
    else if (rc == 0 && !fully_stored(p->images, n * (double)(idims[1] * idims[2] * idims[3])))
        short_one = "images";
    if (short_one)
        rc = io_fail(err, errlen, "%s: /%s is not completely stored in the file (truncated or "
                     "damaged): %s", path, short_one, DS_RECREATE);
    if (rc == 0 && !*labels && !(*labels = malloc((size_t)idims[0] * sizeof **labels)))
        rc = io_fail(err, errlen, "%s: out of memory for %llu labels", path,
                     (unsigned long long)idims[0]);
    if (rc == 0 && H5Dread(lab, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, *labels) < 0)
        rc = io_fail(err, errlen, "%s: cannot read /labels (H5Dread failed): %s", path,
                     DS_RECREATE);
    ds_h5close(&lab);
    return rc;
}

/* Every label of p in [0, num_classes). */
static int check_labels(const part_t *p, const int32_t *labels, int num_classes, char *err,
                        size_t errlen)
{
    for (long i = 0; i < p->n; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return io_fail(err, errlen, "%s: /labels[%ld] is %ld, outside 0..%d (num_classes "
                           "%d): %s", p->path, i, (long)labels[i], num_classes - 1, num_classes,
                           DS_RECREATE);
    return 0;
}

/* name, split, source, num_classes and class_names of file into in. */
static int read_description(hid_t file, const char *path, dataset_info_t *in, char *err,
                            size_t errlen)
{
    if (read_strings(file, path, "name", 1, in->name, sizeof in->name, 0, err, errlen) ||
        read_strings(file, path, "split", 1, in->split, sizeof in->split, 0, err, errlen) ||
        read_strings(file, path, "source", 1, in->source, sizeof in->source, 1, err, errlen) ||
        read_numbers(file, path, "num_classes", H5T_NATIVE_INT, 1, &in->num_classes, err,
                     errlen))
        return -1;
    if (in->num_classes < 1 || in->num_classes > DATASET_MAX_CLASSES)
        return io_fail(err, errlen, "%s: the attribute num_classes is %d (supported: 1..%d): %s",
                       path, in->num_classes, DATASET_MAX_CLASSES, DS_RECREATE);
    in->class_names = calloc((size_t)in->num_classes, sizeof *in->class_names);
    if (!in->class_names)
        return io_fail(err, errlen, "%s: out of memory for %d class names", path,
                       in->num_classes);
    return read_strings(file, path, "class_names", in->num_classes, in->class_names[0],
                        DATASET_NAME_MAX, 0, err, errlen);
}

/* mean and std of file (in->c channels), as normalisation can use them. */
static int read_statistics(hid_t file, const char *path, dataset_info_t *in, char *err,
                           size_t errlen)
{
    if (read_numbers(file, path, "mean", H5T_NATIVE_DOUBLE, in->c, in->mean, err, errlen) ||
        read_numbers(file, path, "std", H5T_NATIVE_DOUBLE, in->c, in->std, err, errlen))
        return -1;
    /* pixels are 0..1 here: a mean outside that, or a std the normalisation
     * (x - mean) / std in float would blow up on, is damage, not data */
    for (int ch = 0; ch < in->c; ch++)
        if (!ds_stats_ok(in->mean[ch], in->std[ch]))
            return io_fail(err, errlen, "%s: channel %d has mean %g and std %g (on the 0..1 pixel "
                           "scale the mean must be in [0, 1], the std in [%g, %g]): %s", path, ch,
                           in->mean[ch], in->std[ch], DATASET_MIN_STD, DATASET_MAX_STD,
                           DS_RECREATE);
    return 0;
}

static void close_part(dataset_t *d, part_t *p)
{
    if (p->file >= 0) d->open_parts--;
    ds_h5close(&p->space);
    ds_h5close(&p->images);
    ds_h5close(&p->file);
    p->fd = -1;
}

/* Makes room for one more open shard: closes the least recently read one
 * (never `keep`) while d->max_open are open. */
static void make_room(dataset_t *d, const part_t *keep)
{
    while (d->open_parts >= d->max_open) {
        part_t *lru = NULL;
        for (int i = 0; i < d->nparts; i++) {
            part_t *p = &d->parts[i];
            if (p != keep && p->file >= 0 && (!lru || p->used < lru->used)) lru = p;
        }
        if (!lru) return;
        close_part(d, lru);
    }
}

/* The single file: /images and /labels, then the attributes. */
static int validate_single(dataset_t *d, char *err, size_t errlen)
{
    part_t *p = &d->parts[0];
    dataset_info_t *in = &d->info;
    hsize_t idims[4];
    if (open_arrays(p, -1, idims, &d->labels, err, errlen)) return -1;
    in->n = p->n = (long)idims[0];
    in->h = (int)idims[1];
    in->w = (int)idims[2];
    in->c = (int)idims[3];
    d->image_bytes = (size_t)in->h * (size_t)in->w * (size_t)in->c;
    if (read_description(p->file, p->path, in, err, errlen) ||
        read_statistics(p->file, p->path, in, err, errlen) ||
        check_labels(p, d->labels, in->num_classes, err, errlen))
        return -1;
    if (open_images_with_cache(p, d->image_bytes) < 0)
        return io_fail(err, errlen, "%s: cannot reopen /images (H5Dopen failed): %s", d->path,
                       DS_RECREATE);
    return 0;
}

/* Shard i, opened: it is the shard the index lists there (position, import,
 * classes, the image size of shard `ref`, the first one checked), its arrays
 * hold what the index says. */
static int validate_shard(dataset_t *d, int i, int ref, const char *import_id, char *err,
                          size_t errlen)
{
    part_t *p = &d->parts[i];
    dataset_info_t *in = &d->info;
    const char *path = p->path;
    const int k = d->nparts;
    if (check_format(p->file, path, DATASET_SHARD_FORMAT, err, errlen)) return -1;
    int index = -1, count = -1;
    long long first = -1;
    char id[64], why[96];
    if (read_numbers(p->file, path, DS_ATTR_SHARD_INDEX, H5T_NATIVE_INT, 1, &index, err, errlen) ||
        read_numbers(p->file, path, DS_ATTR_SHARD_COUNT, H5T_NATIVE_INT, 1, &count, err, errlen) ||
        read_numbers(p->file, path, DS_ATTR_FIRST_IMAGE, H5T_NATIVE_LLONG, 1, &first, err,
                     errlen) ||
        read_strings(p->file, path, DS_ATTR_IMPORT_ID, 1, id, sizeof id, 1, err, errlen))
        return -1;
    if (index != i || count != k || first != p->first || strcmp(id, import_id) != 0)
        return io_fail(err, errlen, "%s: is shard %d of %d (first image %lld) of import %s, but "
                       "%s lists it as shard %d of %d (first image %ld) of import %s: the files "
                       "come from different imports; import the data set again", path, index,
                       count, first, id, d->path, i, k, p->first, import_id);
    dataset_info_t own;
    memset(&own, 0, sizeof own);
    int rc = read_description(p->file, path, &own, err, errlen);
    if (rc == 0 && (own.num_classes != in->num_classes ||
                    memcmp(own.class_names, in->class_names,
                           (size_t)in->num_classes * sizeof *in->class_names) != 0))
        rc = io_fail(err, errlen, "%s: has other classes than %s (%d against %d, or other "
                     "names): shards of different imports; import the data set again", path,
                     d->path, own.num_classes, in->num_classes);
    dataset_info_free(&own);
    if (rc) return -1;
    hsize_t idims[4];
    int32_t *labels = d->labels + p->first;
    if (open_arrays(p, p->n, idims, &labels, err, errlen)) return -1;
    if (i == ref) {
        in->h = (int)idims[1];
        in->w = (int)idims[2];
        in->c = (int)idims[3];
        d->image_bytes = (size_t)in->h * (size_t)in->w * (size_t)in->c;
    } else if (idims[1] != (hsize_t)in->h || idims[2] != (hsize_t)in->w ||
               idims[3] != (hsize_t)in->c) {
        snprintf(why, sizeof why, "%dx%dx%d", in->h, in->w, in->c);
        return io_fail(err, errlen, "%s: holds images of %llux%llux%llu, shard %d of %s holds "
                       "%s: shards of different image sizes; import the data set again", path,
                       (unsigned long long)idims[1], (unsigned long long)idims[2],
                       (unsigned long long)idims[3], ref, d->path, why);
    }
    if (check_labels(p, labels, in->num_classes, err, errlen)) return -1;
    if (open_images_with_cache(p, d->image_bytes) < 0)
        return io_fail(err, errlen, "%s: cannot reopen /images (H5Dopen failed): %s", path,
                       DS_RECREATE);
    return 0;
}

/* The most shards kept open: a quarter of the descriptors a process may
 * have, so other files (checkpoints, MPI) keep theirs. */
static int open_shards_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 4096;
    const rlim_t quarter = rl.rlim_cur / 4;
    return quarter < 2 ? 2 : quarter > 4096 ? 4096 : (int)quarter;
}

/* An index: its attributes, its shard list, every shard opened and checked. */
static int validate_index(dataset_t *d, char *err, size_t errlen)
{
    dataset_info_t *in = &d->info;
    const char *path = d->path;
    char **names = NULL, import_id[64];
    long long *counts = NULL;
    int rc = -1;
    const int k = read_string_list(d->index, path, DS_ATTR_SHARDS, 0, DATASET_MAX_SHARDS, &names,
                                   err, errlen);
    if (k < 0 || read_description(d->index, path, in, err, errlen) ||
        read_strings(d->index, path, DS_ATTR_IMPORT_ID, 1, import_id, sizeof import_id, 1, err,
                     errlen))
        goto out;
    if (!(counts = malloc((size_t)k * sizeof *counts)) ||
        !(d->shard_images = malloc((size_t)k * sizeof *d->shard_images)) ||
        !(d->parts = calloc((size_t)k, sizeof *d->parts))) {
        io_fail(err, errlen, "%s: out of memory for %d shards", path, k);
        goto out;
    }
    if (read_numbers(d->index, path, DS_ATTR_SHARD_IMAGES, H5T_NATIVE_LLONG, k, counts, err,
                     errlen))
        goto out;
    long long total = 0;
    for (int i = 0; i < k; i++) {
        if (counts[i] < 1 || counts[i] > INT32_MAX - total) {
            io_fail(err, errlen, "%s: the attribute %s says shard %d holds %lld images (supported: "
                    "1 or more, %ld in all): %s", path, DS_ATTR_SHARD_IMAGES, i, counts[i],
                    (long)INT32_MAX, DS_RECREATE);
            goto out;
        }
        total += counts[i];
        d->shard_images[i] = (long)counts[i];
    }
    if (d->ranks > 1 && k % d->ranks != 0) {
        io_fail(err, errlen, "%s: %d shards do not spread evenly over %d ranks (data.sampling = "
                "shard-local): import it with a multiple of the ranks as --shards, or run on a "
                "divisor of %d ranks", path, k, d->ranks, k);
        goto out;
    }
    in->n = (long)total;
    in->shards = k;
    if (!(d->labels = malloc((size_t)total * sizeof *d->labels))) {
        io_fail(err, errlen, "%s: out of memory for %lld labels", path, total);
        goto out;
    }
    long first = 0;
    for (int i = 0; i < k; i++) {
        part_t *p = &d->parts[i];
        p->file = p->images = p->space = H5I_INVALID_HID;
        p->fd = -1;
    }
    d->nparts = k;
    int ref = -1; /* the first shard checked: the others have its image size */
    for (int i = 0; i < k; i++) {
        part_t *p = &d->parts[i];
        const char *name = names[i];
        p->first = first;
        p->n = (long)counts[i];
        first += p->n;
        if (i % d->ranks != d->rank) { /* another rank's: its labels unknown here */
            p->absent = 1;
            for (long j = 0; j < p->n; j++) d->labels[p->first + j] = -1;
            continue;
        }
        if (dataset_shard_path(path, i, name, &p->path, err, errlen)) goto out;
        make_room(d, NULL);
        if ((p->file = open_file(p->path, "data set shard", &p->fd, &p->id, err, errlen)) < 0)
            goto out;
        d->open_parts++;
        if (ref < 0) ref = i;
        if (validate_shard(d, i, ref, import_id, err, errlen)) goto out;
    }
    rc = read_statistics(d->index, path, in, err, errlen);
out:
    free(names);
    free(counts);
    return rc;
}

static int open_and_validate(dataset_t *d, char *err, size_t errlen)
{
    int fd = -1;
    io_file_id_t id;
    hid_t file = open_file(d->path, "data set", &fd, &id, err, errlen);
    if (file < 0) return -1;
    if (check_format(file, d->path, DATASET_FORMAT, err, errlen)) {
        ds_h5close(&file);
        return -1;
    }
    d->max_open = open_shards_limit();
    if (H5Aexists(file, DS_ATTR_SHARDS) > 0) {
        d->index = file;
        d->index_fd = fd;
        d->index_id = id;
        return validate_index(d, err, errlen);
    }
    if (d->ranks > 1) {
        ds_h5close(&file);
        return io_fail(err, errlen, "%s: a single file has no shards to spread over ranks "
                       "(data.sampling = shard-local): import it with --shards K, or use "
                       "data.sampling = global", d->path);
    }
    if (!(d->parts = calloc(1, sizeof *d->parts)) || !(d->parts[0].path = strdup(d->path))) {
        ds_h5close(&file);
        return io_fail(err, errlen, "%s: out of memory", d->path);
    }
    d->nparts = 1;
    part_t *p = &d->parts[0];
    p->file = file;
    p->images = p->space = H5I_INVALID_HID;
    p->fd = fd;
    p->id = id;
    d->open_parts = 1;
    return validate_single(d, err, errlen);
}

dataset_t *dataset_open(const char *path, char *err, size_t errlen)
{
    return dataset_open_shards(path, 0, 1, err, errlen);
}

dataset_t *dataset_open_shards(const char *path, int rank, int ranks, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (!path || !*path) {
        io_fail(err, errlen, "dataset_open: no path given");
        return NULL;
    }
    if (ranks < 1 || rank < 0 || rank >= ranks) {
        io_fail(err, errlen, "%s: internal error: rank %d of %d", path, rank, ranks);
        return NULL;
    }
    dataset_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        io_fail(err, errlen, "%s: out of memory", path);
        free(d);
        return NULL;
    }
    d->index = H5I_INVALID_HID;
    d->index_fd = -1;
    d->rank = rank;
    d->ranks = ranks;
    if (open_and_validate(d, err, errlen)) {
        dataset_close(d);
        return NULL;
    }
    return d;
}

const dataset_info_t *dataset_get_info(const dataset_t *d) { return &d->info; }

const int32_t *dataset_labels(const dataset_t *d) { return d->labels; }

const long *dataset_shard_images(const dataset_t *d) { return d->shard_images; }

/* The part holding image i (binary search on the first images). */
static part_t *part_of(dataset_t *d, int64_t i)
{
    int lo = 0, hi = d->nparts - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (d->parts[mid].first <= i) lo = mid;
        else hi = mid - 1;
    }
    return &d->parts[lo];
}

/* p, open and unchanged since it was checked at open. A closed shard is
 * reopened: it must still be that file (a shard replaced or rewritten since
 * is IO_CHANGED, as for an open one). */
static int part_ready(dataset_t *d, part_t *p, char *err, size_t errlen)
{
    io_file_err_t e = {p->path, err, errlen, 0};
    if (p->absent)
        return io_fail(err, errlen, "%s: internal error: a shard of another rank (rank %d of %d "
                       "reads its own only)", p->path, d->rank, d->ranks);
    p->used = d->reads;
    if (p->file >= 0) return io_check_unchanged(&e, p->fd, &p->id);
    make_room(d, p);
    io_file_id_t now;
    p->file = open_file(p->path, "data set shard", &p->fd, &now, err, errlen);
    if (p->file < 0) return io_check_unchanged(&e, -1, &p->id) ? IO_CHANGED : -1;
    d->open_parts++;
    if (io_check_unchanged(&e, p->fd, &p->id)) return IO_CHANGED;
    if (open_images_with_cache(p, d->image_bytes) < 0)
        return io_fail(err, errlen, "%s: cannot reopen /images (H5Dopen failed): %s", p->path,
                       DS_RECREATE);
    return 0;
}

/* The index (when there is one) and every part this read used, unchanged. */
static int check_read_files(dataset_t *d, char *err, size_t errlen)
{
    io_file_err_t e = {d->path, err, errlen, 0};
    if (d->index >= 0 && io_check_unchanged(&e, d->index_fd, &d->index_id)) return IO_CHANGED;
    for (int i = 0; i < d->nparts; i++) {
        part_t *p = &d->parts[i];
        if (p->used != d->reads || p->checked == d->reads) continue;
        p->checked = d->reads;
        io_file_err_t pe = {p->path, err, errlen, 0};
        if (io_check_unchanged(&pe, p->fd, &p->id)) return IO_CHANGED;
    }
    return 0;
}

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
    d->reads++;
    io_file_err_t e = {d->path, err, errlen, 0};
    if (d->index >= 0 && io_check_unchanged(&e, d->index_fd, &d->index_id)) return IO_CHANGED;
    /* Runs of consecutive indices within one file are read with one
     * hyperslab each. */
    for (int i = 0; i < count;) {
        part_t *p = part_of(d, indices[i]);
        if (p->used != d->reads || p->file < 0) {
            const int st = part_ready(d, p, err, errlen);
            if (st) return st;
        }
        const int64_t end = p->first + p->n;
        int run = 1;
        while (i + run < count && indices[i + run] == indices[i + run - 1] + 1 &&
               indices[i + run] < end)
            run++;
        const hsize_t start[4] = { (hsize_t)(indices[i] - p->first), 0, 0, 0 };
        const hsize_t cnt[4] = { (hsize_t)run, (hsize_t)in->h, (hsize_t)in->w,
                                 (hsize_t)in->c };
        hid_t ms = H5Screate_simple(4, cnt, NULL);
        int ok = ms >= 0 &&
                 H5Sselect_hyperslab(p->space, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
                 H5Dread(p->images, H5T_NATIVE_UINT8, ms, p->space, H5P_DEFAULT,
                         images + (size_t)i * d->image_bytes) >= 0;
        ds_h5close(&ms);
        if (!ok && check_read_files(d, err, errlen)) return IO_CHANGED;
        if (!ok)
            return io_fail(err, errlen, "%s: reading /images %lld..%lld failed (H5Dread): the "
                           "file may be damaged; %s", p->path, (long long)start[0],
                           (long long)start[0] + run - 1, DS_RECREATE);
        if (labels)
            memcpy(labels + i, d->labels + indices[i], (size_t)run * sizeof *labels);
        i += run;
    }
    return check_read_files(d, err, errlen);
}

void dataset_close(dataset_t *d)
{
    if (!d) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    for (int i = 0; i < d->nparts; i++) {
        close_part(d, &d->parts[i]);
        free(d->parts[i].path);
    }
    free(d->parts);
    free(d->shard_images);
    ds_h5close(&d->index);
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

