/* Experiment descriptors: INI text -> descriptor_t (see descriptor.h).
 *
 * The file is read into memory and handed to libinih through our own line
 * reader (ini_parse_stream), which counts lines (Debian's inih is built
 * without INI_HANDLER_LINENO), strips indentation (so an indented line is
 * never taken as an inih continuation of the previous value), checks section
 * headers, and refuses lines longer than libinih's fixed line buffer instead
 * of letting them be cut silently. The text is parsed twice: the first pass
 * only looks for model.preset, which is applied before everything else; the
 * second applies every key in file order. */
#include "experiments/descriptor.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "core/config/config_limits.h"
#include "io/io_path.h"
#include "io/text_escape.h"

/* libinih reads lines into a buffer of INI_MAX_LINE bytes, which must hold the
 * line plus "\r\n\0"; longer lines would be cut. inih also keeps at most
 * INI_KEY_MAX - 1 characters of a key (MAX_NAME in ini.c). */
#define LINE_CHARS_MAX (INI_MAX_LINE - 3)
#define INI_KEY_MAX 50
/* Capacity of the per-field bookkeeping (checked at run time). */
#define MAX_FIELDS 64

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* ------------------------------------------------------------------------ */
/* The tables                                                               */

static const char *const reduction_names[] = {"deterministic", "fast", "auto", NULL};
static const char *const sampling_names[] = {"global", "shard-local", NULL};
static const char *const precision_names[] = {"f32", "bf16", NULL};

/* (The range macros expand to braces with commas: each macro here builds
 * its row itself rather than passing them on to another macro.) */
#define RUN_ROW(sec, key, type, member, names, def, range, doc, default_doc)               \
    {sec, key, type, offsetof(run_config_t, member), CONFIG_MEMBER_SIZE(run_config_t, member), \
     names, def, range, doc, default_doc}
#define R(sec, key, type, member, def, range, doc)                                         \
    {sec, key, type, offsetof(run_config_t, member), CONFIG_MEMBER_SIZE(run_config_t, member), \
     NULL, def, range, doc, NULL}
/* Text keys: the default column shows default_doc when the default is
 * derived at load time (run.name, run.out_dir). */
#define R_TEXT(sec, key, member, def, doc, default_doc)                                    \
    {sec, key, FIELD_TEXT, offsetof(run_config_t, member),                                \
     CONFIG_MEMBER_SIZE(run_config_t, member), NULL, def, RANGE_ANY, doc, default_doc}

const config_field_t run_config_fields[] = {
    R_TEXT("model", "preset", preset, "fmnist-tiny",
           "model preset applied before every other key, wherever it appears: fmnist-tiny, "
           "vit-b16 or test-small; it sets every model, mimae, optim and train.global_batch "
           "default (this table shows fmnist-tiny's)", NULL),
    R_TEXT("data", "train", train_data, "", "HDF5 training set (required to train)", NULL),
    R_TEXT("data", "test", test_data, "", "HDF5 test set for evaluation (empty: none)", NULL),
    R("data", "train_limit", FIELD_LONG, train_limit, "0", RANGE_AT_LEAST(0),
      "use only the first n training images (0: all)"),
    R("data", "test_limit", FIELD_LONG, test_limit, "0", RANGE_AT_LEAST(0),
      "use only the first n test images (0: all)"),
    RUN_ROW("data", "sampling", FIELD_ENUM, sampling, sampling_names, "global", RANGE_ANY,
            "data order: global (a permutation of the whole set from (seed, epoch), the same "
            "on any rank count) or shard-local (rank r of R reads only the shards s with s mod "
            "R = r of a sharded data.train, in a shard order shuffled per epoch and shuffled "
            "within each; the shard count must be a multiple of R)", NULL),
    R_TEXT("data", "stage_dir", stage_dir, "",
           "node-local directory each rank copies the index and its shards of data.train to "
           "before training (shard-local only; skipped for files already there with the same "
           "name, size and time; empty: read data.train in place)", NULL),
    R_TEXT("run", "out_dir", out_dir, "", "directory of checkpoints, results and logs",
           "runs/<name>"),
    R_TEXT("run", "name", name, "", "run name used in file names and reports (no '/')",
           "descriptor file name without .ini"),
    R("run", "checkpoint_every", FIELD_LONG, checkpoint_every, "500", RANGE_AT_LEAST(0),
      "optimiser steps between checkpoints (0: only at the end)"),
    R("run", "keep_checkpoints", FIELD_INT, keep_checkpoints, "2", RANGE_AT_LEAST(1),
      "checkpoints kept on disk, the newest ones"),
    R("run", "log_every", FIELD_LONG, log_every, "10", RANGE_AT_LEAST(1),
      "optimiser steps between progress lines"),
    R("run", "recon_samples", FIELD_INT, recon_samples, "8", RANGE_AT_LEAST(0),
      "images in the reconstruction PNG (0: none)"),
    R("train", "seed", FIELD_LONG, seed, "0", RANGE_AT_LEAST(0),
      "seed of every random stream: init, data order, masks, augmentation"),
    R("train", "epochs", FIELD_LONG, epochs, "10", RANGE_AT_LEAST(1),
      "passes over the training images"),
    R("train", "view_epochs", FIELD_LONG, view_epochs, "0", RANGE_AT_LEAST(0),
      "training length in masked-view passes (0: unused): sets train.epochs = view_epochs / "
      "mimae.num_masks, which must divide it, so runs with other mask counts get equal "
      "compute; the file gives this or train.epochs, and setting one (arm, --set) replaces "
      "the other"),
    R("train", "max_steps", FIELD_LONG, max_steps, "0", RANGE_AT_LEAST(0),
      "stop after this many optimiser steps (0: the epochs decide; the schedule is unchanged)"),
    R("train", "micro_batch", FIELD_INT, micro_batch, "0", RANGE_AT_LEAST(0),
      "images per forward pass on a rank, gradients accumulated (0: the whole per-rank "
      "batch); must divide global_batch"),
    RUN_ROW("train", "reduction", FIELD_ENUM, reduction, reduction_names, "auto", RANGE_ANY,
            "gradient reduction: deterministic, fast or auto (deterministic for <= 8 ranks)",
            NULL),
    RUN_ROW("train", "precision", FIELD_ENUM, precision, precision_names, "f32", RANGE_ANY,
            "the linear layers' matrix products: f32 (OpenBLAS) or bf16 (operands rounded to "
            "bf16, f32 sums and results, through oneDNN; needs AVX512-BF16 or AMX); weights, "
            "gradients, AdamW, norms, softmax and the losses stay f32",
            NULL),
    R("train", "memory_budget_gb", FIELD_DOUBLE, memory_budget_gb, "0", RANGE_AT_LEAST(0),
      "most memory a rank's model may take, GiB (parameters, gradients, AdamW moments, "
      "activations; 0: no limit): the deterministic reduction keeps every micro-batch's "
      "activations when they fit and recomputes each forward otherwise"),
    R("train", "augment", FIELD_SWITCH, augment, "1", RANGE_BETWEEN(0, 1),
      "1: random resized crop + horizontal flip"),
    R("optim", "warmup_epochs", FIELD_DOUBLE, warmup_epochs, "1", RANGE_AT_LEAST(0),
      "warmup length in epochs: sets optim.warmup_iters = round(warmup_epochs x steps per "
      "epoch) unless optim.warmup_iters is given"),
    R("eval", "every_epochs", FIELD_INT, eval_every_epochs, "0", RANGE_AT_LEAST(0),
      "epochs between evaluations (0: only at the end)"),
    R("eval", "linear_probe", FIELD_SWITCH, eval_linear_probe, "1", RANGE_BETWEEN(0, 1),
      "1: linear probe (ridge regression) on the frozen encoder features"),
    R("eval", "knn", FIELD_SWITCH, eval_knn, "1", RANGE_BETWEEN(0, 1),
      "1: k-nearest-neighbour accuracy (k = 20, cosine)"),
    R("eval", "mi", FIELD_SWITCH, eval_mi, "1", RANGE_BETWEEN(0, 1),
      "1: MI statistics (InfoNCE bound, CLUB, Gaussian I between masks)"),
    R("eval", "finetune", FIELD_SWITCH, eval_finetune, "0", RANGE_BETWEEN(0, 1),
      "1: end-to-end fine-tuning with a linear head"),
    R("eval", "knn_k", FIELD_INT, knn_k, "20", RANGE_AT_LEAST(1),
      "neighbours of the k-NN classifier"),
    R("eval", "mi_images", FIELD_LONG, mi_images, "512", RANGE_AT_LEAST(2),
      "training images (the first ones, unaugmented) of the fixed MI-statistics batch"),
    R("eval", "finetune_epochs", FIELD_INT, finetune_epochs, "5", RANGE_AT_LEAST(1),
      "fine-tuning epochs"),
    R("eval", "finetune_blr", FIELD_DOUBLE, finetune_blr, "5e-4", RANGE_AT_LEAST(0),
      "fine-tuning base lr; lr = finetune_blr * global_batch / 256, warmup 1 epoch + cosine"),
    R("eval", "layer_decay", FIELD_DOUBLE, layer_decay, "0.65", RANGE_BETWEEN(0, 1),
      "layer-wise lr decay of fine-tuning (block i of depth d gets decay^(d + 1 - (i + 1)))"),
    R("eval", "label_smoothing", FIELD_DOUBLE, label_smoothing, "0.1", RANGE_BELOW_FROM(0, 1),
      "label smoothing of the fine-tuning cross-entropy"),
    R("eval", "label_fraction", FIELD_DOUBLE, label_fraction, "1", RANGE_BETWEEN(0, 1),
      "share of the training labels fine-tuning may use (0.01 for the paper's FT 1 %)"),
};
const int run_config_field_count = sizeof run_config_fields / sizeof run_config_fields[0];

