/* Checkpoints in HDF5 (layout in checkpoint.h).
 *
 * Writing: the file is built in memory (see "Files" below for why HDF5
 * itself never writes to disk), written to PATH.tmp-<pid>, fsynced, renamed
 * onto PATH, and then the directory is fsynced; any failure removes the
 * temporary and leaves PATH as it was. Saving needs memory for one copy of
 * the file (parameters and both moments) on the writing process.
 *
 * Reading: read_header checks format and version and reads the stored config
 * and training position; read_tensors reads every tensor in checksum order,
 * checking its name, type and shape, and compares the CRC-32 with the stored
 * one. checkpoint_load reads into temporary blocks and copies into the model
 * only when all of that succeeded, so a failed load leaves the model as it
 * was. */
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/config_fields.h"

#define GROUP_COUNT 3
static const char *const group_names[GROUP_COUNT] = {"params", "adam_m", "adam_v"};

#define ADVICE_CORRUPT "the file is corrupt; delete it to resume from the previous checkpoint"
#define ADVICE_CONFIG \
    "this checkpoint belongs to another model config: use a fresh run directory or the same config"

/* ------------------------------------------------------------------------
 * Errors: the first failure wins, formatted as "<path>: <what>". */

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} ctx_t;

__attribute__((format(printf, 2, 3))) static int fail(ctx_t *c, const char *fmt, ...)
{
    if (c->failed) return -1;
    c->failed = 1;
    if (!c->err || c->errlen == 0) return -1;
    int n = snprintf(c->err, c->errlen, "%s: ", c->path ? c->path : "(null)");
    if (n < 0) n = 0;
    if ((size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

/* ------------------------------------------------------------------------
 * Files. HDF5 1.10 cannot recover from an I/O error while writing: a failed
 * H5Dclose/H5Fclose leaves a half-closed file that crashes the library's
 * exit handler (and any later close). So HDF5 never writes to disk here: the
 * file is built in memory (core driver, no backing store, its buffer owned
 * through file-image callbacks so no second copy is made), and the finished
 * image is written with write(2) to PATH.tmp-<pid>, fsynced, renamed onto
 * PATH, and the directory fsynced. Disk errors are then ordinary errno
 * failures; the temporary is removed and PATH left as it was. */

static int dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash) n = snprintf(out, len, ".");
    else if (slash == path) n = snprintf(out, len, "/");
    else n = snprintf(out, len, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Creates (truncates) the temporary first, so that a missing directory or a
 * permission problem fails at once, with errno. Returns the descriptor. */
static int open_tmp(ctx_t *c, const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        char dir[4096];
        if (dir_of(tmp, dir, sizeof dir)) snprintf(dir, sizeof dir, "its directory");
        if (e == ENOENT || e == ENOTDIR || e == EACCES || e == EPERM || e == EROFS)
            fail(c, "cannot create the temporary file %s: %s: check that the directory %s "
                 "exists and is writable", tmp, strerror(e), dir);
        else
            fail(c, "cannot create the temporary file %s: %s: remove what is there or free "
                 "space in %s", tmp, strerror(e), dir);
    }
    return fd;
}

/* The in-memory HDF5 file image. */
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
 * backing store, buffer in *im; 1.8 object headers (h5py and HDF5 >= 1.8
 * read them; large attributes go to dense storage instead of failing at
 * 64 KiB). */
static hid_t image_fapl(ctx_t *c, image_t *im, size_t increment)
{
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      image_udata_copy, image_udata_free, im};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
        close_id(fapl, H5Pclose);
        fail(c, "cannot set up HDF5 file access properties");
        return -1;
    }
    return fapl;
}

/* The length of the closed image: the end-of-file address in its superblock
 * (version 2 or 3: signature 8, version, offset and length sizes, flags,
 * then base, extension and end-of-file addresses of 8 bytes each). */
static int image_length(ctx_t *c, const image_t *im, size_t *len)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = im->buf;
    if (!b || im->size < 48 || memcmp(b, sig, 8) || (b[8] != 2 && b[8] != 3) || b[9] != 8)
        return fail(c, "internal error: unexpected in-memory HDF5 image (superblock): nothing "
                    "was written; report this with the HDF5 version");
    uint64_t base = 0, eof = 0;
    for (int i = 7; i >= 0; i--) {
        base = (base << 8) | b[12 + i];
        eof = (eof << 8) | b[28 + i];
    }
    if (base != 0 || eof < 48 || eof > im->size)
        return fail(c, "internal error: in-memory HDF5 image ends at %llu of %zu bytes: "
                    "nothing was written; report this with the HDF5 version",
                    (unsigned long long)eof, im->size);
    *len = (size_t)eof;
    return 0;
}

