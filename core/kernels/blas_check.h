/* Whether OpenBLAS runs a kernel that fits this CPU.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise some recent x86 CPUs and then
 * falls back to its generic "Prescott" (SSE3) kernel: matrix products run
 * 5-10x slower than with the AVX2 or AVX-512 kernels the CPU could use. The
 * kernel is chosen when the library loads, so only the user can change it,
 * with the environment variable OPENBLAS_CORETYPE. */
#ifndef MIMAE_KERNELS_BLAS_CHECK_H
#define MIMAE_KERNELS_BLAS_CHECK_H

#include <stddef.h>

/* The OpenBLAS kernel name ("SkylakeX", "Haswell", "Prescott", ...). */
const char *blas_kernel_name(void);

/* 1 and a one-line advice in msg when OpenBLAS uses the generic Prescott
 * kernel on a CPU with AVX2 or AVX-512 and OPENBLAS_CORETYPE is unset; 0
 * otherwise (msg then empty). */
int blas_kernel_mismatch(char *msg, size_t len);

/* 1 and a one-line advice in msg when OPENBLAS_NUM_THREADS (else
 * OMP_NUM_THREADS) asks for more threads than the CPUs this process may run
 * on: mpirun binds a rank to one core unless told otherwise, and OpenBLAS
 * then quietly runs one thread. 0 otherwise. */
int blas_threads_exceed_cpus(char *msg, size_t len);

/* OpenBLAS's idle threads spin for about 2^28 cycles (0.1 s) after each
 * product before they sleep (OPENBLAS_THREAD_TIMEOUT, read once when the
 * library loads), and oneDNN's OpenMP threads spin too (OMP_WAIT_POLICY),
 * so with several threads they take the cores from mimae's own pool
 * (attention, softmax, GELU, layer norm, AdamW) between products: 1.65x
 * instead of 1.75x on 2 threads for a ViT-B/16 f32 step, 2058 instead of
 * 1636 ms for a bf16 one. When OpenBLAS runs more than one thread and
 * either variable is unset, this sets OPENBLAS_THREAD_TIMEOUT=4 (spin 16
 * cycles) and OMP_WAIT_POLICY=passive and executes the program again with
 * the same arguments (same process, before anything else has happened);
 * returns only when there is nothing to do or the exec failed. Call it
 * first in main. */
void blas_quiet_idle_threads(char **argv);

#endif
