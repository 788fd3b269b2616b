/* HDF5 files built in memory and committed atomically (see h5_atomic.h). */
#include "io/h5_atomic.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_path.h"

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

/* ------------------------------------------------------------------------
 * The in-memory image and its file-image callbacks. */

typedef struct {
    void *buf;
    size_t size;
} image_t;

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    image_t *im = udata;
    void *p = realloc(im->buf, size ? size : 1);
    if (p) im->buf = p, im->size = size;
    return p;
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    image_t *im = udata;
    if (ptr != im->buf) return NULL; /* the core driver has one buffer: ours */
    void *p = realloc(ptr, size ? size : 1);
    if (p) im->buf = p, im->size = size;
    return p;
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                          void *udata)
{
    (void)op;
    (void)udata;
    return memcpy(dest, src, size);
}

/* Called when the file closes: the buffer stays ours, freed after writing. */
static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    image_t *im = udata;
    if (ptr && ptr != im->buf) free(ptr);
    return 0;
}

static void *image_udata_copy(void *udata) { return udata; }
static herr_t image_udata_free(void *udata)
{
    (void)udata;
    return 0;
}

/* File access properties: core driver growing by `increment` bytes, no
 * backing store, buffer in *im, 1.8 object headers (and 1.10 features up to
 * `newest`). */
static hid_t image_fapl(io_file_err_t *e, image_t *im, size_t increment, H5F_libver_t newest)
{
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      image_udata_copy, image_udata_free, im};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, newest) < 0) {
        close_id(fapl, H5Pclose);
        io_file_fail(e, "cannot set up HDF5 file access properties");
        return -1;
    }
    return fapl;
}

/* The length of the closed image: the end-of-file address in its superblock
 * (version 2 or 3: signature 8, version, offset and length sizes, flags,
 * then base, extension and end-of-file addresses of 8 bytes each). */
static int image_length(io_file_err_t *e, const image_t *im, size_t *len)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = im->buf;
    if (!b || im->size < 48 || memcmp(b, sig, 8) || (b[8] != 2 && b[8] != 3) || b[9] != 8)
        return io_file_fail(e, "internal error: unexpected in-memory HDF5 image (superblock): "
                            "nothing was written; report this with the HDF5 version");
    uint64_t base = 0, eof = 0;
    for (int i = 7; i >= 0; i--) {
        base = (base << 8) | b[12 + i];
        eof = (eof << 8) | b[28 + i];
    }
    if (base != 0 || eof < 48 || eof > im->size)
        return io_file_fail(e, "internal error: in-memory HDF5 image ends at %llu of %zu bytes: "
                            "nothing was written; report this with the HDF5 version",
                            (unsigned long long)eof, im->size);
    *len = (size_t)eof;
    return 0;
}

/* ------------------------------------------------------------------------
 * Writing and opening. */

struct h5_mem_file {
    io_out_t out;  /* the temporary beside the final name */
    image_t im;    /* the file's bytes (the callbacks hold its address) */
    hid_t fapl, file;
};

h5_mem_file_t *h5_mem_create(const char *path, size_t increment, hid_t fcpl, int v110,
                             io_file_err_t *e)
{
    h5_mem_file_t *m = calloc(1, sizeof *m);
    if (!m) {
        io_file_fail(e, "out of memory");
        return NULL;
    }
    m->fapl = m->file = -1;
    /* the temporary first: a missing directory or no permission fails before
     * any work */
    if (io_out_open(&m->out, path, 0644, e)) {
        free(m);
        return NULL;
    }
    m->fapl = image_fapl(e, &m->im, increment, v110 ? H5F_LIBVER_V110 : H5F_LIBVER_V18);
    if (m->fapl < 0) {
        h5_mem_abort(m);
        return NULL;
    }
    /* HDF5 first opens an existing file of that name to see whether it is
     * already open (reading it whole under the core driver): the in-memory
     * file gets a name that is never on disk. */
    char mem_name[PATH_MAX + 16];
    snprintf(mem_name, sizeof mem_name, "%s.in-memory", m->out.tmp);
    m->file = H5Fcreate(mem_name, H5F_ACC_TRUNC, fcpl, m->fapl);
    if (m->file < 0) {
        io_file_fail(e, "HDF5 cannot create the file in memory (out of memory?)");
        h5_mem_abort(m);
        return NULL;
    }
    return m;
}

