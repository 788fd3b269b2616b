/* Class-per-folder image trees (JPEG, PNG) to OUT_DIR/train.h5 and, when the
 * tree has a second split, OUT_DIR/test.h5 (io/dataset.h schema). */
#ifndef MIMAE_IO_FOLDER_IMPORT_H
#define MIMAE_IO_FOLDER_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "io/data_import.h"

#define FOLDER_MAX_SIZE 4096

/* Layouts: SRC_DIR/train/<class>/<image> with SRC_DIR/val/<class>/... (or
 * SRC_DIR/test/...) for the second split; or SRC_DIR/<class>/<image> only,
 * which gives just OUT_DIR/train.h5. Classes are the sorted names of the
 * train split's folders (the second split's folders must be among them);
 * images are taken in sorted file-name order, class by class. Every file
 * not starting with '.' must be a JPEG or PNG (recognised by content):
 * grey, RGB or RGBA (alpha dropped), CMYK JPEG; all give 3 channels. Each
 * image is resized so its shorter side is `size` (area average when
 * shrinking, bilinear when enlarging), then centre-cropped to size x size:
 * store more than the model's input (256 for a 224 model, as MAE's recipe
 * reads ImageNet), so that training's random resized crop has the
 * resolution to crop from and resizes to the model's size (core/data/
 * augment.h), and evaluation takes the centre crop.
 * Name = the last component of SRC_DIR; both files carry the train split's
 * mean/std; OUT_DIR is created if missing. An unreadable or corrupt image
 * is an error naming the file (nothing is skipped); on failure no
 * train.h5/test.h5 made by this call remains. Returns 0, or -1 with a
 * one-line message in err (IO_WRITE_FAILED: the disk refused a write). */
int folder_import(const char *src_dir, const char *out_dir, int size, char *err,
                  size_t errlen);

/* folder_import with data_import's options: sharded, over MPI ranks (each
 * lists the tree itself; they must see the same one). */
int folder_import_opts(const char *src_dir, const char *out_dir, int size,
                       const import_opts_t *opts, char *err, size_t errlen);

/* Decodes a JPEG or PNG file (at most 2^26 pixels) to 8-bit RGB (malloc'd,
 * *w x *h x 3), or NULL with a message naming the file. */
uint8_t *folder_load_rgb(const char *path, int *w, int *h, char *err, size_t errlen);

/* Resizes src (sw x sh x 3) so its shorter side is `size` and writes the
 * centre size x size crop to dst. Returns 0, or -1 when out of memory or
 * given an empty image. */
int folder_resize_crop(const uint8_t *src, int sw, int sh, int size, uint8_t *dst);

#endif