/* Writes len bytes to fd (the temporary), fsyncs, closes it, renames it
 * onto path and fsyncs the directory. Closes fd in every case. */
static int commit_image(ctx_t *c, int fd, const char *tmp, const char *path, const void *buf,
                        size_t len)
{
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        size_t chunk = left < ((size_t)1 << 30) ? left : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return fail(c, "writing %s failed after %zu of %zu bytes: %s: the disk may be full "
                        "or the quota exceeded; free space and retry", tmp, len - left, len,
                        strerror(e));
        }
        p += w, left -= (size_t)w;
    }
    if (fsync(fd)) {
        int e = errno;
        close(fd);
        return fail(c, "fsync of %s failed: %s: the disk may be full or failing; free space "
                    "and retry", tmp, strerror(e));
    }
    if (close(fd)) return fail(c, "closing %s failed: %s", tmp, strerror(errno));
    if (rename(tmp, path)) return fail(c, "cannot rename %s onto it: %s", tmp, strerror(errno));
    char dir[4096];
    if (dir_of(path, dir, sizeof dir)) return 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return 0; /* renamed; the directory cannot be opened to sync */
    int rc = fsync(dfd);
    int e = errno;
    close(dfd);
    if (rc && e != EINVAL && e != EROFS)
        return fail(c, "written, but fsync of the directory %s failed: %s: the rename may not "
                    "survive a crash", dir, strerror(e));
    return 0;
}

/* ------------------------------------------------------------------------
 * Attributes. */

static hid_t vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static int write_attr(ctx_t *c, hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                      const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR), a = -1;
    int rc = -1;
    if (space >= 0) a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && H5Awrite(a, mtype, value) >= 0) rc = 0;
    if (a >= 0 && H5Aclose(a) < 0) rc = -1;
    close_id(space, H5Sclose);
    if (rc) return fail(c, "cannot write attribute %s (out of memory?)", name);
    return 0;
}

static int write_attr_string(ctx_t *c, hid_t loc, const char *name, const char *value)
{
    hid_t t = vlen_string_type();
    if (t < 0) return fail(c, "cannot make an HDF5 string type for attribute %s", name);
    int rc = write_attr(c, loc, name, t, t, &value);
    H5Tclose(t);
    return rc;
}

static int write_attr_i64(ctx_t *c, hid_t loc, const char *name, long v)
{
    long long x = v;
    return write_attr(c, loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &x);
}

/* Opens attribute `name` and checks it is a scalar (or one element) of the
 * given class. Returns the attribute or -1 with a message. */
static hid_t open_attr(ctx_t *c, hid_t loc, const char *name, H5T_class_t cls,
                       const char *what)
{
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) {
        fail(c, "cannot read attribute %s: %s", name, ADVICE_CORRUPT);
        return -1;
    }
    if (ex == 0) {
        fail(c, "attribute %s is missing: not a complete %s file (written by another "
             "program or version?)", name, CHECKPOINT_FORMAT);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) {
        fail(c, "cannot open attribute %s: %s", name, ADVICE_CORRUPT);
        return -1;
    }
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    H5T_class_t got = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    close_id(t, H5Tclose);
    close_id(s, H5Sclose);
    if (got != cls || n != 1) {
        H5Aclose(a);
        fail(c, "attribute %s is not a single %s: %s", name, what, ADVICE_CORRUPT);
        return -1;
    }
    return a;
}

static int read_attr_number(ctx_t *c, hid_t loc, const char *name, H5T_class_t cls,
                            hid_t mtype, void *out)
{
    hid_t a = open_attr(c, loc, name, cls, cls == H5T_INTEGER ? "integer" : "number");
    if (a < 0) return -1;
    herr_t st = H5Aread(a, mtype, out);
    H5Aclose(a);
    if (st < 0) return fail(c, "cannot read attribute %s (out of range?): %s", name,
                            ADVICE_CORRUPT);
    return 0;
}

