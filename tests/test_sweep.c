/* Sweep expansion: task counts, the documented stable order (file order,
 * last key fastest, seeds innermost), per-task run directories, and bad
 * sweep keys and values rejected with the key named. Also `mimae sweep`
 * run from a directory outside the repository: it finds its job template
 * beside its own build directory, or says where it looked and what to do. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiments/descriptor.h"
#include "experiments/sweep.h"
#include "io/synthetic.h"
#include "fs_util.h"
#include "mpi_run.h"

static char dir[256], build_dir[512];

static int load(descriptor_t *d, sweep_t *s, const char *sweep_text, char *err, size_t errlen)
{
    char path[300];
    snprintf(path, sizeof path, "%s/sweep.ini", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -2;
    fprintf(f, "[model]\npreset = fmnist-tiny\n[run]\nout_dir = /runs/s\nname = s\n[sweep]\n%s",
            sweep_text);
    fclose(f);
    if (descriptor_load(d, path, NULL, 0, -1, err, errlen)) return -1;
    return sweep_parse(d, s, err, errlen);
}

static void test_expansion_order(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    char err[1024], assign[DESCRIPTOR_MAX_SWEEP_KEYS + 2][SWEEP_ASSIGN_MAX + DESCRIPTOR_PATH_MAX];
    assert_int_equal(load(&d, &s, "seeds = 0, 1\nmimae.mask_ratio = 0.75, 0.8, 0.9\n"
                                  "mimae.w_max = 0, 0.1\n", err, sizeof err), 0);
    assert_int_equal(s.tasks, 12);
    assert_string_equal(s.keys[2], "train.seed"); /* seeds go innermost */
    /* task 7 = mask_ratio index 1, w_max index 1, seed index 1 */
    int n = sweep_task_assignments(&s, &d, 7, assign);
    assert_int_equal(n, 5);
    assert_string_equal(assign[0], "mimae.mask_ratio=0.8");
    assert_string_equal(assign[1], "mimae.w_max=0.1");
    assert_string_equal(assign[2], "train.seed=1");
    assert_string_equal(assign[3], "run.out_dir=/runs/s/task-0007");
    assert_string_equal(assign[4], "run.name=s-task0007");
    /* every combination exactly once */
    int seen[3][2][2] = {{{0}}};
    for (long t = 0; t < s.tasks; t++)
        seen[sweep_value_index(&s, t, 0)][sweep_value_index(&s, t, 1)][sweep_value_index(&s, t, 2)]++;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 2; k++) assert_int_equal(seen[i][j][k], 1);
    assert_int_equal(sweep_task_assignments(&s, &d, 12, assign), -1);
    /* no [sweep]: one task, nothing swept */
    assert_int_equal(load(&d, &s, "", err, sizeof err), 0);
    assert_int_equal(s.tasks, 1);
    assert_int_equal(s.n_keys, 0);
}

