/*
 * yaml_io.c — libyaml 0.2.5 event stream → gmc_ynode tree (see yaml_io.h).
 *
 * libyaml's own loader (yaml_parser_load) is not used: it expands aliases,
 * has no depth limit in 0.2.5 and hides the marks we need.  Instead one
 * event at a time is checked against our limits and folded into a tree.
 * Open collections live on a fixed stack of GMC_YAML_MAX_DEPTH frames, so
 * the depth limit is also what keeps this code from ever overflowing it.
 * Children are collected in arena-allocated linked cells and turned into
 * arrays when their collection ends.  libyaml's 1-means-success results
 * and its error fields are converted here and nowhere else.
 */
#include "yaml_io.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "model.h" /* GMC_YAML_MAX_* */

/* Builder-only list of the children of an open collection. */
typedef struct cell {
    gmc_ynode *node;
    struct cell *next;
} cell;

typedef struct frame {
    gmc_ynode *node;       /* the open mapping or sequence */
    cell *first, *last;
    size_t count;          /* children so far; in a mapping, keys+values */
} frame;

/* State of one gmc_yaml_parse call; lives on the caller's stack. */
typedef struct builder {
    const char *text;      /* the input, for source lines in errors */
    size_t len;
    const char *file;
    gmc_arena *a;          /* receives every node, cell and string */
    gmc_diag *diag;
    frame stack[GMC_YAML_MAX_DEPTH];
    int depth;             /* open collections: stack[0 .. depth-1] */
    size_t events;         /* counted before they are acted on */
    int documents;
    const gmc_ynode *root;
    bool done;             /* STREAM_END seen */
} builder;

/* ------------------------------------------------------------ helpers */

bool gmc_ynode_is(const gmc_ynode *n, const char *s)
{
    size_t sl = strlen(s);
    return n->kind == GMC_YNODE_SCALAR && n->len == sl &&
           memcmp(n->text, s, sl) == 0;
}

/* libyaml marks are 0-based size_t; ours are 1-based int.  A 1 MiB
 * document cannot reach INT_MAX, but the clamp costs nothing. */
static int mark_to_int(size_t v)
{
    return v >= (size_t)INT_MAX - 1 ? INT_MAX : (int)v + 1;
}

void gmc_yaml_source_line(const char *text, size_t len, int line, char *out,
                          size_t cap)
{
    if (cap == 0)
        return;
    out[0] = '\0';
    size_t i = 0;
    /* Skip line-1 line breaks: \n, \r\n and a lone \r, as libyaml counts. */
    for (int l = 1; l < line; l++) {
        while (i < len && text[i] != '\n' && text[i] != '\r')
            i++;
        if (i >= len)
            return;
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            i++;
        i++;
    }
    size_t end = i;
    while (end < len && text[end] != '\n' && text[end] != '\r')
        end++;
    /* A long line is cut: diag->src is a fixed buffer. */
    size_t n = end - i;
    if (n > cap - 1) {
        n = cap - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)text[i + n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, text + i, n);
    out[n] = '\0';
    /* A NUL inside the line would end the copy early; that is harmless. */
}

gmc_status gmc_yaml_failv(gmc_diag *d, gmc_status s, const char *file,
                          const char *text, size_t len, int line, int col,
                          const char *path, const char *fmt, va_list ap)
{
    gmc_fail_atv(d, s, file, line, col, path, fmt, ap);
    gmc_yaml_source_line(text, len, line, d->src, sizeof d->src);
    return s;
}

/* Writes a diagnostic at (line, col) and attaches that source line. */
static gmc_status fail_at(builder *b, gmc_status s, int line, int col,
                          const char *path, const char *fmt, ...)
    GMC_PRINTF(6, 7);
static gmc_status fail_at(builder *b, gmc_status s, int line, int col,
                          const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gmc_yaml_failv(b->diag, s, b->file, b->text, b->len, line, col, path, fmt, ap);
    va_end(ap);
    return s;
}

/* Appends a printable rendering of at most 64 bytes of s to out: a key
 * path is for a terminal, and a key may hold control bytes ("\x1b"). */
