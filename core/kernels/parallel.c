#include "core/kernels/parallel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);

static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER, done_cv = PTHREAD_COND_INITIALIZER;
static int workers;                /* pool threads alive (tids 1..workers) */
static unsigned long generation;   /* bumped per job */
static par_fn job_fn;
static void *job_ctx;
static int job_n, pending;
static _Thread_local int in_region;

int par_threads(void)
{
    int n = openblas_get_num_threads();
    if (n < 1) n = 1;
    return n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n;
}

void par_range(int count, int grain, int t, int n, int *lo, int *hi)
{
    if (grain < 1) grain = 1;
    const int units = (count + grain - 1) / grain;
    const int a = (int)((long)units * t / n), b = (int)((long)units * (t + 1) / n);
    *lo = a * grain < count ? a * grain : count;
    *hi = b * grain < count ? b * grain : count;
}

static unsigned long start_generation[PAR_MAX_THREADS];

static void *worker_main(void *arg)
{
    const int tid = (int)(long)arg;
    in_region = 1;
    pthread_mutex_lock(&lock);
    /* the generation when this worker was created: any later job is its */
    unsigned long seen = start_generation[tid];
    for (;;) {
        while (generation == seen) pthread_cond_wait(&start_cv, &lock);
        seen = generation;
        par_fn fn = job_fn;
        void *ctx = job_ctx;
        const int n = job_n;
        pthread_mutex_unlock(&lock);
        if (tid < n) fn(ctx, tid, n);
        pthread_mutex_lock(&lock);
        if (--pending == 0) pthread_cond_signal(&done_cv);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: start from an empty
 * pool with fresh locks (fork happens with no job running: par_run holds
 * call_lock across the whole job, and the prepare handler takes it). */
static void atfork_prepare(void) { pthread_mutex_lock(&call_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&call_lock); }
static void atfork_child(void)
{
    pthread_mutex_init(&call_lock, NULL);
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&start_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    workers = 0;
    pending = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* Grows the pool to n-1 workers; returns the usable thread count. */
static int ensure_workers(int n)
{
    pthread_once(&atfork_once, atfork_register);
    while (workers < n - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&lock);
        start_generation[workers + 1] = generation;
        int rc = pthread_create(&th, &attr, worker_main, (void *)(long)(workers + 1));
        if (rc == 0) workers++;
        pthread_mutex_unlock(&lock);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
    }
    return workers + 1 < n ? workers + 1 : n;
}

void par_run(par_fn fn, void *ctx, int n)
{
    if (n > PAR_MAX_THREADS) n = PAR_MAX_THREADS;
    if (n <= 1 || in_region) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&call_lock);
    n = ensure_workers(n);
    if (n <= 1) {
        pthread_mutex_unlock(&call_lock);
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&lock);
    job_fn = fn;
    job_ctx = ctx;
    job_n = n;
    pending = workers;
    generation++;
    pthread_cond_broadcast(&start_cv);
    pthread_mutex_unlock(&lock);
    in_region = 1;
    fn(ctx, 0, n);
    in_region = 0;
    pthread_mutex_lock(&lock);
    while (pending) pthread_cond_wait(&done_cv, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&call_lock);
}

void par_run_serial_blas(par_fn fn, void *ctx, int n)
{
    const int blas_threads = openblas_get_num_threads();
    if (n <= 1 || in_region || blas_threads <= 1) {
        par_run(fn, ctx, n);
        return;
    }
    openblas_set_num_threads(1);
    par_run(fn, ctx, n);
    openblas_set_num_threads(blas_threads);
}

/* ---- per-thread scratch ---- */

typedef struct {
    float *p;
    size_t floats;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* Every thread's scratch is also listed here, so that it is reachable from
 * memory a leak checker scans even when it does not scan thread-local
 * storage (the tests' LeakSanitizer runs with use_tls=0: tests/step_util.c). */
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static scratch_t *scratch_list[4 * PAR_MAX_THREADS];

static void scratch_list_set(scratch_t *from, scratch_t *to)
{
    pthread_mutex_lock(&scratch_lock);
    for (size_t i = 0; i < sizeof scratch_list / sizeof scratch_list[0]; i++)
        if (scratch_list[i] == from) {
            scratch_list[i] = to;
            break;
        }
    pthread_mutex_unlock(&scratch_lock);
}

static void scratch_free(void *p)
{
    scratch_t *s = p;
    scratch_list_set(s, NULL);
    free(s->p);
    free(s);
}

static void scratch_key_create(void) { pthread_key_create(&scratch_key, scratch_free); }

float *par_scratch(size_t floats)
{
    pthread_once(&scratch_once, scratch_key_create);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s)) goto oom;
        scratch_list_set(NULL, s);
    }
    if (s->floats < floats) {
        void *p = NULL;
        if (posix_memalign(&p, 64, floats * sizeof(float))) goto oom;
        free(s->p);
        s->p = p;
        s->floats = floats;
    }
    return s->p;
oom:
    fprintf(stderr, "mimae: out of memory for %zu floats of thread scratch\n", floats);
    abort();
}
