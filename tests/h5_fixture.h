/* Reading the PyTorch reference fixture (tests/ref/reference.h5) in tests.
 * Every function fails the current cmocka test with the file, the object and
 * what was wrong, so a stale or missing fixture says how to regenerate it. */
#ifndef MIMAE_H5_FIXTURE_H
#define MIMAE_H5_FIXTURE_H

#include <hdf5.h>
#include <stddef.h>

#define REFERENCE_FIXTURE "tests/ref/reference.h5"

hid_t fixture_open(const char *path);
/* Reads a float dataset of exactly `count` elements. */
void fixture_read_floats(hid_t file, const char *name, float *out, size_t count);
void fixture_read_ints(hid_t file, const char *name, int *out, size_t count);
void fixture_read_doubles(hid_t file, const char *name, double *out, size_t count);
double fixture_attr_double(hid_t file, const char *name);
int fixture_attr_int(hid_t file, const char *name);

#endif
