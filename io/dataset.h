/* Image data sets in HDF5, one per split (OUT_DIR/train.h5, test.h5): a
 * single file, or a small index file over K shard files.
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
 *   Strings are written fixed-length UTF-8; variable-length ones (older
 *   files) are read too.
 *
 * Sharded (`mimae data ... --shards K`): OUT_DIR/<split>.h5 is the index,
 * with the root attributes above plus
 *     shards        1-D string array (K): the shard files, in image order,
 *                   as names in the index's own directory
 *     shard_images  int64 (K): images in each
 *     import_id     string: 16 hex digits shared by the index and its shards
 *   and /images, /labels as HDF5 virtual datasets over the shards' (source
 *   file names relative, which HDF5 1.10 resolves against the index's
 *   directory: the directory can be moved or copied whole), so h5py and
 *   h5dump see one data set. A shard, OUT_DIR/<split>-<import_id>-<i>-of-<K>.h5
 *   (i, K five digits), holds its /images and /labels as above and the
 *   attributes format ("mimae-dataset-shard"), format_version, name, split,
 *   source, num_classes, class_names, shard_index, shard_count, first_image
 *   (its first image's index in the split) and import_id; no mean/std (those
 *   of the split are the index's). Our reader reads the shards directly (it
 *   checks each one itself: HDF5 reads a missing source as zeros).
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

#include "io/io_path.h"

#define DATASET_FORMAT "mimae-dataset"
#define DATASET_FORMAT_VERSION 1
#define DATASET_MAX_CHANNELS 4
#define DATASET_MAX_CLASSES 1000
#define DATASET_NAME_MAX 64
/* Per-channel std the writer and reader accept (normalisation divides by
 * it); the mean must be in [0, 1]. */
#define DATASET_MIN_STD 1e-6
#define DATASET_MAX_STD 1e6
#define DATASET_SHARD_FORMAT "mimae-dataset-shard"
#define DATASET_MAX_SHARDS 99999
#define DATASET_IMPORT_ID_LEN 16 /* hex digits */

typedef struct {
    char name[DATASET_NAME_MAX];
    char split[16];
    char source[256];
    long n;                    /* images */
    int h, w, c;
    int num_classes;
    char (*class_names)[DATASET_NAME_MAX]; /* num_classes entries, owned */
    double mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    int shards;                /* shard files (0: a single file) */
} dataset_info_t;

/* ---- writing ---- */
typedef struct dataset_writer dataset_writer_t;

/* Creates PATH's temporary sibling PATH.tmp-<pid>-<random> (and PATH's missing parent
 * directories, mkdir -p); info gives name, split, source, h, w, c,
 * num_classes and class_names (copied), and n the images expected (0:
 * unknown; images are appended, as many as come). Strings must fit their
 * fields (source may be empty), 1 <= c <= 4, h and w in 1..65536,
 * num_classes in 1..DATASET_MAX_CLASSES. NULL on error.
 * The file is built in memory and written to the temporary in one go when
 * parked or finished (io/h5_atomic.h): a full disk is then an ordinary write
 * error, which HDF5 1.10 cannot recover from in the middle of its own
 * writes (it crashes at exit). Memory: about the file's size; a file
 * expected to need more than half of the machine's memory is refused here
 * (import it as shards). */
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

/* dataset_writer_finish without the rename: the file is complete and
 * fsynced under its temporary name in *out, for io_pending_commit (or
 * io_pending_free to drop it). Frees w. 0, -1 (bad statistics), or
 * IO_WRITE_FAILED when the disk refused it (nothing is left then). */
int dataset_writer_park(dataset_writer_t *w, const double *mean, const double *std,
                        io_pending_t *out, char *err, size_t errlen);

/* ---- shards ---- */

/* Where a shard stands in its split. */
typedef struct {
    int index, count;   /* shard `index` of `count` */
    long first;         /* index of its first image in the split */
    long images;        /* images it will hold (sizes its memory) */
    char import_id[DATASET_IMPORT_ID_LEN + 1];
} dataset_shard_t;

/* A writer of shard file `shard` (format DATASET_SHARD_FORMAT); append as
 * above, then dataset_writer_park with mean and std NULL (a shard has none).
 * Built in memory as above; memory: about the shard's size, which --shards
 * chooses. */
dataset_writer_t *dataset_writer_create_shard(const char *path, const dataset_info_t *info,
                                              const dataset_shard_t *shard, char *err,
                                              size_t errlen);

/* The exact per-channel sums of the pixel values appended so far (0..255)
 * and of their squares: integers, so sums over shards written anywhere add up
 * to the one-file sums in any order. */
void dataset_writer_sums(const dataset_writer_t *w, uint64_t *sum, uint64_t *sumsq);

