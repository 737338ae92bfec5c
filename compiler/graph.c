/*
 * graph.c — lowering a model description to the graph IR, and dumping it.
 *
 * The lowering is the forward pass of docs/models.md#gemma1 .. #gemma3 written once:
 * family differences are flags on the model (post_norms, qk_norm, soft-caps,
 * layer kinds), never separate code paths.
 */
#include "graph.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gmk_act.h"
#include "gmk_layout.h"
#include "gmrt.h"

const char *const gmc_op_names[GMC_OP_COUNT] = {
#define GMC_OP(NAME, name, n_in, inplace) #name,
#include "ops.def"
};
const int gmc_op_n_in[GMC_OP_COUNT] = {
#define GMC_OP(NAME, name, n_in, inplace) n_in,
#include "ops.def"
};
const int gmc_op_inplace[GMC_OP_COUNT] = {
#define GMC_OP(NAME, name, n_in, inplace) inplace,
#include "ops.def"
};
#define GMC_FUSED(OP, op) static const char *const op##_slots[GMC_##OP##_N_SLOTS] = {
#define GMC_SLOT(OP, NAME, name) #name,
#define GMC_FUSED_END(OP, op) };
#include "fused.def"
const char *const *const gmc_op_slots[GMC_OP_COUNT] = {
#define GMC_FUSED_END(OP, op) [GMC_OP_##OP] = op##_slots,
#include "fused.def"
};
_Static_assert(GMC_OP_COUNT == 38, "update the emitter table in emit.c");

uint64_t gmc_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------ building */

typedef struct lower {
    gmc_graph *g;
    gmc_arena *a;
    gmc_diag *diag;
    bool failed;
    int *kc, *vc; /* per layer: its K/V cache values (KV-shared layers read
                   * their source's) */
    int ple;      /* the per-layer embedding inputs [n, layers * ple_dim] */
} lower;

static int add_value(lower *L, gmc_vkind kind, const char *name, int32_t dtype,
                     int64_t ne0, int64_t ne1, int layer)
{
    gmc_graph *g = L->g;
    if (g->n_values == g->cap_values) {
        L->failed = true;
        return 0;
    }
    gmc_value *v = &g->values[g->n_values];
    v->id = g->n_values++;
    v->kind = kind;
    v->name = gmc_arena_strdup(L->a, name);
    v->dtype = dtype;
    v->n_dims = ne1 > 1 ? 2 : 1;
    v->ne[0] = ne0;
    v->ne[1] = ne1;
    v->ne[2] = v->ne[3] = 1;
    v->layer = layer;
    v->offset = -1;
    v->first = v->last = -1;
    v->act_fmt = -1;
    v->layout = GMK_LAYOUT_PACKED;
    size_t row;
    if (gmrt_dtype_row_bytes(dtype, ne0, &row, NULL) != GMRT_OK ||
        (uint64_t)ne1 > UINT64_MAX / row) {
        L->failed = true;
        return v->id;
    }
    v->bytes = (uint64_t)row * (uint64_t)ne1;
    return v->id;
}

/* A weight named blk.<layer>.<what>.weight (or <what>.weight outside the
 * layers); a name with a dot of its own (ffn_gate_inp.scale) is taken as
 * it is after the prefix.  ne2 > 1: a stack of ne2 matrices (experts). */
static int weight3(lower *L, int layer, const char *what, int32_t dtype,
                   int64_t ne0, int64_t ne1, int64_t ne2)
{
    char name[64];
    const char *suffix = strchr(what, '.') ? "" : ".weight";
    if (layer >= 0)
        snprintf(name, sizeof name, "blk.%d.%s%s", layer, what, suffix);
    else
        snprintf(name, sizeof name, "%s%s", what, suffix);
    int id = add_value(L, GMC_V_WEIGHT, name, dtype, ne0, ne1, layer);
    gmc_value *v = &L->g->values[id];
    if (ne2 > 1) {
        v->n_dims = 3;
        v->ne[2] = ne2;
        if (v->bytes > UINT64_MAX / (uint64_t)ne2)
            L->failed = true;
        v->bytes *= (uint64_t)ne2;
    }
    v->index = L->g->n_weights++;
    L->g->weight_bytes += v->bytes;
    return id;
}

static int weight(lower *L, int layer, const char *what, int32_t dtype,
                  int64_t ne0, int64_t ne1)
{
    return weight3(L, layer, what, dtype, ne0, ne1, 1);
}

/* A weight of class c in layer l, shaped by the model (gmc_wclass_shape). */
static int wclass_weight(lower *L, const gmc_model *m, int l, gmc_wclass c)
{
    int64_t ne[3];
    gmc_wclass_shape(m, l, c, ne);
    return weight3(L, l, gmc_wclass_name(c), m->layers[l].wtype[c], ne[0], ne[1], ne[2]);
}

