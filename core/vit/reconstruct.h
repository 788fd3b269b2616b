/* Images to look at: for one image of the last forward pass and one of its
 * masks, the original, the masked input (hidden patches grey) and the
 * reconstruction (predicted hidden patches, norm-pix predictions mapped back
 * with the true patch's mean and std, pasted beside the visible ones), all
 * as 0..1 pixels (H, W, C) using the data set's channel mean/std. */
#ifndef MIMAE_VIT_RECONSTRUCT_H
#define MIMAE_VIT_RECONSTRUCT_H

#include "core/vit/model.h"

/* scratch holds 2 * L * P floats. */
void mimae_reconstruct(const mimae_model_t *m, int image, int mask, const float *mean,
                       const float *std, float *original, float *masked, float *reconstructed,
                       float *scratch);

#endif
