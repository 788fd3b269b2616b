/* Upper bounds of the model config, checked wherever a config comes from
 * outside (descriptors, checkpoints) before anything is sized from it: a
 * size beyond these overflows int arithmetic or asks for more memory than
 * any machine has (then the kernel's OOM killer ends the job without a
 * word). Each key's own bound is in its row of the key table
 * (core/config/config_fields.c), from the constants below; what spans
 * several keys is checked here:
 *
 *   patches L = (img_h / patch) x (img_w / patch) <= 16384
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

/* 0, or -1 with "section.key = 'value': must be ..." naming the first key
 * out of its range, or the patch or parameter count over its bound. */
int config_check_limits(const mimae_config_t *c, char *err, size_t errlen);

/* A generous estimate of the parameter count (model and Q), in double so
 * that it cannot overflow. */
double config_param_estimate(const mimae_config_t *c);

#endif