static void append_text(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < len && i < 64 && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/*
 * The key path of the child now being read, e.g. "attention.rope.local"
 * or "layers.pattern[3]".  A mapping whose next child is a key adds
 * nothing (the caller appends the key if it has one).
 */
static void current_path(const builder *b, char *out, size_t cap)
{
    out[0] = '\0';
    for (int d = 0; d < b->depth; d++) {
        const frame *f = &b->stack[d];
        size_t o = strlen(out);
        if (f->node->kind == GMC_YNODE_SEQ) {
            snprintf(out + o, cap - o, "[%zu]", f->count);
        } else if (f->count % 2 == 1) { /* a value follows its key */
            const gmc_ynode *key = f->last->node;
            if (o > 0 && o + 1 < cap)
                strcat(out, ".");
            append_text(out, cap, key->text, key->len);
        }
    }
}

static void path_with_key(const builder *b, const gmc_ynode *key, char *out,
                          size_t cap)
{
    current_path(b, out, cap);
    if (out[0] && strlen(out) + 1 < cap)
        strcat(out, ".");
    append_text(out, cap, key->text, key->len);
}

/* True if the next child of the innermost open mapping is a key. */
static bool at_key(const builder *b)
{
    if (b->depth == 0)
        return false;
    const frame *f = &b->stack[b->depth - 1];
    return f->node->kind == GMC_YNODE_MAP && f->count % 2 == 0;
}

/* ------------------------------------------------------------ building */

/* A zeroed node at mark m; NULL when the arena is exhausted. */
static gmc_ynode *new_node(builder *b, gmc_ynode_kind kind, yaml_mark_t m)
{
    gmc_ynode *n = gmc_arena_alloc(b->a, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = mark_to_int(m.line);
        n->col = mark_to_int(m.column);
    }
    return n;
}

/* Arena exhaustion has no useful position: the input is not at fault. */
static gmc_status out_of_memory(builder *b)
{
    return gmc_fail_at(b->diag, GMC_ERR_NOMEM, b->file, 0, 0, "",
                       "out of memory while reading the YAML tree");
}

/* Adds a finished node to the innermost open collection (or makes it the
 * document root). */
static gmc_status attach(builder *b, gmc_ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return GMC_OK;
    }
    frame *f = &b->stack[b->depth - 1];
    cell *c = gmc_arena_alloc(b->a, sizeof *c);
    if (!c)
        return out_of_memory(b);
    c->node = n;
    if (f->last)
        f->last->next = c;
    else
        f->first = c;
    f->last = c;
    f->count++;
    return GMC_OK;
}

/* Refuses anchors and explicit tags, which every node event may carry.
 * Anchors exist only to be aliased (billion laughs, docs/input-checks.md check
 * 39); a tag would let a scalar change type behind the schema's back. */
static gmc_status check_props(builder *b, const yaml_event_t *e,
                              const yaml_char_t *anchor,
                              const yaml_char_t *tag, const char *path)
{
    int line = mark_to_int(e->start_mark.line);
    int col = mark_to_int(e->start_mark.column);
    if (anchor)
        return fail_at(b, GMC_ERR_SYNTAX, line, col, path,
                       "anchors are not allowed (found &%.64s)",
                       (const char *)anchor);
    if (tag)
        return fail_at(b, GMC_ERR_SYNTAX, line, col, path,
                       "tags are not allowed (found %.64s)",
                       (const char *)tag);
    return GMC_OK;
}

/* A scalar is copied into the arena (libyaml frees its event buffers) and
 * checked against GMC_YAML_MAX_SCALAR before the copy.  The key path is
 * built only for an error: most scalars never need it. */
static gmc_status on_scalar(builder *b, const yaml_event_t *e)
{
    size_t len = e->data.scalar.length;
    const char *value = (const char *)e->data.scalar.value;
    const yaml_char_t *anchor = e->data.scalar.anchor;
    const yaml_char_t *tag = e->data.scalar.tag;
    if (anchor || tag || len > GMC_YAML_MAX_SCALAR) {
        char path[GMC_DIAG_PATH];
        /* A stand-in node, so that the path can show a key's text. */
        const gmc_ynode probe = {.kind = GMC_YNODE_SCALAR, .text = value,
                                 .len = len < 64 ? len : 64};
        if (at_key(b))
            path_with_key(b, &probe, path, sizeof path);
        else
            current_path(b, path, sizeof path);
        GMC_TRY(check_props(b, e, anchor, tag, path));
        return fail_at(b, GMC_ERR_LIMIT, mark_to_int(e->start_mark.line),
                       mark_to_int(e->start_mark.column), path,
                       "scalar is %zu bytes long; the limit is %u bytes", len,
                       (unsigned)GMC_YAML_MAX_SCALAR);
    }
    gmc_ynode *n = new_node(b, GMC_YNODE_SCALAR, e->start_mark);
    char *copy = gmc_arena_strndup(b->a, value, len);
    if (!n || !copy)
        return out_of_memory(b);
    n->text = copy;
    n->len = len;
    n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return attach(b, n);
}

