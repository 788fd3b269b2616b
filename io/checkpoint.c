/* Checkpoints in HDF5 (layout in checkpoint.h).
 *
 * Writing: the file is built in memory and committed atomically by
 * h5_atomic_write (PATH.tmp-<pid>-<random>, fsync, rename, directory fsync; any
 * failure removes the temporary and leaves PATH as it was). Saving needs
 * memory for one copy of the file (parameters and both moments) on the
 * writing process.
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
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/config/config_fields.h"
#include "io/config_attrs.h"
#include "core/config/config_limits.h"
#include "io/h5_attr.h"
#include "io/h5_atomic.h"
#include "io/io_error.h"
#include "io/text_escape.h"

#define GROUP_COUNT 3
static const char *const group_names[GROUP_COUNT] = {"params", "adam_m", "adam_v"};

#define ADVICE_CORRUPT "the file is corrupt; delete it to resume from the previous checkpoint"
#define ADVICE_CONFIG \
    "this checkpoint belongs to another model config: use a fresh run directory or the same config"

static void close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0) close_fn(id);
}

/* ------------------------------------------------------------------------
 * Attributes. */

/* Opens attribute `name` and checks it is a scalar (or one element) of the
 * given class. Returns 0 and fills a, or -1 with a message. */
static int open_attr(io_file_err_t *c, hid_t loc, const char *name, H5T_class_t cls,
                     const char *what, h5_attr_t *a)
{
    const h5_attr_status_t st = h5_attr_open(loc, name, a);
    switch (st) {
    case ATTR_OK: break;
    case ATTR_MISSING:
        return io_file_fail(c, "attribute %s is missing: not a complete %s file (written by "
                            "another program or version?)", name, CHECKPOINT_FORMAT);
    default:
        return io_file_fail(c, "attribute %s is %s: %s", name, h5_attr_status_text(st),
                            ADVICE_CORRUPT);
    }
    if (a->cls != cls || a->count != 1) {
        h5_attr_close(a);
        return io_file_fail(c, "attribute %s is not a single %s: %s", name, what, ADVICE_CORRUPT);
    }
    return 0;
}

static int read_attr_number(io_file_err_t *c, hid_t loc, const char *name, H5T_class_t cls,
                            hid_t mtype, void *out)
{
    h5_attr_t a;
    if (open_attr(c, loc, name, cls, cls == H5T_INTEGER ? "integer" : "number", &a)) return -1;
    herr_t st = H5Aread(a.id, mtype, out);
    h5_attr_close(&a);
    if (st < 0) return io_file_fail(c, "cannot read attribute %s (out of range?): %s", name,
                                    ADVICE_CORRUPT);
    return 0;
}

/* A string attribute (variable or fixed length) into buf. */
static int read_attr_string(io_file_err_t *c, hid_t loc, const char *name, char *buf, size_t len)
{
    h5_attr_t a;
    if (open_attr(c, loc, name, H5T_STRING, "string", &a)) return -1;
    h5_attr_status_t st = h5_attr_read_string(&a, buf, len);
    h5_attr_close(&a);
    if (st != ATTR_OK)
        return io_file_fail(c, "cannot read string attribute %s: %s", name, ADVICE_CORRUPT);
    return 0;
}

/* ------------------------------------------------------------------------
 * The config as "config.<section>.<key>" attributes. */

#define CFG_PTR(type, f, cfg) ((type *)((char *)(cfg) + (f)->offset))

static int read_config(io_file_err_t *c, hid_t loc, mimae_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char name[128], value[64], msg[256];
        config_attr_name(f, name, sizeof name);
        const int present = config_attr_exists_or_default(loc, f, cfg, c);
        if (present < 0) return -1;
        if (!present) continue;
        hid_t ftype, mtype;
        if (config_attr_types(f, &ftype, &mtype) == 0) {
            if (read_attr_number(c, loc, name, H5Tget_class(ftype), mtype,
                                 (char *)cfg + f->offset))
                return -1;
        } else {
            if (read_attr_string(c, loc, name, value, sizeof value)) return -1;
            if (config_field_parse(f, cfg, value, msg, sizeof msg))
                return io_file_fail(c, "attribute %s: %s", name, msg);
        }
    }
    return 0;
}

