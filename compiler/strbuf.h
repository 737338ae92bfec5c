/*
 * strbuf.h — growable text buffer for the emitter (SQLite sqlite3_str).
 *
 * gmc_emitf appends printf-formatted text at the current indentation: each
 * line it starts is prefixed with 4 spaces per gmc_emit_indent level.  Errors
 * (out of memory, size cap) are sticky: later calls do nothing and
 * gmc_strbuf_failed reports it once at the end, so emitters need not check
 * every call.  The buffer owns its memory: free with gmc_strbuf_deinit.
 */
#ifndef GMC_STRBUF_H
#define GMC_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

typedef struct gmc_strbuf {
    char *data;     /* NUL-terminated when len > 0 */
    size_t len, cap;
    int indent;     /* levels of 4 spaces */
    bool at_bol;    /* next char starts a line */
    bool failed;
} gmc_strbuf;

void gmc_strbuf_init(gmc_strbuf *b);
void gmc_strbuf_deinit(gmc_strbuf *b);
void gmc_strbuf_append(gmc_strbuf *b, const char *s, size_t n);
void gmc_emitf(gmc_strbuf *b, const char *fmt, ...) GMC_PRINTF(2, 3);
void gmc_emit_indent(gmc_strbuf *b);
void gmc_emit_dedent(gmc_strbuf *b);
/* Empties the text (keeping the memory, the indentation and a failure). */
void gmc_strbuf_reset(gmc_strbuf *b);
bool gmc_strbuf_failed(const gmc_strbuf *b);
/* The text so far ("" when empty); owned by b. */
const char *gmc_strbuf_str(const gmc_strbuf *b);

#endif /* GMC_STRBUF_H */
