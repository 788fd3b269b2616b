#include "core/config/config_fields.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config/config.h"
#include "core/config/config_limits.h"

static const char *const pool_names[] = {"mean", "cls", NULL};
static const char *const contrast_names[] = {"masks", "batch", NULL};

#define F(sec, key, type, member, names, def, range, doc)                                  \
    {sec, key, type, offsetof(mimae_config_t, member),                                    \
     CONFIG_MEMBER_SIZE(mimae_config_t, member), names, def, range, doc, NULL}
/* A number whose default is derived from the data set at load time. */
#define F_DERIVED(sec, key, type, member, def, range, doc, default_doc)                    \
    {sec, key, type, offsetof(mimae_config_t, member),                                    \
     CONFIG_MEMBER_SIZE(mimae_config_t, member), NULL, def, range, doc, default_doc}

#define SCHEDULE_DOC                                                                        \
    "; an explicit value wins; steps per epoch = floor(images / global_batch), images = "   \
    "data.train_limit if smaller"

/* Upper bounds: core/config/config_limits.h says why each is there. */
const config_field_t mimae_config_fields[] = {
    F("model", "img_h", FIELD_INT, img_h, NULL, "28", RANGE_BETWEEN(1, CONFIG_MAX_SIDE),
      "image height in pixels"),
    F("model", "img_w", FIELD_INT, img_w, NULL, "28", RANGE_BETWEEN(1, CONFIG_MAX_SIDE),
      "image width in pixels"),
    F("model", "channels", FIELD_INT, channels, NULL, "1", RANGE_BETWEEN(1, CONFIG_MAX_CHANNELS),
      "colour channels (1 or 3)"),
    F("model", "patch", FIELD_INT, patch, NULL, "4", RANGE_BETWEEN(1, CONFIG_MAX_SIDE),
      "patch side p; must divide height and width"),
    F("model", "enc_dim", FIELD_INT, enc_dim, NULL, "192", RANGE_BETWEEN(1, CONFIG_MAX_WIDTH),
      "encoder width D (multiple of 4 and of enc_heads)"),
    F("model", "enc_depth", FIELD_INT, enc_depth, NULL, "6", RANGE_BETWEEN(1, CONFIG_MAX_DEPTH),
      "encoder blocks"),
    F("model", "enc_heads", FIELD_INT, enc_heads, NULL, "3", RANGE_BETWEEN(1, CONFIG_MAX_WIDTH),
      "encoder attention heads"),
    F("model", "dec_dim", FIELD_INT, dec_dim, NULL, "128", RANGE_BETWEEN(1, CONFIG_MAX_WIDTH),
      "decoder width Dd"),
    F("model", "dec_depth", FIELD_INT, dec_depth, NULL, "2", RANGE_BETWEEN(1, CONFIG_MAX_DEPTH),
      "decoder blocks"),
    F("model", "dec_heads", FIELD_INT, dec_heads, NULL, "4", RANGE_BETWEEN(1, CONFIG_MAX_WIDTH),
      "decoder attention heads"),
    F("model", "mlp_ratio", FIELD_INT, mlp_ratio, NULL, "4",
      RANGE_BETWEEN(1, CONFIG_MAX_MLP_RATIO), "MLP hidden width / model width"),
    F("mimae", "num_masks", FIELD_INT, num_masks, NULL, "4", RANGE_BETWEEN(1, CONFIG_MAX_PATCHES),
      "N orthogonal masks per image (1 = MAE)"),
    F("mimae", "mask_ratio", FIELD_DOUBLE, mask_ratio, NULL, "0.75", RANGE_BELOW_FROM(0, 1),
      "r; visible per mask V = floor(L(1-r)), need N*V <= L"),
    F("mimae", "norm_pix", FIELD_SWITCH, norm_pix, NULL, "1", RANGE_BETWEEN(0, 1),
      "1: per-patch normalised reconstruction targets"),
    F("mimae", "pool", FIELD_ENUM, pool, pool_names, "mean", RANGE_ANY,
      "latent pooling for the MI terms: mean or cls"),
    F("mimae", "proj_hidden", FIELD_INT, proj_hidden, NULL, "384",
      RANGE_BETWEEN(0, CONFIG_MAX_WIDTH), "projector hidden width (0: no projector)"),
    F("mimae", "proj_out", FIELD_INT, proj_out, NULL, "128", RANGE_AT_MOST(CONFIG_MAX_WIDTH),
      "projector output width"),
    F("mimae", "q_hidden", FIELD_INT, q_hidden, NULL, "256", RANGE_BETWEEN(1, CONFIG_MAX_WIDTH),
      "width H of the approximation network Q"),
    F("mimae", "club_contrast", FIELD_ENUM, club_contrast, contrast_names, "masks", RANGE_ANY,
      "CLUB contrast set: masks (same image) or batch"),
    F("mimae", "tau", FIELD_FLOAT, tau, NULL, "0.07", RANGE_BETWEEN(1e-4, 1e3),
      "InfoNCE temperature"),
    F("mimae", "w_rec", FIELD_FLOAT, w_rec, NULL, "1", RANGE_AT_LEAST(0),
      "weight of the reconstruction loss"),
    F("mimae", "w_max", FIELD_FLOAT, w_max, NULL, "0.1", RANGE_AT_LEAST(0),
      "weight of the InfoNCE (MI maximisation) loss"),
    F("mimae", "w_min", FIELD_FLOAT, w_min, NULL, "0.01", RANGE_AT_LEAST(0),
      "weight of the CLUB (MI minimisation) loss"),
    F("optim", "blr", FIELD_FLOAT, blr, NULL, "1.5e-4", RANGE_ABOVE(0),
      "base learning rate; lr = blr * global_batch / 256"),
    F("optim", "min_lr", FIELD_FLOAT, min_lr, NULL, "0", RANGE_AT_LEAST(0),
      "learning rate at the end of the cosine"),
    F("optim", "weight_decay", FIELD_FLOAT, weight_decay, NULL, "0.05", RANGE_AT_LEAST(0),
      "AdamW decay (matrices, cls/mask tokens)"),
    F("optim", "beta1", FIELD_FLOAT, beta1, NULL, "0.9", RANGE_BELOW_FROM(0, 1), "AdamW beta1"),
    F("optim", "beta2", FIELD_FLOAT, beta2, NULL, "0.95", RANGE_BELOW_FROM(0, 1), "AdamW beta2"),
    F("optim", "eps", FIELD_FLOAT, adam_eps, NULL, "1e-8", RANGE_BETWEEN(1e-15, 1), "AdamW epsilon"),
    F_DERIVED("optim", "warmup_iters", FIELD_LONG, warmup_iters, "0", RANGE_AT_LEAST(0),
              "linear warmup iterations" SCHEDULE_DOC, "round(warmup_epochs x steps per epoch)"),
    F_DERIVED("optim", "total_iters", FIELD_LONG, total_iters, "1", RANGE_AT_LEAST(1),
              "iterations of the whole schedule" SCHEDULE_DOC, "epochs x steps per epoch"),
    F("train", "global_batch", FIELD_INT, global_batch, NULL, "64",
      RANGE_BETWEEN(1, CONFIG_MAX_GLOBAL_BATCH), "images per optimiser step over all ranks"),
};
const int mimae_config_field_count = sizeof mimae_config_fields / sizeof mimae_config_fields[0];

