/* Images <-> patch vectors. Images are float (B, H, W, C), channel last;
 * patches are (B, L, P) with L in raster order and each patch vector ordered
 * (row, col, channel) inside the patch, as MAE's patchify. */
#ifndef MIMAE_VIT_PATCHES_H
#define MIMAE_VIT_PATCHES_H

void patchify(float *patches, const float *images, int B, int H, int W, int C, int p);
void unpatchify(float *images, const float *patches, int B, int H, int W, int C, int p);

#endif
