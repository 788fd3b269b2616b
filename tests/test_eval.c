/* Evaluation end to end on labelled synthetic shapes, through
 * `mimae_dist eval` on 2 ranks: a randomly initialised encoder's linear
 * probe is above chance, and a few epochs of fine-tuning beat the probe; the
 * metrics land in the run's results file with the checkpoint they came from.
 * A run evaluated every epoch keeps every evaluation (/eval_history). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vit/model.h"
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

/* 3 epochs of 8 steps, eval.every_epochs = 1: evaluations after epochs 1
 * and 2 and at the end. The file itself (read with HDF5, as h5py would) has
 * all three as rows (step, epoch, value) of /eval_history/knn_top1, and
 * /eval/knn_top1 is still the latest value. */
static void test_every_epoch_evaluations_kept(void **state)
{
    (void)state;
    char path[256], err[1024];
    snprintf(path, sizeof path, "%s/data8", work);
    assert_int_equal(synthetic_generate(path, 128, 16, 16, 1, 4, 1, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/every.ini", work);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[model]\npreset = test-small\nchannels = 1\n"
               "[data]\ntrain = %s/data8/train.h5\ntest = %s/data8/test.h5\n"
               "[train]\nglobal_batch = 16\nepochs = 3\nseed = 3\n"
               "[run]\nout_dir = %s/every\nlog_every = 100\ncheckpoint_every = 0\n"
               "[eval]\nevery_epochs = 1\nmi = 0\n",
            work, work, work);
    assert_int_equal(fclose(f), 0);
    char prog[600], log[128];
    snprintf(prog, sizeof prog, "%s/mimae_dist", build_dir);
    snprintf(log, sizeof log, "%s/every.log", work);
    const char *argv[] = {"mpirun", "-n", "2", "--oversubscribe", prog, path, NULL};
    const int status = run_wait(run_start(argv, log, NULL), 600);
    print_log_tail(log, 4, NULL);
    assert_int_equal(status, 0);

    snprintf(path, sizeof path, "%s/every/results.h5", work);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t ds = H5Dopen2(file, "/eval_history/knn_top1", H5P_DEFAULT);
    if (ds < 0) {
        H5Fclose(file);
        fail_msg("%s: no /eval_history/knn_top1", path);
    }
    hid_t space = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    const int rank = H5Sget_simple_extent_ndims(space);
    H5Sget_simple_extent_dims(space, dims, NULL);
    double rows[9] = {0}, latest = -1;
    const int read_ok = rank == 2 && dims[0] == 3 && dims[1] == 3 &&
                        H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0;
    H5Sclose(space), H5Dclose(ds);
    ds = H5Dopen2(file, "/eval/knn_top1", H5P_DEFAULT);
    const int latest_ok = ds >= 0 &&
                          H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &latest) >= 0;
    if (ds >= 0) H5Dclose(ds);
    H5Fclose(file);
    if (!read_ok)
        fail_msg("/eval_history/knn_top1 is %d-D %llu x %llu, expected 3 x 3", rank,
                 (unsigned long long)dims[0], (unsigned long long)dims[1]);
    for (int k = 0; k < 3; k++) {
        printf("  evaluation %d: step %g, epoch %g, knn_top1 %.4f\n", k, rows[3 * k],
               rows[3 * k + 1], rows[3 * k + 2]);
        assert_true(rows[3 * k] == 8.0 * (k + 1)); /* 128 images / 16 = 8 steps an epoch */
        assert_true(rows[3 * k + 1] == k + 1.0);
        assert_true(rows[3 * k + 2] >= 0.0 && rows[3 * k + 2] <= 1.0);
    }
    assert_true(latest_ok);
    assert_true(latest == rows[8]);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (mpi_test_init(argv[0], build_dir, sizeof build_dir)) return 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* a missing dataset is reported by the test */
    make_tmpdir(work, sizeof work, "mimae-eval");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_encoder_probe_and_finetune),
        cmocka_unit_test(test_every_epoch_evaluations_kept),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (remove_tree(work)) return 1;
    return failed;
}
