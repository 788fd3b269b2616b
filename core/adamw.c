#include "adamw.h"

#include <math.h>

void adamw_update(const param_table_t *t, float *params, const float *grads, float *m,
                  float *v, const adamw_hparams_t *h, long step, const float *lr_scale)
{
    const float bc1 = 1.0f - (float)pow(h->beta1, (double)step);
    const float bc2_sqrt = (float)sqrt(1.0 - pow(h->beta2, (double)step));
    for (int i = 0; i < t->count; i++) {
        const param_info_t *info = &t->info[i];
        const float lr = lr_scale ? h->lr * lr_scale[i] : h->lr;
        if (lr_scale && lr_scale[i] == 0.0f) continue;
        const float step_size = lr / bc1;
        const float decay = info->decay ? 1.0f - lr * h->weight_decay : 1.0f;
        float *p = params + info->offset, *mi = m + info->offset, *vi = v + info->offset;
        const float *g = grads + info->offset;
        for (size_t j = 0; j < info->count; j++) {
            p[j] *= decay;
            mi[j] = h->beta1 * mi[j] + (1.0f - h->beta1) * g[j];
            vi[j] = h->beta2 * vi[j] + (1.0f - h->beta2) * g[j] * g[j];
            float denom = sqrtf(vi[j]) / bc2_sqrt + h->eps;
            p[j] -= step_size * mi[j] / denom;
        }
    }
}

double grad_norm(const float *grads, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sqrt(sum);
}
