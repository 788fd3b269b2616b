/* The model config as attributes "config.<section>.<key>", one for every
 * field of core/config/config_fields.h: int32, int64, float32 or float64 as the
 * field is, enums as strings (checkpoints and results files). */
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

#endif
