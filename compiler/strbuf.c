/* strbuf.c — see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GMC_STRBUF_MAX ((size_t)1 << 30) /* generated C above 1 GiB is a bug */

void gmc_strbuf_init(gmc_strbuf *b)
{
    memset(b, 0, sizeof *b);
    b->at_bol = true;
}

void gmc_strbuf_deinit(gmc_strbuf *b)
{
    free(b->data);
    gmc_strbuf_init(b);
}

static bool reserve(gmc_strbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > GMC_STRBUF_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void put_raw(gmc_strbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Appends s, inserting the indentation at the start of every non-empty line. */
void gmc_strbuf_append(gmc_strbuf *b, const char *s, size_t n)
{
    static const char spaces[] = "                                        ";
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : n;
        if (b->at_bol && s[i] != '\n') {
            size_t w = (size_t)b->indent * 4;
            while (w > 0) {
                size_t k = w < sizeof spaces - 1 ? w : sizeof spaces - 1;
                put_raw(b, spaces, k);
                w -= k;
            }
        }
        put_raw(b, s + i, end - i);
        b->at_bol = nl != NULL;
        i = end;
    }
}

void gmc_emitf(gmc_strbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        gmc_strbuf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    gmc_strbuf_append(b, big, (size_t)n);
    free(big);
}

void gmc_emit_indent(gmc_strbuf *b) { b->indent++; }

void gmc_emit_dedent(gmc_strbuf *b)
{
    if (b->indent > 0)
        b->indent--;
}

void gmc_strbuf_reset(gmc_strbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
    b->at_bol = true;
}

bool gmc_strbuf_failed(const gmc_strbuf *b) { return b->failed; }

const char *gmc_strbuf_str(const gmc_strbuf *b) { return b->data ? b->data : ""; }
