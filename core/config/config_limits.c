/* Upper bounds of the model config (see config_limits.h). */
#include "core/config/config_limits.h"

#include <stdio.h>

double config_param_estimate(const mimae_config_t *c)
{
    const double D = c->enc_dim, Dd = c->dec_dim, m = c->mlp_ratio, ph = c->proj_hidden,
                 po = c->proj_out, qh = c->q_hidden;
    const double P = (double)c->patch * c->patch * c->channels;
    /* per block: qkv 3D^2, proj D^2, MLP 2mD^2, plus biases and norms */
    const double enc = c->enc_depth * ((4.0 + 2.0 * m) * D * D + (9.0 + m) * D);
    const double dec = c->dec_depth * ((4.0 + 2.0 * m) * Dd * Dd + (9.0 + m) * Dd);
    return enc + dec + (D + Dd) * (P + 2.0) + D * Dd + D * ph + ph * po + ph + po +
           4.0 * qh * (qh + D + 1.0) + 4.0 * D;
}

#define OVER(cond, ...)                         \
    do {                                        \
        if (cond) {                             \
            snprintf(err, errlen, __VA_ARGS__); \
            return -1;                          \
        }                                       \
    } while (0)

int config_check_limits(const mimae_config_t *c, char *err, size_t errlen)
{
    OVER(c->img_h > CONFIG_MAX_SIDE, "model.img_h = %d: at most %d pixels", c->img_h,
         CONFIG_MAX_SIDE);
    OVER(c->img_w > CONFIG_MAX_SIDE, "model.img_w = %d: at most %d pixels", c->img_w,
         CONFIG_MAX_SIDE);
    OVER(c->channels > CONFIG_MAX_CHANNELS, "model.channels = %d: at most %d", c->channels,
         CONFIG_MAX_CHANNELS);
    OVER(c->patch > CONFIG_MAX_SIDE, "model.patch = %d: at most %d pixels", c->patch,
         CONFIG_MAX_SIDE);
    if (c->patch > 0 && c->img_h > 0 && c->img_w > 0) {
        const long long L = (long long)(c->img_h / c->patch) * (c->img_w / c->patch);
        OVER(L > CONFIG_MAX_PATCHES, "model.img_h/img_w/patch = %d/%d/%d: %lld patches per "
             "image, at most %d: use a larger model.patch or smaller images", c->img_h,
             c->img_w, c->patch, L, CONFIG_MAX_PATCHES);
    }
    const struct { const char *name; int v, max; } f[] = {
        {"model.enc_dim", c->enc_dim, CONFIG_MAX_WIDTH},
        {"model.dec_dim", c->dec_dim, CONFIG_MAX_WIDTH},
        {"model.enc_heads", c->enc_heads, CONFIG_MAX_WIDTH},
        {"model.dec_heads", c->dec_heads, CONFIG_MAX_WIDTH},
        {"model.enc_depth", c->enc_depth, CONFIG_MAX_DEPTH},
        {"model.dec_depth", c->dec_depth, CONFIG_MAX_DEPTH},
        {"model.mlp_ratio", c->mlp_ratio, CONFIG_MAX_MLP_RATIO},
        {"mimae.num_masks", c->num_masks, CONFIG_MAX_PATCHES},
        {"mimae.proj_hidden", c->proj_hidden, CONFIG_MAX_WIDTH},
        {"mimae.proj_out", c->proj_out, CONFIG_MAX_WIDTH},
        {"mimae.q_hidden", c->q_hidden, CONFIG_MAX_WIDTH},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        OVER(f[i].v > f[i].max, "%s = %d: at most %d", f[i].name, f[i].v, f[i].max);
    OVER(c->global_batch > CONFIG_MAX_GLOBAL_BATCH, "train.global_batch = %d: at most %ld images",
         c->global_batch, CONFIG_MAX_GLOBAL_BATCH);
    const double params = config_param_estimate(c);
    OVER(params > CONFIG_MAX_PARAMS, "the model (model.enc_dim = %d, enc_depth = %d, dec_dim = "
         "%d, dec_depth = %d, mlp_ratio = %d, ...) has about %.3g parameters, at most %.3g: make "
         "it smaller", c->enc_dim, c->enc_depth, c->dec_dim, c->dec_depth, c->mlp_ratio, params,
         CONFIG_MAX_PARAMS);
    return 0;
}
