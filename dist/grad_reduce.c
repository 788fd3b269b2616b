#include "dist/grad_reduce.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_check.h"

int grad_reduce_init(grad_reduce_t *g, float *base, size_t bucket_floats, int max_buckets,
                     MPI_Comm comm)
{
    memset(g, 0, sizeof *g);
    g->base = base;
    g->comm = comm;
    g->bucket_floats = bucket_floats;
    g->capacity = max_buckets;
    g->requests = malloc((size_t)max_buckets * sizeof *g->requests);
    return g->requests ? 0 : -1;
}

void grad_reduce_free(grad_reduce_t *g)
{
    free(g->requests);
    g->requests = NULL;
}

static void start_bucket(grad_reduce_t *g)
{
    while (g->len > 0) {
        /* A bucket larger than an int count goes out in int-sized pieces. */
        int chunk = g->len > (size_t)INT_MAX ? INT_MAX : (int)g->len;
        if (g->count == g->capacity) { /* out of request slots: finish the oldest ones */
            MPI_CHECK(MPI_Waitall(g->count, g->requests, MPI_STATUSES_IGNORE));
            g->count = 0;
        }
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, g->base + g->start, chunk, MPI_FLOAT, MPI_SUM,
                                 g->comm, &g->requests[g->count++]));
        g->start += (size_t)chunk;
        g->len -= (size_t)chunk;
    }
}

void grad_reduce_ready(void *ctx, size_t offset, size_t count)
{
    grad_reduce_t *g = ctx;
    if (g->len && offset + count == g->start) { /* backward order: ranges often precede */
        g->start = offset;
        g->len += count;
    } else if (g->len && g->start + g->len == offset) {
        g->len += count;
    } else {
        start_bucket(g);
        g->start = offset;
        g->len = count;
    }
    if (g->len >= g->bucket_floats) start_bucket(g);
    /* Let MPI progress the buckets already in flight while compute goes on. */
    if (g->count) {
        int done;
        MPI_CHECK(MPI_Testall(g->count, g->requests, &done, MPI_STATUSES_IGNORE));
        if (done) g->count = 0;
    }
}

void grad_reduce_finish(grad_reduce_t *g)
{
    start_bucket(g);
    double t0 = MPI_Wtime();
    MPI_CHECK(MPI_Waitall(g->count, g->requests, MPI_STATUSES_IGNORE));
    g->wait_seconds = MPI_Wtime() - t0;
    g->count = 0;
}
