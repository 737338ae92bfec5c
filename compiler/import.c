/*
 * import.c — `gemmac import`: writes a graph YAML from a Hugging Face
 * config.json (Gemma 1 "gemma", Gemma 2 "gemma2", Gemma 3 "gemma3_text",
 * Gemma 3n "gemma3n_text", Gemma 4 "gemma4_text", and the multimodal
 * "gemma3" / "gemma3n" / "gemma4" through their text_config) or from a GGUF
 * file (architectures gemma, gemma2, gemma3, gemma3n, gemma4; quant types
 * from its tensors).
 *
 * Both sources fill one import_spec, which one writer turns into YAML.  Each
 * config.json key is in a table: used (with a range), known and irrelevant
 * to inference (listed so that nothing is silently dropped), or checked to
 * hold the only value gemmac supports; any other key is an error naming it
 * and its value.  GGUF keys under "<arch>." are treated the same way;
 * general.* and tokenizer.* are not about the graph.  The YAML is parsed
 * back with gmc_model_parse before it is returned, so what import writes
 * passes the checks of `gemmac plan`; a failure there names the source key
 * behind the YAML key at fault.
 */
#include "import.h"

#include <ctype.h>
#include <errno.h>
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
    const char *family;                    /* "gemma" ... "gemma3n", "gemma4" */
    char name[GMC_NAME_MAX + 1];
    long vocab, d_model, layers, context, heads, kv_heads, head_dim, ffn_dim, window;
    double norm_eps, query_scale;          /* query_scale 0 = default */
    double softcap, final_softcap;
    double local_theta, local_scale, global_theta, global_scale;
    const char *embed_scale;               /* NULL = default (bf16) */
    int pattern_len;
    bool pattern_global[PATTERN_MAX];
    /* Gemma 4 (0 = absent / the local value) */
    long global_head_dim, global_kv_heads; /* attention.global */
    bool k_eq_v;
    long kv_shared, shared_ffn_dim;        /* KV-shared layers, their FFN width */
    long ple_dim, ple_vocab;               /* per-layer embeddings */
    long experts, top_k, expert_dim;       /* moe: */
    double local_fraction, global_fraction;/* RoPE: share of pairs that rotate */
    /* Gemma 3n (0 = absent) */
    long altup_streams, altup_active, laurel_rank, sparse_layers;
    double altup_clip, sparsity;           /* sparsity: of the first sparse_layers */
    bool altup_no_correct_scale;           /* altup_correct_scale false */
    int32_t altup_type;                    /* quant.altup */
    bool gguf;                             /* the source, for error messages */
    int32_t embed_type, kv_type;
    int32_t ple_type, ple_proj_type;       /* quant.ple / ple_proj (ple_dim > 0) */
    int32_t *wtype;                        /* layers x GMC_W_COUNT; -1 = absent */
} import_spec;

static void spec_deinit(import_spec *s) { free(s->wtype); }

/* ------------------------------------------------------------- helpers */

/* A short rendering of a JSON value for "field = value" messages; NULL: a
 * key the config left out, whose default was taken. */
static void render(const gmrt_json_value *v, char *buf, size_t cap)
{
    if (!v) {
        snprintf(buf, cap, "absent (the default)");
        return;
    }
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

/* Whether layer l is global (full attention). */
static bool is_global(const import_spec *s, long l)
{
    return s->pattern_global[l % s->pattern_len];
}

/* Whether layer l has a weight of class c (model.c's gmc_layer_has, on the
 * spec): KV-shared layers have no K/V, K = V globals no V, and the PLE and
 * expert classes exist only with ple_dim / experts. */
static bool spec_has(const import_spec *s, long l, int c)
{
    bool own_kv = l < s->layers - s->kv_shared;
    switch (c) {
    case GMC_W_ATTN_K: return own_kv;
    case GMC_W_ATTN_V: return own_kv && !(s->k_eq_v && is_global(s, l));
    case GMC_W_PLE_GATE:
    case GMC_W_PLE_PROJ: return s->ple_dim > 0;
    case GMC_W_EXP_GATE_UP:
    case GMC_W_EXP_DOWN: return s->experts > 0;
    case GMC_W_LAUREL_L:
    case GMC_W_LAUREL_R: return s->laurel_rank > 0;
    default: return true;
    }
}

/* The input width (ne0) of class c in layer l: what a quantized row must
 * hold whole blocks of. */
static long class_width(const import_spec *s, long l, int c)
{
    long hd = is_global(s, l) && s->global_head_dim ? s->global_head_dim : s->head_dim;
    bool shared = s->shared_ffn_dim && l >= s->layers - s->kv_shared;
    switch (c) {
    case GMC_W_ATTN_OUTPUT: return s->heads * hd;
    case GMC_W_FFN_DOWN: return shared ? s->shared_ffn_dim : s->ffn_dim;
    case GMC_W_PLE_PROJ: return s->ple_dim;
    case GMC_W_EXP_DOWN: return s->expert_dim;
    case GMC_W_LAUREL_R: return s->laurel_rank;
    default: return s->d_model;
    }
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

/* F_INTN: an integer or null (null leaves 0: Gemma 4 configs write null
 * for the parts a model does not have). */
typedef enum field_kind { F_INT, F_INTN, F_NUM, F_IGNORE, F_SPECIAL } field_kind;

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

/* Keys of Gemma 3n and Gemma 4 configs: per-layer embeddings, KV sharing. */
static const field ple_kv_fields[] = {
    {"hidden_size_per_layer_input", F_INTN, AT(ple_dim), 0, 65536},
    {"vocab_size_per_layer_input", F_INTN, AT(ple_vocab), 1, 1048576},
    {"num_kv_shared_layers", F_INTN, AT(kv_shared), 0, 1023},
};

/* Keys only Gemma 3n configs have (transformers 5.25 Gemma3nTextConfig);
 * altup_lr_multiplier is a training setting. */
static const field gemma3n_fields[] = {
    {"altup_num_inputs", F_INT, AT(altup_streams), 2, 16},
    {"altup_active_idx", F_INT, AT(altup_active), 0, 15},
    {"altup_coef_clip", F_NUM, AT(altup_clip), 0, 1e9},
    {"laurel_rank", F_INT, AT(laurel_rank), 1, 65536},
    {"altup_correct_scale", F_SPECIAL, 0, 0, 0},
    {"activation_sparsity_pattern", F_SPECIAL, 0, 0, 0},
    {"altup_lr_multiplier", F_IGNORE, 0, 0, 0},
};

/* Keys only Gemma 4 configs have (transformers 5.25 Gemma4TextConfig). */
static const field gemma4_fields[] = {
    {"global_head_dim", F_INTN, AT(global_head_dim), 2, 1024},
    {"num_global_key_value_heads", F_INTN, AT(global_kv_heads), 1, 1024},
    {"num_experts", F_INTN, AT(experts), 1, 4096},
    {"top_k_experts", F_INTN, AT(top_k), 1, 4096},
    {"moe_intermediate_size", F_INTN, AT(expert_dim), 1, 1048576},
    {"attention_k_eq_v", F_SPECIAL, 0, 0, 0}, {"enable_moe_block", F_SPECIAL, 0, 0, 0},
    {"use_double_wide_mlp", F_SPECIAL, 0, 0, 0}, {"per_layer_config", F_SPECIAL, 0, 0, 0},
};

static const field *in_table(const field *t, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].key, key) == 0)
            return &t[i];
    return NULL;
}
#define IN_TABLE(t, key) in_table(t, sizeof t / sizeof t[0], key)

/* The field of key; *only names the families that have it where the
 * config's family does not (NULL: it does). */
static const field *find_field(const char *key, const char *family, const char **only)
{
    bool g4 = !strcmp(family, "gemma4"), g3n = !strcmp(family, "gemma3n");
    const field *f;
    *only = NULL;
    if ((f = IN_TABLE(config_fields, key)))
        return f;
    if ((f = IN_TABLE(ple_kv_fields, key)))
        *only = g4 || g3n ? NULL : "Gemma 3n and 4";
    else if ((f = IN_TABLE(gemma3n_fields, key)))
        *only = g3n ? NULL : "Gemma 3n";
    else if ((f = IN_TABLE(gemma4_fields, key)))
        *only = g4 ? NULL : "Gemma 4";
    return f;
}

/* Gemma 3n's intermediate_size: one width, or a list of one width per
 * layer (transformers saves the list); gemmac has one width. */
