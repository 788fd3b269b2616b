#include "core/vit/encoder.h"

#include <stdio.h>
#include <string.h>

#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/kernels/profile.h"
#include "core/vit/tokens.h"

static block_dims_t encoder_block_dims(const mimae_config_t *c, const encoder_acts_t *a)
{
    return (block_dims_t){a->S, a->V + 1, c->enc_dim, c->enc_heads, c->mlp_ratio * c->enc_dim,
                          a->micro_batches};
}

void encoder_acts_layout(arena_t *ar, encoder_acts_t *a, const mimae_config_t *c, int S, int V)
{
    const size_t D = c->enc_dim, T = (size_t)V + 1, R = (size_t)S * T;
    a->S = S;
    a->V = V;
    a->emb = arena_take(ar, (size_t)S * V * D);
    a->x0 = arena_take(ar, R * D);
    const block_dims_t bd = encoder_block_dims(c, a);
    for (int i = 0; i < c->enc_depth; i++) vit_block_acts_layout(ar, &a->blocks[i], &bd);
    a->h = arena_take(ar, R * D);
    a->h_mean = arena_take(ar, R);
    a->h_rstd = arena_take(ar, R);
    a->dres = arena_take(ar, R * D);
    a->demb = arena_take(ar, (size_t)S * V * D);
}

static int patch_floats(const mimae_config_t *c) { return c->patch * c->patch * c->channels; }

void encoder_forward(const vit_view_t *e, encoder_acts_t *a, const float *patch_vecs,
                     const int *positions)
{
    const mimae_config_t *c = e->cfg;
    const model_params_t *p = e->params;
    const int S = a->S, V = a->V, D = c->enc_dim;
    PROFILED(PROFILE_EMBED, linear_forward(a->emb, patch_vecs, p->patch_w, p->patch_b, S * V, patch_floats(c), D,
                                           a->micro_batches));
    PROFILED(PROFILE_TOKENS, tokens_encoder_forward(a->x0, a->emb, p->cls_token, e->pos, positions, S, V, D));
    const block_dims_t bd = encoder_block_dims(c, a);
    const float *x = a->x0;
    for (int i = 0; i < c->enc_depth; i++) {
        vit_block_forward(&a->blocks[i], &p->enc[i], x, &bd);
        x = a->blocks[i].out;
    }
    PROFILED(PROFILE_LAYERNORM, layernorm_forward(a->h, a->h_mean, a->h_rstd, x, p->norm_w, p->norm_b, S * (V + 1), D));
}

void encoder_backward(const vit_view_t *e, encoder_acts_t *a, const float *dh,
                      const float *patch_vecs, block_scratch_t *scratch)
{
    const mimae_config_t *c = e->cfg;
    const model_params_t *p = e->params;
    model_params_t *g = e->grads;
    const int S = a->S, V = a->V, D = c->enc_dim, depth = c->enc_depth;
    const size_t R = (size_t)S * (V + 1);
    memset(a->dres, 0, R * D * sizeof(float));
    PROFILED(PROFILE_LAYERNORM, layernorm_backward(a->dres, g->norm_w, g->norm_b, dh, a->blocks[depth - 1].out, p->norm_w,
                       a->h_mean, a->h_rstd, (int)R, D, a->micro_batches));
    static const char *const final_norm[] = {"norm."};
    grads_ready_report(e->ready, final_norm, 1);
    const block_dims_t bd = encoder_block_dims(c, a);
    for (int i = depth - 1; i >= 0; i--) {
        vit_block_backward(a->dres, &g->enc[i], &p->enc[i], &a->blocks[i],
                           i ? a->blocks[i - 1].out : a->x0, scratch, &bd);
        char block[PARAM_NAME_MAX];
        snprintf(block, sizeof block, "blocks.%d.", i);
        const char *const names[] = {block};
        grads_ready_report(e->ready, names, 1);
    }
    PROFILED(PROFILE_TOKENS, tokens_encoder_backward(a->demb, g->cls_token, a->dres, S, V, D,
                                                     a->micro_batches));
    PROFILED(PROFILE_EMBED, linear_backward(NULL, g->patch_w, g->patch_b, a->demb, patch_vecs, p->patch_w, S * V,
                    patch_floats(c), D, a->micro_batches));
    static const char *const embedding[] = {"patch_embed.", "cls_token"};
    grads_ready_report(e->ready, embedding, 2);
}
