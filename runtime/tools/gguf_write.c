/*
 * gguf_write.c — writes GGUF v3 files (metadata, tensor table, tensor data).
 *
 * Metadata is serialized into one byte buffer as each key is set (so the
 * insertion order is the file order), tensors are only described when
 * added, and gmrt_gguf_writer_write streams the file in one pass, asking
 * the caller's fill() for each tensor's bytes.  Everything the reader in
 * gguf.c would reject (empty or duplicate names, long names, bad shapes,
 * unsupported types, sizes that overflow) is refused here first, so a file
 * we write is always one we can read.  Alignment is always 32.
 */
#include "gmrt_tools.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GGUF_WRITE_ALIGN 32u
#define GGUF_WRITE_VERSION 3u

typedef struct wtensor {
    char *name;            /* first member: see entry_name() */
    int32_t dtype;
    int32_t n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    uint64_t offset;       /* in the data section, aligned */
} wtensor;

typedef struct wkey {
    char *key;             /* first member: see entry_name() */
} wkey;

/* Growable open-addressing set of names (entry index + 1 per slot), so that
 * duplicate checks stay O(1) up to the 65,536-tensor cap. */
typedef struct windex {
    uint32_t *slot;
    uint32_t cap;          /* power of two, or 0 before first use */
} windex;

/* kv holds finished bytes; keys[] only remembers the key strings for the
 * duplicate check.  Offsets are assigned as tensors are added, so write()
 * has nothing left to compute but padding. */
struct gmrt_gguf_writer {
    unsigned char *kv;     /* serialized key/value pairs, file order */
    size_t kv_len, kv_cap;
    wkey *keys;
    int64_t n_kv, keys_cap;
    bool has_alignment;    /* caller set general.alignment = 32 itself */
    wtensor *tensors;
    int64_t n_tensors, tensors_cap;
    uint64_t data_size;    /* sum of padded tensor sizes */
    windex key_ix, tensor_ix;
};

/* ------------------------------------------------------------ name sets */

/* FNV-1a over the C string: names are NUL-free by construction here. */
static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Both wkey and wtensor start with their name pointer. */
static const char *entry_name(const void *base, size_t stride, uint32_t k)
{
    const char *name;
    memcpy(&name, (const char *)base + (size_t)k * stride, sizeof name);
    return name;
}

/* Returns the slot holding name, or the empty slot where it belongs;
 * terminates because the table is never more than half full. */
static uint32_t *windex_slot(const windex *ix, const void *base, size_t stride,
                             const char *name)
{
    uint32_t i = hash_name(name) & (ix->cap - 1);
    for (;;) {
        uint32_t e = ix->slot[i];
        if (e == 0 || strcmp(entry_name(base, stride, e - 1), name) == 0)
            return &ix->slot[i];
        i = (i + 1) & (ix->cap - 1);
    }
}

/* Makes room for n entries (load factor <= 1/2), rehashing the n - 1
 * already present. */
static gmrt_status windex_reserve(windex *ix, const void *base, size_t stride,
                                  int64_t n)
{
    if ((int64_t)ix->cap >= 2 * n && ix->cap)
        return GMRT_OK;
    uint32_t cap = ix->cap ? ix->cap * 2 : 64;
    while ((int64_t)cap < 2 * n)
        cap *= 2;
    windex bigger = {calloc(cap, sizeof(uint32_t)), cap};
    if (!bigger.slot)
        return GMRT_ERR_NOMEM;
    for (int64_t k = 0; k < n - 1; k++)
        *windex_slot(&bigger, base, stride,
                     entry_name(base, stride, (uint32_t)k)) = (uint32_t)k + 1;
    free(ix->slot);
    *ix = bigger;
    return GMRT_OK;
}

/* Returns arr grown to hold at least n entries of elem bytes (arr itself
 * if it already does), or NULL when out of memory, leaving arr and *cap
 * as they were.  n is capped (65,536 tensors, 4,096 keys), so the
 * doubling cannot overflow. */
