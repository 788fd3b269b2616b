/* HDF5 attributes (see h5_attr.h). */
#include "io/h5_attr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

/* ------------------------------------------------------------------------
 * Writing. */

/* count < 0: a scalar. */
static int write_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, long long count,
                      const void *buf, io_file_err_t *e)
{
    const hsize_t dims[1] = {count < 0 ? 0 : (hsize_t)count};
    hid_t space = count < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL), a = -1;
    int rc = -1;
    if (space >= 0) a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && H5Awrite(a, mtype, buf) >= 0) rc = 0;
    if (a >= 0 && H5Aclose(a) < 0) rc = -1;
    close_id(space, H5Sclose);
    if (rc && e) return io_file_fail(e, "cannot write attribute %s (out of memory?)", name);
    return rc;
}

int h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *value,
                  io_file_err_t *e)
{
    return write_attr(loc, name, ftype, mtype, -1, value, e);
}

int h5_attr_write_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, size_t count,
                        const void *values, io_file_err_t *e)
{
    return write_attr(loc, name, ftype, mtype, (long long)count, values, e);
}

/* count < 0: a scalar. Fixed-length strings, all as wide as the longest
 * plus its NUL: HDF5 keeps them in the attribute itself, not in the global
 * heap that variable-length ones need (see h5_attr.h). */
