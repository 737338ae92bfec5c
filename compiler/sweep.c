/*
 * sweep.c — the sweep file (docs/experiments.md): schema, expansion into
 * variants, and each variant's graph YAML.
 *
 * The sweep file goes through the same YAML reader as a graph (yaml_io.c:
 * its limits and refusals), then a small strict walk of its own keys.  A
 * variant is never validated here: its overrides are put into the base
 * graph's tree (copying only the mappings on each path) and the tree is
 * written back as YAML, which the ordinary front end then reads.  So any
 * field of docs/yaml.md can be swept, the schema exists once (model.c), and
 * a bad value is reported at its line in the variant's file, where a
 * comment names the sweep file's line it came from.
 */
#include "sweep.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h" /* GMC_YAML_MAX_BYTES */

/* ------------------------------------------------------------ errors */

typedef struct sparser {
    gmc_sweep *s;
    gmc_arena *a;
    gmc_diag *diag;
} sparser;

static gmc_status fail_node(const sparser *p, const gmc_ynode *n, const char *path,
                            const char *fmt, ...) GMC_PRINTF(4, 5);
static gmc_status fail_node(const sparser *p, const gmc_ynode *n, const char *path,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gmc_yaml_failv(p->diag, GMC_ERR_SCHEMA, p->s->file, p->s->text, p->s->len, n->line,
                   n->col, path, fmt, ap);
    va_end(ap);
    return GMC_ERR_SCHEMA;
}

