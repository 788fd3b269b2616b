#include "io/io_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "io/text_escape.h"

int io_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        text_escape_in_place(err, errlen);
    }
    return -1;
}

int io_file_fail(io_file_err_t *e, const char *fmt, ...)
{
    if (e->failed) return -1;
    e->failed = 1;
    if (!e->err || e->errlen == 0) return -1;
    int n = snprintf(e->err, e->errlen, "%s: ", e->path ? e->path : "(null)");
    if (n < 0) n = 0;
    if ((size_t)n < e->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err + n, e->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    text_escape_in_place(e->err, e->errlen);
    return -1;
}
