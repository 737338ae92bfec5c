/*
 * st_bind.c — binds a compiled model's weights from a Hugging Face
 * safetensors checkpoint (the GGUF path is session.c's bind_weights).
 *
 * The manifest names tensors the GGUF way (blk.3.attn_q.weight, ggml shape
 * order); this file maps each name to the Hugging Face one, checks the shape
 * (HF [out, in] row-major is ggml ne [in, out]; a 3-D expert stack
 * [E, out, in] is {in, out, E}), and converts the values into the manifest's
 * dtype in one owned, 64-byte aligned buffer: F32/F16/BF16 are widened to f32
 * row by row, norm weights get the +1 that GGUF files have folded in and HF
 * checkpoints do not (docs/models.md#norm-plus-one: Gemma 1/2/3 compute x·(1+w); Gemma 3n
 * and 4 compute x·w and get none), and the row is then stored or quantized
 * (gmrt_quantize_row).  The per-layer embedding table (Gemma 3n/4) stays in
 * the mapping when its dtype is already the compiled one (use_mapping).
 * Gemma 3n's AltUp projections are separate HF matrices that GGUF stacks
 * into one 3-D tensor (stacked_names); they are converted slice by slice.
 * config.json beside the weights must name the compiled architecture, and
 * every checkpoint tensor must be used, so a checkpoint with more layers or
 * another layout is refused instead of half-loaded.
 */
#include "st_bind.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gmk_quant.h"

#define CONFIG_MAX (1u << 20)   /* bytes of config.json */

/* ---------------------------------------------------------------- names */

/* A GGUF tensor name and its Hugging Face counterpart, both whole (with the
 * .weight / .scale suffix: HF's buffers and grouped experts have none). */
typedef struct name_pair {
    const char *gguf, *hf;
} name_pair;

/* Per block: "blk.N.<gguf>" -> "<prefix>layers.N.<hf>" (docs/models.md#gguf-tensors). */
static const name_pair block_names[] = {
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
};

/* The per-layer embedding's gate, projection and norm: Gemma 3n and 4. */
static const name_pair ple_block_names[] = {
    {"inp_gate.weight", "per_layer_input_gate.weight"},
    {"proj.weight", "per_layer_projection.weight"},
    {"post_norm.weight", "post_per_layer_input_norm.weight"},
};

/* Gemma 3n only (tests/fixtures/conformance/gemma3n-README.md §2-3): AltUp's
 * router, its norm and coefficients (the correct scale is a parameter
 * without .weight), LAuReL's low-rank pair and its norm. */
static const name_pair gemma3n_block_names[] = {
    {"altup_correct_coef.weight", "altup.correction_coefs.weight"},
    {"altup_correct_scale.weight", "altup.correct_output_scale"},
    {"altup_predict_coef.weight", "altup.prediction_coefs.weight"},
    {"altup_router.weight", "altup.modality_router.weight"},
    {"altup_router_norm.weight", "altup.router_norm.weight"},
    {"laurel_l.weight", "laurel.linear_left.weight"},
    {"laurel_r.weight", "laurel.linear_right.weight"},
    {"laurel_post_norm.weight", "laurel.post_laurel_norm.weight"},
};

/* Gemma 4 only (tests/fixtures/conformance/gemma4-README.md §2-3).  The
 * layer scalar, the router's scales and the grouped experts are HF
 * parameters or buffers without a .weight suffix.  The expert stacks keep
 * their memory order: HF [E, 2I, D] is ggml {D, 2I, E} (gate rows, then up
 * rows, per expert), HF [E, D, I] is {I, D, E}. */
