#include "core/vit/init.h"

#include <math.h>
#include <string.h>

#include "core/data/rng.h"

static int name_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

void params_init_mae(const param_table_t *t, float *block, uint64_t seed)
{
    for (int i = 0; i < t->count; i++) {
        const param_info_t *info = &t->info[i];
        float *p = block + info->offset;
        rng_t rng;
        rng_init(&rng, seed, 0, (uint64_t)i, RNG_STREAM_INIT);
        if (info->ndim == 2) {
            /* xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
            float a = sqrtf(6.0f / (float)(info->shape[0] + info->shape[1]));
            for (size_t j = 0; j < info->count; j++) p[j] = a * (2.0f * rng_uniform(&rng) - 1.0f);
        } else if (name_ends_with(info->name, "_token")) {
            for (size_t j = 0; j < info->count; j++) p[j] = 0.02f * rng_normal(&rng);
        } else {
            /* LayerNorm weights start at 1, every bias and LayerNorm bias at 0. */
            float v = name_ends_with(info->name, "norm.weight") ||
                              name_ends_with(info->name, "norm1.weight") ||
                              name_ends_with(info->name, "norm2.weight")
                          ? 1.0f
                          : 0.0f;
            for (size_t j = 0; j < info->count; j++) p[j] = v;
        }
    }
}
