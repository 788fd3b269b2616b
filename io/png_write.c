/* PNG grids of images with libpng: 8-bit grey or RGB, rows written one at a
 * time from a single row buffer; libpng errors longjmp back here and become
 * one-line messages. The file is written to PATH.tmp-<pid>-<random>, fsynced and
 * renamed, so PATH is either the old image or the complete new one. */
#include "io/png_write.h"

#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_path.h"

#define GRID_GAP 2           /* pixels between tiles */
#define GRID_GAP_VALUE 255   /* gaps are white */
#define PNG_SIDE_MAX 1000000 /* libpng's default user limit on width and height */

typedef struct {
    char msg[200];
} png_errctx_t;

static void png_error_fn(png_structp png, png_const_charp msg)
{
    png_errctx_t *e = png_get_error_ptr(png);
    if (e) snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings are not errors: the file is still written */
}

static uint8_t to_byte(float x)
{
    if (!(x > 0.0f)) return 0; /* also NaN */
    if (x >= 1.0f) return 255;
    return (uint8_t)(x * 255.0f + 0.5f);
}

/* Fills one output row of the grid. */
static void grid_row(uint8_t *row, const float *tiles, int y, int rows, int cols, int H, int W,
                     int C, int zoom, size_t width)
{
    const int cell_h = H * zoom + GRID_GAP, cell_w = W * zoom + GRID_GAP;
    const int tr = y / cell_h, iy_z = y % cell_h;
    memset(row, GRID_GAP_VALUE, width * (size_t)C);
    if (tr >= rows || iy_z >= H * zoom) return;
    const int iy = iy_z / zoom;
    for (int tc = 0; tc < cols; tc++) {
        const float *tile = tiles + ((size_t)tr * cols + tc) * (size_t)H * W * C;
        const float *src = tile + (size_t)iy * W * C;
        uint8_t *dst = row + (size_t)tc * cell_w * C;
        for (int ix = 0; ix < W; ix++)
            for (int z = 0; z < zoom; z++)
                for (int ch = 0; ch < C; ch++) *dst++ = to_byte(src[(size_t)ix * C + ch]);
    }
}

int png_write_grid(const char *path, const float *tiles, int rows, int cols, int H, int W,
                   int C, int zoom, char *err, size_t errlen)
{
    if (!path || !tiles || rows < 1 || cols < 1 || H < 1 || W < 1 || zoom < 1 ||
        (C != 1 && C != 3)) {
        snprintf(err, errlen, "%s: png_write_grid: bad arguments (rows %d, cols %d, H %d, W %d, "
                 "C %d, zoom %d): give positive sizes and C = 1 or 3", path ? path : "(null)",
                 rows, cols, H, W, C, zoom);
        return -1;
    }
    const long long width = (long long)cols * W * zoom + (long long)(cols - 1) * GRID_GAP;
    const long long height = (long long)rows * H * zoom + (long long)(rows - 1) * GRID_GAP;
    if (width > PNG_SIDE_MAX || height > PNG_SIDE_MAX) {
        snprintf(err, errlen, "%s: a grid of %lld x %lld pixels is too large for PNG: lower the "
                 "zoom or the number of tiles", path, width, height);
        return -1;
    }
    uint8_t *row = malloc((size_t)width * (size_t)C);
    if (!row) {
        snprintf(err, errlen, "%s: out of memory for a PNG row of %lld pixels", path, width);
        return -1;
    }
    io_file_err_t e = {path, err, errlen, 0};
    io_out_t out;
    if (io_out_open(&out, path, 0644, &e)) {
        free(row);
        return -1;
    }
    FILE *fp = io_out_stream(&out, &e);
    if (!fp) goto fail_file;
    png_errctx_t ectx = {""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ectx, png_error_fn,
                                              png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(err, errlen, "%s: out of memory setting up libpng", path);
        png_destroy_write_struct(png ? &png : NULL, NULL);
        goto fail_file;
    }
    /* Nothing that the code below the setjmp changes is read after a longjmp
     * except through ectx (not a local of this frame's registers). */
    if (setjmp(png_jmpbuf(png))) {
        snprintf(err, errlen, "%s: libpng: %s: the disk may be full; free space and retry",
                 path, ectx.msg);
        png_destroy_write_struct(&png, &info);
        goto fail_file;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (long long y = 0; y < height; y++) {
        grid_row(row, tiles, (int)y, rows, cols, H, W, C, zoom, (size_t)width);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);

    if (io_out_commit(&out, &e)) goto fail_file;
    free(row);
    return 0;
fail_file:
    io_out_abort(&out);
    free(row);
    return -1;
}
