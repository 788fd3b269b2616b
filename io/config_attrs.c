/* The config as "config.<section>.<key>" attributes (see config_attrs.h). */
#include "io/config_attrs.h"

#include <stdio.h>

#include "io/h5_attr.h"
#include "io/text_escape.h"

void config_attr_name(const config_field_t *f, char *buf, size_t len)
{
    snprintf(buf, len, "config.%s.%s", f->section, f->key);
}

int config_attr_types(const config_field_t *f, hid_t *file_type, hid_t *mem_type)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_SWITCH: *file_type = H5T_STD_I32LE, *mem_type = H5T_NATIVE_INT; return 0;
    case FIELD_LONG: *file_type = H5T_STD_I64LE, *mem_type = H5T_NATIVE_LONG; return 0;
    case FIELD_FLOAT: *file_type = H5T_IEEE_F32LE, *mem_type = H5T_NATIVE_FLOAT; return 0;
    case FIELD_DOUBLE: *file_type = H5T_IEEE_F64LE, *mem_type = H5T_NATIVE_DOUBLE; return 0;
    case FIELD_ENUM:
    case FIELD_TEXT: break;
    }
    return -1;
}

int config_attrs_write(hid_t loc, const mimae_config_t *cfg, io_file_err_t *e)
{
    for (int i = 0; i < mimae_config_field_count; i++) {
        const config_field_t *f = &mimae_config_fields[i];
        char name[128], value[64];
        config_attr_name(f, name, sizeof name);
        hid_t ftype, mtype;
        int rc;
        if (config_attr_types(f, &ftype, &mtype) == 0) {
            rc = h5_attr_write(loc, name, ftype, mtype, (const char *)cfg + f->offset, e);
        } else {
            config_field_format(f, cfg, value, sizeof value);
            rc = h5_attr_write_string(loc, name, value, e);
        }
        if (rc) return -1;
    }
    return 0;
}

int config_attr_exists_or_default(hid_t loc, const config_field_t *f, mimae_config_t *cfg,
                                  io_file_err_t *e)
{
    char name[128], value[64], msg[256];
    config_attr_name(f, name, sizeof name);
    const htri_t exists = H5Aexists(loc, name);
    if (exists < 0)
        return io_file_fail(e, "cannot look up attribute %s: the file is damaged", name);
    if (exists > 0) return 1;
    if (config_field_parse(f, cfg, f->default_value, msg, sizeof msg))
        return io_file_fail(e, "internal: the default of %s: %s: fix the key table", name, msg);
    config_field_format_short(f, cfg, value, sizeof value);
    text_eprintf("mimae: %s: no attribute %s (written before the key existed): using its "
                 "default %s", e->path, name, value);
    return 0;
}
