/* File-name helpers of the io library. */
#ifndef MIMAE_IO_IO_PATH_H
#define MIMAE_IO_IO_PATH_H

/* dir + "/" + name, malloc'd (NULL when out of memory). */
char *io_path_join(const char *dir, const char *name);

#endif
