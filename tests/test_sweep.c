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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
