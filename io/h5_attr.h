/* HDF5 attributes: numbers and strings. Strings are written as
 * variable-length UTF-8 and read whether variable or fixed length (as h5py
 * writes numpy bytes), in the attribute's own character set: HDF5 converts no
 * strings between character sets, so an ASCII memory type cannot read a UTF-8
 * attribute. */
#ifndef MIMAE_IO_H5_ATTR_H
#define MIMAE_IO_H5_ATTR_H

#include <hdf5.h>
#include <stddef.h>

#include "io/io_error.h"

/* ---- writing ----
 * Each returns 0, or -1; with e given, after io_file_fail(e, "cannot write
 * attribute NAME (out of memory?)"). */

/* A scalar: ftype in the file, value in memory as mtype. */
int h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *value,
                  io_file_err_t *e);
/* A 1-D array of count values. */
int h5_attr_write_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, size_t count,
                        const void *values, io_file_err_t *e);
/* A string, or a 1-D array of count strings (variable-length UTF-8). */
int h5_attr_write_string(hid_t loc, const char *name, const char *value, io_file_err_t *e);
int h5_attr_write_strings(hid_t loc, const char *name, const char *const *values, size_t count,
                          io_file_err_t *e);

/* ---- reading ---- */

typedef enum {
    ATTR_OK = 0,
    ATTR_MISSING,       /* no attribute of that name */
    ATTR_LOOKUP_FAILED, /* H5Aexists failed */
    ATTR_OPEN_FAILED,   /* H5Aopen (or getting its type or dataspace) failed */
    ATTR_BAD_TYPE,      /* not a string (or, for one string, not exactly one) */
    ATTR_NO_MEMORY,
    ATTR_READ_FAILED,   /* H5Aread failed */
} h5_attr_status_t;

/* An open attribute. */
typedef struct {
    hid_t id, type;   /* the attribute and its type: h5_attr_close closes both */
    H5T_class_t cls;  /* class of the type */
    int rank;         /* of the dataspace: 0 for a scalar (-1 if unknown) */
    long long count;  /* elements: 1 for a scalar (-1 if unknown) */
} h5_attr_t;

/* Opens attribute `name` of loc; a is valid (to close) only on ATTR_OK. */
h5_attr_status_t h5_attr_open(hid_t loc, const char *name, h5_attr_t *a);
void h5_attr_close(h5_attr_t *a);

/* Every string of a string attribute (a->count of them), variable or fixed
 * length, into *out: one malloc'd block of the pointers and the text, freed
 * with one free(*out). */
h5_attr_status_t h5_attr_read_strings(const h5_attr_t *a, char ***out);
/* A single string into buf, truncated to len - 1 bytes. */
h5_attr_status_t h5_attr_read_string(const h5_attr_t *a, char *buf, size_t len);

#endif
