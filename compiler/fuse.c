/*
 * fuse.c — the fusion pass (see fuse.h).
 *
 * The lowering emits every layer as the same op sequence (graph.c), so the
 * pass first recognises the blocks — embedding, per layer attention and FFN,
 * output — checking each op and how values connect, and only then builds
 * the fused nodes from what it found.  What is legal follows
 * docs/models.md#fusion-invariants: a norm feeding only matmuls becomes
 * their input conversion; a post-norm needs the whole output row, so it
 * runs after a barrier inside the projection's kernel.
 */
#include "fuse.h"

#include <stdio.h>
#include <string.h>

#include "gmk.h"
#include "gmk_act.h"

/* gmk_fused_qkv keeps one token's cos/sin on the stack: GMK_ROPE_MAX_HALF
 * of gmk_generic.h, which the compiler does not include. */
#define ROPE_MAX_HALF 512

/* What one attention block of the lowering is made of. */
typedef struct attn_block {
    int x, wn, h;              /* h = rmsnorm(x) · wn */
    int q, k, v, wq, wk, wv;   /* projections of h */
    int wqn, wkn;              /* QK-norm weights or -1 */
    int kc, vc, o, wo, y, wpost; /* o = attention; y = o · wo; wpost or -1 */
    float eps, q_scale;
    int rope;
    const gmc_node *att;       /* the attention node (heads, window, cap) */
} attn_block;

typedef struct ffn_block {
    int x, wn, h, g, u, wg, wu, wd, y, wpost;
    float eps;
} ffn_block;

typedef struct out_block {
    int x, wn, h, lg, emb;
    float eps, softcap;
} out_block;

typedef struct fuser {
    const gmc_graph *g;
    gmc_graph *f;
    gmc_arena *a;
    int (*act_fmt)(int);
    const char *why; /* first reason not to fuse */
    int at;          /* next node of g to match */
} fuser;

static void refuse(fuser *F, const char *why)
{
    if (!F->why)
        F->why = why;
}

/* The next node of g if it is op (and F is still matching), else NULL. */
static const gmc_node *take(fuser *F, gmc_op op)
{
    if (F->why || F->at >= F->g->n_nodes || F->g->nodes[F->at].op != op) {
        refuse(F, "the op sequence is not the one the lowering emits");
        return NULL;
    }
    return &F->g->nodes[F->at++];
}

/* The next node if it is op, without failing when it is not. */
static const gmc_node *take_opt(fuser *F, gmc_op op)
{
    if (F->why || F->at >= F->g->n_nodes || F->g->nodes[F->at].op != op)
        return NULL;
    return &F->g->nodes[F->at++];
}

static void expect(fuser *F, bool ok)
{
    if (!ok)
        refuse(F, "values do not connect as the lowering connects them");
}

/* The residual update after a projection: x += rmsnorm(y) · w, or x += y. */
static void match_residual(fuser *F, int x, int y, int *wpost, float *eps)
{
    const gmc_node *n = take_opt(F, GMC_OP_RMSNORM_ADD);
    if (n) {
        expect(F, n->in[0] == x && n->in[1] == y);
        *wpost = n->in[2];
        *eps = n->eps;
        return;
    }
    n = take(F, GMC_OP_ADD);
    if (n)
        expect(F, n->in[0] == x && n->in[1] == y);
    *wpost = -1;
}

