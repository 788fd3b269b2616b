#include "h5_fixture.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

hid_t fixture_open(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fail_msg("%s: cannot open as HDF5; regenerate with /usr/bin/python3 "
                 "tests/ref/make_reference.py", path);
    return f;
}

static void read_dataset(hid_t file, const char *name, hid_t type, void *out, size_t count)
{
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) fail_msg("%s: dataset missing from the fixture", name);
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    if (n != (hssize_t)count) {
        H5Dclose(ds);
        fail_msg("%s: %lld elements in the fixture, the C model expects %zu", name,
                 (long long)n, count);
    }
    herr_t st = H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(ds);
    if (st < 0) fail_msg("%s: read failed", name);
}

void fixture_read_floats(hid_t file, const char *name, float *out, size_t count)
{
    read_dataset(file, name, H5T_NATIVE_FLOAT, out, count);
}

void fixture_read_ints(hid_t file, const char *name, int *out, size_t count)
{
    read_dataset(file, name, H5T_NATIVE_INT, out, count);
}

void fixture_read_doubles(hid_t file, const char *name, double *out, size_t count)
{
    read_dataset(file, name, H5T_NATIVE_DOUBLE, out, count);
}

static void read_attr(hid_t file, const char *name, hid_t type, void *out)
{
    hid_t a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0) fail_msg("attribute %s missing from the fixture", name);
    herr_t st = H5Aread(a, type, out);
    H5Aclose(a);
    if (st < 0) fail_msg("attribute %s: read failed", name);
}

double fixture_attr_double(hid_t file, const char *name)
{
    double v = 0;
    read_attr(file, name, H5T_NATIVE_DOUBLE, &v);
    return v;
}

int fixture_attr_int(hid_t file, const char *name)
{
    int v = 0;
    read_attr(file, name, H5T_NATIVE_INT, &v);
    return v;
}
