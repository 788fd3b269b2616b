#include "core/vit/full_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vit/encoder.h"
#include "core/vit/patches.h"
#include "core/vit/tokens.h"

/* Arena for B full images: the encoder's tensors, then the scratch. */
static void full_encoder_layout(full_encoder_t *fe, arena_t *ar)
{
    const mimae_config_t *c = &fe->m->cfg;
    const size_t B = (size_t)fe->B, L = fe->m->dims.L, D = c->enc_dim, T = L + 1;
    encoder_acts_layout(ar, &fe->enc, c, fe->B, (int)L);
    fe->patches = arena_take(ar, B * L * fe->m->dims.P);
    fe->dh = arena_take(ar, B * T * D);
    fe->scratch.c = arena_take(ar, B * T * D);
    fe->scratch.qkv = arena_take(ar, B * T * 3 * D);
    fe->scratch.hidden = arena_take(ar, B * T * c->mlp_ratio * D);
}

full_encoder_t *full_encoder_create(mimae_model_t *m, int B, char *err, size_t errlen)
{
    full_encoder_t *fe = calloc(1, sizeof *fe);
    if (!fe) goto oom;
    fe->m = m;
    fe->B = B;
    fe->blocks = calloc((size_t)m->cfg.enc_depth, sizeof *fe->blocks);
    fe->positions = malloc((size_t)B * m->dims.L * sizeof *fe->positions);
    if (!fe->blocks || !fe->positions) goto oom;
    fe->enc.blocks = fe->blocks;
    arena_t count = {NULL, 0};
    full_encoder_layout(fe, &count);
    fe->mem = calloc(count.used, sizeof(float));
    if (!fe->mem) goto oom;
    arena_t ar = {fe->mem, 0};
    full_encoder_layout(fe, &ar);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < m->dims.L; l++) fe->positions[(size_t)b * m->dims.L + l] = l;
    return fe;
oom:
    snprintf(err, errlen, "out of memory for the full-image encoder of %d images", B);
    full_encoder_free(fe);
    return NULL;
}

void full_encoder_free(full_encoder_t *fe)
{
    if (!fe) return;
    free(fe->blocks);
    free(fe->positions);
    free(fe->mem);
    free(fe);
}

void full_encoder_forward(full_encoder_t *fe, const float *images, int n, float *features)
{
    const mimae_config_t *c = &fe->m->cfg;
    const int L = fe->m->dims.L, D = c->enc_dim;
    /* a partial batch runs as a smaller one: the arena is sized for B */
    fe->enc.S = n;
    patchify(fe->patches, images, n, c->img_h, c->img_w, c->channels, c->patch);
    const vit_view_t e = mimae_encoder(fe->m);
    encoder_forward(&e, &fe->enc, fe->patches, fe->positions);
    tokens_pool_forward(features, fe->enc.h, n, L, D, c->pool);
}

void full_encoder_backward(full_encoder_t *fe, const float *dfeatures, int n)
{
    const mimae_config_t *c = &fe->m->cfg;
    const int L = fe->m->dims.L, D = c->enc_dim;
    memset(fe->dh, 0, (size_t)n * (L + 1) * D * sizeof(float));
    tokens_pool_backward(fe->dh, dfeatures, n, L, D, c->pool);
    const vit_view_t e = mimae_encoder(fe->m);
    encoder_backward(&e, &fe->enc, fe->dh, fe->patches, &fe->scratch);
}
