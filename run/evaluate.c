#include "run/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "core/data/augment.h"
#include "core/finetune/finetune.h"
#include "core/objective/objective.h"
#include "core/vit/full_encoder.h"
#include "core/objective/gaussian_mi.h"
#include "core/data/rng.h"
#include "core/data/sampler.h"
#include "core/optim/schedule.h"
#include "dist/collectives.h"
#include "dist/knn.h"
#include "dist/mpi_check.h"
#include "dist/ridge.h"
#include "io/io_error.h"
#include "io/reader.h"
#include "run/faults.h"
#include "run/stop_signal.h"

#define EVAL_BATCH 64
#define KNN_TEMPERATURE 0.07f
/* Masks of the MI batch come from an epoch no training run reaches. */
#define MI_EPOCH 0xFFFFFFFFull

typedef struct {
    int rank, ranks;
    int h, w, c;             /* the model's images */
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    size_t image_floats;
} eval_ctx_t;

/* This rank's contiguous share [first, first + count) of n rows. */
static void share(long n, int rank, int ranks, long *first, long *count)
{
    *first = n * rank / ranks;
    *count = n * (rank + 1) / ranks - *first;
}

static long limited(long n, long limit) { return limit > 0 && limit < n ? limit : n; }

/* A safe point, reached by every rank at the same place: 0 to go on, -1 when
 * any rank failed (local_rc -1), EVAL_STOPPED when any rank was asked to
 * stop. Collective. */
static int agree(int local_rc, char *err, size_t errlen)
{
    int flags = (local_rc < 0 ? 2 : 0) | (stop_signal_requested() ? 1 : 0);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &flags, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (flags & 2) {
        if (local_rc >= 0) snprintf(err, errlen, "evaluation failed on another rank");
        return -1;
    }
    return flags & 1 ? EVAL_STOPPED : 0;
}

/* The start of an evaluation phase: the test hook, then a safe point. */
static int phase_start(const char *phase, const eval_ctx_t *ctx, char *err, size_t errlen)
{
    faults_at_eval_phase(phase, ctx->rank, ctx->ranks);
    return agree(0, err, errlen);
}

/* The images of `path` must be the model's, or larger with its channels
 * (cropped to it: core/data/augment.h). */
static int check_shape(const char *path, const char *key, const dataset_info_t *info, int h,
                       int w, int c, char *err, size_t errlen)
{
    if (info->h >= h && info->w >= w && info->c == c) return 0;
    return snprintf(err, errlen, "%s: images are %dx%dx%d but the model's are %dx%dx%d (or larger "
                    "images of its channels, which are cropped): set %s to a data set of the "
                    "model's images", path, info->h, info->w, info->c, h, w, c, key), -1;
}

/* A stored image's bytes (at least the model's). */
static size_t stored_bytes(const dataset_info_t *info)
{
    return (size_t)info->h * (size_t)info->w * (size_t)info->c;
}

/* Reads images [first, first+count) of a data set, normalised, in batches,
 * calling fn on each batch. Collective: every rank goes through the same
 * number of rounds (the largest share's), each a safe point (agree), so a
 * rank with fewer images, a failure or a stop request never leaves the
 * others waiting. 0, -1 or EVAL_STOPPED, the same on every rank. */
typedef int (*batch_fn)(void *arg, const float *images, const int32_t *labels, long at, int n);

