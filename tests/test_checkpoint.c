/* Checkpoints: bitwise round trip of parameters, moments, Q, step and train
 * state; resuming continues bitwise like the uninterrupted run; corrupt,
 * truncated, foreign-config and leftover temporary files are refused or
 * skipped with a reason; pruning; failed saves leave nothing behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config/config_fields.h"
#include "core/objective/objective.h"
#include "core/vit/model.h"
#include "core/data/rng.h"
#include "core/optim/update.h"
#include "tests/step_util.h"
#include "io/checkpoint.h"

#include "tests/fs_util.h"

enum { B = 4 };
#define SEED 1234u

/* ------------------------------------------------------------------------
 * Helpers */

static mimae_config_t small_config(void)
{
    mimae_config_t c;
    assert_int_equal(mimae_config_preset(&c, "test-small"), 0);
    c.global_batch = B;
    c.warmup_iters = 2;
    c.total_iters = 100;
    return c;
}

static mimae_model_t *new_model(const mimae_config_t *c, uint64_t seed)
{
    char err[256];
    mimae_model_t *m = mimae_model_create(c, B, seed, err, sizeof err);
    if (!m) fail_msg("%s", err);
    return m;
}

static float *random_images(const mimae_config_t *c, uint64_t seed)
{
    size_t n = (size_t)B * c->img_h * c->img_w * c->channels;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
    return x;
}

/* Steps `first`..`first+count-1` of a run: masks for images first*B.. */
static void train(mimae_model_t *m, const float *images, long first, int count)
{
    train_step_t step;
    char err[256];
    if (single_step_init(&step, m, err, sizeof err)) fail_msg("step: %s", err);
    for (int s = 0; s < count; s++) {
        uint64_t idx[B];
        for (int b = 0; b < B; b++) idx[b] = (uint64_t)((first + s) * B + b);
        mimae_sample_masks(m, SEED, 0, idx);
        mimae_step_stats_t st;
        if (single_step_run(&step, images, &st, err, sizeof err)) fail_msg("step: %s", err);
    }
    train_step_free(&step);
}

/* Fills every tensor of a block (not the padding) with a pattern. */
static void fill_tensors(const param_table_t *t, float *base, float scale, float offset)
{
    for (int i = 0; i < t->count; i++)
        for (size_t j = 0; j < t->info[i].count; j++)
            base[t->info[i].offset + j] = offset + scale * (float)((i * 31 + (int)j) % 97);
}

static int blocks_equal(const mimae_model_t *a, const mimae_model_t *b)
{
    const size_t np = a->table.total * sizeof(float), nq = a->q_table.total * sizeof(float);
    return a->table.total == b->table.total && a->q_table.total == b->q_table.total &&
           memcmp(a->param_mem, b->param_mem, np) == 0 && memcmp(a->m_mem, b->m_mem, np) == 0 &&
           memcmp(a->v_mem, b->v_mem, np) == 0 &&
           memcmp(a->q_param_mem, b->q_param_mem, nq) == 0 &&
           memcmp(a->q_m_mem, b->q_m_mem, nq) == 0 && memcmp(a->q_v_mem, b->q_v_mem, nq) == 0;
}

/* A copy of every block of m, to show that a failed load changes nothing. */
typedef struct {
    float *mem;
    size_t np, nq;
    long step;
} snapshot_t;

static snapshot_t snapshot(const mimae_model_t *m)
{
    snapshot_t s = {NULL, m->table.total, m->q_table.total, m->step};
    s.mem = malloc(3 * (s.np + s.nq) * sizeof(float));
    assert_non_null(s.mem);
    float *p = s.mem;
    memcpy(p, m->param_mem, s.np * 4), p += s.np;
    memcpy(p, m->m_mem, s.np * 4), p += s.np;
    memcpy(p, m->v_mem, s.np * 4), p += s.np;
    memcpy(p, m->q_param_mem, s.nq * 4), p += s.nq;
    memcpy(p, m->q_m_mem, s.nq * 4), p += s.nq;
    memcpy(p, m->q_v_mem, s.nq * 4);
    return s;
}

