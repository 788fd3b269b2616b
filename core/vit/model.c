#include "core/vit/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vit/encoder.h"
#include "core/vit/init.h"
#include "core/vit/posembed.h"

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Lays out a's tensors in base (NULL: only counts); returns the floats. */
static size_t activations_layout(const mimae_model_t *m, activations_t *a, float *base)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
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
    return l.used;
}

static float *block_alloc(size_t floats)
{
    /* calloc so that every page is touched once here, not in the first step */
    return calloc(floats ? floats : 1, sizeof(float));
}

static size_t mask_ints(const mimae_model_t *m)
{
    const size_t B = (size_t)m->batch, S = B * m->cfg.num_masks;
    return B * m->dims.L + S * m->dims.V + S * m->dims.L;
}

/* Allocates and lays out the activations and masks of m->batch images, and
 * computes the position tables in them. */
static int activations_init(mimae_model_t *m)
{
    const mimae_config_t *c = &m->cfg;
    activations_t *a = &m->acts;
    a->enc.blocks = calloc((size_t)c->enc_depth, sizeof *a->enc.blocks);
    a->dec.blocks = calloc((size_t)c->dec_depth, sizeof *a->dec.blocks);
    if (!a->enc.blocks || !a->dec.blocks) return -1;
    m->act_floats = activations_layout(m, a, NULL);
    m->act_mem = block_alloc(m->act_floats);
    m->int_mem = calloc(mask_ints(m), sizeof(int));
    if (!m->act_mem || !m->int_mem) return -1;
    activations_layout(m, a, m->act_mem);
    /* the encoder's, the decoder's and the heads' rows all hold the same
     * micro-batches (count 0 until mimae_model_hold_micro_batches: the fast
     * reduction's plain sums), and all products run in its precision */
    a->micro_batches = &m->micro_batches;
    a->enc.micro_batches = a->dec.micro_batches = a->micro_batches;
    const size_t B = (size_t)m->batch, S = B * c->num_masks;
    m->perm = m->int_mem;
    m->vis_patch = m->perm + B * m->dims.L;
    m->token_of = m->vis_patch + S * m->dims.V;
    const mimae_dims_t *d = &m->dims;
    posembed_2d_sincos(a->pos_enc, c->enc_dim, d->grid_h, d->grid_w, 1);
    posembed_2d_sincos(a->pos_dec, c->dec_dim, d->grid_h, d->grid_w, 1);
    posembed_2d_sincos(a->pos_q, c->q_hidden, d->grid_h, d->grid_w, 0);
    return 0;
}

static void activations_free(mimae_model_t *m)
{
    free(m->acts.enc.blocks);
    free(m->acts.dec.blocks);
    free(m->act_mem);
    free(m->int_mem);
    memset(&m->acts, 0, sizeof m->acts);
    m->act_mem = NULL, m->int_mem = NULL;
}

size_t mimae_model_state_bytes(const mimae_model_t *m)
{
    return 4 * (m->table.total + m->q_table.total) * sizeof(float);
}

size_t mimae_model_activation_bytes(const mimae_model_t *m)
{
    return m->act_floats * sizeof(float) + mask_ints(m) * sizeof(int);
}

/* The most floats one parameter-gradient reduction takes: a weight
 * gradient's largest tile with its bias (micro_batches_weight_grads), or a
 * vector with its bias, bounded by twice the vector. */
static size_t largest_reduction(const mimae_model_t *m)
{
    size_t most = 0;
    const param_table_t *tables[2] = {&m->table, &m->q_table};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < tables[t]->count; i++) {
            const param_info_t *p = &tables[t]->info[i];
            const size_t floats = p->ndim == 2 ? micro_batches_tile_floats(p->shape[0], p->shape[1])
                                               : 2 * p->count;
            if (floats > most) most = floats;
        }
    return most;
}

/* The product shapes of a forward and backward (d input) of one
 * micro-batch of B images, into shapes, and its weight gradients' shapes,
 * into grads (room for MICRO_BATCHES_MAX_SHAPES each, half as many in
 * grads); returns the count of shapes (grads has half). */
static int product_shapes(const mimae_model_t *m, int B, product_shape_t *shapes,
                          grad_shape_t *grads)
{
    const mimae_config_t *c = &m->cfg;
    const mimae_dims_t *d = &m->dims;
    const int S = B * c->num_masks, D = c->enc_dim, Dd = c->dec_dim, H = c->q_hidden;
    const int V = d->V, P = d->P, Te = d->enc_tokens, Td = d->dec_tokens;
    int n = 0;
    /* y = x W^T (N out, K in) and dx = dy W (N in, K out), for each linear layer */
#define LINEAR(rows, in, out)                                                                  \
    do {                                                                                       \
        shapes[n++] = (product_shape_t){(rows), (out), (in), CblasTrans};                      \
        shapes[n++] = (product_shape_t){(rows), (in), (out), CblasNoTrans};                    \
        grads[n / 2 - 1] = (grad_shape_t){(out), (in), (rows)};                                \
    } while (0)
    LINEAR(S * V, P, D);                          /* patch embedding (its dx is not formed) */
    LINEAR(S * Te, D, 3 * D);                     /* encoder blocks */
    LINEAR(S * Te, D, D);
    LINEAR(S * Te, D, c->mlp_ratio * D);
    LINEAR(S * Te, c->mlp_ratio * D, D);
    LINEAR(S * Te, D, Dd);                        /* decoder embedding */
    LINEAR(S * Td, Dd, 3 * Dd);                   /* decoder blocks */
    LINEAR(S * Td, Dd, Dd);
    LINEAR(S * Td, Dd, c->mlp_ratio * Dd);
    LINEAR(S * Td, c->mlp_ratio * Dd, Dd);
    LINEAR(S * Td, Dd, P);                        /* decoder prediction */
    if (c->proj_hidden > 0) {                     /* projector */
        LINEAR(S, D, c->proj_hidden);
        LINEAR(S, c->proj_hidden, d->proj_dim);
    }
    LINEAR(S * V, P, H);                          /* Q's embedding and heads */
    LINEAR(S, H, H);
    LINEAR(S, H, D);
#undef LINEAR
    return n;
}