static int for_each_batch(const char *path, const char *key, long first, long count, int batch,
                          const eval_ctx_t *ctx, batch_fn fn, void *arg, char *err, size_t errlen)
{
    long rounds = (count + batch - 1) / batch;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &rounds, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD));
    if (rounds == 0) return 0;
    reader_t *r = reader_create(path, batch, err, errlen);
    const dataset_info_t *info = r ? reader_info(r) : NULL;
    /* zeroed: a short last batch leaves defined values in the unused rows */
    float *images = calloc((size_t)batch * ctx->image_floats, sizeof(float));
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    int rc = r ? check_shape(path, key, info, ctx->h, ctx->w, ctx->c, err, errlen) : -1;
    if (rc == 0 && (!images || !idx))
        rc = io_fail(err, errlen, "out of memory for evaluation batches");
    for (long k = 0;; k++) {
        rc = agree(rc, err, errlen);
        if (rc || k == rounds) break;
        const long at = k * batch;
        if (at >= count) continue; /* this rank's share is done: keep agreeing */
        const int n = count - at < batch ? (int)(count - at) : batch;
        for (int i = 0; i < n; i++) idx[i] = first + at + i;
        const uint8_t *raw;
        const int32_t *labels;
        rc = reader_start(r, idx, n, err, errlen) || reader_wait(r, &raw, &labels, NULL, err, errlen)
                 ? -1 : 0;
        for (int i = 0; rc == 0 && i < n; i++)
            augment_centre(raw + (size_t)i * stored_bytes(info), info->h, info->w, info->c,
                           ctx->h, ctx->w, ctx->mean, ctx->std,
                           images + (size_t)i * ctx->image_floats);
        if (rc == 0) rc = fn(arg, images, labels, at, n) ? -1 : 0;
    }
    free(images);
    free(idx);
    if (r) reader_free(r);
    return rc;
}

/* ---- features ---- */
typedef struct {
    full_encoder_t *fe;
    float *x;      /* (count, D) */
    int32_t *y;    /* (count) */
    int D;
} features_t;

static int collect_features(void *arg, const float *images, const int32_t *labels, long at, int n)
{
    features_t *f = arg;
    full_encoder_forward(f->fe, images, n, f->x + (size_t)at * f->D);
    memcpy(f->y + at, labels, (size_t)n * sizeof *labels);
    return 0;
}

static int extract(const char *path, const char *key, long n_total, const eval_ctx_t *ctx,
                   full_encoder_t *fe, float **x, int32_t **y, long *count, char *err,
                   size_t errlen)
{
    long first;
    share(n_total, ctx->rank, ctx->ranks, &first, count);
    const int D = fe->m->cfg.enc_dim;
    *x = malloc(((size_t)*count + 1) * D * sizeof(float));
    *y = malloc(((size_t)*count + 1) * sizeof(int32_t));
    int rc = *x && *y ? 0 : (snprintf(err, errlen, "out of memory for %ld features", *count), -1);
    if ((rc = agree(rc, err, errlen))) return rc;
    features_t f = {fe, *x, *y, D};
    return for_each_batch(path, key, first, *count, EVAL_BATCH, ctx, collect_features, &f, err,
                          errlen);
}

/* The MI batch: the first eval.mi_images training images, in equal shares
 * (the gathered arrays are rank-major). */
static long mi_batch_images(long n_train, const eval_config_t *run, int ranks)
{
    const long n = limited(n_train, run->mi_images);
    return n - n % ranks;
}

/* Fine-tuning's labelled images: eval.label_fraction of the training ones. */
static long labelled_images(long n_train, const eval_config_t *run)
{
    return (long)floor(run->label_fraction * (double)n_train);
}

/* ---- MI statistics on the fixed batch: InfoNCE bound, CLUB, Gaussian I ---- */
typedef struct {
    mimae_model_t *m;
    uint64_t seed;
    long first;          /* global index of this rank's first MI image */
    float *u, *z, *mu, *lv; /* this rank's rows (count*N, E or D) */
} mi_batch_t;

/* Called with batches of exactly one micro-batch (the last may be short). */
static int collect_mi(void *arg, const float *images, const int32_t *labels, long at, int n)
{
    (void)labels;
    mi_batch_t *b = arg;
    mimae_model_t *m = b->m;
    const int N = m->cfg.num_masks, E = m->dims.proj_dim, D = m->cfg.enc_dim, mb = m->batch;
    uint64_t idx[mb];
    for (int i = 0; i < mb; i++) idx[i] = (uint64_t)(b->first + at + (i < n ? i : 0));
    mimae_sample_masks(m, b->seed, MI_EPOCH, idx);
    mimae_forward(m, images); /* rows past n are ignored */
    const size_t row = (size_t)at * N, rows = (size_t)n * N;
    memcpy(b->u + row * E, m->acts.u, rows * E * sizeof(float));
    memcpy(b->z + row * D, m->acts.z, rows * D * sizeof(float));
    memcpy(b->mu + row * D, m->acts.mu, rows * D * sizeof(float));
    memcpy(b->lv + row * D, m->acts.lv, rows * D * sizeof(float));
    return 0;
}