static gmc_status ffn_list(const char *path, const gmrt_json_value *v, import_spec *s,
                           gmc_diag *diag)
{
    for (size_t i = 0; i < v->u.c.n; i++) {
        const gmrt_json_value *e = &v->u.c.items[i];
        if (e->kind != GMRT_JSON_INT || e->u.i < 1 || e->u.i > 1048576 ||
            (i && e->u.i != v->u.c.items[0].u.i))
            return bad_value(path, "intermediate_size", v, "expected an integer in "
                             "[1, 1048576] or a list of one such integer per layer, all "
                             "equal (gemmac has one FFN width)", diag);
    }
    if (v->u.c.n == 0)
        return bad_value(path, "intermediate_size", v, "expected one entry per layer", diag);
    s->ffn_dim = (long)v->u.c.items[0].u.i;
    return GMC_OK;
}

/* Applies one used or ignored key; F_SPECIAL keys are left to the caller. */
static gmc_status apply_field(const char *path, const gmrt_json_member *m,
                              import_spec *s, gmc_diag *diag)
{
    const char *only;
    const field *f = find_field(m->key, s->family, &only);
    const gmrt_json_value *v = m->value;
    if (!f)
        return bad_value(path, m->key, v, "unsupported field", diag);
    if (only) {
        char want[96];
        snprintf(want, sizeof want, "unsupported field (only %s configs have it)", only);
        return bad_value(path, m->key, v, want, diag);
    }
    if (f->kind == F_INTN && v->kind == GMRT_JSON_NULL)
        return GMC_OK;
    if (v->kind == GMRT_JSON_ARRAY && !strcmp(m->key, "intermediate_size") &&
        !strcmp(s->family, "gemma3n"))
        return ffn_list(path, v, s, diag);
    if (f->kind == F_INT || f->kind == F_INTN) {
        if (v->kind != GMRT_JSON_INT || (double)v->u.i < f->lo || (double)v->u.i > f->hi) {
            char want[64];
            snprintf(want, sizeof want, "expected %san integer in [%.0f, %.0f]",
                     f->kind == F_INTN ? "null or " : "", f->lo, f->hi);
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

/* One RoPE entry ({rope_type|type, rope_theta?, factor?,
 * partial_rotary_factor?}) into theta/scale/fraction.  Gemma 4's
 * "proportional" type rotates the first partial_rotary_factor of the pairs
 * with exponents over the whole head (gemma4-README.md §4.5); that is the
 * graph's rope fraction.  HF's partial rotation of the "default" type
 * rotates a narrower head instead, which gemmac does not do. */
static gmc_status rope_entry(const char *path, const char *key, const gmrt_json_value *v,
                             double *theta, double *scale, double *fraction, gmc_diag *diag)
{
    if (v->kind == GMRT_JSON_NULL)
        return GMC_OK;
    if (v->kind != GMRT_JSON_OBJECT)
        return bad_value(path, key, v, "expected an object", diag);
    const gmrt_json_value *type = gmrt_json_get(v, "rope_type");
    if (!type)
        type = gmrt_json_get(v, "type");
    bool str = type && type->kind == GMRT_JSON_STRING;
    bool linear = str && strcmp(type->u.s.p, "linear") == 0;
    bool prop = str && strcmp(type->u.s.p, "proportional") == 0;
    bool plain = !type || (str && strcmp(type->u.s.p, "default") == 0);
    if (!linear && !plain && !prop)
        return bad_value(path, key, v, "only rope_type \"default\", \"linear\" and "
                         "\"proportional\" are supported", diag);
    for (size_t i = 0; i < v->u.c.n; i++) {
        const gmrt_json_member *m = &v->u.c.members[i];
        char k[128];
        snprintf(k, sizeof k, "%s.%s", key, m->key);
        double d;
        if (!strcmp(m->key, "rope_type") || !strcmp(m->key, "type"))
            continue;
        bool partial = !strcmp(m->key, "partial_rotary_factor");
        bool known = !strcmp(m->key, "rope_theta") || (!strcmp(m->key, "factor") && linear) ||
                     partial;
        if (!known)
            return bad_value(path, k, m->value, "unsupported field", diag);
        if (!gmrt_json_number(m->value, &d) || !(d > 0) || d > (partial ? 1 : 1e12))
            return bad_value(path, k, m->value, partial ? "expected a number in (0, 1]"
                                                        : "expected a positive number", diag);
        if (partial && !prop && d != 1)
            return bad_value(path, k, m->value, "partial rotation is supported only with "
                             "rope_type \"proportional\"", diag);
        if (!strcmp(m->key, "rope_theta"))
            *theta = d;
        else if (partial)
            *fraction = d;
        else
            *scale = d;
    }
    return GMC_OK;
}

/* rope_scaling (old configs: applies to global layers) and rope_parameters
 * (transformers 5: one entry, or one per layer type). */
static gmc_status read_rope(const char *path, const gmrt_json_value *cfg, import_spec *s,
                            gmc_diag *diag)
{
    const gmrt_json_value *v = gmrt_json_get(cfg, "rope_scaling");
    double unused = 0, unused_f = 0;
    if (v && rope_entry(path, "rope_scaling", v, &unused, &s->global_scale, &unused_f,
                        diag) != GMC_OK)
        return diag->status;
    if (!(v = gmrt_json_get(cfg, "rope_parameters")))
        return GMC_OK;
    const gmrt_json_value *full = gmrt_json_get(v, "full_attention");
    const gmrt_json_value *slide = gmrt_json_get(v, "sliding_attention");
    if (!full && !slide) {
        gmc_status st = rope_entry(path, "rope_parameters", v, &s->global_theta,
                                   &s->global_scale, &s->global_fraction, diag);
        s->local_theta = s->global_theta;
        s->local_scale = s->global_scale;
        s->local_fraction = s->global_fraction;
        return st;
    }
    if (v->u.c.n != (size_t)(!!full + !!slide))
        return bad_value(path, "rope_parameters", v, "expected only full_attention and "
                         "sliding_attention entries", diag);
    if (full && rope_entry(path, "rope_parameters.full_attention", full, &s->global_theta,
                           &s->global_scale, &s->global_fraction, diag) != GMC_OK)
        return diag->status;
    if (slide)
        return rope_entry(path, "rope_parameters.sliding_attention", slide, &s->local_theta,
                          &s->local_scale, &s->local_fraction, diag);
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

/* Whether key is one of the multimodal wrapper's own (not the text
 * model's): the towers, their token ids and HF bookkeeping. */
static bool wrapper_key(const char *key)
{
    static const char *const top[] = {"model_type", "text_config", "vision_config",
        "audio_config", "architectures", "mm_tokens_per_image", "initializer_range",
        "torch_dtype", "dtype", "transformers_version", "_name_or_path",
        "tie_word_embeddings", "vision_soft_tokens_per_image", "audio_soft_tokens_per_image",
        "use_cache"};
    for (size_t k = 0; k < sizeof top / sizeof top[0]; k++)
        if (!strcmp(top[k], key))
            return true;
    size_t n = strlen(key);
    return (n > 9 && !strcmp(key + n - 9, "_token_id")) ||
           (n > 12 && !strcmp(key + n - 12, "_token_index"));
}

static gmc_status read_family(const char *path, const gmrt_json_value **cfg, import_spec *s,
                              gmc_diag *diag)
{
    const gmrt_json_value *mt = gmrt_json_get(*cfg, "model_type");
    if (!mt || mt->kind != GMRT_JSON_STRING)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: no \"model_type\" string", path);
    if (!strcmp(mt->u.s.p, "gemma3") || !strcmp(mt->u.s.p, "gemma3n") ||
        !strcmp(mt->u.s.p, "gemma4")) {
        /* Multimodal: the text model is text_config; the rest is the vision
         * (and audio) towers and their token ids, which text decoding does
         * not use. */
        for (size_t i = 0; i < (*cfg)->u.c.n; i++) {
            const gmrt_json_member *m = &(*cfg)->u.c.members[i];
            if (!wrapper_key(m->key))
                return bad_value(path, m->key, m->value, "unsupported field", diag);
        }
        const gmrt_json_value *tc = gmrt_json_get(*cfg, "text_config");
        if (!tc || tc->kind != GMRT_JSON_OBJECT)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: model_type \"%s\" needs a "
                            "\"text_config\" object", path, mt->u.s.p);
        s->family = !strcmp(mt->u.s.p, "gemma3") ? "gemma3"
                    : !strcmp(mt->u.s.p, "gemma3n") ? "gemma3n" : "gemma4";
        *cfg = tc;
        return GMC_OK;
    }
    static const char *const types[][2] = {
        {"gemma", "gemma"}, {"gemma2", "gemma2"}, {"gemma3_text", "gemma3"},
        {"gemma3n_text", "gemma3n"}, {"gemma4_text", "gemma4"}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(mt->u.s.p, types[i][0])) {
            s->family = types[i][1];
            return GMC_OK;
        }
    return bad_value(path, "model_type", mt, "expected gemma, gemma2, gemma3_text, gemma3, "
                     "gemma3n_text, gemma3n, gemma4_text or gemma4", diag);
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

/*
 * embed_scale: transformers multiplies the embeddings by sqrt(hidden_size)
 * cast to the checkpoint's dtype, so a bfloat16 checkpoint rounds it and a
 * float32 one uses the exact value (gemma4-README.md §4.1; docs/models.md#embedding-scale).  The
 * dtype is config.json's "dtype" (transformers 5) or "torch_dtype"
 * (transformers 4), in the text config or else in the multimodal wrapper.
 * "gemmac_embed_scale" (written by gemmac's fixture scripts, whose
 * configs say "dtype": null) is used when there is no dtype and must agree
 * with it when there is.  With neither: bf16, as Google's checkpoints are.
 */
static gmc_status read_embed_scale(const char *path, const gmrt_json_value *outer,
                                   const gmrt_json_value *cfg, import_spec *s, gmc_diag *diag)
{
    static const char *const keys[] = {"dtype", "torch_dtype"};
    const gmrt_json_value *const where[] = {cfg, outer};
    const char *from = NULL;
    for (int w = 0; w < 2 && !s->embed_scale; w++)
        for (int k = 0; k < 2 && !s->embed_scale; k++) {
            const gmrt_json_value *v = gmrt_json_get(where[w], keys[k]);
            if (!v || v->kind == GMRT_JSON_NULL)
                continue;
            from = keys[k];
            if (v->kind == GMRT_JSON_STRING && !strcmp(v->u.s.p, "bfloat16"))
                s->embed_scale = "bf16";
            else if (v->kind == GMRT_JSON_STRING && !strcmp(v->u.s.p, "float32"))
                s->embed_scale = "exact";
            else
                return bad_value(path, keys[k], v, "the embedding scale sqrt(hidden_size) is "
                                 "rounded to the checkpoint dtype; gemmac has bfloat16 (bf16) "
                                 "and float32 (exact) only", diag);
        }
    const gmrt_json_value *e = gmrt_json_get(cfg, "gemmac_embed_scale");
    if (!e)
        return GMC_OK;
    const char *g = strcmp(e->u.s.p, "exact") ? "bf16" : "exact"; /* checked: bf16|exact */
    if (s->embed_scale && strcmp(s->embed_scale, g))
        return bad_value(path, "gemmac_embed_scale", e, from && !strcmp(from, "dtype")
                         ? "contradicts \"dtype\"" : "contradicts \"torch_dtype\"", diag);
    s->embed_scale = g; /* a static string: the document is freed before writing */
    return GMC_OK;
}

/* A JSON bool or null (false) of a Gemma 4 config. */
static gmc_status json_flag(const char *path, const gmrt_json_value *cfg, const char *key,
                            bool *out, gmc_diag *diag)
{
    const gmrt_json_value *v = gmrt_json_get(cfg, key);
    *out = false;
    if (!v || v->kind == GMRT_JSON_NULL)
        return GMC_OK;
    if (v->kind != GMRT_JSON_BOOL)
        return bad_value(path, key, v, "expected true, false or null", diag);
    *out = v->u.b;
    return GMC_OK;
}

/*
 * per_layer_config (transformers 5.25): {"<layer>": {"head_dim": G,
 * "num_key_value_heads": n}} for the full-attention layers, in place of
 * global_head_dim / num_global_key_value_heads (gemma4-README.md §0).  Every
 * entry must name a global layer, every global layer must have one, and all
 * must agree: the graph has one set of global widths.  Where the top-level
 * keys are also present, they must say the same.
 */
static gmc_status read_per_layer_config(const char *path, const gmrt_json_value *v,
                                        import_spec *s, gmc_diag *diag)
{
    if (!v || v->kind == GMRT_JSON_NULL || (v->kind == GMRT_JSON_OBJECT && v->u.c.n == 0))
        return GMC_OK;
    if (v->kind != GMRT_JSON_OBJECT)
        return bad_value(path, "per_layer_config", v, "expected an object", diag);
    long hd = 0, kv = 0, n_global = 0;
    for (long l = 0; l < s->layers; l++)
        n_global += is_global(s, l);
    if ((long)v->u.c.n != n_global)
        return bad_value(path, "per_layer_config", v, "expected one entry per "
                         "full_attention layer", diag);
    for (size_t i = 0; i < v->u.c.n; i++) {
        const gmrt_json_member *m = &v->u.c.members[i];
        char key[160], *end;
        snprintf(key, sizeof key, "per_layer_config.%.40s", m->key);
        long l = strtol(m->key, &end, 10);
        if (*end || end == m->key || l < 0 || l >= s->layers || !is_global(s, l))
            return bad_value(path, key, m->value, "expected the index of a full_attention "
                             "layer", diag);
        if (m->value->kind != GMRT_JSON_OBJECT)
            return bad_value(path, key, m->value, "expected an object", diag);
        long e_hd = s->head_dim, e_kv = s->kv_heads;
        for (size_t j = 0; j < m->value->u.c.n; j++) {
            const gmrt_json_member *f = &m->value->u.c.members[j];
            char fk[240];
            snprintf(fk, sizeof fk, "%s.%s", key, f->key);
            bool is_hd = !strcmp(f->key, "head_dim"), is_kv = !strcmp(f->key, "num_key_value_heads");
            if (!is_hd && !is_kv)
                return bad_value(path, fk, f->value, "unsupported field", diag);
            if (f->value->kind != GMRT_JSON_INT || f->value->u.i < (is_hd ? 2 : 1) ||
                f->value->u.i > 1024)
                return bad_value(path, fk, f->value, is_hd ? "expected an integer in [2, 1024]"
                                                           : "expected an integer in [1, 1024]",
                                 diag);
            *(is_hd ? &e_hd : &e_kv) = (long)f->value->u.i;
        }
        if ((hd && e_hd != hd) || (kv && e_kv != kv))
            return bad_value(path, key, m->value, "full_attention layers with different "
                             "widths are not supported", diag);
        hd = e_hd;
        kv = e_kv;
    }
    if (s->global_head_dim && s->global_head_dim != hd)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: \"global_head_dim\" = %ld but "
                        "per_layer_config gives the full_attention layers head_dim %ld",
                        path, s->global_head_dim, hd);
    s->global_head_dim = hd;
    s->global_kv_heads = kv;
    return GMC_OK;
}

/* Gemma 4: global widths, K = V, KV sharing and its double-wide FFN,
 * per-layer embeddings and the experts, each checked against the rest. */
static gmc_status read_gemma4(const char *path, const gmrt_json_value *cfg, import_spec *s,
                              gmc_diag *diag)
{
    bool moe, wide;
    GMC_TRY(json_flag(path, cfg, "attention_k_eq_v", &s->k_eq_v, diag));
    GMC_TRY(json_flag(path, cfg, "enable_moe_block", &moe, diag));
    GMC_TRY(json_flag(path, cfg, "use_double_wide_mlp", &wide, diag));
    /* HF uses num_global_key_value_heads only together with K = V. */
    if (!s->k_eq_v)
        s->global_kv_heads = 0;
    const gmrt_json_value *plc = gmrt_json_get(cfg, "per_layer_config");
    long top_kv = s->global_kv_heads;
    GMC_TRY(read_per_layer_config(path, plc, s, diag));
    if (plc && top_kv && s->global_kv_heads != top_kv)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: \"num_global_key_value_heads\" = %ld but "
                        "per_layer_config gives the full_attention layers %ld KV heads",
                        path, top_kv, s->global_kv_heads);
    if (s->global_head_dim == s->head_dim)
        s->global_head_dim = 0;
    if (s->global_kv_heads == s->kv_heads)
        s->global_kv_heads = 0;
    if (s->kv_shared >= s->layers)
        return bad_value(path, "num_kv_shared_layers", gmrt_json_get(cfg, "num_kv_shared_layers"),
                         "must leave at least one layer that computes K/V", diag);
    if (wide && s->kv_shared > 0)
        s->shared_ffn_dim = 2 * s->ffn_dim;
    if (s->ple_dim > 0 && s->ple_vocab && s->ple_vocab != s->vocab)
        return bad_value(path, "vocab_size_per_layer_input",
                         gmrt_json_get(cfg, "vocab_size_per_layer_input"),
                         "must equal vocab_size (the per-layer table is indexed by token)", diag);
    static const char *const moe_keys[] = {"num_experts", "top_k_experts",
                                           "moe_intermediate_size"};
    long *moe_vals[] = {&s->experts, &s->top_k, &s->expert_dim};
    for (int i = 0; i < 3; i++) {
        if (!moe)
            *moe_vals[i] = 0; /* HF ignores them without enable_moe_block */
        else if (!*moe_vals[i])
            return gmc_fail(diag, GMC_ERR_SCHEMA, "%s: \"enable_moe_block\" is true but "
                            "\"%s\" is missing or null", path, moe_keys[i]);
    }
    const gmrt_json_value *q = gmrt_json_get(cfg, "query_pre_attn_scalar");
    if (q && q->kind != GMRT_JSON_NULL)
        return bad_value(path, "query_pre_attn_scalar", q, "Gemma 4 scales queries by 1 "
                         "(the QK norms carry the scale)", diag);
    return GMC_OK;
}

/*
 * activation_sparsity_pattern: one target sparsity per layer (0 = dense).
 * gemmac's graph has one sparsity for the first ffn.sparse_layers layers,
 * so the pattern must be p (0 < p < 1) for the first N layers and 0 after
 * them, as every released Gemma 3n config has it (0.95 for 10 layers).
 * Absent or null: transformers' default, 0.95 on the first 10 layers of a
 * model of more than 10.
 */
static gmc_status read_sparsity(const char *path, const gmrt_json_value *cfg, import_spec *s,
                                gmc_diag *diag)
{
    const char *key = "activation_sparsity_pattern";
    const gmrt_json_value *v = gmrt_json_get(cfg, key);
    if (!v || v->kind == GMRT_JSON_NULL) {
        if (s->layers > 10)
            s->sparsity = 0.95, s->sparse_layers = 10;
        return GMC_OK;
    }
    if (v->kind != GMRT_JSON_ARRAY || (long)v->u.c.n != s->layers)
        return bad_value(path, key, v, "expected one number per layer", diag);
    bool dense_seen = false;
    for (size_t i = 0; i < v->u.c.n; i++) {
        double d;
        if (!gmrt_json_number(&v->u.c.items[i], &d) || !(d >= 0) || d >= 1)
            return bad_value(path, key, v, "expected numbers in [0, 1)", diag);
        if (d == 0)
            dense_seen = true;
        else if (!dense_seen && (s->sparse_layers == 0 || d == s->sparsity))
            s->sparsity = d, s->sparse_layers++;
        else
            return bad_value(path, key, v, "gemmac takes one sparsity for the first N layers "
                             "and dense layers after them (ffn.sparsity, ffn.sparse_layers): "
                             "expected [p, ..., p, 0, ..., 0]", diag);
    }
    return GMC_OK;
}

/* Gemma 3n: the per-layer FFN list, AltUp's correct scale, the sparsity
 * pattern, KV sharing and the per-layer table, each checked against the
 * rest.  query_pre_attn_scalar is not read: transformers' Gemma 3n scales
 * queries by 1 whatever a config says (the QK norms carry the scale). */
static gmc_status read_gemma3n(const char *path, const gmrt_json_value *cfg, import_spec *s,
                               gmc_diag *diag)
{
    const gmrt_json_value *v = gmrt_json_get(cfg, "intermediate_size");
    if (v && v->kind == GMRT_JSON_ARRAY && (long)v->u.c.n != s->layers)
        return bad_value(path, "intermediate_size", v, "expected one entry per layer", diag);
    v = gmrt_json_get(cfg, "altup_correct_scale");
    if (v && v->kind != GMRT_JSON_BOOL)
        return bad_value(path, "altup_correct_scale", v, "expected true or false", diag);
    s->altup_no_correct_scale = v && !v->u.b;
    if (s->altup_active >= s->altup_streams)
        return bad_value(path, "altup_active_idx", gmrt_json_get(cfg, "altup_active_idx"),
                         "must be below altup_num_inputs", diag);
    if (s->kv_shared >= s->layers)
        return bad_value(path, "num_kv_shared_layers", gmrt_json_get(cfg, "num_kv_shared_layers"),
                         "must leave at least one layer that computes K/V", diag);
    /* The released models' per-layer table has 262144 rows for 262400
     * tokens: the 256 above it are audio and image ids.  The graph's
     * table has a row per token (llama.cpp pads it with zero rows; the
     * safetensors binding does the same). */
    if (s->ple_dim > 0 && s->ple_vocab > s->vocab)
        return bad_value(path, "vocab_size_per_layer_input",
                         gmrt_json_get(cfg, "vocab_size_per_layer_input"),
                         "must be at most vocab_size", diag);
    return read_sparsity(path, cfg, s, diag);
}

static gmc_status read_config_fields(const char *path, const gmrt_json_value *outer,
                                     const gmrt_json_value *cfg, import_spec *s,
                                     gmc_diag *diag)
{
    GMC_TRY(check_required(path, cfg, diag));
    bool g4 = !strcmp(s->family, "gemma4"), g3n = !strcmp(s->family, "gemma3n");
    s->head_dim = 256;
    s->norm_eps = 1e-6;
    s->local_theta = 10000;
    s->global_theta = !strcmp(s->family, "gemma3") || g3n || g4 ? 1e6 : 10000;
    if (g3n) { /* Gemma3nTextConfig's defaults for the keys a config may omit */
        s->altup_streams = 4;
        s->altup_clip = 120;
        s->laurel_rank = 64;
        s->ple_dim = 256;
        s->kv_shared = 15;
        s->final_softcap = 30;
    }
    s->local_scale = s->global_scale = 1;
    for (size_t i = 0; i < cfg->u.c.n; i++)
        GMC_TRY(apply_field(path, &cfg->u.c.members[i], s, diag));
    if (!strcmp(s->family, "gemma") || !strcmp(s->family, "gemma2"))
        s->local_theta = s->global_theta; /* one theta before Gemma 3 */
    GMC_TRY(check_fixed(path, cfg, diag));
    GMC_TRY(read_rope(path, cfg, s, diag));
    const gmrt_json_value *q = gmrt_json_get(cfg, "query_pre_attn_scalar");
    double qs;
    if (q && q->kind != GMRT_JSON_NULL && !g4 && !g3n) {
        if (!gmrt_json_number(q, &qs) || !(qs > 0) || qs > 1e9)
            return bad_value(path, "query_pre_attn_scalar", q, "expected a positive number",
                             diag);
        if (qs != (double)s->head_dim)
            s->query_scale = 1.0 / sqrt(qs);
    }
    GMC_TRY(read_embed_scale(path, outer, cfg, s, diag));
    if (!strcmp(s->family, "gemma"))
        s->window = 0;
    GMC_TRY(read_pattern(path, cfg, s, diag));
    return g4 ? read_gemma4(path, cfg, s, diag) : g3n ? read_gemma3n(path, cfg, s, diag) : GMC_OK;
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
            s->wtype[l * GMC_W_COUNT + c] =
                spec_has(s, l, c) ? block_fallback(t, class_width(s, l, c)) : -1;
    /* The per-layer table's rows are looked up per layer: P-wide slices. */
    s->ple_type = block_fallback(t, s->ple_dim ? s->ple_dim : 1);
    s->ple_proj_type = block_fallback(t, s->d_model);
    s->kv_type = t == GMK_DTYPE_F32 ? GMK_DTYPE_F32 : GMK_DTYPE_F16;
    s->altup_type = GMK_DTYPE_F32; /* small and once per token: kept exact */
    return GMC_OK;
}

static gmc_status import_config(const char *path, const char *text, size_t len,
                                const gmc_import_opts *o, import_spec *s, gmc_diag *diag)
{
    gmrt_json *doc;
    gmrt_diag rd = {0};
    if (gmrt_json_parse(text, len, path, NULL, &doc, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SYNTAX, "%s", rd.msg);
    const gmrt_json_value *cfg = gmrt_json_root(doc), *outer = cfg;
    gmc_status st = cfg->kind == GMRT_JSON_OBJECT
                        ? read_family(path, &cfg, s, diag)
                        : gmc_fail(diag, GMC_ERR_SCHEMA, "%s: expected a JSON object", path);
    if (st == GMC_OK)
        st = read_config_fields(path, outer, cfg, s, diag);
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

/* ... and those only llama.cpp's gemma4 files have (gemma4-README.md §3). */
static const char *const gguf_keys4[] = {
    "attention.key_length_swa", "attention.value_length_swa", "rope.dimension_count",
    "rope.dimension_count_swa", "attention.shared_kv_layers",
    "embedding_length_per_layer_input", "expert_count", "expert_used_count",
    "expert_feed_forward_length",
};

/* ... and those only llama.cpp's gemma3n files have (gemma3n-README.md §3). */
static const char *const gguf_keys3n[] = {
    "altup.active_idx", "altup.num_inputs", "embedding_length_per_layer_input",
    "attention.shared_kv_layers", "activation_sparsity_scale", "rope.dimension_count",
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
        bool known = false;
        for (size_t j = 0; j < sizeof gguf_keys / sizeof gguf_keys[0] && !known; j++)
            known = !strcmp(gguf_keys[j], k + al + 1);
        for (size_t j = 0; j < sizeof gguf_keys4 / sizeof gguf_keys4[0] && !known; j++)
            known = !strcmp(arch, "gemma4") && !strcmp(gguf_keys4[j], k + al + 1);
        for (size_t j = 0; j < sizeof gguf_keys3n / sizeof gguf_keys3n[0] && !known; j++)
            known = !strcmp(arch, "gemma3n") && !strcmp(gguf_keys3n[j], k + al + 1);
        if (!known)
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

/* A per-layer GGUF value: an INT32 array of block_count entries, or one
 * integer for every layer (gemma4-README.md §3: llama.cpp writes the array
 * only where the layers differ). */
static gmc_status gguf_per_layer(const gmrt_gguf *g, const char *arch, const char *k, long lo,
                                 long hi, long *out, long n, gmc_diag *diag)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    const int32_t *v;
    uint64_t cnt;
    if (gmrt_gguf_get_i32s(g, key, &v, &cnt, NULL) == GMRT_OK) {
        if ((long)cnt != n)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s has %" PRIu64 " entries, not one "
                            "per layer (%ld)", key, cnt, n);
        for (long i = 0; i < n; i++) {
            if (v[i] < lo || v[i] > hi)
                return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s[%ld] = %d is out of range "
                                "[%ld, %ld]", key, i, v[i], lo, hi);
            out[i] = v[i];
        }
        return GMC_OK;
    }
    long x = 0;
    GMC_TRY(gguf_int(g, arch, k, lo, hi, true, &x, diag));
    for (long i = 0; i < n; i++)
        out[i] = x;
    return GMC_OK;
}

/* The one value of vals over the layers l with pick(l) (local, global,
 * KV-shared ...); layers that disagree are an error naming the key. */
static gmc_status one_value(const import_spec *s, const char *key, const long *vals,
                            bool (*pick)(const import_spec *, long, bool), bool which,
                            long *out, gmc_diag *diag)
{
    long first = -1;
    for (long l = 0; l < s->layers; l++) {
        if (!pick(s, l, which))
            continue;
        if (first < 0)
            first = l, *out = vals[l];
        else if (vals[l] != *out)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s: layer %ld has %ld but layer %ld "
                            "of the same kind has %ld (gemmac has one value per layer kind)",
                            key, l, vals[l], first, *out);
    }
    return GMC_OK;
}

