/*
 * import.c — `gemmac import`: writes a graph YAML from a Hugging Face
 * config.json (Gemma 1 "gemma", Gemma 2 "gemma2", Gemma 3 "gemma3_text",
 * and the multimodal "gemma3" through its text_config) or from a GGUF file
 * (architectures gemma, gemma2, gemma3; quant types from its tensors).
 *
 * Both sources fill one import_spec, which one writer turns into YAML.  Each
 * config.json key is in a table: used (with a range), known and irrelevant
 * to inference (listed so that nothing is silently dropped), or checked to
 * hold the only value gemmac supports; any other key is an error naming it
 * and its value.  GGUF keys under "<arch>." are treated the same way;
 * general.* and tokenizer.* are not about the graph.
 */
#include "import.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmk.h"
#include "gmrt.h"
#include "model.h"

#define CONFIG_MAX (1u << 20)
#define PATTERN_MAX 1024

typedef struct import_spec {
    const char *family;                    /* "gemma", "gemma2", "gemma3" */
    char name[GMC_NAME_MAX + 1];
    long vocab, d_model, layers, context, heads, kv_heads, head_dim, ffn_dim, window;
    double norm_eps, query_scale;          /* query_scale 0 = default */
    double softcap, final_softcap;
    double local_theta, local_scale, global_theta, global_scale;
    const char *embed_scale;               /* NULL = default (bf16) */
    int pattern_len;
    bool pattern_global[PATTERN_MAX];
    int32_t embed_type, kv_type;
    int32_t *wtype;                        /* layers x GMC_W_COUNT */
} import_spec;

static void spec_deinit(import_spec *s) { free(s->wtype); }

/* ------------------------------------------------------------- helpers */

/* A short rendering of a JSON value for "field = value" messages. */
static void render(const gmrt_json_value *v, char *buf, size_t cap)
{
    switch (v->kind) {
    case GMRT_JSON_NULL: snprintf(buf, cap, "null"); break;
    case GMRT_JSON_BOOL: snprintf(buf, cap, "%s", v->u.b ? "true" : "false"); break;
    case GMRT_JSON_INT: snprintf(buf, cap, "%" PRId64, v->u.i); break;
    case GMRT_JSON_DOUBLE: snprintf(buf, cap, "%.17g", v->u.d); break;
    case GMRT_JSON_STRING: snprintf(buf, cap, "\"%.60s\"", v->u.s.p); break;
    case GMRT_JSON_ARRAY: snprintf(buf, cap, "[...] (%zu items)", v->u.c.n); break;
    case GMRT_JSON_OBJECT: snprintf(buf, cap, "{...} (%zu keys)", v->u.c.n); break;
    }
}

static gmc_status bad_value(const char *path, const char *key, const gmrt_json_value *v,
                            const char *want, gmc_diag *diag)
{
    char val[96];
    render(v, val, sizeof val);
    return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: \"%s\" = %s: %s", path, key, val, want);
}

/* The shortest decimal that reads back as the same float32, so that an
 * epsilon stored as f32 (9.99999997e-07) is written as 1e-06. */
static void fmt_num(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if ((float)strtod(buf, NULL) == (float)v)
            return;
    }
}

static int32_t block_fallback(int32_t t, long width)
{
    /* llama.cpp's choice when a row is not whole K-quant blocks (docs/models.md#quant-weights). */
    while (width % gmrt_dtype_block(t) != 0)
        t = t == GMK_DTYPE_Q4_K ? GMK_DTYPE_Q5_0
            : t == GMK_DTYPE_Q5_K ? GMK_DTYPE_Q5_1
            : t == GMK_DTYPE_Q6_K ? GMK_DTYPE_Q8_0
                                  : GMK_DTYPE_F16;
    return t;
}

static long class_width(const import_spec *s, int c)
{
    return c == GMC_W_ATTN_OUTPUT ? s->heads * s->head_dim
           : c == GMC_W_FFN_DOWN  ? s->ffn_dim
                                  : s->d_model;
}

/* Derives a C identifier from text ("Gemma 3 270m" -> "gemma_3_270m"). */
static void make_name(const char *text, char *out)
{
    size_t k = 0;
    if (!isalpha((unsigned char)text[0]) && text[0] != '_')
        out[k++] = 'm';
    for (size_t i = 0; text[i] && k < GMC_NAME_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        out[k++] = isalnum(c) ? (char)tolower(c) : '_';
    }
    out[k] = '\0';
}

/* ---------------------------------------------------------- config.json */

typedef enum field_kind { F_INT, F_NUM, F_IGNORE, F_SPECIAL } field_kind;

typedef struct field {
    const char *key;
    field_kind kind;
    size_t at;       /* offsetof the long/double in import_spec */
    double lo, hi;   /* allowed range (F_INT, F_NUM; null reads as 0 for F_NUM) */
} field;