/* A string attribute (variable or fixed length) into buf. */
static int read_attr_string(ctx_t *c, hid_t loc, const char *name, char *buf, size_t len)
{
    hid_t a = open_attr(c, loc, name, H5T_STRING, "string");
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    int rc = -1;
    /* HDF5 converts no strings between character sets: read in the file's */
    H5T_cset_t cset = ft >= 0 ? H5Tget_cset(ft) : H5T_CSET_ERROR;
    if (ft >= 0 && mt >= 0 && cset != H5T_CSET_ERROR && H5Tset_cset(mt, cset) >= 0) {
        htri_t var = H5Tis_variable_str(ft);
        if (var > 0) {
            char *s = NULL;
            if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &s) >= 0) {
                snprintf(buf, len, "%s", s ? s : "");
                rc = 0;
            }
            if (s) H5free_memory(s);
        } else if (var == 0) {
            size_t n = H5Tget_size(ft);
            char *tmp = n > 0 ? calloc(n + 1, 1) : NULL;
            if (tmp && H5Tset_size(mt, n + 1) >= 0 && H5Aread(a, mt, tmp) >= 0) {
                snprintf(buf, len, "%s", tmp);
                rc = 0;
            }
            free(tmp);
        }
    }
    close_id(mt, H5Tclose);
    close_id(ft, H5Tclose);
    H5Aclose(a);
    if (rc) return fail(c, "cannot read string attribute %s: %s", name, ADVICE_CORRUPT);
    return 0;
}

/* ------------------------------------------------------------------------
 * The config as "config.<section>.<key>" attributes. */

#define CFG_PTR(type, f, cfg) ((type *)((char *)(cfg) + (f)->offset))

static void config_attr_name(const config_field_t *f, char *buf, size_t len)
{
    snprintf(buf, len, "config.%s.%s", f->section, f->key);
}

static int write_config(ctx_t *c, hid_t loc, const mimae_config_t *cfg)
{
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char name[128];
        config_attr_name(f, name, sizeof name);
        int rc = 0;
        switch (f->type) {
        case FIELD_INT:
            rc = write_attr(c, loc, name, H5T_STD_I32LE, H5T_NATIVE_INT,
                            CFG_PTR(const int, f, cfg));
            break;
        case FIELD_LONG:
            rc = write_attr(c, loc, name, H5T_STD_I64LE, H5T_NATIVE_LONG,
                            CFG_PTR(const long, f, cfg));
            break;
        case FIELD_FLOAT:
            rc = write_attr(c, loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                            CFG_PTR(const float, f, cfg));
            break;
        case FIELD_DOUBLE:
            rc = write_attr(c, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                            CFG_PTR(const double, f, cfg));
            break;
        case FIELD_ENUM: {
            char value[64];
            config_field_format(f, cfg, value, sizeof value);
            rc = write_attr_string(c, loc, name, value);
            break;
        }
        }
        if (rc) return -1;
    }
    return 0;
}

static int read_config(ctx_t *c, hid_t loc, mimae_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char name[128];
        config_attr_name(f, name, sizeof name);
        int rc = 0;
        switch (f->type) {
        case FIELD_INT:
            rc = read_attr_number(c, loc, name, H5T_INTEGER, H5T_NATIVE_INT,
                                  CFG_PTR(int, f, cfg));
            break;
        case FIELD_LONG:
            rc = read_attr_number(c, loc, name, H5T_INTEGER, H5T_NATIVE_LONG,
                                  CFG_PTR(long, f, cfg));
            break;
        case FIELD_FLOAT:
            rc = read_attr_number(c, loc, name, H5T_FLOAT, H5T_NATIVE_FLOAT,
                                  CFG_PTR(float, f, cfg));
            break;
        case FIELD_DOUBLE:
            rc = read_attr_number(c, loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE,
                                  CFG_PTR(double, f, cfg));
            break;
        case FIELD_ENUM: {
            char value[64];
            char msg[256];
            rc = read_attr_string(c, loc, name, value, sizeof value);
            if (rc == 0 && config_field_parse(f, cfg, value, msg, sizeof msg))
                rc = fail(c, "attribute %s: %s", name, msg);
            break;
        }
        }
        if (rc) return -1;
    }
    return 0;
}

static int field_equal(const config_field_t *f, const mimae_config_t *a, const mimae_config_t *b)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_ENUM: return *CFG_PTR(const int, f, a) == *CFG_PTR(const int, f, b);
    case FIELD_LONG: return *CFG_PTR(const long, f, a) == *CFG_PTR(const long, f, b);
    case FIELD_FLOAT:
        return memcmp(CFG_PTR(const float, f, a), CFG_PTR(const float, f, b), sizeof(float)) == 0;
    case FIELD_DOUBLE:
        return memcmp(CFG_PTR(const double, f, a), CFG_PTR(const double, f, b),
                      sizeof(double)) == 0;
    }
    return 0;
}

