/*
 * session.c — a loaded model ready to run: weights bound to the manifest,
 * tokenizer, arena, KV cache, thread pool, and the prefill/decode loop.
 *
 * Everything is allocated in gmrt_session_create; eval and generate only
 * index into those buffers (no malloc on the decode path).  Every manifest
 * tensor is checked against the file before any kernel runs
 * (docs/input-checks.md §2.1 check 20).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmk_layout.h"
#include "gmrt.h"
#include "st_bind.h"

struct gmrt_session {
    const gmk_model *m;
    gmrt_gguf *file;
    gmrt_gguf *tok_file;     /* the separate tokenizer GGUF (opts->tokenizer), or NULL */
    gmrt_vocab *vocab;
    gmrt_pool *pool;
    const void **w;          /* n_tensors pointers into the mapping */
    void *converted;         /* safetensors, --requant: converted weights w points into */
    gmrt_safetensors *st;    /* safetensors tensors w points into (the PLE table), or NULL */
    void *repacked;          /* tensors the model reads in another layout */
    uint64_t repacked_bytes; /* their size (gmrt_session_repacked_bytes) */
    bool laid_out;           /* the file holds them in those layouts already */
    unsigned char *arena, *kv;
    size_t kv_len;           /* bytes mapped at kv (alloc_lazy) */
    int32_t n_seqs;          /* sequences, each with its own KV cache */
    uint64_t kv_stride;      /* bytes from one sequence's cache to the next */
    gmk_seq *runs;           /* 2 x n_seqs: a batched step's runs (gmrt_session_batch) */
    int32_t *btoks;          /* n_seqs x max_batch: a batch's tokens in step order */
    gmrt_run *dec;           /* n_seqs: gmrt_session_decode's runs */
    float *logits;           /* logit_rows x n_vocab */
    int32_t logit_rows;
    int32_t *pos;            /* n_seqs: each sequence's position */
    int32_t *ids;            /* n_ctx: sequence 0's prompt and generated ids */
    char *piece;             /* GMRT_PIECE_MAX bytes */
    bool verbose;
    int32_t lookup;          /* manifest index of the per-layer embedding
                              * table, read by rows from the mapping; -1 */
    size_t lookup_row;       /* its row bytes */
};

/* bytes rounded up to a multiple of GMK_ARENA_ALIGN. */
static uint64_t arena_align(uint64_t bytes)
{
    return (bytes + GMK_ARENA_ALIGN - 1) / GMK_ARENA_ALIGN * GMK_ARENA_ALIGN;
}

/* Buffers from this size on (the repacked weights, a large arena) are
 * aligned to and ask for transparent huge pages (a hint: Linux's default
 * "madvise" mode gives them only where asked): decode streams every weight
 * once a step, and in 4 KiB pages each page of it is a TLB miss. */
#define HUGE_PAGE ((uint64_t)2 << 20)

static void *alloc_aligned(uint64_t bytes)
{
    const uint64_t align = bytes >= 8 * HUGE_PAGE ? HUGE_PAGE : GMK_ARENA_ALIGN;
    const uint64_t n = (bytes + align - 1) / align * align;
    if (n > SIZE_MAX) /* a 32-bit machine (wasm32) */
        return NULL;
    void *p = aligned_alloc((size_t)align, n ? (size_t)n : (size_t)align);
#ifdef MADV_HUGEPAGE
    if (p && align == HUGE_PAGE)
        madvise(p, (size_t)n, MADV_HUGEPAGE);
#endif
    if (p)
        memset(p, 0, (size_t)n);
    return p;
}

/* Zeroed memory whose pages become resident only when first written: the KV
 * cache is sized for the whole context, and a run should hold only the
 * positions it reaches (a 26B-A4B plans 5.3 GB of KV for 262144 tokens).
 * Page-aligned; gmrt_session_destroy unmaps it with kv_len. */
static void *alloc_lazy(uint64_t bytes, size_t *out_len)
{
    if (arena_align(bytes) > SIZE_MAX)
        return NULL;
    size_t n = (size_t)arena_align(bytes ? bytes : 1);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *out_len = n;
    return p;
}

static void shape_str(char *buf, size_t len, int n_dims, const int64_t *ne)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n_dims && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

/* Converts the file tensor f into t's dtype at dst (row by row through f32). */
static gmrt_status check_shape(const gmk_tensor *t, const gmrt_gguf_tensor *f,
                               const char *path, gmrt_diag *diag)
{
    bool same = f->n_dims == t->n_dims;
    for (int d = 0; d < t->n_dims && same; d++)
        same = f->ne[d] == t->ne[d];
    if (same)
        return GMRT_OK;
    char a[96], b[96];
    shape_str(a, sizeof a, f->n_dims, f->ne);
    shape_str(b, sizeof b, t->n_dims, t->ne);
    return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                     "%s: tensor \"%s\" has shape %s in the file but %s in the compiled "
                     "model", path, t->name, a, b);
}

static gmrt_status requant_tensor(const gmk_tensor *t, const gmrt_gguf_tensor *f,
                                  unsigned char *dst, float *row, gmrt_diag *diag)
{
    size_t src_row, dst_row;
    gmrt_status st = gmrt_dtype_row_bytes(f->dtype, t->ne[0], &src_row, diag);
    if (st == GMRT_OK)
        st = gmrt_dtype_row_bytes(t->dtype, t->ne[0], &dst_row, diag);
    int64_t rows = 1;
    for (int d = 1; d < t->n_dims; d++)
        rows *= t->ne[d];
    for (int64_t r = 0; r < rows && st == GMRT_OK; r++) {
        gmk_dequantize_row(f->dtype, (const uint8_t *)f->data + (size_t)r * src_row, row,
                           t->ne[0]);
        st = gmrt_quantize_row(t->dtype, row, dst + (size_t)r * dst_row, t->ne[0], diag);
    }
    return st;
}

/* Bytes of t in its compiled dtype, rounded up to GMK_ARENA_ALIGN (its shape
 * equals the file tensor's, whose size gguf.c checked: no overflow). */