static int compare_config(io_file_err_t *c, const mimae_config_t *stored,
                          const mimae_config_t *model)
{
    const config_field_t *f = config_fields_first_difference(
        mimae_config_fields, mimae_config_field_count, stored, model);
    if (!f) return 0;
    char a[64], b[64];
    config_field_format_short(f, stored, a, sizeof a);
    config_field_format_short(f, model, b, sizeof b);
    return io_file_fail(c, "%s.%s is %s in the checkpoint but %s in this model: %s", f->section,
                        f->key, a, b, ADVICE_CONFIG);
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

static int write_tensor(io_file_err_t *c, hid_t group, const char *gname, const param_info_t *p,
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
    if (rc) return io_file_fail(c, "cannot write dataset /%s/%s (out of memory?)", gname, p->name);
    return 0;
}

/* What checkpoint_save writes into the in-memory file. */
typedef struct {
    const mimae_model_t *m;
    const train_state_t *st;
    unsigned int checksum;
    const param_table_t *tabs[2];
    const float *blocks[GROUP_COUNT][2];
} save_t;

static int write_checkpoint(hid_t file, const void *arg, io_file_err_t *c)
{
    const save_t *sv = arg;
    const train_state_t *st = sv->st;
    const int version = CHECKPOINT_FORMAT_VERSION;
    const long long step = st->step, epoch = st->epoch, epoch_step = st->epoch_step;
    const unsigned long long seed = st->seed;
    if (h5_attr_write_string(file, "format", CHECKPOINT_FORMAT, c) ||
        h5_attr_write(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, c) ||
        h5_attr_write(file, "step", H5T_STD_I64LE, H5T_NATIVE_LLONG, &step, c) ||
        h5_attr_write(file, "epoch", H5T_STD_I64LE, H5T_NATIVE_LLONG, &epoch, c) ||
        h5_attr_write(file, "epoch_step", H5T_STD_I64LE, H5T_NATIVE_LLONG, &epoch_step, c) ||
        h5_attr_write(file, "seed", H5T_STD_U64LE, H5T_NATIVE_ULLONG, &seed, c) ||
        h5_attr_write(file, "checksum", H5T_STD_U32LE, H5T_NATIVE_UINT, &sv->checksum, c) ||
        config_attrs_write(file, &sv->m->cfg, c))
        return -1;
    /* link creation order tracked: h5py and H5Literate list the tensors in
     * table (checksum) order, so the checksum can be recomputed outside */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 ||
        H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        close_id(gcpl, H5Pclose);
        return io_file_fail(c, "cannot set up HDF5 group properties");
    }
    int rc = 0;
    for (int g = 0; g < GROUP_COUNT && !rc; g++) {
        hid_t grp = H5Gcreate2(file, group_names[g], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (grp < 0) {
            rc = io_file_fail(c, "cannot create group /%s (out of memory?)", group_names[g]);
            break;
        }
        for (int k = 0; k < 2 && !rc; k++)
            for (int i = 0; i < sv->tabs[k]->count && !rc; i++)
                rc = write_tensor(c, grp, group_names[g], &sv->tabs[k]->info[i],
                                  sv->blocks[g][k]);
        if (H5Gclose(grp) < 0 && !rc)
            rc = io_file_fail(c, "cannot close group /%s", group_names[g]);
    }
    H5Pclose(gcpl);
    return rc;
}

int checkpoint_save(const char *path, const mimae_model_t *m, const train_state_t *st,
                    char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!path || !m || !st)
        return io_file_fail(&c, "checkpoint_save: path, model and state are required");
    if (st->step != m->step)
        return io_file_fail(&c, "train state step %ld differs from the model's step %ld: save the "
                            "model's own step", st->step, m->step);
    save_t sv = {m, st, 0, {&m->table, &m->q_table},
                 {{m->param_mem, m->q_param_mem}, {m->m_mem, m->q_m_mem}, {m->v_mem, m->q_v_mem}}};
    uLong crc = crc32_z(0L, Z_NULL, 0);
    size_t data_bytes = 0;
    for (int g = 0; g < GROUP_COUNT; g++)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < sv.tabs[k]->count; i++) {
                const param_info_t *p = &sv.tabs[k]->info[i];
                crc = crc_floats(crc, sv.blocks[g][k] + p->offset, p->count);
                data_bytes += p->count * sizeof(float);
            }
    sv.checksum = (unsigned int)crc;
    /* the image grows in steps of ~1/8 of the data (1..64 MiB) */
    size_t increment = data_bytes / 8;
    if (increment < ((size_t)1 << 20)) increment = (size_t)1 << 20;
    if (increment > ((size_t)64 << 20)) increment = (size_t)64 << 20;
    return h5_atomic_write(path, increment, H5P_DEFAULT, write_checkpoint, &sv, &c);
}

/* ------------------------------------------------------------------------
 * Reading and verifying. */

typedef struct {
    mimae_config_t cfg;
    train_state_t st;
} ckpt_header_t;

