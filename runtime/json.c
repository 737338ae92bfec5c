/*
 * json.c — a small, strict JSON (RFC 8259) parser for untrusted input.
 *
 * Used for safetensors headers, model.safetensors.index.json, config.json
 * and tokenizer.json.  The whole text is parsed into a DOM that lives in one
 * arena owned by the gmrt_json document, so a caller frees one object.
 * Strictness is the point (docs/input-checks.md §2.2 #22): UTF-8 is validated, the
 * nesting depth, the value count, the members per container and the string
 * length are capped, duplicate keys are an error, and every error names the
 * byte offset, line and column and what was expected there.
 *
 * Containers are built on a shared value stack: children are pushed while
 * parsing and copied into the arena when the container closes, so no
 * container ever reallocates.  Object keys are sorted once at close (which
 * finds duplicates in O(n log n) and lets gmrt_json_get binary-search).
 */
#include "gmrt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena chunks: large enough that a tokenizer.json needs few of them. */
#define ARENA_CHUNK (1u << 20)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk;

struct gmrt_json {
    arena_chunk *chunks;
    gmrt_json_value root;
};

typedef struct parser {
    const unsigned char *p, *end, *start;
    const char *what;              /* file name for messages */
    gmrt_json_limits lim;
    gmrt_json *doc;
    gmrt_json_value *stack;        /* pending container children */
    gmrt_json_member *kstack;      /* pending object members (key + value index) */
    size_t n_stack, cap_stack, n_kstack, cap_kstack;
    size_t n_values;
    gmrt_diag *diag;
} parser;

/* ----------------------------------------------------------------- arena */

static void *arena_alloc(gmrt_json *doc, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    arena_chunk *c = doc->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = doc->chunks;
        doc->chunks = c;
    }
    void *r = (unsigned char *)c->data + c->used;
    c->used += n;
    return r;
}

