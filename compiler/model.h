/*
 * model.h — the typed model description the YAML front end produces.
 *
 * gmc_model_load reads a graph YAML (graphs/<model>.yaml) through libyaml's
 * event API (yaml_io.c), validates it against the schema in model.c and
 * expands the layer pattern and the quantization overrides into one
 * gmc_layer per layer, so that later passes never look at YAML again.
 * Every field is checked; every error carries file:line:col and the key path.
 *
 * The struct is deliberately per-layer: Gemma 3n/4 vary head_dim, KV heads,
 * FFN width and KV sharing by layer, and MoE/PLE blocks hang off the layer.
 */
#ifndef GMC_MODEL_H
#define GMC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

/* Limits of the front end (docs/input-checks.md §2.4). */
#define GMC_YAML_MAX_BYTES (1u << 20)
#define GMC_YAML_MAX_DEPTH 32
#define GMC_YAML_MAX_EVENTS 100000
#define GMC_YAML_MAX_SCALAR 65536
#define GMC_NAME_MAX 64

typedef enum gmc_family {
    GMC_FAMILY_GEMMA = 1, /* Gemma 1: pre-norm only */
    GMC_FAMILY_GEMMA2,    /* sandwich norms, soft-caps, alternating windows */
    GMC_FAMILY_GEMMA3,    /* + QK-norm, 5:1 pattern, two RoPE thetas */
    GMC_FAMILY_GEMMA3N,   /* norms use w (no +1), value norm, query scale 1,
                           * KV sharing, PLE, AltUp streams, LAuReL,
                           * activation sparsity */
    GMC_FAMILY_GEMMA4,    /* norms use w, value norm, query scale 1,
                           * per-kind head_dim / KV heads, K = V, partial
                           * RoPE, KV sharing, PLE, MoE, layer output scale */
} gmc_family;

typedef enum gmc_attn_kind {
    GMC_ATTN_GLOBAL = 0, /* full causal */
    GMC_ATTN_LOCAL = 1   /* sliding window */
} gmc_attn_kind;

typedef enum gmc_embed_scale {
    GMC_EMBED_SCALE_BF16 = 0, /* sqrt(D) rounded to bf16 (JAX, HF, gemma.cpp) */
    GMC_EMBED_SCALE_EXACT     /* f32 sqrt(D) (llama.cpp) */
} gmc_embed_scale;

/* Tensor classes that a quantization setting can name. */
typedef enum gmc_wclass {
    GMC_W_ATTN_Q = 0, GMC_W_ATTN_K, GMC_W_ATTN_V, GMC_W_ATTN_OUTPUT,
    GMC_W_FFN_GATE, GMC_W_FFN_UP, GMC_W_FFN_DOWN,
    GMC_W_PLE_GATE, GMC_W_PLE_PROJ,              /* per-layer embeddings */
    GMC_W_EXP_GATE_UP, GMC_W_EXP_DOWN,         /* MoE experts */
    GMC_W_LAUREL_L, GMC_W_LAUREL_R,            /* LAuReL (Gemma 3n) */
    GMC_W_COUNT
} gmc_wclass;

typedef struct gmc_rope {
    double theta;        /* base */
    double scale;        /* linear scaling factor: positions are divided by it */
    double fraction;     /* share of the hd/2 pairs that rotate (Gemma 4
                          * global layers: 0.25); the rest pass through */
} gmc_rope;

/* attention.global: what global layers do differently (Gemma 4). */
typedef struct gmc_global_attn {
    int32_t head_dim;     /* 0 = attention.head_dim */
    int32_t n_kv_heads;   /* 0 = attention.kv_heads */
    bool k_eq_v;          /* V is the K projection's output (no attn_v) */
} gmc_global_attn;

typedef struct gmc_layer {
    gmc_attn_kind kind;
    int32_t n_heads, n_kv_heads, head_dim;
    int32_t ffn_dim;
    int32_t window;       /* keys visible incl. the current one; 0 for global */
    gmc_rope rope;        /* chosen by kind */
    bool k_eq_v;          /* no attn_v: V is K's projection before its norm */
    int32_t kv_source;    /* layer whose K/V cache this layer reads: itself,
                           * or for a KV-shared layer the last earlier layer
                           * of the same kind that computes K/V */
    int32_t wtype[GMC_W_COUNT]; /* gmk_dtype of each matmul weight */
} gmc_layer;

