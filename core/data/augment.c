#include "core/data/augment.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

#define CROP_TRIES 10

augment_params_t augment_defaults(void)
{
    augment_params_t a = { 0.2f, 1.0f, 3.0f / 4.0f, 4.0f / 3.0f, 1 };
    return a;
}

/* Python's round() (half to even) for a value already known to fit an int;
 * rint does this in the default rounding mode. */
static int round_half_even(double x)
{
    return (int)rint(x);
}

/* torchvision's fallback: the whole image, cut down to the nearest allowed
 * ratio, centred. */
static crop_box_t box_centre(const augment_params_t *a, int H, int W)
{
    double in_ratio = (double)W / (double)H;
    int w = W, h = H;
    if (in_ratio < a->ratio_min)
        h = round_half_even((double)W / a->ratio_min);
    else if (in_ratio > a->ratio_max)
        w = round_half_even((double)H * a->ratio_max);
    /* Only absurd ratio bounds could round a side to 0; keep the box valid. */
    if (h < 1)
        h = 1;
    if (w < 1)
        w = 1;
    crop_box_t box = { (H - h) / 2, (W - w) / 2, h, w, 0 };
    return box;
}

crop_box_t augment_sample_box(const augment_params_t *a, int H, int W, rng_t *rng)
{
    double area = (double)H * (double)W;
    double log_ratio_min = log(a->ratio_min);
    double log_ratio_max = log(a->ratio_max);
    crop_box_t box = { 0, 0, 0, 0, 0 };
    int found = 0;
    for (int attempt = 0; attempt < CROP_TRIES && !found; attempt++) {
        double target_area = area * (a->scale_min + (a->scale_max - a->scale_min) * rng_uniform_double(rng));
        double ratio = exp(log_ratio_min + (log_ratio_max - log_ratio_min) * rng_uniform_double(rng));
        /* Compare before converting: an out-of-range double cast to int is undefined. */
        double w = rint(sqrt(target_area * ratio));
        double h = rint(sqrt(target_area / ratio));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            box.height = (int)h;
            box.width = (int)w;
            box.top = (int)rng_below(rng, (uint32_t)(H - box.height + 1));
            box.left = (int)rng_below(rng, (uint32_t)(W - box.width + 1));
            found = 1;
        }
    }
    if (!found)
        box = box_centre(a, H, W);
    box.flip = a->flip ? rng_uniform_double(rng) < 0.5 : 0;
    return box;
}

/* Same expression in the evaluation and the training path, so a full box
 * without flip reproduces augment_normalise bit for bit; the order of
 * operations is torchvision's ToTensor (/255) then Normalize. */
static float pixel_normalise(float value, float mean, float std)
{
    return (value / 255.0f - mean) / std;
}

/* Source taps of output index dst_index along one axis, PyTorch's
 * area_pixel_compute_source_index with align_corners=False: half-pixel
 * centres, negative coordinates clamped to 0, the upper tap clamped to the
 * last source index. */
static void tap_locate(int dst_index, float scale, int src_size, int *i0, int *i1, float *w1)
{
    float src = scale * ((float)dst_index + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int lower = (int)src;
    if (lower >= src_size - 1) {   /* past the last centre: that pixel alone */
        *i0 = *i1 = src_size - 1;
        *w1 = 0.0f;
        return;
    }
    *i0 = lower;
    *i1 = lower + 1;
    *w1 = src - (float)lower;
}

void augment_apply(const uint8_t *src, int H, int W, int C, const crop_box_t *box, int OH,
                   int OW, const float *mean, const float *std, float *dst)
{
    assert(box->height >= 1 && box->width >= 1 && box->top >= 0 && box->left >= 0 &&
           box->top + box->height <= H && box->left + box->width <= W && OH >= 1 && OW >= 1);
    /* PyTorch derives the scale from the sizes when none is given. */
    float scale_y = (float)box->height / (float)OH;
    float scale_x = (float)box->width / (float)OW;
    size_t row_stride = (size_t)W * (size_t)C, out_stride = (size_t)OW * (size_t)C;
    for (int oy = 0; oy < OH; oy++) {
        int y0, y1;
        float wy1;
        tap_locate(oy, scale_y, box->height, &y0, &y1, &wy1);
        float wy0 = 1.0f - wy1;
        const uint8_t *row0 = src + (size_t)(box->top + y0) * row_stride + (size_t)box->left * C;
        const uint8_t *row1 = src + (size_t)(box->top + y1) * row_stride + (size_t)box->left * C;
        float *out = dst + (size_t)oy * out_stride;
        for (int ox = 0; ox < OW; ox++) {
            /* Flipping after the resize: output column ox shows column OW-1-ox. */
            int sx = box->flip ? OW - 1 - ox : ox;
            int x0, x1;
            float wx1;
            tap_locate(sx, scale_x, box->width, &x0, &x1, &wx1);
            float wx0 = 1.0f - wx1;
            const uint8_t *p00 = row0 + (size_t)x0 * C, *p01 = row0 + (size_t)x1 * C;
            const uint8_t *p10 = row1 + (size_t)x0 * C, *p11 = row1 + (size_t)x1 * C;
            float *pixel = out + (size_t)ox * C;
            for (int c = 0; c < C; c++) {
                float value = wy0 * (wx0 * (float)p00[c] + wx1 * (float)p01[c]) +
                              wy1 * (wx0 * (float)p10[c] + wx1 * (float)p11[c]);
                pixel[c] = pixel_normalise(value, mean[c], std[c]);
            }
        }
    }
}

void augment_image(const uint8_t *src, int H, int W, int C, int OH, int OW,
                   const augment_params_t *a, const float *mean, const float *std,
                   uint64_t seed, uint64_t epoch, uint64_t image_index, float *dst)
{
    rng_t rng;
    rng_init(&rng, seed, epoch, image_index, RNG_STREAM_AUGMENT);
    crop_box_t box = augment_sample_box(a, H, W, &rng);
    augment_apply(src, H, W, C, &box, OH, OW, mean, std, dst);
}

void augment_normalise(const uint8_t *src, int H, int W, int C,
                       const float *mean, const float *std, float *dst)
{
    size_t pixels = (size_t)H * (size_t)W;
    for (size_t p = 0; p < pixels; p++)
        for (int c = 0; c < C; c++) {
            size_t i = p * (size_t)C + (size_t)c;
            dst[i] = pixel_normalise((float)src[i], mean[c], std[c]);
        }
}

void augment_centre(const uint8_t *src, int H, int W, int C, int OH, int OW,
                    const float *mean, const float *std, float *dst)
{
    assert(OH >= 1 && OW >= 1 && OH <= H && OW <= W);
    const int top = (H - OH) / 2, left = (W - OW) / 2;
    for (int y = 0; y < OH; y++)
        augment_normalise(src + ((size_t)(top + y) * W + (size_t)left) * C, 1, OW, C, mean, std,
                          dst + (size_t)y * OW * C);
}
