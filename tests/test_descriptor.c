/* Experiment descriptors (experiments/descriptor.c): defaults and the preset
 * applied first, --set overrides, the schedule derived from the data set
 * size, one-line errors naming file, line and key, the write -> load round
 * trip, and the key reference. Descriptor files go to a temporary directory
 * (make_tmpdir: $TMPDIR, else /tmp). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiments/descriptor.h"
#include "fs_util.h"

static char dir[64];

/* Writes `text` to dir/name and returns the path (static, one per slot). */
static const char *write_text(const char *name, const char *text)
{
    static char paths[4][256];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("message \"%s\" does not contain \"%s\"", text, part);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(dir, sizeof dir, "mimae_descriptor");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"exp.ini", "bad.ini", "rt.ini", "out.ini", "out2.ini", "x.ini"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

static descriptor_t *new_descriptor(void)
{
    descriptor_t *d = malloc(sizeof *d);
    assert_non_null(d);
    return d;
}

static void test_defaults(void **state)
{
    (void)state;
    descriptor_t *d = new_descriptor();
    char err[2048];
    const char *path = write_text("exp.ini", "# only the data\n[data]\ntrain = /data/fmnist.h5\n");
    if (descriptor_load(d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);

    mimae_config_t preset;
    mimae_config_preset(&preset, "fmnist-tiny");
    assert_memory_equal(&d->model, &preset, sizeof preset);
    const run_config_t *r = &d->run;
    assert_string_equal(r->preset, "fmnist-tiny");
    assert_string_equal(r->train_data, "/data/fmnist.h5");
    assert_string_equal(r->test_data, "");
    assert_int_equal(r->train_limit, 0);
    assert_int_equal(r->test_limit, 0);
    assert_string_equal(r->name, "exp");
    assert_string_equal(r->out_dir, "runs/exp");
    assert_int_equal(r->seed, 0);
    assert_int_equal(r->epochs, 10);
    assert_int_equal(r->max_steps, 0);
    assert_int_equal(r->micro_batch, 0);
    assert_int_equal(r->reduction, REDUCTION_AUTO);
    assert_int_equal(r->augment, 1);
    assert_true(r->warmup_epochs == 1.0);
    assert_int_equal(r->checkpoint_every, 500);
    assert_int_equal(r->keep_checkpoints, 2);
    assert_int_equal(r->log_every, 10);
    assert_int_equal(r->recon_samples, 8);
    assert_int_equal(r->eval_every_epochs, 0);
    assert_int_equal(r->eval_linear_probe, 1);
    assert_int_equal(r->eval_knn, 1);
    assert_int_equal(r->eval_mi, 1);
    assert_int_equal(r->eval_finetune, 0);
    assert_int_equal(d->sweep_count, 0);
    assert_string_equal(d->path, path);

    /* An empty file is all defaults when not training (train_images = -1). */
    path = write_text("x.ini", "");
    if (descriptor_load(d, path, NULL, 0, -1, err, sizeof err)) fail_msg("%s", err);
    assert_memory_equal(&d->model, &preset, sizeof preset);
    assert_string_equal(d->run.name, "x");

    /* Indentation, CRLF, comments, blanks in headers, true/false switches. */
    path = write_text("x.ini", "  [ model ]   ; the model\r\n"
                               "    enc_dim = 96 ; inline comment\r\n"
                               "\t# a comment\r\n"
                               "[eval]\n  finetune = yes\n  knn = False\n"
                               "[data]\ntrain = /d.h5\n");
    if (descriptor_load(d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.enc_dim, 96);
    assert_int_equal(d->run.eval_finetune, 1);
    assert_int_equal(d->run.eval_knn, 0);
    free(d);
}

static void test_preset_applied_first(void **state)
{
    (void)state;
    descriptor_t *d = new_descriptor();
    char err[2048];
    const char *path = write_text("exp.ini", "[model]\nenc_dim = 64\nenc_heads = 4\n"
                                             "preset = test-small\n"
                                             "[mimae]\nnum_masks = 2\n"
                                             "[data]\ntrain = /d.h5\n");
    if (descriptor_load(d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    mimae_config_t small;
    mimae_config_preset(&small, "test-small");
    assert_int_equal(d->model.img_h, small.img_h); /* from the preset */
    assert_int_equal(d->model.dec_dim, small.dec_dim);
    assert_int_equal(d->model.global_batch, small.global_batch);
    assert_int_equal(d->model.enc_dim, 64); /* set before the preset line, kept */
    assert_int_equal(d->model.enc_heads, 4);
    assert_int_equal(d->model.num_masks, 2);
    assert_string_equal(d->run.preset, "test-small");
    free(d);
}

static void test_overrides_win(void **state)
{
    (void)state;
    descriptor_t *d = new_descriptor();
    char err[2048];
    const char *path = write_text("exp.ini", "[model]\npreset = vit-b16\nenc_dim = 64\n"
                                             "enc_heads = 4\n"
                                             "[mimae]\nmask_ratio = 0.5\nnum_masks = 1\n"
                                             "[data]\ntrain = /file.h5\n"
                                             "[train]\naugment = 1\n");
    const char *sets[] = {"mimae.mask_ratio=0.9", "train.augment = false",
                          "model.preset=test-small", "data.train=/override.h5",
                          "mimae.num_masks=2", "mimae.num_masks=3"};
    if (descriptor_load(d, path, sets, 6, 0, err, sizeof err)) fail_msg("%s", err);
    assert_true(d->model.mask_ratio == 0.9);
    assert_int_equal(d->run.augment, 0);
    assert_int_equal(d->model.img_h, 16);   /* the --set preset replaced vit-b16 */
    assert_int_equal(d->model.enc_dim, 64); /* the file's keys still apply over it */
    assert_string_equal(d->run.preset, "test-small");
    assert_string_equal(d->run.train_data, "/override.h5");
    assert_int_equal(d->model.num_masks, 3); /* the last --set wins */

    /* descriptor_set on its own. */
    assert_int_equal(descriptor_set(d, "mimae.tau=0.2", err, sizeof err), 0);
    assert_true(d->model.tau == 0.2f);
    assert_int_equal(descriptor_set(d, "mimae.tau=0.2x", err, sizeof err), -1);
    assert_contains(err, "--set mimae.tau = '0.2x'");
    assert_true(d->model.tau == 0.2f); /* untouched */
    assert_int_equal(descriptor_set(d, "mimae.mask_ration=0.5", err, sizeof err), -1);
    assert_contains(err, "did you mean mimae.mask_ratio?");
    assert_int_equal(descriptor_set(d, "mask_ratio", err, sizeof err), -1);
    assert_contains(err, "expected section.key=value");
    assert_int_equal(descriptor_set(d, "sweep.mimae.tau=0.1,0.2", err, sizeof err), -1);
    assert_contains(err, "[sweep]");
    assert_int_equal(descriptor_set(d, "model.preset=vit-b16", err, sizeof err), 0);
    assert_int_equal(d->model.img_h, 224); /* a preset resets the model */
    assert_int_equal(d->model.enc_dim, 768);
    free(d);
}

static void test_schedule_derivation(void **state)
{
    (void)state;
    descriptor_t *d = new_descriptor();
    char err[2048];
    const char *path = write_text("exp.ini", "[data]\ntrain = /d.h5\n");
    /* fmnist-tiny: global_batch 64; 60000 images -> 937 steps per epoch. */
    if (descriptor_load(d, path, NULL, 0, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.total_iters, 10 * 937);
    assert_int_equal(d->model.warmup_iters, 937);

    const char *half[] = {"optim.warmup_epochs=0.5"};
    if (descriptor_load(d, path, half, 1, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.warmup_iters, 469); /* round(468.5) */

    /* train_limit, when smaller, is the data set size. */
    const char *limit[] = {"data.train_limit=6400", "optim.warmup_epochs=0.5",
                           "train.epochs=3"};
    if (descriptor_load(d, path, limit, 3, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.total_iters, 300);
    assert_int_equal(d->model.warmup_iters, 50);
    const char *big_limit[] = {"data.train_limit=100000"};
    if (descriptor_load(d, path, big_limit, 1, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.total_iters, 9370);

    /* Explicit values win, in the file or through --set. */
    path = write_text("exp.ini", "[data]\ntrain = /d.h5\n[optim]\ntotal_iters = 5000\n");
    const char *warm[] = {"optim.warmup_iters=7"};
    if (descriptor_load(d, path, warm, 1, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.total_iters, 5000);
    assert_int_equal(d->model.warmup_iters, 7);

    /* An explicit warmup_iters alone wins, and total_iters is still derived
     * from the epochs; before the size is known (0, -1) it loads too (it
     * was refused against the placeholder total_iters = 1). */
    path = write_text("exp.ini", "[data]\ntrain = /d.h5\n[optim]\nwarmup_iters = 100\n");
    for (long images = -1; images <= 0; images++) {
        if (descriptor_load(d, path, NULL, 0, images, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(d->model.warmup_iters, 100);
    }
    if (descriptor_load(d, path, NULL, 0, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.warmup_iters, 100);
    assert_int_equal(d->model.total_iters, 10 * 937);
    const char *warm_set[] = {"optim.warmup_iters=50", "train.epochs=2"};
    path = write_text("exp.ini", "[data]\ntrain = /d.h5\n");
    if (descriptor_load(d, path, warm_set, 2, 6400, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(d->model.warmup_iters, 50);
    assert_int_equal(d->model.total_iters, 200);
    /* ... and a warmup longer than the derived schedule is still an error. */
    const char *too_long[] = {"optim.warmup_iters=500", "train.epochs=2"};
    assert_int_equal(descriptor_load(d, path, too_long, 2, 6400, err, sizeof err), -1);
    assert_contains(err, "optim.warmup_iters = 500, total_iters = 200");

    /* train_images = 0: nothing derived (the preset's values stay). */
    path = write_text("exp.ini", "[data]\ntrain = /d.h5\n");
    if (descriptor_load(d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    mimae_config_t preset;
    mimae_config_preset(&preset, "fmnist-tiny");
    assert_int_equal(d->model.total_iters, preset.total_iters);
    assert_int_equal(d->model.warmup_iters, preset.warmup_iters);

    /* Fewer images than one global batch. */
    assert_int_equal(descriptor_load(d, path, NULL, 0, 10, err, sizeof err), -1);
    assert_contains(err, "exp.ini");
    assert_contains(err, "train.global_batch");

    /* -1 (not training) needs no training set; 0 does. */
    path = write_text("exp.ini", "[data]\ntest = /t.h5\n");
    if (descriptor_load(d, path, NULL, 0, -1, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(descriptor_load(d, path, NULL, 0, 0, err, sizeof err), -1);
    assert_contains(err, "exp.ini");
    assert_contains(err, "data.train");
    assert_int_equal(descriptor_load(d, path, NULL, 0, -2, err, sizeof err), -1);
    assert_contains(err, "train_images");
    free(d);
}

typedef struct {
    const char *text;        /* descriptor contents (NULL: no file) */
    const char *set;         /* one override or NULL */
    const char *expect[3];   /* substrings of the message */
} bad_case_t;

static void test_errors(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        {"[data]\ntrain = /d.h5\n[modle]\nenc_dim = 64\n", NULL,
         {"bad.ini:3: [modle]: unknown section (did you mean [model]?)"}},
        {"[data]\ntrain = /d.h5\n[zzzzzz]\n", NULL, {"bad.ini:3: [zzzzzz]", "[mimae]"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nmask_ration = 0.9\n", NULL,
         {"bad.ini:4: [mimae] mask_ration: unknown key (did you mean mask_ratio?)"}},
        {"[data]\ntrain = /d.h5\n[model]\nnum_masks = 2\n", NULL,
         {"bad.ini:4: [model] num_masks: unknown key (did you mean [mimae] num_masks?)"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nzzzzzzzz = 1\n", NULL,
         {"bad.ini:4: [mimae] zzzzzzzz: unknown key", "mask_ratio"}},
        {"[mimae]\nmask_ratio = 0.75\n\nmask_ratio = 0.8\n[data]\ntrain = /d.h5\n", NULL,
         {"bad.ini:4: [mimae] mask_ratio: duplicate key (first on line 2)"}},
        {"[model]\npreset = test-small\npreset = vit-b16\n[data]\ntrain = /d.h5\n", NULL,
         {"bad.ini:3: [model] preset: duplicate key"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nmask_ratio = 0.7x\n", NULL,
         {"bad.ini:4: mimae.mask_ratio = '0.7x': not a finite number"}},
        {"[data]\ntrain = /d.h5\n[mimae]\ntau = nan\n", NULL,
         {"bad.ini:4: mimae.tau = 'nan'"}},
        {"[data]\ntrain = /d.h5\n[optim]\nblr = inf\n", NULL, {"bad.ini:4: optim.blr = 'inf'"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nmask_ratio = 1e999\n", NULL,
         {"bad.ini:4: mimae.mask_ratio = '1e999'"}},
        {"[data]\ntrain = /d.h5\n[model]\nenc_depth = 3 # six is too many\n", NULL,
         {"bad.ini:4: model.enc_depth = '3 # six is too many'", "inline comments"}},
        {"[data]\ntrain = /d.h5\n[mimae]\npool = max\n", NULL,
         {"bad.ini:4: mimae.pool = 'max': use one of mean, cls"}},
        {"[data]\ntrain = /d.h5\n[train]\nreduction = quick\n", NULL,
         {"bad.ini:4: train.reduction = 'quick'", "deterministic, fast, auto"}},
        {"[data]\ntrain = /d.h5\n[train]\naugment = 2\n", NULL,
         {"bad.ini:4: train.augment = '2': not a switch"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nnum_masks = 8\n", NULL,
         {"bad.ini: ", "mimae.num_masks"}},
        {"[data]\ntrain = /d.h5\n[model]\npatch = 5\n", NULL, {"bad.ini: ", "model.patch"}},
        {"[data]\ntrain = /d.h5\n[train]\nglobal_batch = 0\n", NULL,
         {"bad.ini:4: train.global_batch = '0': must be >= 1"}},
        {"[data]\ntrain = /d.h5\n[train]\nmicro_batch = 48\n", NULL,
         {"bad.ini: ", "train.micro_batch = 48 does not divide train.global_batch = 64"}},
        {"[data]\ntrain = /d.h5\n[train]\nepochs = 0\n", NULL,
         {"bad.ini:4: train.epochs = '0': must be >= 1"}},
        {"[data]\ntrain = /d.h5\n[run]\nkeep_checkpoints = 0\n", NULL,
         {"bad.ini:4: run.keep_checkpoints = '0'"}},
        {"[data]\ntrain = /d.h5\n[run]\nlog_every = -1\n", NULL, {"bad.ini:4: run.log_every"}},
        {"[data]\ntrain = /d.h5\n[run]\nname = a/b\n", NULL, {"bad.ini:4: run.name = 'a/b'"}},
        {"[data]\ntrain = /d.h5\n[optim]\nwarmup_epochs = 20\n", NULL,
         {"bad.ini:4: optim.warmup_epochs", "train.epochs"}},
        {"[data]\ntrain = /d.h5\n[model]\npreset = tiny\n", NULL,
         {"bad.ini:4: model.preset = 'tiny': unknown preset"}},
        {"[data]\ntrain = /d.h5 # the training set\n", NULL, {"bad.ini:2: data.train = "}},
        {"enc_dim = 64\n[data]\ntrain = /d.h5\n", NULL, {"bad.ini:1: enc_dim", "section"}},
        {"[data]\ntrain\n", NULL, {"bad.ini:2: 'train'"}},
        {"[data]\ntrain = /d.h5\n[sweep]\nmask_ratio = 0.5, 0.75\n", NULL,
         {"bad.ini:4: [sweep] mask_ratio", "section.key"}},
        {"[data]\ntrain = /d.h5\n[sweep]\nmimae.tau = 0.1\nmimae.tau = 0.2\n", NULL,
         {"bad.ini:5: [sweep] mimae.tau: duplicate"}},
        {"[data]\ntrain = /d.h5\n", "mimae.mask_ratio=abc",
         {"bad.ini: --set mimae.mask_ratio = 'abc'"}},
        {"[data]\ntrain = /d.h5\n", "mimae.mask_ration=0.9",
         {"bad.ini: --set mimae.mask_ration = '0.9': unknown key (did you mean "
          "mimae.mask_ratio?)"}},
        {"[data]\ntrain = /d.h5\n", "train.micro_batch=5",
         {"bad.ini: ", "train.micro_batch = 5"}},
        {"[data]\ntrain = /d.h5\n", "train.epochs=0",
         {"bad.ini: --set train.epochs = '0': must be >= 1"}},
        {"[data]\ntrain = /d.h5\n", "model.preset=big", {"bad.ini: --set model.preset = 'big'"}},
        /* Reals that underflow or leave the key's range: named as written,
         * never as the 0 or denormal they would have become. */
        {"[data]\ntrain = /d.h5\n[mimae]\ntau = 1e-40\n", NULL,
         {"bad.ini:4: mimae.tau = '1e-40': must be >= 0.0001", "[0.0001, "}},
        {"[data]\ntrain = /d.h5\n[optim]\neps = 1e-46\n", NULL,
         {"bad.ini:4: optim.eps = '1e-46': must be >= 1e-15"}},
        {"[data]\ntrain = /d.h5\n[mimae]\nw_min = 1e-40\n", NULL,
         {"bad.ini:4: mimae.w_min = '1e-40': too small to be held as a float", "use 0"}},
        {"[data]\ntrain = /d.h5\n", "optim.blr=-0.5e-45",
         {"bad.ini: --set optim.blr = '-0.5e-45'"}},
        {"[data]\ntrain = /d.h5\n", "optim.blr=1e-45",
         {"bad.ini: --set optim.blr = '1e-45': too small", "use a magnitude of at least"}},
        {"[data]\ntrain = /d.h5\n", "optim.min_lr=1e-39",
         {"bad.ini: --set optim.min_lr = '1e-39': too small to be held as a float"}},
        {"[data]\ntrain = /d.h5\n[optim]\nwarmup_epochs = 4e-320\n", NULL,
         {"bad.ini:4: optim.warmup_epochs = '4e-320': too small to be held as a double"}},
        {"[data]\ntrain = /d.h5\n[eval]\nlabel_smoothing = 1e-400\n", NULL,
         {"bad.ini:4: eval.label_smoothing = '1e-400': too small to be held as a double"}},
        {"[data]\ntrain = /d.h5\n[optim]\nbeta2 = 0.999999999\n", NULL,
         {"bad.ini:4: optim.beta2 = '0.999999999': must be below 1"}},
        {NULL, NULL, {"nonexistent.ini: cannot read the descriptor (No such file"}},
    };
    descriptor_t *d = new_descriptor();
    char err[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case_t *c = &cases[i];
        char path[256];
        if (c->text) snprintf(path, sizeof path, "%s", write_text("bad.ini", c->text));
        else snprintf(path, sizeof path, "%s/nonexistent.ini", dir);
        const char *sets[1] = {c->set};
        err[0] = '\0';
        int rc = descriptor_load(d, path, sets, c->set ? 1 : 0, 0, err, sizeof err);
        if (rc != -1) fail_msg("case %zu was accepted (expected \"%s\")", i, c->expect[0]);
        if (getenv("SHOW_MESSAGES")) print_message("%s\n", err);
        if (strchr(err, '\n')) fail_msg("case %zu: message has several lines: %s", i, err);
        assert_contains(err, path);
        for (int k = 0; k < 3 && c->expect[k]; k++) assert_contains(err, c->expect[k]);
    }

    /* A line longer than libinih's buffer is refused, not cut. */
    char text[512];
    snprintf(text, sizeof text, "[data]\ntrain = /%0300d\n", 0);
    const char *path = write_text("bad.ini", text);
    assert_int_equal(descriptor_load(d, path, NULL, 0, 0, err, sizeof err), -1);
    assert_contains(err, "bad.ini:2:");
    assert_contains(err, "libinih");
    free(d);
}

/* Every field of both structs, compared through the tables and as bytes. */
static void assert_same_descriptor(const descriptor_t *a, const descriptor_t *b)
{
    char ta[128], tb[128];
    for (int i = 0; i < mimae_config_field_count; i++) {
        config_field_format(&mimae_config_fields[i], &a->model, ta, sizeof ta);
        config_field_format(&mimae_config_fields[i], &b->model, tb, sizeof tb);
        if (strcmp(ta, tb))
            fail_msg("%s.%s: %s != %s", mimae_config_fields[i].section,
                     mimae_config_fields[i].key, ta, tb);
    }
    for (int i = 0; i < run_config_field_count; i++) {
        config_field_format(&run_config_fields[i], &a->run, ta, sizeof ta);
        config_field_format(&run_config_fields[i], &b->run, tb, sizeof tb);
        if (strcmp(ta, tb))
            fail_msg("%s.%s: %s != %s", run_config_fields[i].section, run_config_fields[i].key,
                     ta, tb);
    }
    assert_string_equal(a->run.preset, b->run.preset);
    assert_string_equal(a->run.train_data, b->run.train_data);
    assert_string_equal(a->run.test_data, b->run.test_data);
    assert_string_equal(a->run.out_dir, b->run.out_dir);
    assert_string_equal(a->run.name, b->run.name);
    assert_memory_equal(&a->model, &b->model, sizeof a->model);
    assert_memory_equal(&a->run, &b->run, sizeof a->run);
    assert_int_equal(a->sweep_count, b->sweep_count);
    for (int i = 0; i < a->sweep_count; i++) {
        assert_string_equal(a->sweep_keys[i], b->sweep_keys[i]);
        assert_string_equal(a->sweep_values[i], b->sweep_values[i]);
    }
}

static void test_write_load_round_trip(void **state)
{
    (void)state;
    const char *path = write_text(
        "rt.ini",
        "[model]\npreset = test-small\nenc_dim = 48\nenc_heads = 3\n"
        "[mimae]\nmask_ratio = 0.70000000000000007\nnum_masks = 3\ntau = 0.123456789\n"
        "pool = cls\nnorm_pix = no\nclub_contrast = batch\n"
        "[optim]\nblr = 1e-3\neps = 1.2345678e-7\nwarmup_epochs = 0.3\nbeta2 = 0.999\n"
        "[train]\nglobal_batch = 32\nmicro_batch = 8\nseed = 12345\nepochs = 7\n"
        "reduction = fast\naugment = 0\nmax_steps = 150\n"
        "[data]\ntrain = /data/train file.h5\ntest = /data/test.h5\ntrain_limit = 1000\n"
        "[run]\nname = rt-run\ncheckpoint_every = 0\nkeep_checkpoints = 3\nrecon_samples = 0\n"
        "[eval]\nfinetune = true\nknn = 0\nevery_epochs = 2\n"
        "[sweep]\nmimae.mask_ratio = 0.5, 0.75, 0.9\noptim.blr=1e-4 ,2e-4\n");
    const char *sets[] = {"mimae.w_min=0.0123", "run.log_every=3"};
    descriptor_t *a = new_descriptor(), *b = new_descriptor(), *c = new_descriptor();
    char err[2048];
    if (descriptor_load(a, path, sets, 2, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_true(a->model.mask_ratio > 0.7); /* the double after 0.7: needs 17 digits */
    assert_int_equal(a->model.total_iters, 7 * 31); /* 1000 images / 32 */
    assert_int_equal(a->model.warmup_iters, 9);      /* round(0.3 * 31) */
    assert_int_equal(a->sweep_count, 2);
    assert_string_equal(a->sweep_keys[1], "optim.blr");
    assert_string_equal(a->sweep_values[1], "1e-4 ,2e-4"); /* kept as written */
    assert_string_equal(a->run.out_dir, "runs/rt-run");

    char out[256];
    snprintf(out, sizeof out, "%s/out.ini", dir);
    if (descriptor_write(a, out, err, sizeof err)) fail_msg("%s", err);
    /* The schedule is explicit in the written file: any train_images reproduces it. */
    if (descriptor_load(b, out, NULL, 0, 60000, err, sizeof err)) fail_msg("%s", err);
    assert_same_descriptor(a, b);
    if (descriptor_load(b, out, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    assert_same_descriptor(a, b);
    if (descriptor_load(b, out, NULL, 0, 123457, err, sizeof err)) fail_msg("%s", err);
    assert_same_descriptor(a, b);

    /* Defaults round-trip too, and a second write reads back the same again. */
    path = write_text("exp.ini", "[data]\ntrain = /d.h5\n");
    if (descriptor_load(a, path, NULL, 0, 60000, err, sizeof err)) fail_msg("%s", err);
    if (descriptor_write(a, out, err, sizeof err)) fail_msg("%s", err);
    if (descriptor_load(b, out, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    assert_same_descriptor(a, b);
    char out2[256];
    snprintf(out2, sizeof out2, "%s/out2.ini", dir);
    if (descriptor_write(b, out2, err, sizeof err)) fail_msg("%s", err);
    if (descriptor_load(c, out2, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    assert_same_descriptor(a, c);

    /* Real numbers are written short but exact: random floats and doubles. */
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 200; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        a->model.num_masks = 1;
        a->model.mask_ratio = 0.05 + 0.9 * u;
        a->model.tau = (float)(1e-3 + u * 10.0);
        a->model.blr = (float)ldexp(u + 0.5, -(int)(x % 40));
        a->run.warmup_epochs = u * 3.0;
        a->run.epochs = 3;
        if (descriptor_write(a, out, err, sizeof err)) fail_msg("%s", err);
        if (descriptor_load(b, out, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
        assert_same_descriptor(a, b);
    }

    /* A value that could not be read back is refused at write time. */
    snprintf(a->run.test_data, sizeof a->run.test_data, "/x ;y");
    assert_int_equal(descriptor_write(a, out2, err, sizeof err), -1);
    assert_contains(err, "data.test");
    snprintf(a->run.test_data, sizeof a->run.test_data, "/t.h5");
    char missing[256];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.ini", dir);
    assert_int_equal(descriptor_write(a, missing, err, sizeof err), -1);
    assert_contains(err, "cannot write the descriptor");
    free(a);
    free(b);
    free(c);
}

/* Whatever the parser accepts reads back from what the writer writes with
 * the same meaning, and the written text is a fixed point; what could not
 * be written back is refused when read. Each input is a whole file. */
static void test_round_trip_table(void **state)
{
    (void)state;
#define TRAIN "[data]\ntrain = /d.h5\n"
    static const struct {
        const char *text;
        int accepted;
    } cases[] = {
        /* empty list items: "seeds =;;" loaded as ';;' and was written as
         * "seeds = ;;", which reads as an empty value (the fuzzer's find) */
        {TRAIN "[sweep]\nseeds =;;\n", 0},
        {TRAIN "[sweep]\nseeds = ;\n", 0},
        {TRAIN "[sweep]\nseeds = 0,,1\n", 0},
        {TRAIN "[sweep]\nseeds = 0, 1,\n", 0},
        {TRAIN "[sweep]\nseeds =,0\n", 0},
        {TRAIN "[sweep]\nmimae.tau =;0.1\n", 0},
        /* text values that start like a comment */
        {TRAIN "[data]\ntest =;x.h5\n", 0},
        {TRAIN "[data]\ntest =#x.h5\n", 0},
        {TRAIN "[sweep]\ndata.test = a.h5,;b.h5\n", 0},
        {TRAIN "[sweep]\ndata.test = a.h5, #b.h5\n", 0},
        /* keys in another case, unknown or unsweepable sweep keys */
        {TRAIN "[sweep]\nMIMAE.TAU = 0.1, 0.2\n", 0},
        {TRAIN "[sweep]\nSeeds = 0, 1\n", 0},
        {TRAIN "[MODEL]\nenc_dim = 96\n", 0},
        {TRAIN "[model]\nENC_DIM = 96\n", 0},
        {TRAIN "[sweep]\nsweep.seeds = 0, 1\n", 0},
        {TRAIN "[sweep]\nrun.out_dir = a, b\n", 0},
        {TRAIN "[sweep]\nmodel.preset = test-small, vit-b16\n", 0},
        /* the same thing twice */
        {TRAIN "[sweep]\nseeds = 0, 1\ntrain.seed = 2, 3\n", 0},
        {TRAIN "[sweep]\nmimae.tau = 0.1, 0.10\n", 0},
        {TRAIN "[sweep]\nmodel.enc_dim = 96, +96\n", 0},
        /* accepted: quotes, separators and comments inside values */
        {TRAIN "[data]\ntest = \"/q u o.h5\"\n", 1},
        {TRAIN "[data]\ntest = /a=b:c;d#e.h5\n", 1},
        {TRAIN "[data]\ntest = /t.h5 ; a comment\n", 1},
        {TRAIN "[data]\ntest = /t.h5\t;a comment after a tab\n", 1},
        {TRAIN "[data]\ntest =\n", 1},
        {TRAIN "[sweep]\nmimae.tau = 0.1 , 2e-1 ; comment\ndata.test = a.h5,b.h5\n", 1},
        {TRAIN "[sweep]\nseeds=3\n", 1},
        {"\xEF\xBB\xBF" TRAIN "[eval]\nknn = 0\n", 1},
        {"\xEF\xBB\xBF[data] junk\ntrain = /d.h5\n", 0},
        /* numbers in other forms */
        {TRAIN "[model]\nenc_dim = +96\nenc_heads = 0003\n", 1},
        {TRAIN "[mimae]\nmask_ratio = 0x1.8p-1\ntau = 7E-2\n", 1},
        {TRAIN "[eval]\nfinetune = YES\nknn = Off\n", 1},
        {TRAIN "[optim]\nwarmup_iters = 5\n", 1},
        /* a value as long as a line allows */
        {TRAIN "[data]\ntest = /"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
               "aaaaaaaaaaaaaaaaaaaaa\n", 1},
    };
#undef TRAIN
    descriptor_t *a = new_descriptor(), *b = new_descriptor();
    char err[2048], out[256], out2[256];
    snprintf(out, sizeof out, "%s/out.ini", dir);
    snprintf(out2, sizeof out2, "%s/out2.ini", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_text("x.ini", cases[i].text);
        const long images[] = {0, -1, 1000};
        for (size_t t = 0; t < sizeof images / sizeof images[0]; t++) {
            err[0] = '\0';
            const int rc = descriptor_load(a, path, NULL, 0, images[t], err, sizeof err);
            if (!cases[i].accepted) {
                if (rc == 0) fail_msg("case %zu was accepted:\n%s", i, cases[i].text);
                if (strchr(err, '\n')) fail_msg("case %zu: several lines: %s", i, err);
                if (getenv("SHOW_MESSAGES") && t == 0) print_message("%s\n", err);
                continue;
            }
            if (rc) fail_msg("case %zu: %s", i, err);
            if (descriptor_write(a, out, err, sizeof err)) fail_msg("case %zu: %s", i, err);
            if (descriptor_load(b, out, NULL, 0, images[t], err, sizeof err))
                fail_msg("case %zu: the written file does not load: %s", i, err);
            snprintf(b->path, sizeof b->path, "%s", a->path);
            assert_same_descriptor(a, b);
            /* written again, the text is the same */
            if (descriptor_write(b, out2, err, sizeof err)) fail_msg("case %zu: %s", i, err);
            char cmd[600];
            snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, out2);
            if (system(cmd) != 0) fail_msg("case %zu: a second write differs", i);
        }
    }
    free(a);
    free(b);
}

static void test_reference_lists_every_key(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    descriptor_print_reference(fp);
    long n = ftell(fp);
    assert_true(n > 0);
    char *text = calloc((size_t)n + 1, 1);
    assert_non_null(text);
    rewind(fp);
    assert_int_equal(fread(text, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);

    assert_contains(text, "| key | default | meaning |");
    char key[128];
    for (int i = 0; i < mimae_config_field_count; i++) {
        snprintf(key, sizeof key, "`%s.%s`", mimae_config_fields[i].section,
                 mimae_config_fields[i].key);
        assert_contains(text, key);
    }
    for (int i = 0; i < run_config_field_count; i++) {
        snprintf(key, sizeof key, "`%s.%s`", run_config_fields[i].section,
                 run_config_fields[i].key);
        assert_contains(text, key);
    }
    const char *strings[] = {"`model.preset` | fmnist-tiny", "`data.train`", "`data.test`",
                             "`run.out_dir`", "`run.name`", "`sweep."};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) assert_contains(text, strings[i]);
    assert_contains(text, "| `mimae.mask_ratio` | `0.75` |");
    assert_contains(text, "| `model.enc_dim` | `192` |");
    assert_contains(text, "| `train.reduction` | `auto` |");
    /* One row per key (the text keys are rows of run_config_fields), plus
     * the header, the rule and the sweep row. */
    int rows = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++) rows++;
    assert_int_equal(rows, mimae_config_field_count + run_config_field_count + 3);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_preset_applied_first),
        cmocka_unit_test(test_overrides_win),
        cmocka_unit_test(test_schedule_derivation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_write_load_round_trip),
        cmocka_unit_test(test_round_trip_table),
        cmocka_unit_test(test_reference_lists_every_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