static const name_pair gemma4_block_names[] = {
    {"layer_output_scale.weight", "layer_scalar"},
    {"ffn_gate_inp.weight", "router.proj.weight"},
    {"ffn_gate_inp.scale", "router.scale"},
    {"ffn_down_exps.scale", "router.per_expert_scale"},
    {"ffn_gate_up_exps.weight", "experts.gate_up_proj"},
    {"ffn_down_exps.weight", "experts.down_proj"},
    {"pre_ffw_norm_2.weight", "pre_feedforward_layernorm_2.weight"},
    {"post_ffw_norm_1.weight", "post_feedforward_layernorm_1.weight"},
    {"post_ffw_norm_2.weight", "post_feedforward_layernorm_2.weight"},
};

/* Outside the blocks: "<gguf>" -> "<prefix><hf>".  The per-layer
 * embedding tensors exist only in Gemma 3n and Gemma 4 E-models. */
static const name_pair global_names[] = {
    {"token_embd.weight", "embed_tokens.weight"},
    {"output_norm.weight", "norm.weight"},
    {"per_layer_token_embd.weight", "embed_tokens_per_layer.weight"},
    {"per_layer_model_proj.weight", "per_layer_model_projection.weight"},
    {"per_layer_proj_norm.weight", "per_layer_projection_norm.weight"},
};

/* Gemma 3n's AltUp projections: GGUF {D, D, N-1} is the HF matrices
 * "<prefix><hf>.0.weight" .. ".<N-2>.weight" ([D, D] each), slice k of
 * the stack being matrix k (gemma3n-README.md §3). */
static const name_pair stacked_names[] = {
    {"altup_proj.weight", "altup_projections"},
    {"altup_unembd_proj.weight", "altup_unembed_projections"},
};

#define N_OF(a) (sizeof a / sizeof a[0])

/* Gemma 3n and 4 compute norms as x·w and have per-layer embeddings. */
static bool is_g3n(const char *arch) { return strcmp(arch, "gemma3n") == 0; }
static bool is_g4(const char *arch) { return strcmp(arch, "gemma4") == 0; }

static const char *hf_name_of(const name_pair *t, size_t n, const char *gguf)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(gguf, t[i].gguf) == 0)
            return t[i].hf;
    return NULL;
}

/* The HF name of a block tensor "<suffix>" of architecture arch.  In
 * Gemma 1 the HF post_attention_layernorm is the pre-FFN norm, and there
 * are no post-norms (docs/models.md#gemma1). */
static const char *hf_block_name(const char *arch, const char *suffix)
{
    bool gemma1 = strcmp(arch, "gemma") == 0;
    if (gemma1 && strcmp(suffix, "ffn_norm.weight") == 0)
        return "post_attention_layernorm.weight";
    if (gemma1 && strcmp(suffix, "post_attention_norm.weight") == 0)
        return NULL;
    const char *hf = hf_name_of(block_names, N_OF(block_names), suffix);
    if (!hf && (is_g3n(arch) || is_g4(arch)))
        hf = hf_name_of(ple_block_names, N_OF(ple_block_names), suffix);
    if (!hf && is_g3n(arch))
        hf = hf_name_of(gemma3n_block_names, N_OF(gemma3n_block_names), suffix);
    if (!hf && is_g4(arch))
        hf = hf_name_of(gemma4_block_names, N_OF(gemma4_block_names), suffix);
    return hf;
}

/* Writes the HF name of a GGUF tensor name into buf; false if there is no
 * counterpart. */
static bool hf_name(const char *arch, const char *prefix, const char *gguf, char *buf,
                    size_t cap)
{
    int n = -1;
    if (strncmp(gguf, "blk.", 4) == 0) {
        char *end;
        long layer = strtol(gguf + 4, &end, 10);
        const char *hf = end > gguf + 4 && *end == '.' ? hf_block_name(arch, end + 1) : NULL;
        if (hf)
            n = snprintf(buf, cap, "%slayers.%ld.%s", prefix, layer, hf);
    } else {
        size_t ng = is_g3n(arch) || is_g4(arch) ? N_OF(global_names) : 2;
        const char *hf = hf_name_of(global_names, ng, gguf);
        if (hf)
            n = snprintf(buf, cap, "%s%s", prefix, hf);
    }
    return n > 0 && (size_t)n < cap;
}