static void *grow(void *arr, int64_t *cap, int64_t n, size_t elem)
{
    if (n <= *cap)
        return arr;
    int64_t c = *cap ? *cap * 2 : 16;
    while (c < n)
        c *= 2;
    void *p = realloc(arr, (size_t)c * elem);
    if (p)
        *cap = c;
    return p;
}

/* ------------------------------------------------------------ create */

/* All fields start empty: the arrays and indices grow on first use. */
gmrt_gguf_writer *gmrt_gguf_writer_create(void)
{
    return calloc(1, sizeof(gmrt_gguf_writer));
}

void gmrt_gguf_writer_destroy(gmrt_gguf_writer *w)
{
    if (!w)
        return;
    for (int64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i].key);
    for (int64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kv);
    free(w->key_ix.slot);
    free(w->tensor_ix.slot);
    free(w);
}

/* ------------------------------------------------------------ metadata */

/* Serialization into the KV buffer; callers reserve the exact size first,
 * so an append never fails half-way. */
static unsigned char *put(unsigned char *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    return put(p, &v, sizeof v); /* little-endian host, as in gguf.c */
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    return put(p, &v, sizeof v);
}

static unsigned char *put_str(unsigned char *p, const char *s, uint64_t len)
{
    return put(put_u64(p, len), s, (size_t)len);
}

/* Validates key, registers it, and returns where its value's `extra`
 * bytes go (after the key and the type word), or NULL with *st set.
 * All fallible steps (sizes, buffer growth, key copy, duplicate check)
 * happen before kv_len moves, so a refused key leaves the writer exactly
 * as it was: a caller may ignore the error and carry on. */
static unsigned char *begin_kv(gmrt_gguf_writer *w, const char *key,
                               gmrt_gguf_type type, uint64_t extra,
                               gmrt_status *st)
{
    *st = GMRT_ERR_ARG;
    if (!w || !key || !*key)
        return NULL;
    size_t klen = strlen(key);
    *st = GMRT_ERR_LIMIT;
    if (klen > GMRT_GGUF_MAX_STRING || w->n_kv + 1 >= GMRT_GGUF_MAX_KV)
        return NULL; /* + 1 leaves room for general.alignment */
    uint64_t need = 8 + (uint64_t)klen + 4;
    if (extra > SIZE_MAX - need || need + extra > SIZE_MAX - w->kv_len)
        return NULL;
    size_t total = w->kv_len + (size_t)(need + extra);
    *st = GMRT_ERR_NOMEM;
    if (total > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < total)
            cap = cap > SIZE_MAX / 2 ? total : cap * 2;
        unsigned char *p = realloc(w->kv, cap);
        if (!p)
            return NULL;
        w->kv = p;
        w->kv_cap = cap;
    }
    wkey *keys = grow(w->keys, &w->keys_cap, w->n_kv + 1, sizeof *keys);
    if (!keys)
        return NULL;
    w->keys = keys;
    if (windex_reserve(&w->key_ix, w->keys, sizeof *w->keys, w->n_kv + 1))
        return NULL;
    char *copy = malloc(klen + 1);
    if (!copy)
        return NULL;
    memcpy(copy, key, klen + 1);
    w->keys[w->n_kv].key = copy;
    uint32_t *slot = windex_slot(&w->key_ix, w->keys, sizeof *w->keys, copy);
    if (*slot) {
        free(copy);
        *st = GMRT_ERR_ARG; /* duplicate key */
        return NULL;
    }
    *slot = (uint32_t)w->n_kv + 1;
    w->n_kv++;
    unsigned char *p = w->kv + w->kv_len;
    w->kv_len = total;
    *st = GMRT_OK;
    return put_u32(put_str(p, key, klen), (uint32_t)type);
}

