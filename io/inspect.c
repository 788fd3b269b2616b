#include "io/inspect.h"

#include <hdf5.h>
#include <string.h>

#include "core/config/config_fields.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/h5_atomic.h"
#include "io/io_error.h"
#include "io/h5_attr.h"
#include "io/results.h"
#include "io/text_escape.h"

/* Text from the file (or the command line) as it may be printed. */
typedef struct {
    char s[2048]; /* a long path is cut (at a character boundary) */
} shown_t;

static shown_t shown(const char *text)
{
    shown_t out;
    text_escape(out.s, sizeof out.s, text);
    return out;
}

/* The root "format" string attribute, or "" when there is none. */
static void read_format(hid_t file, char *buf, size_t len)
{
    buf[0] = 0;
    h5_attr_t a;
    if (h5_attr_open(file, "format", &a) != ATTR_OK) return;
    if (a.cls == H5T_STRING && a.count == 1 && h5_attr_read_string(&a, buf, len) != ATTR_OK)
        buf[0] = 0;
    h5_attr_close(&a);
}

static void print_config(FILE *out, const mimae_config_t *cfg)
{
    char value[64];
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        config_field_format(f, cfg, value, sizeof value);
        fprintf(out, "  %s.%s = %s\n", f->section, f->key, value);
    }
}

static int inspect_dataset(const char *path, FILE *out, char *err, size_t errlen)
{
    dataset_t *d = dataset_open(path, err, errlen);
    if (!d) return -1;
    const dataset_info_t *info = dataset_get_info(d);
    fprintf(out, "%s: mimae data set '%s', split %s\n", shown(path).s, shown(info->name).s,
            shown(info->split).s);
    fprintf(out, "  images   %ld x %d x %d x %d (uint8)\n", info->n, info->h, info->w, info->c);
    if (info->shards) fprintf(out, "  shards   %d files beside it (this file is their index)\n",
                              info->shards);
    fprintf(out, "  classes  %d:", info->num_classes);
    for (int k = 0; k < info->num_classes; k++)
        fprintf(out, "%s %s", k ? "," : "", shown(info->class_names[k]).s);
    fprintf(out, "\n  mean/std");
    for (int c = 0; c < info->c; c++) fprintf(out, " %.4f/%.4f", info->mean[c], info->std[c]);
    fprintf(out, "\n  source   %s\n", shown(info->source).s);
    long counts[DATASET_MAX_CLASSES] = {0};
    const int32_t *labels = dataset_labels(d);
    for (long i = 0; i < info->n; i++) counts[labels[i]]++;
    fprintf(out, "  per class");
    for (int k = 0; k < info->num_classes; k++) fprintf(out, " %ld", counts[k]);
    fprintf(out, "\n");
    dataset_close(d);
    return 0;
}

static int inspect_checkpoint(const char *path, FILE *out, char *err, size_t errlen)
{
    mimae_config_t cfg;
    if (checkpoint_read_config(path, &cfg, err, errlen)) return -1;
    char verdict[512] = "valid (checksum verified)";
    if (checkpoint_verify(path, verdict, sizeof verdict)) {
        fprintf(out, "%s: mimae checkpoint, INVALID: %s\n", shown(path).s, verdict);
        snprintf(err, errlen, "%s", verdict);
        return -1;
    }
    io_file_err_t opened = {path, NULL, 0, 0}; /* verified above: only the values are read */
    hid_t f = h5_open_input("checkpoint", H5P_DEFAULT, NULL, NULL, &opened);
    long step = -1, epoch = -1, epoch_step = -1;
    unsigned long long seed = 0;
    if (f >= 0) {
        const char *names[] = {"step", "epoch", "epoch_step"};
        long *vals[] = {&step, &epoch, &epoch_step};
        for (int i = 0; i < 3; i++) {
            hid_t a = H5Aopen(f, names[i], H5P_DEFAULT);
            if (a >= 0) H5Aread(a, H5T_NATIVE_LONG, vals[i]), H5Aclose(a);
        }
        hid_t a = H5Aopen(f, "seed", H5P_DEFAULT);
        if (a >= 0) H5Aread(a, H5T_NATIVE_ULLONG, &seed), H5Aclose(a);
        H5Fclose(f);
    }
    fprintf(out, "%s: mimae checkpoint, %s\n", shown(path).s, verdict);
    fprintf(out, "  step %ld, epoch %ld (+%ld steps), seed %llu\n", step, epoch, epoch_step, seed);
    print_config(out, &cfg);
    return 0;
}

