/* Per-rank data reader with read-ahead: each rank opens the data set itself
 * and reads only its own images; while a batch trains, a worker thread reads
 * the next one into the other of two buffers.
 *
 * HDF5 here is not thread-safe, so the rule is: no other HDF5 call in the
 * process while a read is in flight (between reader_start and reader_wait).
 * The trainer writes checkpoints and results right after reader_wait. */
#ifndef MIMAE_IO_READER_H
#define MIMAE_IO_READER_H

#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"

typedef struct reader reader_t;

/* Opens path (validated as dataset_open does) for batches of up to max_batch. */
reader_t *reader_create(const char *path, int max_batch, char *err, size_t errlen);
/* The same for rank `rank` of `ranks` reading only its own shards
 * (dataset_open_shards: data.sampling = shard-local). */
reader_t *reader_create_shards(const char *path, int max_batch, int rank, int ranks, char *err,
                               size_t errlen);
const dataset_info_t *reader_info(const reader_t *r);
const int32_t *reader_labels(const reader_t *r);
const long *reader_shard_images(const reader_t *r); /* dataset_shard_images */

/* Starts reading count images (indices copied) into the next buffer. */
int reader_start(reader_t *r, const int64_t *indices, int count, char *err, size_t errlen);

/* Waits for the read started last; images (count, H, W, C) and labels stay
 * valid until the read after the next one starts. wait_seconds gets the time
 * spent blocked here (the data-wait metric). 0, -1, or IO_CHANGED
 * (io/io_error.h) when the file changed since it was opened (every read
 * checks its size and identity: dataset_read). */
int reader_wait(reader_t *r, const uint8_t **images, const int32_t **labels,
                double *wait_seconds, char *err, size_t errlen);

void reader_free(reader_t *r);

#endif