static int mi_statistics(mimae_model_t *m, const eval_config_t *run, const eval_ctx_t *ctx,
                         long n_train, eval_results_t *out, char *err, size_t errlen)
{
    const int N = m->cfg.num_masks, E = m->dims.proj_dim, D = m->cfg.enc_dim;
    const long n = mi_batch_images(n_train, run, ctx->ranks); /* >= 2 per rank: evaluate_check */
    const long per = n / ctx->ranks, rows = n * N;
    mi_batch_t b = {m, run->seed, per * ctx->rank, NULL, NULL, NULL, NULL};
    b.u = malloc((size_t)rows * E * sizeof(float));
    b.z = malloc((size_t)rows * D * sizeof(float));
    b.mu = malloc((size_t)per * N * D * sizeof(float));
    b.lv = malloc((size_t)per * N * D * sizeof(float));
    float *du = calloc((size_t)rows * E, sizeof(float)), *dz = calloc((size_t)rows * D, sizeof(float));
    float *scratch = malloc((size_t)per * n * sizeof(float));
    float *a0 = malloc((size_t)n * D * sizeof(float)), *a1 = malloc((size_t)n * D * sizeof(float));
    int rc = 0;
    if (!b.u || !b.z || !b.mu || !b.lv || !du || !dz || !scratch || !a0 || !a1) {
        snprintf(err, errlen, "out of memory for the MI statistics of %ld images", n);
        rc = -1;
    }
    /* each rank fills its rows at its offset, then the rows are gathered */
    mi_batch_t local = b;
    local.u = b.u + (size_t)b.first * N * E;
    local.z = b.z + (size_t)b.first * N * D;
    if ((rc = agree(rc, err, errlen)) == 0)
        rc = for_each_batch(run->train_data, "data.train", b.first, per, m->batch, ctx,
                            collect_mi, &local, err, errlen);
    if (rc) goto done;
    dist_allgather_rows(b.u, (size_t)per * N * E, MPI_COMM_WORLD);
    dist_allgather_rows(b.z, (size_t)per * N * D, MPI_COMM_WORLD);
    mimae_losses_t l;
    mimae_mi_losses(&m->cfg, &m->dims, b.u, b.z, b.mu, b.lv, (int)n, (int)b.first, (int)per, du,
                    dz, scratch, &l);
    double terms[2] = {l.max, l.min};
    dist_sum_doubles(terms, 2, MPI_COMM_WORLD);
    out->infonce_bound = log((double)n) - terms[0];
    out->club = terms[1];
    for (long i = 0; i < n; i++) {
        memcpy(a0 + (size_t)i * D, b.z + ((size_t)i * N + 0) * D, (size_t)D * sizeof(float));
        memcpy(a1 + (size_t)i * D, b.z + ((size_t)i * N + 1) * D, (size_t)D * sizeof(float));
    }
    /* The joint covariance of two masks' latents (2D x 2D) needs more than 2D
     * samples to have full rank; below that the estimate would be an artefact. */
    char why[256];
    if (n <= 2L * D + 1) {
        out->gaussian_mi = NAN;
        if (ctx->rank == 0)
            fprintf(stderr, "mimae_dist: mi_gaussian needs more than %d images (eval.mi_images, "
                    "data.train_limit): skipped\n", 2 * D + 1);
    } else if (gaussian_mi(a0, a1, n, D, 1e-6, &out->gaussian_mi, why, sizeof why)) {
        out->gaussian_mi = NAN;
        if (ctx->rank == 0) fprintf(stderr, "mimae_dist: mi_gaussian: %s\n", why);
    }
    out->have_mi = 1;
done:
    free(b.u), free(b.z), free(b.mu), free(b.lv), free(du), free(dz), free(scratch), free(a0), free(a1);
    return rc;
}

/* ---- fine-tuning on a copy of the model ---- */
typedef struct {
    finetune_t *ft;
    long correct;
} ft_test_t;

static int count_correct(void *arg, const float *images, const int32_t *labels, long at, int n)
{
    (void)at;
    ft_test_t *t = arg;
    int32_t pred[EVAL_BATCH];
    for (int s = 0; s < n; s += t->ft->B) {
        const int k = n - s < t->ft->B ? n - s : t->ft->B;
        finetune_predict(t->ft, images + (size_t)s * t->ft->m->dims.L * t->ft->m->dims.P, k, pred);
        for (int i = 0; i < k; i++) t->correct += pred[i] == labels[s + i];
    }
    return 0;
}

