/* bf16 products (oneDNN, core/kernels/bf16_matmul.h) against f32
 * cblas_sgemm (OpenBLAS) at ViT-B/16 shapes, measured in the same run:
 *
 *   bf16 [--reps R]
 *
 * Shapes M x N x K in the forms of the linear layers (row-major, as the
 * layers call sgemm): 1536^3 (A B, the mfu bench's peak), a 2048-wide
 * layer over 6304 rows (32 images x 197 tokens) forward (A B^T) and its
 * input gradient (A B), the qkv forward over 800 rows, and a weight
 * gradient over 400 rows (A^T B, beta 1).
 *
 * Per shape, R repetitions interleaved (f32, bf16 converting both operands
 * f32 -> bf16 as bf16_matmul_run does, bf16 on operands already bf16 as
 * bf16_matmul_run_bf16 does), best of each: GFLOP/s and bf16 / f32. Then
 * whether a plan made at the other thread count (1 <-> 2) gives the same
 * bits. Stops repeating when the run passes 40 s.
 *
 * Threads: 1 unless the environment says otherwise. OpenBLAS (and mimae's
 * pool, which converts): OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS.
 * oneDNN: Debian's is built on OpenMP, so OMP_NUM_THREADS, else
 * OPENBLAS_NUM_THREADS (bf16_set_threads). Both counts are printed. Ends with
 * `RESULT bf16 ...` lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "core/kernels/bf16_matmul.h"

typedef struct {
    const char *what;
    bf16_matmul_dims_t d;
} shape_t;

static const shape_t shapes[] = {
    {"square (A B)", {1536, 1536, 1536, CblasNoTrans, CblasNoTrans, 0, 0}},
    {"forward (A B^T)", {6304, 2048, 512, CblasNoTrans, CblasTrans, 0, 0}},
    {"d input (A B)", {6304, 512, 2048, CblasNoTrans, CblasNoTrans, 0, 0}},
    {"qkv forward (A B^T)", {800, 2304, 768, CblasNoTrans, CblasTrans, 0, 0}},
    {"weight grad (A^T B + C)", {768, 3072, 400, CblasTrans, CblasNoTrans, 1, 0}},
};

/* The count an environment variable asks for, else the other, else 1. */
static int threads_from_env(const char *first, const char *second)
{
    const char *v = getenv(first) ? getenv(first) : getenv(second);
    const int n = v ? atoi(v) : 1;
    return n >= 1 ? n : 1;
}

static void *checked(void *p, const char *what)
{
    if (!p) {
        fprintf(stderr, "bf16: out of memory (%s)\n", what);
        exit(1);
    }
    return p;
}

static bf16_matmul_t *plan_or_die(bf16_engine_t *eng, bf16_matmul_dims_t d)
{
    char err[512];
    bf16_matmul_t *mm = bf16_matmul_create(eng, d, err, sizeof err);
    if (!mm) {
        fprintf(stderr, "bf16: %s\n", err);
        exit(1);
    }
    return mm;
}

static void sgemm(const bf16_matmul_dims_t *d, const float *A, const float *B, float *C)
{
    const int lda = d->trans_a == CblasTrans ? d->m : d->k;
    const int ldb = d->trans_b == CblasTrans ? d->k : d->n;
    cblas_sgemm(CblasRowMajor, d->trans_a, d->trans_b, d->m, d->n, d->k, 1.0f, A, lda, B, ldb,
                d->accumulate ? 1.0f : 0.0f, C, d->n);
}

