/* The MI-MAE model of one process: parameters, gradients and AdamW moments of
 * the encoder/decoder/projector and of Q, and every activation of a
 * forward (one or several micro-batches), each in one block sized once from the
 * config (llm.c manner). Nothing here allocates after mimae_model_create and
 * mimae_model_hold_micro_batches.
 *
 * Shapes: B images per forward, N masks, S = B*N sequences (s = b*N + k),
 * V visible patches, Te = V+1 encoder tokens, L patches, Td = L+1 decoder
 * tokens, P pixels per patch, D/Dd encoder/decoder width, E feature width. */
#ifndef MIMAE_VIT_MODEL_H
#define MIMAE_VIT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/config/config.h"
#include "core/kernels/micro_batches.h"
#include "core/vit/block.h"
#include "core/vit/decoder.h"
#include "core/vit/encoder.h"
#include "core/vit/params.h"

typedef struct {
    /* inputs and masks */
    float *patches;             /* (B, L, P) */
    float *target;              /* (B, L, P) reconstruction targets */
    float *vis_pix;             /* (S*V, P) visible patch pixels */
    /* encoder on the visible tokens of every mask; enc.h (S*Te, D) is the latent */
    encoder_acts_t enc;
    /* decoder over all patches of every mask's sequence */
    decoder_acts_t dec;
    /* MI features */
    float *z;                   /* (S, D) pooled latents */
    float *proj_pre, *proj_post;/* (S, proj_hidden) */
    float *g;                   /* (S, E) projector output */
    float *g_norm;              /* (S) */
    float *u;                   /* (S, E) unit features */
    /* Q */
    float *qe;                  /* (S*V, H) */
    float *qs;                  /* (S, H) */
    float *mu_pre, *mu_post, *mu;  /* (S, H), (S, H), (S, D) */
    float *lv_pre, *lv_post, *lv;  /* (S, H), (S, H), (S, D) after tanh */
    /* gradients of activations (reused scratch) */
    float *dh;
    float *du, *dg, *dz, *dproj_hidden;
    float *dmu, *dlv, *dq_hidden, *dqs, *dqs_lv, *dqe;
    block_scratch_t scratch;    /* sized for the wider of encoder and decoder */
    micro_batches_t *micro_batches; /* what the rows hold (NULL: one micro-batch) */
    float *mi_scratch;          /* InfoNCE logits (B, global_batch), mask uniforms (L) */
    /* fixed tables */
    float *pos_enc, *pos_dec, *pos_q;
} activations_t;

typedef struct {
    mimae_config_t cfg;
    mimae_dims_t dims;
    int batch;                  /* B: images per forward on this process */
    /* encoder, decoder, projector */
    param_table_t table, grad_table;
    model_params_t params, grads;
    float *param_mem, *grad_mem, *m_mem, *v_mem;
    /* approximation network Q */
    param_table_t q_table, q_grad_table;
    q_params_t q, q_grads;
    float *q_param_mem, *q_grad_mem, *q_m_mem, *q_v_mem; /* q_grad_mem = grad_mem +
                                   table.total: all gradients form one vector */
    uint16_t *param16, *q_param16; /* train.precision = bf16: the parameters' bf16 copies
                                   the products read (mimae_model_mirror_weights), else
                                   NULL; written by AdamW with each update */
    long param16_step;          /* the step the copies hold the parameters of; -1: none */
    float *own_grad_mem;        /* the model's gradient block; grad_mem is it unless a
                                   step lends another (mimae_model_use_gradient_block) */
    /* activations of the B images of a forward and backward */
    activations_t acts;
    float *act_mem;             /* their block */
    size_t act_floats;          /* floats of act_mem */
    int *perm, *vis_patch, *token_of; /* (B, L), (S, V), (S, L) */
    int *int_mem;               /* the masks' block */
    micro_batches_t micro_batches; /* what the B images hold (count 0 or 1: one) */
    long step;                  /* optimiser updates done */
    grads_ready_t ready, q_ready; /* where the backward reports finished gradients */
} mimae_model_t;

/* Allocates everything for micro-batches of `batch` images and initialises
 * the parameters (MAE init from seed). Returns NULL with a message in err. */
mimae_model_t *mimae_model_create(const mimae_config_t *cfg, int batch, uint64_t seed,
                                  char *err, size_t errlen);
void mimae_model_free(mimae_model_t *m);

/* Makes a model created for micro-batches of B images hold k of them at
 * once, for the deterministic reduction: its activations are regrown for
 * k*B images (m->batch becomes k*B), and its backward forms every parameter
 * gradient per micro-batch and sums them in the deterministic tree
 * (core/kernels/micro_batches.h), so one forward and one backward over the
 * k*B images give bitwise what k micro-batches summed by dist/tree_sum
 * give. k must be a power of two; k = 1 (one micro-batch a backward) forms
 * the gradients in the same tiles as k > 1 does.
 * Allocates; never call it in a step. 0, or -1 (out of memory, with the
 * bytes in err; the model then has no activations and must be freed). */
int mimae_model_hold_micro_batches(mimae_model_t *m, int micro_batches, char *err,
                                   size_t errlen);

/* Sets the precision of the products of the linear layers (bf16 NULL:
 * f32 through OpenBLAS; else bf16 through oneDNN, with a plan prepared for
 * every product shape of a step) and then lets micro_batches_probe decide
 * which run whole (after mimae_model_hold_micro_batches, if any). Allocates;
 * never call it in a step. 0, or -1 and err. */
int mimae_model_prepare_products(mimae_model_t *m, bf16_products_t *bf16, char *err,
                                 size_t errlen);

/* Has bf16 keep a bf16 copy of the parameters of the model and of Q
 * (bf16_products_mirror), which the products read instead of converting
 * the weights at every product. AdamW writes the copies with each update;
 * mimae_model_refresh_bf16_weights makes them when they do not hold the
 * parameters of m->step (the first step, after a resume). 0, or -1 and err. */
int mimae_model_mirror_weights(mimae_model_t *m, bf16_products_t *bf16, char *err,
                               size_t errlen);
void mimae_model_refresh_bf16_weights(mimae_model_t *m, bf16_products_t *bf16);

/* How many of the model's product shapes (*shapes of them, 0 with one
 * micro-batch) run once over all its rows rather than once per micro-batch
 * (this BLAS gave other bits run whole: micro_batches.h). */
int mimae_model_whole_products(const mimae_model_t *m, int *shapes);

/* Bytes of the parameters, gradients and AdamW moments (model and Q). */
size_t mimae_model_state_bytes(const mimae_model_t *m);

/* Bytes of the activations and masks of the model's m->batch images. */
size_t mimae_model_activation_bytes(const mimae_model_t *m);

/* Points the gradient vector (model then Q) at block (grad_floats of
 * mimae_step_shape), or back at the model's own with NULL: a step that sums
 * micro-batches can have each backward write straight into its sum's
 * buffer. */
void mimae_model_use_gradient_block(mimae_model_t *m, float *block);

/* Has mimae_backward report each finished range of the gradient vector
 * (model then Q; the ranges of one backward are disjoint and cover it) to
 * fn(ctx, offset, count); fn NULL stops the reports. */
void mimae_listen_grads(mimae_model_t *m, grads_ready_fn fn, void *ctx);

/* The encoder's and the decoder's views of the model. */
vit_view_t mimae_encoder(mimae_model_t *m);
vit_view_t mimae_decoder(mimae_model_t *m);

/* Floats in the parameter/gradient blocks (model and Q). */
size_t mimae_model_param_count(const mimae_model_t *m);
size_t mimae_model_q_param_count(const mimae_model_t *m);

#endif