static bool pick_kind(const import_spec *s, long l, bool global) { return is_global(s, l) == global; }
static bool pick_shared(const import_spec *s, long l, bool shared)
{
    return (l >= s->layers - s->kv_shared) == shared;
}

/* gemma3n / gemma4 layer pattern: sliding_window_pattern is a BOOL per
 * layer, true = sliding; its shortest period becomes layers.pattern. */
static gmc_status gguf_pattern4(const gmrt_gguf *g, const char *arch, import_spec *s,
                                gmc_diag *diag)
{
    const uint8_t *b;
    uint64_t n;
    gmrt_diag rd = {0};
    char key[96];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    if (gmrt_gguf_get_bools(g, key, &b, &n, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s", rd.msg);
    if ((long)n != s->layers)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s has %" PRIu64 " entries, not one "
                        "per layer (%ld)", key, n, s->layers);
    bool kinds[PATTERN_MAX];
    for (long i = 0; i < s->layers; i++)
        kinds[i] = !b[i];
    s->pattern_len = min_period(kinds, (int)s->layers);
    memcpy(s->pattern_global, kinds, (size_t)s->pattern_len * sizeof *kinds);
    return GMC_OK;
}

/* The global RoPE fraction from rope_freqs.weight: llama.cpp runs Gemma 4's
 * proportional RoPE as NeoX rotation over the whole head with frequency
 * factors 1 (rotating pairs, first) and 1e30 (pairs that stand still). */
static gmc_status gguf_rope_freqs(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "rope_freqs.weight");
    long pairs = (s->global_head_dim ? s->global_head_dim : s->head_dim) / 2;
    if (!t)
        return GMC_OK;
    if (t->dtype != GMK_DTYPE_F32 || t->n_dims != 1 || t->ne[0] != pairs)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: rope_freqs.weight must be F32 {%ld} "
                        "(half the global head dim)", pairs);
    long r = 0;
    for (long i = 0; i < pairs; i++) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4);
        bool one = f == 1.0f, still = f >= 1e20f;
        if (!(one && r == i) && !still)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: rope_freqs.weight[%ld] = %g: only "
                            "factors 1 (the first pairs) and >= 1e20 (pairs that do not "
                            "rotate) are supported", i, (double)f);
        r += one;
    }
    if (r == 0)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: rope_freqs.weight: no pair rotates");
    s->global_fraction = (double)r / (double)pairs;
    return GMC_OK;
}

