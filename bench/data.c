/* The data path at scale (issue 16), measured in one run on one machine:
 *
 *   1. import: a folder of synthetic JPEGs (ImageNet-like 500x375 by default)
 *      imported with `mimae data folder ... --size S --shards K` on 1 rank
 *      and under `mpirun -n 2`: images/s each and the ratio;
 *   2. reading: the sharded training set read as one rank of 2 reads it,
 *      global sampling (random images of every shard) against shard-local
 *      (its own shards, one at a time): images/s of the reader alone and with
 *      the augmentation to the model's size, and their ratio;
 *   3. what a step consumes: the reader with its read-ahead feeding a step
 *      that takes batch / (step_img_s x margin) seconds (a ViT-B/16 MI-MAE
 *      step's rate, from bench/vitb, times a margin): data_wait_s per step,
 *      as mimae_dist records it, and the reader's rate over the step's.
 *
 *   bench/data [--images N] [--src WxH] [--size S] [--model M] [--shards K]
 *              [--batch B] [--steps T] [--step-img-s R] [--margin X]
 *              [--mimae PATH] [--dir DIR]
 *
 * The page cache is left alone (the machine is shared): the reader's rates
 * are those of files the import has just written, an upper bound for a
 * shared file system and about right for a node-local disk. Prints
 * `RESULT data_* ...` lines for bench/run.sh. */
#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/data/augment.h"
#include "core/data/rng.h"
#include "core/data/sampler.h"
#include "io/dataset.h"
#include "io/reader.h"

typedef struct {
    long images;
    int src_w, src_h, size, model, shards, batch, steps;
    double step_img_s, margin;
    char mimae[PATH_MAX], dir[PATH_MAX];
} opts_t;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static int write_jpeg(const char *path, int w, int h, const uint8_t *px)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, fp);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE); /* ImageNet's JPEGs are about this */
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(fp);
}

/* DIR/src/{train,val}/c<k>/<i>.jpg: gradients, a disc and noise, so that
 * the files have a photograph's entropy (tens of kB each). */
static int make_folder(const opts_t *o)
{
    const int classes = 10, w = o->src_w, h = o->src_h;
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px) return -1;
    char path[PATH_MAX + 64];
    for (int split = 0; split < 2; split++) {
        const long n = split ? (o->images / 10 > classes ? o->images / 10 : classes) : o->images;
        for (long i = 0; i < n; i++) {
            const int k = (int)(i % classes);
            snprintf(path, sizeof path, "%s/src/%s/c%d", o->dir, split ? "val" : "train", k);
            if (i < classes && mkdir(path, 0755) && access(path, F_OK)) return free(px), -1;
            rng_t r;
            rng_init(&r, 1, (uint64_t)split, (uint64_t)i, RNG_STREAM_EVAL);
            const float cx = (float)w * rng_uniform(&r), cy = (float)h * rng_uniform(&r);
            const float rad = (float)h * (0.1f + 0.3f * rng_uniform(&r));
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const int in = (x - cx) * (x - cx) + (y - cy) * (y - cy) < rad * rad;
                    const uint32_t noise = rng_u32(&r);
                    for (int c = 0; c < 3; c++)
                        px[((size_t)y * w + x) * 3 + c] =
                            (uint8_t)((in ? 40 * k + 60 * c : x * 255 / w + y * 90 / h) +
                                      ((noise >> (8 * c)) & 31));
                }
            snprintf(path, sizeof path, "%s/src/%s/c%d/%06ld.jpg", o->dir, split ? "val" : "train",
                     k, i);
            if (write_jpeg(path, w, h, px)) return free(px), -1;
        }
    }
    free(px);
    return 0;
}

/* `mimae data folder` on `ranks` processes (mpirun for 2); seconds, or -1. */
static double import_on(const opts_t *o, int ranks, const char *out)
{
    char cmd[5 * PATH_MAX + 128];
    snprintf(cmd, sizeof cmd,
             "%s%s data folder %s/src %s/%s --size %d --shards %d > %s/%s.log 2>&1",
             ranks > 1 ? "mpirun -n 2 --bind-to none " : "", o->mimae, o->dir, o->dir, out,
             o->size, o->shards, o->dir, out);
    const double t0 = now();
    const int rc = system(cmd);
    const double t = now() - t0;
    if (rc != 0) {
        fprintf(stderr, "bench/data: failed (see %s/%s.log): %s\n", o->dir, out, cmd);
        return -1;
    }
    return t;
}