/* ------------------------------------------------------------------------
 * Presets: the keys where a preset differs from the table's defaults
 * (which are fmnist-tiny's). */

typedef struct {
    const char *section, *key, *value;
} preset_setting_t;

static const preset_setting_t vit_b16[] = {
    {"model", "img_h", "224"},      {"model", "img_w", "224"},     {"model", "channels", "3"},
    {"model", "patch", "16"},       {"model", "enc_dim", "768"},   {"model", "enc_depth", "12"},
    {"model", "enc_heads", "12"},   {"model", "dec_dim", "512"},   {"model", "dec_depth", "8"},
    {"model", "dec_heads", "16"},   {"mimae", "proj_hidden", "1536"},
    {"train", "global_batch", "4096"}, {NULL, NULL, NULL},
};

/* The size the PyTorch reference fixture uses. */
static const preset_setting_t test_small[] = {
    {"model", "img_h", "16"},     {"model", "img_w", "16"},    {"model", "channels", "3"},
    {"model", "patch", "4"},      {"model", "enc_dim", "32"},  {"model", "enc_depth", "2"},
    {"model", "enc_heads", "2"},  {"model", "dec_dim", "24"},  {"model", "dec_depth", "2"},
    {"model", "dec_heads", "3"},  {"mimae", "proj_hidden", "64"}, {"mimae", "proj_out", "16"},
    {"mimae", "q_hidden", "20"},  {"train", "global_batch", "6"}, {NULL, NULL, NULL},
};