/* Opens a mapping or sequence.  The depth check here is the only stack
 * guard: libyaml 0.2.5 itself nests without limit (docs/input-checks.md #38). */
static gmc_status on_start(builder *b, const yaml_event_t *e,
                           gmc_ynode_kind kind)
{
    bool map = kind == GMC_YNODE_MAP;
    const yaml_char_t *anchor = map ? e->data.mapping_start.anchor
                                    : e->data.sequence_start.anchor;
    const yaml_char_t *tag = map ? e->data.mapping_start.tag
                                 : e->data.sequence_start.tag;
    if (anchor || tag || at_key(b) || b->depth >= GMC_YAML_MAX_DEPTH) {
        char path[GMC_DIAG_PATH];
        current_path(b, path, sizeof path);
        GMC_TRY(check_props(b, e, anchor, tag, path));
        int line = mark_to_int(e->start_mark.line);
        int col = mark_to_int(e->start_mark.column);
        if (at_key(b))
            return fail_at(b, GMC_ERR_SYNTAX, line, col, path,
                           "mapping keys must be scalars, found a %s",
                           map ? "mapping" : "sequence");
        return fail_at(b, GMC_ERR_LIMIT, line, col, path,
                       "nesting is deeper than %d levels",
                       GMC_YAML_MAX_DEPTH);
    }
    gmc_ynode *n = new_node(b, kind, e->start_mark);
    if (!n)
        return out_of_memory(b);
    frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof *f);
    f->node = n;
    return GMC_OK;
}

/* Orders keys by text, then by position, so that duplicates are adjacent
 * and the first occurrence comes first. */
typedef struct key_ref {
    const gmc_ynode *key;
    size_t index;
} key_ref;

static int key_ref_cmp(const void *pa, const void *pb)
{
    const key_ref *x = pa, *y = pb;
    size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
    int c = memcmp(x->key->text, y->key->text, n);
    if (c != 0)
        return c;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Reports the duplicate key whose second occurrence comes first in the
 * document.  Sorting keeps a 50,000-key mapping from costing n² compares. */
static gmc_status check_duplicates(builder *b, const gmc_ypair *pairs,
                                   size_t n)
{
    if (n < 2)
        return GMC_OK;
    key_ref *refs = gmc_arena_array(b->a, n, sizeof *refs);
    if (!refs)
        return out_of_memory(b);
    for (size_t i = 0; i < n; i++)
        refs[i] = (key_ref){pairs[i].key, i};
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    const key_ref *first = NULL, *second = NULL;
    for (size_t i = 1; i < n; i++) {
        const gmc_ynode *p = refs[i - 1].key, *q = refs[i].key;
        if (p->len != q->len || memcmp(p->text, q->text, p->len) != 0)
            continue;
        if (!second || refs[i].index < second->index) {
            first = &refs[i - 1];
            second = &refs[i];
        }
    }
    if (!second)
        return GMC_OK;
    char path[GMC_DIAG_PATH];
    path_with_key(b, second->key, path, sizeof path);
    char shown[80] = "";
    append_text(shown, sizeof shown, second->key->text, second->key->len);
    return fail_at(b, GMC_ERR_SCHEMA, second->key->line, second->key->col,
                   path, "duplicate key \"%s\" (first defined at line %d)",
                   shown, first->key->line);
}

/* Turns the children list of the innermost collection into its array,
 * checks mapping keys for duplicates, and pops the frame. */
static gmc_status on_end(builder *b)
{
    GMC_ASSERT(b->depth > 0); /* libyaml pairs start and end events */
    frame *f = &b->stack[b->depth - 1];
    gmc_ynode *n = f->node;
    if (n->kind == GMC_YNODE_MAP) {
        GMC_ASSERT(f->count % 2 == 0);
        gmc_ypair *pairs = gmc_arena_array(b->a, f->count / 2 + 1,
                                           sizeof *pairs);
        if (!pairs)
            return out_of_memory(b);
        size_t i = 0;
        for (const cell *c = f->first; c; c = c->next->next)
            pairs[i++] = (gmc_ypair){c->node, c->next->node};
        n->pairs = pairs;
        n->n = i;
        GMC_TRY(check_duplicates(b, pairs, i));
    } else {
        const gmc_ynode **items = gmc_arena_array(b->a, f->count + 1,
                                                  sizeof *items);
        if (!items)
            return out_of_memory(b);
        size_t i = 0;
        for (const cell *c = f->first; c; c = c->next)
            items[i++] = c->node;
        n->items = items;
        n->n = i;
    }
    b->depth--;
    return attach(b, n);
}

/* ------------------------------------------------------------ events */

/* Dispatches one event.  The count is checked first so that even events
 * we ignore (document and stream markers) cannot run unbounded. */
static gmc_status on_event(builder *b, const yaml_event_t *e)
{
    int line = mark_to_int(e->start_mark.line);
    int col = mark_to_int(e->start_mark.column);
    char path[GMC_DIAG_PATH];
    if (++b->events > GMC_YAML_MAX_EVENTS) {
        current_path(b, path, sizeof path);
        return fail_at(b, GMC_ERR_LIMIT, line, col, path,
                       "more than %d YAML events (nodes and collection "
                       "ends); the document is too complex",
                       GMC_YAML_MAX_EVENTS);
    }
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1)
            return fail_at(b, GMC_ERR_SYNTAX, line, col, "",
                           "a second YAML document starts here; a graph "
                           "file holds exactly one");
        return GMC_OK;
    case YAML_ALIAS_EVENT:
        current_path(b, path, sizeof path);
        return fail_at(b, GMC_ERR_SYNTAX, line, col, path,
                       "aliases are not allowed (found *%.64s)",
                       (const char *)e->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, e);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, e, GMC_YNODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, e, GMC_YNODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    case YAML_STREAM_END_EVENT:
        b->done = true;
        return GMC_OK;
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return GMC_OK;
    }
    return GMC_OK;
}

