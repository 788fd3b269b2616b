/* Learning rate per iteration: linear warmup from 0, then a half-cycle cosine
 * down to min_lr (MAE's lr_sched, counted in iterations; docs/METHOD.md step 12). */
#ifndef MIMAE_OPTIM_SCHEDULE_H
#define MIMAE_OPTIM_SCHEDULE_H

#include "core/config/config.h"

/* lr before update number `iter` (0-based). */
float schedule_lr(const mimae_config_t *cfg, long iter);

#endif
