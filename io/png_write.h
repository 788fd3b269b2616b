/* PNG output (libpng) of images given as 0..1 floats, channel last. */
#ifndef MIMAE_IO_PNG_WRITE_H
#define MIMAE_IO_PNG_WRITE_H

#include <stddef.h>

/* A grid of rows x cols images of (H, W, C) each (C = 1 grey, 3 RGB), tiles in
 * row-major order with a 2-pixel gap, scaled up by `zoom` (nearest).
 * Written to a temporary name and renamed. */
int png_write_grid(const char *path, const float *tiles, int rows, int cols, int H, int W,
                   int C, int zoom, char *err, size_t errlen);

#endif