/* Rank 0 of 2 reading `steps` batches: global (a slice of the global
 * permutation) or shard-local (its own shards); images/s of reading alone
 * and with the augmentation to the model's size in *with_augment. */
static double read_rate(const opts_t *o, const char *path, int local, double *with_augment)
{
    char err[1024];
    const int ranks = 2, per = o->batch;
    reader_t *r = local ? reader_create_shards(path, per, 0, ranks, err, sizeof err)
                        : reader_create(path, per, err, sizeof err);
    if (!r) {
        fprintf(stderr, "bench/data: %s\n", err);
        return -1;
    }
    const dataset_info_t *in = reader_info(r);
    sampler_t g = {0};
    shard_sampler_t s = {0};
    int64_t *idx = malloc((size_t)per * sizeof *idx);
    float *out = malloc((size_t)o->model * o->model * in->c * sizeof *out);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    const int ok = idx && out &&
                   (local ? shard_sampler_init(&s, reader_shard_images(r), in->shards, 0, ranks,
                                               per, 3)
                          : sampler_init(&g, in->n, per * ranks, 3)) == 0;
    double rate = -1;
    const long steps = local ? s.steps : sampler_steps_per_epoch(&g);
    const augment_params_t aug = augment_defaults();
    for (int pass = 0; ok && pass < 2; pass++) { /* 0: read only; 1: read and augment */
        double t0 = now();
        long done = 0;
        for (long t = 0; t <= o->steps && t < steps; t++) {
            if (t == 1) t0 = now(), done = 0; /* the first batch opens and warms up */
            if (local) shard_sampler_slice(&s, pass, t, idx);
            else sampler_slice(&g, pass, t, 0, ranks, idx);
            const uint8_t *raw;
            if (reader_start(r, idx, per, err, sizeof err) ||
                reader_wait(r, &raw, NULL, NULL, err, sizeof err)) {
                fprintf(stderr, "bench/data: %s\n", err);
                break;
            }
            for (int i = 0; pass && i < per; i++)
                augment_image(raw + (size_t)i * in->h * in->w * in->c, in->h, in->w, in->c,
                              o->model, o->model, &aug, mean, std, 3, 0, (uint64_t)idx[i], out);
            done += per;
        }
        const double img_s = (double)done / (now() - t0);
        if (pass == 0) rate = img_s;
        else *with_augment = img_s;
    }
    sampler_free(&g);
    shard_sampler_free(&s);
    free(idx);
    free(out);
    reader_free(r);
    return rate;
}

/* The reader feeding a step of batch / consume_img_s seconds, as
 * mimae_dist's loop does (the next batch read while the step runs): the
 * mean and the largest wait per step. */