static void test_bad_sweeps(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    char err[1024];
    const struct { const char *text, *word; } cases[] = {
        {"mimae.mask_ration = 0.5, 0.75\n", "mask_ration"},     /* unknown key */
        {"mimae.mask_ratio = 0.75, 1.5\n", "mask_ratio"},       /* impossible value */
        {"mimae.num_masks = 1, 8\n", "num_masks"},              /* N x V > L in one task */
        {"mimae.pool = mean, max\n", "pool"},                   /* bad enum value */
        {"mimae.num_masks = 2, 2\n", "listed twice"},           /* duplicate value */
        {"mimae.num_masks = 2,, 4\n", "empty value"},           /* empty item */
        {"nodot = 1, 2\n", "nodot"},                            /* not section.key */
        {"seeds = 0, x\n", "seed"},                             /* junk seed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        int rc = load(&d, &s, cases[i].text, err, sizeof err);
        printf("  %s", cases[i].text);
        printf("    -> %s\n", err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, cases[i].word));
        assert_null(strchr(err, '\n'));
    }
}

/* `mimae sweep plan` and `submit --dry-run` with the temporary directory
 * as the current one; a copy of the program far from the repository
 * finds no template and says so in one line, and MIMAE_SLURM_TEMPLATE
 * (or --template) fixes that. */
static void test_template_from_any_directory(void **state)
{
    (void)state;
    char data[300], path[400], err[512];
    snprintf(data, sizeof data, "%s/data", dir);
    if (synthetic_generate(data, 16, 16, 16, 1, 2, 1, err, sizeof err)) fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/one.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[model]\npreset = test-small\nchannels = 1\n[data]\ntrain = data/train.h5\n"
          "[train]\nglobal_batch = 8\n[run]\nout_dir = runs/one\n", f);
    assert_int_equal(fclose(f), 0);

    assert_int_equal(run_captured(dir, "%s/mimae sweep plan one.ini", build_dir), 0);
    assert_int_equal(run_captured(dir, "%s/mimae sweep submit one.ini --dry-run", build_dir), 0);
    snprintf(path, sizeof path, "%s/runs/one/sweep.sbatch", dir);
    assert_int_equal(access(path, R_OK), 0);

    /* the same program where no slurm/ is beside its directory */
    assert_int_equal(run_shell("mkdir -p %s/bin && cp %s/mimae %s/bin/", dir, build_dir, dir), 0);
    assert_bad_input(dir, run_captured(dir, "bin/mimae sweep submit one.ini --dry-run --bin %s",
                                       build_dir),
                     "slurm/job.sbatch.in", "--template", "MIMAE_SLURM_TEMPLATE", NULL);
    assert_int_equal(run_captured(dir, "MIMAE_SLURM_TEMPLATE=%s/../slurm/job.sbatch.in bin/mimae "
                                  "sweep submit one.ini --dry-run --bin %s", build_dir, build_dir), 0);
    assert_bad_input(dir, run_captured(dir, "MIMAE_SLURM_TEMPLATE=nowhere.in %s/mimae sweep submit "
                                       "one.ini --dry-run", build_dir),
                     "nowhere.in", "MIMAE_SLURM_TEMPLATE", NULL);
}

/* The plan shows what came from the command line and the descriptor
 * escaped: a descriptor named with an escape sequence prints as \x1b..., and
 * no raw control byte reaches the terminal or plan.tsv. */
static void test_plan_is_printable(void **state)
{
    (void)state;
    char data[300], path[400], err[512];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(path, sizeof path, "%s/train.h5", data);
    if (access(path, R_OK) && synthetic_generate(data, 16, 16, 16, 1, 2, 1, err, sizeof err))
        fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/esc\033[31m.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[model]\npreset = test-small\nchannels = 1\n[data]\ntrain = data/train.h5\n"
          "[train]\nglobal_batch = 8\n[run]\nname = esc\nout_dir = runs/esc\n[sweep]\n"
          "mimae.tau = 0.1, 0.2\n",
          f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(run_captured(dir, "%s/mimae sweep plan 'esc\033[31m.ini'", build_dir), 0);
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    char *out = read_text(path);
    assert_non_null(out);
    printf("%s", out);
    const int escaped = strstr(out, "esc\\x1b[31m.ini") != NULL, raw = strchr(out, 0x1b) != NULL;
    free(out);
    assert_true(escaped);
    assert_false(raw);
}

/* Sweeps that would not mean what they say are refused when the descriptor
 * is read, with one line: seeds and a swept train.seed (the plan labelled
 * tasks with seeds they did not run), keys every task sets itself
 * (run.out_dir, run.name: accepted and ignored before) or that reset
 * others (model.preset), a swept warmup_epochs that an explicit
 * warmup_iters overrides, values that are the same twice. */
static void test_sweeps_that_mean_something_else(void **state)
{
    (void)state;
    static descriptor_t d;
    static sweep_t s;
    char err[1024];
    const struct { const char *text, *words[3]; } cases[] = {
        {"seeds = 0, 1\ntrain.seed = 5, 6\n", {"train.seed", "seeds", "keep one"}},
        {"train.seed = 5, 6\nseeds = 0, 1\n", {"seeds", "train.seed", "keep one"}},
        {"run.out_dir = /a, /b\n", {"run.out_dir", "cannot be swept", "task-NNNN"}},
        {"run.name = a, b\n", {"run.name", "cannot be swept", "taskNNNN"}},
        {"model.preset = fmnist-tiny, test-small\n", {"model.preset", "cannot be swept"}},
        {"optim.warmup_epochs = 0, 1\noptim.warmup_iters = 3, 4\n",
         {"optim.warmup_epochs", "optim.warmup_iters is swept on line"}},
        {"mimae.mask_ratio = 0.75, 7.5e-1\n", {"mimae.mask_ratio", "same value"}},
        {"seeds = 1, 01\n", {"seeds", "same value"}},
        {"mimae.Tau = 0.1, 0.2\n", {"mimae.Tau", "did you mean mimae.tau"}},
        {"data.train = a.h5,,b.h5\n", {"data.train", "empty value"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        const int rc = load(&d, &s, cases[i].text, err, sizeof err);
        printf("  %s    -> %s\n", cases[i].text, err);
        assert_int_equal(rc, -1);
        assert_null(strchr(err, '\n'));
        for (int w = 0; w < 3 && cases[i].words[w]; w++)
            if (!strstr(err, cases[i].words[w])) fail_msg("\"%s\" lacks \"%s\"", err, cases[i].words[w]);
    }
    /* a warmup_iters given in the file wins over a swept warmup_epochs */
    char path[300];
    snprintf(path, sizeof path, "%s/warm.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[optim]\nwarmup_iters = 5\n[sweep]\noptim.warmup_epochs = 0.5, 1\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(descriptor_load(&d, path, NULL, 0, -1, err, sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "warm.ini:4: [sweep] optim.warmup_epochs"));
    assert_non_null(strstr(err, "given on line 2"));
    const char *warm_set[] = {"optim.warmup_iters=5"};
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[sweep]\noptim.warmup_epochs = 0.5, 1\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(descriptor_load(&d, path, warm_set, 1, -1, err, sizeof err), -1);
    assert_non_null(strstr(err, "given by --set"));
    assert_int_equal(descriptor_load(&d, path, NULL, 0, -1, err, sizeof err), 0);

    /* a --set of a swept key: every task's value would replace it */
    assert_int_equal(load(&d, &s, "seeds = 0, 1\nmimae.tau = 0.1, 0.2\n", err, sizeof err), 0);
    const char *sets[] = {"mimae.mask_ratio=0.8", " train.seed = 4"};
    assert_int_equal(sweep_check_overrides(&s, &d, sets, 1, err, sizeof err), 0);
    assert_int_equal(sweep_check_overrides(&s, &d, sets, 2, err, sizeof err), -1);
    printf("  -> %s\n", err);
    assert_non_null(strstr(err, "--set  train.seed = 4: train.seed is swept"));
}

/* A script named `name` in dir/fakebin printing `text` (exit status rc). */
static void fake_command(const char *name, const char *text, int rc)
{
    assert_int_equal(run_shell("mkdir -p %s/fakebin && printf '#!/bin/sh\\necho \"%s\"\\nexit %d\\n' "
                               "> %s/fakebin/%s && chmod +x %s/fakebin/%s",
                               dir, text, rc, dir, name, dir, name), 0);
}

/* A descriptor `name`.ini of the synthetic data set with `sweep` as [sweep]. */
static void sweep_descriptor(const char *name, const char *sweep)
{
    char data[300], err[512], path[400];
    snprintf(data, sizeof data, "%s/data_arr", dir);
    snprintf(path, sizeof path, "%s/train.h5", data);
    if (access(path, R_OK) && synthetic_generate(data, 16, 16, 16, 1, 2, 1, err, sizeof err))
        fail_msg("%s", err);
    snprintf(path, sizeof path, "%s/%s.ini", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[model]\npreset = test-small\nchannels = 1\n[data]\ntrain = data_arr/train.h5\n"
            "[train]\nglobal_batch = 8\n[run]\nout_dir = runs/%s\n[sweep]\n%s", name, sweep);
    assert_int_equal(fclose(f), 0);
}

static int out_dir_exists(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/runs/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* `mimae sweep submit` refuses an array the cluster would refuse, and task
 * files beyond their bound, before writing anything (a 10,000-task sweep
 * wrote 40 MB of task files, then sbatch refused the array). */
static void test_submit_checks_the_array_first(void **state)
{
    (void)state;
    const char *submit = "PATH=%s/fakebin:$PATH %s/mimae sweep submit %s.ini --dry-run %s";
    fake_command("scontrol", "MaxArraySize            = 5", 0);
    sweep_descriptor("six", "seeds = 0, 1, 2, 3, 4, 5\n");
    assert_bad_input(dir, run_captured(dir, submit, dir, build_dir, "six", ""), "six.ini",
                     "6 tasks", "MaxArraySize = 5 (from scontrol show config)", NULL);
    assert_false(out_dir_exists("six"));
    sweep_descriptor("five", "seeds = 0, 1, 2, 3, 4\n");
    assert_bad_input(dir, run_captured(dir, submit, dir, build_dir, "five", "--limit 6"),
                     "--limit 6", "MaxArraySize = 5", NULL);
    assert_false(out_dir_exists("five"));
    assert_int_equal(run_captured(dir, submit, dir, build_dir, "five", "--limit 5"), 0);
    assert_true(out_dir_exists("five"));

    fake_command("scontrol", "MaxArraySize            = 0", 0);
    assert_bad_input(dir, run_captured(dir, submit, dir, build_dir, "five", ""),
                     "job arrays are disabled", "MaxArraySize = 0", NULL);

    /* scontrol without a cluster: Slurm's default, 1001 */
    fake_command("scontrol", "scontrol: fatal: Could not establish a configuration source", 1);
    char seeds[400] = "seeds = 0";
    for (int i = 1; i < 64; i++) snprintf(seeds + strlen(seeds), sizeof seeds - strlen(seeds), ",%d", i);
    char text[600];
    snprintf(text, sizeof text, "%s\nrun.log_every = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, "
             "15, 16\n", seeds);
    sweep_descriptor("many", text);
    assert_bad_input(dir, run_captured(dir, submit, dir, build_dir, "many", ""), "1024 tasks",
                     "MaxArraySize = 1001 (Slurm's default", NULL);
    assert_false(out_dir_exists("many"));

    /* a cluster that takes 98304 tasks: their files (2 kB each) exceed 64 MiB */
    fake_command("scontrol", "MaxArraySize            = 4000001", 0);
    char many[200] = "1";
    for (int i = 2; i <= 48; i++) snprintf(many + strlen(many), sizeof many - strlen(many), ",%d", i);
    snprintf(text, sizeof text, "%s\nrun.log_every = %s\nrun.recon_samples = 0, 1, 2, 3, 4, 5, "
             "6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, "
             "28, 29, 30, 31\n", seeds, many);
    sweep_descriptor("huge", text);
    assert_bad_input(dir, run_captured(dir, submit, dir, build_dir, "huge", ""), "98304 task files",
                     "64 MiB", NULL);
    assert_false(out_dir_exists("huge"));

    /* a --set of a swept key is refused too, naming the option */
    assert_bad_input(dir, run_captured(dir, "%s/mimae sweep plan five.ini --set train.seed=9",
                                       build_dir), "--set train.seed=9", "swept", NULL);
}

static int setup(void **state)
{
    (void)state;
    make_tmpdir(dir, sizeof dir, "mimae-sweep");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(dir);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (test_build_dir(argv[0], build_dir, sizeof build_dir)) return 1;
    unsetenv("MIMAE_SLURM_TEMPLATE"); /* the lookup under test, not the caller's choice */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expansion_order),
        cmocka_unit_test(test_bad_sweeps),
        cmocka_unit_test(test_template_from_any_directory),
        cmocka_unit_test(test_plan_is_printable),
        cmocka_unit_test(test_sweeps_that_mean_something_else),
        cmocka_unit_test(test_submit_checks_the_array_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
