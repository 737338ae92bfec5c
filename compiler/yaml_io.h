/*
 * yaml_io.h — the only door between gemmac and libyaml.
 *
 * gmc_yaml_parse runs libyaml 0.2.5's event parser over a buffer and builds
 * a small tree of mappings, sequences and scalars, each with its 1-based
 * line and column, in a gmc_arena.  It enforces the limits and refusals of
 * docs/input-checks.md §2.4 (size, depth, event count, scalar length; no anchors,
 * aliases, tags or second documents; scalar, unique mapping keys) and turns
 * every libyaml error into a gmc_diag.  The schema (model.c) walks the tree.
 */
#ifndef GMC_YAML_IO_H
#define GMC_YAML_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "diag.h"

typedef enum gmc_ynode_kind {
    GMC_YNODE_SCALAR = 1,
    GMC_YNODE_MAP,
    GMC_YNODE_SEQ
} gmc_ynode_kind;

typedef struct gmc_ynode gmc_ynode;

/* One mapping entry; key is always a scalar node. */
typedef struct gmc_ypair {
    const gmc_ynode *key;
    const gmc_ynode *value;
} gmc_ypair;

struct gmc_ynode {
    gmc_ynode_kind kind;
    int line, col;       /* 1-based position of the node's first character */
    /* GMC_YNODE_SCALAR: the value after YAML unescaping, NUL-terminated,
     * but it may hold NUL bytes itself (a "\0" escape): always use len. */
    const char *text;
    size_t len;
    bool plain;          /* plain style: not quoted, not a | or > block */
    size_t n;            /* MAP: number of pairs; SEQ: number of items */
    const gmc_ypair *pairs;       /* MAP: n entries in document order */
    const gmc_ynode *const *items;/* SEQ: n entries in document order */
};

/*
 * Parses len bytes of YAML (exactly one document).  filename is used only
 * in diagnostics.  On success *out_root is the document's root node; the
 * tree lives in a until gmc_arena_deinit.  Errors: GMC_ERR_LIMIT (size,
 * depth, events, scalar length), GMC_ERR_SYNTAX (libyaml errors, anchors,
 * aliases, tags, a second document or none, a non-scalar key),
 * GMC_ERR_SCHEMA (duplicate key), GMC_ERR_NOMEM.  Every error names
 * filename:line:col and fills diag->src with the offending line.
 */
gmc_status gmc_yaml_parse(const char *text, size_t len, const char *filename,
                          gmc_arena *a, const gmc_ynode **out_root,
                          gmc_diag *diag) GMC_MUST_CHECK;

/* Copies line `line` (1-based) of text, without its line break, into out
 * (cap bytes, truncated at a character boundary).  out is "" if the text
 * has no such line. */
void gmc_yaml_source_line(const char *text, size_t len, int line, char *out,
                          size_t cap);

/* A positioned diagnostic about YAML text: gmc_fail_atv plus the source
 * line (from text, len bytes) for the caret.  Returns s. */
gmc_status gmc_yaml_failv(gmc_diag *d, gmc_status s, const char *file,
                          const char *text, size_t len, int line, int col,
                          const char *path, const char *fmt, va_list ap);

/* True if scalar node n equals the NUL-terminated string s. */
bool gmc_ynode_is(const gmc_ynode *n, const char *s);

#endif /* GMC_YAML_IO_H */
