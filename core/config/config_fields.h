/* The table of configuration keys: one row per key holds its descriptor
 * section and name, type, place in the struct, default, allowed range and
 * documentation. The INI reader, the defaults and presets, validation, the
 * checkpoint/results attributes and `mimae keys` (the README's reference)
 * all walk the rows, so adding a key is one row (and its struct member).
 *
 * mimae_config_fields describes mimae_config_t (here, in core);
 * run_config_fields (experiments/descriptor.h) describes the run settings
 * with the same row type. */
#ifndef MIMAE_CONFIG_CONFIG_FIELDS_H
#define MIMAE_CONFIG_CONFIG_FIELDS_H

#include <math.h>
#include <stddef.h>

typedef enum {
    FIELD_INT,
    FIELD_LONG,
    FIELD_FLOAT,
    FIELD_DOUBLE,
    FIELD_ENUM,   /* int, the index into enum_names */
    FIELD_SWITCH, /* int 0/1; reads 0/1, true/false, yes/no, on/off */
    FIELD_TEXT    /* char[size], NUL-terminated */
} field_type_t;

/* Allowed values of a number: min..max, each bound included unless open
 * (a float key's bounds are compared as floats). Real values must also be
 * finite and, unless 0, normal numbers of their type (no underflow to 0 or
 * a denormal). */
typedef struct {
    double min, max;
    unsigned char min_open, max_open;
} field_range_t;

#define RANGE_ANY {-HUGE_VAL, HUGE_VAL, 0, 0}
#define RANGE_AT_LEAST(lo) {(lo), HUGE_VAL, 0, 0}
#define RANGE_ABOVE(lo) {(lo), HUGE_VAL, 1, 0}
#define RANGE_AT_MOST(hi) {-HUGE_VAL, (hi), 0, 0}
#define RANGE_BETWEEN(lo, hi) {(lo), (hi), 0, 0}
#define RANGE_BELOW_FROM(lo, hi) {(lo), (hi), 0, 1} /* [lo, hi) */

typedef struct {
    const char *section, *key;
    field_type_t type;
    size_t offset, size;           /* of the member in the struct the table describes */
    const char *const *enum_names; /* FIELD_ENUM: NULL-terminated, value = index */
    const char *default_value;     /* text config_field_parse reads */
    field_range_t range;           /* numbers only */
    const char *doc;
    const char *default_doc;       /* the reference's default column when the default is
                                      derived at load time (NULL: the value itself) */
} config_field_t;

#define CONFIG_MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

/* The fields of mimae_config_t (core/config/config.h); the defaults are the
 * fmnist-tiny preset's. */
extern const config_field_t mimae_config_fields[];
extern const int mimae_config_field_count;

const config_field_t *config_field_find(const config_field_t *fields, int count,
                                        const char *section, const char *key);

/* Parses `value` strictly (whole string, in range of the type, finite, not
 * underflowing) into the struct and checks it against the row's range. On
 * error writes "section.key = 'value': why", the value as given, and
 * returns -1; the struct is unchanged then. */
int config_field_parse(const config_field_t *f, void *cfg, const char *value, char *err,
                       size_t errlen);

/* Zeroes the struct and parses every row's default into it; -1 with the
 * row's message for a table whose default does not parse. */
int config_fields_set_defaults(const config_field_t *fields, int count, void *cfg, size_t size,
                               char *err, size_t errlen);

/* The value as text that parses back to the same bits ("%.9g" floats,
 * "%.17g" doubles, enum names). */
void config_field_format(const config_field_t *f, const void *cfg, char *buf, size_t len);

/* The shortest "%.Ng" text that reads back to v (as a float when as_float):
 * 0.07, not 0.0700000003; "nan", "inf", "-inf". */
void shortest_real(double v, int as_float, char *buf, size_t len);

/* config_field_format with reals as shortest_real, for messages and files
 * people read. */
void config_field_format_short(const config_field_t *f, const void *cfg, char *buf, size_t len);

/* 0 when the value is in the row's range (and a known enum, a finite
 * normal or zero real); else -1 with "section.key = 'value': must be ...
 * (doc)". */
int config_field_check_range(const config_field_t *f, const void *cfg, char *err,
                             size_t errlen);

/* config_field_check_range over every row: the first failure. */
int config_fields_check_ranges(const config_field_t *fields, int count, const void *cfg,
                               char *err, size_t errlen);

/* The first row (in table order) whose value differs between configs a and
 * b (reals compared bit for bit), or NULL when they agree. */
const config_field_t *config_fields_first_difference(const config_field_t *fields, int count,
                                                     const void *a, const void *b);

/* Numeric view for typed storage (enums give their index, text 0). */
double config_field_get_number(const config_field_t *f, const void *cfg);
void config_field_set_number(const config_field_t *f, void *cfg, double v);

#endif
