/* Results files (layout in results.h). The run's history lives in memory
 * (growable arrays); results_write rewrites the whole file under a temporary
 * name, fsyncs it and renames it onto PATH, then writes the reconstruction
 * PNG the same way. results_load reads all of it back so that
 * load -> write -> load gives the same content.
 *
 * Root attributes and /eval links are stored with their creation order
 * tracked, so extra attributes and evaluation metrics come back in the order
 * they were set. Each metric keeps its latest value (/eval, as files before
 * the history had it) and every evaluation (/eval_history). */
#include "io/results.h"

#include <cblas.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config/config_fields.h"
#include "io/config_attrs.h"
#include "io/h5_attr.h"
#include "io/h5_atomic.h"
#include "io/io_error.h"
#include "io/png_write.h"

#define TRAIN_CHUNK 1024
#define EVAL_HISTORY_CHUNK 64
#define RECON_MIN_TILE_PX 96

typedef struct {
    char *key, *value;
} kv_t;

typedef struct {
    char *name, *checkpoint; /* the latest evaluation: */
    double value;
    long step;
    eval_point_t *hist;      /* every evaluation, by increasing step */
    long nhist;
} eval_t;

static const char *const recon_names[3] = {"original", "masked", "reconstructed"};

struct results {
    mimae_config_t cfg;
    results_env_t env;
    step_metrics_t *steps;
    long nsteps, cap_steps;
    kv_t *attrs;
    int nattrs, cap_attrs;
    eval_t *evals;
    int nevals, cap_evals;
    int has_recon;
    long recon_step;
    int K, H, W, C;
    uint8_t *recon[3]; /* (K, H, W, C) each */
    eval_state_t *states; /* by increasing step */
    long nstates;
};

/* The /train datasets and where each lives in step_metrics_t ("step" is the
 * long member, the rest are doubles). */
typedef struct {
    const char *name;
    size_t offset;
} metric_t;

#define M(name, member) {name, offsetof(step_metrics_t, member)}
static const metric_t metrics[] = {
    M("step", step),   M("epoch", epoch), M("views", views),
    M("L_rec", rec),   M("L_max", max),   M("L_min", min),
    M("L_q", q),       M("L", total),     M("lr", lr),
    M("grad_norm", grad_norm), M("images_per_s", images_per_s),
    M("data_wait_s", data_wait_s),
};
#undef M
#define METRIC_COUNT ((int)(sizeof metrics / sizeof metrics[0]))

static double metric_get(const step_metrics_t *s, int i)
{
    if (i == 0) return (double)s->step;
    double v;
    memcpy(&v, (const char *)s + metrics[i].offset, sizeof v);
    return v;
}

static void metric_set(step_metrics_t *s, int i, double v)
{
    if (i == 0) s->step = (long)v;
    else memcpy((char *)s + metrics[i].offset, &v, sizeof v);
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static uint8_t quantize(float x)
{
    if (!(x > 0.0f)) return 0; /* also NaN */
    if (x >= 1.0f) return 255;
    return (uint8_t)(x * 255.0f + 0.5f);
}

/* ------------------------------------------------------------------------
 * The in-memory history. */

results_t *results_new(const mimae_config_t *cfg, const results_env_t *env)
{
    results_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (cfg) r->cfg = *cfg;
    if (env) r->env = *env;
    return r;
}

void results_free(results_t *r)
{
    if (!r) return;
    free(r->steps);
    for (int i = 0; i < r->nattrs; i++) {
        free(r->attrs[i].key);
        free(r->attrs[i].value);
    }
    free(r->attrs);
    for (int i = 0; i < r->nevals; i++) {
        free(r->evals[i].name);
        free(r->evals[i].checkpoint);
        free(r->evals[i].hist);
    }
    free(r->evals);
    for (int k = 0; k < 3; k++) free(r->recon[k]);
    free(r->states);
    free(r);
}

static int reserved_key(const char *key)
{
    return strcmp(key, "format") == 0 || strcmp(key, "format_version") == 0 ||
           strncmp(key, "config.", 7) == 0 || strncmp(key, "env.", 4) == 0;
}

int results_set_attr(results_t *r, const char *key, const char *value)
{
    if (!r || !key || !*key || !value || reserved_key(key) || strchr(key, '/')) return -1;
    for (int i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].key, key) == 0) {
            char *v = dup_string(value);
            if (!v) return -1;
            free(r->attrs[i].value);
            r->attrs[i].value = v;
            return 0;
        }
    if (r->nattrs == r->cap_attrs) {
        int cap = r->cap_attrs ? 2 * r->cap_attrs : 8;
        kv_t *grown = realloc(r->attrs, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        r->attrs = grown;
        r->cap_attrs = cap;
    }
    char *k = dup_string(key), *v = dup_string(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    r->attrs[r->nattrs].key = k;
    r->attrs[r->nattrs].value = v;
    r->nattrs++;
    return 0;
}

int results_append_step(results_t *r, const step_metrics_t *m)
{
    if (!r || !m) return -1;
    long n = r->nsteps;
    while (n > 0 && r->steps[n - 1].step >= m->step) n--;
    r->nsteps = n;
    if (r->nsteps == r->cap_steps) {
        long cap = r->cap_steps ? 2 * r->cap_steps : 256;
        step_metrics_t *grown = realloc(r->steps, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        r->steps = grown;
        r->cap_steps = cap;
    }
    r->steps[r->nsteps++] = *m;
    return 0;
}

static int valid_eval_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0;
}

static eval_t *find_eval(const results_t *r, const char *name)
{
    for (int i = 0; i < r->nevals; i++)
        if (strcmp(r->evals[i].name, name) == 0) return &r->evals[i];
    return NULL;
}

/* Sets the latest value of metric `name` (added, in order, when new); the
 * metric, or NULL when out of memory. */
static eval_t *set_latest(results_t *r, const char *name, double value, const char *checkpoint,
                          long step)
{
    char *cp = dup_string(checkpoint ? checkpoint : "");
    if (!cp) return NULL;
    eval_t *e = find_eval(r, name);
    if (e) {
        free(e->checkpoint);
        e->checkpoint = cp;
        e->value = value;
        e->step = step;
        return e;
    }
    if (r->nevals == r->cap_evals) {
        int cap = r->cap_evals ? 2 * r->cap_evals : 8;
        eval_t *grown = realloc(r->evals, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(cp);
            return NULL;
        }
        r->evals = grown;
        r->cap_evals = cap;
    }
    char *nm = dup_string(name);
    if (!nm) {
        free(cp);
        return NULL;
    }
    e = &r->evals[r->nevals++];
    *e = (eval_t){nm, cp, value, step, NULL, 0};
    return e;
}

/* Puts a point into the history in step order; a point of the same step is
 * replaced (that step was evaluated again: a resumed run redoing it, or
 * `mimae_dist eval` of the same checkpoint). One evaluation at a time: the
 * array grows by one (a run evaluates a few hundred times at most). */
static int history_put(eval_t *e, const eval_point_t *p)
{
    long i = e->nhist;
    while (i > 0 && e->hist[i - 1].step > p->step) i--;
    if (i > 0 && e->hist[i - 1].step == p->step) {
        e->hist[i - 1] = *p;
        return 0;
    }
    eval_point_t *grown = realloc(e->hist, (size_t)(e->nhist + 1) * sizeof *grown);
    if (!grown) return -1;
    e->hist = grown;
    memmove(e->hist + i + 1, e->hist + i, (size_t)(e->nhist - i) * sizeof *e->hist);
    e->hist[i] = *p;
    e->nhist++;
    return 0;
}

/* The /train epoch reached at `step` (0 at step 0; NaN when the history has
 * no such step, e.g. a results file started by `mimae_dist eval`). */
static double epoch_at(const results_t *r, long step)
{
    if (step == 0) return 0.0;
    long lo = 0, hi = r->nsteps - 1; /* steps are strictly increasing */
    while (lo <= hi) {
        const long mid = lo + (hi - lo) / 2;
        if (r->steps[mid].step == step) return r->steps[mid].epoch;
        if (r->steps[mid].step < step) lo = mid + 1;
        else hi = mid - 1;
    }
    return NAN;
}

int results_set_eval(results_t *r, const char *name, double value, const char *checkpoint,
                     long step)
{
    if (!r || !valid_eval_name(name)) return -1;
    eval_t *e = set_latest(r, name, value, checkpoint, step);
    if (!e) return -1;
    const eval_point_t p = {step, epoch_at(r, step), value};
    return history_put(e, &p);
}

/* Takes ownership of the three (K, H, W, C) byte arrays. */
static void set_recon_bytes(results_t *r, long step, uint8_t *bytes[3], int K, int H, int W,
                            int C)
{
    for (int k = 0; k < 3; k++) {
        free(r->recon[k]);
        r->recon[k] = bytes[k];
    }
    r->has_recon = 1;
    r->recon_step = step;
    r->K = K, r->H = H, r->W = W, r->C = C;
}

int results_set_reconstructions(results_t *r, long step, const float *original,
                                const float *masked, const float *reconstructed, int K, int H,
                                int W, int C)
{
    if (!r || !original || !masked || !reconstructed || K < 1 || H < 1 || W < 1 ||
        (C != 1 && C != 3))
        return -1;
    const size_t n = (size_t)K * H * W * C;
    const float *src[3] = {original, masked, reconstructed};
    uint8_t *bytes[3] = {malloc(n), malloc(n), malloc(n)};
    if (!bytes[0] || !bytes[1] || !bytes[2]) {
        for (int k = 0; k < 3; k++) free(bytes[k]);
        return -1;
    }
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n; i++) bytes[k][i] = quantize(src[k][i]);
    set_recon_bytes(r, step, bytes, K, H, W, C);
    return 0;
}

