/*
 * gguf.c — a validating, memory-mapped GGUF reader.
 *
 * The file is mapped read-only once (size from a single fstat) and parsed
 * with a bounds-checked cursor: every length read from the file is checked
 * against its cap and against the bytes that remain BEFORE anything is
 * allocated, and all size arithmetic is overflow-checked in uint64.  The
 * checks are those of docs/input-checks.md §2.1 (1–19) and §2.5; each failure
 * names the file, the byte offset, and the key or tensor at fault.
 * Metadata is copied out of the mapping at open time (the mapping may put
 * numeric arrays at unaligned addresses); tensor data stays in the mapping.
 */
#include "gmrt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fields are read with memcpy, which is only right on a little-endian host
 * (GGUF v3 files are little-endian unless marked otherwise, which we refuse). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host"
#endif

#define GGUF_VERSION_MAX 3u
#define GGUF_DEFAULT_ALIGN 32u
/* Smallest encodings that the parser would read far enough to report on
 * (an empty key or name, zero dims), used to refuse counts that cannot fit
 * in the rest of the file before allocating tables for them:
 * KV = key length (8) + type (4) + 1 value byte;
 * tensor = name length (8) + n_dims (4) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_BYTES 24u
/* Keys and names are echoed in messages at most this long (escaped). */
#define GGUF_SHOW_MAX 96

typedef struct gguf_kv {
    char *key;             /* first member: see name_at() */
    uint64_t at;           /* byte offset of the entry, for messages */
    uint64_t val_at, end;  /* the encoded value: [val_at, end) of the file */
    gmrt_gguf_type type;
    gmrt_gguf_type elem;   /* element type of an ARRAY */
    uint64_t n;            /* element count of an ARRAY */
    union {
        uint64_t u;        /* UINT8..UINT64 and BOOL */
        int64_t i;         /* INT8..INT64 */
        double f;          /* FLOAT32, FLOAT64 */
    } num;
    uint32_t len;          /* STRING: byte length */
    /* STRING: the NUL-terminated copy.  ARRAY: one heap block holding the
     * numeric elements, or for strings the pointer table, the length table
     * and the characters.  Owned; freed in gmrt_gguf_close. */
    void *mem;
    const char **strs;     /* string arrays: pointers into mem */
    uint32_t *lens;        /* string arrays: lengths, inside mem */
} gguf_kv;

/* Open-addressing hash of names (keys or tensor names) to entry indices,
 * so that duplicate detection and lookups stay O(1) at 65,536 tensors. */
typedef struct name_index {
    uint32_t *slot;        /* 0 = empty, otherwise entry index + 1 */
    uint32_t mask;
} name_index;

/* Everything is owned by the struct and freed by gmrt_gguf_close; the
 * tensor data pointers point into map, which lives as long as it does. */
struct gmrt_gguf {
    void *map;             /* PROT_READ, MAP_PRIVATE, file_size bytes */
    uint64_t file_size;    /* from the single fstat */
    uint32_t version;      /* 2 or 3 */
    uint32_t alignment;    /* general.alignment or 32 */
    uint64_t data_start;   /* file offset of the data section */
    int64_t n_kv;          /* entries of kv[] that own memory */
    gguf_kv *kv;
    int64_t n_tensors;
    gmrt_gguf_tensor *tensors;
    char *names;           /* n_tensors slots of GMRT_GGUF_MAX_NAME + 1 */
    name_index kv_ix, tensor_ix;
};

/* The bounds-checked cursor over the mapping.  Invariant: pos <= size;
 * only need() decides whether bytes may be read. */
typedef struct reader {
    const unsigned char *p;
    uint64_t size;
    uint64_t pos;
    const char *path;      /* for messages only */
    gmrt_diag *diag;
} reader;

/* A run of bytes inside the mapping (not NUL-terminated). */
typedef struct span {
    const char *s;
    uint64_t len;
} span;

/* Indexed by gmrt_gguf_type; only ever indexed after the range check of
 * check 7, so a hostile type id never reaches these tables. */
static const char *const type_names[GMRT_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};
/* Encoded size of each scalar type; 0 for STRING and ARRAY. */
static const uint8_t type_sizes[GMRT_GGUF_TYPE_COUNT] = {
    1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8,
};

/* ------------------------------------------------------------ helpers */

/* Escapes a name for a message (control and non-ASCII bytes as \xNN) so
 * that a hostile file cannot put terminal escapes into our output. */
