#include "core/kernels/bf16_matmul.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "core/kernels/parallel.h"
#include "core/kernels/vecmath.h"

struct bf16_engine {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
};

struct bf16_matmul {
    bf16_matmul_dims_t dims;
    bf16_engine_t *eng;                         /* not owned */
    dnnl_primitive_t prim;
    dnnl_memory_t a_mem, b_mem, c_mem, scratch_mem; /* scratch_mem NULL: none needed */
    uint16_t *a16, *b16;                        /* run's converted operands */
    void *scratch;
    char impl[64];
    char what[96]; /* " 6304 x 2048 x 512 (A B^T)", for messages */
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Every oneDNN call goes through this: on failure, one line naming the
 * plan (`what`, in scope at each use), the call and oneDNN's status, and a
 * jump to the caller's cleanup. */
#define DNNL_CHECK(fn, args)                                                                 \
    do {                                                                                     \
        const dnnl_status_t st_ = fn args;                                                   \
        if (st_ != dnnl_success) {                                                           \
            fail(err, errlen, "bf16 matmul%s: %s failed: %s", what, #fn,                     \
                 dnnl_status2str(st_));                                                      \
            goto fail;                                                                       \
        }                                                                                    \
    } while (0)

/* ---- the CPU ---- */

/* The ISA oneDNN will dispatch to, without its "cpu_isa_" prefix. */
static const char *onednn_isa_name(dnnl_cpu_isa_t isa)
{
    const char *s = dnnl_cpu_isa2str(isa);
    if (!s) return "unknown";
    return strncmp(s, "cpu_isa_", 8) == 0 ? s + 8 : s;
}

int bf16_cpu_check(char *isa, size_t isalen, char *err, size_t errlen)
{
    if (errlen) err[0] = 0;
    const dnnl_cpu_isa_t eff = dnnl_get_effective_cpu_isa();
    const char *name = onednn_isa_name(eff);
    if (isa && isalen) snprintf(isa, isalen, "%s", name);
    int avx512_bf16 = 0, amx_bf16 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        const unsigned max_subleaf = a;
        amx_bf16 = (d >> 22) & 1; /* leaf 7.0 EDX[22] AMX-BF16 */
        if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
            avx512_bf16 = (a >> 5) & 1; /* leaf 7.1 EAX[5] AVX512_BF16 */
    }
#endif
    if (!avx512_bf16 && !amx_bf16) {
        fail(err, errlen,
             "this CPU has no AVX512-BF16 (/proc/cpuinfo flag avx512_bf16) nor AMX-BF16 "
             "(amx_bf16): train.precision = bf16 needs one of them; use f32");
        return -1;
    }
    /* The ISAs are bit sets, each containing the ones below it. */
    if ((eff & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
        fail(err, errlen,
             "this CPU has %s but oneDNN will use %s, which has no bf16 instructions "
             "(ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA caps it, or the OS does not enable "
             "AVX-512): train.precision = bf16 needs avx512_core_bf16; lift the cap or use f32",
             avx512_bf16 ? "AVX512-BF16" : "AMX-BF16", name);
        return -1;
    }
    return 0;
}

/* ---- threads ---- */

int bf16_threads(void)
{
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
    return omp_get_max_threads();
#else
    return 1; /* a sequential oneDNN (other runtimes are not built for) */
#endif
}

void bf16_set_threads(int n)
{
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
    omp_set_num_threads(n < 1 ? 1 : n);
#else
    (void)n;
#endif
}

/* ---- conversion ---- */

VM_CLONES /* integer arithmetic only: every version gives the same bits */
void bf16_convert(uint16_t *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = bf16_round(src[i]);
}

typedef struct {
    uint16_t *dst;
    const float *src;
    size_t n;
} convert_job_t;

static void convert_thread(void *ctx, int t, int nt)
{
    const convert_job_t *j = ctx;
    /* pieces of 64-byte lines; each element's result is its own, so the
     * split changes nothing */
    const size_t lines = (j->n + 31) / 32;
    size_t lo = lines * (size_t)t / (size_t)nt * 32, hi = lines * (size_t)(t + 1) / (size_t)nt * 32;
    if (hi > j->n) hi = j->n;
    if (lo < hi) bf16_convert(j->dst + lo, j->src + lo, hi - lo);
}

void bf16_convert_par(uint16_t *dst, const float *src, size_t n)
{
    convert_job_t j = {dst, src, n};
    par_run(convert_thread, &j, n >= (1u << 16) ? par_threads() : 1);
}

/* ---- engine ---- */

bf16_engine_t *bf16_engine_create(char *err, size_t errlen)
{
    const char *what = " engine";
    bf16_engine_t *eng = calloc(1, sizeof *eng);
    if (!eng) {
        fail(err, errlen, "bf16 matmul: out of memory for the oneDNN engine");
        return NULL;
    }
    DNNL_CHECK(dnnl_engine_create, (&eng->engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create, (&eng->stream, eng->engine, dnnl_stream_default_flags));
    return eng;
fail:
    bf16_engine_free(eng);
    return NULL;
}

void bf16_engine_free(bf16_engine_t *eng)
{
    if (!eng) return;
    /* destroy cannot fail on objects we created; nothing to report */
    if (eng->stream) dnnl_stream_destroy(eng->stream);
    if (eng->engine) dnnl_engine_destroy(eng->engine);
    free(eng);
}

/* ---- plans ---- */

/* The memory descriptor of a rows x cols operand of type dt stored packed
 * row-major, or stored transposed (cols x rows, row-major). */
static dnnl_status_t operand_md(dnnl_memory_desc_t *md, int rows, int cols, dnnl_data_type_t dt,
                                CBLAS_TRANSPOSE trans)
{
    const dnnl_dims_t dims = {rows, cols};
    const dnnl_dims_t plain = {cols, 1}, transposed = {1, rows};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt,
                                            trans == CblasTrans ? transposed : plain);
}

static void *aligned_bytes(size_t bytes)
{
    void *p = NULL;
    /* 64: a cache line, and AVX-512's width */
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

bf16_matmul_t *bf16_matmul_create(bf16_engine_t *eng, bf16_matmul_dims_t dims, char *err,
                                  size_t errlen)
{
    const bf16_matmul_dims_t d = dims;
    if (!eng || d.m < 1 || d.n < 1 || d.k < 1 || d.accumulate < 0 || d.accumulate > 1 ||
        (d.trans_a != CblasNoTrans && d.trans_a != CblasTrans) ||
        (d.trans_b != CblasNoTrans && d.trans_b != CblasTrans)) {
        fail(err, errlen,
             "bf16 matmul: bad plan %d x %d x %d (trans_a %d, trans_b %d, accumulate %d%s): "
             "sizes must be >= 1, transposes CblasNoTrans or CblasTrans, accumulate 0 or 1",
             d.m, d.n, d.k, (int)d.trans_a, (int)d.trans_b, d.accumulate,
             eng ? "" : ", no engine");
        return NULL;
    }
    bf16_matmul_t *mm = calloc(1, sizeof *mm);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!mm) {
        fail(err, errlen, "bf16 matmul: out of memory for a plan");
        return NULL;
    }
    mm->dims = d;
    mm->eng = eng;
    snprintf(mm->what, sizeof mm->what, " %d x %d x %d (%s %s%s)", d.m, d.n, d.k,
             d.trans_a == CblasTrans ? "A^T" : "A", d.trans_b == CblasTrans ? "B^T" : "B",
             d.accumulate ? " + C" : "");
    const char *what = mm->what;

    dnnl_memory_desc_t a_md, b_md, c_md;
    DNNL_CHECK(operand_md, (&a_md, d.m, d.k, dnnl_bf16, d.trans_a));
    DNNL_CHECK(operand_md, (&b_md, d.k, d.n, dnnl_bf16, d.trans_b));
    DNNL_CHECK(operand_md, (&c_md, d.m, d.n, dnnl_f32, CblasNoTrans));
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init, (&desc, &a_md, &b_md, NULL, &c_md));

