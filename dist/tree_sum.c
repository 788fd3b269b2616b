#include "dist/tree_sum.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_check.h"

int tree_sum_init(tree_sum_t *t, size_t n, int leaves)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    int levels = 2;
    while ((1 << (levels - 2)) < leaves) levels++;
    t->levels = levels;
    t->partial = calloc((size_t)levels, sizeof *t->partial);
    t->level = calloc((size_t)levels, sizeof *t->level);
    t->incoming = malloc((n ? n : 1) * sizeof(float));
    if (!t->partial || !t->level || !t->incoming) return -1;
    for (int i = 0; i < levels; i++)
        if (!(t->partial[i] = malloc((n ? n : 1) * sizeof(float)))) return -1;
    return 0;
}

void tree_sum_free(tree_sum_t *t)
{
    for (int i = 0; t->partial && i < t->levels; i++) free(t->partial[i]);
    free(t->partial);
    free(t->level);
    free(t->incoming);
    memset(t, 0, sizeof *t);
}

void tree_sum_reset(tree_sum_t *t) { t->depth = 0; }

/* left += right, element by element: the one addition of the tree. */
static void add_into(float *left, const float *right, size_t n)
{
    for (size_t i = 0; i < n; i++) left[i] += right[i];
}

float *tree_sum_leaf(tree_sum_t *t) { return t->partial[t->depth]; }

void tree_sum_push(tree_sum_t *t, const float *leaf)
{
    memcpy(tree_sum_leaf(t), leaf, t->n * sizeof(float));
    tree_sum_add_leaf(t);
}

void tree_sum_add_leaf(tree_sum_t *t)
{
    t->level[t->depth++] = 0;
    /* Binary-counter merging: two subtrees of the same height become one. */
    while (t->depth >= 2 && t->level[t->depth - 1] == t->level[t->depth - 2]) {
        add_into(t->partial[t->depth - 2], t->partial[t->depth - 1], t->n);
        t->level[t->depth - 2]++;
        t->depth--;
    }
}

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

void tree_sum_finish(tree_sum_t *t, float *out, MPI_Comm comm)
{
    int rank, ranks;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &ranks));
    float *mine = t->partial[0]; /* a complete subtree: depth is 1 for 2^k leaves */
    for (int step = 1; step < ranks; step <<= 1) {
        if (rank % (2 * step) == step) {
            send_floats(mine, t->n, rank - step, comm);
            break;
        }
        if (rank % (2 * step) == 0 && rank + step < ranks) {
            recv_floats(t->incoming, t->n, rank + step, comm);
            add_into(mine, t->incoming, t->n);
        }
    }
    if (rank == 0) memcpy(out, mine, t->n * sizeof(float));
    for (size_t done = 0; done < t->n;) {
        int chunk = t->n - done > (size_t)INT_MAX ? INT_MAX : (int)(t->n - done);
        MPI_CHECK(MPI_Bcast(out + done, chunk, MPI_FLOAT, 0, comm));
        done += (size_t)chunk;
    }
}
