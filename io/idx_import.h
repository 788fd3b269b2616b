/* Fashion-MNIST from Debian's dataset-fashion-mnist (gzip'd IDX files) to
 * OUT_DIR/train.h5 and OUT_DIR/test.h5 (io/dataset.h schema). */
#ifndef MIMAE_IO_IDX_IMPORT_H
#define MIMAE_IO_IDX_IMPORT_H

#include <stddef.h>

#include "io/data_import.h"

#define IDX_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Reads SRC_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (src_dir NULL:
 * IDX_FASHION_MNIST_DIR), checks magic numbers (0x00000803 images, 0x00000801
 * labels), 28x28 images, equal image and label counts, exact file lengths and
 * labels 0..9, and writes OUT_DIR/train.h5 and OUT_DIR/test.h5 (name
 * "fashion-mnist", 10 classes, C = 1; both carry the train split's mean/std).
 * OUT_DIR is created if missing. All four headers are checked before anything
 * is written; on failure no train.h5/test.h5 made by this call remains.
 * Returns 0, or -1 with a one-line message naming the file in err
 * (IO_WRITE_FAILED: the disk refused a write). */
int idx_import_fashion_mnist(const char *src_dir, const char *out_dir, char *err,
                             size_t errlen);

/* idx_import_fashion_mnist with data_import's options: sharded, over MPI
 * ranks (each reads the IDX files itself). */
int idx_import_fashion_mnist_opts(const char *src_dir, const char *out_dir,
                                  const import_opts_t *opts, char *err, size_t errlen);

#endif