#define AT(m) offsetof(import_spec, m)
static const field config_fields[] = {
    {"vocab_size", F_INT, AT(vocab), 256, 1048576},
    {"hidden_size", F_INT, AT(d_model), 1, 65536},
    {"num_hidden_layers", F_INT, AT(layers), 1, 1024},
    {"max_position_embeddings", F_INT, AT(context), 1, 1048576},
    {"num_attention_heads", F_INT, AT(heads), 1, 1024},
    {"num_key_value_heads", F_INT, AT(kv_heads), 1, 1024},
    {"head_dim", F_INT, AT(head_dim), 2, 1024},
    {"intermediate_size", F_INT, AT(ffn_dim), 1, 1048576},
    {"sliding_window", F_INT, AT(window), 1, 1048576},
    {"rms_norm_eps", F_NUM, AT(norm_eps), 1e-12, 1},
    {"attn_logit_softcapping", F_NUM, AT(softcap), 0, 1e6},
    {"final_logit_softcapping", F_NUM, AT(final_softcap), 0, 1e6},
    {"rope_theta", F_NUM, AT(global_theta), 1, 1e12},
    {"rope_local_base_freq", F_NUM, AT(local_theta), 1, 1e12},
    /* Read by code below. */
    {"model_type", F_SPECIAL, 0, 0, 0}, {"query_pre_attn_scalar", F_SPECIAL, 0, 0, 0},
    {"layer_types", F_SPECIAL, 0, 0, 0}, {"sliding_window_pattern", F_SPECIAL, 0, 0, 0},
    {"_sliding_window_pattern", F_SPECIAL, 0, 0, 0}, {"rope_scaling", F_SPECIAL, 0, 0, 0},
    {"rope_parameters", F_SPECIAL, 0, 0, 0}, {"hidden_act", F_SPECIAL, 0, 0, 0},
    {"hidden_activation", F_SPECIAL, 0, 0, 0}, {"tie_word_embeddings", F_SPECIAL, 0, 0, 0},
    {"attention_bias", F_SPECIAL, 0, 0, 0}, {"use_bidirectional_attention", F_SPECIAL, 0, 0, 0},
    {"sliding_window_size", F_SPECIAL, 0, 0, 0}, {"gemmac_embed_scale", F_SPECIAL, 0, 0, 0},
    /* Known, irrelevant to the forward pass (training, generation, HF
     * bookkeeping, token ids the tokenizer carries). */
    {"_name_or_path", F_IGNORE, 0, 0, 0}, {"architectures", F_IGNORE, 0, 0, 0},
    {"attention_dropout", F_IGNORE, 0, 0, 0}, {"bos_token_id", F_IGNORE, 0, 0, 0},
    {"eos_token_id", F_IGNORE, 0, 0, 0}, {"pad_token_id", F_IGNORE, 0, 0, 0},
    {"initializer_range", F_IGNORE, 0, 0, 0}, {"use_cache", F_IGNORE, 0, 0, 0},
    {"transformers_version", F_IGNORE, 0, 0, 0}, {"torch_dtype", F_IGNORE, 0, 0, 0},
    {"dtype", F_IGNORE, 0, 0, 0}, {"cache_implementation", F_IGNORE, 0, 0, 0},
    {"chunk_size_feed_forward", F_IGNORE, 0, 0, 0}, {"id2label", F_IGNORE, 0, 0, 0},
    {"label2id", F_IGNORE, 0, 0, 0}, {"is_encoder_decoder", F_IGNORE, 0, 0, 0},
    {"output_attentions", F_IGNORE, 0, 0, 0}, {"output_hidden_states", F_IGNORE, 0, 0, 0},
    {"problem_type", F_IGNORE, 0, 0, 0}, {"return_dict", F_IGNORE, 0, 0, 0},
    {"attn_implementation", F_IGNORE, 0, 0, 0}, {"tokenizer_class", F_IGNORE, 0, 0, 0},
    {"pretraining_tp", F_IGNORE, 0, 0, 0}, {"use_bfloat16", F_IGNORE, 0, 0, 0},
};

static const field *find_field(const char *key)
{
    for (size_t i = 0; i < sizeof config_fields / sizeof config_fields[0]; i++)
        if (strcmp(config_fields[i].key, key) == 0)
            return &config_fields[i];
    return NULL;
}

/* Applies one used or ignored key; F_SPECIAL keys are left to the caller. */
static gmc_status apply_field(const char *path, const gmrt_json_member *m,
                              import_spec *s, gmc_diag *diag)
{
    const field *f = find_field(m->key);
    const gmrt_json_value *v = m->value;
    if (!f)
        return bad_value(path, m->key, v, "unsupported field", diag);
    if (f->kind == F_INT) {
        if (v->kind != GMRT_JSON_INT || (double)v->u.i < f->lo || (double)v->u.i > f->hi) {
            char want[64];
            snprintf(want, sizeof want, "expected an integer in [%.0f, %.0f]", f->lo, f->hi);
            return bad_value(path, m->key, v, want, diag);
        }
        *(long *)((char *)s + f->at) = (long)v->u.i;
    } else if (f->kind == F_NUM) {
        double d = 0;
        if (v->kind != GMRT_JSON_NULL &&
            (!gmrt_json_number(v, &d) || (d != 0 && (d < f->lo || d > f->hi)))) {
            char want[64];
            snprintf(want, sizeof want, "expected null or a number in [%g, %g]", f->lo, f->hi);
            return bad_value(path, m->key, v, want, diag);
        }
        *(double *)((char *)s + f->at) = d;
    }
    return GMC_OK;
}

