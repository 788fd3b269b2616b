#include "core/vit/block.h"

#include <stddef.h>

#include "core/kernels/activation.h"
#include "core/kernels/attention.h"
#include "core/kernels/layernorm.h"
#include "core/kernels/linear.h"
#include "core/kernels/profile.h"

void vit_block_acts_layout(arena_t *ar, block_acts_t *a, const block_dims_t *d)
{
    const size_t R = (size_t)d->S * d->T, C = d->C, hidden = d->hidden;
    a->ln1 = arena_take(ar, R * C);
    a->ln1_mean = arena_take(ar, R);
    a->ln1_rstd = arena_take(ar, R);
    a->qkv = arena_take(ar, R * 3 * C);
    a->probs = arena_take(ar, (size_t)d->S * d->heads * d->T * d->T);
    a->att = arena_take(ar, R * C);
    a->res1 = arena_take(ar, R * C);
    a->ln2 = arena_take(ar, R * C);
    a->ln2_mean = arena_take(ar, R);
    a->ln2_rstd = arena_take(ar, R);
    a->fc1 = arena_take(ar, R * hidden);
    a->gelu = arena_take(ar, R * hidden);
    a->out = arena_take(ar, R * C);
}

void vit_block_forward(block_acts_t *a, const block_params_t *p, const float *x,
                       const block_dims_t *d)
{
    const int R = d->S * d->T, C = d->C, Hd = d->hidden;
    PROFILED(PROFILE_LAYERNORM, layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, p->ln1_w, p->ln1_b, R, C));
    PROFILED(PROFILE_QKV, linear_forward(a->qkv, a->ln1, p->qkv_w, p->qkv_b, R, C, 3 * C, d->micro_batches));
    PROFILED(PROFILE_ATTENTION, attention_forward(a->att, a->probs, a->qkv, d->S, d->T, C, d->heads));
    /* the residual adds seed the products' outputs (linear_forward_res) */
    PROFILED(PROFILE_ATTN_PROJ, linear_forward_res(a->res1, a->att, p->proj_w, p->proj_b, x, R, C, C, d->micro_batches));
    PROFILED(PROFILE_LAYERNORM, layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, p->ln2_w, p->ln2_b, R, C));
    PROFILED(PROFILE_FC1, linear_forward(a->fc1, a->ln2, p->fc1_w, p->fc1_b, R, C, Hd, d->micro_batches));
    PROFILED(PROFILE_GELU, activation_forward(ACT_GELU, a->gelu, a->fc1, (size_t)R * Hd));
    PROFILED(PROFILE_FC2, linear_forward_res(a->out, a->gelu, p->fc2_w, p->fc2_b, a->res1, R, Hd, C, d->micro_batches));
}

void vit_block_backward(float *dx, block_params_t *g, const block_params_t *p,
                        const block_acts_t *a, const float *x, block_scratch_t *s,
                        const block_dims_t *d)
{
    const int R = d->S * d->T, C = d->C, Hd = d->hidden;
    /* MLP branch: dx (= d out) flows to res1 directly and through the MLP. */
    PROFILED(PROFILE_FC2, linear_backward(s->hidden, g->fc2_w, g->fc2_b, dx, a->gelu, p->fc2_w, R, Hd, C, d->micro_batches));
    PROFILED(PROFILE_GELU, activation_backward(ACT_GELU, s->hidden, a->fc1, s->hidden, (size_t)R * Hd));
    PROFILED(PROFILE_FC1, linear_backward(s->c, g->fc1_w, g->fc1_b, s->hidden, a->ln2, p->fc1_w, R, C, Hd, d->micro_batches));
    PROFILED(PROFILE_LAYERNORM, layernorm_backward(dx, g->ln2_w, g->ln2_b, s->c, a->res1, p->ln2_w, a->ln2_mean,
                       a->ln2_rstd, R, C, d->micro_batches));
    /* Attention branch: dx now holds d res1, which flows to x and through attention. */
    PROFILED(PROFILE_ATTN_PROJ, linear_backward(s->c, g->proj_w, g->proj_b, dx, a->att, p->proj_w, R, C, C, d->micro_batches));
    PROFILED(PROFILE_ATTENTION, attention_backward(s->qkv, s->c, a->qkv, a->probs, d->S, d->T, C, d->heads));
    PROFILED(PROFILE_QKV, linear_backward(s->c, g->qkv_w, g->qkv_b, s->qkv, a->ln1, p->qkv_w, R, C, 3 * C, d->micro_batches));
    /* The key bias adds q.b to every score of a query row, which softmax
     * ignores: its gradient is exactly zero. Saying so keeps float rounding
     * noise (which AdamW would normalise into real updates) out of it. */
    for (int i = C; i < 2 * C; i++) g->qkv_b[i] = 0.0f;
    PROFILED(PROFILE_LAYERNORM, layernorm_backward(dx, g->ln1_w, g->ln1_b, s->c, x, p->ln1_w, a->ln1_mean, a->ln1_rstd,
                       R, C, d->micro_batches));
}
