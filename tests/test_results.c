/* Results files: write -> load gives everything back (and load -> write ->
 * load is stable); a repeated step truncates the history (resume); every
 * evaluation is kept (/eval_history) beside the latest (/eval); h5dump
 * opens the file; the reconstruction PNG has the right signature, size and
 * pixels; failed writes leave nothing (and the previous file intact);
 * strings written fixed-length, variable-length ones read from legacy files
 * only; environment detection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/config/config.h"
#include "core/config/config_fields.h"
#include "core/data/rng.h"
#include "dist/collectives.h"
#include "io/results.h"

#include "tests/fs_util.h"

/* ------------------------------------------------------------------------
 * Helpers */

static mimae_config_t sample_config(void)
{
    mimae_config_t c;
    assert_int_equal(mimae_config_preset(&c, "fmnist-tiny"), 0);
    c.pool = POOL_CLS;
    c.club_contrast = CLUB_CONTRAST_BATCH;
    c.mask_ratio = 0.6; /* a double that is no float */
    c.tau = 0.1f;
    c.total_iters = 123456789012L;
    return c;
}

static results_env_t sample_env(void)
{
    results_env_t e;
    memset(&e, 0, sizeof e);
    e.ranks = 64, e.threads = 2;
    snprintf(e.mpi, sizeof e.mpi, "Open MPI v4.1.4");
    snprintf(e.openblas, sizeof e.openblas, "OpenBLAS 0.3.21 Haswell");
    snprintf(e.hdf5, sizeof e.hdf5, "1.10.8");
    snprintf(e.git_commit, sizeof e.git_commit, "abc1234");
    snprintf(e.host, sizeof e.host, "node017");
    return e;
}

static step_metrics_t sample_step(long step, double salt)
{
    step_metrics_t m;
    m.step = step;
    m.epoch = step / 937.0;
    m.views = step * 256.0 * 4;
    m.rec = 1.0 / (step + 3.0) + salt;
    m.max = -0.1 * sin((double)step) + salt;
    m.min = 1e-300 * step;
    m.q = -step * 0.25;
    m.total = m.rec + 0.1 * m.max + 0.01 * m.min;
    m.lr = 1.5e-4 * step / 40000.0;
    m.grad_norm = sqrt((double)step);
    m.images_per_s = 12345.678 + step;
    m.data_wait_s = step % 7 ? 0.0 : 1.0 / 3.0;
    return m;
}

static int steps_equal(const step_metrics_t *a, const step_metrics_t *b)
{
    return a->step == b->step && a->epoch == b->epoch && a->views == b->views &&
           a->rec == b->rec && a->max == b->max && a->min == b->min && a->q == b->q &&
           a->total == b->total && a->lr == b->lr && a->grad_norm == b->grad_norm &&
           a->images_per_s == b->images_per_s && a->data_wait_s == b->data_wait_s;
}

static uint8_t expect_byte(float x)
{
    if (!(x > 0.0f)) return 0;
    if (x >= 1.0f) return 255;
    return (uint8_t)lroundf(x * 255.0f);
}