/* An f32 activation of `rows` rows (act: one per token of the step). */
static int act_rows(lower *L, int layer, const char *what, int64_t width, int64_t rows)
{
    char name[64];
    if (layer >= 0)
        snprintf(name, sizeof name, "l%d.%s", layer, what);
    else
        snprintf(name, sizeof name, "%s", what);
    return add_value(L, GMC_V_ACT, name, GMK_DTYPE_F32, width, rows, layer);
}

static int act(lower *L, int layer, const char *what, int64_t width)
{
    return act_rows(L, layer, what, width, L->g->max_batch);
}

/* Rows a kernel converts into the format its matmul reads (gmk_act.h):
 * sized as padded f32 rows (gmk_act_row_bytes), which no other format's
 * rows exceed, so the fusion pass may retype it without growing it. */
static int kernel_rows(lower *L, int layer, const char *what, int64_t width, int64_t rows)
{
    int id = act_rows(L, layer, what, width, rows);
    gmc_value *v = &L->g->values[id];
    size_t row = gmk_act_row_bytes(GMK_ACT_F32, width);
    if (row == 0 || (uint64_t)rows > UINT64_MAX / row)
        L->failed = true;
    else
        v->bytes = (uint64_t)row * (uint64_t)rows;
    return id;
}

static gmc_node *node(lower *L, gmc_op op, int layer, int out, int in0, int in1,
                      int in2, int in3)
{
    gmc_graph *g = L->g;
    if (g->n_nodes == g->cap_nodes) {
        L->failed = true;
        static gmc_node sink;
        return &sink;
    }
    gmc_node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->layer = layer;
    n->in[0] = in0;
    n->in[1] = in1;
    n->in[2] = in2;
    n->in[3] = in3;
    for (int k = 4; k < GMC_NODE_MAX_IN; k++)
        n->in[k] = -1;
    n->out = gmc_op_inplace[op] ? in0 : out;
    return n;
}

/* Embedding scale sqrt(width), rounded to bf16 as the Google references
 * do unless the model asks for llama.cpp's exact value (docs/models.md#embedding-scale); the
 * per-layer embedding table is scaled by sqrt(ple_dim) the same way. */
static float embed_scale(const gmc_model *m, int32_t width)
{
    float s = sqrtf((float)width);
    if (m->embed_scale == GMC_EMBED_SCALE_BF16)
        s = gmrt_bf16_to_f32(gmrt_f32_to_bf16(s));
    return s;
}

static gmc_node *head_norm(lower *L, int l, int x, int w, int32_t heads, int32_t hd, float eps)
{
    gmc_node *n = node(L, GMC_OP_HEAD_NORM, l, -1, x, w, -1, -1);
    n->eps = eps;
    n->n_heads = heads;
    n->head_dim = hd;
    return n;
}

/* The attention block on the residual x (in place: x += post-norm of the
 * output); returns its normed input (Gemma 3n's LAuReL reads it). */
