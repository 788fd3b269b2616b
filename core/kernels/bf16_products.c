#include "core/kernels/bf16_products.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels/parallel.h"

#define MAX_PLANS 256
#define MAX_MIRRORS 2

typedef struct {
    const float *block;
    size_t n;
    uint16_t *copy;
} mirror_t;

struct bf16_products {
    bf16_engine_t *engine;
    bf16_matmul_t *plan[MAX_PLANS];
    int n_plans, late;
    uint16_t *a16, *b16;        /* the shared converted operands */
    size_t a_floats, b_floats;  /* their capacity */
    mirror_t mirror[MAX_MIRRORS];
    int n_mirrors;
    int failed;                 /* an error not yet reported */
    char error[256];
};

bf16_products_t *bf16_products_create(char *isa, size_t isalen, char *err, size_t errlen)
{
    if (bf16_cpu_check(isa, isalen, err, errlen)) return NULL;
    bf16_products_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory for the bf16 products");
        return NULL;
    }
    bf16_set_threads(par_threads()); /* OPENBLAS_NUM_THREADS stays the one knob */
    if (!(p->engine = bf16_engine_create(err, errlen))) {
        free(p);
        return NULL;
    }
    return p;
}

void bf16_products_free(bf16_products_t *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_plans; i++) bf16_matmul_free(p->plan[i]);
    bf16_engine_free(p->engine);
    for (int i = 0; i < p->n_mirrors; i++) free(p->mirror[i].copy);
    free(p->a16);
    free(p->b16);
    free(p);
}

uint16_t *bf16_products_mirror(bf16_products_t *p, const float *block, size_t n, char *err,
                               size_t errlen)
{
    void *copy = NULL;
    if (p->n_mirrors == MAX_MIRRORS || posix_memalign(&copy, 64, (n ? n : 1) * sizeof(uint16_t))) {
        snprintf(err, errlen, "out of memory for a bf16 copy of %zu weights", n);
        return NULL;
    }
    p->mirror[p->n_mirrors++] = (mirror_t){block, n, copy};
    return copy;
}

static int same_dims(const bf16_matmul_dims_t *a, const bf16_matmul_dims_t *b)
{
    return a->m == b->m && a->n == b->n && a->k == b->k && a->trans_a == b->trans_a &&
           a->trans_b == b->trans_b && a->accumulate == b->accumulate;
}

static bf16_matmul_t *find(const bf16_products_t *p, const bf16_matmul_dims_t *d)
{
    for (int i = 0; i < p->n_plans; i++)
        if (same_dims(bf16_matmul_dims(p->plan[i]), d)) return p->plan[i];
    return NULL;
}

/* *buf holds at least n bf16 values afterwards; -1 when out of memory. */
static int hold(uint16_t **buf, size_t *capacity, size_t n)
{
    if (n <= *capacity) return 0;
    void *grown = NULL;
    if (posix_memalign(&grown, 64, n * sizeof(uint16_t)) != 0) return -1;
    free(*buf);
    *buf = grown;
    *capacity = n;
    return 0;
}

int bf16_products_prepare(bf16_products_t *p, bf16_matmul_dims_t dims, char *err, size_t errlen)
{
    dims.bf16_operands_only = 1;
    if (hold(&p->a16, &p->a_floats, (size_t)dims.m * dims.k) ||
        hold(&p->b16, &p->b_floats, (size_t)dims.k * dims.n)) {
        snprintf(err, errlen, "out of memory for the bf16 operands of a %d x %d x %d product",
                 dims.m, dims.n, dims.k);
        return -1;
    }
    if (find(p, &dims)) return 0;
    if (p->n_plans == MAX_PLANS) {
        snprintf(err, errlen, "more than %d bf16 product shapes", MAX_PLANS);
        return -1;
    }
    bf16_matmul_t *mm = bf16_matmul_create(p->engine, dims, err, errlen);
    if (!mm) return -1;
    p->plan[p->n_plans++] = mm;
    return 0;
}

typedef struct {
    uint16_t *dst;
    const float *src;
    int rows, cols, ld;
} convert_job_t;

static void convert_rows(void *ctx, int t, int n)
{
    const convert_job_t *j = ctx;
    int lo, hi;
    par_range(j->rows, 16, t, n, &lo, &hi);
    for (int r = lo; r < hi; r++)
        bf16_convert(j->dst + (size_t)r * j->cols, j->src + (size_t)r * j->ld, (size_t)j->cols);
}

/* dst (rows x cols, packed) = src (rows x cols, row stride ld) in bf16. */
static void convert(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
    convert_job_t j = {dst, src, rows, cols, ld};
    par_run(convert_rows, &j, (size_t)rows * cols >= 65536 ? par_threads() : 1);
}

void bf16_products_refresh(bf16_products_t *p)
{
    for (int i = 0; i < p->n_mirrors; i++)
        bf16_convert_par(p->mirror[i].copy, p->mirror[i].block, p->mirror[i].n);
}

/* The bf16 copy of a packed rows x cols operand at x, if a mirror holds it. */
static const uint16_t *mirrored(const bf16_products_t *p, const float *x, int rows, int cols,
                                int ld)
{
    if (ld != cols) return NULL;
    for (int i = 0; i < p->n_mirrors; i++) {
        const mirror_t *m = &p->mirror[i];
        if (x >= m->block && x < m->block + m->n &&
            (size_t)(x - m->block) + (size_t)rows * cols <= m->n)
            return m->copy + (x - m->block);
    }
    return NULL;
}

/* The operand as packed bf16: its mirror's copy, or converted into buf. */
static const uint16_t *operand(const bf16_products_t *p, uint16_t *buf, const float *x, int rows,
                               int cols, int ld)
{
    const uint16_t *copy = mirrored(p, x, rows, cols, ld);
    if (copy) return copy;
    convert(buf, x, rows, cols, ld);
    return buf;
}

void bf16_products_gemm(bf16_products_t *p, CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b,
                        int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C)
{
    if (p->failed) return; /* the step fails anyway: say why once */
    const bf16_matmul_dims_t dims = {M, N, K, trans_a, trans_b, beta != 0.0f, 1};
    bf16_matmul_t *mm = find(p, &dims);
    if (!mm) {
        p->late++;
        if (bf16_products_prepare(p, dims, p->error, sizeof p->error)) {
            p->failed = 1;
            return;
        }
        mm = find(p, &dims);
    }
    /* stored shapes: A is M x K (K x M transposed), B is K x N (N x K) */
    const uint16_t *a16 = operand(p, p->a16, A, trans_a == CblasTrans ? K : M,
                                  trans_a == CblasTrans ? M : K, lda);
    const uint16_t *b16 = operand(p, p->b16, B, trans_b == CblasTrans ? N : K,
                                  trans_b == CblasTrans ? K : N, ldb);
    if (bf16_matmul_run_bf16(mm, a16, b16, C, p->error, sizeof p->error)) p->failed = 1;
}

int bf16_products_late(const bf16_products_t *p) { return p->late; }

const char *bf16_products_error(bf16_products_t *p)
{
    if (!p->failed) return NULL;
    p->failed = 0;
    return p->error;
}
