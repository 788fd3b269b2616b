/* File-name helpers of the io library. */
#ifndef MIMAE_IO_IO_PATH_H
#define MIMAE_IO_IO_PATH_H

#include <stddef.h>

/* dir + "/" + name, malloc'd (NULL when out of memory). */
char *io_path_join(const char *dir, const char *name);

/* mkdir -p: dir and any missing parents (mode 0777 less the umask). 0 when
 * dir is a directory afterwards; otherwise -1 with errno set (ENOTDIR when
 * a component exists but is not a directory, ENAMETOOLONG when dir does not
 * fit PATH_MAX) and the component that failed in failed[failed_len], for the
 * caller's message. */
int io_make_dirs(const char *dir, char *failed, size_t failed_len);

#endif
