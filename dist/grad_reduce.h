/* The fast gradient reduction: as mimae_backward reports each finished range
 * of the gradient vector (core/vit/model.h grads_ready), adjacent ranges are
 * merged into buckets and each full bucket is summed over the ranks with a
 * non-blocking MPI_Iallreduce, overlapping the rest of the backward. Summing
 * is right because every rank's gradient is already divided by the global
 * batch. Float sums in MPI's order: reproducible per run size, not across
 * rank counts (the deterministic path is dist/tree_sum.h). */
#ifndef MIMAE_DIST_GRAD_REDUCE_H
#define MIMAE_DIST_GRAD_REDUCE_H

#include <mpi.h>
#include <stddef.h>

typedef struct {
    float *base;          /* the gradient vector */
    MPI_Comm comm;
    size_t bucket_floats; /* flush a bucket once it holds this many */
    size_t start, len;    /* the pending bucket */
    MPI_Request *requests;
    int count, capacity;
    double wait_seconds;  /* time blocked in grad_reduce_finish (exposed comm) */
} grad_reduce_t;

int grad_reduce_init(grad_reduce_t *g, float *base, size_t bucket_floats, int max_buckets,
                     MPI_Comm comm);
void grad_reduce_free(grad_reduce_t *g);

/* The grads_ready callback: ctx is the grad_reduce_t. */
void grad_reduce_ready(void *ctx, size_t offset, size_t count);

/* Starts what is pending and waits for every bucket. */
void grad_reduce_finish(grad_reduce_t *g);

#endif
