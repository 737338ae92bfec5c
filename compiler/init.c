/*
 * init.c — `gemmac init`: seeded random weights for any graph, as a GGUF.
 *
 * The file has the tensor names, dtypes and shapes the compiled model
 * expects, the GGUF metadata llama.cpp would write for the architecture, and
 * a synthetic SentencePiece vocabulary (the Gemma special tokens at their
 * real ids, all 256 byte tokens, then printable pieces), so a variant with no
 * released checkpoint can be compiled, run, benchmarked and compared.
 *
 * Values are uniform with the variance of a standard initialisation: matmul
 * weights ~ 1/sqrt(fan_in), the embedding ~ 1/sqrt(D) (so that the scaled
 * embedding has unit RMS), norm weights 1 ± 0.1 (GGUF stores 1 + w).  Each
 * tensor's stream is seeded from the seed and the tensor's name, so a tensor
 * does not change when another is added.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "graph.h"
#include "gmrt_tools.h"
#include "target.h"

typedef struct init_ctx {
    const gmc_graph *g;
    uint64_t seed;
    bool verbose;
    bool progress;  /* a one-line counter on a terminal */
    float *row;     /* one f32 row, max ne0 of any weight */
} init_ctx;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float uniform(uint64_t *s)
{
    return (float)((double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static const gmc_value *weight_by_index(const gmc_graph *g, int64_t index)
{
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].kind == GMC_V_WEIGHT && g->values[i].index == index)
            return &g->values[i];
    return NULL;
}

/* Gemma 4's global layers rotate only part of their pairs (proportional
 * RoPE): llama.cpp reads that from rope_freqs.weight, a divisor per pair of
 * the global head (1, or 1e30 for a pair that stays), which the compiled
 * model does not need (its tables have it); init writes it after the
 * model's weights so that llama.cpp can run the same file. */
static bool has_rope_freqs(const gmc_model *m)
{
    return m->family == GMC_FAMILY_GEMMA4;
}

static int64_t rope_freqs_len(const gmc_model *m)
{
    return (m->global.head_dim ? m->global.head_dim : m->head_dim) / 2;
}

static gmrt_status fill(void *user, int64_t index, const char *name, void *dst,
                        size_t nbytes, gmrt_diag *diag)
{
    init_ctx *ic = user;
    const gmc_model *m = ic->g->model;
    if (index == ic->g->n_weights && has_rope_freqs(m)) {
        int64_t n = rope_freqs_len(m), rotated = (int64_t)(m->rope_global.fraction * (double)n);
        for (int64_t i = 0; i < n; i++)
            ((float *)dst)[i] = i < rotated ? 1.0f : 1e30f;
        return GMRT_OK;
    }
    const gmc_value *v = weight_by_index(ic->g, index);
    if (!v)
        return gmrt_fail(diag, GMRT_ERR_ARG, "no weight %lld", (long long)index);
    /* norms and scales (ffn_gate_inp.scale, layer_output_scale) near 1 */
    bool norm = strstr(name, "norm") != NULL || strstr(name, "scale") != NULL;
    bool embed = strcmp(name, "token_embd.weight") == 0;
    float amp = norm ? 0.1f
                : embed ? sqrtf(3.0f / (float)ic->g->model->d_model)
                        : sqrtf(3.0f / (float)v->ne[0]);
    uint64_t s = ic->seed ^ gmc_hash_bytes(GMC_HASH_INIT, name, strlen(name));
    int64_t rows = v->ne[1] * (v->n_dims == 3 ? v->ne[2] : 1);
    size_t row_bytes = nbytes / (size_t)rows;
    unsigned char *out = dst;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < v->ne[0]; k++)
            ic->row[k] = (norm ? 1.0f : 0.0f) + amp * uniform(&s);
        gmrt_status st = gmrt_quantize_row(v->dtype, ic->row, out + (size_t)r * row_bytes,
                                           v->ne[0], diag);
        if (st != GMRT_OK)
            return st;
    }
    if (ic->verbose)
        fprintf(stderr, "  %-32s %-5s %zu B\n", name, gmrt_dtype_name(v->dtype), nbytes);
    else if (ic->progress)
        fprintf(stderr, "\rinit: tensor %lld of %d", (long long)index + 1, ic->g->n_weights);
    return GMRT_OK;
}