static void run_or_die(int rc, const char *err)
{
    if (rc) {
        fprintf(stderr, "bf16: %s\n", err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int reps = 5;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 < argc && !strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else reps = 0;
    }
    if (reps < 1) {
        fprintf(stderr, "usage: bf16 [--reps R]\n");
        return 2;
    }
    const double start = bench_now();
    const int blas_threads = threads_from_env("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS");
    const int dnnl_threads = threads_from_env("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS");
    openblas_set_num_threads(blas_threads);
    bf16_set_threads(dnnl_threads);
    bench_print_blas("bf16");
    char isa[64], err[512];
    const int have = bf16_cpu_check(isa, sizeof isa, err, sizeof err) == 0;
    printf("bf16: oneDNN ISA %s; threads: OpenBLAS %d, oneDNN (OpenMP) %d\n", isa,
           openblas_get_num_threads(), bf16_threads());
    if (!have) {
        printf("bf16: no bf16 products here: %s\n", err);
        return 0;
    }
    bf16_engine_t *eng = bf16_engine_create(err, sizeof err);
    if (!eng) {
        fprintf(stderr, "bf16: %s\n", err);
        return 1;
    }
    const int other = bf16_threads() == 1 ? 2 : 1;
    printf("%-24s %18s %9s %9s %9s %7s %7s  %-24s %s\n", "form", "M x N x K", "f32 GF/s",
           "bf16 GF/s", "pre GF/s", "ratio", "pre", "oneDNN", "bits at other threads");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const bf16_matmul_dims_t d = shapes[s].d;
        const size_t na = (size_t)d.m * d.k, nb = (size_t)d.k * d.n, nc = (size_t)d.m * d.n;
        float *A = checked(malloc(na * sizeof *A), "A"), *B = checked(malloc(nb * sizeof *B), "B");
        float *C = checked(calloc(nc, sizeof *C), "C"), *C2 = checked(calloc(nc, sizeof *C2), "C");
        uint16_t *A16 = checked(malloc(na * sizeof *A16), "A16"),
                 *B16 = checked(malloc(nb * sizeof *B16), "B16");
        bench_images(A, na, 11 + s);
        bench_images(B, nb, 23 + s);
        bf16_convert(A16, A, na);
        bf16_convert(B16, B, nb);
        bf16_matmul_t *mm = plan_or_die(eng, d);

        /* warm-up: pages touched, kernels generated */
        sgemm(&d, A, B, C);
        run_or_die(bf16_matmul_run(mm, A, B, C, err, sizeof err), err);
        run_or_die(bf16_matmul_run_bf16(mm, A16, B16, C, err, sizeof err), err);
        double best[3] = {1e30, 1e30, 1e30};
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            sgemm(&d, A, B, C);
            double t1 = bench_now();
            run_or_die(bf16_matmul_run(mm, A, B, C, err, sizeof err), err);
            double t2 = bench_now();
            run_or_die(bf16_matmul_run_bf16(mm, A16, B16, C, err, sizeof err), err);
            double t3 = bench_now();
            best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
            best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
            best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
            if (bench_now() - start > 40.0) break;
        }
        const double flops = 2.0 * d.m * (double)d.n * d.k;
        const double g32 = flops / best[0] / 1e9, g16 = flops / best[1] / 1e9,
                     gpre = flops / best[2] / 1e9;

        /* the same operands, from zero (and C_old zero for beta 1), on a plan
         * at this thread count and one at the other */
        memset(C, 0, nc * sizeof *C);
        run_or_die(bf16_matmul_run_bf16(mm, A16, B16, C, err, sizeof err), err);
        const int threads = bf16_threads();
        bf16_set_threads(other);
        bf16_matmul_t *mo = plan_or_die(eng, d);
        run_or_die(bf16_matmul_run_bf16(mo, A16, B16, C2, err, sizeof err), err);
        bf16_set_threads(threads);
        const int same = memcmp(C, C2, nc * sizeof *C) == 0;

        char dims[32];
        snprintf(dims, sizeof dims, "%d x %d x %d", d.m, d.n, d.k);
        printf("%-24s %18s %9.1f %9.1f %9.1f %6.2fx %6.2fx  %-24s %d: %s\n", shapes[s].what, dims,
               g32, g16, gpre, g16 / g32, gpre / g32, bf16_matmul_impl(mm), other,
               same ? "same" : "OTHER");
        printf("RESULT bf16 form=%s m=%d n=%d k=%d f32_gflops=%.2f bf16_gflops=%.2f "
               "bf16_pre_gflops=%.2f ratio=%.3f ratio_pre=%.3f isa=%s impl=%s blas_threads=%d "
               "dnnl_threads=%d same_bits_at_%d_threads=%d\n",
               d.trans_a == CblasTrans ? "AtB" : d.trans_b == CblasTrans ? "ABt" : "AB", d.m, d.n,
               d.k, g32, g16, gpre, g16 / g32, gpre / g32, isa, bf16_matmul_impl(mm),
               openblas_get_num_threads(), threads, other, same);
        fflush(stdout);
        bf16_matmul_free(mm);
        bf16_matmul_free(mo);
        free(A), free(B), free(C), free(C2), free(A16), free(B16);
    }
    bf16_engine_free(eng);
    printf("bf16: %d repetitions a shape at most, best of each; %.1f s\n", reps,
           bench_now() - start);
    return 0;
}
