/* Synthetic shapes data set (see synthetic.h). */
#include "io/synthetic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data/rng.h"
#include "io/data_import.h"
#include "io/dataset.h"
#include "io/io_error.h"
#include "io/io_path.h"

#define COLOURS 6
#define NOISE 0.05f
#define BLOCK 64 /* images per append */

static const char *const shape_names[SYNTHETIC_SHAPES] = {
    "square", "circle", "triangle", "hbars", "vbars", "cross", "ring", "diagonal"
};
static const char *const colour_names[COLOURS] = {
    "white", "red", "green", "blue", "yellow", "magenta"
};
static const float palette[COLOURS][3] = {
    { 1.0f, 1.0f, 1.0f }, { 1.0f, 0.2f, 0.2f }, { 0.2f, 1.0f, 0.2f },
    { 0.25f, 0.45f, 1.0f }, { 1.0f, 1.0f, 0.2f }, { 1.0f, 0.25f, 1.0f }
};

int synthetic_max_classes(int c)
{
    return SYNTHETIC_SHAPES * 2 * 2 * (c >= 3 ? COLOURS : 1);
}

/* Is (u, v), in units of the shape's half size around its centre, inside? */
static int inside(int shape, float u, float v)
{
    const float au = fabsf(u), av = fabsf(v);
    const float r2 = u * u + v * v;
    switch (shape) {
    case 0: return au <= 1 && av <= 1;
    case 1: return r2 <= 1;
    case 2: return v >= -1 && v <= 1 && au <= (v + 1) * 0.5f;
    case 3: return au <= 1 && av <= 1 && ((int)((v + 1) * 2.5f) % 2) == 0;
    case 4: return au <= 1 && av <= 1 && ((int)((u + 1) * 2.5f) % 2) == 0;
    case 5: return (au <= 0.3f && av <= 1) || (av <= 0.3f && au <= 1);
    case 6: return r2 <= 1 && r2 >= 0.5f;
    default: return au <= 1 && av <= 1 && fabsf(u - v) <= 0.45f;
    }
}

void synthetic_image(uint8_t *img, int h, int w, int c, int label, uint64_t seed,
                     uint64_t index)
{
    rng_t r;
    rng_init(&r, seed, 0, index, RNG_STREAM_EVAL);
    const int shape = label % SYNTHETIC_SHAPES, variant = label / SYNTHETIC_SHAPES;
    const int dark = variant & 1, checker = (variant >> 1) & 1;
    const int colour = c >= 3 ? (variant >> 2) % COLOURS : 0;
    const float side = (float)(h < w ? h : w);
    const float rad = side * (0.22f + 0.13f * rng_uniform(&r));
    const float cx = rad + ((float)w - 2 * rad) * rng_uniform(&r);
    const float cy = rad + ((float)h - 2 * rad) * rng_uniform(&r);
    const float fg = dark ? 0.1f + 0.3f * rng_uniform(&r) : 0.65f + 0.35f * rng_uniform(&r);
    const float bg = dark ? 0.75f + 0.25f * rng_uniform(&r) : 0.25f * rng_uniform(&r);
    int period = (int)(side / 10);
    if (period < 1) period = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float u = ((float)x + 0.5f - cx) / rad, v = ((float)y + 0.5f - cy) / rad;
            int in = inside(shape, u, v);
            if (in && checker && ((x / period + y / period) & 1)) in = 0;
            for (int ch = 0; ch < c; ch++) {
                float val = in ? fg * palette[colour][ch % 3] : bg;
                val = floorf(255.0f * (val + NOISE * rng_normal(&r)) + 0.5f);
                img[((size_t)y * w + x) * c + ch] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
            }
        }
}

typedef struct {
    uint64_t seed, base; /* image i of the split is RNG index base + i */
} synthetic_ctx_t;

static int read_images(const import_split_t *s, long first, long count, uint8_t *pixels,
                       int32_t *labels, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const synthetic_ctx_t *x = s->ctx;
    const dataset_info_t *in = &s->info;
    const size_t image_bytes = (size_t)in->h * in->w * in->c;
    for (long i = 0; i < count; i++) {
        labels[i] = (int32_t)((first + i) % in->num_classes);
        synthetic_image(pixels + (size_t)i * image_bytes, in->h, in->w, in->c, labels[i],
                        x->seed, x->base + (uint64_t)(first + i));
    }
    return 0;
}

int synthetic_generate(const char *out_dir, long n, int h, int w, int c, int classes,
                       uint64_t seed, char *err, size_t errlen)
{
    return synthetic_generate_opts(out_dir, n, h, w, c, classes, seed, NULL, err, errlen);
}

int synthetic_generate_opts(const char *out_dir, long n, int h, int w, int c, int classes,
                            uint64_t seed, const import_opts_t *opts, char *err,
                            size_t errlen)
{
    if (!out_dir || !*out_dir)
        return io_fail(err, errlen, "synthetic data: no output directory given");
    if (h < SYNTHETIC_MIN_SIDE || h > SYNTHETIC_MAX_SIDE || w < SYNTHETIC_MIN_SIDE ||
        w > SYNTHETIC_MAX_SIDE || c < 1 || c > DATASET_MAX_CHANNELS)
        return io_fail(err, errlen, "%s: synthetic images of %dx%dx%d are not supported: height "
                       "and width 8..1024, channels 1..%d", out_dir, h, w, c,
                       DATASET_MAX_CHANNELS);
    if (classes < 1 || classes > synthetic_max_classes(c))
        return io_fail(err, errlen, "%s: %d synthetic classes requested; %d distinct ones exist "
                       "for %d channel(s)", out_dir, classes, synthetic_max_classes(c), c);
    if (n < classes || n >= (long)SYNTHETIC_TEST_BASE)
        return io_fail(err, errlen, "%s: %ld synthetic images requested: give at least one per "
                       "class (%d) and fewer than 2^31", out_dir, n, classes);
    dataset_info_t info;
    memset(&info, 0, sizeof info);
    snprintf(info.name, sizeof info.name, "synthetic-shapes");
    snprintf(info.source, sizeof info.source, "synthetic seed=%llu",
             (unsigned long long)seed);
    info.h = h;
    info.w = w;
    info.c = c;
    info.num_classes = classes;
    info.class_names = calloc((size_t)classes, sizeof *info.class_names);
    int rc = -1;
    if (!info.class_names) {
        io_fail(err, errlen, "%s: out of memory", out_dir);
        goto out;
    }
    for (int k = 0; k < classes; k++) {
        const int v = k / SYNTHETIC_SHAPES;
        const int colour = c >= 3 ? (v >> 2) % COLOURS : 0;
        snprintf(info.class_names[k], DATASET_NAME_MAX, "%s%s%s%s%s",
                 colour ? colour_names[colour] : "", colour ? "-" : "",
                 shape_names[k % SYNTHETIC_SHAPES], v & 1 ? "-dark" : "",
                 v & 2 ? "-checkered" : "");
    }
    const synthetic_ctx_t ctx[2] = {{seed, 0}, {seed, SYNTHETIC_TEST_BASE}};
    const import_split_t splits[2] = {
        import_split_of(&info, 0, n, BLOCK, read_images, (void *)&ctx[0]),
        import_split_of(&info, 1, n / 5 > classes ? n / 5 : classes, BLOCK, read_images,
                        (void *)&ctx[1]),
    };
    rc = data_import(out_dir, splits, 2, opts, err, errlen);
out:
    dataset_info_free(&info);
    return rc;
}
