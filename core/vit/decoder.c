#include "core/vit/decoder.h"

#include <string.h>

#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/kernels/profile.h"
#include "core/vit/tokens.h"

typedef struct {
    int S, Te, Td, V, L, P, D, Dd;
} decoder_sizes_t;

static decoder_sizes_t sizes_of(const mimae_config_t *c, int S)
{
    const mimae_dims_t d = mimae_config_dims(c);
    return (decoder_sizes_t){S, d.enc_tokens, d.dec_tokens, d.V, d.L, d.P, c->enc_dim,
                             c->dec_dim};
}

static block_dims_t block_dims_of(const mimae_config_t *c, const decoder_sizes_t *z,
                                  micro_batches_t *micro_batches)
{
    return (block_dims_t){z->S, z->Td, z->Dd, c->dec_heads, c->mlp_ratio * z->Dd, micro_batches};
}

void decoder_acts_layout(arena_t *ar, decoder_acts_t *a, const mimae_config_t *c, int S)
{
    const decoder_sizes_t z = sizes_of(c, S);
    const size_t rows = (size_t)S * z.Td;
    a->S = S;
    a->y = arena_take(ar, (size_t)S * z.Te * z.Dd);
    a->x0 = arena_take(ar, rows * z.Dd);
    const block_dims_t bd = block_dims_of(c, &z, NULL);
    for (int i = 0; i < c->dec_depth; i++) vit_block_acts_layout(ar, &a->blocks[i], &bd);
    a->n = arena_take(ar, rows * z.Dd);
    a->n_mean = arena_take(ar, rows);
    a->n_rstd = arena_take(ar, rows);
    a->pred = arena_take(ar, rows * z.P);
    a->dpred = arena_take(ar, rows * z.P);
    a->dres = arena_take(ar, rows * z.Dd);
    a->dy = arena_take(ar, (size_t)S * z.Te * z.Dd);
}

void decoder_forward(const vit_view_t *d, decoder_acts_t *a, const float *latent,
                     const int *token_of)
{
    const mimae_config_t *c = d->cfg;
    const model_params_t *p = d->params;
    const decoder_sizes_t z = sizes_of(c, a->S);
    PROFILED(PROFILE_EMBED, linear_forward(a->y, latent, p->dec_embed_w, p->dec_embed_b, z.S * z.Te, z.D, z.Dd,
                                           a->micro_batches));
    PROFILED(PROFILE_TOKENS, tokens_decoder_forward(a->x0, a->y, p->mask_token, d->pos, token_of, z.S, z.L, z.V, z.Dd));
    const block_dims_t bd = block_dims_of(c, &z, a->micro_batches);
    const float *x = a->x0;
    for (int i = 0; i < c->dec_depth; i++) {
        vit_block_forward(&a->blocks[i], &p->dec[i], x, &bd);
        x = a->blocks[i].out;
    }
    PROFILED(PROFILE_LAYERNORM, layernorm_forward(a->n, a->n_mean, a->n_rstd, x, p->dec_norm_w, p->dec_norm_b, z.S * z.Td,
                      z.Dd));
    PROFILED(PROFILE_EMBED, linear_forward(a->pred, a->n, p->dec_pred_w, p->dec_pred_b, z.S * z.Td, z.Dd, z.P,
                                           a->micro_batches));
}

void decoder_backward(const vit_view_t *d, decoder_acts_t *a, float *dlatent,
                      const float *latent, const int *token_of, block_scratch_t *scratch)
{
    const mimae_config_t *c = d->cfg;
    const model_params_t *p = d->params;
    model_params_t *g = d->grads;
    const decoder_sizes_t z = sizes_of(c, a->S);
    const int rows = z.S * z.Td;
    float *dn = scratch->c; /* free between the block backwards */
    PROFILED(PROFILE_EMBED, linear_backward(dn, g->dec_pred_w, g->dec_pred_b, a->dpred, a->n, p->dec_pred_w, rows, z.Dd,
                    z.P, a->micro_batches));
    memset(a->dres, 0, (size_t)rows * z.Dd * sizeof(float));
    PROFILED(PROFILE_LAYERNORM, layernorm_backward(a->dres, g->dec_norm_w, g->dec_norm_b, dn, a->blocks[c->dec_depth - 1].out,
                       p->dec_norm_w, a->n_mean, a->n_rstd, rows, z.Dd, a->micro_batches));
    const block_dims_t bd = block_dims_of(c, &z, a->micro_batches);
    for (int i = c->dec_depth - 1; i >= 0; i--)
        vit_block_backward(a->dres, &g->dec[i], &p->dec[i], &a->blocks[i],
                           i ? a->blocks[i - 1].out : a->x0, scratch, &bd);
    PROFILED(PROFILE_TOKENS, tokens_decoder_backward(a->dy, g->mask_token, a->dres, token_of, z.S, z.L, z.V, z.Dd,
                                                     a->micro_batches));
    PROFILED(PROFILE_EMBED, linear_backward(dlatent, g->dec_embed_w, g->dec_embed_b, a->dy, latent, p->dec_embed_w,
                    z.S * z.Te, z.D, z.Dd, a->micro_batches));
    static const char *const decoder[] = {"decoder_", "mask_token"};
    grads_ready_report(d->ready, decoder, 2);
}