/* Sections in the order descriptor_write and the reference use. */
static const char *const section_names[] = {"model", "mimae", "optim", "train", "data",
                                            "run", "eval", "sweep", NULL};

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */

enum { KEY_MODEL = 0, KEY_RUN = 1, KEY_KINDS = 2 };

typedef struct {
    int kind, index;
} key_ref_t;

static const config_field_t *ref_field(key_ref_t r)
{
    return r.kind == KEY_MODEL ? &mimae_config_fields[r.index] : &run_config_fields[r.index];
}

static const char *ref_section(key_ref_t r)
{
    return ref_field(r)->section;
}

static const char *ref_key(key_ref_t r)
{
    return ref_field(r)->key;
}

static int kind_count(int kind)
{
    return kind == KEY_MODEL ? mimae_config_field_count : run_config_field_count;
}

/* The struct a key's row describes. */
static void *ref_base(descriptor_t *d, key_ref_t r)
{
    return r.kind == KEY_MODEL ? (void *)&d->model : (void *)&d->run;
}

static const void *ref_cbase(const descriptor_t *d, key_ref_t r)
{
    return r.kind == KEY_MODEL ? (const void *)&d->model : (const void *)&d->run;
}

static int find_key(const char *section, const char *key, key_ref_t *out)
{
    for (int kind = 0; kind < KEY_KINDS; kind++)
        for (int i = 0; i < kind_count(kind); i++) {
            key_ref_t r = {kind, i};
            if (strcmp(ref_section(r), section) == 0 && strcmp(ref_key(r), key) == 0) {
                *out = r;
                return 0;
            }
        }
    return -1;
}

/* A key this file itself names (a missing one is a bug in the tables). */
static key_ref_t known_key(const char *section, const char *key)
{
    key_ref_t r = {KEY_RUN, 0};
    if (find_key(section, key, &r)) {
        fprintf(stderr, "mimae: internal: no key %s.%s in the key tables\n", section, key);
        abort();
    }
    return r;
}

static int is_preset(key_ref_t r)
{
    return strcmp(ref_section(r), "model") == 0 && strcmp(ref_key(r), "preset") == 0;
}

/* The keys of a section in the order files and the reference list them:
 * text keys (model.preset first of all), then the model's, then the run's.
 * Returns how many (out holds 2 * MAX_FIELDS). */
static int section_keys(const char *section, key_ref_t *out)
{
    int n = 0;
    for (int pass = 0; pass < 3; pass++) {
        const int kind = pass == 1 ? KEY_MODEL : KEY_RUN;
        for (int i = 0; i < kind_count(kind); i++) {
            key_ref_t r = {kind, i};
            const int text = ref_field(r)->type == FIELD_TEXT;
            if (strcmp(ref_section(r), section) || (pass == 0 && !text) || (pass == 2 && text))
                continue;
            if (n < 2 * MAX_FIELDS) out[n++] = r; /* descriptor_load refuses larger tables */
        }
    }
    return n;
}

static int is_section(const char *name)
{
    for (int i = 0; section_names[i]; i++)
        if (strcmp(section_names[i], name) == 0) return 1;
    return 0;
}

/* Levenshtein distance ignoring case (ENC_DIM is a typo of enc_dim; short
 * ASCII strings, long ones count as far apart). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 64 || lb >= 64) return INT_MAX / 2;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            const int differ = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = diag + differ;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* How far a typo may be from the intended name. */