static gmc_status nomem(const sparser *p)
{
    return gmc_fail(p->diag, GMC_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------ scalars */

/* A plain decimal integer in [lo, hi] (the graph's rules: no sign but '-',
 * no leading zero, docs/yaml.md). */
static gmc_status get_int(const sparser *p, const gmc_ynode *n, const char *path, long lo,
                          long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = 0;
    bool ok = n->kind == GMC_YNODE_SCALAR && n->plain && n->len > 0 && n->len < 20 &&
              !(n->text[0] == '0' && n->len > 1);
    if (ok) {
        v = strtol(n->text, &end, 10);
        ok = !errno && *end == '\0' && v >= lo && v <= hi;
    }
    if (!ok)
        return fail_node(p, n, path, "expected an integer in [%ld, %ld]", lo, hi);
    *out = v;
    return GMC_OK;
}

static gmc_status get_string(const sparser *p, const gmc_ynode *n, const char *path,
                             const char **out)
{
    if (n->kind != GMC_YNODE_SCALAR || n->len == 0 || strlen(n->text) != n->len)
        return fail_node(p, n, path, "expected a non-empty string");
    *out = n->text;
    return GMC_OK;
}

/* A dotted path of graph keys: [A-Za-z0-9_]+ joined by single dots. */
static gmc_status check_path(const sparser *p, const gmc_ynode *key, const char *where)
{
    bool ok = key->len > 0 && key->len < 128 && strlen(key->text) == key->len;
    for (size_t i = 0; ok && i < key->len; i++) {
        char c = key->text[i];
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_';
        ok = word || (c == '.' && i > 0 && i + 1 < key->len && key->text[i + 1] != '.');
    }
    if (!ok)
        return fail_node(p, key, where, "expected a dotted path of graph keys such as "
                         "attention.kv_heads (docs/yaml.md), got \"%.64s\"", key->text);
    return GMC_OK;
}

/* ------------------------------------------------------------ schema */

/* Where one override path was first given, to refuse a second. */
typedef struct seen_path {
    const gmc_ynode *key;
    const char *section;
} seen_path;

/* Refuses a path given twice across set and grid; list entries may not
 * repeat a set or grid path either (checked per entry against these). */
static gmc_status note_path(const sparser *p, seen_path *seen, size_t *n_seen,
                            const gmc_ynode *key, const char *section)
{
    for (size_t i = 0; i < *n_seen; i++)
        if (strcmp(seen[i].key->text, key->text) == 0)
            return fail_node(p, key, section, "%s is already set by %s (line %d)",
                             key->text, seen[i].section, seen[i].key->line);
    seen[(*n_seen)++] = (seen_path){key, section};
    return GMC_OK;
}

/* eval: {text: FILE, ctx: N}: perplexity of every variant over a text. */
static gmc_status parse_eval(const sparser *p, const gmc_ynode *m)
{
    gmc_sweep *s = p->s;
    if (m->kind != GMC_YNODE_MAP)
        return fail_node(p, m, "eval", "expected a mapping {text: FILE, ctx: N}");
    s->eval_ctx = 512;
    for (size_t i = 0; i < m->n; i++) {
        const gmc_ynode *k = m->pairs[i].key, *v = m->pairs[i].value;
        long x;
        if (gmc_ynode_is(k, "text"))
            GMC_TRY(get_string(p, v, "eval.text", &s->eval_text));
        else if (gmc_ynode_is(k, "ctx")) {
            GMC_TRY(get_int(p, v, "eval.ctx", 2, 1048576, &x));
            s->eval_ctx = (int32_t)x;
        } else
            return fail_node(p, k, "eval", "unknown key \"%.64s\"; allowed keys: text, ctx",
                             k->text);
    }
    if (!s->eval_text)
        return fail_node(p, m, "eval", "missing required key \"text\" (the text file)");
    return GMC_OK;
}

static gmc_status parse_bench(const sparser *p, const gmc_ynode *m)
{
    gmc_sweep *s = p->s;
    if (m->kind != GMC_YNODE_MAP)
        return fail_node(p, m, "bench", "expected a mapping");
    for (size_t i = 0; i < m->n; i++) {
        const gmc_ynode *k = m->pairs[i].key, *v = m->pairs[i].value;
        long x;
        if (gmc_ynode_is(k, "threads")) {
            if (v->kind != GMC_YNODE_SEQ || v->n == 0 || v->n > GMC_SWEEP_MAX_THREADS)
                return fail_node(p, v, "bench.threads", "expected a list of 1 to %d "
                                 "thread counts", GMC_SWEEP_MAX_THREADS);
            for (size_t j = 0; j < v->n; j++) {
                GMC_TRY(get_int(p, v->items[j], "bench.threads", 1, 256, &x));
                s->threads[j] = (int)x;
            }
            s->n_threads = (int)v->n;
        } else if (gmc_ynode_is(k, "prompt")) {
            GMC_TRY(get_int(p, v, "bench.prompt", 0, 1048576, &x));
            s->prompt = (int32_t)x;
        } else if (gmc_ynode_is(k, "gen")) {
            GMC_TRY(get_int(p, v, "bench.gen", 0, 1048576, &x));
            s->gen = (int32_t)x;
        } else if (gmc_ynode_is(k, "reps")) {
            GMC_TRY(get_int(p, v, "bench.reps", 1, 1000, &x));
            s->reps = (int32_t)x;
        } else
            return fail_node(p, k, "bench", "unknown key \"%.64s\"; allowed keys: "
                             "threads, prompt, gen, reps", k->text);
    }
    if (s->prompt == 0 && s->gen == 0)
        return fail_node(p, m, "bench", "nothing to measure: prompt and gen are both 0");
    return GMC_OK;
}

/* set: and grid: are mappings of path → value (grid: → a non-empty list of
 * values). */
static gmc_status parse_paths(const sparser *p, const gmc_ynode *m, const char *section,
                              bool grid, seen_path *seen, size_t *n_seen)
{
    if (m->kind != GMC_YNODE_MAP)
        return fail_node(p, m, section, "expected a mapping of dotted paths to %s",
                         grid ? "lists of values" : "values");
    for (size_t i = 0; i < m->n; i++) {
        const gmc_ynode *k = m->pairs[i].key, *v = m->pairs[i].value;
        GMC_TRY(check_path(p, k, section));
        GMC_TRY(note_path(p, seen, n_seen, k, section));
        if (grid && (v->kind != GMC_YNODE_SEQ || v->n == 0))
            return fail_node(p, v, k->text, "expected a non-empty list of values "
                             "(grid: takes every combination)");
    }
    return GMC_OK;
}

static gmc_status parse_list(const sparser *p, const gmc_ynode *l, const seen_path *seen,
                             size_t n_seen)
{
    if (l->kind != GMC_YNODE_SEQ || l->n == 0)
        return fail_node(p, l, "list", "expected a non-empty list of mappings "
                         "(dotted path: value, and an optional name)");
    char where[32];
    for (size_t i = 0; i < l->n; i++) {
        const gmc_ynode *e = l->items[i];
        snprintf(where, sizeof where, "list[%zu]", i);
        if (e->kind != GMC_YNODE_MAP || e->n == 0)
            return fail_node(p, e, where, "expected a non-empty mapping of dotted paths "
                             "to values");
        for (size_t j = 0; j < e->n; j++) {
            const gmc_ynode *k = e->pairs[j].key;
            if (gmc_ynode_is(k, "name")) {
                const char *name;
                GMC_TRY(get_string(p, e->pairs[j].value, where, &name));
                continue;
            }
            GMC_TRY(check_path(p, k, where));
            for (size_t q = 0; q < n_seen; q++)
                if (strcmp(seen[q].key->text, k->text) == 0)
                    return fail_node(p, k, where, "%s is already set by %s (line %d)",
                                     k->text, seen[q].section, seen[q].key->line);
        }
    }
    return GMC_OK;
}

/* The top level: one table of keys, checked in one pass. */
static gmc_status walk_root(const sparser *p, const gmc_ynode *root, const gmc_ynode **set,
                            const gmc_ynode **grid, const gmc_ynode **list)
{
    gmc_sweep *s = p->s;
    static const char allowed[] =
        "base, name, target, batch, seed, weights, eval, set, grid, list, bench";
    if (root->kind != GMC_YNODE_MAP)
        return fail_node(p, root, "", "expected a mapping with the keys %s", allowed);
    const gmc_ynode *bench = NULL, *eval = NULL;
    for (size_t i = 0; i < root->n; i++) {
        const gmc_ynode *k = root->pairs[i].key, *v = root->pairs[i].value;
        long x;
        if (gmc_ynode_is(k, "base"))
            GMC_TRY(get_string(p, v, "base", &s->base));
        else if (gmc_ynode_is(k, "name"))
            GMC_TRY(get_string(p, v, "name", &s->name));
        else if (gmc_ynode_is(k, "target"))
            GMC_TRY(get_string(p, v, "target", &s->target));
        else if (gmc_ynode_is(k, "batch")) {
            GMC_TRY(get_int(p, v, "batch", 1, 4096, &x));
            s->batch = (int32_t)x;
        } else if (gmc_ynode_is(k, "seed")) {
            GMC_TRY(get_int(p, v, "seed", 0, 0x7fffffffL, &x));
            s->seed = (uint64_t)x;
        } else if (gmc_ynode_is(k, "set"))
            *set = v;
        else if (gmc_ynode_is(k, "grid"))
            *grid = v;
        else if (gmc_ynode_is(k, "list"))
            *list = v;
        else if (gmc_ynode_is(k, "bench"))
            bench = v;
        else if (gmc_ynode_is(k, "weights"))
            GMC_TRY(get_string(p, v, "weights", &s->weights));
        else if (gmc_ynode_is(k, "eval"))
            eval = v;
        else
            return fail_node(p, k, "", "unknown key \"%.64s\"; allowed keys: %s", k->text,
                             allowed);
    }
    if (!s->base)
        return fail_node(p, root, "", "missing required key \"base\" (the graph to vary)");
    if (eval)
        GMC_TRY(parse_eval(p, eval));
    return bench ? parse_bench(p, bench) : GMC_OK;
}

/* ------------------------------------------------------------ expansion */

static const char *leaf(const char *path)
{
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

/* Appends path's column unless it is there already. */
static gmc_status add_column(const sparser *p, const char *path)
{
    gmc_sweep *s = p->s;
    for (size_t i = 0; i < s->n_columns; i++)
        if (strcmp(s->columns[i], path) == 0)
            return GMC_OK;
    s->columns[s->n_columns++] = path;
    return GMC_OK;
}

/* Variant i of n_list × grid: list entry i / n_grid, grid combination
 * i % n_grid with the first grid key varying slowest. */
static gmc_status make_variant(const sparser *p, const gmc_ynode *set, const gmc_ynode *grid,
                               const gmc_ynode *entry, size_t combo, gmc_sweep_variant *v)
{
    size_t n = (set ? set->n : 0) + (entry ? entry->n : 0) + (grid ? grid->n : 0);
    gmc_sweep_override *o = gmc_arena_array(p->a, n + 1, sizeof *o);
    gmc_strbuf name;
    gmc_strbuf_init(&name);
    size_t k = 0;
    for (size_t i = 0; o && set && i < set->n; i++)
        o[k++] = (gmc_sweep_override){set->pairs[i].key->text, set->pairs[i].value};
    for (size_t i = 0; o && entry && i < entry->n; i++) {
        const gmc_ynode *key = entry->pairs[i].key, *val = entry->pairs[i].value;
        if (gmc_ynode_is(key, "name")) {
            gmc_emitf(&name, "%s%s", name.len ? " " : "", val->text);
            continue;
        }
        o[k++] = (gmc_sweep_override){key->text, val};
    }
    bool named = name.len > 0;
    for (size_t i = 0; o && entry && !named && i < entry->n; i++)
        if (!gmc_ynode_is(entry->pairs[i].key, "name"))
            gmc_emitf(&name, "%s%s=%s", name.len ? " " : "", leaf(entry->pairs[i].key->text),
                      gmc_sweep_node_text(entry->pairs[i].value, p->a));
    /* the grid's keys from the last (varying fastest) to the first */
    size_t pick[64] = {0}, rest = combo;
    for (size_t i = grid ? grid->n : 0; i-- > 0;) {
        pick[i] = rest % grid->pairs[i].value->n;
        rest /= grid->pairs[i].value->n;
    }
    for (size_t i = 0; o && grid && i < grid->n; i++) {
        const gmc_ynode *val = grid->pairs[i].value->items[pick[i]];
        o[k++] = (gmc_sweep_override){grid->pairs[i].key->text, val};
        gmc_emitf(&name, "%s%s=%s", name.len ? " " : "", leaf(grid->pairs[i].key->text),
                  gmc_sweep_node_text(val, p->a));
    }
    if (name.len == 0)
        gmc_emitf(&name, "base");
    v->ovr = o;
    v->n_ovr = k;
    char *nm = gmc_strbuf_failed(&name) ? NULL : gmc_arena_strdup(p->a, gmc_strbuf_str(&name));
    for (char *c = nm; c && *c; c++) /* one line, one TSV field (variants.tsv) */
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
    v->name = nm;
    gmc_strbuf_deinit(&name);
    if (!o || !v->name)
        return nomem(p);
    for (size_t i = 0; i < k; i++)
        GMC_TRY(add_column(p, o[i].path));
    return GMC_OK;
}

static gmc_status expand(const sparser *p, const gmc_ynode *set, const gmc_ynode *grid,
                         const gmc_ynode *list)
{
    gmc_sweep *s = p->s;
    size_t n_grid = 1, n_list = list ? list->n : 1;
    if (grid && grid->n > 64)
        return fail_node(p, grid, "grid", "at most 64 grid keys");
    for (size_t i = 0; grid && i < grid->n; i++) {
        n_grid *= grid->pairs[i].value->n;
        if (n_grid > GMC_SWEEP_MAX_VARIANTS)
            return fail_node(p, grid, "grid", "more than %d variants",
                             GMC_SWEEP_MAX_VARIANTS);
    }
    if (n_grid * n_list > GMC_SWEEP_MAX_VARIANTS)
        return fail_node(p, list, "list", "more than %d variants (list x grid)",
                         GMC_SWEEP_MAX_VARIANTS);
    s->n_variants = n_grid * n_list;
    size_t max_cols = (set ? set->n : 0) + (grid ? grid->n : 0);
    for (size_t i = 0; list && i < list->n; i++)
        max_cols += list->items[i]->n;
    s->variants = gmc_arena_array(p->a, s->n_variants, sizeof *s->variants);
    s->columns = gmc_arena_array(p->a, max_cols + 1, sizeof *s->columns);
    if (!s->variants || !s->columns)
        return nomem(p);
    for (size_t i = 0; i < s->n_variants; i++) {
        s->variants[i].index = (int)i + 1;
        GMC_TRY(make_variant(p, set, grid, list ? list->items[i / n_grid] : NULL, i % n_grid,
                             &s->variants[i]));
    }
    return GMC_OK;
}

/* "sweeps/kv.yaml" → "kv" */
static const char *stem(const char *file, gmc_arena *a)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    const char *dot = strrchr(b, '.');
    return gmc_arena_strndup(a, b, dot && dot != b ? (size_t)(dot - b) : strlen(b));
}

gmc_status gmc_sweep_parse(const char *text, size_t len, const char *filename,
                           gmc_arena *a, gmc_sweep **out, gmc_diag *diag)
{
    *out = NULL;
    gmc_diag_clear(diag);
    const char *file = filename ? filename : "<input>";
    const gmc_ynode *root;
    GMC_TRY(gmc_yaml_parse(text ? text : "", text ? len : 0, file, a, &root, diag));
    gmc_sweep *s = gmc_arena_alloc(a, sizeof *s);
    if (!s)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    *s = (gmc_sweep){.file = file, .text = text, .len = len, .target = "host",
                     .threads = {1}, .n_threads = 1, .prompt = 64, .gen = 32, .reps = 3};
    sparser p = {s, a, diag};
    const gmc_ynode *set = NULL, *grid = NULL, *list = NULL;
    GMC_TRY(walk_root(&p, root, &set, &grid, &list));
    seen_path seen[256];
    size_t n_seen = 0;
    if ((set && set->kind == GMC_YNODE_MAP && set->n > 128) ||
        (grid && grid->kind == GMC_YNODE_MAP && grid->n > 64))
        return fail_node(&p, set && set->n > 128 ? set : grid, "", "too many paths");
    if (set)
        GMC_TRY(parse_paths(&p, set, "set", false, seen, &n_seen));
    if (grid)
        GMC_TRY(parse_paths(&p, grid, "grid", true, seen, &n_seen));
    if (list)
        GMC_TRY(parse_list(&p, list, seen, n_seen));
    if (!s->name)
        s->name = stem(file, a);
    GMC_TRY(expand(&p, set, grid, list));
    *out = s;
    return GMC_OK;
}

/* Reads a whole file of at most GMC_YAML_MAX_BYTES into the arena. */
static gmc_status read_file(const char *path, gmc_arena *a, const char **out, size_t *len,
                            gmc_diag *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "", "cannot open: %s",
                           strerror(errno));
    struct stat st;
    char *buf = gmc_arena_alloc(a, (size_t)GMC_YAML_MAX_BYTES + 2);
    size_t n = 0;
    gmc_status s = GMC_OK;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
        s = gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "", "cannot read: it is a directory");
    else if (!buf)
        s = gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    else if ((n = fread(buf, 1, (size_t)GMC_YAML_MAX_BYTES + 1, f)), ferror(f))
        s = gmc_fail_at(diag, GMC_ERR_IO, path, 0, 0, "", "read error: %s", strerror(errno));
    else if (n > GMC_YAML_MAX_BYTES)
        s = gmc_fail_at(diag, GMC_ERR_LIMIT, path, 0, 0, "",
                        "the file is larger than the limit of %u bytes",
                        (unsigned)GMC_YAML_MAX_BYTES);
    fclose(f);
    *out = buf;
    *len = n;
    return s;
}

