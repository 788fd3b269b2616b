#include "core/optim/adamw.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* One tensor's update, the scalar form. */
static void adamw_tensor_scalar(float *p, float *mi, float *vi, const float *g, size_t n,
                                float decay, float beta1, float beta2, float bc2_sqrt, float eps,
                                float step_size)
{
    for (size_t j = 0; j < n; j++) {
        p[j] *= decay;
        mi[j] = beta1 * mi[j] + (1.0f - beta1) * g[j];
        vi[j] = beta2 * vi[j] + (1.0f - beta2) * g[j] * g[j];
        const float denom = sqrtf(vi[j]) / bc2_sqrt + eps;
        p[j] -= step_size * mi[j] / denom;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with AVX-512, operation for operation (separate multiplies and
 * adds, IEEE sqrt and division, the tail under a mask): bit-identical to the
 * scalar form. (The compiler will not vectorise sqrtf itself: errno.) */
__attribute__((target("avx512f"))) static void adamw_tensor_avx512(
    float *p, float *mi, float *vi, const float *g, size_t n, float decay, float beta1,
    float beta2, float bc2_sqrt, float eps, float step_size)
{
    const __m512 vdecay = _mm512_set1_ps(decay), vb1 = _mm512_set1_ps(beta1),
                 vb2 = _mm512_set1_ps(beta2), v1b1 = _mm512_set1_ps(1.0f - beta1),
                 v1b2 = _mm512_set1_ps(1.0f - beta2), vbc2 = _mm512_set1_ps(bc2_sqrt),
                 veps = _mm512_set1_ps(eps), vstep = _mm512_set1_ps(step_size);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m512 gj = _mm512_maskz_loadu_ps(k, g + j);
        __m512 pj = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + j), vdecay);
        const __m512 mj = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_maskz_loadu_ps(k, mi + j)),
                                        _mm512_mul_ps(v1b1, gj));
        const __m512 vj = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_maskz_loadu_ps(k, vi + j)),
                                        _mm512_mul_ps(_mm512_mul_ps(v1b2, gj), gj));
        const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vj), vbc2), veps);
        pj = _mm512_sub_ps(pj, _mm512_div_ps(_mm512_mul_ps(vstep, mj), denom));
        _mm512_mask_storeu_ps(mi + j, k, mj);
        _mm512_mask_storeu_ps(vi + j, k, vj);
        _mm512_mask_storeu_ps(p + j, k, pj);
    }
}
#endif

static void adamw_tensor(float *p, float *mi, float *vi, const float *g, size_t n, float decay,
                         float beta1, float beta2, float bc2_sqrt, float eps, float step_size)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) {
        adamw_tensor_avx512(p, mi, vi, g, n, decay, beta1, beta2, bc2_sqrt, eps, step_size);
        return;
    }
#endif
    adamw_tensor_scalar(p, mi, vi, g, n, decay, beta1, beta2, bc2_sqrt, eps, step_size);
}

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
        adamw_tensor(params + info->offset, m + info->offset, v + info->offset,
                     grads + info->offset, info->count, decay, h->beta1, h->beta2, bc2_sqrt,
                     h->eps, step_size);
    }
}

double grad_norm(const float *grads, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sqrt(sum);
}
