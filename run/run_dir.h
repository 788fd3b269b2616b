/* The run directory's owner and its stop marker.
 *
 * One job at a time owns a run directory: rank 0 of a training run (and of
 * `mimae_dist eval`, which rewrites results.h5) holds an fcntl write lock on
 * RUN/.lock from before it reads or writes anything there until it exits.
 * The kernel drops the lock when the process ends, however it ends (kill -9
 * included), so a dead job never keeps it. A second job started on the same
 * directory (Slurm requeuing a task that still runs, the same descriptor
 * started twice, two seeds on one run.out_dir) exits 2 with one line naming
 * the holder, which the file records (host, pid, Slurm job and array task,
 * start time). Where the file system has no fcntl locks (ENOLCK, ENOSYS,
 * EOPNOTSUPP) the run goes on with a warning.
 *
 * RUN/stopped is left by a run that stopped on a signal after saving
 * everything (exit status 3): "stopped at step N ...". mpirun exits 1 when it
 * is itself sent SIGTERM or SIGINT whatever the ranks return, so a wrapper
 * that sees 1 can tell a clean stop from a failure by this file. It is
 * removed when the next run of the directory starts. */
#ifndef MIMAE_RUN_RUN_DIR_H
#define MIMAE_RUN_RUN_DIR_H

#include <stddef.h>

#include "io/lock_file.h"

#define RUN_LOCK_NAME LOCK_FILE_RUN_NAME
#define RUN_STOPPED_NAME "stopped"

typedef struct {
    int fd; /* -1: not held */
} run_lock_t;

/* Creates run_dir (mkdir -p) and RUN/.lock when missing (O_NOFOLLOW: never
 * through a link) and takes the lock. Returns an exit status: EXIT_OK held
 * (or no locks on this file system: warned), EXIT_BAD_INPUT when another
 * process holds it (err: one line naming it and what to do) or when the
 * directory or the file cannot be made there (err says which). */
int run_lock_acquire(run_lock_t *l, const char *run_dir, char *err, size_t errlen);

/* Collective over MPI_COMM_WORLD: rank 0 takes the lock (run_lock_acquire);
 * every rank returns its status (the message is rank 0's). */
int run_lock_take(run_lock_t *l, const char *run_dir, int rank, char *err, size_t errlen);

/* Records this process as the holder in the lock file. Called once the run's
 * checks have passed, so that a run refused for bad input leaves the
 * directory as it was. 0, or -1 with a message. */
int run_lock_record_holder(run_lock_t *l, char *err, size_t errlen);

/* Releases the lock (closing the file); the file stays for the next job. */
void run_lock_release(run_lock_t *l);

/* Writes RUN/stopped ("stopped at step N: <what>") atomically; 0 or -1. */
int run_stopped_mark(const char *run_dir, long step, const char *what, char *err,
                     size_t errlen);

/* Removes RUN/stopped if it is there; 0 or -1 with a message. */
int run_stopped_clear(const char *run_dir, char *err, size_t errlen);

/* Rank 0, after taking the lock and before anything is written: every name
 * the run will write in run_dir (results.h5, descriptor.ini, stopped,
 * results-recon-*.png) and in run_dir/checkpoints (ckpt-*.h5) that exists
 * must be a regular file. A symbolic link, FIFO or directory planted there
 * would otherwise fail the run at its first write there, possibly hours in;
 * now it is refused at the start. 0, or -1 with one line naming the entry. */
int run_dir_check_outputs(const char *run_dir, char *err, size_t errlen);

#endif