static int wait_per_step(const opts_t *o, const char *path, double consume_img_s, double *mean,
                         double *max)
{
    char err[1024];
    reader_t *r = reader_create(path, o->batch, err, sizeof err);
    sampler_t g = {0};
    int64_t *idx = malloc((size_t)o->batch * sizeof *idx);
    if (!r || !idx || sampler_init(&g, reader_info(r)->n, o->batch * 2, 5)) {
        fprintf(stderr, "bench/data: %s\n", r ? "out of memory" : err);
        if (r) reader_free(r);
        free(idx);
        return -1;
    }
    const long epoch = sampler_steps_per_epoch(&g), steps = o->steps < epoch ? o->steps : epoch;
    *mean = *max = 0;
    int rc = 0;
    sampler_slice(&g, 0, 0, 0, 2, idx);
    rc = reader_start(r, idx, o->batch, err, sizeof err);
    for (long t = 0; rc == 0 && t < steps; t++) {
        const uint8_t *raw;
        double wait = 0;
        rc = reader_wait(r, &raw, NULL, &wait, err, sizeof err);
        if (rc == 0 && t + 1 < steps) {
            sampler_slice(&g, 0, t + 1, 0, 2, idx);
            rc = reader_start(r, idx, o->batch, err, sizeof err);
        }
        if (t > 0) { /* the first read has no step to hide behind */
            *mean += wait / (double)(steps - 1);
            if (wait > *max) *max = wait;
        }
        sleep_s((double)o->batch / consume_img_s); /* the step */
    }
    if (rc) fprintf(stderr, "bench/data: %s\n", err);
    sampler_free(&g);
    free(idx);
    reader_free(r);
    return rc ? -1 : 0;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){2000, 500, 375, 256, 224, 8, 8, 40, 0.56, 10.0, "", ""};
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(o->mimae, sizeof o->mimae, "%s/../mimae", dirname(self));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench/data: %s needs a value\n", a), -1;
        i++;
        if (!strcmp(a, "--images")) o->images = atol(v);
        else if (!strcmp(a, "--src")) {
            if (sscanf(v, "%dx%d", &o->src_w, &o->src_h) != 2) return -1;
        } else if (!strcmp(a, "--size")) o->size = atoi(v);
        else if (!strcmp(a, "--model")) o->model = atoi(v);
        else if (!strcmp(a, "--shards")) o->shards = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--step-img-s")) o->step_img_s = atof(v);
        else if (!strcmp(a, "--margin")) o->margin = atof(v);
        else if (!strcmp(a, "--mimae")) snprintf(o->mimae, sizeof o->mimae, "%s", v);
        else if (!strcmp(a, "--dir")) snprintf(o->dir, sizeof o->dir, "%s", v);
        else return fprintf(stderr, "bench/data: unknown option %s\n", a), -1;
    }
    if (o->images < 20 || o->size < 8 || o->model < 8 || o->model > o->size || o->shards < 2 ||
        o->shards % 2 || o->batch < 1 || o->steps < 2 || o->step_img_s <= 0 || o->margin <= 0)
        return fprintf(stderr, "bench/data: --images >= 20, --model <= --size, --shards even, "
                       "--steps >= 2\n"), -1;
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o)) return 2;
    int own_dir = 0;
    if (!o.dir[0]) {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(o.dir, sizeof o.dir, "%s/mimae-bench-data-XXXXXX", tmp);
        if (!mkdtemp(o.dir)) return perror("bench/data: mkdtemp"), 1;
        own_dir = 1;
    }
    char src[PATH_MAX + 16];
    snprintf(src, sizeof src, "%s/src", o.dir);
    mkdir(src, 0755);
    snprintf(src, sizeof src, "%s/src/train", o.dir);
    mkdir(src, 0755);
    snprintf(src, sizeof src, "%s/src/val", o.dir);
    mkdir(src, 0755);
    printf("bench/data: %ld JPEGs of %dx%d in %s, imported at %d in %d shards\n", o.images,
           o.src_w, o.src_h, o.dir, o.size, o.shards);
    fflush(stdout);
    int rc = make_folder(&o);
    const double t1 = rc ? -1 : import_on(&o, 1, "one");
    const double t2 = t1 < 0 ? -1 : import_on(&o, 2, "two");
    if (t1 < 0 || t2 < 0) rc = 1;
    const long all = o.images + (o.images / 10 > 10 ? o.images / 10 : 10);
    if (rc == 0) {
        const double t[2] = {t1, t2};
        for (int k = 0; k < 2; k++)
            printf("RESULT data_import ranks=%d images=%ld seconds=%.2f img_s=%.1f\n", k + 1, all,
                   t[k], (double)all / t[k]);
        printf("RESULT data_import_speedup ranks=2 ratio=%.3f\n", t1 / t2);
    }
    char index[PATH_MAX + 32];
    snprintf(index, sizeof index, "%s/one/train.h5", o.dir);
    double g_aug = 0, l_aug = 0;
    const double g = rc ? -1 : read_rate(&o, index, 0, &g_aug);
    const double l = g < 0 ? -1 : read_rate(&o, index, 1, &l_aug);
    if (g < 0 || l < 0) rc = 1;
    if (rc == 0) {
        printf("RESULT data_reader mode=global img_s=%.1f augment_img_s=%.1f batch=%d\n", g,
               g_aug, o.batch);
        printf("RESULT data_reader mode=shard-local img_s=%.1f augment_img_s=%.1f batch=%d\n", l,
               l_aug, o.batch);
        printf("RESULT data_reader_cost global_over_local=%.3f\n", l / g);
    }
    const double consume = o.step_img_s * o.margin;
    double mean = 0, max = 0;
    if (rc == 0 && wait_per_step(&o, index, consume, &mean, &max)) rc = 1;
    if (rc == 0) {
        const double step_s = o.batch / consume;
        printf("RESULT data_wait step_img_s=%.3f margin=%.1f step_s=%.3f wait_mean_s=%.5f "
               "wait_max_s=%.5f wait_frac=%.5f reader_over_step=%.1f\n", o.step_img_s, o.margin,
               step_s, mean, max, mean / step_s, g_aug / o.step_img_s);
    }
    if (own_dir) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf %s", o.dir);
        if (system(cmd) != 0) fprintf(stderr, "bench/data: could not remove %s\n", o.dir);
    }
    return rc;
}
