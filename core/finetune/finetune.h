/* Fine-tuning (docs/METHOD.md step E4; MAE's recipe): the pre-trained encoder on
 * whole images, the pooled feature, a linear head, cross-entropy with label
 * smoothing, AdamW with layer-wise lr decay. The encoder's parameters and
 * gradients are the model's own blocks; the head has its own.
 *
 * Layer ids (MAE's param_groups_lrd): patch_embed and cls_token 0, block i
 * i+1, the final norm and the head depth+1; a tensor's lr is scaled by
 * layer_decay^(depth+1 - id). Decoder, projector and Q are not trained. */
#ifndef MIMAE_FINETUNE_FINETUNE_H
#define MIMAE_FINETUNE_FINETUNE_H

#include <stdint.h>

#include "core/optim/adamw.h"
#include "core/vit/full_encoder.h"

typedef struct {
    mimae_model_t *m;
    full_encoder_t *fe;
    int B, classes;
    float smoothing;
    param_table_t head_table;
    head_params_t head, head_grads;
    float *head_mem, *head_grad_mem, *head_m, *head_v;
    float *lr_scale;                                   /* one per model tensor */
    float *features, *dfeatures, *logits;             /* (B, D), (B, D), (B, classes) */
    long step;
} finetune_t;

finetune_t *finetune_create(mimae_model_t *m, int B, int classes, float smoothing,
                            float layer_decay, uint64_t seed, char *err, size_t errlen);
void finetune_free(finetune_t *ft);

/* Forward and backward on n <= B images (normalised, augmented): overwrites
 * the model's and the head's gradients with this share of the mean loss over
 * Bg images. Returns the loss share; *correct counts right predictions. */
double finetune_grads(finetune_t *ft, const float *images, const int32_t *labels, int n,
                      int Bg, int *correct);

/* AdamW on the encoder (layer-wise scaled lr) and the head. */
void finetune_update(finetune_t *ft, const adamw_hparams_t *h);

/* Predicted classes of n <= B images. */
void finetune_predict(finetune_t *ft, const float *images, int n, int32_t *pred);

#endif
