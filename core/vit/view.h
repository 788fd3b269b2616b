/* What the encoder and the decoder use of a model: its config, parameters
 * and gradients, their fixed position table, and where finished gradients
 * are reported. Passing this view instead of the model keeps the model
 * (which holds their activations) and them from depending on each other. */
#ifndef MIMAE_VIT_VIEW_H
#define MIMAE_VIT_VIEW_H

#include "core/config/config.h"
#include "core/vit/params.h"

typedef struct {
    const mimae_config_t *cfg;
    const model_params_t *params;
    model_params_t *grads;       /* accumulated into by the backward */
    const float *pos;            /* (L+1, width) position table, cls row first */
    const grads_ready_t *ready;  /* NULL: nobody listens */
} vit_view_t;

#endif