long results_step_count(const results_t *r) { return r ? r->nsteps : 0; }
const step_metrics_t *results_steps(const results_t *r) { return r ? r->steps : NULL; }
const mimae_config_t *results_config(const results_t *r) { return r ? &r->cfg : NULL; }
const results_env_t *results_env(const results_t *r) { return r ? &r->env : NULL; }

const char *results_get_attr(const results_t *r, const char *key)
{
    if (!r || !key) return NULL;
    for (int i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i].key, key) == 0) return r->attrs[i].value;
    return NULL;
}

int results_finished(const results_t *r)
{
    const char *status = results_get_attr(r, RESULTS_STATUS);
    return status && strcmp(status, RESULTS_STATUS_FINISHED) == 0;
}

int results_attr_count(const results_t *r) { return r ? r->nattrs : 0; }

int results_attr_at(const results_t *r, int i, const char **key, const char **value)
{
    if (!r || i < 0 || i >= r->nattrs) return -1;
    if (key) *key = r->attrs[i].key;
    if (value) *value = r->attrs[i].value;
    return 0;
}

int results_get_eval(const results_t *r, const char *name, double *value)
{
    if (!r || !name) return -1;
    for (int i = 0; i < r->nevals; i++)
        if (strcmp(r->evals[i].name, name) == 0) {
            if (value) *value = r->evals[i].value;
            return 0;
        }
    return -1;
}

int results_eval_count(const results_t *r) { return r ? r->nevals : 0; }

long results_eval_history(const results_t *r, const char *name, const eval_point_t **points)
{
    const eval_t *e = r && name ? find_eval(r, name) : NULL;
    if (!e) return -1;
    if (points) *points = e->hist;
    return e->nhist;
}

int results_eval_at(const results_t *r, int i, const char **name, double *value,
                    const char **checkpoint, long *step)
{
    if (!r || i < 0 || i >= r->nevals) return -1;
    const eval_t *e = &r->evals[i];
    if (name) *name = e->name;
    if (value) *value = e->value;
    if (checkpoint) *checkpoint = e->checkpoint;
    if (step) *step = e->step;
    return 0;
}

int results_get_reconstructions(const results_t *r, long *step, int *K, int *H, int *W,
                                int *C, const uint8_t **original, const uint8_t **masked,
                                const uint8_t **reconstructed)
{
    if (!r || !r->has_recon) return -1;
    if (step) *step = r->recon_step;
    if (K) *K = r->K;
    if (H) *H = r->H;
    if (W) *W = r->W;
    if (C) *C = r->C;
    if (original) *original = r->recon[0];
    if (masked) *masked = r->recon[1];
    if (reconstructed) *reconstructed = r->recon[2];
    return 0;
}

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

#define ADVICE_DAMAGED "the results file is damaged or not written by mimae"
#define ADVICE_MEMORY " (out of memory?)"

/* ------------------------------------------------------------------------
 * Attributes. */

static int write_attr_int(io_file_err_t *c, hid_t loc, const char *name, int v)
{
    return h5_attr_write(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v, c);
}

static int write_attr_long(io_file_err_t *c, hid_t loc, const char *name, long v)
{
    return h5_attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_LONG, &v, c);
}

/* Opens attribute `name` of loc (a single element); -1 with a message. */
static int open_attr(io_file_err_t *c, hid_t loc, const char *where, const char *name, h5_attr_t *a)
{
    const h5_attr_status_t st = h5_attr_open(loc, name, a);
    switch (st) {
    case ATTR_OK: break;
    case ATTR_MISSING:
    case ATTR_LOOKUP_FAILED:
        return io_file_fail(c, "attribute %s%s is missing: " ADVICE_DAMAGED, where, name);
    default:
        return io_file_fail(c, "attribute %s%s is %s: " ADVICE_DAMAGED, where, name,
                            h5_attr_status_text(st));
    }
    if (a->count != 1) {
        h5_attr_close(a);
        return io_file_fail(c, "attribute %s%s is not a single value: " ADVICE_DAMAGED, where,
                            name);
    }
    return 0;
}

/* A single number read as mtype: an integer, or with integer_only unset
 * also a float. */
