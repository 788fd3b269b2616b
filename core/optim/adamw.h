/* AdamW as PyTorch implements it (decoupled decay, then the Adam step with
 * bias corrections), over a parameter block described by a table: decay
 * applies only where the table says so (matrices and cls/mask tokens); docs/METHOD.md
 * step 12. */
#ifndef MIMAE_OPTIM_ADAMW_H
#define MIMAE_OPTIM_ADAMW_H

#include <stdint.h>

#include "core/vit/params.h"

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} adamw_hparams_t;

/* step is 1-based (the number of updates including this one). lr_scale
 * (one per table entry, or NULL for all 1) multiplies the lr of a tensor, as
 * layer-wise lr decay needs; a tensor with scale 0 is left alone entirely.
 * params16 (or NULL) receives the updated parameters rounded to bf16
 * (bf16_round), in the same pass: the copy the bf16 products read. */
void adamw_update(const param_table_t *t, float *params, const float *grads, float *m,
                  float *v, const adamw_hparams_t *h, long step, const float *lr_scale,
                  uint16_t *params16);

/* L2 norm of a whole gradient block, accumulated in double. */
double grad_norm(const float *grads, size_t n);

#endif