/* Keys whose only supported value is fixed: absent or that value. */
static gmc_status check_fixed(const char *path, const gmrt_json_value *cfg, gmc_diag *diag)
{
    const gmrt_json_value *v;
    if ((v = gmrt_json_get(cfg, "tie_word_embeddings")) &&
        !(v->kind == GMRT_JSON_BOOL && v->u.b))
        return bad_value(path, "tie_word_embeddings", v, "only tied embeddings (true) are "
                         "supported", diag);
    if ((v = gmrt_json_get(cfg, "attention_bias")) && !(v->kind == GMRT_JSON_BOOL && !v->u.b))
        return bad_value(path, "attention_bias", v, "attention biases are not supported", diag);
    if ((v = gmrt_json_get(cfg, "use_bidirectional_attention")) &&
        !(v->kind == GMRT_JSON_NULL || (v->kind == GMRT_JSON_BOOL && !v->u.b)))
        return bad_value(path, "use_bidirectional_attention", v, "only causal attention is "
                         "supported", diag);
    static const char *const acts[] = {"hidden_act", "hidden_activation"};
    for (int i = 0; i < 2; i++) {
        v = gmrt_json_get(cfg, acts[i]);
        /* Gemma 1 configs say "gelu" but the model uses the tanh form
         * (transformers overrides it). */
        if (v && v->kind != GMRT_JSON_NULL &&
            !(v->kind == GMRT_JSON_STRING && (strcmp(v->u.s.p, "gelu_pytorch_tanh") == 0 ||
                                              strcmp(v->u.s.p, "gelu") == 0)))
            return bad_value(path, acts[i], v, "only gelu_pytorch_tanh is supported", diag);
    }
    if ((v = gmrt_json_get(cfg, "gemmac_embed_scale")) &&
        !(v->kind == GMRT_JSON_STRING &&
          (strcmp(v->u.s.p, "bf16") == 0 || strcmp(v->u.s.p, "exact") == 0)))
        return bad_value(path, "gemmac_embed_scale", v, "expected \"bf16\" or \"exact\"", diag);
    return GMC_OK;
}

/* One RoPE entry ({rope_type|type, rope_theta?, factor?}) into theta/scale. */
static gmc_status rope_entry(const char *path, const char *key, const gmrt_json_value *v,
                             double *theta, double *scale, gmc_diag *diag)
{
    if (v->kind == GMRT_JSON_NULL)
        return GMC_OK;
    if (v->kind != GMRT_JSON_OBJECT)
        return bad_value(path, key, v, "expected an object", diag);
    const gmrt_json_value *type = gmrt_json_get(v, "rope_type");
    if (!type)
        type = gmrt_json_get(v, "type");
    bool linear = type && type->kind == GMRT_JSON_STRING && strcmp(type->u.s.p, "linear") == 0;
    bool plain = !type || (type->kind == GMRT_JSON_STRING && strcmp(type->u.s.p, "default") == 0);
    if (!linear && !plain)
        return bad_value(path, key, v, "only rope_type \"default\" and \"linear\" are "
                         "supported", diag);
    for (size_t i = 0; i < v->u.c.n; i++) {
        const gmrt_json_member *m = &v->u.c.members[i];
        double d;
        if (!strcmp(m->key, "rope_type") || !strcmp(m->key, "type"))
            continue;
        if (!gmrt_json_number(m->value, &d) || !(d > 0) || d > 1e12) {
            char k[128];
            snprintf(k, sizeof k, "%s.%s", key, m->key);
            return bad_value(path, k, m->value, strcmp(m->key, "rope_theta") &&
                             strcmp(m->key, "factor") ? "unsupported field"
                                                      : "expected a positive number", diag);
        }
        if (!strcmp(m->key, "rope_theta"))
            *theta = d;
        else if (!strcmp(m->key, "factor") && linear)
            *scale = d;
        else {
            char k[128];
            snprintf(k, sizeof k, "%s.%s", key, m->key);
            return bad_value(path, k, m->value, "unsupported field", diag);
        }
    }
    return GMC_OK;
}

/* rope_scaling (old configs: applies to global layers) and rope_parameters
 * (transformers 5: one entry, or one per layer type). */
static gmc_status read_rope(const char *path, const gmrt_json_value *cfg, import_spec *s,
                            gmc_diag *diag)
{
    const gmrt_json_value *v = gmrt_json_get(cfg, "rope_scaling");
    double unused = 0;
    if (v && rope_entry(path, "rope_scaling", v, &unused, &s->global_scale, diag) != GMC_OK)
        return diag->status;
    if (!(v = gmrt_json_get(cfg, "rope_parameters")))
        return GMC_OK;
    const gmrt_json_value *full = gmrt_json_get(v, "full_attention");
    const gmrt_json_value *slide = gmrt_json_get(v, "sliding_attention");
    if (!full && !slide) {
        gmc_status st = rope_entry(path, "rope_parameters", v, &s->global_theta,
                                   &s->global_scale, diag);
        s->local_theta = s->global_theta;
        s->local_scale = s->global_scale;
        return st;
    }
    if (v->u.c.n != (size_t)(!!full + !!slide))
        return bad_value(path, "rope_parameters", v, "expected only full_attention and "
                         "sliding_attention entries", diag);
    if (full && rope_entry(path, "rope_parameters.full_attention", full, &s->global_theta,
                           &s->global_scale, diag) != GMC_OK)
        return diag->status;
    if (slide)
        return rope_entry(path, "rope_parameters.sliding_attention", slide, &s->local_theta,
                          &s->local_scale, diag);
    return GMC_OK;
}

