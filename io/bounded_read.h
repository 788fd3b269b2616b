/* Reading an untrusted file in a child process, with a time bound.
 *
 * HDF5 1.10.8 can crash or loop forever on some damaged files, inside the
 * library, where no check of ours comes first (tests/fuzz/README.md). A
 * program that reads many files (`mimae report`) or one a user points at
 * (`mimae inspect`) runs each read in a forked child: a crash or a hang
 * costs that file, not the program. Only for processes that never call
 * MPI_Init (mimae, not mimae_dist: forking an MPI process is not safe). */
#ifndef MIMAE_IO_BOUNDED_READ_H
#define MIMAE_IO_BOUNDED_READ_H

#include <stddef.h>

#include "io/results.h"

/* Reads path; 0, or -1 with a one-line message in err. */
typedef int (*bounded_read_fn)(const char *path, void *arg, char *err, size_t errlen);

/* Seconds a read of path may take: MIMAE_READ_TIMEOUT (default 10) plus one
 * second per 20 MB of the file, so large files (a ViT-B checkpoint) get the
 * time to be read and a hang on a small damaged one ends soon. -1 with a
 * message when MIMAE_READ_TIMEOUT is not a number of seconds > 0. */
double bounded_read_limit(const char *path, char *err, size_t errlen);

/* Runs fn(path, arg, err, errlen) in a child process (stdout and stderr
 * shared, flushed before the fork and at the child's end) and returns its
 * result and message. When the child runs longer than limit_s seconds it is
 * killed, when it dies of a signal (a crash inside HDF5) that is reported:
 * both -1 with one line naming the file. What fn leaves in memory is lost
 * with the child: to keep a result, read again in the caller once the
 * child has shown the file can be read. */
int bounded_read(const char *path, bounded_read_fn fn, void *arg, double limit_s, char *err,
                 size_t errlen);

/* A results file (io/results.h) read in the caller once a child has read
 * it whole within bounded_read_limit's time: a file that crashes or hangs
 * HDF5 costs one message. NULL with one line naming the file. */
results_t *bounded_results_load(const char *path, char *err, size_t errlen);

#endif
