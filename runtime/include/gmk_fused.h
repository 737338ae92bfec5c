/*
 * gmk_fused.h — the fused kernels the compiler's fusion pass (compiler/fuse.c)
 * calls: one call per step of a layer instead of one per op.
 *
 * Written once for every target on top of the two primitives of the target's
 * kernel header (gmk_act_row, gmk_matmul_rows) and the helpers of
 * gmk_generic.h; generated code includes it after the target's header.  The
 * arithmetic of every output element is the unfused kernels' (same helpers,
 * same order), so fusing changes no bits, and every element has one writer
 * whatever nth is.  Phases that need other threads' rows are separated by
 * c->barrier inside the kernel; every thread calls it the same number of
 * times.  Matmul inputs are rows in the format (gmk_act.h) the consuming
 * weights want, one buffer per distinct format.
 */
#ifndef GMK_FUSED_H
#define GMK_FUSED_H

#include "gmk.h"
#include "gmk_act.h"
#include "gmk_generic.h" /* helpers; the target header came first */

/* Rows of the vocabulary one thread scores at a time when fusing argmax: the
 * chunk is read back while still in L1. */
#define GMK_HEAD_CHUNK 256

/* Up to three converted copies of one f32 activation (a norm whose output
 * feeds matmuls of different weight types). */
typedef struct gmk_acts {
    void *p[3];
    int fmt[3];
    int n; /* 0 .. 3 */
} gmk_acts;

/* Converts row t (n floats) into every format of a. */
static inline void gmk_acts_put(const gmk_acts *a, int64_t t, const float *row, int64_t n)
{
    for (int i = 0; i < a->n; i++)
        gmk_act_row((unsigned char *)a->p[i] + (size_t)t * gmk_act_row_bytes(a->fmt[i], n),
                    a->fmt[i], row, n);
}

/* The argmax slot of one thread, in the arena. */
typedef struct gmk_argmax_slot {
    float v;
    int32_t id; /* -1: the thread had no rows */
} gmk_argmax_slot;

/* The sampler's view of a logit: NaN never wins, +inf is the largest float. */
static inline float gmk_sane_logit(float x)
{
    if (isnan(x))
        return -INFINITY;
    return x > 3.40282347e+38f ? 3.40282347e+38f : x;
}

/*
 * norm_act: tmp[t] = rmsnorm(x[t]) · w, converted into every format of out.
 * Shapes: x, tmp (n_tok, D).  Rows are split.
 */
static inline void gmk_fused_norm_act(const float *restrict x, const float *restrict w,
                                      float *restrict tmp, const gmk_acts *out, int n_tok,
                                      int D, float eps, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        gmk_norm_row(tmp + t * D, x + t * D, w, D, gmk_rms_scale(x + t * D, D, eps));
        gmk_acts_put(out, t, tmp + t * D, D);
    }
}

/*
 * scale_norm_act: x[t] *= scale[0] (the previous layer's output scale,
 * Gemma 4), then norm_act of the row.  Unfused, the scale is its own op
 * (gmk_scale); each thread here scales the rows it then normalises, so the
 * bits are the same without a barrier between.
 */
static inline void gmk_fused_scale_norm_act(float *restrict x, const float *restrict scale,
                                            const float *restrict w, float *restrict tmp,
                                            const gmk_acts *out, int n_tok, int D, float eps,
                                            int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        for (int i = 0; i < D; i++)
            x[t * D + i] *= scale[0];
    gmk_fused_norm_act(x, w, tmp, out, n_tok, D, eps, ith, nth);
}

/* Everything the QKV kernel needs; generated code fills it with constants. */
typedef struct gmk_qkv {
    const void *x[3]; /* the normed input in the format of Q, K, V's weights */
    int fmt[3];
    /* Q (n_heads·hd, D), K, V (n_kv·hd, D); K and V NULL: the layer reads
     * another layer's cache (KV sharing); V alone NULL: V is K's projection
     * taken before K's norm (K = V, Gemma 4 globals) */
    const void *w[3];
    int wdtype[3];
    const float *q_norm, *k_norm; /* QK-norm weights (hd); NULL: no QK-norm */
    float eps;
    int v_norm;       /* weightless RMSNorm of each V head (Gemma 4) */
    float *q, *k, *v; /* f32 outputs (n_tok, heads·hd); k and v are scratch */
    void *kc, *vc;    /* caches (n_slots, n_kv·hd) of kv_dtype; NULL when shared */
    int kv_dtype, n_slots;
    const float *inv_freq; /* hd/2 RoPE inverse frequencies */
    float q_scale;
    int n_heads, n_kv, hd, D;
} gmk_qkv;