/* The HF base name of a stacked GGUF tensor (Gemma 3n), or NULL. */
static const char *stacked_name(const char *arch, const char *gguf)
{
    return is_g3n(arch) ? hf_name_of(stacked_names, N_OF(stacked_names), gguf) : NULL;
}

/* Whether the checkpoint stores norm weights as w for x·(1 + w), which
 * GGUF files fold (docs/models.md#norm-plus-one): Gemma 1-3.  Gemma 3n and 4 compute x·w, so
 * their HF and GGUF norm weights are the same numbers. */
static float norm_shift(const char *arch, const char *gguf)
{
    size_t n = strlen(gguf);
    bool norm = n >= 11 && strcmp(gguf + n - 11, "norm.weight") == 0;
    return norm && !is_g3n(arch) && !is_g4(arch) ? 1.0f : 0.0f;
}

/* ---------------------------------------------------------- config.json */

/* Reads dir/config.json (the HF model description) and checks model_type
 * against the compiled architecture; *prefix gets the tensor-name prefix
 * of the text model. */
static gmrt_status check_config(const gmk_model *m, const char *dir, bool *multimodal,
                                gmrt_diag *diag)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return gmrt_fail(diag, GMRT_ERR_ARG, "%s: path too long", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: cannot open (a safetensors checkpoint "
                         "needs its config.json beside it to check the architecture)",
                         path);
    FILE *f;
    gmrt_status fs = gmrt_file_fopen_read(path, &f, diag); /* never a FIFO */
    if (fs != GMRT_OK)
        return fs;
    char *text = malloc(CONFIG_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_MAX + 1, f) : 0;
    fclose(f);
    if (!text)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    if (len > CONFIG_MAX) {
        free(text);
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%s: larger than %u bytes", path, CONFIG_MAX);
    }
    gmrt_json *doc;
    gmrt_status st = gmrt_json_parse(text, len, path, NULL, &doc, diag);
    free(text);
    if (st != GMRT_OK)
        return st;
    const gmrt_json_value *mt = gmrt_json_get(gmrt_json_root(doc), "model_type");
    /* The multimodal wrappers (gemma3, gemma3n, gemma4) nest the text model. */
    static const char *const types[][2] = {
        {"gemma", "gemma"}, {"gemma2", "gemma2"}, {"gemma3_text", "gemma3"}, {"gemma3", "gemma3"},
        {"gemma3n_text", "gemma3n"}, {"gemma3n", "gemma3n"}, {"gemma4_text", "gemma4"},
        {"gemma4", "gemma4"},
    };
    const char *arch = NULL, *type = mt && mt->kind == GMRT_JSON_STRING ? mt->u.s.p : NULL;
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(type, types[i][0]) == 0)
            arch = types[i][1];
    if (!type)
        st = gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: no \"model_type\" string", path);
    else if (!arch)
        st = gmrt_fail(diag, GMRT_ERR_UNSUPPORTED, "%s: model_type \"%.80s\" is not a "
                       "Gemma 1-4 text model (gemma, gemma2, gemma3_text, gemma3, "
                       "gemma3n_text, gemma3n, gemma4_text, gemma4)",
                       path, type);
    else if (strcmp(arch, m->arch) != 0)
        st = gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: model_type \"%s\" is architecture "
                       "%s but the compiled model %s is %s", path, type, arch, m->name,
                       m->arch);
    *multimodal = type && (strcmp(type, "gemma3") == 0 || strcmp(type, "gemma3n") == 0 ||
                           strcmp(type, "gemma4") == 0);
    gmrt_json_destroy(doc);
    return st;
}

/* ----------------------------------------------------------- conversion */