/* ------------------------------------------------------------ vocabulary */

typedef struct vocab_build {
    char **piece;
    float *score;
    int32_t *type;
    int32_t n, cap;
} vocab_build;

static void vb_add(vocab_build *vb, const char *text, int32_t type)
{
    if (vb->n >= vb->cap)
        return;
    vb->piece[vb->n] = strdup(text);
    vb->score[vb->n] = type == GMRT_TOKEN_NORMAL ? -(float)vb->n : 0.0f;
    vb->type[vb->n] = type;
    vb->n++;
}

/* Gemma's special ids (docs/models.md#gguf-tokenizer): PAD 0, EOS 1, BOS 2, UNK 3, MASK 4, and
 * the turn markers at 105/106 (Gemma 3) or 106/107 (Gemma 1/2). */
static void vb_fill(vocab_build *vb, gmc_family family)
{
    static const char *const first[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>"};
    int32_t sot = family >= GMC_FAMILY_GEMMA3 ? 105 : 106;
    char buf[32];
    for (int i = 0; i < 5; i++)
        vb_add(vb, first[i], i == 3 ? GMRT_TOKEN_UNKNOWN : GMRT_TOKEN_CONTROL);
    while (vb->n < sot) {
        snprintf(buf, sizeof buf, "<unused%d>", vb->n - 5);
        vb_add(vb, buf, GMRT_TOKEN_CONTROL);
    }
    vb_add(vb, "<start_of_turn>", GMRT_TOKEN_CONTROL);
    vb_add(vb, "<end_of_turn>", GMRT_TOKEN_CONTROL);
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        vb_add(vb, buf, GMRT_TOKEN_BYTE);
    }
    vb_add(vb, "\xe2\x96\x81", GMRT_TOKEN_NORMAL); /* ▁ */
    for (int c = 0x21; c < 0x7f; c++) {
        snprintf(buf, sizeof buf, "%c", c);
        vb_add(vb, buf, GMRT_TOKEN_NORMAL);
    }
    static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
    for (int i = 0; i < 26; i++) {
        snprintf(buf, sizeof buf, "\xe2\x96\x81%c", letters[i]);
        vb_add(vb, buf, GMRT_TOKEN_NORMAL);
    }
    for (int i = 0; i < 26 && vb->n < vb->cap; i++)
        for (int j = 0; j < 26; j++) {
            snprintf(buf, sizeof buf, "%c%c", letters[i], letters[j]);
            vb_add(vb, buf, GMRT_TOKEN_NORMAL);
        }
    for (int k = 0; vb->n < vb->cap; k++) {
        snprintf(buf, sizeof buf, "<synthetic%d>", k);
        vb_add(vb, buf, GMRT_TOKEN_UNUSED);
    }
}

static void vb_free(vocab_build *vb)
{
    for (int32_t i = 0; i < vb->n; i++)
        free(vb->piece[i]);
    free(vb->piece);
    free(vb->score);
    free(vb->type);
}

/* ------------------------------------------------------------ metadata */

static const char *arch_name(gmc_family f)
{
    static const char *const names[] = {"", "gemma", "gemma2", "gemma3", "gemma3n", "gemma4"};
    return names[f];
}

#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)

/* A per-layer key: one u32 when every layer has the same value, else an
 * INT32 array (llama.cpp's get_key_or_arr reads both). */
static gmrt_status set_per_layer(gmrt_gguf_writer *w, const char *key, const int32_t *v,
                                 int32_t n)
{
    bool same = true;
    for (int32_t i = 1; i < n; i++)
        same &= v[i] == v[0];
    return same ? gmrt_gguf_writer_set_u32(w, key, (uint32_t)v[0])
                : gmrt_gguf_writer_set_i32s(w, key, v, (uint64_t)n);
}

/* The gemma4 keys llama.cpp's loader reads (docs/models.md#gguf-keys):
 * per-layer FFN widths and KV heads, global (key_length) and local (_swa)
 * head dims, RoPE bases and dimensions, the sliding pattern, KV sharing,
 * per-layer embeddings and experts.  The keys written before (context,
 * widths, eps, window, final soft-cap) stay; these override two of them. */
