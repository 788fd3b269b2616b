/* Multi-head self-attention core, per sequence and head: direct vectorised
 * loops for short sequences (T <= 64), cblas_sgemm per head otherwise;
 * sequences are spread over core/kernels/parallel.h's threads.
 * qkv (S*T, 3C) token-major: q = columns [0,C), k = [C,2C), v = [2C,3C); head h
 * uses columns h*dh..(h+1)*dh of each (timm's layout). out (S*T, C) with the
 * heads concatenated; probs (S, NH, T, T) kept for the backward. */
#ifndef MIMAE_KERNELS_ATTENTION_H
#define MIMAE_KERNELS_ATTENTION_H

void attention_forward(float *out, float *probs, const float *qkv, int S, int T, int C,
                       int NH);

/* Overwrites dqkv (S*T, 3C). Each thread uses its own scratch
 * (par_scratch). */
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                        int S, int T, int C, int NH);

#endif