static hid_t open_file(io_file_err_t *c)
{
    return h5_atomic_open(c->path, "not a readable HDF5 file (truncated or damaged): "
                         ADVICE_CORRUPT, c);
}

static int read_header(io_file_err_t *c, hid_t file, ckpt_header_t *h)
{
    char format[64];
    int version = 0;
    if (read_attr_string(c, file, "format", format, sizeof format)) return -1;
    if (strcmp(format, CHECKPOINT_FORMAT))
        return io_file_fail(c, "format is '%s', not '%s': this is not a mimae checkpoint", format,
                            CHECKPOINT_FORMAT);
    if (read_attr_number(c, file, "format_version", H5T_INTEGER, H5T_NATIVE_INT, &version))
        return -1;
    if (version != CHECKPOINT_FORMAT_VERSION)
        return io_file_fail(c, "checkpoint format version %d, this program reads version %d: "
                            "use the mimae version that wrote it", version,
                            CHECKPOINT_FORMAT_VERSION);
    if (read_config(c, file, &h->cfg)) return -1;
    char msg[512]; /* a config that could not have been trained is damage */
    if (config_check_limits(&h->cfg, msg, sizeof msg) ||
        mimae_config_validate(&h->cfg, msg, sizeof msg))
        return io_file_fail(c, "stored config is invalid (%s): " ADVICE_CORRUPT, msg);
    long long step, epoch, epoch_step;
    unsigned long long seed;
    if (read_attr_number(c, file, "step", H5T_INTEGER, H5T_NATIVE_LLONG, &step) ||
        read_attr_number(c, file, "epoch", H5T_INTEGER, H5T_NATIVE_LLONG, &epoch) ||
        read_attr_number(c, file, "epoch_step", H5T_INTEGER, H5T_NATIVE_LLONG, &epoch_step) ||
        read_attr_number(c, file, "seed", H5T_INTEGER, H5T_NATIVE_ULLONG, &seed))
        return -1;
    if (step < 0 || epoch < 0 || epoch_step < 0)
        return io_file_fail(c, "negative step/epoch/epoch_step (%lld/%lld/%lld): " ADVICE_CORRUPT,
                            step, epoch, epoch_step);
    h->st.step = (long)step;
    h->st.epoch = (long)epoch;
    h->st.epoch_step = (long)epoch_step;
    h->st.seed = (uint64_t)seed;
    return 0;
}

