/* One pre-norm transformer block, x += Attn(LN1(x)); x += MLP(LN2(x)), over S
 * sequences of T tokens of width C (token-major rows, R = S*T). */
#ifndef MIMAE_VIT_BLOCK_H
#define MIMAE_VIT_BLOCK_H

#include "core/kernels/arena.h"
#include "core/kernels/micro_batches.h"
#include "core/vit/params.h"

typedef struct {
    int S, T, C, heads, hidden;
    micro_batches_t *micro_batches; /* what the S sequences hold (NULL: one micro-batch) */
} block_dims_t;

/* What the forward keeps for the backward; sizes in brackets (R = S*T). */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;  /* [R*C], [R], [R] */
    float *qkv;                        /* [R*3C] */
    float *probs;                      /* [S*heads*T*T] */
    float *att;                        /* [R*C] heads concatenated, before proj */
    float *res1;                       /* [R*C] x + attention branch */
    float *ln2, *ln2_mean, *ln2_rstd;  /* [R*C], [R], [R] */
    float *fc1;                        /* [R*hidden] before GELU */
    float *gelu;                       /* [R*hidden] */
    float *out;                        /* [R*C] block output */
} block_acts_t;

/* Reused by every block's backward; sizes: c [R*C], qkv [R*3C], hidden
 * [R*hidden]. */
typedef struct {
    float *c, *qkv, *hidden;
} block_scratch_t;

/* Places a block's tensors for these dims in the arena. */
void vit_block_acts_layout(arena_t *ar, block_acts_t *a, const block_dims_t *d);

void vit_block_forward(block_acts_t *a, const block_params_t *p, const float *x,
                       const block_dims_t *d);

/* On entry dx holds d(out); on return it holds d(x). Parameter gradients
 * accumulate into g, per micro-batch of d->micro_batches. */
void vit_block_backward(float *dx, block_params_t *g, const block_params_t *p,
                        const block_acts_t *a, const float *x, block_scratch_t *s,
                        const block_dims_t *d);

#endif
