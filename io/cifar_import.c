/* CIFAR-10 binary import (see cifar_import.h). */
#include "io/cifar_import.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/data_import.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define SIDE 32
#define PLANE (SIDE * SIDE)
#define RECORD (1 + 3 * PLANE)
#define CLASSES 10
#define BLOCK 500 /* records per append */
#define TRAIN_FILES 5
#define REDOWNLOAD "download cifar-10-binary.tar.gz again and unpack it"

static const char *const default_names[CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck"
};

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Class names from batches.meta.txt, if the file exists. */
static int read_names(const char *dir, char names[CLASSES][DATASET_NAME_MAX], char *err,
                      size_t errlen)
{
    char line[256];
    for (int k = 0; k < CLASSES; k++) snprintf(names[k], DATASET_NAME_MAX, "%s", default_names[k]);
    char *path = io_path_join(dir, "batches.meta.txt");
    if (!path) return io_fail(err, errlen, "%s: out of memory", dir);
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) { /* optional: the standard names */
        free(path);
        return 0;
    }
    io_file_err_t fe = {path, err, errlen, 0};
    FILE *fp = io_fopen_input(&fe, "class-name list", 0);
    if (!fp) {
        free(path);
        return -1;
    }
    int rc = 0;
    int k = 0;
    while (k < CLASSES && fgets(line, sizeof line, fp)) {
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        *e = '\0';
        if (!*s) continue;
        if ((size_t)(e - s) >= DATASET_NAME_MAX) {
            rc = io_fail(err, errlen, "%s: class name \"%.20s...\" is longer than %d "
                         "characters: shorten it", path, s, DATASET_NAME_MAX - 1);
            break;
        }
        snprintf(names[k++], DATASET_NAME_MAX, "%s", s);
    }
    int bad = ferror(fp);
    fclose(fp);
    if (rc == 0 && (bad || k < CLASSES))
        rc = io_fail(err, errlen, "%s: %s: it must list the %d class names, one a line "
                     "(or remove it to use the standard names)", path,
                     bad ? "read error" : "too few names", CLASSES);
    free(path);
    return rc;
}

typedef struct {
    char *const *files;
    int nfiles;
    long records[TRAIN_FILES]; /* records of each file, from its size */
    unsigned char *raw;        /* BLOCK records */
} cifar_split_t;

/* Records [first, first + count) of the split's files, in file order. */
static int read_records(const import_split_t *s, long first, long count, uint8_t *pixels,
                        int32_t *labels, char *err, size_t errlen)
{
    const cifar_split_t *x = s->ctx;
    int f = 0;
    long record = first;
    while (f < x->nfiles && record >= x->records[f]) record -= x->records[f++];
    for (long done = 0; done < count; f++, record = 0) {
        if (f >= x->nfiles) return io_fail(err, errlen, "%s: internal error: record %ld of %ld",
                                           x->files[0], first + done, first + count);
        const char *path = x->files[f];
        long m = x->records[f] - record;
        if (m > count - done) m = count - done;
        io_file_err_t e = {path, err, errlen, 0};
        FILE *fp = io_fopen_input(&e, "CIFAR-10 batch", 1);
        if (!fp) return -1;
        int rc = 0;
        for (long got = 0; rc == 0 && got < m;) {
            const long want = m - got < BLOCK ? m - got : BLOCK;
            size_t n = 0;
            if (fseek(fp, (record + got) * RECORD, SEEK_SET) == 0)
                n = fread(x->raw, RECORD, (size_t)want, fp);
            if ((long)n != want) {
                rc = io_fail(err, errlen, "%s: read error or end of file at record %ld (the size "
                             "said %ld records; changed meanwhile?): %s", path, record + got +
                             (long)n, x->records[f], REDOWNLOAD);
                break;
            }
            for (long r = 0; r < want; r++) {
                const unsigned char *rec = x->raw + (size_t)r * RECORD;
                if (rec[0] >= CLASSES) {
                    rc = io_fail(err, errlen, "%s: record %ld has label %d, outside 0..%d: not "
                                 "a CIFAR-10 binary batch; %s", path, record + got + r, rec[0],
                                 CLASSES - 1, REDOWNLOAD);
                    break;
                }
                const long i = done + got + r;
                labels[i] = rec[0];
                uint8_t *img = pixels + (size_t)i * 3 * PLANE;
                for (int q = 0; q < PLANE; q++)
                    for (int ch = 0; ch < 3; ch++) img[3 * q + ch] = rec[1 + ch * PLANE + q];
            }
            got += want;
        }
        fclose(fp);
        if (rc) return rc;
        done += m;
    }
    return 0;
}