/* K = V from the tensors: the global layers that own their KV have no
 * attn_v (all of them, or none). */
static gmc_status gguf_k_eq_v(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    int with = 0, without = 0;
    for (long l = 0; l < s->layers - s->kv_shared; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%ld.attn_v.weight", l);
        if (is_global(s, l))
            *(gmrt_gguf_find_tensor(g, name) ? &with : &without) += 1;
    }
    if (with && without)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: some global layers have attn_v and "
                        "others do not (K = V must hold for all or none)");
    s->k_eq_v = without > 0;
    return GMC_OK;
}

/* What gemma3n and gemma4 files say alike: only known keys, the context,
 * widths, layer count, heads and the BOOL sliding pattern. */
static gmc_status gguf_dims_common(const gmrt_gguf *g, const char *a, import_spec *s,
                                   gmc_diag *diag)
{
    GMC_TRY(gguf_check_keys(g, a, diag));
    GMC_TRY(gguf_int(g, a, "context_length", 1, 1048576, true, &s->context, diag));
    GMC_TRY(gguf_int(g, a, "embedding_length", 1, 65536, true, &s->d_model, diag));
    GMC_TRY(gguf_int(g, a, "block_count", 1, 1024, true, &s->layers, diag));
    GMC_TRY(gguf_int(g, a, "attention.head_count", 1, 1024, true, &s->heads, diag));
    GMC_TRY(gguf_pattern4(g, a, s, diag));
    return GMC_OK;
}

