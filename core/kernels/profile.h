/* Where a training step's time goes, by phase: off unless profile_enable(1)
 * (bench/vitb turns it on), and then a clock read around each instrumented
 * call. Leaf calls only (a product, a norm, an activation, ...), so no time
 * is counted twice. Phases timed inside the thread pool (softmax) add each
 * thread's time: with one thread that is wall time.
 *
 *   PROFILED(PROFILE_FC1, linear_forward(...));
 */
#ifndef MIMAE_KERNELS_PROFILE_H
#define MIMAE_KERNELS_PROFILE_H

typedef enum {
    PROFILE_QKV,          /* products: attention input projection */
    PROFILE_ATTN_PROJ,    /* attention output projection */
    PROFILE_FC1,          /* MLP first layer */
    PROFILE_FC2,          /* MLP second layer */
    PROFILE_EMBED,        /* patch embedding, decoder embedding, pixel prediction */
    PROFILE_HEADS,        /* projector and Q's networks */
    PROFILE_ATTENTION,    /* attention scores, softmax and weighted sums */
    PROFILE_SOFTMAX,      /* part of PROFILE_ATTENTION, also counted there */
    PROFILE_LAYERNORM,
    PROFILE_GELU,
    PROFILE_TOKENS,       /* patches, gathers, mask tokens, pooling, residual copies */
    PROFILE_LOSSES,       /* reconstruction, InfoNCE, CLUB, Q's likelihood */
    PROFILE_COMM,         /* sums over micro-batches and ranks, MI features across ranks */
    PROFILE_ADAMW,        /* norms, the guard, the update and (bf16) the weights' bf16 copy */
    PROFILE_COUNT
} profile_phase_t;

extern int profile_on;

void profile_enable(int on);
void profile_reset(void);
double profile_now(void);
void profile_add(profile_phase_t phase, double seconds);
/* Seconds accumulated in phase since the last reset. */
double profile_seconds(profile_phase_t phase);
const char *profile_phase_name(profile_phase_t phase);

/* For a stretch of several calls: t0 = profile_start(); ...;
 * profile_stop(phase, t0). */
static inline double profile_start(void) { return profile_on ? profile_now() : 0.0; }
static inline void profile_stop(profile_phase_t phase, double t0)
{
    if (profile_on) profile_add(phase, profile_now() - t0);
}

#define PROFILED(phase, call)                                   \
    do {                                                        \
        const double profile_t0_ = profile_on ? profile_now() : 0.0; \
        call;                                                   \
        if (profile_on) profile_add(phase, profile_now() - profile_t0_); \
    } while (0)

#endif