static int lower_attention(lower *L, const gmc_model *m, int l, int x)
{
    const gmc_layer *ly = &m->layers[l];
    int64_t D = m->d_model, qd = (int64_t)ly->n_heads * ly->head_dim;
    int64_t kvd = (int64_t)ly->n_kv_heads * ly->head_dim;

    bool own_kv = ly->kv_source == l;
    float eps = (float)m->norm_eps;

    int wn = weight(L, l, "attn_norm", GMK_DTYPE_F32, D, 1);
    int wq = wclass_weight(L, m, l, GMC_W_ATTN_Q);
    int wk = own_kv ? wclass_weight(L, m, l, GMC_W_ATTN_K) : -1;
    int wv = gmc_layer_has(m, l, GMC_W_ATTN_V) ? wclass_weight(L, m, l, GMC_W_ATTN_V) : -1;
    int wo = wclass_weight(L, m, l, GMC_W_ATTN_OUTPUT);
    int wqn = -1, wkn = -1, wpost = -1;
    if (m->qk_norm) {
        wqn = weight(L, l, "attn_q_norm", GMK_DTYPE_F32, ly->head_dim, 1);
        if (own_kv)
            wkn = weight(L, l, "attn_k_norm", GMK_DTYPE_F32, ly->head_dim, 1);
    }
    if (m->post_norms)
        wpost = weight(L, l, "post_attention_norm", GMK_DTYPE_F32, D, 1);

    /* The caches: a ring of window + max_batch rows for sliding layers
     * (a batch may overwrite at most max_batch - 1 rows still in view).
     * A KV-shared layer reads its source layer's caches. */
    int kc = L->kc[ly->kv_source], vc = L->vc[ly->kv_source];
    if (own_kv) {
        int32_t slots = m->context;
        if (ly->kind == GMC_ATTN_LOCAL && ly->window + L->g->max_batch < slots)
            slots = ly->window + L->g->max_batch;
        char kn[32], vn[32];
        snprintf(kn, sizeof kn, "l%d.kcache", l);
        snprintf(vn, sizeof vn, "l%d.vcache", l);
        kc = L->kc[l] = add_value(L, GMC_V_KV, kn, m->kv_type, kvd, slots, l);
        vc = L->vc[l] = add_value(L, GMC_V_KV, vn, m->kv_type, kvd, slots, l);
        L->g->values[kc].n_slots = L->g->values[vc].n_slots = slots;
    }

    int h = act(L, l, "attn_in", D);
    node(L, GMC_OP_RMSNORM, l, h, x, wn, -1, -1)->eps = eps;
    int q = act(L, l, "q", qd);
    node(L, GMC_OP_MATMUL, l, q, h, wq, -1, -1);
    int k = -1, v = -1;
    if (own_kv) {
        k = act(L, l, "k", kvd);
        v = act(L, l, "v", kvd);
        node(L, GMC_OP_MATMUL, l, k, h, wk, -1, -1);
        if (ly->k_eq_v) /* V is K's projection, taken before K's norm */
            node(L, GMC_OP_COPY, l, v, k, -1, -1, -1);
        else
            node(L, GMC_OP_MATMUL, l, v, h, wv, -1, -1);
    }
    if (m->qk_norm) {
        head_norm(L, l, q, wqn, ly->n_heads, ly->head_dim, eps);
        if (own_kv)
            head_norm(L, l, k, wkn, ly->n_kv_heads, ly->head_dim, eps);
    }
    for (int i = 0; i < 1 + own_kv; i++) {
        gmc_node *n = node(L, GMC_OP_ROPE, l, -1, i ? k : q, -1, -1, -1);
        n->n_heads = i ? ly->n_kv_heads : ly->n_heads;
        n->head_dim = ly->head_dim;
        n->rope = ly->kind == GMC_ATTN_GLOBAL;
        n->scale = i ? 1.0f : (float)m->query_scale;
    }
    if (own_kv && m->value_norm) /* weightless RMSNorm of each V head */
        head_norm(L, l, v, -1, ly->n_kv_heads, ly->head_dim, eps);
    if (own_kv) {
        gmc_node *st = node(L, GMC_OP_KV_STORE, l, -1, kc, vc, k, v);
        st->n_kv_heads = ly->n_kv_heads;
        st->head_dim = ly->head_dim;
    }

    int o = act(L, l, "attn", qd);
    gmc_node *at = node(L, GMC_OP_ATTENTION, l, o, q, kc, vc, -1);
    at->n_heads = ly->n_heads;
    at->n_kv_heads = ly->n_kv_heads;
    at->head_dim = ly->head_dim;
    at->window = ly->kind == GMC_ATTN_LOCAL ? ly->window : 0;
    at->softcap = (float)m->attn_softcap;

    int y = act(L, l, "attn_out", D);
    node(L, GMC_OP_MATMUL, l, y, o, wo, -1, -1);
    if (m->post_norms)
        node(L, GMC_OP_RMSNORM_ADD, l, -1, x, y, wpost, -1)->eps = (float)m->norm_eps;
    else
        node(L, GMC_OP_ADD, l, -1, x, y, -1, -1);
    return h;
}

/* The standard normal quantile Φ⁻¹(p), 0 < p < 1: Gemma 3n's Gaussian
 * top-k keeps what lies above mean + Φ⁻¹(p) · std.  As transformers
 * computes it, p is an f32 and the argument 2p - 1 of erfinv is formed in
 * f32; then erfinv by Newton's method on erf (libm), in double. */
static double normal_quantile(double p)
{
    float v = 2.0f * (float)p - 1.0f;
    double y = 0.0;
    for (int i = 0; i < 100; i++) { /* erf(y) = v; erf' = 2/sqrt(pi) e^-y^2 */
        double step = (erf(y) - v) / (1.1283791670955126 * exp(-y * y));
        y -= step;
        if (fabs(step) < 1e-15 * (1.0 + fabs(y)))
            break;
    }
    return y * 1.4142135623730951;
}

/* The MoE branch of a layer: router on the un-normalized residual x,
 * experts on rmsnorm(x) · pre_ffw_norm_2; returns its output (before
 * post_ffw_norm_2). */
