#include "io/io_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

char *io_path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* mkdir of one component; an existing one must be a directory (and, with
 * no_link, not a symbolic link to one). */
static int make_one_dir(const char *path, int no_link)
{
    if (mkdir(path, 0777) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if ((no_link ? lstat(path, &st) : stat(path, &st)) != 0) return -1;
    if (S_ISDIR(st.st_mode)) return 0;
    errno = no_link && S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
    return -1;
}

/* Creates the components of path[0..] from the one after `from` on (from:
 * the length of a prefix known to exist); no_link as in make_one_dir. */
static int make_components(char *path, size_t from, int no_link, char *failed, size_t failed_len)
{
    for (char *p = path + from + 1;; p++) {
        if (*p != '/' && *p) continue;
        const char end = *p;
        *p = '\0';
        if (p > path && p[-1] != '/' && make_one_dir(path, no_link) != 0) {
            const int e = errno;
            snprintf(failed, failed_len, "%s", path);
            errno = e;
            return -1;
        }
        if (!end) return 0;
        *p = '/';
    }
}

int io_make_dirs(const char *dir, char *failed, size_t failed_len)
{
    return io_make_dirs_below(dir, "", failed, failed_len);
}

int io_make_dirs_below(const char *top, const char *sub, char *failed, size_t failed_len)
{
    char path[PATH_MAX];
    if (!top[0]) {
        snprintf(failed, failed_len, "%s", top);
        errno = ENOENT;
        return -1;
    }
    const int n = snprintf(path, sizeof path, "%s%s%s", top, sub[0] ? "/" : "", sub);
    if (n < 0 || n >= (int)sizeof path) {
        snprintf(failed, failed_len, "%s", top);
        errno = ENAMETOOLONG;
        return -1;
    }
    const size_t top_len = strlen(top);
    path[top_len] = '\0';
    if (make_components(path, 0, 0, failed, failed_len) != 0) return -1;
    if (!sub[0]) return 0;
    path[top_len] = '/';
    return make_components(path, top_len, 1, failed, failed_len);
}

int io_make_dirs_fail(const char *failed, const char *setting, char *err, size_t errlen)
{
    const int e = errno;
    if (e == ELOOP)
        return io_fail(err, errlen, "%s: is a symbolic link where mimae keeps a directory of its "
                       "own: remove the link (mimae writes nothing through links) or set %s to "
                       "another place", failed, setting);
    if (e == ENOTDIR)
        return io_fail(err, errlen, "%s: exists and is not a directory: move it away or set %s "
                       "to another place", failed, setting);
    return io_fail(err, errlen, "%s: cannot create the directory (%s): set %s to a writable "
                   "place", failed, strerror(e), setting);
}

/* ------------------------------------------------------------------ inputs */

void io_file_id_of(const struct stat *st, io_file_id_t *id)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
}

/* What a file that is not a regular one is, for messages. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

int io_check_input(io_file_err_t *e, const char *what, off_t min_bytes, struct stat *st)
{
    struct stat local;
    if (!st) st = &local;
    if (stat(e->path, st) != 0)
        return io_file_fail(e, "cannot read the %s (%s): check the path", what, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return io_file_fail(e, "is %s, not a regular file: give the %s file itself",
                            file_kind(st->st_mode), what);
    if (st->st_size < min_bytes)
        return io_file_fail(e, "is %lld bytes long, too short to be a %s file (truncated or "
                            "empty?): check the file", (long long)st->st_size, what);
    return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int io_open_input(io_file_err_t *e, const char *what, off_t min_bytes, struct stat *st)
{
    struct stat checked, opened;
    if (io_check_input(e, what, min_bytes, &checked)) return -1;
    const int fd = open(e->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return io_file_fail(e, "cannot open the %s (%s): check the file's permissions",
                                    what, strerror(errno));
    if (fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode) || !same_file(&checked, &opened)) {
        close(fd);
        return io_file_fail(e, "was replaced while it was being opened: make sure nothing "
                            "rewrites the %s, then retry", what);
    }
    /* regular files never block; later reads should not see EAGAIN either */
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (st) *st = opened;
    return fd;
}

FILE *io_fopen_input(io_file_err_t *e, const char *what, off_t min_bytes)
{
    const int fd = io_open_input(e, what, min_bytes, NULL);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        io_file_fail(e, "cannot read the %s (%s)", what, strerror(errno));
        close(fd);
    }
    return f;
}

