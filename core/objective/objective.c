#include "core/objective/objective.h"

#include <math.h>
#include <string.h>

#include "core/objective/gaussian_q.h"
#include "core/vit/decoder.h"
#include "core/vit/encoder.h"
#include "core/objective/infonce.h"
#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/objective/masks.h"
#include "core/kernels/mlp.h"
#include "core/kernels/profile.h"
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
    activations_t *a = &m->acts;
    const int B = m->batch, N = c->num_masks, S = B * N;
    const int D = c->enc_dim, H = c->q_hidden, V = d->V, L = d->L, P = d->P;

    double t0 = profile_start();
    patchify(a->patches, images, B, c->img_h, c->img_w, c->channels, c->patch);
    recon_targets(a->target, a->patches, B, L, P, c->norm_pix);
    mask_tables(m->vis_patch, m->token_of, m->perm, B, N, L, V);

    /* encoder on the visible tokens of every mask */
    tokens_gather_visible(a->vis_pix, a->patches, m->vis_patch, S, N, L, V, P);
    profile_stop(PROFILE_TOKENS, t0);
    const vit_view_t enc = mimae_encoder(m);
    encoder_forward(&enc, &a->enc, a->vis_pix, m->vis_patch);

    /* decoder over all patches, mask tokens where hidden */
    const vit_view_t dec = mimae_decoder(m);
    decoder_forward(&dec, &a->dec, a->enc.h, m->token_of);

    /* pooled latents and the features InfoNCE compares */
    t0 = profile_start();
    tokens_pool_forward(a->z, a->enc.h, S, V, D, c->pool);
    if (c->proj_hidden > 0) {
        mlp_t proj = projector_mlp(m);
        mlp_forward(&proj, a->g, a->proj_pre, a->proj_post, a->z, S, a->micro_batches);
    } else {
        memcpy(a->g, a->z, (size_t)S * D * sizeof(float));
    }
    normalize_rows(a->u, a->g_norm, a->g, S, d->proj_dim);

    /* Q: a Gaussian over z given each mask's visible pixels */
    const q_params_t *q = &m->q;
    linear_forward(a->qe, a->vis_pix, q->embed_w, q->embed_b, S * V, P, H, a->micro_batches);
    tokens_summary_forward(a->qs, a->qe, a->pos_q, m->vis_patch, S, V, H);
    mlp_t mu_head = q_head_mlp(m, 0), lv_head = q_head_mlp(m, 1);
    mlp_forward(&mu_head, a->mu, a->mu_pre, a->mu_post, a->qs, S, a->micro_batches);
    mlp_forward(&lv_head, a->lv, a->lv_pre, a->lv_post, a->qs, S, a->micro_batches);
    for (size_t i = 0; i < (size_t)S * D; i++) a->lv[i] = tanhf(a->lv[i]);
    profile_stop(PROFILE_HEADS, t0);
}

void mimae_local_losses(mimae_model_t *m, int Bg, mimae_losses_t *out)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    activations_t *a = &m->acts;
    const int B = m->batch, N = c->num_masks;
    const double sequences = (double)Bg * N;
    const double t0 = profile_start();
    out->rec = recon_loss(a->dec.dpred, a->dec.pred, a->target, m->token_of, B, N, d->L, d->V, d->P,
                          sequences, c->w_rec);
    out->q = q_nll_loss(a->dmu, a->dlv, a->z, a->mu, a->lv, B * N, c->enc_dim, sequences, 1.0f);
    profile_stop(PROFILE_LOSSES, t0);
}

void mimae_mi_losses(const mimae_config_t *c, const mimae_dims_t *d, const float *cand_u,
                     const float *cand_z, const float *mu, const float *logvar, int Bg,
                     int offset, int B, float *dcand_u, float *dcand_z, float *scratch,
                     mimae_losses_t *out)
{
    const int N = c->num_masks;
    const double t0 = profile_start();
    out->max = infonce_loss(dcand_u, cand_u, N, Bg, offset, B, d->proj_dim, c->tau, c->w_max,
                            scratch);
    out->min = club_min_loss(dcand_z, cand_z, mu, logvar, N, Bg, offset, B, c->enc_dim,
                             c->club_contrast, c->w_min);
    profile_stop(PROFILE_LOSSES, t0);
}

void mimae_batch_mi_losses(mimae_model_t *m, const float *cand_u, const float *cand_z,
                           const float *mu, const float *logvar, int Bg, int offset, int B,
                           float *dcand_u, float *dcand_z, mimae_losses_t *out)
{
    mimae_mi_losses(&m->cfg, &m->dims, cand_u, cand_z, mu, logvar, Bg, offset, B, dcand_u,
                    dcand_z, m->acts.mi_scratch, out);
}

