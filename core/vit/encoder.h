/* The ViT encoder over S sequences of V+1 tokens: the given patch vectors
 * (S*V, P) are embedded, the cls token is put first, the fixed position
 * embedding of each patch is added, then depth blocks and the final norm.
 * MI-MAE runs it on each mask's visible patches; evaluation and fine-tuning
 * run it on every patch of the full image (V = L, patches in raster order). */
#ifndef MIMAE_VIT_ENCODER_H
#define MIMAE_VIT_ENCODER_H

#include "core/kernels/arena.h"
#include "core/vit/model.h"

/* Lays out the tensors of S sequences of V patch tokens (blocks must point
 * to enc_depth block_acts_t). */
void encoder_acts_layout(arena_t *ar, encoder_acts_t *a, const mimae_config_t *c, int S, int V);

/* patch_vecs (S*V, P); positions (S*V): each token's patch index into pos
 * (the (L+1, D) table, cls row first). */
void encoder_forward(const mimae_model_t *m, encoder_acts_t *a, const float *patch_vecs,
                     const int *positions);

/* dh (S*(V+1), D): the gradient w.r.t. h. Accumulates into m->grads and
 * reports each finished range through m->grads_ready. */
void encoder_backward(const mimae_model_t *m, encoder_acts_t *a, const float *dh,
                      const float *patch_vecs, block_scratch_t *scratch);

#endif