/* Compares two results deeply; fails the test naming the difference. */
static void assert_results_equal(const results_t *a, const results_t *b)
{
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        double x = config_field_get_number(f, results_config(a));
        double y = config_field_get_number(f, results_config(b));
        if (x != y) fail_msg("config %s.%s: %.17g vs %.17g", f->section, f->key, x, y);
    }
    const results_env_t *ea = results_env(a), *eb = results_env(b);
    assert_int_equal(ea->ranks, eb->ranks);
    assert_int_equal(ea->threads, eb->threads);
    assert_string_equal(ea->mpi, eb->mpi);
    assert_string_equal(ea->openblas, eb->openblas);
    assert_string_equal(ea->hdf5, eb->hdf5);
    assert_string_equal(ea->git_commit, eb->git_commit);
    assert_string_equal(ea->host, eb->host);

    assert_int_equal(results_attr_count(a), results_attr_count(b));
    for (int i = 0; i < results_attr_count(a); i++) {
        const char *ka, *va, *kb, *vb;
        assert_int_equal(results_attr_at(a, i, &ka, &va), 0);
        assert_int_equal(results_attr_at(b, i, &kb, &vb), 0);
        assert_string_equal(ka, kb);
        assert_string_equal(va, vb);
    }
    assert_int_equal(results_attr_at(a, results_attr_count(a), NULL, NULL), -1);

    assert_int_equal(results_step_count(a), results_step_count(b));
    for (long s = 0; s < results_step_count(a); s++)
        if (!steps_equal(&results_steps(a)[s], &results_steps(b)[s]))
            fail_msg("step entry %ld differs", s);

    assert_int_equal(results_eval_count(a), results_eval_count(b));
    for (int i = 0; i < results_eval_count(a); i++) {
        const char *na, *nb, *ca, *cb;
        double va, vb;
        long sa, sb;
        assert_int_equal(results_eval_at(a, i, &na, &va, &ca, &sa), 0);
        assert_int_equal(results_eval_at(b, i, &nb, &vb, &cb, &sb), 0);
        assert_string_equal(na, nb);
        assert_true(va == vb);
        assert_string_equal(ca, cb);
        assert_int_equal(sa, sb);
        const eval_point_t *ha, *hb;
        const long nha = results_eval_history(a, na, &ha), nhb = results_eval_history(b, nb, &hb);
        assert_int_equal(nha, nhb);
        for (long k = 0; k < nha; k++) { /* bit for bit: an epoch may be NaN */
            assert_int_equal(ha[k].step, hb[k].step);
            assert_memory_equal(&ha[k].epoch, &hb[k].epoch, sizeof(double));
            assert_memory_equal(&ha[k].value, &hb[k].value, sizeof(double));
        }
    }

    long sa, sb;
    int K, H, W, C, K2, H2, W2, C2;
    const uint8_t *oa, *ma, *ra, *ob, *mb, *rb;
    int ha = results_get_reconstructions(a, &sa, &K, &H, &W, &C, &oa, &ma, &ra);
    int hb = results_get_reconstructions(b, &sb, &K2, &H2, &W2, &C2, &ob, &mb, &rb);
    assert_int_equal(ha, hb);
    if (ha == 0) {
        assert_int_equal(sa, sb);
        assert_int_equal(K, K2), assert_int_equal(H, H2);
        assert_int_equal(W, W2), assert_int_equal(C, C2);
        const size_t n = (size_t)K * H * W * C;
        assert_memory_equal(oa, ob, n);
        assert_memory_equal(ma, mb, n);
        assert_memory_equal(ra, rb, n);
    }
}

typedef struct {
    int K, H, W, C;
    float *orig, *masked, *recon;
} recon_set_t;

static recon_set_t make_recon(int K, int H, int W, int C, uint64_t seed)
{
    recon_set_t s = {K, H, W, C, NULL, NULL, NULL};
    size_t n = (size_t)K * H * W * C;
    s.orig = malloc(n * sizeof(float));
    s.masked = malloc(n * sizeof(float));
    s.recon = malloc(n * sizeof(float));
    assert_true(s.orig && s.masked && s.recon);
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (size_t i = 0; i < n; i++) {
        s.orig[i] = rng_uniform(&r);
        s.masked[i] = (i / (size_t)(W * C)) % 4 == 0 ? 0.5f : s.orig[i];
        s.recon[i] = 1.4f * rng_uniform(&r) - 0.2f; /* out of range on both sides */
    }
    s.recon[0] = NAN;
    return s;
}

static void free_recon(recon_set_t *s)
{
    free(s->orig);
    free(s->masked);
    free(s->recon);
}

