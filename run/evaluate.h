/* Evaluation of a pre-trained encoder (docs/METHOD.md "Evaluation"), distributed
 * over the ranks of the run: features of whole unaugmented images, the
 * ScaLAPACK ridge linear probe, k-NN, MI statistics on a fixed batch, and
 * fine-tuning (on a copy of the model). Collective over MPI_COMM_WORLD. */
#ifndef MIMAE_RUN_EVALUATE_H
#define MIMAE_RUN_EVALUATE_H

#include <stddef.h>

#include <stdint.h>

#include "core/vit/model.h"

/* What to evaluate, and on which data (a run's data.* and eval.* keys). */
typedef struct {
    const char *train_data;  /* HDF5 data set the features are fitted on */
    const char *test_data;   /* NULL or "": no probe, k-NN or fine-tuning */
    long train_limit, test_limit; /* use the first n images (0: all) */
    uint64_t seed;           /* the MI batch's masks, fine-tuning's order */
    int linear_probe, knn, mi, finetune; /* which evaluations run */
    int knn_k;
    long mi_images;          /* the fixed batch of the MI statistics */
    int finetune_epochs;
    double finetune_blr, layer_decay, label_smoothing;
    double label_fraction;   /* labelled share of train used by fine-tuning */
} eval_config_t;

typedef struct {
    int have_probe, have_knn, have_mi, have_finetune;
    double probe_top1, probe_lambda, probe_val_top1;
    double knn_top1;
    double infonce_bound, club, gaussian_mi; /* on the fixed MI batch */
    double finetune_top1;
} eval_results_t;

/* evaluate_model's status when a stop was requested (run/stop_signal.h). */
#define EVAL_STOPPED 1

/* Everything an evaluation of a model of config mc over `ranks` ranks will
 * need, checked before anything is read for it or written: data.train, and
 * data.test when the probe, k-NN or fine-tuning need it, are data sets of the
 * model's image shape, with the same classes; eval.label_fraction leaves at
 * least a global batch of labelled images and the global batch divides over
 * the ranks (fine-tuning); eval.mi_images gives at least 2 images per rank
 * (MI statistics, N >= 2). Opens the data sets; no MPI call. 0, or -1 with
 * one line naming the file or key and the fix. */
int evaluate_check(const mimae_config_t *mc, const eval_config_t *cfg, int ranks, char *err,
                   size_t errlen);

/* Runs what the config asks for on the model's current parameters (the
 * model is not changed), after evaluate_check. Evaluations that need a test
 * set are skipped, with a note on rank 0's stderr, when data.test is empty;
 * the MI statistics need N >= 2 masks. A stop request (SIGTERM, SIGUSR1,
 * SIGINT) on any rank is seen by all ranks together at the next safe point
 * (between phases, batches and fine-tuning steps): then every rank returns
 * EVAL_STOPPED and *out holds nothing. Returns 0, EVAL_STOPPED, or -1 with a
 * one-line message. */
int evaluate_model(const mimae_model_t *m, const eval_config_t *cfg, eval_results_t *out,
                   char *err, size_t errlen);

#endif
