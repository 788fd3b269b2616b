/* InfoNCE between the masks of the same image (docs/METHOD.md step 6), over a
 * candidate set given as a plain array so that dist/ can pass features
 * gathered from every rank and scatter their gradients back.
 *
 * cand (Bg*N, E): unit features of the global batch, image-major (row b*N+k).
 * This process's images are rows offset*N .. (offset+Bl)*N - 1; they are the
 * queries. For every ordered pair of masks (i, k), i != k, and local image b:
 *   l = -log softmax_{b'}(cand[b,i] . cand[b',k] / tau)[b].
 * Returns the sum over local b and pairs / (Bg * N(N-1)): summed over
 * processes this is L_max. dcand (Bg*N, E) accumulates grad_scale * dL/dcand
 * from this process's terms. scratch holds Bl*Bg floats. N = 1 returns 0. */
#ifndef MIMAE_OBJECTIVE_INFONCE_H
#define MIMAE_OBJECTIVE_INFONCE_H

double infonce_loss(float *dcand, const float *cand, int N, int Bg, int offset, int Bl, int E,
                    float tau, float grad_scale, float *scratch);

#endif
