/* The ViT encoder over S sequences of V+1 tokens: the given patch vectors
 * (S*V, P) are embedded, the cls token is put first, the fixed position
 * embedding of each patch is added, then depth blocks and the final norm.
 * MI-MAE runs it on each mask's visible patches; evaluation and fine-tuning
 * run it on every patch of the full image (V = L, patches in raster order).
 *
 * It sees the model through a view (core/vit/view.h). */
#ifndef MIMAE_VIT_ENCODER_H
#define MIMAE_VIT_ENCODER_H

#include "core/config/config.h"
#include "core/kernels/arena.h"
#include "core/vit/block.h"
#include "core/vit/params.h"
#include "core/vit/view.h"

/* The encoder's tensors for S sequences of V patch tokens (+ cls). */
typedef struct {
    int S, V;                   /* sequences, patch tokens per sequence */
    micro_batches_t *micro_batches; /* what the S sequences hold (NULL: one micro-batch) */
    float *emb;                 /* (S*V, D) embedded patches */
    float *x0;                  /* (S*(V+1), D) block input */
    block_acts_t *blocks;       /* enc_depth blocks (array owned by the creator) */
    float *h, *h_mean, *h_rstd; /* (S*(V+1), D) after the final norm */
    float *dres, *demb;         /* backward scratch: (S*(V+1), D), (S*V, D) */
} encoder_acts_t;

/* Lays out the tensors of S sequences of V patch tokens (blocks must point
 * to enc_depth block_acts_t). */
void encoder_acts_layout(arena_t *ar, encoder_acts_t *a, const mimae_config_t *c, int S, int V);

/* patch_vecs (S*V, P); positions (S*V): each token's patch index into pos. */
void encoder_forward(const vit_view_t *e, encoder_acts_t *a, const float *patch_vecs,
                     const int *positions);

/* dh (S*(V+1), D): the gradient w.r.t. h. Accumulates into e->grads and
 * reports each finished block through e->ready. */
void encoder_backward(const vit_view_t *e, encoder_acts_t *a, const float *dh,
                      const float *patch_vecs, block_scratch_t *scratch);

#endif