static gmrt_status aligned_size(const gmk_tensor *t, uint64_t *out, gmrt_diag *diag)
{
    size_t rb;
    gmrt_status st = gmrt_dtype_row_bytes(t->dtype, t->ne[0], &rb, diag);
    uint64_t b = rb;
    for (int d = 1; d < t->n_dims; d++)
        b *= (uint64_t)t->ne[d];
    *out = arena_align(b);
    return st;
}

/* With --requant: every tensor whose file type differs from the compiled one
 * (bind_weights checked names and shapes) converted into one buffer. */
static gmrt_status requant_weights(gmrt_session *s, const gmrt_gguf_tensor **f, gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    uint64_t total = 0;
    int64_t widest = 0;
    int n = 0, first = -1;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const gmk_tensor *t = &m->tensors[i];
        if (f[i]->dtype == t->dtype)
            continue;
        if (!gmrt_dtype_supported(f[i]->dtype))
            return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED,
                             "tensor \"%s\": cannot requantize from %s", t->name,
                             gmrt_dtype_name(f[i]->dtype));
        uint64_t b;
        gmrt_status st = aligned_size(t, &b, diag);
        if (st != GMRT_OK)
            return st;
        total += b;
        widest = t->ne[0] > widest ? t->ne[0] : widest;
        first = first < 0 ? i : first;
        n++;
    }
    if (n == 0)
        return GMRT_OK;
    fprintf(stderr, "note: --requant: converting %d tensors from the file's types to the "
                    "compiled ones (first: %s %s -> %s)\n", n, m->tensors[first].name,
            gmrt_dtype_name(f[first]->dtype), gmrt_dtype_name(m->tensors[first].dtype));
    unsigned char *buf = total <= SIZE_MAX ? alloc_aligned(total) : NULL;
    float *row = malloc((size_t)widest * sizeof *row);
    if (!buf || !row) {
        free(buf);
        free(row);
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory requantizing %llu B of weights",
                         (unsigned long long)total);
    }
    s->converted = buf;
    gmrt_status st = GMRT_OK;
    for (int32_t i = 0; i < m->n_tensors && st == GMRT_OK; i++) {
        const gmk_tensor *t = &m->tensors[i];
        if (f[i]->dtype == t->dtype)
            continue;
        uint64_t b = 0;
        st = aligned_size(t, &b, diag);
        if (st == GMRT_OK)
            st = requant_tensor(t, f[i], buf, row, diag);
        s->w[i] = buf;
        buf += b;
    }
    free(row);
    return st;
}

/* Whether the file was laid out for this model (GMRT_KEY_LAYOUT_TARGET):
 * the same target and graph hash, else a mismatch naming both. */
static gmrt_status check_laid_out(gmrt_session *s, const char *path, gmrt_diag *diag)
{
    s->laid_out = gmrt_gguf_has_key(s->file, GMRT_KEY_LAYOUT_TARGET);
    if (!s->laid_out)
        return GMRT_OK;
    const char *target, *graph;
    const int32_t *of;
    uint64_t n;
    gmrt_status st = gmrt_gguf_get_str(s->file, GMRT_KEY_LAYOUT_TARGET, &target, diag);
    if (st == GMRT_OK)
        st = gmrt_gguf_get_str(s->file, GMRT_KEY_LAYOUT_GRAPH, &graph, diag);
    if (st == GMRT_OK)
        st = gmrt_gguf_get_i32s(s->file, GMRT_KEY_LAYOUT_OF, &of, &n, diag);
    if (st != GMRT_OK)
        return st;
    if (n != (uint64_t)gmrt_gguf_n_tensors(s->file))
        return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: key \"%s\" has %llu layouts for %lld "
                         "tensors", path, GMRT_KEY_LAYOUT_OF, (unsigned long long)n,
                         (long long)gmrt_gguf_n_tensors(s->file));
    if (strcmp(target, s->m->target) != 0 || strcmp(graph, s->m->graph_hash) != 0)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "%s: the weights are laid out for target %s, graph %s, but the "
                         "compiled model %s is target %s, graph %s (export the model again, "
                         "or load the original GGUF)", path, target, graph, s->m->name,
                         s->m->target, s->m->graph_hash);
    return GMRT_OK;
}

/* For a laid-out file: tensor t's file entry f must be in t's layout and,
 * in a panel layout, hold whole panels (ne[1] rounded up to them); t_out
 * is t with the shape the file then has. */
static gmrt_status laid_out_shape(const gmrt_session *s, const gmk_tensor *t,
                                  const gmrt_gguf_tensor *f, const char *path, gmk_tensor *t_out,
                                  gmrt_diag *diag)
{
    *t_out = *t;
    if (!s->laid_out)
        return GMRT_OK;
    const int32_t *of;
    uint64_t n;
    if (gmrt_gguf_get_i32s(s->file, GMRT_KEY_LAYOUT_OF, &of, &n, diag) != GMRT_OK)
        return GMRT_ERR_FORMAT;
    /* the reader keeps the tensor table as one array, in file order */
    int32_t layout = of[f - gmrt_gguf_tensor_at(s->file, 0)];
    if (layout != t->layout)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%s\" is laid out as %s "
                         "(layout %d) in the file but the compiled model %s reads %s", path,
                         t->name, gmk_layout_name(layout), layout >> GMK_LAYOUT_SHIFT,
                         s->m->name, gmk_layout_name(t->layout));
    if (layout != GMK_LAYOUT_PACKED && t->n_dims == 2) {
        int64_t r = gmk_layout_rows(layout);
        t_out->ne[1] = (t->ne[1] + r - 1) / r * r;
    }
    return GMRT_OK;
}

