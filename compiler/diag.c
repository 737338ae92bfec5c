/*
 * diag.c — filling and printing gmc_diag (see diag.h).
 *
 * Every field of a gmc_diag is a fixed-size array, so filling one never
 * allocates and can never fail; over-long texts are cut at the buffer size
 * (vsnprintf truncates, it never overflows).  Printing follows chibicc's
 * verror_at: the location line, then the source line and a caret under the
 * column.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void gmc_diag_clear(gmc_diag *d) { memset(d, 0, sizeof *d); }

/* Copies s into a buffer of cap bytes, truncating; a NULL s becomes "". */
static void copy_text(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

gmc_status gmc_fail(gmc_diag *d, gmc_status s, const char *fmt, ...)
{
    gmc_diag_clear(d);
    d->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return s;
}

gmc_status gmc_fail_atv(gmc_diag *d, gmc_status s, const char *file, int line,
                        int col, const char *path, const char *fmt, va_list ap)
{
    gmc_diag_clear(d);
    d->status = s;
    copy_text(d->file, sizeof d->file, file);
    d->line = line > 0 ? line : 0;
    d->col = col > 0 ? col : 0;
    copy_text(d->path, sizeof d->path, path);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    return s;
}

gmc_status gmc_fail_at(gmc_diag *d, gmc_status s, const char *file, int line,
                       int col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gmc_fail_atv(d, s, file, line, col, path, fmt, ap);
    va_end(ap);
    return s;
}

/*
 * Prints the caret line.  The column counts characters, not bytes (libyaml's
 * marks do), so multi-byte UTF-8 sequences advance it by one, and a tab in
 * the source is echoed as a tab so that the caret stays under its target.
 */
static void print_caret(const char *src, int col, FILE *out)
{
    fputs("      | ", out);
    const unsigned char *p = (const unsigned char *)src;
    for (int c = 1; c < col; c++) {
        if (*p == '\t') {
            fputc('\t', out);
        } else {
            fputc(' ', out);
        }
        if (*p) {
            p++;
            while ((*p & 0xC0) == 0x80) /* skip UTF-8 continuation bytes */
                p++;
        }
    }
    fputs("^\n", out);
}

void gmc_diag_print(const gmc_diag *d, FILE *out)
{
    if (d->file[0] && d->line > 0)
        fprintf(out, "%s:%d:%d: ", d->file, d->line, d->col);
    else if (d->file[0])
        fprintf(out, "%s: ", d->file);
    fputs("error: ", out);
    if (d->path[0])
        fprintf(out, "%s: ", d->path);
    fprintf(out, "%s\n", d->msg);
    if (d->src[0] && d->line > 0) {
        fprintf(out, "%5d | %s\n", d->line, d->src);
        if (d->col > 0)
            print_caret(d->src, d->col, out);
    }
}

void gmc_panic(const char *file, int line, const char *what)
{
    fflush(stdout);
    fprintf(stderr, "%s:%d: internal error: %s\n", file, line, what);
    abort();
}