/* Smallest period p with kinds[i] == kinds[i % p], so that layer_types
 * becomes the YAML pattern. */
static int min_period(const bool *kinds, int n)
{
    for (int p = 1; p < n; p++) {
        bool ok = true;
        for (int i = p; ok && i < n; i++)
            ok = kinds[i] == kinds[i % p];
        if (ok)
            return p;
    }
    return n;
}

static gmc_status read_pattern(const char *path, const gmrt_json_value *cfg, import_spec *s,
                               gmc_diag *diag)
{
    const gmrt_json_value *lt = gmrt_json_get(cfg, "layer_types");
    const gmrt_json_value *swp = gmrt_json_get(cfg, "sliding_window_pattern");
    if (!swp || swp->kind == GMRT_JSON_NULL)
        swp = gmrt_json_get(cfg, "_sliding_window_pattern");
    if (lt && lt->kind != GMRT_JSON_NULL) {
        if (lt->kind != GMRT_JSON_ARRAY || (long)lt->u.c.n != s->layers)
            return bad_value(path, "layer_types", lt, "expected one entry per layer", diag);
        bool kinds[PATTERN_MAX];
        for (size_t i = 0; i < lt->u.c.n; i++) {
            const gmrt_json_value *e = &lt->u.c.items[i];
            bool full = e->kind == GMRT_JSON_STRING && !strcmp(e->u.s.p, "full_attention");
            bool slide = e->kind == GMRT_JSON_STRING && !strcmp(e->u.s.p, "sliding_attention");
            if (!full && !slide)
                return bad_value(path, "layer_types", e, "entries must be "
                                 "\"sliding_attention\" or \"full_attention\"", diag);
            kinds[i] = full;
        }
        s->pattern_len = min_period(kinds, (int)s->layers);
        memcpy(s->pattern_global, kinds, (size_t)s->pattern_len * sizeof *kinds);
        return GMC_OK;
    }
    if (!strcmp(s->family, "gemma")) {
        s->pattern_len = 1;
        s->pattern_global[0] = true;
    } else if (!strcmp(s->family, "gemma2")) {
        s->pattern_len = 2;
        s->pattern_global[1] = true;
    } else {
        long p = 6;
        if (swp && swp->kind != GMRT_JSON_NULL) {
            if (swp->kind != GMRT_JSON_INT || swp->u.i < 1 || swp->u.i > s->layers)
                return bad_value(path, "sliding_window_pattern", swp, "expected an integer "
                                 "in [1, num_hidden_layers]", diag);
            p = (long)swp->u.i;
        }
        s->pattern_len = (int)(p < s->layers ? p : s->layers);
        s->pattern_global[p - 1 < s->layers ? p - 1 : 0] = p <= s->layers;
    }
    return GMC_OK;
}

static gmc_status read_family(const char *path, const gmrt_json_value **cfg, import_spec *s,
                              gmc_diag *diag)
{
    const gmrt_json_value *mt = gmrt_json_get(*cfg, "model_type");
    if (!mt || mt->kind != GMRT_JSON_STRING)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: no \"model_type\" string", path);
    if (!strcmp(mt->u.s.p, "gemma3")) {
        /* Multimodal: the text model is text_config; the rest is the vision
         * tower and its token ids, which text decoding does not use. */
        static const char *const top[] = {"model_type", "text_config", "vision_config",
            "architectures", "boi_token_index", "eoi_token_index", "image_token_index",
            "mm_tokens_per_image", "initializer_range", "torch_dtype", "dtype",
            "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id",
            "_name_or_path", "tie_word_embeddings"};
        for (size_t i = 0; i < (*cfg)->u.c.n; i++) {
            const gmrt_json_member *m = &(*cfg)->u.c.members[i];
            size_t k = 0;
            while (k < sizeof top / sizeof top[0] && strcmp(top[k], m->key))
                k++;
            if (k == sizeof top / sizeof top[0])
                return bad_value(path, m->key, m->value, "unsupported field", diag);
        }
        const gmrt_json_value *tc = gmrt_json_get(*cfg, "text_config");
        if (!tc || tc->kind != GMRT_JSON_OBJECT)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: model_type \"gemma3\" needs a "
                            "\"text_config\" object", path);
        *cfg = tc;
        s->family = "gemma3";
        return GMC_OK;
    }
    static const char *const types[][2] = {
        {"gemma", "gemma"}, {"gemma2", "gemma2"}, {"gemma3_text", "gemma3"}};
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(mt->u.s.p, types[i][0])) {
            s->family = types[i][1];
            return GMC_OK;
        }
    return bad_value(path, "model_type", mt, "expected gemma, gemma2, gemma3_text or gemma3",
                     diag);
}

