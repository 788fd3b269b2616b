#include "core/kernels/activation.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/kernels/parallel.h"
#include "core/kernels/vecmath.h"

/* GELU(x) = x Phi(x), Phi the standard normal CDF, as PyTorch's erf form,
 * from vm_phi / vm_phi_pdf (core/kernels/vecmath.h: a rational erf, absolute error
 * ~3e-7, and vm_exp). The loops have no calls and no branches, so the
 * compiler vectorises them; VM_CLONES builds AVX-512 and AVX2 versions
 * chosen at load time. Without FMA contraction (ISO C) every version
 * computes bit-identical results. */

VM_CLONES_FMA
static void gelu_forward(float *restrict out, const float *restrict inp, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * vm_phi(inp[i]);
}

/* dinp = dout * (Phi(x) + x phi(x)). */
VM_CLONES_FMA static void gelu_backward(float *restrict dinp, const float *restrict inp,
                                        const float *restrict dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float phi, pdf;
        const float x = inp[i];
        vm_phi_pdf(x, &phi, &pdf);
        dinp[i] = dout[i] * (phi + x * pdf);
    }
}

/* The same in place (d = dout on entry, dinp on return): a separate loop,
 * so that neither form needs a run-time overlap check to vectorise. */
VM_CLONES_FMA static void gelu_backward_inplace(float *restrict d, const float *restrict inp,
                                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float phi, pdf;
        const float x = inp[i];
        vm_phi_pdf(x, &phi, &pdf);
        d[i] = d[i] * (phi + x * pdf);
    }
}

typedef struct {
    activation_t act;
    float *out;
    const float *inp, *dout;
    size_t n;
    int backward;
} act_job_t;

/* Elementwise work splits into any pieces without changing a result. */
static void act_thread(void *ctx, int t, int nt)
{
    const act_job_t *j = ctx;
    const size_t chunk = 4096;
    const size_t units = (j->n + chunk - 1) / chunk;
    const size_t lo = units * (size_t)t / (size_t)nt * chunk;
    size_t hi = units * (size_t)(t + 1) / (size_t)nt * chunk;
    if (hi > j->n) hi = j->n;
    if (lo >= hi) return;
    const size_t n = hi - lo;
    if (!j->backward) {
        if (j->act == ACT_GELU) {
            gelu_forward(j->out + lo, j->inp + lo, n);
        } else {
            for (size_t i = lo; i < hi; i++) j->out[i] = j->inp[i] > 0.0f ? j->inp[i] : 0.0f;
        }
    } else if (j->act == ACT_GELU) {
        if (j->out == j->dout) gelu_backward_inplace(j->out + lo, j->inp + lo, n);
        else gelu_backward(j->out + lo, j->inp + lo, j->dout + lo, n);
    } else {
        for (size_t i = lo; i < hi; i++) j->out[i] = j->inp[i] > 0.0f ? j->dout[i] : 0.0f;
    }
}

static void act_run(act_job_t *j)
{
    par_run(act_thread, j, j->n >= 65536 ? par_threads() : 1);
}

void activation_forward(activation_t act, float *out, const float *inp, size_t n)
{
    act_job_t j = {act, out, inp, NULL, n, 0};
    act_run(&j);
}

void activation_backward(activation_t act, float *dinp, const float *inp, const float *dout,
                         size_t n)
{
    act_job_t j = {act, dinp, inp, dout, n, 1};
    act_run(&j);
}
