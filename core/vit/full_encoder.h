/* The encoder on whole, unmasked images (all L patches in raster order plus
 * cls), for evaluation features and fine-tuning. It shares the parameters
 * (and gradients) of a model and has its own activations for B images. */
#ifndef MIMAE_VIT_FULL_ENCODER_H
#define MIMAE_VIT_FULL_ENCODER_H

#include "core/vit/model.h"

typedef struct {
    mimae_model_t *m;
    int B;
    encoder_acts_t enc;
    block_acts_t *blocks;
    float *mem;
    float *patches;     /* (B, L, P) */
    int *positions;     /* (B, L): 0..L-1 per image */
    block_scratch_t scratch;
    float *dh;          /* (B*(L+1), D) */
} full_encoder_t;

full_encoder_t *full_encoder_create(mimae_model_t *m, int B, char *err, size_t errlen);
void full_encoder_free(full_encoder_t *fe);

/* images (n <= B, H, W, C) normalised; features (n, D) pooled as m->cfg.pool
 * (mean of the patch tokens, or cls). */
void full_encoder_forward(full_encoder_t *fe, const float *images, int n, float *features);

/* After full_encoder_forward on n images: dfeatures (n, D) -> accumulates the
 * encoder's parameter gradients into m->grads. */
void full_encoder_backward(full_encoder_t *fe, const float *dfeatures, int n);

#endif
