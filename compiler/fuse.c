/*
 * fuse.c — the fusion pass (see fuse.h).
 *
 * The lowering emits every layer as the same op sequence (graph.c), so the
 * pass first recognises the blocks — per layer attention, FFN and per-layer
 * embedding, and the output — checking each op and how values connect, and
 * only then builds the fused nodes from what it found.  A block it does not
 * recognise (an op of a feature the fused kernels lack, such as Gemma 4's
 * experts) keeps its ops, as does everything between the blocks (the
 * embedding, the per-layer inputs, AltUp); a fused block after such ops
 * starts with its own norm (norm_act).  What is legal follows docs/models.md#fusion-invariants: a
 * norm feeding only matmuls becomes their input conversion; a post-norm
 * needs the whole output row, so it runs after a barrier inside the
 * projection's kernel.
 */
#include "fuse.h"

#include <stdio.h>
#include <string.h>

#include "gmk.h"
#include "gmk_act.h"

/* gmk_fused_qkv keeps one token's cos/sin on the stack: GMK_ROPE_MAX_HALF
 * of gmk_generic.h, which the compiler does not include. */
#define ROPE_MAX_HALF 512

/* The norm a block starts with: h = rmsnorm(x) · wn. */
typedef struct norm_in {
    int x, wn, h;
    float eps;
} norm_in;

/* What one attention block of the lowering is made of. */
typedef struct attn_block {
    int q, k, v, wq, wk, wv;   /* projections of h; wk, k -1: the layer
                                * reads another's cache; wv -1: K = V */
    int wqn, wkn;              /* QK-norm weights or -1 */
    int kc, vc, o, wo, y, wpost; /* o = attention; y = o · wo; wpost or -1 */
    float q_scale;
    int rope;
    bool v_norm;               /* weightless norm of V (Gemma 4) */
    const gmc_node *att;       /* the attention node (heads, window, cap) */
} attn_block;

typedef struct ffn_block {
    int g, u, wg, wu, wd, y, wpost;
} ffn_block;

typedef struct out_block {
    int lg, emb;
    float softcap;
} out_block;

/* The per-layer embedding's contribution (Gemma 4): g = x · wg, gelu(g) ·
 * p[:, col..], x += rmsnorm(g · wp) · wpost.  Its input is x itself, so
 * only the op before it can write its input rows (in.wn and in.h -1). */
typedef struct ple_block {
    int g, wg, p, col, wp, y, wpost;
} ple_block;

typedef enum blk_kind { BLK_ATTN, BLK_FFN, BLK_PLE, BLK_OUT } blk_kind;

static const char *const blk_names[] = {"attention", "FFN", "per-layer embedding", "output"};

/* A recognised block: nodes [start, end) of g. */
typedef struct block {
    blk_kind kind;
    int start, end, layer;
    norm_in in;
    int scale;      /* the layer output scale x takes just before, or -1 */
    bool h_outside; /* h is read after the block (Gemma 3n's LAuReL) */
    bool chain;     /* its last op writes the next block's input rows */
    attn_block a;
    ffn_block f;
    ple_block p;
    out_block o;
} block;

/* Why some blocks stayed unfused: one line per distinct reason. */
typedef struct reason {
    const char *what;
    int count, first, last; /* blocks, first and last layer */
} reason;

#define MAX_REASONS 16

typedef struct fuser {
    const gmc_graph *g;
    gmc_graph *f;
    gmc_arena *a;
    int (*act_fmt)(int);
    const char *why; /* the reason the current match or the build failed */
    int at;          /* next node of g to match */
    int bad;         /* where the current match failed */
    reason reasons[MAX_REASONS]; /* blocks that stayed unfused */
    int n_reasons;
    int unfused[GMC_OP_COUNT]; /* ops copied unchanged, by op */
} fuser;

