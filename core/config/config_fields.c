#include "core/config/config_fields.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config/config.h"

static const char *const pool_names[] = {"mean", "cls", NULL};
static const char *const contrast_names[] = {"masks", "batch", NULL};

#define F(sec, key, type, member, names, doc) \
    {sec, key, type, offsetof(mimae_config_t, member), names, doc}

const config_field_t mimae_config_fields[] = {
    F("model", "img_h", FIELD_INT, img_h, NULL, "image height in pixels"),
    F("model", "img_w", FIELD_INT, img_w, NULL, "image width in pixels"),
    F("model", "channels", FIELD_INT, channels, NULL, "colour channels (1 or 3)"),
    F("model", "patch", FIELD_INT, patch, NULL, "patch side p; must divide height and width"),
    F("model", "enc_dim", FIELD_INT, enc_dim, NULL, "encoder width D (multiple of 4 and of enc_heads)"),
    F("model", "enc_depth", FIELD_INT, enc_depth, NULL, "encoder blocks"),
    F("model", "enc_heads", FIELD_INT, enc_heads, NULL, "encoder attention heads"),
    F("model", "dec_dim", FIELD_INT, dec_dim, NULL, "decoder width Dd"),
    F("model", "dec_depth", FIELD_INT, dec_depth, NULL, "decoder blocks"),
    F("model", "dec_heads", FIELD_INT, dec_heads, NULL, "decoder attention heads"),
    F("model", "mlp_ratio", FIELD_INT, mlp_ratio, NULL, "MLP hidden width / model width"),
    F("mimae", "num_masks", FIELD_INT, num_masks, NULL, "N orthogonal masks per image (1 = MAE)"),
    F("mimae", "mask_ratio", FIELD_DOUBLE, mask_ratio, NULL, "r; visible per mask V = floor(L(1-r)), need N*V <= L"),
    F("mimae", "norm_pix", FIELD_INT, norm_pix, NULL, "1: per-patch normalised reconstruction targets"),
    F("mimae", "pool", FIELD_ENUM, pool, pool_names, "latent pooling for the MI terms: mean or cls"),
    F("mimae", "proj_hidden", FIELD_INT, proj_hidden, NULL, "projector hidden width (0: no projector)"),
    F("mimae", "proj_out", FIELD_INT, proj_out, NULL, "projector output width"),
    F("mimae", "q_hidden", FIELD_INT, q_hidden, NULL, "width H of the approximation network Q"),
    F("mimae", "club_contrast", FIELD_ENUM, club_contrast, contrast_names, "CLUB contrast set: masks (same image) or batch"),
    F("mimae", "tau", FIELD_FLOAT, tau, NULL, "InfoNCE temperature"),
    F("mimae", "w_rec", FIELD_FLOAT, w_rec, NULL, "weight of the reconstruction loss"),
    F("mimae", "w_max", FIELD_FLOAT, w_max, NULL, "weight of the InfoNCE (MI maximisation) loss"),
    F("mimae", "w_min", FIELD_FLOAT, w_min, NULL, "weight of the CLUB (MI minimisation) loss"),
    F("optim", "blr", FIELD_FLOAT, blr, NULL, "base learning rate; lr = blr * global_batch / 256"),
    F("optim", "min_lr", FIELD_FLOAT, min_lr, NULL, "learning rate at the end of the cosine"),
    F("optim", "weight_decay", FIELD_FLOAT, weight_decay, NULL, "AdamW decay (matrices, cls/mask tokens)"),
    F("optim", "beta1", FIELD_FLOAT, beta1, NULL, "AdamW beta1"),
    F("optim", "beta2", FIELD_FLOAT, beta2, NULL, "AdamW beta2"),
    F("optim", "eps", FIELD_FLOAT, adam_eps, NULL, "AdamW epsilon"),
    F("optim", "warmup_iters", FIELD_LONG, warmup_iters, NULL, "linear warmup iterations"),
    F("optim", "total_iters", FIELD_LONG, total_iters, NULL, "iterations of the whole schedule"),
    F("train", "global_batch", FIELD_INT, global_batch, NULL, "images per optimiser step over all ranks"),
};
const int mimae_config_field_count = sizeof mimae_config_fields / sizeof mimae_config_fields[0];