static void match_attn(fuser *F, int x, attn_block *b)
{
    memset(b, 0, sizeof *b);
    b->wqn = b->wkn = -1;
    const gmc_node *n = take(F, GMC_OP_RMSNORM);
    if (!n)
        return;
    b->x = x;
    b->wn = n->in[1];
    b->h = n->out;
    b->eps = n->eps;
    expect(F, n->in[0] == x);
    int *outs[3] = {&b->q, &b->k, &b->v}, *ws[3] = {&b->wq, &b->wk, &b->wv};
    for (int i = 0; i < 3 && (n = take(F, GMC_OP_MATMUL)); i++) {
        expect(F, n->in[0] == b->h);
        *outs[i] = n->out;
        *ws[i] = n->in[1];
    }
    if ((n = take_opt(F, GMC_OP_HEAD_NORM))) {
        expect(F, n->in[0] == b->q && n->eps == b->eps);
        b->wqn = n->in[1];
        if ((n = take(F, GMC_OP_HEAD_NORM))) {
            expect(F, n->in[0] == b->k && n->eps == b->eps);
            b->wkn = n->in[1];
        }
    }
    const gmc_node *rq = take(F, GMC_OP_ROPE), *rk = take(F, GMC_OP_ROPE);
    if (rq && rk) {
        expect(F, rq->in[0] == b->q && rk->in[0] == b->k && rq->rope == rk->rope &&
                      rk->scale == 1.0f);
        b->rope = rq->rope;
        b->q_scale = rq->scale;
    }
    if ((n = take(F, GMC_OP_KV_STORE))) {
        b->kc = n->in[0];
        b->vc = n->in[1];
        expect(F, n->in[2] == b->k && n->in[3] == b->v);
    }
    if ((n = take(F, GMC_OP_ATTENTION))) {
        expect(F, n->in[0] == b->q && n->in[1] == b->kc && n->in[2] == b->vc);
        b->o = n->out;
        b->att = n;
    }
    if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == b->o);
        b->y = n->out;
        b->wo = n->in[1];
    }
    float eps = b->eps;
    match_residual(F, x, b->y, &b->wpost, &eps);
    expect(F, eps == b->eps);
}

static void match_ffn(fuser *F, int x, ffn_block *b)
{
    memset(b, 0, sizeof *b);
    const gmc_node *n = take(F, GMC_OP_RMSNORM);
    if (!n)
        return;
    b->x = x;
    b->wn = n->in[1];
    b->h = n->out;
    b->eps = n->eps;
    expect(F, n->in[0] == x);
    const gmc_node *ng = take(F, GMC_OP_MATMUL), *nu = take(F, GMC_OP_MATMUL);
    if (!ng || !nu)
        return;
    expect(F, ng->in[0] == b->h && nu->in[0] == b->h);
    b->g = ng->out;
    b->wg = ng->in[1];
    b->u = nu->out;
    b->wu = nu->in[1];
    if ((n = take(F, GMC_OP_GEGLU)))
        expect(F, n->in[0] == b->g && n->in[1] == b->u);
    if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == b->g);
        b->y = n->out;
        b->wd = n->in[1];
    }
    float eps = b->eps;
    match_residual(F, x, b->y, &b->wpost, &eps);
    expect(F, eps == b->eps);
}

static void match_out(fuser *F, int x, out_block *b)
{
    memset(b, 0, sizeof *b);
    const gmc_node *n = take(F, GMC_OP_FINAL_NORM);
    if (!n)
        return;
    expect(F, n->in[0] == x);
    b->x = x;
    b->wn = n->in[1];
    b->h = n->out;
    b->eps = n->eps;
    if ((n = take(F, GMC_OP_LOGITS))) {
        expect(F, n->in[0] == b->h);
        b->lg = n->out;
        b->emb = n->in[1];
    }
    if ((n = take_opt(F, GMC_OP_SOFTCAP))) {
        expect(F, n->in[0] == b->lg);
        b->softcap = n->softcap;
    }
    if (!F->why && F->at != F->g->n_nodes)
        refuse(F, "ops follow the output head");
}

/* ------------------------------------------------------------ building */

static int new_value(fuser *F, const char *name, int layer, int fmt, int64_t width)
{
    gmc_graph *f = F->f;
    if (f->n_values == f->cap_values) {
        refuse(F, "too many values");
        return -1;
    }
    size_t row = fmt >= 0 ? gmk_act_row_bytes(fmt, width) : (size_t)width * sizeof(float);
    /* The primitives read f32 rows densely packed: refuse padded ones. */
    if (row == 0 || (fmt == GMK_ACT_F32 && row != (size_t)width * sizeof(float))) {
        refuse(F, "a matmul input width does not fit its activation format");
        return -1;
    }
    gmc_value *v = &f->values[f->n_values];
    memset(v, 0, sizeof *v);
    v->id = f->n_values++;
    v->kind = GMC_V_ACT;
    v->name = gmc_arena_strdup(F->a, name);
    v->dtype = GMK_DTYPE_F32;
    v->act_fmt = fmt;
    v->n_dims = 2;
    v->ne[0] = width;
    v->ne[1] = f->max_batch;
    v->ne[2] = v->ne[3] = 1;
    v->bytes = (uint64_t)row * (uint64_t)f->max_batch;
    v->layer = layer;
    v->offset = -1;
    v->first = v->last = -1;
    return v->id;
}

