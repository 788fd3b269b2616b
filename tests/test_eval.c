/* Evaluation end to end on labelled synthetic shapes, through
 * `mimae_dist eval` on 2 ranks: a randomly initialised encoder's linear
 * probe is above chance, and a few epochs of fine-tuning beat the probe; the
 * metrics land in the run's results file with the checkpoint they came from. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "io/checkpoint.h"
#include "io/results.h"
#include "io/synthetic.h"
#include "fs_util.h"
#include "mpi_run.h"

static char build_dir[512], work[64];

static void test_random_encoder_probe_and_finetune(void **state)
{
    (void)state;
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/data", work);
    assert_int_equal(synthetic_generate(path, 640, 16, 16, 1, 4, 1, err, sizeof err), 0);

    /* the run directory of a model that never trained: step-0 checkpoint + descriptor */
    mimae_config_t c;
    mimae_config_preset(&c, "test-small");
    c.channels = 1;
    c.global_batch = 16;
    mimae_model_t *m = mimae_model_create(&c, 1, 7, err, sizeof err);
    assert_non_null(m);
    snprintf(path, sizeof path, "%s/run/checkpoints", work);
    assert_int_equal(run_shell("mkdir -p %s", path), 0);
    char ckpt[300];
    checkpoint_path(ckpt, sizeof ckpt, path, 0);
    train_state_t st = {0, 0, 0, 7};
    assert_int_equal(checkpoint_save(ckpt, m, &st, err, sizeof err), 0);
    mimae_model_free(m);
    snprintf(path, sizeof path, "%s/run/descriptor.ini", work);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[model]\npreset = test-small\nchannels = 1\n[train]\nglobal_batch = 16\nseed = 7\n"
               "[data]\ntrain = %s/data/train.h5\ntest = %s/data/test.h5\n"
               "[eval]\nfinetune = 1\nfinetune_epochs = 6\nfinetune_blr = 0.1\nmi_images = 128\n",
            work, work);
    fclose(f);

    /* the exit status of mimae_dist itself (a pipe into tail would report tail's) */
    char prog[600], log[128];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(log, sizeof log, "%s/eval.log", work);
    const char *argv[] = {"mpirun", "-n", "2", "--oversubscribe", prog, "eval", ckpt, NULL};
    const int status = run_wait(run_start(argv, log, NULL), 600);
    print_log_tail(log, 3, NULL);
    assert_int_equal(status, 0);

    snprintf(path, sizeof path, "%s/run/results.h5", work);
    results_t *r = results_load(path, err, sizeof err);
    if (!r) fail_msg("%s", err);
    double probe = 0, knn = 0, ft = 0, bound = 0;
    assert_int_equal(results_get_eval(r, "linear_probe_top1", &probe), 0);
    assert_int_equal(results_get_eval(r, "knn_top1", &knn), 0);
    assert_int_equal(results_get_eval(r, "finetune_top1", &ft), 0);
    assert_int_equal(results_get_eval(r, "mi_infonce_bound", &bound), 0);
    const char *name, *from;
    double value;
    long step = -1;
    assert_int_equal(results_eval_at(r, 0, &name, &value, &from, &step), 0);
    assert_non_null(strstr(from, "ckpt-0000000000.h5"));
    assert_int_equal(step, 0);
    results_free(r);
    printf("  random encoder: linear probe %.3f, k-NN %.3f, fine-tuned %.3f (chance 0.25)\n",
           probe, knn, ft);
    assert_true(probe > 0.4);
    assert_true(knn > 0.3);
    assert_true(ft > probe);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    snprintf(work, sizeof work, "/tmp/mimae-eval-XXXXXX");
    if (!mkdtemp(work)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_encoder_probe_and_finetune),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (remove_tree(work)) return 1;
    return failed;
}
