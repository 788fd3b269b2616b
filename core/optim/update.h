/* The end of a training step, once the gradient of the global batch is in
 * the model: the non-finite guard, then AdamW on the model and on Q with the
 * per-iteration schedule. dist/train_step.h composes the whole step. */
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

/* Gradient norms above this would overflow AdamW's float second moment
 * (g * g > FLT_MAX for an element near it). */
#define MIMAE_GRAD_NORM_LIMIT 1e19

/* The non-finite guard, after the backward: 0 when every loss term is
 * finite and the model's gradient norm `grad_norm` and Q's `q_grad_norm`
 * (both computed by the caller once) are at most MIMAE_GRAD_NORM_LIMIT (so finite); else -1 with a one-line message giving
 * the step, every loss term and the worst parameter tensor (the first with a
 * non-finite gradient, else the one with the largest gradient norm). */
int mimae_check_finite(const mimae_model_t *m, const mimae_losses_t *l, double grad_norm,
                       double q_grad_norm, char *err, size_t errlen);

/* Every parameter and AdamW moment (model and Q) finite: 0, or -1 naming
 * the first that is not, as /params|adam_m|adam_v/<name>[i]. A pass over
 * three copies of the parameters: the trainer runs it before it writes a
 * checkpoint, so that none holds a state an update overflowed. */
int mimae_check_state(const mimae_model_t *m, char *err, size_t errlen);

/* AdamW on the model and on Q with the lr of update m->step; m->step++.
 * Returns the lr used. */
float mimae_apply_update(mimae_model_t *m);

/* The end of a step with the global batch's loss terms in *loss (total
 * filled in here) and gradient in the model: the gradient norms, the guard,
 * then the update. 0 with stats filled, or -1 as mimae_check_finite (the
 * parameters untouched). */
int mimae_finish_step(mimae_model_t *m, mimae_losses_t *loss, mimae_step_stats_t *stats,
                      char *err, size_t errlen);

#endif
