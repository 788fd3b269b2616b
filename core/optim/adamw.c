#include "core/optim/adamw.h"

#include <math.h>

#include "core/kernels/bf16_matmul.h"
#include "core/kernels/parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* One tensor's update, the scalar form. */
static void adamw_tensor_scalar(float *p, float *mi, float *vi, const float *g, uint16_t *p16,
                                size_t n, float decay, float beta1, float beta2, float bc2_sqrt,
                                float eps, float step_size)
{
    for (size_t j = 0; j < n; j++) {
        p[j] *= decay;
        mi[j] = beta1 * mi[j] + (1.0f - beta1) * g[j];
        vi[j] = beta2 * vi[j] + (1.0f - beta2) * g[j] * g[j];
        const float denom = sqrtf(vi[j]) / bc2_sqrt + eps;
        p[j] -= step_size * mi[j] / denom;
        if (p16) p16[j] = bf16_round(p[j]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* bf16_round of 16 floats, in integer arithmetic as bf16_round does it. */
__attribute__((target("avx512f"))) static __m512i bf16_round_avx512(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x), high = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(high, _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
}

/* The same with AVX-512, operation for operation (separate multiplies and
 * adds, IEEE sqrt and division, the tail under a mask): bit-identical to the
 * scalar form. (The compiler will not vectorise sqrtf itself: errno.) */
__attribute__((target("avx512f"))) static void adamw_tensor_avx512(
    float *p, float *mi, float *vi, const float *g, uint16_t *p16, size_t n, float decay,
    float beta1, float beta2, float bc2_sqrt, float eps, float step_size)
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
        if (p16) _mm512_mask_cvtepi32_storeu_epi16(p16 + j, k, bf16_round_avx512(pj));
    }
}
#endif

static void adamw_tensor(float *p, float *mi, float *vi, const float *g, uint16_t *p16, size_t n,
                         float decay, float beta1, float beta2, float bc2_sqrt, float eps,
                         float step_size)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) {
        adamw_tensor_avx512(p, mi, vi, g, p16, n, decay, beta1, beta2, bc2_sqrt, eps, step_size);
        return;
    }
#endif
    adamw_tensor_scalar(p, mi, vi, g, p16, n, decay, beta1, beta2, bc2_sqrt, eps, step_size);
}

typedef struct {
    const param_table_t *t;
    float *params, *m, *v;
    const float *grads, *lr_scale;
    uint16_t *params16;
    const adamw_hparams_t *h;
    float bc1, bc2_sqrt;
} adamw_job_t;

/* Thread th's share of every tensor: each element's update depends on that
 * element alone, so any split gives the same bits. */
static void adamw_thread(void *ctx, int th, int n)
{
    const adamw_job_t *j = ctx;
    const adamw_hparams_t *h = j->h;
    for (int i = 0; i < j->t->count; i++) {
        const param_info_t *info = &j->t->info[i];
        const float lr = j->lr_scale ? h->lr * j->lr_scale[i] : h->lr;
        if (j->lr_scale && j->lr_scale[i] == 0.0f) continue;
        const float step_size = lr / j->bc1;
        const float decay = info->decay ? 1.0f - lr * h->weight_decay : 1.0f;
        int lo, hi;
        par_range((int)info->count, 16, th, n, &lo, &hi);
        const size_t at = info->offset + (size_t)lo;
        adamw_tensor(j->params + at, j->m + at, j->v + at, j->grads + at,
                     j->params16 ? j->params16 + at : NULL, (size_t)(hi - lo), decay, h->beta1,
                     h->beta2, j->bc2_sqrt, h->eps, step_size);
    }
}

void adamw_update(const param_table_t *t, float *params, const float *grads, float *m,
                  float *v, const adamw_hparams_t *h, long step, const float *lr_scale,
                  uint16_t *params16)
{
    adamw_job_t j = {t, params, m, v, grads, lr_scale, params16, h,
                     1.0f - (float)pow(h->beta1, (double)step),
                     (float)sqrt(1.0 - pow(h->beta2, (double)step))};
    /* memory-bound: a second thread pays only on large models */
    par_run(adamw_thread, &j, t->total >= (1u << 20) ? par_threads() : 1);
}

/* The sum of squares of x[0..n-1] in double: 8 independent chains added in
 * a fixed tree (one chain waits on every add), so it vectorises and the bits
 * do not depend on vector width. */
static double sum_of_squares(const float *x, size_t n)
{
    double acc[8] = {0};
    const size_t nv = n / 8 * 8;
    for (size_t i = 0; i < nv; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * x[i + l];
    double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (size_t i = nv; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

/* The gradient is cut into GRAD_NORM_BLOCKS blocks whatever the thread
 * count, each block summed by one thread, the blocks' sums added in order:
 * the norm's bits do not depend on the thread count. */
enum { GRAD_NORM_BLOCKS = 64 };

typedef struct {
    const float *grads;
    size_t n, block;
    double sums[GRAD_NORM_BLOCKS];
} norm_job_t;

static void norm_thread(void *ctx, int th, int n)
{
    norm_job_t *j = ctx;
    int lo, hi;
    par_range(GRAD_NORM_BLOCKS, 1, th, n, &lo, &hi);
    for (int b = lo; b < hi; b++) {
        const size_t start = (size_t)b * j->block;
        const size_t end = start + j->block < j->n ? start + j->block : j->n;
        j->sums[b] = start < end ? sum_of_squares(j->grads + start, end - start) : 0.0;
    }
}

double grad_norm(const float *grads, size_t n)
{
    /* blocks a multiple of 8 floats, so each is summed as the whole would be */
    norm_job_t j = {grads, n, (n / GRAD_NORM_BLOCKS + 8) / 8 * 8, {0}};
    /* memory-bound: a second thread pays only on large gradients */
    par_run(norm_thread, &j, n >= (1u << 20) ? par_threads() : 1);
    double sum = 0.0;
    for (int b = 0; b < GRAD_NORM_BLOCKS; b++) sum += j.sums[b];
    return sqrt(sum);
}