/* Any fixed-size value: n raw little-endian bytes after the type word. */
static gmrt_status set_scalar(gmrt_gguf_writer *w, const char *key,
                              gmrt_gguf_type type, const void *v, size_t n)
{
    gmrt_status st;
    unsigned char *p = begin_kv(w, key, type, n, &st);
    if (p)
        put(p, v, n);
    return st;
}

gmrt_status gmrt_gguf_writer_set_u32(gmrt_gguf_writer *w, const char *key,
                                     uint32_t v)
{
    /* The writer aligns to 32 and says so; a caller copying metadata from
     * another file may pass that same value through, nothing else. */
    if (key && strcmp(key, "general.alignment") == 0) {
        if (!w || v != GGUF_WRITE_ALIGN)
            return GMRT_ERR_ARG;
        gmrt_status s = set_scalar(w, key, GMRT_GGUF_UINT32, &v, sizeof v);
        if (s == GMRT_OK)
            w->has_alignment = true;
        return s;
    }
    return set_scalar(w, key, GMRT_GGUF_UINT32, &v, sizeof v);
}

gmrt_status gmrt_gguf_writer_set_i32(gmrt_gguf_writer *w, const char *key,
                                     int32_t v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return GMRT_ERR_ARG; /* the reader requires uint32 */
    return set_scalar(w, key, GMRT_GGUF_INT32, &v, sizeof v);
}

gmrt_status gmrt_gguf_writer_set_f32(gmrt_gguf_writer *w, const char *key,
                                     float v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return GMRT_ERR_ARG;
    return set_scalar(w, key, GMRT_GGUF_FLOAT32, &v, sizeof v);
}

gmrt_status gmrt_gguf_writer_set_bool(gmrt_gguf_writer *w, const char *key,
                                      bool v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return GMRT_ERR_ARG;
    unsigned char b = v ? 1 : 0;
    return set_scalar(w, key, GMRT_GGUF_BOOL, &b, 1);
}

gmrt_status gmrt_gguf_writer_set_str(gmrt_gguf_writer *w, const char *key,
                                     const char *v)
{
    if (!v || (key && strcmp(key, "general.alignment") == 0))
        return GMRT_ERR_ARG;
    size_t len = strlen(v);
    if (len > GMRT_GGUF_MAX_STRING)
        return GMRT_ERR_LIMIT;
    gmrt_status st;
    unsigned char *p = begin_kv(w, key, GMRT_GGUF_STRING, 8 + (uint64_t)len,
                                &st);
    if (p)
        put_str(p, v, len);
    return st;
}

gmrt_status gmrt_gguf_writer_set_raw(gmrt_gguf_writer *w, const char *key,
                                     gmrt_gguf_type type, const void *val, size_t len)
{
    if ((len && !val) || (key && strcmp(key, "general.alignment") == 0))
        return GMRT_ERR_ARG;
    gmrt_status st;
    unsigned char *p = begin_kv(w, key, type, len, &st);
    if (p && len)
        put(p, val, len);
    return st;
}

/* Numeric arrays: element type, count, raw little-endian elements. */
static gmrt_status set_array(gmrt_gguf_writer *w, const char *key,
                             gmrt_gguf_type elem, const void *v, uint64_t n,
                             size_t esize)
{
    if ((n && !v) || (key && strcmp(key, "general.alignment") == 0))
        return GMRT_ERR_ARG;
    if (n > GMRT_GGUF_MAX_ARRAY)
        return GMRT_ERR_LIMIT;
    gmrt_status st;
    unsigned char *p = begin_kv(w, key, GMRT_GGUF_ARRAY, 12 + n * esize, &st);
    if (p) {
        p = put_u64(put_u32(p, (uint32_t)elem), n);
        if (n)
            put(p, v, (size_t)n * esize);
    }
    return st;
}

gmrt_status gmrt_gguf_writer_set_f32s(gmrt_gguf_writer *w, const char *key,
                                      const float *v, uint64_t n)
{
    return set_array(w, key, GMRT_GGUF_FLOAT32, v, n, sizeof *v);
}