/* Unit u of the QKV work (a head's hd rows of Q, K or V): its matrix m
 * (0 q, 1 k, 2 v), head h, and output buffer.  K's units come before V's,
 * so a layer without V's (or without both) only has fewer units. */
static inline float *gmk_qkv_unit(const gmk_qkv *a, int64_t u, int *m, int *h)
{
    if (u < a->n_heads) {
        *m = 0;
        *h = (int)u;
        return a->q;
    }
    *m = u < a->n_heads + a->n_kv ? 1 : 2;
    *h = (int)(u - a->n_heads - (*m == 2 ? a->n_kv : 0));
    return *m == 1 ? a->k : a->v;
}

/* Stores one head row (hd floats) into slot `slot` of a cache. */
static inline void gmk_kv_put(void *restrict cache, int kv_dtype, int64_t slot, int kv_dim,
                              int h, int hd, const float *restrict src)
{
    size_t at = (size_t)slot * (size_t)kv_dim + (size_t)h * (size_t)hd;
    if (kv_dtype == GMK_DTYPE_F16) {
        uint16_t *d = (uint16_t *)cache + at;
        for (int j = 0; j < hd; j++)
            d[j] = gmk_f32_to_f16(src[j]);
    } else {
        memcpy((float *)cache + at, src, (size_t)hd * sizeof(float));
    }
}

/* The epilogue of V head h of token t (row vh): the value norm, then the
 * cache write unless the token is one a later one of its batch replaces. */
static inline void gmk_qkv_value(const gmk_qkv *a, float *restrict vh, void *vc, int64_t slot,
                                 int h, int store)
{
    if (a->v_norm)
        gmk_norm_row(vh, vh, NULL, a->hd, gmk_rms_scale(vh, a->hd, a->eps));
    if (store)
        gmk_kv_put(vc, a->kv_dtype, slot, a->n_kv * a->hd, h, a->hd, vh);
}

/*
 * qkv: Q, K, V = x · W^T in one pass, split by heads (n_heads + 2·n_kv units
 * of hd rows; n_heads + n_kv for K = V, n_heads when the layer shares
 * another's cache), then per token and per own head the epilogue: QK-norm,
 * RoPE (with the query scale on Q), the value norm and the K/V cache write at
 * slot (pos + t) % n_slots (only the last n_slots tokens of a sequence when
 * it has more in the batch, as gmk_kv_store), per sequence of the batch
 * (gmk_seq).  For K = V the K unit copies its raw row to V first, as the
 * unfused copy op does.  cos/sin are computed once per token.
 */
