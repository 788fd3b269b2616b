/* Printable text: every string that came from a file or a command line is
 * shown through here before it reaches a terminal or a log, so that bytes
 * in a file name, an attribute or a --set value cannot act on the terminal
 * (escape sequences), break a one-line message (newlines) or garble it
 * (invalid UTF-8). io_fail / io_file_fail escape every io/ message; the
 * programs print every message with text_eprintf / text_escape.
 *
 * Escaped: bytes below 0x20, DEL (0x7f), and every byte that is not part of
 * a valid UTF-8 sequence (overlong forms, surrogates and code points above
 * U+10FFFF count as invalid), each shown as \xNN. Everything else, the
 * backslash included, is kept, so escaping is idempotent: a message escaped
 * once passes through any later escaping unchanged. */
#ifndef MIMAE_IO_TEXT_ESCAPE_H
#define MIMAE_IO_TEXT_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* Copies src into dst[0..len) escaped, always NUL-terminated when len > 0;
 * when it does not fit, it is cut before a whole character or escape (never
 * inside one). The length written. src and dst may be the same buffer only
 * through text_escape_in_place. */
size_t text_escape(char *dst, size_t len, const char *src);

/* Escapes the NUL-terminated text in buf (capacity len) in place, cutting
 * it as text_escape does when the escapes do not fit. */
void text_escape_in_place(char *buf, size_t len);

/* 1 when s holds no byte text_escape would escape. */
int text_is_printable(const char *s);

/* Formats a message, escapes it and prints it to stderr as one line (a
 * newline is added; the format should not end with one). */
__attribute__((format(printf, 1, 2)))
void text_eprintf(const char *fmt, ...);

#endif