static void assert_unchanged(const snapshot_t *s, const mimae_model_t *m)
{
    const float *p = s->mem;
    assert_memory_equal(p, m->param_mem, s->np * 4), p += s->np;
    assert_memory_equal(p, m->m_mem, s->np * 4), p += s->np;
    assert_memory_equal(p, m->v_mem, s->np * 4), p += s->np;
    assert_memory_equal(p, m->q_param_mem, s->nq * 4), p += s->nq;
    assert_memory_equal(p, m->q_m_mem, s->nq * 4), p += s->nq;
    assert_memory_equal(p, m->q_v_mem, s->nq * 4);
    assert_int_equal(s->step, m->step);
}

static void save_or_fail(const char *path, const mimae_model_t *m, const train_state_t *st)
{
    char err[512];
    if (checkpoint_save(path, m, st, err, sizeof err)) fail_msg("save: %s", err);
}

/* Runs find_latest with stderr captured into `captured`. */
static int find_latest_captured(const char *dir, char *path, size_t len, char *err,
                                size_t errlen, char *captured, size_t caplen)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    int rc = checkpoint_find_latest(dir, path, len, err, errlen);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(captured, 1, caplen - 1, tmp);
    captured[n] = 0;
    fclose(tmp);
    fprintf(stderr, "%s", captured); /* still shown in the test log */
    return rc;
}

/* Flips one byte in the middle of dataset `name`'s data in the file. */
static void flip_byte_in_dataset(const char *path, const char *name)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    haddr_t off = H5Dget_offset(ds);
    hsize_t bytes = H5Dget_storage_size(ds);
    H5Dclose(ds);
    H5Fclose(f);
    assert_true(off != HADDR_UNDEF && bytes > 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    off_t at = (off_t)(off + bytes / 2);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* ------------------------------------------------------------------------
 * Tests */

/* save -> load into a model made with another seed: everything bitwise equal. */
static void test_roundtrip(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 1), *b = new_model(&c, 2);
    fill_tensors(&a->table, a->m_mem, 0.001f, -0.03f);
    fill_tensors(&a->table, a->v_mem, 0.0001f, 0.0f);
    fill_tensors(&a->q_table, a->q_m_mem, -0.002f, 0.01f);
    fill_tensors(&a->q_table, a->q_v_mem, 0.0003f, 1e-6f);
    a->step = 7;
    train_state_t st = {7, 2, 3, 0xdeadbeefcafef00dull}, got = {0, 0, 0, 0};
    checkpoint_path(path, sizeof path, dir, a->step);
    assert_non_null(strstr(path, "/ckpt-0000000007.h5"));
    save_or_fail(path, a, &st);
    assert_int_equal(count_entries(dir), 1); /* no temporary left */
    assert_false(blocks_equal(a, b));

    if (checkpoint_load(path, b, &got, err, sizeof err)) fail_msg("load: %s", err);
    assert_true(blocks_equal(a, b));
    assert_int_equal(b->step, 7);
    assert_int_equal(got.step, st.step);
    assert_int_equal(got.epoch, st.epoch);
    assert_int_equal(got.epoch_step, st.epoch_step);
    assert_true(got.seed == st.seed);

    if (checkpoint_verify(path, err, sizeof err)) fail_msg("verify: %s", err);
    mimae_config_t stored;
    if (checkpoint_read_config(path, &stored, err, sizeof err)) fail_msg("config: %s", err);
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char x[64], y[64];
        config_field_format(f, &stored, x, sizeof x);
        config_field_format(f, &c, y, sizeof y);
        if (strcmp(x, y)) fail_msg("config %s.%s: stored %s, model %s", f->section, f->key, x, y);
    }
    /* the state must match the model */
    train_state_t wrong = {8, 0, 0, 0};
    assert_int_equal(checkpoint_save(path, a, &wrong, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "step"));
    mimae_model_free(a);
    mimae_model_free(b);
    remove_tree(dir);
}

/* A trained model round-trips and continues bitwise like the run that was
 * never interrupted. */
static void test_resume_is_bitwise(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    float *images = random_images(&c, 99);
    mimae_model_t *a = new_model(&c, 5), *b = new_model(&c, 6);
    train(a, images, 0, 3);
    assert_int_equal(a->step, 3);
    train_state_t st = {a->step, 0, 3, SEED};
    checkpoint_path(path, sizeof path, dir, a->step);
    save_or_fail(path, a, &st);
    train_state_t got;
    if (checkpoint_load(path, b, &got, err, sizeof err)) fail_msg("load: %s", err);
    assert_int_equal(b->step, 3);
    assert_true(blocks_equal(a, b));
    train(a, images, 3, 2);
    train(b, images, 3, 2);
    assert_int_equal(a->step, 5);
    assert_int_equal(b->step, 5);
    assert_memory_equal(a->param_mem, b->param_mem, a->table.total * sizeof(float));
    assert_memory_equal(a->q_param_mem, b->q_param_mem, a->q_table.total * sizeof(float));
    assert_true(blocks_equal(a, b));
    free(images);
    mimae_model_free(a);
    mimae_model_free(b);
    remove_tree(dir);
}

