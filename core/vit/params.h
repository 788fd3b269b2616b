/* Parameter tables in the llm.c manner: every tensor of a network lives in one
 * float block, described by a table of names, shapes and offsets, and reached
 * through a struct of named pointers. The same table binds the parameter,
 * gradient and AdamW moment blocks.
 *
 * Linear weights are stored as (out, in), like PyTorch, so y = x W^T + b.
 * Names follow MAE's state_dict so checkpoints read naturally. */
#ifndef MIMAE_VIT_PARAMS_H
#define MIMAE_VIT_PARAMS_H

#include <stddef.h>
#include "core/config/config.h"

#define PARAM_NAME_MAX 64

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[2];
    size_t offset;   /* in floats, from the start of the block */
    size_t count;
    int decay;       /* AdamW weight decay applies (matrices, cls/mask tokens) */
    float **field;   /* where the bound pointer goes in the named struct */
} param_info_t;

typedef struct {
    param_info_t *info;
    int count, capacity;
    size_t total;    /* floats in the block, including alignment padding */
} param_table_t;

typedef struct {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} block_params_t;

/* Encoder, decoder and projector: the parameters the objective L trains. */
typedef struct {
    float *patch_w, *patch_b, *cls_token;
    block_params_t *enc;            /* enc_depth blocks */
    float *norm_w, *norm_b;
    float *dec_embed_w, *dec_embed_b, *mask_token;
    block_params_t *dec;            /* dec_depth blocks */
    float *dec_norm_w, *dec_norm_b, *dec_pred_w, *dec_pred_b;
    float *proj_fc1_w, *proj_fc1_b, *proj_fc2_w, *proj_fc2_b;  /* NULL without projector */
} model_params_t;

/* The approximation network Q of CLUB, trained only by L_q. */
typedef struct {
    float *embed_w, *embed_b;
    float *mu_fc1_w, *mu_fc1_b, *mu_fc2_w, *mu_fc2_b;
    float *lv_fc1_w, *lv_fc1_b, *lv_fc2_w, *lv_fc2_b;
} q_params_t;

/* A linear classification head on the pooled encoder feature (fine-tuning). */
typedef struct {
    float *w, *b;
} head_params_t;

/* Builds the table of the model's tensors and allocates p->enc / p->dec.
 * The table's fields point into *p, so p must outlive the table. */
int model_params_table(param_table_t *t, model_params_t *p, const mimae_config_t *cfg);
int q_params_table(param_table_t *t, q_params_t *q, const mimae_config_t *cfg);
int head_params_table(param_table_t *t, head_params_t *h, int in, int classes);

/* Points every named field at base + offset. */
void param_table_bind(const param_table_t *t, float *base);

const param_info_t *param_table_find(const param_table_t *t, const char *name);
void param_table_free(param_table_t *t);

/* Called each time a contiguous range of a gradient vector is final, so that
 * dist/ can start reducing it while the rest of the backward runs (offsets in
 * floats from the vector's start). */
typedef void (*grads_ready_fn)(void *ctx, size_t offset, size_t count);

/* Where a backward reports finished gradients: the table of the tensors, the
 * offset of the table's block in the gradient vector, and the listener
 * (fn NULL: nobody listens). */
typedef struct {
    const param_table_t *table;
    size_t base;
    grads_ready_fn fn;
    void *ctx;
} grads_ready_t;

/* Reports the gradients of every tensor whose name starts with one of the n
 * prefixes as final. The range comes from the table (from the first such
 * tensor's offset to the next tensor's, padding included), so a backward
 * names what it finished, not where it happens to lie; the tensors must be
 * adjacent in the table (aborts otherwise: a table/backward mismatch). */
void grads_ready_report(const grads_ready_t *r, const char *const *prefixes, int n);

/* Model/Q struct free (the block arrays); tensors themselves are not owned. */
void model_params_free(model_params_t *p);

#endif