/* The value as the user would write it: the shortest decimal that reads back
 * to the same float/double (0.07, not 0.0700000003). */
static void display_value(const config_field_t *f, const mimae_config_t *cfg, char *buf,
                          size_t len)
{
    if (f->type == FIELD_FLOAT) {
        const float v = *CFG_PTR(const float, f, cfg);
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtof(buf, NULL) == v) return;
        }
    } else if (f->type == FIELD_DOUBLE) {
        const double v = *CFG_PTR(const double, f, cfg);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) return;
        }
    }
    config_field_format(f, cfg, buf, len);
}

static int compare_config(ctx_t *c, const mimae_config_t *stored, const mimae_config_t *model)
{
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        if (field_equal(f, stored, model)) continue;
        char a[64], b[64];
        display_value(f, stored, a, sizeof a);
        display_value(f, model, b, sizeof b);
        return fail(c, "%s.%s is %s in the checkpoint but %s in this model: %s", f->section,
                    f->key, a, b, ADVICE_CONFIG);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The checksum: CRC-32 over the little-endian float32 bytes of every tensor
 * (params, adam_m, adam_v; model before Q; table order). */

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static uLong crc_floats(uLong crc, const float *x, size_t n)
{
    if (host_is_little_endian()) return crc32_z(crc, (const Bytef *)x, n * sizeof(float));
    unsigned char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++) {
            unsigned char w[4];
            memcpy(w, &x[i], 4);
            buf[4 * i] = w[3], buf[4 * i + 1] = w[2], buf[4 * i + 2] = w[1], buf[4 * i + 3] = w[0];
        }
        crc = crc32_z(crc, buf, 4 * k);
        x += k, n -= k;
    }
    return crc;
}

/* ------------------------------------------------------------------------
 * Saving. */

static int write_tensor(ctx_t *c, hid_t group, const char *gname, const param_info_t *p,
                        const float *base)
{
    hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
    hid_t space = H5Screate_simple(p->ndim, dims, NULL), ds = -1;
    int rc = -1;
    if (space >= 0)
        ds = H5Dcreate2(group, p->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT);
    if (ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                            base + p->offset) >= 0)
        rc = 0;
    if (ds >= 0 && H5Dclose(ds) < 0) rc = -1;
    close_id(space, H5Sclose);
    if (rc) return fail(c, "cannot write dataset /%s/%s (out of memory?)", gname, p->name);
    return 0;
}