    /* scratchpad ours (allocated here, not per execution); beta 1 as the
     * sum post-op: dst = 1 * dst + product */
    DNNL_CHECK(dnnl_primitive_attr_create, (&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode, (attr, dnnl_scratchpad_mode_user));
    if (d.accumulate) {
        DNNL_CHECK(dnnl_post_ops_create, (&ops));
        DNNL_CHECK(dnnl_post_ops_append_sum, (ops, 1.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops, (attr, ops));
    }
    DNNL_CHECK(dnnl_primitive_desc_create, (&pd, &desc, attr, eng->engine, NULL));

    const char *impl = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query, (pd, dnnl_query_impl_info_str, 0, (void *)&impl));
    snprintf(mm->impl, sizeof mm->impl, "%s", impl ? impl : "unknown");

    const dnnl_memory_desc_t *scratch_md =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!scratch_md) {
        fail(err, errlen, "bf16 matmul%s: dnnl_primitive_desc_query_md failed (scratchpad)",
             what);
        goto fail;
    }
    const size_t scratch_bytes = dnnl_memory_desc_get_size(scratch_md);
    DNNL_CHECK(dnnl_primitive_create, (&mm->prim, pd));

    const size_t na = d.bf16_operands_only ? 0 : (size_t)d.m * d.k,
                 nb = d.bf16_operands_only ? 0 : (size_t)d.k * d.n;
    mm->a16 = na ? aligned_bytes(na * sizeof *mm->a16) : NULL;
    mm->b16 = nb ? aligned_bytes(nb * sizeof *mm->b16) : NULL;
    mm->scratch = scratch_bytes ? aligned_bytes(scratch_bytes) : NULL;
    if ((na && !mm->a16) || (nb && !mm->b16) || (scratch_bytes && !mm->scratch)) {
        fail(err, errlen,
             "bf16 matmul%s: out of memory (%zu bytes of bf16 operands, %zu of scratchpad)",
             what, (na + nb) * sizeof(uint16_t), scratch_bytes);
        goto fail;
    }
    DNNL_CHECK(dnnl_memory_create, (&mm->a_mem, &a_md, eng->engine, mm->a16));
    DNNL_CHECK(dnnl_memory_create, (&mm->b_mem, &b_md, eng->engine, mm->b16));
    DNNL_CHECK(dnnl_memory_create, (&mm->c_mem, &c_md, eng->engine, DNNL_MEMORY_NONE));
    if (scratch_bytes)
        DNNL_CHECK(dnnl_memory_create, (&mm->scratch_mem, scratch_md, eng->engine, mm->scratch));

    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (ops) dnnl_post_ops_destroy(ops);
    return mm;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (ops) dnnl_post_ops_destroy(ops);
    bf16_matmul_free(mm);
    return NULL;
}