/* Binds every manifest tensor to the file, checking name, dtype and shape. */
static gmrt_status bind_weights(gmrt_session *s, const char *path, bool requant,
                                gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    gmrt_status st = check_laid_out(s, path, diag);
    if (st != GMRT_OK)
        return st;
    const gmrt_gguf_tensor **files = calloc((size_t)m->n_tensors, sizeof *files);
    if (!files)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < m->n_tensors && st == GMRT_OK; i++) {
        const gmk_tensor *t = &m->tensors[i];
        const gmrt_gguf_tensor *f = gmrt_gguf_find_tensor(s->file, t->name);
        files[i] = f;
        if (!f)
            st = gmrt_fail(diag, GMRT_ERR_MISMATCH,
                           "%s: tensor \"%s\" is missing (the compiled model %s "
                           "needs %d tensors)", path, t->name, m->name, m->n_tensors);
        else if (f->dtype != t->dtype && s->laid_out)
            st = gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%s\" is %s in the file "
                           "but %s in the compiled model (a laid-out file is not converted: "
                           "export it again)", path, t->name, gmrt_dtype_name(f->dtype),
                           gmrt_dtype_name(t->dtype));
        else if (f->dtype != t->dtype && !requant)
            st = gmrt_fail(diag, GMRT_ERR_MISMATCH,
                           "%s: tensor \"%s\" is %s in the file but %s in the "
                           "compiled model (fix quant: in the graph YAML, or convert at "
                           "load with --requant)", path, t->name, gmrt_dtype_name(f->dtype),
                           gmrt_dtype_name(t->dtype));
        else {
            gmk_tensor shape;
            st = laid_out_shape(s, t, f, path, &shape, diag);
            if (st == GMRT_OK)
                st = check_shape(&shape, f, path, diag);
        }
        if (st == GMRT_OK)
            s->w[i] = f->data;
    }
    if (st == GMRT_OK)
        st = requant_weights(s, files, diag);
    free(files);
    if (st != GMRT_OK)
        return st;
    if (s->verbose && gmrt_gguf_n_tensors(s->file) > m->n_tensors)
        fprintf(stderr, "note: %s has %lld tensors; the model uses %d\n", path,
                (long long)gmrt_gguf_n_tensors(s->file), m->n_tensors);
    return GMRT_OK;
}

/* Rows a repacking pass takes at a time before it drops their file pages:
 * a multiple of every layout's panel rows. */
#define REPACK_SLICE_BYTES (32u << 20)
#define REPACK_SLICE_ALIGN 64

/* Drops the whole pages of the mapped bytes [lo, hi) from this process's
 * memory (the mapping stays; a page read again comes back from the file). */
static void drop_pages(const unsigned char *lo, const unsigned char *hi)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t pg = (uintptr_t)page;
    uintptr_t a = ((uintptr_t)lo + pg - 1) / pg * pg, b = (uintptr_t)hi / pg * pg;
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Tensor t from its packed rows at src into dst in t's layout, in slices
 * of rows; with drop (src is the file mapping), each slice's pages are
 * dropped once copied, so that the process never holds a whole tensor
 * twice: the E2B's 428 MB head did (peak RSS 1.34 × what the generation
 * after the load needed; docs/gemma4.md). */
static void pack_tensor(unsigned char *dst, const unsigned char *src, const gmk_tensor *t,
                        bool drop)
{
    const int64_t rows = gmk_layout_all_rows(t->n_dims, t->ne), n_in = t->ne[0];
    const uint64_t row_bytes = gmk_layout_bytes(GMK_LAYOUT_PACKED, t->dtype, 1, n_in);
    int64_t slice = (int64_t)(REPACK_SLICE_BYTES / (row_bytes ? row_bytes : 1));
    slice = slice < REPACK_SLICE_ALIGN ? REPACK_SLICE_ALIGN
                                       : slice / REPACK_SLICE_ALIGN * REPACK_SLICE_ALIGN;
    for (int64_t r0 = 0; r0 < rows; r0 += slice) {
        const int64_t n = rows - r0 < slice ? rows - r0 : slice;
        gmk_layout_pack(dst + gmk_layout_bytes(t->layout, t->dtype, r0, n_in),
                        src + (uint64_t)r0 * row_bytes, t->layout, t->dtype, n, n_in);
        if (drop)
            drop_pages(src, src + (uint64_t)(r0 + n) * row_bytes);
    }
}

/* Bytes of tensor t in layout. */
static uint64_t weight_bytes(const gmk_tensor *t, int layout)
{
    return gmk_layout_bytes(layout, t->dtype, gmk_layout_all_rows(t->n_dims, t->ne), t->ne[0]);
}

/* Whether t, read from the file's rows, is copied beside the repacked
 * weights anyway: a small tensor (norms, routers) shares its first and last
 * pages with the large ones around it, and the page cache maps whole
 * folios, so reading it made up to 2 MiB of its repacked neighbours
 * resident again (150 MB of the E2B's 1 GB of layers; docs/gemma4.md). */
static bool copied_beside(const gmk_tensor *t)
{
    return t->layout == GMK_LAYOUT_PACKED && weight_bytes(t, GMK_LAYOUT_PACKED) <= (4u << 20) &&
           strcmp(t->name, "per_layer_token_embd.weight") != 0;
}

/*
 * Copies every tensor whose manifest layout is not the file's packed rows
 * into one buffer in that layout (gmk_layout.h), with the small tensors
 * that stay in rows (copied_beside), and points w at the copies.  The
 * mapped originals of a GGUF file are then dropped from memory (the mapping
 * stays; a page read again comes back from the file).
 */
static gmrt_status repack_weights(gmrt_session *s, bool mapped, gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    uint64_t total = 0;
    if (s->laid_out) { /* bind_weights checked every layout: the mapping is read as is */
        if (s->verbose)
            fprintf(stderr, "note: the weights are laid out for %s already: nothing "
                            "repacked\n", m->target);
        return GMRT_OK;
    }
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const gmk_tensor *t = &m->tensors[i];
        if (t->layout == GMK_LAYOUT_PACKED)
            continue;
        uint64_t b = gmk_layout_for(t->layout, t->n_dims, t->ne) == t->layout
                         ? gmk_layout_bytes(t->layout, t->dtype,
                                            gmk_layout_all_rows(t->n_dims, t->ne), t->ne[0])
                         : 0;
        if (b == 0)
            return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                             "tensor \"%s\": the compiled model %s reads it in layout %d, "
                             "which this runtime cannot make from %s (recompile the model)",
                             t->name, m->name, t->layout >> GMK_LAYOUT_SHIFT,
                             gmrt_dtype_name(t->dtype));
        total += arena_align(b);
    }
    if (total == 0)
        return GMRT_OK;
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (copied_beside(&m->tensors[i]))
            total += arena_align(weight_bytes(&m->tensors[i], GMK_LAYOUT_PACKED));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned char *buf = total <= SIZE_MAX ? alloc_aligned(total) : NULL;
    if (!buf)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory repacking %llu B of weights",
                         (unsigned long long)total);
    s->repacked = buf;
    s->repacked_bytes = total;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const gmk_tensor *t = &m->tensors[i];
        if (t->layout == GMK_LAYOUT_PACKED && !copied_beside(t))
            continue;
        const gmrt_gguf_tensor *f = mapped ? gmrt_gguf_find_tensor(s->file, t->name) : NULL;
        /* still the mapped original (not --requant's copy)? */
        pack_tensor(buf, s->w[i], t, f && f->data == s->w[i]);
        s->w[i] = buf;
        buf += arena_align(weight_bytes(t, t->layout));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (s->verbose)
        fprintf(stderr, "note: repacked %.1f MiB of weights for the target's layout in %.2f s\n",
                (double)total / 1048576.0,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return GMRT_OK;
}

