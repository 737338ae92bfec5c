/*
 * safetensors.c — a validating, memory-mapped reader of Hugging Face
 * safetensors checkpoints: one model.safetensors, or the shards named by a
 * model.safetensors.index.json.
 *
 * A file is an 8-byte little-endian header length n, n bytes of JSON
 * ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}), then the
 * tensor bytes.  Every check of docs/input-checks.md §2.2 (21–28) and §2.5 runs
 * before any pointer into the data is formed: header size, strict JSON
 * (json.c), known dtype, offsets, contiguity from 0 with no holes or
 * overlaps, checked shape products equal to the byte ranges, and the last
 * tensor ending exactly at the end of the file.  Shard names from an index
 * are plain file names in the index's directory (never a path, C17).
 */
#include "gmrt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_NAME_MAX 1024          /* bytes of a tensor name */
#define ST_SHARD_NAME_MAX 255     /* bytes of a shard file name */
#define ST_INDEX_MAX (64u << 20)  /* bytes of model.safetensors.index.json */

typedef struct shard {
    char *path;
    void *map;
    uint64_t size;
    gmrt_json *header;
} shard;

struct gmrt_safetensors {
    char *dir;                /* directory of the files, for config.json */
    shard *shards;
    int32_t n_shards;
    gmrt_st_tensor *tensors;  /* sorted by name */
    int64_t n_tensors;
};

/* dtype names safetensors defines, with their sizes in bits; only the
 * first three are read, the rest are known so that the error can say
 * "unsupported" instead of "unknown" (check 23). */
static const struct { const char *name; int32_t gmk; unsigned bits; } st_dtypes[] = {
    {"F32", GMK_DTYPE_F32, 32}, {"F16", GMK_DTYPE_F16, 16}, {"BF16", GMK_DTYPE_BF16, 16},
    {"BOOL", -1, 8}, {"U8", -1, 8}, {"I8", -1, 8}, {"F8_E5M2", -1, 8},
    {"F8_E4M3", -1, 8}, {"F8_E8M0", -1, 8}, {"F4", -1, 4}, {"F6_E2M3", -1, 6},
    {"F6_E3M2", -1, 6}, {"I16", -1, 16}, {"U16", -1, 16}, {"I32", -1, 32},
    {"U32", -1, 32}, {"C64", -1, 64}, {"F64", -1, 64}, {"I64", -1, 64},
    {"U64", -1, 64},
};

/* Names from files are echoed at most this long. */
#define SHOW(s) (int)(strlen(s) < 120 ? strlen(s) : 120), (s)

/* --------------------------------------------------------- one file */

/* Symbolic links are followed: the Hugging Face hub cache stores every file
 * of a snapshot as a link into its blob store (snapshots/<rev>/x ->
 * ../../blobs/<sha>), and the user named the path.  What the link reaches
 * must still be a regular file (a FIFO would block, a device never ends),
 * and the size checks below apply to it. */
static gmrt_status map_shard(const char *path, shard *sh, gmrt_diag *diag)
{
    struct stat stt;
    if (stat(path, &stt) != 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int fd;
    gmrt_status s = gmrt_file_open_read(path, 0, &fd, diag); /* never a FIFO */
    if (s != GMRT_OK)
        return s;
    if (fstat(fd, &stt) != 0) {
        close(fd);
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    sh->size = (uint64_t)stt.st_size;
    if (sh->size < 8) {
        close(fd);
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: %" PRIu64 " bytes is too short "
                         "for a safetensors file (the header length alone is 8)",
                         path, sh->size);
    }
    if (sh->size > SIZE_MAX) {
        close(fd);
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: too large to map", path);
    }
    sh->map = mmap(NULL, (size_t)sh->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (sh->map == MAP_FAILED) {
        sh->map = NULL;
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    return GMRT_OK;
}

/* Check 28: a flat string -> string map with a size cap. */
static gmrt_status check_metadata(const char *path, const gmrt_json_value *v,
                                  gmrt_diag *diag)
{
    if (v->kind != GMRT_JSON_OBJECT)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: __metadata__ must be an object of "
                         "strings, got %s", path, gmrt_json_kind_name(v->kind));
    size_t total = 0;
    for (size_t i = 0; i < v->u.c.n; i++) {
        const gmrt_json_member *m = &v->u.c.members[i];
        if (m->value->kind != GMRT_JSON_STRING)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: __metadata__ entry \"%.*s\" "
                             "must be a string, got %s", path, SHOW(m->key),
                             gmrt_json_kind_name(m->value->kind));
        total += m->key_len + m->value->u.s.len;
    }
    if (total > GMRT_ST_MAX_METADATA)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: __metadata__ holds %zu bytes, above "
                         "the cap of %u", path, total, GMRT_ST_MAX_METADATA);
    return GMRT_OK;
}