/* Line and column (characters) of a byte offset, for reader errors, whose
 * marks libyaml leaves at zero. */
static void offset_position(const char *text, size_t len, size_t off,
                            int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || (ch == '\r' && !(i + 1 < len && text[i + 1] == '\n'))) {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80 && ch != '\r' && c < INT_MAX) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Converts the error libyaml recorded in p into a diagnostic: its
 * problem text and mark, plus its context ("while parsing a flow
 * sequence") and where that context began, which is usually where the
 * mistake is (an unclosed bracket). */
static gmc_status convert_error(builder *b, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    int line, col;
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return out_of_memory(b);
    case YAML_READER_ERROR:
        /* Reader errors (bad UTF-8, control bytes) carry a byte offset and
         * the offending value instead of a mark. */
        offset_position(b->text, b->len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return fail_at(b, GMC_ERR_SYNTAX, line, col, "",
                           "invalid text: %s (byte 0x%02X)", problem,
                           (unsigned)p->problem_value & 0xFFu);
        return fail_at(b, GMC_ERR_SYNTAX, line, col, "", "invalid text: %s",
                       problem);
    default:
        line = mark_to_int(p->problem_mark.line);
        col = mark_to_int(p->problem_mark.column);
        if (p->context)
            return fail_at(b, GMC_ERR_SYNTAX, line, col, "",
                           "syntax error: %s (%s at line %d, column %d)",
                           problem, p->context,
                           mark_to_int(p->context_mark.line),
                           mark_to_int(p->context_mark.column));
        return fail_at(b, GMC_ERR_SYNTAX, line, col, "", "syntax error: %s",
                       problem);
    }
}

/* Pulls events until the stream ends or an error; each event is freed
 * before the next one is read, whatever happened to it. */
static gmc_status run_parser(builder *b, yaml_parser_t *p)
{
    while (!b->done) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e))
            return convert_error(b, p);
        gmc_status s = on_event(b, &e);
        yaml_event_delete(&e);
        if (s != GMC_OK)
            return s;
    }
    if (b->documents == 0 || !b->root)
        return gmc_fail_at(b->diag, GMC_ERR_SYNTAX, b->file, 0, 0, "",
                           "the file holds no YAML document");
    return GMC_OK;
}

/* The size limit is checked before libyaml sees a byte: its scanner
 * buffers tokens, so a huge document costs memory before any event. */
gmc_status gmc_yaml_parse(const char *text, size_t len, const char *filename,
                          gmc_arena *a, const gmc_ynode **out_root,
                          gmc_diag *diag)
{
    *out_root = NULL;
    const char *file = filename ? filename : "<input>";
    if (len > GMC_YAML_MAX_BYTES)
        return gmc_fail_at(diag, GMC_ERR_LIMIT, file, 0, 0, "",
                           "the file is %zu bytes; the limit is %u bytes",
                           len, (unsigned)GMC_YAML_MAX_BYTES);
    builder b = {.text = text, .len = len, .file = file, .a = a,
                 .diag = diag};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return out_of_memory(&b);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    gmc_status s = run_parser(&b, &p);
    yaml_parser_delete(&p);
    if (s == GMC_OK)
        *out_root = b.root;
    return s;
}