static const struct {
    const char *name;
    const preset_setting_t *settings;
} presets[] = {
    {"fmnist-tiny", NULL},
    {"vit-b16", vit_b16},
    {"test-small", test_small},
};

int mimae_config_preset(mimae_config_t *cfg, const char *name)
{
    char err[256];
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        if (strcmp(name, presets[p].name)) continue;
        if (config_fields_set_defaults(mimae_config_fields, mimae_config_field_count, cfg,
                                       sizeof *cfg, err, sizeof err))
            return -1;
        for (const preset_setting_t *s = presets[p].settings; s && s->key; s++) {
            const config_field_t *f = config_field_find(mimae_config_fields,
                                                        mimae_config_field_count, s->section,
                                                        s->key);
            if (!f || config_field_parse(f, cfg, s->value, err, sizeof err)) return -1;
        }
        return 0;
    }
    return -1;
}

const config_field_t *config_field_find(const config_field_t *fields, int count,
                                        const char *section, const char *key)
{
    for (int i = 0; i < count; i++)
        if (strcmp(fields[i].section, section) == 0 && strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

#define FIELD_PTR(type, f, cfg) ((type *)((char *)(cfg) + (f)->offset))

static int lower_equals(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        if (ca != *b) return 0;
    }
    return *a == *b;
}

/* 1 or 0 for a switch's spellings, -1 for anything else. */
static int switch_value(const char *s)
{
    if (strcmp(s, "1") == 0 || lower_equals(s, "true") || lower_equals(s, "yes") ||
        lower_equals(s, "on"))
        return 1;
    if (strcmp(s, "0") == 0 || lower_equals(s, "false") || lower_equals(s, "no") ||
        lower_equals(s, "off"))
        return 0;
    return -1;
}

/* Range message of a number stored as f's type (v), naming the value as
 * `text`: as the user wrote it when parsing, the stored value otherwise.
 * Real bounds are compared in the field's own precision (a float key's
 * 1e-4 is the float nearest 1e-4). */
static int check_number(const config_field_t *f, double v, const char *text, char *err,
                        size_t errlen);

/* Nonzero reals below the smallest normal number of their type: they
 * become 0 or denormals, which both mean something other than was written
 * (a temperature of 1e-40 is 0 in practice, and slow in the kernels). */
static int underflows(const config_field_t *f, double v)
{
    if (v == 0.0) return 0;
    return f->type == FIELD_FLOAT ? fabsf((float)v) < FLT_MIN : fabs(v) < DBL_MIN;
}

int config_field_parse(const config_field_t *f, void *cfg, const char *value, char *err,
                       size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case FIELD_INT:
    case FIELD_LONG: {
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || (f->type == FIELD_INT && (v < INT_MIN || v > INT_MAX)))
            goto bad_integer;
        if (check_number(f, (double)v, value, err, errlen)) return -1;
        if (f->type == FIELD_INT) *FIELD_PTR(int, f, cfg) = (int)v;
        else *FIELD_PTR(long, f, cfg) = v;
        return 0;
    }
    case FIELD_FLOAT:
    case FIELD_DOUBLE: {
        double v = strtod(value, &end);
        const int range_error = errno == ERANGE; /* overflow, or underflow: checked below */
        if (end == value || *end || !isfinite(v) || (range_error && fabs(v) >= 1.0) ||
            (f->type == FIELD_FLOAT && isinf((float)v)))
            goto bad_real;
        const double stored = f->type == FIELD_FLOAT ? (double)(float)v : v;
        if (check_number(f, stored, value, err, errlen)) return -1;
        if (underflows(f, v) || (range_error && v == 0.0)) {
            char smallest[40];
            shortest_real(f->type == FIELD_FLOAT ? FLT_MIN : DBL_MIN, f->type == FIELD_FLOAT,
                          smallest, sizeof smallest);
            char scratch[64];
            const int zero_allowed = check_number(f, 0.0, "0", scratch, sizeof scratch) == 0;
            snprintf(err, errlen, "%s.%s = '%s': too small to be held as a %s (it would be 0 "
                     "or a denormal): use %sa magnitude of at least %s", f->section, f->key,
                     value, f->type == FIELD_FLOAT ? "float" : "double",
                     zero_allowed ? "0 or " : "", smallest);
            return -1;
        }
        if (f->type == FIELD_FLOAT) *FIELD_PTR(float, f, cfg) = (float)v;
        else *FIELD_PTR(double, f, cfg) = v;
        return 0;
    }
    case FIELD_SWITCH: {
        const int v = switch_value(value);
        if (v < 0) {
            snprintf(err, errlen, "%s.%s = '%s': not a switch: use 0 or 1 (true/false, yes/no "
                     "also work)", f->section, f->key, value);
            return -1;
        }
        *FIELD_PTR(int, f, cfg) = v;
        return 0;
    }
    case FIELD_TEXT: {
        const size_t n = strlen(value);
        if (n >= f->size) {
            snprintf(err, errlen, "%s.%s = '%s': longer than %zu characters: shorten it",
                     f->section, f->key, value, f->size - 1);
            return -1;
        }
        /* the whole buffer, so that structs compare as bytes */
        memset(FIELD_PTR(char, f, cfg), 0, f->size);
        memcpy(FIELD_PTR(char, f, cfg), value, n);
        return 0;
    }
    case FIELD_ENUM:
        for (int i = 0; f->enum_names[i]; i++)
            if (strcmp(value, f->enum_names[i]) == 0) {
                *FIELD_PTR(int, f, cfg) = i;
                return 0;
            }
        {
            char names[128] = "";
            for (int i = 0; f->enum_names[i]; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, f->enum_names[i], sizeof names - strlen(names) - 1);
            }
            snprintf(err, errlen, "%s.%s = '%s': use one of %s", f->section, f->key, value, names);
        }
        return -1;
    }
