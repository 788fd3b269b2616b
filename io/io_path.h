/* File-name helpers of the io library, and the two doors every file goes
 * through: inputs are checked (a regular file, not empty) before they are
 * opened, and outputs are created under an unpredictable temporary name
 * with O_CREAT | O_EXCL | O_NOFOLLOW and renamed into place, so nothing is
 * ever written through a symbolic link or into an existing file. */
#ifndef MIMAE_IO_IO_PATH_H
#define MIMAE_IO_IO_PATH_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "io/io_error.h"

/* dir + "/" + name, malloc'd (NULL when out of memory). */
char *io_path_join(const char *dir, const char *name);

/* mkdir -p: dir and any missing parents (mode 0777 less the umask). 0 when
 * dir is a directory afterwards; otherwise -1 with errno set (ENOTDIR when
 * a component exists but is not a directory, ENAMETOOLONG when dir does not
 * fit PATH_MAX) and the component that failed in failed[failed_len], for the
 * caller's message. Links in dir are followed: dir is the user's choice. */
int io_make_dirs(const char *dir, char *failed, size_t failed_len);

/* mkdir -p of top (as io_make_dirs), then of top/sub, where each component
 * of sub is a directory of ours: one that exists as a symbolic link (e.g. a
 * link planted at RUN/checkpoints) fails with ELOOP and is named in failed.
 * sub may be "" (top alone). */
int io_make_dirs_below(const char *top, const char *sub, char *failed, size_t failed_len);

/* One line for a failed io_make_dirs / io_make_dirs_below (errno as they
 * left it): "FAILED: <why>: <fix>", the fix naming `setting` (e.g.
 * "run.out_dir"). Returns -1. */
int io_make_dirs_fail(const char *failed, const char *setting, char *err, size_t errlen);

/* ---- inputs ---- */

/* What a file we read is, for noticing that it changed under a reader. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} io_file_id_t;

void io_file_id_of(const struct stat *st, io_file_id_t *id);

/* Checks path before anything opens it: it exists, is a regular file (a
 * symbolic link to one is fine) and holds at least min_bytes. A FIFO would
 * block open() for ever, a directory or device is never what we read: each
 * is refused with one line naming the path, what it is, and `what` we
 * expected ("data set", "descriptor", ...). st (may be NULL) gets its stat. */
int io_check_input(io_file_err_t *e, const char *what, off_t min_bytes, struct stat *st);

/* io_check_input, then open(2) read-only (O_NONBLOCK, so a file swapped for
 * a FIFO after the check cannot block; O_CLOEXEC) and fstat: the file opened
 * must be the one checked. The descriptor, or -1 after io_file_fail. */
int io_open_input(io_file_err_t *e, const char *what, off_t min_bytes, struct stat *st);

/* io_open_input as a stdio stream ("rb"); NULL after io_file_fail. */
FILE *io_fopen_input(io_file_err_t *e, const char *what, off_t min_bytes);

/* Whether the file a reader opened is still what it opened: path still
 * names it (a file renamed over it is another one), and fd (the reader's
 * descriptor of it, or -1) still has its size and modification time. 0, or
 * IO_CHANGED after io_file_fail with the line "changed while the run read
 * it (...): restore it and rerun; the last checkpoint is intact". */
int io_check_unchanged(io_file_err_t *e, int fd, const io_file_id_t *id);

/* ---- outputs ---- */

/* A file being written: PATH.tmp-<pid>-<random>, created exclusively beside
 * PATH, committed by rename. */
typedef struct {
    const char *path;   /* the final name (the caller's string) */
    char tmp[PATH_MAX];
    int fd;             /* the temporary's descriptor, -1 when closed */
    FILE *fp;           /* io_out_stream's stream over fd, or NULL */
} io_out_t;

/* Creates the temporary of path with mode (less the umask). A final path
 * that is a symbolic link is refused: the rename would replace the link
 * itself (never write through it), but someone put it there meaning the
 * data to go elsewhere, so we say so instead. 0, or -1 after io_file_fail
 * (e->path should be path). */
int io_out_open(io_out_t *out, const char *path, mode_t mode, io_file_err_t *e);

/* A stdio stream over the temporary (owned by out); NULL after io_file_fail. */
FILE *io_out_stream(io_out_t *out, io_file_err_t *e);

/* Opens out->tmp (O_NOFOLLOW) and checks it is the file with identity
 * `written`: a parked temporary before it is committed. */
int io_out_adopt(io_out_t *out, const struct stat *written, io_file_err_t *e);

/* Flushes, fsyncs and closes the temporary, checks that its name still
 * names the file written (not a link or another file put there meanwhile),
 * renames it onto the final path and fsyncs the directory. On failure the
 * temporary is removed and the final path is as it was. */
int io_out_commit(io_out_t *out, io_file_err_t *e);

/* Closes and removes the temporary (nothing is committed). Safe to call
 * after a failed open or commit, and more than once. */
void io_out_abort(io_out_t *out);

/* A temporary written completely but not renamed yet, for outputs that must
 * appear together (a sharded data set: every shard, then its index) or not
 * at all. Holds no descriptor, so a rank may park many. */
typedef struct {
    char *path;         /* the final name (owned) */
    char *tmp;          /* the temporary (owned); NULL once committed or removed */
    struct stat st;     /* the temporary as written: committed only if still that file */
} io_pending_t;

/* Flushes, fsyncs and closes out's temporary and keeps it under its name in
 * p (out is done with). On failure (a full disk) the temporary is removed:
 * 0, or -1 after io_file_fail. */
int io_out_park(io_out_t *out, io_pending_t *p, io_file_err_t *e);

/* Renames a parked temporary onto its final name (as io_out_commit: it must
 * still be the file written; the directory is fsynced). On failure the
 * temporary is removed. 0, or -1 after io_file_fail. */
int io_pending_commit(io_pending_t *p, io_file_err_t *e);

/* Removes a parked temporary that was not committed; frees p's names. Safe
 * on a zeroed p and after a commit (then only the names are freed). */
void io_pending_free(io_pending_t *p);

/* write(2) of len bytes to the temporary (not through out->fp). 0, or -1
 * after io_file_fail (a full disk, say). */
int io_out_write(io_out_t *out, const void *data, size_t len, io_file_err_t *e);

/* The whole file in one go: io_out_open, io_out_write, io_out_commit. */
int io_write_file(const char *path, mode_t mode, const void *data, size_t len, io_file_err_t *e);

/* A new file at path for writing (O_CREAT | O_EXCL | O_NOFOLLOW): for work
 * files in a private directory of ours, where no rename is needed. NULL
 * after io_file_fail when anything (a file, a link) is there already. */
FILE *io_create_new(const char *path, mode_t mode, io_file_err_t *e);

/* Appends to a log file that may exist (created if not, with mode): opened
 * with O_NOFOLLOW, so a link there is refused instead of written through. */
FILE *io_open_append(const char *path, mode_t mode, io_file_err_t *e);

#endif