static int lower_moe(lower *L, const gmc_model *m, int l, int x)
{
    int64_t D = m->d_model, E = m->n_experts, F = m->expert_dim;
    int32_t k = m->n_experts_used;
    int wr = weight(L, l, "ffn_gate_inp", GMK_DTYPE_F32, D, E);
    int wrs = weight(L, l, "ffn_gate_inp.scale", GMK_DTYPE_F32, D, 1);
    int wgu = wclass_weight(L, m, l, GMC_W_EXP_GATE_UP);
    int wd = wclass_weight(L, m, l, GMC_W_EXP_DOWN);
    int wes = weight(L, l, "ffn_down_exps.scale", GMK_DTYPE_F32, E, 1);
    int wn = weight(L, l, "pre_ffw_norm_2", GMK_DTYPE_F32, D, 1);

    /* route: per token top_k expert ids (int32), their weights, and the
     * rows the experts' kernel gives them */
    int route = act(L, l, "route", 3 * (int64_t)k);
    gmc_node *r = node(L, GMC_OP_MOE_ROUTE, l, route, x, wr, wrs, wes);
    r->eps = (float)m->norm_eps;
    r->col = k;
    int h = act(L, l, "moe_in", D);
    node(L, GMC_OP_RMSNORM, l, h, x, wn, -1, -1)->eps = (float)m->norm_eps;
    /* scratch, a row per (token, choice): inputs gathered by expert,
     * gate and up rows, hidden rows for down, expert outputs (the
     * gathered and hidden rows in the format the matmuls read, padded
     * f32 until the target's formats are known: kernel_rows) */
    int64_t rows = (int64_t)L->g->max_batch * k;
    int sx = kernel_rows(L, l, "moe_x", D, rows);
    int sh = act_rows(L, l, "moe_h", 2 * F, rows);
    int sq = kernel_rows(L, l, "moe_hq", F, rows);
    int sy = act_rows(L, l, "moe_y", D, rows);
    int y = act(L, l, "moe_out", D);
    gmc_node *n = node(L, GMC_OP_MOE_FFN, l, y, h, route, wgu, wd);
    n->in[4] = sx;
    n->in[5] = sh;
    n->in[6] = sq;
    n->in[7] = sy;
    n->col = k;
    return y;
}

static void lower_ffn(lower *L, const gmc_model *m, int l, int x)
{
    const gmc_layer *ly = &m->layers[l];
    int64_t D = m->d_model;
    float eps = (float)m->norm_eps;

    int wn = weight(L, l, "ffn_norm", GMK_DTYPE_F32, D, 1);
    int wg = wclass_weight(L, m, l, GMC_W_FFN_GATE);
    int wu = wclass_weight(L, m, l, GMC_W_FFN_UP);
    int wd = wclass_weight(L, m, l, GMC_W_FFN_DOWN);
    int wpost = -1, wpost1 = -1, wpost2 = -1;
    if (m->n_experts) { /* each branch has its post-norm, the sum another */
        wpost1 = weight(L, l, "post_ffw_norm_1", GMK_DTYPE_F32, D, 1);
        wpost2 = weight(L, l, "post_ffw_norm_2", GMK_DTYPE_F32, D, 1);
    }
    if (m->post_norms)
        wpost = weight(L, l, "post_ffw_norm", GMK_DTYPE_F32, D, 1);

    int h = act(L, l, "ffn_in", D);
    node(L, GMC_OP_RMSNORM, l, h, x, wn, -1, -1)->eps = eps;
    int g = act(L, l, "gate", ly->ffn_dim), u = act(L, l, "up", ly->ffn_dim);
    node(L, GMC_OP_MATMUL, l, g, h, wg, -1, -1);
    node(L, GMC_OP_MATMUL, l, u, h, wu, -1, -1);
    if (l < m->ffn_sparse_layers && m->ffn_sparsity > 0) /* Gaussian top-k */
        node(L, GMC_OP_GAUSS_TOPK, l, -1, g, -1, -1, -1)->scale =
            (float)normal_quantile(m->ffn_sparsity);
    node(L, GMC_OP_GEGLU, l, -1, g, u, -1, -1);
    int y = act(L, l, "ffn_out", D);
    node(L, GMC_OP_MATMUL, l, y, g, wd, -1, -1);
    if (m->n_experts) {
        /* f = norm1(dense) + norm2(moe): the dense output is normalized
         * into the sum, the MoE output added normalized to it */
        int ye = lower_moe(L, m, l, x);
        int f = act(L, l, "ffn_sum", D);
        node(L, GMC_OP_RMSNORM, l, f, y, wpost1, -1, -1)->eps = eps;
        node(L, GMC_OP_RMSNORM_ADD, l, -1, f, ye, wpost2, -1)->eps = eps;
        y = f;
    }
    if (m->post_norms)
        node(L, GMC_OP_RMSNORM_ADD, l, -1, x, y, wpost, -1)->eps = eps;
    else
        node(L, GMC_OP_ADD, l, -1, x, y, -1, -1);
}