/* *file (if not NULL) relative to the sweep file's directory, unless
 * absolute. */
static gmc_status beside(const char *sweep, const char **file, gmc_arena *a, gmc_diag *diag)
{
    if (!*file)
        return GMC_OK;
    const char *slash = strrchr(sweep, '/');
    size_t dir = slash && (*file)[0] != '/' ? (size_t)(slash - sweep) + 1 : 0;
    char *p = gmc_arena_alloc(a, dir + strlen(*file) + 1);
    if (!p)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    memcpy(p, sweep, dir);
    strcpy(p + dir, *file);
    *file = p;
    return GMC_OK;
}

gmc_status gmc_sweep_load(const char *path, gmc_arena *a, gmc_sweep **out, gmc_diag *diag)
{
    const char *text;
    size_t len;
    *out = NULL;
    GMC_TRY(read_file(path, a, &text, &len, diag));
    gmc_sweep *s;
    GMC_TRY(gmc_sweep_parse(text, len, path, a, &s, diag));
    GMC_TRY(beside(path, &s->base, a, diag));
    GMC_TRY(beside(path, &s->eval_text, a, diag));
    if (s->weights && s->weights[0] == '$') {
        /* "$NAME": from the environment, so that a committed sweep file
         * need not name a path on one machine (GMC_MODEL_GGUF) */
        const char *v = getenv(s->weights + 1);
        if (!v || !*v)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: weights: %s is not set (the GGUF "
                            "every variant runs)", path, s->weights);
        s->weights = v;
    } else
        GMC_TRY(beside(path, &s->weights, a, diag));
    GMC_TRY(read_file(s->base, a, &s->base_text, &s->base_len, diag));
    GMC_TRY(gmc_yaml_parse(s->base_text, s->base_len, s->base, a, &s->base_root, diag));
    *out = s;
    return GMC_OK;
}

