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

/* Appends every record of one batch file to w. */
static int append_batch(dataset_writer_t *w, const char *path, unsigned char *raw,
                        uint8_t *pix, int32_t *labels, char *err, size_t errlen)
{
    io_file_err_t e = {path, err, errlen, 0};
    FILE *fp = io_fopen_input(&e, "CIFAR-10 batch", 1);
    if (!fp) return -1;
    long record = 0;
    int rc = 0;
    for (;;) {
        size_t got = fread(raw, RECORD, BLOCK, fp);
        for (size_t r = 0; r < got && rc == 0; r++) {
            const unsigned char *rec = raw + r * RECORD;
            if (rec[0] >= CLASSES) {
                rc = io_fail(err, errlen, "%s: record %ld has label %d, outside 0..%d: not a "
                             "CIFAR-10 binary batch; %s", path, record + (long)r, rec[0],
                             CLASSES - 1, REDOWNLOAD);
                break;
            }
            labels[r] = rec[0];
            uint8_t *img = pix + r * 3 * PLANE;
            for (int p = 0; p < PLANE; p++)
                for (int ch = 0; ch < 3; ch++)
                    img[3 * p + ch] = rec[1 + ch * PLANE + p];
        }
        if (rc == 0 && got > 0)
            rc = dataset_writer_append(w, pix, labels, (long)got, err, errlen);
        record += (long)got;
        if (rc || got < BLOCK) break;
    }
    if (rc == 0 && ferror(fp))
        rc = io_fail(err, errlen, "%s: read error after %ld records: %s", path, record,
                     REDOWNLOAD);
    else if (rc == 0 && fgetc(fp) != EOF)
        rc = io_fail(err, errlen, "%s: ends inside a record (after %ld records): %s", path,
                     record, REDOWNLOAD);
    fclose(fp);
    return rc;
}

static int import_split(char *const *files, int nfiles, const char *src_dir,
                        const char *out_path, const char *split,
                        char names[CLASSES][DATASET_NAME_MAX], const double *mean_in,
                        const double *std_in, double *mean_out, double *std_out, char *err,
                        size_t errlen)
{
    unsigned char *raw = malloc((size_t)BLOCK * RECORD);
    uint8_t *pix = malloc((size_t)BLOCK * 3 * PLANE);
    int32_t *labels = malloc((size_t)BLOCK * sizeof *labels);
    dataset_writer_t *w = NULL;
    int rc = -1;
    if (!raw || !pix || !labels) {
        io_fail(err, errlen, "%s: out of memory", out_path);
        goto out;
    }
    dataset_info_t info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "cifar-10");
    snprintf(info.split, sizeof info.split, "%s", split);
    snprintf(info.source, sizeof info.source, "%s", src_dir);
    info.h = info.w = SIDE;
    info.c = 3;
    info.num_classes = CLASSES;
    info.class_names = names;
    if (!(w = dataset_writer_create(out_path, &info, err, errlen))) goto out;
    for (int i = 0; i < nfiles; i++)
        if (append_batch(w, files[i], raw, pix, labels, err, errlen)) goto out;
    if (mean_out) dataset_writer_stats(w, mean_out, std_out);
    rc = dataset_writer_finish(w, mean_in, std_in, err, errlen);
    w = NULL;
out:
    dataset_writer_abort(w);
    free(raw);
    free(pix);
    free(labels);
    return rc;
}

int cifar10_import(const char *src_dir, const char *out_dir, char *err, size_t errlen)
{
    if (!src_dir || !*src_dir)
        return io_fail(err, errlen, "cifar-10 import: no source directory given");
    if (!out_dir || !*out_dir)
        return io_fail(err, errlen, "cifar-10 import: no output directory given");
    char *files[TRAIN_FILES + 1] = { NULL };
    char *dir = io_path_join(src_dir, "cifar-10-batches-bin");
    char *probe = dir ? io_path_join(dir, "data_batch_1.bin") : NULL;
    char *train_path = io_path_join(out_dir, "train.h5");
    char *test_path = io_path_join(out_dir, "test.h5");
    char names[CLASSES][DATASET_NAME_MAX];
    int rc = -1;
    if (!dir || !probe || !train_path || !test_path) {
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
    }
    if (read_names(dir, names, err, errlen)) goto out;
    double mean[3], std[3];
    if (import_split(files, TRAIN_FILES, dir, train_path, "train", names, NULL, NULL, mean,
                     std, err, errlen))
        goto out;
    if (import_split(files + TRAIN_FILES, 1, dir, test_path, "test", names, mean, std, NULL,
                     NULL, err, errlen)) {
        unlink(train_path); /* never leave a train.h5 without its test.h5 */
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i <= TRAIN_FILES; i++) free(files[i]);
    free(dir);
    free(probe);
    free(train_path);
    free(test_path);
    return rc;
}
