/* The fcntl lock of a run directory (RUN/.lock), as its owner and as others
 * see it. The owner is rank 0 of the job that runs there (run/run_dir.h
 * takes and records it); the kernel drops the lock when that process ends,
 * however it ends, so a lock held means a live job. `mimae sweep submit`
 * asks here which tasks are running before it submits the others. No MPI. */
#ifndef MIMAE_IO_LOCK_FILE_H
#define MIMAE_IO_LOCK_FILE_H

#include <stddef.h>

#define LOCK_FILE_RUN_NAME ".lock" /* in a run directory */

/* The holder of a lock on the open lock file fd, as one line: the first line
 * of the file (the holder's record: pid, host, Slurm job), else "pid N (just
 * started)" from the kernel, else "another process (just started)". */
void lock_file_holder(int fd, char *out, size_t len);

/* Whether a process holds the lock on path: 1 (holder: lock_file_holder's
 * line), 0 when none does (no file, not a regular file, or a file system
 * without fcntl locks), -1 when it cannot tell (err: one line). Opens the
 * file read-only without creating or following a link, and never takes the
 * lock itself. */
int lock_file_probe(const char *path, char *holder, size_t len, char *err, size_t errlen);

#endif
