/* Image data sets in HDF5, one file per split (OUT_DIR/train.h5, test.h5).
 *
 * Schema (format "mimae-dataset", version 1):
 *   /images  uint8  (N, H, W, C), extendible, chunked by min(16, 64 KiB /
 *                    image) images (at least 1), so that reading one image
 *                    or a short run touches little else
 *   /labels  int32  (N), each in [0, num_classes), chunked by 4096
 *   root attributes: format (string "mimae-dataset"), format_version (int),
 *     name, split ("train"/"test"), source (strings), num_classes (int),
 *     class_names (1-D string array, num_classes), mean and std (float64 per
 *     channel, on the 0..1 pixel scale, population std; both splits carry
 *     the TRAIN split's statistics, which is what normalisation uses).
 *   Strings are written as variable-length UTF-8; fixed-length ones (as
 *   h5py writes numpy bytes) are read too.
 * Errors are one line naming the file, the object and what to do.
 *
 * Threads: handles carry all their state (no globals), but Debian's
 * openmpi flavour of HDF5 is built without thread safety, so only one
 * thread of a process may be inside HDF5 at a time: a prefetch thread that
 * reads while another thread writes a checkpoint or results file needs a
 * lock shared by all HDF5 users. Every function here switches off HDF5's
 * automatic error printing (H5Eset_auto2) and does not restore it. */
#ifndef MIMAE_IO_DATASET_H
#define MIMAE_IO_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define DATASET_FORMAT "mimae-dataset"
#define DATASET_FORMAT_VERSION 1
#define DATASET_MAX_CHANNELS 4
#define DATASET_MAX_CLASSES 1000
#define DATASET_NAME_MAX 64
/* Per-channel std the writer and reader accept (normalisation divides by
 * it); the mean must be in [0, 1]. */
#define DATASET_MIN_STD 1e-6
#define DATASET_MAX_STD 1e6

typedef struct {
    char name[DATASET_NAME_MAX];
    char split[16];
    char source[256];
    long n;                    /* images */
    int h, w, c;
    int num_classes;
    char (*class_names)[DATASET_NAME_MAX]; /* num_classes entries, owned */
    double mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
} dataset_info_t;

/* ---- writing ---- */
typedef struct dataset_writer dataset_writer_t;

/* Creates PATH's temporary sibling PATH.tmp-<pid>-<random> (and PATH's missing parent
 * directories, mkdir -p); info gives name, split, source, h, w, c,
 * num_classes and class_names (copied; n is ignored: images are appended).
 * Strings must fit their fields (source may be empty), 1 <= c <= 4, h and w
 * in 1..65536, num_classes in 1..DATASET_MAX_CLASSES. NULL on error. */
dataset_writer_t *dataset_writer_create(const char *path, const dataset_info_t *info,
                                        char *err, size_t errlen);
/* Appends count images (count, h, w, c) and their labels. Labels outside
 * [0, num_classes) fail before anything is written (the writer stays
 * usable); a failed HDF5 write makes every later append and finish fail. */
int dataset_writer_append(dataset_writer_t *w, const uint8_t *images, const int32_t *labels,
                          long count, char *err, size_t errlen);
/* Per-channel mean/std (0..1 scale) of everything appended so far. */
void dataset_writer_stats(const dataset_writer_t *w, double *mean, double *std);
/* Writes the attributes (mean/std given, or NULL for the writer's own
 * statistics), closes, fsyncs, and renames onto PATH. Fails when no image
 * was appended, a mean is outside [0, 1] or a std outside [DATASET_MIN_STD,
 * DATASET_MAX_STD] (e.g. constant images).
 * Frees w in every case; on failure nothing is left at PATH or at the
 * temporary name (an existing PATH is then untouched). */
int dataset_writer_finish(dataset_writer_t *w, const double *mean, const double *std,
                          char *err, size_t errlen);
/* Abandons the file: closes and removes the temporary. Frees w. */
void dataset_writer_abort(dataset_writer_t *w);

/* ---- reading ---- */
typedef struct dataset dataset_t;

/* Opens and validates the whole schema (format, version, dtypes, ranks,
 * shapes, attributes, every label in range, mean in [0, 1] and std in
 * [DATASET_MIN_STD, DATASET_MAX_STD] per channel). */
dataset_t *dataset_open(const char *path, char *err, size_t errlen);
const dataset_info_t *dataset_get_info(const dataset_t *d);
/* Reads the images with the given indices, in that order, into images
 * (count, h, w, c) and labels (count; may be NULL). Only those images are
 * read (a run of consecutive indices as one hyperslab); every index is
 * checked against [0, n) before anything is read. IO_CHANGED (io_error.h)
 * when the file is no longer the one opened (truncated, grown, rewritten in
 * place or replaced: checked before and after the read), -1 on other
 * errors. */
int dataset_read(dataset_t *d, const int64_t *indices, int count, uint8_t *images,
                 int32_t *labels, char *err, size_t errlen);
/* All labels (n), read once at open. */
const int32_t *dataset_labels(const dataset_t *d);
void dataset_close(dataset_t *d);

void dataset_info_free(dataset_info_t *info); /* frees class_names */

#endif