/* llama.cpp gemma4: key_length / value_length are the global head dim,
 * *_swa the local one; head_count_kv and feed_forward_length may be per
 * layer; the rotated share comes from rope_freqs. */
static gmc_status gguf_dims4(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const char *a = "gemma4";
    GMC_TRY(gguf_dims_common(g, a, s, diag));
    GMC_TRY(gguf_int(g, a, "attention.shared_kv_layers", 0, s->layers - 1, false,
                     &s->kv_shared, diag));
    long vals[PATTERN_MAX];
    GMC_TRY(gguf_per_layer(g, a, "attention.head_count_kv", 1, 1024, vals, s->layers, diag));
    GMC_TRY(one_value(s, "gemma4.attention.head_count_kv", vals, pick_kind, false,
                      &s->kv_heads, diag));
    GMC_TRY(one_value(s, "gemma4.attention.head_count_kv", vals, pick_kind, true,
                      &s->global_kv_heads, diag));
    GMC_TRY(gguf_per_layer(g, a, "feed_forward_length", 1, 1048576, vals, s->layers, diag));
    GMC_TRY(one_value(s, "gemma4.feed_forward_length", vals, pick_shared, false, &s->ffn_dim,
                      diag));
    GMC_TRY(one_value(s, "gemma4.feed_forward_length", vals, pick_shared, true,
                      &s->shared_ffn_dim, diag));
    static const char *const hd_keys[][2] = {{"attention.key_length_swa",
        "attention.value_length_swa"}, {"attention.key_length", "attention.value_length"}};
    long hd[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        long v = 0;
        GMC_TRY(gguf_int(g, a, hd_keys[i][0], 2, 1024, true, &hd[i], diag));
        GMC_TRY(gguf_int(g, a, hd_keys[i][1], 2, 1024, false, &v, diag));
        if (v && v != hd[i])
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: gemma4.%s %ld differs from %s %ld "
                            "(not supported)", hd_keys[i][1], v, hd_keys[i][0], hd[i]);
        v = hd[i];
        GMC_TRY(gguf_int(g, a, i ? "rope.dimension_count" : "rope.dimension_count_swa", 2,
                         1024, false, &v, diag));
        if (v != hd[i])
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: gemma4.rope.dimension_count%s = %ld "
                            "is not the head dim %ld (partial NeoX rotation is not supported)",
                            i ? "" : "_swa", v, hd[i]);
    }
    s->head_dim = hd[0];
    s->global_head_dim = hd[1];
    GMC_TRY(gguf_int(g, a, "attention.sliding_window", 1, 1048576, false, &s->window, diag));
    s->norm_eps = 1e-6;
    GMC_TRY(gguf_num(g, a, "attention.layer_norm_rms_epsilon", &s->norm_eps, diag));
    GMC_TRY(gguf_num(g, a, "attn_logit_softcapping", &s->softcap, diag));
    GMC_TRY(gguf_num(g, a, "final_logit_softcapping", &s->final_softcap, diag));
    s->global_theta = 1e6;
    s->local_theta = 10000;
    s->local_scale = s->global_scale = 1;
    GMC_TRY(gguf_num(g, a, "rope.freq_base", &s->global_theta, diag));
    GMC_TRY(gguf_num(g, a, "rope.freq_base_swa", &s->local_theta, diag));
    GMC_TRY(gguf_int(g, a, "embedding_length_per_layer_input", 0, 65536, false, &s->ple_dim,
                     diag));
    if (gmrt_gguf_has_key(g, "gemma4.expert_count")) {
        GMC_TRY(gguf_int(g, a, "expert_count", 1, 4096, true, &s->experts, diag));
        GMC_TRY(gguf_int(g, a, "expert_used_count", 1, 4096, true, &s->top_k, diag));
        GMC_TRY(gguf_int(g, a, "expert_feed_forward_length", 1, 1048576, true,
                         &s->expert_dim, diag));
    }
    if (s->global_head_dim == s->head_dim)
        s->global_head_dim = 0;
    if (s->global_kv_heads == s->kv_heads)
        s->global_kv_heads = 0;
    if (s->shared_ffn_dim == s->ffn_dim)
        s->shared_ffn_dim = 0;
    GMC_TRY(gguf_rope_freqs(g, s, diag));
    return gguf_k_eq_v(g, s, diag);
}