int checkpoint_save(const char *path, const mimae_model_t *m, const train_state_t *st,
                    char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ctx_t c = {path, err, errlen, 0};
    if (!path || !m || !st) return fail(&c, "checkpoint_save: path, model and state are required");
    if (st->step != m->step)
        return fail(&c, "train state step %ld differs from the model's step %ld: save the "
                    "model's own step", st->step, m->step);
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return fail(&c, "path too long");

    const param_table_t *tabs[2] = {&m->table, &m->q_table};
    const float *blocks[GROUP_COUNT][2] = {{m->param_mem, m->q_param_mem},
                                           {m->m_mem, m->q_m_mem},
                                           {m->v_mem, m->q_v_mem}};
    uLong crc = crc32_z(0L, Z_NULL, 0);
    size_t data_bytes = 0;
    for (int g = 0; g < GROUP_COUNT; g++)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < tabs[k]->count; i++) {
                const param_info_t *p = &tabs[k]->info[i];
                crc = crc_floats(crc, blocks[g][k] + p->offset, p->count);
                data_bytes += p->count * sizeof(float);
            }

    int fd = open_tmp(&c, tmp);
    if (fd < 0) return -1;
    /* the image grows in steps of ~1/8 of the data (1..64 MiB) */
    size_t increment = data_bytes / 8;
    if (increment < ((size_t)1 << 20)) increment = (size_t)1 << 20;
    if (increment > ((size_t)64 << 20)) increment = (size_t)64 << 20;
    image_t im = {NULL, 0};
    hid_t fapl = image_fapl(&c, &im, increment), file = -1, gcpl = -1;
    if (fapl < 0) goto out;
    /* HDF5 first opens an existing file of that name to see whether it is
     * already open (reading it whole under the core driver): the in-memory
     * file gets a name that is never on disk. */
    char mem_name[4200];
    snprintf(mem_name, sizeof mem_name, "%s.in-memory", tmp);
    file = H5Fcreate(mem_name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        fail(&c, "HDF5 cannot create the file in memory (out of memory?)");
        goto out;
    }
    const int version = CHECKPOINT_FORMAT_VERSION;
    const unsigned long long seed = st->seed;
    const unsigned int sum = (unsigned int)crc;
    if (write_attr_string(&c, file, "format", CHECKPOINT_FORMAT) ||
        write_attr(&c, file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version) ||
        write_attr_i64(&c, file, "step", st->step) ||
        write_attr_i64(&c, file, "epoch", st->epoch) ||
        write_attr_i64(&c, file, "epoch_step", st->epoch_step) ||
        write_attr(&c, file, "seed", H5T_STD_U64LE, H5T_NATIVE_ULLONG, &seed) ||
        write_attr(&c, file, "checksum", H5T_STD_U32LE, H5T_NATIVE_UINT, &sum) ||
        write_config(&c, file, &m->cfg))
        goto out;
    /* link creation order tracked: h5py and H5Literate list the tensors in
     * table (checksum) order, so the checksum can be recomputed outside */
    gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 ||
        H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        fail(&c, "cannot set up HDF5 group properties");
        goto out;
    }
    for (int g = 0; g < GROUP_COUNT; g++) {
        hid_t grp = H5Gcreate2(file, group_names[g], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (grp < 0) {
            fail(&c, "cannot create group /%s (out of memory?)", group_names[g]);
            goto out;
        }
        int rc = 0;
        for (int k = 0; k < 2 && !rc; k++)
            for (int i = 0; i < tabs[k]->count && !rc; i++)
                rc = write_tensor(&c, grp, group_names[g], &tabs[k]->info[i], blocks[g][k]);
        if (H5Gclose(grp) < 0 && !rc) rc = fail(&c, "cannot close group /%s", group_names[g]);
        if (rc) goto out;
    }
    herr_t closed = H5Fclose(file);
    file = -1;
    if (closed < 0) {
        fail(&c, "HDF5 cannot finish the file in memory (out of memory?)");
        goto out;
    }
    size_t len = 0;
    if (image_length(&c, &im, &len)) goto out;
    int committed = commit_image(&c, fd, tmp, path, im.buf, len);
    fd = -1; /* closed by commit_image */
    if (committed) goto out;
    H5Pclose(fapl);
    H5Pclose(gcpl);
    free(im.buf);
    return 0;
out:
    close_id(file, H5Fclose);
    close_id(fapl, H5Pclose);
    close_id(gcpl, H5Pclose);
    free(im.buf);
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

/* ------------------------------------------------------------------------
 * Reading and verifying. */

typedef struct {
    mimae_config_t cfg;
    train_state_t st;
} ckpt_header_t;

/* Opens path read-only, with a message that says why not. No file lock:
 * files are only ever replaced whole by rename, and flock fails on some
 * cluster file systems, which would make every checkpoint look unreadable. */
static hid_t open_file(ctx_t *c)
{
    struct stat sb;
    if (stat(c->path, &sb)) {
        fail(c, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fail(c, "not a regular file");
        return -1;
    }
    int fd = open(c->path, O_RDONLY);
    if (fd < 0) {
        fail(c, "cannot open: %s", strerror(errno));
        return -1;
    }
    close(fd);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        close_id(fapl, H5Pclose);
        fail(c, "cannot set up HDF5 file access properties");
        return -1;
    }
    hid_t f = H5Fopen(c->path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) fail(c, "not a readable HDF5 file (truncated or damaged): " ADVICE_CORRUPT);
    return f;
}

static int read_header(ctx_t *c, hid_t file, ckpt_header_t *h)
{
    char format[64];
    int version = 0;
    if (read_attr_string(c, file, "format", format, sizeof format)) return -1;
    if (strcmp(format, CHECKPOINT_FORMAT))
        return fail(c, "format is '%s', not '%s': this is not a mimae checkpoint", format,
                    CHECKPOINT_FORMAT);
    if (read_attr_number(c, file, "format_version", H5T_INTEGER, H5T_NATIVE_INT, &version))
        return -1;
    if (version != CHECKPOINT_FORMAT_VERSION)
        return fail(c, "checkpoint format version %d, this program reads version %d: use the "
                    "mimae version that wrote it", version, CHECKPOINT_FORMAT_VERSION);
    if (read_config(c, file, &h->cfg)) return -1;
    long long step, epoch, epoch_step;
    unsigned long long seed;
    if (read_attr_number(c, file, "step", H5T_INTEGER, H5T_NATIVE_LLONG, &step) ||
        read_attr_number(c, file, "epoch", H5T_INTEGER, H5T_NATIVE_LLONG, &epoch) ||
        read_attr_number(c, file, "epoch_step", H5T_INTEGER, H5T_NATIVE_LLONG, &epoch_step) ||
        read_attr_number(c, file, "seed", H5T_INTEGER, H5T_NATIVE_ULLONG, &seed))
        return -1;
    if (step < 0 || epoch < 0 || epoch_step < 0)
        return fail(c, "negative step/epoch/epoch_step (%lld/%lld/%lld): " ADVICE_CORRUPT, step,
                    epoch, epoch_step);
    h->st.step = (long)step;
    h->st.epoch = (long)epoch;
    h->st.epoch_step = (long)epoch_step;
    h->st.seed = (uint64_t)seed;
    return 0;
}

/* Reads one tensor into dst (count floats), checking type and shape. */
static int read_tensor(ctx_t *c, hid_t group, const char *gname, const param_info_t *p,
                       float *dst)
{
    htri_t ex = H5Lexists(group, p->name, H5P_DEFAULT);
    if (ex <= 0)
        return fail(c, "dataset /%s/%s is missing: " ADVICE_CORRUPT, gname, p->name);
    hid_t ds = H5Dopen2(group, p->name, H5P_DEFAULT);
    if (ds < 0) return fail(c, "cannot open dataset /%s/%s: " ADVICE_CORRUPT, gname, p->name);
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    int rc = 0;
    if (t < 0 || s < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4) {
        rc = fail(c, "dataset /%s/%s is not float32: " ADVICE_CORRUPT, gname, p->name);
    } else {
        hsize_t dims[2] = {0, 0};
        int nd = H5Sget_simple_extent_ndims(s);
        if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(s, dims, NULL);
        int same = nd == p->ndim && dims[0] == (hsize_t)p->shape[0] &&
                   (p->ndim == 1 || dims[1] == (hsize_t)p->shape[1]);
        if (!same) {
            char want[48], got[48];
            if (p->ndim == 1) snprintf(want, sizeof want, "(%d)", p->shape[0]);
            else snprintf(want, sizeof want, "(%d, %d)", p->shape[0], p->shape[1]);
            if (nd == 1) snprintf(got, sizeof got, "(%llu)", (unsigned long long)dims[0]);
            else if (nd == 2)
                snprintf(got, sizeof got, "(%llu, %llu)", (unsigned long long)dims[0],
                         (unsigned long long)dims[1]);
            else snprintf(got, sizeof got, "rank %d", nd);
            rc = fail(c, "dataset /%s/%s has shape %s, the config needs %s: " ADVICE_CORRUPT,
                      gname, p->name, got, want);
        } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
            rc = fail(c, "cannot read dataset /%s/%s (truncated?): " ADVICE_CORRUPT, gname,
                      p->name);
        }
    }
    close_id(t, H5Tclose);
    close_id(s, H5Sclose);
    H5Dclose(ds);
    return rc;
}

