/* Files that are not what they seem, given to the real programs and to the
 * io library (issue 17, classes 5-7; issue 19, item 3):
 *
 * - inputs that are not regular files (a FIFO would block open() for ever,
 *   with the stop signals ignored): refused with one line naming what the
 *   path is, wherever a path is taken;
 * - a data set changed while a run reads it (truncated, grown, replaced):
 *   the run stops with exit 1 and one line, its last checkpoint intact;
 * - symbolic links planted where mimae writes (temporaries, final names,
 *   RUN/checkpoints): nothing is written through them;
 * - bytes a terminal would act on (escape sequences, newlines, invalid
 *   UTF-8) in attribute values, paths and --set values: every message
 *   shows them as \xNN.
 *
 * A FIFO case that hung would stall the suite: every job runs with a bound
 * (run_wait kills it) and a hang fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/config/config.h"
#include "core/vit/model.h"
#include "experiments/descriptor.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/png_write.h"
#include "io/reader.h"
#include "io/results.h"
#include "io/synthetic.h"
#include "io/text_escape.h"
#include "ckpt_util.h"
#include "fs_util.h"
#include "mpi_run.h"

#define JOB_TIMEOUT_S 60

static char build_dir[512], work[64];

/* ------------------------------------------------------------------------
 * Helpers. */

static void path_in(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", work, rel);
}