static bool pick_all(const import_spec *s, long l, bool all)
{
    (void)s;
    (void)l;
    return all;
}

/* A count that llama.cpp's converter writes as given in the HF config:
 * an integer, or a float holding one (gemma3n's shared_kv_layers). */
static gmc_status gguf_count(const gmrt_gguf *g, const char *arch, const char *k, long hi,
                             long *out, gmc_diag *diag)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    if (!gmrt_gguf_has_key(g, key))
        return GMC_OK;
    int64_t i;
    double d;
    gmrt_diag rd = {0};
    if (gmrt_gguf_get_int(g, key, &i, &rd) == GMRT_OK)
        d = (double)i;
    else if (gmrt_gguf_get_float(g, key, &d, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s: expected an integer or a float", key);
    if (!(d >= 0) || d > (double)hi || d != floor(d))
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s = %g: expected a whole number in "
                        "[0, %ld]", key, d, hi);
    *out = (long)d;
    return GMC_OK;
}

/*
 * gemma3n.activation_sparsity_scale: per layer, the Gaussian top-k's
 * multiplier k = Φ⁻¹(p) of the target sparsity p, -inf on a dense layer
 * (the converter's icdf(0)).  The graph's form: one p for the first N
 * layers, dense after them; p = Φ(k), which gives back k in f32 when the
 * graph takes the quantile again (gemma3n-README.md §4.3 step 8).
 */
static gmc_status gguf_sparsity(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const char *key = "gemma3n.activation_sparsity_scale";
    if (!gmrt_gguf_has_key(g, key))
        return GMC_OK;
    const float *v;
    uint64_t n;
    gmrt_diag rd = {0};
    if (gmrt_gguf_get_f32s(g, key, &v, &n, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s", rd.msg);
    if ((long)n != s->layers)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s has %" PRIu64 " entries, not one per "
                        "layer (%ld)", key, n, s->layers);
    float k = 0;
    bool dense = false;
    for (long l = 0; l < s->layers; l++) {
        if (isinf(v[l]) && v[l] < 0)
            dense = true;
        else if (!isfinite(v[l]) || dense || (s->sparse_layers && v[l] != k))
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s[%ld] = %g: gemmac takes one "
                            "sparsity for the first N layers and dense layers (-inf) after "
                            "them (ffn.sparsity, ffn.sparse_layers)", key, l, (double)v[l]);
        else
            k = v[l], s->sparse_layers++;
    }
    if (s->sparse_layers) {
        s->sparsity = 0.5 * erfc(-(double)k / sqrt(2.0));
        if (!(s->sparsity > 0 && s->sparsity < 1))
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: %s = %g: the sparsity Φ(scale) = %g "
                            "is not in (0, 1)", key, (double)k, s->sparsity);
    }
    return GMC_OK;
}

/* llama.cpp gemma3n: the bool sliding pattern, per-layer FFN widths (one
 * value), AltUp's streams and active index, the per-layer embedding width,
 * KV sharing and the sparsity scales (gemma3n-README.md §3).  The LAuReL
 * rank and AltUp's correct scale come from the tensors (gguf_types). */
static gmc_status gguf_dims3n(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const char *a = "gemma3n";
    GMC_TRY(gguf_dims_common(g, a, s, diag));
    GMC_TRY(gguf_count(g, a, "attention.shared_kv_layers", s->layers - 1, &s->kv_shared, diag));
    long vals[PATTERN_MAX];
    GMC_TRY(gguf_per_layer(g, a, "attention.head_count_kv", 1, 1024, vals, s->layers, diag));
    GMC_TRY(one_value(s, "gemma3n.attention.head_count_kv", vals, pick_all, true,
                      &s->kv_heads, diag));
    GMC_TRY(gguf_per_layer(g, a, "feed_forward_length", 1, 1048576, vals, s->layers, diag));
    GMC_TRY(one_value(s, "gemma3n.feed_forward_length", vals, pick_all, true, &s->ffn_dim,
                      diag));
    s->head_dim = s->d_model / s->heads;
    GMC_TRY(gguf_int(g, a, "attention.key_length", 2, 1024, false, &s->head_dim, diag));
    long v = s->head_dim;
    GMC_TRY(gguf_int(g, a, "attention.value_length", 2, 1024, false, &v, diag));
    if (v != s->head_dim)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: gemma3n.attention.value_length %ld differs "
                        "from key_length %ld (not supported)", v, s->head_dim);
    GMC_TRY(gguf_int(g, a, "rope.dimension_count", 2, 1024, false, &v, diag));
    if (v != s->head_dim)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: gemma3n.rope.dimension_count = %ld is not "
                        "the head dim %ld (partial rotation is not supported)", v, s->head_dim);
    GMC_TRY(gguf_int(g, a, "attention.sliding_window", 1, 1048576, false, &s->window, diag));
    s->norm_eps = 1e-6;
    GMC_TRY(gguf_num(g, a, "attention.layer_norm_rms_epsilon", &s->norm_eps, diag));
    GMC_TRY(gguf_num(g, a, "attn_logit_softcapping", &s->softcap, diag));
    GMC_TRY(gguf_num(g, a, "final_logit_softcapping", &s->final_softcap, diag));
    s->global_theta = 1e6;
    s->local_theta = 10000;
    s->local_scale = s->global_scale = 1;
    GMC_TRY(gguf_num(g, a, "rope.freq_base", &s->global_theta, diag));
    GMC_TRY(gguf_num(g, a, "rope.freq_base_swa", &s->local_theta, diag));
    GMC_TRY(gguf_int(g, a, "altup.num_inputs", 2, 16, true, &s->altup_streams, diag));
    GMC_TRY(gguf_int(g, a, "altup.active_idx", 0, s->altup_streams - 1, false,
                     &s->altup_active, diag));
    s->altup_clip = 120; /* not in the file; HF's default, inert at inference */
    GMC_TRY(gguf_int(g, a, "embedding_length_per_layer_input", 0, 65536, false, &s->ple_dim,
                     diag));
    return gguf_sparsity(g, s, diag);
}