/* Records the first reason not to fuse, and the node it concerns. */
static void refuse_at(fuser *F, const char *why, int node)
{
    if (!F->why) {
        F->why = why;
        F->bad = node < F->g->n_nodes ? node : F->g->n_nodes - 1;
    }
}

static void refuse(fuser *F, const char *why)
{
    refuse_at(F, why, F->at);
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
    if (!ok) /* names the node just taken */
        refuse_at(F, "values do not connect as the lowering connects them", F->at - 1);
}

/* h = rmsnorm(x) · wn, the first node of a block. */
static void match_norm(fuser *F, gmc_op op, norm_in *in)
{
    const gmc_node *n = take(F, op);
    if (!n)
        return;
    in->x = n->in[0];
    in->wn = n->in[1];
    in->h = n->out;
    in->eps = n->eps;
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

/* Q, K and V of h: K and V are absent when the layer reads another's cache
 * (no matmul follows Q's), and V is a copy of K's projection for K = V. */
static void match_projections(fuser *F, int h, attn_block *b)
{
    const gmc_node *n = take(F, GMC_OP_MATMUL);
    if (!n)
        return;
    expect(F, n->in[0] == h);
    b->q = n->out;
    b->wq = n->in[1];
    b->k = b->v = b->wk = b->wv = -1;
    if (!(n = take_opt(F, GMC_OP_MATMUL)))
        return;
    expect(F, n->in[0] == h);
    b->k = n->out;
    b->wk = n->in[1];
    if ((n = take_opt(F, GMC_OP_COPY))) {
        expect(F, n->in[0] == b->k);
        b->v = n->out;
    } else if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == h);
        b->v = n->out;
        b->wv = n->in[1];
    }
}

static void match_attn(fuser *F, norm_in *in, attn_block *b)
{
    memset(b, 0, sizeof *b);
    b->wqn = b->wkn = -1;
    match_norm(F, GMC_OP_RMSNORM, in);
    match_projections(F, in->h, b);
    bool own = b->k >= 0;
    const gmc_node *n;
    if ((n = take_opt(F, GMC_OP_HEAD_NORM))) {
        expect(F, n->in[0] == b->q && n->in[1] >= 0 && n->eps == in->eps);
        b->wqn = n->in[1];
        if (own && (n = take(F, GMC_OP_HEAD_NORM))) {
            expect(F, n->in[0] == b->k && n->in[1] >= 0 && n->eps == in->eps);
            b->wkn = n->in[1];
        }
    }
    const gmc_node *rq = take(F, GMC_OP_ROPE), *rk = own ? take(F, GMC_OP_ROPE) : NULL;
    if (rq) {
        expect(F, rq->in[0] == b->q && (!own || (rk && rk->in[0] == b->k &&
                                                 rq->rope == rk->rope && rk->scale == 1.0f)));
        b->rope = rq->rope;
        b->q_scale = rq->scale;
    }
    if (own && (n = take_opt(F, GMC_OP_HEAD_NORM))) {
        expect(F, n->in[0] == b->v && n->in[1] < 0 && n->eps == in->eps);
        b->v_norm = true;
    }
    if (own && (n = take(F, GMC_OP_KV_STORE))) {
        b->kc = n->in[0];
        b->vc = n->in[1];
        expect(F, n->in[2] == b->k && n->in[3] == b->v);
    }
    if ((n = take(F, GMC_OP_ATTENTION))) {
        expect(F, n->in[0] == b->q && (!own || (n->in[1] == b->kc && n->in[2] == b->vc)));
        b->kc = n->in[1];
        b->vc = n->in[2];
        b->o = n->out;
        b->att = n;
    }
    if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == b->o);
        b->y = n->out;
        b->wo = n->in[1];
    }
    float eps = in->eps;
    match_residual(F, in->x, b->y, &b->wpost, &eps);
    expect(F, eps == in->eps);
}