static int read_attr_number(io_file_err_t *c, hid_t loc, const char *where, const char *name,
                            int integer_only, hid_t mtype, void *out)
{
    h5_attr_t a;
    if (open_attr(c, loc, where, name, &a)) return -1;
    int rc = 0;
    if (a.cls != H5T_INTEGER && (integer_only || a.cls != H5T_FLOAT))
        rc = io_file_fail(c, "attribute %s%s is not %s: " ADVICE_DAMAGED, where, name,
                          integer_only ? "an integer" : "a number");
    else if (H5Aread(a.id, mtype, out) < 0)
        rc = io_file_fail(c, "cannot read attribute %s%s: " ADVICE_DAMAGED, where, name);
    h5_attr_close(&a);
    return rc;
}

static int read_attr_double(io_file_err_t *c, hid_t loc, const char *where, const char *name,
                            double *out)
{
    return read_attr_number(c, loc, where, name, 0, H5T_NATIVE_DOUBLE, out);
}

static int read_attr_long(io_file_err_t *c, hid_t loc, const char *where, const char *name,
                          long *out)
{
    return read_attr_number(c, loc, where, name, 1, H5T_NATIVE_LONG, out);
}

static int open_string_attr(io_file_err_t *c, hid_t loc, const char *where, const char *name,
                            h5_attr_t *a)
{
    if (open_attr(c, loc, where, name, a)) return -1;
    if (a->cls != H5T_STRING) {
        h5_attr_close(a);
        return io_file_fail(c, "attribute %s%s is not a string: " ADVICE_DAMAGED, where, name);
    }
    return 0;
}

/* A string attribute (variable or fixed length), malloc'd into *out. */
static int read_attr_string(io_file_err_t *c, hid_t loc, const char *where, const char *name,
                            char **out)
{
    *out = NULL;
    h5_attr_t a;
    if (open_string_attr(c, loc, where, name, &a)) return -1;
    char **v;
    if (h5_attr_read_strings(&a, &v) == ATTR_OK) {
        *out = dup_string(v[0]);
        free(v);
    }
    h5_attr_close(&a);
    if (!*out)
        return io_file_fail(c, "cannot read string attribute %s%s: " ADVICE_DAMAGED, where, name);
    return 0;
}

static int read_attr_string_buf(io_file_err_t *c, hid_t loc, const char *name, char *buf,
                                size_t len)
{
    h5_attr_t a;
    if (open_string_attr(c, loc, "", name, &a)) return -1;
    h5_attr_status_t st = h5_attr_read_string(&a, buf, len);
    h5_attr_close(&a);
    if (st != ATTR_OK)
        return io_file_fail(c, "cannot read string attribute %s: " ADVICE_DAMAGED, name);
    return 0;
}

/* ------------------------------------------------------------------------
 * Evaluation state and resuming (layout in results.h). */

int results_set_eval_state(results_t *r, long step, int state)
{
    if (!r || step < 0 || (state != RESULTS_EVAL_PENDING && state != RESULTS_EVAL_DONE))
        return -1;
    long i = r->nstates;
    while (i > 0 && r->states[i - 1].step > step) i--;
    if (i > 0 && r->states[i - 1].step == step) {
        r->states[i - 1].state = state;
        return 0;
    }
    eval_state_t *grown = realloc(r->states, (size_t)(r->nstates + 1) * sizeof *grown);
    if (!grown) return -1;
    r->states = grown;
    memmove(r->states + i + 1, r->states + i, (size_t)(r->nstates - i) * sizeof *r->states);
    r->states[i] = (eval_state_t){step, state};
    r->nstates++;
    return 0;
}

int results_eval_state(const results_t *r, long step)
{
    for (long i = 0; r && i < r->nstates; i++)
        if (r->states[i].step == step) return r->states[i].state;
    return RESULTS_EVAL_NONE;
}

/* Drops a metric's evaluations after `step`; its latest value falls back to
 * the last one left (0), or the metric has none left (1). */
static int evals_truncate(eval_t *e, long step)
{
    while (e->nhist > 0 && e->hist[e->nhist - 1].step > step) e->nhist--;
    if (e->step <= step) return 0;
    if (e->nhist == 0) return 1;
    const eval_point_t *last = &e->hist[e->nhist - 1];
    e->value = last->value;
    e->step = last->step;
    e->checkpoint[0] = 0; /* which file it came from was kept with the later one only */
    return 0;
}

int results_resume_at(results_t *r, long step, results_resume_t *what)
{
    results_resume_t w = {0, 0, 0, -1, -1};
    if (!r || step < 0) return -1;
    while (r->nsteps > 0 && r->steps[r->nsteps - 1].step > step) r->nsteps--, w.dropped_steps++;
    for (int i = 0; i < r->nevals;) {
        const long before = r->evals[i].nhist;
        const int gone = evals_truncate(&r->evals[i], step);
        w.dropped_evals += before - r->evals[i].nhist;
        if (!gone) {
            i++;
            continue;
        }
        free(r->evals[i].name), free(r->evals[i].checkpoint), free(r->evals[i].hist);
        memmove(r->evals + i, r->evals + i + 1, (size_t)(r->nevals - i - 1) * sizeof *r->evals);
        r->nevals--;
    }
    while (r->nstates > 0 && r->states[r->nstates - 1].step > step) r->nstates--;
    /* steps 1..step without a row: one row each, every metric NaN */
    if (r->nsteps < step) {
        step_metrics_t *rows = malloc((size_t)step * sizeof *rows);
        if (!rows) return -1;
        long have = 0;
        for (long k = 1; k <= step; k++) {
            if (have < r->nsteps && r->steps[have].step == k) {
                rows[k - 1] = r->steps[have++];
                continue;
            }
            for (int m = 0; m < METRIC_COUNT; m++) metric_set(&rows[k - 1], m, NAN);
            rows[k - 1].step = k;
            if (w.missing++ == 0) w.missing_first = k;
            w.missing_last = k;
        }
        free(r->steps);
        r->steps = rows;
        r->nsteps = r->cap_steps = step;
    }
    if (what) *what = w;
    return 0;
}

int results_check_config(const results_t *r, const char *path, const mimae_config_t *cfg,
                         const char *other, const char *fix, char *err, size_t errlen)
{
    const config_field_t *f = config_fields_first_difference(
        mimae_config_fields, mimae_config_field_count, &r->cfg, cfg);
    if (!f) return 0;
    char a[64], b[64];
    config_field_format_short(f, &r->cfg, a, sizeof a);
    config_field_format_short(f, cfg, b, sizeof b);
    return io_fail(err, errlen, "%s: %s.%s is %s in the results file but %s in %s: %s", path,
                   f->section, f->key, a, b, other, fix);
}