/* Reads one tensor into dst (count floats), checking type and shape. */
static int read_tensor(io_file_err_t *c, hid_t group, const char *gname, const param_info_t *p,
                       float *dst)
{
    htri_t ex = H5Lexists(group, p->name, H5P_DEFAULT);
    if (ex <= 0)
        return io_file_fail(c, "dataset /%s/%s is missing: " ADVICE_CORRUPT, gname, p->name);
    hid_t ds = H5Dopen2(group, p->name, H5P_DEFAULT);
    if (ds < 0)
        return io_file_fail(c, "cannot open dataset /%s/%s: " ADVICE_CORRUPT, gname, p->name);
    hid_t t = H5Dget_type(ds), s = H5Dget_space(ds);
    int rc = 0;
    char why[128];
    if (t < 0 || s < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4 ||
        !h5_type_is_standard_number(t)) {
        rc = io_file_fail(c, "dataset /%s/%s is not float32: " ADVICE_CORRUPT, gname, p->name);
    } else if (h5_dataset_layout_check(ds, why, sizeof why)) {
        rc = io_file_fail(c, "dataset /%s/%s has %s: " ADVICE_CORRUPT, gname, p->name, why);
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
            rc = io_file_fail(c, "dataset /%s/%s has shape %s, the config needs %s: "
                              ADVICE_CORRUPT, gname, p->name, got, want);
        } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
            rc = io_file_fail(c, "cannot read dataset /%s/%s (truncated?): " ADVICE_CORRUPT, gname,
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
static int read_tensors(io_file_err_t *c, hid_t file, const param_table_t *tabs[2],
                        float *const dst[GROUP_COUNT][2])
{
    unsigned int stored = 0;
    if (read_attr_number(c, file, "checksum", H5T_INTEGER, H5T_NATIVE_UINT, &stored)) return -1;
    /* the tensors are stored whole (contiguous, uncompressed): a file
     * smaller than them is damaged, and nothing is allocated for it */
    double need = 0.0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < tabs[k]->count; i++) need += (double)tabs[k]->info[i].count;
    need *= GROUP_COUNT * sizeof(float);
    hsize_t have = 0;
    if (H5Fget_filesize(file, &have) < 0 || (double)have < need)
        return io_file_fail(c, "the file has %llu bytes, its config needs %.0f bytes of tensors: "
                            ADVICE_CORRUPT, (unsigned long long)have, need);
    float *scratch = NULL;
    if (!dst) {
        size_t most = 1;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < tabs[k]->count; i++)
                if (tabs[k]->info[i].count > most) most = tabs[k]->info[i].count;
        scratch = malloc(most * sizeof(float));
        if (!scratch) return io_file_fail(c, "out of memory reading the checkpoint");
    }
    const int expected = tabs[0]->count + tabs[1]->count;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    int rc = 0;
    char bad[160] = ""; /* the first non-finite value */
    for (int g = 0; g < GROUP_COUNT && !rc; g++) {
        hid_t grp = H5Gopen2(file, group_names[g], H5P_DEFAULT);
        if (grp < 0) {
            rc = io_file_fail(c, "group /%s is missing: " ADVICE_CORRUPT, group_names[g]);
            break;
        }
        H5G_info_t info;
        if (H5Gget_info(grp, &info) < 0)
            rc = io_file_fail(c, "cannot read group /%s: " ADVICE_CORRUPT, group_names[g]);
        else if (info.nlinks != (hsize_t)expected)
            rc = io_file_fail(c, "group /%s holds %llu tensors, the config has %d: " ADVICE_CORRUPT,
                              group_names[g], (unsigned long long)info.nlinks, expected);
        for (int k = 0; k < 2 && !rc; k++)
            for (int i = 0; i < tabs[k]->count && !rc; i++) {
                const param_info_t *p = &tabs[k]->info[i];
                float *to = dst ? dst[g][k] + p->offset : scratch;
                rc = read_tensor(c, grp, group_names[g], p, to);
                if (!rc) crc = crc_floats(crc, to, p->count);
                for (size_t j = 0; !rc && !bad[0] && j < p->count; j++)
                    if (!isfinite(to[j]))
                        snprintf(bad, sizeof bad, "/%s/%s[%zu] is %g", group_names[g], p->name,
                                 j, (double)to[j]);
            }
        H5Gclose(grp);
    }
    free(scratch);
    if (rc) return -1;
    if ((unsigned int)crc != stored)
        return io_file_fail(c, "checksum mismatch (stored %08x, computed %08x): " ADVICE_CORRUPT,
                            stored, (unsigned int)crc);
    /* training stops before a non-finite update, so none is ever saved */
    if (bad[0])
        return io_file_fail(c, "%s, not a finite number: " ADVICE_CORRUPT, bad);
    return 0;
}

/* Builds the tables of a config (fields point into the local structs). */
typedef struct {
    model_params_t p;
    q_params_t q;
    param_table_t t, qt;
} tables_t;

static int tables_build(io_file_err_t *c, tables_t *tb, const mimae_config_t *cfg)
{
    memset(tb, 0, sizeof *tb);
    if (model_params_table(&tb->t, &tb->p, cfg) || q_params_table(&tb->qt, &tb->q, cfg)) {
        param_table_free(&tb->t);
        param_table_free(&tb->qt);
        model_params_free(&tb->p);
        return io_file_fail(c, "out of memory building the parameter tables");
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
static int verify_file(io_file_err_t *c, ckpt_header_t *h)
{
    hid_t file = open_file(c);
    if (file < 0) return -1;
    int rc = read_header(c, file, h);
    if (!rc) {
        tables_t tb;
        rc = tables_build(c, &tb, &h->cfg);
        if (!rc) {
            const param_table_t *tabs[2] = {&tb.t, &tb.qt};
            rc = read_tensors(c, file, tabs, NULL);
            tables_free(&tb);
        }
    }
    if (H5Fclose(file) < 0 && !rc) rc = io_file_fail(c, "cannot close the file");
    return rc ? -1 : 0;
}

int checkpoint_verify(const char *path, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!path) return io_file_fail(&c, "checkpoint_verify: no path");
    ckpt_header_t h;
    return verify_file(&c, &h);
}

int checkpoint_read_config(const char *path, mimae_config_t *cfg, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!path || !cfg) return io_file_fail(&c, "checkpoint_read_config: path and cfg are required");
    hid_t file = open_file(&c);
    if (file < 0) return -1;
    ckpt_header_t h;
    int rc = read_header(&c, file, &h);
    if (H5Fclose(file) < 0 && !rc) rc = io_file_fail(&c, "cannot close the file");
    if (rc) return -1;
    *cfg = h.cfg;
    return 0;
}

