/* Upper bounds of the model config, checked wherever a config comes from
 * outside (descriptors, checkpoints) before anything is sized from it:
 * mimae_config_validate checks consistency but not size, and a size beyond
 * these overflows int arithmetic or asks for more memory than any machine
 * has (then the kernel's OOM killer ends the job without a word).
 *
 *   model.img_h, img_w <= 65536 (as data sets), channels <= 4, patch <= 65536
 *   patches L = (img_h / patch) x (img_w / patch) <= 16384
 *   model.enc_dim, dec_dim, mimae.proj_hidden, proj_out, q_hidden <= 65536
 *   model.enc_heads, dec_heads <= 65536; enc_depth, dec_depth <= 1024
 *   model.mlp_ratio <= 64; mimae.num_masks <= 16384
 *   train.global_batch <= 1048576
 *   parameters (model and Q, estimated) <= 2^31 */
#ifndef MIMAE_CONFIG_CONFIG_LIMITS_H
#define MIMAE_CONFIG_CONFIG_LIMITS_H

#include <stddef.h>

#include "core/config/config.h"

#define CONFIG_MAX_SIDE 65536
#define CONFIG_MAX_CHANNELS 4
#define CONFIG_MAX_PATCHES 16384
#define CONFIG_MAX_WIDTH 65536
#define CONFIG_MAX_DEPTH 1024
#define CONFIG_MAX_MLP_RATIO 64
#define CONFIG_MAX_GLOBAL_BATCH (1L << 20)
#define CONFIG_MAX_PARAMS 2147483648.0

/* 0, or -1 with "section.key = value: at most N (...)" naming the first
 * field over its bound. Values <= 0 are left to mimae_config_validate. */
int config_check_limits(const mimae_config_t *c, char *err, size_t errlen);

/* A generous estimate of the parameter count (model and Q), in double so
 * that it cannot overflow. */
double config_param_estimate(const mimae_config_t *c);

#endif