/* /eval_state: int64 (n, 2) rows (step, state); only when there are any. */
static int write_eval_state(io_file_err_t *c, hid_t file, const results_t *r)
{
    if (r->nstates == 0) return 0;
    const hsize_t dims[2] = {(hsize_t)r->nstates, 2};
    int64_t *rows = malloc((size_t)r->nstates * 2 * sizeof *rows);
    hid_t space = H5Screate_simple(2, dims, NULL), ds = -1;
    int rc = rows && space >= 0 ? 0 : io_file_fail(c, "out of memory writing /eval_state");
    for (long i = 0; i < r->nstates && !rc; i++)
        rows[2 * i] = r->states[i].step, rows[2 * i + 1] = r->states[i].state;
    if (!rc && (ds = H5Dcreate2(file, "eval_state", H5T_STD_I64LE, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT)) < 0)
        rc = io_file_fail(c, "cannot create dataset /eval_state" ADVICE_MEMORY);
    if (!rc && H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
        rc = io_file_fail(c, "cannot write dataset /eval_state" ADVICE_MEMORY);
    if (!rc) rc = h5_attr_write_string(ds, "columns", "step, state (0 pending, 1 done)", c);
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = io_file_fail(c, "cannot close /eval_state");
    close_id(space, H5Sclose);
    free(rows);
    return rc;
}

/* ------------------------------------------------------------------------
 * Writing. */

static int write_env(io_file_err_t *c, hid_t loc, const results_env_t *e)
{
    return write_attr_int(c, loc, "env.ranks", e->ranks) ||
                   write_attr_int(c, loc, "env.threads", e->threads) ||
                   h5_attr_write_string(loc, "env.mpi", e->mpi, c) ||
                   h5_attr_write_string(loc, "env.openblas", e->openblas, c) ||
                   h5_attr_write_string(loc, "env.hdf5", e->hdf5, c) ||
                   h5_attr_write_string(loc, "env.git_commit", e->git_commit, c) ||
                   h5_attr_write_string(loc, "env.host", e->host, c) ||
                   (e->onednn_isa[0] &&
                    h5_attr_write_string(loc, "env.onednn_isa", e->onednn_isa, c))
               ? -1
               : 0;
}

static int write_train(io_file_err_t *c, hid_t file, const results_t *r)
{
    hid_t grp = H5Gcreate2(file, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) return io_file_fail(c, "cannot create group /train" ADVICE_MEMORY);
    const hsize_t n = (hsize_t)r->nsteps, maxdims = H5S_UNLIMITED, chunk = TRAIN_CHUNK;
    double *col = malloc((r->nsteps > 0 ? (size_t)r->nsteps : 1) * sizeof *col);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t space = H5Screate_simple(1, &n, &maxdims);
    int rc = 0;
    if (!col) rc = io_file_fail(c, "out of memory writing /train");
    else if (dcpl < 0 || space < 0 || H5Pset_chunk(dcpl, 1, &chunk) < 0)
        rc = io_file_fail(c, "cannot set up the /train datasets");
    for (int i = 0; i < METRIC_COUNT && !rc; i++) {
        hid_t ds = H5Dcreate2(grp, metrics[i].name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl,
                              H5P_DEFAULT);
        if (ds < 0) {
            rc = io_file_fail(c, "cannot create dataset /train/%s" ADVICE_MEMORY, metrics[i].name);
            break;
        }
        for (long s = 0; s < r->nsteps; s++) col[s] = metric_get(&r->steps[s], i);
        if (n > 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) < 0)
            rc = io_file_fail(c, "cannot write dataset /train/%s" ADVICE_MEMORY, metrics[i].name);
        if (H5Dclose(ds) < 0 && !rc)
            rc = io_file_fail(c, "cannot close dataset /train/%s" ADVICE_MEMORY, metrics[i].name);
    }
    free(col);
    close_id(space, H5Sclose);
    close_id(dcpl, H5Pclose);
    if (H5Gclose(grp) < 0 && !rc) rc = io_file_fail(c, "cannot close group /train");
    return rc;
}

/* The group /name with its links' creation order tracked (the metrics load
 * back in the order they were first set); -1 with a message. */
static hid_t create_ordered_group(io_file_err_t *c, hid_t file, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), grp = -1;
    if (gcpl < 0 ||
        H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)
        io_file_fail(c, "cannot set up group /%s", name);
    else if ((grp = H5Gcreate2(file, name, H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0)
        io_file_fail(c, "cannot create group /%s" ADVICE_MEMORY, name);
    close_id(gcpl, H5Pclose);
    return grp;
}

static int write_evals(io_file_err_t *c, hid_t file, const results_t *r)
{
    hid_t space = H5Screate(H5S_SCALAR), grp = -1;
    int rc = 0;
    if (space < 0) rc = io_file_fail(c, "cannot set up group /eval");
    if (!rc && (grp = create_ordered_group(c, file, "eval")) < 0) rc = -1;
    for (int i = 0; i < r->nevals && !rc; i++) {
        const eval_t *e = &r->evals[i];
        hid_t ds = H5Dcreate2(grp, e->name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
        if (ds < 0) {
            rc = io_file_fail(c, "cannot create dataset /eval/%s" ADVICE_MEMORY, e->name);
            break;
        }
        if (H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &e->value) < 0)
            rc = io_file_fail(c, "cannot write dataset /eval/%s" ADVICE_MEMORY, e->name);
        if (!rc) rc = h5_attr_write_string(ds, "checkpoint", e->checkpoint, c);
        if (!rc) rc = write_attr_long(c, ds, "step", e->step);
        if (H5Dclose(ds) < 0 && !rc)
            rc = io_file_fail(c, "cannot close dataset /eval/%s" ADVICE_MEMORY, e->name);
    }
    if (grp >= 0 && H5Gclose(grp) < 0 && !rc) rc = io_file_fail(c, "cannot close group /eval");
    close_id(space, H5Sclose);
    return rc;
}

/* /eval_history/<name>: float64 (n, 3) rows of (step, epoch, value),
 * extendible and chunked like /train, in the order of /eval. */
static int write_eval_history(io_file_err_t *c, hid_t file, const results_t *r)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), grp = -1;
    const hsize_t chunk[2] = {EVAL_HISTORY_CHUNK, 3};
    int rc = 0;
    if (dcpl < 0 || H5Pset_chunk(dcpl, 2, chunk) < 0)
        rc = io_file_fail(c, "cannot set up the /eval_history datasets");
    if (!rc && (grp = create_ordered_group(c, file, "eval_history")) < 0) rc = -1;
    for (int i = 0; i < r->nevals && !rc; i++) {
        const eval_t *e = &r->evals[i];
        const hsize_t dims[2] = {(hsize_t)e->nhist, 3}, maxdims[2] = {H5S_UNLIMITED, 3};
        double *rows = malloc((e->nhist > 0 ? (size_t)e->nhist : 1) * 3 * sizeof *rows);
        hid_t space = H5Screate_simple(2, dims, maxdims), ds = -1;
        if (!rows || space < 0) rc = io_file_fail(c, "out of memory writing /eval_history");
        if (!rc) {
            ds = H5Dcreate2(grp, e->name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (ds < 0)
                rc = io_file_fail(c, "cannot create dataset /eval_history/%s" ADVICE_MEMORY,
                                  e->name);
        }
        for (long k = 0; k < e->nhist && !rc; k++) {
            rows[3 * k] = (double)e->hist[k].step;
            rows[3 * k + 1] = e->hist[k].epoch;
            rows[3 * k + 2] = e->hist[k].value;
        }
        if (!rc && e->nhist > 0 &&
            H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
            rc = io_file_fail(c, "cannot write dataset /eval_history/%s" ADVICE_MEMORY, e->name);
        if (!rc) rc = h5_attr_write_string(ds, "columns", "step, epoch, value", c);
        if (ds >= 0 && H5Dclose(ds) < 0 && !rc)
            rc = io_file_fail(c, "cannot close dataset /eval_history/%s" ADVICE_MEMORY, e->name);
        close_id(space, H5Sclose);
        free(rows);
    }
    if (grp >= 0 && H5Gclose(grp) < 0 && !rc)
        rc = io_file_fail(c, "cannot close group /eval_history");
    close_id(dcpl, H5Pclose);
    return rc;
}

static int write_recon(io_file_err_t *c, hid_t file, const results_t *r)
{
    hid_t grp = H5Gcreate2(file, "reconstructions", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) return io_file_fail(c, "cannot create group /reconstructions" ADVICE_MEMORY);
    int rc = write_attr_long(c, grp, "step", r->recon_step);
    const hsize_t dims[4] = {(hsize_t)r->K, (hsize_t)r->H, (hsize_t)r->W, (hsize_t)r->C};
    hid_t space = H5Screate_simple(4, dims, NULL);
    if (!rc && space < 0) rc = io_file_fail(c, "cannot set up /reconstructions");
    for (int k = 0; k < 3 && !rc; k++) {
        hid_t ds = H5Dcreate2(grp, recon_names[k], H5T_STD_U8LE, space, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0) {
            rc = io_file_fail(c, "cannot create dataset /reconstructions/%s" ADVICE_MEMORY,
                              recon_names[k]);
            break;
        }
        if (H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->recon[k]) < 0)
            rc = io_file_fail(c, "cannot write dataset /reconstructions/%s" ADVICE_MEMORY,
                              recon_names[k]);
        if (H5Dclose(ds) < 0 && !rc)
            rc = io_file_fail(c, "cannot close dataset /reconstructions/%s", recon_names[k]);
    }
    close_id(space, H5Sclose);
    if (H5Gclose(grp) < 0 && !rc) rc = io_file_fail(c, "cannot close group /reconstructions");
    return rc;
}