/* ------------------------------------------------------------ variants */

static gmc_ynode *new_map(gmc_arena *a, size_t n)
{
    gmc_ynode *m = gmc_arena_alloc(a, sizeof *m);
    gmc_ypair *pairs = gmc_arena_array(a, n + 1, sizeof *pairs);
    if (!m || !pairs)
        return NULL;
    m->kind = GMC_YNODE_MAP;
    m->pairs = pairs;
    m->n = n;
    return m;
}

/* A copy of map with key (the first len bytes of path) set to the result
 * of putting value at the rest of the path: only the mappings on the path
 * are copied, the base tree is never changed.  A missing key is added at
 * the end, a missing mapping created. */
static const gmc_ynode *put(gmc_arena *a, const gmc_ynode *map, const char *path,
                            const gmc_ynode *value, const char **bad)
{
    if (map && map->kind != GMC_YNODE_MAP) {
        *bad = path;
        return NULL;
    }
    size_t len = strcspn(path, ".");
    size_t n = map ? map->n : 0, at = n;
    for (size_t i = 0; i < n; i++)
        if (map->pairs[i].key->len == len && memcmp(map->pairs[i].key->text, path, len) == 0)
            at = i;
    gmc_ynode *m = new_map(a, n + (at == n));
    if (!m)
        return NULL;
    if (map) {
        memcpy((gmc_ypair *)m->pairs, map->pairs, n * sizeof *m->pairs);
        m->line = map->line, m->col = map->col;
    }
    gmc_ypair *pr = (gmc_ypair *)&m->pairs[at];
    if (at == n) {
        gmc_ynode *k = gmc_arena_alloc(a, sizeof *k);
        if (!k || !(k->text = gmc_arena_strndup(a, path, len)))
            return NULL;
        k->kind = GMC_YNODE_SCALAR, k->len = len, k->plain = true;
        pr->key = k;
        pr->value = NULL;
    }
    if (path[len] == '\0')
        pr->value = value;
    else if (!(pr->value = put(a, pr->value, path + len + 1, value, bad)))
        return NULL;
    return m;
}

