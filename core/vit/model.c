#include "core/vit/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vit/encoder.h"
#include "core/vit/init.h"
#include "core/vit/posembed.h"

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void activations_layout(mimae_model_t *m, float *base)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    activations_t *a = &m->acts;
    arena_t l = {base, 0};
    const size_t B = (size_t)m->batch, S = B * c->num_masks;
    const size_t D = c->enc_dim, Dd = c->dec_dim, H = c->q_hidden, E = d->proj_dim;
    const size_t Te = d->enc_tokens, Td = d->dec_tokens, V = d->V, L = d->L, P = d->P;
    const size_t Hp = c->proj_hidden > 0 ? c->proj_hidden : 1;

    a->patches = arena_take(&l, B * L * P);
    a->target = arena_take(&l, B * L * P);
    a->vis_pix = arena_take(&l, S * V * P);
    encoder_acts_layout(&l, &a->enc, c, (int)S, (int)V);
    decoder_acts_layout(&l, &a->dec, c, (int)S);
    a->z = arena_take(&l, S * D);
    a->proj_pre = arena_take(&l, S * Hp);
    a->proj_post = arena_take(&l, S * Hp);
    a->g = arena_take(&l, S * E);
    a->g_norm = arena_take(&l, S);
    a->u = arena_take(&l, S * E);
    a->qe = arena_take(&l, S * V * H);
    a->qs = arena_take(&l, S * H);
    a->mu_pre = arena_take(&l, S * H);
    a->mu_post = arena_take(&l, S * H);
    a->mu = arena_take(&l, S * D);
    a->lv_pre = arena_take(&l, S * H);
    a->lv_post = arena_take(&l, S * H);
    a->lv = arena_take(&l, S * D);

    a->dh = arena_take(&l, S * Te * D);
    a->du = arena_take(&l, S * E);
    a->dg = arena_take(&l, S * E);
    a->dz = arena_take(&l, S * D);
    a->dproj_hidden = arena_take(&l, S * Hp);
    a->dmu = arena_take(&l, S * D);
    a->dlv = arena_take(&l, S * D);
    a->dq_hidden = arena_take(&l, S * H);
    a->dqs = arena_take(&l, S * H);
    a->dqs_lv = arena_take(&l, S * H);
    a->dqe = arena_take(&l, S * V * H);
    const size_t rows = max_size(S * Te, S * Td), width = max_size(D, Dd);
    a->scratch.c = arena_take(&l, rows * width);
    a->scratch.qkv = arena_take(&l, rows * 3 * width);
    a->scratch.hidden = arena_take(&l, rows * c->mlp_ratio * width);
    /* InfoNCE logits (B, global_batch); also the L uniforms of mask sampling */
    a->mi_scratch = arena_take(&l, max_size(B * (size_t)c->global_batch, L));

    a->pos_enc = arena_take(&l, (L + 1) * D);
    a->pos_dec = arena_take(&l, (L + 1) * Dd);
    a->pos_q = arena_take(&l, L * H);
    m->act_floats = l.used;
}

static float *block_alloc(size_t floats)
{
    /* calloc so that every page is touched once here, not in the first step */
    return calloc(floats ? floats : 1, sizeof(float));
}