/* "<path without .h5>-recon-<step>.png" */
static int recon_png_path(char *out, size_t len, const char *path, long step)
{
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".h5") == 0) n -= 3;
    int w = snprintf(out, len, "%.*s-recon-%ld.png", (int)n, path, step);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

static int write_recon_png(io_file_err_t *c, const results_t *r)
{
    char png[4096];
    if (recon_png_path(png, sizeof png, c->path, r->recon_step))
        return io_file_fail(c, "path too long for the reconstruction PNG");
    const size_t n = (size_t)r->K * r->H * r->W * r->C;
    float *tiles = malloc(3 * n * sizeof *tiles);
    if (!tiles) return io_file_fail(c, "out of memory for the reconstruction PNG");
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n; i++) tiles[k * n + i] = r->recon[k][i] / 255.0f;
    const int side = r->H < r->W ? r->H : r->W;
    const int zoom = side >= RECON_MIN_TILE_PX ? 1 : (RECON_MIN_TILE_PX + side - 1) / side;
    char msg[1024];
    int rc = png_write_grid(png, tiles, 3, r->K, r->H, r->W, r->C, zoom, msg, sizeof msg);
    free(tiles);
    if (rc) return io_file_fail(c, "results written, but the reconstruction PNG failed: %s", msg);
    return 0;
}

/* What results_write puts into the in-memory file. */
static int write_results(hid_t file, const void *arg, io_file_err_t *c)
{
    const results_t *r = arg;
    if (h5_attr_write_string(file, "format", RESULTS_FORMAT, c) ||
        write_attr_int(c, file, "format_version", RESULTS_FORMAT_VERSION) ||
        config_attrs_write(file, &r->cfg, c) || write_env(c, file, &r->env))
        return -1;
    for (int i = 0; i < r->nattrs; i++)
        if (h5_attr_write_string(file, r->attrs[i].key, r->attrs[i].value, c)) return -1;
    if (write_train(c, file, r) || write_evals(c, file, r) || write_eval_history(c, file, r) ||
        (r->has_recon && write_recon(c, file, r)) || write_eval_state(c, file, r))
        return -1;
    return 0;
}

int results_write(const results_t *r, const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!r || !path) return io_file_fail(&c, "results_write: results and path are required");
    /* creation order of the root attributes kept: extras load back in order */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl < 0 ||
        H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        close_id(fcpl, H5Pclose);
        return io_file_fail(&c, "cannot set up HDF5 file creation properties");
    }
    int rc = h5_atomic_write(path, (size_t)1 << 20, fcpl, write_results, r, &c);
    H5Pclose(fcpl);
    if (rc) return -1;
    if (r->has_recon && write_recon_png(&c, r)) return -1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Loading. */

typedef struct {
    char **names;
    int n, cap, oom;
} name_list_t;

static int name_list_add(name_list_t *l, const char *name)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->names, (size_t)cap * sizeof *grown);
        if (!grown) return l->oom = 1, -1;
        l->names = grown;
        l->cap = cap;
    }
    char *d = dup_string(name);
    if (!d) return l->oom = 1, -1;
    l->names[l->n++] = d;
    return 0;
}

static void name_list_free(name_list_t *l)
{
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc;
    (void)info;
    return name_list_add(data, name) ? -1 : 0;
}

static herr_t collect_link(hid_t loc, const char *name, const H5L_info_t *info, void *data)
{
    (void)loc;
    (void)info;
    return name_list_add(data, name) ? -1 : 0;
}

/* Attribute names of loc in creation order (name order when the file does
 * not track it). */
static int list_attrs(io_file_err_t *c, hid_t loc, name_list_t *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (H5Aiterate2(loc, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_attr, l) >= 0) return 0;
    int oom = l->oom;
    name_list_free(l);
    if (oom) return io_file_fail(c, "out of memory listing attributes");
    idx = 0;
    if (H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, l) >= 0) return 0;
    name_list_free(l);
    return io_file_fail(c, "cannot list the root attributes: " ADVICE_DAMAGED);
}

static int list_links(io_file_err_t *c, hid_t grp, const char *gname, name_list_t *l)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (H5Literate(grp, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_link, l) >= 0) return 0;
    int oom = l->oom;
    name_list_free(l);
    if (oom) return io_file_fail(c, "out of memory listing %s", gname);
    idx = 0;
    if (H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, l) >= 0) return 0;
    name_list_free(l);
    return io_file_fail(c, "cannot list group %s: " ADVICE_DAMAGED, gname);
}