/* Whether a scalar can be written plain and read back as the same plain
 * scalar, in block (flow: also inside [ ]) context. */
static bool plain_ok(const gmc_ynode *n, bool flow)
{
    const char *t = n->text;
    if (n->len == 0)
        return !flow;
    if (strlen(t) != n->len || strchr("-?:,[]{}#&*!|>'\"%@` ", t[0]) || t[n->len - 1] == ' ' ||
        t[n->len - 1] == ':' || strstr(t, ": ") || strstr(t, " #"))
        return false;
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c == 0x7F || (flow && strchr(",[]{}", c)))
            return false;
    }
    return true;
}

static void emit_scalar(gmc_strbuf *b, const gmc_ynode *n, bool flow)
{
    if (n->plain && plain_ok(n, flow)) {
        gmc_strbuf_append(b, n->text, n->len);
        return;
    }
    gmc_strbuf_append(b, "\"", 1);
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (c == '"' || c == '\\')
            gmc_emitf(b, "\\%c", c);
        else if (c == '\n')
            gmc_emitf(b, "\\n");
        else if (c < 0x20 || c == 0x7F)
            gmc_emitf(b, "\\x%02X", c);
        else
            gmc_strbuf_append(b, (const char *)&c, 1);
    }
    gmc_strbuf_append(b, "\"", 1);
}

