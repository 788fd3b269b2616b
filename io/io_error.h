/* One-line error messages of the io library. Every message is escaped
 * (io/text_escape.h) once formatted: paths and values from files or the
 * command line reach a terminal as printable text. */
#ifndef MIMAE_IO_IO_ERROR_H
#define MIMAE_IO_IO_ERROR_H

#include <stddef.h>

/* The return value of a read that found its input file changed since it
 * was opened (truncated, grown, rewritten or replaced): the caller's data
 * would be wrong, which is not the same failure as a bad file (-1). */
#define IO_CHANGED (-2)

/* The return value of a write the disk refused (full, over quota, an I/O
 * error): not bad input, so programs exit 1 for it, not 2. */
#define IO_WRITE_FAILED (-3)

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
