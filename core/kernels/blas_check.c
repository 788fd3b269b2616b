#include "core/kernels/blas_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* OpenBLAS extension, not declared by every cblas.h. */
char *openblas_get_corename(void);

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