/* Per-channel mean/std (0..1 scale) of n images of h x w x c from such
 * sums: what dataset_writer_stats computes, bit for bit. */
void dataset_stats_from_sums(long n, int h, int w, int c, const uint64_t *sum,
                             const uint64_t *sumsq, double *mean, double *std);

/* Statistics a data set may carry (mean in [0, 1], std in [DATASET_MIN_STD,
 * DATASET_MAX_STD] per channel): 0, or -1 with a message naming path. */
int dataset_stats_check(const char *path, int c, const double *mean, const double *std,
                        char *err, size_t errlen);

/* The shard file name of shard i of `count` of `split`. */
void dataset_shard_name(char *buf, size_t len, const char *split, const char *import_id, int i,
                        int count);

/* Writes the index of a sharded split at path (atomically: built in memory,
 * fsynced, renamed): info's attributes with its mean/std, the shard list and
 * the virtual /images and /labels over shard_names (names in path's
 * directory, shard_images[i] images each; info->n their sum). 0, or
 * IO_WRITE_FAILED with a message (nothing is left at path then). */
int dataset_index_write(const char *path, const dataset_info_t *info, const char *import_id,
                        const char *const *shard_names, const long *shard_images, int shards,
                        char *err, size_t errlen);

/* The shard names an index at path lists (*names: one malloc'd block, freed
 * with free) and its import id (into import_id, DATASET_IMPORT_ID_LEN + 1
 * bytes, unless NULL; "" unless it is DATASET_IMPORT_ID_LEN hex digits).
 * Their count; 0 when there is no readable index there (a single file,
 * nothing, damage): for removing the shards of an import replaced by
 * another one, and for staging. The names are as the file holds them:
 * dataset_shard_path checks one before it is used. */
int dataset_index_shards(const char *path, char ***names, char *import_id);

/* Where shard i, listed as `name` by the index at `index`, is: the
 * index's directory joined with name (*path, malloc'd), after checking that
 * name is a plain file name (no '/', not "." or "..") and that a regular
 * file is there, not a symbolic link (which could lead out of the data
 * set's directory, for the reader and for staging alike), nor a FIFO,
 * directory or device. 0, or -1 with one line naming the shard and the fix
 * (*path NULL then). */
int dataset_shard_path(const char *index, int i, const char *name, char **path, char *err,
                       size_t errlen);

/* ---- reading ---- */
typedef struct dataset dataset_t;

/* Opens and validates the whole schema (format, version, dtypes, ranks,
 * shapes, attributes, every label in range, mean in [0, 1] and std in
 * [DATASET_MIN_STD, DATASET_MAX_STD] per channel). An index opens every
 * shard it lists and checks it the same way, and that it is the shard the
 * index names (import, position, image count, image size, classes). At
 * most a quarter of the process's file limit (RLIMIT_NOFILE) of shards
 * stay open; others are reopened when read (and must be the file checked). */
dataset_t *dataset_open(const char *path, char *err, size_t errlen);
/* dataset_open of a sharded set for rank `rank` of `ranks` (data.sampling =
 * shard-local): only the shards s with s % ranks == rank are opened, checked
 * and readable, the others are counted from the index alone (their labels
 * read as -1). The shard count must be a multiple of ranks; a single file is
 * refused when ranks > 1. ranks 1: dataset_open. */
dataset_t *dataset_open_shards(const char *path, int rank, int ranks, char *err, size_t errlen);
const dataset_info_t *dataset_get_info(const dataset_t *d);
/* The images of each shard (info->shards of them), NULL for a single file. */
const long *dataset_shard_images(const dataset_t *d);
/* Reads the images with the given indices, in that order, into images
 * (count, h, w, c) and labels (count; may be NULL). Only those images are
 * read (a run of consecutive indices as one hyperslab); every index is
 * checked against [0, n) before anything is read. IO_CHANGED (io_error.h)
 * when the file, or the index or a shard read from, is no longer the one
 * opened (truncated, grown, rewritten in place or replaced: checked before
 * and after the read), -1 on other errors. */
int dataset_read(dataset_t *d, const int64_t *indices, int count, uint8_t *images,
                 int32_t *labels, char *err, size_t errlen);
/* All labels (n), read once at open. */
const int32_t *dataset_labels(const dataset_t *d);
void dataset_close(dataset_t *d);

void dataset_info_free(dataset_info_t *info); /* frees class_names */

/* What an importer knows of its data set before reading it: name, source,
 * square side x side images of c channels, and its classes (names: the
 * caller's, not copied). */
dataset_info_t dataset_info_of_import(const char *name, const char *source, int side, int c,
                                      int num_classes, char (*names)[DATASET_NAME_MAX]);

#endif
