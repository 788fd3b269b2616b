#include "core/objective/masks.h"

#include <stddef.h>

#include "core/data/rng.h"

void mask_permutation(int *perm, float *u, int L, uint64_t seed, uint64_t epoch,
                      uint64_t image_index)
{
    rng_t rng;
    rng_init(&rng, seed, epoch, image_index, RNG_STREAM_MASK);
    for (int l = 0; l < L; l++) u[l] = rng_uniform(&rng);
    /* Stable insertion argsort: ties keep index order, so the result is
     * defined, and L is at most a few hundred. */
    for (int l = 0; l < L; l++) {
        int j = l;
        while (j > 0 && u[perm[j - 1]] > u[l]) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = l;
    }
}

void mask_tables(int *vis_patch, int *token_of, const int *perm, int B, int N, int L, int V)
{
    for (int b = 0; b < B; b++)
        for (int k = 0; k < N; k++) {
            const size_t s = (size_t)b * N + k;
            int *tok = token_of + s * L;
            for (int l = 0; l < L; l++) tok[l] = -1;
            for (int i = 0; i < V; i++) {
                int l = perm[(size_t)b * L + (size_t)k * V + i];
                vis_patch[s * V + i] = l;
                tok[l] = i;
            }
        }
}