/* One flipped byte inside a tensor fails the checksum; find_latest skips the
 * file (saying why) and returns the older valid one; load refuses it and
 * leaves the model untouched. */
static void test_bitflip_is_skipped(void **state)
{
    (void)state;
    char dir[512], p1[1024], p2[1024], found[1024], err[512], cap[4096];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3), *b = new_model(&c, 4);
    a->step = 100;
    train_state_t st = {100, 1, 0, SEED};
    checkpoint_path(p1, sizeof p1, dir, 100);
    save_or_fail(p1, a, &st);
    a->step = 200, st.step = 200;
    a->param_mem[0] += 1.0f;
    checkpoint_path(p2, sizeof p2, dir, 200);
    save_or_fail(p2, a, &st);
    flip_byte_in_dataset(p2, "/adam_v/blocks.1.mlp.fc1.weight");

    assert_int_equal(checkpoint_verify(p2, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "checksum mismatch"));
    assert_non_null(strstr(err, p2));

    snapshot_t snap = snapshot(b);
    assert_int_equal(checkpoint_load(p2, b, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum mismatch"));
    assert_unchanged(&snap, b);
    free(snap.mem);

    int rc = find_latest_captured(dir, found, sizeof found, err, sizeof err, cap, sizeof cap);
    assert_int_equal(rc, 1);
    assert_string_equal(found, p1);
    assert_non_null(strstr(cap, "mimae: skipping "));
    assert_non_null(strstr(cap, p2));
    assert_non_null(strstr(cap, "checksum mismatch"));
    assert_null(strstr(cap, p1));
    mimae_model_free(a);
    mimae_model_free(b);
    remove_tree(dir);
}

/* A file truncated to half its size is skipped in favour of the older one. */
static void test_truncated_is_skipped(void **state)
{
    (void)state;
    char dir[512], p1[1024], p2[1024], found[1024], err[512], cap[4096];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3);
    train_state_t st = {0, 0, 0, SEED};
    a->step = st.step = 10;
    checkpoint_path(p1, sizeof p1, dir, 10);
    save_or_fail(p1, a, &st);
    a->step = st.step = 20;
    checkpoint_path(p2, sizeof p2, dir, 20);
    save_or_fail(p2, a, &st);
    struct stat sb;
    assert_int_equal(stat(p2, &sb), 0);
    assert_int_equal(truncate(p2, sb.st_size / 2), 0);

    assert_int_equal(checkpoint_verify(p2, err, sizeof err), -1);
    printf("  %s\n", err);
    int rc = find_latest_captured(dir, found, sizeof found, err, sizeof err, cap, sizeof cap);
    assert_int_equal(rc, 1);
    assert_string_equal(found, p1);
    assert_non_null(strstr(cap, "mimae: skipping "));
    assert_non_null(strstr(cap, p2));
    mimae_model_free(a);
    remove_tree(dir);
}

/* A checkpoint of another config is refused, naming the field, and the
 * target model is untouched. */
static void test_other_config_is_refused(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config(), c2 = c;
    c2.enc_dim = 64;
    mimae_model_t *a = new_model(&c, 3), *b = new_model(&c2, 4);
    train_state_t st = {0, 0, 0, SEED};
    checkpoint_path(path, sizeof path, dir, 0);
    save_or_fail(path, a, &st);
    b->step = 42;
    snapshot_t snap = snapshot(b);
    train_state_t got = {-1, -1, -1, 0};
    assert_int_equal(checkpoint_load(path, b, &got, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "enc_dim"));
    assert_non_null(strstr(err, "32"));
    assert_non_null(strstr(err, "64"));
    assert_non_null(strstr(err, "another model config"));
    assert_unchanged(&snap, b);
    assert_int_equal(got.step, -1);
    free(snap.mem);
    mimae_model_free(b);

    /* a field that changes no shape is refused as well */
    mimae_config_t c3 = c;
    c3.tau = 0.2f;
    b = new_model(&c3, 4);
    assert_int_equal(checkpoint_load(path, b, NULL, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "mimae.tau"));
    mimae_model_free(b);
    mimae_model_free(a);
    remove_tree(dir);
}