static const char *show(char *buf, size_t cap, const char *s, uint64_t len)
{
    size_t o = 0;
    for (uint64_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= GGUF_SHOW_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* Worst case: every shown byte escaped to 4 characters, plus "..." and NUL. */
#define SHOW_BUF (GGUF_SHOW_MAX * 4 + 8)

/* Rounds x up to a multiple of the power of two a. */
static uint64_t align_up(uint64_t x, uint32_t a)
{
    /* Callers guarantee x + a - 1 does not overflow. */
    return (x + a - 1) / a * a;
}

/* ------------------------------------------------------------ name index */

/* Keys and names never contain NUL (rejected while parsing), so the
 * C-string hash and strcmp see every byte of them. */
static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static gmrt_status index_init(name_index *ix, int64_t n, gmrt_diag *diag)
{
    /* Capacity is a power of two at least twice the entry count, so that
     * probing always ends at an empty slot. n is capped, so this is small. */
    uint32_t cap = 16;
    while ((int64_t)cap < 2 * n)
        cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    if (!ix->slot)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "gguf: out of memory (name index)");
    ix->mask = cap - 1;
    return GMRT_OK;
}

/* The name of entry k: both gguf_kv and gmrt_gguf_tensor keep their name
 * pointer as the first member, so one index serves both tables. */
static const char *name_at(const void *base, size_t stride, uint32_t k)
{
    const char *name;
    memcpy(&name, (const char *)base + (size_t)k * stride, sizeof name);
    return name;
}

/* Returns the slot holding name, or the empty slot where it belongs. */
static uint32_t *index_slot(const name_index *ix, const void *base,
                            size_t stride, const char *name)
{
    uint32_t i = hash_name(name) & ix->mask;
    for (;;) {
        uint32_t e = ix->slot[i];
        if (e == 0 || strcmp(name_at(base, stride, e - 1), name) == 0)
            return &ix->slot[i];
        i = (i + 1) & ix->mask;
    }
}

/* ------------------------------------------------------------ cursor */

/* The one bounds check every read goes through: n more bytes must exist.
 * Written as n <= size - pos (pos <= size always holds) so that a huge n
 * read from the file cannot wrap the comparison. */
static gmrt_status need(reader *r, uint64_t n, const char *what)
{
    uint64_t left = r->size - r->pos;
    if (n <= left)
        return GMRT_OK;
    return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                     "%s: truncated: %s at byte %" PRIu64 " needs %" PRIu64
                     " bytes, only %" PRIu64 " left",
                     r->path, what, r->pos, n, left);
}

/* Copies n bytes out of the mapping (fields may be unaligned there). */
static gmrt_status read_bytes(reader *r, void *dst, uint64_t n, const char *what)
{
    gmrt_status s = need(r, n, what);
    if (s != GMRT_OK)
        return s;
    memcpy(dst, r->p + r->pos, (size_t)n);
    r->pos += n;
    return GMRT_OK;
}

static gmrt_status read_u32(reader *r, uint32_t *v, const char *what)
{
    return read_bytes(r, v, sizeof *v, what);
}

static gmrt_status read_u64(reader *r, uint64_t *v, const char *what)
{
    return read_bytes(r, v, sizeof *v, what);
}

/* Reads a length-prefixed string as a span into the mapping.  The length
 * is checked against the cap (limit) and the bytes left (format). */
static gmrt_status read_span(reader *r, span *out, const char *what)
{
    uint64_t at = r->pos, len;
    gmrt_status s = read_u64(r, &len, what);
    if (s != GMRT_OK)
        return s;
    if (len > GMRT_GGUF_MAX_STRING)
        return gmrt_fail(r->diag, GMRT_ERR_LIMIT,
                         "%s: %s at byte %" PRIu64 ": string length %" PRIu64
                         " exceeds the cap of %u bytes",
                         r->path, what, at, len, GMRT_GGUF_MAX_STRING);
    if ((s = need(r, len, what)) != GMRT_OK)
        return s;
    out->s = (const char *)r->p + r->pos;
    out->len = len;
    r->pos += len;
    return GMRT_OK;
}

/* ------------------------------------------------------------ header */

/* Checks 1 and 2: magic and version; then reads the two counts, which
 * check_count() validates before anything is sized by them.  Version 2
 * has the same layout as 3 (v3 only added big-endian files), v1 used
 * 32-bit counts and is refused. */
static gmrt_status parse_header(reader *r, gmrt_gguf *g, uint64_t *out_n_tensors,
                                uint64_t *out_n_kv)
{
    unsigned char magic[4];
    gmrt_status s = read_bytes(r, magic, 4, "magic");
    if (s != GMRT_OK)
        return s;
    if (memcmp(magic, "GGUF", 4) != 0) {
        char buf[SHOW_BUF];
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: bad magic \"%s\" (expected \"GGUF\")", r->path,
                         show(buf, sizeof buf, (const char *)magic, 4));
    }
    uint32_t v;
    if ((s = read_u32(r, &v, "version")) != GMRT_OK)
        return s;
    /* A small version read with the wrong byte order has its value in the
     * top half; llama.cpp uses the same test. */
    if (v != 0 && (v & 0xFFFFu) == 0)
        return gmrt_fail(r->diag, GMRT_ERR_UNSUPPORTED,
                         "%s: version field 0x%08" PRIx32 " looks byte-swapped "
                         "(big-endian GGUF is not supported)", r->path, v);
    if (v == 0)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: version 0 is invalid",
                         r->path);
    if (v == 1)
        return gmrt_fail(r->diag, GMRT_ERR_UNSUPPORTED,
                         "%s: GGUF version 1 is not supported (need 2 or 3)",
                         r->path);
    if (v > GGUF_VERSION_MAX)
        return gmrt_fail(r->diag, GMRT_ERR_UNSUPPORTED,
                         "%s: GGUF version %" PRIu32 " is newer than the "
                         "supported version %u", r->path, v, GGUF_VERSION_MAX);
    g->version = v;
    if ((s = read_u64(r, out_n_tensors, "tensor count")) != GMRT_OK)
        return s;
    return read_u64(r, out_n_kv, "metadata count");
}

/* Check 3: a count is non-negative (as int64), under its cap, and each of
 * its entries could at least fit in the bytes that remain. */
