/* Random resized crop, flip and normalisation: exact identities of the
 * resampler, hand-computed bilinear values, the statistics of the sampled
 * boxes, and determinism in (seed, epoch, image index). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/data/augment.h"
#include "core/data/rng.h"

#define MAX_H 48
#define MAX_W 48
#define MAX_C 3
#define MAX_VALUES (MAX_H * MAX_W * MAX_C)

static const float mean3[3] = { 0.485f, 0.456f, 0.406f };
static const float std3[3] = { 0.229f, 0.224f, 0.225f };
static const float mean1[1] = { 0.2860f };
static const float std1[1] = { 0.3530f };

static void image_fill_random(uint8_t *img, int H, int W, int C, uint64_t seed)
{
    rng_t r;
    rng_init(&r, seed, 0, 0, RNG_STREAM_EVAL);
    for (int i = 0; i < H * W * C; i++)
        img[i] = (uint8_t)(rng_u32(&r) & 0xFF);
}

/* The full box without flip samples every pixel at its own centre with
 * weight exactly 1, so the result is bitwise the evaluation transform. */
static void full_box_check(int H, int W, int C, const float *mean, const float *std)
{
    static uint8_t img[MAX_VALUES];
    static float via_apply[MAX_VALUES], via_normalise[MAX_VALUES];
    image_fill_random(img, H, W, C, (uint64_t)(H * 1000 + W * 10 + C));
    crop_box_t full = { 0, 0, H, W, 0 };
    augment_apply(img, H, W, C, &full, H, W, mean, std, via_apply);
    augment_normalise(img, H, W, C, mean, std, via_normalise);
    assert_memory_equal(via_apply, via_normalise, sizeof(float) * (size_t)(H * W * C));
    /* And the normalisation itself is (pixel/255 - mean) / std. */
    for (int i = 0; i < H * W * C; i++) {
        int c = i % C;
        assert_true(via_normalise[i] == ((float)img[i] / 255.0f - mean[c]) / std[c]);
    }
}

static void test_full_box_is_normalise(void **state)
{
    (void)state;
    full_box_check(28, 28, 1, mean1, std1);
    full_box_check(32, 24, 3, mean3, std3);
    full_box_check(1, 1, 3, mean3, std3);
}

static void test_flip_mirrors_columns(void **state)
{
    (void)state;
    enum { H = 30, W = 26, C = 3 };
    static uint8_t img[H * W * C];
    static float plain[H * W * C], mirrored[H * W * C];
    image_fill_random(img, H, W, C, 77);
    augment_params_t a = augment_defaults();
    for (uint64_t index = 0; index < 20; index++) {
        rng_t r;
        rng_init(&r, 1, 0, index, RNG_STREAM_AUGMENT);
        crop_box_t box = augment_sample_box(&a, H, W, &r);
        box.flip = 0;
        augment_apply(img, H, W, C, &box, H, W, mean3, std3, plain);
        box.flip = 1;
        augment_apply(img, H, W, C, &box, H, W, mean3, std3, mirrored);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    assert_true(mirrored[(y * W + x) * C + c] ==
                                plain[(y * W + (W - 1 - x)) * C + c]);
    }
}

/* Bilinear weights sum to one, so any box of a constant image gives the
 * constant (up to the rounding of the weighted sum). */
static void test_constant_image(void **state)
{
    (void)state;
    enum { H = 20, W = 36, C = 3 };
    static uint8_t img[H * W * C];
    static float out[H * W * C];
    const uint8_t level[C] = { 17, 128, 255 };
    for (int p = 0; p < H * W; p++)
        for (int c = 0; c < C; c++)
            img[p * C + c] = level[c];
    augment_params_t a = augment_defaults();
    for (uint64_t index = 0; index < 50; index++) {
        augment_image(img, H, W, C, H, W, &a, mean3, std3, 3, 0, index, out);
        for (int p = 0; p < H * W; p++)
            for (int c = 0; c < C; c++) {
                float expect = ((float)level[c] / 255.0f - mean3[c]) / std3[c];
                assert_float_equal(out[p * C + c], expect, 1e-5);
            }
    }
}

