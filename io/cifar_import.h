/* CIFAR-10, binary version (cifar-10-binary.tar.gz), to OUT_DIR/train.h5 and
 * OUT_DIR/test.h5 (io/dataset.h schema). */
#ifndef MIMAE_IO_CIFAR_IMPORT_H
#define MIMAE_IO_CIFAR_IMPORT_H

#include <stddef.h>

#include "io/data_import.h"

/* SRC_DIR holds data_batch_1.bin .. data_batch_5.bin (train) and
 * test_batch.bin, or is the directory the tarball unpacks into
 * (SRC_DIR/cifar-10-batches-bin/ is also looked at). Each record is 1 label
 * byte (0..9) and 3072 pixel bytes: the R, G and B planes of 32x32, row-major;
 * they are stored as H x W x C. Class names come from batches.meta.txt (the
 * first 10 non-empty lines) if present, else the standard names. Every file's
 * size must be a non-zero multiple of 3073 bytes (checked before anything is
 * written). Writes OUT_DIR/train.h5 and OUT_DIR/test.h5 (name "cifar-10";
 * both carry the train split's mean/std); OUT_DIR is created if missing; on
 * failure no train.h5/test.h5 made by this call remains. Returns 0, or -1
 * with a one-line message naming the file in err (IO_WRITE_FAILED: the disk
 * refused a write). */
int cifar10_import(const char *src_dir, const char *out_dir, char *err, size_t errlen);

/* cifar10_import with data_import's options: sharded, over MPI ranks. */
int cifar10_import_opts(const char *src_dir, const char *out_dir, const import_opts_t *opts,
                        char *err, size_t errlen);

#endif
