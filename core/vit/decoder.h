/* MAE's decoder over S sequences: the latent tokens (S*(V+1), D) of each
 * mask are embedded to width Dd, mask tokens fill the L - V hidden positions,
 * the sequence is put back in raster order (cls first) and gets the fixed
 * position embedding, then depth blocks, a norm and the pixel prediction
 * (S*(L+1), P), cls row included.
 *
 * Like the encoder it sees the model through a view (core/vit/view.h). */
#ifndef MIMAE_VIT_DECODER_H
#define MIMAE_VIT_DECODER_H

#include "core/config/config.h"
#include "core/kernels/arena.h"
#include "core/vit/block.h"
#include "core/vit/params.h"
#include "core/vit/view.h"

typedef struct {
    int S;                         /* sequences */
    micro_batches_t *micro_batches; /* what they hold (NULL: one micro-batch) */
    float *y;                      /* (S*Te, Dd) embedded latents */
    float *x0;                     /* (S*Td, Dd) block input */
    block_acts_t *blocks;          /* dec_depth blocks (array owned by the creator) */
    float *n, *n_mean, *n_rstd;    /* (S*Td, Dd) after the final norm */
    float *pred;                   /* (S*Td, P) */
    float *dpred;                  /* (S*Td, P): the loss's gradient w.r.t. pred */
    float *dres, *dy;              /* backward scratch: (S*Td, Dd), (S*Te, Dd) */
} decoder_acts_t;

/* Lays out the tensors of S sequences (blocks must point to dec_depth
 * block_acts_t). */
void decoder_acts_layout(arena_t *ar, decoder_acts_t *a, const mimae_config_t *c, int S);

/* latent (S*Te, D); token_of (S, L): each patch's token in its sequence
 * (core/objective/masks.h). Leaves a->pred. */
void decoder_forward(const vit_view_t *d, decoder_acts_t *a, const float *latent,
                     const int *token_of);

/* From a->dpred to dlatent (S*Te, D), overwritten; accumulates the decoder's
 * parameter gradients and reports them through d->ready. scratch: the
 * blocks' (core/vit/block.h), its c part at least S*Td*Dd floats. */
void decoder_backward(const vit_view_t *d, decoder_acts_t *a, float *dlatent,
                      const float *latent, const int *token_of, block_scratch_t *scratch);

#endif