static int write_strings(hid_t loc, const char *name, const char *const *values,
                         long long count, io_file_err_t *e)
{
    const size_t n = count < 0 ? 1 : (size_t)count;
    size_t width = 1;
    for (size_t i = 0; i < n; i++) {
        const size_t len = strlen(values[i] ? values[i] : "") + 1;
        if (len > width) width = len;
    }
    char *block = calloc(n ? n : 1, width);
    if (!block) {
        if (e) io_file_fail(e, "out of memory writing attribute %s", name);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (values[i]) memcpy(block + i * width, values[i], strlen(values[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, width) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
                   H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        H5Tclose(t);
        t = -1;
    }
    int rc = -1;
    if (t < 0) {
        if (e) io_file_fail(e, "cannot make an HDF5 string type for attribute %s", name);
    } else {
        rc = write_attr(loc, name, t, t, count, block, e);
        H5Tclose(t);
    }
    free(block);
    return rc;
}

int h5_attr_write_string(hid_t loc, const char *name, const char *value, io_file_err_t *e)
{
    return write_strings(loc, name, &value, -1, e);
}

int h5_attr_write_strings(hid_t loc, const char *name, const char *const *values, size_t count,
                          io_file_err_t *e)
{
    return write_strings(loc, name, values, (long long)count, e);
}

/* ------------------------------------------------------------------------
 * Reading. */

int h5_type_is_standard_number(hid_t type)
{
    const hid_t known[] = {
        H5T_STD_I8LE,  H5T_STD_I16LE, H5T_STD_I32LE,  H5T_STD_I64LE,  H5T_STD_U8LE,
        H5T_STD_U16LE, H5T_STD_U32LE, H5T_STD_U64LE,  H5T_IEEE_F32LE, H5T_IEEE_F64LE,
        H5T_STD_I8BE,  H5T_STD_I16BE, H5T_STD_I32BE,  H5T_STD_I64BE,  H5T_STD_U8BE,
        H5T_STD_U16BE, H5T_STD_U32BE, H5T_STD_U64BE,  H5T_IEEE_F32BE, H5T_IEEE_F64BE,
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (H5Tequal(type, known[i]) > 0) return 1;
    return 0;
}

/* Whether loc's file is of the legacy layout: its root `format` attribute
 * a variable-length string (metadata only: the value is not read). */
static int legacy_file(hid_t loc)
{
    hid_t file = H5Iget_file_id(loc);
    hid_t a = file >= 0 ? H5Aopen(file, "format", H5P_DEFAULT) : -1;
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    const int legacy = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
    close_id(t, H5Tclose);
    close_id(a, H5Aclose);
    close_id(file, H5Fclose);
    return legacy;
}

/* The size of loc's file (0 when unknown). */
static hsize_t file_size(hid_t loc)
{
    hid_t file = H5Iget_file_id(loc);
    hsize_t size = 0;
    if (file >= 0 && H5Fget_filesize(file, &size) < 0) size = 0;
    close_id(file, H5Fclose);
    return size;
}

/* The checks of h5_attr_open on an attribute whose type and shape are
 * filled in. */
static h5_attr_status_t check_attr(hid_t loc, h5_attr_t *a)
{
    if (a->rank < 0 || a->rank > 1 || a->count < 0 || a->count > H5_ATTR_MAX_COUNT)
        return ATTR_BAD_SHAPE;
    size_t stored = a->size; /* bytes of one element in the file */
    switch (a->cls) {
    case H5T_INTEGER:
    case H5T_FLOAT:
        if (!h5_type_is_standard_number(a->type)) return ATTR_BAD_TYPE;
        break;
    case H5T_STRING: {
        const H5T_cset_t cset = H5Tget_cset(a->type);
        const htri_t variable = H5Tis_variable_str(a->type);
        if (variable < 0 || (cset != H5T_CSET_ASCII && cset != H5T_CSET_UTF8))
            return ATTR_BAD_TYPE;
        a->variable = variable > 0;
        if (a->variable) {
            if (!legacy_file(loc)) return ATTR_VARIABLE;
            stored = 16; /* a global heap id: length, collection address, index */
        } else {
            const H5T_str_t pad = H5Tget_strpad(a->type);
            if (a->size == 0 || (pad != H5T_STR_NULLTERM && pad != H5T_STR_NULLPAD &&
                                 pad != H5T_STR_SPACEPAD))
                return ATTR_BAD_TYPE;
        }
        break;
    }
    default: return ATTR_BAD_TYPE;
    }
    /* the value is in the file: a size beyond it is a damaged header (and
     * would have us allocate it) */
    const hsize_t have = file_size(loc);
    if (stored == 0 || (double)stored * (double)a->count > (double)have) return ATTR_BAD_SHAPE;
    return ATTR_OK;
}

h5_attr_status_t h5_attr_open(hid_t loc, const char *name, h5_attr_t *a)
{
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return ATTR_LOOKUP_FAILED;
    if (ex == 0) return ATTR_MISSING;
    a->id = H5Aopen(loc, name, H5P_DEFAULT);
    if (a->id < 0) return ATTR_OPEN_FAILED;
    a->type = H5Aget_type(a->id);
    hid_t space = a->type >= 0 ? H5Aget_space(a->id) : -1;
    if (space < 0) {
        close_id(a->type, H5Tclose);
        H5Aclose(a->id);
        return ATTR_OPEN_FAILED;
    }
    a->cls = H5Tget_class(a->type);
    a->size = H5Tget_size(a->type);
    a->variable = 0;
    a->rank = H5Sget_simple_extent_ndims(space);
    a->count = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    const h5_attr_status_t st = check_attr(loc, a);
    if (st != ATTR_OK) h5_attr_close(a);
    return st;
}

/* A filter mimae or h5py may have written (h5py's gzip and shuffle). */
static int known_filter(H5Z_filter_t id)
{
    return id == H5Z_FILTER_DEFLATE || id == H5Z_FILTER_SHUFFLE || id == H5Z_FILTER_FLETCHER32;
}

static int layout_check(hid_t ds, hid_t dcpl, char *why, size_t len)
{
    /* compressed or not, what is stored is in the file: a larger size is a
     * damaged chunk index, which HDF5 would allocate as one chunk */
    const hsize_t stored = H5Dget_storage_size(ds), have = file_size(ds);
    if (stored > have) {
        snprintf(why, len, "%llu bytes stored in a file of %llu", (unsigned long long)stored,
                 (unsigned long long)have);
        return -1;
    }
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_COMPACT || layout == H5D_CONTIGUOUS) return 0;
    if (layout != H5D_CHUNKED) {
        snprintf(why, len, "a %s layout", layout == H5D_VIRTUAL ? "virtual" : "damaged");
        return -1;
    }
    hsize_t chunk[H5S_MAX_RANK];
    const int rank = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
    hid_t type = H5Dget_type(ds);
    const size_t size = type >= 0 ? H5Tget_size(type) : 0;
    close_id(type, H5Tclose);
    double bytes = (double)size;
    for (int i = 0; i < rank; i++) bytes *= (double)chunk[i];
    if (rank < 1 || size == 0 || !(bytes >= 1.0) || bytes > (double)H5_MAX_CHUNK_BYTES) {
        snprintf(why, len, "chunks of %.0f bytes (at most %zu are read)", bytes,
                 H5_MAX_CHUNK_BYTES);
        return -1;
    }
    const int nfilters = H5Pget_nfilters(dcpl);
    if (nfilters < 0) {
        snprintf(why, len, "an unreadable filter list");
        return -1;
    }
    for (int i = 0; i < nfilters; i++) {
        unsigned flags = 0, config = 0, values[8];
        size_t nvalues = sizeof values / sizeof values[0];
        const H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nvalues, values, 0,
                                               NULL, &config);
        if (!known_filter(id)) {
            snprintf(why, len, "filter %d, not deflate, shuffle or Fletcher-32", (int)id);
            return -1;
        }
    }
    return 0;
}

int h5_dataset_layout_check(hid_t ds, char *why, size_t len)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) {
        snprintf(why, len, "unreadable creation properties");
        return -1;
    }
    const int rc = layout_check(ds, dcpl, why, len);
    H5Pclose(dcpl);
    return rc;
}

