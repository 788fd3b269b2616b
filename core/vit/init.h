/* MAE's initialisation, reproducible from a seed: xavier-uniform Linear
 * weights, zero biases, LayerNorm (1, 0), cls and mask tokens normal(0, 0.02).
 * Each tensor draws from its own RNG stream (index = tensor number), so the
 * values do not depend on the order of initialisation. */
#ifndef MIMAE_VIT_INIT_H
#define MIMAE_VIT_INIT_H

#include <stdint.h>

#include "core/vit/params.h"

void params_init_mae(const param_table_t *t, float *block, uint64_t seed);

#endif
