/*
 * jsonw.c — the server's byte buffer and JSON writer (jsonw.h).
 */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GMS_BUF_DEFAULT_MAX ((size_t)64 << 20)

void gms_buf_init(gms_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : GMS_BUF_DEFAULT_MAX;
}

void gms_buf_deinit(gms_buf *b)
{
    free(b->p);
    size_t max = b->max;
    gms_buf_init(b, max);
}

void gms_buf_clear(gms_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

/* Room for n more bytes and a NUL; false (and failed) past max or OOM. */
static bool reserve(gms_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->max - b->len) {
        b->failed = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void gms_buf_add(gms_buf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void gms_buf_puts(gms_buf *b, const char *s) { gms_buf_add(b, s, strlen(s)); }

void gms_buf_printf(gms_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        gms_buf_add(b, tmp, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void gms_buf_consume(gms_buf *b, size_t n)
{
    if (n >= b->len) {
        gms_buf_clear(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n + 1);
    b->len -= n;
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), 0 if the bytes are not one, and
 * -1 if they are a valid start cut short by the end of the input. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        unsigned b = s[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF))
            return 0;
    }
    return len;
}

size_t gms_utf8_complete(const char *s, size_t n)
{
    /* Only the last 3 bytes can start an unfinished sequence. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        const unsigned char *p = (const unsigned char *)s + n - back;
        if (*p >= 0xC0 && utf8_seq(p, back) == -1)
            return n - back;
        if (*p < 0x80 || *p >= 0xC0)
            break;
    }
    return n;
}

void gms_json_escape(gms_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0; /* bytes [run, i) pass through unchanged */
    while (i < n) {
        unsigned c = u[i];
        int len = c >= 0x20 && c != '"' && c != '\\' ? utf8_seq(u + i, n - i) : 0;
        if (len > 0) {
            i += (size_t)len;
            continue;
        }
        gms_buf_add(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            gms_buf_add(b, e, 2);
        } else if (c == '\n')
            gms_buf_add(b, "\\n", 2);
        else if (c == '\r')
            gms_buf_add(b, "\\r", 2);
        else if (c == '\t')
            gms_buf_add(b, "\\t", 2);
        else if (c < 0x20)
            gms_buf_printf(b, "\\u%04x", c);
        else
            gms_buf_add(b, "\xEF\xBF\xBD", 3); /* U+FFFD for an invalid byte */
        run = ++i;
    }
    gms_buf_add(b, s + run, n - run);
}

void gms_jw_init(gms_jw *w, gms_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

/* The comma before a value or key, if one came before it at this depth. */
static void sep(gms_jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->comma[w->depth])
        gms_buf_add(w->b, ",", 1);
    w->comma[w->depth] = true;
}

static void open(gms_jw *w, char c)
{
    sep(w);
    gms_buf_add(w->b, &c, 1);
    if (w->depth >= GMS_JW_DEPTH) { /* a programmer error: fail the buffer */
        w->b->failed = true;
        return;
    }
    w->depth++;
    w->comma[w->depth] = false;
    w->kind[w->depth] = c;
}

void gms_jw_obj(gms_jw *w) { open(w, '{'); }
void gms_jw_arr(gms_jw *w) { open(w, '['); }

void gms_jw_end(gms_jw *w)
{
    if (w->depth <= 0) {
        w->b->failed = true;
        return;
    }
    char c = w->kind[w->depth--] == '{' ? '}' : ']';
    gms_buf_add(w->b, &c, 1);
}

void gms_jw_key(gms_jw *w, const char *key)
{
    sep(w);
    gms_buf_add(w->b, "\"", 1);
    gms_json_escape(w->b, key, strlen(key));
    gms_buf_add(w->b, "\":", 2);
    w->after_key = true;
}

void gms_jw_str(gms_jw *w, const char *s, size_t n)
{
    sep(w);
    gms_buf_add(w->b, "\"", 1);
    gms_json_escape(w->b, s, n);
    gms_buf_add(w->b, "\"", 1);
}

void gms_jw_cstr(gms_jw *w, const char *s)
{
    if (s)
        gms_jw_str(w, s, strlen(s));
    else
        gms_jw_null(w);
}

void gms_jw_int(gms_jw *w, int64_t v)
{
    sep(w);
    gms_buf_printf(w->b, "%lld", (long long)v);
}

/* Shortest round trip is not needed: 9 significant digits hold a float
 * exactly and every value the server writes is one. */
void gms_jw_num(gms_jw *w, double v)
{
    sep(w);
    if (!isfinite(v))
        gms_buf_add(w->b, "null", 4);
    else
        gms_buf_printf(w->b, "%.9g", v);
}

void gms_jw_bool(gms_jw *w, bool v)
{
    sep(w);
    gms_buf_puts(w->b, v ? "true" : "false");
}

void gms_jw_null(gms_jw *w)
{
    sep(w);
    gms_buf_add(w->b, "null", 4);
}

void gms_jw_raw(gms_jw *w, const char *json, size_t n)
{
    sep(w);
    gms_buf_add(w->b, json, n);
}