static inline void gmk_fused_qkv(const gmk_qkv *a, const gmk_ctx *c, int ith, int nth)
{
    int n_tok = c->n_tokens, hd = a->hd, half = hd / 2;
    int kv_dim = a->n_kv * hd;
    int64_t units = (int64_t)a->n_heads + (a->w[1] ? a->n_kv : 0) + (a->w[2] ? a->n_kv : 0);
    int64_t lo, hi;
    gmk_range(units, ith, nth, &lo, &hi);
    for (int64_t u = lo; u < hi; u++) {
        int m, h;
        float *y = gmk_qkv_unit(a, u, &m, &h);
        int64_t ldy = m == 0 ? (int64_t)a->n_heads * hd : kv_dim;
        gmk_matmul_rows(y, ldy, a->w[m], a->wdtype[m], a->x[m], a->fmt[m], n_tok,
                        (int64_t)h * hd, (int64_t)(h + 1) * hd, a->D);
    }
    float cs[GMK_ROPE_MAX_HALF], sn[GMK_ROPE_MAX_HALF];
    for (int32_t r = 0; r < gmk_n_seqs(c) && lo < hi; r++) {
        gmk_seq q = gmk_seq_at(c, r);
        void *kc = a->kc ? (unsigned char *)a->kc + q.kv_off : NULL;
        void *vc = a->vc ? (unsigned char *)a->vc + q.kv_off : NULL;
        int first = q.n > a->n_slots ? q.n - a->n_slots : 0; /* n_slots 0: no cache */
        for (int64_t i = 0; i < q.n; i++) {
            int64_t t = q.t0 + i;
            float pos = (float)((int64_t)q.pos + i);
            for (int j = 0; j < half; j++)
                gmk_sincosf(pos * a->inv_freq[j], &sn[j], &cs[j]);
            int64_t slot = a->n_slots ? ((int64_t)q.pos + i) % a->n_slots : 0;
            for (int64_t u = lo; u < hi; u++) {
                int m, h;
                float *y = gmk_qkv_unit(a, u, &m, &h);
                float *xh = y + t * (m == 0 ? (int64_t)a->n_heads * hd : kv_dim) +
                            (int64_t)h * hd;
                float *vh = a->v ? a->v + t * kv_dim + (int64_t)h * hd : NULL;
                if (m == 1 && !a->w[2])
                    memcpy(vh, xh, (size_t)hd * sizeof(float));
                const float *nw = m == 0 ? a->q_norm : a->k_norm;
                if (m < 2 && nw)
                    gmk_norm_row(xh, xh, nw, hd, gmk_rms_scale(xh, hd, a->eps));
                if (m < 2)
                    gmk_rope_rotate(xh, xh + half, cs, sn, half, m == 0 ? a->q_scale : 1.0f);
                if (m == 1 && i >= first)
                    gmk_kv_put(kc, a->kv_dtype, slot, kv_dim, h, hd, xh);
                if (m == 2 || (m == 1 && !a->w[2]))
                    gmk_qkv_value(a, vh, vc, slot, h, i >= first);
            }
        }
    }
}

/*
 * The position-dependent kernels of gmk_generic.h run once per sequence of
 * the batch (gmk_seq), on its rows, positions and cache; each call splits
 * its own work over the threads, and the runs' rows are disjoint.
 */
static inline void gmk_seq_rope(float *x, int n_heads, int hd, const float *restrict inv_freq,
                                float out_scale, const gmk_ctx *c, int ith, int nth)
{
    for (int32_t r = 0; r < gmk_n_seqs(c); r++) {
        gmk_seq q = gmk_seq_at(c, r);
        gmk_rope(x + (int64_t)q.t0 * n_heads * hd, q.n, n_heads, hd, q.pos, inv_freq,
                 out_scale, ith, nth);
    }
}

static inline void gmk_seq_kv_store(void *kc, void *vc, int kv_dtype, const float *k,
                                    const float *v, int n_slots, int kv_dim, const gmk_ctx *c,
                                    int ith, int nth)
{
    for (int32_t r = 0; r < gmk_n_seqs(c); r++) {
        gmk_seq q = gmk_seq_at(c, r);
        gmk_kv_store((unsigned char *)kc + q.kv_off, (unsigned char *)vc + q.kv_off, kv_dtype,
                     k + (int64_t)q.t0 * kv_dim, v + (int64_t)q.t0 * kv_dim, q.n, q.pos,
                     n_slots, kv_dim, ith, nth);
    }
}

static inline void gmk_seq_attention(float *o, const float *q, const void *kc, const void *vc,
                                     int kv_dtype, int n_heads, int n_kv, int hd, int window,
                                     int n_slots, float softcap, const gmk_ctx *c, int ith,
                                     int nth)
{
    for (int32_t r = 0; r < gmk_n_seqs(c); r++) {
        gmk_seq s = gmk_seq_at(c, r);
        size_t row = (size_t)s.t0 * (size_t)n_heads * (size_t)hd;
        gmk_attention(o + row, q + row, (const unsigned char *)kc + s.kv_off,
                      (const unsigned char *)vc + s.kv_off, kv_dtype, s.n, s.pos, n_heads,
                      n_kv, hd, window, n_slots, softcap, ith, nth);
    }
}

/*
 * attn_act: o = attention (gmk_attention), then, after a barrier, rows of o
 * converted into out (rows split).  Shapes as gmk_attention; o is scratch.
 */