int checkpoint_load(const char *path, mimae_model_t *m, train_state_t *st, char *err,
                    size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {path, err, errlen, 0};
    if (!path || !m) return io_file_fail(&c, "checkpoint_load: path and model are required");
    hid_t file = open_file(&c);
    if (file < 0) return -1;
    ckpt_header_t h;
    float *mem = NULL;
    int rc = read_header(&c, file, &h);
    if (!rc) rc = compare_config(&c, &h.cfg, &m->cfg);
    const size_t np = m->table.total, nq = m->q_table.total;
    if (!rc) {
        mem = calloc(GROUP_COUNT * (np + nq) + 1, sizeof(float));
        if (!mem) rc = io_file_fail(&c, "out of memory for the temporary copy of the checkpoint "
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
    if (H5Fclose(file) < 0 && !rc) rc = io_file_fail(&c, "cannot close the file");
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
    m->param16_step = -1; /* new parameters: a bf16 copy of the old ones holds nothing */
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
static int list_steps(io_file_err_t *c, const char *dir, long **steps, int *count)
{
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return io_file_fail(c, "cannot read the checkpoint directory: %s", strerror(errno));
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
                rc = io_file_fail(c, "out of memory listing the directory");
                break;
            }
            v = grown, cap = ncap;
        }
        v[n++] = step;
        errno = 0;
    }
    if (!rc && errno)
        rc = io_file_fail(c, "cannot read the checkpoint directory: %s", strerror(errno));
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
    io_file_err_t c = {dir, err, errlen, 0};
    if (!dir || !path || len == 0)
        return io_file_fail(&c, "checkpoint_find_latest: dir and path are required");
    long *steps;
    int n;
    if (list_steps(&c, dir, &steps, &n)) return -1;
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        char candidate[4096];
        checkpoint_path(candidate, sizeof candidate, dir, steps[i]);
        char why[1024] = "";
        io_file_err_t vc = {candidate, why, sizeof why, 0};
        ckpt_header_t h;
        int rc = verify_file(&vc, &h);
        if (!rc && h.st.step != steps[i])
            rc = io_file_fail(&vc, "stores step %ld but is named for step %ld: renamed by hand? "
                              "delete or rename it", h.st.step, steps[i]);
        if (rc) {
            /* the reason starts with "<candidate>: "; do not say the path twice */
            size_t pl = strlen(candidate);
            const char *reason = strncmp(why, candidate, pl) == 0 && why[pl] == ':'
                                     ? why + pl + 2 : why;
            text_eprintf("mimae: skipping %s: %s", candidate, reason);
            continue;
        }
        int w = snprintf(path, len, "%s", candidate);
        if (w < 0 || (size_t)w >= len) {
            free(steps);
            return io_file_fail(&c, "path buffer too small for %s", candidate);
        }
        found = 1;
    }
    free(steps);
    return found;
}

/* Whether the checkpoint at `step` in dir is one of this run's, whole: it
 * verifies, stores the step of its name, the run's seed and config. */
static int belongs_to_run(const char *dir, long step, const mimae_config_t *cfg, uint64_t seed)
{
    char path[4096], why[1024];
    checkpoint_path(path, sizeof path, dir, step);
    io_file_err_t vc = {path, why, sizeof why, 0};
    ckpt_header_t h;
    return verify_file(&vc, &h) == 0 && h.st.step == step && h.st.seed == seed &&
           config_fields_first_difference(mimae_config_fields, mimae_config_field_count, &h.cfg,
                                          cfg) == NULL;
}

int checkpoint_prune(const char *dir, int keep, const mimae_config_t *cfg,
                     const train_state_t *newest, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    io_file_err_t c = {dir, err, errlen, 0};
    if (!dir || !cfg || !newest) return io_file_fail(&c, "checkpoint_prune: no directory or run");
    if (keep < 1)
        return io_file_fail(&c, "checkpoint_prune keep=%d: keep at least 1 checkpoint", keep);
    long *steps;
    int n;
    if (list_steps(&c, dir, &steps, &n)) return -1;
    /* Newest first: count this run's verified checkpoints up to the step it
     * stands at; a file named for a later step or one that does not verify
     * neither counts nor is removed, so junk cannot push out a good one. */
    int kept = 0, i = 0;
    for (; i < n && kept < keep; i++)
        kept += steps[i] <= newest->step && belongs_to_run(dir, steps[i], cfg, newest->seed);
    int rc = 0;
    for (; kept == keep && i < n; i++) { /* everything older than the oldest one kept */
        char p[4096];
        checkpoint_path(p, sizeof p, dir, steps[i]);
        if (unlink(p) && errno != ENOENT)
            rc = io_file_fail(&c, "cannot remove old checkpoint %s: %s", p, strerror(errno));
    }
    free(steps);
    return rc;
}
