/* N orthogonal masks per image (docs/METHOD.md step 2). perm (L) is the argsort of
 * L uniforms; mask k keeps perm[k*V .. (k+1)*V-1] visible, in that order. */
#ifndef MIMAE_OBJECTIVE_MASKS_H
#define MIMAE_OBJECTIVE_MASKS_H

#include <stdint.h>

/* The permutation of one image, from the MASK stream of (seed, epoch, image).
 * u is scratch of L floats. */
void mask_permutation(int *perm, float *u, int L, uint64_t seed, uint64_t epoch,
                      uint64_t image_index);

/* Index tables for the S = B*N sequences (s = b*N + k):
 * vis_patch (S, V): the patch of encoder token 1+i of sequence s;
 * token_of (S, L): the encoder token index i of patch l, or -1 if hidden. */
void mask_tables(int *vis_patch, int *token_of, const int *perm, int B, int N, int L, int V);

#endif
