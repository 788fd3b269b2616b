/* Upper bounds of the model config (see config_limits.h). */
#include "core/config/config_limits.h"

#include <stdio.h>

#include "core/config/config_fields.h"

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
    /* each key's own bounds are in its row of the key table */
    if (config_fields_check_ranges(mimae_config_fields, mimae_config_field_count, c, err,
                                   errlen))
        return -1;
    const long long L = (long long)(c->img_h / c->patch) * (c->img_w / c->patch);
    OVER(L > CONFIG_MAX_PATCHES, "model.img_h/img_w/patch = %d/%d/%d: %lld patches per "
         "image, at most %d: use a larger model.patch or smaller images", c->img_h,
         c->img_w, c->patch, L, CONFIG_MAX_PATCHES);
    const double params = config_param_estimate(c);
    OVER(params > CONFIG_MAX_PARAMS, "the model (model.enc_dim = %d, enc_depth = %d, dec_dim = "
         "%d, dec_depth = %d, mlp_ratio = %d, ...) has about %.3g parameters, at most %.3g: make "
         "it smaller", c->enc_dim, c->enc_depth, c->dec_dim, c->dec_depth, c->mlp_ratio, params,
         CONFIG_MAX_PARAMS);
    return 0;
}
