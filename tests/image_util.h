/* Writing small image files for the importer tests: PNG through libpng's
 * simplified API, JPEG through libjpeg (quality 95). Failures fail the
 * current cmocka test. */
#ifndef MIMAE_TESTS_IMAGE_UTIL_H
#define MIMAE_TESTS_IMAGE_UTIL_H

#include <stdint.h>

/* w x h pixels of PNG_FORMAT_* `fmt` (libpng's simplified formats). */
void write_png(const char *path, int w, int h, int fmt, const uint8_t *px);

/* w x h pixels of comps components (1: grey, 3: RGB). */
void write_jpeg(const char *path, int w, int h, int comps, const uint8_t *px);

#endif