void gmrt_json_destroy(gmrt_json *doc)
{
    if (!doc)
        return;
    for (arena_chunk *c = doc->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(doc);
}

/* ---------------------------------------------------------------- errors */

/* line:col of an offset, counted in bytes from 1 (scanned only on error). */
static void line_col(const parser *ps, const unsigned char *at, unsigned *line,
                     unsigned *col)
{
    *line = 1;
    *col = 1;
    for (const unsigned char *q = ps->start; q < at; q++) {
        if (*q == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static gmrt_status fail_at(parser *ps, const unsigned char *at, gmrt_status st,
                           const char *fmt, ...) GMRT_PRINTF(4, 5);

static gmrt_status fail_at(parser *ps, const unsigned char *at, gmrt_status st,
                           const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned line, col;
    line_col(ps, at, &line, &col);
    return gmrt_fail(ps->diag, st, "%s:%u:%u (byte %zu): %s", ps->what, line, col,
                     (size_t)(at - ps->start), msg);
}

/* What the parser found, for "expected X, found Y" messages. */
static const char *found(const parser *ps)
{
    if (ps->p >= ps->end)
        return "end of input";
    static const char *const names[] = {"'{'", "'}'", "'['", "']'", "':'", "','", "'\"'"};
    const char *chars = "{}[]:,\"";
    const char *c = memchr(chars, *ps->p, 7);
    return c ? names[c - chars] : "an unexpected character";
}

/* ---------------------------------------------------------------- lexing */

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Length of the UTF-8 sequence at p (1..4) or 0 if it is not well-formed
 * (overlong, surrogate, above U+10FFFF, truncated). */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    int n;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) { n = 2; min = 0x80; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 3; min = 0x800; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (end - p < n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* \uXXXX at p (after the backslash-u), with a surrogate pair if needed. */
static gmrt_status unicode_escape(parser *ps, const unsigned char *esc, unsigned *cp)
{
    if (!hex4(ps->p, ps->end, cp))
        return fail_at(ps, esc, GMRT_ERR_FORMAT, "\\u must be followed by 4 hex digits");
    ps->p += 4;
    if (*cp >= 0xdc00 && *cp <= 0xdfff)
        return fail_at(ps, esc, GMRT_ERR_FORMAT, "lone low surrogate \\u%04X", *cp);
    if (*cp < 0xd800 || *cp > 0xdbff)
        return GMRT_OK;
    unsigned lo;
    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
        !hex4(ps->p + 2, ps->end, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return fail_at(ps, esc, GMRT_ERR_FORMAT,
                       "high surrogate \\u%04X is not followed by a low surrogate", *cp);
    ps->p += 6;
    *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    return GMRT_OK;
}

/* Parses a string at ps->p (the opening quote) into the arena; the decoded
 * text is never longer than the source, so one allocation suffices. */
static gmrt_status parse_string(parser *ps, const char **out, size_t *out_len)
{
    const unsigned char *open = ps->p++;
    const unsigned char *q = ps->p;
    while (q < ps->end && *q != '"')
        q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end)
        return fail_at(ps, open, GMRT_ERR_FORMAT, "unterminated string");
    if ((size_t)(q - ps->p) > ps->lim.max_string)
        return fail_at(ps, open, GMRT_ERR_LIMIT, "string of %zu bytes is above the "
                       "cap of %zu", (size_t)(q - ps->p), ps->lim.max_string);
    unsigned char *o = arena_alloc(ps->doc, (size_t)(q - ps->p) + 1), *o0 = o;
    if (!o)
        return gmrt_fail(ps->diag, GMRT_ERR_NOMEM, "%s: out of memory", ps->what);
    while (*ps->p != '"') {
        unsigned c = *ps->p;
        if (c < 0x20)
            return fail_at(ps, ps->p, GMRT_ERR_FORMAT,
                           "control character 0x%02X in a string (must be escaped)", c);
        if (c != '\\') {
            int n = utf8_len(ps->p, ps->end);
            if (!n)
                return fail_at(ps, ps->p, GMRT_ERR_FORMAT, "invalid UTF-8 in a string");
            memcpy(o, ps->p, (size_t)n);
            o += n;
            ps->p += n;
            continue;
        }
        const unsigned char *esc = ps->p;
        ps->p += 2;
        unsigned cp;
        switch (esc[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (unicode_escape(ps, esc, &cp) != GMRT_OK)
                return ps->diag ? ps->diag->status : GMRT_ERR_FORMAT;
            o += put_utf8(o, cp);
            break;
        default:
            return fail_at(ps, esc, GMRT_ERR_FORMAT, "unknown escape \\%c",
                           esc[1] >= 0x20 && esc[1] < 0x7f ? esc[1] : '?');
        }
    }
    ps->p++;
    *o = '\0';
    *out = (const char *)o0;
    *out_len = (size_t)(o - o0);
    return GMRT_OK;
}

/* RFC 8259 number grammar, checked by hand (strtod alone accepts "0x1",
 * "inf", " 1", "+1"); integral numbers that fit become int64. */
static gmrt_status parse_number(parser *ps, gmrt_json_value *v)
{
    const unsigned char *s = ps->p, *q = s;
    bool integral = true;
    if (q < ps->end && *q == '-')
        q++;
    if (q < ps->end && *q == '0')
        q++;
    else if (q < ps->end && *q >= '1' && *q <= '9')
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    else
        return fail_at(ps, s, GMRT_ERR_FORMAT, "expected a digit in a number");
    if (q < ps->end && *q == '.') {
        integral = false;
        if (++q >= ps->end || *q < '0' || *q > '9')
            return fail_at(ps, q, GMRT_ERR_FORMAT, "expected a digit after '.'");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        if (++q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail_at(ps, q, GMRT_ERR_FORMAT, "expected a digit in the exponent");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    char buf[64];
    if (q - s >= (ptrdiff_t)sizeof buf)
        return fail_at(ps, s, GMRT_ERR_LIMIT, "number longer than %zu characters",
                       sizeof buf - 1);
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = '\0';
    ps->p = q;
    errno = 0;
    if (integral) {
        long long i = strtoll(buf, NULL, 10);
        if (errno == 0) {
            v->kind = GMRT_JSON_INT;
            v->u.i = i;
            return GMRT_OK;
        }
        errno = 0;
    }
    double d = strtod(buf, NULL);
    if (!isfinite(d))
        return fail_at(ps, s, GMRT_ERR_FORMAT, "number %s is out of range", buf);
    v->kind = GMRT_JSON_DOUBLE;
    v->u.d = d;
    return GMRT_OK;
}

static gmrt_status literal(parser *ps, const char *word, gmrt_json_value *v)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail_at(ps, ps->p, GMRT_ERR_FORMAT,
                       "expected a value (object, array, string, number, true, "
                       "false or null), found %s", found(ps));
    ps->p += n;
    v->kind = word[0] == 'n' ? GMRT_JSON_NULL : GMRT_JSON_BOOL;
    v->u.b = word[0] == 't';
    return GMRT_OK;
}

/* ------------------------------------------------------------ containers */

static gmrt_status push_value(parser *ps, const gmrt_json_value *v)
{
    if (ps->n_stack == ps->cap_stack) {
        size_t cap = ps->cap_stack ? ps->cap_stack * 2 : 64;
        gmrt_json_value *s = realloc(ps->stack, cap * sizeof *s);
        if (!s)
            return gmrt_fail(ps->diag, GMRT_ERR_NOMEM, "%s: out of memory", ps->what);
        ps->stack = s;
        ps->cap_stack = cap;
    }
    ps->stack[ps->n_stack++] = *v;
    return GMRT_OK;
}

static gmrt_status push_key(parser *ps, const char *key, size_t len)
{
    if (ps->n_kstack == ps->cap_kstack) {
        size_t cap = ps->cap_kstack ? ps->cap_kstack * 2 : 64;
        gmrt_json_member *s = realloc(ps->kstack, cap * sizeof *s);
        if (!s)
            return gmrt_fail(ps->diag, GMRT_ERR_NOMEM, "%s: out of memory", ps->what);
        ps->kstack = s;
        ps->cap_kstack = cap;
    }
    ps->kstack[ps->n_kstack].key = key;
    ps->kstack[ps->n_kstack].key_len = len;
    ps->kstack[ps->n_kstack].value = NULL;
    ps->n_kstack++;
    return GMRT_OK;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int member_cmp(const void *x, const void *y)
{
    const gmrt_json_member *a = *(const gmrt_json_member *const *)x;
    const gmrt_json_member *b = *(const gmrt_json_member *const *)y;
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

/* Moves the n children on top of the stack (and, for objects, their keys)
 * into the arena. */
static gmrt_status close_container(parser *ps, gmrt_json_value *v, size_t n,
                                   const unsigned char *open)
{
    gmrt_json_value *items = arena_alloc(ps->doc, (n ? n : 1) * sizeof *items);
    if (!items)
        return gmrt_fail(ps->diag, GMRT_ERR_NOMEM, "%s: out of memory", ps->what);
    if (n) /* the stack may still be NULL for an empty container */
        memcpy(items, ps->stack + ps->n_stack - n, n * sizeof *items);
    ps->n_stack -= n;
    v->u.c.items = items;
    v->u.c.n = n;
    if (v->kind != GMRT_JSON_OBJECT)
        return GMRT_OK;
    gmrt_json_member *m = arena_alloc(ps->doc, (n ? n : 1) * sizeof *m);
    gmrt_json_member **sorted = arena_alloc(ps->doc, (n ? n : 1) * sizeof *sorted);
    if (!m || !sorted)
        return gmrt_fail(ps->diag, GMRT_ERR_NOMEM, "%s: out of memory", ps->what);
    if (n)
        memcpy(m, ps->kstack + ps->n_kstack - n, n * sizeof *m);
    ps->n_kstack -= n;
    for (size_t i = 0; i < n; i++) {
        m[i].value = &items[i];
        sorted[i] = &m[i];
    }
    qsort(sorted, n, sizeof *sorted, member_cmp);
    for (size_t i = 1; i < n; i++)
        if (member_cmp(&sorted[i - 1], &sorted[i]) == 0)
            return fail_at(ps, open, GMRT_ERR_FORMAT, "duplicate key \"%.*s\" in "
                           "this object", (int)(sorted[i]->key_len < 80 ? sorted[i]->key_len : 80),
                           sorted[i]->key);
    v->u.c.members = m;
    v->u.c.sorted = sorted;
    return GMRT_OK;
}

static gmrt_status parse_value(parser *ps, gmrt_json_value *v, int depth);

/* Parses "[...]" or "{...}" whose opening bracket is at ps->p. */
static gmrt_status parse_container(parser *ps, gmrt_json_value *v, int depth)
{
    const unsigned char *open = ps->p;
    bool obj = *ps->p == '{';
    char close = obj ? '}' : ']';
    if (depth >= ps->lim.max_depth)
        return fail_at(ps, open, GMRT_ERR_LIMIT, "nesting deeper than %d levels",
                       ps->lim.max_depth);
    v->kind = obj ? GMRT_JSON_OBJECT : GMRT_JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    size_t n = 0;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return close_container(ps, v, 0, open);
    }
    for (;;) {
        if (n >= ps->lim.max_members)
            return fail_at(ps, open, GMRT_ERR_LIMIT, "more than %zu %s in one %s",
                           ps->lim.max_members, obj ? "keys" : "elements",
                           obj ? "object" : "array");
        skip_ws(ps);
        if (obj) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail_at(ps, ps->p, GMRT_ERR_FORMAT,
                               "expected a key string, found %s", found(ps));
            const char *key;
            size_t len;
            gmrt_status st = parse_string(ps, &key, &len);
            if (st == GMRT_OK)
                st = push_key(ps, key, len);
            if (st != GMRT_OK)
                return st;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail_at(ps, ps->p, GMRT_ERR_FORMAT,
                               "expected ':' after the key \"%.*s\", found %s",
                               (int)(len < 80 ? len : 80), key, found(ps));
            ps->p++;
        }
        gmrt_json_value child;
        gmrt_status st = parse_value(ps, &child, depth + 1);
        if (st == GMRT_OK)
            st = push_value(ps, &child);
        if (st != GMRT_OK)
            return st;
        n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return close_container(ps, v, n, open);
        }
        return fail_at(ps, ps->p, GMRT_ERR_FORMAT, "expected ',' or '%c', found %s",
                       close, found(ps));
    }
}

static gmrt_status parse_value(parser *ps, gmrt_json_value *v, int depth)
{
    skip_ws(ps);
    memset(v, 0, sizeof *v);
    v->offset = (size_t)(ps->p - ps->start);
    if (++ps->n_values > ps->lim.max_values)
        return fail_at(ps, ps->p, GMRT_ERR_LIMIT, "more than %zu values",
                       ps->lim.max_values);
    if (ps->p >= ps->end)
        return fail_at(ps, ps->p, GMRT_ERR_FORMAT, "expected a value, found end of input");
    switch (*ps->p) {
    case '{': case '[':
        return parse_container(ps, v, depth);
    case '"':
        v->kind = GMRT_JSON_STRING;
        return parse_string(ps, &v->u.s.p, &v->u.s.len);
    case 't': return literal(ps, "true", v);
    case 'f': return literal(ps, "false", v);
    case 'n': return literal(ps, "null", v);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, v);
        return literal(ps, "\x01", v); /* never matches: reports what was found */
    }
}

/* ------------------------------------------------------------------- API */

void gmrt_json_limits_default(gmrt_json_limits *l)
{
    l->max_depth = GMRT_JSON_MAX_DEPTH;
    l->max_values = 1u << 22;
    l->max_members = 1u << 20;
    l->max_string = 1u << 20;
}

gmrt_status gmrt_json_parse(const char *text, size_t len, const char *what,
                            const gmrt_json_limits *lim, gmrt_json **out,
                            gmrt_diag *diag)
{
    *out = NULL;
    parser ps = {0};
    ps.start = ps.p = (const unsigned char *)text;
    ps.end = ps.p + len;
    ps.what = what ? what : "json";
    ps.diag = diag;
    if (lim)
        ps.lim = *lim;
    else
        gmrt_json_limits_default(&ps.lim);
    if (ps.lim.max_depth > GMRT_JSON_MAX_DEPTH || ps.lim.max_depth < 1)
        ps.lim.max_depth = GMRT_JSON_MAX_DEPTH;
    ps.doc = calloc(1, sizeof *ps.doc);
    if (!ps.doc)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "%s: out of memory", ps.what);
    gmrt_status st = parse_value(&ps, &ps.doc->root, 0);
    if (st == GMRT_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            st = fail_at(&ps, ps.p, GMRT_ERR_FORMAT,
                         "expected the end of the document, found %s", found(&ps));
    }
    free(ps.stack);
    free(ps.kstack);
    if (st != GMRT_OK) {
        gmrt_json_destroy(ps.doc);
        return st;
    }
    *out = ps.doc;
    return GMRT_OK;
}

const gmrt_json_value *gmrt_json_root(const gmrt_json *doc) { return &doc->root; }

const gmrt_json_member *gmrt_json_find(const gmrt_json_value *obj, const char *key)
{
    if (!obj || obj->kind != GMRT_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key), lo = 0, hi = obj->u.c.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gmrt_json_member *m = obj->u.c.sorted[mid];
        int c = key_cmp(m->key, m->key_len, key, kl);
        if (c == 0)
            return m;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gmrt_json_value *gmrt_json_get(const gmrt_json_value *obj, const char *key)
{
    const gmrt_json_member *m = gmrt_json_find(obj, key);
    return m ? m->value : NULL;
}

const char *gmrt_json_kind_name(gmrt_json_kind k)
{
    switch (k) {
    case GMRT_JSON_NULL: return "null";
    case GMRT_JSON_BOOL: return "a boolean";
    case GMRT_JSON_INT: return "an integer";
    case GMRT_JSON_DOUBLE: return "a number";
    case GMRT_JSON_STRING: return "a string";
    case GMRT_JSON_ARRAY: return "an array";
    case GMRT_JSON_OBJECT: return "an object";
    }
    return "?";
}

bool gmrt_json_number(const gmrt_json_value *v, double *out)
{
    if (!v)
        return false;
    if (v->kind == GMRT_JSON_INT)
        *out = (double)v->u.i;
    else if (v->kind == GMRT_JSON_DOUBLE)
        *out = v->u.d;
    else
        return false;
    return true;
}