static gmrt_status set_gemma4_metadata(gmrt_gguf_writer *w, const gmc_model *m)
{
    const char *arch = "gemma4";
    char key[128];
    int32_t n = m->n_layers, hd[2] = {m->head_dim, m->head_dim};
    int32_t *ffn = malloc((size_t)n * sizeof *ffn), *kvh = malloc((size_t)n * sizeof *kvh);
    bool *swa = malloc((size_t)n * sizeof *swa);
    gmrt_status s = ffn && kvh && swa ? GMRT_OK : GMRT_ERR_NOMEM;
    for (int32_t i = 0; !s && i < n; i++) {
        const gmc_layer *l = &m->layers[i];
        ffn[i] = l->ffn_dim;
        kvh[i] = l->n_kv_heads;
        swa[i] = l->kind == GMC_ATTN_LOCAL;
        hd[l->kind == GMC_ATTN_GLOBAL] = l->head_dim;
    }
    if (!s) s = set_per_layer(w, KEY("feed_forward_length"), ffn, n);
    if (!s) s = set_per_layer(w, KEY("attention.head_count_kv"), kvh, n);
    if (!s) s = gmrt_gguf_writer_set_bools(w, KEY("attention.sliding_window_pattern"), swa, (uint64_t)n);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.key_length_swa"), (uint32_t)hd[0]);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.value_length_swa"), (uint32_t)hd[0]);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)hd[1]);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("rope.dimension_count_swa"), (uint32_t)hd[0]);
    if (!s) s = gmrt_gguf_writer_set_f32(w, KEY("rope.freq_base_swa"), (float)m->rope_local.theta);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.shared_kv_layers"), (uint32_t)m->kv_shared_layers);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("embedding_length_per_layer_input"), (uint32_t)m->ple_dim);
    if (!s && m->n_experts) {
        s = gmrt_gguf_writer_set_u32(w, KEY("expert_count"), (uint32_t)m->n_experts);
        if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("expert_used_count"), (uint32_t)m->n_experts_used);
        if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)m->expert_dim);
    }
    free(ffn);
    free(kvh);
    free(swa);
    return s;
}

static gmrt_status set_metadata(gmrt_gguf_writer *w, const gmc_model *m, vocab_build *vb)
{
    const char *arch = arch_name(m->family);
    char key[128];
    gmrt_status s = gmrt_gguf_writer_set_str(w, "general.architecture", arch);
    if (!s) s = gmrt_gguf_writer_set_str(w, "general.name", m->name);
    if (!s) s = gmrt_gguf_writer_set_str(w, "general.type", "gemmac-init");
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)m->context);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)m->d_model);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)m->n_layers);
    bool g4 = m->family == GMC_FAMILY_GEMMA4; /* per-layer values: set_gemma4_metadata */
    if (!s && !g4) s = gmrt_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)m->ffn_dim);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)m->n_heads);
    if (!s && !g4) s = gmrt_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)m->n_kv_heads);
    int32_t hd = m->global.head_dim ? m->global.head_dim : m->head_dim; /* global layers' */
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)hd);
    if (!s) s = gmrt_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)hd);
    if (!s) s = gmrt_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)m->norm_eps);
    if (!s) s = gmrt_gguf_writer_set_f32(w, KEY("rope.freq_base"), (float)m->rope_global.theta);
    if (!s && m->window > 0)
        s = gmrt_gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)m->window);
    if (!s && m->attn_softcap > 0)
        s = gmrt_gguf_writer_set_f32(w, KEY("attn_logit_softcapping"), (float)m->attn_softcap);
    if (!s && m->final_softcap > 0)
        s = gmrt_gguf_writer_set_f32(w, KEY("final_logit_softcapping"), (float)m->final_softcap);
    if (!s && m->family == GMC_FAMILY_GEMMA4)
        s = set_gemma4_metadata(w, m);
    if (!s) s = gmrt_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!s) s = gmrt_gguf_writer_set_strs(w, "tokenizer.ggml.tokens", (const char *const *)vb->piece, NULL, (uint64_t)vb->n);
    if (!s) s = gmrt_gguf_writer_set_f32s(w, "tokenizer.ggml.scores", vb->score, (uint64_t)vb->n);
    if (!s) s = gmrt_gguf_writer_set_i32s(w, "tokenizer.ggml.token_type", vb->type, (uint64_t)vb->n);
    if (!s) s = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    if (!s) s = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    if (!s) s = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    if (!s) s = gmrt_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    if (!s) s = gmrt_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (!s) s = gmrt_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    return s;
}