/* Check 23: the dtype must be one safetensors defines, and one we read. */
static gmrt_status parse_dtype(const char *path, const char *name,
                               const gmrt_json_value *v, int32_t *out, unsigned *bits,
                               gmrt_diag *diag)
{
    if (!v || v->kind != GMRT_JSON_STRING)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": \"dtype\" must be "
                         "a string", path, SHOW(name));
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (strcmp(v->u.s.p, st_dtypes[i].name) != 0)
            continue;
        if (st_dtypes[i].gmk < 0)
            return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED, "%s: unsupported dtype %s for "
                             "tensor \"%.*s\" (gemmac reads F32, F16 and BF16)", path,
                             st_dtypes[i].name, SHOW(name));
        *out = st_dtypes[i].gmk;
        *bits = st_dtypes[i].bits;
        return GMRT_OK;
    }
    return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" has unknown dtype "
                     "\"%.*s\"", path, SHOW(name), SHOW(v->u.s.p));
}

/* Checks 24 and 26: shape of non-negative integers whose product times the
 * element size (both checked) equals end - begin. */
static gmrt_status parse_extent(const char *path, gmrt_st_tensor *t, unsigned bits,
                                const gmrt_json_value *shape, const gmrt_json_value *offs,
                                uint64_t *begin, uint64_t *end, gmrt_diag *diag)
{
    if (!shape || shape->kind != GMRT_JSON_ARRAY)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": \"shape\" must be "
                         "an array of integers", path, SHOW(t->name));
    if (shape->u.c.n > GMRT_ST_MAX_DIMS)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: tensor \"%.*s\" has %zu dimensions "
                         "(at most %d)", path, SHOW(t->name), shape->u.c.n, GMRT_ST_MAX_DIMS);
    uint64_t count = 1;
    t->n_dims = (int32_t)shape->u.c.n;
    for (size_t i = 0; i < shape->u.c.n; i++) {
        const gmrt_json_value *d = &shape->u.c.items[i];
        if (d->kind != GMRT_JSON_INT || d->u.i < 0)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": shape[%zu] must "
                             "be a non-negative integer", path, SHOW(t->name), i);
        t->shape[i] = d->u.i;
        if (d->u.i != 0 && count > UINT64_MAX / (uint64_t)d->u.i)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": element count "
                             "overflows", path, SHOW(t->name));
        count *= (uint64_t)d->u.i;
    }
    if (count > UINT64_MAX / bits)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": byte size "
                         "overflows", path, SHOW(t->name));
    t->nbytes = count * bits / 8;
    if (!offs || offs->kind != GMRT_JSON_ARRAY || offs->u.c.n != 2 ||
        offs->u.c.items[0].kind != GMRT_JSON_INT || offs->u.c.items[1].kind != GMRT_JSON_INT ||
        offs->u.c.items[0].u.i < 0 || offs->u.c.items[1].u.i < offs->u.c.items[0].u.i)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": \"data_offsets\" "
                         "must be two integers 0 <= begin <= end", path, SHOW(t->name));
    *begin = (uint64_t)offs->u.c.items[0].u.i;
    *end = (uint64_t)offs->u.c.items[1].u.i;
    if (*end - *begin != t->nbytes)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\": data_offsets span "
                         "%" PRIu64 " bytes but its shape and dtype need %" PRIu64, path,
                         SHOW(t->name), *end - *begin, t->nbytes);
    return GMRT_OK;
}

static gmrt_status parse_entry(const char *path, const gmrt_json_member *m,
                               gmrt_st_tensor *t, uint64_t *begin, uint64_t *end,
                               gmrt_diag *diag)
{
    memset(t, 0, sizeof *t);
    t->name = m->key;
    if (m->key_len == 0 || m->key_len > ST_NAME_MAX || strlen(m->key) != m->key_len)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: a tensor name is empty, longer than "
                         "%d bytes or contains NUL", path, ST_NAME_MAX);
    const gmrt_json_value *v = m->value;
    if (v->kind != GMRT_JSON_OBJECT)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" must be an object, "
                         "got %s", path, SHOW(t->name), gmrt_json_kind_name(v->kind));
    for (size_t i = 0; i < v->u.c.n; i++) {
        const char *k = v->u.c.members[i].key;
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" has unknown key "
                             "\"%.*s\" (allowed: dtype, shape, data_offsets)", path,
                             SHOW(t->name), SHOW(k));
    }
    unsigned bits;
    gmrt_status st = parse_dtype(path, t->name, gmrt_json_get(v, "dtype"), &t->dtype,
                                 &bits, diag);
    if (st != GMRT_OK)
        return st;
    return parse_extent(path, t, bits, gmrt_json_get(v, "shape"),
                        gmrt_json_get(v, "data_offsets"), begin, end, diag);
}

