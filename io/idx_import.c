/* Fashion-MNIST IDX import (see idx_import.h). The IDX format: a big-endian
 * magic 0x000008TD (T = 0x08 unsigned bytes, D = number of dimensions), D
 * big-endian uint32 sizes, then the data, row-major. */
#include "io/idx_import.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/data_import.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define SIDE 28
#define CLASSES 10
#define BLOCK 1000 /* images per append */
#define REINSTALL "reinstall dataset-fashion-mnist or download the file again"

static const char *const class_names[CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

typedef struct {
    char path[4096];
    gzFile gz;
    long n; /* items the header announces */
} idx_file_t;

/* Reads exactly len bytes; a short read is a truncated (or corrupt) file. */
static int read_exact(idx_file_t *f, void *buf, size_t len, const char *what, char *err,
                      size_t errlen)
{
    int got = gzread(f->gz, buf, (unsigned)len);
    if (got == (int)len) return 0;
    int zerr = Z_OK;
    const char *msg = gzerror(f->gz, &zerr);
    if (got < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
        return io_fail(err, errlen, "%s: corrupt gzip data while reading %s (zlib: %s): %s",
                       f->path, what, msg, REINSTALL);
    return io_fail(err, errlen, "%s: truncated: the file ends inside %s (%d of %zu bytes "
                   "there): %s", f->path, what, got, len, REINSTALL);
}

/* The file must end exactly where its header says. */
static int check_end(idx_file_t *f, char *err, size_t errlen)
{
    unsigned char extra;
    int got = gzread(f->gz, &extra, 1);
    if (got == 0) return 0;
    if (got < 0)
        return read_exact(f, &extra, 1, "the end of the data", err, errlen);
    return io_fail(err, errlen, "%s: longer than its header says (%ld items): %s", f->path,
                   f->n, REINSTALL);
}

static int idx_open(idx_file_t *f, const char *dir, const char *name, uint32_t magic,
                    char *err, size_t errlen)
{
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    char why[1024];
    io_file_err_t e = {f->path, why, sizeof why, 0};
    const int fd = io_open_input(&e, "IDX", 1, NULL);
    if (fd < 0)
        return io_fail(err, errlen, "%s: install dataset-fashion-mnist or give the directory "
                       "holding the four IDX .gz files", why);
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return io_fail(err, errlen, "%s: cannot open (out of memory)", f->path);
    }
    gzbuffer(f->gz, 1 << 17);
    const int dims = (int)(magic & 0xff);
    unsigned char hdr[16];
    if (read_exact(f, hdr, 4 + 4 * (size_t)dims, "the IDX header", err, errlen)) return -1;
    uint32_t v[4];
    for (int i = 0; i <= dims; i++)
        v[i] = (uint32_t)hdr[4 * i] << 24 | (uint32_t)hdr[4 * i + 1] << 16 |
               (uint32_t)hdr[4 * i + 2] << 8 | hdr[4 * i + 3];
    if (v[0] != magic)
        return io_fail(err, errlen, "%s: IDX magic number is 0x%08x, expected 0x%08x: not an "
                       "IDX %s file; %s", f->path, v[0], magic,
                       dims == 3 ? "images" : "labels", REINSTALL);
    f->n = (long)v[1];
    if (dims == 3 && (v[2] != SIDE || v[3] != SIDE))
        return io_fail(err, errlen, "%s: images are %ux%u, Fashion-MNIST's are %dx%d: %s",
                       f->path, v[2], v[3], SIDE, SIDE, REINSTALL);
    if (f->n <= 0)
        return io_fail(err, errlen, "%s: the header announces no items: %s", f->path, REINSTALL);
    return 0;
}

/* One split, read whole (60000 images of 28 x 28 are 47 MB): every byte of
 * both files is checked before anything is written, and shards can be cut
 * from it anywhere. */
typedef struct {
    uint8_t *pixels;
    int32_t *labels;
} idx_split_t;

static int load_split(idx_file_t *img, idx_file_t *lab, idx_split_t *x, char *err,
                      size_t errlen)
{
    unsigned char *raw = malloc((size_t)lab->n);
    x->labels = malloc((size_t)lab->n * sizeof *x->labels);
    x->pixels = malloc((size_t)img->n * SIDE * SIDE);
    int rc = -1;
    if (!raw || !x->labels || !x->pixels) {
        io_fail(err, errlen, "%s: out of memory for %ld images", img->path, img->n);
        goto out;
    }
    if (read_exact(lab, raw, (size_t)lab->n, "the labels", err, errlen) ||
        check_end(lab, err, errlen))
        goto out;
    for (long i = 0; i < lab->n; i++) {
        if (raw[i] >= CLASSES) {
            io_fail(err, errlen, "%s: label %d of image %ld is outside 0..%d: %s", lab->path,
                    raw[i], i, CLASSES - 1, REINSTALL);
            goto out;
        }
        x->labels[i] = raw[i];
    }
    for (long done = 0; done < img->n;) {
        long count = img->n - done < BLOCK ? img->n - done : BLOCK;
        char what[64];
        snprintf(what, sizeof what, "images %ld..%ld", done, done + count - 1);
        if (read_exact(img, x->pixels + (size_t)done * SIDE * SIDE, (size_t)count * SIDE * SIDE,
                       what, err, errlen))
            goto out;
        done += count;
    }
    rc = check_end(img, err, errlen);
out:
    free(raw);
    return rc;
}

static int read_images(const import_split_t *s, long first, long count, uint8_t *pixels,
                       int32_t *labels, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const idx_split_t *x = s->ctx;
    memcpy(pixels, x->pixels + (size_t)first * SIDE * SIDE, (size_t)count * SIDE * SIDE);
    memcpy(labels, x->labels + first, (size_t)count * sizeof *labels);
    return 0;
}

int idx_import_fashion_mnist(const char *src_dir, const char *out_dir, char *err,
                             size_t errlen)
{
    return idx_import_fashion_mnist_opts(src_dir, out_dir, NULL, err, errlen);
}

int idx_import_fashion_mnist_opts(const char *src_dir, const char *out_dir,
                                  const import_opts_t *opts, char *err, size_t errlen)
{
    static const char *const files[4] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
    };
    if (!src_dir || !*src_dir) src_dir = IDX_FASHION_MNIST_DIR;
    if (!out_dir || !*out_dir) return io_fail(err, errlen, "fashion-mnist import: no output "
                                              "directory given");
    idx_file_t *f = calloc(4, sizeof *f);
    idx_split_t x[2] = {{NULL, NULL}, {NULL, NULL}};
    char names[CLASSES][DATASET_NAME_MAX];
    int rc = -1;
    if (!f) {
        io_fail(err, errlen, "%s: out of memory", out_dir);
        goto out;
    }
    /* Every header first, so a missing or wrong file writes nothing. */
    for (int i = 0; i < 4; i++)
        if (idx_open(&f[i], src_dir, files[i], i % 2 ? IDX_LABELS_MAGIC : IDX_IMAGES_MAGIC,
                     err, errlen))
            goto out;
    for (int i = 0; i < 4; i += 2)
        if (f[i].n != f[i + 1].n) {
            io_fail(err, errlen, "%s: %ld images but %s has %ld labels: %s", f[i].path, f[i].n,
                    f[i + 1].path, f[i + 1].n, REINSTALL);
            goto out;
        }
    if (load_split(&f[0], &f[1], &x[0], err, errlen) ||
        load_split(&f[2], &f[3], &x[1], err, errlen))
        goto out;
    rc = 0;
out:
    rc = import_agree(opts, rc, err, errlen);
    if (rc == 0) {
        for (int k = 0; k < CLASSES; k++) snprintf(names[k], sizeof names[k], "%s", class_names[k]);
        dataset_info_t proto =
            dataset_info_of_import("fashion-mnist", src_dir, SIDE, 1, CLASSES, names);
        import_split_t splits[2];
        for (int s = 0; s < 2; s++)
            splits[s] = import_split_of(&proto, s, f[2 * s].n, BLOCK, read_images, &x[s]);
        rc = data_import(out_dir, splits, 2, opts, err, errlen);
    }
    for (int i = 0; f && i < 4; i++)
        if (f[i].gz) gzclose(f[i].gz);
    for (int s = 0; s < 2; s++) free(x[s].pixels), free(x[s].labels);
    free(f);
    return rc;
}