gmrt_status gmrt_gguf_writer_set_i32s(gmrt_gguf_writer *w, const char *key,
                                      const int32_t *v, uint64_t n)
{
    return set_array(w, key, GMRT_GGUF_INT32, v, n, sizeof *v);
}

gmrt_status gmrt_gguf_writer_set_bools(gmrt_gguf_writer *w, const char *key,
                                       const bool *v, uint64_t n)
{
    _Static_assert(sizeof(bool) == 1, "GGUF booleans are one byte");
    return set_array(w, key, GMRT_GGUF_BOOL, v, n, sizeof *v);
}

gmrt_status gmrt_gguf_writer_set_strs(gmrt_gguf_writer *w, const char *key,
                                      const char *const *v,
                                      const uint32_t *lens, uint64_t n)
{
    if ((n && !v) || (key && strcmp(key, "general.alignment") == 0))
        return GMRT_ERR_ARG;
    if (n > GMRT_GGUF_MAX_ARRAY)
        return GMRT_ERR_LIMIT;
    /* Size everything first (a NULL or over-long string must refuse the
     * whole key before any byte is written): n <= 2^24 strings of <= 1 MiB
     * each cannot overflow uint64. */
    uint64_t extra = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i])
            return GMRT_ERR_ARG;
        size_t len = lens ? lens[i] : strlen(v[i]);
        if (len > GMRT_GGUF_MAX_STRING)
            return GMRT_ERR_LIMIT;
        extra += 8 + (uint64_t)len;
    }
    gmrt_status st;
    unsigned char *p = begin_kv(w, key, GMRT_GGUF_ARRAY, extra, &st);
    if (!p)
        return st;
    p = put_u64(put_u32(p, GMRT_GGUF_STRING), n);
    for (uint64_t i = 0; i < n; i++)
        p = put_str(p, v[i], lens ? lens[i] : strlen(v[i]));
    return GMRT_OK;
}

/* ------------------------------------------------------------ tensors */

/* Byte size of a shape in dtype: whole blocks along ne[0], no overflow,
 * and room to pad to the alignment.  These are the reader's checks 11–15,
 * applied before the file exists rather than after. */
static gmrt_status tensor_bytes(int32_t dtype, int32_t n_dims, const int64_t *ne,
                                uint64_t *out)
{
    int64_t rows = 1;
    for (int32_t d = 1; d < n_dims; d++) {
        if (ne[d] < 0)
            return GMRT_ERR_ARG;
        if (ne[d] != 0 && rows > INT64_MAX / ne[d])
            return GMRT_ERR_LIMIT;
        rows *= ne[d];
    }
    if (ne[0] < 0)
        return GMRT_ERR_ARG;
    if (ne[0] != 0 && rows > INT64_MAX / ne[0])
        return GMRT_ERR_LIMIT; /* element count must fit in int64 */
    size_t row;
    gmrt_status s = gmrt_dtype_row_bytes(dtype, ne[0], &row, NULL);
    if (s != GMRT_OK)
        return s;
    if (rows != 0 && row > (UINT64_MAX - GGUF_WRITE_ALIGN) / (uint64_t)rows)
        return GMRT_ERR_LIMIT;
    *out = (uint64_t)row * (uint64_t)rows;
    return *out > SIZE_MAX ? GMRT_ERR_LIMIT : GMRT_OK;
}

/* Statuses: ARG for a bad name, shape, duplicate or unknown type;
 * UNSUPPORTED for a known type the runtime cannot dequantize; LIMIT for
 * caps and sizes that overflow; NOMEM. */