static gmrt_status check_count(reader *r, uint64_t n, uint64_t cap,
                               uint64_t min_bytes, const char *what)
{
    if (n > (uint64_t)INT64_MAX)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s %" PRId64
                         " is negative", r->path, what, (int64_t)n);
    if (n > cap)
        return gmrt_fail(r->diag, GMRT_ERR_LIMIT, "%s: %s %" PRIu64
                         " exceeds the cap of %" PRIu64, r->path, what, n, cap);
    uint64_t left = r->size - r->pos;
    if (n > left / min_bytes)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: %s %" PRIu64 " cannot fit in the %" PRIu64
                         " bytes left at byte %" PRIu64,
                         r->path, what, n, left, r->pos);
    return GMRT_OK;
}

/* ------------------------------------------------------------ metadata */

/* Fails with "<path>: key "<key>" at byte N: <message>". */
static gmrt_status kv_fail(reader *r, const gguf_kv *kv, gmrt_status st,
                           const char *fmt, ...) GMRT_PRINTF(4, 5);
static gmrt_status kv_fail(reader *r, const gguf_kv *kv, gmrt_status st,
                           const char *fmt, ...)
{
    char what[256], buf[SHOW_BUF];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gmrt_fail(r->diag, st, "%s: key \"%s\" at byte %" PRIu64 ": %s",
                     r->path, show(buf, sizeof buf, kv->key, strlen(kv->key)),
                     kv->at, what);
}

/* Reads one scalar of type t into kv->num (or a string into kv->mem).
 * Integers are widened here, with their sign, so the getters never need
 * the original width. */
static gmrt_status parse_scalar(reader *r, gguf_kv *kv, gmrt_gguf_type t)
{
    if (t == GMRT_GGUF_STRING) {
        span sp;
        gmrt_status s = read_span(r, &sp, "string value");
        if (s != GMRT_OK)
            return s;
        char *copy = malloc((size_t)sp.len + 1);
        if (!copy)
            return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory");
        memcpy(copy, sp.s, (size_t)sp.len);
        copy[sp.len] = '\0';
        kv->mem = copy;
        kv->len = (uint32_t)sp.len; /* <= GMRT_GGUF_MAX_STRING */
        return GMRT_OK;
    }
    unsigned char b[8] = {0};
    gmrt_status s = read_bytes(r, b, type_sizes[t], "value");
    if (s != GMRT_OK)
        return s;
    switch (t) {
    case GMRT_GGUF_UINT8: kv->num.u = b[0]; break;
    case GMRT_GGUF_BOOL:
        if (b[0] > 1)
            return kv_fail(r, kv, GMRT_ERR_FORMAT, "bool value %u is not 0 "
                           "or 1", b[0]);
        kv->num.u = b[0];
        break;
    case GMRT_GGUF_INT8: kv->num.i = (int8_t)b[0]; break;
    case GMRT_GGUF_UINT16: { uint16_t x; memcpy(&x, b, 2); kv->num.u = x; break; }
    case GMRT_GGUF_INT16: { int16_t x; memcpy(&x, b, 2); kv->num.i = x; break; }
    case GMRT_GGUF_UINT32: { uint32_t x; memcpy(&x, b, 4); kv->num.u = x; break; }
    case GMRT_GGUF_INT32: { int32_t x; memcpy(&x, b, 4); kv->num.i = x; break; }
    case GMRT_GGUF_FLOAT32: { float x; memcpy(&x, b, 4); kv->num.f = x; break; }
    case GMRT_GGUF_UINT64: memcpy(&kv->num.u, b, 8); break;
    case GMRT_GGUF_INT64: memcpy(&kv->num.i, b, 8); break;
    case GMRT_GGUF_FLOAT64: memcpy(&kv->num.f, b, 8); break;
    default: break; /* STRING and ARRAY never get here */
    }
    return GMRT_OK;
}

/* A string array: one pass over the mapping to validate every length and
 * size the copy, then one allocation (pointers, lengths, characters), then
 * a second pass to copy.  Memory stays proportional to the file. */
static gmrt_status parse_str_array(reader *r, gguf_kv *kv)
{
    uint64_t start = r->pos, chars = 0;
    for (uint64_t i = 0; i < kv->n; i++) {
        span sp;
        gmrt_status s = read_span(r, &sp, "array string");
        if (s != GMRT_OK)
            return s;
        chars += sp.len + 1; /* bounded by the file size plus n */
    }
    uint64_t n = kv->n;
    uint64_t bytes = n * (sizeof(char *) + sizeof(uint32_t)) + chars;
    /* twice the file at most: beyond size_t on a 32-bit machine (wasm32) */
    unsigned char *mem = bytes <= SIZE_MAX ? malloc(bytes ? (size_t)bytes : 1) : NULL;
    if (!mem)
        return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory "
                         "(%" PRIu64 " bytes for a string array)", bytes);
    kv->mem = mem;
    kv->strs = (const char **)(void *)mem;
    kv->lens = (uint32_t *)(void *)(mem + n * sizeof(char *));
    char *out = (char *)(mem + n * (sizeof(char *) + sizeof(uint32_t)));
    r->pos = start;
    for (uint64_t i = 0; i < n; i++) {
        span sp;
        if (read_span(r, &sp, "array string") != GMRT_OK)
            return GMRT_ERR_FORMAT; /* cannot happen: validated above */
        memcpy(out, sp.s, (size_t)sp.len);
        out[sp.len] = '\0';
        kv->strs[i] = out;
        kv->lens[i] = (uint32_t)sp.len;
        out += sp.len + 1;
    }
    return GMRT_OK;
}

/* Checks 5 and 7 for arrays: element type valid and not nested, count under
 * the cap and fitting in the bytes left, then copies the elements. */
