#include "io/text_escape.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The length (2..4) of the valid UTF-8 sequence at s, or 0 when the byte at
 * s does not start one. */
static size_t utf8_sequence(const unsigned char *s)
{
    const unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1fu;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0fu;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07u;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    return n;
}

/* How many bytes of s form its next unit: a printable ASCII byte, a valid
 * UTF-8 sequence, or (0 returned) one byte to escape. */
static size_t printable_unit(const unsigned char *s)
{
    if (*s >= 0x20 && *s < 0x7f) return 1;
    return *s >= 0x80 ? utf8_sequence(s) : 0;
}

size_t text_escape(char *dst, size_t len, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    if (len == 0) return 0;
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0;
    while (*s) {
        const size_t n = printable_unit(s);
        if (n) {
            if (out + n >= len) break;
            memcpy(dst + out, s, n);
            out += n, s += n;
        } else {
            if (out + 4 >= len) break;
            dst[out++] = '\\', dst[out++] = 'x';
            dst[out++] = hex[*s >> 4], dst[out++] = hex[*s & 15];
            s++;
        }
    }
    dst[out] = '\0';
    return out;
}

void text_escape_in_place(char *buf, size_t len)
{
    if (!buf || len == 0 || text_is_printable(buf)) return;
    char *copy = strdup(buf);
    if (copy) {
        text_escape(buf, len, copy);
        free(copy);
        return;
    }
    /* out of memory: blank what cannot be shown rather than print it */
    for (unsigned char *s = (unsigned char *)buf; *s;) {
        const size_t n = printable_unit(s);
        if (n) s += n;
        else *s++ = '?';
    }
}

int text_is_printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const size_t n = printable_unit(p);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

void text_eprintf(const char *fmt, ...)
{
    char msg[4096], shown[4 * 4096]; /* each byte may become \xNN */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    text_escape(shown, sizeof shown, msg);
    fprintf(stderr, "%s\n", shown);
}
