#include "core/optim/schedule.h"

#include <math.h>

float schedule_lr(const mimae_config_t *cfg, long iter)
{
    const double peak = mimae_config_peak_lr(cfg);
    if (iter < cfg->warmup_iters) return (float)(peak * iter / cfg->warmup_iters);
    const long span = cfg->total_iters - cfg->warmup_iters;
    double progress = span > 0 ? (double)(iter - cfg->warmup_iters) / span : 1.0;
    if (progress > 1.0) progress = 1.0;
    return (float)(cfg->min_lr + (peak - cfg->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
}
