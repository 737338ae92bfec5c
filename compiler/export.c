/*
 * export.c — `gemmac export` (docs/export.md).
 *
 * The C half: the emitter's model.c and model.h and the runtime's core
 * sources are pasted into NAME.c and NAME.h, each quoted #include replaced
 * by the file it names the first time and dropped after (the headers all
 * have guards; the core's static names are distinct, so the sources share
 * one translation unit).  The weights half: every tensor of the manifest is
 * copied from the GGUF file given, in the layout the target's kernels read
 * (gmk_layout_pack, as the runtime would at load), with the file's metadata
 * and the keys GMRT_KEY_LAYOUT_* that let the runtime map it as it is.
 */
#include "export.h"

#include "arena.h"
#include "driver.h"
#include "emit.h"
#include "graph.h"
#include "strbuf.h"
#include "toolchain.h"

#include "gmk_layout.h"
#include "gmrt_tools.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef GMC_VERSION
#define GMC_VERSION "0.0.0"
#endif
#ifndef GMC_RUNTIME_INCLUDE_DIR
#define GMC_RUNTIME_INCLUDE_DIR "runtime/include"
#endif
#ifndef GMC_RUNTIME_SRC_DIR
#define GMC_RUNTIME_SRC_DIR "runtime"
#endif

/* Files already pasted, by name (the runtime's file names are unique). */
#define MAX_PASTED 128
typedef struct pasted {
    char names[MAX_PASTED][64];
    int n;
} pasted;

/* Whether name was pasted before; if not, records it (false with *full set
 * when there is no room). */
static bool was_pasted(pasted *p, const char *name, size_t len, bool *full)
{
    for (int i = 0; i < p->n; i++)
        if (strlen(p->names[i]) == len && memcmp(p->names[i], name, len) == 0)
            return true;
    *full = p->n == MAX_PASTED || len >= sizeof p->names[0];
    if (!*full) {
        memcpy(p->names[p->n], name, len);
        p->names[p->n++][len] = '\0';
    }
    return false;
}

/* The whole of path, NUL-terminated (malloc'd), or NULL with errno. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf && (buf = malloc(1)) == NULL)
        return NULL;
    buf[len] = '\0';
    return buf;
}

/* The name of a quoted #include on the line at s (its length in *len), or
 * NULL for any other line. */
static const char *quoted_include(const char *s, size_t *len)
{
    s += strspn(s, " \t");
    if (*s++ != '#')
        return NULL;
    s += strspn(s, " \t");
    if (strncmp(s, "include", 7) != 0)
        return NULL;
    s += 7;
    s += strspn(s, " \t");
    if (*s != '"')
        return NULL;
    const char *end = strchr(s + 1, '"');
    const char *nl = strchr(s, '\n');
    if (!end || (nl && end > nl))
        return NULL;
    *len = (size_t)(end - s - 1);
    return s + 1;
}

static gmc_status paste_file(gmc_strbuf *out, const char *path, pasted *p, int depth,
                             gmc_diag *diag);

/* Appends text (from the file what), each quoted #include replaced by the
 * runtime header or source it names, once. */
static gmc_status paste_text(gmc_strbuf *out, const char *text, const char *what, pasted *p,
                             int depth, gmc_diag *diag)
{
    if (depth > 16)
        return gmc_fail(diag, GMC_ERR_LIMIT, "%s: #include nested deeper than 16", what);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        size_t len;
        bool full = false;
        const char *inc = quoted_include(line, &len);
        if (!inc) {
            gmc_strbuf_append(out, line, n);
        } else if (!was_pasted(p, inc, len, &full)) {
            if (full)
                return gmc_fail(diag, GMC_ERR_LIMIT, "%s: #include \"%.*s\": more than %d "
                                "runtime files, or a name of 64 bytes", what, (int)len, inc,
                                MAX_PASTED);
            char path[4200];
            snprintf(path, sizeof path, "%s/%.*s", GMC_RUNTIME_INCLUDE_DIR, (int)len, inc);
            struct stat sb;
            if (stat(path, &sb) != 0)
                snprintf(path, sizeof path, "%s/%.*s", GMC_RUNTIME_SRC_DIR, (int)len, inc);
            GMC_TRY(paste_file(out, path, p, depth + 1, diag));
        }
        line += n;
    }
    return GMC_OK;
}

