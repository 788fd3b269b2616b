#define _GNU_SOURCE /* sched_getaffinity */
#include "core/kernels/blas_check.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* OpenBLAS extensions, not declared by every cblas.h. */
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

const char *blas_kernel_name(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

int blas_kernel_mismatch(char *msg, size_t len)
{
    if (len) msg[0] = 0;
    if (getenv("OPENBLAS_CORETYPE")) return 0; /* the user chose: respect it */
    if (strcasecmp(blas_kernel_name(), "prescott") != 0) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    const char *better = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                         : __builtin_cpu_supports("avx2") ? "Haswell"
                                                          : NULL;
    if (!better) return 0;
    snprintf(msg, len,
             "OpenBLAS did not recognise this CPU and uses its generic Prescott kernel "
             "(matrix products several times slower); set OPENBLAS_CORETYPE=%s for the "
             "%s kernel this CPU supports",
             better, better);
    return 1;
#else
    return 0;
#endif
}

int blas_threads_exceed_cpus(char *msg, size_t len)
{
    if (len) msg[0] = 0;
    /* OpenBLAS caps its threads at the CPUs of the affinity mask without a
     * word, so compare what the user asked for with what the process may use. */
    const char *var = getenv("OPENBLAS_NUM_THREADS") ? "OPENBLAS_NUM_THREADS" : "OMP_NUM_THREADS";
    const char *text = getenv(var);
    char *end;
    const long requested = text ? strtol(text, &end, 10) : 0;
    if (!text || end == text || requested <= 1) return 0;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 0; /* cannot tell */
    const int cpus = CPU_COUNT(&allowed);
    if (requested <= cpus) return 0;
    snprintf(msg, len,
             "%s=%ld but this process may use %d CPU%s (its affinity; mpirun binds each rank "
             "to one core unless told otherwise), so OpenBLAS runs %d thread%s; start with "
             "mpirun --bind-to none or --map-by slot:PE=%ld",
             var, requested, cpus, cpus == 1 ? "" : "s", openblas_get_num_threads(),
             openblas_get_num_threads() == 1 ? "" : "s", requested);
    return 1;
}

void blas_quiet_idle_threads(char **argv)
{
    if ((getenv("OPENBLAS_THREAD_TIMEOUT") && getenv("OMP_WAIT_POLICY")) ||
        openblas_get_num_threads() <= 1)
        return;
    /* the user's own settings stay */
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0) != 0 || setenv("OMP_WAIT_POLICY", "passive", 0))
        return;
    execv("/proc/self/exe", argv); /* returns only on failure: run as we are */
}