int mimae_model_hold_micro_batches(mimae_model_t *m, int micro_batches, char *err,
                                   size_t errlen)
{
    if (micro_batches == 1) { /* the same tiled sums, nothing more to hold */
        micro_batches_free(&m->micro_batches);
        return micro_batches_init(&m->micro_batches, 1, 0);
    }
    const int micro_batch = m->batch;
    activations_free(m);
    micro_batches_free(&m->micro_batches);
    m->batch = micro_batch * micro_batches;
    if (micro_batches_init(&m->micro_batches, micro_batches, largest_reduction(m)) ||
        activations_init(m))
        return snprintf(err, errlen, "out of memory keeping the activations of %d "
                        "micro-batches of %d images (%.1f GiB): set train.memory_budget_gb or "
                        "lower train.micro_batch", micro_batches, micro_batch,
                        (double)mimae_model_activation_bytes(m) / (1u << 30)), -1;
    return 0;
}

int mimae_model_prepare_products(mimae_model_t *m, bf16_products_t *bf16, char *err,
                                 size_t errlen)
{
    micro_batches_t *mb = &m->micro_batches;
    const int k = mb->count > 1 ? mb->count : 1;
    product_shape_t shapes[MICRO_BATCHES_MAX_SHAPES];
    grad_shape_t grads[MICRO_BATCHES_MAX_SHAPES / 2];
    const int n_shapes = product_shapes(m, m->batch / k, shapes, grads);
    if (micro_batches_use_bf16(mb, bf16, shapes, n_shapes, grads, n_shapes / 2, err, errlen))
        return -1;
    if (micro_batches_probe(mb, shapes, n_shapes) ||
        micro_batches_probe_pairs(mb, grads, n_shapes / 2))
        return snprintf(err, errlen, "out of memory probing the products of %d micro-batches",
                        k), -1;
    const char *failed = bf16 ? bf16_products_error(bf16) : NULL;
    if (failed) return snprintf(err, errlen, "%s", failed), -1;
    return 0;
}

int mimae_model_mirror_weights(mimae_model_t *m, bf16_products_t *bf16, char *err,
                               size_t errlen)
{
    if (!(m->param16 = bf16_products_mirror(bf16, m->param_mem, m->table.total, err, errlen)) ||
        !(m->q_param16 = bf16_products_mirror(bf16, m->q_param_mem, m->q_table.total, err, errlen)))
        return -1;
    m->param16_step = -1; /* made at the first step */
    return 0;
}

void mimae_model_refresh_bf16_weights(mimae_model_t *m, bf16_products_t *bf16)
{
    if (!m->param16 || m->param16_step == m->step) return;
    bf16_products_refresh(bf16);
    m->param16_step = m->step;
}

int mimae_model_whole_products(const mimae_model_t *m, int *shapes)
{
    *shapes = m->micro_batches.n_probed;
    return m->micro_batches.n_whole;
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
    m->grad_mem = m->own_grad_mem = block_alloc(np + nq);
    m->m_mem = block_alloc(np);
    m->v_mem = block_alloc(np);
    m->q_param_mem = block_alloc(nq);
    m->q_grad_mem = m->grad_mem ? m->grad_mem + np : NULL;
    m->q_m_mem = block_alloc(nq);
    m->q_v_mem = block_alloc(nq);
    if (!m->param_mem || !m->grad_mem || !m->m_mem || !m->v_mem || !m->q_param_mem ||
        !m->q_grad_mem || !m->q_m_mem || !m->q_v_mem)
        goto oom;
    param_table_bind(&m->table, m->param_mem);
    param_table_bind(&m->grad_table, m->grad_mem);
    param_table_bind(&m->q_table, m->q_param_mem);
    param_table_bind(&m->q_grad_table, m->q_grad_mem);

    if (activations_init(m)) goto oom;
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
    free(m->own_grad_mem);
    free(m->m_mem);
    free(m->v_mem);
    free(m->q_param_mem);
    free(m->q_m_mem);
    free(m->q_v_mem);
    activations_free(m);
    micro_batches_free(&m->micro_batches);
    param_table_free(&m->table);
    param_table_free(&m->grad_table);
    param_table_free(&m->q_table);
    param_table_free(&m->q_grad_table);
    model_params_free(&m->params);
    model_params_free(&m->grads);
    free(m);
}

void mimae_model_use_gradient_block(mimae_model_t *m, float *block)
{
    m->grad_mem = block ? block : m->own_grad_mem;
    m->q_grad_mem = m->grad_mem + m->table.total;
    param_table_bind(&m->grad_table, m->grad_mem);
    param_table_bind(&m->q_grad_table, m->q_grad_mem);
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