/* A 3 x 3 box of the ramp 20*y + 10*x + 50*c in a 6 x 6 image, resized
 * 2x. With align_corners=False, output index d samples source coordinate
 * max(0, (d + 0.5)/2 - 0.5), the upper tap clamped to the last index:
 * along each axis the 6 outputs sit at 0, 0.25, 0.75, 1.25, 1.75, 2
 * (PyTorch: interpolate([0,1,2], size=6) = [0, .25, .75, 1.25, 1.75, 2]).
 * The box starts at (2, 1), value 50 in channel 0, so output (y, x) is
 * 50 + 20*f[y] + 10*f[x] (+ 50*c). */
static void test_upsample_ramp(void **state)
{
    (void)state;
    enum { H = 6, W = 6, C = 3 };
    static const float expect_c0[H][W] = {
        { 50.0f, 52.5f, 57.5f, 62.5f, 67.5f, 70.0f },
        { 55.0f, 57.5f, 62.5f, 67.5f, 72.5f, 75.0f },
        { 65.0f, 67.5f, 72.5f, 77.5f, 82.5f, 85.0f },
        { 75.0f, 77.5f, 82.5f, 87.5f, 92.5f, 95.0f },
        { 85.0f, 87.5f, 92.5f, 97.5f, 102.5f, 105.0f },
        { 90.0f, 92.5f, 97.5f, 102.5f, 107.5f, 110.0f },
    };
    uint8_t img3[H * W * C], img1[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            img1[y * W + x] = (uint8_t)(20 * y + 10 * x);
            for (int c = 0; c < C; c++)
                img3[(y * W + x) * C + c] = (uint8_t)(20 * y + 10 * x + 50 * c);
        }
    const crop_box_t box = { 2, 1, 3, 3, 0 };
    const float zero[C] = { 0, 0, 0 }, one[C] = { 1, 1, 1 };
    const float mean[C] = { 0.1f, 0.2f, 0.3f }, std[C] = { 0.5f, 0.25f, 2.0f };
    float out3[H * W * C], out1[H * W];

    /* Raw values: mean 0, std 1 gives value / 255. */
    augment_apply(img1, H, W, 1, &box, H, W, zero, one, out1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            assert_float_equal(out1[y * W + x] * 255.0f, expect_c0[y][x], 1e-4);

    /* Three channels with their own offsets, means and stds. */
    augment_apply(img3, H, W, C, &box, H, W, mean, std, out3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                float value = expect_c0[y][x] + 50.0f * (float)c;
                float expect = (value / 255.0f - mean[c]) / std[c];
                assert_float_equal(out3[(y * W + x) * C + c], expect, 1e-5);
            }

    /* Flipped: the same rows read right to left. */
    const crop_box_t flipped = { 2, 1, 3, 3, 1 };
    augment_apply(img1, H, W, 1, &flipped, H, W, zero, one, out1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            assert_float_equal(out1[y * W + x] * 255.0f, expect_c0[y][W - 1 - x], 1e-4);
}

/* Every sampled box lies in the image; its area fraction and ratio are
 * within the bounds up to rounding each side to an integer (some real
 * w', h' within 0.5 of w, h meets them). Flips come up about half the time. */
static void boxes_check(int H, int W, int samples, uint64_t seed)
{
    augment_params_t a = augment_defaults();
    double area = (double)H * W;
    double min_fraction = 2.0, max_fraction = 0.0;
    int flips = 0;
    for (int i = 0; i < samples; i++) {
        rng_t r;
        rng_init(&r, seed, (uint64_t)i % 7, (uint64_t)i, RNG_STREAM_AUGMENT);
        crop_box_t b = augment_sample_box(&a, H, W, &r);
        assert_true(b.height >= 1 && b.width >= 1);
        assert_true(b.top >= 0 && b.left >= 0);
        assert_true(b.top + b.height <= H && b.left + b.width <= W);
        double w = b.width, h = b.height;
        assert_true((w + 0.5) * (h + 0.5) >= a.scale_min * area);
        assert_true((w - 0.5) * (h - 0.5) <= a.scale_max * area);
        assert_true((w + 0.5) / (h - 0.5) >= a.ratio_min);   /* h >= 1 */
        assert_true((w - 0.5) / (h + 0.5) <= a.ratio_max);
        double fraction = w * h / area;
        min_fraction = fmin(min_fraction, fraction);
        max_fraction = fmax(max_fraction, fraction);
        flips += b.flip;
    }
    /* sd of the flip count is sqrt(samples)/2; allow 5 sd. */
    double sd = sqrt((double)samples) / 2.0;
    assert_true(fabs(flips - samples / 2.0) < 5.0 * sd);
    if (H >= 28 && W >= 28 && H == W) {   /* the whole scale range is reachable */
        assert_true(min_fraction < 0.25);
        assert_true(max_fraction > 0.9);
    }
}

static void test_sampled_boxes(void **state)
{
    (void)state;
    boxes_check(28, 28, 20000, 1);
    boxes_check(32, 32, 20000, 2);
    boxes_check(224, 224, 20000, 3);
    boxes_check(20, 40, 20000, 4);
    boxes_check(40, 20, 20000, 5);
    boxes_check(7, 5, 20000, 6);
    boxes_check(1, 1, 1000, 7);
}

static void test_no_flip_when_disabled(void **state)
{
    (void)state;
    augment_params_t a = augment_defaults();
    a.flip = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        rng_t r;
        rng_init(&r, 11, 0, i, RNG_STREAM_AUGMENT);
        assert_int_equal(augment_sample_box(&a, 32, 32, &r).flip, 0);
    }
}

/* No try can fit an area larger than the image, so torchvision's centre
 * fallback applies: the whole image cut to the nearest allowed ratio. */
static void test_fallback_centre_crop(void **state)
{
    (void)state;
    augment_params_t a = augment_defaults();
    a.scale_min = 2.0f;
    a.scale_max = 3.0f;
    a.flip = 0;
    rng_t r;
    rng_init(&r, 0, 0, 0, RNG_STREAM_AUGMENT);
    crop_box_t wide = augment_sample_box(&a, 20, 40, &r);    /* h = 20, w = round(26.67) */
    assert_int_equal(wide.top, 0);
    assert_int_equal(wide.left, 6);
    assert_int_equal(wide.height, 20);
    assert_int_equal(wide.width, 27);
    crop_box_t tall = augment_sample_box(&a, 40, 20, &r);    /* w = 20, h = round(26.67) */
    assert_int_equal(tall.top, 6);
    assert_int_equal(tall.left, 0);
    assert_int_equal(tall.height, 27);
    assert_int_equal(tall.width, 20);
    crop_box_t square = augment_sample_box(&a, 32, 32, &r);  /* ratio 1 allowed: all of it */
    assert_int_equal(square.top, 0);
    assert_int_equal(square.left, 0);
    assert_int_equal(square.height, 32);
    assert_int_equal(square.width, 32);
    assert_int_equal(square.flip, 0);
}

static void test_augment_image_deterministic(void **state)
{
    (void)state;
    enum { H = 32, W = 32, C = 3 };
    static uint8_t img[H * W * C];
    static float a1[H * W * C], a2[H * W * C], other[H * W * C], manual[H * W * C];
    image_fill_random(img, H, W, C, 5);
    augment_params_t a = augment_defaults();

    augment_image(img, H, W, C, H, W, &a, mean3, std3, 42, 3, 17, a1);
    augment_image(img, H, W, C, H, W, &a, mean3, std3, 42, 3, 17, a2);
    assert_memory_equal(a1, a2, sizeof a1);

    augment_image(img, H, W, C, H, W, &a, mean3, std3, 42, 3, 18, other);   /* index */
    assert_memory_not_equal(a1, other, sizeof a1);
    augment_image(img, H, W, C, H, W, &a, mean3, std3, 42, 4, 17, other);   /* epoch */
    assert_memory_not_equal(a1, other, sizeof a1);
    augment_image(img, H, W, C, H, W, &a, mean3, std3, 43, 3, 17, other);   /* seed */
    assert_memory_not_equal(a1, other, sizeof a1);

    /* The box is the AUGMENT stream's of (seed, epoch, index), nothing else. */
    rng_t r;
    rng_init(&r, 42, 3, 17, RNG_STREAM_AUGMENT);
    crop_box_t box = augment_sample_box(&a, H, W, &r);
    augment_apply(img, H, W, C, &box, H, W, mean3, std3, manual);
    assert_memory_equal(a1, manual, sizeof a1);
}

/* Images stored larger than the model: the crop is resized to the model's
 * size (a full box over an image of every pixel doubled gives the original,
 * mirrored too), and evaluation's centre crop is the middle, normalised. */
static void test_output_at_the_model_size(void **state)
{
    (void)state;
    enum { H = 6, W = 10, C = 3 };
    static uint8_t small[H * W * C], big[4 * H * W * C], mirror[H * W * C];
    static float want[H * W * C], got[H * W * C];
    image_fill_random(small, H, W, C, 5);
    for (int y = 0; y < 2 * H; y++)
        for (int x = 0; x < 2 * W; x++)
            for (int c = 0; c < C; c++)
                big[((size_t)y * 2 * W + x) * C + c] = small[((size_t)(y / 2) * W + x / 2) * C + c];
    const crop_box_t full = {0, 0, 2 * H, 2 * W, 0}, flipped = {0, 0, 2 * H, 2 * W, 1};
    augment_normalise(small, H, W, C, mean3, std3, want);
    augment_apply(big, 2 * H, 2 * W, C, &full, H, W, mean3, std3, got);
    assert_memory_equal(want, got, sizeof want);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            memcpy(mirror + ((size_t)y * W + x) * C, small + ((size_t)y * W + W - 1 - x) * C, C);
    augment_normalise(mirror, H, W, C, mean3, std3, want);
    augment_apply(big, 2 * H, 2 * W, C, &flipped, H, W, mean3, std3, got);
    assert_memory_equal(want, got, sizeof want);

    /* the centre 4 x 7 of the 6 x 10 image: rows 1..4, columns 1..7 */
    static float centre[4 * 7 * C];
    augment_centre(small, H, W, C, 4, 7, mean3, std3, centre);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 7; x++)
            for (int c = 0; c < C; c++) {
                const float v = ((float)small[((size_t)(y + 1) * W + x + 1) * C + c] / 255.0f -
                                 mean3[c]) / std3[c];
                assert_true(centre[((size_t)y * 7 + x) * C + c] == v);
            }
    augment_centre(small, H, W, C, H, W, mean3, std3, got);
    augment_normalise(small, H, W, C, mean3, std3, want);
    assert_memory_equal(want, got, sizeof want);

    /* training: the box drawn on the stored image, resized to the model's */
    augment_params_t a = augment_defaults();
    rng_t r;
    rng_init(&r, 7, 1, 3, RNG_STREAM_AUGMENT);
    const crop_box_t box = augment_sample_box(&a, 2 * H, 2 * W, &r);
    augment_apply(big, 2 * H, 2 * W, C, &box, H, W, mean3, std3, want);
    augment_image(big, 2 * H, 2 * W, C, H, W, &a, mean3, std3, 7, 1, 3, got);
    assert_memory_equal(want, got, sizeof want);
}

