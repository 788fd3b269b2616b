/* Model, MI and optimiser configuration of one MI-MAE run, with presets.
 * Everything the core needs to size its memory and run a step lives here;
 * experiments/ fills it from a descriptor, tests fill it directly. */
#ifndef MIMAE_CONFIG_CONFIG_H
#define MIMAE_CONFIG_CONFIG_H

#include <stddef.h>

enum { POOL_MEAN = 0, POOL_CLS = 1 };
enum { CLUB_CONTRAST_MASKS = 0, CLUB_CONTRAST_BATCH = 1 };

typedef struct {
    /* image and patches */
    int img_h, img_w, channels, patch;
    /* encoder and decoder */
    int enc_dim, enc_depth, enc_heads;
    int dec_dim, dec_depth, dec_heads;
    int mlp_ratio;
    /* masking */
    int num_masks;      /* N masked views per image */
    double mask_ratio;  /* r */
    int norm_pix;       /* per-patch normalised reconstruction targets */
    /* MI terms */
    int pool;           /* POOL_MEAN or POOL_CLS */
    int proj_hidden;    /* projector hidden width (0: no projector, u = z/|z|) */
    int proj_out;       /* projector output width */
    int q_hidden;       /* width H of the approximation network Q */
    int club_contrast;  /* CLUB_CONTRAST_MASKS or CLUB_CONTRAST_BATCH */
    float tau;          /* InfoNCE temperature */
    float w_rec, w_max, w_min;
    /* optimisation (AdamW + warmup/cosine per iteration) */
    float blr, min_lr, weight_decay, beta1, beta2, adam_eps;
    long warmup_iters, total_iters;
    int global_batch;   /* images per optimiser step, over all processes */
} mimae_config_t;

/* Quantities derived from the config that every module needs. */
typedef struct {
    int grid_h, grid_w;  /* patches per column / row */
    int L;               /* patches per image */
    int P;               /* pixels per patch: patch * patch * channels */
    int V;               /* visible patches per mask */
    int enc_tokens;      /* V + 1 (cls) */
    int dec_tokens;      /* L + 1 (cls) */
    int proj_dim;        /* width of the features InfoNCE compares */
} mimae_dims_t;

/* Fills *cfg with the preset `name` ("fmnist-tiny", "vit-b16", "test-small"):
 * the key table's defaults with the preset's changes (config_fields.c).
 * Returns 0, or -1 for an unknown name. */
int mimae_config_preset(mimae_config_t *cfg, const char *name);

/* Checks every field against its range in the key table, then the fields
 * together; on error writes one line naming the field and the fix into err
 * (size errlen) and returns -1. */
int mimae_config_validate(const mimae_config_t *cfg, char *err, size_t errlen);

/* Derived sizes; the config must be valid. */
mimae_dims_t mimae_config_dims(const mimae_config_t *cfg);

/* Learning rate actually used: blr * global_batch / 256. */
float mimae_config_peak_lr(const mimae_config_t *cfg);

#endif
