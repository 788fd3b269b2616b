/* Staging a sharded training set on node-local storage (data.stage_dir):
 * before training, each rank copies the index and its own shards (those it
 * reads with data.sampling = shard-local) to STAGE_DIR/<import_id>/, and
 * trains from there. A file already there with the same name (which holds
 * the import id), size and modification time is taken as identical and not
 * copied again, as rsync's quick check does; a copy is written under a
 * temporary name, fsynced, given the source's modification time and
 * renamed, so an interrupted or failed copy leaves no file that passes for a
 * staged one. Ranks of one node may stage into the same directory at once:
 * the copies of the same file are identical and each rename is atomic.
 * No MPI here: run/data_stage.h adds up a node's needs and checks its free
 * space. */
#ifndef MIMAE_IO_STAGE_H
#define MIMAE_IO_STAGE_H

#include <stddef.h>

typedef struct {
    char *dir;             /* STAGE_DIR/<import_id> */
    char *index;           /* the staged index: what to train from */
    int n;                 /* files to copy (the index first when it is one of them) */
    char **src, **dst;
    long long *bytes;
    long long total;       /* bytes to copy */
} stage_plan_t;

/* What rank `rank` of `ranks` needs at stage_dir to train from index: the
 * index and the shards s with s % ranks == rank, less those there already
 * and identical. 0, or -1 with a message (not a sharded data set, a shard
 * missing at the source). */
int stage_plan(const char *index, const char *stage_dir, int rank, int ranks,
               stage_plan_t *plan, char *err, size_t errlen);

/* Bytes free for an unprivileged writer under dir (made with its parents
 * when missing); -1 with a message. */
long long stage_free_bytes(const char *dir, char *err, size_t errlen);

/* Copies every file of the plan. 0; IO_WRITE_FAILED when the disk refused a
 * write (the file being copied is removed; those copied before are complete
 * and are reused by the next run); -1 otherwise. */
int stage_copy(const stage_plan_t *plan, char *err, size_t errlen);

void stage_plan_free(stage_plan_t *plan);

#endif
