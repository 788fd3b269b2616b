/* HDF5 files built in memory and committed atomically (see h5_atomic.h). */
#include "io/h5_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

static int dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash) n = snprintf(out, len, ".");
    else if (slash == path) n = snprintf(out, len, "/");
    else n = snprintf(out, len, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Creates (truncates) the temporary. Returns the descriptor. */
static int open_tmp(io_file_err_t *e, const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int en = errno;
        char dir[4096];
        if (dir_of(tmp, dir, sizeof dir)) snprintf(dir, sizeof dir, "its directory");
        if (en == ENOENT || en == ENOTDIR || en == EACCES || en == EPERM || en == EROFS)
            io_file_fail(e, "cannot create the temporary file %s: %s: check that the directory "
                         "%s exists and is writable", tmp, strerror(en), dir);
        else
            io_file_fail(e, "cannot create the temporary file %s: %s: remove what is there or "
                         "free space in %s", tmp, strerror(en), dir);
    }
    return fd;
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
 * backing store, buffer in *im, 1.8 object headers. */
static hid_t image_fapl(io_file_err_t *e, image_t *im, size_t increment)
{
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      image_udata_copy, image_udata_free, im};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
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

/* Writes len bytes to fd (the temporary), fsyncs, closes it, renames it
 * onto path and fsyncs the directory. Closes fd in every case. */
static int commit_image(io_file_err_t *e, int fd, const char *tmp, const char *path,
                        const void *buf, size_t len)
{
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        size_t chunk = left < ((size_t)1 << 30) ? left : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int en = w < 0 ? errno : EIO;
            close(fd);
            return io_file_fail(e, "writing %s failed after %zu of %zu bytes: %s: the disk may "
                                "be full or the quota exceeded; free space and retry", tmp,
                                len - left, len, strerror(en));
        }
        p += w, left -= (size_t)w;
    }
    if (fsync(fd)) {
        int en = errno;
        close(fd);
        return io_file_fail(e, "fsync of %s failed: %s: the disk may be full or failing; free "
                            "space and retry", tmp, strerror(en));
    }
    if (close(fd)) return io_file_fail(e, "closing %s failed: %s", tmp, strerror(errno));
    if (rename(tmp, path))
        return io_file_fail(e, "cannot rename %s onto it: %s", tmp, strerror(errno));
    char dir[4096];
    if (dir_of(path, dir, sizeof dir)) return 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return 0; /* renamed; the directory cannot be opened to sync */
    int rc = fsync(dfd);
    int en = errno;
    close(dfd);
    if (rc && en != EINVAL && en != EROFS)
        return io_file_fail(e, "written, but fsync of the directory %s failed: %s: the rename "
                            "may not survive a crash", dir, strerror(en));
    return 0;
}

/* ------------------------------------------------------------------------
 * Writing and opening. */

int h5_atomic_write(const char *path, size_t increment, hid_t fcpl, h5_atomic_fill_fn fill,
                   const void *arg, io_file_err_t *e)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return io_file_fail(e, "path too long");
    int fd = open_tmp(e, tmp);
    if (fd < 0) return -1;
    image_t im = {NULL, 0};
    hid_t fapl = image_fapl(e, &im, increment), file = -1;
    if (fapl < 0) goto out;
    /* HDF5 first opens an existing file of that name to see whether it is
     * already open (reading it whole under the core driver): the in-memory
     * file gets a name that is never on disk. */
    char mem_name[4200];
    snprintf(mem_name, sizeof mem_name, "%s.in-memory", tmp);
    file = H5Fcreate(mem_name, H5F_ACC_TRUNC, fcpl, fapl);
    if (file < 0) {
        io_file_fail(e, "HDF5 cannot create the file in memory (out of memory?)");
        goto out;
    }
    if (fill(file, arg, e)) goto out;
    herr_t closed = H5Fclose(file);
    file = -1;
    if (closed < 0) {
        io_file_fail(e, "HDF5 cannot finish the file in memory (out of memory?)");
        goto out;
    }
    size_t len = 0;
    if (image_length(e, &im, &len)) goto out;
    int committed = commit_image(e, fd, tmp, path, im.buf, len);
    fd = -1; /* closed by commit_image */
    if (committed) goto out;
    H5Pclose(fapl);
    free(im.buf);
    return 0;
out:
    close_id(file, H5Fclose);
    close_id(fapl, H5Pclose);
    free(im.buf);
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

hid_t h5_atomic_open(const char *path, const char *unreadable, io_file_err_t *e)
{
    struct stat sb;
    if (stat(path, &sb)) {
        io_file_fail(e, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        io_file_fail(e, "not a regular file");
        return -1;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        io_file_fail(e, "cannot open: %s", strerror(errno));
        return -1;
    }
    close(fd);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        close_id(fapl, H5Pclose);
        io_file_fail(e, "cannot set up HDF5 file access properties");
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) io_file_fail(e, "%s", unreadable);
    return f;
}