static int read_config(io_file_err_t *c, hid_t file, mimae_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char name[128];
        config_attr_name(f, name, sizeof name);
        const int present = config_attr_exists_or_default(file, f, cfg, c);
        if (present < 0) return -1;
        if (!present) continue;
        if (f->type == FIELD_ENUM) {
            char *value, msg[256];
            if (read_attr_string(c, file, "", name, &value)) return -1;
            int rc = config_field_parse(f, cfg, value, msg, sizeof msg);
            free(value);
            if (rc) return io_file_fail(c, "attribute %s: %s", name, msg);
        } else {
            double v;
            if (read_attr_double(c, file, "", name, &v)) return -1;
            /* an integer field must hold an integer of its range (a cast of
             * anything else is undefined), a real one a finite number */
            const int in_int = f->type == FIELD_INT || f->type == FIELD_SWITCH;
            const double lo = in_int ? (double)INT_MIN : (double)LONG_MIN,
                         hi = in_int ? (double)INT_MAX : (double)LONG_MAX;
            const int integral = in_int || f->type == FIELD_LONG;
            if (!isfinite(v) || (integral && (v != floor(v) || v < lo || v >= hi)) ||
                (f->type == FIELD_FLOAT && fabs(v) > 3.0e38))
                return io_file_fail(c, "attribute %s = %g is not a %s: " ADVICE_DAMAGED, name, v,
                                    integral ? "whole number in range" : "finite number");
            config_field_set_number(f, cfg, v);
        }
        char msg[512];
        if (config_field_check_range(f, cfg, msg, sizeof msg))
            return io_file_fail(c, "attribute %s: %s: " ADVICE_DAMAGED, name, msg);
    }
    return 0;
}

/* env.* attributes; an absent one stays empty (the environment is
 * informational, older or foreign files may lack parts of it). */
static int read_env(io_file_err_t *c, hid_t file, results_env_t *e)
{
    memset(e, 0, sizeof *e);
    struct { const char *name; char *buf; size_t len; } s[] = {
        {"env.mpi", e->mpi, sizeof e->mpi},
        {"env.openblas", e->openblas, sizeof e->openblas},
        {"env.hdf5", e->hdf5, sizeof e->hdf5},
        {"env.git_commit", e->git_commit, sizeof e->git_commit},
        {"env.host", e->host, sizeof e->host},
        {"env.onednn_isa", e->onednn_isa, sizeof e->onednn_isa},
    };
    struct { const char *name; int *v; } n[] = {{"env.ranks", &e->ranks},
                                                {"env.threads", &e->threads}};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        htri_t ex = H5Aexists(file, n[i].name);
        if (ex < 0) return io_file_fail(c, "cannot read attribute %s: " ADVICE_DAMAGED, n[i].name);
        long v;
        if (ex > 0) {
            if (read_attr_long(c, file, "", n[i].name, &v)) return -1;
            *n[i].v = (int)v;
        }
    }
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        htri_t ex = H5Aexists(file, s[i].name);
        if (ex < 0) return io_file_fail(c, "cannot read attribute %s: " ADVICE_DAMAGED, s[i].name);
        if (ex > 0 && read_attr_string_buf(c, file, s[i].name, s[i].buf, s[i].len)) return -1;
    }
    return 0;
}

static int read_extras(io_file_err_t *c, hid_t file, results_t *r)
{
    name_list_t l;
    if (list_attrs(c, file, &l)) return -1;
    int rc = 0;
    for (int i = 0; i < l.n && !rc; i++) {
        if (reserved_key(l.names[i])) continue;
        char *value;
        rc = read_attr_string(c, file, "", l.names[i], &value);
        if (rc) break;
        if (results_set_attr(r, l.names[i], value))
            rc = io_file_fail(c, "cannot keep attribute %s (out of memory?)", l.names[i]);
        free(value);
    }
    name_list_free(&l);
    return rc;
}

/* Opens a dataset and returns its dimensions; -1 with a message. */
static hid_t open_dataset(io_file_err_t *c, hid_t grp, const char *gname, const char *name,
                          H5T_class_t cls, int rank, hsize_t *dims)
{
    htri_t ex = H5Lexists(grp, name, H5P_DEFAULT);
    if (ex <= 0) {
        io_file_fail(c, "dataset %s/%s is missing: " ADVICE_DAMAGED, gname, name);
        return -1;
    }
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0) {
        io_file_fail(c, "cannot open dataset %s/%s: " ADVICE_DAMAGED, gname, name);
        return -1;
    }
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    int ok = t >= 0 && s >= 0 && H5Tget_class(t) == cls && h5_type_is_standard_number(t) &&
             H5Sget_simple_extent_ndims(s) == rank &&
             (rank == 0 || H5Sget_simple_extent_dims(s, dims, NULL) == rank);
    close_id(t, H5Tclose);
    close_id(s, H5Sclose);
    char why[128];
    if (!ok) {
        io_file_fail(c, "dataset %s/%s does not have the expected type and rank %d: "
                     ADVICE_DAMAGED, gname, name, rank);
    } else if (h5_dataset_layout_check(ds, why, sizeof why)) {
        io_file_fail(c, "dataset %s/%s has %s: " ADVICE_DAMAGED, gname, name, why);
        ok = 0;
    }
    if (!ok) {
        H5Dclose(ds);
        return -1;
    }
    return ds;
}

/* Before a dataset of `elements` x `size` bytes is read into memory: at most
 * `max_bytes` of it, and (unless it is compressed) that much really stored,
 * so that a damaged header cannot make us allocate (or HDF5 fill) more than
 * the file holds. */
static int check_stored(io_file_err_t *c, hid_t ds, const char *gname, const char *name,
                        double elements, double size, double max_bytes)
{
    const double bytes = elements * size;
    if (bytes > max_bytes)
        return io_file_fail(c, "dataset %s/%s claims %.0f bytes (at most %.0f are read): "
                            ADVICE_DAMAGED, gname, name, bytes, max_bytes);
    hid_t dcpl = H5Dget_create_plist(ds);
    const int filtered = dcpl < 0 || H5Pget_nfilters(dcpl) != 0;
    close_id(dcpl, H5Pclose);
    const double stored = (double)H5Dget_storage_size(ds);
    if (!filtered && stored < bytes)
        return io_file_fail(c, "dataset %s/%s stores %.0f of its %.0f bytes: " ADVICE_DAMAGED,
                            gname, name, stored, bytes);
    return 0;
}

#define MAX_TRAIN_STEPS 1e9  /* logged steps a results file may hold */
#define MAX_RECON_BYTES 1e9  /* bytes of each reconstruction array */

