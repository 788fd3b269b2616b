/* HDF5 attributes: numbers and strings, read only after their type is known
 * to be one mimae writes; and the checks of types and layouts that datasets'
 * readers share. Strings are written as fixed-length UTF-8 (NUL
 * terminated), and read in the attribute's own character set: HDF5 converts
 * no strings between character sets, so an ASCII memory type cannot read a
 * UTF-8 attribute.
 *
 * Variable-length strings (every string of files written before mimae
 * switched to fixed-length ones, and h5py's str) live in the file's global
 * heap, whose parser in HDF5 1.10.8 a damaged file can crash or hang
 * (H5HG_read: tests/fuzz/README.md). They are read only from such a legacy
 * file, one whose root `format` attribute is itself variable-length; in any
 * other file a variable-length attribute is damage and is refused before
 * HDF5 reads it. */
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
/* A string, or a 1-D array of count strings (fixed-length UTF-8, as long as
 * the longest plus its NUL). */
int h5_attr_write_string(hid_t loc, const char *name, const char *value, io_file_err_t *e);
int h5_attr_write_strings(hid_t loc, const char *name, const char *const *values, size_t count,
                          io_file_err_t *e);

/* ---- reading ---- */

typedef enum {
    ATTR_OK = 0,
    ATTR_MISSING,       /* no attribute of that name */
    ATTR_LOOKUP_FAILED, /* H5Aexists failed */
    ATTR_OPEN_FAILED,   /* H5Aopen (or getting its type or dataspace) failed */
    ATTR_BAD_TYPE,      /* a type mimae never writes (see h5_attr_open), or, for one
                           string, not exactly one */
    ATTR_BAD_SHAPE,     /* not a scalar or 1-D, or larger than the file */
    ATTR_VARIABLE,      /* a variable-length string in a file that is not legacy */
    ATTR_NO_MEMORY,
    ATTR_READ_FAILED,   /* H5Aread failed */
} h5_attr_status_t;

/* An open attribute. */
typedef struct {
    hid_t id, type;   /* the attribute and its type: h5_attr_close closes both */
    H5T_class_t cls;  /* class of the type: H5T_INTEGER, H5T_FLOAT or H5T_STRING */
    int rank;         /* of the dataspace: 0 for a scalar, 1 */
    long long count;  /* elements: 1 for a scalar */
    size_t size;      /* bytes of one element (of the pointer for a variable string) */
    int variable;     /* a variable-length string (legacy files only) */
} h5_attr_t;

/* Most elements of one attribute (class_names of 1000 classes is the most
 * mimae writes). */
#define H5_ATTR_MAX_COUNT 65536

/* Opens attribute `name` of loc and checks, from the attribute's header
 * alone (nothing of its value is read), that it is what mimae writes: a
 * scalar or 1-D array of at most H5_ATTR_MAX_COUNT elements, no larger than
 * the file, of a standard integer or IEEE float type (little or big endian,
 * 8 to 64 bits) or a fixed-length ASCII/UTF-8 string (variable-length only
 * in a legacy file). a is valid (to close) only on ATTR_OK. */
h5_attr_status_t h5_attr_open(hid_t loc, const char *name, h5_attr_t *a);
void h5_attr_close(h5_attr_t *a);

/* Every string of a string attribute (a->count of them), variable or fixed
 * length, into *out: one malloc'd block of the pointers and the text, freed
 * with one free(*out). */
h5_attr_status_t h5_attr_read_strings(const h5_attr_t *a, char ***out);
/* A single string into buf, truncated to len - 1 bytes. */
h5_attr_status_t h5_attr_read_string(const h5_attr_t *a, char *buf, size_t len);

/* What went wrong, to follow "attribute NAME is " in a message. */
const char *h5_attr_status_text(h5_attr_status_t st);

/* ---- types and layouts, shared with the datasets' readers ---- */

/* Whether type is a standard integer or IEEE float (8 to 64 bits, little or
 * big endian): what mimae, h5py and numpy write. Any other numeric type is a
 * damaged one that HDF5's conversions must not be asked to handle. */
int h5_type_is_standard_number(hid_t type);

/* Most bytes of one chunk (mimae writes at most 1 MiB, h5py's automatic
 * chunks are smaller): HDF5 allocates a whole chunk to read any of it. */
#define H5_MAX_CHUNK_BYTES ((size_t)64 << 20)

/* Whether ds is laid out as mimae (or h5py) writes datasets: compact,
 * contiguous, or chunked in chunks of at most H5_MAX_CHUNK_BYTES, filtered
 * by nothing but deflate, shuffle and Fletcher-32 (not virtual: that reads
 * other files), storing no more bytes than the file has. From the dataset's
 * header and chunk index alone. 0, or -1 with the reason ("chunks of N
 * bytes", ...) in why. */
int h5_dataset_layout_check(hid_t ds, char *why, size_t len);

#endif