static void match_ffn(fuser *F, norm_in *in, ffn_block *b)
{
    memset(b, 0, sizeof *b);
    match_norm(F, GMC_OP_RMSNORM, in);
    const gmc_node *ng = take(F, GMC_OP_MATMUL), *nu = take(F, GMC_OP_MATMUL);
    if (!ng || !nu)
        return;
    expect(F, ng->in[0] == in->h && nu->in[0] == in->h);
    b->g = ng->out;
    b->wg = ng->in[1];
    b->u = nu->out;
    b->wu = nu->in[1];
    const gmc_node *n;
    if ((n = take(F, GMC_OP_GEGLU)))
        expect(F, n->in[0] == b->g && n->in[1] == b->u);
    if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == b->g);
        b->y = n->out;
        b->wd = n->in[1];
    }
    float eps = in->eps;
    match_residual(F, in->x, b->y, &b->wpost, &eps);
    expect(F, eps == in->eps);
}

static void match_ple(fuser *F, norm_in *in, ple_block *b)
{
    memset(b, 0, sizeof *b);
    in->wn = in->h = -1;
    const gmc_node *n = take(F, GMC_OP_MATMUL);
    if (!n)
        return;
    in->x = n->in[0];
    b->g = n->out;
    b->wg = n->in[1];
    if ((n = take(F, GMC_OP_GELU_SLICE))) {
        expect(F, n->in[0] == b->g);
        b->p = n->in[1];
        b->col = n->col;
    }
    if ((n = take(F, GMC_OP_MATMUL))) {
        expect(F, n->in[0] == b->g);
        b->y = n->out;
        b->wp = n->in[1];
    }
    if ((n = take(F, GMC_OP_RMSNORM_ADD))) {
        expect(F, n->in[0] == in->x && n->in[1] == b->y);
        b->wpost = n->in[2];
        in->eps = n->eps;
    }
}

static void match_out(fuser *F, norm_in *in, out_block *b)
{
    memset(b, 0, sizeof *b);
    match_norm(F, GMC_OP_FINAL_NORM, in);
    const gmc_node *n;
    if ((n = take(F, GMC_OP_LOGITS))) {
        expect(F, n->in[0] == in->h);
        b->lg = n->out;
        b->emb = n->in[1];
    }
    if ((n = take_opt(F, GMC_OP_SOFTCAP))) {
        expect(F, n->in[0] == b->lg);
        b->softcap = n->softcap;
    }
}

/* ------------------------------------------------------------ recognising */

/* Whether a node outside [start, end) of g reads or writes value v. */
static bool used_outside(const gmc_graph *g, int v, int start, int end)
{
    for (int i = 0; i < g->n_nodes && v >= 0; i++) {
        const gmc_node *n = &g->nodes[i];
        if (i >= start && i < end)
            continue;
        for (int k = 0; k < gmc_op_n_in[n->op]; k++)
            if (n->in[k] == v)
                return true;
        if (n->out == v)
            return true;
    }
    return false;
}

/* Counts one block of layer l that stays unfused for reason what. */
static void note_reason(fuser *F, const char *what, int layer)
{
    int i = 0;
    while (i < F->n_reasons && strcmp(F->reasons[i].what, what) != 0)
        i++;
    if (i == MAX_REASONS)
        return;
    reason *r = &F->reasons[i];
    if (i == F->n_reasons) {
        r->what = gmc_arena_strdup(F->a, what);
        if (!r->what) /* gmc_fuse reports the arena's failure */
            return;
        r->first = layer;
        F->n_reasons++;
    }
    r->count++;
    r->last = layer;
}

/* The values a block computes and its fused ops keep to themselves (the
 * projections, the attention output, the gate): n of them, -1 absent. */