typedef struct extent {
    uint64_t begin, end;
    int64_t index;
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Checks 25 and 27: sorted by offset, each begins where the previous ended
 * (from 0), and the last ends exactly at the end of the file. */
static gmrt_status check_layout(const char *path, const shard *sh, uint64_t n_header,
                                gmrt_st_tensor *ts, extent *ex, int64_t n, gmrt_diag *diag)
{
    qsort(ex, (size_t)n, sizeof *ex, extent_cmp);
    uint64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ex[i].begin != at)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" begins at data "
                             "offset %" PRIu64 " but the previous tensor ends at %" PRIu64
                             " (%s)", path, SHOW(ts[ex[i].index].name), ex[i].begin, at,
                             ex[i].begin < at ? "overlap" : "hole");
        at = ex[i].end;
    }
    uint64_t data_start = 8 + n_header;
    if (at > sh->size - data_start || data_start + at != sh->size)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: the tensors end at byte %" PRIu64
                         " (8 + header %" PRIu64 " + data %" PRIu64 ") but the file has %"
                         PRIu64 " bytes", path, at <= UINT64_MAX - data_start ?
                         data_start + at : UINT64_MAX, n_header, at, sh->size);
    const unsigned char *base = (const unsigned char *)sh->map + data_start;
    for (int64_t i = 0; i < n; i++)
        ts[ex[i].index].data = base + ex[i].begin;
    return GMRT_OK;
}

/* Reads one file's header into tensors appended at *ts (grown as needed). */
static gmrt_status parse_shard(shard *sh, int32_t index, gmrt_st_tensor **ts,
                               int64_t *n_ts, gmrt_diag *diag)
{
    const char *path = sh->path;
    gmrt_status st = map_shard(path, sh, diag);
    if (st != GMRT_OK)
        return st;
    uint64_t n;
    memcpy(&n, sh->map, 8);
    if (n > GMRT_ST_MAX_HEADER || n > sh->size - 8)
        return gmrt_fail(diag, n > GMRT_ST_MAX_HEADER ? GMRT_ERR_LIMIT : GMRT_ERR_FORMAT,
                         "%s: header length %" PRIu64 " is %s", path, n,
                         n > GMRT_ST_MAX_HEADER ? "above the cap of 100000000 bytes"
                                                : "past the end of the file");
    gmrt_json_limits lim;
    gmrt_json_limits_default(&lim);
    lim.max_members = GMRT_ST_MAX_TENSORS + 1;
    lim.max_values = 16u * (GMRT_ST_MAX_TENSORS + 1) + GMRT_ST_MAX_METADATA / 4;
    if ((st = gmrt_json_parse((const char *)sh->map + 8, (size_t)n, path, &lim,
                              &sh->header, diag)) != GMRT_OK)
        return st;
    const gmrt_json_value *root = gmrt_json_root(sh->header);
    if (root->kind != GMRT_JSON_OBJECT)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: the header must be a JSON object, "
                         "got %s", path, gmrt_json_kind_name(root->kind));
    size_t cap = root->u.c.n;
    gmrt_st_tensor *grown = realloc(*ts, ((size_t)*n_ts + cap + 1) * sizeof **ts);
    extent *ex = malloc((cap + 1) * sizeof *ex);
    if (grown)
        *ts = grown;
    if (!grown || !ex) {
        free(ex);
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "%s: out of memory", path);
    }
    gmrt_st_tensor *mine = *ts + *n_ts;
    int64_t k = 0;
    for (size_t i = 0; i < root->u.c.n && st == GMRT_OK; i++) {
        const gmrt_json_member *m = &root->u.c.members[i];
        if (strcmp(m->key, "__metadata__") == 0) {
            st = check_metadata(path, m->value, diag);
            continue;
        }
        st = parse_entry(path, m, &mine[k], &ex[k].begin, &ex[k].end, diag);
        mine[k].shard = index;
        ex[k].index = k;
        k++;
    }
    if (st == GMRT_OK)
        st = check_layout(path, sh, n, mine, ex, k, diag);
    free(ex);
    if (st == GMRT_OK)
        *n_ts += k;
    return st;
}

