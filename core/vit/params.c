#include "core/vit/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every tensor starts on a 64-byte boundary so sgemm sees aligned rows. */
#define PARAM_ALIGN_FLOATS 16

static int table_add(param_table_t *t, float **field, int decay, int rows, int cols,
                     const char *fmt, int index, const char *suffix)
{
    if (t->count == t->capacity) {
        int cap = t->capacity ? 2 * t->capacity : 64;
        param_info_t *grown = realloc(t->info, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        t->info = grown;
        t->capacity = cap;
    }
    param_info_t *p = &t->info[t->count++];
    memset(p, 0, sizeof *p);
    if (index >= 0)
        snprintf(p->name, sizeof p->name, fmt, index, suffix);
    else
        snprintf(p->name, sizeof p->name, "%s", fmt);
    p->ndim = cols > 0 ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols > 0 ? cols : 1;
    p->count = (size_t)rows * (cols > 0 ? cols : 1);
    p->offset = t->total;
    p->decay = decay;
    p->field = field;
    t->total += (p->count + PARAM_ALIGN_FLOATS - 1) / PARAM_ALIGN_FLOATS * PARAM_ALIGN_FLOATS;
    return 0;
}

/* Weights decay, biases and norm parameters do not (MAE's optimiser groups). */
#define ADD_MATRIX(field, rows, cols, name) \
    if (table_add(t, &(field), 1, rows, cols, name, -1, NULL)) return -1
#define ADD_VECTOR(field, n, name) \
    if (table_add(t, &(field), 0, n, 0, name, -1, NULL)) return -1
#define ADD_TOKEN(field, n, name) \
    if (table_add(t, &(field), 1, n, 0, name, -1, NULL)) return -1
#define ADD_LINEAR(wfield, bfield, out, in, name)                  \
    do {                                                           \
        ADD_MATRIX(wfield, out, in, name ".weight");               \
        ADD_VECTOR(bfield, out, name ".bias");                     \
    } while (0)

static int add_block(param_table_t *t, block_params_t *b, const char *prefix, int i, int C,
                     int hidden)
{
    char fmt[PARAM_NAME_MAX];
    snprintf(fmt, sizeof fmt, "%s.%%d.%%s", prefix);
    struct { float **field; int decay, rows, cols; const char *suffix; } items[] = {
        {&b->ln1_w, 0, C, 0, "norm1.weight"},
        {&b->ln1_b, 0, C, 0, "norm1.bias"},
        {&b->qkv_w, 1, 3 * C, C, "attn.qkv.weight"},
        {&b->qkv_b, 0, 3 * C, 0, "attn.qkv.bias"},
        {&b->proj_w, 1, C, C, "attn.proj.weight"},
        {&b->proj_b, 0, C, 0, "attn.proj.bias"},
        {&b->ln2_w, 0, C, 0, "norm2.weight"},
        {&b->ln2_b, 0, C, 0, "norm2.bias"},
        {&b->fc1_w, 1, hidden, C, "mlp.fc1.weight"},
        {&b->fc1_b, 0, hidden, 0, "mlp.fc1.bias"},
        {&b->fc2_w, 1, C, hidden, "mlp.fc2.weight"},
        {&b->fc2_b, 0, C, 0, "mlp.fc2.bias"},
    };
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++)
        if (table_add(t, items[k].field, items[k].decay, items[k].rows, items[k].cols, fmt, i,
                      items[k].suffix))
            return -1;
    return 0;
}

