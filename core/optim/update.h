/* One optimiser step on a single process (the whole global batch here):
 * forward, loss terms, backward, non-finite guard, AdamW on the model and on
 * Q with the per-iteration schedule. dist/ composes the same phases with its
 * reductions in between and calls mimae_apply_update itself. */
#ifndef MIMAE_OPTIM_UPDATE_H
#define MIMAE_OPTIM_UPDATE_H

#include <stddef.h>

#include "core/objective/objective.h"

typedef struct {
    mimae_losses_t loss;
    double grad_norm;   /* of the model's gradient (not Q's) */
    double q_grad_norm;
    float lr;
} mimae_step_stats_t;

/* Returns 0, or -1 with a one-line message when a loss term or the gradient
 * norm is not finite (the parameters are then left untouched). Requires
 * m->batch == cfg.global_batch; masks come from m->perm. */
int mimae_train_step(mimae_model_t *m, const float *images, mimae_step_stats_t *stats,
                     char *err, size_t errlen);

/* Gradient norms above this would overflow AdamW's float second moment
 * (g * g > FLT_MAX for an element near it). */
#define MIMAE_GRAD_NORM_LIMIT 1e19

/* The non-finite guard, after the backward: 0 when every loss term is
 * finite and the model's gradient norm `grad_norm` and Q's are at most
 * MIMAE_GRAD_NORM_LIMIT (so finite); else -1 with a one-line message giving
 * the step, every loss term and the worst parameter tensor (the first with a
 * non-finite gradient, else the one with the largest gradient norm). */
int mimae_check_finite(const mimae_model_t *m, const mimae_losses_t *l, double grad_norm,
                       char *err, size_t errlen);

/* Every parameter and AdamW moment (model and Q) finite: 0, or -1 naming
 * the first that is not, as /params|adam_m|adam_v/<name>[i]. A pass over
 * three copies of the parameters: the trainer runs it before it writes a
 * checkpoint, so that none holds a state an update overflowed. */
int mimae_check_state(const mimae_model_t *m, char *err, size_t errlen);

/* AdamW on the model and on Q with the lr of update m->step; m->step++.
 * Returns the lr used. */
float mimae_apply_update(mimae_model_t *m);

#endif