mimae_model_t *mimae_model_create(const mimae_config_t *cfg, int batch, uint64_t seed,
                                  char *err, size_t errlen)
{
    if (mimae_config_validate(cfg, err, errlen)) return NULL;
    if (batch <= 0 || batch > cfg->global_batch) {
        snprintf(err, errlen, "micro-batch %d must be in 1..global_batch (%d)", batch,
                 cfg->global_batch);
        return NULL;
    }
    mimae_model_t *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->cfg = *cfg;
    m->dims = mimae_config_dims(cfg);
    m->batch = batch;
    if (model_params_table(&m->table, &m->params, cfg) ||
        model_params_table(&m->grad_table, &m->grads, cfg) ||
        q_params_table(&m->q_table, &m->q, cfg) ||
        q_params_table(&m->q_grad_table, &m->q_grads, cfg))
        goto oom;
    const size_t np = m->table.total, nq = m->q_table.total;
    m->param_mem = block_alloc(np);
    /* model and Q gradients in one block: dist/ reduces them as one vector */
    m->grad_mem = block_alloc(np + nq);
    m->m_mem = block_alloc(np);
    m->v_mem = block_alloc(np);
    m->q_param_mem = block_alloc(nq);
    m->q_grad_mem = m->grad_mem ? m->grad_mem + np : NULL;
    m->q_m_mem = block_alloc(nq);
    m->q_v_mem = block_alloc(nq);
    m->acts.enc.blocks = calloc((size_t)cfg->enc_depth, sizeof *m->acts.enc.blocks);
    m->acts.dec.blocks = calloc((size_t)cfg->dec_depth, sizeof *m->acts.dec.blocks);
    if (!m->param_mem || !m->grad_mem || !m->m_mem || !m->v_mem || !m->q_param_mem ||
        !m->q_grad_mem || !m->q_m_mem || !m->q_v_mem || !m->acts.enc.blocks || !m->acts.dec.blocks)
        goto oom;
    param_table_bind(&m->table, m->param_mem);
    param_table_bind(&m->grad_table, m->grad_mem);
    param_table_bind(&m->q_table, m->q_param_mem);
    param_table_bind(&m->q_grad_table, m->q_grad_mem);

    activations_layout(m, NULL);
    m->act_mem = block_alloc(m->act_floats);
    if (!m->act_mem) goto oom;
    activations_layout(m, m->act_mem);

    const mimae_dims_t *d = &m->dims;
    const size_t S = (size_t)batch * cfg->num_masks;
    m->int_mem = calloc((size_t)batch * d->L + S * d->V + S * d->L, sizeof(int));
    if (!m->int_mem) goto oom;
    m->perm = m->int_mem;
    m->vis_patch = m->perm + (size_t)batch * d->L;
    m->token_of = m->vis_patch + S * d->V;

    posembed_2d_sincos(m->acts.pos_enc, cfg->enc_dim, d->grid_h, d->grid_w, 1);
    posembed_2d_sincos(m->acts.pos_dec, cfg->dec_dim, d->grid_h, d->grid_w, 1);
    posembed_2d_sincos(m->acts.pos_q, cfg->q_hidden, d->grid_h, d->grid_w, 0);
    mimae_listen_grads(m, NULL, NULL);
    params_init_mae(&m->table, m->param_mem, seed);
    /* Q's stream differs from the model's: same tensor numbers, other seed. */
    params_init_mae(&m->q_table, m->q_param_mem, seed ^ 0x5151515151515151ull);
    return m;
oom:
    snprintf(err, errlen, "out of memory allocating the model for micro-batch %d: lower "
             "train.micro_batch or the model size", batch);
    mimae_model_free(m);
    return NULL;
}

void mimae_model_free(mimae_model_t *m)
{
    if (!m) return;
    free(m->param_mem);
    free(m->grad_mem);
    free(m->m_mem);
    free(m->v_mem);
    free(m->q_param_mem);
    free(m->q_m_mem);
    free(m->q_v_mem);
    free(m->act_mem);
    free(m->int_mem);
    free(m->acts.enc.blocks);
    free(m->acts.dec.blocks);
    param_table_free(&m->table);
    param_table_free(&m->grad_table);
    param_table_free(&m->q_table);
    param_table_free(&m->q_grad_table);
    model_params_free(&m->params);
    model_params_free(&m->grads);
    free(m);
}

void mimae_listen_grads(mimae_model_t *m, grads_ready_fn fn, void *ctx)
{
    m->ready = (grads_ready_t){&m->table, 0, fn, ctx};
    m->q_ready = (grads_ready_t){&m->q_table, m->table.total, fn, ctx};
}

vit_view_t mimae_encoder(mimae_model_t *m)
{
    return (vit_view_t){&m->cfg, &m->params, &m->grads, m->acts.pos_enc, &m->ready};
}

vit_view_t mimae_decoder(mimae_model_t *m)
{
    return (vit_view_t){&m->cfg, &m->params, &m->grads, m->acts.pos_dec, &m->ready};
}

size_t mimae_model_param_count(const mimae_model_t *m) { return m->table.total; }
size_t mimae_model_q_param_count(const mimae_model_t *m) { return m->q_table.total; }
