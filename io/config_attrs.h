/* The model config as attributes "config.<section>.<key>", one for every
 * field of core/config/config_fields.h: int32, int64, float32 or float64 as the
 * field is, enums as strings (checkpoints and results files). A file from
 * before a key existed lacks its attribute and reads as the key's default. */
#ifndef MIMAE_IO_CONFIG_ATTRS_H
#define MIMAE_IO_CONFIG_ATTRS_H

#include <hdf5.h>
#include <stddef.h>

#include "core/config/config.h"
#include "core/config/config_fields.h"
#include "io/io_error.h"

/* "config.<section>.<key>" */
void config_attr_name(const config_field_t *f, char *buf, size_t len);

/* The HDF5 types of a numeric field: in the file (int32, int64, float32 or
 * float64, little-endian) and in memory. -1 for an enum (a string). */
int config_attr_types(const config_field_t *f, hid_t *file_type, hid_t *mem_type);

/* Every field as an attribute of loc; -1 after io_file_fail. */
int config_attrs_write(hid_t loc, const mimae_config_t *cfg, io_file_err_t *e);

/* For readers: 1 when loc has the field's attribute. 0 when it has not (a
 * file written before the key existed): the field gets its default in cfg
 * and one line on stderr says so. -1 after io_file_fail when the lookup
 * itself fails. A present attribute is the caller's to read and check. */
int config_attr_exists_or_default(hid_t loc, const config_field_t *f, mimae_config_t *cfg,
                                  io_file_err_t *e);

#endif