static int read_train(io_file_err_t *c, hid_t file, results_t *r)
{
    hid_t grp = H5Gopen2(file, "train", H5P_DEFAULT);
    if (grp < 0) return io_file_fail(c, "group /train is missing: " ADVICE_DAMAGED);
    long n = -1;
    double *col = NULL;
    step_metrics_t *steps = NULL;
    int rc = 0;
    for (int i = 0; i < METRIC_COUNT && !rc; i++) {
        hsize_t dims[1];
        hid_t ds = open_dataset(c, grp, "/train", metrics[i].name, H5T_FLOAT, 1, dims);
        if (ds < 0) {
            rc = -1;
            break;
        }
        if (check_stored(c, ds, "/train", metrics[i].name, (double)dims[0], sizeof(double),
                         MAX_TRAIN_STEPS * sizeof(double))) {
            H5Dclose(ds);
            rc = -1;
            break;
        }
        if (i == 0) {
            n = (long)dims[0];
            col = malloc((n > 0 ? (size_t)n : 1) * sizeof *col);
            steps = calloc(n > 0 ? (size_t)n : 1, sizeof *steps);
            if (!col || !steps) rc = io_file_fail(c, "out of memory for %ld steps", n);
        } else if ((long)dims[0] != n) {
            rc = io_file_fail(c, "/train/%s has %llu entries but /train/step has %ld: "
                              ADVICE_DAMAGED, metrics[i].name, (unsigned long long)dims[0], n);
        }
        if (!rc && n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) < 0)
            rc = io_file_fail(c, "cannot read /train/%s: " ADVICE_DAMAGED, metrics[i].name);
        /* a step is a whole number >= 0 (casting anything else is undefined) */
        for (long s = 0; i == 0 && s < n && !rc; s++)
            if (!(col[s] >= 0.0 && col[s] < 9.2e18 && col[s] == floor(col[s])))
                rc = io_file_fail(c, "/train/step[%ld] = %g is not a step number: " ADVICE_DAMAGED,
                                  s, col[s]);
        for (long s = 0; s < n && !rc; s++) metric_set(&steps[s], i, col[s]);
        H5Dclose(ds);
    }
    H5Gclose(grp);
    free(col);
    if (rc) {
        free(steps);
        return -1;
    }
    free(r->steps);
    r->steps = steps;
    r->nsteps = n;
    r->cap_steps = n > 0 ? n : 1;
    return 0;
}

/* The group /name if the file has it: 1 with *grp open, 0 when it has not,
 * -1 with a message. */
static int open_optional_group(io_file_err_t *c, hid_t file, const char *name, hid_t *grp)
{
    htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
    if (ex < 0) return io_file_fail(c, "cannot look for group /%s: " ADVICE_DAMAGED, name);
    if (ex == 0) return 0;
    *grp = H5Gopen2(file, name, H5P_DEFAULT);
    if (*grp < 0) return io_file_fail(c, "cannot open group /%s: " ADVICE_DAMAGED, name);
    return 1;
}

static int read_evals(io_file_err_t *c, hid_t file, results_t *r)
{
    hid_t grp = -1;
    int found = open_optional_group(c, file, "eval", &grp);
    if (found <= 0) return found;
    name_list_t l;
    int rc = list_links(c, grp, "/eval", &l);
    for (int i = 0; i < l.n && !rc; i++) {
        char where[300];
        snprintf(where, sizeof where, "/eval/%s@", l.names[i]);
        hid_t ds = open_dataset(c, grp, "/eval", l.names[i], H5T_FLOAT, 0, NULL);
        if (ds < 0) {
            rc = -1;
            break;
        }
        double value;
        long step;
        char *cp = NULL;
        if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0)
            rc = io_file_fail(c, "cannot read /eval/%s: " ADVICE_DAMAGED, l.names[i]);
        if (!rc) rc = read_attr_string(c, ds, where, "checkpoint", &cp);
        if (!rc) rc = read_attr_long(c, ds, where, "step", &step);
        if (!rc && (!valid_eval_name(l.names[i]) || !set_latest(r, l.names[i], value, cp, step)))
            rc = io_file_fail(c, "cannot keep /eval/%s (out of memory?)", l.names[i]);
        free(cp);
        H5Dclose(ds);
    }
    name_list_free(&l);
    H5Gclose(grp);
    return rc;
}

#define MAX_EVAL_POINTS 1e6 /* evaluations of one metric a results file may hold */

/* /eval_history (absent in files written before it: then each metric's
 * history starts with its latest value). */
static int read_eval_history(io_file_err_t *c, hid_t file, results_t *r)
{
    hid_t grp = -1;
    int found = open_optional_group(c, file, "eval_history", &grp);
    if (found < 0) return -1;
    name_list_t l = {0};
    int rc = found ? list_links(c, grp, "/eval_history", &l) : 0;
    for (int i = 0; i < l.n && !rc; i++) {
        const char *name = l.names[i];
        eval_t *e = find_eval(r, name);
        if (!e) {
            rc = io_file_fail(c, "/eval_history/%s has no /eval/%s: " ADVICE_DAMAGED, name, name);
            break;
        }
        hsize_t dims[2];
        hid_t ds = open_dataset(c, grp, "/eval_history", name, H5T_FLOAT, 2, dims);
        if (ds < 0) {
            rc = -1;
            break;
        }
        if (dims[1] != 3)
            rc = io_file_fail(c, "/eval_history/%s has %llu columns, not 3 (step, epoch, value): "
                              ADVICE_DAMAGED, name, (unsigned long long)dims[1]);
        if (!rc)
            rc = check_stored(c, ds, "/eval_history", name, (double)dims[0] * 3.0, sizeof(double),
                              MAX_EVAL_POINTS * 3.0 * sizeof(double));
        const long n = rc ? 0 : (long)dims[0];
        double *rows = rc ? NULL : malloc((n > 0 ? (size_t)n : 1) * 3 * sizeof *rows);
        eval_point_t *points = rc ? NULL : malloc((n > 0 ? (size_t)n : 1) * sizeof *points);
        if (!rc && (!rows || !points))
            rc = io_file_fail(c, "out of memory for /eval_history/%s", name);
        if (!rc && n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
            rc = io_file_fail(c, "cannot read /eval_history/%s: " ADVICE_DAMAGED, name);
        for (long k = 0; k < n && !rc; k++) {
            const double st = rows[3 * k];
            /* whole steps >= 0 (casting anything else is undefined), increasing */
            if (!(st >= 0.0 && st < 9.2e18 && st == floor(st)) ||
                (k > 0 && (long)st <= points[k - 1].step))
                rc = io_file_fail(c, "/eval_history/%s row %ld: step %g is not a whole number "
                                  "above the previous row's: " ADVICE_DAMAGED, name, k, st);
            points[k] = (eval_point_t){(long)st, rows[3 * k + 1], rows[3 * k + 2]};
        }
        if (!rc) {
            free(e->hist);
            e->hist = points, e->nhist = n;
            points = NULL;
        }
        free(points);
        free(rows);
        H5Dclose(ds);
    }
    name_list_free(&l);
    if (found) H5Gclose(grp);
    for (int i = 0; i < r->nevals && !rc; i++) {
        eval_t *e = &r->evals[i];
        const eval_point_t p = {e->step, epoch_at(r, e->step), e->value};
        if (e->nhist == 0 && history_put(e, &p))
            rc = io_file_fail(c, "out of memory for the evaluation history");
    }
    return rc;
}

static int read_recon(io_file_err_t *c, hid_t file, results_t *r)
{
    hid_t grp = -1;
    int found = open_optional_group(c, file, "reconstructions", &grp);
    if (found <= 0) return found;
    long step = 0;
    int rc = read_attr_long(c, grp, "/reconstructions@", "step", &step);
    uint8_t *bytes[3] = {NULL, NULL, NULL};
    hsize_t first[4] = {0, 0, 0, 0};
    for (int k = 0; k < 3 && !rc; k++) {
        hsize_t dims[4];
        hid_t ds = open_dataset(c, grp, "/reconstructions", recon_names[k], H5T_INTEGER, 4, dims);
        if (ds < 0) {
            rc = -1;
            break;
        }
        if (k == 0) memcpy(first, dims, sizeof first);
        if (memcmp(first, dims, sizeof first))
            rc = io_file_fail(c, "/reconstructions/%s differs in shape from "
                              "/reconstructions/original: " ADVICE_DAMAGED, recon_names[k]);
        else if (dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || (dims[3] != 1 && dims[3] != 3) ||
                 dims[0] > INT32_MAX || dims[1] > INT32_MAX || dims[2] > INT32_MAX)
            rc = io_file_fail(c, "/reconstructions/%s has an unusable shape: " ADVICE_DAMAGED,
                              recon_names[k]);
        else /* the product in double: four dimensions of 2^31 overflow 64 bits */
            rc = check_stored(c, ds, "/reconstructions", recon_names[k],
                              (double)dims[0] * (double)dims[1] * (double)dims[2] *
                                  (double)dims[3], 1.0, MAX_RECON_BYTES);
        if (!rc) {
            bytes[k] = malloc((size_t)(dims[0] * dims[1] * dims[2] * dims[3]));
            if (!bytes[k]) rc = io_file_fail(c, "out of memory for the reconstructions");
            else if (H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes[k]) < 0)
                rc = io_file_fail(c, "cannot read /reconstructions/%s: " ADVICE_DAMAGED,
                                  recon_names[k]);
        }
        H5Dclose(ds);
    }
    H5Gclose(grp);
    if (rc) {
        for (int k = 0; k < 3; k++) free(bytes[k]);
        return -1;
    }
    set_recon_bytes(r, step, bytes, (int)first[0], (int)first[1], (int)first[2], (int)first[3]);
    return 0;
}