/* The box does not depend on C, and channels never mix: a 3-channel image
 * gives, channel by channel, what each plane gives as a 1-channel image. */
static void test_channels_independent(void **state)
{
    (void)state;
    enum { H = 24, W = 40, C = 3 };
    static uint8_t rgb[H * W * C], plane[C][H * W];
    static float out_rgb[H * W * C], out_plane[H * W];
    image_fill_random(rgb, H, W, C, 9);
    for (int p = 0; p < H * W; p++)
        for (int c = 0; c < C; c++)
            plane[c][p] = rgb[p * C + c];
    augment_params_t a = augment_defaults();
    for (uint64_t index = 0; index < 10; index++) {
        augment_image(rgb, H, W, C, H, W, &a, mean3, std3, 8, 2, index, out_rgb);
        for (int c = 0; c < C; c++) {
            augment_image(plane[c], H, W, 1, H, W, &a, &mean3[c], &std3[c], 8, 2, index, out_plane);
            for (int p = 0; p < H * W; p++)
                assert_true(out_plane[p] == out_rgb[p * C + c]);
        }
    }
}

static void test_defaults(void **state)
{
    (void)state;
    augment_params_t a = augment_defaults();
    assert_true(a.scale_min == 0.2f && a.scale_max == 1.0f);
    assert_true(a.ratio_min == 3.0f / 4.0f && a.ratio_max == 4.0f / 3.0f);
    assert_int_equal(a.flip, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_box_is_normalise),
        cmocka_unit_test(test_flip_mirrors_columns),
        cmocka_unit_test(test_constant_image),
        cmocka_unit_test(test_upsample_ramp),
        cmocka_unit_test(test_sampled_boxes),
        cmocka_unit_test(test_no_flip_when_disabled),
        cmocka_unit_test(test_fallback_centre_crop),
        cmocka_unit_test(test_augment_image_deterministic),
        cmocka_unit_test(test_output_at_the_model_size),
        cmocka_unit_test(test_channels_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
