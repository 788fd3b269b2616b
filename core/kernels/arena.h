/* Laying out many tensors in one float block: the same routine runs twice,
 * first with base == NULL to count the floats, then with the allocated block
 * to hand out the pointers. Every tensor starts on a 64-byte boundary. */
#ifndef MIMAE_KERNELS_ARENA_H
#define MIMAE_KERNELS_ARENA_H

#include <stddef.h>

#define ARENA_ALIGN_FLOATS 16

typedef struct {
    float *base;  /* NULL while counting */
    size_t used;  /* floats handed out so far */
} arena_t;

static inline float *arena_take(arena_t *a, size_t n)
{
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + ARENA_ALIGN_FLOATS - 1) / ARENA_ALIGN_FLOATS * ARENA_ALIGN_FLOATS;
    return p;
}

#endif