bad_integer:
    snprintf(err, errlen, "%s.%s = '%s': not an integer", f->section, f->key, value);
    return -1;
bad_real:
    snprintf(err, errlen, "%s.%s = '%s': not a finite number", f->section, f->key, value);
    return -1;
}

int config_fields_set_defaults(const config_field_t *fields, int count, void *cfg, size_t size,
                               char *err, size_t errlen)
{
    memset(cfg, 0, size);
    for (int i = 0; i < count; i++)
        if (config_field_parse(&fields[i], cfg, fields[i].default_value, err, errlen)) return -1;
    return 0;
}

static int enum_count(const config_field_t *f)
{
    int n = 0;
    while (f->enum_names[n]) n++;
    return n;
}

void config_field_format(const config_field_t *f, const void *cfg, char *buf, size_t len)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_SWITCH: snprintf(buf, len, "%d", *FIELD_PTR(const int, f, cfg)); break;
    case FIELD_LONG: snprintf(buf, len, "%ld", *FIELD_PTR(const long, f, cfg)); break;
    case FIELD_FLOAT: snprintf(buf, len, "%.9g", *FIELD_PTR(const float, f, cfg)); break;
    case FIELD_DOUBLE: snprintf(buf, len, "%.17g", *FIELD_PTR(const double, f, cfg)); break;
    case FIELD_TEXT: snprintf(buf, len, "%s", FIELD_PTR(const char, f, cfg)); break;
    case FIELD_ENUM: {
        int v = *FIELD_PTR(const int, f, cfg);
        snprintf(buf, len, "%s", v >= 0 && v < enum_count(f) ? f->enum_names[v] : "?");
        break;
    }
    }
}

/* The shortest "%.*g" text of v that config_field_parse reads back to v
 * (as a float when as_float: strtod, then the cast). */
void shortest_real(double v, int as_float, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (!isfinite(v)) {
        snprintf(buf, len, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        const double back = strtod(buf, NULL);
        if (as_float ? (float)back == (float)v : back == v) return;
    }
}

void config_field_format_short(const config_field_t *f, const void *cfg, char *buf, size_t len)
{
    if (f->type == FIELD_FLOAT || f->type == FIELD_DOUBLE)
        shortest_real(config_field_get_number(f, cfg), f->type == FIELD_FLOAT, buf, len);
    else config_field_format(f, cfg, buf, len);
}

static int field_equal(const config_field_t *f, const void *a, const void *b)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_SWITCH:
    case FIELD_ENUM: return *FIELD_PTR(const int, f, a) == *FIELD_PTR(const int, f, b);
    case FIELD_TEXT: return strcmp(FIELD_PTR(const char, f, a), FIELD_PTR(const char, f, b)) == 0;
    case FIELD_LONG: return *FIELD_PTR(const long, f, a) == *FIELD_PTR(const long, f, b);
    case FIELD_FLOAT:
        return memcmp(FIELD_PTR(const float, f, a), FIELD_PTR(const float, f, b), sizeof(float)) == 0;
    case FIELD_DOUBLE:
        return memcmp(FIELD_PTR(const double, f, a), FIELD_PTR(const double, f, b),
                      sizeof(double)) == 0;
    }
    return 0;
}