/* Reads every tensor in checksum order, into dst[g][k] + offset when dst is
 * given, else through a scratch buffer, and compares the checksum. */
static int read_tensors(ctx_t *c, hid_t file, const param_table_t *tabs[2],
                        float *const dst[GROUP_COUNT][2])
{
    unsigned int stored = 0;
    if (read_attr_number(c, file, "checksum", H5T_INTEGER, H5T_NATIVE_UINT, &stored)) return -1;
    float *scratch = NULL;
    if (!dst) {
        size_t most = 1;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < tabs[k]->count; i++)
                if (tabs[k]->info[i].count > most) most = tabs[k]->info[i].count;
        scratch = malloc(most * sizeof(float));
        if (!scratch) return fail(c, "out of memory reading the checkpoint");
    }
    const int expected = tabs[0]->count + tabs[1]->count;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    int rc = 0;
    for (int g = 0; g < GROUP_COUNT && !rc; g++) {
        hid_t grp = H5Gopen2(file, group_names[g], H5P_DEFAULT);
        if (grp < 0) {
            rc = fail(c, "group /%s is missing: " ADVICE_CORRUPT, group_names[g]);
            break;
        }
        H5G_info_t info;
        if (H5Gget_info(grp, &info) < 0)
            rc = fail(c, "cannot read group /%s: " ADVICE_CORRUPT, group_names[g]);
        else if (info.nlinks != (hsize_t)expected)
            rc = fail(c, "group /%s holds %llu tensors, the config has %d: " ADVICE_CORRUPT,
                      group_names[g], (unsigned long long)info.nlinks, expected);
        for (int k = 0; k < 2 && !rc; k++)
            for (int i = 0; i < tabs[k]->count && !rc; i++) {
                const param_info_t *p = &tabs[k]->info[i];
                float *to = dst ? dst[g][k] + p->offset : scratch;
                rc = read_tensor(c, grp, group_names[g], p, to);
                if (!rc) crc = crc_floats(crc, to, p->count);
            }
        H5Gclose(grp);
    }
    free(scratch);
    if (rc) return -1;
    if ((unsigned int)crc != stored)
        return fail(c, "checksum mismatch (stored %08x, computed %08x): " ADVICE_CORRUPT, stored,
                    (unsigned int)crc);
    return 0;
}