static inline void gmk_fused_attention(float *restrict o, const float *restrict q,
                                       const void *restrict kc, const void *restrict vc,
                                       int kv_dtype, int n_heads, int n_kv, int hd, int window,
                                       int n_slots, float softcap, const gmk_acts *out,
                                       const gmk_ctx *c, int ith, int nth)
{
    gmk_seq_attention(o, q, kc, vc, kv_dtype, n_heads, n_kv, hd, window, n_slots, softcap, c,
                      ith, nth);
    c->barrier(c->sync);
    int64_t lo, hi, n = (int64_t)n_heads * hd;
    gmk_range(c->n_tokens, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_acts_put(out, t, o + t * n, n);
}

/*
 * proj_norm_add / down_norm_add: y = xq · W^T (output rows split), barrier,
 * then per token (rows split): x += rmsnorm(y) · post (post NULL: x += y, the
 * Gemma 1 residual), and when norm is set the next norm of x into y's row,
 * converted into out; without norm, x itself converted into out (the input
 * of the per-layer embedding's gate), if out has formats.
 * Shapes: W (D, n_in); y, x (n_tok, D).
 */
static inline void gmk_fused_proj_norm_add(const void *restrict xq, int fmt, const void *restrict W,
                                           int wdtype, int n_in, float *restrict y, float *restrict x,
                                           const float *restrict post, const float *restrict norm,
                                           const gmk_acts *out, int D, float eps, const gmk_ctx *c,
                                           int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(D, ith, nth, &lo, &hi);
    gmk_matmul_rows(y, D, W, wdtype, xq, fmt, c->n_tokens, lo, hi, n_in);
    c->barrier(c->sync);
    gmk_range(c->n_tokens, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        float *yt = y + t * D, *xt = x + t * D;
        if (post) {
            float s = gmk_rms_scale(yt, D, eps);
            for (int i = 0; i < D; i++)
                xt[i] += yt[i] * s * post[i];
        } else {
            for (int i = 0; i < D; i++)
                xt[i] += yt[i];
        }
        if (norm) {
            gmk_norm_row(yt, xt, norm, D, gmk_rms_scale(xt, D, eps));
            gmk_acts_put(out, t, yt, D);
        } else {
            gmk_acts_put(out, t, xt, D);
        }
    }
}

/*
 * ple_gate: g = xq · W^T (output rows split), g = gelu_tanh(g) · p on the
 * thread's rows (p: the layer's slice of the per-layer inputs, rows of
 * stride ldp), barrier, then rows of g converted into out (rows split).
 * The unfused matmul and gmk_gelu_slice in one pass: gmk_gelu_mul gives the
 * same bits whatever range it is handed.  Shapes: W (P, D); g (n_tok, P).
 */
static inline void gmk_fused_ple_gate(const void *restrict xq, int fmt, const void *restrict W,
                                      int wdtype, float *restrict g, const float *restrict p,
                                      int64_t ldp, const gmk_acts *out, int D, int P,
                                      const gmk_ctx *c, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(P, ith, nth, &lo, &hi);
    gmk_matmul_rows(g, P, W, wdtype, xq, fmt, c->n_tokens, lo, hi, D);
    for (int64_t t = 0; t < c->n_tokens; t++)
        gmk_gelu_mul(g + t * P + lo, p + t * ldp + lo, hi - lo);
    c->barrier(c->sync);
    gmk_range(c->n_tokens, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_acts_put(out, t, g + t * P, P);
}

/*
 * gate_up: g = xg · Wg^T and u = xu · Wu^T for the same output rows (rows
 * split, so each thread owns matching gate and up rows), g = gelu_tanh(g) · u
 * on them, barrier, then rows of g converted into out (rows split).
 * Shapes: Wg, Wu (F, D); g, u (n_tok, F).
 */
static inline void gmk_fused_gate_up(const void *restrict xg, int fmt_g, const void *restrict xu,
                                     int fmt_u, const void *restrict Wg, int dtype_g,
                                     const void *restrict Wu, int dtype_u, float *restrict g,
                                     float *restrict u, const gmk_acts *out, int D, int F,
                                     const gmk_ctx *c, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(F, ith, nth, &lo, &hi);
    gmk_matmul_rows(g, F, Wg, dtype_g, xg, fmt_g, c->n_tokens, lo, hi, D);
    gmk_matmul_rows(u, F, Wu, dtype_u, xu, fmt_u, c->n_tokens, lo, hi, D);
    for (int64_t t = 0; t < c->n_tokens; t++)
        gmk_gelu_mul(g + t * F + lo, u + t * F + lo, hi - lo);
    c->barrier(c->sync);
    gmk_range(c->n_tokens, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_acts_put(out, t, g + t * F, F);
}

/*
 * head: the final norm of the last n_logits rows of x into tmp, converted
 * into hq (rows split), barrier, then logits = hq · E^T over the vocabulary
 * (rows split), soft-capped when softcap > 0.  When c->argmax_out is set and
 * n_logits is 1, each of the first min(nth, GMK_MAX_THREADS) threads scores
 * its rows GMK_HEAD_CHUNK at a time (the chunk is read back while hot) and
 * keeps its best (first on ties, NaN never); after a barrier thread 0
 * combines the slots in thread order and writes the id: the sampler's
 * greedy choice, without a pass over the whole row.
 */
static inline void gmk_fused_head(const float *restrict x, const float *restrict w,
                                  float *restrict tmp, void *restrict hq, int fmt,
                                  const void *restrict E, int dtype, gmk_argmax_slot *slots,
                                  int D, int V, float eps, float softcap, const gmk_ctx *c,
                                  int ith, int nth)
{
    int n = c->n_logits;
    const float *xl = x + (int64_t)(c->n_tokens - n) * D;
    gmk_acts h = {{hq}, {fmt}, 1};
    gmk_fused_norm_act(xl, w, tmp, &h, n, D, eps, ith, nth);
    c->barrier(c->sync);
    int64_t lo, hi;
    if (!c->argmax_out || n != 1) {
        gmk_range(V, ith, nth, &lo, &hi);
        gmk_matmul_rows(c->logits, V, E, dtype, hq, fmt, n, lo, hi, D);
        for (int64_t t = 0; t < n && softcap > 0.0f; t++)
            for (int64_t r = lo; r < hi; r++)
                c->logits[t * V + r] = softcap * gmk_tanhf(c->logits[t * V + r] / softcap);
        return;
    }
    int parts = nth < GMK_MAX_THREADS ? nth : GMK_MAX_THREADS;
    gmk_range(V, ith, parts, &lo, &hi);
    float best = -INFINITY;
    int32_t id = -1;
    for (int64_t r0 = lo; r0 < hi; r0 += GMK_HEAD_CHUNK) {
        int64_t r1 = hi - r0 < GMK_HEAD_CHUNK ? hi : r0 + GMK_HEAD_CHUNK;
        gmk_matmul_rows(c->logits, V, E, dtype, hq, fmt, 1, r0, r1, D);
        for (int64_t r = r0; r < r1; r++) {
            float l = c->logits[r];
            if (softcap > 0.0f)
                l = softcap * gmk_tanhf(l / softcap);
            l = gmk_sane_logit(l);
            if (id < 0 || l > best) {
                best = l;
                id = (int32_t)r;
            }
        }
    }
    if (ith < parts)
        slots[ith] = (gmk_argmax_slot){best, id};
    c->barrier(c->sync);
    if (ith != 0)
        return;
    gmk_argmax_slot b = {-INFINITY, -1};
    for (int i = 0; i < parts; i++)
        if (slots[i].id >= 0 && (b.id < 0 || slots[i].v > b.v))
            b = slots[i];
    *c->argmax_out = b.id >= 0 ? b.id : 0;
}

/*
 * A matmul of an unfused graph on the target's kernels: rows of x converted
 * into format fmt in xq (tokens split), barrier, then y = xq · W^T (output
 * rows split).  Shapes: x (n_tok, n_in) f32; W (n_out, n_in); y (n_tok,
 * ldy).  The same arithmetic as the fused ops' matmuls.
 */
static inline void gmk_matmul_act(float *restrict y, int64_t ldy, const void *restrict W,
                                  int dtype, const float *restrict x, void *restrict xq, int fmt,
                                  int n_tok, int64_t n_out, int64_t n_in, const gmk_ctx *c,
                                  int ith, int nth)
{
    size_t rb = gmk_act_row_bytes(fmt, n_in);
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_act_row((unsigned char *)xq + (size_t)t * rb, fmt, x + t * n_in, n_in);
    c->barrier(c->sync);
    gmk_range(n_out, ith, nth, &lo, &hi);
    gmk_matmul_rows(y, ldy, W, dtype, xq, fmt, n_tok, lo, hi, n_in);
}

/* Bytes of one expert's matrix of `rows` rows of n_in elements of wdtype
 * (a layout keeps them: the compiler gives a stack a layout only when each
 * matrix is whole panels, gmk_layout_for). */
static inline size_t gmk_expert_bytes(int wdtype, int64_t rows, int64_t n_in)
{
    const int dtype = gmk_wdtype_dtype(wdtype);
    return (size_t)rows * gmk_dtype_block_bytes(dtype) * (size_t)(n_in / gmk_dtype_block(dtype));
}

/*
 * MoE experts: y[t] = Σ over the k experts e chosen for t (in increasing
 * id) of w · down_e(gelu_tanh(gate_e h[t]) ⊙ up_e h[t]), gate_e and up_e
 * the first and second F rows of expert e's gate_up matrix.  Tokens routed
 * to the same expert are gathered so that each expert runs one matmul over
 * all of its tokens, and only chosen experts' weights are read.  Scratch,
 * a row per (token, choice), grouped by expert: sx the gathered inputs in
 * format fmt_gu, sh gate then up rows (2, n_tok·k, F) f32, sq the hidden
 * rows in format fmt_d, sy (n_tok·k, D) the expert outputs.  Shapes: h, y
 * (n_tok, D); wgu (E, 2F, D), wd (E, D, F) of their dtypes; route as
 * gmk_moe_route writes it (the slots are filled here).  Every thread calls
 * c->barrier five times.
 */
static inline void gmk_moe_ffn(float *restrict y, const float *restrict h, float *restrict route,
                               const void *wgu, int dtg, int fmt_gu, const void *wd, int dtd,
                               int fmt_d, void *restrict sx, float *restrict sh,
                               void *restrict sq, float *restrict sy, int n_tok, int64_t D,
                               int64_t F, int64_t E, int k, const gmk_ctx *c, int ith, int nth)
{
    int64_t n = (int64_t)n_tok * k;
    int32_t base[GMK_MAX_EXPERTS + 1];
    for (int64_t e = 0; e <= E; e++)
        base[e] = 0;
    for (int64_t a = 0; a < n; a++) { /* every thread: counts, then bases */
        int32_t id;
        memcpy(&id, &route[(a / k) * 3 * k + a % k], sizeof id);
        base[id + 1]++;
    }
    for (int64_t e = 0; e < E; e++)
        base[e + 1] += base[e];
    if (ith == 0) { /* slots: grouped by expert, token order inside */
        int32_t next[GMK_MAX_EXPERTS];
        memcpy(next, base, (size_t)E * sizeof *next);
        for (int64_t a = 0; a < n; a++) {
            float *rt = route + (a / k) * 3 * k;
            int32_t id, slot;
            memcpy(&id, &rt[a % k], sizeof id);
            slot = next[id]++;
            memcpy(&rt[2 * k + a % k], &slot, sizeof slot);
        }
    }
    c->barrier(c->sync);
    size_t rbx = gmk_act_row_bytes(fmt_gu, D), rbq = gmk_act_row_bytes(fmt_d, F);
    int64_t lo, hi;
    gmk_range(n, ith, nth, &lo, &hi);
    for (int64_t a = lo; a < hi; a++) { /* gather, converted */
        int32_t slot;
        memcpy(&slot, &route[(a / k) * 3 * k + 2 * k + a % k], sizeof slot);
        gmk_act_row((unsigned char *)sx + (size_t)slot * rbx, fmt_gu, h + (a / k) * D, D);
    }
    c->barrier(c->sync);
    float *sg = sh, *su = sh + n * F;
    size_t gate_bytes = gmk_expert_bytes(dtg, F, D), down_bytes = gmk_expert_bytes(dtd, D, F);
    int64_t r0, r1;
    gmk_range(F, ith, nth, &r0, &r1);
    for (int64_t e = 0; e < E; e++) { /* gate, up, GeGLU on this thread's rows */
        int cnt = base[e + 1] - base[e];
        if (cnt == 0)
            continue;
        const unsigned char *xe = (const unsigned char *)sx + (size_t)base[e] * rbx;
        float *ge = sg + (int64_t)base[e] * F, *ue = su + (int64_t)base[e] * F;
        const unsigned char *we = (const unsigned char *)wgu + (size_t)e * 2 * gate_bytes;
        gmk_matmul_rows(ge, F, we, dtg, xe, fmt_gu, cnt, r0, r1, D);
        gmk_matmul_rows(ue, F, we + gate_bytes, dtg, xe, fmt_gu, cnt, r0, r1, D);
        for (int t = 0; t < cnt; t++)
            gmk_gelu_mul(ge + t * F + r0, ue + t * F + r0, r1 - r0);
    }
    c->barrier(c->sync);
    for (int64_t a = lo; a < hi; a++) /* hidden rows, converted for down */
        gmk_act_row((unsigned char *)sq + (size_t)a * rbq, fmt_d, sg + a * F, F);
    c->barrier(c->sync);
    gmk_range(D, ith, nth, &r0, &r1);
    for (int64_t e = 0; e < E; e++) { /* down */
        int cnt = base[e + 1] - base[e];
        if (cnt > 0)
            gmk_matmul_rows(sy + (int64_t)base[e] * D, D,
                            (const unsigned char *)wd + (size_t)e * down_bytes, dtd,
                            (const unsigned char *)sq + (size_t)base[e] * rbq, fmt_d, cnt, r0,
                            r1, F);
    }
    c->barrier(c->sync);
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) { /* weighted sum, in increasing expert id */
        const float *rt = route + t * 3 * k;
        float *yt = y + t * D;
        for (int64_t i = 0; i < D; i++)
            yt[i] = 0;
        int32_t prev = -1;
        for (int j = 0; j < k; j++) {
            int pick = -1;
            int32_t pid = 0;
            for (int jj = 0; jj < k; jj++) {
                int32_t id;
                memcpy(&id, &rt[jj], sizeof id);
                if (id > prev && (pick < 0 || id < pid)) {
                    pick = jj;
                    pid = id;
                }
            }
            prev = pid;
            int32_t slot;
            memcpy(&slot, &rt[2 * k + pick], sizeof slot);
            const float *ye = sy + (int64_t)slot * D;
            float w = rt[k + pick];
            for (int64_t i = 0; i < D; i++)
                yt[i] += ye[i] * w;
        }
    }
}

/*
 * AltUp's projections back, after the layers: u_s = W_s · xs_(s+1) for the
 * N - 1 streams after stream 0, W the stack (N-1, D, D) of dtype; each
 * stream's rows are converted into xq (format fmt) first (tokens split),
 * barrier, then its matmul (output rows split), barrier.  Shapes: xs
 * (n_tok, N·D); u (n_tok, (N-1)·D).
 */
static inline void gmk_altup_unembed(float *restrict u, const float *restrict xs,
                                     const void *restrict W, int dtype, void *restrict xq,
                                     int fmt, int n_tok, int64_t D, int N, const gmk_ctx *c,
                                     int ith, int nth)
{
    size_t rb = gmk_act_row_bytes(fmt, D), mb = gmk_expert_bytes(dtype, D, D);
    for (int s = 1; s < N; s++) {
        int64_t lo, hi;
        gmk_range(n_tok, ith, nth, &lo, &hi);
        for (int64_t t = lo; t < hi; t++)
            gmk_act_row((unsigned char *)xq + (size_t)t * rb, fmt, xs + (t * N + s) * D, D);
        c->barrier(c->sync);
        gmk_range(D, ith, nth, &lo, &hi);
        gmk_matmul_rows(u + (s - 1) * D, (N - 1) * D,
                        (const unsigned char *)W + (size_t)(s - 1) * mb, dtype, xq, fmt, n_tok,
                        lo, hi, D);
        c->barrier(c->sync);
    }
}

#endif /* GMK_FUSED_H */
