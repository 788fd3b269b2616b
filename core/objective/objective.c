#include "core/objective/objective.h"

#include <math.h>
#include <string.h>

#include "core/objective/gaussian_q.h"
#include "core/vit/encoder.h"
#include "core/objective/infonce.h"
#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/objective/masks.h"
#include "core/kernels/mlp.h"
#include "core/vit/patches.h"
#include "core/objective/recon_loss.h"
#include "core/vit/tokens.h"

#define NORMALIZE_EPS 1e-12f

static mlp_t projector_mlp(const mimae_model_t *m)
{
    const model_params_t *p = &m->params;
    return (mlp_t){p->proj_fc1_w, p->proj_fc1_b, p->proj_fc2_w, p->proj_fc2_b,
                   m->cfg.enc_dim, m->cfg.proj_hidden, m->cfg.proj_out, ACT_GELU};
}

static mlp_t q_head_mlp(const mimae_model_t *m, int logvar)
{
    const q_params_t *q = &m->q;
    const int H = m->cfg.q_hidden, D = m->cfg.enc_dim;
    if (logvar) return (mlp_t){q->lv_fc1_w, q->lv_fc1_b, q->lv_fc2_w, q->lv_fc2_b, H, H, D, ACT_RELU};
    return (mlp_t){q->mu_fc1_w, q->mu_fc1_b, q->mu_fc2_w, q->mu_fc2_b, H, H, D, ACT_RELU};
}

static block_dims_t decoder_dims(const mimae_model_t *m)
{
    int S = m->batch * m->cfg.num_masks;
    return (block_dims_t){S, m->dims.dec_tokens, m->cfg.dec_dim, m->cfg.dec_heads,
                          m->cfg.mlp_ratio * m->cfg.dec_dim};
}

void mimae_sample_masks(mimae_model_t *m, uint64_t seed, uint64_t epoch,
                        const uint64_t *image_index)
{
    const int L = m->dims.L;
    for (int b = 0; b < m->batch; b++)
        mask_permutation(m->perm + (size_t)b * L, m->acts.mi_scratch, L, seed, epoch,
                         image_index[b]);
}

/* Rows of x (R, E) scaled to unit length: u = x / max(|x|, eps). */
static void normalize_rows(float *u, float *norms, const float *x, int R, int E)
{
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * E;
        double sq = 0.0;
        for (int e = 0; e < E; e++) sq += (double)xr[e] * xr[e];
        float n = (float)sqrt(sq);
        norms[r] = n;
        float inv = 1.0f / (n > NORMALIZE_EPS ? n : NORMALIZE_EPS);
        for (int e = 0; e < E; e++) u[(size_t)r * E + e] = xr[e] * inv;
    }
}

static void normalize_rows_backward(float *dx, const float *du, const float *u,
                                    const float *norms, int R, int E)
{
    for (int r = 0; r < R; r++) {
        const float *ur = u + (size_t)r * E, *dur = du + (size_t)r * E;
        float *dxr = dx + (size_t)r * E;
        if (norms[r] <= NORMALIZE_EPS) { /* the clamp is active: u = x / eps */
            for (int e = 0; e < E; e++) dxr[e] = dur[e] / NORMALIZE_EPS;
            continue;
        }
        float dot = 0.0f;
        for (int e = 0; e < E; e++) dot += ur[e] * dur[e];
        for (int e = 0; e < E; e++) dxr[e] = (dur[e] - ur[e] * dot) / norms[r];
    }
}