static gmc_status paste_file(gmc_strbuf *out, const char *path, pasted *p, int depth,
                             gmc_diag *diag)
{
    char *text = read_text(path);
    if (!text)
        return gmc_fail(diag, GMC_ERR_IO, "cannot read %s (a runtime file the export "
                        "includes): %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    gmc_emitf(out, "/* ---------------------------------------- %s */\n", base ? base + 1 : path);
    gmc_status st = paste_text(out, text, path, p, depth, diag);
    free(text);
    return st;
}

static int is_c_source(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 2 && strcmp(d->d_name + n - 2, ".c") == 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* The runtime's core (the .c files of runtime/, not runtime/tools/). */
static gmc_status paste_core(gmc_strbuf *out, pasted *p, gmc_diag *diag)
{
    struct dirent **list;
    int n = scandir(GMC_RUNTIME_SRC_DIR, &list, is_c_source, name_cmp);
    if (n <= 0)
        return gmc_fail(diag, GMC_ERR_IO, "no runtime sources in %s", GMC_RUNTIME_SRC_DIR);
    gmc_status st = GMC_OK;
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", GMC_RUNTIME_SRC_DIR, list[i]->d_name);
        if (st == GMC_OK)
            st = paste_file(out, path, p, 0, diag);
        /* A file-scope FP_CONTRACT pragma (dtype.c, quantize.c) would hold to
         * the end of the translation unit, over the kernels too: end it with
         * its source, as its own translation unit would. */
        gmc_emitf(out, "#if defined(__clang__)\n#pragma STDC FP_CONTRACT DEFAULT\n#endif\n");
        free(list[i]);
    }
    free(list);
    return st;
}

/* How the README builds the export with the system's C compiler. */
static const char cc_line[] = "cc -O2 -ffp-contract=on -fno-math-errno";

/* The flags a C compiler needs for the target: all of them for clang, and
 * for another cc the -m options (the ISA) alone. */
static void cc_flags(const gmc_target_config *tc, bool clang, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < tc->n_flags && k < len; i++)
        if (clang || strncmp(tc->flags[i], "-m", 2) == 0)
            k += (size_t)snprintf(buf + k, len - k, " %s", tc->flags[i]);
}

static void emit_banner(gmc_strbuf *b, const char *file, const gmc_graph *g,
                        const gmc_target_config *tc, const char *what)
{
    gmc_emitf(b, "/*\n * %s — exported by gemmac %s — do not edit\n", file, GMC_VERSION);
    gmc_emitf(b, " * model:  %s, graph fnv1a64 %016" PRIx64 "\n", g->model->name, g->hash);
    gmc_emitf(b, " * target: %s (%s)\n * %s\n */\n", tc->target->name, tc->triple, what);
}