int model_params_table(param_table_t *t, model_params_t *p, const mimae_config_t *cfg)
{
    memset(t, 0, sizeof *t);
    memset(p, 0, sizeof *p);
    mimae_dims_t d = mimae_config_dims(cfg);
    const int D = cfg->enc_dim, Dd = cfg->dec_dim;
    p->enc = calloc((size_t)cfg->enc_depth, sizeof *p->enc);
    p->dec = calloc((size_t)cfg->dec_depth, sizeof *p->dec);
    if (!p->enc || !p->dec) return -1;

    ADD_LINEAR(p->patch_w, p->patch_b, D, d.P, "patch_embed");
    ADD_TOKEN(p->cls_token, D, "cls_token");
    for (int i = 0; i < cfg->enc_depth; i++)
        if (add_block(t, &p->enc[i], "blocks", i, D, cfg->mlp_ratio * D)) return -1;
    ADD_VECTOR(p->norm_w, D, "norm.weight");
    ADD_VECTOR(p->norm_b, D, "norm.bias");
    ADD_LINEAR(p->dec_embed_w, p->dec_embed_b, Dd, D, "decoder_embed");
    ADD_TOKEN(p->mask_token, Dd, "mask_token");
    for (int i = 0; i < cfg->dec_depth; i++)
        if (add_block(t, &p->dec[i], "decoder_blocks", i, Dd, cfg->mlp_ratio * Dd)) return -1;
    ADD_VECTOR(p->dec_norm_w, Dd, "decoder_norm.weight");
    ADD_VECTOR(p->dec_norm_b, Dd, "decoder_norm.bias");
    ADD_LINEAR(p->dec_pred_w, p->dec_pred_b, d.P, Dd, "decoder_pred");
    if (cfg->proj_hidden > 0) {
        ADD_LINEAR(p->proj_fc1_w, p->proj_fc1_b, cfg->proj_hidden, D, "projector.fc1");
        ADD_LINEAR(p->proj_fc2_w, p->proj_fc2_b, cfg->proj_out, cfg->proj_hidden,
                   "projector.fc2");
    }
    return 0;
}

int q_params_table(param_table_t *t, q_params_t *q, const mimae_config_t *cfg)
{
    memset(t, 0, sizeof *t);
    memset(q, 0, sizeof *q);
    mimae_dims_t d = mimae_config_dims(cfg);
    const int H = cfg->q_hidden, D = cfg->enc_dim;
    ADD_LINEAR(q->embed_w, q->embed_b, H, d.P, "q.embed");
    ADD_LINEAR(q->mu_fc1_w, q->mu_fc1_b, H, H, "q.mu.fc1");
    ADD_LINEAR(q->mu_fc2_w, q->mu_fc2_b, D, H, "q.mu.fc2");
    ADD_LINEAR(q->lv_fc1_w, q->lv_fc1_b, H, H, "q.logvar.fc1");
    ADD_LINEAR(q->lv_fc2_w, q->lv_fc2_b, D, H, "q.logvar.fc2");
    return 0;
}

int head_params_table(param_table_t *t, head_params_t *h, int in, int classes)
{
    memset(t, 0, sizeof *t);
    memset(h, 0, sizeof *h);
    ADD_LINEAR(h->w, h->b, classes, in, "head");
    return 0;
}

void param_table_bind(const param_table_t *t, float *base)
{
    for (int i = 0; i < t->count; i++) *t->info[i].field = base + t->info[i].offset;
}

const param_info_t *param_table_find(const param_table_t *t, const char *name)
{
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->info[i].name, name) == 0) return &t->info[i];
    return NULL;
}

static int has_any_prefix(const char *name, const char *const *prefixes, int n)
{
    for (int i = 0; i < n; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

void grads_ready_report(const grads_ready_t *r, const char *const *prefixes, int n)
{
    if (!r || !r->fn) return;
    const param_table_t *t = r->table;
    int first = -1, last = -1;
    for (int i = 0; i < t->count; i++) {
        if (!has_any_prefix(t->info[i].name, prefixes, n)) continue;
        if (first >= 0 && last != i - 1) {
            fprintf(stderr, "grads_ready_report: tensors of '%s' are not adjacent in the "
                    "parameter table\n", prefixes[0]);
            abort();
        }
        if (first < 0) first = i;
        last = i;
    }
    if (first < 0) return;
    const size_t from = t->info[first].offset;
    const size_t to = last + 1 < t->count ? t->info[last + 1].offset : t->total;
    r->fn(r->ctx, r->base + from, to - from);
}

void param_table_free(param_table_t *t)
{
    free(t->info);
    memset(t, 0, sizeof *t);
}

void model_params_free(model_params_t *p)
{
    free(p->enc);
    free(p->dec);
    p->enc = p->dec = NULL;
}