static gmrt_status check_arch(gmrt_session *s, const char *path, gmrt_diag *diag)
{
    const char *arch;
    if (gmrt_gguf_get_str(s->file, "general.architecture", &arch, diag) != GMRT_OK)
        return GMRT_ERR_FORMAT;
    if (strcmp(arch, s->m->arch) != 0)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "%s: architecture is \"%s\" but the compiled model %s is \"%s\"",
                         path, arch, s->m->name, s->m->arch);
    if (gmrt_vocab_size(s->vocab) != s->m->n_vocab)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "%s: vocabulary has %d tokens but the compiled model expects %d",
                         path, gmrt_vocab_size(s->vocab), s->m->n_vocab);
    return GMRT_OK;
}

/* GGUF files start with "GGUF"; anything else (a directory, a .safetensors
 * file, an index .json) goes to the safetensors loader.  A path that is
 * neither a directory nor a regular file (a FIFO, a device) is refused
 * here, without opening it: open() of a FIFO blocks. */
/* Loads the GGUF file, its tokenizer and checks the architecture. */
static gmrt_status open_gguf(gmrt_session *s, const char *weights, gmrt_diag *diag)
{
    gmrt_status st = gmrt_gguf_open(weights, &s->file, diag);
    if (st == GMRT_OK)
        st = gmrt_vocab_from_gguf(s->file, &s->vocab, diag);
    if (st == GMRT_OK)
        st = check_arch(s, weights, diag);
    return st;
}

/* Whether the safetensors checkpoint at weights (a directory, or a file
 * in one) has a file called name beside its weights. */
static bool beside(const char *weights, const char *name)
{
    char path[4200];
    struct stat st;
    bool dir = stat(weights, &st) == 0 && S_ISDIR(st.st_mode);
    const char *slash = strrchr(weights, '/');
    int n = dir ? (int)strlen(weights) : slash ? (int)(slash - weights) : 1;
    snprintf(path, sizeof path, "%.*s/%s", n, dir || slash ? weights : ".", name);
    return stat(path, &st) == 0;
}

/* The vocabulary of safetensors weights: from the GGUF file tok if given
 * (its size must be the model's), else none, which need refuses here,
 * before any weight is read or converted, saying how to give one. */
static gmrt_status open_tokenizer(gmrt_session *s, const char *weights, const char *tok,
                                  bool need, gmrt_diag *diag)
{
    if (!tok && !need)
        return GMRT_OK;
    struct stat sb;
    if (!tok && stat(weights, &sb) != 0) /* not a checkpoint without a tokenizer */
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: %s", weights, strerror(errno));
    if (!tok) {
        const char *has = beside(weights, "tokenizer.json")    ? "tokenizer.json"
                          : beside(weights, "tokenizer.model") ? "tokenizer.model"
                                                               : NULL;
        char held[128] = "";
        if (has)
            snprintf(held, sizeof held, " (the checkpoint's %s is not read)", has);
        return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED,
                         "no tokenizer: %s is a safetensors checkpoint, and gemmac reads "
                         "vocabularies only from GGUF files%s; give one with --tokenizer "
                         "FILE.gguf (a GGUF of the same model, e.g. from llama.cpp's "
                         "convert_hf_to_gguf.py), or run a GGUF of the model instead",
                         weights, held);
    }
    if (stat(tok, &sb) != 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "tokenizer %s: %s", tok, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return gmrt_fail(diag, GMRT_ERR_IO, "tokenizer %s: is %s, not a regular file", tok,
                         gmrt_file_kind((unsigned)sb.st_mode));
    gmrt_file_format fmt;
    gmrt_status st = gmrt_file_sniff(tok, GMRT_FORMAT_GGUF, &fmt, diag);
    if (st != GMRT_OK) {
        char why[sizeof diag->msg];
        snprintf(why, sizeof why, "%s", diag->msg);
        return gmrt_fail(diag, st, "tokenizer %s (gemmac reads vocabularies only from GGUF "
                         "files)", why);
    }
    st = gmrt_gguf_open(tok, &s->tok_file, diag);
    if (st == GMRT_OK)
        st = gmrt_vocab_from_gguf(s->tok_file, &s->vocab, diag);
    if (st == GMRT_OK && gmrt_vocab_size(s->vocab) != s->m->n_vocab)
        st = gmrt_fail(diag, GMRT_ERR_MISMATCH, "tokenizer %s: vocabulary has %d tokens "
                       "but the compiled model expects %d", tok, gmrt_vocab_size(s->vocab),
                       s->m->n_vocab);
    return st;
}

/* The page-aligned span of len bytes at p, as madvise wants it. */
static void advise_span(const void *p, size_t len, int advice)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || len == 0)
        return;
    uintptr_t lo = (uintptr_t)p / (uintptr_t)page * (uintptr_t)page;
    madvise((void *)lo, (uintptr_t)p + len - lo, advice);
}

/* The per-layer embedding table (Gemma 3n/4) stays in the file mapping and
 * a step reads one row of it per token; s->lookup says which tensor.  Its
 * rows are read in token order, at random: without MADV_RANDOM a cold row's
 * page fault reads the device's whole read-ahead window around it (8 MiB on
 * the VM of docs/gemma4.md, 8-31 ms a decode token) where one row is 9.5 KB.
 * Hints only: failures are ignored. */
