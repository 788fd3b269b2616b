#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"
#include "posembed.h"

#define ACT_ALIGN_FLOATS 16

/* One layout routine serves both passes: with base == NULL it only counts,
 * with a base it hands out the pointers. */
typedef struct {
    float *base;
    size_t used;
} layout_t;

static float *layout_take(layout_t *l, size_t n)
{
    float *p = l->base ? l->base + l->used : NULL;
    l->used += (n + ACT_ALIGN_FLOATS - 1) / ACT_ALIGN_FLOATS * ACT_ALIGN_FLOATS;
    return p;
}

static void block_acts_layout(layout_t *l, block_acts_t *a, int S, int T, int C, int heads,
                              int hidden)
{
    const size_t R = (size_t)S * T;
    a->ln1 = layout_take(l, R * C);
    a->ln1_mean = layout_take(l, R);
    a->ln1_rstd = layout_take(l, R);
    a->qkv = layout_take(l, R * 3 * C);
    a->probs = layout_take(l, (size_t)S * heads * T * T);
    a->att = layout_take(l, R * C);
    a->res1 = layout_take(l, R * C);
    a->ln2 = layout_take(l, R * C);
    a->ln2_mean = layout_take(l, R);
    a->ln2_rstd = layout_take(l, R);
    a->fc1 = layout_take(l, R * hidden);
    a->gelu = layout_take(l, R * hidden);
    a->out = layout_take(l, R * C);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void activations_layout(mimae_model_t *m, float *base)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    activations_t *a = &m->acts;
    layout_t l = {base, 0};
    const size_t B = (size_t)m->batch, S = B * c->num_masks;
    const size_t D = c->enc_dim, Dd = c->dec_dim, H = c->q_hidden, E = d->proj_dim;
    const size_t Te = d->enc_tokens, Td = d->dec_tokens, V = d->V, L = d->L, P = d->P;
    const size_t Hp = c->proj_hidden > 0 ? c->proj_hidden : 1;

    a->patches = layout_take(&l, B * L * P);
    a->target = layout_take(&l, B * L * P);
    a->vis_pix = layout_take(&l, S * V * P);
    a->emb = layout_take(&l, S * V * D);
    a->x0 = layout_take(&l, S * Te * D);
    for (int i = 0; i < c->enc_depth; i++)
        block_acts_layout(&l, &a->enc[i], (int)S, (int)Te, (int)D, c->enc_heads,
                          c->mlp_ratio * (int)D);
    a->h = layout_take(&l, S * Te * D);
    a->h_mean = layout_take(&l, S * Te);
    a->h_rstd = layout_take(&l, S * Te);
    a->y = layout_take(&l, S * Te * Dd);
    a->xd0 = layout_take(&l, S * Td * Dd);
    for (int i = 0; i < c->dec_depth; i++)
        block_acts_layout(&l, &a->dec[i], (int)S, (int)Td, (int)Dd, c->dec_heads,
                          c->mlp_ratio * (int)Dd);
    a->dn = layout_take(&l, S * Td * Dd);
    a->dn_mean = layout_take(&l, S * Td);
    a->dn_rstd = layout_take(&l, S * Td);
    a->pred = layout_take(&l, S * Td * P);
    a->z = layout_take(&l, S * D);
    a->proj_pre = layout_take(&l, S * Hp);
    a->proj_post = layout_take(&l, S * Hp);
    a->g = layout_take(&l, S * E);
    a->g_norm = layout_take(&l, S);
    a->u = layout_take(&l, S * E);
    a->qe = layout_take(&l, S * V * H);
    a->qs = layout_take(&l, S * H);
    a->mu_pre = layout_take(&l, S * H);
    a->mu_post = layout_take(&l, S * H);
    a->mu = layout_take(&l, S * D);
    a->lv_pre = layout_take(&l, S * H);
    a->lv_post = layout_take(&l, S * H);
    a->lv = layout_take(&l, S * D);

    a->dpred = layout_take(&l, S * Td * P);
    a->dres_dec = layout_take(&l, S * Td * Dd);
    a->dy = layout_take(&l, S * Te * Dd);
    a->dh = layout_take(&l, S * Te * D);
    a->dres_enc = layout_take(&l, S * Te * D);
    a->demb = layout_take(&l, S * V * D);
    a->du = layout_take(&l, S * E);
    a->dg = layout_take(&l, S * E);
    a->dz = layout_take(&l, S * D);
    a->dproj_hidden = layout_take(&l, S * Hp);
    a->dmu = layout_take(&l, S * D);
    a->dlv = layout_take(&l, S * D);
    a->dq_hidden = layout_take(&l, S * H);
    a->dqs = layout_take(&l, S * H);
    a->dqs_lv = layout_take(&l, S * H);
    a->dqe = layout_take(&l, S * V * H);
    const size_t rows = max_size(S * Te, S * Td), width = max_size(D, Dd);
    a->scratch.c = layout_take(&l, rows * width);
    a->scratch.qkv = layout_take(&l, rows * 3 * width);
    a->scratch.hidden = layout_take(&l, rows * c->mlp_ratio * width);
    a->scratch.tt = layout_take(&l, max_size(Te * Te, Td * Td));
    /* InfoNCE logits (B, global_batch); also the L uniforms of mask sampling */
    a->mi_scratch = layout_take(&l, max_size(B * (size_t)c->global_batch, L));

    a->pos_enc = layout_take(&l, (L + 1) * D);
    a->pos_dec = layout_take(&l, (L + 1) * Dd);
    a->pos_q = layout_take(&l, L * H);
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
    m->acts.enc = calloc((size_t)cfg->enc_depth, sizeof *m->acts.enc);
    m->acts.dec = calloc((size_t)cfg->dec_depth, sizeof *m->acts.dec);
    if (!m->param_mem || !m->grad_mem || !m->m_mem || !m->v_mem || !m->q_param_mem ||
        !m->q_grad_mem || !m->q_m_mem || !m->q_v_mem || !m->acts.enc || !m->acts.dec)
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
    free(m->acts.enc);
    free(m->acts.dec);
    param_table_free(&m->table);
    param_table_free(&m->grad_table);
    param_table_free(&m->q_table);
    param_table_free(&m->q_grad_table);
    model_params_free(&m->params);
    model_params_free(&m->grads);
    free(m);
}

size_t mimae_model_param_count(const mimae_model_t *m) { return m->table.total; }
size_t mimae_model_q_param_count(const mimae_model_t *m) { return m->q_table.total; }
