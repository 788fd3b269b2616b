#include "core/kernels/profile.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

int profile_on;

/* nanoseconds per phase: atomic, since pool threads add too */
static _Atomic uint64_t phase_ns[PROFILE_COUNT];

static const char *const names[PROFILE_COUNT] = {
    "products: qkv",         "products: attention proj", "products: mlp fc1",
    "products: mlp fc2",     "products: embed/pred",     "products: projector, Q",
    "attention (incl. softmax)", "  of which softmax",                "layer norm",
    "GELU",                  "token gathers/pooling",    "losses",
    "gradient sums, comm",   "norms, guard, AdamW",
};

void profile_enable(int on) { profile_on = on; }

void profile_reset(void)
{
    for (int i = 0; i < PROFILE_COUNT; i++) atomic_store(&phase_ns[i], 0);
}

double profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void profile_add(profile_phase_t phase, double seconds)
{
    if (seconds > 0) atomic_fetch_add(&phase_ns[phase], (uint64_t)(seconds * 1e9));
}

double profile_seconds(profile_phase_t phase) { return 1e-9 * (double)atomic_load(&phase_ns[phase]); }

const char *profile_phase_name(profile_phase_t phase) { return names[phase]; }
