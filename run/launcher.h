/* `mimae run [-n R] [--mpi OPTION]... EXP.ini [mimae_dist arguments]`: starts
 * `mpirun -n R [OPTION]... mimae_dist EXP.ini ...` (mimae_dist from the
 * directory of the running mimae) as its child and exits with the job's
 * status, so that a stop means what run/exit_status.h says.
 *
 * Why: Open MPI 4.1's mpirun cannot forward SIGTERM or SIGINT; sent either,
 * it signals the ranks and then exits 1 whatever they return (they did
 * write a checkpoint). SIGUSR1 it forwards, and then exits with the ranks'
 * status (3). The launcher turns SIGTERM, SIGINT and SIGUSR1 into SIGUSR1
 * for mpirun, which runs in its own process group (so a terminal's Ctrl-C
 * reaches the launcher only) with stdin from /dev/null. Exit status: the
 * job's (128 + N when mpirun died of signal N), 2 for bad usage. */
#ifndef MIMAE_RUN_LAUNCHER_H
#define MIMAE_RUN_LAUNCHER_H

extern const char *const launcher_usage;

/* argv: the arguments after "run". Returns the exit status. */
int launcher_command(int argc, char **argv);

#endif
