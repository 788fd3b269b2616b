/* Training augmentation of docs/METHOD.md step 1: random resized crop, horizontal
 * flip, per-channel normalisation, following torchvision's RandomResizedCrop
 * and RandomHorizontalFlip with the crop resized to the model's input size
 * OH x OW. A data set may store larger images than the model takes (a folder
 * import at 256 for a 224 model, as MAE reads ImageNet): the crop is drawn
 * from the whole stored image, so it has the resolution to crop from, and
 * evaluation takes the centre OH x OW (augment_centre).
 *
 * Images are uint8 H x W x C, row-major, channel last; outputs are float
 * OH x OW x C with out = (pixel / 255 - mean[c]) / std[c], mean and std given
 * on the 0..1 scale. Nothing here allocates: callers own every buffer. */
#ifndef MIMAE_DATA_AUGMENT_H
#define MIMAE_DATA_AUGMENT_H

#include <stdint.h>
#include "core/data/rng.h"

typedef struct {
    float scale_min, scale_max;   /* crop area as a fraction of the image area */
    float ratio_min, ratio_max;   /* crop width / height */
    int flip;                     /* nonzero: mirror horizontally with probability 0.5 */
} augment_params_t;

/* MAE's pre-training setting: scale 0.2..1.0, ratio 3/4..4/3, flip on. */
augment_params_t augment_defaults(void);

/* A crop of the source image (rows top..top+height-1, columns
 * left..left+width-1) and whether the result is mirrored. */
typedef struct {
    int top, left, height, width, flip;
} crop_box_t;

/* torchvision RandomResizedCrop.get_params, then the flip decision:
 * up to 10 tries of area = H*W*U(scale_min, scale_max) and a log-uniform
 * ratio, w = round(sqrt(area*ratio)), h = round(sqrt(area/ratio)) (round half
 * to even, like Python), accepted when 0 < w <= W and 0 < h <= H, placed at
 * top = U{0..H-h}, left = U{0..W-w}. If all tries fail, the centre crop of
 * the whole image with its ratio clamped to [ratio_min, ratio_max].
 * The draws, in order: per try scale, ratio (two words each), then top and
 * left when accepted; then the flip (two words) when a->flip is set. */
crop_box_t augment_sample_box(const augment_params_t *a, int H, int W, rng_t *rng);

/* Resizes the box of the H x W image to OH x OW bilinearly as PyTorch's
 * interpolate does with align_corners=False and no antialias (half-pixel
 * centres, source coordinate clamped to the box), mirrors it if box->flip,
 * normalises into dst (OH x OW x C). The box must lie inside the image with
 * height, width >= 1. */
void augment_apply(const uint8_t *src, int H, int W, int C, const crop_box_t *box, int OH,
                   int OW, const float *mean, const float *std, float *dst);

/* The training augmentation of image `image_index` in `epoch`, to OH x OW:
 * the box comes from the RNG_STREAM_AUGMENT stream of (seed, epoch,
 * image_index), so it depends on nothing else. */
void augment_image(const uint8_t *src, int H, int W, int C, int OH, int OW,
                   const augment_params_t *a, const float *mean, const float *std,
                   uint64_t seed, uint64_t epoch, uint64_t image_index, float *dst);

/* Normalisation only, no crop, no flip. Bitwise equal to augment_apply with
 * the full box, the image's size and no flip. */
void augment_normalise(const uint8_t *src, int H, int W, int C,
                       const float *mean, const float *std, float *dst);

/* Evaluation: the centre OH x OW of the H x W image (OH <= H, OW <= W; the
 * top-left of the two middles when the margin is odd), normalised: MAE's
 * resize-to-256 and centre crop to 224 for images stored at 256, and
 * augment_normalise for images of the model's size. */
void augment_centre(const uint8_t *src, int H, int W, int C, int OH, int OW,
                    const float *mean, const float *std, float *dst);

#endif