/* /eval_state (absent in files written before it: no state recorded). */
static int read_eval_state(io_file_err_t *c, hid_t file, results_t *r)
{
    htri_t ex = H5Lexists(file, "eval_state", H5P_DEFAULT);
    if (ex < 0) return io_file_fail(c, "cannot look for /eval_state: " ADVICE_DAMAGED);
    if (ex == 0) return 0;
    hsize_t dims[2];
    hid_t ds = open_dataset(c, file, "", "eval_state", H5T_INTEGER, 2, dims);
    if (ds < 0) return -1;
    int rc = dims[1] != 2 ? io_file_fail(c, "/eval_state has %llu columns, not 2 (step, state): "
                                         ADVICE_DAMAGED, (unsigned long long)dims[1])
                          : check_stored(c, ds, "", "eval_state", (double)dims[0] * 2.0,
                                         sizeof(int64_t), MAX_EVAL_POINTS * 2.0 * sizeof(int64_t));
    const long n = rc ? 0 : (long)dims[0];
    int64_t *rows = rc ? NULL : malloc((n > 0 ? (size_t)n : 1) * 2 * sizeof *rows);
    if (!rc && !rows) rc = io_file_fail(c, "out of memory for /eval_state");
    if (!rc && n > 0 && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
        rc = io_file_fail(c, "cannot read /eval_state: " ADVICE_DAMAGED);
    for (long k = 0; k < n && !rc; k++) {
        const int64_t st = rows[2 * k], state = rows[2 * k + 1];
        if (st < 0 || (k > 0 && st <= rows[2 * k - 2]) ||
            (state != RESULTS_EVAL_PENDING && state != RESULTS_EVAL_DONE))
            rc = io_file_fail(c, "/eval_state row %ld (%lld, %lld) is not an increasing step "
                              "with state 0 or 1: " ADVICE_DAMAGED, k, (long long)st,
                              (long long)state);
        else if (results_set_eval_state(r, (long)st, (int)state))
            rc = io_file_fail(c, "out of memory for /eval_state");
    }
    free(rows);
    H5Dclose(ds);
    return rc;
}

/* Opens path read-only (see h5_atomic_open). */
static hid_t open_file(io_file_err_t *c)
{
    return h5_atomic_open(c->path, "not a readable HDF5 file (truncated or damaged?): restore it "
                         "or start a new results file", c);
}


results_t *results_load(const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!path) {
        io_file_fail(&c, "results_load: no path");
        return NULL;
    }
    hid_t file = open_file(&c);
    if (file < 0) return NULL;
    results_t *r = results_new(NULL, NULL);
    char format[64];
    long version = 0;
    int rc = r ? 0 : io_file_fail(&c, "out of memory");
    if (!rc) rc = read_attr_string_buf(&c, file, "format", format, sizeof format);
    if (!rc && strcmp(format, RESULTS_FORMAT))
        rc = io_file_fail(&c, "format is '%s', not '%s': this is not a mimae results file", format,
                          RESULTS_FORMAT);
    if (!rc) rc = read_attr_long(&c, file, "", "format_version", &version);
    if (!rc && version != RESULTS_FORMAT_VERSION)
        rc = io_file_fail(&c, "results format version %ld, this program reads version %d: use the "
                          "mimae version that wrote it", version, RESULTS_FORMAT_VERSION);
    if (!rc) rc = read_config(&c, file, &r->cfg);
    if (!rc) rc = read_env(&c, file, &r->env);
    if (!rc) rc = read_extras(&c, file, r);
    if (!rc) rc = read_train(&c, file, r);
    if (!rc) rc = read_evals(&c, file, r);
    if (!rc) rc = read_eval_history(&c, file, r);
    if (!rc) rc = read_recon(&c, file, r);
    if (!rc) rc = read_eval_state(&c, file, r);
    if (H5Fclose(file) < 0 && !rc) rc = io_file_fail(&c, "cannot close the file");
    if (rc) {
        results_free(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------
 * The environment. */

#ifndef MIMAE_GIT_COMMIT
#define MIMAE_GIT_COMMIT "unknown" /* built without the Makefile (e.g. the fuzz targets) */
#endif

static void first_line(char *dst, size_t len, const char *src)
{
    size_t n = strcspn(src, "\r\n");
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\t')) n--;
    snprintf(dst, len, "%.*s", (int)n, src);
}

void results_env_detect(results_env_t *env, const char *mpi_version)
{
    if (!env) return;
    const int ranks = env->ranks, threads = env->threads;
    memset(env, 0, sizeof *env);
    env->ranks = ranks;
    env->threads = threads;

    if (mpi_version) first_line(env->mpi, sizeof env->mpi, mpi_version);
    const char *blas = openblas_get_config();
    if (blas) first_line(env->openblas, sizeof env->openblas, blas);
    unsigned maj = 0, min = 0, rel = 0;
    if (H5get_libversion(&maj, &min, &rel) >= 0)
        snprintf(env->hdf5, sizeof env->hdf5, "%u.%u.%u", maj, min, rel);
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = 0;
        first_line(env->host, sizeof env->host, host);
    }
    /* mimae's own commit, fixed when it was built (the Makefile's
     * MIMAE_GIT_COMMIT): the current directory is the user's, not ours. */
    const char *forced = getenv("MIMAE_GIT_COMMIT");
    first_line(env->git_commit, sizeof env->git_commit, forced ? forced : MIMAE_GIT_COMMIT);
}