static gmrt_status find_lookup_table(gmrt_session *s, gmrt_diag *diag)
{
    s->lookup = -1;
    for (int32_t i = 0; i < s->m->n_tensors; i++) {
        const gmk_tensor *t = &s->m->tensors[i];
        if (strcmp(t->name, "per_layer_token_embd.weight") == 0 &&
            t->layout == GMK_LAYOUT_PACKED) {
            s->lookup = i;
            gmrt_status st = gmrt_dtype_row_bytes(t->dtype, t->ne[0], &s->lookup_row, diag);
            if (st == GMRT_OK)
                advise_span(s->w[i], s->lookup_row * (size_t)t->ne[1], MADV_RANDOM);
            return st;
        }
    }
    return GMRT_OK;
}

gmrt_status gmrt_session_create(const gmk_model *m, const char *weights,
                                const gmrt_session_opts *opts, gmrt_session **out,
                                gmrt_diag *diag)
{
    *out = NULL;
    if (m->abi_version != GMK_ABI_VERSION)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH,
                         "model %s was generated for kernel ABI %u, this runtime is %u "
                         "(recompile it)", m->name, m->abi_version, GMK_ABI_VERSION);
    gmrt_session *s = calloc(1, sizeof *s);
    if (!s)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    s->m = m;
    s->verbose = opts->verbose;
    gmrt_file_format fmt;
    gmrt_status st = gmrt_file_sniff(weights, GMRT_FORMAT_GGUF | GMRT_FORMAT_SAFETENSORS |
                                                  GMRT_FORMAT_JSON | GMRT_FORMAT_DIR,
                                     &fmt, diag);
    bool gguf = fmt == GMRT_FORMAT_GGUF;
    if (st == GMRT_OK && gguf && opts->tokenizer)
        st = gmrt_fail(diag, GMRT_ERR_ARG, "a separate tokenizer (%s) is for safetensors "
                       "weights; %s is a GGUF file with its own", opts->tokenizer, weights);
    if (st == GMRT_OK && gguf)
        st = open_gguf(s, weights, diag);
    else if (st == GMRT_OK)
        st = open_tokenizer(s, weights, opts->tokenizer, opts->need_tokenizer, diag);
    s->n_seqs = opts->n_seqs > 0 ? opts->n_seqs : 1;
    s->kv_stride = arena_align(m->kv_bytes);
    if (st == GMRT_OK && s->n_seqs > GMRT_MAX_SEQS)
        st = gmrt_fail(diag, GMRT_ERR_ARG, "%d sequences asked; a session holds at most %d",
                       s->n_seqs, GMRT_MAX_SEQS);
    if (st == GMRT_OK && s->kv_stride > UINT64_MAX / (uint64_t)s->n_seqs)
        st = gmrt_fail(diag, GMRT_ERR_LIMIT, "%d KV caches of %llu B overflow", s->n_seqs,
                       (unsigned long long)m->kv_bytes);
    if (st == GMRT_OK) {
        s->w = calloc((size_t)m->n_tensors, sizeof *s->w);
        s->arena = alloc_aligned(m->arena_bytes);
        s->kv = alloc_lazy(s->kv_stride * (uint64_t)s->n_seqs, &s->kv_len);
        s->pos = calloc((size_t)s->n_seqs, sizeof *s->pos);
        s->runs = calloc(2 * (size_t)s->n_seqs, sizeof *s->runs);
        s->btoks = calloc((size_t)s->n_seqs * (size_t)m->max_batch, sizeof *s->btoks);
        s->dec = calloc((size_t)s->n_seqs, sizeof *s->dec);
        s->logit_rows = 1;
        s->logits = alloc_aligned((uint64_t)m->n_vocab * sizeof(float));
        s->ids = calloc((size_t)m->n_ctx, sizeof *s->ids);
        s->piece = malloc(GMRT_PIECE_MAX);
        if (!s->w || !s->arena || !s->kv || !s->logits || !s->ids || !s->piece || !s->pos ||
            !s->runs || !s->btoks || !s->dec)
            st = gmrt_fail(diag, GMRT_ERR_NOMEM,
                           "out of memory allocating the arena (%llu B) and KV cache "
                           "(%d x %llu B)", (unsigned long long)m->arena_bytes, s->n_seqs,
                           (unsigned long long)m->kv_bytes);
    }
    if (st == GMRT_OK)
        st = gguf ? bind_weights(s, weights, opts->requant, diag)
                  : gmrt_st_bind(m, weights, s->verbose, s->w, &s->converted, &s->st,
                                 diag);
    if (st == GMRT_OK)
        st = repack_weights(s, gguf, diag);
    if (st == GMRT_OK)
        st = find_lookup_table(s, diag);
    if (st == GMRT_OK)
        st = gmrt_pool_create(opts->n_threads, &s->pool, diag);
    if (st != GMRT_OK) {
        gmrt_session_destroy(s);
        return st;
    }
    *out = s;
    return GMRT_OK;
}

void gmrt_session_destroy(gmrt_session *s)
{
    if (!s)
        return;
    gmrt_pool_destroy(s->pool);
    gmrt_vocab_destroy(s->vocab);
    gmrt_gguf_close(s->file);
    gmrt_gguf_close(s->tok_file);
    free(s->w);
    free(s->converted);
    gmrt_safetensors_close(s->st);
    free(s->repacked);
    free(s->arena);
    if (s->kv)
        munmap(s->kv, s->kv_len);
    free(s->logits);
    free(s->ids);
    free(s->piece);
    free(s->pos);
    free(s->runs);
    free(s->btoks);
    free(s->dec);
    free(s);
}

const gmrt_vocab *gmrt_session_vocab(const gmrt_session *s) { return s->vocab; }
int32_t gmrt_session_pos(const gmrt_session *s) { return s->pos[0]; }
int32_t gmrt_session_n_seqs(const gmrt_session *s) { return s->n_seqs; }
int32_t gmrt_session_max_batch(const gmrt_session *s) { return s->m->max_batch; }
gmrt_pool *gmrt_session_pool(gmrt_session *s) { return s->pool; }
uint64_t gmrt_session_repacked_bytes(const gmrt_session *s) { return s->repacked_bytes; }

int32_t gmrt_session_seq_pos(const gmrt_session *s, int32_t seq)
{
    return seq >= 0 && seq < s->n_seqs ? s->pos[seq] : -1;
}

