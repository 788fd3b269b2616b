#include "dist/tree_sum.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_check.h"

int tree_sum_init(tree_sum_t *t, size_t n, int leaves)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->incoming = malloc((n ? n : 1) * sizeof(float));
    if (!t->incoming) return -1;
    return leaves > 0 && pairwise_sum_init(&t->local, n, leaves) ? -1 : 0;
}

void tree_sum_free(tree_sum_t *t)
{
    pairwise_sum_free(&t->local);
    free(t->incoming);
    memset(t, 0, sizeof *t);
}

void tree_sum_reset(tree_sum_t *t) { pairwise_sum_reset(&t->local, t->n); }

float *tree_sum_leaf(tree_sum_t *t) { return pairwise_sum_leaf(&t->local); }

void tree_sum_push(tree_sum_t *t, const float *leaf)
{
    memcpy(tree_sum_leaf(t), leaf, t->n * sizeof(float));
    tree_sum_add_leaf(t);
}

void tree_sum_add_leaf(tree_sum_t *t) { pairwise_sum_add_leaf(&t->local); }

/* Sends or receives n floats in pieces MPI's int counts can carry. */
static void send_floats(const float *buf, size_t n, int peer, MPI_Comm comm)
{
    for (size_t done = 0; done < n;) {
        int chunk = n - done > (size_t)INT_MAX ? INT_MAX : (int)(n - done);
        MPI_CHECK(MPI_Send(buf + done, chunk, MPI_FLOAT, peer, 17, comm));
        done += (size_t)chunk;
    }
}

static void recv_floats(float *buf, size_t n, int peer, MPI_Comm comm)
{
    for (size_t done = 0; done < n;) {
        int chunk = n - done > (size_t)INT_MAX ? INT_MAX : (int)(n - done);
        MPI_CHECK(MPI_Recv(buf + done, chunk, MPI_FLOAT, peer, 17, comm, MPI_STATUS_IGNORE));
        done += (size_t)chunk;
    }
}

/* Adds the other ranks' subtrees into rank 0's `mine` in tree order, then
 * broadcasts the total from rank 0's `mine` into every rank's out. */
static void combine(tree_sum_t *t, float *mine, float *out, MPI_Comm comm)
{
    int rank, ranks;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &ranks));
    for (int step = 1; step < ranks; step <<= 1) {
        if (rank % (2 * step) == step) {
            send_floats(mine, t->n, rank - step, comm);
            break;
        }
        if (rank % (2 * step) == 0 && rank + step < ranks) {
            recv_floats(t->incoming, t->n, rank + step, comm);
            pairwise_sum_add_into(mine, t->incoming, t->n);
        }
    }
    if (rank == 0 && out != mine) memcpy(out, mine, t->n * sizeof(float));
    for (size_t done = 0; ranks > 1 && done < t->n;) {
        int chunk = t->n - done > (size_t)INT_MAX ? INT_MAX : (int)(t->n - done);
        MPI_CHECK(MPI_Bcast(out + done, chunk, MPI_FLOAT, 0, comm));
        done += (size_t)chunk;
    }
}

void tree_sum_finish(tree_sum_t *t, float *out, MPI_Comm comm)
{
    /* a complete subtree: 2^k leaves */
    combine(t, pairwise_sum_total(&t->local), out, comm);
}

void tree_sum_finish_in_place(tree_sum_t *t, float *subtree, MPI_Comm comm)
{
    combine(t, subtree, subtree, comm);
}