/* Required keys (HF has defaults for them, but a released config always
 * states them, and guessing a dimension is worse than an error). */
static gmc_status check_required(const char *path, const gmrt_json_value *cfg,
                                 gmc_diag *diag)
{
    static const char *const req[] = {"vocab_size", "hidden_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "intermediate_size",
        "max_position_embeddings"};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        if (!gmrt_json_get(cfg, req[i]))
            return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: missing field \"%s\"", path, req[i]);
    return GMC_OK;
}

static gmc_status read_config_fields(const char *path, const gmrt_json_value *cfg,
                                     import_spec *s, gmc_diag *diag)
{
    GMC_TRY(check_required(path, cfg, diag));
    s->head_dim = 256;
    s->norm_eps = 1e-6;
    s->local_theta = 10000;
    s->global_theta = !strcmp(s->family, "gemma3") ? 1e6 : 10000;
    s->local_scale = s->global_scale = 1;
    for (size_t i = 0; i < cfg->u.c.n; i++)
        GMC_TRY(apply_field(path, &cfg->u.c.members[i], s, diag));
    if (strcmp(s->family, "gemma3"))
        s->local_theta = s->global_theta; /* one theta before Gemma 3 */
    GMC_TRY(check_fixed(path, cfg, diag));
    GMC_TRY(read_rope(path, cfg, s, diag));
    const gmrt_json_value *q = gmrt_json_get(cfg, "query_pre_attn_scalar");
    double qs;
    if (q && q->kind != GMRT_JSON_NULL) {
        if (!gmrt_json_number(q, &qs) || !(qs > 0) || qs > 1e9)
            return bad_value(path, "query_pre_attn_scalar", q, "expected a positive number",
                             diag);
        if (qs != (double)s->head_dim)
            s->query_scale = 1.0 / sqrt(qs);
    }
    const gmrt_json_value *e = gmrt_json_get(cfg, "gemmac_embed_scale");
    if (e) /* a static string: the document is freed before writing */
        s->embed_scale = strcmp(e->u.s.p, "exact") ? "bf16" : "exact";
    if (!strcmp(s->family, "gemma"))
        s->window = 0;
    return read_pattern(path, cfg, s, diag);
}

static gmc_status set_quant(const gmc_import_opts *o, import_spec *s, gmc_diag *diag)
{
    int32_t t = gmrt_dtype_from_name(o->quant ? o->quant : "f32");
    if (t < 0 || !gmrt_dtype_supported(t))
        return gmc_fail(diag, GMC_ERR_ARG, "--quant: unknown weight type \"%s\" (f32, f16, "
                        "bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k)", o->quant);
    s->wtype = malloc((size_t)s->layers * GMC_W_COUNT * sizeof *s->wtype);
    if (!s->wtype)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    s->embed_type = block_fallback(t, s->d_model);
    for (long l = 0; l < s->layers; l++)
        for (int c = 0; c < GMC_W_COUNT; c++)
            s->wtype[l * GMC_W_COUNT + c] = block_fallback(t, class_width(s, c));
    s->kv_type = t == GMK_DTYPE_F32 ? GMK_DTYPE_F32 : GMK_DTYPE_F16;
    return GMC_OK;
}

static gmc_status import_config(const char *path, const char *text, size_t len,
                                const gmc_import_opts *o, import_spec *s, gmc_diag *diag)
{
    gmrt_json *doc;
    gmrt_diag rd = {0};
    if (gmrt_json_parse(text, len, path, NULL, &doc, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SYNTAX, "%s", rd.msg);
    const gmrt_json_value *cfg = gmrt_json_root(doc);
    gmc_status st = cfg->kind == GMRT_JSON_OBJECT
                        ? read_family(path, &cfg, s, diag)
                        : gmc_fail(diag, GMC_ERR_SCHEMA, "%s: expected a JSON object", path);
    if (st == GMC_OK)
        st = read_config_fields(path, cfg, s, diag);
    if (st == GMC_OK) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s_%ldx%ld", s->family, s->d_model, s->layers);
        make_name(buf, s->name);
        st = set_quant(o, s, diag);
    }
    gmrt_json_destroy(doc);
    return st;
}

/* ---------------------------------------------------------------- GGUF */

/* "<arch>." keys gemmac reads; any other one is an error. */
static const char *const gguf_keys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length",
    "attention.head_count", "attention.head_count_kv", "attention.key_length",
    "attention.value_length", "attention.layer_norm_rms_epsilon", "rope.freq_base",
    "rope.freq_base_swa", "rope.scaling.type", "rope.scaling.factor",
    "attention.sliding_window", "attention.sliding_window_pattern",
    "attn_logit_softcapping", "final_logit_softcapping",
};