/* Per-layer embedding inputs of every layer, before layer 0 (Gemma 3n/4):
 * ple = (rmsnorm_per_layer(x0 · Wp · D^-1/2) + E_ple[tok] · sqrt(P)) · 2^-1/2
 * where x0 is the scaled token embedding.  E_ple is looked up in the
 * mapped file, never copied. */
static int lower_ple_inputs(lower *L, const gmc_model *m, int tok, int x)
{
    int64_t D = m->d_model, P = m->ple_dim, LP = (int64_t)m->n_layers * P;
    int wt = weight(L, -1, "per_layer_token_embd", m->ple_type, LP, m->ple_vocab);
    L->g->values[wt].mapped = true;
    int wp = weight(L, -1, "per_layer_model_proj", m->ple_proj_type, D, LP);
    int wn = weight(L, -1, "per_layer_proj_norm", GMK_DTYPE_F32, P, 1);
    int pt = act(L, -1, "ple_tok", LP);
    node(L, GMC_OP_EMBED, -1, pt, tok, wt, -1, -1)->scale = embed_scale(m, m->ple_dim);
    int pp = act(L, -1, "ple", LP);
    node(L, GMC_OP_MATMUL, -1, pp, x, wp, -1, -1);
    node(L, GMC_OP_SCALE, -1, -1, pp, -1, -1, -1)->scale = 1.0f / sqrtf((float)D);
    head_norm(L, -1, pp, wn, m->n_layers, m->ple_dim, (float)m->norm_eps);
    node(L, GMC_OP_ADD, -1, -1, pp, pt, -1, -1);
    node(L, GMC_OP_SCALE, -1, -1, pp, -1, -1, -1)->scale = 1.0f / sqrtf(2.0f);
    return pp;
}

/* The per-layer embedding's contribution of layer l, read from x:
 * rmsnorm(proj(gelu(inp_gate(x)) * ple[l])) · post_norm, into a new value
 * (stream_add: added to x in place instead, and -1 returned). */
static int lower_ple_out(lower *L, const gmc_model *m, int l, int x, bool add)
{
    int64_t D = m->d_model;
    int wg = wclass_weight(L, m, l, GMC_W_PLE_GATE);
    int wp = wclass_weight(L, m, l, GMC_W_PLE_PROJ);
    int wn = weight(L, l, "post_norm", GMK_DTYPE_F32, D, 1);
    int g = act(L, l, "ple_gate", m->ple_dim);
    node(L, GMC_OP_MATMUL, l, g, x, wg, -1, -1);
    node(L, GMC_OP_GELU_SLICE, l, -1, g, L->ple, -1, -1)->col = l * m->ple_dim;
    int y = act(L, l, "ple_out", D);
    node(L, GMC_OP_MATMUL, l, y, g, wp, -1, -1);
    if (add) {
        node(L, GMC_OP_RMSNORM_ADD, l, -1, x, y, wn, -1)->eps = (float)m->norm_eps;
        return -1;
    }
    node(L, GMC_OP_RMSNORM, l, y, y, wn, -1, -1)->eps = (float)m->norm_eps;
    return y;
}

/* The AltUp router of a layer: tanh(W · (rmsnorm(x) · w / D)), one value
 * per stream (docs/models.md#gemma3n). */
static int lower_router(lower *L, const gmc_model *m, int l, int x, int wr, int wn,
                        const char *what)
{
    char in[32];
    snprintf(in, sizeof in, "%s_in", what);
    int rn = act(L, l, in, m->d_model);
    node(L, GMC_OP_RMSNORM, l, rn, x, wn, -1, -1)->eps = (float)m->norm_eps;
    node(L, GMC_OP_SCALE, l, -1, rn, -1, -1, -1)->scale = 1.0f / (float)m->d_model;
    int r = act(L, l, what, m->altup_streams);
    node(L, GMC_OP_MATMUL, l, r, rn, wr, -1, -1);
    node(L, GMC_OP_TANH, l, -1, r, -1, -1, -1);
    return r;
}

/* A slice of the streams: stream s of xs into a new D-wide value. */
static int lower_stream(lower *L, const gmc_model *m, int l, int xs, int s, const char *what)
{
    int y = act(L, l, what, m->d_model);
    node(L, GMC_OP_SLICE, l, y, xs, -1, -1, -1)->col = s * m->d_model;
    return y;
}

/*
 * A Gemma 3n layer on the AltUp streams xs (docs/models.md#gemma3n): the
 * router predicts every stream from all of them; the active prediction
 * goes through attention (with LAuReL beside it: (attention + laurel) ·
 * 2^-1/2) and the FFN; the router's second look corrects every stream by
 * the innovation; the per-layer embedding, read from the corrected active
 * stream, is added to the other streams.
 */