static void write_file(const char *rel, const char *text)
{
    char path[256];
    path_in(path, sizeof path, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_rel(const char *rel)
{
    char path[256];
    path_in(path, sizeof path, rel);
    return read_text(path);
}

static void make_fifo(const char *rel)
{
    char path[256];
    path_in(path, sizeof path, rel);
    unlink(path);
    if (mkfifo(path, 0644) != 0) fail_msg("mkfifo %s: %s", path, strerror(errno));
}

static void make_link(const char *target_rel, const char *rel)
{
    char target[256], path[256];
    path_in(target, sizeof target, target_rel);
    path_in(path, sizeof path, rel);
    unlink(path);
    if (symlink(target, path) != 0) fail_msg("symlink %s: %s", path, strerror(errno));
}

/* A descriptor for one rank: the shared data set, run directory `out`,
 * `steps` steps, plus `extra` (whole lines with their sections). */
static void write_desc(const char *name, const char *out, int steps, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[model]\npreset = test-small\nchannels = 1\n"
             "[data]\ntrain = %s/data/train.h5\n"
             "[train]\nglobal_batch = 8\nmicro_batch = 4\nepochs = 1000\nmax_steps = %d\n"
             "seed = 3\n"
             "[run]\nout_dir = %s/%s\nlog_every = 1\ncheckpoint_every = 5\nkeep_checkpoints = 2\n"
             "recon_samples = 2\n[eval]\nmi_images = 8\n%s",
             work, steps, work, out, extra ? extra : "");
    write_file(name, text);
}

/* Runs argv (argv[0] a program of the build directory, or "mpirun" for
 * mimae_dist on one rank) with its output in work/<log>; the status, -1
 * when it had to be killed (a hang). */
static int run_job(const char *log, const char *const *args)
{
    char prog[640], logpath[256];
    const char *argv[32];
    int n = 0;
    if (strcmp(args[0], "mimae_dist") == 0) {
        argv[n++] = "mpirun";
        argv[n++] = "-q";
        argv[n++] = "-n";
        argv[n++] = "1";
    }
    snprintf(prog, sizeof prog, "%s/%s", build_dir, args[0]);
    argv[n++] = prog;
    for (int i = 1; args[i] && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    path_in(logpath, sizeof logpath, log);
    return run_wait(run_start(argv, logpath, NULL), JOB_TIMEOUT_S);
}

/* Exit status `want` and exactly one line in work/<log>, printable, holding
 * every given word (NULL-terminated). */
static void expect_one_line(const char *log, int status, int want, ...)
{
    char *text = read_rel(log);
    if (!text) fail_msg("%s: no log", log);
    char copy[8192];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    printf("  %s", copy);
    fflush(stdout);
    if (status == -1) fail_msg("the job hung and was killed after %d s", JOB_TIMEOUT_S);
    if (status != want) fail_msg("exit status %d, expected %d", status, want);
    int lines = 0;
    for (const char *c = copy; *c; c++) lines += *c == '\n';
    if (lines != 1) fail_msg("expected one line, got %d", lines);
    copy[strcspn(copy, "\n")] = '\0';
    if (!text_is_printable(copy)) fail_msg("the message holds raw control bytes or invalid UTF-8");
    va_list ap;
    va_start(ap, want);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        if (!strstr(copy, w)) {
            va_end(ap);
            fail_msg("the message does not name '%s'", w);
        }
    va_end(ap);
}

/* Exit status `want`, and work/<log> (of several lines) holds `needle`. */
static void expect_status_saying(const char *log, int status, int want, const char *needle)
{
    char *text = read_rel(log);
    const int said = text && strstr(text, needle) != NULL;
    printf("%s", text ? text : "(no log)\n");
    free(text);
    if (status == -1) fail_msg("the job hung and was killed after %d s", JOB_TIMEOUT_S);
    if (status != want) fail_msg("exit status %d, expected %d", status, want);
    if (!said) fail_msg("the output does not say '%s'", needle);
}

static void assert_file_holds(const char *rel, const char *want)
{
    char *text = read_rel(rel);
    if (!text) fail_msg("%s: gone", rel);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    if (strcmp(copy, want)) fail_msg("%s was written through a link: now '%.60s'", rel, copy);
}

static int exists_rel(const char *rel)
{
    char path[256];
    path_in(path, sizeof path, rel);
    return access(path, F_OK) == 0;
}

/* ------------------------------------------------------------------------
 * Class 5: inputs that are not regular files. */

static void test_fifo_as_data_train(void **state)
{
    (void)state;
    make_fifo("fifo-train.h5");
    write_desc("fifo-train.ini", "run-fifo-train", 2, NULL);
    char set[300];
    snprintf(set, sizeof set, "data.train=%s/fifo-train.h5", work);
    char desc[256];
    path_in(desc, sizeof desc, "fifo-train.ini");
    const char *args[] = {"mimae_dist", desc, "--set", set, NULL};
    expect_one_line("fifo-train.log", run_job("fifo-train.log", args), 2, "fifo-train.h5",
                    "FIFO", "data set", NULL);
    assert_false(exists_rel("run-fifo-train"));
}

static void test_fifo_as_data_test(void **state)
{
    (void)state;
    make_fifo("fifo-test.h5");
    char desc[256];
    write_desc("fifo-test.ini", "run-fifo-test", 2, NULL);
    char set[300];
    snprintf(set, sizeof set, "data.test=%s/fifo-test.h5", work);
    path_in(desc, sizeof desc, "fifo-test.ini");
    const char *args[] = {"mimae_dist", desc, "--set", set, NULL};
    /* training prints progress first: the refusal is among the lines */
    expect_status_saying("fifo-test.log", run_job("fifo-test.log", args), 2,
                         "fifo-test.h5: is a FIFO");
}

static void test_fifo_as_descriptor(void **state)
{
    (void)state;
    make_fifo("fifo.ini");
    char desc[256];
    path_in(desc, sizeof desc, "fifo.ini");
    const char *args[] = {"mimae_dist", desc, NULL};
    expect_one_line("fifo-desc.log", run_job("fifo-desc.log", args), 2, "fifo.ini", "FIFO",
                    "descriptor", NULL);
}

static void test_fifo_inspect(void **state)
{
    (void)state;
    make_fifo("fifo-inspect.h5");
    char path[256];
    path_in(path, sizeof path, "fifo-inspect.h5");
    const char *args[] = {"mimae", "inspect", path, NULL};
    expect_one_line("fifo-inspect.log", run_job("fifo-inspect.log", args), 2, "FIFO", NULL);
    /* a directory is said to be one */
    path_in(path, sizeof path, "data");
    expect_one_line("dir-inspect.log", run_job("dir-inspect.log", args), 2, "is a directory",
                    NULL);
}

/* `mimae report` of a run whose descriptor.ini is a FIFO: finishes (the
 * descriptor is skipped), does not hang reading it. */
static void test_fifo_descriptor_in_report(void **state)
{
    (void)state;
    char dir[256];
    path_in(dir, sizeof dir, "report-fifo");
    assert_int_equal(mkdir(dir, 0755), 0);
    make_fifo("report-fifo/descriptor.ini");
    const char *args[] = {"mimae", "report", dir, "--no-plots", NULL};
    const int status = run_job("report-fifo.log", args);
    char log[256];
    path_in(log, sizeof log, "report-fifo.log");
    print_log_tail(log, 5, NULL);
    if (status == -1) fail_msg("mimae report hung on a FIFO descriptor and was killed");
    assert_true(status >= 0 && status < 128);
}

/* An importer's source file as a FIFO (the Fashion-MNIST importer opened
 * it with gzopen, which blocked): refused with one line; and a CIFAR-10
 * batch that is a FIFO is said to be one. */
static void test_fifo_as_import_source(void **state)
{
    (void)state;
    char src[256], out[256];
    path_in(src, sizeof src, "idx-src");
    path_in(out, sizeof out, "idx-out");
    assert_int_equal(mkdir(src, 0755), 0);
    make_fifo("idx-src/train-images-idx3-ubyte.gz");
    const char *args[] = {"mimae", "data", "fashion-mnist", out, "--src", src, NULL};
    expect_one_line("fifo-idx.log", run_job("fifo-idx.log", args), 2,
                    "train-images-idx3-ubyte.gz", "FIFO", NULL);
    assert_false(exists_rel("idx-out/train.h5"));

    path_in(src, sizeof src, "cifar-src");
    path_in(out, sizeof out, "cifar-out");
    assert_int_equal(mkdir(src, 0755), 0);
    make_fifo("cifar-src/data_batch_1.bin");
    const char *cifar[] = {"mimae", "data", "cifar10", src, out, NULL};
    expect_one_line("fifo-cifar.log", run_job("fifo-cifar.log", cifar), 2, "data_batch_1.bin",
                    "FIFO", NULL);
    assert_false(exists_rel("cifar-out/train.h5"));
}

/* An image folder holding a FIFO among its images: named, not skipped. */
static void test_fifo_in_image_folder(void **state)
{
    (void)state;
    char src[256], out[256];
    path_in(src, sizeof src, "folder-src");
    path_in(out, sizeof out, "folder-out");
    const char *dirs[] = {"folder-src", "folder-src/train", "folder-src/train/a",
                          "folder-src/val", "folder-src/val/a"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char p[256];
        path_in(p, sizeof p, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    float tile[8 * 8];
    for (int i = 0; i < 64; i++) tile[i] = (float)(i % 7) / 7.0f;
    char png[256], err[512];
    path_in(png, sizeof png, "folder-src/val/a/x.png");
    if (png_write_grid(png, tile, 1, 1, 8, 8, 1, 1, err, sizeof err)) fail_msg("%s", err);
    path_in(png, sizeof png, "folder-src/train/a/x.png");
    if (png_write_grid(png, tile, 1, 1, 8, 8, 1, 1, err, sizeof err)) fail_msg("%s", err);
    make_fifo("folder-src/train/a/y.png");
    const char *args[] = {"mimae", "data", "folder", src, out, "--size", "8", NULL};
    expect_one_line("fifo-folder.log", run_job("fifo-folder.log", args), 2, "y.png", "FIFO",
                    NULL);
    assert_false(exists_rel("folder-out/train.h5"));
}

/* ------------------------------------------------------------------------
 * Class 6: a data set that changes under a running job. */

/* The reader notices every kind of change, before returning a batch. */
static void test_reader_detects_changed_file(void **state)
{
    (void)state;
    char data[256], path[256], copy[300], err[1024];
    path_in(data, sizeof data, "changing");
    if (synthetic_generate(data, 64, 16, 16, 1, 4, 9, err, sizeof err)) fail_msg("%s", err);
    path_in(path, sizeof path, "changing/train.h5");
    snprintf(copy, sizeof copy, "%s.copy", path);
    assert_int_equal(run_shell("cp '%s' '%s'", path, copy), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    const int64_t idx[4] = {0, 1, 2, 3};
    const uint8_t *images;
    enum { TRUNCATE, GROW, REPLACE, REWRITE, KINDS };
    const char *said[KINDS] = {"size", "size", "replaced", "rewritten in place"};
    for (int kind = 0; kind < KINDS; kind++) {
        assert_int_equal(run_shell("cp '%s' '%s'", copy, path), 0);
        reader_t *r = reader_create(path, 4, err, sizeof err);
        if (!r) fail_msg("%s", err);
        assert_int_equal(reader_start(r, idx, 4, err, sizeof err), 0);
        if (reader_wait(r, &images, NULL, NULL, err, sizeof err)) fail_msg("%s", err);
        if (kind == TRUNCATE) assert_int_equal(truncate(path, st.st_size / 2), 0);
        if (kind == GROW) assert_int_equal(run_shell("printf x >> '%s'", path), 0);
        if (kind == REPLACE)
            assert_int_equal(run_shell("cp '%s' '%s.new' && mv '%s.new' '%s'", copy, path, path,
                                       path), 0);
        if (kind == REWRITE) { /* same size and inode, another modification time */
            struct timeval later[2] = {{st.st_atime, 0}, {st.st_mtime + 7, 0}};
            assert_int_equal(utimes(path, later), 0);
        }
        assert_int_equal(reader_start(r, idx, 4, err, sizeof err), 0);
        const int rc = reader_wait(r, &images, NULL, NULL, err, sizeof err);
        printf("  %s\n", err);
        reader_free(r);
        assert_int_equal(rc, IO_CHANGED);
        assert_non_null(strstr(err, "changed while the run read it"));
        assert_non_null(strstr(err, said[kind]));
    }
}

/* mimae_dist on a data set that is changed (by `change`, a shell command on
 * DATA, the data set's path) once the log shows step 20: exit 1, one line
 * saying so, and the newest checkpoint loads. */
static void run_and_change(const char *name, const char *change)
{
    char data_dir[200], data[256], desc[256], ini[64], out[64], log[64], logpath[256], err[512];
    snprintf(ini, sizeof ini, "%s.ini", name);
    snprintf(out, sizeof out, "run-%s", name);
    snprintf(log, sizeof log, "%s.log", name);
    path_in(data_dir, sizeof data_dir, name);
    if (synthetic_generate(data_dir, 256, 16, 16, 1, 4, 2, err, sizeof err)) fail_msg("%s", err);
    snprintf(data, sizeof data, "%s/train.h5", data_dir);
    write_desc(ini, out, 100000, NULL);
    path_in(desc, sizeof desc, ini);
    char set[320];
    snprintf(set, sizeof set, "data.train=%s", data);
    char prog[640];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    const char *argv[] = {"mpirun", "-q", "-n", "1", prog, desc, "--set", set, NULL};
    path_in(logpath, sizeof logpath, log);
    const pid_t pid = run_start(argv, logpath, NULL);
    if (wait_for_text(logpath, "step 20/", JOB_TIMEOUT_S)) {
        run_wait(pid, 1);
        print_log_tail(logpath, 5, NULL);
        fail_msg("the run did not reach step 20");
    }
    assert_int_equal(run_shell("DATA='%s'; %s", data, change), 0);
    const int status = run_wait(pid, JOB_TIMEOUT_S);
    char *text = read_text(logpath);
    assert_non_null(text);
    char *last = strstr(text, "mimae_dist: ");
    char line[1024] = "";
    if (last) snprintf(line, sizeof line, "%.*s", (int)strcspn(last, "\n"), last);
    free(text);
    printf("  %s\n", line);
    if (status == -1) fail_msg("the run went on with a changed data set (killed after %d s)",
                               JOB_TIMEOUT_S);
    assert_int_equal(status, 1);
    assert_non_null(strstr(line, "changed while the run read it"));
    assert_non_null(strstr(line, "the last checkpoint is intact"));
    char run_dir[256];
    path_in(run_dir, sizeof run_dir, out);
    long step = 0;
    mimae_model_t *m = load_newest_checkpoint(run_dir, &step);
    assert_true(step >= 5);
    mimae_model_free(m);
}

static void test_train_file_truncated_during_run(void **state)
{
    (void)state;
    run_and_change("truncated", "truncate -s 30000 \"$DATA\"");
}

static void test_train_file_replaced_during_run(void **state)
{
    (void)state;
    run_and_change("replaced", "cp \"$DATA\" \"$DATA.new\" && mv \"$DATA.new\" \"$DATA\"");
}

/* ------------------------------------------------------------------------
 * Class 7: nothing is written through a link. */

/* The instance: a link at RUN/descriptor.ini.tmp (the old fixed
 * temporary name) does not make the run overwrite its target. */
static void test_link_at_descriptor_temporary(void **state)
{
    (void)state;
    char dir[256], desc[256];
    path_in(dir, sizeof dir, "run-link-desc");
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file("victim-desc.txt", "keep");
    make_link("victim-desc.txt", "run-link-desc/descriptor.ini.tmp");
    write_desc("link-desc.ini", "run-link-desc", 2, NULL);
    path_in(desc, sizeof desc, "link-desc.ini");
    const char *args[] = {"mimae_dist", desc, NULL};
    const int status = run_job("link-desc.log", args);
    char log[256];
    path_in(log, sizeof log, "link-desc.log");
    if (status != 0) print_log_tail(log, 5, NULL);
    assert_int_equal(status, 0);
    assert_file_holds("victim-desc.txt", "keep");
    assert_true(exists_rel("run-link-desc/descriptor.ini"));
}

/* Links planted at every temporary name the writers used to use
 * (PATH.tmp-<pid>): results file, checkpoint-style HDF5 file, PNG, data
 * set, descriptor. Each writer still writes its file; no target changes. */
static void test_links_at_writer_temporaries(void **state)
{
    (void)state;
    char dir[256], err[1024], tmp[400], path[300];
    path_in(dir, sizeof dir, "links");
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file("victim-writers.txt", "keep");
    char victim[256];
    path_in(victim, sizeof victim, "victim-writers.txt");
    const char *names[] = {"results.h5", "grid.png", "data/train.h5", "data/test.h5", "d.ini"};
    assert_int_equal(mkdir(strcat(strcpy(path, dir), "/data"), 0755), 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(tmp, sizeof tmp, "%s/%s.tmp-%ld", dir, names[i], (long)getpid());
        assert_int_equal(symlink(victim, tmp), 0);
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, names[i]);
        assert_int_equal(symlink(victim, tmp), 0);
    }
    mimae_config_t cfg;
    assert_int_equal(mimae_config_preset(&cfg, "test-small"), 0);
    results_t *r = results_new(&cfg, NULL);
    assert_non_null(r);
    snprintf(path, sizeof path, "%s/results.h5", dir);
    if (results_write(r, path, err, sizeof err)) fail_msg("%s", err);
    results_free(r);
    float tile[8 * 8] = {0};
    snprintf(path, sizeof path, "%s/grid.png", dir);
    if (png_write_grid(path, tile, 1, 1, 8, 8, 1, 1, err, sizeof err)) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/data", dir);
    if (synthetic_generate(path, 16, 8, 8, 1, 2, 1, err, sizeof err)) fail_msg("%s", err);
    write_desc("links/src.ini", "run-unused", 2, NULL);
    descriptor_t *d = malloc(sizeof *d);
    assert_non_null(d);
    snprintf(path, sizeof path, "%s/src.ini", dir);
    if (descriptor_load(d, path, NULL, 0, 0, err, sizeof err)) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/d.ini", dir);
    if (descriptor_write(d, path, err, sizeof err)) fail_msg("%s", err);
    free(d);
    assert_file_holds("victim-writers.txt", "keep");
    const char *written[] = {"links/results.h5", "links/grid.png", "links/data/train.h5",
                             "links/data/test.h5", "links/d.ini"};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        struct stat st;
        path_in(path, sizeof path, written[i]);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
    }
}

/* A link planted at RUN/checkpoints: refused (exit 2, one line) before
 * anything is written through it. */
static void test_link_at_checkpoints_dir(void **state)
{
    (void)state;
    char dir[256], desc[256], elsewhere[256];
    path_in(dir, sizeof dir, "run-link-ckpt");
    path_in(elsewhere, sizeof elsewhere, "elsewhere");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(elsewhere, 0755), 0);
    make_link("elsewhere", "run-link-ckpt/checkpoints");
    write_desc("link-ckpt.ini", "run-link-ckpt", 2, NULL);
    path_in(desc, sizeof desc, "link-ckpt.ini");
    const char *args[] = {"mimae_dist", desc, NULL};
    expect_one_line("link-ckpt.log", run_job("link-ckpt.log", args), 2, "checkpoints",
                    "symbolic link", NULL);
    assert_int_equal(count_entries(elsewhere), 0);
}

/* A link planted at a report output (report.md): refused, its target kept. */
static void test_link_at_report_output(void **state)
{
    (void)state;
    char desc[256], run_dir[256], out[256];
    write_desc("report-src.ini", "run-report", 2, NULL);
    path_in(desc, sizeof desc, "report-src.ini");
    const char *train[] = {"mimae_dist", desc, NULL};
    assert_int_equal(run_job("report-src.log", train), 0);
    path_in(run_dir, sizeof run_dir, "run-report");
    path_in(out, sizeof out, "report-out");
    assert_int_equal(mkdir(out, 0755), 0);
    write_file("victim-report.txt", "keep");
    make_link("victim-report.txt", "report-out/report.md");
    const char *args[] = {"mimae", "report", run_dir, "--out", out, "--no-plots", NULL};
    expect_status_saying("report-link.log", run_job("report-link.log", args), 1,
                         "report.md: is a symbolic link");
    assert_file_holds("victim-report.txt", "keep");
}

/* ------------------------------------------------------------------------
 * Printable messages. */

static void test_text_escape(void **state)
{
    (void)state;
    char out[64];
    struct {
        const char *in, *want;
    } cases[] = {
        {"plain text: ok", "plain text: ok"},
        {"esc \x1b[31mred", "esc \\x1b[31mred"},
        {"bell\a nl\n cr\r tab\t del\x7f", "bell\\x07 nl\\x0a cr\\x0d tab\\x09 del\\x7f"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"bad \xc3 end", "bad \\xc3 end"},                 /* truncated sequence */
        {"over \xc0\xaf", "over \\xc0\\xaf"},              /* overlong '/' */
        {"surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80"},
        {"beyond \xf4\x90\x80\x80", "beyond \\xf4\\x90\\x80\\x80"},
        {"lone \x80\xbf", "lone \\x80\\xbf"},
        {"back\\slash kept", "back\\slash kept"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text_escape(out, sizeof out, cases[i].in);
        assert_string_equal(out, cases[i].want);
        assert_true(text_is_printable(out));
        char again[64]; /* idempotent */
        text_escape(again, sizeof again, out);
        assert_string_equal(again, out);
    }
    assert_false(text_is_printable("a\x1b"));
    assert_false(text_is_printable("\xff"));
    assert_true(text_is_printable("\xc3\xa9"));
    /* cut before a whole escape or character, never inside one */
    char small[8];
    text_escape(small, sizeof small, "abcd\x1b");
    assert_string_equal(small, "abcd");
    text_escape(small, sizeof small, "abcdef\xc3\xa9");
    assert_string_equal(small, "abcdef");
    text_escape(small, sizeof small, "abc\xe2\x82\xac");
    assert_string_equal(small, "abc\xe2\x82\xac");
    char buf[16] = "x\x1b[2Jy";
    text_escape_in_place(buf, sizeof buf);
    assert_string_equal(buf, "x\\x1b[2Jy");
}

/* The reader's message echoes the format attribute read from the file: an
 * escape sequence there reaches the message escaped. */
static void test_attribute_escape_in_error(void **state)
{
    (void)state;
    char path[256], err[1024];
    path_in(path, sizeof path, "evil.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    const char *value = "\x1b]0;pwned\x07\x1b[2J\xff";
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    assert_true(H5Tset_size(type, strlen(value)) >= 0);
    hid_t a = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, type, value) >= 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(f);
    assert_null(dataset_open(path, err, sizeof err));
    printf("  %s\n", err);
    assert_true(text_is_printable(err));
    assert_non_null(strstr(err, "\\x1b]0;pwned\\x07"));
    /* and through the program, on a terminal's way */
    const char *args[] = {"mimae", "inspect", path, NULL};
    const int status = run_job("evil-inspect.log", args);
    char *text = read_rel("evil-inspect.log");
    assert_non_null(text);
    text[strcspn(text, "\n")] = '\0';
    const int printable = text_is_printable(text);
    free(text);
    assert_true(status >= 0 && status < 128);
    assert_true(printable);
}

/* A --set value and a path with control bytes: one printable line. */
static void test_command_line_control_bytes(void **state)
{
    (void)state;
    char desc[256];
    write_desc("ctl.ini", "run-ctl", 2, NULL);
    path_in(desc, sizeof desc, "ctl.ini");
    const char *set_args[] = {"mimae_dist", desc, "--set", "train.seed=1\x1b[2J\n\xfe", NULL};
    expect_one_line("ctl-set.log", run_job("ctl-set.log", set_args), 2, "train.seed", "\\x1b",
                    NULL);
    const char *key_args[] = {"mimae_dist", desc, "--set", "tra\x1b[0min.seed=1", NULL};
    expect_one_line("ctl-key.log", run_job("ctl-key.log", key_args), 2, "\\x1b", NULL);
    const char *path_args[] = {"mimae", "inspect", "no\nsuch\x1b[1m.h5", NULL};
    expect_one_line("ctl-path.log", run_job("ctl-path.log", path_args), 2, "no\\x0asuch", NULL);
}

/* ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    make_tmpdir(work, sizeof work, "mimae-files");
    char data[256], err[512];
    path_in(data, sizeof data, "data");
    if (synthetic_generate(data, 64, 16, 16, 1, 4, 1, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("MIMAE_KEEP_TMP")) return 0;
    return remove_tree(work);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_escape),
        cmocka_unit_test(test_attribute_escape_in_error),
        cmocka_unit_test(test_command_line_control_bytes),
        cmocka_unit_test(test_fifo_as_data_train),
        cmocka_unit_test(test_fifo_as_descriptor),
        cmocka_unit_test(test_fifo_as_data_test),
        cmocka_unit_test(test_fifo_inspect),
        cmocka_unit_test(test_fifo_descriptor_in_report),
        cmocka_unit_test(test_fifo_as_import_source),
        cmocka_unit_test(test_fifo_in_image_folder),
        cmocka_unit_test(test_reader_detects_changed_file),
        cmocka_unit_test(test_train_file_truncated_during_run),
        cmocka_unit_test(test_train_file_replaced_during_run),
        cmocka_unit_test(test_link_at_descriptor_temporary),
        cmocka_unit_test(test_links_at_writer_temporaries),
        cmocka_unit_test(test_link_at_checkpoints_dir),
        cmocka_unit_test(test_link_at_report_output),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
