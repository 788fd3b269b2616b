/* PNG output (libpng) of images given as 0..1 floats, channel last. */
#ifndef MIMAE_IO_PNG_WRITE_H
#define MIMAE_IO_PNG_WRITE_H

#include <stddef.h>

/* A grid of rows x cols images of (H, W, C) each (C = 1 grey, 3 RGB), tiles in
 * row-major order with a 2-pixel white gap between tiles (none around the
 * edge), scaled up by `zoom` (nearest): the PNG is
 * cols*W*zoom + 2*(cols-1) wide and rows*H*zoom + 2*(rows-1) high, 8-bit.
 * Pixels are round(clamp(x, 0, 1) * 255) (NaN gives 0).
 * Written to PATH.tmp-<pid>-<random>, fsynced and renamed; on failure PATH is
 * untouched. Returns 0, or -1 with a one-line message. */
int png_write_grid(const char *path, const float *tiles, int rows, int cols, int H, int W,
                   int C, int zoom, char *err, size_t errlen);

#endif