hid_t h5_mem_file(const h5_mem_file_t *m) { return m->file; }

int h5_mem_finish(h5_mem_file_t *m, io_pending_t *p, io_file_err_t *e)
{
    herr_t closed = H5Fclose(m->file);
    m->file = -1;
    size_t len = 0;
    int rc = -1;
    if (closed < 0)
        io_file_fail(e, "HDF5 cannot finish the file in memory (out of memory?)");
    else if (image_length(e, &m->im, &len) == 0 && io_out_write(&m->out, m->im.buf, len, e) == 0)
        rc = p ? io_out_park(&m->out, p, e) : io_out_commit(&m->out, e);
    h5_mem_abort(m); /* removes the temporary unless it was parked or committed */
    return rc;
}

void h5_mem_abort(h5_mem_file_t *m)
{
    if (!m) return;
    close_id(m->file, H5Fclose);
    close_id(m->fapl, H5Pclose);
    free(m->im.buf);
    io_out_abort(&m->out);
    free(m);
}

static int atomic_write(const char *path, size_t increment, hid_t fcpl, int v110,
                        h5_atomic_fill_fn fill, const void *arg, io_file_err_t *e)
{
    h5_mem_file_t *m = h5_mem_create(path, increment, fcpl, v110, e);
    if (!m) return -1;
    if (fill(m->file, arg, e)) {
        h5_mem_abort(m);
        return -1;
    }
    return h5_mem_finish(m, NULL, e);
}

int h5_atomic_write(const char *path, size_t increment, hid_t fcpl, h5_atomic_fill_fn fill,
                   const void *arg, io_file_err_t *e)
{
    return atomic_write(path, increment, fcpl, 0, fill, arg, e);
}

int h5_atomic_write_v110(const char *path, size_t increment, h5_atomic_fill_fn fill,
                         const void *arg, io_file_err_t *e)
{
    return atomic_write(path, increment, H5P_DEFAULT, 1, fill, arg, e);
}

hid_t h5_open_input(const char *what, hid_t fapl, struct stat *st, int *fd, io_file_err_t *e)
{
    struct stat checked, opened;
    if (fd) *fd = -1;
    if (io_check_input(e, what, 1, &checked)) return -1;
    const hid_t f = H5Fopen(e->path, H5F_ACC_RDONLY, fapl);
    if (f < 0) return -1;
    /* the file HDF5 opened must be the one checked (not one renamed over it
     * meanwhile): its descriptor, where the driver has one (sec2) */
    void *handle = NULL;
    if (H5Fget_vfd_handle(f, fapl, &handle) >= 0 && handle) {
        if (fstat(*(int *)handle, &opened) != 0 || !S_ISREG(opened.st_mode) ||
            opened.st_dev != checked.st_dev || opened.st_ino != checked.st_ino) {
            H5Fclose(f);
            io_file_fail(e, "was replaced while it was being opened: make sure nothing rewrites "
                         "the %s, then retry", what);
            return -1;
        }
        checked = opened;
        if (fd) *fd = *(int *)handle;
    }
    if (st) *st = checked;
    return f;
}

hid_t h5_atomic_open(const char *path, const char *unreadable, io_file_err_t *e)
{
    (void)path; /* the same as e->path, where messages take it from */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        close_id(fapl, H5Pclose);
        io_file_fail(e, "cannot set up HDF5 file access properties");
        return -1;
    }
    hid_t f = h5_open_input("HDF5", fapl, NULL, NULL, e);
    H5Pclose(fapl);
    if (f < 0 && !e->failed) io_file_fail(e, "%s", unreadable);
    return f;
}