static gmrt_status parse_array(reader *r, gguf_kv *kv)
{
    int32_t et;
    uint64_t at = r->pos;
    gmrt_status s = read_bytes(r, &et, 4, "array element type");
    if (s != GMRT_OK)
        return s;
    if (et < 0 || et >= GMRT_GGUF_TYPE_COUNT)
        return kv_fail(r, kv, GMRT_ERR_FORMAT, "unknown array element type "
                       "%" PRId32 " at byte %" PRIu64, et, at);
    if (et == GMRT_GGUF_ARRAY)
        return kv_fail(r, kv, GMRT_ERR_FORMAT, "nested arrays are not "
                       "supported (element type array at byte %" PRIu64 ")",
                       at);
    kv->elem = (gmrt_gguf_type)et;
    if ((s = read_u64(r, &kv->n, "array length")) != GMRT_OK)
        return s;
    if (kv->n > GMRT_GGUF_MAX_ARRAY)
        return kv_fail(r, kv, GMRT_ERR_LIMIT, "array length %" PRIu64
                       " exceeds the cap of %u", kv->n, GMRT_GGUF_MAX_ARRAY);
    /* Strings take at least their 8-byte length each. */
    uint64_t esize = et == GMRT_GGUF_STRING ? 8 : type_sizes[et];
    uint64_t left = r->size - r->pos;
    if (kv->n > left / esize)
        return kv_fail(r, kv, GMRT_ERR_FORMAT, "array of %" PRIu64 " %s "
                       "cannot fit in the %" PRIu64 " bytes left", kv->n,
                       type_names[et], left);
    if (et == GMRT_GGUF_STRING)
        return parse_str_array(r, kv);
    /* Copied, not pointed at: the mapping gives no alignment guarantee
     * for metadata, and callers index these as float or int32 arrays. */
    uint64_t bytes = kv->n * esize; /* <= left, so no overflow */
    kv->mem = malloc(bytes ? (size_t)bytes : 1);
    if (!kv->mem)
        return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory");
    memcpy(kv->mem, r->p + r->pos, (size_t)bytes);
    r->pos += bytes;
    if (et == GMRT_GGUF_BOOL) {
        const unsigned char *b = kv->mem;
        for (uint64_t i = 0; i < kv->n; i++)
            if (b[i] > 1)
                return kv_fail(r, kv, GMRT_ERR_FORMAT, "bool array element %"
                               PRIu64 " is %u, not 0 or 1", i, b[i]);
    }
    return GMRT_OK;
}

/* One key/value pair (checks 4–7).  The key is registered in the index
 * before its value is parsed, so that a duplicate is reported at the
 * second occurrence with the byte offset of the first. */
static gmrt_status parse_kv(reader *r, gmrt_gguf *g, int64_t i)
{
    gguf_kv *kv = &g->kv[i];
    uint64_t at = r->pos;
    span key;
    gmrt_status s = read_span(r, &key, "key");
    if (s != GMRT_OK)
        return s;
    if (key.len == 0)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: key %" PRId64
                         " at byte %" PRIu64 " is empty", r->path, i, at);
    char buf[SHOW_BUF];
    if (memchr(key.s, '\0', (size_t)key.len))
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: key \"%s\" at byte %" PRIu64 " contains a NUL byte",
                         r->path, show(buf, sizeof buf, key.s, key.len), at);
    kv->key = malloc((size_t)key.len + 1);
    if (!kv->key)
        return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory");
    memcpy(kv->key, key.s, (size_t)key.len);
    kv->key[key.len] = '\0';
    kv->at = at;
    g->n_kv = i + 1; /* from here on close() frees this entry */
    uint32_t *slot = index_slot(&g->kv_ix, g->kv, sizeof *g->kv, kv->key);
    if (*slot)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: duplicate key \"%s\" at byte %" PRIu64
                         " (first at byte %" PRIu64 ")", r->path,
                         show(buf, sizeof buf, key.s, key.len), at,
                         g->kv[*slot - 1].at);
    *slot = (uint32_t)i + 1;
    int32_t t;
    uint64_t tat = r->pos;
    if ((s = read_bytes(r, &t, 4, "value type")) != GMRT_OK)
        return s;
    if (t < 0 || t >= GMRT_GGUF_TYPE_COUNT)
        return kv_fail(r, kv, GMRT_ERR_FORMAT, "unknown value type %" PRId32
                       " at byte %" PRIu64, t, tat);
    kv->type = (gmrt_gguf_type)t;
    kv->val_at = r->pos;
    s = t == GMRT_GGUF_ARRAY ? parse_array(r, kv) : parse_scalar(r, kv, kv->type);
    kv->end = r->pos;
    return s;
}

static const gguf_kv *find_kv(const gmrt_gguf *g, const char *key)
{
    if (!g->kv_ix.slot)
        return NULL;
    uint32_t e = *index_slot(&g->kv_ix, g->kv, sizeof *g->kv, key);
    return e ? &g->kv[e - 1] : NULL;
}

/* Names the type of a KV for messages: "uint32", "array of float32".
 * buf is used only for arrays. */
static const char *kv_type_name(const gguf_kv *kv, char *buf, size_t cap)
{
    if (kv->type != GMRT_GGUF_ARRAY)
        return type_names[kv->type];
    snprintf(buf, cap, "array of %s", type_names[kv->elem]);
    return buf;
}

/* Check 8: general.alignment, if present, is a UINT32 power of two.  A
 * zero or odd alignment would divide by zero or misplace every tensor, and
 * another integer type is what tripped llama.cpp's assert (PR #26318). */