typedef struct gmc_model {
    /* model: */
    const char *name;     /* C identifier, [A-Za-z_][A-Za-z0-9_]{0,63} */
    const char *source;   /* graph file path as given */
    gmc_family family;
    int32_t vocab, d_model, n_layers, context;
    double norm_eps;
    bool tied_embeddings; /* must be true for Gemma 1-3 */
    gmc_embed_scale embed_scale;
    /* attention: */
    int32_t n_heads, n_kv_heads, head_dim, window;
    double query_scale;   /* q multiplier; default 1/sqrt(head_dim) */
    bool qk_norm;
    double attn_softcap;  /* 0 = none */
    gmc_rope rope_local, rope_global;
    /* layers: */
    int32_t pattern_len;
    gmc_attn_kind *pattern; /* pattern_len entries, repeated over layers */
    gmc_global_attn global;
    bool value_norm;      /* weightless RMSNorm of V per head (Gemma 4) */
    int32_t kv_shared_layers; /* the last N layers reuse earlier caches */
    /* ffn: */
    int32_t ffn_dim;
    int32_t ffn_dim_shared; /* FFN width of KV-shared layers; 0 = ffn_dim */
    /* ple: per-layer embeddings (0 = none) */
    int32_t ple_dim;
    int32_t ple_vocab;    /* rows of per_layer_token_embd; 0 = vocab (Gemma
                           * 3n files pad it to the multimodal 262400) */
    int32_t ple_type;     /* gmk_dtype of per_layer_token_embd (mapped) */
    int32_t ple_proj_type;/* gmk_dtype of per_layer_model_proj */
    /* moe: experts beside the dense FFN (0 = dense only) */
    int32_t n_experts, n_experts_used, expert_dim;
    /* Gemma 3n: altup: residual streams (0 = one stream), the one the
     * layers compute on, the coefficient clip (0 = none), whether the
     * per-layer embedding gate reads the corrected stream scaled; laurel:
     * the low-rank branch's rank (0 = none); ffn sparsity: the Gaussian
     * top-k's target sparsity on the first sparse_layers layers */
    int32_t altup_streams, altup_active;
    double altup_coef_clip;
    bool altup_correct_scale;
    int32_t altup_type;   /* gmk_dtype of altup_proj / altup_unembd_proj */
    int32_t laurel_rank;
    double ffn_sparsity;
    int32_t ffn_sparse_layers;
    /* norms and output: */
    bool post_norms;      /* Gemma 2+: post-attention and post-FFN norms */
    bool layer_scale;     /* Gemma 4: x *= layer_output_scale at layer end */
    bool norm_plus_one;   /* checkpoints store w for (1 + w): Gemma 1-3 */
    double final_softcap; /* 0 = none */
    /* quantization: */
    int32_t embed_type;   /* gmk_dtype of token_embd */
    int32_t kv_type;      /* F32 or F16 */
    /* expanded: */
    gmc_layer *layers;    /* n_layers entries */
    uint64_t content_hash;/* FNV-1a 64 of the YAML bytes */
} gmc_model;

/* Parses and validates len bytes of YAML text; filename is used only for
 * diagnostics.  The result and everything it points to live in a. */
gmc_status gmc_model_parse(const char *text, size_t len, const char *filename,
                           gmc_arena *a, gmc_model **out,
                           gmc_diag *diag) GMC_MUST_CHECK;

/* Reads path (at most GMC_YAML_MAX_BYTES) and calls gmc_model_parse. */
gmc_status gmc_model_load(const char *path, gmc_arena *a, gmc_model **out,
                          gmc_diag *diag) GMC_MUST_CHECK;

/* Name of a weight class as used in YAML and tensor names ("attn_q"). */
const char *gmc_wclass_name(gmc_wclass c);

/* Whether layer l has a weight of class c (KV-shared layers have no K/V
 * projections, K = V layers no attn_v, dense models no experts). */
bool gmc_layer_has(const gmc_model *m, int32_t l, gmc_wclass c);

/* Shape of a layer weight: ne0 (input width, contiguous), ne1 (outputs),
 * ne2 (experts, 1 otherwise). */
void gmc_wclass_shape(const gmc_model *m, int32_t l, gmc_wclass c, int64_t ne[3]);

/* Parameter counts of the described model: all of them (embeddings and the
 * per-layer embedding table included), and those only looked up per token
 * (the per-layer embedding table, read from the mapped file), and those
 * an MoE token computes with (top_k of n_experts experts per layer). */
typedef struct gmc_params {
    uint64_t total, mapped, active;
} gmc_params;
gmc_params gmc_model_param_counts(const gmc_model *m);
uint64_t gmc_model_params(const gmc_model *m); /* .total */

#endif /* GMC_MODEL_H */