/* Leftover temporaries and names outside the exact pattern are ignored. */
static void test_leftovers_are_ignored(void **state)
{
    (void)state;
    char dir[512], path[1024], found[1024], err[512], cap[4096], junk[1024];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3);
    train_state_t st = {5, 0, 5, SEED};
    a->step = 5;
    checkpoint_path(path, sizeof path, dir, 5);
    save_or_fail(path, a, &st);
    const char *names[] = {"ckpt-0000000009.h5.tmp-123", "ckpt-12.h5", "ckpt-00000000010.h5",
                           "ckpt-000000001x.h5", "xckpt-0000000011.h5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(junk, sizeof junk, "%s/%s", dir, names[i]);
        FILE *f = fopen(junk, "wb");
        assert_non_null(f);
        fputs("half a checkpoint", f);
        fclose(f);
    }
    int rc = find_latest_captured(dir, found, sizeof found, err, sizeof err, cap, sizeof cap);
    assert_int_equal(rc, 1);
    assert_string_equal(found, path);
    assert_string_equal(cap, ""); /* nothing to skip: the leftovers are not candidates */
    assert_int_equal(checkpoint_prune(dir, 1, &c, &st, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 6); /* prune leaves non-checkpoints alone */
    mimae_model_free(a);
    remove_tree(dir);
}

