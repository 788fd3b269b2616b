#include "tests/report_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiments/report.h"
#include "tests/mpi_run.h"

void path_in(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) fail_msg("path too long: %s/%s", dir, name);
}

void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s", path);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

int has_png_signature(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && memcmp(head, sig, sizeof sig) == 0;
}

int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

void captured_free(captured_t *c)
{
    free(c->out);
    free(c->err);
}

captured_t run_report(const char *capture_dir, int argc, const char *const *args)
{
    char out_path[700], err_path[700];
    path_in(out_path, sizeof out_path, capture_dir, "stdout.txt");
    path_in(err_path, sizeof err_path, capture_dir, "stderr.txt");
    char *argv[16];
    assert_true(argc < 16);
    for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    captured_t c;
    c.rc = report_command(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    c.out = read_text(out_path);
    c.err = read_text(err_path);
    assert_non_null(c.out);
    assert_non_null(c.err);
    return c;
}

void csv_load(csv_t *t, const char *path)
{
    memset(t, 0, sizeof *t);
    char *text = read_text(path);
    if (!text) fail_msg("%s was not written", path);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(t->nrows < CSV_MAX_ROWS);
        int c = 0;
        char *p = line;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            assert_true(c < CSV_MAX_COLS);
            t->cells[t->nrows][c++] = strdup(p);
            if (!comma) break;
            p = comma + 1;
        }
        if (t->nrows == 0) t->ncols = c;
        else if (c != t->ncols) fail_msg("%s: row %d has %d fields, the header %d", path, t->nrows, c, t->ncols);
        t->nrows++;
    }
    free(text);
}

void csv_free(csv_t *t)
{
    for (int r = 0; r < CSV_MAX_ROWS; r++)
        for (int c = 0; c < CSV_MAX_COLS; c++) free(t->cells[r][c]);
}

int csv_col(const csv_t *t, const char *name)
{
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->cells[0][c], name) == 0) return c;
    fail_msg("no column %s", name);
    return -1;
}

int csv_row(const csv_t *t, const char *key, const char *value)
{
    int c = csv_col(t, key);
    for (int r = 1; r < t->nrows; r++)
        if (strcmp(t->cells[r][c], value) == 0) return r;
    fail_msg("no row with %s = %s", key, value);
    return -1;
}

const char *csv_get(const csv_t *t, int row, const char *col)
{
    return t->cells[row][csv_col(t, col)];
}

double csv_num(const csv_t *t, int row, const char *col)
{
    const char *s = csv_get(t, row, col);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) fail_msg("column %s: '%s' is not a number", col, s);
    return v;
}

