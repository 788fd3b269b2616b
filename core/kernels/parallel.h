/* A small persistent thread pool for the core kernels (pthreads, no OpenMP).
 *
 * The thread count follows OpenBLAS's (openblas_get_num_threads(), so
 * OPENBLAS_NUM_THREADS and openblas_set_num_threads stay the one knob; one
 * rank per core: 1). Work is always split into fixed pieces of the output
 * (rows or columns) that one thread computes whole, with the same arithmetic
 * in the same order whatever the thread count: results never depend on the
 * number of threads nor on their timing.
 *
 * Workers are created on first use and live until the process ends; the
 * steady state allocates nothing. Calls from several application threads are
 * serialised; a call from inside a parallel region runs serially. */
#ifndef MIMAE_KERNELS_PARALLEL_H
#define MIMAE_KERNELS_PARALLEL_H

#include <stddef.h>

#define PAR_MAX_THREADS 64

/* fn(ctx, t, n) runs for t = 0..n-1, t = 0 on the calling thread. */
typedef void (*par_fn)(void *ctx, int t, int n);

/* Threads the kernels use now (1..PAR_MAX_THREADS). */
int par_threads(void);

/* Runs fn on n threads (n <= 1, or inside a region: serially, t = 0, n = 1,
 * so fn must split its work by the n it is given). */
void par_run(par_fn fn, void *ctx, int n);

/* As par_run for work made of many small matrix products, each too small
 * for OpenBLAS to thread well: OpenBLAS runs single-threaded for the
 * length of the call, so each of the n threads runs its own products
 * whole (same bits: OpenBLAS splits a product's rows and columns over its
 * threads, never its inner dimension). */
void par_run_serial_blas(par_fn fn, void *ctx, int n);

/* A scratch block of at least `floats` floats (64-byte aligned) owned by the
 * calling thread, grown on demand (so allocating only the first time a size
 * is needed) and kept until the thread ends. Aborts when out of memory. */
float *par_scratch(size_t floats);

/* [*lo, *hi) of `count` items for thread t of n, in units of `grain` (the
 * last piece takes the remainder). */
void par_range(int count, int grain, int t, int n, int *lo, int *hi);

#endif