/* One fine-tuning step on this rank's slice of the global batch: read,
 * augment, gradients, allreduce, AdamW. */
static int finetune_step(finetune_t *ft, reader_t *r, const int64_t *idx, int n, int G,
                         const eval_ctx_t *ctx, const dataset_info_t *info, uint64_t seed,
                         uint64_t epoch, float *images, const adamw_hparams_t *h, char *err,
                         size_t errlen)
{
    const uint8_t *raw;
    const int32_t *labels;
    int ok = reader_start(r, idx, n, err, errlen) == 0 &&
             reader_wait(r, &raw, &labels, NULL, err, errlen) == 0;
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) return -1;
    augment_params_t aug = augment_defaults();
    for (int i = 0; i < n; i++)
        augment_image(raw + (size_t)i * stored_bytes(info), info->h, info->w, info->c, ctx->h,
                      ctx->w, &aug, ctx->mean, ctx->std, seed, epoch, (uint64_t)idx[i],
                      images + (size_t)i * ctx->image_floats);
    int correct;
    finetune_grads(ft, images, labels, n, G, &correct);
    mimae_model_t *m = ft->m;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, m->grad_mem, (int)m->table.total, MPI_FLOAT, MPI_SUM,
                            MPI_COMM_WORLD));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ft->head_grad_mem, (int)ft->head_table.total,
                            MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    finetune_update(ft, h);
    return 0;
}

static int finetune_run(const mimae_model_t *src, const eval_config_t *run, const eval_ctx_t *ctx,
                        const dataset_info_t *info, long n_test, eval_results_t *out,
                        char *err, size_t errlen)
{
    const int G = src->cfg.global_batch, per_rank = G / ctx->ranks;
    const long n_train = limited(info->n, run->train_limit);
    const long labelled = labelled_images(n_train, run); /* >= G: evaluate_check */
    mimae_model_t *m = mimae_model_create(&src->cfg, per_rank, run->seed, err, errlen);
    finetune_t *ft = m ? finetune_create(m, per_rank, info->num_classes,
                                         (float)run->label_smoothing, (float)run->layer_decay,
                                         run->seed, err, errlen)
                       : NULL;
    sampler_t order = {0};
    float *images = malloc((size_t)per_rank * ctx->image_floats * sizeof(float));
    int64_t *idx = malloc((size_t)per_rank * sizeof(int64_t));
    uint32_t *subset = malloc((size_t)n_train * sizeof(uint32_t));
    reader_t *r = ft ? reader_create(run->train_data, per_rank, err, errlen) : NULL;
    int rc = r && images && idx && subset && sampler_init(&order, labelled, G, run->seed) == 0
                 ? 0 : -1;
    if (rc && !err[0]) snprintf(err, errlen, "out of memory for fine-tuning");
    if ((rc = agree(rc, err, errlen))) goto done;
    memcpy(m->param_mem, src->param_mem, m->table.total * sizeof(float));

    /* the labelled images: a fixed random subset (FT 1 % uses 1 % of them) */
    rng_permutation(run->seed, MI_EPOCH - 1, (uint32_t)n_train, subset);
    const long steps_per_epoch = labelled / G, total = steps_per_epoch * run->finetune_epochs;
    mimae_config_t sched = src->cfg;
    sched.blr = (float)run->finetune_blr;
    sched.min_lr = 1e-6f;
    sched.warmup_iters = steps_per_epoch < total ? steps_per_epoch : total / 2;
    sched.total_iters = total;
    for (long step = 0; step < total && (rc = agree(rc, err, errlen)) == 0; step++) {
        const long epoch = step / steps_per_epoch;
        sampler_slice(&order, epoch, step % steps_per_epoch, ctx->rank, ctx->ranks, idx);
        for (int i = 0; i < per_rank; i++) idx[i] = subset[idx[i]];
        adamw_hparams_t h = {schedule_lr(&sched, step), src->cfg.beta1, 0.999f,
                             src->cfg.adam_eps, src->cfg.weight_decay};
        /* augmentation streams of epochs no pre-training reaches */
        rc = finetune_step(ft, r, idx, per_rank, G, ctx, info, run->seed,
                           MI_EPOCH - 2 - (uint64_t)epoch, images, &h, err, errlen);
    }
    if (rc == 0) {
        long first, count;
        share(n_test, ctx->rank, ctx->ranks, &first, &count);
        ft_test_t t = {ft, 0};
        reader_free(r);
        r = NULL;
        rc = for_each_batch(run->test_data, "data.test", first, count, EVAL_BATCH, ctx,
                            count_correct, &t, err, errlen);
        if (rc == 0) {
            double correct = (double)t.correct;
            dist_sum_doubles(&correct, 1, MPI_COMM_WORLD);
            out->finetune_top1 = correct / (double)n_test;
            out->have_finetune = 1;
        }
    }
done:
    if (r) reader_free(r);
    sampler_free(&order);
    free(images), free(idx), free(subset);
    finetune_free(ft);
    mimae_model_free(m);
    return rc;
}