const char *h5_attr_status_text(h5_attr_status_t st)
{
    switch (st) {
    case ATTR_OK: return "readable";
    case ATTR_MISSING: return "missing";
    case ATTR_LOOKUP_FAILED: return "unreadable (its lookup failed)";
    case ATTR_OPEN_FAILED: return "unreadable (H5Aopen failed)";
    case ATTR_BAD_TYPE: return "of a type mimae never writes";
    case ATTR_BAD_SHAPE: return "not a value or a short list, or larger than the file";
    case ATTR_VARIABLE:
        return "a variable-length string, which mimae writes no more and reads only from files "
               "whose format attribute is one (older mimae)";
    case ATTR_NO_MEMORY: return "too large for the memory";
    case ATTR_READ_FAILED: return "unreadable (H5Aread failed)";
    }
    return "unreadable";
}

void h5_attr_close(h5_attr_t *a)
{
    close_id(a->type, H5Tclose);
    close_id(a->id, H5Aclose);
    a->type = a->id = -1;
}

/* Copies n strings into one block: n pointers, then the text. */
static char **pack_strings(const char *const *src, size_t n)
{
    size_t bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++) bytes += strlen(src[i] ? src[i] : "") + 1;
    char **out = malloc(bytes ? bytes : 1);
    if (!out) return NULL;
    char *text = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        const char *s = src[i] ? src[i] : "";
        size_t len = strlen(s) + 1;
        memcpy(text, s, len);
        out[i] = text;
        text += len;
    }
    return out;
}

/* Fixed-length strings are read with the attribute's own type, so HDF5
 * converts nothing (its in-place string conversion copies overlapping
 * memory for some sizes: found by tests/fuzz), and cut here: at the first
 * NUL, and after the last non-space for space-padded ones. */
h5_attr_status_t h5_attr_read_strings(const h5_attr_t *a, char ***out)
{
    *out = NULL;
    if (a->cls != H5T_STRING || a->count < 0) return ATTR_BAD_TYPE;
    const size_t n = (size_t)a->count;
    const int variable = a->variable; /* checked by h5_attr_open: a legacy file's */
    const size_t fsize = a->size;
    const H5T_str_t pad = variable ? H5T_STR_NULLTERM : H5Tget_strpad(a->type);
    /* the memory type: C strings in the attribute's character set, or the
     * attribute's own fixed-length type */
    hid_t mem = variable ? H5Tcopy(H5T_C_S1) : H5Tcopy(a->type);
    if (mem < 0 || fsize == 0 || pad == H5T_STR_ERROR ||
        (variable && (H5Tset_cset(mem, H5Tget_cset(a->type)) < 0 ||
                      H5Tset_size(mem, H5T_VARIABLE) < 0))) {
        close_id(mem, H5Tclose);
        return ATTR_BAD_TYPE;
    }
    h5_attr_status_t st = ATTR_OK;
    char **vl = NULL, *fixed = NULL, *text = NULL;
    const char **src = malloc((n ? n : 1) * sizeof *src);
    if (variable) vl = calloc(n ? n : 1, sizeof *vl);
    else fixed = calloc(n ? n : 1, fsize), text = calloc(n ? n : 1, fsize + 1);
    if (!src || (!vl && (!fixed || !text))) {
        st = ATTR_NO_MEMORY;
    } else if (H5Aread(a->id, mem, variable ? (void *)vl : (void *)fixed) < 0) {
        st = ATTR_READ_FAILED;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (variable) {
                src[i] = vl[i];
                continue;
            }
            const char *f = fixed + i * fsize;
            char *t = text + i * (fsize + 1);
            size_t len = 0;
            while (len < fsize && f[len]) len++;
            if (pad == H5T_STR_SPACEPAD)
                while (len > 0 && f[len - 1] == ' ') len--;
            memcpy(t, f, len);
            t[len] = '\0';
            src[i] = t;
        }
        *out = pack_strings(src, n);
        if (!*out) st = ATTR_NO_MEMORY;
    }
    if (vl)
        for (size_t i = 0; i < n; i++)
            if (vl[i]) H5free_memory(vl[i]);
    free(vl);
    free(fixed);
    free(text);
    free(src);
    H5Tclose(mem);
    return st;
}

h5_attr_status_t h5_attr_read_string(const h5_attr_t *a, char *buf, size_t len)
{
    if (a->count != 1) return ATTR_BAD_TYPE;
    char **s;
    h5_attr_status_t st = h5_attr_read_strings(a, &s);
    if (st != ATTR_OK) return st;
    size_t n = strlen(s[0]);
    if (len > 0) {
        if (n >= len) n = len - 1;
        memcpy(buf, s[0], n);
        buf[n] = '\0';
    }
    free(s);
    return ATTR_OK;
}
