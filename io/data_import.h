/* What every importer shares (`mimae data FORMAT ...`): an importer describes
 * its splits (train first, then an optional test split) and reads any run of
 * their images on request; data_import writes them, as one file per split or
 * as K shards plus an index per split (io/dataset.h), on one process or on
 * the ranks of an MPI job, each writing its own shards at once.
 *
 * No MPI here: the ranks' agreement, sums and broadcasts come in as
 * callbacks (run/data_mpi.h implements them over MPI; import_comm_single is
 * one process), so io/ stays free of MPI calls.
 *
 * What a failed, refused or interrupted import leaves: nothing. Every file
 * is written under a temporary name and renamed only once every rank has
 * written all of its files: shards first, then the indexes (or the single
 * files). A failure after that removes what was renamed. Only a process
 * killed outright (SIGKILL) can leave temporaries (NAME.tmp-<pid>-<random>),
 * never a file under a data set's name. */
#ifndef MIMAE_IO_DATA_IMPORT_H
#define MIMAE_IO_DATA_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"

/* A stop request (SIGINT, SIGTERM) ended the import: nothing was written. */
#define IMPORT_STOPPED (-4)

typedef struct import_split import_split_t;

/* Reads images [first, first + count) of the split, in order, into pixels
 * (count, h, w, c) and labels. 0, or -1 with a message naming the source
 * file and the fix. */
typedef int (*import_read_fn)(const import_split_t *s, long first, long count, uint8_t *pixels,
                              int32_t *labels, char *err, size_t errlen);

struct import_split {
    dataset_info_t info; /* name, split, source, h, w, c, classes; n = images */
    long block;          /* images per read (memory: block x one image) */
    import_read_fn read;
    void *ctx;           /* the importer's */
    uint64_t digest;     /* what the importer listed (files, order): every rank must
                            see the same source; 0 when there is nothing to compare */
};

/* Progress of one split on this process (rank), for a progress line. */
typedef struct {
    const char *split;
    long done, total;     /* images of this rank written, of its share */
    long split_images;    /* images in the split (all ranks) */
    int ranks;
    double seconds;       /* since the split started */
    int finished;         /* the last call for this split */
} import_progress_t;

/* The ranks an import runs on. all_ok: 1 when ok is set on every rank (a
 * collective: every rank calls it at the same points). sum_u64: element-wise
 * sum over the ranks, in place (exact: integer sums in any order). bcast:
 * rank 0's bytes to every rank. stop: a stop was requested here (may be
 * NULL). progress: called on every rank after each block (may be NULL). */
typedef struct {
    int rank, ranks;
    int (*all_ok)(void *arg, int ok);
    int (*sum_u64)(void *arg, uint64_t *values, int count);
    int (*bcast)(void *arg, void *buf, size_t len);
    int (*stop)(void *arg);
    void (*progress)(void *arg, const import_progress_t *p);
    void *arg;
} import_comm_t;

/* One process: rank 0 of 1, nothing to agree on. */
void import_comm_single(import_comm_t *c);

/* What to write: shards 0 = one file per split (one process only), else K
 * shards per split, shard i of a split on rank i % ranks. */
typedef struct {
    int shards;
    const import_comm_t *comm; /* NULL: import_comm_single */
} import_opts_t;

/* Writes OUT_DIR/<split>.h5 for each of the n splits (splits[0] is train:
 * every split carries its mean/std, computed from the exact pixel sums of
 * all its shards, so any rank count gives the same bits). A previous import
 * in OUT_DIR is replaced; its shards are removed once the new index stands.
 * 0 on every rank, or a failure on every rank: this rank's own (-1 bad
 * input, IO_WRITE_FAILED when the disk refused a write, IMPORT_STOPPED)
 * with its message, or -1 and an empty err when another rank failed. */
int data_import(const char *out_dir, const import_split_t *splits, int n,
                const import_opts_t *opts, char *err, size_t errlen);

/* Split `index` (0: "train", 1: "test") of the data set proto describes
 * (name, source, h, w, c, classes): n images read by read(ctx) in blocks. */
import_split_t import_split_of(const dataset_info_t *proto, int index, long n, long block,
                               import_read_fn read, void *ctx);

/* After an importer has read its source's description on every rank: the
 * ranks agree whether all of them succeeded (rc 0). rc, or -1 with an empty
 * err when this rank succeeded and another did not. */
int import_agree(const import_opts_t *opts, int rc, char *err, size_t errlen);

#endif
