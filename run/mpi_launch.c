/* How an MPI launcher started this process (see mpi_launch.h). */
#include "run/mpi_launch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An environment variable as a number >= 0 (-1: unset or not a number). */
static int env_number(const char *name)
{
    const char *v = getenv(name);
    char *end = NULL;
    const long n = v && *v ? strtol(v, &end, 10) : -1;
    return n >= 0 && n <= INT32_MAX && end && !*end ? (int)n : -1;
}

int mpi_launch_env(int *rank, int *size)
{
    static const char *const vars[][2] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, /* Open MPI's mpirun */
        {"PMI_RANK", "PMI_SIZE"},                         /* PMI-1/2: MPICH, srun --mpi=pmi2 */
        {"PMIX_RANK", "SLURM_NTASKS"},                    /* PMIx: srun --mpi=pmix */
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const int r = env_number(vars[i][0]), s = env_number(vars[i][1]);
        if (r >= 0 && s > r) {
            *rank = r;
            *size = s;
            return 1;
        }
    }
    *rank = 0;
    *size = 1;
    return 0;
}

int mpi_launch_unconnected(const char *program, int *speak, char *err, size_t errlen)
{
    int rank, size;
    const int tasks = env_number("SLURM_STEP_NUM_TASKS");
    *speak = 0;
    if (tasks < 2 || mpi_launch_env(&rank, &size)) return 0;
    *speak = env_number("SLURM_PROCID") <= 0;
    snprintf(err, errlen, "srun started %d tasks of %s without an MPI plugin, so each would run "
             "alone as an MPI world of 1 (no PMI or PMIx variables here): start it with `srun "
             "--mpi=pmix`, or under mpirun", tasks, program);
    return 1;
}