/* Element i of a row of an F32/F16/BF16 tensor at an unaligned address. */
static float load_elem(int32_t dtype, const unsigned char *p, int64_t i)
{
    if (dtype == GMK_DTYPE_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return dtype == GMK_DTYPE_F16 ? gmk_f16_to_f32(h) : gmk_bf16_to_f32(h);
}

static void hf_shape_str(char *buf, size_t len, int n, const int64_t *v, bool reverse)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRId64, i ? ", " : "",
                              v[reverse ? n - 1 - i : i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

/*
 * Whether h is Gemma 3n's per-layer embedding table with fewer rows than
 * the compiled vocabulary: the released checkpoints have 262144 rows
 * (vocab_size_per_layer_input) for 262400 tokens.  The missing rows (the
 * audio and image ids) are zero, as in llama.cpp's converter-padded table;
 * transformers reads row 0 for them instead (gemma3n-README.md §4.1).
 */
static bool ple_padded(const char *arch, const gmk_tensor *t, const gmrt_st_tensor *h)
{
    return is_g3n(arch) && strcmp(t->name, "per_layer_token_embd.weight") == 0 &&
           t->n_dims == 2 && h->n_dims == 2 && h->shape[1] == t->ne[0] &&
           h->shape[0] < t->ne[1];
}

/* Checks that the HF tensor's shape, reversed, is the manifest's ne. */
static gmrt_status check_hf_shape(const char *arch, const char *path, const gmk_tensor *t,
                               const gmrt_st_tensor *h, gmrt_diag *diag)
{
    bool same = h->n_dims == t->n_dims;
    for (int d = 0; same && d < t->n_dims; d++)
        same = h->shape[h->n_dims - 1 - d] == t->ne[d];
    if (same || ple_padded(arch, t, h))
        return GMRT_OK;
    char a[128], b[128];
    hf_shape_str(a, sizeof a, h->n_dims, h->shape, false);
    hf_shape_str(b, sizeof b, t->n_dims, t->ne, true);
    return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%s\" (%s) has shape %s but "
                     "the compiled model needs %s", path, h->name, t->name, a, b);
}

/* Converts every row of h into t's dtype at dst, adding shift to every
 * value first (the norm +1); rows that h lacks (ple_padded) are zero. */
static gmrt_status convert(const gmk_tensor *t, const gmrt_st_tensor *h, float shift,
                           unsigned char *dst, size_t row_bytes, float *row, gmrt_diag *diag)
{
    const int64_t ne0 = t->ne[0];
    int64_t rows = 1;
    for (int d = 1; d < t->n_dims; d++)
        rows *= t->ne[d];
    const size_t src_row = (size_t)ne0 * (h->dtype == GMK_DTYPE_F32 ? 4 : 2);
    const unsigned char *src = h->data;
    const int64_t have = (int64_t)(h->nbytes / src_row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < ne0; i++)
            row[i] = r < have ? load_elem(h->dtype, src + (size_t)r * src_row, i) + shift : 0;
        gmrt_status st = gmrt_quantize_row(t->dtype, row, dst + (size_t)r * row_bytes,
                                           ne0, diag);
        if (st != GMRT_OK)
            return st;
    }
    return GMRT_OK;
}

/*
 * Whether manifest tensor t is read straight from the checkpoint's mapping
 * instead of being converted: the per-layer embedding table (Gemma 4
 * E-models), which graph.c only looks rows up in and the GGUF route leaves
 * in the mapped file (4.7 GB in bf16 for E2B), when the checkpoint stores
 * it in the compiled dtype at an address aligned for its elements.  Every
 * other tensor is converted into the owned buffer, as is the table in any
 * other dtype.
 */
static bool use_mapping(const gmk_tensor *t, const gmrt_st_tensor *h)
{
    size_t align = h->dtype == GMK_DTYPE_F32 ? 4 : 2;
    return strcmp(t->name, "per_layer_token_embd.weight") == 0 && h->dtype == t->dtype &&
           (uintptr_t)h->data % align == 0 && h->n_dims == 2 && h->shape[0] == t->ne[1];
}

