#include "core/config/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/config/config_fields.h"

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

/* Single keys are checked against their rows' ranges (config_fields.c);
 * what remains here relates several keys. */
int mimae_config_validate(const mimae_config_t *c, char *err, size_t errlen)
{
    if (config_fields_check_ranges(mimae_config_fields, mimae_config_field_count, c, err,
                                   errlen))
        return -1;
    if (c->img_h % c->patch || c->img_w % c->patch)
        CONFIG_FAIL("model.patch = %d does not divide the %dx%d image: choose a divisor of both",
                    c->patch, c->img_h, c->img_w);
    if (c->enc_dim % c->enc_heads || c->enc_dim % 4)
        CONFIG_FAIL("model.enc_dim = %d, enc_heads = %d, enc_depth = %d: the width must be a "
                    "multiple of 4 and of the head count, all positive",
                    c->enc_dim, c->enc_heads, c->enc_depth);
    if (c->dec_dim % c->dec_heads || c->dec_dim % 4)
        CONFIG_FAIL("model.dec_dim = %d, dec_heads = %d, dec_depth = %d: the width must be a "
                    "multiple of 4 and of the head count, all positive",
                    c->dec_dim, c->dec_heads, c->dec_depth);
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
    if (c->proj_hidden > 0 && c->proj_out <= 0)
        CONFIG_FAIL("mimae.proj_hidden = %d, proj_out = %d: both positive, or proj_hidden = 0 "
                    "for no projector", c->proj_hidden, c->proj_out);
    if (c->q_hidden % 4)
        CONFIG_FAIL("mimae.q_hidden = %d must be a positive multiple of 4", c->q_hidden);
    if (c->warmup_iters > c->total_iters)
        CONFIG_FAIL("optim.warmup_iters = %ld, total_iters = %ld: need 0 <= warmup <= total, "
                    "total > 0", c->warmup_iters, c->total_iters);
    return 0;
}
