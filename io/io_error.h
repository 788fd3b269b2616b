/* One-line error messages of the io library. */
#ifndef MIMAE_IO_IO_ERROR_H
#define MIMAE_IO_IO_ERROR_H

#include <stddef.h>

/* Formats the message into err (when err and errlen are given); returns -1. */
__attribute__((format(printf, 3, 4)))
int io_fail(char *err, size_t errlen, const char *fmt, ...);

/* The errors of one operation on one file: the first failure wins, formatted
 * as "<path>: <what>". */
typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} io_file_err_t;

/* Records the failure (unless one was recorded already); returns -1. */
__attribute__((format(printf, 2, 3)))
int io_file_fail(io_file_err_t *e, const char *fmt, ...);

#endif