/* --------------------------------------------------------- the index */

/* A shard name is a plain file name: no directory part, no "." or "..". */
static bool plain_name(const char *s, size_t len)
{
    return len > 0 && len <= ST_SHARD_NAME_MAX && strlen(s) == len && !strchr(s, '/') &&
           strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads the index into *doc and returns its weight_map. */
static gmrt_status read_index(const char *path, gmrt_json **doc,
                              const gmrt_json_value **out_map, gmrt_diag *diag)
{
    shard tmp = {0};
    gmrt_status st = map_shard(path, &tmp, diag);
    if (st == GMRT_OK && tmp.size > ST_INDEX_MAX)
        st = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: %" PRIu64 " bytes is above the cap of "
                       "%u for an index", path, tmp.size, ST_INDEX_MAX);
    if (st == GMRT_OK)
        st = gmrt_json_parse(tmp.map, (size_t)tmp.size, path, NULL, doc, diag);
    if (tmp.map)
        munmap(tmp.map, (size_t)tmp.size);
    if (st != GMRT_OK)
        return st;
    const gmrt_json_value *root = gmrt_json_root(*doc);
    if (root->kind != GMRT_JSON_OBJECT)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: must be a JSON object", path);
    for (size_t i = 0; i < root->u.c.n; i++) {
        const char *k = root->u.c.members[i].key;
        if (strcmp(k, "metadata") && strcmp(k, "weight_map"))
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: unknown key \"%.*s\" (allowed: "
                             "metadata, weight_map)", path, SHOW(k));
    }
    const gmrt_json_value *map = gmrt_json_get(root, "weight_map");
    if (!map || map->kind != GMRT_JSON_OBJECT)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: \"weight_map\" must be an object of "
                         "tensor name -> shard file name", path);
    for (size_t i = 0; i < map->u.c.n; i++) {
        const gmrt_json_member *m = &map->u.c.members[i];
        if (m->value->kind != GMRT_JSON_STRING ||
            !plain_name(m->value->u.s.p, m->value->u.s.len))
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: weight_map[\"%.*s\"] must be a "
                             "plain file name in the index's directory", path, SHOW(m->key));
    }
    *out_map = map;
    return GMRT_OK;
}

static const gmrt_st_tensor *find_in(const gmrt_st_tensor *ts, int64_t n, const char *name)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ts[mid].name, name);
        if (c == 0)
            return &ts[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int tensor_cmp(const void *a, const void *b)
{
    return strcmp(((const gmrt_st_tensor *)a)->name, ((const gmrt_st_tensor *)b)->name);
}

/* Every tensor of every shard must be in the weight map under its own
 * shard, and every map entry must exist (so, with the names sorted, the two
 * sets are equal). */
static gmrt_status check_index(const char *path, gmrt_safetensors *st,
                               const gmrt_json_value *map, gmrt_diag *diag)
{
    for (int64_t i = 0; i < st->n_tensors; i++) {
        const gmrt_st_tensor *t = &st->tensors[i];
        if (i > 0 && strcmp(st->tensors[i - 1].name, t->name) == 0)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" is in two shards "
                             "(%s and %s)", path, SHOW(t->name),
                             st->shards[st->tensors[i - 1].shard].path, st->shards[t->shard].path);
        const gmrt_json_value *want = gmrt_json_get(map, t->name);
        const char *file = strrchr(st->shards[t->shard].path, '/') + 1;
        if (!want)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: tensor \"%.*s\" of shard %s is not "
                             "in the weight_map", path, SHOW(t->name), file);
        if (strcmp(want->u.s.p, file) != 0)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: weight_map puts \"%.*s\" in %s but "
                             "it is in %s", path, SHOW(t->name), want->u.s.p, file);
    }
    for (size_t i = 0; i < map->u.c.n; i++) {
        const gmrt_json_member *m = &map->u.c.members[i];
        if (!find_in(st->tensors, st->n_tensors, m->key))
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: weight_map names \"%.*s\" in %s, "
                             "which does not have it", path, SHOW(m->key), m->value->u.s.p);
    }
    return GMRT_OK;
}