static int inspect_results(const char *path, FILE *out, char *err, size_t errlen)
{
    results_t *r = results_load(path, err, errlen);
    if (!r) return -1;
    long n = results_step_count(r);
    fprintf(out, "%s: mimae results, %ld logged steps\n", shown(path).s, n);
    const char *status = results_get_attr(r, RESULTS_STATUS); /* absent in older files */
    if (status) fprintf(out, "  status %s\n", shown(status).s);
    if (n > 0) {
        const step_metrics_t *s = &results_steps(r)[n - 1];
        fprintf(out, "  last step %ld (epoch %.2f, %.0f views): L %.4f L_rec %.4f L_max %.4f "
                "L_min %.4f L_q %.4f lr %.3g %.1f img/s\n", s->step, s->epoch, s->views,
                s->total, s->rec, s->max, s->min, s->q, s->lr, s->images_per_s);
    }
    const char *evals[] = {"linear_probe_top1", "knn_top1", "finetune_top1"};
    for (size_t i = 0; i < sizeof evals / sizeof evals[0]; i++) {
        double v;
        if (results_get_eval(r, evals[i], &v) == 0) fprintf(out, "  %s %.4f\n", evals[i], v);
    }
    print_config(out, results_config(r));
    results_free(r);
    return 0;
}

static herr_t list_object(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    FILE *out = data;
    if (info->type == H5O_TYPE_GROUP) {
        fprintf(out, "  %s/\n", shown(name).s);
    } else if (info->type == H5O_TYPE_DATASET) {
        hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
        hid_t space = ds >= 0 ? H5Dget_space(ds) : -1;
        hsize_t dims[8] = {0};
        int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
        fprintf(out, "  %s (", shown(name).s);
        for (int i = 0; i < rank; i++) fprintf(out, "%s%llu", i ? " x " : "", (unsigned long long)dims[i]);
        fprintf(out, ")\n");
        if (space >= 0) H5Sclose(space);
        if (ds >= 0) H5Dclose(ds);
    }
    return 0;
}

int inspect_file(const char *path, FILE *out, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* checked before HDF5 opens it: a FIFO would block the open for ever */
    io_file_err_t e = {path, err, errlen, 0};
    hid_t f = h5_open_input("HDF5", H5P_DEFAULT, NULL, NULL, &e);
    if (f < 0 && e.failed) return -1;
    if (f < 0 && H5Fis_hdf5(path) <= 0)
        return io_fail(err, errlen, "%s: not an HDF5 file: give a data set, checkpoint or "
                       "results file made by mimae", path);
    if (f < 0)
        return io_fail(err, errlen, "%s: HDF5 cannot open it (truncated or corrupt?)", path);
    char format[64];
    read_format(f, format, sizeof format);
    if (strcmp(format, DATASET_FORMAT) == 0) {
        H5Fclose(f);
        return inspect_dataset(path, out, err, errlen);
    }
    if (strcmp(format, CHECKPOINT_FORMAT) == 0) {
        H5Fclose(f);
        return inspect_checkpoint(path, out, err, errlen);
    }
    if (strcmp(format, RESULTS_FORMAT) == 0) {
        H5Fclose(f);
        return inspect_results(path, out, err, errlen);
    }
    fprintf(out, "%s: HDF5 file not written by mimae; its objects:\n", shown(path).s);
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, list_object, out);
    H5Fclose(f);
    return 0;
}