/* Builds the tables of a config (fields point into the local structs). */
typedef struct {
    model_params_t p;
    q_params_t q;
    param_table_t t, qt;
} tables_t;

static int tables_build(ctx_t *c, tables_t *tb, const mimae_config_t *cfg)
{
    memset(tb, 0, sizeof *tb);
    if (model_params_table(&tb->t, &tb->p, cfg) || q_params_table(&tb->qt, &tb->q, cfg)) {
        param_table_free(&tb->t);
        param_table_free(&tb->qt);
        model_params_free(&tb->p);
        return fail(c, "out of memory building the parameter tables");
    }
    return 0;
}

static void tables_free(tables_t *tb)
{
    param_table_free(&tb->t);
    param_table_free(&tb->qt);
    model_params_free(&tb->p);
}

/* Full verification; fills h. */
static int verify_file(ctx_t *c, ckpt_header_t *h)
{
    hid_t file = open_file(c);
    if (file < 0) return -1;
    int rc = read_header(c, file, h);
    if (!rc) {
        char msg[512];
        if (mimae_config_validate(&h->cfg, msg, sizeof msg))
            rc = fail(c, "stored config is invalid (%s): " ADVICE_CORRUPT, msg);
    }
    if (!rc) {
        tables_t tb;
        rc = tables_build(c, &tb, &h->cfg);
        if (!rc) {
            const param_table_t *tabs[2] = {&tb.t, &tb.qt};
            rc = read_tensors(c, file, tabs, NULL);
            tables_free(&tb);
        }
    }
    if (H5Fclose(file) < 0 && !rc) rc = fail(c, "cannot close the file");
    return rc ? -1 : 0;
}

int checkpoint_verify(const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ctx_t c = {path, err, errlen, 0};
    if (!path) return fail(&c, "checkpoint_verify: no path");
    ckpt_header_t h;
    return verify_file(&c, &h);
}

int checkpoint_read_config(const char *path, mimae_config_t *cfg, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ctx_t c = {path, err, errlen, 0};
    if (!path || !cfg) return fail(&c, "checkpoint_read_config: path and cfg are required");
    hid_t file = open_file(&c);
    if (file < 0) return -1;
    ckpt_header_t h;
    int rc = read_header(&c, file, &h);
    if (H5Fclose(file) < 0 && !rc) rc = fail(&c, "cannot close the file");
    if (rc) return -1;
    *cfg = h.cfg;
    return 0;
}

int checkpoint_load(const char *path, mimae_model_t *m, train_state_t *st, char *err,
                    size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ctx_t c = {path, err, errlen, 0};
    if (!path || !m) return fail(&c, "checkpoint_load: path and model are required");
    hid_t file = open_file(&c);
    if (file < 0) return -1;
    ckpt_header_t h;
    float *mem = NULL;
    int rc = read_header(&c, file, &h);
    if (!rc) rc = compare_config(&c, &h.cfg, &m->cfg);
    const size_t np = m->table.total, nq = m->q_table.total;
    if (!rc) {
        mem = calloc(GROUP_COUNT * (np + nq) + 1, sizeof(float));
        if (!mem) rc = fail(&c, "out of memory for the temporary copy of the checkpoint "
                            "(%zu floats)", GROUP_COUNT * (np + nq));
    }
    float *dst[GROUP_COUNT][2];
    if (!rc) {
        for (int g = 0; g < GROUP_COUNT; g++) {
            dst[g][0] = mem + (size_t)g * (np + nq);
            dst[g][1] = dst[g][0] + np;
        }
        const param_table_t *tabs[2] = {&m->table, &m->q_table};
        rc = read_tensors(&c, file, tabs, dst);
    }
    if (H5Fclose(file) < 0 && !rc) rc = fail(&c, "cannot close the file");
    if (rc) {
        free(mem);
        return -1;
    }
    /* everything verified: now the model changes */
    float *blocks[GROUP_COUNT][2] = {{m->param_mem, m->q_param_mem},
                                     {m->m_mem, m->q_m_mem},
                                     {m->v_mem, m->q_v_mem}};
    const param_table_t *tabs[2] = {&m->table, &m->q_table};
    for (int g = 0; g < GROUP_COUNT; g++)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < tabs[k]->count; i++) {
                const param_info_t *p = &tabs[k]->info[i];
                memcpy(blocks[g][k] + p->offset, dst[g][k] + p->offset,
                       p->count * sizeof(float));
            }
    free(mem);
    m->step = h.st.step;
    if (st) *st = h.st;
    return 0;
}