void bf16_matmul_free(bf16_matmul_t *mm)
{
    if (!mm) return;
    if (mm->a_mem) dnnl_memory_destroy(mm->a_mem);
    if (mm->b_mem) dnnl_memory_destroy(mm->b_mem);
    if (mm->c_mem) dnnl_memory_destroy(mm->c_mem);
    if (mm->scratch_mem) dnnl_memory_destroy(mm->scratch_mem);
    if (mm->prim) dnnl_primitive_destroy(mm->prim);
    free(mm->a16);
    free(mm->b16);
    free(mm->scratch);
    free(mm);
}

const bf16_matmul_dims_t *bf16_matmul_dims(const bf16_matmul_t *mm) { return &mm->dims; }

const char *bf16_matmul_impl(const bf16_matmul_t *mm)
{
    return mm->impl;
}

/* Executes on bf16 operands a16 and b16 (oneDNN only reads them: the casts
 * drop const because dnnl_memory_set_data_handle takes void *). */
static int execute(bf16_matmul_t *mm, const uint16_t *a16, const uint16_t *b16, float *C,
                   char *err, size_t errlen)
{
    const char *what = mm->what;
    DNNL_CHECK(dnnl_memory_set_data_handle, (mm->a_mem, (void *)(uintptr_t)a16));
    DNNL_CHECK(dnnl_memory_set_data_handle, (mm->b_mem, (void *)(uintptr_t)b16));
    DNNL_CHECK(dnnl_memory_set_data_handle, (mm->c_mem, C));
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, mm->a_mem},
        {DNNL_ARG_WEIGHTS, mm->b_mem},
        {DNNL_ARG_DST, mm->c_mem},
        {DNNL_ARG_SCRATCHPAD, mm->scratch_mem},
    };
    DNNL_CHECK(dnnl_primitive_execute, (mm->prim, mm->eng->stream, mm->scratch_mem ? 4 : 3, args));
    DNNL_CHECK(dnnl_stream_wait, (mm->eng->stream));
    return 0;
fail:
    return -1;
}

/* -1 and a message when the plan has no buffers for converted operands. */
static int has_operand_buffers(const bf16_matmul_t *mm, char *err, size_t errlen)
{
    if (!mm->dims.bf16_operands_only) return 1;
    fail(err, errlen, "bf16 matmul%s: made with bf16_operands_only, so it takes bf16 operands "
         "only (bf16_matmul_run_bf16)", mm->what);
    return 0;
}

int bf16_matmul_run(bf16_matmul_t *mm, const float *A, const float *B, float *C, char *err,
                    size_t errlen)
{
    const bf16_matmul_dims_t *d = &mm->dims;
    if (!has_operand_buffers(mm, err, errlen)) return -1;
    bf16_convert_par(mm->a16, A, (size_t)d->m * d->k);
    bf16_convert_par(mm->b16, B, (size_t)d->k * d->n);
    return execute(mm, mm->a16, mm->b16, C, err, errlen);
}

int bf16_matmul_run_b16(bf16_matmul_t *mm, const float *A, const uint16_t *B16, float *C,
                        char *err, size_t errlen)
{
    if (!has_operand_buffers(mm, err, errlen)) return -1;
    bf16_convert_par(mm->a16, A, (size_t)mm->dims.m * mm->dims.k);
    return execute(mm, mm->a16, B16, C, err, errlen);
}

int bf16_matmul_run_bf16(bf16_matmul_t *mm, const uint16_t *A16, const uint16_t *B16, float *C,
                         char *err, size_t errlen)
{
    return execute(mm, A16, B16, C, err, errlen);
}