static int inner_values(const block *b, int v[5])
{
    const attn_block *a = &b->a;
    const int attn[] = {a->q, a->k, a->v, a->o, a->y}, ffn[] = {b->f.g, b->f.u, b->f.y},
              ple[] = {b->p.g, b->p.y};
    const int *src = b->kind == BLK_ATTN ? attn : b->kind == BLK_FFN ? ffn : ple;
    int n = b->kind == BLK_ATTN ? 5 : b->kind == BLK_FFN ? 3 : b->kind == BLK_PLE ? 2 : 0;
    memcpy(v, src, (size_t)n * sizeof *v);
    return n;
}

/* What a block's fused kernels cannot do though its ops match, or NULL. */
static const char *block_limit(const fuser *F, const block *b)
{
    if (b->kind == BLK_ATTN &&
        (b->a.att->head_dim % 2 != 0 || b->a.att->head_dim / 2 > ROPE_MAX_HALF))
        return "head_dim is odd or too large for the fused RoPE";
    int v[5], n = inner_values(b, v);
    for (int i = 0; i < n; i++)
        if (used_outside(F->g, v[i], b->start, b->end))
            return "a value inside the block is read outside it";
    return NULL;
}

/* Matches the block starting at node i as kind; false (and F->why) if it
 * is not one. */
static bool match_kind(fuser *F, int i, blk_kind kind, block *b)
{
    memset(b, 0, sizeof *b);
    F->why = NULL;
    F->at = i;
    b->kind = kind;
    if (kind == BLK_ATTN)
        match_attn(F, &b->in, &b->a);
    else if (kind == BLK_FFN)
        match_ffn(F, &b->in, &b->f);
    else if (kind == BLK_PLE)
        match_ple(F, &b->in, &b->p);
    else
        match_out(F, &b->in, &b->o);
    b->start = i;
    b->end = F->at;
    b->layer = F->g->nodes[i].layer;
    b->scale = -1;
    return !F->why;
}

/* The kind of block the node at i opens, or -1: a norm whose output a
 * matmul reads next (attention or FFN), a matmul whose output the
 * per-layer embedding's gate reads next, the final norm.  A block that
 * opens but does not match stays unfused, and why. */
static int opens_block(const gmc_graph *g, int i)
{
    const gmc_node *n = &g->nodes[i], *next = i + 1 < g->n_nodes ? n + 1 : NULL;
    if (n->op == GMC_OP_FINAL_NORM)
        return BLK_OUT;
    if (!next || next->in[0] != n->out)
        return -1;
    if (n->op == GMC_OP_MATMUL && next->op == GMC_OP_GELU_SLICE)
        return BLK_PLE;
    return n->op == GMC_OP_RMSNORM && next->op == GMC_OP_MATMUL ? BLK_ATTN : -1;
}

/* The block at node i, if one opens there and the fused kernels can run
 * it; otherwise its reason is noted. */
static bool recognise(fuser *F, int i, block *b)
{
    const gmc_graph *g = F->g;
    int kind = opens_block(g, i);
    if (kind < 0)
        return false;
    char what[160];
    bool ok = match_kind(F, i, (blk_kind)kind, b); /* BLK_ATTN: or FFN */
    if (!ok && b->kind == BLK_ATTN) {
        block fb;
        int bad = F->bad;
        ok = match_kind(F, i, BLK_FFN, &fb);
        if (ok || F->bad >= bad) /* else the attention match got further: name that */
            *b = fb;
        else
            F->bad = bad;
    }
    if (!ok) {
        snprintf(what, sizeof what, "%s blocks at %s", blk_names[b->kind],
                 gmc_op_names[g->nodes[F->bad].op]);
        note_reason(F, what, b->layer);
        return false;
    }
    const char *limit = block_limit(F, b);
    if (limit) {
        snprintf(what, sizeof what, "%s blocks: %s", blk_names[b->kind], limit);
        note_reason(F, what, b->layer);
        return false;
    }
    b->h_outside = used_outside(g, b->in.h, b->start, b->end);
    if ((b->kind == BLK_ATTN || b->kind == BLK_FFN) && i > 0 &&
        g->nodes[i - 1].op == GMC_OP_SCALE_W &&
        g->nodes[i - 1].in[0] == b->in.x) { /* the layer output scale before it */
        b->scale = g->nodes[i - 1].in[1];
        b->start--;
    }
    return true;
}

