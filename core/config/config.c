#include "core/config/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void config_common_defaults(mimae_config_t *c)
{
    c->mlp_ratio = 4;
    c->num_masks = 4;
    c->mask_ratio = 0.75;
    c->norm_pix = 1;
    c->pool = POOL_MEAN;
    c->proj_out = 128;
    c->q_hidden = 256;
    c->club_contrast = CLUB_CONTRAST_MASKS;
    c->tau = 0.07f;
    c->w_rec = 1.0f;
    c->w_max = 0.1f;
    c->w_min = 0.01f;
    c->blr = 1.5e-4f;
    c->min_lr = 0.0f;
    c->weight_decay = 0.05f;
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->adam_eps = 1e-8f;
    c->warmup_iters = 0;
    c->total_iters = 1;
    c->global_batch = 64;
}

static void config_set_vit(mimae_config_t *c, int h, int w, int ch, int p, int d, int depth,
                           int heads, int dd, int ddepth, int dheads)
{
    c->img_h = h, c->img_w = w, c->channels = ch, c->patch = p;
    c->enc_dim = d, c->enc_depth = depth, c->enc_heads = heads;
    c->dec_dim = dd, c->dec_depth = ddepth, c->dec_heads = dheads;
    c->proj_hidden = 2 * d;
}

int mimae_config_preset(mimae_config_t *cfg, const char *name)
{
    memset(cfg, 0, sizeof *cfg);
    config_common_defaults(cfg);
    if (strcmp(name, "fmnist-tiny") == 0) {
        config_set_vit(cfg, 28, 28, 1, 4, 192, 6, 3, 128, 2, 4);
    } else if (strcmp(name, "vit-b16") == 0) {
        config_set_vit(cfg, 224, 224, 3, 16, 768, 12, 12, 512, 8, 16);
        cfg->global_batch = 4096;
    } else if (strcmp(name, "test-small") == 0) {
        /* The size the PyTorch reference fixture uses. */
        config_set_vit(cfg, 16, 16, 3, 4, 32, 2, 2, 24, 2, 3);
        cfg->proj_out = 16;
        cfg->q_hidden = 20;
        cfg->global_batch = 6;
    } else {
        return -1;
    }
    return 0;
}

mimae_dims_t mimae_config_dims(const mimae_config_t *cfg)
{
    mimae_dims_t d;
    d.grid_h = cfg->img_h / cfg->patch;
    d.grid_w = cfg->img_w / cfg->patch;
    d.L = d.grid_h * d.grid_w;
    d.P = cfg->patch * cfg->patch * cfg->channels;
    /* MAE's int(L * (1 - mask_ratio)), kept identical so results compare. */
    d.V = (int)(d.L * (1.0 - cfg->mask_ratio));
    d.enc_tokens = d.V + 1;
    d.dec_tokens = d.L + 1;
    d.proj_dim = cfg->proj_hidden > 0 ? cfg->proj_out : cfg->enc_dim;
    return d;
}

float mimae_config_peak_lr(const mimae_config_t *cfg)
{
    return cfg->blr * (float)cfg->global_batch / 256.0f;
}

#define CONFIG_FAIL(...)                        \
    do {                                        \
        snprintf(err, errlen, __VA_ARGS__);     \
        return -1;                              \
    } while (0)

