/* mimae report's tables: cells as text, printed as aligned text, Markdown
 * or CSV (report_internal.h). Every cell and heading is escaped when set
 * (text_escape.h): they come from results files, descriptors and
 * directory names. */
#include <stdlib.h>
#include <string.h>

#include "experiments/report_internal.h"
#include "io/text_escape.h"

/* A copy fit to print. */
static char *dup_shown(const char *s)
{
    const size_t n = 4 * strlen(s) + 1;
    char *d = malloc(n);
    if (d) text_escape(d, n, s);
    return d;
}

/* UTF-8 text width in code points. */
static int text_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

void rpt_table_init(table_t *t, int ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->head = calloc((size_t)ncols, sizeof *t->head);
    t->right = calloc((size_t)ncols, sizeof *t->right);
    if (!t->head || !t->right) t->oom = 1;
}

void rpt_table_free(table_t *t)
{
    for (int c = 0; t->head && c < t->ncols; c++) free(t->head[c]);
    for (long i = 0; t->cells && i < (long)t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->head);
    free(t->right);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

void rpt_table_head(table_t *t, int c, const char *name, int right)
{
    if (t->oom || c >= t->ncols) return;
    if (!(t->head[c] = dup_shown(name))) t->oom = 1;
    t->right[c] = right;
}

int rpt_table_row(table_t *t)
{
    if (t->oom) return -1;
    if (t->nrows == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char **grown = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof *grown);
        if (!grown) {
            t->oom = 1;
            return -1;
        }
        t->cells = grown;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++) t->cells[(size_t)t->nrows * t->ncols + c] = NULL;
    return t->nrows++;
}

void rpt_table_set(table_t *t, int row, int c, const char *text)
{
    if (t->oom || row < 0 || c >= t->ncols) return;
    char **cell = &t->cells[(size_t)row * t->ncols + c];
    free(*cell);
    if (!(*cell = dup_shown(text))) t->oom = 1;
}

static const char *table_cell(const table_t *t, int row, int c)
{
    const char *s = t->cells[(size_t)row * t->ncols + c];
    return s ? s : "";
}

static void pad(FILE *out, int n)
{
    for (int i = 0; i < n; i++) fputc(' ', out);
}

static void print_text_row(const table_t *t, FILE *out, const int *w, int row)
{
    for (int c = 0; c < t->ncols; c++) {
        const char *s = row < 0 ? t->head[c] : table_cell(t, row, c);
        const int gap = w[c] - text_width(s);
        if (c) fputs("  ", out);
        if (t->right[c]) pad(out, gap);
        fputs(s, out);
        if (!t->right[c] && c + 1 < t->ncols) pad(out, gap);
    }
    fputc('\n', out);
}

void rpt_table_print_text(const table_t *t, FILE *out)
{
    int *w = calloc((size_t)t->ncols, sizeof *w);
    if (!w) return;
    int total = 0;
    for (int c = 0; c < t->ncols; c++) {
        w[c] = text_width(t->head[c]);
        for (int r = 0; r < t->nrows; r++) {
            int x = text_width(table_cell(t, r, c));
            if (x > w[c]) w[c] = x;
        }
        total += w[c] + (c ? 2 : 0);
    }
    print_text_row(t, out, w, -1);
    for (int i = 0; i < total; i++) fputc('-', out);
    fputc('\n', out);
    for (int r = 0; r < t->nrows; r++) print_text_row(t, out, w, r);
    free(w);
}

static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else if (*s == '\n' || *s == '\r') fputc(' ', out);
        else fputc(*s, out);
    }
}

void rpt_table_print_md(const table_t *t, FILE *out)
{
    for (int c = 0; c < t->ncols; c++) {
        fputs(c ? " | " : "| ", out);
        md_text(out, t->head[c]);
    }
    fputs(" |\n", out);
    for (int c = 0; c < t->ncols; c++) fputs(t->right[c] ? "|---:" : "|:---", out);
    fputs("|\n", out);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            fputs(c ? " | " : "| ", out);
            md_text(out, table_cell(t, r, c));
        }
        fputs(" |\n", out);
    }
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void rpt_table_print_csv(const table_t *t, FILE *out)
{
    for (int r = -1; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            if (c) fputc(',', out);
            csv_field(out, r < 0 ? t->head[c] : table_cell(t, r, c));
        }
        fputc('\n', out);
    }
}

