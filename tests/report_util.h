/* Helpers for the tests of `mimae report` (test_report, test_report_arms):
 * running report_command with its output captured, and reading the CSV
 * files it writes. Failures fail the current cmocka test. */
#ifndef MIMAE_REPORT_UTIL_H
#define MIMAE_REPORT_UTIL_H

#include <stddef.h>

/* dir/name into buf; a path too long fails the test. */
void path_in(char *buf, size_t len, const char *dir, const char *name);
/* Writes text to path (created or truncated). */
void write_text(const char *path, const char *text);
int has_png_signature(const char *path);
int count_lines(const char *s);

/* What report_command printed. */
typedef struct {
    int rc;
    char *out, *err;
} captured_t;

/* Runs report_command(args...) with stdout and stderr in files of
 * capture_dir. */
captured_t run_report(const char *capture_dir, int argc, const char *const *args);
void captured_free(captured_t *c);

/* A simple CSV: header + rows, fields split on ',' (the cells checked hold
 * no quotes or commas). */
#define CSV_MAX_ROWS 64
#define CSV_MAX_COLS 64
typedef struct {
    int ncols, nrows;
    char *cells[CSV_MAX_ROWS][CSV_MAX_COLS]; /* [row][col], row 0 the header */
} csv_t;

void csv_load(csv_t *t, const char *path);
void csv_free(csv_t *t);
int csv_col(const csv_t *t, const char *name);
/* The first row whose column `key` holds `value`. */
int csv_row(const csv_t *t, const char *key, const char *value);
const char *csv_get(const csv_t *t, int row, const char *col);
double csv_num(const csv_t *t, int row, const char *col);

#endif
