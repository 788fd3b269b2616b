/* A table describing every configuration field: its descriptor section and
 * key, type, place in the struct, and documentation. The INI reader, the
 * checkpoint/results writers and the README's key reference all walk the
 * same table, so a field added here is parsed, saved and documented at once. */
#ifndef MIMAE_CONFIG_CONFIG_FIELDS_H
#define MIMAE_CONFIG_CONFIG_FIELDS_H

#include <stddef.h>

typedef enum { FIELD_INT, FIELD_LONG, FIELD_FLOAT, FIELD_DOUBLE, FIELD_ENUM } field_type_t;

typedef struct {
    const char *section, *key;
    field_type_t type;
    size_t offset;                 /* into the struct the table describes */
    const char *const *enum_names; /* FIELD_ENUM: NULL-terminated, value = index */
    const char *doc;
} config_field_t;

/* The fields of mimae_config_t (core/config/config.h). */
extern const config_field_t mimae_config_fields[];
extern const int mimae_config_field_count;

const config_field_t *config_field_find(const config_field_t *fields, int count,
                                        const char *section, const char *key);

/* Parses `value` strictly (whole string, in range of the type, finite) into the
 * struct. On error writes "section.key = 'value': why" and returns -1. */
int config_field_parse(const config_field_t *f, void *cfg, const char *value, char *err,
                       size_t errlen);

/* The value as text that parses back to the same bits ("%.9g" floats,
 * "%.17g" doubles, enum names). */
void config_field_format(const config_field_t *f, const void *cfg, char *buf, size_t len);

/* Numeric view for typed storage (enums give their index). */
double config_field_get_number(const config_field_t *f, const void *cfg);
void config_field_set_number(const config_field_t *f, void *cfg, double v);

#endif
