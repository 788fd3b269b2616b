/* Building token sequences from masks, and pooling them (with backwards).
 * S = B*N sequences, s = b*N + k. Encoder sequences hold V+1 tokens (cls
 * first), decoder sequences L+1 (cls first, then patches in raster order). */
#ifndef MIMAE_VIT_TOKENS_H
#define MIMAE_VIT_TOKENS_H

#include "core/kernels/micro_batches.h"

/* Gathers the visible patch vectors: out (S*V, P) from patches (B, L, P). */
void tokens_gather_visible(float *out, const float *patches, const int *vis_patch, int S,
                           int N, int L, int V, int P);

/* x0 (S*(V+1), D): row 0 = cls + pos[0]; row 1+i = emb[s*V+i] + pos[1+vis_patch]. */
void tokens_encoder_forward(float *x0, const float *emb, const float *cls, const float *pos,
                            const int *vis_patch, int S, int V, int D);
/* demb (S*V, D) overwritten; dcls (D) accumulated, summed over the
 * micro-batches mb holds in the tree (NULL: one). */
void tokens_encoder_backward(float *demb, float *dcls, const float *dx0, int S, int V, int D,
                             micro_batches_t *mb);

/* xd (S*(L+1), Dd): row 0 = y[cls]; row 1+l = y[1+token_of[l]] or mask_token; + pos. */
void tokens_decoder_forward(float *xd, const float *y, const float *mask_token,
                            const float *pos, const int *token_of, int S, int L, int V, int Dd);
/* dy (S*(V+1), Dd) overwritten; dmask_token (Dd) accumulated, summed over
 * the micro-batches mb holds in the tree (NULL: one). */
void tokens_decoder_backward(float *dy, float *dmask_token, const float *dxd,
                             const int *token_of, int S, int L, int V, int Dd,
                             micro_batches_t *mb);

/* z (S, D) = mean of the V patch tokens of h (S*(V+1), D), or its cls token. */
void tokens_pool_forward(float *z, const float *h, int S, int V, int D, int pool);
/* dh += the pooled gradient dz (S, D) spread back over the pooled tokens. */
void tokens_pool_backward(float *dh, const float *dz, int S, int V, int D, int pool);

/* Q's input summary: qs (S, H) = mean_i (qe[s*V+i] + pos[vis_patch]) (pos without cls). */
void tokens_summary_forward(float *qs, const float *qe, const float *pos, const int *vis_patch,
                            int S, int V, int H);
/* dqe (S*V, H) overwritten from dqs (S, H). */
void tokens_summary_backward(float *dqe, const float *dqs, int S, int V, int H);

#endif