static gmc_status gguf_int(const gmrt_gguf *g, const char *arch, const char *k, long lo,
                           long hi, bool required, long *out, gmc_diag *diag)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    if (!gmrt_gguf_has_key(g, key)) {
        if (required)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: missing key %s", key);
        return GMC_OK;
    }
    int64_t v;
    gmrt_diag rd = {0};
    if (gmrt_gguf_get_int(g, key, &v, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s", rd.msg);
    if (v < lo || v > hi)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s = %" PRId64 " is out of range "
                        "[%ld, %ld]", key, v, lo, hi);
    *out = (long)v;
    return GMC_OK;
}

static gmc_status gguf_num(const gmrt_gguf *g, const char *arch, const char *k, double *out,
                           gmc_diag *diag)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    if (!gmrt_gguf_has_key(g, key))
        return GMC_OK;
    gmrt_diag rd = {0};
    double v;
    if (gmrt_gguf_get_float(g, key, &v, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s", rd.msg);
    if (!isfinite(v) || v < 0 || v > 1e12)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s = %g is out of range", key, v);
    *out = v;
    return GMC_OK;
}

static gmc_status gguf_check_keys(const gmrt_gguf *g, const char *arch, gmc_diag *diag)
{
    size_t al = strlen(arch);
    for (int64_t i = 0; i < gmrt_gguf_n_kv(g); i++) {
        const char *k = gmrt_gguf_key_at(g, i);
        if (strncmp(k, arch, al) != 0 || k[al] != '.')
            continue; /* general.*, tokenizer.*: not about the graph */
        size_t j = 0;
        while (j < sizeof gguf_keys / sizeof gguf_keys[0] && strcmp(gguf_keys[j], k + al + 1))
            j++;
        if (j == sizeof gguf_keys / sizeof gguf_keys[0])
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: unsupported field \"%s\"", k);
    }
    return GMC_OK;
}

static gmc_status gguf_dims(const gmrt_gguf *g, const char *arch, import_spec *s,
                            gmc_diag *diag)
{
    GMC_TRY(gguf_check_keys(g, arch, diag));
    GMC_TRY(gguf_int(g, arch, "context_length", 1, 1048576, true, &s->context, diag));
    GMC_TRY(gguf_int(g, arch, "embedding_length", 1, 65536, true, &s->d_model, diag));
    GMC_TRY(gguf_int(g, arch, "block_count", 1, 1024, true, &s->layers, diag));
    GMC_TRY(gguf_int(g, arch, "feed_forward_length", 1, 1048576, true, &s->ffn_dim, diag));
    GMC_TRY(gguf_int(g, arch, "attention.head_count", 1, 1024, true, &s->heads, diag));
    GMC_TRY(gguf_int(g, arch, "attention.head_count_kv", 1, 1024, true, &s->kv_heads, diag));
    s->head_dim = s->d_model / s->heads;
    GMC_TRY(gguf_int(g, arch, "attention.key_length", 2, 1024, false, &s->head_dim, diag));
    long vl = s->head_dim;
    GMC_TRY(gguf_int(g, arch, "attention.value_length", 2, 1024, false, &vl, diag));
    if (vl != s->head_dim)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s.attention.value_length %ld differs "
                        "from key_length %ld (not supported)", arch, vl, s->head_dim);
    GMC_TRY(gguf_int(g, arch, "attention.sliding_window", 1, 1048576, false, &s->window, diag));
    s->norm_eps = 1e-6;
    GMC_TRY(gguf_num(g, arch, "attention.layer_norm_rms_epsilon", &s->norm_eps, diag));
    GMC_TRY(gguf_num(g, arch, "attn_logit_softcapping", &s->softcap, diag));
    GMC_TRY(gguf_num(g, arch, "final_logit_softcapping", &s->final_softcap, diag));
    s->global_theta = !strcmp(arch, "gemma3") ? 1e6 : 10000;
    s->local_theta = 10000;
    s->local_scale = s->global_scale = 1;
    GMC_TRY(gguf_num(g, arch, "rope.freq_base", &s->global_theta, diag));
    GMC_TRY(gguf_num(g, arch, "rope.freq_base_swa", &s->local_theta, diag));
    if (strcmp(arch, "gemma3"))
        s->local_theta = s->global_theta;
    GMC_TRY(gguf_num(g, arch, "rope.scaling.factor", &s->global_scale, diag));
    if (!(s->global_scale > 0))
        s->global_scale = 1;
    /* llama.cpp: 27B-sized models scale queries by sqrt(D/H) (docs/models.md#gemma2, #gemma3). */
    if ((!strcmp(arch, "gemma2") && s->layers == 46) || (!strcmp(arch, "gemma3") && s->layers == 62))
        s->query_scale = 1.0 / sqrt((double)s->d_model / (double)s->heads);
    return GMC_OK;
}

static gmc_status gguf_pattern(const gmrt_gguf *g, const char *arch, import_spec *s,
                               gmc_diag *diag)
{
    long period = !strcmp(arch, "gemma") ? 1 : !strcmp(arch, "gemma2") ? 2 : 6;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    if (gmrt_gguf_has_key(g, key))
        GMC_TRY(gguf_int(g, arch, "attention.sliding_window_pattern", 1, PATTERN_MAX, true,
                         &period, diag));
    if (period > s->layers)
        period = s->layers;
    s->pattern_len = (int)period;
    /* llama.cpp: layer il is sliding iff il % period < period - 1. */
    for (long i = 0; i < period; i++)
        s->pattern_global[i] = period == 1 || i == period - 1;
    if (!strcmp(arch, "gemma"))
        s->window = 0;
    return GMC_OK;
}

