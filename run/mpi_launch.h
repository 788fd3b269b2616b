/* How an MPI launcher started this process, from the environment alone (no
 * MPI call), for the checks both programs make before MPI_Init: `mimae data`
 * (no MPI program unless a launcher started a sharded import) and
 * `mimae_dist`.
 *
 * The case they refuse: `srun` without an MPI plugin (`--mpi=none`, the
 * default of many slurm.conf files) starts N tasks that share nothing, so
 * each one initialises MPI as a world of size 1. mimae_dist would then run N
 * separate trainings of one rank on the same run directory, and an import N
 * imports of the whole data set into the same files. srun says so in the
 * environment (SLURM_STEP_NUM_TASKS, set only by srun for a step's tasks,
 * not in a batch script) while no launcher's rank variables are there. */
#ifndef MIMAE_RUN_MPI_LAUNCH_H
#define MIMAE_RUN_MPI_LAUNCH_H

#include <stddef.h>

/* The rank and size an MPI launcher gave this process (Open MPI's mpirun,
 * PMI-1/2 or PMIx: srun --mpi=...); 0 (rank 0 of 1) when none did. */
int mpi_launch_env(int *rank, int *size);

/* When srun started this process as one of N > 1 tasks and no launcher's
 * variables are there (each task would be an MPI world of its own): 1,
 * with one line in err naming `program` (e.g. "mimae_dist") and the fix
 * (`srun --mpi=pmix`), and *speak set on the step's first task only
 * (SLURM_PROCID 0), so that srun's merged stderr holds the line once.
 * 0 otherwise (err untouched). */
int mpi_launch_unconnected(const char *program, int *speak, char *err, size_t errlen);

#endif