const void *gmrt_session_kv(const gmrt_session *s, size_t *out_bytes)
{
    *out_bytes = (size_t)s->m->kv_bytes;
    return s->kv;
}

bool gmrt_session_has_chat_template(const gmrt_session *s)
{
    const gmrt_gguf *f = s->file ? s->file : s->tok_file;
    return f && gmrt_gguf_has_key(f, "tokenizer.chat_template");
}
void gmrt_session_reset(gmrt_session *s) { s->pos[0] = 0; }

void gmrt_session_seq_reset(gmrt_session *s, int32_t seq)
{
    if (seq >= 0 && seq < s->n_seqs)
        s->pos[seq] = 0;
}

/* A ring of window + max_batch rows overwrites the row of position p with
 * position p + window + max_batch.  Position n attends back to n - window
 * + 1 (gmk_generic.h), whose row survives while the sequence has evaluated
 * at most max_batch + 1 positions past n, whatever the window; the bound
 * taken, max_batch, holds as well for a window counted one row wider. */
int32_t gmrt_session_seq_keep(const gmrt_session *s, int32_t seq, int32_t n)
{
    if (seq < 0 || seq >= s->n_seqs || n <= 0)
        return 0;
    if (n >= s->pos[seq])
        return s->pos[seq];
    return s->pos[seq] - n <= s->m->max_batch ? n : 0;
}

int32_t gmrt_session_seq_truncate(gmrt_session *s, int32_t seq, int32_t n)
{
    int32_t keep = gmrt_session_seq_keep(s, seq, n);
    if (seq >= 0 && seq < s->n_seqs)
        s->pos[seq] = keep;
    return keep;
}

/* Grows the logits buffer to rows rows; only eval with all_logits (not the
 * decode loop) ever needs more than one. */
static gmrt_status reserve_logits(gmrt_session *s, int32_t rows, gmrt_diag *diag)
{
    if (rows <= s->logit_rows)
        return GMRT_OK;
    float *p = alloc_aligned((uint64_t)rows * (uint64_t)s->m->n_vocab * sizeof(float));
    if (!p)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory for %d rows of logits", rows);
    free(s->logits);
    s->logits = p;
    s->logit_rows = rows;
    return GMRT_OK;
}

/* Asks the kernel to read the lookup table's rows of the tokens ahead
 * (MADV_WILLNEED): the rows depend only on the ids, known before any layer
 * runs, so a long prompt's later chunks do not wait for cold pages, and a
 * step's own row (three pages) is one read instead of three faults in a
 * row.  A hint: failures are ignored. */
static void prefetch_rows(const gmrt_session *s, const int32_t *tokens, size_t n)
{
    if (s->lookup < 0)
        return;
    const unsigned char *base = s->w[s->lookup];
    for (size_t i = 0; i < n; i++)
        advise_span(base + (size_t)tokens[i] * s->lookup_row, s->lookup_row, MADV_WILLNEED);
}

/* Every id below n_vocab. */
static gmrt_status check_ids(const gmk_model *m, const int32_t *tokens, size_t n,
                             gmrt_diag *diag)
{
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            return gmrt_fail(diag, GMRT_ERR_ARG, "token %zu: id %d is not in [0, %d)",
                             i, tokens[i], m->n_vocab);
    return GMRT_OK;
}

/* One forward call on every thread. */
static void forward(gmrt_session *s, const int32_t *tokens, int32_t n, int32_t pos,
                    int32_t n_logits, float *logits, int32_t *argmax, int32_t n_seqs,
                    unsigned char *kv)
{
    gmk_ctx c = {
        .w = s->w,
        .arena = s->arena,
        .kv = kv,
        .tokens = tokens,
        .n_tokens = n,
        .pos = pos,
        .n_logits = n_logits,
        .logits = logits,
        .argmax_out = argmax,
        .n_seqs = n_seqs,
        .seqs = n_seqs > 0 ? s->runs : NULL,
    };
    if (argmax)
        *argmax = -1;
    gmrt_pool_run(s->pool, s->m->forward, &c);
}

/* gmrt_session_seq_eval; with argmax non-NULL (and not all_logits) the last
 * step asks the model for the greedy id instead of logits (gmk_ctx). */
static gmrt_status eval_steps(gmrt_session *s, int32_t seq, const int32_t *tokens, size_t n,
                              bool all_logits, int32_t *argmax,
                              const float **out_logits, gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    *out_logits = NULL;
    if (seq < 0 || seq >= s->n_seqs)
        return gmrt_fail(diag, GMRT_ERR_ARG, "sequence %d: the session has %d", seq,
                         s->n_seqs);
    if (n == 0)
        return gmrt_fail(diag, GMRT_ERR_ARG, "nothing to evaluate (0 tokens)");
    if (n > (size_t)(m->n_ctx - s->pos[seq]))
        return gmrt_fail(diag, GMRT_ERR_ARG,
                         "%zu tokens at position %d exceed the context of %d", n,
                         s->pos[seq], m->n_ctx);
    gmrt_status st = check_ids(m, tokens, n, diag);
    if (st != GMRT_OK)
        return st;
    if (all_logits && reserve_logits(s, (int32_t)n, diag) != GMRT_OK)
        return GMRT_ERR_NOMEM;
    prefetch_rows(s, tokens, n);
    for (size_t done = 0; done < n;) {
        int32_t chunk = (int32_t)(n - done < (size_t)m->max_batch ? n - done
                                                                  : (size_t)m->max_batch);
        bool last = done + (size_t)chunk == n;
        forward(s, tokens + done, chunk, s->pos[seq], all_logits ? chunk : (last ? 1 : 0),
                s->logits + (all_logits ? done * (size_t)m->n_vocab : 0),
                last && !all_logits ? argmax : NULL, 0, s->kv + (size_t)seq * s->kv_stride);
        s->pos[seq] += chunk;
        done += (size_t)chunk;
    }
    *out_logits = s->logits;
    return GMRT_OK;
}

gmrt_status gmrt_session_eval(gmrt_session *s, const int32_t *tokens, size_t n,
                              bool all_logits, const float **out_logits,
                              gmrt_diag *diag)
{
    return eval_steps(s, 0, tokens, n, all_logits, NULL, out_logits, diag);
}