static void lower_altup_layer(lower *L, const gmc_model *m, int l, int xs)
{
    int64_t D = m->d_model, N = m->altup_streams;
    int active = m->altup_active;
    float clip = (float)m->altup_coef_clip;
    int wr = weight(L, l, "altup_router", GMK_DTYPE_F32, D, N);
    int wrn = weight(L, l, "altup_router_norm", GMK_DTYPE_F32, D, 1);
    int wpc = weight(L, l, "altup_predict_coef", GMK_DTYPE_F32, N, N * N);
    int wcc = weight(L, l, "altup_correct_coef", GMK_DTYPE_F32, N, N);
    int wcs = m->altup_correct_scale && m->ple_dim
                  ? weight(L, l, "altup_correct_scale", GMK_DTYPE_F32, D, 1)
                  : -1;

    int x0 = lower_stream(L, m, l, xs, active, "active");
    int r = lower_router(L, m, l, x0, wr, wrn, "route");
    int ps = act(L, l, "pred", N * D);
    gmc_node *n = node(L, GMC_OP_ALTUP_PREDICT, l, ps, xs, r, wpc, -1);
    n->scale = clip;
    n->n_heads = (int32_t)N;
    int a = lower_stream(L, m, l, ps, active, "a");
    int h = lower_attention(L, m, l, a);
    if (m->laurel_rank) { /* h += rmsnorm(R · (L · h)); a = (a + h) / sqrt 2 */
        int wll = wclass_weight(L, m, l, GMC_W_LAUREL_L);
        int wlr = wclass_weight(L, m, l, GMC_W_LAUREL_R);
        int wln = weight(L, l, "laurel_post_norm", GMK_DTYPE_F32, D, 1);
        int t = act(L, l, "laurel_low", m->laurel_rank), u = act(L, l, "laurel", D);
        node(L, GMC_OP_MATMUL, l, t, h, wll, -1, -1);
        node(L, GMC_OP_MATMUL, l, u, t, wlr, -1, -1);
        node(L, GMC_OP_RMSNORM_ADD, l, -1, h, u, wln, -1)->eps = (float)m->norm_eps;
        node(L, GMC_OP_ADD, l, -1, a, h, -1, -1);
        node(L, GMC_OP_DIV, l, -1, a, -1, -1, -1)->scale = sqrtf(2.0f);
    }
    lower_ffn(L, m, l, a);
    int r2 = lower_router(L, m, l, a, wr, wrn, "route2");
    n = node(L, GMC_OP_ALTUP_CORRECT, l, -1, xs, ps, a, r2);
    n->in[4] = wcc;
    n->scale = clip;
    n->n_heads = (int32_t)N;
    n->col = active;
    if (m->ple_dim) {
        int f = lower_stream(L, m, l, xs, active, "ple_in");
        if (wcs >= 0)
            node(L, GMC_OP_MUL_W, l, -1, f, wcs, -1, -1);
        int p = lower_ple_out(L, m, l, f, false);
        n = node(L, GMC_OP_STREAMS_ADD, l, -1, xs, p, -1, -1);
        n->n_heads = (int32_t)N;
        n->col = active;
    }
}

/* AltUp before the layers: the other streams are projections of the
 * embedding x rescaled to its RMS; returns the streams. */
static int lower_altup_init(lower *L, const gmc_model *m, int x)
{
    int64_t D = m->d_model, N = m->altup_streams;
    int wp = weight3(L, -1, "altup_proj", m->altup_type, D, D, N - 1);
    int y = act(L, -1, "altup_in", (N - 1) * D);
    node(L, GMC_OP_MATMUL, -1, y, x, wp, -1, -1);
    int xs = act(L, -1, "xs", N * D);
    gmc_node *n = node(L, GMC_OP_ALTUP_INIT, -1, xs, x, y, -1, -1);
    n->eps = 1e-5f;
    n->n_heads = (int32_t)N;
    return xs;
}

/* AltUp after the layers: the other streams projected back and rescaled
 * to stream 0's RMS, then the mean of all; returns it. */
static int lower_altup_final(lower *L, const gmc_model *m, int xs)
{
    int64_t D = m->d_model, N = m->altup_streams;
    int wu = weight3(L, -1, "altup_unembd_proj", m->altup_type, D, D, N - 1);
    /* a stream's rows for the matmul */
    int sq = kernel_rows(L, -1, "altup_stream", D, L->g->max_batch);
    int u = act(L, -1, "altup_out", (N - 1) * D);
    gmc_node *n = node(L, GMC_OP_ALTUP_UNEMBED, -1, u, xs, wu, sq, -1);
    n->n_heads = (int32_t)N;
    int x = act(L, -1, "x_mean", D);
    n = node(L, GMC_OP_ALTUP_FINAL, -1, x, xs, u, -1, -1);
    n->eps = 1e-5f;
    n->n_heads = (int32_t)N;
    return x;
}

