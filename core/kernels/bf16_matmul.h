/* Matrix products on bf16 operands with f32 accumulation and f32 results,
 * through oneDNN (issue 18, train.precision = bf16). OpenBLAS stays the f32
 * path; this module mirrors the row-major cblas_sgemm calls of the linear
 * layers:
 *
 *   C (M, N) = op(A) op(B)        accumulate 0 (sgemm beta 0)
 *   C (M, N) = op(A) op(B) + C    accumulate 1 (beta 1: oneDNN's sum post-op,
 *                                 C_old + the f32 product, rounded once)
 *
 * op(X) = X or X^T; every matrix packed row-major (leading dimension = its
 * width as stored): A is M x K (K x M when transposed), B is K x N (N x K when
 * transposed). The linear layers use three forms:
 *   forward        out  = inp W^T          trans_a NoTrans, trans_b Trans
 *   input gradient dinp = dout W           NoTrans, NoTrans
 *   weight grad.   dW  += dout^T inp       Trans, NoTrans, accumulate 1
 *
 * Operands are rounded f32 -> bf16 (round to nearest even, 8 significant
 * bits); the products of bf16 pairs are exact in f32 and summed in f32, so a
 * result differs from sgemm's by the operands' rounding (relative 2^-9 each)
 * plus a differently ordered f32 sum. The bf16 instructions (AVX512-BF16
 * VDPBF16PS, AMX TDPBF16PS) treat denormal operands as zero and flush
 * denormal results to zero (|x| < 2^-126 counts as 0 on both ends).
 *
 * Lifetime: one engine (oneDNN's CPU engine and stream) for the process,
 * created at start and shared by every plan; one plan per product shape,
 * created at start too. A plan owns its oneDNN primitive, a user-managed
 * scratchpad and bf16 buffers for the two operands, so running it creates
 * and allocates nothing. Free the plans, then the engine.
 *
 * Threads: Debian's oneDNN runs on OpenMP (libgomp), its thread count the
 * OpenMP one of the calling thread: OMP_NUM_THREADS, else every CPU of the
 * affinity, or what bf16_set_threads set on that thread. A plan fixes its
 * work split from the count when it is created and may use fewer threads
 * when fewer are there at a run, so set the count once, before creating the
 * plans, and keep it. The f32 -> bf16 conversion of the run functions uses
 * mimae's pool (core/kernels/parallel.h: OpenBLAS's thread count).
 *
 * Determinism: at a fixed shape, thread count and oneDNN ISA, a plan's
 * result depends only on the operands (tests/test_bf16_matmul.c checks
 * repeated runs and a second plan bitwise). Another ISA (AMX against
 * AVX512-BF16, see bf16_cpu_check) sums in another order, and so may
 * another thread count: on avx512_core_bf16, oneDNN 2.6 splits a long inner
 * dimension across threads when M x N is small (64 x 64 x 32768 gives other
 * bits at 1, 2 and 4 threads). The ViT's layer shapes gave the same bits at
 * 1, 2 and 4 threads on both ISAs (bench/bf16 and the test print it).
 *
 * A plan must not run on two threads at once (its buffers are its own).
 * Every function that can fail takes err, errlen: -1 (or NULL) and one line
 * naming the oneDNN call and its status. */
#ifndef MIMAE_KERNELS_BF16_MATMUL_H
#define MIMAE_KERNELS_BF16_MATMUL_H

#include <cblas.h>
#include <stddef.h>
#include <stdint.h>

/* 0 when the CPU has AVX512-BF16 or AMX-BF16 and oneDNN will use it; isa
 * (may be NULL) receives the ISA oneDNN will use ("avx512_core_amx",
 * "avx512_core_bf16", ...) whatever the answer. -1 and one line in err
 * naming the missing instruction set (the CPU's, or oneDNN's when an
 * ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA cap or the OS keeps it from it). */
int bf16_cpu_check(char *isa, size_t isalen, char *err, size_t errlen);

/* oneDNN's threads (OpenMP's count for the calling thread), and setting it
 * (n >= 1) for the plans created afterwards by this thread. */
int bf16_threads(void);
void bf16_set_threads(int n);

/* dst[i] = src[i] rounded to bf16, to nearest even; NaN stays NaN (quiet,
 * sign kept), +-Inf stays Inf, finite values beyond the largest bf16 round
 * to Inf, denormals to bf16 denormals. Plain C the compiler vectorises. */
void bf16_convert(uint16_t *restrict dst, const float *restrict src, size_t n);

/* bf16_convert on mimae's threads (core/kernels/parallel.h) when n is large. */
void bf16_convert_par(uint16_t *dst, const float *src, size_t n);

/* x rounded to bf16 as bf16_convert does it (one element). */
static inline uint16_t bf16_round(float x)
{
    union { float f; uint32_t u; } v = {.f = x};
    const uint32_t u = v.u;
    /* round to nearest even: add half an ulp of bf16, minus one when the
     * kept part is even, so that a tie goes to the even neighbour; a carry
     * into the exponent is the correct rounding up (to Inf at the top).
     * NaN: keep sign and payload's top, set the quiet bit, so a payload in
     * the dropped bits cannot become Inf. */
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

/* The float a bf16 value stands for (exact). */
static inline float bf16_to_float(uint16_t h)
{
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}

/* oneDNN's CPU engine and its stream, shared by the plans. */
typedef struct bf16_engine bf16_engine_t;

bf16_engine_t *bf16_engine_create(char *err, size_t errlen);
void bf16_engine_free(bf16_engine_t *eng); /* NULL: nothing */

/* One product shape; see the top of this file. */
typedef struct {
    int m, n, k;
    CBLAS_TRANSPOSE trans_a, trans_b; /* CblasNoTrans or CblasTrans */
    int accumulate;                   /* 0: C = product; 1: C += product */
    int bf16_operands_only;           /* 1: no buffers of its own for converted
                                         operands: only bf16_matmul_run_bf16 */
} bf16_matmul_dims_t;

typedef struct bf16_matmul bf16_matmul_t;

/* The plan for dims on eng (which must outlive it). NULL and err on a bad
 * shape, a oneDNN failure or no memory. */
bf16_matmul_t *bf16_matmul_create(bf16_engine_t *eng, bf16_matmul_dims_t dims, char *err,
                                  size_t errlen);
void bf16_matmul_free(bf16_matmul_t *mm); /* NULL: nothing */

/* The dims the plan was made for. */
const bf16_matmul_dims_t *bf16_matmul_dims(const bf16_matmul_t *mm);

/* oneDNN's implementation of the plan ("brg:avx512_core_amx_bf16", ...). */
const char *bf16_matmul_impl(const bf16_matmul_t *mm);

/* The product on f32 operands, each converted to bf16 into the plan's
 * buffers first. 0, or -1 and err (also for a plan made with
 * bf16_operands_only, here and in bf16_matmul_run_b16). */
int bf16_matmul_run(bf16_matmul_t *mm, const float *A, const float *B, float *C, char *err,
                    size_t errlen);

/* The same with B already bf16 (bf16_convert, e.g. a weight once per step
 * and used by several products), A converted. */
int bf16_matmul_run_b16(bf16_matmul_t *mm, const float *A, const uint16_t *B16, float *C,
                        char *err, size_t errlen);

/* The same with both operands already bf16 (nothing converted). */
int bf16_matmul_run_bf16(bf16_matmul_t *mm, const uint16_t *A16, const uint16_t *B16, float *C,
                         char *err, size_t errlen);

#endif