static results_t *sample_results(recon_set_t *rs, long nsteps)
{
    mimae_config_t c = sample_config();
    results_env_t e = sample_env();
    results_t *r = results_new(&c, &e);
    assert_non_null(r);
    assert_int_equal(results_set_attr(r, "task_id", "17"), 0);
    assert_int_equal(results_set_attr(r, "sweep.mimae.w_max", "0.1"), 0);
    assert_int_equal(results_set_attr(r, "empty", ""), 0);
    assert_int_equal(results_set_attr(r, "unicode", "Entropie \xc3\xa9t\xc3\xa9 \xe2\x88\x91"), 0);
    /* a descriptor larger than HDF5's 64 KiB compact attribute limit */
    size_t big = 100000;
    char *text = malloc(big + 1);
    assert_non_null(text);
    for (size_t i = 0; i < big; i++) text[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
    text[big] = 0;
    assert_int_equal(results_set_attr(r, "descriptor", text), 0);
    free(text);
    assert_int_equal(results_set_attr(r, "task_id", "18"), 0); /* replaced in place */
    /* later steps of an abandoned attempt: the real history below replaces them */
    for (long s = 0; s < 5; s++) {
        step_metrics_t junk = sample_step(100000 + s, 9.0);
        assert_int_equal(results_append_step(r, &junk), 0);
    }
    for (long s = 0; s < nsteps; s++) {
        step_metrics_t m = sample_step(s, 0.0);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    assert_int_equal(results_set_eval(r, "linear_probe_top1", 0.8125, "runs/a/ckpt-0000001000.h5",
                                      1000), 0);
    assert_int_equal(results_set_eval(r, "knn_top1", 0.7, NULL, 900), 0);
    assert_int_equal(results_set_eval(r, "finetune_top1", 0.9, "x", 5), 0);
    assert_int_equal(results_set_eval(r, "knn_top1", 0.75, "runs/a/ckpt-0000001000.h5", 1000),
                     0);
    if (rs)
        assert_int_equal(results_set_reconstructions(r, 1000, rs->orig, rs->masked, rs->recon,
                                                     rs->K, rs->H, rs->W, rs->C), 0);
    return r;
}

/* Reads the PNG's IHDR and (through libpng's simplified API) its pixels. */
static uint8_t *read_png(const char *path, int *width, int *height, int *channels)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: %s", path, strerror(errno));
    unsigned char head[33];
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_memory_equal(head, sig, 8);
    assert_memory_equal(head + 12, "IHDR", 4);
    *width = (head[16] << 24) | (head[17] << 16) | (head[18] << 8) | head[19];
    *height = (head[20] << 24) | (head[21] << 16) | (head[22] << 8) | head[23];
    assert_int_equal(head[24], 8); /* bit depth */
    *channels = head[25] == 0 ? 1 : head[25] == 2 ? 3 : -1;

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    img.format = *channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    assert_int_equal((int)img.width, *width);
    assert_int_equal((int)img.height, *height);
    return px;
}

/* ------------------------------------------------------------------------
 * Tests */

/* write -> load gives everything back; load -> write -> load is stable. */
static void test_roundtrip(void **state)
{
    (void)state;
    char dir[512], p1[1024], p2[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    snprintf(p1, sizeof p1, "%s/results.h5", dir);
    snprintf(p2, sizeof p2, "%s/again.h5", dir);
    recon_set_t rs = make_recon(3, 8, 6, 3, 7);
    results_t *r = sample_results(&rs, 2500); /* more than two /train chunks */
    assert_int_equal(results_step_count(r), 2500);
    if (results_write(r, p1, err, sizeof err)) fail_msg("write: %s", err);
    results_t *l = results_load(p1, err, sizeof err);
    if (!l) fail_msg("load: %s", err);
    assert_results_equal(r, l);

    /* spot checks against the inputs themselves */
    assert_string_equal(results_get_attr(l, "task_id"), "18");
    assert_string_equal(results_get_attr(l, "empty"), "");
    assert_int_equal(strlen(results_get_attr(l, "descriptor")), 100000);
    assert_null(results_get_attr(l, "nope"));
    assert_int_equal(results_attr_count(l), 5);
    const char *k0;
    results_attr_at(l, 0, &k0, NULL);
    assert_string_equal(k0, "task_id"); /* order of first setting kept */
    double v;
    assert_int_equal(results_get_eval(l, "knn_top1", &v), 0);
    assert_true(v == 0.75);
    assert_int_equal(results_get_eval(l, "missing", &v), -1);
    const char *n0, *cp;
    long st;
    assert_int_equal(results_eval_at(l, 1, &n0, &v, &cp, &st), 0);
    assert_string_equal(n0, "knn_top1");
    assert_string_equal(cp, "runs/a/ckpt-0000001000.h5");
    assert_int_equal(st, 1000);
    assert_true(results_config(l)->mask_ratio == 0.6);
    assert_int_equal(results_config(l)->pool, POOL_CLS);
    assert_int_equal(results_config(l)->club_contrast, CLUB_CONTRAST_BATCH);
    assert_int_equal(results_config(l)->total_iters, 123456789012L);
    step_metrics_t last = sample_step(2499, 0.0);
    assert_true(steps_equal(&results_steps(l)[2499], &last));
    const uint8_t *ro, *rr;
    int K, H, W, C;
    long rstep;
    assert_int_equal(results_get_reconstructions(l, &rstep, &K, &H, &W, &C, &ro, NULL, &rr), 0);
    assert_int_equal(rstep, 1000);
    const size_t n = (size_t)K * H * W * C;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ro[i], expect_byte(rs.orig[i]));
        assert_int_equal(rr[i], expect_byte(rs.recon[i]));
    }
    assert_int_equal(rr[0], 0); /* NaN */

    if (results_write(l, p2, err, sizeof err)) fail_msg("rewrite: %s", err);
    results_t *l2 = results_load(p2, err, sizeof err);
    if (!l2) fail_msg("reload: %s", err);
    assert_results_equal(l, l2);

    results_free(l2);
    results_free(l);
    results_free(r);
    free_recon(&rs);
    remove_tree(dir);
}

