/* File-system helpers for tests: temporary directories, counting and
 * removing what is in them, a full disk played by the file size limit.
 * Failures fail the current cmocka test. */
#ifndef MIMAE_FS_UTIL_H
#define MIMAE_FS_UTIL_H

#include <stddef.h>
#include <sys/resource.h>

/* Creates $TMPDIR/<prefix>-XXXXXX (/tmp without TMPDIR) and puts its name in
 * dir: every test's (and fuzz target's) temporary directory comes from here,
 * so TMPDIR moves them all. A name that does not fit in len fails the test. */
void make_tmpdir(char *dir, size_t len, const char *prefix);

/* Entries of dir other than . and ..; 0 when dir does not exist. */
int count_entries(const char *dir);

/* 1 when dir holds a file whose name contains ".tmp-" (an atomic write's
 * temporary left behind), 0 otherwise. */
int has_temporary(const char *dir);

/* Removes path: a file, or a directory with everything in it (best effort);
 * 0 when nothing is left at path, -1 otherwise (a teardown can say so). */
int remove_tree(const char *path);

/* Plays a full disk: writes past `bytes` in a file fail with EFBIG (SIGXFSZ
 * is ignored meanwhile) until file_size_limit_restore. */
typedef struct {
    struct rlimit old;
    void (*old_handler)(int);
} file_size_limit_t;

void file_size_limit_set(file_size_limit_t *l, long long bytes);
void file_size_limit_restore(const file_size_limit_t *l);

#endif
