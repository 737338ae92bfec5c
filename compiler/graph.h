/*
 * graph.h — the graph IR: values with static shapes and dtypes, and the ops
 * of one forward step in execution order.
 *
 * gmc_graph_lower expands a gmc_model into nodes (embed, per-layer attention
 * and FFN, final norm, tied head).  Token-dimension sizes are the step's
 * maximum batch (max_batch); the generated code runs any n_tokens up to it.
 * Passes annotate the same structs (the planner fills offsets); nothing is
 * freed until the compilation's arena goes.  gmc_graph_dump prints the IR
 * for --dump=graph and is also what the graph hash is computed over.
 */
#ifndef GMC_GRAPH_H
#define GMC_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "model.h"
#include "strbuf.h"

/* The slot indices of each fused op (fused.def): GMC_QKV_WQ is where a
 * qkv node keeps its wq operand in gmc_node.in; GMC_QKV_N_SLOTS its n_in. */
#define GMC_FUSED(OP, op) enum gmc_##op##_slot {
#define GMC_SLOT(OP, NAME, name) GMC_##OP##_##NAME,
#define GMC_FUSED_END(OP, op) GMC_##OP##_N_SLOTS };
#include "fused.def"

typedef enum gmc_op {
#define GMC_OP(NAME, name, n_in, inplace) GMC_OP_##NAME,
#include "ops.def"
    GMC_OP_COUNT
} gmc_op;

typedef enum gmc_vkind {
    GMC_V_WEIGHT, /* a tensor of the weights file, manifest order */
    GMC_V_TOKENS, /* the step's input ids (ctx->tokens) */
    GMC_V_ACT,    /* an activation in the arena */
    GMC_V_KV,     /* a layer's K or V cache (ctx->kv) */
    GMC_V_LOGITS  /* the step's output (ctx->logits) */
} gmc_vkind;

typedef struct gmc_value {
    int id;
    gmc_vkind kind;
    const char *name;   /* weights: GGUF tensor name; others: e.g. "l3.q" */
    int32_t dtype;      /* gmk_dtype */
    int n_dims;
    int64_t ne[4];      /* ggml order: ne[0] contiguous */
    uint64_t bytes;
    int layer;          /* -1 if not per layer */
    int index;          /* weights: manifest index */
    int32_t n_slots;    /* KV: rows in the (ring) cache */
    int32_t layout;     /* weights: GMK_LAYOUT_* the target reads it in */
    bool mapped;        /* weights: only looked up by rows from the mapped
                         * file (per-layer embeddings): never repacked,
                         * not counted as resident */
    int act_fmt;        /* ACT holding matmul input rows in a gmk_act_fmt
                         * (fused graphs); -1: plain f32 */
    /* filled by the planner: */
    int64_t offset;     /* arena (ACT) or KV-cache (KV) byte offset; -1 none */
    int first, last;    /* first and last node that touches it; -1 none */
} gmc_value;

#define GMC_NODE_MAX_IN 13 /* the widest fused op (qkv) */
#define GMC_FUSED_END(OP, op)                                                              \
    _Static_assert(GMC_##OP##_N_SLOTS <= GMC_NODE_MAX_IN, #op " has more slots than in[]");
#include "fused.def"

typedef struct gmc_node {
    gmc_op op;
    int layer;          /* -1 outside the layers */
    int in[GMC_NODE_MAX_IN];
    int out;            /* value written; in[0] for in-place ops */
    /* attributes (meaning per op) */
    float eps, scale, softcap;
    int32_t n_heads, n_kv_heads, head_dim, window;
    int32_t col;        /* GELU_SLICE: first column of p; MOE_*: top_k */
    int rope;           /* ROPE: index into model rope tables (0 local, 1 global) */
    bool v_norm;        /* QKV: weightless RMSNorm of each V head (Gemma 4) */
} gmc_node;

typedef struct gmc_graph {
    const gmc_model *model;
    int32_t max_batch;
    gmc_value *values;
    int n_values, cap_values;
    gmc_node *nodes;
    int n_nodes, cap_nodes;
    int n_weights;       /* weight values are ids 0 .. n_weights-1 */
    uint64_t hash;       /* FNV-1a 64 of the dump (set by gmc_graph_lower) */
    /* totals (gmc_plan fills arena/kv) */
    uint64_t weight_bytes, arena_bytes, naive_bytes, kv_bytes,
        kv_bytes_per_token;
} gmc_graph;

extern const char *const gmc_op_names[GMC_OP_COUNT];
extern const int gmc_op_n_in[GMC_OP_COUNT];
extern const int gmc_op_inplace[GMC_OP_COUNT];
/* The slot names of a fused op, gmc_op_n_in of them, in slot order
 * (fused.def); NULL for the unfused ops.  Static storage. */
extern const char *const *const gmc_op_slots[GMC_OP_COUNT];

/* Builds the graph of one forward step for m with the given maximum batch
 * (1..4096).  Fails with GMC_ERR_SEMANTIC if a size overflows. */
gmc_status gmc_graph_lower(const gmc_model *m, int32_t max_batch, gmc_arena *a,
                           gmc_graph **out, gmc_diag *diag) GMC_MUST_CHECK;

/* "f32", "q8_0", "q8_k", "bf16" for a gmk_act_fmt; "?" otherwise. */
const char *gmc_act_fmt_name(int fmt);

/* Appends a readable listing of values and nodes (offsets once planned). */
void gmc_graph_dump(const gmc_graph *g, gmc_strbuf *b);

/* FNV-1a 64. */
uint64_t gmc_hash_bytes(uint64_t h, const void *p, size_t n);
#define GMC_HASH_INIT 0xcbf29ce484222325ull

#endif /* GMC_GRAPH_H */