static gmrt_status parse_alignment(reader *r, gmrt_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGN;
    const gguf_kv *kv = find_kv(g, "general.alignment");
    if (!kv)
        return GMRT_OK;
    char buf[48];
    if (kv->type != GMRT_GGUF_UINT32)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: key \"general.alignment\": expected type uint32, "
                         "got %s", r->path, kv_type_name(kv, buf, sizeof buf));
    uint64_t a = kv->num.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT,
                         "%s: key \"general.alignment\": %" PRIu64
                         " is not a nonzero power of two", r->path, a);
    g->alignment = (uint32_t)a;
    return GMRT_OK;
}

/* ------------------------------------------------------------ tensors */

/* Formats the "tensor 3 \"name\"" prefix of tensor messages. */
static const char *tensor_label(char *buf, size_t cap, int64_t i,
                                const char *name)
{
    char nb[SHOW_BUF];
    snprintf(buf, cap, "tensor %" PRId64 " \"%s\"", i,
             show(nb, sizeof nb, name, strlen(name)));
    return buf;
}

/* Reads and checks a tensor name (check 9) into its fixed slot.  The
 * length is compared with the 63-byte limit before it is compared with
 * the bytes left, so an absurd length reads as "too long", not as a
 * truncation.  Empty names and embedded NULs are refused too: neither can
 * be looked up by name. */
static gmrt_status parse_tensor_name(reader *r, gmrt_gguf *g, int64_t i)
{
    uint64_t at = r->pos, len;
    gmrt_status s = read_u64(r, &len, "tensor name length");
    if (s != GMRT_OK)
        return s;
    if (len > GMRT_GGUF_MAX_NAME)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: tensor %" PRId64
                         " at byte %" PRIu64 ": name of %" PRIu64 " bytes is "
                         "longer than %d", r->path, i, at, len,
                         GMRT_GGUF_MAX_NAME);
    if (len == 0)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: tensor %" PRId64
                         " at byte %" PRIu64 " has an empty name", r->path, i, at);
    char *name = g->names + (size_t)i * (GMRT_GGUF_MAX_NAME + 1);
    if ((s = read_bytes(r, name, len, "tensor name")) != GMRT_OK)
        return s;
    name[len] = '\0';
    char buf[SHOW_BUF];
    if (memchr(name, '\0', (size_t)len))
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: tensor %" PRId64
                         " at byte %" PRIu64 ": name \"%s\" contains a NUL byte",
                         r->path, i, at, show(buf, sizeof buf, name, len));
    g->tensors[i].name = name;
    uint32_t *slot = index_slot(&g->tensor_ix, g->tensors, sizeof *g->tensors,
                                name);
    if (*slot)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: tensor %" PRId64
                         " at byte %" PRIu64 ": duplicate name \"%s\" (also "
                         "tensor %" PRIu32 ")", r->path, i, at,
                         show(buf, sizeof buf, name, len), *slot - 1);
    *slot = (uint32_t)i + 1;
    return GMRT_OK;
}

/* Checks 10 and 11: dims count and shape; returns the element count.
 * n_dims is checked before any ne[] is stored (ggml PR #709 wrote past a
 * 4-entry array), and unused dims read as 1 like ggml's. */
static gmrt_status parse_tensor_shape(reader *r, gmrt_gguf_tensor *t,
                                      const char *label, int64_t *out_n)
{
    uint32_t nd;
    gmrt_status s = read_u32(r, &nd, "tensor n_dims");
    if (s != GMRT_OK)
        return s;
    if (nd < 1 || nd > 4)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: n_dims %" PRIu32
                         " is not in 1..4", r->path, label, nd);
    t->n_dims = (int32_t)nd;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    int64_t n = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if ((s = read_bytes(r, &t->ne[d], 8, "tensor dimension")) != GMRT_OK)
            return s;
        if (t->ne[d] < 0)
            return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: ne[%" PRIu32
                             "] = %" PRId64 " is negative", r->path, label, d,
                             t->ne[d]);
        /* Division, not multiplication, so the test itself cannot wrap. */
        if (t->ne[d] != 0 && n > INT64_MAX / t->ne[d])
            return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: element count "
                             "overflows int64 at ne[%" PRIu32 "] = %" PRId64,
                             r->path, label, d, t->ne[d]);
        n *= t->ne[d];
    }
    *out_n = n;
    return GMRT_OK;
}

/* Checks 12–15: dtype known and supported, whole blocks, byte size and its
 * padded size representable.  The type id is range-checked by
 * gmrt_dtype_name() before any table is indexed with it; a known but
 * unsupported type gets its own status so that users learn the file is
 * fine but needs requantizing. */
