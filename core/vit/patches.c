#include "core/vit/patches.h"

#include <stddef.h>
#include <string.h>

/* One routine for both directions: a patch row is a contiguous run of p*C
 * floats in both layouts, so each direction is the same set of row copies. */
static void patch_rows_copy(float *patches, float *images, int B, int H, int W, int C, int p,
                            int to_patches)
{
    const int gh = H / p, gw = W / p, row_len = p * C, P = p * p * C;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < gh; i++)
            for (int j = 0; j < gw; j++)
                for (int r = 0; r < p; r++) {
                    float *img = images + (((size_t)b * H + (size_t)i * p + r) * W +
                                           (size_t)j * p) * C;
                    float *pat = patches + (((size_t)b * gh + i) * gw + j) * P +
                                 (size_t)r * row_len;
                    if (to_patches)
                        memcpy(pat, img, (size_t)row_len * sizeof(float));
                    else
                        memcpy(img, pat, (size_t)row_len * sizeof(float));
                }
}

void patchify(float *patches, const float *images, int B, int H, int W, int C, int p)
{
    patch_rows_copy(patches, (float *)images, B, H, W, C, p, 1);
}

void unpatchify(float *images, const float *patches, int B, int H, int W, int C, int p)
{
    patch_rows_copy((float *)patches, images, B, H, W, C, p, 0);
}
