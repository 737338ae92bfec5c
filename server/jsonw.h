/*
 * jsonw.h — a growable byte buffer and the one JSON writer of the server.
 *
 * gms_buf grows up to a cap and then fails stickily (like gmc_strbuf):
 * writers never check each call, the owner checks gms_buf.failed once.
 * gms_jw writes JSON into a gms_buf with the commas placed for it:
 *
 *   gms_jw w; gms_jw_init(&w, &buf);
 *   gms_jw_obj(&w); gms_jw_key(&w, "n"); gms_jw_int(&w, 3); gms_jw_end(&w);
 *
 * Strings are escaped (quote, backslash, control characters), valid UTF-8
 * passes through and each invalid byte becomes U+FFFD; non-finite numbers
 * are written as null (docs/server.md#json).
 */
#ifndef GMS_JSONW_H
#define GMS_JSONW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gms_buf {
    char *p;        /* NUL-terminated while not failed; owned */
    size_t len, cap;
    size_t max;     /* the cap on len; 0: 64 MiB */
    bool failed;    /* an allocation failed or max was reached */
} gms_buf;

void gms_buf_init(gms_buf *b, size_t max);
void gms_buf_deinit(gms_buf *b);
void gms_buf_clear(gms_buf *b);
void gms_buf_add(gms_buf *b, const void *p, size_t n);
void gms_buf_puts(gms_buf *b, const char *s);
void gms_buf_printf(gms_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void gms_buf_consume(gms_buf *b, size_t n);

#define GMS_JW_DEPTH 16

typedef struct gms_jw {
    gms_buf *b;
    int depth;
    bool comma[GMS_JW_DEPTH + 1]; /* a value was written at this depth */
    char kind[GMS_JW_DEPTH + 1];  /* '{' or '[' opened this depth */
    bool after_key;
} gms_jw;

void gms_jw_init(gms_jw *w, gms_buf *b);
void gms_jw_obj(gms_jw *w);
void gms_jw_arr(gms_jw *w);
void gms_jw_end(gms_jw *w); /* closes the innermost object or array */
void gms_jw_key(gms_jw *w, const char *key);
void gms_jw_str(gms_jw *w, const char *s, size_t n);
void gms_jw_cstr(gms_jw *w, const char *s); /* NULL writes null */
void gms_jw_int(gms_jw *w, int64_t v);
void gms_jw_num(gms_jw *w, double v);
void gms_jw_bool(gms_jw *w, bool v);
void gms_jw_null(gms_jw *w);
/* A value already written as JSON (trusted: the caller wrote it). */
void gms_jw_raw(gms_jw *w, const char *json, size_t n);

/* The escaped body of a JSON string, without quotes, appended to b. */
void gms_json_escape(gms_buf *b, const char *s, size_t n);
/* Bytes of the complete UTF-8 prefix of s[0..n): n minus an unfinished
 * sequence at its end (at most 3 bytes) that more bytes could complete. */
size_t gms_utf8_complete(const char *s, size_t n);

#endif /* GMS_JSONW_H */
