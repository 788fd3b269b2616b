/* HDF5 attributes (see h5_attr.h). */
#include "io/h5_attr.h"

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

/* count < 0: a scalar. */
static int write_strings(hid_t loc, const char *name, const char *const *values,
                         long long count, io_file_err_t *e)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = -1;
    }
    if (t < 0) {
        if (e) io_file_fail(e, "cannot make an HDF5 string type for attribute %s", name);
        return -1;
    }
    int rc = write_attr(loc, name, t, t, count, values, e);
    H5Tclose(t);
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
    a->rank = H5Sget_simple_extent_ndims(space);
    a->count = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    return ATTR_OK;
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
    const htri_t variable = H5Tis_variable_str(a->type);
    const size_t fsize = H5Tget_size(a->type);
    const H5T_str_t pad = variable > 0 ? H5T_STR_NULLTERM : H5Tget_strpad(a->type);
    /* the memory type: C strings in the attribute's character set, or the
     * attribute's own fixed-length type */
    hid_t mem = variable > 0 ? H5Tcopy(H5T_C_S1) : H5Tcopy(a->type);
    if (mem < 0 || variable < 0 || fsize == 0 || pad == H5T_STR_ERROR ||
        (variable > 0 && (H5Tset_cset(mem, H5Tget_cset(a->type)) < 0 ||
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
