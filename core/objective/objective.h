/* The three phases of an MI-MAE step on one process's micro-batch, split so
 * that dist/ can gather features between them:
 *   1. mimae_forward: encoder, decoder, pooled latents z, unit features u, Q;
 *   2. mimae_losses: the four loss terms and the gradients of L (and L_q) with
 *      respect to the decoder output, to u and z (over candidate arrays that
 *      may hold every rank's features), and to Q's outputs;
 *   3. mimae_backward: from those gradients to every parameter gradient.
 * Masks come from m->perm (B, L), set by mimae_sample_masks or by the caller. */
#ifndef MIMAE_OBJECTIVE_OBJECTIVE_H
#define MIMAE_OBJECTIVE_OBJECTIVE_H

#include <stdint.h>

#include "core/vit/model.h"

typedef struct {
    double rec, max, min, q; /* L_rec, L_max, L_min, L_q */
    double total;            /* w_rec L_rec + w_max L_max + w_min L_min */
} mimae_losses_t;

/* m->perm from the MASK streams of (seed, epoch, image_index[b]). */
void mimae_sample_masks(mimae_model_t *m, uint64_t seed, uint64_t epoch,
                        const uint64_t *image_index);

/* images: (B, H, W, C) float, already augmented and normalised. */
void mimae_forward(mimae_model_t *m, const float *images);

/* All four terms on one process: mimae_local_losses then mimae_mi_losses
 * with this process's own mu/logvar. cand_u (Bg*N, E) and cand_z (Bg*N, D)
 * hold the features of the global batch (image-major), this process's images
 * at rows offset*N...; dcand_u and dcand_z (same shapes) accumulate, the
 * caller zeroes them. The returned terms are this process's shares (they sum
 * over processes to the global values). */
void mimae_losses(mimae_model_t *m, const float *cand_u, const float *cand_z, int Bg,
                  int offset, float *dcand_u, float *dcand_z, mimae_losses_t *out);

/* The terms that need only this micro-batch: L_rec (gradient into
 * acts.dec.dpred) and L_q (into acts.dmu, acts.dlv); normalised by Bg images. */
void mimae_local_losses(mimae_model_t *m, int Bg, mimae_losses_t *out);

/* The terms over the global batch: L_max (InfoNCE on cand_u) and L_min (CLUB
 * on cand_z with the B micro-batch images' mu and logvar, (B*N, D) each),
 * gradients accumulated into dcand_u / dcand_z. Sets out->max, out->min. */
void mimae_mi_losses(const mimae_config_t *cfg, const mimae_dims_t *dims, const float *cand_u,
                     const float *cand_z, const float *mu, const float *logvar, int Bg,
                     int offset, int B, float *dcand_u, float *dcand_z, float *scratch,
                     mimae_losses_t *out);

/* mimae_mi_losses for B <= m->batch of this model's images (their own mu
 * and logvar from the last forward are given explicitly, as a step may
 * have saved them), with the model's scratch. */
void mimae_batch_mi_losses(mimae_model_t *m, const float *cand_u, const float *cand_z,
                           const float *mu, const float *logvar, int Bg, int offset, int B,
                           float *dcand_u, float *dcand_z, mimae_losses_t *out);

/* out->total from the terms and the weights. */
void mimae_losses_total(const mimae_config_t *cfg, mimae_losses_t *out);

/* du (S, E) and dz (S, D): the gradients for this process's own features.
 * Overwrites the model and Q gradient blocks. */
void mimae_backward(mimae_model_t *m, const float *du, const float *dz);

/* ---- What a step across processes sees of the model (dist/train_step.h):
 * these sizes and pointers, and the functions above; not the model's fields. */
typedef struct {
    int images, masks;   /* B images per micro-batch, N masks */
    int global_batch;    /* the config's */
    size_t image_floats; /* H*W*C of one image */
    size_t feature_dim;  /* E: width of the unit features u */
    size_t latent_dim;   /* D: width of z, mu and logvar */
    size_t grad_floats;  /* the gradient vector: model, then Q */
    int grad_ranges;     /* the most ranges one backward reports */
} mimae_step_shape_t;

mimae_step_shape_t mimae_step_shape(const mimae_model_t *m);

/* The last forward's features: u (B*N, E), z, mu and logvar (B*N, D). */
typedef struct {
    const float *u, *z, *mu, *logvar;
} mimae_features_t;

mimae_features_t mimae_features(const mimae_model_t *m);

/* The gradient vector (grad_floats), which mimae_backward overwrites. */
float *mimae_gradients(mimae_model_t *m);

#endif