const config_field_t *config_fields_first_difference(const config_field_t *fields, int count,
                                                     const void *a, const void *b)
{
    for (int i = 0; i < count; i++)
        if (!field_equal(&fields[i], a, b)) return &fields[i];
    return NULL;
}

/* A bound in the precision of f's values. */
static double field_precision(const config_field_t *f, double bound)
{
    return f->type == FIELD_FLOAT ? (double)(float)bound : bound;
}

static int check_number(const config_field_t *f, double v, const char *text, char *err,
                        size_t errlen)
{
    const field_range_t *r = &f->range;
    const double lo = field_precision(f, r->min), hi = field_precision(f, r->max);
    char bound[40];
    const char *why = NULL;
    double limit = 0.0;
    if ((f->type == FIELD_FLOAT || f->type == FIELD_DOUBLE) && !isfinite(v))
        why = "must be a finite number";
    else if (r->min_open ? !(v > lo) : !(v >= lo))
        why = r->min_open ? "must be >" : "must be >=", limit = r->min;
    else if (r->max_open ? !(v < hi) : !(v <= hi))
        why = r->max_open ? "must be below" : "must be at most", limit = r->max;
    if (!why) return 0;
    if (isfinite(v)) shortest_real(limit, 0, bound, sizeof bound);
    else bound[0] = '\0';
    /* a range bounded on both sides is named whole: "..., in [0, 1)" */
    char interval[96] = "";
    if (isfinite(r->min) && isfinite(r->max)) {
        char lo_text[40], hi_text[40];
        shortest_real(r->min, 0, lo_text, sizeof lo_text);
        shortest_real(r->max, 0, hi_text, sizeof hi_text);
        snprintf(interval, sizeof interval, ", in %c%s, %s%c", r->min_open ? '(' : '[', lo_text,
                 hi_text, r->max_open ? ')' : ']');
    }
    snprintf(err, errlen, "%s.%s = '%s': %s%s%s%s (%s)", f->section, f->key, text, why,
             bound[0] ? " " : "", bound, interval, f->doc);
    return -1;
}

int config_field_check_range(const config_field_t *f, const void *cfg, char *err,
                             size_t errlen)
{
    if (f->type == FIELD_TEXT) return 0;
    const double v = config_field_get_number(f, cfg);
    if (f->type == FIELD_ENUM) {
        if (v >= 0 && v < enum_count(f)) return 0;
        snprintf(err, errlen, "%s.%s = %d: not one of its values (%s)", f->section, f->key,
                 *FIELD_PTR(const int, f, cfg), f->doc);
        return -1;
    }
    char value[64];
    config_field_format_short(f, cfg, value, sizeof value);
    if (check_number(f, v, value, err, errlen)) return -1;
    if ((f->type == FIELD_FLOAT || f->type == FIELD_DOUBLE) && underflows(f, v)) {
        snprintf(err, errlen, "%s.%s = '%s': a denormal number: use 0 or a normal one (%s)",
                 f->section, f->key, value, f->doc);
        return -1;
    }
    return 0;
}

int config_fields_check_ranges(const config_field_t *fields, int count, const void *cfg,
                               char *err, size_t errlen)
{
    for (int i = 0; i < count; i++)
        if (config_field_check_range(&fields[i], cfg, err, errlen)) return -1;
    return 0;
}

double config_field_get_number(const config_field_t *f, const void *cfg)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_SWITCH:
    case FIELD_ENUM: return *FIELD_PTR(const int, f, cfg);
    case FIELD_LONG: return (double)*FIELD_PTR(const long, f, cfg);
    case FIELD_FLOAT: return *FIELD_PTR(const float, f, cfg);
    case FIELD_DOUBLE: return *FIELD_PTR(const double, f, cfg);
    case FIELD_TEXT: break;
    }
    return 0.0;
}

void config_field_set_number(const config_field_t *f, void *cfg, double v)
{
    switch (f->type) {
    case FIELD_INT:
    case FIELD_SWITCH:
    case FIELD_ENUM: *FIELD_PTR(int, f, cfg) = (int)v; break;
    case FIELD_LONG: *FIELD_PTR(long, f, cfg) = (long)v; break;
    case FIELD_FLOAT: *FIELD_PTR(float, f, cfg) = (float)v; break;
    case FIELD_DOUBLE: *FIELD_PTR(double, f, cfg) = v; break;
    case FIELD_TEXT: break;
    }
}