/* Empty results of the sample config, and a new temporary directory with
 * the file name DIR/r.h5 for them. */
static results_t *fresh_results(char *dir, size_t dir_len, char *path, size_t path_len)
{
    make_tmpdir(dir, dir_len, "mimae-results");
    snprintf(path, path_len, "%s/r.h5", dir);
    mimae_config_t c = sample_config();
    results_t *r = results_new(&c, NULL);
    assert_non_null(r);
    return r;
}

/* A resumed run re-logs steps: entries with step >= the new one are dropped. */
static void test_append_truncates_on_resume(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    results_t *r = fresh_results(dir, sizeof dir, path, sizeof path);
    for (long s = 1; s <= 10; s++) {
        step_metrics_t m = sample_step(s * 10, 0.0);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    assert_int_equal(results_step_count(r), 10);
    step_metrics_t again = sample_step(60, 0.5);
    assert_int_equal(results_append_step(r, &again), 0); /* 60..100 dropped */
    assert_int_equal(results_step_count(r), 6);
    assert_true(steps_equal(&results_steps(r)[5], &again));
    assert_int_equal(results_steps(r)[4].step, 50);
    step_metrics_t mid = sample_step(55, 0.25);
    assert_int_equal(results_append_step(r, &mid), 0); /* 60 dropped */
    assert_int_equal(results_step_count(r), 6);
    assert_int_equal(results_steps(r)[5].step, 55);

    /* the same through a file, as the trainer resumes: load, append, write */
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_t *l = results_load(path, err, sizeof err);
    if (!l) fail_msg("%s", err);
    step_metrics_t m = sample_step(30, 1.0);
    assert_int_equal(results_append_step(l, &m), 0);
    for (long s = 4; s <= 12; s++) {
        step_metrics_t x = sample_step(s * 10, 2.0);
        assert_int_equal(results_append_step(l, &x), 0);
    }
    if (results_write(l, path, err, sizeof err)) fail_msg("%s", err);
    results_t *l2 = results_load(path, err, sizeof err);
    if (!l2) fail_msg("%s", err);
    assert_int_equal(results_step_count(l2), 12);
    for (long i = 0; i < 12; i++) assert_int_equal(results_steps(l2)[i].step, (i + 1) * 10);
    assert_true(steps_equal(&results_steps(l2)[2], &m));
    results_free(l2);
    results_free(l);
    results_free(r);
    remove_tree(dir);
}

/* One metric's history: (step, epoch, value) rows. */
static void assert_history(const results_t *r, const char *name, long n, const long *steps,
                           const double *values)
{
    const eval_point_t *p;
    if (results_eval_history(r, name, &p) != n) fail_msg("%s: expected %ld evaluations", name, n);
    for (long k = 0; k < n; k++) {
        assert_int_equal(p[k].step, steps[k]);
        if (steps[k] <= 30) assert_true(p[k].epoch == steps[k] / 937.0); /* sample_step's */
        else assert_true(isnan(p[k].epoch)); /* no such /train step */
        assert_true(p[k].value == values[k]);
    }
}

/* Evaluating every K epochs leaves every evaluation: /eval_history/<name>
 * rows (step, epoch, value) in step order, a step evaluated again replaced;
 * /eval/<name> keeps the latest as before. A file written before the history
 * existed loads with the latest value as its history; rows out of order are
 * refused as damage. */
static void test_eval_history(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    results_t *r = fresh_results(dir, sizeof dir, path, sizeof path);
    for (long s = 1; s <= 30; s++) {
        step_metrics_t m = sample_step(s, 0.0);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    assert_int_equal(results_set_eval(r, "knn_top1", 0.5, "c10", 10), 0);
    assert_int_equal(results_set_eval(r, "knn_top1", 0.7, "c30", 30), 0);
    assert_int_equal(results_set_eval(r, "knn_top1", 0.6, "c20", 20), 0); /* an older checkpoint */
    assert_int_equal(results_set_eval(r, "knn_top1", 0.75, "c30", 30), 0); /* again: replaced */
    assert_int_equal(results_set_eval(r, "mi_club", 0.25, "c40", 40), 0);
    assert_int_equal(results_eval_history(r, "nope", NULL), -1);
    const long knn_steps[3] = {10, 20, 30}, club_steps[1] = {40};
    const double knn_values[3] = {0.5, 0.6, 0.75}, club_values[1] = {0.25};
    assert_history(r, "knn_top1", 3, knn_steps, knn_values);

    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_t *l = results_load(path, err, sizeof err);
    if (!l) fail_msg("%s", err);
    assert_results_equal(r, l);
    assert_history(l, "knn_top1", 3, knn_steps, knn_values);
    assert_history(l, "mi_club", 1, club_steps, club_values);
    double v;
    long step;
    assert_int_equal(results_get_eval(l, "knn_top1", &v), 0);
    assert_true(v == 0.75); /* the latest set */
    assert_int_equal(results_eval_at(l, 0, NULL, NULL, NULL, &step), 0);
    assert_int_equal(step, 30);
    results_free(l);

    /* the file itself: /eval_history/knn_top1 is (3, 3), /eval/knn_top1 a scalar */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, "/eval_history/knn_top1", H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    assert_int_equal(dims[0], 3);
    assert_int_equal(dims[1], 3);
    double rows[9];
    assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    assert_true(rows[3] == 20.0 && rows[4] == 20 / 937.0 && rows[5] == 0.6);
    assert_true(H5Aexists(ds, "columns") > 0);
    /* rows out of step order: damage */
    rows[3] = 40.0;
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    H5Sclose(sp), H5Dclose(ds);
    ds = H5Dopen2(f, "/eval/knn_top1", H5P_DEFAULT);
    assert_true(ds >= 0);
    sp = H5Dget_space(ds);
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 0);
    H5Sclose(sp), H5Dclose(ds), H5Fclose(f);
    assert_null(results_load(path, err, sizeof err));
    printf("  %s\n", err);
    assert_non_null(strstr(err, "/eval_history/knn_top1 row 2"));

    /* a file from before /eval_history: each history starts with the latest */
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0 && H5Ldelete(f, "/eval_history", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    l = results_load(path, err, sizeof err);
    if (!l) fail_msg("%s", err);
    const long last[1] = {30};
    const double last_value[1] = {0.75};
    assert_history(l, "knn_top1", 1, last, last_value);
    assert_history(l, "mi_club", 1, club_steps, club_values);
    results_free(l);
    results_free(r);
    remove_tree(dir);
}

/* h5dump reads the file; the PNG is beside it with the right size and pixels. */
static void test_h5dump_and_png(void **state)
{
    (void)state;
    char dir[512], path[1024], png[1100], cmd[2400], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    snprintf(path, sizeof path, "%s/run-7.h5", dir);
    enum { K = 5, H = 28, W = 28, C = 1 };
    recon_set_t rs = make_recon(K, H, W, C, 11);
    results_t *r = sample_results(&rs, 10);
    if (results_write(r, path, err, sizeof err)) fail_msg("write: %s", err);

    snprintf(cmd, sizeof cmd, "h5dump -H '%s' > /dev/null", path);
    int status = system(cmd);
    if (status != 0)
        fail_msg("`%s` exited with %d: is h5dump installed (Debian hdf5-tools, `make deps`)?",
                 cmd, status);

    snprintf(png, sizeof png, "%s/run-7-recon-1000.png", dir);
    int w, h, ch;
    uint8_t *px = read_png(png, &w, &h, &ch);
    const int zoom = 4; /* ceil(96 / 28) */
    assert_int_equal(w, K * W * zoom + 2 * (K - 1));
    assert_int_equal(h, 3 * H * zoom + 2 * 2);
    assert_int_equal(ch, 1);
    const int cell = W * zoom + 2;
    const float *rows[3] = {rs.orig, rs.masked, rs.recon};
    for (int row = 0; row < 3; row++)
        for (int k = 0; k < K; k++)
            for (int y = 0; y < H * zoom; y += 3)
                for (int x = 0; x < W * zoom; x += 5) {
                    uint8_t got = px[(size_t)(row * cell + y) * w + k * cell + x];
                    float src = rows[row][((size_t)k * H + y / zoom) * W + x / zoom];
                    if (got != expect_byte(src))
                        fail_msg("pixel row %d tile %d (%d,%d): %d, expected %d", row, k, y, x,
                                 got, expect_byte(src));
                }
    /* gaps are white */
    assert_int_equal(px[(size_t)(H * zoom) * w + 3], 255);
    assert_int_equal(px[W * zoom], 255);
    free(px);
    assert_int_equal(count_entries(dir), 2);
    results_free(r);
    free_recon(&rs);
    remove_tree(dir);
}

/* Writing into a missing directory fails with a message and leaves nothing. */
static void test_failed_write_leaves_nothing(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    snprintf(path, sizeof path, "%s/missing/results.h5", dir);
    recon_set_t rs = make_recon(2, 4, 4, 1, 3);
    results_t *r = sample_results(&rs, 3);
    assert_int_equal(results_write(r, path, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(count_entries(dir), 0);
    assert_null(results_load(path, err, sizeof err));
    printf("  %s\n", err);
    results_free(r);
    free_recon(&rs);
    remove_tree(dir);
}

/* Rewriting replaces the file; a rewrite that fails half-way (the file size
 * limit plays a full disk) or cannot start leaves the previous file intact
 * and no temporary behind. */
static void test_rewrite_is_atomic(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    snprintf(path, sizeof path, "%s/results.h5", dir);
    mimae_config_t c = sample_config();
    results_t *r = results_new(&c, NULL);
    step_metrics_t m = sample_step(1, 0.0);
    assert_int_equal(results_append_step(r, &m), 0);
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    for (long s = 2; s <= 3; s++) {
        m = sample_step(s, 0.0);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(count_entries(dir), 1);
    results_t *l = results_load(path, err, sizeof err);
    if (!l) fail_msg("%s", err);
    assert_int_equal(results_step_count(l), 3);
    results_free(l);

    /* a larger history that cannot be written: the old file stays */
    for (long s = 4; s <= 20000; s++) {
        m = sample_step(s, 0.0);
        assert_int_equal(results_append_step(r, &m), 0);
    }
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    file_size_limit_t lim;
    file_size_limit_set(&lim, (long long)sb.st_size * 2);
    int rc = results_write(r, path, err, sizeof err);
    file_size_limit_restore(&lim);
    assert_int_equal(rc, -1);
    printf("  %s\n", err);
    assert_false(has_temporary(dir));
    assert_int_equal(count_entries(dir), 1);
    l = results_load(path, err, sizeof err);
    if (!l) fail_msg("old file damaged: %s", err);
    assert_int_equal(results_step_count(l), 3);
    results_free(l);

    /* no file can be created (no descriptor left): the write cannot start */
    struct rlimit files, none;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &files), 0);
    none = files;
    none.rlim_cur = 0;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
    rc = results_write(r, path, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &files), 0);
    assert_int_equal(rc, -1);
    printf("  %s\n", err);
    assert_false(has_temporary(dir));
    l = results_load(path, err, sizeof err);
    if (!l) fail_msg("old file damaged: %s", err);
    assert_int_equal(results_step_count(l), 3);
    results_free(l);

    /* and with room again the big history goes through */
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    l = results_load(path, err, sizeof err);
    if (!l) fail_msg("%s", err);
    assert_int_equal(results_step_count(l), 20000);
    assert_false(has_temporary(dir));
    results_free(l);
    results_free(r);
    remove_tree(dir);
}

/* Reserved or malformed keys and names are refused; other files are refused
 * with a reason. */
static void test_refusals(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    results_t *r = results_new(NULL, NULL);
    assert_non_null(r);
    assert_int_equal(results_set_attr(r, "format", "x"), -1);
    assert_int_equal(results_set_attr(r, "config.model.enc_dim", "x"), -1);
    assert_int_equal(results_set_attr(r, "env.host", "x"), -1);
    assert_int_equal(results_set_attr(r, "", "x"), -1);
    assert_int_equal(results_set_attr(r, "a/b", "x"), -1);
    assert_int_equal(results_set_eval(r, "a/b", 1.0, NULL, 0), -1);
    float x = 0.5f;
    assert_int_equal(results_set_reconstructions(r, 0, &x, &x, &x, 1, 1, 1, 2), -1);
    assert_int_equal(results_get_reconstructions(r, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                                 NULL), -1);
    results_free(r);

    snprintf(path, sizeof path, "%s/other.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Fclose(f);
    assert_null(results_load(path, err, sizeof err));
    printf("  %s\n", err);
    assert_non_null(strstr(err, "format"));
    remove_tree(dir);
}

/* Rewrites root string attribute `name` of path as a variable-length one,
 * as mimae wrote every string before fixed-length ones. */
static void make_variable(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = H5Aget_type(a);
    assert_true(a >= 0 && t >= 0 && H5Tis_variable_str(t) == 0);
    char value[256] = "";
    assert_true(H5Tget_size(t) < sizeof value);
    assert_true(H5Aread(a, t, value) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    assert_true(H5Adelete(f, name) >= 0);
    hid_t vt = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    assert_true(H5Tset_size(vt, H5T_VARIABLE) >= 0 && H5Tset_cset(vt, H5T_CSET_UTF8) >= 0);
    a = H5Acreate2(f, name, vt, space, H5P_DEFAULT, H5P_DEFAULT);
    const char *p = value;
    assert_true(a >= 0 && H5Awrite(a, vt, &p) >= 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(vt);
    assert_true(H5Fclose(f) >= 0);
}

static herr_t count_string_attrs(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    int *counts = data; /* fixed, variable */
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a);
    if (a < 0 || t < 0) return -1;
    if (H5Tget_class(t) == H5T_STRING) counts[H5Tis_variable_str(t) > 0]++;
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

/* Strings are written fixed-length (no global heap, whose HDF5 reader
 * crashes on damaged files); a variable-length one is refused in such a file
 * and read from a legacy file, whose format attribute is variable-length. */
static void test_string_types(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-results");
    snprintf(path, sizeof path, "%s/results.h5", dir);
    const mimae_config_t cfg = sample_config();
    results_t *r = results_new(&cfg, NULL);
    assert_non_null(r);
    assert_int_equal(results_set_attr(r, "run.name", "n\xc3\xa9" "e"), 0); /* UTF-8 */
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int counts[2] = {0, 0};
    hsize_t idx = 0;
    assert_true(H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, count_string_attrs, counts) >= 0);
    H5Fclose(f);
    assert_true(counts[0] >= 8); /* format, the enum config fields, env.*, run.name */
    assert_int_equal(counts[1], 0);

    make_variable(path, "run.name");
    assert_null(results_load(path, err, sizeof err));
    printf("  %s\n", err);
    assert_non_null(strstr(err, "attribute run.name is a variable-length string"));

    make_variable(path, "format"); /* now a legacy file */
    r = results_load(path, err, sizeof err);
    if (!r) fail_msg("%s", err);
    assert_string_equal(results_get_attr(r, "run.name"), "n\xc3\xa9" "e");
    results_free(r);
    remove_tree(dir);
}

/* The environment: library versions, host, git commit (overridable). */
static void test_env_detect(void **state)
{
    (void)state;
    results_env_t e;
    memset(&e, 0x5a, sizeof e);
    e.ranks = 4, e.threads = 3;
    assert_int_equal(setenv("MIMAE_GIT_COMMIT", "feedbee", 1), 0);
    char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    dist_library_version(mpi_version, sizeof mpi_version);
    results_env_detect(&e, mpi_version);
    printf("  mpi '%s'\n  openblas '%s'\n  hdf5 '%s'\n  host '%s'\n", e.mpi, e.openblas, e.hdf5,
           e.host);
    assert_int_equal(e.ranks, 4);
    assert_int_equal(e.threads, 3);
    assert_string_equal(e.git_commit, "feedbee");
    assert_non_null(strstr(e.mpi, "MPI"));
    assert_non_null(strstr(e.openblas, "OpenBLAS"));
    unsigned maj, min, rel;
    char want[32];
    H5get_libversion(&maj, &min, &rel);
    snprintf(want, sizeof want, "%u.%u.%u", maj, min, rel);
    assert_string_equal(e.hdf5, want);
    assert_true(strlen(e.host) > 0);

    /* Without the override: mimae's own commit, embedded when it was built,
     * whatever the current directory (it used to be the directory's). */
    assert_int_equal(unsetenv("MIMAE_GIT_COMMIT"), 0);
    char self[512], source_commit[64] = "unknown", cwd[512];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cd \"$(dirname '%s')/../..\" && [ \"$(git rev-parse --show-toplevel "
             "2>/dev/null)\" = \"$(pwd -P)\" ] && git rev-parse --short HEAD", self);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(source_commit, sizeof source_commit, p)) snprintf(source_commit, 64, "unknown");
    pclose(p);
    source_commit[strcspn(source_commit, "\n")] = '\0';
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    results_env_detect(&e, mpi_version);
    assert_int_equal(chdir(cwd), 0);
    printf("  git commit from /: '%s' (source tree: '%s')\n", e.git_commit, source_commit);
    assert_int_equal(strncmp(e.git_commit, source_commit, strlen(source_commit)), 0);
    const char *rest = e.git_commit + strlen(source_commit);
    assert_true(strcmp(rest, "") == 0 || strcmp(rest, "-dirty") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_append_truncates_on_resume),
        cmocka_unit_test(test_eval_history),
        cmocka_unit_test(test_h5dump_and_png),
        cmocka_unit_test(test_failed_write_leaves_nothing),
        cmocka_unit_test(test_rewrite_is_atomic),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_string_types),
        cmocka_unit_test(test_env_detect),
    };
    const char *only = getenv("TEST_FILTER"); /* e.g. TEST_FILTER=test_roundtrip */
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