/* Opens each distinct shard named by the map once, in name order. */
static gmrt_status open_shards(gmrt_safetensors *st, const gmrt_json_value *map,
                               gmrt_diag *diag)
{
    size_t n = map->u.c.n;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = map->u.c.members[i].value->u.s.p;
    qsort(names, n, sizeof *names, str_ptr_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            names[distinct++] = names[i];
    gmrt_status s = GMRT_OK;
    if (distinct > GMRT_ST_MAX_SHARDS)
        s = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: %zu shards (at most %d)", st->dir,
                      distinct, GMRT_ST_MAX_SHARDS);
    if (s == GMRT_OK && !(st->shards = calloc(distinct ? distinct : 1, sizeof *st->shards)))
        s = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == GMRT_OK && i < distinct; i++) {
        st->shards[i].path = path_join(st->dir, names[i]);
        st->n_shards++;
        s = st->shards[i].path ? parse_shard(&st->shards[i], (int32_t)i, &st->tensors,
                                             &st->n_tensors, diag)
                               : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    }
    free(names);
    return s;
}

/* ---------------------------------------------------------------- API */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Whether a directory entry exists (a link counts, even a dangling one);
 * map_shard refuses it later, naming it, if it does not reach a regular file
 * (a FIFO or a directory). */
static bool is_file(const char *path)
{
    struct stat stt;
    return lstat(path, &stt) == 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* Decides what path names: a directory (its index, else its
 * model.safetensors), an index (.json) or a single file.  *file gets the
 * path to open (malloc'd), *index whether it is an index. */
static gmrt_status resolve(const char *path, char **dir, char **file, bool *index,
                           gmrt_diag *diag)
{
    struct stat stt;
    if (stat(path, &stt) != 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(stt.st_mode)) {
        *dir = strdup(path);
        *file = *dir ? path_join(*dir, "model.safetensors.index.json") : NULL;
        if (*file && !is_file(*file)) {
            free(*file);
            *file = path_join(*dir, "model.safetensors");
            if (*file && !is_file(*file))
                return gmrt_fail(diag, GMRT_ERR_IO, "%s: holds neither "
                                 "model.safetensors.index.json nor model.safetensors",
                                 path);
        }
    } else {
        *dir = dir_of(path);
        *file = strdup(path);
    }
    if (!*dir || !*file)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    *index = ends_with(*file, ".json");
    return GMRT_OK;
}

gmrt_status gmrt_safetensors_open(const char *path, gmrt_safetensors **out,
                                  gmrt_diag *diag)
{
    *out = NULL;
    gmrt_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    char *file = NULL;
    bool index = false;
    gmrt_json *doc = NULL;
    const gmrt_json_value *map = NULL;
    gmrt_status s = resolve(path, &st->dir, &file, &index, diag);
    if (s == GMRT_OK && index) {
        s = read_index(file, &doc, &map, diag);
        if (s == GMRT_OK)
            s = open_shards(st, map, diag);
    } else if (s == GMRT_OK) {
        st->shards = calloc(1, sizeof *st->shards);
        if (!st->shards)
            s = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
        else {
            st->shards[0].path = file;
            file = NULL;
            st->n_shards = 1;
            s = parse_shard(&st->shards[0], 0, &st->tensors, &st->n_tensors, diag);
        }
    }
    if (s == GMRT_OK && st->n_tensors > GMRT_ST_MAX_TENSORS)
        s = gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: %" PRId64 " tensors (at most %d)", path,
                      st->n_tensors, GMRT_ST_MAX_TENSORS);
    if (s == GMRT_OK && st->n_tensors > 0)
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, tensor_cmp);
    if (s == GMRT_OK && index)
        s = check_index(file, st, map, diag);
    free(file);
    gmrt_json_destroy(doc);
    if (s != GMRT_OK) {
        gmrt_safetensors_close(st);
        return s;
    }
    *out = st;
    return GMRT_OK;
}

void gmrt_safetensors_close(gmrt_safetensors *st)
{
    if (!st)
        return;
    for (int32_t i = 0; i < st->n_shards; i++) {
        if (st->shards[i].map)
            munmap(st->shards[i].map, (size_t)st->shards[i].size);
        gmrt_json_destroy(st->shards[i].header);
        free(st->shards[i].path);
    }
    free(st->shards);
    free(st->tensors);
    free(st->dir);
    free(st);
}

int64_t gmrt_safetensors_n_tensors(const gmrt_safetensors *st) { return st->n_tensors; }

const gmrt_st_tensor *gmrt_safetensors_tensor_at(const gmrt_safetensors *st, int64_t i)
{
    return i >= 0 && i < st->n_tensors ? &st->tensors[i] : NULL;
}

const gmrt_st_tensor *gmrt_safetensors_find(const gmrt_safetensors *st, const char *name)
{
    return find_in(st->tensors, st->n_tensors, name);
}

const char *gmrt_safetensors_dir(const gmrt_safetensors *st) { return st->dir; }