static gmrt_status parse_tensor_type(reader *r, gmrt_gguf_tensor *t,
                                     const char *label, int64_t n,
                                     uint32_t align)
{
    int32_t ty;
    gmrt_status s = read_bytes(r, &ty, 4, "tensor type");
    if (s != GMRT_OK)
        return s;
    const char *tn = gmrt_dtype_name(ty);
    if (!tn)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: unknown tensor "
                         "type %" PRId32, r->path, label, ty);
    if (!gmrt_dtype_supported(ty))
        return gmrt_fail(r->diag, GMRT_ERR_UNSUPPORTED, "%s: %s: unsupported "
                         "tensor type %s", r->path, label, tn);
    t->dtype = ty;
    int64_t blk = gmrt_dtype_block(ty);
    uint64_t bb = gmrt_dtype_block_bytes(ty);
    if (t->ne[0] % blk != 0)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: ne[0] = %" PRId64
                         " is not a multiple of the %s block size %" PRId64,
                         r->path, label, t->ne[0], tn, blk);
    /* n is a multiple of blk because ne[0] is. */
    uint64_t blocks = (uint64_t)(n / blk);
    if (blocks != 0 && bb > UINT64_MAX / blocks)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: byte size of %"
                         PRId64 " %s elements overflows", r->path, label, n, tn);
    t->nbytes = blocks * bb;
    if (t->nbytes > UINT64_MAX - (align - 1) || t->nbytes > SIZE_MAX)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: byte size %" PRIu64
                         " overflows when padded to alignment %" PRIu32,
                         r->path, label, t->nbytes, align);
    return read_u64(r, &t->offset, "tensor offset");
}

/* One tensor-table entry: name, shape, type, offset (checks 9–15). */
static gmrt_status parse_tensor(reader *r, gmrt_gguf *g, int64_t i)
{
    gmrt_status s = parse_tensor_name(r, g, i);
    if (s != GMRT_OK)
        return s;
    gmrt_gguf_tensor *t = &g->tensors[i];
    char label[SHOW_BUF + 32];
    tensor_label(label, sizeof label, i, t->name);
    int64_t n = 0;
    if ((s = parse_tensor_shape(r, t, label, &n)) != GMRT_OK)
        return s;
    return parse_tensor_type(r, t, label, n, g->alignment);
}

/* Checks 16–19 and §2.5: offsets follow each other exactly, the running
 * size never wraps, and every tensor lies inside the file.  Only after this
 * are data pointers formed. */
static gmrt_status gmf_misaligned(reader *r, char *label, size_t len, int64_t i,
                                  const gmrt_gguf_tensor *t, uint64_t begin,
                                  uint64_t need)
{
    return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: %s data at byte %"
                     PRIu64 " is not %" PRIu64 "-byte aligned (general.alignment"
                     " is too small for this tensor type)", r->path,
                     tensor_label(label, len, i, t->name),
                     gmrt_dtype_name(t->dtype), begin, need);
}

static gmrt_status place_tensors(reader *r, gmrt_gguf *g)
{
    char label[SHOW_BUF + 32];
    uint64_t expected = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        gmrt_gguf_tensor *t = &g->tensors[i];
        if (t->offset != expected)
            return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: offset %"
                             PRIu64 " (expected %" PRIu64 ")", r->path,
                             tensor_label(label, sizeof label, i, t->name),
                             t->offset, expected);
        uint64_t padded = align_up(t->nbytes, g->alignment);
        if (padded > UINT64_MAX - expected)
            return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: running data "
                             "size overflows (%" PRIu64 " + %" PRIu64 ")",
                             r->path, tensor_label(label, sizeof label, i,
                                                   t->name), expected, padded);
        expected += padded;
    }
    /* The data section starts at the first aligned byte after the table.
     * r->pos <= file size < 2^63 and alignment < 2^32: no wrap here. */
    g->data_start = align_up(r->pos, g->alignment);
    if (expected > UINT64_MAX - g->data_start)
        return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: data section of %"
                         PRIu64 " bytes starting at byte %" PRIu64
                         " overflows the file offset range", r->path, expected,
                         g->data_start);
    /* Check 18.  With check 19 passed, offset + nbytes <= expected, so
     * begin and end cannot wrap either. */
    for (int64_t i = 0; i < g->n_tensors; i++) {
        gmrt_gguf_tensor *t = &g->tensors[i];
        uint64_t begin = g->data_start + t->offset, end = begin + t->nbytes;
        if (end > g->file_size)
            return gmrt_fail(r->diag, GMRT_ERR_FORMAT, "%s: %s: data [%" PRIu64
                             ", %" PRIu64 ") extends past the end of the file "
                             "(%" PRIu64 " bytes)", r->path,
                             tensor_label(label, sizeof label, i, t->name),
                             begin, end, g->file_size);
        /* Check 18b: with general.alignment 1 or 2 a tensor can start at
         * an address its kernels may not load from (an f32 row at an odd
         * byte).  F32 needs 4, every other type 2 (the f16 block scales). */
        uint64_t need = t->dtype == GMK_DTYPE_F32 ? 4 : 2;
        if (begin % need != 0)
            return gmf_misaligned(r, label, sizeof label, i, t, begin, need);
        t->data = (const unsigned char *)g->map + begin;
    }
    return GMRT_OK;
}

/* ------------------------------------------------------------ open/close */

/* The whole file, in order: header, metadata, alignment, tensor table,
 * layout.  Every table is allocated only after its count passed
 * check_count(); on failure the caller frees whatever was built. */