void mimae_forward(mimae_model_t *m, const float *images)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    const model_params_t *p = &m->params;
    activations_t *a = &m->acts;
    const int B = m->batch, N = c->num_masks, S = B * N;
    const int D = c->enc_dim, Dd = c->dec_dim, H = c->q_hidden;
    const int Te = d->enc_tokens, Td = d->dec_tokens, V = d->V, L = d->L, P = d->P;

    patchify(a->patches, images, B, c->img_h, c->img_w, c->channels, c->patch);
    recon_targets(a->target, a->patches, B, L, P, c->norm_pix);
    mask_tables(m->vis_patch, m->token_of, m->perm, B, N, L, V);

    /* encoder on the visible tokens of every mask */
    tokens_gather_visible(a->vis_pix, a->patches, m->vis_patch, S, N, L, V, P);
    encoder_forward(m, &a->enc, a->vis_pix, m->vis_patch);

    /* decoder over all patches, mask tokens where hidden */
    linear_forward(a->y, a->enc.h, p->dec_embed_w, p->dec_embed_b, S * Te, D, Dd);
    tokens_decoder_forward(a->xd0, a->y, p->mask_token, a->pos_dec, m->token_of, S, L, V, Dd);
    block_dims_t dd = decoder_dims(m);
    const float *x = a->xd0;
    for (int i = 0; i < c->dec_depth; i++) {
        vit_block_forward(&a->dec[i], &p->dec[i], x, &dd);
        x = a->dec[i].out;
    }
    layernorm_forward(a->dn, a->dn_mean, a->dn_rstd, x, p->dec_norm_w, p->dec_norm_b, S * Td, Dd);
    linear_forward(a->pred, a->dn, p->dec_pred_w, p->dec_pred_b, S * Td, Dd, P);

    /* pooled latents and the features InfoNCE compares */
    tokens_pool_forward(a->z, a->enc.h, S, V, D, c->pool);
    if (c->proj_hidden > 0) {
        mlp_t proj = projector_mlp(m);
        mlp_forward(&proj, a->g, a->proj_pre, a->proj_post, a->z, S);
    } else {
        memcpy(a->g, a->z, (size_t)S * D * sizeof(float));
    }
    normalize_rows(a->u, a->g_norm, a->g, S, d->proj_dim);

    /* Q: a Gaussian over z given each mask's visible pixels */
    const q_params_t *q = &m->q;
    linear_forward(a->qe, a->vis_pix, q->embed_w, q->embed_b, S * V, P, H);
    tokens_summary_forward(a->qs, a->qe, a->pos_q, m->vis_patch, S, V, H);
    mlp_t mu_head = q_head_mlp(m, 0), lv_head = q_head_mlp(m, 1);
    mlp_forward(&mu_head, a->mu, a->mu_pre, a->mu_post, a->qs, S);
    mlp_forward(&lv_head, a->lv, a->lv_pre, a->lv_post, a->qs, S);
    for (size_t i = 0; i < (size_t)S * D; i++) a->lv[i] = tanhf(a->lv[i]);
}

void mimae_local_losses(mimae_model_t *m, int Bg, mimae_losses_t *out)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    activations_t *a = &m->acts;
    const int B = m->batch, N = c->num_masks;
    const double sequences = (double)Bg * N;
    out->rec = recon_loss(a->dpred, a->pred, a->target, m->token_of, B, N, d->L, d->V, d->P,
                          sequences, c->w_rec);
    out->q = q_nll_loss(a->dmu, a->dlv, a->z, a->mu, a->lv, B * N, c->enc_dim, sequences, 1.0f);
}

void mimae_mi_losses(const mimae_config_t *c, const mimae_dims_t *d, const float *cand_u,
                     const float *cand_z, const float *mu, const float *logvar, int Bg,
                     int offset, int B, float *dcand_u, float *dcand_z, float *scratch,
                     mimae_losses_t *out)
{
    const int N = c->num_masks;
    out->max = infonce_loss(dcand_u, cand_u, N, Bg, offset, B, d->proj_dim, c->tau, c->w_max,
                            scratch);
    out->min = club_min_loss(dcand_z, cand_z, mu, logvar, N, Bg, offset, B, c->enc_dim,
                             c->club_contrast, c->w_min);
}

void mimae_losses_total(const mimae_config_t *c, mimae_losses_t *out)
{
    out->total = c->w_rec * out->rec + c->w_max * out->max + c->w_min * out->min;
}

void mimae_losses(mimae_model_t *m, const float *cand_u, const float *cand_z, int Bg,
                  int offset, float *dcand_u, float *dcand_z, mimae_losses_t *out)
{
    mimae_local_losses(m, Bg, out);
    mimae_mi_losses(&m->cfg, &m->dims, cand_u, cand_z, m->acts.mu, m->acts.lv, Bg, offset,
                    m->batch, dcand_u, dcand_z, m->acts.mi_scratch, out);
    mimae_losses_total(&m->cfg, out);
}