/* The input buffers of the matmuls with weights ws (n of them, -1 skipped):
 * one per distinct format, in order of first use; fmts[i] is the buffer of
 * ws[i]. */
typedef struct act_set {
    int n, id[3], fmt[3];
    int of[3]; /* weight i -> its buffer's id */
} act_set;

static void make_acts(fuser *F, act_set *s, const char *base, int layer, int64_t width,
                      const int *ws, int n)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < n; i++) {
        s->of[i] = -1;
        if (ws[i] < 0)
            continue;
        int fmt = F->act_fmt(F->g->values[ws[i]].dtype);
        int j = 0;
        while (j < s->n && s->fmt[j] != fmt)
            j++;
        if (j == s->n) {
            char name[64];
            snprintf(name, sizeof name, "%s_%s", base, gmc_act_fmt_name(fmt));
            s->fmt[j] = fmt;
            s->id[j] = new_value(F, name, layer, fmt, width);
            s->n++;
        }
        s->of[i] = s->id[j];
    }
}

static gmc_node *add_node(fuser *F, gmc_op op, int layer)
{
    gmc_graph *f = F->f;
    if (f->n_nodes == f->cap_nodes) {
        refuse(F, "too many nodes");
        static gmc_node sink;
        return &sink;
    }
    gmc_node *n = &f->nodes[f->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->layer = layer;
    for (int k = 0; k < GMC_NODE_MAX_IN; k++)
        n->in[k] = -1;
    return n;
}

/* Slots a0..a2 (first = GMC_<OP>_A0) of a norm's outputs: one buffer per
 * format, absent ones -1. */
static void put_acts(gmc_node *n, int first, const act_set *s)
{
    for (int i = 0; i < 3; i++)
        n->in[first + i] = i < s->n ? s->id[i] : -1;
}
_Static_assert(GMC_NORM_ACT_A2 == GMC_NORM_ACT_A0 + 2 &&
                   GMC_PROJ_NORM_ADD_A2 == GMC_PROJ_NORM_ADD_A0 + 2 &&
                   GMC_DOWN_NORM_ADD_A2 == GMC_DOWN_NORM_ADD_A0 + 2,
               "fused.def: a0..a2 are consecutive slots");

static void build_layer(fuser *F, int l, const attn_block *A, const ffn_block *B,
                        const attn_block *next, const act_set *in, act_set *next_in)
{
    char name[64];
    const gmc_node *at = A->att;
    gmc_node *n = add_node(F, GMC_OP_QKV, l);
    n->in[GMC_QKV_XQ] = in->of[0];
    n->in[GMC_QKV_XK] = in->of[1];
    n->in[GMC_QKV_XV] = in->of[2];
    n->in[GMC_QKV_WQ] = A->wq;
    n->in[GMC_QKV_WK] = A->wk;
    n->in[GMC_QKV_WV] = A->wv;
    n->in[GMC_QKV_QN] = A->wqn;
    n->in[GMC_QKV_KN] = A->wkn;
    n->in[GMC_QKV_Q] = A->q;
    n->in[GMC_QKV_K] = A->k;
    n->in[GMC_QKV_V] = A->v;
    n->in[GMC_QKV_KC] = A->kc;
    n->in[GMC_QKV_VC] = A->vc;
    n->out = A->q;
    n->eps = A->eps;
    n->scale = A->q_scale;
    n->rope = A->rope;
    n->n_heads = at->n_heads;
    n->n_kv_heads = at->n_kv_heads;
    n->head_dim = at->head_dim;
    if (at->head_dim % 2 != 0 || at->head_dim / 2 > ROPE_MAX_HALF)
        refuse(F, "head_dim is odd or too large for the fused RoPE");

    act_set o;
    int wo[1] = {A->wo};
    snprintf(name, sizeof name, "l%d.attn", l);
    make_acts(F, &o, name, l, F->g->values[A->o].ne[0], wo, 1);
    n = add_node(F, GMC_OP_ATTN_ACT, l);
    n->in[GMC_ATTN_ACT_Q] = A->q;
    n->in[GMC_ATTN_ACT_KC] = A->kc;
    n->in[GMC_ATTN_ACT_VC] = A->vc;
    n->in[GMC_ATTN_ACT_O] = A->o;
    n->in[GMC_ATTN_ACT_A] = o.id[0];
    n->out = o.id[0];
    n->n_heads = at->n_heads;
    n->n_kv_heads = at->n_kv_heads;
    n->head_dim = at->head_dim;
    n->window = at->window;
    n->softcap = at->softcap;

    act_set h;
    int wgu[2] = {B->wg, B->wu};
    snprintf(name, sizeof name, "l%d.ffn_in", l);
    make_acts(F, &h, name, l, F->g->values[B->x].ne[0], wgu, 2);
    n = add_node(F, GMC_OP_PROJ_NORM_ADD, l);
    n->in[GMC_PROJ_NORM_ADD_XQ] = o.id[0];
    n->in[GMC_PROJ_NORM_ADD_W] = A->wo;
    n->in[GMC_PROJ_NORM_ADD_Y] = A->y;
    n->in[GMC_PROJ_NORM_ADD_X] = A->x;
    n->in[GMC_PROJ_NORM_ADD_POST] = A->wpost;
    n->in[GMC_PROJ_NORM_ADD_NORM] = B->wn;
    put_acts(n, GMC_PROJ_NORM_ADD_A0, &h);
    n->out = A->x;
    n->eps = A->eps;
    if (A->eps != B->eps)
        refuse(F, "the post-attention and FFN norms differ in eps");

    act_set d;
    int wd[1] = {B->wd};
    snprintf(name, sizeof name, "l%d.down_in", l);
    make_acts(F, &d, name, l, F->g->values[B->g].ne[0], wd, 1);
    n = add_node(F, GMC_OP_GATE_UP, l);
    n->in[GMC_GATE_UP_XG] = h.of[0];
    n->in[GMC_GATE_UP_XU] = h.of[1];
    n->in[GMC_GATE_UP_WG] = B->wg;
    n->in[GMC_GATE_UP_WU] = B->wu;
    n->in[GMC_GATE_UP_G] = B->g;
    n->in[GMC_GATE_UP_U] = B->u;
    n->in[GMC_GATE_UP_A] = d.id[0];
    n->out = d.id[0];

    memset(next_in, 0, sizeof *next_in);
    if (next) {
        int wqkv[3] = {next->wq, next->wk, next->wv};
        snprintf(name, sizeof name, "l%d.attn_in", l + 1);
        make_acts(F, next_in, name, l + 1, F->g->values[next->x].ne[0], wqkv, 3);
        if (next->eps != B->eps)
            refuse(F, "the post-FFN and next attention norms differ in eps");
    }
    n = add_node(F, GMC_OP_DOWN_NORM_ADD, l);
    n->in[GMC_DOWN_NORM_ADD_XQ] = d.id[0];
    n->in[GMC_DOWN_NORM_ADD_W] = B->wd;
    n->in[GMC_DOWN_NORM_ADD_Y] = B->y;
    n->in[GMC_DOWN_NORM_ADD_X] = B->x;
    n->in[GMC_DOWN_NORM_ADD_POST] = B->wpost;
    n->in[GMC_DOWN_NORM_ADD_NORM] = next ? next->wn : -1;
    put_acts(n, GMC_DOWN_NORM_ADD_A0, next_in);
    n->out = B->x;
    n->eps = B->eps;
}

/* Buffers used outside their layer's block move to the forward function's
 * scope, and their names lose the layer dot ("l3.attn_in_f32" becomes
 * "l3_attn_in_f32") so that they stay C identifiers. */
static void widen_scopes(fuser *F)
{
    gmc_graph *f = F->f;
    for (int i = 0; i < f->n_nodes; i++) {
        const gmc_node *n = &f->nodes[i];
        for (int k = 0; k < gmc_op_n_in[n->op]; k++) {
            gmc_value *v = n->in[k] >= 0 ? &f->values[n->in[k]] : NULL;
            if (!v || v->kind != GMC_V_ACT || v->layer < 0 || v->layer == n->layer)
                continue;
            char *s = gmc_arena_strdup(F->a, v->name);
            for (char *p = s; p && *p; p++)
                if (*p == '.')
                    *p = '_';
            v->name = s ? s : v->name;
            v->layer = -1;
        }
    }
}

static void build(fuser *F, const attn_block *A, const ffn_block *B, const out_block *O,
                  const gmc_node *embed)
{
    const gmc_model *m = F->g->model;
    gmc_node *n = add_node(F, GMC_OP_EMBED, -1);
    *n = *embed;
    act_set in;
    int wqkv[3] = {A[0].wq, A[0].wk, A[0].wv};
    make_acts(F, &in, "l0.attn_in", 0, F->g->values[A[0].x].ne[0], wqkv, 3);
    n = add_node(F, GMC_OP_NORM_ACT, -1);
    n->in[GMC_NORM_ACT_X] = A[0].x;
    n->in[GMC_NORM_ACT_W] = A[0].wn;
    n->in[GMC_NORM_ACT_TMP] = A[0].h;
    put_acts(n, GMC_NORM_ACT_A0, &in);
    n->out = in.id[0];
    n->eps = A[0].eps;
    for (int l = 0; l < m->n_layers && !F->why; l++) {
        act_set next;
        build_layer(F, l, &A[l], &B[l], l + 1 < m->n_layers ? &A[l + 1] : NULL, &in, &next);
        in = next;
    }
    act_set hq;
    int we[1] = {O->emb};
    make_acts(F, &hq, "final", -1, F->g->values[O->x].ne[0], we, 1);
    int slots = new_value(F, "argmax", -1, -1, 2 * GMK_MAX_THREADS);
    if (slots >= 0) { /* one gmk_argmax_slot per thread, not rows per token */
        F->f->values[slots].n_dims = 1;
        F->f->values[slots].ne[1] = 1;
        F->f->values[slots].bytes = 8u * GMK_MAX_THREADS;
    }
    n = add_node(F, GMC_OP_HEAD, -1);
    n->in[GMC_HEAD_X] = O->x;
    n->in[GMC_HEAD_W] = O->wn;
    n->in[GMC_HEAD_TMP] = O->h;
    n->in[GMC_HEAD_HQ] = hq.id[0];
    n->in[GMC_HEAD_TABLE] = O->emb;
    n->in[GMC_HEAD_LOGITS] = O->lg;
    n->in[GMC_HEAD_SLOTS] = slots;
    n->out = O->lg;
    n->eps = O->eps;
    n->softcap = O->softcap;
    widen_scopes(F);
}

/* The fused kernels cover Gemma 1-3; the first Gemma 4 feature a model
 * uses, or NULL. */
static const char *unfused_feature(const gmc_model *m)
{
    if (m->value_norm)
        return "the value norm (Gemma 4) is not fused yet";
    if (m->layer_scale)
        return "the layer output scale (Gemma 4) is not fused yet";
    if (m->kv_shared_layers)
        return "KV sharing is not fused yet";
    if (m->ple_dim)
        return "per-layer embeddings are not fused yet";
    if (m->n_experts)
        return "mixture-of-experts layers are not fused yet";
    if (m->global.k_eq_v || m->global.head_dim || m->global.n_kv_heads)
        return "attention.global (per-kind head_dim, KV heads, K = V) is not fused yet";
    return NULL;
}

static gmc_status fuse_in(fuser *F, gmc_diag *diag)
{
    const gmc_graph *g = F->g;
    const gmc_model *m = g->model;
    const char *why = unfused_feature(m);
    if (why) {
        refuse(F, why);
        return GMC_OK;
    }
    attn_block *A = gmc_arena_array(F->a, (size_t)m->n_layers, sizeof *A);
    ffn_block *B = gmc_arena_array(F->a, (size_t)m->n_layers, sizeof *B);
    if (!A || !B)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    const gmc_node *embed = take(F, GMC_OP_EMBED);
    int x = embed ? embed->out : -1;
    for (int l = 0; l < m->n_layers && !F->why; l++) {
        match_attn(F, x, &A[l]);
        match_ffn(F, x, &B[l]);
    }
    out_block O;
    match_out(F, x, &O);
    if (F->why || m->n_layers < 1)
        return GMC_OK;

    gmc_graph *f = gmc_arena_alloc(F->a, sizeof *f);
    if (!f)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    *f = *g;
    f->cap_values = g->n_values + 8 * m->n_layers + 16;
    f->cap_nodes = 5 * m->n_layers + 8;
    f->values = gmc_arena_array(F->a, (size_t)f->cap_values, sizeof *f->values);
    f->nodes = gmc_arena_array(F->a, (size_t)f->cap_nodes, sizeof *f->nodes);
    if (!f->values || !f->nodes)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    memcpy(f->values, g->values, (size_t)g->n_values * sizeof *f->values);
    for (int i = 0; i < f->n_values; i++) { /* planned afresh */
        f->values[i].offset = -1;
        f->values[i].first = f->values[i].last = -1;
    }
    f->n_nodes = 0;
    F->f = f;
    build(F, A, B, &O, embed);
    return GMC_OK;
}

/*
 * The unfused graph on the target's kernels: every matmul whose weight the
 * target reads from converted rows gets a third input, a buffer of its
 * input in that format (one per input value and format, reused by every
 * matmul of that input: each converts before it multiplies, so a buffer
 * never carries rows over), and the MoE scratch rows take the formats of
 * the experts' weights.  Values are copied; nodes are changed in the copy.
 */
static gmc_status convert_inputs(fuser *F, gmc_diag *diag)
{
    const gmc_graph *g = F->g;
    int extra = 0;
    for (int i = 0; i < g->n_nodes; i++)
        extra += g->nodes[i].op == GMC_OP_MATMUL || g->nodes[i].op == GMC_OP_LOGITS;
    gmc_graph *f = gmc_arena_alloc(F->a, sizeof *f);
    if (!f)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    *f = *g;
    f->cap_values = g->n_values + extra;
    f->values = gmc_arena_array(F->a, (size_t)f->cap_values, sizeof *f->values);
    f->nodes = gmc_arena_array(F->a, (size_t)g->n_nodes, sizeof *f->nodes);
    int *buf = gmc_arena_array(F->a, (size_t)g->n_values * GMK_ACT_COUNT, sizeof *buf);
    if (!f->values || !f->nodes || !buf)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    memcpy(f->values, g->values, (size_t)g->n_values * sizeof *f->values);
    memcpy(f->nodes, g->nodes, (size_t)g->n_nodes * sizeof *f->nodes);
    for (int i = 0; i < g->n_values * GMK_ACT_COUNT; i++)
        buf[i] = -1;
    F->f = f;
    const char *why = F->why;
    F->why = NULL;
    for (int i = 0; i < f->n_nodes && !F->why; i++) {
        gmc_node *n = &f->nodes[i];
        if (n->op == GMC_OP_MOE_FFN) {
            f->values[n->in[4]].act_fmt = F->act_fmt(f->values[n->in[2]].dtype);
            f->values[n->in[6]].act_fmt = F->act_fmt(f->values[n->in[3]].dtype);
            continue;
        }
        if (n->op == GMC_OP_ALTUP_UNEMBED) {
            f->values[n->in[2]].act_fmt = F->act_fmt(f->values[n->in[1]].dtype);
            continue;
        }
        if (n->op != GMC_OP_MATMUL && n->op != GMC_OP_LOGITS)
            continue;
        int fmt = F->act_fmt(f->values[n->in[1]].dtype);
        if (fmt == GMK_ACT_F32)
            continue;
        int x = n->in[0], *b = &buf[x * GMK_ACT_COUNT + fmt];
        if (*b < 0) {
            const gmc_value *xv = &f->values[x];
            char name[96];
            snprintf(name, sizeof name, "%s_%s", xv->name, gmc_act_fmt_name(fmt));
            *b = new_value(F, name, xv->layer, fmt, xv->ne[0]);
        }
        n->in[2] = *b;
    }
    if (F->why) /* a width its format cannot hold: leave the f32 kernels */
        F->f = NULL;
    F->why = why;
    return GMC_OK;
}

gmc_status gmc_fuse(gmc_graph *g, int (*act_fmt)(int wdtype), gmc_arena *a, gmc_graph **out,
                    const char **note, gmc_diag *diag)
{
    fuser F = {.g = g, .a = a, .act_fmt = act_fmt};
    *out = g;
    if (note)
        *note = NULL;
    GMC_TRY(fuse_in(&F, diag));
    if (gmc_arena_failed(a))
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    if (F.why) {
        if (note)
            *note = F.why;
        GMC_TRY(convert_inputs(&F, diag));
        if (gmc_arena_failed(a))
            return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
        if (F.f)
            *out = F.f;
        return GMC_OK;
    }
    *out = F.f;
    return GMC_OK;
}