/* After the FFN: x += rmsnorm(proj(gelu(inp_gate(x)) * ple[l])) (per-layer
 * embedding injection), then x *= layer_output_scale. */
static void lower_layer_end(lower *L, const gmc_model *m, int l, int x)
{
    if (m->ple_dim)
        lower_ple_out(L, m, l, x, true);
    if (m->layer_scale) {
        int ws = weight(L, l, "layer_output_scale", GMK_DTYPE_F32, 1, 1);
        node(L, GMC_OP_SCALE_W, l, -1, x, ws, -1, -1);
    }
}

gmc_status gmc_graph_lower(const gmc_model *m, int32_t max_batch, gmc_arena *a,
                           gmc_graph **out, gmc_diag *diag)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return gmc_fail(diag, GMC_ERR_ARG,
                        "batch size %d is out of range [1, 4096]", max_batch);
    gmc_graph *g = gmc_arena_alloc(a, sizeof *g);
    if (!g)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory building the graph");
    g->model = m;
    g->max_batch = max_batch;
    g->cap_values = 32 + 64 * m->n_layers;
    g->cap_nodes = 32 + 48 * m->n_layers;
    g->values = gmc_arena_array(a, (size_t)g->cap_values, sizeof *g->values);
    g->nodes = gmc_arena_array(a, (size_t)g->cap_nodes, sizeof *g->nodes);
    if (!g->values || !g->nodes)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory building the graph");

    lower L = {g, a, diag, false, NULL, NULL, -1};
    L.kc = gmc_arena_array(a, (size_t)m->n_layers, sizeof *L.kc);
    L.vc = gmc_arena_array(a, (size_t)m->n_layers, sizeof *L.vc);
    if (!L.kc || !L.vc)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory building the graph");
    /* Weights come first so that their ids are the manifest order; the
     * layer bodies add theirs in GGUF order as they go. */
    int emb = weight(&L, -1, "token_embd", m->embed_type, m->d_model, m->vocab);
    int onorm = weight(&L, -1, "output_norm", GMK_DTYPE_F32, m->d_model, 1);
    int tok = add_value(&L, GMC_V_TOKENS, "tokens", GMK_DTYPE_F32, max_batch, 1, -1);
    int x = act(&L, -1, "x", m->d_model);
    node(&L, GMC_OP_EMBED, -1, x, tok, emb, -1, -1)->scale = embed_scale(m, m->d_model);
    if (m->ple_dim)
        L.ple = lower_ple_inputs(&L, m, tok, x);
    if (m->altup_streams) {
        int xs = lower_altup_init(&L, m, x);
        for (int l = 0; l < m->n_layers && !L.failed; l++)
            lower_altup_layer(&L, m, l, xs);
        x = lower_altup_final(&L, m, xs);
    }
    for (int l = 0; l < m->n_layers && !L.failed && !m->altup_streams; l++) {
        lower_attention(&L, m, l, x);
        lower_ffn(&L, m, l, x);
        lower_layer_end(&L, m, l, x);
    }
    int h = act(&L, -1, "final", m->d_model);
    node(&L, GMC_OP_FINAL_NORM, -1, h, x, onorm, -1, -1)->eps = (float)m->norm_eps;
    int lg = add_value(&L, GMC_V_LOGITS, "logits", GMK_DTYPE_F32, m->vocab,
                       max_batch, -1);
    node(&L, GMC_OP_LOGITS, -1, lg, h, emb, -1, -1);
    if (m->final_softcap > 0)
        node(&L, GMC_OP_SOFTCAP, -1, -1, lg, -1, -1, -1)->softcap =
            (float)m->final_softcap;
    if (L.failed || gmc_arena_failed(a))
        return gmc_fail(diag, GMC_ERR_SEMANTIC,
                        "%s: a tensor size overflows or the graph is too large",
                        m->name);

    /* Weight values are interleaved with activations; ->index (set in
     * weight()) is their manifest order, which is the GGUF tensor order. */
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_graph_dump(g, &b);
    g->hash = gmc_hash_bytes(GMC_HASH_INIT, gmc_strbuf_str(&b), b.len);
    bool failed = gmc_strbuf_failed(&b);
    gmc_strbuf_deinit(&b);
    if (failed)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory dumping the graph");
    *out = g;
    return GMC_OK;
}

/* ------------------------------------------------------------ dumping */

static const char *kind_name(gmc_vkind k)
{
    switch (k) {
    case GMC_V_WEIGHT: return "weight";
    case GMC_V_TOKENS: return "tokens";
    case GMC_V_ACT: return "act";
    case GMC_V_KV: return "kv";
    case GMC_V_LOGITS: return "logits";
    }
    return "?";
}

