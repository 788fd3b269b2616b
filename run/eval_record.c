#include "run/eval_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <mpi.h>

#include "dist/collectives.h"
#include "io/checkpoint.h"
#include "io/text_escape.h"
#include "run/exit_status.h"
#include "run/run_dir.h"

/* Evaluation reads data.train in place, not its copy in data.stage_dir: each
 * rank evaluates a contiguous share of the whole split (and the MI batch is
 * its first images), which crosses every node's shards, while a node's stage
 * directory holds only its own ranks' (README, "Data at scale"). */
eval_config_t eval_config_of(const run_config_t *run)
{
    return (eval_config_t){
        .train_data = run->train_data, .test_data = run->test_data,
        .train_limit = run->train_limit, .test_limit = run->test_limit,
        .seed = (uint64_t)run->seed,
        .linear_probe = run->eval_linear_probe, .knn = run->eval_knn, .mi = run->eval_mi,
        .finetune = run->eval_finetune, .knn_k = run->knn_k, .mi_images = run->mi_images,
        .finetune_epochs = run->finetune_epochs, .finetune_blr = run->finetune_blr,
        .layer_decay = run->layer_decay, .label_smoothing = run->label_smoothing,
        .label_fraction = run->label_fraction,
    };
}

int eval_record(const mimae_model_t *m, const eval_config_t *cfg, results_t *results,
                const char *ckpt, long step, int rank, char *err, size_t errlen)
{
    eval_results_t ev;
    if (rank == 0) text_eprintf("mimae_dist: evaluating %s", ckpt);
    const int rc = evaluate_model(m, cfg, &ev, err, errlen);
    if (rc) return rc;
    if (rank != 0) return 0;
    const struct { int have; const char *name; double value; } metric[] = {
        {ev.have_probe, "linear_probe_top1", ev.probe_top1},
        {ev.have_probe, "linear_probe_lambda", ev.probe_lambda},
        {ev.have_knn, "knn_top1", ev.knn_top1},
        {ev.have_mi, "mi_infonce_bound", ev.infonce_bound},
        {ev.have_mi, "mi_club", ev.club},
        {ev.have_mi, "mi_gaussian", ev.gaussian_mi},
        {ev.have_finetune, "finetune_top1", ev.finetune_top1},
    };
    fprintf(stderr, "mimae_dist: eval at step %ld:", step);
    for (size_t i = 0; i < sizeof metric / sizeof metric[0]; i++) {
        if (!metric[i].have) continue;
        if (results_set_eval(results, metric[i].name, metric[i].value, ckpt, step))
            return snprintf(err, errlen, "out of memory recording %s", metric[i].name), -1;
        fprintf(stderr, " %s %.4f", metric[i].name, metric[i].value);
    }
    fprintf(stderr, "\n");
    return 0;
}

/* RUN_DIR/checkpoints/ckpt-N.h5 -> RUN_DIR */
static void run_dir_of(char *dir, size_t len, const char *checkpoint)
{
    snprintf(dir, len, "%s", checkpoint);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, len, ".");
    }
}

int eval_checkpoint_command(const char *checkpoint, const char *const *overrides,
                            int n_overrides, results_env_t *env, int rank, int ranks,
                            char *err, size_t errlen)
{
    char run_dir[DESCRIPTOR_PATH_MAX], desc_path[DESCRIPTOR_PATH_MAX + 32];
    char results_path[DESCRIPTOR_PATH_MAX + 16];
    run_dir_of(run_dir, sizeof run_dir, checkpoint);
    snprintf(desc_path, sizeof desc_path, "%s/descriptor.ini", run_dir);
    snprintf(results_path, sizeof results_path, "%s/results.h5", run_dir);
    descriptor_t *desc = malloc(sizeof *desc);
    mimae_model_t *model = NULL;
    results_t *results = NULL;
    run_lock_t lock = {-1};
    int status = EXIT_BAD_INPUT;
    if (!desc) {
        snprintf(err, errlen, "out of memory");
        return EXIT_FAILURE_INTERNAL;
    }
    mimae_config_t cfg;
    if (descriptor_load(desc, desc_path, overrides, n_overrides, 0, err, errlen) ||
        checkpoint_read_config(checkpoint, &cfg, err, errlen))
        goto done;
    desc->model = cfg;
    const eval_config_t ecfg = eval_config_of(&desc->run);
    /* what the evaluation needs, before anything is read for it or written */
    if (!dist_all_ok(evaluate_check(&cfg, &ecfg, ranks, err, errlen) == 0, MPI_COMM_WORLD))
        goto done;
    /* results.h5 is rewritten: the run directory must not be in use */
    if ((status = run_lock_take(&lock, run_dir, rank, err, errlen)) != EXIT_OK) goto done;
    status = EXIT_BAD_INPUT;
    if (!dist_all_ok(rank != 0 || run_dir_check_outputs(run_dir, err, errlen) == 0,
                     MPI_COMM_WORLD))
        goto done;
    model = mimae_model_create(&cfg, cfg.global_batch < 32 ? cfg.global_batch : 32, 0, err, errlen);
    if (!dist_all_ok(model != NULL, MPI_COMM_WORLD)) goto done;
    train_state_t st;
    if (!dist_all_ok(checkpoint_load(checkpoint, model, &st, err, errlen) == 0, MPI_COMM_WORLD))
        goto done;
    int ok = 1;
    if (rank == 0) {
        env->ranks = ranks;
        env->threads = openblas_get_num_threads();
        const int exists = access(results_path, F_OK) == 0;
        results = exists ? results_load(results_path, err, errlen) : results_new(&cfg, env);
        if (!results && !exists) snprintf(err, errlen, "out of memory for the results");
        /* metrics of another run's model must not land in this run's file */
        ok = results && (!exists || results_check_config(
                                        results, results_path, &cfg, checkpoint,
                                        "the checkpoint belongs to another run: evaluate it in "
                                        "its own run directory", err, errlen) == 0) &&
             run_lock_record_holder(&lock, err, errlen) == 0 &&
             results_set_eval_state(results, st.step, RESULTS_EVAL_PENDING) == 0;
    }
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) goto done;
    const int rc = eval_record(model, &ecfg, results, checkpoint, st.step, rank, err, errlen);
    if (rc < 0) {
        status = EXIT_FAILURE_INTERNAL;
        goto done;
    }
    /* stopped: saved as pending, and running the command again evaluates it */
    if (rank == 0)
        ok = (rc == EVAL_STOPPED ||
              results_set_eval_state(results, st.step, RESULTS_EVAL_DONE) == 0) &&
             results_write(results, results_path, err, errlen) == 0;
    status = !dist_all_ok(ok, MPI_COMM_WORLD) ? EXIT_FAILURE_INTERNAL
             : rc == EVAL_STOPPED             ? EXIT_REQUEUE
                                              : EXIT_OK;
done:
    if (results) results_free(results);
    mimae_model_free(model);
    free(desc);
    run_lock_release(&lock);
    return status;
}