/* ------------------------------------------------------------------------
 * Directories of checkpoints. */

void checkpoint_path(char *out, size_t len, const char *dir, long step)
{
    size_t n = strlen(dir);
    const char *sep = n > 0 && dir[n - 1] == '/' ? "" : "/";
    snprintf(out, len, "%s%sckpt-%010ld.h5", dir, sep, step);
}

/* "ckpt-" + 10 digits + ".h5" exactly; returns the step or -1. */
static long parse_ckpt_name(const char *name)
{
    if (strlen(name) != 18 || strncmp(name, "ckpt-", 5) || strcmp(name + 15, ".h5")) return -1;
    long step = 0;
    for (int i = 5; i < 15; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        step = step * 10 + (name[i] - '0');
    }
    return step;
}

static int cmp_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The steps of every ckpt-*.h5 in dir, newest first. */
static int list_steps(ctx_t *c, const char *dir, long **steps, int *count)
{
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return fail(c, "cannot read the checkpoint directory: %s", strerror(errno));
    long *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        long step = parse_ckpt_name(e->d_name);
        if (step < 0) continue;
        if (n == cap) {
            int ncap = cap ? 2 * cap : 16;
            long *grown = realloc(v, (size_t)ncap * sizeof *grown);
            if (!grown) {
                rc = fail(c, "out of memory listing the directory");
                break;
            }
            v = grown, cap = ncap;
        }
        v[n++] = step;
        errno = 0;
    }
    if (!rc && errno) rc = fail(c, "cannot read the checkpoint directory: %s", strerror(errno));
    closedir(d);
    if (rc) {
        free(v);
        return -1;
    }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_desc);
    *steps = v;
    *count = n;
    return 0;
}

int checkpoint_find_latest(const char *dir, char *path, size_t len, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ctx_t c = {dir, err, errlen, 0};
    if (!dir || !path || len == 0) return fail(&c, "checkpoint_find_latest: dir and path are required");
    long *steps;
    int n;
    if (list_steps(&c, dir, &steps, &n)) return -1;
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        char candidate[4096];
        checkpoint_path(candidate, sizeof candidate, dir, steps[i]);
        char why[1024] = "";
        ctx_t vc = {candidate, why, sizeof why, 0};
        ckpt_header_t h;
        int rc = verify_file(&vc, &h);
        if (!rc && h.st.step != steps[i])
            rc = fail(&vc, "stores step %ld but is named for step %ld: renamed by hand? "
                      "delete or rename it", h.st.step, steps[i]);
        if (rc) {
            /* the reason starts with "<candidate>: "; do not say the path twice */
            size_t pl = strlen(candidate);
            const char *reason = strncmp(why, candidate, pl) == 0 && why[pl] == ':'
                                     ? why + pl + 2 : why;
            fprintf(stderr, "mimae: skipping %s: %s\n", candidate, reason);
            continue;
        }
        int w = snprintf(path, len, "%s", candidate);
        if (w < 0 || (size_t)w >= len) {
            free(steps);
            return fail(&c, "path buffer too small for %s", candidate);
        }
        found = 1;
    }
    free(steps);
    return found;
}

int checkpoint_prune(const char *dir, int keep, char *err, size_t errlen)
{
    ctx_t c = {dir, err, errlen, 0};
    if (!dir) return fail(&c, "checkpoint_prune: no directory");
    if (keep < 1) return fail(&c, "checkpoint_prune keep=%d: keep at least 1 checkpoint", keep);
    long *steps;
    int n;
    if (list_steps(&c, dir, &steps, &n)) return -1;
    int rc = 0;
    for (int i = keep; i < n; i++) {
        char p[4096];
        checkpoint_path(p, sizeof p, dir, steps[i]);
        if (unlink(p) && errno != ENOENT)
            rc = fail(&c, "cannot remove old checkpoint %s: %s", p, strerror(errno));
    }
    free(steps);
    return rc;
}
