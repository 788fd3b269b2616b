/* Vectorisable float math for the elementwise kernels: exp, erf and the
 * normal CDF/PDF without calls or branches (selects only), so that loops
 * over them vectorise, and VM_CLONES, which builds a function for AVX-512,
 * AVX2 and the baseline and picks one when the program loads. Under
 * VM_CLONES the code has no fused multiply-adds (ISO C mode contracts
 * nothing) and no reassociation, so each version gives bit-identical
 * results; VM_CLONES_FMA trades that for speed. Nothing reassociates sums:
 * results never depend on vector width or thread count (vm_sum and vm_dot
 * fix their order themselves). */
#ifndef MIMAE_KERNELS_VECMATH_H
#define MIMAE_KERNELS_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(MIMAE_NO_CLONES)
#define VM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* The same with fused multiply-adds where the ISA has them (Haswell and
 * later): faster, and each version deterministic, but the versions differ
 * from each other in the last bits. */
#if defined(__clang__)
#define VM_CLONES_FMA __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define VM_CLONES_FMA                                                       \
    __attribute__((target_clones("avx512f", "arch=haswell", "default"),     \
                   optimize("fp-contract=fast")))
#endif
#else
#define VM_CLONES
#define VM_CLONES_FMA
#endif

/* e^x for x in [-87, 88] (no range check), relative error < 1e-7. */
static inline float vm_exp_inrange(float x)
{
    float kf = x * 1.44269504088896341f + 12582912.0f; /* round(x / ln 2) */
    kf -= 12582912.0f;
    /* r = x - k ln2 in two steps (Cody-Waite), |r| <= ln2/2 */
    const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187045e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^k; unsigned so that no shift is of a negative value */
    const uint32_t bits = (uint32_t)((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* e^x, the argument clamped to [-87, 88] (written as max/min selects). */
/* Sums in 8 interleaved lanes, added in a fixed tree, then the tail in
 * order: 8 independent chains (a sum in index order waits on each add) that
 * vectorise, with the same bits at any vector width. */
#define VM_LANES 8

static inline float vm_tree8(const float *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline float vm_sum(const float *x, int n)
{
    float acc[VM_LANES] = {0};
    const int nv = n / VM_LANES * VM_LANES;
    for (int i = 0; i < nv; i += VM_LANES)
        for (int l = 0; l < VM_LANES; l++) acc[l] += x[i + l];
    float s = vm_tree8(acc);
    for (int i = nv; i < n; i++) s += x[i];
    return s;
}

/* The largest of x[0..n-1] (n >= 1), in VM_LANES lanes so that it
 * vectorises; a maximum is exact, so the order changes nothing (NaN aside). */
static inline float vm_max(const float *x, int n)
{
    float acc[VM_LANES];
    for (int l = 0; l < VM_LANES; l++) acc[l] = x[0];
    const int nv = n / VM_LANES * VM_LANES;
    for (int i = 0; i < nv; i += VM_LANES)
        for (int l = 0; l < VM_LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = acc[0];
    for (int l = 1; l < VM_LANES; l++) m = acc[l] > m ? acc[l] : m;
    for (int i = nv; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* sum of a[i] * b[i] in vm_sum's order. */
static inline float vm_dot(const float *a, const float *b, int n)
{
    float acc[VM_LANES] = {0};
    const int nv = n / VM_LANES * VM_LANES;
    for (int i = 0; i < nv; i += VM_LANES)
        for (int l = 0; l < VM_LANES; l++) acc[l] += a[i + l] * b[i + l];
    float s = vm_tree8(acc);
    for (int i = nv; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline float vm_exp(float x)
{
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    return vm_exp_inrange(x);
}

/* erf(z) for any z: z P(z^2) / Q(z^2) on |z| <= 3.92 (z clamped there,
 * where erf rounds to +-1), a rational least-squares fit (Loeb iteration,
 * degrees 5/5 in z^2): absolute error 4e-8 in exact arithmetic, 3.2e-7 in
 * float (the same ~1e-7-relative class as libm's erff near |erf| ~ 1). No
 * exp: 12 multiply-adds and a division. */
static inline float vm_erf(float z)
{
    z = z > -3.92f ? z : -3.92f;
    z = z < 3.92f ? z : 3.92f;
    const float z2 = z * z;
    float p = 2.0736973894985855e-06f;
    p = p * z2 + 2.8669683801119117e-04f;
    p = p * z2 + 3.7683822830488758e-03f;
    p = p * z2 + 5.2758341791665817e-02f;
    p = p * z2 + 1.9023878642780906e-01f;
    p = p * z2 + 1.1283790633254966e+00f;
    float q = 3.8432514782256455e-05f;
    q = q * z2 + 1.1665764092628371e-03f;
    q = q * z2 + 1.4971498771518528e-02f;
    q = q * z2 + 1.1406949972824075e-01f;
    q = q * z2 + 5.0192683913049496e-01f;
    q = q * z2 + 1.0f;
    return z * p / q;
}

/* GELU's pieces: Phi(x) = (1 + erf(x/sqrt 2))/2, the standard normal CDF,
 * and its density phi(x) = exp(-x^2/2)/sqrt(2 pi). In the far negative tail
 * Phi is small and carries erf's absolute error (3e-7), as erff-based GELU
 * implementations do. */
static inline float vm_phi(float x)
{
    return 0.5f + 0.5f * vm_erf(x * 0.70710678118654752440f);
}

static inline void vm_phi_pdf(float x, float *phi, float *pdf)
{
    *phi = vm_phi(x);
    *pdf = 0.39894228040143267794f * vm_exp(-0.5f * x * x);
}

#endif