int mimae_config_validate(const mimae_config_t *c, char *err, size_t errlen)
{
    if (c->img_h <= 0 || c->img_w <= 0 || c->channels <= 0)
        CONFIG_FAIL("model.image size %dx%dx%d: height, width and channels must be positive",
                    c->img_h, c->img_w, c->channels);
    if (c->patch <= 0 || c->img_h % c->patch || c->img_w % c->patch)
        CONFIG_FAIL("model.patch = %d does not divide the %dx%d image: choose a divisor of both",
                    c->patch, c->img_h, c->img_w);
    if (c->enc_dim <= 0 || c->enc_depth <= 0 || c->enc_heads <= 0 ||
        c->enc_dim % c->enc_heads || c->enc_dim % 4)
        CONFIG_FAIL("model.enc_dim = %d, enc_heads = %d, enc_depth = %d: the width must be a "
                    "multiple of 4 and of the head count, all positive",
                    c->enc_dim, c->enc_heads, c->enc_depth);
    if (c->dec_dim <= 0 || c->dec_depth <= 0 || c->dec_heads <= 0 ||
        c->dec_dim % c->dec_heads || c->dec_dim % 4)
        CONFIG_FAIL("model.dec_dim = %d, dec_heads = %d, dec_depth = %d: the width must be a "
                    "multiple of 4 and of the head count, all positive",
                    c->dec_dim, c->dec_heads, c->dec_depth);
    if (c->mlp_ratio <= 0) CONFIG_FAIL("model.mlp_ratio = %d must be positive", c->mlp_ratio);
    if (!(c->mask_ratio >= 0.0 && c->mask_ratio < 1.0))
        CONFIG_FAIL("mimae.mask_ratio = %g must be in [0, 1)", c->mask_ratio);
    if (c->num_masks <= 0) CONFIG_FAIL("mimae.num_masks = %d must be >= 1", c->num_masks);
    mimae_dims_t d = mimae_config_dims(c);
    if (d.V < 1)
        CONFIG_FAIL("mimae.mask_ratio = %g leaves no visible patch of %d: lower the ratio",
                    c->mask_ratio, d.L);
    if (d.V >= d.L)
        CONFIG_FAIL("mimae.mask_ratio = %g hides none of the %d patches: raise it so that "
                    "something is left to reconstruct", c->mask_ratio, d.L);
    if ((long)c->num_masks * d.V > d.L)
        CONFIG_FAIL("mimae.num_masks x visible = %d x %d exceeds the %d patches: lower "
                    "num_masks or raise mask_ratio (need N * floor(L*(1-r)) <= L)",
                    c->num_masks, d.V, d.L);
    if (c->pool != POOL_MEAN && c->pool != POOL_CLS)
        CONFIG_FAIL("mimae.pool = %d: use mean or cls", c->pool);
    if (c->proj_hidden < 0 || (c->proj_hidden > 0 && c->proj_out <= 0))
        CONFIG_FAIL("mimae.proj_hidden = %d, proj_out = %d: both positive, or proj_hidden = 0 "
                    "for no projector", c->proj_hidden, c->proj_out);
    if (c->q_hidden <= 0 || c->q_hidden % 4)
        CONFIG_FAIL("mimae.q_hidden = %d must be a positive multiple of 4", c->q_hidden);
    if (c->club_contrast != CLUB_CONTRAST_MASKS && c->club_contrast != CLUB_CONTRAST_BATCH)
        CONFIG_FAIL("mimae.club_contrast = %d: use masks or batch", c->club_contrast);
    if (!(c->tau > 0.0f && isfinite(c->tau)))
        CONFIG_FAIL("mimae.tau = %g must be a positive finite temperature", c->tau);
    if (!(c->w_rec >= 0.0f && c->w_max >= 0.0f && c->w_min >= 0.0f &&
          isfinite(c->w_rec) && isfinite(c->w_max) && isfinite(c->w_min)))
        CONFIG_FAIL("mimae.w_rec/w_max/w_min = %g/%g/%g must be finite and >= 0",
                    c->w_rec, c->w_max, c->w_min);
    if (!(c->blr > 0.0f && isfinite(c->blr)) || !(c->min_lr >= 0.0f && isfinite(c->min_lr)))
        CONFIG_FAIL("optim.blr = %g, min_lr = %g: blr must be > 0, min_lr >= 0", c->blr,
                    c->min_lr);
    if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
        CONFIG_FAIL("optim.weight_decay = %g must be finite and >= 0", c->weight_decay);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f))
        CONFIG_FAIL("optim.beta1/beta2 = %g/%g must be in [0, 1)", c->beta1, c->beta2);
    if (!(c->adam_eps > 0.0f)) CONFIG_FAIL("optim.eps = %g must be > 0", c->adam_eps);
    if (c->total_iters <= 0 || c->warmup_iters < 0 || c->warmup_iters > c->total_iters)
        CONFIG_FAIL("optim.warmup_iters = %ld, total_iters = %ld: need 0 <= warmup <= total, "
                    "total > 0", c->warmup_iters, c->total_iters);
    if (c->global_batch <= 0)
        CONFIG_FAIL("train.global_batch = %d must be positive", c->global_batch);
    return 0;
}
