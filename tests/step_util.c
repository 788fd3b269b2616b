#include "tests/step_util.h"

#include <stdio.h>
#include <stdlib.h>

/* Open MPI keeps allocations of MPI_Init until the process ends, in
 * components it unloads at MPI_Finalize (so LeakSanitizer cannot even name
 * them for a suppression). Allocations made while LeakSanitizer is disabled
 * are not leaks to it: MPI_Init and MPI_Finalize run that way. The functions
 * exist only in a sanitizer build (weak: NULL otherwise). */
void __lsan_disable(void) __attribute__((weak));
void __lsan_enable(void) __attribute__((weak));

/* LeakSanitizer of GCC 12 crashes ("Tracer caught signal 11") walking the
 * dynamic thread-local storage that Open MPI's loaded components leave in a
 * process that ran MPI_Init; so it does not scan thread-local storage here.
 * Nothing of ours keeps an allocation only there (core/kernels/parallel.c
 * lists its per-thread scratch in a global too). */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "use_tls=0"; }

static void lsan_pause(int paused)
{
    if (paused && __lsan_disable) __lsan_disable();
    if (!paused && __lsan_enable) __lsan_enable();
}

static void finalize_mpi(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    lsan_pause(1);
    if (!finalized) MPI_Finalize();
    lsan_pause(0);
}

int step_util_mpi_init(char *err, size_t errlen)
{
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return 0;
    lsan_pause(1);
    const int rc = MPI_Init(NULL, NULL);
    lsan_pause(0);
    if (rc != MPI_SUCCESS) return snprintf(err, errlen, "MPI_Init failed (singleton)"), -1;
    atexit(finalize_mpi);
    return 0;
}

int single_step_init(train_step_t *s, mimae_model_t *m, char *err, size_t errlen)
{
    return step_util_mpi_init(err, errlen) ? -1 : train_step_init_single(s, m, err, errlen);
}

int single_step_run(train_step_t *s, const float *images, mimae_step_stats_t *stats, char *err,
                    size_t errlen)
{
    return train_step_run(s, images, NULL, 0, 0, stats, err, errlen);
}