/* Tensor types: token_embd and blk.N.<class>.weight for each class. */
static gmc_status gguf_types(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const gmrt_gguf_tensor *e = gmrt_gguf_find_tensor(g, "token_embd.weight");
    if (!e || e->n_dims != 2)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: no 2-D token_embd.weight");
    s->vocab = (long)e->ne[1];
    s->embed_type = e->dtype;
    s->kv_type = GMK_DTYPE_F16; /* llama.cpp's default KV cache type */
    s->wtype = malloc((size_t)s->layers * GMC_W_COUNT * sizeof *s->wtype);
    if (!s->wtype)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    for (long l = 0; l < s->layers; l++)
        for (int c = 0; c < GMC_W_COUNT; c++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%ld.%s.weight", l, gmc_wclass_name((gmc_wclass)c));
            const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, name);
            if (!t)
                return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: tensor %s is missing", name);
            if (!gmrt_dtype_supported(t->dtype))
                return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: tensor %s has type %s, which "
                                "gemmac does not support", name,
                                gmrt_dtype_name(t->dtype) ? gmrt_dtype_name(t->dtype) : "?");
            s->wtype[l * GMC_W_COUNT + c] = t->dtype;
        }
    return GMC_OK;
}

static gmc_status import_gguf(const char *path, import_spec *s, gmc_diag *diag)
{
    gmrt_gguf *g;
    gmrt_diag rd = {0};
    if (gmrt_gguf_open(path, &g, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    const char *arch = NULL;
    gmc_status st = GMC_OK;
    if (gmrt_gguf_get_str(g, "general.architecture", &arch, &rd) != GMRT_OK)
        st = gmc_fail(diag, GMC_ERR_SCHEMA, "%s: %s", path, rd.msg);
    else if (strcmp(arch, "gemma") && strcmp(arch, "gemma2") && strcmp(arch, "gemma3"))
        st = gmc_fail(diag, GMC_ERR_SCHEMA, "%s: architecture \"%.60s\" is not gemma, "
                      "gemma2 or gemma3", path, arch);
    if (st == GMC_OK) {
        s->family = !strcmp(arch, "gemma") ? "gemma" : !strcmp(arch, "gemma2") ? "gemma2"
                                                                               : "gemma3";
        st = gguf_dims(g, arch, s, diag);
    }
    if (st == GMC_OK)
        st = gguf_pattern(g, arch, s, diag);
    if (st == GMC_OK)
        st = gguf_types(g, s, diag);
    const char *gname;
    if (st == GMC_OK && gmrt_gguf_get_str(g, "general.name", &gname, NULL) == GMRT_OK)
        make_name(gname, s->name);
    else if (st == GMC_OK)
        snprintf(s->name, sizeof s->name, "%s_%ldx%ld", s->family, s->d_model, s->layers);
    gmrt_gguf_close(g);
    return st;
}

/* ------------------------------------------------------------- writer */

/* Bytes per 256 elements, to rank types by size. */
static double type_cost(int32_t t)
{
    return (double)gmrt_dtype_block_bytes(t) * 256.0 / (double)gmrt_dtype_block(t);
}

/* The most frequent type of v[0..n); a tie goes to the smaller type, so
 * that a llama.cpp mix reads as a base type with more bits in some layers. */
static int32_t mode_of(const int32_t *v, int n)
{
    int32_t best = v[0];
    int best_n = 0;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = 0; j < n; j++)
            c += v[j] == v[i];
        if (c > best_n || (c == best_n && type_cost(v[i]) < type_cost(best))) {
            best_n = c;
            best = v[i];
        }
    }
    return best;
}

static void write_quant(gmc_strbuf *b, const import_spec *s)
{
    int32_t cls[GMC_W_COUNT], col[1024];
    for (int c = 0; c < GMC_W_COUNT; c++) {
        for (long l = 0; l < s->layers; l++)
            col[l] = s->wtype[l * GMC_W_COUNT + c];
        cls[c] = mode_of(col, (int)s->layers);
    }
    int32_t attn = mode_of(cls, 4), ffn = mode_of(cls + 4, 3);
    gmc_emitf(b, "quant:\n  embed: %s\n  attn: %s\n  ffn: %s\n  kv_cache: %s\n",
              gmrt_dtype_name(s->embed_type), gmrt_dtype_name(attn), gmrt_dtype_name(ffn),
              gmrt_dtype_name(s->kv_type));
    bool any = false;
    for (int c = 0; c < GMC_W_COUNT; c++)
        if (cls[c] != (c < 4 ? attn : ffn)) {
            gmc_emitf(b, "%s%s: %s", any ? ", " : "  tensors: {", gmc_wclass_name((gmc_wclass)c),
                      gmrt_dtype_name(cls[c]));
            any = true;
        }
    if (any)
        gmc_emitf(b, "}\n");
    any = false;
    for (int c = 0; c < GMC_W_COUNT; c++)
        for (long l0 = 0; l0 < s->layers; l0++) {
            int32_t t = s->wtype[l0 * GMC_W_COUNT + c];
            bool first = true;
            for (long k = 0; k < l0 && first; k++)
                first = s->wtype[k * GMC_W_COUNT + c] != t;
            if (t == cls[c] || !first)
                continue; /* default, or already written with an earlier layer */
            if (!any)
                gmc_emitf(b, "  overrides:\n");
            any = true;
            gmc_emitf(b, "    - {tensor: %s, layers: [", gmc_wclass_name((gmc_wclass)c));
            for (long l = l0, n = 0; l < s->layers; l++)
                if (s->wtype[l * GMC_W_COUNT + c] == t)
                    gmc_emitf(b, "%s%ld", n++ ? ", " : "", l);
            gmc_emitf(b, "], type: %s}\n", gmrt_dtype_name(t));
        }
}