static int typo_limit(const char *s)
{
    size_t n = strlen(s);
    return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

/* Best guess for an unknown key: the same key in another section, else the
 * closest key of the section, else the closest key anywhere. Returns 0 for
 * no guess, 1 for a key of the same section, 2 for another section. */
static int suggest_key(const char *section, const char *key, key_ref_t *out)
{
    for (int kind = 0; kind < KEY_KINDS; kind++)
        for (int i = 0; i < kind_count(kind); i++) {
            key_ref_t r = {kind, i};
            if (strcmp(ref_key(r), key) == 0) {
                *out = r;
                return 2;
            }
        }
    int best_same = INT_MAX, best_any = INT_MAX;
    key_ref_t same = {0, 0}, any = {0, 0};
    for (int kind = 0; kind < KEY_KINDS; kind++)
        for (int i = 0; i < kind_count(kind); i++) {
            key_ref_t r = {kind, i};
            int dist = edit_distance(key, ref_key(r));
            if (strcmp(ref_section(r), section) == 0 && dist < best_same) best_same = dist, same = r;
            if (dist < best_any) best_any = dist, any = r;
        }
    if (best_same <= typo_limit(key)) {
        *out = same;
        return 1;
    }
    if (best_any <= typo_limit(key)) {
        *out = any;
        return strcmp(ref_section(any), section) == 0 ? 1 : 2;
    }
    return 0;
}

static const char *suggest_section(const char *name)
{
    const char *best = NULL;
    int best_dist = INT_MAX;
    for (int i = 0; section_names[i]; i++) {
        int dist = edit_distance(name, section_names[i]);
        if (dist < best_dist) best_dist = dist, best = section_names[i];
    }
    return best_dist <= typo_limit(name) ? best : NULL;
}

/* Appends to a message buffer, keeping it terminated. */
static void append(char *buf, size_t len, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* "(did you mean ...?)" or the list of the section's keys. `file_style`
 * names keys as in a file (plain key, or "[section] key"), else as
 * section.key. */
static void unknown_key_hint(char *buf, size_t len, const char *section, const char *key,
                             int file_style)
{
    key_ref_t r;
    int kind = suggest_key(section, key, &r);
    if (kind == 1 && file_style) {
        append(buf, len, " (did you mean %s?)", ref_key(r));
    } else if (kind == 2 && file_style) {
        append(buf, len, " (did you mean [%s] %s?)", ref_section(r), ref_key(r));
    } else if (kind) {
        append(buf, len, " (did you mean %s.%s?)", ref_section(r), ref_key(r));
    } else {
        append(buf, len, ": the keys of [%s] are", section);
        key_ref_t keys[2 * MAX_FIELDS];
        const int n = section_keys(section, keys);
        for (int i = 0; i < n; i++) append(buf, len, "%s %s", i ? "," : "", ref_key(keys[i]));
    }
}

static void section_list(char *buf, size_t len)
{
    for (int i = 0; section_names[i]; i++)
        append(buf, len, "%s[%s]", i ? ", " : "", section_names[i]);
    append(buf, len, " or [arm NAME]");
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */

static void copy_string(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    memcpy(dst, src, strlen(src));
}

/* A text value must fit its buffer, must survive being written as
 * "key = value" and read back by libinih, and must not look like a comment. */
static int check_text(const char *key, const char *value, size_t size, char *why, size_t len)
{
    size_t n = strlen(value);
    if (n >= size) {
        snprintf(why, len, "longer than %zu characters: shorten it", size - 1);
        return -1;
    }
    if (strlen(key) + 3 + n > (size_t)LINE_CHARS_MAX) {
        snprintf(why, len,
                 "too long: a descriptor line holds at most %d characters (libinih's line "
                 "buffer): shorten it, e.g. through a symbolic link",
                 LINE_CHARS_MAX);
        return -1;
    }
    /* libinih takes a ';' after a blank for a comment, and the writer puts
     * one after the '=': "key =;x" reads ";x", "key = ;x" reads "". */
    if (value[0] == ';' || value[0] == '#') {
        snprintf(why, len, "starts with '%c', which reads as a comment once written as 'key = "
                 "value': remove it", value[0]);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, len, "contains a control character: remove it");
            return -1;
        }
        if ((c == ';' || c == '#') && i > 0 && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
            snprintf(why, len,
                     "contains '%c' after a space, which reads as a comment: remove the "
                     "comment (inline comments start with ' ;')",
                     c);
            return -1;
        }
    }
    return 0;
}

/* Parses `value` into the key `r` of d (the preset name is only checked
 * and stored here: applying it is the caller's business). On error writes
 * "<prefix>section.key = 'value': why" and returns -1. */
static int apply_value(descriptor_t *d, key_ref_t r, const char *value, const char *prefix,
                       char *err, size_t errlen)
{
    const config_field_t *f = ref_field(r);
    char why[512] = "";
    if (f->type == FIELD_TEXT) {
        if (check_text(f->key, value, f->size, why, sizeof why)) goto fail;
        mimae_config_t scratch;
        if (is_preset(r) && mimae_config_preset(&scratch, value)) {
            snprintf(why, sizeof why, "unknown preset: use fmnist-tiny, vit-b16 or test-small");
            goto fail;
        }
    }
    char msg[512];
    if (config_field_parse(f, ref_base(d, r), value, msg, sizeof msg) == 0) return 0;
    /* The core message is "section.key = 'value': why"; keep our prefix. */
    snprintf(err, errlen, "%s%s%s", prefix, msg,
             strchr(value, '#') ? " (inline comments start with ' ;', not '#')" : "");
    return -1;
fail:
    snprintf(err, errlen, "%s%s.%s = '%s': %s", prefix, f->section, f->key, value, why);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* [sweep] entries                                                           */

const char *descriptor_sweep_target(const char *entry)
{
    return strcmp(entry, DESCRIPTOR_SWEEP_SEEDS) == 0 ? "train.seed" : entry;
}

int descriptor_sweep_split(const char *list, char values[][DESCRIPTOR_SWEEP_VALUE_MAX], int max,
                           char *why, size_t whylen)
{
    int n = 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        const char *a = p, *b = comma ? comma : p + strlen(p);
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        const size_t len = (size_t)(b - a);
        if (len == 0) {
            snprintf(why, whylen, "empty value %s: list the values to sweep, separated by ','",
                     !*list ? "list" : comma ? "before a ','" : "after the last ','");
            return -1;
        }
        if (n == max) {
            snprintf(why, whylen, "more than %d values: split the sweep", max);
            return -1;
        }
        if (len >= DESCRIPTOR_SWEEP_VALUE_MAX) {
            snprintf(why, whylen, "value '%.*s...' longer than %d characters: shorten it", 16, a,
                     DESCRIPTOR_SWEEP_VALUE_MAX - 1);
            return -1;
        }
        memcpy(values[n], a, len);
        values[n++][len] = '\0';
        if (!comma) return n;
        p = comma + 1;
    }
}

/* A "section.key" of the key tables: 0 with *r; -1 with why = "<shown>:
 * unknown key (did you mean ...?)"; -2 when it is not shaped section.key
 * (why untouched: the caller says what the shape should be). */
static int dotted_key(const char *dotted, const char *shown, key_ref_t *r, char *why,
                      size_t whylen)
{
    char section[32], key[64];
    const char *dot = strchr(dotted, '.');
    if (!dot || dot == dotted || (size_t)(dot - dotted) >= sizeof section ||
        strlen(dot + 1) >= sizeof key || strchr(dot + 1, '.'))
        return -2;
    memcpy(section, dotted, (size_t)(dot - dotted));
    section[dot - dotted] = '\0';
    snprintf(key, sizeof key, "%s", dot + 1);
    if (!is_section(section) || strcmp(section, "sweep") == 0 || find_key(section, key, r)) {
        snprintf(why, whylen, "%s: unknown key", shown);
        const char *guess = is_section(section) ? section : suggest_section(section);
        if (guess && strcmp(guess, "sweep")) unknown_key_hint(why, whylen, guess, key, 0);
        return -1;
    }
    return 0;
}

/* The key both spellings of one setting stand for: train.seed for the
 * [sweep] shorthand seeds, train.epochs for train.view_epochs (epochs x
 * mimae.num_masks). */
static const char *setting_of(const char *key)
{
    key = descriptor_sweep_target(key);
    return strcmp(key, "train.view_epochs") == 0 ? "train.epochs" : key;
}

int descriptor_same_setting(const char *a, const char *b)
{
    return strcmp(setting_of(a), setting_of(b)) == 0;
}

/* With arms, [sweep] lists only seeds: the arms are the variants. */
static int sweep_entry_beside_arms(const descriptor_t *d, int i, char *why, size_t whylen)
{
    if (d->arm_count == 0 || strcmp(descriptor_sweep_target(d->sweep_keys[i]), "train.seed") == 0)
        return 0;
    snprintf(why, whylen, "%s: a descriptor with [arm NAME] sections sweeps only seeds: put the "
             "values into arms (one arm per value, each with its own %s = VALUE line)",
             d->sweep_keys[i], d->sweep_keys[i]);
    return -1;
}

/* Keys a task cannot take from the [sweep]: the ones every task gets from
 * the sweep itself, and the preset, which resets the model under the other
 * keys (the checks of the sweep would not see the model each task runs). */
static const struct {
    const char *key, *why;
} unsweepable[] = {
    {"run.out_dir", "every task runs in its own run.out_dir/task-NNNN: set the sweep's "
                    "directory in [run]"},
    {"run.name", "every task is named <run.name>-taskNNNN: set the sweep's name in [run]"},
    {"model.preset", "a preset resets every model key before the file's: sweep the model keys "
                     "themselves, or write one descriptor per preset"},
};

/* Two values of one key mean the same (numbers by value: 0.5 and 0.50). */
static int same_value(const config_field_t *f, const void *a, const void *b)
{
    if (f->type == FIELD_TEXT)
        return strcmp((const char *)a + f->offset, (const char *)b + f->offset) == 0;
    return config_field_get_number(f, a) == config_field_get_number(f, b);
}

/* Entry i of d's [sweep] against the key tables and entries 0..i-1 (lines:
 * their file lines, or NULL). On error, why holds the message after
 * "[sweep] ". */
static int check_sweep_entry(const descriptor_t *d, int i, const int *lines, char *why,
                             size_t whylen)
{
    const char *entry = d->sweep_keys[i], *list = d->sweep_values[i];
    const char *target = descriptor_sweep_target(entry);
    key_ref_t r;
    const int found = dotted_key(target, entry, &r, why, whylen);
    if (found == -2)
        snprintf(why, whylen, "%s: a sweep key must look like section.key (e.g. "
                 "mimae.mask_ratio = 0.5, 0.75) or be seeds", entry);
    if (found) return -1;
    if (sweep_entry_beside_arms(d, i, why, whylen)) return -1;
    for (size_t k = 0; k < sizeof unsweepable / sizeof unsweepable[0]; k++)
        if (strcmp(target, unsweepable[k].key) == 0) {
            snprintf(why, whylen, "%s: cannot be swept: %s", entry, unsweepable[k].why);
            return -1;
        }
    for (int j = 0; j < i; j++) {
        if (!descriptor_same_setting(d->sweep_keys[j], entry)) continue;
        char where[32] = "";
        if (lines) snprintf(where, sizeof where, " (first on line %d)", lines[j]);
        if (strcmp(d->sweep_keys[j], entry) == 0)
            snprintf(why, whylen, "%s: duplicate key%s: keep one of them", entry, where);
        else if (strcmp(target, "train.seed") == 0)
            snprintf(why, whylen, "%s: sweeps train.seed, as %s%s does (seeds is its "
                     "shorthand): keep one of them", entry, d->sweep_keys[j], where);
        else
            snprintf(why, whylen, "%s: sweeps the training length, as %s%s does "
                     "(view_epochs = epochs x mimae.num_masks): keep one of them", entry,
                     d->sweep_keys[j], where);
        return -1;
    }
    /* The list is written back as "entry = list": it must read back. */
    char tail[256];
    if (check_text(entry, list, sizeof d->sweep_values[0], tail, sizeof tail)) {
        snprintf(why, whylen, "%s = '%s': %s", entry, list, tail);
        return -1;
    }
    /* Every value parses for its key, and no two mean the same. */
    char values[DESCRIPTOR_SWEEP_MAX_VALUES][DESCRIPTOR_SWEEP_VALUE_MAX];
    const int n = descriptor_sweep_split(list, values, DESCRIPTOR_SWEEP_MAX_VALUES, tail,
                                         sizeof tail);
    if (n < 0) {
        snprintf(why, whylen, "%s = '%s': %s", entry, list, tail);
        return -1;
    }
    descriptor_t *scratch = malloc(2 * sizeof *scratch);
    if (!scratch) {
        snprintf(why, whylen, "%s: out of memory", entry);
        return -1;
    }
    const config_field_t *f = ref_field(r);
    char prefix[sizeof d->sweep_keys[0] + 8];
    snprintf(prefix, sizeof prefix, "%s%s", strcmp(entry, target) ? entry : "",
             strcmp(entry, target) ? ": " : "");
    int rc = 0;
    for (int a = 0; a < n && rc == 0; a++) {
        scratch[0] = *d;
        rc = apply_value(&scratch[0], r, values[a], prefix, why, whylen);
        for (int b = 0; b < a && rc == 0; b++) {
            scratch[1] = *d;
            if (apply_value(&scratch[1], r, values[b], prefix, why, whylen) == 0 &&
                same_value(f, ref_cbase(&scratch[0], r), ref_cbase(&scratch[1], r))) {
                if (strcmp(values[a], values[b]) == 0)
                    snprintf(why, whylen, "%s = '%s': %s is listed twice: keep one", entry, list,
                             values[a]);
                else
                    snprintf(why, whylen, "%s = '%s': %s and %s are the same value, listed "
                             "twice: keep one", entry, list, values[b], values[a]);
                rc = -1;
            }
        }
    }
    free(scratch);
    return rc;
}

int descriptor_check_sweep_entry(const descriptor_t *d, int i, char *why, size_t whylen)
{
    if (i < 0 || i >= d->sweep_count) {
        snprintf(why, whylen, "internal: no [sweep] entry %d", i);
        return -1;
    }
    return check_sweep_entry(d, i, NULL, why, whylen);
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */

typedef struct {
    descriptor_t *d;
    const char *file;        /* name for messages */
    const char *buf;         /* the whole file */
    size_t len, pos;
    int line;                /* line the reader handed out last */
    int pass;                /* 1: find model.preset; 2: apply the rest */
    int preset_line;         /* line of model.preset in the file (0: none) */
    char preset[CONFIG_MEMBER_SIZE(run_config_t, preset)];
    int origin[KEY_KINDS][MAX_FIELDS]; /* 0 default, > 0 file line, -1 --set */
    int sweep_line[DESCRIPTOR_MAX_SWEEP_KEYS];
    int failed;
    char *err;
    size_t errlen;
} load_state_t;

static void fail(load_state_t *st, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(load_state_t *st, const char *fmt, ...)
{
    if (st->failed) return;
    st->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
}

/* An arm's name: it names the arm's task directories and runs. */
static int arm_name_ok(const char *name, size_t n)
{
    if (n < 1 || n > DESCRIPTOR_ARM_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The header [arm NAME], its name between a and b: checked, and in the
 * pass that applies keys the arm starts here. str gets "[arm NAME]". */
static char *arm_header(load_state_t *st, const char *a, const char *b, char *str, int num)
{
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    const size_t n = (size_t)(b - a);
    if (!arm_name_ok(a, n)) {
        fail(st, "%s:%d: [arm %.*s%s]: an arm's name is 1 to %d letters, digits, '-', '_' or '.' "
             "(it names the arm's task directories): rename it", st->file, st->line,
             (int)(n < 48 ? n : 48), a, n < 48 ? "" : "...", DESCRIPTOR_ARM_NAME_MAX);
        return NULL;
    }
    descriptor_t *d = st->d;
    char name[DESCRIPTOR_ARM_NAME_MAX + 1];
    memcpy(name, a, n);
    name[n] = '\0';
    if (st->pass == 2) {
        for (int i = 0; i < d->arm_count; i++)
            if (strcmp(d->arms[i].name, name) == 0) {
                fail(st, "%s:%d: [arm %s]: a second arm of this name (the first is on line %d): "
                     "rename one", st->file, st->line, name, d->arms[i].line);
                return NULL;
            }
        if (d->arm_count == DESCRIPTOR_MAX_ARMS) {
            fail(st, "%s:%d: [arm %s]: more than %d arms: split the descriptor", st->file,
                 st->line, name, DESCRIPTOR_MAX_ARMS);
            return NULL;
        }
        const int i = d->arm_count++;
        copy_string(d->arms[i].name, sizeof d->arms[i].name, name);
        d->arms[i].line = st->line;
        d->arms[i].first = d->arm_set_count;
        d->arms[i].count = 0;
    }
    snprintf(str, (size_t)num, "[arm %s]", name);
    return str;
}

/* The ini_reader: one line per call, line numbers counted, indentation and
 * trailing CR/blanks removed, section headers checked and normalised. */
static char *read_line(char *str, int num, void *stream)
{
    load_state_t *st = stream;
    if (st->failed || st->pos >= st->len) return NULL;
    const char *p = st->buf + st->pos, *end = st->buf + st->len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    st->pos = (size_t)((nl ? nl + 1 : end) - st->buf);
    st->line++;

    if (memchr(p, '\0', (size_t)(stop - p))) {
        fail(st, "%s:%d: the line contains a NUL byte: a descriptor is plain text",
             st->file, st->line);
        return NULL;
    }
    if (st->line == 1 && stop - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* a UTF-8 byte order mark: the header behind it is checked like any other */
    while (p < stop && (*p == ' ' || *p == '\t')) p++;
    while (stop > p && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t')) stop--;
    size_t n = (size_t)(stop - p);
    if (n > (size_t)LINE_CHARS_MAX || n + 1 > (size_t)num) {
        fail(st,
             "%s:%d: the line has %zu characters; libinih reads at most %d: shorten it "
             "(a long path can go through a symbolic link)",
             st->file, st->line, n, LINE_CHARS_MAX);
        return NULL;
    }

    if (n && *p == '[') {
        const char *close = memchr(p, ']', n);
        if (close) {
            const char *a = p + 1, *b = close;
            while (a < b && (*a == ' ' || *a == '\t')) a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
            char name[64];
            size_t nn = (size_t)(b - a) < sizeof name - 1 ? (size_t)(b - a) : sizeof name - 1;
            memcpy(name, a, nn);
            name[nn] = '\0';
            const char *rest = close + 1;
            while (rest < stop && (*rest == ' ' || *rest == '\t')) rest++;
            if (rest < stop && *rest != ';' && *rest != '#') {
                fail(st, "%s:%d: [%s]: text after the section header: put keys on their own "
                     "lines", st->file, st->line, name);
                return NULL;
            }
            if (b - a >= 3 && memcmp(a, "arm", 3) == 0 &&
                (b - a == 3 || a[3] == ' ' || a[3] == '\t'))
                return arm_header(st, a + 3, b, str, num);
            if (!is_section(name)) {
                const char *guess = suggest_section(name);
                char list[160] = "";
                section_list(list, sizeof list);
                if (guess)
                    fail(st, "%s:%d: [%s]: unknown section (did you mean [%s]?)", st->file,
                         st->line, name, guess);
                else
                    fail(st, "%s:%d: [%s]: unknown section: use one of %s", st->file, st->line,
                         name, list);
                return NULL;
            }
            snprintf(str, (size_t)num, "[%s]", name);
            return str;
        }
    } else if (n && *p != ';' && *p != '#') {
        /* A key longer than inih keeps would be cut silently. */
        size_t k = 0;
        while (k < n && p[k] != '=' && p[k] != ':') k++;
        while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t')) k--;
        if (k >= INI_KEY_MAX) {
            fail(st, "%s:%d: '%.*s...': key longer than %d characters: no such key", st->file,
                 st->line, 40, p, INI_KEY_MAX - 1);
            return NULL;
        }
    }
    memcpy(str, p, n);
    str[n] = '\0';
    return str;
}

static void location(const load_state_t *st, key_ref_t r, char *buf, size_t len)
{
    int o = st->origin[r.kind][r.index];
    if (o > 0) snprintf(buf, len, "%s:%d: ", st->file, o);
    else if (o < 0) snprintf(buf, len, "%s: --set ", st->file);
    else snprintf(buf, len, "%s: ", st->file);
}

static int on_sweep_key(load_state_t *st, const char *key, const char *value)
{
    descriptor_t *d = st->d;
    if (d->sweep_count == DESCRIPTOR_MAX_SWEEP_KEYS) {
        fail(st, "%s:%d: [sweep] %s: more than %d sweep keys: split the sweep", st->file,
             st->line, key, DESCRIPTOR_MAX_SWEEP_KEYS);
        return 0;
    }
    char why[DESCRIPTOR_PATH_MAX];
    const int i = d->sweep_count;
    if (strlen(key) >= sizeof d->sweep_keys[0]) {
        fail(st, "%s:%d: [sweep] %.40s...: key longer than %zu characters: no such key",
             st->file, st->line, key, sizeof d->sweep_keys[0] - 1);
        return 0;
    }
    if (strlen(value) >= sizeof d->sweep_values[0]) {
        fail(st, "%s:%d: [sweep] %s: value list longer than %zu characters: split the sweep",
             st->file, st->line, key, sizeof d->sweep_values[0] - 1);
        return 0;
    }
    copy_string(d->sweep_keys[i], sizeof d->sweep_keys[0], key);
    copy_string(d->sweep_values[i], sizeof d->sweep_values[0], value);
    st->sweep_line[i] = st->line;
    if (check_sweep_entry(d, i, st->sweep_line, why, sizeof why)) {
        fail(st, "%s:%d: [sweep] %s", st->file, st->line, why);
        return 0;
    }
    d->sweep_count++;
    return 1;
}

/* A line of the arm just started: `section.key = value`, checked as a --set
 * of the key is, kept as "section.key=value". */
static int on_arm_key(load_state_t *st, const char *key, const char *value)
{
    descriptor_t *d = st->d;
    char where[DESCRIPTOR_PATH_MAX + 96], why[DESCRIPTOR_PATH_MAX];
    if (d->arm_count == 0) { /* the reader starts every arm; kept for safety */
        fail(st, "%s:%d: %s: a key of no arm", st->file, st->line, key);
        return 0;
    }
    const int a = d->arm_count - 1;
    snprintf(where, sizeof where, "%s:%d: [arm %s] ", st->file, st->line, d->arms[a].name);
    key_ref_t r;
    const int found = dotted_key(key, key, &r, why, sizeof why);
    if (found == -2) {
        fail(st, "%s%s = '%s': an arm's line names its key with the section (e.g. mimae.w_max = "
             "0): write section.key = value", where, key, value);
        return 0;
    }
    if (found) {
        fail(st, "%s%s", where, why);
        return 0;
    }
    for (size_t k = 0; k < sizeof unsweepable / sizeof unsweepable[0]; k++)
        if (strcmp(key, unsweepable[k].key) == 0) {
            fail(st, "%s%s: cannot be set in an arm: %s", where, key, unsweepable[k].why);
            return 0;
        }
    if (strcmp(key, "train.seed") == 0) {
        fail(st, "%s%s: cannot be set in an arm: the seeds come from [sweep] seeds (or [train] "
             "seed) and name each task (task-NNNN-ARM-seedS): list them there", where, key);
        return 0;
    }
    for (int j = d->arms[a].first; j < d->arms[a].first + d->arms[a].count; j++) {
        char other[DESCRIPTOR_ARM_SET_MAX];
        snprintf(other, sizeof other, "%.*s", (int)descriptor_arm_set_key_len(d->arm_sets[j]),
                 d->arm_sets[j]);
        if (!descriptor_same_setting(other, key)) continue;
        if (strcmp(other, key) == 0)
            fail(st, "%s%s: set twice in the arm (first on line %d): keep one of them", where, key,
                 d->arm_set_lines[j]);
        else
            fail(st, "%s%s: %s on line %d sets the training length already (view_epochs = epochs "
                 "x mimae.num_masks): keep one of them", where, key, other, d->arm_set_lines[j]);
        return 0;
    }
    if (d->arms[a].count == DESCRIPTOR_ARM_MAX_SETS || d->arm_set_count == DESCRIPTOR_ARMS_MAX_SETS) {
        fail(st, "%s%s: more than %d overrides %s: split the descriptor", where, key,
             d->arms[a].count == DESCRIPTOR_ARM_MAX_SETS ? DESCRIPTOR_ARM_MAX_SETS
                                                         : DESCRIPTOR_ARMS_MAX_SETS,
             d->arms[a].count == DESCRIPTOR_ARM_MAX_SETS ? "in one arm" : "in all arms together");
        return 0;
    }
    /* written back as "section.key = value": it must read back */
    if (check_text(key, value, DESCRIPTOR_ARM_SET_MAX - strlen(key) - 1, why, sizeof why)) {
        fail(st, "%s%s = '%s': %s", where, key, value, why);
        return 0;
    }
    descriptor_t *scratch = malloc(sizeof *scratch);
    if (!scratch) {
        fail(st, "%s%s: out of memory", where, key);
        return 0;
    }
    *scratch = *d;
    const int bad = apply_value(scratch, r, value, where, st->err, st->errlen);
    free(scratch);
    if (bad) {
        st->failed = 1;
        return 0;
    }
    const int i = d->arm_set_count++;
    snprintf(d->arm_sets[i], sizeof d->arm_sets[i], "%s=%s", key, value);
    d->arm_set_lines[i] = st->line;
    d->arms[a].count++;
    return 1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_state_t *st = user;
    if (st->failed) return 0;
    if (st->pass == 1) {
        if (strcmp(section, "model") == 0 && strcmp(name, "preset") == 0 && !st->preset_line) {
            mimae_config_t scratch;
            if (strlen(value) >= sizeof st->preset || mimae_config_preset(&scratch, value)) {
                fail(st, "%s:%d: model.preset = '%s': unknown preset: use fmnist-tiny, "
                     "vit-b16 or test-small", st->file, st->line, value);
                return 0;
            }
            copy_string(st->preset, sizeof st->preset, value);
            st->preset_line = st->line;
        }
        return 1;
    }

    if (!*section) {
        char list[160] = "";
        section_list(list, sizeof list);
        fail(st, "%s:%d: %s = '%s': key before any section: put it under one of %s", st->file,
             st->line, name, value, list);
        return 0;
    }
    if (strncmp(section, "arm ", 4) == 0) return on_arm_key(st, name, value);
    if (!is_section(section)) { /* the reader catches these; kept for safety */
        fail(st, "%s:%d: [%s]: unknown section", st->file, st->line, section);
        return 0;
    }
    if (strcmp(section, "sweep") == 0) return on_sweep_key(st, name, value);

    key_ref_t r;
    if (find_key(section, name, &r)) {
        char msg[DESCRIPTOR_PATH_MAX + 512];
        snprintf(msg, sizeof msg, "%s:%d: [%s] %s: unknown key", st->file, st->line, section,
                 name);
        unknown_key_hint(msg, sizeof msg, section, name, 1);
        fail(st, "%s", msg);
        return 0;
    }
    int *origin = &st->origin[r.kind][r.index];
    if (*origin > 0) {
        fail(st, "%s:%d: [%s] %s: duplicate key (first on line %d): keep one of them", st->file,
             st->line, section, name, *origin);
        return 0;
    }
    *origin = st->line;
    if (is_preset(r)) return 1; /* applied in pass 1 */
    char prefix[DESCRIPTOR_PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s:%d: ", st->file, st->line);
    if (apply_value(st->d, r, value, prefix, st->err, st->errlen)) {
        st->failed = 1;
        return 0;
    }
    return 1;
}

/* Splits "section.key=value" (blanks around the parts allowed) into the
 * given buffers. Returns -1 with a message for anything else. */
static int split_assignment(const char *a, char *section, size_t slen, char *key, size_t klen,
                            char *value, size_t vlen, char *err, size_t errlen)
{
    const char *eq = strchr(a, '=');
    const char *k0 = a, *k1 = eq ? eq : a + strlen(a);
    while (k0 < k1 && (*k0 == ' ' || *k0 == '\t')) k0++;
    while (k1 > k0 && (k1[-1] == ' ' || k1[-1] == '\t')) k1--;
    const char *dot = memchr(k0, '.', (size_t)(k1 - k0));
    if (!eq || !dot || dot == k0 || dot + 1 == k1) {
        snprintf(err, errlen, "--set '%s': expected section.key=value (e.g. --set "
                 "mimae.mask_ratio=0.9)", a);
        return -1;
    }
    const char *v0 = eq + 1, *v1 = eq + strlen(eq);
    while (v0 < v1 && (*v0 == ' ' || *v0 == '\t')) v0++;
    while (v1 > v0 && (v1[-1] == ' ' || v1[-1] == '\t' || v1[-1] == '\n' || v1[-1] == '\r'))
        v1--;
    size_t ls = (size_t)(dot - k0), lk = (size_t)(k1 - dot - 1), lv = (size_t)(v1 - v0);
    if (ls >= slen || lk >= klen) {
        snprintf(err, errlen, "--set '%s': unknown key: the key is too long", a);
        return -1;
    }
    if (lv >= vlen) {
        snprintf(err, errlen, "--set '%s': the value is longer than %zu characters", a,
                 vlen - 1);
        return -1;
    }
    memcpy(section, k0, ls), section[ls] = '\0';
    memcpy(key, dot + 1, lk), key[lk] = '\0';
    memcpy(value, v0, lv), value[lv] = '\0';
    return 0;
}

/* Looks the assignment's key up; sweep keys and unknown keys are errors. */
static int resolve_assignment(const char *section, const char *key, const char *value,
                              key_ref_t *r, char *err, size_t errlen)
{
    if (strcmp(section, "sweep") == 0) {
        snprintf(err, errlen, "--set sweep.%s = '%s': sweep lists belong in the descriptor's "
                 "[sweep] section; --set takes single values", key, value);
        return -1;
    }
    if (!is_section(section)) {
        const char *guess = suggest_section(section);
        snprintf(err, errlen, "--set %s.%s = '%s': unknown section [%s]", section, key, value,
                 section);
        if (guess) append(err, errlen, " (did you mean %s.%s?)", guess, key);
        return -1;
    }
    if (find_key(section, key, r)) {
        snprintf(err, errlen, "--set %s.%s = '%s': unknown key", section, key, value);
        unknown_key_hint(err, errlen, section, key, 0);
        return -1;
    }
    return 0;
}

#define SET_VALUE_MAX (DESCRIPTOR_PATH_MAX + 64)

/* An assignment of train.epochs replaces train.view_epochs, the other
 * spelling of the training length (one of view_epochs replaces epochs when
 * it is resolved). */
static void replace_other_spelling(descriptor_t *d, key_ref_t r)
{
    if (r.kind == KEY_RUN && ref_field(r)->offset == offsetof(run_config_t, epochs))
        d->run.view_epochs = 0;
}

/* epochs = view_epochs / num_masks when view_epochs is in effect. */
static int resolve_epochs(descriptor_t *d, const char *prefix, char *err, size_t errlen)
{
    const long v = d->run.view_epochs;
    const int n = d->model.num_masks;
    if (v <= 0 || n < 1) return 0; /* an impossible num_masks: the model's checks say so */
    if (v % n) {
        const long lo = v / n * n;
        char near[64];
        if (lo > LONG_MAX - n) snprintf(near, sizeof near, "%ld", lo); /* none above it */
        else if (lo > 0) snprintf(near, sizeof near, "%ld or %ld", lo, lo + n);
        else snprintf(near, sizeof near, "%ld", lo + n);
        snprintf(err, errlen, "%strain.view_epochs = %ld is not a multiple of mimae.num_masks = %d "
                 "(train.epochs = view_epochs / num_masks): use a multiple of %d (%s), or give "
                 "train.epochs instead", prefix, v, n, n, near);
        return -1;
    }
    d->run.epochs = v / n;
    return 0;
}

int descriptor_resolve_epochs(descriptor_t *d, char *err, size_t errlen)
{
    return resolve_epochs(d, "", err, errlen);
}

int descriptor_set(descriptor_t *d, const char *assignment, char *err, size_t errlen)
{
    char section[32], key[64], value[SET_VALUE_MAX];
    key_ref_t r;
    if (split_assignment(assignment, section, sizeof section, key, sizeof key, value,
                         sizeof value, err, errlen) ||
        resolve_assignment(section, key, value, &r, err, errlen) ||
        apply_value(d, r, value, "--set ", err, errlen))
        return -1;
    if (is_preset(r)) mimae_config_preset(&d->model, value);
    replace_other_spelling(d, r);
    return 0;
}

void descriptor_as_run(descriptor_t *d)
{
    d->sweep_count = 0;
    d->arm_count = 0;
    d->arm_set_count = 0;
    d->run.view_epochs = 0; /* epochs holds what it resolved to */
}

size_t descriptor_arm_set_key_len(const char *set)
{
    return strcspn(set, "=");
}

/* The tables' defaults; the model's are those of the default preset. -1
 * with a message only for a table whose default does not parse. */
static int descriptor_defaults(descriptor_t *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (config_fields_set_defaults(run_config_fields, run_config_field_count, &d->run,
                                   sizeof d->run, err, errlen))
        return -1;
    if (mimae_config_preset(&d->model, d->run.preset)) {
        snprintf(err, errlen, "model.preset = '%s': the default is no preset", d->run.preset);
        return -1;
    }
    return 0;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    /* a regular file: a FIFO or a device would block or never end */
    io_file_err_t e = {path, err, errlen, 0};
    FILE *fp = io_fopen_input(&e, "descriptor", 0);
    if (!fp) return -1;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    for (;;) {
        if (!data) break;
        n += fread(data + n, 1, cap - n, fp);
        if (n < cap) break;
        char *grown = cap < (size_t)64 << 20 ? realloc(data, cap * 2) : NULL;
        if (!grown) {
            free(data);
            data = NULL;
            errno = cap < (size_t)64 << 20 ? ENOMEM : EFBIG;
            break;
        }
        data = grown, cap *= 2;
    }
    int bad = !data || ferror(fp);
    int saved = !data ? errno : EIO;
    fclose(fp);
    if (bad) {
        free(data);
        snprintf(err, errlen, "%s: cannot read the descriptor (%s)", path, strerror(saved));
        return -1;
    }
    *buf = data, *len = n;
    return 0;
}

/* The line `n` of the text, for syntax-error messages. */
static void text_line(const char *buf, size_t len, int n, char *out, size_t outlen)
{
    size_t i = 0;
    for (int line = 1; line < n && i < len; i++)
        if (buf[i] == '\n') line++;
    size_t j = i;
    while (j < len && buf[j] != '\n' && buf[j] != '\r') j++;
    while (i < j && (buf[i] == ' ' || buf[i] == '\t')) i++;
    size_t k = j - i < outlen - 1 ? j - i : outlen - 1;
    memcpy(out, buf + i, k);
    out[k] = '\0';
}

static int parse_text(load_state_t *st, int pass)
{
    st->pass = pass;
    st->pos = 0;
    st->line = 0;
    int rc = ini_parse_stream(read_line, st, on_key, st);
    if (st->failed) return -1;
    if (rc > 0) {
        char text[80];
        text_line(st->buf, st->len, rc, text, sizeof text);
        fail(st, "%s:%d: '%s': not a '[section]' or 'key = value' line: fix the syntax",
             st->file, rc, text);
        return -1;
    }
    if (rc < 0) {
        fail(st, "%s: libinih could not parse the descriptor (error %d)", st->file, rc);
        return -1;
    }
    return 0;
}

/* run.name and run.out_dir: defaults from the file name, then checks. */
static int check_names(load_state_t *st, const char *path)
{
    run_config_t *run = &st->d->run;
    const key_ref_t rn = known_key("run", "name"), ro = known_key("run", "out_dir");
    char loc[DESCRIPTOR_PATH_MAX + 32], why[256];
    if (!st->origin[rn.kind][rn.index]) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(base);
        if (n >= 4 && strcmp(base + n - 4, ".ini") == 0) n -= 4;
        char name[sizeof run->name];
        if (n >= sizeof name) {
            fail(st, "%s: run.name: the file name is longer than %zu characters: set "
                 "run.name", st->file, sizeof name - 1);
            return -1;
        }
        memcpy(name, base, n);
        name[n] = '\0';
        copy_string(run->name, sizeof run->name, name);
    }
    location(st, rn, loc, sizeof loc);
    if (!run->name[0] || strchr(run->name, '/') || strcmp(run->name, ".") == 0 ||
        strcmp(run->name, "..") == 0) {
        fail(st, "%srun.name = '%s': not usable in file names: set run.name to a non-empty "
             "name without '/'", loc, run->name);
        return -1;
    }
    if (check_text("name", run->name, sizeof run->name, why, sizeof why)) {
        fail(st, "%srun.name = '%s': %s (or set run.name)", loc, run->name, why);
        return -1;
    }
    if (!st->origin[ro.kind][ro.index]) {
        char dir[sizeof run->out_dir];
        snprintf(dir, sizeof dir, "runs/%s", run->name);
        copy_string(run->out_dir, sizeof run->out_dir, dir);
    }
    location(st, ro, loc, sizeof loc);
    if (!run->out_dir[0]) {
        fail(st, "%srun.out_dir = '': empty: name a directory (default runs/<name>)", loc);
        return -1;
    }
    if (check_text("out_dir", run->out_dir, sizeof run->out_dir, why, sizeof why)) {
        fail(st, "%srun.out_dir = '%s': %s", loc, run->out_dir, why);
        return -1;
    }
    return 0;
}

/* Every run key against its row's range, the message naming where the
 * value came from (the model's keys are checked with the model config, by
 * config_check_limits); then the run settings' checks across keys. */
static int check_run_fields(load_state_t *st, long train_images)
{
    descriptor_t *d = st->d;
    char loc[DESCRIPTOR_PATH_MAX + 32], msg[512];
    for (int i = 0; i < run_config_field_count; i++) {
        const key_ref_t r = {KEY_RUN, i};
        if (config_field_check_range(ref_field(r), &d->run, msg, sizeof msg) == 0) continue;
        location(st, r, loc, sizeof loc);
        fail(st, "%s%s", loc, msg);
        return -1;
    }
    location(st, known_key("train", "view_epochs"), loc, sizeof loc);
    if (resolve_epochs(d, loc, st->err, st->errlen)) {
        st->failed = 1;
        return -1;
    }
    const key_ref_t warmup_iters = known_key("optim", "warmup_iters");
    if (!st->origin[warmup_iters.kind][warmup_iters.index] &&
        d->run.warmup_epochs > (double)d->run.epochs) {
        location(st, known_key("optim", "warmup_epochs"), loc, sizeof loc);
        fail(st, "%soptim.warmup_epochs = '%.17g': longer than train.epochs = %ld: shorten the "
             "warmup or train longer", loc, d->run.warmup_epochs, d->run.epochs);
        return -1;
    }
    if (train_images != -1 && !d->run.train_data[0]) {
        location(st, known_key("data", "train"), loc, sizeof loc);
        fail(st, "%sdata.train = '': no training set: set data.train to the HDF5 file of "
             "training images", loc);
        return -1;
    }
    return 0;
}

/* A swept key another key overrides would change nothing: optim.warmup_epochs
 * while optim.warmup_iters is given (file or --set) or swept itself. */
static int check_sweep_not_ignored(load_state_t *st)
{
    const descriptor_t *d = st->d;
    const key_ref_t rw = known_key("optim", "warmup_iters");
    for (int i = 0; i < d->sweep_count; i++) {
        if (strcmp(d->sweep_keys[i], "optim.warmup_epochs")) continue;
        char given[DESCRIPTOR_PATH_MAX + 48] = "";
        const int o = st->origin[rw.kind][rw.index];
        if (o > 0) snprintf(given, sizeof given, "is given on line %d", o);
        else if (o < 0) snprintf(given, sizeof given, "is given by --set");
        for (int j = 0; j < d->sweep_count && !given[0]; j++)
            if (strcmp(d->sweep_keys[j], "optim.warmup_iters") == 0)
                snprintf(given, sizeof given, "is swept on line %d", st->sweep_line[j]);
        if (!given[0]) continue;
        fail(st, "%s:%d: [sweep] optim.warmup_epochs: optim.warmup_iters %s and wins over it, so "
             "the swept values would change nothing: sweep one of the two and do not set the "
             "other", st->file, st->sweep_line[i], given);
        return -1;
    }
    return 0;
}

/* What the file says as a whole: one spelling of the training length, and
 * with arms a [sweep] of seeds only (entries read before the first arm could
 * not be checked for that as they were read). */
static int check_file_as_a_whole(load_state_t *st)
{
    const descriptor_t *d = st->d;
    const key_ref_t re = known_key("train", "epochs"), rv = known_key("train", "view_epochs");
    const int le = st->origin[re.kind][re.index], lv = st->origin[rv.kind][rv.index];
    if (le > 0 && lv > 0 && d->run.view_epochs > 0) { /* view_epochs = 0: unused */
        fail(st, "%s:%d: train.%s: train.%s is given too (line %d): they are two spellings of "
             "one training length (view_epochs = epochs x mimae.num_masks): keep one of them",
             st->file, le > lv ? le : lv, le > lv ? "epochs" : "view_epochs",
             le > lv ? "view_epochs" : "epochs", le > lv ? lv : le);
        return -1;
    }
    char why[DESCRIPTOR_PATH_MAX];
    for (int i = 0; i < d->sweep_count; i++)
        if (sweep_entry_beside_arms(d, i, why, sizeof why)) {
            fail(st, "%s:%d: [sweep] %s", st->file, st->sweep_line[i], why);
            return -1;
        }
    return 0;
}

/* optim.total_iters and warmup_iters from the data set size, unless given. */
static int derive_schedule(load_state_t *st, long train_images)
{
    descriptor_t *d = st->d;
    const key_ref_t rw = known_key("optim", "warmup_iters"), rt = known_key("optim", "total_iters");
    if (train_images <= 0 || d->model.global_batch <= 0) {
        /* The total is not known before the data set is: an explicit
         * warmup_iters must not be measured against the placeholder. */
        if (!st->origin[rt.kind][rt.index] && d->model.total_iters < d->model.warmup_iters)
            d->model.total_iters = d->model.warmup_iters;
        return 0;
    }
    long images = train_images;
    if (d->run.train_limit > 0 && d->run.train_limit < images) images = d->run.train_limit;
    long steps = images / d->model.global_batch;
    if (steps < 1) {
        fail(st, "%s: train.global_batch = %d exceeds the %ld training images of %s: lower "
             "train.global_batch or use more images", st->file, d->model.global_batch, images,
             d->run.train_data[0] ? d->run.train_data : "data.train");
        return -1;
    }
    if (!st->origin[rt.kind][rt.index]) {
        if (d->run.epochs > LONG_MAX / steps) {
            fail(st, "%s: train.epochs = %ld x %ld steps per epoch overflows: lower "
                 "train.epochs", st->file, d->run.epochs, steps);
            return -1;
        }
        d->model.total_iters = d->run.epochs * steps;
    }
    if (!st->origin[rw.kind][rw.index])
        d->model.warmup_iters = lround(d->run.warmup_epochs * (double)steps);
    return 0;
}

int descriptor_load(descriptor_t *d, const char *path, const char *const *overrides,
                    int n_overrides, long train_images, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    char why[256];
    if (descriptor_defaults(d, why, sizeof why)) {
        snprintf(err, errlen, "%s: internal: %s: fix the key table", path, why);
        return -1;
    }
    if (strlen(path) >= sizeof d->path) {
        snprintf(err, errlen, "%.64s...: cannot read the descriptor (path longer than %zu "
                 "characters)", path, sizeof d->path - 1);
        return -1;
    }
    copy_string(d->path, sizeof d->path, path);
    if (mimae_config_field_count > MAX_FIELDS || run_config_field_count > MAX_FIELDS) {
        snprintf(err, errlen, "%s: internal: more than %d config fields: raise MAX_FIELDS in "
                 "experiments/descriptor.c", path, MAX_FIELDS);
        return -1;
    }
    if (train_images < -1) {
        snprintf(err, errlen, "%s: train_images = %ld: pass the number of training images, 0 "
                 "(not known yet) or -1 (not training)", path, train_images);
        return -1;
    }
    if (n_overrides < 0 || (n_overrides > 0 && !overrides)) {
        snprintf(err, errlen, "%s: internal: %d overrides without a list", path, n_overrides);
        return -1;
    }

    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err, errlen)) return -1;

    load_state_t *st = calloc(1, sizeof *st);
    if (!st) {
        free(buf);
        snprintf(err, errlen, "%s: cannot read the descriptor (%s)", path, strerror(ENOMEM));
        return -1;
    }
    st->d = d, st->file = path, st->buf = buf, st->len = len;
    st->err = err, st->errlen = errlen;

    char section[32], key[64], value[SET_VALUE_MAX], msg[SET_VALUE_MAX + 128];
    int rc = -1;
    key_ref_t r;
    const key_ref_t preset_key = known_key("model", "preset");

    /* The preset: the last --set model.preset, else the file's, else the default. */
    const char *preset = NULL;
    int preset_origin = 0;
    if (parse_text(st, 1)) goto done;
    if (st->preset_line) preset = st->preset, preset_origin = st->preset_line;
    for (int i = 0; i < n_overrides; i++) {
        if (split_assignment(overrides[i], section, sizeof section, key, sizeof key, value,
                             sizeof value, msg, sizeof msg) ||
            strcmp(section, "model") || strcmp(key, "preset"))
            continue; /* malformed ones are reported below, in order */
        if (apply_value(d, preset_key, value, "--set ", msg, sizeof msg)) {
            fail(st, "%s: %s", path, msg);
            goto done;
        }
        preset = d->run.preset, preset_origin = -1;
    }
    if (preset) {
        char name[sizeof d->run.preset];
        copy_string(name, sizeof name, preset);
        mimae_config_preset(&d->model, name);
        copy_string(d->run.preset, sizeof d->run.preset, name);
    }

    if (parse_text(st, 2) || check_file_as_a_whole(st)) goto done;
    st->origin[preset_key.kind][preset_key.index] = preset_origin;

    for (int i = 0; i < n_overrides; i++) {
        if (split_assignment(overrides[i], section, sizeof section, key, sizeof key, value,
                             sizeof value, msg, sizeof msg) ||
            resolve_assignment(section, key, value, &r, msg, sizeof msg)) {
            fail(st, "%s: %s", path, msg);
            goto done;
        }
        st->origin[r.kind][r.index] = -1;
        if (is_preset(r)) continue; /* applied first */
        char prefix[DESCRIPTOR_PATH_MAX + 16];
        snprintf(prefix, sizeof prefix, "%s: --set ", path);
        if (apply_value(d, r, value, prefix, err, errlen)) {
            st->failed = 1;
            goto done;
        }
        replace_other_spelling(d, r);
    }

    if (check_names(st, path) || check_run_fields(st, train_images) ||
        check_sweep_not_ignored(st) || derive_schedule(st, train_images))
        goto done;
    /* sizes first: mimae_config_validate's arithmetic assumes sane ones */
    if (config_check_limits(&d->model, msg, sizeof msg) ||
        mimae_config_validate(&d->model, msg, sizeof msg)) {
        fail(st, "%s: %s", path, msg);
        goto done;
    }
    if (d->run.micro_batch > 0 && d->model.global_batch % d->run.micro_batch) {
        fail(st, "%s: train.micro_batch = %d does not divide train.global_batch = %d: choose a "
             "divisor of global_batch, or 0 for the whole per-rank batch", path,
             d->run.micro_batch, d->model.global_batch);
        goto done;
    }
    rc = 0;
done:
    free(st);
    free(buf);
    /* the message quotes the file's lines, keys and values, and --set text */
    if (rc) text_escape_in_place(err, errlen);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */

/* Text of a key's value in d: real numbers the shortest that reads back to
 * the same bits (0.07, not 0.0700000003). */
static void value_text(const descriptor_t *d, key_ref_t r, char *buf, size_t len)
{
    config_field_format_short(ref_field(r), ref_cbase(d, r), buf, len);
}

/* Printable copy of a path for a comment line. */
static void comment_safe(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[i] = '\0';
}

int descriptor_print(const descriptor_t *d, FILE *fp, char *err, size_t errlen)
{
    char why[DESCRIPTOR_PATH_MAX], text[DESCRIPTOR_PATH_MAX + 8];
    /* Everything must read back: check the text values first. */
    for (int i = 0; i < run_config_field_count; i++) {
        const config_field_t *f = &run_config_fields[i];
        const char *value = (const char *)&d->run + f->offset;
        if (f->type == FIELD_TEXT && check_text(f->key, value, f->size, why, sizeof why)) {
            snprintf(err, errlen, "cannot write %s.%s = '%s': %s", f->section, f->key, value,
                     why);
            return -1;
        }
    }
    for (int i = 0; i < d->sweep_count; i++)
        if (descriptor_check_sweep_entry(d, i, why, sizeof why)) {
            snprintf(err, errlen, "cannot write [sweep] %s", why);
            return -1;
        }
    for (int a = 0; a < d->arm_count; a++)
        if (!arm_name_ok(d->arms[a].name, strlen(d->arms[a].name))) {
            snprintf(err, errlen, "cannot write [arm %s]: not a name an arm can have",
                     d->arms[a].name);
            return -1;
        }
    for (int i = 0; i < d->arm_set_count; i++) {
        const char *set = d->arm_sets[i];
        const size_t k = descriptor_arm_set_key_len(set);
        char key[DESCRIPTOR_ARM_SET_MAX];
        snprintf(key, sizeof key, "%.*s", (int)k, set);
        if (!set[k] || check_text(key, set + k + 1, sizeof d->arm_sets[i], why, sizeof why)) {
            snprintf(err, errlen, "cannot write the arm override '%s': %s", set,
                     set[k] ? why : "not section.key=value");
            return -1;
        }
    }
    comment_safe(d->path, text, sizeof text);
    fprintf(fp,
            "# mimae effective descriptor: every key with the value in effect.\n"
            "# Read from: %s\n"
            "# optim.warmup_iters and optim.total_iters are written explicitly, so loading\n"
            "# this file again reproduces the settings exactly (nothing is re-derived).\n",
            text[0] ? text : "(no file)");
    for (int s = 0; section_names[s]; s++) {
        const char *sec = section_names[s];
        if (strcmp(sec, "sweep") == 0) continue;
        fprintf(fp, "\n[%s]\n", sec);
        key_ref_t keys[2 * MAX_FIELDS];
        const int n = section_keys(sec, keys);
        for (int i = 0; i < n; i++) {
            value_text(d, keys[i], text, sizeof text);
            /* a file gives one spelling of the training length: view_epochs
             * when it is in effect, epochs shown for the reader */
            const int shown_only = d->run.view_epochs > 0 && keys[i].kind == KEY_RUN &&
                                   ref_field(keys[i])->offset == offsetof(run_config_t, epochs);
            fprintf(fp, "%s%s =%s%s%s\n", shown_only ? "; " : "", ref_key(keys[i]),
                    text[0] ? " " : "", text,
                    shown_only ? " (view_epochs / mimae.num_masks: a file gives one of the two)"
                               : "");
        }
    }
    if (d->sweep_count > 0) {
        fprintf(fp, "\n[sweep]\n");
        for (int i = 0; i < d->sweep_count; i++)
            fprintf(fp, "%s = %s\n", d->sweep_keys[i], d->sweep_values[i]);
    }
    for (int a = 0; a < d->arm_count; a++) {
        fprintf(fp, "\n[arm %s]\n", d->arms[a].name);
        for (int i = d->arms[a].first; i < d->arms[a].first + d->arms[a].count; i++) {
            const char *set = d->arm_sets[i];
            const int k = (int)descriptor_arm_set_key_len(set);
            fprintf(fp, "%.*s = %s\n", k, set, set + k + 1);
        }
    }
    return 0;
}

int descriptor_write(const descriptor_t *d, const char *path, char *err, size_t errlen)
{
    char why[2 * DESCRIPTOR_PATH_MAX];
    if (strlen(path) >= DESCRIPTOR_PATH_MAX) {
        snprintf(err, errlen, "%.64s...: cannot write the descriptor (path too long)", path);
        return -1;
    }
    /* a temporary of our own beside it, renamed into place: never written
     * through a link planted at the name */
    char label[DESCRIPTOR_PATH_MAX + 32];
    snprintf(label, sizeof label, "%s: cannot write the descriptor", path);
    io_file_err_t e = {label, err, errlen, 0};
    io_out_t out;
    if (io_out_open(&out, path, 0644, &e)) return -1;
    FILE *fp = io_out_stream(&out, &e);
    if (!fp) {
        io_out_abort(&out);
        return -1;
    }
    if (descriptor_print(d, fp, why, sizeof why)) {
        io_out_abort(&out);
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return io_out_commit(&out, &e);
}

/* ------------------------------------------------------------------------ */
/* Reference                                                                 */

/* Markdown cell text: '|' escaped. */
static void print_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

int descriptor_print_reference(FILE *out)
{
    descriptor_t *d = malloc(sizeof *d);
    char text[DESCRIPTOR_PATH_MAX], why[256];
    if (!d) {
        fprintf(stderr, "mimae: keys: out of memory\n");
        return -1;
    }
    if (descriptor_defaults(d, why, sizeof why)) {
        fprintf(stderr, "mimae: keys: internal: %s: fix the key table\n", why);
        free(d);
        return -1;
    }
    fprintf(out, "| key | default | meaning |\n|---|---|---|\n");
    for (int s = 0; section_names[s]; s++) {
        key_ref_t keys[2 * MAX_FIELDS];
        const int n = section_keys(section_names[s], keys);
        for (int i = 0; i < n; i++) {
            const config_field_t *f = ref_field(keys[i]);
            fprintf(out, "| `%s.%s` | ", f->section, f->key);
            value_text(d, keys[i], text, sizeof text);
            /* derived defaults and text as prose, values as code */
            if (f->default_doc) {
                print_cell(out, f->default_doc);
            } else if (f->type == FIELD_TEXT) {
                print_cell(out, text[0] ? text : "(empty)");
            } else {
                fprintf(out, "`");
                print_cell(out, text);
                fprintf(out, "`");
            }
            fprintf(out, " | ");
            print_cell(out, f->doc);
            if (f->type == FIELD_SWITCH) fprintf(out, " (0/1)");
            fprintf(out, " |\n");
        }
    }
    fprintf(out, "| `sweep.<section.key>` | (none) | comma-separated values of section.key for "
                 "the sweep expander (kept as text here) |\n");
    free(d);
    return ferror(out) ? -1 : 0;
}

int descriptor_make_out_dir(const char *path, char *err, size_t errlen)
{
    return descriptor_make_run_dir(path, "", err, errlen);
}

int descriptor_make_run_dir(const char *out_dir, const char *sub, char *err, size_t errlen)
{
    char failed[PATH_MAX];
    if (io_make_dirs_below(out_dir, sub, failed, sizeof failed) == 0) return 0;
    return io_make_dirs_fail(failed, "run.out_dir", err, errlen);
}
