/* Entry points of the fuzz targets (see fuzz_entry.h). */
#include "tests/fuzz/fuzz_entry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/config/config.h"
#include "core/config/config_fields.h"
#include "core/vit/model.h"
#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/results.h"
#include "io/text_escape.h"
#include "tests/fs_util.h"

/* ------------------------------------------------------------------------
 * Temporary files: one directory per process, removed at exit. */

static char tmp_dir[512];

static void remove_tmp_dir(void)
{
    if (!tmp_dir[0]) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: cannot remove %s\n", tmp_dir);
}

static const char *tmp_file(const char *name, char *buf, size_t len)
{
    if (!tmp_dir[0]) {
        make_tmpdir(tmp_dir, sizeof tmp_dir, "mimae-fuzz");
        atexit(remove_tmp_dir);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    snprintf(buf, len, "%s/%s", tmp_dir, name);
    return buf;
}

static void write_input(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz: invariant broken: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* A rejection must say why, in one line, and be fit for a terminal: no
 * control byte, DEL or invalid UTF-8 from the input may reach it
 * (io/text_escape.h shows them as \xNN). */
static void check_message(const char *who, const char *err)
{
    if (!err[0]) broken(who, "failed without a message");
    if (strchr(err, '\n')) broken(who, err);
    if (!text_is_printable(err)) {
        char shown[4 * 4096 + 1];
        text_escape(shown, sizeof shown, err);
        broken(who, shown);
    }
}

/* ------------------------------------------------------------------------
 * Descriptors. */

static int same_field(const config_field_t *f, const void *a, const void *b)
{
    size_t size = f->type == FIELD_LONG ? sizeof(long)
                : f->type == FIELD_FLOAT ? sizeof(float)
                : f->type == FIELD_DOUBLE ? sizeof(double) : sizeof(int);
    return memcmp((const char *)a + f->offset, (const char *)b + f->offset, size) == 0;
}

static void compare_descriptors(const descriptor_t *a, const descriptor_t *b)
{
    char what[160];
    for (int i = 0; i < mimae_config_field_count; i++)
        if (!same_field(&mimae_config_fields[i], &a->model, &b->model)) {
            snprintf(what, sizeof what, "%s.%s", mimae_config_fields[i].section,
                     mimae_config_fields[i].key);
            broken("descriptor_write + descriptor_load changed a model key", what);
        }
    for (int i = 0; i < run_config_field_count; i++)
        if (!same_field(&run_config_fields[i], &a->run, &b->run)) {
            snprintf(what, sizeof what, "%s.%s", run_config_fields[i].section,
                     run_config_fields[i].key);
            broken("descriptor_write + descriptor_load changed a run key", what);
        }
    if (strcmp(a->run.preset, b->run.preset) || strcmp(a->run.train_data, b->run.train_data) ||
        strcmp(a->run.test_data, b->run.test_data) || strcmp(a->run.out_dir, b->run.out_dir) ||
        strcmp(a->run.name, b->run.name))
        broken("descriptor_write + descriptor_load changed a text key", NULL);
    if (a->sweep_count != b->sweep_count)
        broken("descriptor_write + descriptor_load changed the [sweep]", NULL);
    for (int i = 0; i < a->sweep_count; i++)
        if (strcmp(a->sweep_keys[i], b->sweep_keys[i]) ||
            strcmp(a->sweep_values[i], b->sweep_values[i]))
            broken("descriptor_write + descriptor_load changed a sweep entry", a->sweep_keys[i]);
    if (a->arm_count != b->arm_count || a->arm_set_count != b->arm_set_count)
        broken("descriptor_write + descriptor_load changed the arms", NULL);
    for (int i = 0; i < a->arm_count; i++)
        if (strcmp(a->arms[i].name, b->arms[i].name) || a->arms[i].first != b->arms[i].first ||
            a->arms[i].count != b->arms[i].count)
            broken("descriptor_write + descriptor_load changed an arm", a->arms[i].name);
    for (int i = 0; i < a->arm_set_count; i++)
        if (strcmp(a->arm_sets[i], b->arm_sets[i]))
            broken("descriptor_write + descriptor_load changed an arm's override", a->arm_sets[i]);
}

int fuzz_descriptor_one(const uint8_t *data, size_t size)
{
    static descriptor_t d, back;
    static sweep_t sweep;
    char path[600], out[600], err[4096];
    tmp_file("fuzz.ini", path, sizeof path);
    tmp_file("written.ini", out, sizeof out);
    write_input(path, data, size);
    const long train_images[] = {0, -1, 1000};
    for (size_t t = 0; t < sizeof train_images / sizeof train_images[0]; t++) {
        err[0] = 0;
        if (descriptor_load(&d, path, NULL, 0, train_images[t], err, sizeof err)) {
            check_message("descriptor_load", err);
            continue;
        }
        if (descriptor_write(&d, out, err, sizeof err))
            broken("a loaded descriptor cannot be written", err);
        if (descriptor_load(&back, out, NULL, 0, train_images[t], err, sizeof err))
            broken("a written descriptor does not load", err);
        compare_descriptors(&d, &back);
        const int expands = d.sweep_count > 0 || d.arm_count > 0;
        if (expands && sweep_parse(&d, &sweep, err, sizeof err) == 0) {
            if (sweep.tasks < 1 || sweep.tasks > SWEEP_MAX_TASKS)
                broken("sweep_parse: task count out of range", NULL);
            static char assign[SWEEP_MAX_ASSIGNMENTS][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];
            const long tasks[2] = {0, sweep.tasks - 1};
            for (int k = 0; k < 2; k++) {
                const int arm = sweep_arm_index(&sweep, tasks[k]);
                if (sweep_task_assignments(&sweep, &d, tasks[k], assign) !=
                    sweep.n_keys + 2 + (arm >= 0 ? d.arms[arm].count : 0))
                    broken("sweep_task_assignments: wrong count", NULL);
            }
            if (sweep_task_assignments(&sweep, &d, sweep.tasks, assign) != -1)
                broken("sweep_task_assignments accepts a task out of range", NULL);
        } else if (expands) {
            check_message("sweep_parse", err);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Data sets. */

int fuzz_dataset_one(const uint8_t *data, size_t size)
{
    char path[600], err[4096] = "";
    tmp_file("data.h5", path, sizeof path);
    write_input(path, data, size);
    dataset_t *ds = dataset_open(path, err, sizeof err);
    if (!ds) {
        check_message("dataset_open", err);
        return 0;
    }
    const dataset_info_t *in = dataset_get_info(ds);
    if (in->n < 1 || in->h < 1 || in->w < 1 || in->c < 1 || in->c > DATASET_MAX_CHANNELS ||
        in->num_classes < 1 || in->num_classes > DATASET_MAX_CLASSES || !in->class_names)
        broken("dataset_open accepted impossible sizes", path);
    for (int ch = 0; ch < in->c; ch++)
        if (!(in->mean[ch] >= 0 && in->mean[ch] <= 1) || !(in->std[ch] >= DATASET_MIN_STD) ||
            !(in->std[ch] <= DATASET_MAX_STD) || !isfinite((float)(1.0 / in->std[ch])))
            broken("dataset_open accepted a mean/std normalisation cannot use", NULL);
    const int32_t *labels = dataset_labels(ds);
    for (long i = 0; i < in->n; i++)
        if (labels[i] < 0 || labels[i] >= in->num_classes)
            broken("dataset_open accepted a label out of range", NULL);
    const size_t image = (size_t)in->h * (size_t)in->w * (size_t)in->c;
    if (image <= ((size_t)1 << 20)) { /* the harness's own memory bound */
        int64_t idx[6] = {0, in->n - 1, in->n / 2, 0, 1, 2};
        int count = in->n >= 3 ? 6 : 4;
        uint8_t *buf = malloc((size_t)count * image);
        int32_t lab[6];
        if (!buf) abort();
        if (dataset_read(ds, idx, count, buf, lab, err, sizeof err) == 0) {
            for (int i = 0; i < count; i++)
                if (lab[i] != labels[idx[i]]) broken("dataset_read: labels differ", NULL);
        } else {
            check_message("dataset_read", err);
        }
        int64_t bad = in->n;
        err[0] = 0;
        if (dataset_read(ds, &bad, 1, buf, NULL, err, sizeof err) == 0)
            broken("dataset_read accepted an index out of range", NULL);
        check_message("dataset_read", err);
        free(buf);
    }
    dataset_close(ds);
    return 0;
}

/* ------------------------------------------------------------------------
 * Checkpoints. */

/* A config whose model fits in a few MB (the harness's own bound). */
static int small_config(const mimae_config_t *c)
{
    char err[512];
    if (mimae_config_validate(c, err, sizeof err)) return 0;
    mimae_dims_t d = mimae_config_dims(c);
    return c->enc_dim <= 128 && c->dec_dim <= 128 && c->enc_depth <= 4 && c->dec_depth <= 4 &&
           c->mlp_ratio <= 8 && d.L <= 256 && d.P <= 1024 && c->proj_hidden <= 256 &&
           c->proj_out <= 256 && c->q_hidden <= 256 && c->num_masks <= 16;
}

int fuzz_checkpoint_one(const uint8_t *data, size_t size)
{
    char path[600], err[4096] = "", err2[4096] = "";
    tmp_file("ckpt-0000000001.h5", path, sizeof path);
    write_input(path, data, size);
    const int verified = checkpoint_verify(path, err, sizeof err) == 0;
    if (!verified) check_message("checkpoint_verify", err);
    mimae_config_t cfg;
    if (checkpoint_read_config(path, &cfg, err2, sizeof err2)) {
        check_message("checkpoint_read_config", err2);
        if (verified) broken("checkpoint_verify passes but checkpoint_read_config fails", err2);
        return 0;
    }
    if (verified) {
        char why[512];
        if (mimae_config_validate(&cfg, why, sizeof why))
            broken("checkpoint_verify passed a checkpoint with an invalid config", why);
    }
    if (!small_config(&cfg)) return 0;
    mimae_model_t *m = mimae_model_create(&cfg, 1, 0, err, sizeof err);
    if (!m) return 0;
    train_state_t st;
    err[0] = 0;
    const int loaded = checkpoint_load(path, m, &st, err, sizeof err) == 0;
    if (!loaded) check_message("checkpoint_load", err);
    if (loaded != verified)
        broken(loaded ? "checkpoint_load accepts what checkpoint_verify rejects"
                      : "checkpoint_load rejects what checkpoint_verify accepts", err);
    if (loaded && (st.step < 0 || st.epoch < 0 || st.epoch_step < 0 || m->step != st.step))
        broken("checkpoint_load: impossible training position", NULL);
    const float *blocks[6] = {m->param_mem, m->m_mem, m->v_mem, m->q_param_mem, m->q_m_mem,
                              m->q_v_mem};
    const size_t counts[6] = {m->table.total, m->table.total, m->table.total, m->q_table.total,
                              m->q_table.total, m->q_table.total};
    for (int b = 0; loaded && b < 6; b++)
        for (size_t i = 0; i < counts[b]; i++)
            if (!isfinite(blocks[b][i])) broken("checkpoint_load loaded a non-finite value", NULL);
    mimae_model_free(m);
    return 0;
}

/* ------------------------------------------------------------------------
 * Results files. */

int fuzz_results_one(const uint8_t *data, size_t size)
{
    char path[600], out[600], err[4096] = "";
    tmp_file("results.h5", path, sizeof path);
    tmp_file("rewritten.h5", out, sizeof out);
    write_input(path, data, size);
    results_t *r = results_load(path, err, sizeof err);
    if (!r) {
        check_message("results_load", err);
        return 0;
    }
    if (results_write(r, out, err, sizeof err)) broken("a loaded results file cannot be written", err);
    results_t *b = results_load(out, err, sizeof err);
    if (!b) broken("a rewritten results file does not load", err);
    const long n = results_step_count(r);
    if (n != results_step_count(b) || results_attr_count(r) != results_attr_count(b) ||
        results_eval_count(r) != results_eval_count(b))
        broken("results_write + results_load changed the counts", NULL);
    for (long i = 0; i < n; i++) {
        const step_metrics_t *x = &results_steps(r)[i], *y = &results_steps(b)[i];
        if (x->step != y->step || memcmp(&x->epoch, &y->epoch, sizeof *x - offsetof(step_metrics_t, epoch)))
            broken("results_write + results_load changed a step", NULL);
    }
    for (int i = 0; i < results_eval_count(r); i++) {
        const char *name;
        const eval_point_t *x, *y;
        results_eval_at(r, i, &name, NULL, NULL, NULL);
        const long h = results_eval_history(r, name, &x);
        if (h < 1 || h != results_eval_history(b, name, &y) ||
            memcmp(x, y, (size_t)h * sizeof *x))
            broken("results_write + results_load changed an evaluation history", NULL);
    }
    results_free(b);
    results_free(r);
    return 0;
}

int fuzz_run_named(const char *target, const uint8_t *data, size_t size)
{
    if (strcmp(target, "descriptor") == 0) return fuzz_descriptor_one(data, size);
    if (strcmp(target, "dataset") == 0) return fuzz_dataset_one(data, size);
    if (strcmp(target, "checkpoint") == 0) return fuzz_checkpoint_one(data, size);
    if (strcmp(target, "results") == 0) return fuzz_results_one(data, size);
    return -1;
}