static void write_yaml(gmc_strbuf *b, const import_spec *s, const char *src)
{
    char eps[32], lt[32], ls[32], gt[32], gs[32], qs[32], sc[32], fc[32];
    fmt_num(s->norm_eps, eps, sizeof eps);
    fmt_num(s->local_theta, lt, sizeof lt);
    fmt_num(s->local_scale, ls, sizeof ls);
    fmt_num(s->global_theta, gt, sizeof gt);
    fmt_num(s->global_scale, gs, sizeof gs);
    fmt_num(s->softcap, sc, sizeof sc);
    fmt_num(s->final_softcap, fc, sizeof fc);
    gmc_emitf(b, "# imported by gemmac import from %s\n", src);
    gmc_emitf(b, "model:\n  name: %s\n  family: %s\n  vocab: %ld\n  d_model: %ld\n"
              "  layers: %ld\n  context: %ld\n  norm_eps: %s\n  tied_embeddings: true\n"
              "  embed_scale: %s\n", s->name, s->family, s->vocab, s->d_model, s->layers,
              s->context, eps, s->embed_scale ? s->embed_scale : "bf16");
    gmc_emitf(b, "attention:\n  heads: %ld\n  kv_heads: %ld\n  head_dim: %ld\n", s->heads,
              s->kv_heads, s->head_dim);
    if (s->query_scale > 0) {
        snprintf(qs, sizeof qs, "%.9g", s->query_scale);
        gmc_emitf(b, "  query_scale: %s\n", qs);
    }
    gmc_emitf(b, "  qk_norm: %s\n  softcap: %s\n", strcmp(s->family, "gemma3") ? "false" : "true",
              sc);
    if (s->window > 0)
        gmc_emitf(b, "  window: %ld\n", s->window);
    gmc_emitf(b, "  rope:\n    local:  {theta: %s, scale: %s}\n    global: {theta: %s, "
              "scale: %s}\n", lt, ls, gt, gs);
    gmc_emitf(b, "layers:\n  pattern: [");
    for (int i = 0; i < s->pattern_len; i++)
        gmc_emitf(b, "%s%s", i ? ", " : "", s->pattern_global[i] ? "global" : "local");
    gmc_emitf(b, "]\nffn:\n  dim: %ld\n  activation: gelu_tanh\n", s->ffn_dim);
    gmc_emitf(b, "output:\n  post_norms: %s\n  final_softcap: %s\n",
              strcmp(s->family, "gemma") ? "true" : "false", fc);
    write_quant(b, s);
}

gmc_status gmc_import(const char *path, const gmc_import_opts *o, gmc_strbuf *out,
                      gmc_diag *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gmc_fail(diag, GMC_ERR_IO, "%s: cannot open", path);
    char *text = malloc(CONFIG_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_MAX + 1, f) : 0;
    fclose(f);
    if (!text)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    import_spec s = {0};
    bool gguf = len >= 4 && memcmp(text, "GGUF", 4) == 0;
    gmc_status st = GMC_OK;
    if (gguf && o->quant)
        st = gmc_fail(diag, GMC_ERR_ARG, "--quant applies to config.json only (a GGUF "
                      "file's tensor types are used as they are)");
    else if (gguf)
        st = import_gguf(path, &s, diag);
    else if (len > CONFIG_MAX)
        st = gmc_fail(diag, GMC_ERR_LIMIT, "%s: larger than %u bytes", path, CONFIG_MAX);
    else
        st = import_config(path, text, len, o, &s, diag);
    free(text);
    if (st == GMC_OK && o->context > 0)
        s.context = o->context;
    if (st == GMC_OK && o->name) {
        if (strlen(o->name) > GMC_NAME_MAX)
            st = gmc_fail(diag, GMC_ERR_ARG, "--name: longer than %d characters", GMC_NAME_MAX);
        else
            snprintf(s.name, sizeof s.name, "%s", o->name);
    }
    if (st == GMC_OK && s.window > s.context)
        s.window = s.context;
    if (st == GMC_OK)
        write_yaml(out, &s, path);
    spec_deinit(&s);
    return st;
}