/* Matmul input formats (gmk_act.h) as dumps and buffer names spell them. */
const char *gmc_act_fmt_name(int fmt)
{
    static const char *const names[GMK_ACT_COUNT] = {"f32", "q8_0", "q8_k", "bf16"};
    return fmt >= 0 && fmt < GMK_ACT_COUNT ? names[fmt] : "?";
}

static void dump_value(const gmc_value *v, gmc_strbuf *b)
{
    char fmt[16];
    const char *dt = v->kind == GMC_V_TOKENS ? "i32" : gmrt_dtype_name(v->dtype);
    if (v->act_fmt >= 0) { /* a matmul input buffer: "@q8_0" */
        snprintf(fmt, sizeof fmt, "@%s", gmc_act_fmt_name(v->act_fmt));
        dt = fmt;
    }
    gmc_emitf(b, "%%%d %-6s %-26s %-5s [%" PRId64 ", %" PRId64, v->id, kind_name(v->kind),
              v->name, dt ? dt : "?", v->ne[0], v->ne[1]);
    if (v->n_dims == 3)
        gmc_emitf(b, ", %" PRId64, v->ne[2]);
    gmc_emitf(b, "] %" PRIu64 " B", v->bytes);
    if (v->kind == GMC_V_WEIGHT && v->layout != GMK_LAYOUT_PACKED)
        gmc_emitf(b, " layout %s", gmk_layout_name(v->layout));
    if (v->mapped)
        gmc_emitf(b, " mapped");
    if (v->offset >= 0)
        gmc_emitf(b, " @%" PRId64, v->offset);
    if (v->first >= 0)
        gmc_emitf(b, " live %d..%d", v->first, v->last);
    gmc_emitf(b, "\n");
}

static void dump_node(const gmc_graph *g, int i, gmc_strbuf *b)
{
    const gmc_node *n = &g->nodes[i];
    gmc_emitf(b, "#%-4d %-11s", i, gmc_op_names[n->op]);
    if (gmc_op_slots[n->op]) { /* fused: every operand by slot name */
        for (int k = 0; k < gmc_op_n_in[n->op]; k++)
            if (n->in[k] >= 0)
                gmc_emitf(b, " %s=%%%d", gmc_op_slots[n->op][k], n->in[k]);
    } else if (!gmc_op_inplace[n->op])
        gmc_emitf(b, " %%%d =", n->out);
    for (int k = 0; k < gmc_op_n_in[n->op] && !gmc_op_slots[n->op]; k++)
        if (n->in[k] >= 0)
            gmc_emitf(b, " %%%d", n->in[k]);
    if (n->eps > 0)
        gmc_emitf(b, " eps=%g", (double)n->eps);
    if (n->scale != 0)
        gmc_emitf(b, " scale=%.9g", (double)n->scale);
    if (n->softcap > 0)
        gmc_emitf(b, " softcap=%g", (double)n->softcap);
    if (n->n_heads)
        gmc_emitf(b, " heads=%d", n->n_heads);
    if (n->n_kv_heads)
        gmc_emitf(b, " kv_heads=%d", n->n_kv_heads);
    if (n->head_dim)
        gmc_emitf(b, " head_dim=%d", n->head_dim);
    if (n->op == GMC_OP_ATTENTION || n->op == GMC_OP_ATTN_ACT)
        gmc_emitf(b, " window=%d", n->window);
    if (n->op == GMC_OP_ROPE || n->op == GMC_OP_QKV)
        gmc_emitf(b, " rope=%s", n->rope ? "global" : "local");
    if (n->v_norm)
        gmc_emitf(b, " v_norm");
    if (n->op == GMC_OP_GELU_SLICE || n->op == GMC_OP_SLICE || n->op == GMC_OP_ALTUP_CORRECT ||
        n->op == GMC_OP_STREAMS_ADD || n->op == GMC_OP_PLE_GATE)
        gmc_emitf(b, " col=%d", n->col);
    if (n->op == GMC_OP_MOE_ROUTE || n->op == GMC_OP_MOE_FFN)
        gmc_emitf(b, " top_k=%d", n->col);
    gmc_emitf(b, "\n");
}

void gmc_graph_dump(const gmc_graph *g, gmc_strbuf *b)
{
    const gmc_model *m = g->model;
    gmc_emitf(b, "graph %s: %d layers, d_model %d, vocab %d, max_batch %d, "
                 "context %d\n",
              m->name, m->n_layers, m->d_model, m->vocab, g->max_batch,
              m->context);
    gmc_emitf(b, "rope local theta=%.17g scale=%.17g, global theta=%.17g "
                 "scale=%.17g\n",
              m->rope_local.theta, m->rope_local.scale, m->rope_global.theta,
              m->rope_global.scale);
    for (int i = 0; i < g->n_values; i++)
        dump_value(&g->values[i], b);
    for (int i = 0; i < g->n_nodes; i++)
        dump_node(g, i, b);
}