/* Byte size of t in its dtype, overflow-checked; *row_bytes one row. */
static gmrt_status tensor_bytes(const gmk_tensor *t, size_t *row_bytes, uint64_t *total,
                                gmrt_diag *diag)
{
    gmrt_diag inner = {0};
    gmrt_status st = gmrt_dtype_row_bytes(t->dtype, t->ne[0], row_bytes, &inner);
    if (st != GMRT_OK)
        return gmrt_fail(diag, st, "tensor %s: %s", t->name, inner.msg);
    uint64_t b = *row_bytes;
    for (int d = 1; d < t->n_dims; d++) {
        if (t->ne[d] < 0 || (t->ne[d] && b > UINT64_MAX / (uint64_t)t->ne[d]))
            return gmrt_fail(diag, GMRT_ERR_LIMIT, "tensor %s: byte size overflows", t->name);
        b *= (uint64_t)t->ne[d];
    }
    *total = b;
    return GMRT_OK;
}

/* Picks the prefix under which the text model's tensors live: "model." for
 * text checkpoints; the multimodal Gemma 3 ones nest it. */
static const char *text_prefix(const gmrt_safetensors *st)
{
    static const char *const prefixes[] = {"model.", "model.language_model.",
                                           "language_model.model."};
    char name[128];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
        if (gmrt_safetensors_find(st, name))
            return prefixes[i];
    }
    return prefixes[0];
}

/* Every checkpoint tensor must have been used, except the (tied) LM head
 * and, in a multimodal checkpoint, everything outside the text model. */
static gmrt_status check_unused(const gmrt_safetensors *st, const bool *used,
                                const char *prefix, bool multimodal, const char *path,
                                gmrt_diag *diag)
{
    for (int64_t i = 0; i < gmrt_safetensors_n_tensors(st); i++) {
        const char *name = gmrt_safetensors_tensor_at(st, i)->name;
        if (used[i] || strcmp(name, "lm_head.weight") == 0 ||
            (multimodal && strncmp(name, prefix, strlen(prefix)) != 0))
            continue;
        return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%.120s\" is not used by the "
                         "compiled model (a checkpoint with more layers or another layout?)",
                         path, name);
    }
    return GMRT_OK;
}

/* Slice k of a stacked tensor (stacked_names): "<prefix><base>.<k>.weight";
 * NULL with *name set if the checkpoint lacks it. */
static const gmrt_st_tensor *find_slice(const gmrt_safetensors *st, const char *prefix,
                                        const char *base, int64_t k, char *name, size_t cap)
{
    snprintf(name, cap, "%s%s.%" PRId64 ".weight", prefix, base, k);
    return gmrt_safetensors_find(st, name);
}

/* A 3-D manifest tensor's one slice as a 2-D tensor. */
static gmk_tensor slice_view(const gmk_tensor *t)
{
    gmk_tensor v = *t;
    v.n_dims = 2;
    v.ne[2] = 1;
    return v;
}

/* Resolves a stacked tensor: every slice present, each of the slice's
 * shape, marked used; *out is slice 0. */
static gmrt_status resolve_stack(const gmrt_safetensors *st, const gmk_tensor *t,
                                 const char *base, const char *prefix, const char *path,
                                 const gmrt_st_tensor **out, bool *used, gmrt_diag *diag)
{
    if (t->n_dims != 3)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH, "tensor %s of the compiled model is not "
                         "3-D (a stack of %s matrices)", t->name, base);
    gmk_tensor v = slice_view(t);
    for (int64_t k = 0; k < t->ne[2]; k++) {
        char name[256];
        const gmrt_st_tensor *h = find_slice(st, prefix, base, k, name, sizeof name);
        if (!h)
            return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%s\" (slice %" PRId64
                             " of %s) is missing", path, name, k, t->name);
        used[h - gmrt_safetensors_tensor_at(st, 0)] = true;
        gmrt_status s = check_hf_shape("", path, &v, h, diag);
        if (s != GMRT_OK)
            return s;
        if (k == 0)
            *out = h;
    }
    return GMRT_OK;
}