static void emit_flow(gmc_strbuf *b, const gmc_ynode *n)
{
    if (n->kind == GMC_YNODE_SCALAR) {
        emit_scalar(b, n, true);
        return;
    }
    bool map = n->kind == GMC_YNODE_MAP;
    gmc_strbuf_append(b, map ? "{" : "[", 1);
    for (size_t i = 0; i < n->n; i++) {
        if (i)
            gmc_strbuf_append(b, ", ", 2);
        if (map) {
            emit_scalar(b, n->pairs[i].key, true);
            gmc_strbuf_append(b, ": ", 2);
        }
        emit_flow(b, map ? n->pairs[i].value : n->items[i]);
    }
    gmc_strbuf_append(b, map ? "}" : "]", 1);
}

const char *gmc_sweep_node_text(const gmc_ynode *n, gmc_arena *a)
{
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    if (n->kind == GMC_YNODE_SCALAR && strlen(n->text) == n->len)
        gmc_strbuf_append(&b, n->text, n->len);
    else
        emit_flow(&b, n);
    const char *s = gmc_strbuf_failed(&b) ? "?" : gmc_arena_strdup(a, gmc_strbuf_str(&b));
    gmc_strbuf_deinit(&b);
    return s ? s : "?";
}

/* The variant's overrides, to mark where their values came from (v NULL:
 * no marks). */
