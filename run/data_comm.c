/* The processes of `mimae data` (see data_comm.h). */
#include "run/data_comm.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist/collectives.h"
#include "dist/mpi_check.h"
#include "run/mpi_launch.h"
#include "run/progress.h"
#include "run/stop_signal.h"

static int mpi_all_ok(void *arg, int ok)
{
    (void)arg;
    return dist_all_ok(ok, MPI_COMM_WORLD);
}

static int mpi_sum_u64(void *arg, uint64_t *values, int count)
{
    (void)arg;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
    return 0;
}

static int mpi_bcast(void *arg, void *buf, size_t len)
{
    (void)arg;
    if (len > INT32_MAX) return -1;
    MPI_CHECK(MPI_Bcast(buf, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD));
    return 0;
}

static int stop_requested(void *arg)
{
    (void)arg;
    return stop_signal_requested();
}

static void progress(void *arg, const import_progress_t *p)
{
    data_comm_t *c = arg;
    if (c->comm.rank == 0) progress_import(p, &c->next_line);
}

void data_comm_open(data_comm_t *c, int sharded)
{
    memset(c, 0, sizeof *c);
    import_comm_single(&c->comm);
    /* before MPI_Init too: a Ctrl-C in its first moments stops cleanly */
    stop_signal_install();
    int rank, size;
    if (sharded && mpi_launch_env(&rank, &size)) {
        MPI_CHECK(MPI_Init(NULL, NULL));
        mpi_check_install();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        stop_signal_install(); /* again, as mimae_dist does: MPI may take them */
        MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &c->comm.rank));
        MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &c->comm.ranks));
        c->comm.all_ok = mpi_all_ok;
        c->comm.sum_u64 = mpi_sum_u64;
        c->comm.bcast = mpi_bcast;
        c->mpi = 1;
    }
    c->comm.stop = stop_requested;
    c->comm.progress = progress;
    c->comm.arg = c;
}

int data_comm_close(data_comm_t *c, int status, const char *err, int *speak)
{
    *speak = status != 0 && err && err[0];
    if (!c->mpi) return status;
    const int ranks = c->comm.ranks, rank = c->comm.rank;
    int speaker = *speak ? rank : ranks;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &speaker, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (speaker < ranks) MPI_CHECK(MPI_Bcast(&status, 1, MPI_INT, speaker, MPI_COMM_WORLD));
    *speak = speaker == rank;
    MPI_Finalize();
    c->mpi = 0;
    return status;
}
