#include "dist/collectives.h"

#include <limits.h>
#include <stdio.h>

#include "dist/mpi_check.h"

int dist_all_ok(int ok, MPI_Comm comm)
{
    int all = 0;
    MPI_CHECK(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm));
    return all;
}

void dist_sum_doubles(double *v, int n, MPI_Comm comm)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, comm));
}

/* Feature arrays are small (global batch x masks x width); an int count is
 * checked rather than chunked. */
static int as_count(size_t count)
{
    if (count > (size_t)INT_MAX) {
        fprintf(stderr, "mimae_dist: feature block of %zu floats exceeds MPI's int count\n", count);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return (int)count;
}

void dist_allgather_rows(float *buf, size_t count, MPI_Comm comm)
{
    MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, as_count(count), MPI_FLOAT,
                            comm));
}

void dist_reduce_scatter_rows(const float *full, float *out, size_t count, MPI_Comm comm)
{
    MPI_CHECK(MPI_Reduce_scatter_block(full, out, as_count(count), MPI_FLOAT, MPI_SUM, comm));
}

void dist_library_version(char *buf, size_t len)
{
    char text[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    int n = 0;
    if (len == 0) return;
    buf[0] = 0;
    if (MPI_Get_library_version(text, &n) != MPI_SUCCESS) return;
    if (n < 0) n = 0;
    if (n > MPI_MAX_LIBRARY_VERSION_STRING) n = MPI_MAX_LIBRARY_VERSION_STRING;
    text[n] = 0;
    snprintf(buf, len, "%s", text);
}