static gmrt_status parse(reader *r, gmrt_gguf *g)
{
    uint64_t nt, nkv;
    gmrt_status s = parse_header(r, g, &nt, &nkv);
    if (s != GMRT_OK)
        return s;
    if ((s = check_count(r, nkv, GMRT_GGUF_MAX_KV, GGUF_MIN_KV_BYTES,
                         "metadata count")) != GMRT_OK ||
        (s = check_count(r, nt, GMRT_GGUF_MAX_TENSORS, GGUF_MIN_TENSOR_BYTES,
                         "tensor count")) != GMRT_OK)
        return s;
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    if (!g->kv)
        return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory");
    if ((s = index_init(&g->kv_ix, (int64_t)nkv, r->diag)) != GMRT_OK)
        return s;
    for (uint64_t i = 0; i < nkv; i++)
        if ((s = parse_kv(r, g, (int64_t)i)) != GMRT_OK)
            return s;
    if ((s = parse_alignment(r, g)) != GMRT_OK)
        return s;
    /* Re-checked now that the metadata has been consumed (check 3). */
    if ((s = check_count(r, nt, GMRT_GGUF_MAX_TENSORS, GGUF_MIN_TENSOR_BYTES,
                         "tensor count")) != GMRT_OK)
        return s;
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    g->names = malloc((nt ? (size_t)nt : 1) * (GMRT_GGUF_MAX_NAME + 1));
    if (!g->tensors || !g->names)
        return gmrt_fail(r->diag, GMRT_ERR_NOMEM, "gguf: out of memory");
    if ((s = index_init(&g->tensor_ix, (int64_t)nt, r->diag)) != GMRT_OK)
        return s;
    g->n_tensors = (int64_t)nt;
    for (uint64_t i = 0; i < nt; i++)
        if ((s = parse_tensor(r, g, (int64_t)i)) != GMRT_OK)
            return s;
    return place_tensors(r, g);
}

/* Opens, sizes (one fstat) and maps the file (§2.5 checks 44 and 46).
 * The size from that one fstat bounds every later check; a file that
 * shrinks afterwards can still fault on access (SIGBUS), which no reader
 * of a mapping can prevent, but nothing is ever read past the size seen. */
static gmrt_status map_file(const char *path, void **out_map,
                            uint64_t *out_size, gmrt_diag *diag)
{
    int fd;
    gmrt_status s = gmrt_file_open_read(path, 0, &fd, diag); /* never a FIFO */
    if (s != GMRT_OK)
        return s;
    struct stat st;
    if (fstat(fd, &st) != 0)
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot stat %s: %s", path,
                      strerror(errno));
    else if (st.st_size == 0)
        s = gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: file is empty", path);
    else if ((uint64_t)st.st_size > SIZE_MAX || st.st_size < 0)
        s = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: file too large to map", path);
    if (s == GMRT_OK) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            s = gmrt_fail(diag, GMRT_ERR_IO, "cannot map %s: %s", path,
                          strerror(errno));
        else {
            *out_map = m;
            *out_size = (uint64_t)st.st_size;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    return s;
}

gmrt_status gmrt_gguf_open(const char *path, gmrt_gguf **out, gmrt_diag *diag)
{
    if (!out)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_gguf_open: out is NULL");
    *out = NULL;
    if (!path)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_gguf_open: path is NULL");
    gmrt_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "gguf: out of memory");
    gmrt_status s = map_file(path, &g->map, &g->file_size, diag);
    if (s == GMRT_OK) {
        reader r = {g->map, g->file_size, 0, path, diag};
        s = parse(&r, g);
    }
    if (s != GMRT_OK) {
        gmrt_gguf_close(g);
        return s;
    }
    *out = g;
    return GMRT_OK;
}

/* Also frees half-built readers: open() calls it on every failure, so
 * every field must be valid (zero or owned) at all times. */
void gmrt_gguf_close(gmrt_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].mem);
    }
    free(g->kv);
    free(g->tensors);
    free(g->names);
    free(g->kv_ix.slot);
    free(g->tensor_ix.slot);
    if (g->map)
        munmap(g->map, (size_t)g->file_size);
    free(g);
}

/* ------------------------------------------------------------ queries */

uint64_t gmrt_gguf_file_size(const gmrt_gguf *g)
{
    return g ? g->file_size : 0;
}

int64_t gmrt_gguf_n_tensors(const gmrt_gguf *g)
{
    return g ? g->n_tensors : 0;
}

int64_t gmrt_gguf_n_kv(const gmrt_gguf *g)
{
    return g ? g->n_kv : 0;
}

const char *gmrt_gguf_key_at(const gmrt_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

bool gmrt_gguf_kv_raw(const gmrt_gguf *g, int64_t i, gmrt_gguf_type *type, const void **val,
                      size_t *len)
{
    if (i < 0 || i >= g->n_kv)
        return false;
    *type = g->kv[i].type;
    *val = (const unsigned char *)g->map + g->kv[i].val_at;
    *len = (size_t)(g->kv[i].end - g->kv[i].val_at);
    return true;
}

const gmrt_gguf_tensor *gmrt_gguf_tensor_at(const gmrt_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_tensors)
        return NULL;
    return &g->tensors[i];
}

const gmrt_gguf_tensor *gmrt_gguf_find_tensor(const gmrt_gguf *g,
                                              const char *name)
{
    if (!g || !name || !g->tensor_ix.slot)
        return NULL;
    uint32_t e = *index_slot(&g->tensor_ix, g->tensors, sizeof *g->tensors,
                             name);
    return e ? &g->tensors[e - 1] : NULL;
}

bool gmrt_gguf_has_key(const gmrt_gguf *g, const char *key)
{
    return g && key && find_kv(g, key) != NULL;
}

/* Finds key, or fails naming it (GMRT_ERR_FORMAT: a key the caller needs
 * is missing from the file). */
static gmrt_status lookup(const gmrt_gguf *g, const char *key,
                          const void *dst, const gguf_kv **out,
                          gmrt_diag *diag)
{
    /* dst: the caller's output pointer(s), NULL if any is missing. */
    if (!g || !key || !dst)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gguf: NULL file, key or output");
    char buf[SHOW_BUF];
    *out = find_kv(g, key);
    if (!*out)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "key \"%s\" not found",
                         show(buf, sizeof buf, key, strlen(key)));
    return GMRT_OK;
}

