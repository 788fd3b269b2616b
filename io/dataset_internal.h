/* What the data-set writer (dataset.c) and reader (dataset_read.c) share:
 * HDF5 handle and property helpers and the attribute names of the schema in
 * dataset.h. Not for use outside those two files. */
#ifndef MIMAE_IO_DATASET_INTERNAL_H
#define MIMAE_IO_DATASET_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>

#define DS_RECREATE "re-create the file with `mimae data`"
#define DS_MAX_SIDE 65536

/* Attributes of an index and of a shard beyond the single file's. */
#define DS_ATTR_SHARDS "shards"
#define DS_ATTR_SHARD_IMAGES "shard_images"
#define DS_ATTR_IMPORT_ID "import_id"
#define DS_ATTR_SHARD_INDEX "shard_index"
#define DS_ATTR_SHARD_COUNT "shard_count"
#define DS_ATTR_FIRST_IMAGE "first_image"

/* Closes any HDF5 identifier we may hold; invalid ones are ignored. */
void ds_h5close(hid_t *id);

/* A short name for an HDF5 type, for messages ("float32", "int16", ...). */
const char *ds_type_name(hid_t type, char *buf, size_t len);

/* Dataset access properties with a chunk cache holding a few chunks of
 * chunk_bytes (at least 1 MiB, at most 32 MiB). */
hid_t ds_access_plist(size_t chunk_bytes);

/* File access: closing the file closes every object still open in it; file
 * locks used where the file system has them. */
hid_t ds_strong_close_fapl(void);

/* A channel's statistics as the reader accepts them (NaN fails too). */
int ds_stats_ok(double mean, double std);

#endif