/* Whether block p's last op can write q's input rows: q follows p on the
 * same residual, nothing else reads q's normed rows, and the one eps of
 * p's last op serves both norms (a per-layer embedding block has none). */
static bool can_chain(const block *p, const block *q)
{
    return p->kind != BLK_OUT && q->kind != BLK_OUT && p->end == q->start &&
           p->in.x == q->in.x && (q->kind == BLK_PLE || p->in.eps == q->in.eps) &&
           !q->h_outside && q->scale < 0;
}

/* The blocks of g in order; *n_out of them, each marked when it chains
 * into the next.  A per-layer embedding block nothing chains into stays
 * unfused: no norm_act converts x unnormed. */
static block *find_blocks(fuser *F, int *n_out)
{
    const gmc_graph *g = F->g;
    block *bl = gmc_arena_array(F->a, (size_t)g->n_nodes + 1, sizeof *bl);
    int n = 0;
    for (int i = 0; bl && i < g->n_nodes;) {
        if (recognise(F, i, &bl[n]))
            i = bl[n++].end;
        else
            i++;
    }
    int kept = 0;
    for (int j = 0; j < n; j++) {
        if (bl[j].kind == BLK_PLE && !(kept > 0 && can_chain(&bl[kept - 1], &bl[j]))) {
            note_reason(F, "per-layer embedding blocks after unfused ops", bl[j].layer);
            continue;
        }
        bl[kept++] = bl[j];
    }
    for (int j = 0; j + 1 < kept; j++)
        bl[j].chain = can_chain(&bl[j], &bl[j + 1]);
    F->why = NULL;
    *n_out = kept;
    return bl;
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

/* The weights of the matmuls a block's norm feeds (n of them, -1 absent). */
static int block_weights(const block *b, int ws[3])
{
    if (b->kind == BLK_ATTN) {
        ws[0] = b->a.wq, ws[1] = b->a.wk, ws[2] = b->a.wv;
        return 3;
    }
    if (b->kind == BLK_PLE) {
        ws[0] = b->p.wg;
        return 1;
    }
    ws[0] = b->f.wg, ws[1] = b->f.wu;
    return 2;
}

/* The input buffers of block b (named "l3.attn_in_q8_0", ...). */
static void block_acts(fuser *F, const block *b, act_set *s)
{
    static const char *const what[] = {"attn_in", "ffn_in", "ple_in"};
    char name[64];
    int ws[3], n = block_weights(b, ws);
    snprintf(name, sizeof name, "l%d.%s", b->layer, what[b->kind]);
    make_acts(F, s, name, b->layer, F->g->values[b->in.x].ne[0], ws, n);
}

/* The layer of the last node built (-1 before any): a norm_act that opens a
 * block runs at the end of what came before, as a chained norm does. */
static int last_layer(const fuser *F)
{
    return F->f->n_nodes ? F->f->nodes[F->f->n_nodes - 1].layer : -1;
}

/* norm_act: the input rows of block b, after the layer output scale. */
static void build_norm_act(fuser *F, const block *b, act_set *in)
{
    int layer = last_layer(F);
    block_acts(F, b, in);
    gmc_node *n = add_node(F, GMC_OP_NORM_ACT, layer);
    n->in[GMC_NORM_ACT_X] = b->in.x;
    n->in[GMC_NORM_ACT_W] = b->in.wn;
    n->in[GMC_NORM_ACT_TMP] = b->in.h;
    n->in[GMC_NORM_ACT_SCALE] = b->scale;
    put_acts(n, GMC_NORM_ACT_A0, in);
    n->out = in->id[0];
    n->eps = b->in.eps;
}

/* The residual op closing block b (proj_norm_add or down_norm_add): x +=
 * (post-norm of) xq · w; with next, also next's norm into its rows. */
static void build_norm_add(fuser *F, gmc_op op, const block *b, int xq, int w, int y, int post,
                           const block *next, act_set *next_in)
{
    memset(next_in, 0, sizeof *next_in);
    if (next)
        block_acts(F, next, next_in);
    gmc_node *n = add_node(F, op, b->layer);
    n->in[GMC_PROJ_NORM_ADD_XQ] = xq;
    n->in[GMC_PROJ_NORM_ADD_W] = w;
    n->in[GMC_PROJ_NORM_ADD_Y] = y;
    n->in[GMC_PROJ_NORM_ADD_X] = b->in.x;
    n->in[GMC_PROJ_NORM_ADD_POST] = post;
    n->in[GMC_PROJ_NORM_ADD_NORM] = next ? next->in.wn : -1;
    put_acts(n, GMC_PROJ_NORM_ADD_A0, next_in);
    n->out = b->in.x;
    n->eps = b->in.eps;
}

static void build_attn(fuser *F, const block *b, const act_set *in, const block *next,
                       act_set *next_in)
{
    char name[64];
    const attn_block *A = &b->a;
    const gmc_node *at = A->att;
    int l = b->layer;
    bool own = A->wk >= 0;
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
    n->in[GMC_QKV_KC] = own ? A->kc : -1;
    n->in[GMC_QKV_VC] = own ? A->vc : -1;
    n->out = A->q;
    n->eps = b->in.eps;
    n->scale = A->q_scale;
    n->rope = A->rope;
    n->v_norm = A->v_norm;
    n->n_heads = at->n_heads;
    n->n_kv_heads = at->n_kv_heads;
    n->head_dim = at->head_dim;

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

    build_norm_add(F, GMC_OP_PROJ_NORM_ADD, b, o.id[0], A->wo, A->y, A->wpost, next, next_in);
}

static void build_ffn(fuser *F, const block *b, const act_set *in, const block *next,
                      act_set *next_in)
{
    char name[64];
    const ffn_block *B = &b->f;
    act_set d;
    int wd[1] = {B->wd};
    snprintf(name, sizeof name, "l%d.down_in", b->layer);
    make_acts(F, &d, name, b->layer, F->g->values[B->g].ne[0], wd, 1);
    gmc_node *n = add_node(F, GMC_OP_GATE_UP, b->layer);
    n->in[GMC_GATE_UP_XG] = in->of[0];
    n->in[GMC_GATE_UP_XU] = in->of[1];
    n->in[GMC_GATE_UP_WG] = B->wg;
    n->in[GMC_GATE_UP_WU] = B->wu;
    n->in[GMC_GATE_UP_G] = B->g;
    n->in[GMC_GATE_UP_U] = B->u;
    n->in[GMC_GATE_UP_A] = d.id[0];
    n->out = d.id[0];

    build_norm_add(F, GMC_OP_DOWN_NORM_ADD, b, d.id[0], B->wd, B->y, B->wpost, next, next_in);
}

static void build_ple(fuser *F, const block *b, const act_set *in, const block *next,
                      act_set *next_in)
{
    char name[64];
    const ple_block *P = &b->p;
    act_set h;
    int wp[1] = {P->wp};
    snprintf(name, sizeof name, "l%d.ple_h", b->layer);
    make_acts(F, &h, name, b->layer, F->g->values[P->g].ne[0], wp, 1);
    gmc_node *n = add_node(F, GMC_OP_PLE_GATE, b->layer);
    n->in[GMC_PLE_GATE_XQ] = in->of[0];
    n->in[GMC_PLE_GATE_W] = P->wg;
    n->in[GMC_PLE_GATE_G] = P->g;
    n->in[GMC_PLE_GATE_P] = P->p;
    n->in[GMC_PLE_GATE_A] = h.id[0];
    n->out = h.id[0];
    n->col = P->col;

    build_norm_add(F, GMC_OP_PROJ_NORM_ADD, b, h.id[0], P->wp, P->y, P->wpost, next, next_in);
}

static void build_out(fuser *F, const block *b)
{
    const out_block *O = &b->o;
    act_set hq;
    int we[1] = {O->emb};
    make_acts(F, &hq, "final", -1, F->g->values[b->in.x].ne[0], we, 1);
    int slots = new_value(F, "argmax", -1, -1, 2 * GMK_MAX_THREADS);
    if (slots >= 0) { /* one gmk_argmax_slot per thread, not rows per token */
        F->f->values[slots].n_dims = 1;
        F->f->values[slots].ne[1] = 1;
        F->f->values[slots].bytes = 8u * GMK_MAX_THREADS;
    }
    gmc_node *n = add_node(F, GMC_OP_HEAD, -1);
    n->in[GMC_HEAD_X] = b->in.x;
    n->in[GMC_HEAD_W] = b->in.wn;
    n->in[GMC_HEAD_TMP] = b->in.h;
    n->in[GMC_HEAD_HQ] = hq.id[0];
    n->in[GMC_HEAD_TABLE] = O->emb;
    n->in[GMC_HEAD_LOGITS] = O->lg;
    n->in[GMC_HEAD_SLOTS] = slots;
    n->out = O->lg;
    n->eps = b->in.eps;
    n->softcap = O->softcap;
}

/* Copies nodes [from, to) of g unchanged, counting each op but the
 * embedding (never fused) as one that stays unfused. */
static void copy_nodes(fuser *F, int from, int to)
{
    for (int i = from; i < to; i++) {
        const gmc_node *src = &F->g->nodes[i];
        *add_node(F, src->op, src->layer) = *src;
        F->unfused[src->op] += src->op != GMC_OP_EMBED;
    }
}

/* The fused graph: nodes outside the blocks copied, every block rewritten
 * (its input rows from the block before when it chains, else norm_act). */
static void build(fuser *F, const block *bl, int n_blocks)
{
    int at = 0;
    act_set carry = {0};
    for (int j = 0; j < n_blocks && !F->why; j++) {
        const block *b = &bl[j], *next = b->chain ? &bl[j + 1] : NULL;
        copy_nodes(F, at, b->start);
        act_set in = carry;
        if (b->kind != BLK_OUT && !(j > 0 && bl[j - 1].chain))
            build_norm_act(F, b, &in);
        if (b->kind == BLK_ATTN)
            build_attn(F, b, &in, next, &carry);
        else if (b->kind == BLK_FFN)
            build_ffn(F, b, &in, next, &carry);
        else if (b->kind == BLK_PLE)
            build_ple(F, b, &in, next, &carry);
        else
            build_out(F, b);
        at = b->end;
    }
    copy_nodes(F, at, F->g->n_nodes);
    widen_scopes(F);
}

/*
 * Unfused matmuls on the target's kernels: every matmul whose weight the
 * target reads from converted rows gets a third input, a buffer of its
 * input in that format (one per input value and format, reused by every
 * matmul of that input: each converts before it multiplies, so a buffer
 * never carries rows over), and the MoE scratch rows take the formats of
 * the experts' weights.  Changes the nodes of F->f in place.
 */
static gmc_status convert_inputs(fuser *F, gmc_diag *diag)
{
    gmc_graph *f = F->f;
    int *buf = gmc_arena_array(F->a, (size_t)f->n_values * GMK_ACT_COUNT, sizeof *buf);
    if (!buf)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    for (int i = 0; i < f->n_values * GMK_ACT_COUNT; i++)
        buf[i] = -1;
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
    return GMC_OK;
}

/* A copy of g with room for `values` more values and `nodes` nodes in all,
 * every value to be planned afresh; F->f. */
static gmc_status new_graph(fuser *F, int values, int nodes, gmc_diag *diag)
{
    const gmc_graph *g = F->g;
    gmc_graph *f = gmc_arena_alloc(F->a, sizeof *f);
    if (!f)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    *f = *g;
    f->cap_values = g->n_values + values;
    f->cap_nodes = nodes;
    f->values = gmc_arena_array(F->a, (size_t)f->cap_values, sizeof *f->values);
    f->nodes = gmc_arena_array(F->a, (size_t)f->cap_nodes, sizeof *f->nodes);
    if (!f->values || !f->nodes)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    memcpy(f->values, g->values, (size_t)g->n_values * sizeof *f->values);
    for (int i = 0; i < f->n_values; i++) {
        f->values[i].offset = -1;
        f->values[i].first = f->values[i].last = -1;
    }
    f->n_nodes = 0;
    F->f = f;
    return GMC_OK;
}

/* *out: each distinct reason a block stayed unfused, with its count and
 * layers, then the ops that run unfused; NULL when everything fused. */
static gmc_status make_note(fuser *F, const char *why, const char **out, gmc_diag *diag)
{
    int ops = 0;
    for (int i = 0; i < GMC_OP_COUNT; i++)
        ops += F->unfused[i];
    *out = NULL;
    if (!why && !F->n_reasons && !ops)
        return GMC_OK;
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    if (why)
        gmc_emitf(&b, "%s; ", why);
    for (int i = 0; i < F->n_reasons && !why; i++) {
        const reason *r = &F->reasons[i];
        gmc_emitf(&b, "%s x%d (layers %d..%d); ", r->what, r->count, r->first, r->last);
    }
    gmc_emitf(&b, "%d ops unfused:", ops);
    for (int i = 0; i < GMC_OP_COUNT; i++)
        if (F->unfused[i])
            gmc_emitf(&b, " %s x%d", gmc_op_names[i], F->unfused[i]);
    bool failed = gmc_strbuf_failed(&b);
    *out = failed ? NULL : gmc_arena_strdup(F->a, gmc_strbuf_str(&b));
    gmc_strbuf_deinit(&b);
    if (failed || !*out)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    return GMC_OK;
}

gmc_status gmc_fuse(gmc_graph *g, int (*act_fmt)(int wdtype), gmc_arena *a, gmc_graph **out,
                    const char **note, gmc_diag *diag)
{
    fuser F = {.g = g, .a = a, .act_fmt = act_fmt};
    *out = g;
    if (note)
        *note = NULL;
    int n_blocks = 0, matmuls = 0;
    block *bl = find_blocks(&F, &n_blocks);
    if (!bl)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    for (int i = 0; i < g->n_nodes; i++)
        matmuls += g->nodes[i].op == GMC_OP_MATMUL || g->nodes[i].op == GMC_OP_LOGITS;
    /* A block adds at most 4 values and a head 2; a block of n ops becomes
     * at most n - 1 fused ones plus a norm_act. */
    GMC_TRY(new_graph(&F, 4 * n_blocks + 2 + matmuls, g->n_nodes + 1, diag));
    build(&F, bl, n_blocks);
    const char *why = F.why;
    if (why) { /* a width its format cannot hold: no block fuses */
        GMC_TRY(new_graph(&F, matmuls, g->n_nodes, diag));
        memset(F.unfused, 0, sizeof F.unfused);
        F.why = NULL;
        copy_nodes(&F, 0, g->n_nodes);
    }
    GMC_TRY(convert_inputs(&F, diag));
    if (F.why) { /* a width its format cannot hold: leave the f32 kernels */
        why = why ? why : F.why;
        F.f = g;
    }
    const char *text;
    GMC_TRY(make_note(&F, why, &text, diag));
    if (gmc_arena_failed(a))
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory fusing the graph");
    if (note)
        *note = text;
    *out = F.f;
    return GMC_OK;
}