/* "key "x": expected type <want>, got <actual>". */
static gmrt_status type_error(const gguf_kv *kv, const char *want,
                              gmrt_diag *diag)
{
    char buf[SHOW_BUF], got[48];
    return gmrt_fail(diag, GMRT_ERR_FORMAT, "key \"%s\": expected type %s, "
                     "got %s", show(buf, sizeof buf, kv->key, strlen(kv->key)),
                     want, kv_type_name(kv, got, sizeof got));
}

/* lookup() plus an exact type check (element type too for arrays). */
static gmrt_status lookup_typed(const gmrt_gguf *g, const char *key,
                                gmrt_gguf_type type, gmrt_gguf_type elem,
                                const void *dst, const gguf_kv **out,
                                gmrt_diag *diag)
{
    gmrt_status s = lookup(g, key, dst, out, diag);
    if (s != GMRT_OK)
        return s;
    if ((*out)->type == type &&
        (type != GMRT_GGUF_ARRAY || (*out)->elem == elem))
        return GMRT_OK;
    char want[48];
    if (type == GMRT_GGUF_ARRAY)
        snprintf(want, sizeof want, "array of %s", type_names[elem]);
    else
        snprintf(want, sizeof want, "%s", type_names[type]);
    return type_error(*out, want, diag);
}

/* Every integer width is accepted because converters disagree: the same
 * key is uint32 in one file and int32 or uint64 in another. */
gmrt_status gmrt_gguf_get_int(const gmrt_gguf *g, const char *key,
                              int64_t *out, gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup(g, key, out, &kv, diag);
    if (s != GMRT_OK)
        return s;
    switch (kv->type) {
    case GMRT_GGUF_INT8: case GMRT_GGUF_INT16: case GMRT_GGUF_INT32:
    case GMRT_GGUF_INT64:
        *out = kv->num.i;
        return GMRT_OK;
    case GMRT_GGUF_UINT8: case GMRT_GGUF_UINT16: case GMRT_GGUF_UINT32:
    case GMRT_GGUF_UINT64:
        if (kv->num.u > (uint64_t)INT64_MAX) {
            char buf[SHOW_BUF];
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "key \"%s\": value %"
                             PRIu64 " does not fit in int64",
                             show(buf, sizeof buf, key, strlen(key)),
                             kv->num.u);
        }
        *out = (int64_t)kv->num.u;
        return GMRT_OK;
    default:
        return type_error(kv, "integer", diag);
    }
}

gmrt_status gmrt_gguf_get_float(const gmrt_gguf *g, const char *key,
                                double *out, gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup(g, key, out, &kv, diag);
    if (s != GMRT_OK)
        return s;
    if (kv->type != GMRT_GGUF_FLOAT32 && kv->type != GMRT_GGUF_FLOAT64)
        return type_error(kv, "float32 or float64", diag);
    *out = kv->num.f;
    return GMRT_OK;
}

gmrt_status gmrt_gguf_get_bool(const gmrt_gguf *g, const char *key, bool *out,
                               gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_BOOL, 0, out, &kv, diag);
    if (s == GMRT_OK)
        *out = kv->num.u != 0;
    return s;
}

gmrt_status gmrt_gguf_get_str(const gmrt_gguf *g, const char *key,
                              const char **out, gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_STRING, 0, out, &kv, diag);
    if (s == GMRT_OK)
        *out = kv->mem;
    return s;
}

gmrt_status gmrt_gguf_get_strs(const gmrt_gguf *g, const char *key,
                               const char *const **out_strs,
                               const uint32_t **out_lens, uint64_t *out_n,
                               gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_ARRAY, GMRT_GGUF_STRING,
                                 out_n ? out_strs : NULL, &kv, diag);
    if (s != GMRT_OK)
        return s;
    *out_strs = kv->strs;
    if (out_lens)
        *out_lens = kv->lens;
    *out_n = kv->n;
    return GMRT_OK;
}

gmrt_status gmrt_gguf_get_f32s(const gmrt_gguf *g, const char *key,
                               const float **out, uint64_t *out_n,
                               gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_ARRAY, GMRT_GGUF_FLOAT32,
                                 out_n ? out : NULL, &kv, diag);
    if (s != GMRT_OK)
        return s;
    *out = kv->mem;
    *out_n = kv->n;
    return GMRT_OK;
}

gmrt_status gmrt_gguf_get_i32s(const gmrt_gguf *g, const char *key,
                               const int32_t **out, uint64_t *out_n,
                               gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_ARRAY, GMRT_GGUF_INT32,
                                 out_n ? out : NULL, &kv, diag);
    if (s != GMRT_OK)
        return s;
    *out = kv->mem;
    *out_n = kv->n;
    return GMRT_OK;
}

gmrt_status gmrt_gguf_get_bools(const gmrt_gguf *g, const char *key,
                                const uint8_t **out, uint64_t *out_n,
                                gmrt_diag *diag)
{
    const gguf_kv *kv;
    gmrt_status s = lookup_typed(g, key, GMRT_GGUF_ARRAY, GMRT_GGUF_BOOL,
                                 out_n ? out : NULL, &kv, diag);
    if (s != GMRT_OK)
        return s;
    *out = kv->mem; /* every element checked to be 0 or 1 at open */
    *out_n = kv->n;
    return GMRT_OK;
}