/* Size of a data set (validated) and its statistics; collective agreement. */
static int open_info(const char *path, dataset_info_t *copy, long *n, char *err, size_t errlen)
{
    reader_t *r = reader_create(path, 1, err, errlen);
    int ok = r != NULL;
    if (!dist_all_ok(ok, MPI_COMM_WORLD)) {
        if (r) reader_free(r);
        return -1;
    }
    *copy = *reader_info(r);
    copy->class_names = NULL; /* owned by the reader */
    *n = copy->n;
    reader_free(r);
    return 0;
}

static int test_set_wanted(const eval_config_t *run)
{
    return (run->linear_probe || run->knn || run->finetune) && run->test_data &&
           run->test_data[0];
}

int evaluate_check(const mimae_config_t *mc, const eval_config_t *run, int ranks, char *err,
                   size_t errlen)
{
    reader_t *train = reader_create(run->train_data, 1, err, errlen);
    if (!train) return -1;
    const dataset_info_t *ti = reader_info(train);
    const long n_train = limited(ti->n, run->train_limit);
    int rc = check_shape(run->train_data, "data.train", ti, mc->img_h, mc->img_w, mc->channels,
                         err, errlen);
    if (rc == 0 && test_set_wanted(run)) {
        reader_t *test = reader_create(run->test_data, 1, err, errlen);
        const dataset_info_t *si = test ? reader_info(test) : NULL;
        rc = si ? check_shape(run->test_data, "data.test", si, mc->img_h, mc->img_w,
                              mc->channels, err, errlen) : -1;
        if (rc == 0 && si->num_classes != ti->num_classes)
            rc = io_fail(err, errlen, "%s: %d classes, but data.train (%s) has %d: set data.test "
                          "to the test split of the training data", run->test_data,
                          si->num_classes, run->train_data, ti->num_classes);
        if (test) reader_free(test);
    }
    if (rc == 0 && run->finetune && test_set_wanted(run)) {
        const long labelled = labelled_images(n_train, run);
        if (labelled < mc->global_batch)
            rc = io_fail(err, errlen, "eval.label_fraction = %g leaves %ld labelled images of "
                          "%ld, fewer than one global batch (%d): raise eval.label_fraction or "
                          "set eval.finetune = 0", run->label_fraction, labelled, n_train,
                          mc->global_batch);
        else if (mc->global_batch % ranks)
            rc = io_fail(err, errlen, "fine-tuning's global batch (%d) does not divide over %d "
                          "ranks: use a rank count that divides it or set eval.finetune = 0",
                          mc->global_batch, ranks);
    }
    if (rc == 0 && run->mi && mc->num_masks >= 2 &&
        mi_batch_images(n_train, run, ranks) < 2L * ranks)
        rc = io_fail(err, errlen, "eval.mi_images = %ld (of %ld training images) leaves fewer "
                      "than 2 images per rank on %d ranks: raise eval.mi_images or set eval.mi "
                      "= 0", run->mi_images, n_train, ranks);
    reader_free(train);
    return rc;
}