static gmc_status write_text(const char *dir, const char *name, const gmc_strbuf *b,
                             gmc_diag *diag)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gmc_strbuf_failed(b))
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory writing %s", path);
    gmrt_file_replace r;
    gmrt_diag rd;
    if (gmrt_file_replace_begin(&r, path, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    const char *s = gmc_strbuf_str(b);
    size_t left = b->len;
    while (left > 0) {
        ssize_t w = write(r.fd, s, left);
        if (w <= 0) {
            int e = errno;
            gmrt_file_replace_abort(&r);
            return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", path, strerror(e));
        }
        s += w;
        left -= (size_t)w;
    }
    close(r.fd);
    r.fd = -1;
    if (gmrt_file_replace_commit(&r, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    return GMC_OK;
}

/* NAME.h: the runtime's API and the model's descriptor; NAME.c: the core
 * and the model in one translation unit. */
static gmc_status write_sources(const gmc_export_options *o, const char *name,
                                const gmc_graph *g, const gmc_target_config *tc,
                                const gmc_emit_out *e, gmc_diag *diag)
{
    gmc_strbuf h, c;
    gmc_strbuf_init(&h);
    gmc_strbuf_init(&c);
    pasted p = {.n = 0};
    char file[128];
    snprintf(file, sizeof file, "%s.h", name);
    emit_banner(&h, file, g, tc, "The embedding API: the runtime's gmrt.h and the model.");
    gmc_emitf(&h, "#ifndef GMRT_EXPORT_H\n#define GMRT_EXPORT_H\n\n");
    gmc_status st = paste_text(&h, "#include \"gmrt.h\"\n", file, &p, 0, diag);
    if (st == GMC_OK)
        st = paste_text(&h, gmc_strbuf_str(&e->model_h), "model.h", &p, 0, diag);
    gmc_emitf(&h, "\n/* The model (an alias of %s_model), the target it was compiled for\n"
                  " * and the CPU features its kernels need (gmrt_cpu_check). */\n"
                  "extern const gmk_model *const gmk_model_entry;\n"
                  "#define GMRT_EXPORT_TARGET \"%s\"\n#define GMRT_EXPORT_FEATURES \"%s\"\n"
                  "\n#endif\n", g->model->name, tc->target->name, tc->features);

    snprintf(file, sizeof file, "%s.c", name);
    emit_banner(&c, file, g, tc, "The model's kernels and the runtime's core, one C file.");
    gmc_emitf(&c, "/* the POSIX level the runtime is written against */\n"
                  "#ifndef _POSIX_C_SOURCE\n#define _POSIX_C_SOURCE 200809L\n#endif\n"
                  "#ifndef _DEFAULT_SOURCE\n#define _DEFAULT_SOURCE\n#endif\n"
                  "#include \"%s.h\"\n\n", name);
    if (st == GMC_OK)
        st = paste_core(&c, &p, diag);
    gmc_emitf(&c, "/* ---------------------------------------- model.c */\n");
    if (st == GMC_OK)
        st = paste_text(&c, gmc_strbuf_str(&e->model_c), "model.c", &p, 0, diag);
    snprintf(file, sizeof file, "%s.h", name);
    if (st == GMC_OK)
        st = write_text(o->out_dir, file, &h, diag);
    snprintf(file, sizeof file, "%s.c", name);
    if (st == GMC_OK)
        st = write_text(o->out_dir, file, &c, diag);
    gmc_strbuf_deinit(&h);
    gmc_strbuf_deinit(&c);
    return st;
}

/* ------------------------------------------------------------ weights */

typedef struct weights_job {
    const gmrt_gguf *src;
    const gmc_value **w;     /* manifest order */
    const gmrt_gguf_tensor **f;
    uint64_t bytes;
} weights_job;

/* The tensor's rows as the file stores them: a panel layout's whole panels. */
static int64_t stored_rows(const gmc_value *v)
{
    if (v->layout == GMK_LAYOUT_PACKED || v->n_dims != 2)
        return v->ne[1];
    int64_t r = gmk_layout_rows(v->layout);
    return (v->ne[1] + r - 1) / r * r;
}

static gmrt_status fill_tensor(void *user, int64_t i, const char *name, void *dst,
                               size_t nbytes, gmrt_diag *diag)
{
    (void)name;
    weights_job *j = user;
    const gmc_value *v = j->w[i];
    const gmrt_gguf_tensor *f = j->f[i];
    j->bytes += nbytes;
    if (v->layout == GMK_LAYOUT_PACKED) {
        if (f->nbytes != nbytes)
            return gmrt_fail(diag, GMRT_ERR_FORMAT, "tensor \"%s\": %llu B, %zu expected",
                             v->name, (unsigned long long)f->nbytes, nbytes);
        memcpy(dst, f->data, nbytes);
        return GMRT_OK;
    }
    int64_t rows = gmk_layout_all_rows(v->n_dims, v->ne);
    if (gmk_layout_bytes(v->layout, v->dtype, rows, v->ne[0]) != nbytes)
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "tensor \"%s\": layout %s takes %llu B, "
                         "the file entry %zu", v->name, gmk_layout_name(v->layout),
                         (unsigned long long)gmk_layout_bytes(v->layout, v->dtype, rows,
                                                              v->ne[0]), nbytes);
    gmk_layout_pack(dst, f->data, v->layout, v->dtype, rows, v->ne[0]);
    return GMRT_OK;
}

/* Every manifest tensor must be in the file with the graph's dtype and shape. */
static gmc_status find_tensors(const gmc_export_options *o, weights_job *j, int n,
                               gmc_diag *diag)
{
    for (int i = 0; i < n; i++) {
        const gmc_value *v = j->w[i];
        const gmrt_gguf_tensor *f = gmrt_gguf_find_tensor(j->src, v->name);
        if (!f)
            return gmc_fail(diag, GMC_ERR_SEMANTIC, "%s: tensor \"%s\" is missing (the "
                            "graph %s needs %d tensors)", o->weights, v->name, o->graph, n);
        if (f->dtype != v->dtype)
            return gmc_fail(diag, GMC_ERR_SEMANTIC, "%s: tensor \"%s\" is %s in the file "
                            "but %s in the graph %s (export takes the weights in the "
                            "graph's dtypes)", o->weights, v->name, gmrt_dtype_name(f->dtype),
                            gmrt_dtype_name(v->dtype), o->graph);
        bool same = f->n_dims == v->n_dims;
        for (int d = 0; d < v->n_dims && same; d++)
            same = f->ne[d] == v->ne[d];
        if (!same)
            return gmc_fail(diag, GMC_ERR_SEMANTIC, "%s: tensor \"%s\" has another shape "
                            "in the file than in the graph %s (%lld x %lld there)",
                            o->weights, v->name, o->graph, (long long)v->ne[0],
                            (long long)v->ne[1]);
        j->f[i] = f;
    }
    return GMC_OK;
}

/* The file's metadata, copied as encoded, then the layout keys. */
static gmrt_status copy_metadata(gmrt_gguf_writer *w, const gmrt_gguf *src,
                                 const gmc_graph *g, const gmc_target_config *tc,
                                 const int32_t *layouts, int n)
{
    gmrt_status st = GMRT_OK;
    for (int64_t i = 0; i < gmrt_gguf_n_kv(src) && st == GMRT_OK; i++) {
        const char *key = gmrt_gguf_key_at(src, i);
        gmrt_gguf_type type;
        const void *val;
        size_t len;
        if (strcmp(key, "general.alignment") == 0 || !gmrt_gguf_kv_raw(src, i, &type, &val,
                                                                       &len))
            continue; /* the writer sets its own */
        st = gmrt_gguf_writer_set_raw(w, key, type, val, len);
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, g->hash);
    if (st == GMRT_OK)
        st = gmrt_gguf_writer_set_str(w, GMRT_KEY_LAYOUT_TARGET, tc->target->name);
    if (st == GMRT_OK)
        st = gmrt_gguf_writer_set_str(w, GMRT_KEY_LAYOUT_GRAPH, hash);
    if (st == GMRT_OK)
        st = gmrt_gguf_writer_set_i32s(w, GMRT_KEY_LAYOUT_OF, layouts, (uint64_t)n);
    return st;
}

static gmc_status write_weights_to(const gmc_export_options *o, const char *path,
                                   const gmc_graph *g, const gmc_target_config *tc,
                                   weights_job *j, int n, int32_t *layouts, gmc_diag *diag)
{
    GMC_TRY(find_tensors(o, j, n, diag));
    if (gmrt_gguf_has_key(j->src, GMRT_KEY_LAYOUT_TARGET))
        return gmc_fail(diag, GMC_ERR_ARG, "%s is laid out for a compiled model already "
                        "(it has %s): export from the original GGUF", o->weights,
                        GMRT_KEY_LAYOUT_TARGET);
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    if (!w)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    gmrt_status st = GMRT_OK;
    for (int i = 0; i < n && st == GMRT_OK; i++) {
        const gmc_value *v = j->w[i];
        int64_t ne[4] = {v->ne[0], stored_rows(v), v->ne[2], v->ne[3]};
        layouts[i] = v->layout;
        st = gmrt_gguf_writer_add_tensor(w, v->name, v->dtype, v->n_dims, ne);
    }
    if (st == GMRT_OK)
        st = copy_metadata(w, j->src, g, tc, layouts, n);
    gmrt_diag rd = {.status = GMRT_OK, .msg = ""};
    if (st != GMRT_OK)
        snprintf(rd.msg, sizeof rd.msg, "%s: %s copying the metadata and tensor table of %s",
                 path, gmrt_status_name(st), o->weights);
    else
        st = gmrt_gguf_writer_write(w, path, fill_tensor, j, &rd);
    gmrt_gguf_writer_destroy(w);
    return st == GMRT_OK ? GMC_OK : gmc_fail(diag, GMC_ERR_RUNTIME, "%s", rd.msg);
}

/* NAME.gguf: the manifest's tensors in the target's layouts. */
static gmc_status write_weights(const gmc_export_options *o, const char *name,
                                const gmc_graph *g, const gmc_target_config *tc,
                                gmc_export_result *r, gmc_diag *diag)
{
    int n = 0;
    for (int i = 0; i < g->n_values; i++)
        n += g->values[i].kind == GMC_V_WEIGHT;
    weights_job j = {.w = calloc((size_t)n + 1, sizeof *j.w),
                     .f = calloc((size_t)n + 1, sizeof *j.f)};
    int32_t *layouts = calloc((size_t)n + 1, sizeof *layouts);
    gmc_status st = j.w && j.f && layouts ? GMC_OK : gmc_fail(diag, GMC_ERR_NOMEM,
                                                              "out of memory");
    for (int i = 0; i < g->n_values && st == GMC_OK; i++) {
        const gmc_value *v = &g->values[i];
        if (v->kind == GMC_V_WEIGHT && v->index >= 0 && v->index < n)
            j.w[v->index] = v;
    }
    for (int i = 0; i < n && st == GMC_OK; i++)
        if (!j.w[i])
            st = gmc_fail(diag, GMC_ERR_SEMANTIC, "manifest index %d has no weight", i);
    gmrt_diag rd;
    gmrt_gguf *src = NULL;
    if (st == GMC_OK && gmrt_gguf_open(o->weights, &src, &rd) != GMRT_OK)
        st = gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.gguf", o->out_dir, name);
    j.src = src;
    if (st == GMC_OK)
        st = write_weights_to(o, path, g, tc, &j, n, layouts, diag);
    r->weight_bytes = j.bytes;
    gmrt_gguf_close(src);
    free(j.w);
    free(j.f);
    free(layouts);
    return st;
}

/* ------------------------------------------------------------ README */

static gmc_status write_readme(const gmc_export_options *o, const char *name,
                               const gmc_graph *g, const gmc_target_config *tc,
                               gmc_diag *diag)
{
    char isa[2048], all[4096];
    cc_flags(tc, false, isa, sizeof isa);
    cc_flags(tc, true, all, sizeof all);
    const char *libs = tc->target->link_libs ? tc->target->link_libs : "";
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_emitf(&b, "# %s — exported by gemmac %s\n\n", name, GMC_VERSION);
    gmc_emitf(&b, "Model `%s` (graph fnv1a64 %016" PRIx64 ") compiled for target `%s` "
                  "(`%s`; CPU features: %s).\n\n", g->model->name, g->hash, tc->target->name,
              tc->triple, tc->features[0] ? tc->features : "none");
    gmc_emitf(&b, "| file | what |\n|---|---|\n"
                  "| `%s.c` | the model's kernels and the gemmac runtime's core, one C file "
                  "(libc, libm and pthreads only) |\n"
                  "| `%s.h` | the API to call it with (the runtime's `gmrt.h`) and the model "
                  "descriptor `gmk_model_entry` |\n"
                  "| `%s.gguf` | the weights, every tensor already in the layout the kernels "
                  "read: loading maps the file, nothing is repacked |\n\n",
              name, name, name);
    gmc_emitf(&b, "## Build\n\nWith your program `app.c` (see gemmac's "
                  "`examples/stream.c`):\n\n```\n%s%s %s.c app.c -lm -lpthread%s%s\n```\n\n",
              cc_line, isa, name, libs[0] ? " " : "", libs);
    gmc_emitf(&b, "The `-m` options are the target's instruction set.  `-ffp-contract=on` "
                  "keeps the\nrounding of gemmac's own builds: GNU C's default (`fast`) "
                  "fuses multiply-adds\nacross statements, which changes the logits' last "
                  "bits and can change a greedy\ntoken.  gemmac itself builds with\n\n"
                  "```\nclang-19 -O2 -fno-math-errno%s %s.c app.c -lm -lpthread%s%s\n```\n\n",
              all, name, libs[0] ? " " : "", libs);
    gmc_emitf(&b, "## Use\n\n```c\n#include \"%s.h\"\n\n"
                  "gmrt_diag d;\ngmrt_session *s;\n"
                  "gmrt_session_opts opts = {.n_threads = 4};\n"
                  "if (!gmrt_cpu_check(GMRT_EXPORT_FEATURES, GMRT_EXPORT_TARGET))\n"
                  "    return 1;\n"
                  "if (gmrt_session_create(gmk_model_entry, \"%s.gguf\", &opts, &s, &d))\n"
                  "    fprintf(stderr, \"%%s\\n\", d.msg);\n```\n\n"
                  "then `gmrt_session_generate` streams a completion through a callback and\n"
                  "`gmrt_session_destroy` frees it all.  The file refuses to load into a model\n"
                  "of another target, graph or layout, naming both.  The thread that calls the\n"
                  "session runs a share of each step's kernels itself and needs\n"
                  "`GMRT_STEP_STACK` (512 KiB) of stack to spare: a main thread or a glibc\n"
                  "thread has it; give a thread you start yourself at least that much (the\n"
                  "session's own threads get twice it).\n", name, name);
    gmc_status st = write_text(o->out_dir, "README.md", &b, diag);
    gmc_strbuf_deinit(&b);
    return st;
}

/* ------------------------------------------------------------ driver */

static gmc_status check_name(const char *name, gmc_diag *diag)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_-") != n)
        return gmc_fail(diag, GMC_ERR_ARG, "--name \"%s\": expected 1 to 64 letters, digits, "
                        "'_' or '-' (it names NAME.c, NAME.h and NAME.gguf)", name);
    return GMC_OK;
}

static gmc_status make_out_dir(const char *dir, gmc_diag *diag)
{
    struct stat sb;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return gmc_fail(diag, GMC_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return gmc_fail(diag, GMC_ERR_IO, "%s: not a directory", dir);
    return GMC_OK;
}

static gmc_status export_in(const gmc_export_options *o, gmc_arena *a, gmc_emit_out *e,
                            gmc_export_result *r, gmc_diag *diag)
{
    gmc_options co = {.graph = o->graph, .target = o->target ? o->target : "host",
                      .max_batch = o->max_batch};
    gmc_graph *g;
    gmc_target_config tc;
    GMC_TRY(gmc_front(&co, a, &g, &tc, NULL, diag));
    char flags[4096];
    gmc_toolchain_flags(&tc, flags, sizeof flags);
    GMC_TRY(gmc_emit(g, &tc, flags, e, diag));
    const char *name = o->name ? o->name : g->model->name;
    GMC_TRY(check_name(name, diag));
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->target, sizeof r->target, "%s", tc.target->name);
    GMC_TRY(make_out_dir(o->out_dir, diag));
    GMC_TRY(write_weights(o, name, g, &tc, r, diag));
    GMC_TRY(write_sources(o, name, g, &tc, e, diag));
    return write_readme(o, name, g, &tc, diag);
}

gmc_status gmc_export(const gmc_export_options *o, gmc_export_result *r, gmc_diag *diag)
{
    memset(r, 0, sizeof *r);
    if (!o->graph || !o->weights || !o->out_dir)
        return gmc_fail(diag, GMC_ERR_ARG, "export needs a graph, --weights and -o DIR");
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_emit_out e;
    gmc_emit_out_init(&e);
    gmc_status s = export_in(o, &a, &e, r, diag);
    gmc_emit_out_deinit(&e);
    gmc_arena_deinit(&a);
    return s;
}
