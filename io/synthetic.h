/* A small labelled data set of shapes, deterministic from a seed: for tests,
 * demos and runs without downloaded data (io/dataset.h schema). */
#ifndef MIMAE_IO_SYNTHETIC_H
#define MIMAE_IO_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "io/data_import.h"

#define SYNTHETIC_SHAPES 8
#define SYNTHETIC_MIN_SIDE 8
#define SYNTHETIC_MAX_SIDE 1024
/* Index of test image i in the RNG: test images never coincide with train
 * images, whatever n is. */
#define SYNTHETIC_TEST_BASE ((uint64_t)1 << 31)

/* Distinct classes for c channels: 8 shapes x 2 polarities x 2 textures,
 * x 6 colours when c >= 3. */
int synthetic_max_classes(int c);

/* One image (h, w, c) of class `label`: class k is shape k % 8 (filled
 * square, filled circle, triangle, horizontal bars, vertical bars, cross,
 * ring, diagonal band) and variant k / 8 (bit 0: dark shape on a light
 * background, bit 1: checkered fill, then the colour when c >= 3), with
 * jittered size, position and brightness and Gaussian pixel noise drawn from
 * rng_init(seed, 0, index, RNG_STREAM_EVAL). Same arguments, same bytes. */
void synthetic_image(uint8_t *img, int h, int w, int c, int label, uint64_t seed,
                     uint64_t index);

/* Writes OUT_DIR/train.h5 (n images, image i of class i % classes, RNG index
 * i) and OUT_DIR/test.h5 (max(n / 5, classes) images, RNG index
 * SYNTHETIC_TEST_BASE + i), name "synthetic-shapes". Needs classes <= n <
 * 2^31, h and w in 8..1024, c in 1..4, classes in 1..synthetic_max_classes(c).
 * OUT_DIR is created if missing; on failure no train.h5/test.h5 made by this
 * call remains. Returns 0, or -1 with a one-line message in err
 * (IO_WRITE_FAILED when the disk refused a write). */
int synthetic_generate(const char *out_dir, long n, int h, int w, int c, int classes,
                       uint64_t seed, char *err, size_t errlen);

/* synthetic_generate with data_import's options: sharded, over MPI ranks
 * (opts NULL: one file per split, one process). */
int synthetic_generate_opts(const char *out_dir, long n, int h, int w, int c, int classes,
                            uint64_t seed, const import_opts_t *opts, char *err,
                            size_t errlen);

#endif