static gmc_status gguf_type_of(const gmrt_gguf *g, const char *name, int32_t *out,
                               gmc_diag *diag);

/* gemma3n tensors that say what the metadata does not: the LAuReL rank
 * (laurel_l is {D, R}), whether AltUp's correction is scaled
 * (altup_correct_scale present), the type of the AltUp projections. */
static gmc_status gguf_tensors3n(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "blk.0.laurel_l.weight");
    if (t && (t->n_dims != 2 || t->ne[0] != s->d_model || t->ne[1] < 1 || t->ne[1] > 65536))
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: blk.0.laurel_l.weight must be "
                        "{%ld, rank}", s->d_model);
    s->laurel_rank = t ? (long)t->ne[1] : 0;
    s->altup_no_correct_scale = !gmrt_gguf_find_tensor(g, "blk.0.altup_correct_scale.weight");
    return gguf_type_of(g, "altup_proj.weight", &s->altup_type, diag);
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

/* The type of a tensor the graph reads, refused if gemmac cannot. */
static gmc_status gguf_type_of(const gmrt_gguf *g, const char *name, int32_t *out,
                               gmc_diag *diag)
{
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, name);
    if (!t)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: tensor %s is missing", name);
    if (!gmrt_dtype_supported(t->dtype))
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: tensor %s has type %s, which "
                        "gemmac does not support", name,
                        gmrt_dtype_name(t->dtype) ? gmrt_dtype_name(t->dtype) : "?");
    *out = t->dtype;
    return GMC_OK;
}

/* Tensor types: token_embd, the per-layer embedding tensors, and
 * blk.N.<class>.weight for each class the layer has. */