gmrt_status gmrt_session_seq_eval(gmrt_session *s, int32_t seq, const int32_t *tokens,
                                  size_t n, bool all_logits, const float **out_logits,
                                  gmrt_diag *diag)
{
    return eval_steps(s, seq, tokens, n, all_logits, NULL, out_logits, diag);
}

/* The checks of gmrt_session_batch: nothing runs unless all pass.  Sets
 * *out_rows to the number of runs that want logits. */
static gmrt_status check_batch(const gmrt_session *s, const gmrt_run *runs, size_t n_runs,
                               const int32_t *tokens, int32_t *out_rows, gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    if (n_runs == 0 || n_runs > (size_t)s->n_seqs)
        return gmrt_fail(diag, GMRT_ERR_ARG, "%zu runs for a batched step of the %d "
                         "sequences (one run each)", n_runs, s->n_seqs);
    size_t at = 0;
    *out_rows = 0;
    for (size_t i = 0; i < n_runs; i++) {
        int32_t q = runs[i].seq, n = runs[i].n;
        if (q < 0 || q >= s->n_seqs)
            return gmrt_fail(diag, GMRT_ERR_ARG, "run %zu: sequence %d of %d", i, q,
                             s->n_seqs);
        if (n < 1 || n > m->max_batch)
            return gmrt_fail(diag, GMRT_ERR_ARG, "run %zu: %d tokens (1 .. %d)", i, n,
                             m->max_batch);
        if (n > m->n_ctx - s->pos[q])
            return gmrt_fail(diag, GMRT_ERR_ARG, "sequence %d is full (%d positions)", q,
                             m->n_ctx);
        for (size_t j = 0; j < i; j++)
            if (runs[j].seq == q)
                return gmrt_fail(diag, GMRT_ERR_ARG, "sequence %d appears twice", q);
        gmrt_status st = check_ids(m, tokens + at, (size_t)n, diag);
        if (st != GMRT_OK)
            return st;
        at += (size_t)n;
        *out_rows += runs[i].logits;
    }
    return GMRT_OK;
}

/* A part of a batch in step order: len tokens from tokens[src] for
 * sequence seq at positions pos .. (a whole run, the run less its last
 * token, or that last token alone). */
typedef struct batch_part {
    int32_t seq, len, pos;
    size_t src;
} batch_part;

/*
 * Lays the runs out in the order a forward pass needs: the model writes
 * logits for the last n_logits tokens of a step, so every token whose
 * logits are wanted goes last.  First the runs without them and the other
 * tokens of the runs with them, then the last token of each run with them,
 * in run order (a run's last token after the rest of it, so that it sees
 * their K/V, written before any attention reads the cache).  Fills parts
 * (2 n_runs at most) and s->btoks; returns the number of parts.
 */
static int32_t batch_layout(gmrt_session *s, const gmrt_run *runs, size_t n_runs,
                            const int32_t *tokens, batch_part *parts)
{
    int32_t np = 0;
    size_t at = 0;
    for (size_t i = 0; i < n_runs; i++) {
        int32_t len = runs[i].n - (runs[i].logits ? 1 : 0);
        if (len > 0)
            parts[np++] = (batch_part){runs[i].seq, len, s->pos[runs[i].seq], at};
        at += (size_t)runs[i].n;
    }
    at = 0;
    for (size_t i = 0; i < n_runs; i++) {
        at += (size_t)runs[i].n;
        if (runs[i].logits)
            parts[np++] = (batch_part){runs[i].seq, 1, s->pos[runs[i].seq] + runs[i].n - 1,
                                       at - 1};
    }
    size_t t = 0;
    for (int32_t p = 0; p < np; p++) {
        memcpy(s->btoks + t, tokens + parts[p].src, (size_t)parts[p].len * sizeof *tokens);
        t += (size_t)parts[p].len;
    }
    return np;
}

gmrt_status gmrt_session_batch(gmrt_session *s, const gmrt_run *runs, size_t n_runs,
                               const int32_t *tokens, const float **out_logits,
                               gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    *out_logits = NULL;
    int32_t rows;
    gmrt_status st = check_batch(s, runs, n_runs, tokens, &rows, diag);
    if (st != GMRT_OK || (rows && (st = reserve_logits(s, rows, diag)) != GMRT_OK))
        return st;
    batch_part parts[2 * GMRT_MAX_SEQS];
    int32_t np = batch_layout(s, runs, n_runs, tokens, parts);
    int32_t total = 0, first_row = 0; /* the logit tokens are the last `rows` of total */
    for (int32_t p = 0; p < np; p++)
        total += parts[p].len;
    prefetch_rows(s, s->btoks, (size_t)total);
    /* Forward passes of at most max_batch tokens; a part may straddle two. */
    int32_t p = 0, used = 0; /* parts[p]'s first `used` tokens already ran */
    for (int32_t done = 0; done < total;) {
        int32_t chunk = total - done < m->max_batch ? total - done : m->max_batch, k = 0;
        for (int32_t t = 0; t < chunk; k++) {
            int32_t n = parts[p].len - used < chunk - t ? parts[p].len - used : chunk - t;
            s->runs[k] = (gmk_seq){.t0 = t, .n = n, .pos = parts[p].pos + used,
                                   .kv_off = (uint64_t)parts[p].seq * s->kv_stride};
            t += n;
            used += n;
            if (used == parts[p].len)
                p++, used = 0;
        }
        int32_t n_logits = done + chunk - (total - rows);
        n_logits = n_logits < 0 ? 0 : n_logits > chunk ? chunk : n_logits;
        forward(s, s->btoks + done, chunk, 0, n_logits,
                s->logits + (size_t)first_row * (size_t)m->n_vocab, NULL, k, s->kv);
        first_row += n_logits;
        done += chunk;
    }
    for (size_t i = 0; i < n_runs; i++)
        s->pos[runs[i].seq] += runs[i].n;
    *out_logits = rows ? s->logits : NULL;
    return GMRT_OK;
}

