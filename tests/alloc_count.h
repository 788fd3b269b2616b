/* Counts the heap allocations made by our own code: every test binary is
 * linked with -Wl,--wrap for the C allocator, which routes the calls from our
 * objects (core/ and tests/, not shared libraries) through these counters. */
#ifndef MIMAE_ALLOC_COUNT_H
#define MIMAE_ALLOC_COUNT_H

#include <stddef.h>

long alloc_count(void);

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

#endif
