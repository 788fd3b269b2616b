#include "io/reader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOTS = 2 };

struct reader {
    dataset_t *data;
    int max_batch;
    size_t image_bytes;
    uint8_t *images[SLOTS];
    int32_t *labels[SLOTS];
    int64_t *indices;
    int count;
    int slot;            /* the slot the current/last read fills */
    int pending;         /* a read was started and not yet waited for */
    int job_ready;       /* worker: a job is posted */
    int job_done;        /* worker: the posted job finished */
    int quit;
    int status;          /* dataset_read's result of the last job (0, -1, IO_CHANGED) */
    char err[512];
    pthread_t worker;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static void *reader_worker(void *arg)
{
    reader_t *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->job_ready && !r->quit) pthread_cond_wait(&r->changed, &r->lock);
        if (r->quit) break;
        r->job_ready = 0;
        const int slot = r->slot, count = r->count;
        pthread_mutex_unlock(&r->lock);
        char err[512] = "";
        int st = dataset_read(r->data, r->indices, count, r->images[slot], r->labels[slot], err,
                              sizeof err);
        pthread_mutex_lock(&r->lock);
        r->status = st;
        memcpy(r->err, err, sizeof err);
        r->job_done = 1;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

reader_t *reader_create(const char *path, int max_batch, char *err, size_t errlen)
{
    return reader_create_shards(path, max_batch, 0, 1, err, errlen);
}

reader_t *reader_create_shards(const char *path, int max_batch, int rank, int ranks, char *err,
                               size_t errlen)
{
    reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "%s: out of memory for the reader", path);
        return NULL;
    }
    r->data = dataset_open_shards(path, rank, ranks, err, errlen);
    if (!r->data) {
        free(r);
        return NULL;
    }
    const dataset_info_t *info = dataset_get_info(r->data);
    r->max_batch = max_batch;
    r->image_bytes = (size_t)info->h * info->w * info->c;
    r->slot = SLOTS - 1;
    int ok = 1;
    for (int i = 0; i < SLOTS; i++) {
        r->images[i] = malloc((size_t)max_batch * r->image_bytes);
        r->labels[i] = malloc((size_t)max_batch * sizeof(int32_t));
        ok = ok && r->images[i] && r->labels[i];
    }
    r->indices = malloc((size_t)max_batch * sizeof *r->indices);
    if (!ok || !r->indices || pthread_mutex_init(&r->lock, NULL) ||
        pthread_cond_init(&r->changed, NULL) ||
        pthread_create(&r->worker, NULL, reader_worker, r)) {
        snprintf(err, errlen, "%s: cannot set up the read-ahead buffers/thread for batches of %d",
                 path, max_batch);
        dataset_close(r->data);
        for (int i = 0; i < SLOTS; i++) free(r->images[i]), free(r->labels[i]);
        free(r->indices);
        free(r);
        return NULL;
    }
    return r;
}

const dataset_info_t *reader_info(const reader_t *r) { return dataset_get_info(r->data); }
const int32_t *reader_labels(const reader_t *r) { return dataset_labels(r->data); }
const long *reader_shard_images(const reader_t *r) { return dataset_shard_images(r->data); }

int reader_start(reader_t *r, const int64_t *indices, int count, char *err, size_t errlen)
{
    if (r->pending) {
        snprintf(err, errlen, "reader: a read is already in flight (call reader_wait first)");
        return -1;
    }
    if (count <= 0 || count > r->max_batch) {
        snprintf(err, errlen, "reader: batch of %d images, buffers hold 1..%d", count, r->max_batch);
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    memcpy(r->indices, indices, (size_t)count * sizeof *indices);
    r->count = count;
    r->slot = (r->slot + 1) % SLOTS;
    r->job_done = 0;
    r->job_ready = 1;
    r->pending = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int reader_wait(reader_t *r, const uint8_t **images, const int32_t **labels,
                double *wait_seconds, char *err, size_t errlen)
{
    if (!r->pending) {
        snprintf(err, errlen, "reader: no read in flight (call reader_start first)");
        return -1;
    }
    const double t0 = now_seconds();
    pthread_mutex_lock(&r->lock);
    while (!r->job_done) pthread_cond_wait(&r->changed, &r->lock);
    const int st = r->status;
    if (st) snprintf(err, errlen, "%s", r->err);
    pthread_mutex_unlock(&r->lock);
    r->pending = 0;
    if (wait_seconds) *wait_seconds = now_seconds() - t0;
    if (st) return st; /* -1, or IO_CHANGED: the data set changed under the run */
    *images = r->images[r->slot];
    if (labels) *labels = r->labels[r->slot];
    return 0;
}

void reader_free(reader_t *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    while (r->pending && !r->job_done) pthread_cond_wait(&r->changed, &r->lock);
    r->quit = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->worker, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
    dataset_close(r->data);
    for (int i = 0; i < SLOTS; i++) free(r->images[i]), free(r->labels[i]);
    free(r->indices);
    free(r);
}