int io_check_unchanged(io_file_err_t *e, int fd, const io_file_id_t *id)
{
    struct stat now;
    const char *advice = "restore it and rerun; the last checkpoint is intact";
    if (stat(e->path, &now) != 0) {
        io_file_fail(e, "changed while the run read it (%s): %s", strerror(errno), advice);
        return IO_CHANGED;
    }
    if (now.st_dev != id->dev || now.st_ino != id->ino) {
        io_file_fail(e, "changed while the run read it (replaced by another file of %lld bytes): "
                     "%s", (long long)now.st_size, advice);
        return IO_CHANGED;
    }
    if (fd >= 0 && fstat(fd, &now) != 0) {
        io_file_fail(e, "changed while the run read it (%s): %s", strerror(errno), advice);
        return IO_CHANGED;
    }
    if (now.st_size != id->size) {
        io_file_fail(e, "changed while the run read it (size %lld -> %lld): %s",
                     (long long)id->size, (long long)now.st_size, advice);
        return IO_CHANGED;
    }
    if (now.st_mtim.tv_sec != id->mtime.tv_sec || now.st_mtim.tv_nsec != id->mtime.tv_nsec) {
        io_file_fail(e, "changed while the run read it (rewritten in place, size %lld): %s",
                     (long long)now.st_size, advice);
        return IO_CHANGED;
    }
    return 0;
}

/* ----------------------------------------------------------------- outputs */

/* The directory part of path ("." or "/" when it has none). */
static int dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash) n = snprintf(out, len, ".");
    else if (slash == path) n = snprintf(out, len, "/");
    else n = snprintf(out, len, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A final path that is a symbolic link is refused (see io_out_open). */
static int refuse_link(const char *path, io_file_err_t *e)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return io_file_fail(e, "is a symbolic link: mimae does not write through or over links "
                            "(its data would not land where the link points); remove the link "
                            "or write to the target's directory");
    return 0;
}

/* PATH.tmp-<pid>-<random>: unpredictable, so nobody can plant a link there
 * in advance (creation is exclusive anyway). */
static int temp_name(io_out_t *out, const char *path, io_file_err_t *e)
{
    static unsigned counter;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        r = (uint32_t)t.tv_nsec ^ (uint32_t)t.tv_sec * 2654435761u;
    }
    r ^= ++counter * 0x9e3779b9u;
    const int n = snprintf(out->tmp, sizeof out->tmp, "%s.tmp-%ld-%08x", path, (long)getpid(), r);
    if (n < 0 || (size_t)n >= sizeof out->tmp)
        return io_file_fail(e, "path too long for a temporary beside it: use a shorter path");
    return 0;
}

static void out_init(io_out_t *out, const char *path)
{
    out->path = path;
    out->tmp[0] = '\0';
    out->fd = -1;
    out->fp = NULL;
}

/* "cannot create the temporary file": why, and what to do. */
static int create_failed(const io_out_t *out, int en, io_file_err_t *e)
{
    char dir[PATH_MAX];
    if (dir_of(out->path, dir, sizeof dir)) snprintf(dir, sizeof dir, "its directory");
    if (en == ENOENT || en == ENOTDIR || en == EACCES || en == EPERM || en == EROFS)
        return io_file_fail(e, "cannot create the temporary file %s: %s: check that the "
                            "directory %s exists and is writable", out->tmp, strerror(en), dir);
    return io_file_fail(e, "cannot create the temporary file %s: %s: free space or file "
                        "handles in %s", out->tmp, strerror(en), dir);
}

int io_out_open(io_out_t *out, const char *path, mode_t mode, io_file_err_t *e)
{
    out_init(out, path);
    if (refuse_link(path, e)) return -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        if (temp_name(out, path, e)) return -1;
        out->fd = open(out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (out->fd >= 0) return 0;
        if (errno != EEXIST) break;
    }
    const int en = errno;
    create_failed(out, en, e);
    out->tmp[0] = '\0'; /* not ours: never removed */
    return -1;
}

FILE *io_out_stream(io_out_t *out, io_file_err_t *e)
{
    if (out->fp) return out->fp;
    out->fp = fdopen(out->fd, "w");
    if (!out->fp) io_file_fail(e, "cannot write the temporary file %s: %s", out->tmp,
                               strerror(errno));
    return out->fp;
}