typedef struct marks {
    const gmc_sweep *s;
    const gmc_sweep_variant *v;
} marks;

static void emit_mark(gmc_strbuf *b, const marks *mk, const gmc_ynode *value)
{
    for (size_t i = 0; mk->v && i < mk->v->n_ovr; i++)
        if (mk->v->ovr[i].value == value) {
            gmc_emitf(b, "  # %s:%d", mk->s->file, value->line);
            return;
        }
}

/* Block style, two spaces a level; sequences and mappings of scalars and
 * overridden values in flow style on one line. */
static void emit_block(gmc_strbuf *b, const gmc_ynode *map, int indent, const marks *mk)
{
    for (size_t i = 0; i < map->n; i++) {
        const gmc_ynode *k = map->pairs[i].key, *v = map->pairs[i].value;
        gmc_emitf(b, "%*s", indent, "");
        emit_scalar(b, k, false);
        gmc_strbuf_append(b, ":", 1);
        bool flat = v->kind != GMC_YNODE_MAP || v->n == 0;
        for (size_t j = 0; v->kind == GMC_YNODE_SEQ && j < v->n; j++)
            flat = flat && v->items[j]->kind == GMC_YNODE_SCALAR;
        if (v->kind == GMC_YNODE_SCALAR) {
            if (v->len || !v->plain)
                gmc_strbuf_append(b, " ", 1);
            emit_scalar(b, v, false);
        } else if (flat || v->kind == GMC_YNODE_SEQ) {
            gmc_strbuf_append(b, " ", 1);
            emit_flow(b, v);
        }
        emit_mark(b, mk, v);
        gmc_strbuf_append(b, "\n", 1);
        if (!flat && v->kind == GMC_YNODE_MAP)
            emit_block(b, v, indent + 2, mk);
    }
}

gmc_status gmc_sweep_variant_yaml(const gmc_sweep *s, const gmc_sweep_variant *v,
                                  gmc_arena *a, bool comments, gmc_strbuf *out,
                                  gmc_diag *diag)
{
    gmc_diag_clear(diag);
    const gmc_ynode *root = s->base_root;
    for (size_t i = 0; i < v->n_ovr; i++) {
        const char *bad = NULL;
        const gmc_ynode *r = put(a, root, v->ovr[i].path, v->ovr[i].value, &bad);
        if (!r && !bad)
            return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
        if (!r) {
            const gmc_ynode *n = v->ovr[i].value;
            sparser p = {(gmc_sweep *)s, a, diag};
            return fail_node(&p, n, v->ovr[i].path, "variant %d (%s): %.*s is not a mapping "
                             "in %s, so %s cannot be set", v->index, v->name,
                             (int)(bad - v->ovr[i].path - 1), v->ovr[i].path, s->base,
                             v->ovr[i].path);
        }
        root = r;
    }
    if (comments)
        gmc_emitf(out, "# sweep %s (%s), variant %d: %s\n# base %s; generated by gemmac "
                  "sweep: edit the sweep file, not this one\n", s->name, s->file, v->index,
                  v->name, s->base);
    marks mk = {s, comments ? v : NULL};
    if (root->kind == GMC_YNODE_MAP)
        emit_block(out, root, 0, &mk);
    else { /* not a graph at all: let the front end say so */
        emit_flow(out, root);
        gmc_strbuf_append(out, "\n", 1);
    }
    if (gmc_strbuf_failed(out))
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    return GMC_OK;
}