const config_field_t *config_field_find(const config_field_t *fields, int count,
                                        const char *section, const char *key)
{
    for (int i = 0; i < count; i++)
        if (strcmp(fields[i].section, section) == 0 && strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

#define FIELD_PTR(type, f, cfg) ((type *)((char *)(cfg) + (f)->offset))

int config_field_parse(const config_field_t *f, void *cfg, const char *value, char *err,
                       size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case FIELD_INT:
    case FIELD_LONG: {
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || (f->type == FIELD_INT && (v < INT_MIN || v > INT_MAX)))
            goto bad_integer;
        if (f->type == FIELD_INT) *FIELD_PTR(int, f, cfg) = (int)v;
        else *FIELD_PTR(long, f, cfg) = v;
        return 0;
    }
    case FIELD_FLOAT:
    case FIELD_DOUBLE: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v) ||
            (f->type == FIELD_FLOAT && fabs(v) > 3.0e38))
            goto bad_real;
        if (f->type == FIELD_FLOAT) *FIELD_PTR(float, f, cfg) = (float)v;
        else *FIELD_PTR(double, f, cfg) = v;
        return 0;
    }
    case FIELD_ENUM:
        for (int i = 0; f->enum_names[i]; i++)
            if (strcmp(value, f->enum_names[i]) == 0) {
                *FIELD_PTR(int, f, cfg) = i;
                return 0;
            }
        {
            char names[128] = "";
            for (int i = 0; f->enum_names[i]; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, f->enum_names[i], sizeof names - strlen(names) - 1);
            }
            snprintf(err, errlen, "%s.%s = '%s': use one of %s", f->section, f->key, value, names);
        }
        return -1;
    }
bad_integer:
    snprintf(err, errlen, "%s.%s = '%s': not an integer", f->section, f->key, value);
    return -1;
bad_real:
    snprintf(err, errlen, "%s.%s = '%s': not a finite number", f->section, f->key, value);
    return -1;
}

void config_field_format(const config_field_t *f, const void *cfg, char *buf, size_t len)
{
    switch (f->type) {
    case FIELD_INT: snprintf(buf, len, "%d", *FIELD_PTR(const int, f, cfg)); break;
    case FIELD_LONG: snprintf(buf, len, "%ld", *FIELD_PTR(const long, f, cfg)); break;
    case FIELD_FLOAT: snprintf(buf, len, "%.9g", *FIELD_PTR(const float, f, cfg)); break;
    case FIELD_DOUBLE: snprintf(buf, len, "%.17g", *FIELD_PTR(const double, f, cfg)); break;
    case FIELD_ENUM: {
        int v = *FIELD_PTR(const int, f, cfg), n = 0;
        while (f->enum_names[n]) n++;
        snprintf(buf, len, "%s", v >= 0 && v < n ? f->enum_names[v] : "?");
        break;
    }
    }
}

double config_field_get_number(const config_field_t *f, const void *cfg)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_ENUM: return *FIELD_PTR(const int, f, cfg);
    case FIELD_LONG: return (double)*FIELD_PTR(const long, f, cfg);
    case FIELD_FLOAT: return *FIELD_PTR(const float, f, cfg);
    case FIELD_DOUBLE: return *FIELD_PTR(const double, f, cfg);
    }
    return 0.0;
}

void config_field_set_number(const config_field_t *f, void *cfg, double v)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_ENUM: *FIELD_PTR(int, f, cfg) = (int)v; break;
    case FIELD_LONG: *FIELD_PTR(long, f, cfg) = (long)v; break;
    case FIELD_FLOAT: *FIELD_PTR(float, f, cfg) = (float)v; break;
    case FIELD_DOUBLE: *FIELD_PTR(double, f, cfg) = v; break;
    }
}
