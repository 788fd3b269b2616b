/* Evaluation of a pre-trained encoder (METHOD.md "Evaluation"), distributed
 * over the ranks of the run: features of whole unaugmented images, the
 * ScaLAPACK ridge linear probe, k-NN, MI statistics on a fixed batch, and
 * fine-tuning (on a copy of the model). Collective over MPI_COMM_WORLD. */
#ifndef MIMAE_RUN_EVALUATE_H
#define MIMAE_RUN_EVALUATE_H

#include <stddef.h>

#include "core/vit/model.h"
#include "experiments/descriptor.h"

typedef struct {
    int have_probe, have_knn, have_mi, have_finetune;
    double probe_top1, probe_lambda, probe_val_top1;
    double knn_top1;
    double infonce_bound, club, gaussian_mi; /* on the fixed MI batch */
    double finetune_top1;
} eval_results_t;

/* Runs what d->run.eval_* asks for on the model's current parameters (the
 * model is not changed). Evaluations that need a test set are skipped, with
 * a note on rank 0's stderr, when data.test is empty; the MI statistics need
 * N >= 2 masks. Returns 0, or -1 with a one-line message. */
int evaluate_model(const mimae_model_t *m, const descriptor_t *d, eval_results_t *out,
                   char *err, size_t errlen);

#endif