void mimae_losses_total(const mimae_config_t *c, mimae_losses_t *out)
{
    out->total = c->w_rec * out->rec + c->w_max * out->max + c->w_min * out->min;
}

void mimae_losses(mimae_model_t *m, const float *cand_u, const float *cand_z, int Bg,
                  int offset, float *dcand_u, float *dcand_z, mimae_losses_t *out)
{
    mimae_local_losses(m, Bg, out);
    mimae_batch_mi_losses(m, cand_u, cand_z, m->acts.mu, m->acts.lv, Bg, offset, m->batch,
                          dcand_u, dcand_z, out);
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
    mlp_backward(&mu_head, &mu_g, a->dqs, a->dq_hidden, a->dmu, a->qs, a->mu_pre, a->mu_post, S,
                 a->micro_batches);
    mlp_backward(&lv_head, &lv_g, a->dqs_lv, a->dq_hidden, a->dlv, a->qs, a->lv_pre,
                 a->lv_post, S, a->micro_batches);
    for (size_t i = 0; i < (size_t)S * H; i++) a->dqs[i] += a->dqs_lv[i];
    tokens_summary_backward(a->dqe, a->dqs, S, V, H);
    linear_backward(NULL, g->embed_w, g->embed_b, a->dqe, a->vis_pix, m->q.embed_w, S * V, P, H,
                    a->micro_batches);
}

void mimae_backward(mimae_model_t *m, const float *du, const float *dz)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    model_params_t *g = &m->grads;
    activations_t *a = &m->acts;
    const int S = m->batch * c->num_masks, D = c->enc_dim, V = d->V;
    float *tmp = a->scratch.c; /* free between the stages */

    double t0 = profile_start();
    memset(m->grad_mem, 0, m->table.total * sizeof(float));
    memset(m->q_grad_mem, 0, m->q_table.total * sizeof(float));
    profile_stop(PROFILE_ADAMW, t0);

    /* decoder: from the reconstruction gradient back to the latent tokens */
    const vit_view_t dec = mimae_decoder(m);
    decoder_backward(&dec, &a->dec, a->dh, a->enc.h, m->token_of, &a->scratch);

    /* MI terms: from the unit features and latents back to the pooled tokens */
    t0 = profile_start();
    normalize_rows_backward(a->dg, du, a->u, a->g_norm, S, d->proj_dim);
    if (c->proj_hidden > 0) {
        mlp_t proj = projector_mlp(m);
        mlp_grads_t pg = {g->proj_fc1_w, g->proj_fc1_b, g->proj_fc2_w, g->proj_fc2_b};
        mlp_backward(&proj, &pg, tmp, a->dproj_hidden, a->dg, a->z, a->proj_pre, a->proj_post, S,
                     a->micro_batches);
        static const char *const projector[] = {"projector."};
        grads_ready_report(&m->ready, projector, 1);
    } else {
        memcpy(tmp, a->dg, (size_t)S * D * sizeof(float));
    }
    for (size_t i = 0; i < (size_t)S * D; i++) tmp[i] += dz[i];
    tokens_pool_backward(a->dh, tmp, S, V, D, c->pool);
    profile_stop(PROFILE_HEADS, t0);

    const vit_view_t enc = mimae_encoder(m);
    encoder_backward(&enc, &a->enc, a->dh, a->vis_pix, &a->scratch);

    PROFILED(PROFILE_HEADS, q_backward(m));
    static const char *const q_network[] = {"q."};
    grads_ready_report(&m->q_ready, q_network, 1);
}

mimae_step_shape_t mimae_step_shape(const mimae_model_t *m)
{
    /* the backward reports: decoder, projector, final norm, each encoder
     * block, the embedding, Q */
    const mimae_config_t *c = &m->cfg;
    return (mimae_step_shape_t){m->batch, c->num_masks, c->global_batch,
                                (size_t)c->img_h * c->img_w * c->channels, m->dims.proj_dim,
                                (size_t)c->enc_dim, m->table.total + m->q_table.total,
                                c->enc_depth + 5};
}

mimae_features_t mimae_features(const mimae_model_t *m)
{
    const activations_t *a = &m->acts;
    return (mimae_features_t){a->u, a->z, a->mu, a->lv};
}

float *mimae_gradients(mimae_model_t *m) { return m->grad_mem; }