int io_out_adopt(io_out_t *out, const struct stat *written, io_file_err_t *e)
{
    struct stat st;
    out->fd = open(out->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (out->fd < 0 || fstat(out->fd, &st) != 0 || !same_file(&st, written))
        return io_file_fail(e, "the temporary file %s is not the file written (replaced "
                            "meanwhile?): nothing was written; retry", out->tmp);
    return 0;
}

void io_out_abort(io_out_t *out)
{
    if (out->fp) fclose(out->fp);
    else if (out->fd >= 0) close(out->fd);
    out->fp = NULL;
    out->fd = -1;
    /* unlink removes a name, never a link's target */
    if (out->tmp[0]) unlink(out->tmp);
    out->tmp[0] = '\0';
}

/* fsync of path's directory, so that a rename survives a crash (EINVAL and
 * EROFS: file systems that cannot, which is not an error). */
static int sync_dir(const char *path, io_file_err_t *e)
{
    char dir[PATH_MAX];
    if (dir_of(path, dir, sizeof dir)) return 0;
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return 0; /* renamed; the directory cannot be opened to sync */
    const int rc = fsync(dfd), en = errno;
    close(dfd);
    if (rc && en != EINVAL && en != EROFS)
        return io_file_fail(e, "written, but fsync of the directory %s failed: %s: the rename "
                            "may not survive a crash", dir, strerror(en));
    return 0;
}

/* Flushes, fsyncs and closes out's temporary, its identity in *st. 0, or
 * -1 after io_file_fail with the temporary removed (a full disk). */
static int out_finish(io_out_t *out, struct stat *st, io_file_err_t *e)
{
    int en = 0;
    if (out->fp && (fflush(out->fp) != 0 || ferror(out->fp))) en = errno ? errno : EIO;
    if (!en && fsync(out->fd) != 0) en = errno;
    if (!en && fstat(out->fd, st) != 0) en = errno;
    const int closed = out->fp ? fclose(out->fp) : close(out->fd);
    out->fp = NULL;
    out->fd = -1;
    if (!en && closed != 0) en = errno;
    if (!en) return 0;
    io_file_fail(e, "writing the temporary file %s failed: %s: the disk may be full or the "
                 "quota exceeded; free space and retry", out->tmp, strerror(en));
    io_out_abort(out);
    return -1;
}

int io_out_commit(io_out_t *out, io_file_err_t *e)
{
    struct stat ours, named;
    if (out_finish(out, &ours, e)) return -1;
    if (lstat(out->tmp, &named) != 0 || !S_ISREG(named.st_mode) || !same_file(&ours, &named)) {
        io_file_fail(e, "the temporary file %s was replaced while it was written: nothing was "
                     "written; make sure nothing else writes in that directory", out->tmp);
        out->tmp[0] = '\0'; /* whatever is there now is not ours to remove */
        return -1;
    }
    /* rename replaces the name: were a link put at the final path after
     * io_out_open, the link itself is replaced, its target never written */
    if (rename(out->tmp, out->path) != 0) {
        io_file_fail(e, "cannot rename %s onto it: %s", out->tmp, strerror(errno));
        io_out_abort(out);
        return -1;
    }
    out->tmp[0] = '\0';
    return sync_dir(out->path, e);
}

int io_out_park(io_out_t *out, io_pending_t *p, io_file_err_t *e)
{
    p->path = p->tmp = NULL;
    if (out_finish(out, &p->st, e)) return -1;
    p->path = strdup(out->path);
    p->tmp = strdup(out->tmp);
    if (!p->path || !p->tmp) {
        io_file_fail(e, "out of memory");
        io_pending_free(p);
        io_out_abort(out);
        return -1;
    }
    out->tmp[0] = '\0'; /* p owns it now */
    return 0;
}

int io_pending_commit(io_pending_t *p, io_file_err_t *e)
{
    if (!p->tmp) return io_file_fail(e, "internal error: nothing to commit");
    io_out_t out;
    out_init(&out, p->path);
    if (snprintf(out.tmp, sizeof out.tmp, "%s", p->tmp) >= (int)sizeof out.tmp)
        return io_file_fail(e, "path too long for a temporary beside it: use a shorter path");
    free(p->tmp);
    p->tmp = NULL; /* from here on out owns it: removed on failure */
    if (io_out_adopt(&out, &p->st, e)) {
        if (out.fd >= 0) close(out.fd);
        return -1; /* not the file written: not ours to remove */
    }
    return io_out_commit(&out, e);
}

void io_pending_free(io_pending_t *p)
{
    if (p->tmp) unlink(p->tmp);
    free(p->tmp);
    free(p->path);
    p->tmp = p->path = NULL;
}

int io_out_write(io_out_t *out, const void *data, size_t len, io_file_err_t *e)
{
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        const size_t chunk = left < ((size_t)1 << 30) ? left : ((size_t)1 << 30);
        const ssize_t w = write(out->fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return io_file_fail(e, "writing %s failed after %zu of %zu bytes: %s: the disk may "
                                "be full or the quota exceeded; free space and retry", out->tmp,
                                len - left, len, strerror(w < 0 ? errno : EIO));
        p += w, left -= (size_t)w;
    }
    return 0;
}

int io_write_file(const char *path, mode_t mode, const void *data, size_t len, io_file_err_t *e)
{
    io_out_t out;
    if (io_out_open(&out, path, mode, e)) return -1;
    if (io_out_write(&out, data, len, e) == 0 && io_out_commit(&out, e) == 0) return 0;
    io_out_abort(&out);
    return -1;
}

FILE *io_create_new(const char *path, mode_t mode, io_file_err_t *e)
{
    const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        io_file_fail(e, "cannot create it (%s): remove what is there", strerror(errno));
        if (fd >= 0) close(fd);
    }
    return f;
}

FILE *io_open_append(const char *path, mode_t mode, io_file_err_t *e)
{
    /* O_NONBLOCK: a FIFO there fails instead of waiting for a reader */
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                        mode);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int en = fd < 0 ? errno : EINVAL;
        if (fd >= 0) close(fd);
        io_file_fail(e, "cannot append to it (%s): remove what is there (a link or a "
                     "special file is not written through)",
                     en == ELOOP ? "a symbolic link" : strerror(en));
        return NULL;
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "a");
    if (!f) {
        io_file_fail(e, "cannot append to it (%s)", strerror(errno));
        close(fd);
    }
    return f;
}