/* Newest first; prune keeps the newest K by step. */
static void test_prune_keeps_newest(void **state)
{
    (void)state;
    char dir[512], path[1024], found[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3);
    assert_int_equal(checkpoint_find_latest(dir, found, sizeof found, err, sizeof err), 0);
    const long steps[] = {30, 5, 1000, 400, 20};
    for (int i = 0; i < 5; i++) {
        train_state_t st = {steps[i], 0, 0, SEED};
        a->step = steps[i];
        checkpoint_path(path, sizeof path, dir, steps[i]);
        save_or_fail(path, a, &st);
    }
    assert_int_equal(checkpoint_find_latest(dir, found, sizeof found, err, sizeof err), 1);
    checkpoint_path(path, sizeof path, dir, 1000);
    assert_string_equal(found, path);

    const train_state_t at = {1000, 0, 0, SEED};
    assert_int_equal(checkpoint_prune(dir, 0, &c, &at, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_int_equal(count_entries(dir), 5);
    assert_int_equal(checkpoint_prune(dir, 2, &c, &at, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 2);
    checkpoint_path(path, sizeof path, dir, 1000);
    assert_int_equal(access(path, F_OK), 0);
    checkpoint_path(path, sizeof path, dir, 400);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(checkpoint_prune(dir, 3, &c, &at, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 2);
    mimae_model_free(a);
    remove_tree(dir);
}

/* Pruning counts only this run's whole checkpoints (issue 17, class 1): with
 * keep = 1, junk bytes named for step 9999, another config's valid
 * checkpoint at step 900 and another seed's at 800 must not push out ckpt-50,
 * nor may a truncated ckpt-60 (newer than it) or a valid ckpt-70 of this run
 * beyond the step the run stands at. Only what is older than the newest good
 * one goes, and with keep larger than the good ones nothing goes. */
static void test_prune_counts_only_verified_checkpoints_of_the_run(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config(), other = c;
    other.tau = 0.5f;
    mimae_model_t *a = new_model(&c, 3), *b = new_model(&other, 3);
    const long ours[] = {10, 20, 50, 60, 70};
    for (int i = 0; i < 5; i++) {
        train_state_t st = {ours[i], 0, 0, SEED};
        a->step = ours[i];
        checkpoint_path(path, sizeof path, dir, ours[i]);
        save_or_fail(path, a, &st);
    }
    train_state_t st = {900, 0, 0, SEED};
    b->step = 900;
    checkpoint_path(path, sizeof path, dir, 900);
    save_or_fail(path, b, &st);
    st = (train_state_t){800, 0, 0, SEED + 1};
    a->step = 800;
    checkpoint_path(path, sizeof path, dir, 800);
    save_or_fail(path, a, &st);
    checkpoint_path(path, sizeof path, dir, 60);
    assert_int_equal(truncate(path, 2000), 0);
    checkpoint_path(path, sizeof path, dir, 9999);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++) fputc((i * 7919) & 0xff, f);
    assert_int_equal(fclose(f), 0);

    const train_state_t at = {65, 0, 0, SEED};
    assert_int_equal(checkpoint_prune(dir, 3, &c, &at, err, sizeof err), 0);
    assert_int_equal(count_entries(dir), 8); /* 3 good ones up to 65 exist: 10, 20, 50 */
    assert_int_equal(checkpoint_prune(dir, 1, &c, &at, err, sizeof err), 0);
    const long left[] = {50, 60, 70, 800, 900, 9999};
    assert_int_equal(count_entries(dir), 6);
    for (int i = 0; i < 6; i++) {
        checkpoint_path(path, sizeof path, dir, left[i]);
        if (access(path, F_OK)) fail_msg("%s was removed", path);
    }
    mimae_model_free(a);
    mimae_model_free(b);
    remove_tree(dir);
}

/* Saving into a missing directory fails with a message and creates nothing;
 * a directory that cannot be read is an error for find_latest. */
static void test_missing_directory(void **state)
{
    (void)state;
    char dir[512], sub[1024], path[1100], found[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    snprintf(sub, sizeof sub, "%s/nope", dir);
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3);
    train_state_t st = {0, 0, 0, SEED};
    checkpoint_path(path, sizeof path, sub, 0);
    assert_int_equal(checkpoint_save(path, a, &st, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(count_entries(dir), 0);
    assert_int_equal(checkpoint_find_latest(sub, found, sizeof found, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, sub));
    mimae_model_free(a);
    remove_tree(dir);
}

/* A save that fails half-way (the file size limit plays a full disk) removes
 * its temporary and leaves the previous checkpoint at PATH intact. */
static void test_failed_save_keeps_old_file(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t c = small_config();
    mimae_model_t *a = new_model(&c, 3), *b = new_model(&c, 4);
    train_state_t st = {1, 0, 1, SEED};
    a->step = 1;
    checkpoint_path(path, sizeof path, dir, 1);
    save_or_fail(path, a, &st);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);

    mimae_model_t *big = b; /* same config; other parameters */
    big->step = 1;
    file_size_limit_t lim;
    file_size_limit_set(&lim, before.st_size / 4);
    int rc = checkpoint_save(path, big, &st, err, sizeof err);
    file_size_limit_restore(&lim);
    assert_int_equal(rc, -1);
    printf("  %s\n", err);
    assert_int_equal(count_entries(dir), 1); /* the temporary is gone */
    if (checkpoint_verify(path, err, sizeof err)) fail_msg("old file damaged: %s", err);
    mimae_model_t *r = new_model(&c, 9);
    if (checkpoint_load(path, r, NULL, err, sizeof err)) fail_msg("%s", err);
    assert_true(blocks_equal(a, r)); /* still the first model's checkpoint */
    mimae_model_free(r);
    mimae_model_free(a);
    mimae_model_free(b);
    remove_tree(dir);
}

/* Files that are not checkpoints are refused with a reason. */
static void test_not_a_checkpoint(void **state)
{
    (void)state;
    char dir[512], path[1024], err[512];
    make_tmpdir(dir, sizeof dir, "mimae-ckpt");
    mimae_config_t cfg;
    assert_int_equal(checkpoint_read_config("/nonexistent/ckpt.h5", &cfg, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "No such file"));
    /* an HDF5 file with another format attribute */
    snprintf(path, sizeof path, "%s/other.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 13);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format", t, s, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(a, t, "mimae-results") >= 0);
    H5Aclose(a), H5Sclose(s), H5Tclose(t), H5Fclose(f);
    assert_int_equal(checkpoint_verify(path, err, sizeof err), -1);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "not a mimae checkpoint"));
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_resume_is_bitwise),
        cmocka_unit_test(test_bitflip_is_skipped),
        cmocka_unit_test(test_truncated_is_skipped),
        cmocka_unit_test(test_other_config_is_refused),
        cmocka_unit_test(test_leftovers_are_ignored),
        cmocka_unit_test(test_prune_keeps_newest),
        cmocka_unit_test(test_prune_counts_only_verified_checkpoints_of_the_run),
        cmocka_unit_test(test_missing_directory),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_not_a_checkpoint),
    };
    const char *only = getenv("TEST_FILTER"); /* e.g. TEST_FILTER=test_roundtrip */
    if (only && *only) cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