/* Finds the checkpoint tensor of manifest tensor i, checks its shape and
 * marks it used. */
static gmrt_status resolve_tensor(const gmk_model *m, const gmrt_safetensors *st, int32_t i,
                           const char *prefix, const char *path,
                           const gmrt_st_tensor **out, bool *used, gmrt_diag *diag)
{
    const gmk_tensor *t = &m->tensors[i];
    const char *base = stacked_name(m->arch, t->name);
    if (base)
        return resolve_stack(st, t, base, prefix, path, out, used, diag);
    char name[256];
    if (!hf_name(m->arch, prefix, t->name, name, sizeof name))
        return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED, "tensor %s of the compiled model has "
                         "no Hugging Face counterpart for architecture %s", t->name, m->arch);
    const gmrt_st_tensor *h = gmrt_safetensors_find(st, name);
    if (!h)
        return gmrt_fail(diag, GMRT_ERR_MISMATCH, "%s: tensor \"%s\" (for %s) is missing",
                         path, name, t->name);
    used[h - gmrt_safetensors_tensor_at(st, 0)] = true;
    *out = h;
    return check_hf_shape(m->arch, path, t, h, diag);
}

/* Sizes the one buffer: every converted tensor rounded up to
 * GMK_ARENA_ALIGN (mapped ones take no room; their offs[i] is unused). */
static gmrt_status plan_buffer(const gmk_model *m, const bool *mapped, uint64_t *offs,
                               uint64_t *total, int64_t *max_ne0, gmrt_diag *diag)
{
    uint64_t at = 0;
    *max_ne0 = 1;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        size_t rb;
        uint64_t b;
        offs[i] = at;
        if (mapped[i])
            continue;
        gmrt_status s = tensor_bytes(&m->tensors[i], &rb, &b, diag);
        if (s != GMRT_OK)
            return s;
        if (b > UINT64_MAX - at - GMK_ARENA_ALIGN)
            return gmrt_fail(diag, GMRT_ERR_LIMIT, "weights: total size overflows");
        at = (at + b + GMK_ARENA_ALIGN - 1) / GMK_ARENA_ALIGN * GMK_ARENA_ALIGN;
        if (m->tensors[i].ne[0] > *max_ne0)
            *max_ne0 = m->tensors[i].ne[0];
    }
    if (at > SIZE_MAX)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "weights: %" PRIu64 " bytes do not fit "
                         "in memory", at);
    *total = at;
    return GMRT_OK;
}

/* Resolves every manifest tensor and decides which stay mapped. */
static gmrt_status resolve_all(const gmk_model *m, const gmrt_safetensors *st,
                               const char *path, const gmrt_st_tensor **src, bool *mapped,
                               bool *used, bool *any_mapped, gmrt_diag *diag)
{
    const char *prefix = text_prefix(st);
    for (int32_t i = 0; i < m->n_tensors; i++) {
        gmrt_status s = resolve_tensor(m, st, i, prefix, path, &src[i], used, diag);
        if (s != GMRT_OK)
            return s;
        mapped[i] = use_mapping(&m->tensors[i], src[i]);
        *any_mapped |= mapped[i];
    }
    return GMRT_OK;
}

/* Converts a stacked tensor slice by slice into dst. */
static gmrt_status fill_stack(const gmrt_safetensors *st, const gmk_tensor *t,
                              const char *base, unsigned char *dst, size_t row_bytes,
                              float *row, gmrt_diag *diag)
{
    const char *prefix = text_prefix(st);
    gmk_tensor v = slice_view(t);
    for (int64_t k = 0; k < t->ne[2]; k++) {
        char name[256];
        const gmrt_st_tensor *h = find_slice(st, prefix, base, k, name, sizeof name);
        gmrt_status s = convert(&v, h, 0.0f, dst + (size_t)k * (size_t)t->ne[1] * row_bytes,
                                row_bytes, row, diag);
        if (s != GMRT_OK)
            return s;
    }
    return GMRT_OK;
}