static void q_backward(mimae_model_t *m)
{
    activations_t *a = &m->acts;
    q_params_t *g = &m->q_grads;
    const int S = m->batch * m->cfg.num_masks, D = m->cfg.enc_dim, H = m->cfg.q_hidden;
    const int V = m->dims.V, P = m->dims.P;
    /* through tanh: dlv_raw = dlv * (1 - lv^2) */
    for (size_t i = 0; i < (size_t)S * D; i++) a->dlv[i] *= 1.0f - a->lv[i] * a->lv[i];
    mlp_t mu_head = q_head_mlp(m, 0), lv_head = q_head_mlp(m, 1);
    mlp_grads_t mu_g = {g->mu_fc1_w, g->mu_fc1_b, g->mu_fc2_w, g->mu_fc2_b};
    mlp_grads_t lv_g = {g->lv_fc1_w, g->lv_fc1_b, g->lv_fc2_w, g->lv_fc2_b};
    mlp_backward(&mu_head, &mu_g, a->dqs, a->dq_hidden, a->dmu, a->qs, a->mu_pre, a->mu_post, S);
    mlp_backward(&lv_head, &lv_g, a->dqs_lv, a->dq_hidden, a->dlv, a->qs, a->lv_pre,
                 a->lv_post, S);
    for (size_t i = 0; i < (size_t)S * H; i++) a->dqs[i] += a->dqs_lv[i];
    tokens_summary_backward(a->dqe, a->dqs, S, V, H);
    linear_backward(NULL, g->embed_w, g->embed_b, a->dqe, a->vis_pix, m->q.embed_w, S * V, P, H);
}

void mimae_backward(mimae_model_t *m, const float *du, const float *dz)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    const model_params_t *p = &m->params;
    model_params_t *g = &m->grads;
    activations_t *a = &m->acts;
    const int B = m->batch, N = c->num_masks, S = B * N;
    const int D = c->enc_dim, Dd = c->dec_dim;
    const int Te = d->enc_tokens, Td = d->dec_tokens, V = d->V, L = d->L, P = d->P;
    float *tmp = a->scratch.c; /* free between the block backwards */

    memset(m->grad_mem, 0, m->table.total * sizeof(float));
    memset(m->q_grad_mem, 0, m->q_table.total * sizeof(float));

    /* decoder: from the reconstruction gradient back to the latent tokens */
    linear_backward(tmp, g->dec_pred_w, g->dec_pred_b, a->dpred, a->dn, p->dec_pred_w,
                    S * Td, Dd, P);
    memset(a->dres_dec, 0, (size_t)S * Td * Dd * sizeof(float));
    const float *dec_last = a->dec[c->dec_depth - 1].out;
    layernorm_backward(a->dres_dec, g->dec_norm_w, g->dec_norm_b, tmp, dec_last, p->dec_norm_w,
                       a->dn_mean, a->dn_rstd, S * Td, Dd);
    block_dims_t dd = decoder_dims(m);
    for (int i = c->dec_depth - 1; i >= 0; i--)
        vit_block_backward(a->dres_dec, &g->dec[i], &p->dec[i], &a->dec[i],
                           i ? a->dec[i - 1].out : a->xd0, &a->scratch, &dd);
    tokens_decoder_backward(a->dy, g->mask_token, a->dres_dec, m->token_of, S, L, V, Dd);
    linear_backward(a->dh, g->dec_embed_w, g->dec_embed_b, a->dy, a->enc.h, p->dec_embed_w,
                    S * Te, D, Dd);
    float *const grads_end = m->grad_mem + m->table.total;
    float *const proj_start = c->proj_hidden > 0 ? g->proj_fc1_w : grads_end;
    mimae_grads_ready(m, g->dec_embed_w, proj_start);

    /* MI terms: from the unit features and latents back to the pooled tokens */
    normalize_rows_backward(a->dg, du, a->u, a->g_norm, S, d->proj_dim);
    if (c->proj_hidden > 0) {
        mlp_t proj = projector_mlp(m);
        mlp_grads_t pg = {g->proj_fc1_w, g->proj_fc1_b, g->proj_fc2_w, g->proj_fc2_b};
        mlp_backward(&proj, &pg, tmp, a->dproj_hidden, a->dg, a->z, a->proj_pre, a->proj_post, S);
        mimae_grads_ready(m, proj_start, grads_end);
    } else {
        memcpy(tmp, a->dg, (size_t)S * D * sizeof(float));
    }
    for (size_t i = 0; i < (size_t)S * D; i++) tmp[i] += dz[i];
    tokens_pool_backward(a->dh, tmp, S, V, D, c->pool);

    encoder_backward(m, &a->enc, a->dh, a->vis_pix, &a->scratch);

    q_backward(m);
    mimae_grads_ready(m, m->q_grad_mem, m->q_grad_mem + m->q_table.total);
}