static gmc_status gguf_types(const gmrt_gguf *g, import_spec *s, gmc_diag *diag)
{
    const gmrt_gguf_tensor *e = gmrt_gguf_find_tensor(g, "token_embd.weight");
    if (!e || e->n_dims != 2)
        return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: no 2-D token_embd.weight");
    s->vocab = (long)e->ne[1];
    s->embed_type = e->dtype;
    s->kv_type = GMK_DTYPE_F16; /* llama.cpp's default KV cache type */
    if (s->altup_streams)
        GMC_TRY(gguf_tensors3n(g, s, diag));
    if (s->ple_dim) {
        GMC_TRY(gguf_type_of(g, "per_layer_token_embd.weight", &s->ple_type, diag));
        GMC_TRY(gguf_type_of(g, "per_layer_model_proj.weight", &s->ple_proj_type, diag));
        /* llama.cpp's gemma3n files pad the table to the multimodal ids */
        const gmrt_gguf_tensor *pt = gmrt_gguf_find_tensor(g, "per_layer_token_embd.weight");
        if (pt->n_dims != 2 || pt->ne[1] < s->vocab || pt->ne[1] > 1048576)
            return gmc_fail(diag, GMC_ERR_SCHEMA, "GGUF: per_layer_token_embd.weight has %lld "
                            "rows for a vocabulary of %ld", (long long)pt->ne[1], s->vocab);
        s->ple_vocab = (long)pt->ne[1];
    }
    s->wtype = malloc((size_t)s->layers * GMC_W_COUNT * sizeof *s->wtype);
    if (!s->wtype)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    for (long l = 0; l < s->layers; l++)
        for (int c = 0; c < GMC_W_COUNT; c++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%ld.%s.weight", l, gmc_wclass_name((gmc_wclass)c));
            s->wtype[l * GMC_W_COUNT + c] = -1;
            if (spec_has(s, l, c))
                GMC_TRY(gguf_type_of(g, name, &s->wtype[l * GMC_W_COUNT + c], diag));
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
    else if (strcmp(arch, "gemma") && strcmp(arch, "gemma2") && strcmp(arch, "gemma3") &&
             strcmp(arch, "gemma3n") && strcmp(arch, "gemma4"))
        st = gmc_fail(diag, GMC_ERR_SCHEMA, "%s: architecture \"%.60s\" is not gemma, "
                      "gemma2, gemma3, gemma3n or gemma4", path, arch);
    bool g4 = st == GMC_OK && !strcmp(arch, "gemma4");
    bool g3n = st == GMC_OK && !strcmp(arch, "gemma3n");
    if (st == GMC_OK) {
        s->family = !strcmp(arch, "gemma") ? "gemma" : !strcmp(arch, "gemma2") ? "gemma2"
                    : g4 ? "gemma4" : g3n ? "gemma3n" : "gemma3";
        st = g4 ? gguf_dims4(g, s, diag) : g3n ? gguf_dims3n(g, s, diag)
                                               : gguf_dims(g, arch, s, diag);
    }
    if (st == GMC_OK && !g4 && !g3n)
        st = gguf_pattern(g, arch, s, diag);
    /* llama.cpp scales embeddings by the exact f32 sqrt(n_embd). */
    s->embed_scale = "exact";
    s->gguf = true;
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

/* quant: the class defaults (attn, ffn: the most common class types),
 * tensors: for the classes that differ, overrides: for the layers that
 * differ.  Classes a layer does not have (wtype -1) are left out. */
static void write_quant(gmc_strbuf *b, const import_spec *s)
{
    int32_t cls[GMC_W_COUNT], col[PATTERN_MAX], attn_c[4], ffn_c[GMC_W_COUNT];
    int n_attn = 0, n_ffn = 0;
    for (int c = 0; c < GMC_W_COUNT; c++) {
        int n = 0;
        for (long l = 0; l < s->layers; l++)
            if (s->wtype[l * GMC_W_COUNT + c] >= 0)
                col[n++] = s->wtype[l * GMC_W_COUNT + c];
        cls[c] = n ? mode_of(col, n) : -1;
        if (n && c <= GMC_W_ATTN_OUTPUT)
            attn_c[n_attn++] = cls[c];
        else if (n)
            ffn_c[n_ffn++] = cls[c];
    }
    int32_t attn = mode_of(attn_c, n_attn), ffn = mode_of(ffn_c, n_ffn);
    gmc_emitf(b, "quant:\n  embed: %s\n  attn: %s\n  ffn: %s\n  kv_cache: %s\n",
              gmrt_dtype_name(s->embed_type), gmrt_dtype_name(attn), gmrt_dtype_name(ffn),
              gmrt_dtype_name(s->kv_type));
    if (s->ple_dim)
        gmc_emitf(b, "  ple: %s\n  ple_proj: %s\n", gmrt_dtype_name(s->ple_type),
                  gmrt_dtype_name(s->ple_proj_type));
    if (s->altup_streams)
        gmc_emitf(b, "  altup: %s\n", gmrt_dtype_name(s->altup_type));
    bool any = false;
    for (int c = 0; c < GMC_W_COUNT; c++)
        if (cls[c] >= 0 && cls[c] != (c <= GMC_W_ATTN_OUTPUT ? attn : ffn)) {
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
            if (t < 0 || t == cls[c] || !first)
                continue; /* absent, default, or already written with an earlier layer */
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

/* One rope: entry; the fraction only where part of the pairs rotate. */
static void write_rope(gmc_strbuf *b, const char *kind, double theta, double scale,
                       double fraction)
{
    char t[32], sc[32], f[32];
    fmt_num(theta, t, sizeof t);
    fmt_num(scale, sc, sizeof sc);
    gmc_emitf(b, "    %s {theta: %s, scale: %s", kind, t, sc);
    if (fraction > 0 && fraction < 1) {
        fmt_num(fraction, f, sizeof f);
        gmc_emitf(b, ", fraction: %s", f);
    }
    gmc_emitf(b, "}\n");
}

/* The Gemma 4 keys of attention:, where they differ from the defaults. */
static void write_attention4(gmc_strbuf *b, const import_spec *s)
{
    if (s->global_head_dim || s->global_kv_heads || s->k_eq_v) {
        const char *sep = "";
        gmc_emitf(b, "  global: {");
        if (s->global_head_dim)
            gmc_emitf(b, "head_dim: %ld", s->global_head_dim), sep = ", ";
        if (s->global_kv_heads)
            gmc_emitf(b, "%skv_heads: %ld", sep, s->global_kv_heads), sep = ", ";
        if (s->k_eq_v)
            gmc_emitf(b, "%sk_eq_v: true", sep);
        gmc_emitf(b, "}\n");
    }
    if (s->kv_shared)
        gmc_emitf(b, "  kv_shared_layers: %ld\n", s->kv_shared);
}

static void write_yaml(gmc_strbuf *b, const import_spec *s, const char *src)
{
    char eps[32], qs[32], sc[32], fc[32];
    bool g4 = !strcmp(s->family, "gemma4"), g3n = !strcmp(s->family, "gemma3n");
    fmt_num(s->norm_eps, eps, sizeof eps);
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
    gmc_emitf(b, "  qk_norm: %s\n  softcap: %s\n",
              strcmp(s->family, "gemma3") && !g4 && !g3n ? "false" : "true", sc);
    if (s->window > 0)
        gmc_emitf(b, "  window: %ld\n", s->window);
    if (g4 || g3n)
        write_attention4(b, s);
    gmc_emitf(b, "  rope:\n");
    write_rope(b, "local: ", s->local_theta, s->local_scale, s->local_fraction);
    write_rope(b, "global:", s->global_theta, s->global_scale, s->global_fraction);
    gmc_emitf(b, "layers:\n  pattern: [");
    for (int i = 0; i < s->pattern_len; i++)
        gmc_emitf(b, "%s%s", i ? ", " : "", s->pattern_global[i] ? "global" : "local");
    gmc_emitf(b, "]\nffn:\n  dim: %ld\n  activation: gelu_tanh\n", s->ffn_dim);
    if (s->shared_ffn_dim)
        gmc_emitf(b, "  shared_dim: %ld\n", s->shared_ffn_dim);
    if (s->sparse_layers) {
        char p[32];
        fmt_num(s->sparsity, p, sizeof p);
        gmc_emitf(b, "  sparsity: %s\n  sparse_layers: %ld\n", p, s->sparse_layers);
    }
    if (s->ple_dim)
        gmc_emitf(b, "ple:\n  dim: %ld\n", s->ple_dim);
    if (s->ple_dim && s->ple_vocab > s->vocab)
        gmc_emitf(b, "  vocab: %ld\n", s->ple_vocab);
    if (s->altup_streams) {
        char c[32];
        fmt_num(s->altup_clip, c, sizeof c);
        gmc_emitf(b, "altup:\n  streams: %ld\n  active: %ld\n  coef_clip: %s\n"
                  "  correct_scale: %s\n", s->altup_streams, s->altup_active, c,
                  s->altup_no_correct_scale ? "false" : "true");
    }
    if (s->laurel_rank)
        gmc_emitf(b, "laurel:\n  rank: %ld\n", s->laurel_rank);
    if (s->experts)
        gmc_emitf(b, "moe:\n  experts: %ld\n  top_k: %ld\n  dim: %ld\n", s->experts, s->top_k,
                  s->expert_dim);
    gmc_emitf(b, "output:\n  post_norms: %s\n  final_softcap: %s\n",
              strcmp(s->family, "gemma") ? "true" : "false", fc);
    write_quant(b, s);
}

/* The source key behind each YAML key import writes: config.json's, and
 * the GGUF one (after "<arch>."), longest prefix first. */
static const char *const source_keys[][3] = {
    {"attention.global.head_dim", "global_head_dim", "attention.key_length"},
    {"attention.global.kv_heads", "num_global_key_value_heads", "attention.head_count_kv"},
    {"attention.global", "attention_k_eq_v", "attention.head_count_kv"},
    {"attention.kv_shared_layers", "num_kv_shared_layers", "attention.shared_kv_layers"},
    {"attention.kv_heads", "num_key_value_heads", "attention.head_count_kv"},
    {"attention.heads", "num_attention_heads", "attention.head_count"},
    {"attention.head_dim", "head_dim", "attention.key_length_swa"},
    {"attention.window", "sliding_window", "attention.sliding_window"},
    {"attention.query_scale", "query_pre_attn_scalar", "attention.head_count"},
    {"attention.softcap", "attn_logit_softcapping", "attn_logit_softcapping"},
    {"attention.rope", "rope_parameters", "rope.freq_base"},
    {"attention", "num_attention_heads", "attention.head_count"},
    {"model.vocab", "vocab_size", "token_embd.weight"},
    {"model.d_model", "hidden_size", "embedding_length"},
    {"model.layers", "num_hidden_layers", "block_count"},
    {"model.context", "max_position_embeddings", "context_length"},
    {"model.norm_eps", "rms_norm_eps", "attention.layer_norm_rms_epsilon"},
    {"model.name", "--name", "general.name"},
    {"layers.pattern", "layer_types", "attention.sliding_window_pattern"},
    {"ffn.shared_dim", "use_double_wide_mlp", "feed_forward_length"},
    {"ffn.sparsity", "activation_sparsity_pattern", "activation_sparsity_scale"},
    {"ffn.sparse_layers", "activation_sparsity_pattern", "activation_sparsity_scale"},
    {"altup.streams", "altup_num_inputs", "altup.num_inputs"},
    {"altup.active", "altup_active_idx", "altup.active_idx"},
    {"altup.coef_clip", "altup_coef_clip", "altup.num_inputs"},
    {"laurel.rank", "laurel_rank", "blk.0.laurel_l.weight"},
    {"ffn.dim", "intermediate_size", "feed_forward_length"},
    {"ple.dim", "hidden_size_per_layer_input", "embedding_length_per_layer_input"},
    {"moe.experts", "num_experts", "expert_count"},
    {"moe.top_k", "top_k_experts", "expert_used_count"},
    {"moe.dim", "moe_intermediate_size", "expert_feed_forward_length"},
    {"output.final_softcap", "final_logit_softcapping", "final_logit_softcapping"},
    {"quant", "--quant", "the tensor types"},
};

/* Parses the YAML as `gemmac plan` would; a failure names the source key
 * behind the YAML key at fault, then the YAML diagnostic. */
static gmc_status validate(const char *yaml, const import_spec *s, const char *path,
                           gmc_diag *diag)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m;
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_status st = gmc_model_parse(yaml, strlen(yaml), "imported.yaml", &a, &m, &d);
    gmc_arena_deinit(&a);
    if (st == GMC_OK)
        return GMC_OK;
    const char *key = NULL;
    for (size_t i = 0; i < sizeof source_keys / sizeof source_keys[0] && !key; i++)
        if (!strncmp(d.path, source_keys[i][0], strlen(source_keys[i][0])))
            key = source_keys[i][s->gguf ? 2 : 1];
    char where[160];
    if (key && s->gguf && strcmp(key, "the tensor types") && strcmp(key, "token_embd.weight") &&
        strcmp(key, "blk.0.laurel_l.weight"))
        snprintf(where, sizeof where, "%s.%s", s->family, key);
    else
        snprintf(where, sizeof where, "%s", key ? key : "?");
    return gmc_fail(diag, st, "%s: \"%s\" gives a graph that does not validate: %s%s%s",
                    path, where, d.path, d.path[0] ? ": " : "", d.msg);
}

gmc_status gmc_import(const char *path, const gmc_import_opts *o, gmc_strbuf *out,
                      gmc_diag *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gmc_fail(diag, GMC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *text = malloc(CONFIG_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_MAX + 1, f) : 0;
    fclose(f);
    if (!text)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    import_spec s = {0};
    gmrt_file_format fmt = gmrt_format_of(text, len);
    bool gguf = fmt == GMRT_FORMAT_GGUF;
    gmc_status st = GMC_OK;
    if (fmt != GMRT_FORMAT_GGUF && fmt != GMRT_FORMAT_JSON)
        st = gmc_fail(diag, GMC_ERR_SCHEMA, "%s: not a Hugging Face config.json (JSON) or a "
                      "GGUF file (\"GGUF\" magic)%s", path,
                      fmt == GMRT_FORMAT_SAFETENSORS ? ": a safetensors file; give the "
                      "config.json beside it" : "");
    else if (gguf && o->quant)
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
    if (st == GMC_OK) {
        gmc_strbuf y;
        gmc_strbuf_init(&y);
        write_yaml(&y, &s, path);
        st = gmc_strbuf_failed(&y) ? gmc_fail(diag, GMC_ERR_NOMEM, "out of memory")
                                   : validate(gmc_strbuf_str(&y), &s, path, diag);
        if (st == GMC_OK)
            gmc_emitf(out, "%s", gmc_strbuf_str(&y));
        if (st == GMC_OK && gmc_strbuf_failed(out))
            st = gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
        gmc_strbuf_deinit(&y);
    }
    spec_deinit(&s);
    return st;
}