int evaluate_model(const mimae_model_t *src, const eval_config_t *run, eval_results_t *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    eval_ctx_t ctx;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &ctx.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &ctx.ranks));
    ctx.h = src->cfg.img_h, ctx.w = src->cfg.img_w, ctx.c = src->cfg.channels;
    ctx.image_floats = (size_t)ctx.h * ctx.w * ctx.c;
    if (!dist_all_ok(evaluate_check(&src->cfg, run, ctx.ranks, err, errlen) == 0, MPI_COMM_WORLD))
        return -1;
    dataset_info_t train_info, test_info;
    long n_train, n_test = 0;
    if (open_info(run->train_data, &train_info, &n_train, err, errlen)) return -1;
    n_train = limited(n_train, run->train_limit);
    for (int c = 0; c < train_info.c; c++) {
        ctx.mean[c] = (float)train_info.mean[c];
        ctx.std[c] = (float)train_info.std[c];
    }
    if (test_set_wanted(run)) {
        if (open_info(run->test_data, &test_info, &n_test, err, errlen)) return -1;
        n_test = limited(n_test, run->test_limit);
    } else if (run->linear_probe || run->knn || run->finetune) {
        if (ctx.rank == 0)
            fprintf(stderr, "mimae_dist: no data.test: skipping linear probe, k-NN and fine-tuning\n");
    }
    /* a private model: evaluation must not disturb the one being trained */
    mimae_model_t *m = mimae_model_create(&src->cfg, src->batch, 0, err, errlen);
    int rc = agree(m ? 0 : -1, err, errlen);
    if (rc) {
        mimae_model_free(m);
        return rc;
    }
    memcpy(m->param_mem, src->param_mem, m->table.total * sizeof(float));
    memcpy(m->q_param_mem, src->q_param_mem, m->q_table.total * sizeof(float));
    if (n_test > 0 && (run->linear_probe || run->knn)) {
        full_encoder_t *fe = NULL;
        float *tx = NULL, *sx = NULL;
        int32_t *ty = NULL, *sy = NULL;
        long tn = 0, sn = 0;
        rc = phase_start("features", &ctx, err, errlen);
        if (rc == 0) {
            fe = full_encoder_create(m, EVAL_BATCH, err, errlen);
            rc = agree(fe ? 0 : -1, err, errlen);
        }
        if (rc == 0)
            rc = extract(run->train_data, "data.train", n_train, &ctx, fe, &tx, &ty, &tn, err,
                         errlen);
        if (rc == 0)
            rc = extract(run->test_data, "data.test", n_test, &ctx, fe, &sx, &sy, &sn, err,
                         errlen);
        const int D = m->cfg.enc_dim;
        if (rc == 0 && run->linear_probe && (rc = phase_start("probe", &ctx, err, errlen)) == 0) {
            static const double lambdas[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
            ridge_result_t res;
            rc = agree(ridge_probe(tx, ty, tn, sx, sy, sn, D, train_info.num_classes, lambdas,
                                   (int)(sizeof lambdas / sizeof lambdas[0]), 0.1, &res,
                                   MPI_COMM_WORLD, err, errlen), err, errlen);
            out->probe_top1 = res.test_top1;
            out->probe_lambda = res.lambda;
            out->probe_val_top1 = res.val_top1;
            out->have_probe = rc == 0;
        }
        if (rc == 0 && run->knn && (rc = phase_start("knn", &ctx, err, errlen)) == 0) {
            rc = agree(knn_classify(tx, ty, tn, sx, sy, sn, D, train_info.num_classes, run->knn_k,
                                    KNN_TEMPERATURE, &out->knn_top1, MPI_COMM_WORLD, err,
                                    errlen), err, errlen);
            out->have_knn = rc == 0;
        }
        free(tx), free(ty), free(sx), free(sy);
        full_encoder_free(fe);
    }
    if (rc == 0 && run->mi && m->cfg.num_masks >= 2 &&
        (rc = phase_start("mi", &ctx, err, errlen)) == 0)
        rc = mi_statistics(m, run, &ctx, n_train, out, err, errlen);
    if (rc == 0 && run->finetune && n_test > 0 &&
        (rc = phase_start("finetune", &ctx, err, errlen)) == 0)
        rc = finetune_run(m, run, &ctx, &train_info, n_test, out, err, errlen);
    mimae_model_free(m);
    if (rc == EVAL_STOPPED) memset(out, 0, sizeof *out); /* nothing half done is recorded */
    return rc;
}
