/* HDF5 files written whole and atomically (checkpoints, results files,
 * data-set indexes and shards).
 *
 * HDF5 1.10 cannot recover from an I/O error while writing: a failed
 * H5Dclose/H5Fclose leaves a half-closed file that crashes the library's exit
 * handler (and any later close). So HDF5 never writes to disk here: the file
 * is built in memory (core driver, no backing store, its buffer owned through
 * file-image callbacks so no second copy is made), and the finished image is
 * written with write(2) to an exclusively created temporary beside PATH
 * (io_out_open: PATH.tmp-<pid>-<random>, never through a link), fsynced,
 * renamed onto PATH, and the directory fsynced. Disk errors are then ordinary errno failures; the
 * temporary is removed and PATH left as it was. */
#ifndef MIMAE_IO_H5_ATOMIC_H
#define MIMAE_IO_H5_ATOMIC_H

#include <hdf5.h>
#include <stddef.h>
#include <sys/stat.h>

#include "io/io_error.h"
#include "io/io_path.h"

/* Writes the content of the in-memory file; 0, or -1 after io_file_fail. */
typedef int (*h5_atomic_fill_fn)(hid_t file, const void *arg, io_file_err_t *e);

/* Creates the temporary (io_out_open) first (a missing directory or a
 * permission problem fails at once, with errno), then the file in memory
 * (growing by `increment` bytes; creation properties fcpl, or H5P_DEFAULT;
 * 1.8 object headers, which h5py and HDF5 >= 1.8 read and which put large
 * attributes in dense storage instead of failing at 64 KiB), lets fill write
 * it, and commits it onto path. Needs memory for one copy of the file. */
int h5_atomic_write(const char *path, size_t increment, hid_t fcpl, h5_atomic_fill_fn fill,
                   const void *arg, io_file_err_t *e);

/* h5_atomic_write for files that need HDF5 1.10's formats (virtual
 * datasets, which 1.8 cannot read anyway); the rest stays 1.8's. */
int h5_atomic_write_v110(const char *path, size_t increment, h5_atomic_fill_fn fill,
                         const void *arg, io_file_err_t *e);

/* The same for a file filled piece by piece (a data-set shard): the
 * temporary is created now, the file in memory (growing by `increment`;
 * formats up to HDF5 1.10's with v110). NULL after io_file_fail. */
typedef struct h5_mem_file h5_mem_file_t;
h5_mem_file_t *h5_mem_create(const char *path, size_t increment, hid_t fcpl, int v110,
                             io_file_err_t *e);
/* The HDF5 file to write into (closed by h5_mem_finish: close what was
 * opened in it first). */
hid_t h5_mem_file(const h5_mem_file_t *m);
/* Closes the file and writes its bytes to the temporary: parked in *p, or
 * (p NULL) committed onto the final name. Frees m. 0, or -1 after
 * io_file_fail (nothing left then). */
int h5_mem_finish(h5_mem_file_t *m, io_pending_t *p, io_file_err_t *e);
/* Drops the file and its temporary. Frees m; NULL is fine. */
void h5_mem_abort(h5_mem_file_t *m);

/* Opens e->path read-only through io_check_input (a regular file that is
 * not empty: a FIFO never reaches HDF5's open), checking that the file HDF5
 * opened is the one checked (its stat in *st, and HDF5's own descriptor of
 * it in *fd, -1 when its driver has none; either may be NULL). -1 after
 * io_file_fail when it is not a regular file or was swapped meanwhile; -1
 * without a message when HDF5 cannot open it (the caller says why). */
hid_t h5_open_input(const char *what, hid_t fapl, struct stat *st, int *fd, io_file_err_t *e);

/* Opens a file read-only (h5_open_input), with a message that says why not
 * (`unreadable` when HDF5 cannot read it). No file lock: these files are only ever
 * replaced whole by rename, and flock fails on some cluster file systems. */
hid_t h5_atomic_open(const char *path, const char *unreadable, io_file_err_t *e);

#endif
