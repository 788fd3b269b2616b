/* The table of keys: the README's "Descriptor reference" is exactly what
 * `mimae keys` prints, every preset names real keys, and a checkpoint or
 * results file written before a key existed still loads, with the key's
 * default and a line on stderr saying so, while a wrong-typed or
 * out-of-range attribute is still refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config/config_fields.h"
#include "core/vit/model.h"
#include "experiments/descriptor.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512], source_dir[512];

/* ------------------------------------------------------------------------
 * Helpers */

/* The lines of text from the one starting with `first` up to the first line
 * that does not start with '|' (a Markdown table), malloc'd; NULL if absent. */
static char *markdown_table(const char *text, const char *first)
{
    const char *start = strstr(text, first);
    if (!start) return NULL;
    const char *end = start;
    while (*end == '|') {
        const char *nl = strchr(end, '\n');
        end = nl ? nl + 1 : end + strlen(end);
    }
    char *table = strndup(start, (size_t)(end - start));
    assert_non_null(table);
    return table;
}

/* Runs fn(arg) with stderr going into the file `path`. */
static int with_stderr_in(const char *path, int (*fn)(void *), void *arg)
{
    fflush(stderr);
    const int saved = dup(STDERR_FILENO);
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    const int rc = fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return rc;
}

/* A fresh directory with the names of a file `name` and of a log in it. */
static void scratch_paths(char dir[256], char path[512], char log[512], const char *name)
{
    make_tmpdir(dir, 256, "mimae-keys");
    snprintf(path, 512, "%s/%s", dir, name);
    snprintf(log, 512, "%s/stderr.txt", dir);
}

/* Removes attribute `name` from the root of an HDF5 file. */
static void delete_attribute(const char *path, const char *name)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    assert_true(H5Adelete(file, name) >= 0);
    assert_true(H5Fclose(file) >= 0);
}

/* Replaces attribute `name` by a float32 of value v, or a string if text. */
static void replace_attribute(const char *path, const char *name, float v, const char *text)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    assert_true(H5Adelete(file, name) >= 0);
    hid_t space = H5Screate(H5S_SCALAR), type = H5T_IEEE_F32LE;
    const void *value = &v;
    if (text) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, strlen(text) + 1);
        value = text;
    }
    hid_t a = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, text ? type : H5T_NATIVE_FLOAT, value) >= 0);
    H5Aclose(a);
    if (text) H5Tclose(type);
    H5Sclose(space);
    assert_true(H5Fclose(file) >= 0);
}

static void assert_contains(const char *text, const char *needle)
{
    if (!text || !strstr(text, needle))
        fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(nothing)", needle);
}

/* ------------------------------------------------------------------------
 * The README and `mimae keys` */

static void test_readme_table_is_mimae_keys(void **state)
{
    (void)state;
    char dir[256], out[512], readme_path[600];
    make_tmpdir(dir, sizeof dir, "mimae-keys");
    snprintf(out, sizeof out, "%s/keys.md", dir);
    assert_int_equal(run_shell("%s/mimae keys > %s", build_dir, out), 0);
    snprintf(readme_path, sizeof readme_path, "%s/README.md", source_dir);
    char *printed = read_text(out), *readme = read_text(readme_path);
    assert_non_null(printed);
    assert_non_null(readme);
    char *section = strstr(readme, "## Descriptor reference");
    assert_non_null(section);
    char *table = markdown_table(section, "| key | default | meaning |");
    assert_non_null(table);
    if (strcmp(table, printed))
        fail_msg("README.md's \"Descriptor reference\" table differs from `mimae keys`: "
                 "replace the table with the output of build/mimae keys");
    free(table);
    free(printed);
    free(readme);
    remove_tree(dir);
}

/* Every row's default parses and is in its range. */
static void test_defaults_parse_and_are_in_range(void **state)
{
    (void)state;
    descriptor_t *d = calloc(1, sizeof *d);
    assert_non_null(d);
    char err[512];
    assert_int_equal(config_fields_set_defaults(mimae_config_fields, mimae_config_field_count,
                                                &d->model, sizeof d->model, err, sizeof err),
                     0);
    assert_int_equal(config_fields_set_defaults(run_config_fields, run_config_field_count,
                                                &d->run, sizeof d->run, err, sizeof err),
                     0);
    assert_int_equal(config_fields_check_ranges(mimae_config_fields, mimae_config_field_count,
                                                &d->model, err, sizeof err), 0);
    assert_int_equal(config_fields_check_ranges(run_config_fields, run_config_field_count,
                                                &d->run, err, sizeof err), 0);
    /* the table's model defaults are the default preset's */
    mimae_config_t preset;
    assert_int_equal(mimae_config_preset(&preset, d->run.preset), 0);
    assert_memory_equal(&preset, &d->model, sizeof preset);
    const char *presets[] = {"fmnist-tiny", "vit-b16", "test-small"};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        assert_int_equal(mimae_config_preset(&preset, presets[i]), 0);
        if (mimae_config_validate(&preset, err, sizeof err)) fail_msg("%s: %s", presets[i], err);
    }
    free(d);
}

/* ------------------------------------------------------------------------
 * Files from before a key existed */

typedef struct {
    const char *path;
    mimae_model_t *model;
    mimae_config_t cfg;
    char err[512];
} load_args_t;

static int load_checkpoint(void *p)
{
    load_args_t *a = p;
    train_state_t st;
    return checkpoint_load(a->path, a->model, &st, a->err, sizeof a->err);
}