gmrt_status gmrt_gguf_writer_add_tensor(gmrt_gguf_writer *w, const char *name,
                                        int32_t dtype, int32_t n_dims,
                                        const int64_t *ne)
{
    if (!w || !name || !*name || !ne || n_dims < 1 || n_dims > 4)
        return GMRT_ERR_ARG;
    size_t len = strlen(name);
    if (len > GMRT_GGUF_MAX_NAME)
        return GMRT_ERR_ARG;
    if (!gmrt_dtype_supported(dtype))
        return gmrt_dtype_name(dtype) ? GMRT_ERR_UNSUPPORTED : GMRT_ERR_ARG;
    if (w->n_tensors >= GMRT_GGUF_MAX_TENSORS)
        return GMRT_ERR_LIMIT;
    uint64_t nbytes;
    gmrt_status s = tensor_bytes(dtype, n_dims, ne, &nbytes);
    if (s != GMRT_OK)
        return s;
    uint64_t padded = (nbytes + GGUF_WRITE_ALIGN - 1) / GGUF_WRITE_ALIGN *
                      GGUF_WRITE_ALIGN;
    if (padded > UINT64_MAX - w->data_size)
        return GMRT_ERR_LIMIT;
    wtensor *ts = grow(w->tensors, &w->tensors_cap, w->n_tensors + 1,
                       sizeof *ts);
    if (!ts)
        return GMRT_ERR_NOMEM;
    w->tensors = ts;
    if (windex_reserve(&w->tensor_ix, w->tensors, sizeof *w->tensors,
                       w->n_tensors + 1))
        return GMRT_ERR_NOMEM;
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = malloc(len + 1)))
        return GMRT_ERR_NOMEM;
    memcpy(t->name, name, len + 1);
    uint32_t *slot = windex_slot(&w->tensor_ix, w->tensors, sizeof *w->tensors,
                                 t->name);
    if (*slot) {
        free(t->name);
        return GMRT_ERR_ARG; /* duplicate tensor name */
    }
    *slot = (uint32_t)w->n_tensors + 1;
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    t->offset = w->data_size;
    w->data_size += padded;
    w->n_tensors++;
    return GMRT_OK;
}

/* ------------------------------------------------------------ write */

/* Output with a position and a sticky error, so that the steps of write()
 * can be chained and checked once. */
typedef struct out {
    FILE *f;
    uint64_t pos;
    int err;               /* errno of the first failed write, or 0 */
} out;

/* Writes n bytes unless an earlier write failed; pos advances anyway so
 * that padding stays computable, and the error surfaces at the end. */
static void emit(out *o, const void *p, size_t n)
{
    if (o->err || n == 0)
        return;
    if (fwrite(p, 1, n, o->f) != n)
        o->err = errno ? errno : EIO;
    o->pos += n;
}

static void emit_u32(out *o, uint32_t v) { emit(o, &v, sizeof v); }
static void emit_u64(out *o, uint64_t v) { emit(o, &v, sizeof v); }

/* Zeros up to the next multiple of the alignment. */
static void emit_pad(out *o)
{
    static const unsigned char zeros[GGUF_WRITE_ALIGN];
    emit(o, zeros, (GGUF_WRITE_ALIGN - o->pos % GGUF_WRITE_ALIGN) %
                   GGUF_WRITE_ALIGN);
}

/* Header, metadata (plus general.alignment unless the caller set it) and
 * the tensor table, padded to the start of the data section. */
static void emit_head(out *o, const gmrt_gguf_writer *w)
{
    emit(o, "GGUF", 4);
    emit_u32(o, GGUF_WRITE_VERSION);
    emit_u64(o, (uint64_t)w->n_tensors);
    emit_u64(o, (uint64_t)w->n_kv + (w->has_alignment ? 0 : 1));
    emit(o, w->kv, w->kv_len);
    if (!w->has_alignment) {
        static const char key[] = "general.alignment";
        emit_u64(o, sizeof key - 1);
        emit(o, key, sizeof key - 1);
        emit_u32(o, GMRT_GGUF_UINT32);
        emit_u32(o, GGUF_WRITE_ALIGN);
    }
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        emit_u64(o, strlen(t->name));
        emit(o, t->name, strlen(t->name));
        emit_u32(o, (uint32_t)t->n_dims);
        for (int32_t d = 0; d < t->n_dims; d++)
            emit_u64(o, (uint64_t)t->ne[d]);
        emit_u32(o, (uint32_t)t->dtype);
        emit_u64(o, t->offset);
    }
    emit_pad(o);
}