gmrt_status gmrt_session_decode(gmrt_session *s, const int32_t *seqs, const int32_t *tokens,
                                size_t n, const float **out_logits, gmrt_diag *diag)
{
    *out_logits = NULL;
    if (n == 0 || n > (size_t)s->n_seqs)
        return gmrt_fail(diag, GMRT_ERR_ARG, "%zu tokens for a batched step of the %d "
                         "sequences (one token each)", n, s->n_seqs);
    for (size_t i = 0; i < n; i++)
        s->dec[i] = (gmrt_run){.seq = seqs[i], .n = 1, .logits = true};
    return gmrt_session_batch(s, s->dec, n, tokens, out_logits, diag);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool gmrt_stream_stdout(void *user, int32_t id, const char *piece, size_t len)
{
    (void)id;
    if (fwrite(piece, 1, len, stdout) == len && fflush(stdout) == 0)
        return true;
    if (user && !*(int *)user)
        *(int *)user = errno ? errno : EIO;
    return false; /* nobody can read the rest */
}

/* Generation needs a vocabulary: to render pieces, and to know <eos>. */
static gmrt_status need_vocab(const gmrt_session *s, gmrt_diag *diag)
{
    if (s->vocab)
        return GMRT_OK;
    return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED,
                     "no tokenizer: these weights (safetensors) carry no vocabulary, "
                     "so a text prompt cannot be tokenized; evaluate token ids "
                     "(gmrt_session_eval), give a GGUF tokenizer "
                     "(gmrt_session_opts.tokenizer) or use a GGUF file");
}

/* Prefills the n_prompt ids at s->ids + s->pos[0], then samples. */
static gmrt_status generate(gmrt_session *s, size_t n_prompt, const gmrt_sampler_params *sp,
                            int32_t max_tokens, gmrt_stream_fn *stream, void *user,
                            int32_t *out_ids, size_t cap_ids, gmrt_gen_stats *stats,
                            gmrt_diag *diag)
{
    const gmk_model *m = s->m;
    gmrt_status st;
    gmrt_sampler *smp;
    if ((st = gmrt_sampler_create(sp, m->n_vocab, &smp, diag)) != GMRT_OK)
        return st;
    stats->n_prompt = n_prompt;
    double t0 = now_s();
    const float *logits;
    /* Pure greedy sampling needs only the argmax, which the model can fuse
     * into its head; -1 after a step means it wrote logits instead. */
    bool greedy = sp->temperature == 0.0f &&
                  (sp->repeat_penalty == 1.0f || sp->repeat_last_n == 0);
    int32_t best = -1;
    st = eval_steps(s, 0, s->ids + s->pos[0], n_prompt, false, greedy ? &best : NULL,
                    &logits, diag);
    double t1 = now_s();
    stats->prefill_s = t1 - t0;
    int32_t eot = gmrt_vocab_eot(s->vocab), eos = gmrt_vocab_eos(s->vocab);
    for (int32_t i = 0; st == GMRT_OK && i < max_tokens; i++) {
        int32_t id = best >= 0 ? best
                               : gmrt_sampler_sample(smp, s->logits, s->ids, (size_t)s->pos[0]);
        if (out_ids && stats->n_gen < cap_ids)
            out_ids[stats->n_gen] = id;
        stats->n_gen++;
        if (id == eos || id == eot) {
            stats->stop_reason = 1;
            break;
        }
        size_t len = gmrt_token_to_piece(s->vocab, id, s->piece, GMRT_PIECE_MAX);
        if (stream && !stream(user, id, s->piece, len < GMRT_PIECE_MAX ? len : GMRT_PIECE_MAX)) {
            stats->stop_reason = 2;
            break;
        }
        if (s->pos[0] >= m->n_ctx || i + 1 == max_tokens) {
            stats->stop_reason = s->pos[0] >= m->n_ctx ? 3 : 0;
            break;
        }
        s->ids[s->pos[0]] = id;
        st = eval_steps(s, 0, &s->ids[s->pos[0]], 1, false, greedy ? &best : NULL, &logits,
                        diag);
        stats->n_decode++;
    }
    stats->decode_s = now_s() - t1;
    gmrt_sampler_destroy(smp);
    return st;
}

/* What both generate calls check first: a vocabulary, and the room left
 * in sequence 0's context. */
static gmrt_status gen_begin(gmrt_session *s, gmrt_gen_stats *stats, size_t *room,
                             gmrt_diag *diag)
{
    memset(stats, 0, sizeof *stats);
    *room = (size_t)(s->m->n_ctx - s->pos[0]);
    return need_vocab(s, diag);
}

static gmrt_status too_long(const gmrt_session *s, size_t n, size_t room, gmrt_diag *diag)
{
    return gmrt_fail(diag, GMRT_ERR_ARG, "the prompt is %zu tokens; %zu fit in the context "
                     "of %d", n, room, s->m->n_ctx);
}

gmrt_status gmrt_session_generate(gmrt_session *s, const char *prompt,
                                  const gmrt_sampler_params *sp, int32_t max_tokens,
                                  gmrt_stream_fn *stream, void *user, int32_t *out_ids,
                                  size_t cap_ids, gmrt_gen_stats *stats,
                                  gmrt_diag *diag)
{
    size_t room, n = 0;
    gmrt_status st = gen_begin(s, stats, &room, diag);
    if (st == GMRT_OK)
        st = gmrt_tokenize(s->vocab, prompt, strlen(prompt),
                           gmrt_vocab_add_bos(s->vocab) && s->pos[0] == 0, false,
                           s->ids + s->pos[0], room, &n, diag);
    if (st == GMRT_ERR_LIMIT)
        return too_long(s, n, room, diag);
    if (st != GMRT_OK)
        return st;
    return generate(s, n, sp, max_tokens, stream, user, out_ids, cap_ids, stats, diag);
}

gmrt_status gmrt_session_generate_ids(gmrt_session *s, const int32_t *ids, size_t n,
                                      const gmrt_sampler_params *sp, int32_t max_tokens,
                                      gmrt_stream_fn *stream, void *user, int32_t *out_ids,
                                      size_t cap_ids, gmrt_gen_stats *stats,
                                      gmrt_diag *diag)
{
    size_t room;
    gmrt_status st = gen_begin(s, stats, &room, diag);
    if (st != GMRT_OK)
        return st;
    if (n > room)
        return too_long(s, n, room, diag);
    /* eval_steps checks every id against the vocabulary. */
    memcpy(s->ids + s->pos[0], ids, n * sizeof *ids);
    return generate(s, n, sp, max_tokens, stream, user, out_ids, cap_ids, stats, diag);
}