static int read_checkpoint_config(void *p)
{
    load_args_t *a = p;
    return checkpoint_read_config(a->path, &a->cfg, a->err, sizeof a->err);
}

static int load_results(void *p)
{
    load_args_t *a = p;
    results_t *r = results_load(a->path, a->err, sizeof a->err);
    if (!r) return -1;
    a->cfg = *results_config(r);
    results_free(r);
    return 0;
}

static void test_checkpoint_without_a_key(void **state)
{
    (void)state;
    char dir[256], path[512], log[512], err[512];
    scratch_paths(dir, path, log, "ckpt.h5");
    mimae_config_t c;
    assert_int_equal(mimae_config_preset(&c, "test-small"), 0);
    c.global_batch = 2, c.total_iters = 10;
    mimae_model_t *m = mimae_model_create(&c, 2, 7, err, sizeof err);
    if (!m) fail_msg("%s", err);
    const train_state_t st = {0, 0, 0, 7};
    if (checkpoint_save(path, m, &st, err, sizeof err)) fail_msg("save: %s", err);

    /* mimae.w_min's default (0.01) is the model's: the whole load works */
    delete_attribute(path, "config.mimae.w_min");
    load_args_t a = {.path = path, .model = m};
    if (with_stderr_in(log, load_checkpoint, &a)) fail_msg("load: %s", a.err);
    char *said = read_text(log);
    printf("  %s", said ? said : "(nothing on stderr)\n");
    assert_contains(said, "ckpt.h5: no attribute config.mimae.w_min (written before the key "
                          "existed): using its default 0.01\n");
    assert_non_null(strchr(said, '\n'));
    assert_null(strchr(strchr(said, '\n') + 1, '\n')); /* one line */
    free(said);

    /* q_hidden's default (256) is not test-small's (20): the config says so */
    delete_attribute(path, "config.mimae.q_hidden");
    assert_int_equal(with_stderr_in(log, read_checkpoint_config, &a), 0);
    assert_int_equal(a.cfg.q_hidden, 256);
    assert_true(a.cfg.w_min == 0.01f);
    said = read_text(log);
    assert_contains(said, "no attribute config.mimae.q_hidden (written before the key "
                          "existed): using its default 256");
    free(said);

    /* a wrong type or a value out of range is still damage */
    replace_attribute(path, "config.mimae.tau", 0.0f, "hot");
    assert_int_equal(with_stderr_in(log, read_checkpoint_config, &a), -1);
    printf("  %s\n", a.err);
    assert_contains(a.err, "config.mimae.tau");
    replace_attribute(path, "config.mimae.tau", -1.0f, NULL);
    assert_int_equal(with_stderr_in(log, read_checkpoint_config, &a), -1);
    printf("  %s\n", a.err);
    assert_contains(a.err, "mimae.tau = '-1': must be >= 0.0001");
    mimae_model_free(m);
    remove_tree(dir);
}

static void test_results_without_a_key(void **state)
{
    (void)state;
    char dir[256], path[512], log[512], err[512];
    scratch_paths(dir, path, log, "results.h5");
    mimae_config_t c;
    assert_int_equal(mimae_config_preset(&c, "fmnist-tiny"), 0);
    c.pool = POOL_CLS, c.mlp_ratio = 2;
    results_env_t env;
    memset(&env, 0, sizeof env);
    results_t *r = results_new(&c, &env);
    assert_non_null(r);
    if (results_write(r, path, err, sizeof err)) fail_msg("write: %s", err);
    results_free(r);

    delete_attribute(path, "config.mimae.pool");
    delete_attribute(path, "config.model.mlp_ratio");
    load_args_t a = {.path = path};
    if (with_stderr_in(log, load_results, &a)) fail_msg("load: %s", a.err);
    assert_int_equal(a.cfg.pool, POOL_MEAN);
    assert_int_equal(a.cfg.mlp_ratio, 4);
    c.pool = POOL_MEAN, c.mlp_ratio = 4; /* the rest as written */
    assert_memory_equal(&a.cfg, &c, sizeof c);
    char *said = read_text(log);
    printf("  %s", said ? said : "(nothing on stderr)\n");
    assert_contains(said, "results.h5: no attribute config.model.mlp_ratio (written before the "
                          "key existed): using its default 4\n");
    assert_contains(said, "no attribute config.mimae.pool (written before the key existed): "
                          "using its default mean\n");
    free(said);

    replace_attribute(path, "config.model.enc_dim", 0.0f, "wide");
    assert_int_equal(with_stderr_in(log, load_results, &a), -1);
    printf("  %s\n", a.err);
    assert_contains(a.err, "config.model.enc_dim");
    replace_attribute(path, "config.model.enc_dim", 1e6f, NULL);
    assert_int_equal(with_stderr_in(log, load_results, &a), -1);
    printf("  %s\n", a.err);
    assert_contains(a.err, "model.enc_dim = '1000000': must be at most 65536");
    remove_tree(dir);
}

int main(int argc, char **argv)
{
    (void)argc;
    char build[512];
    if (test_build_dir(argv[0], build, sizeof build)) return 1;
    snprintf(build_dir, sizeof build_dir, "%s", build);
    snprintf(source_dir, sizeof source_dir, "%s", dirname(build)); /* BUILD's parent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_table_is_mimae_keys),
        cmocka_unit_test(test_defaults_parse_and_are_in_range),
        cmocka_unit_test(test_checkpoint_without_a_key),
        cmocka_unit_test(test_results_without_a_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