/* Asks fill() for each tensor in turn and writes it, padded.  One buffer
 * of the largest tensor's size is reused, zeroed before each call, so that
 * a fill that writes nothing yields zeros and memory stays at one tensor. */
static gmrt_status emit_data(out *o, const gmrt_gguf_writer *w,
                             gmrt_gguf_fill_fn *fill, void *user,
                             const char *tmp, gmrt_diag *diag)
{
    uint64_t max = 1;
    for (int64_t i = 0; i < w->n_tensors; i++)
        max = w->tensors[i].nbytes > max ? w->tensors[i].nbytes : max;
    unsigned char *buf = malloc((size_t)max);
    if (!buf)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "gguf writer: out of memory "
                         "(%" PRIu64 " bytes for one tensor)", max);
    gmrt_status s = GMRT_OK;
    for (int64_t i = 0; i < w->n_tensors && s == GMRT_OK && !o->err; i++) {
        const wtensor *t = &w->tensors[i];
        memset(buf, 0, (size_t)t->nbytes);
        if (fill) {
            /* Blank the message so we can tell whether fill() wrote one. */
            if (diag)
                diag->msg[0] = '\0';
            s = fill(user, i, t->name, buf, (size_t)t->nbytes, diag);
            if (s != GMRT_OK && diag && !diag->msg[0])
                gmrt_fail(diag, s, "gguf writer: filling tensor \"%s\" failed",
                          t->name);
        }
        emit(o, buf, (size_t)t->nbytes);
        emit_pad(o);
    }
    free(buf);
    if (s == GMRT_OK && o->err)
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", tmp,
                      strerror(o->err));
    return s;
}

/* Flushes, syncs and closes; the file is complete only if all succeed. */
static gmrt_status finish(out *o, const char *tmp, gmrt_diag *diag)
{
    int err = o->err;
    if (!err && fflush(o->f) != 0)
        err = errno;
    /* Synced before the rename so that a crash cannot leave a complete
     * name pointing at incomplete data. */
    if (!err && fsync(fileno(o->f)) != 0)
        err = errno;
    if (fclose(o->f) != 0 && !err)
        err = errno;
    o->f = NULL;
    if (err)
        return gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", tmp,
                         strerror(err));
    return GMRT_OK;
}

/* The file goes to a new "<path>.tmp.<random>" (gmrt_file_replace, which
 * also refuses a path that is not a regular file) and is renamed over path
 * only when every byte is written and synced; a failure at any step
 * removes the temporary file and leaves whatever was at path untouched. */
gmrt_status gmrt_gguf_writer_write(gmrt_gguf_writer *w, const char *path,
                                   gmrt_gguf_fill_fn *fill, void *user,
                                   gmrt_diag *diag)
{
    if (!w || !path || !*path)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gguf writer: NULL writer or "
                         "empty path");
    gmrt_file_replace r;
    gmrt_status s = gmrt_file_replace_begin(&r, path, diag);
    if (s != GMRT_OK)
        return s;
    out o = {fdopen(r.fd, "wb"), 0, 0};
    if (!o.f) {
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", r.tmp,
                      strerror(errno));
        gmrt_file_replace_abort(&r);
        return s;
    }
    r.fd = -1; /* o.f owns it now */
    emit_head(&o, w);
    s = emit_data(&o, w, fill, user, r.tmp, diag);
    if (s != GMRT_OK)
        fclose(o.f);
    else
        s = finish(&o, r.tmp, diag);
    if (s != GMRT_OK) {
        gmrt_file_replace_abort(&r); /* never leave a partial file behind */
        return s;
    }
    return gmrt_file_replace_commit(&r, diag);
}