static gmrt_status add_tensors(gmrt_gguf_writer *w, const gmc_graph *g, int64_t *max_ne0)
{
    *max_ne0 = 0;
    for (int64_t i = 0; i < g->n_weights; i++) {
        const gmc_value *v = weight_by_index(g, i);
        gmrt_status s = gmrt_gguf_writer_add_tensor(w, v->name, v->dtype, v->n_dims, v->ne);
        if (s != GMRT_OK)
            return s;
        if (v->ne[0] > *max_ne0)
            *max_ne0 = v->ne[0];
    }
    if (has_rope_freqs(g->model)) {
        int64_t ne[4] = {rope_freqs_len(g->model), 1, 1, 1};
        return gmrt_gguf_writer_add_tensor(w, "rope_freqs.weight", GMK_DTYPE_F32, 1, ne);
    }
    return GMRT_OK;
}

static gmc_status write_file(const gmc_graph *g, const char *path, uint64_t seed,
                             bool verbose, gmc_diag *diag)
{
    const gmc_model *m = g->model;
    vocab_build vb = {0};
    vb.cap = m->vocab;
    vb.piece = calloc((size_t)vb.cap, sizeof *vb.piece);
    vb.score = calloc((size_t)vb.cap, sizeof *vb.score);
    vb.type = calloc((size_t)vb.cap, sizeof *vb.type);
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    init_ctx ic = {g, seed, verbose, !verbose && isatty(2), NULL};
    gmrt_diag rd = {0};
    gmc_status st = GMC_OK;
    int64_t max_ne0 = 0;
    if (!vb.piece || !vb.score || !vb.type || !w) {
        st = gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
        goto done;
    }
    vb_fill(&vb, m->family);
    if (set_metadata(w, m, &vb) != GMRT_OK || add_tensors(w, g, &max_ne0) != GMRT_OK) {
        st = gmc_fail(diag, GMC_ERR_RUNTIME, "%s: cannot describe the weights", path);
        goto done;
    }
    ic.row = malloc((size_t)max_ne0 * sizeof *ic.row);
    if (!ic.row) {
        st = gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (gmrt_gguf_writer_write(w, path, fill, &ic, &rd) != GMRT_OK)
        st = gmc_fail(diag, GMC_ERR_RUNTIME, "%s", rd.msg);
    if (ic.progress)
        fputc('\n', stderr);
done:
    free(ic.row);
    gmrt_gguf_writer_destroy(w);
    vb_free(&vb);
    return st;
}

gmc_status gmc_init_weights(const char *graph, const char *path, uint64_t seed,
                            bool verbose, gmc_diag *diag)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_graph *g;
    gmc_target_config tc; /* the weights are the same for every target */
    gmc_status st = gmc_front(&(gmc_options){.graph = graph, .target = "generic"}, &a, &g,
                              &tc, NULL, diag);
    if (st == GMC_OK && g->model->vocab < 512)
        st = gmc_fail(diag, GMC_ERR_SEMANTIC,
                      "%s: gemmac init needs a vocab of at least 512 for its "
                      "synthetic tokenizer (the model has %d)", graph, g->model->vocab);
    for (int i = 0; st == GMC_OK && i < g->n_values; i++) {
        const gmc_value *v = &g->values[i];
        /* Every weight type the runtime reads, it can also write
         * (gmrt_quantize_row; the K-quants through quantize.c). */
        if (v->kind == GMC_V_WEIGHT && !gmrt_dtype_supported(v->dtype))
            st = gmc_fail(diag, GMC_ERR_SEMANTIC,
                          "%s: gemmac init cannot write %s weights (%s)", graph,
                          gmrt_dtype_name(v->dtype), v->name);
    }
    if (st == GMC_OK)
        st = write_file(g, path, seed, verbose, diag);
    gmc_arena_deinit(&a);
    return st;
}
