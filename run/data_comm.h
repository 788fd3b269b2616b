/* The processes of `mimae data`: one, or the ranks of an MPI job when
 * `mpirun -n R mimae data ... --shards K` started it.
 *
 * mimae is no MPI program: it initialises MPI only for a sharded import
 * that an MPI launcher started (its environment says so), and nothing on
 * that path forks (io/bounded_read.h, mimae run and sweep do, but never
 * under MPI_Init). Everything else of mimae runs as before, MPI untouched,
 * so `mimae inspect` or `mimae report` on a login node need no launcher. */
#ifndef MIMAE_RUN_DATA_COMM_H
#define MIMAE_RUN_DATA_COMM_H

#include <stddef.h>

#include "io/data_import.h"

typedef struct {
    import_comm_t comm;
    int mpi;          /* MPI was initialised here */
    double next_line; /* progress_import's */
} data_comm_t;

/* Sets up c: over MPI (MPI_Init) when sharded and a launcher started this
 * process (run/mpi_launch.h), else one process. Progress lines come from rank 0, and a SIGINT
 * or SIGTERM stops the import cleanly (IMPORT_STOPPED). */
void data_comm_open(data_comm_t *c, int sharded);

/* The end of an import, on every rank: the status of the lowest rank that
 * has a message (every rank returns it); *speak is set on that rank, which
 * prints err. MPI is finalised. */
int data_comm_close(data_comm_t *c, int status, const char *err, int *speak);

#endif