int cifar10_import(const char *src_dir, const char *out_dir, char *err, size_t errlen)
{
    return cifar10_import_opts(src_dir, out_dir, NULL, err, errlen);
}

int cifar10_import_opts(const char *src_dir, const char *out_dir, const import_opts_t *opts,
                        char *err, size_t errlen)
{
    if (!src_dir || !*src_dir)
        return io_fail(err, errlen, "cifar-10 import: no source directory given");
    if (!out_dir || !*out_dir)
        return io_fail(err, errlen, "cifar-10 import: no output directory given");
    char *files[TRAIN_FILES + 1] = { NULL };
    char *dir = io_path_join(src_dir, "cifar-10-batches-bin");
    char *probe = dir ? io_path_join(dir, "data_batch_1.bin") : NULL;
    char names[CLASSES][DATASET_NAME_MAX];
    long records[TRAIN_FILES + 1];
    unsigned char *raw = malloc((size_t)BLOCK * RECORD);
    int rc = -1;
    if (!dir || !probe || !raw) {
        io_fail(err, errlen, "%s: out of memory", out_dir);
        goto out;
    }
    if (!is_file(probe)) { /* not the directory above the unpacked one */
        free(dir);
        dir = strdup(src_dir);
    }
    for (int i = 0; dir && i <= TRAIN_FILES; i++) {
        char name[32];
        if (i < TRAIN_FILES) snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else snprintf(name, sizeof name, "test_batch.bin");
        files[i] = io_path_join(dir, name);
        if (!files[i]) break;
    }
    if (!dir || !files[TRAIN_FILES]) {
        io_fail(err, errlen, "%s: out of memory", out_dir);
        goto out;
    }
    for (int i = 0; i <= TRAIN_FILES; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0) {
            io_fail(err, errlen, "%s: cannot open (%s): give the directory of the CIFAR-10 "
                    "binary version (data_batch_1.bin .. 5, test_batch.bin)", files[i],
                    strerror(errno));
            goto out;
        }
        io_file_err_t fe = {files[i], err, errlen, 0};
        if (io_check_input(&fe, "CIFAR-10 batch", 1, NULL)) goto out;
        if (st.st_size % RECORD != 0) {
            io_fail(err, errlen, "%s: %lld bytes is not a whole number of %d-byte records "
                    "(1 label + 32x32x3): truncated or not CIFAR-10 binary; %s", files[i],
                    (long long)st.st_size, RECORD, REDOWNLOAD);
            goto out;
        }
        records[i] = (long)(st.st_size / RECORD);
    }
    if (read_names(dir, names, err, errlen)) goto out;
    rc = 0;
out:
    rc = import_agree(opts, rc, err, errlen);
    if (rc == 0) {
        cifar_split_t x[2] = {{files, TRAIN_FILES, {0}, raw}, {files + TRAIN_FILES, 1, {0}, raw}};
        dataset_info_t proto = dataset_info_of_import("cifar-10", dir, SIDE, 3, CLASSES, names);
        import_split_t splits[2];
        for (int s = 0; s < 2; s++) {
            long n = 0;
            for (int f = 0; f < x[s].nfiles; f++)
                n += x[s].records[f] = records[s * TRAIN_FILES + f];
            splits[s] = import_split_of(&proto, s, n, BLOCK, read_records, &x[s]);
        }
        rc = data_import(out_dir, splits, 2, opts, err, errlen);
    }
    for (int i = 0; i <= TRAIN_FILES; i++) free(files[i]);
    free(dir);
    free(probe);
    free(raw);
    return rc;
}