/* Converts (or points at) every manifest tensor. */
static gmrt_status fill(const gmk_model *m, const gmrt_safetensors *st,
                        const gmrt_st_tensor **src, const bool *mapped, const uint64_t *offs,
                        unsigned char *buf, float *row, const void **w, gmrt_diag *diag)
{
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const gmk_tensor *t = &m->tensors[i];
        if (mapped[i]) {
            w[i] = src[i]->data;
            continue;
        }
        size_t row_bytes;
        uint64_t total;
        const char *base = stacked_name(m->arch, t->name);
        gmrt_status s = tensor_bytes(t, &row_bytes, &total, diag);
        if (s == GMRT_OK && base)
            s = fill_stack(st, t, base, buf + offs[i], row_bytes, row, diag);
        else if (s == GMRT_OK)
            s = convert(t, src[i], norm_shift(m->arch, t->name), buf + offs[i], row_bytes,
                        row, diag);
        if (s != GMRT_OK)
            return s;
        w[i] = buf + offs[i];
    }
    return GMRT_OK;
}

gmrt_status gmrt_st_bind(const gmk_model *m, const char *path, bool verbose,
                         const void **w, void **out_buffer, gmrt_safetensors **out_st,
                         gmrt_diag *diag)
{
    *out_buffer = NULL;
    *out_st = NULL;
    gmrt_safetensors *st;
    gmrt_status s = gmrt_safetensors_open(path, &st, diag);
    if (s != GMRT_OK)
        return s;
    bool multimodal = false, any_mapped = false;
    uint64_t total = 0;
    int64_t max_ne0 = 1;
    size_t n = (size_t)m->n_tensors + 1;
    uint64_t *offs = calloc(n, sizeof *offs);
    const gmrt_st_tensor **src = calloc(n, sizeof *src);
    bool *mapped = calloc(n, sizeof *mapped);
    bool *used = calloc((size_t)gmrt_safetensors_n_tensors(st) + 1, sizeof *used);
    unsigned char *buf = NULL;
    float *row = NULL;
    s = offs && src && mapped && used
            ? check_config(m, gmrt_safetensors_dir(st), &multimodal, diag)
            : gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    if (s == GMRT_OK)
        s = resolve_all(m, st, path, src, mapped, used, &any_mapped, diag);
    if (s == GMRT_OK)
        s = check_unused(st, used, text_prefix(st), multimodal, path, diag);
    if (s == GMRT_OK)
        s = plan_buffer(m, mapped, offs, &total, &max_ne0, diag);
    if (s == GMRT_OK) {
        buf = aligned_alloc(GMK_ARENA_ALIGN, total ? (size_t)total : GMK_ARENA_ALIGN);
        row = malloc((size_t)max_ne0 * sizeof *row);
        if (!buf || !row)
            s = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory for %" PRIu64 " bytes of "
                          "converted weights", total);
    }
    if (s == GMRT_OK)
        s = fill(m, st, src, mapped, offs, buf, row, w, diag);
    if (s == GMRT_OK && verbose)
        fprintf(stderr, "converted %d tensors from %s (%" PRIu64 " bytes)%s\n", m->n_tensors,
                path, total, any_mapped ? "; the per-layer embedding table stays mapped" : "");
    free(offs);
    free(src);
    free(mapped);
    free(used);
    free(row);
    if (s != GMRT_OK || !any_mapped)
        gmrt_safetensors_close(st);
    if (s != GMRT_OK) {
        free(buf);
        return s;
    }
    *out_buffer = buf;
    *out_st = any_mapped ? st : NULL;
    return GMRT_OK;
}
