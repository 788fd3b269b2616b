#include "tests/step_util.h"

#include <stdio.h>
#include <stdlib.h>

/* Open MPI keeps allocations until the process ends; LeakSanitizer would
 * report them as leaks of every test that ran a step. Only leaks whose stack
 * passes through Open MPI's libraries are suppressed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libpmix.so\n"
           "leak:libhwloc.so\nleak:libevent\nleak:mca_\n";
}

static void finalize_mpi(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

static int ensure_mpi(char *err, size_t errlen)
{
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return 0;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
        return snprintf(err, errlen, "MPI_Init failed (singleton)"), -1;
    atexit(finalize_mpi);
    return 0;
}

int single_step_init(train_step_t *s, mimae_model_t *m, char *err, size_t errlen)
{
    return ensure_mpi(err, errlen) ? -1 : train_step_init_single(s, m, err, errlen);
}

int single_step_run(train_step_t *s, const float *images, mimae_step_stats_t *stats, char *err,
                    size_t errlen)
{
    return train_step_run(s, images, NULL, 0, 0, stats, err, errlen);
}
