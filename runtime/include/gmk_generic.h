/*
 * gmk_generic.h — the portable scalar kernels of the `generic` target.
 *
 * Generated model code includes this header and calls these kernels with
 * compile-time-constant shapes and dtypes from every thread of the runtime's
 * pool: thread ith of nth computes only its own share of the outputs, and
 * every output element is computed by exactly one thread with the same
 * arithmetic whatever nth is, so results are bit-identical across thread
 * counts.  Kernels allocate nothing, touch no globals and make no OS calls;
 * they are the reference the per-ISA kernels are tested against.  Build with
 * -fno-math-errno so that sqrtf/expf/tanhf stay pure.
 */
#ifndef GMK_GENERIC_H
#define GMK_GENERIC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "gmk.h"
#include "gmk_act.h"
#include "gmk_quant.h"

/* Floats of a quantized weight row dequantized at a time in gmk_matmul
 * (a multiple of every block size; 16 KiB of stack). */
#define GMK_MATMUL_CHUNK 4096
/* Scores held per pass of gmk_attention's online softmax. */
#define GMK_ATTN_CHUNK 256
/* Largest hd/2 for which gmk_rope caches cos/sin on the stack. */
#define GMK_ROPE_MAX_HALF 512

/* ------------------------------------------------------------ helpers */

/* Thread ith's share [lo, hi) of n items: contiguous, sizes differ by at most
 * one, the first n % nth threads take the larger share.  Out-of-range ith or
 * nth < 1 gets an empty range. */
static inline void gmk_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi)
{
    if (nth < 1 || ith < 0 || ith >= nth || n <= 0) {
        *lo = *hi = 0;
        return;
    }
    int64_t base = n / nth, rem = n % nth;
    *lo = ith * base + (ith < rem ? ith : rem);
    *hi = *lo + base + (ith < rem ? 1 : 0);
}

/* Reduces 16 partial sums pairwise, the fixed order of every dot here. */
static inline float gmk_reduce16(float *acc)
{
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

/* Dot product in f32 with 16 independent partial sums, combined pairwise:
 * the fixed lane structure lets clang vectorize it without -ffast-math while
 * keeping the summation order (and so the result) fixed for a given n. */
static inline float gmk_dot_f32(const float *restrict a, const float *restrict b, int64_t n)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++)
        acc[j] += a[i + j] * b[i + j];
    return gmk_reduce16(acc);
}

/* Two dot products a·b0, a·b1 sharing the loads of a, each with exactly the
 * lanes and order of gmk_dot_f32 (so a token's result does not depend on
 * how tokens are grouped). */
static inline void gmk_dot2_f32(const float *restrict a, const float *restrict b0,
                                const float *restrict b1, int64_t n, float *out0, float *out1)
{
    float acc0[16] = {0}, acc1[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 16; j++) {
            acc0[j] += a[i + j] * b0[i + j];
            acc1[j] += a[i + j] * b1[i + j];
        }
    }
    for (int j = 0; i + j < n; j++) {
        acc0[j] += a[i + j] * b0[i + j];
        acc1[j] += a[i + j] * b1[i + j];
    }
    *out0 = gmk_reduce16(acc0);
    *out1 = gmk_reduce16(acc1);
}

/* Sum of squares with the same lane structure as gmk_dot_f32. */
static inline float gmk_sumsq_f32(const float *x, int64_t n)
{
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += x[i + j] * x[i + j];
    for (int j = 0; i + j < n; j++)
        acc[j] += x[i + j] * x[i + j];
    return gmk_reduce16(acc);
}

/* 1/sqrt(mean(x²) + eps) of one row; the mean is taken in f32. */
static inline float gmk_rms_scale(const float *x, int D, float eps)
{
    return 1.0f / sqrtf(gmk_sumsq_f32(x, D) / (float)D + eps);
}

/* y = x · s · w (w NULL: no weight) for one row; y may equal x. */
static inline void gmk_norm_row(float *y, const float *x, const float *restrict w, int D, float s)
{
    if (w) {
        for (int i = 0; i < D; i++)
            y[i] = x[i] * s * w[i];
    } else {
        for (int i = 0; i < D; i++)
            y[i] = x[i] * s;
    }
}

/* ------------------------------------------------------------ kernels */

/*
 * Embedding lookup: x[t][0..D) = dequant(E row tokens[t]) · scale.
 * Shapes: x (n_tok, D) f32; E (n_vocab, D) of dtype, rows packed.  Tokens
 * are trusted (< n_vocab, checked by the runtime).  Rows t are split.
 */
static inline void gmk_embed(float *restrict x, const void *restrict E, int dtype,
                             const int32_t *restrict tokens, int n_tok, int D, float scale,
                             int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    int64_t blk = gmk_dtype_block(dtype);
    size_t row_bytes = blk ? (size_t)(D / blk) * gmk_dtype_block_bytes(dtype) : 0;
    for (int64_t t = lo; t < hi; t++) {
        float *xt = x + t * D;
        gmk_dequantize_row(dtype, (const uint8_t *)E + (size_t)tokens[t] * row_bytes, xt, D);
        for (int i = 0; i < D; i++)
            xt[i] *= scale;
    }
}

/*
 * RMSNorm: y[t] = x[t] · 1/sqrt(mean(x[t]²) + eps) · w (w NULL: no weight).
 * Shapes: x, y (n_rows, D); w (D).  y may equal x.  The sum of squares is
 * accumulated in f32 (16 lanes, see gmk_dot_f32).  Rows are split.
 */
static inline void gmk_rmsnorm(float *y, const float *x, const float *restrict w, int n_rows, int D,
                               float eps, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_rows, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_norm_row(y + t * D, x + t * D, w, D, gmk_rms_scale(x + t * D, D, eps));
}

/*
 * Post-norm plus residual: x[t] += rmsnorm(o[t]) · w (w NULL: no weight).
 * Shapes: x, o (n_rows, D); w (D).  Rows are split.
 */
static inline void gmk_rmsnorm_add(float *restrict x, const float *restrict o,
                                   const float *restrict w, int n_rows, int D, float eps, int ith,
                                   int nth)
{
    int64_t lo, hi;
    gmk_range(n_rows, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *ot = o + t * D;
        float *xt = x + t * D;
        float s = gmk_rms_scale(ot, D, eps);
        if (w) {
            for (int i = 0; i < D; i++)
                xt[i] += ot[i] * s * w[i];
        } else {
            for (int i = 0; i < D; i++)
                xt[i] += ot[i] * s;
        }
    }
}

/* Residual add: x[t] += o[t].  Shapes: x, o (n_rows, D).  Rows are split. */
static inline void gmk_add(float *restrict x, const float *restrict o, int n_rows, int D, int ith,
                           int nth)
{
    int64_t lo, hi;
    gmk_range(n_rows, ith, nth, &lo, &hi);
    for (int64_t i = lo * D; i < hi * D; i++)
        x[i] += o[i];
}

/* y[t·ldy] = w · x_t[0..len) for every token t, x_t = x + t·ldx (added to
 * y[t·ldy] instead when accumulate).  Tokens go in pairs to share the loads
 * of w; a token's value is the same whether it is paired or not. */
static inline void gmk_row_times_tokens(float *restrict y, int ldy, const float *restrict w,
                                        const float *restrict x, int64_t ldx, int n_tok,
                                        int64_t len, int accumulate)
{
    int t = 0;
    for (; t + 2 <= n_tok; t += 2) {
        float d0, d1;
        gmk_dot2_f32(w, x + t * ldx, x + (t + 1) * ldx, len, &d0, &d1);
        float *y0 = y + (int64_t)t * ldy, *y1 = y0 + ldy;
        *y0 = accumulate ? *y0 + d0 : d0;
        *y1 = accumulate ? *y1 + d1 : d1;
    }
    if (t < n_tok) {
        float d = gmk_dot_f32(w, x + t * ldx, len);
        float *yt = y + (int64_t)t * ldy;
        *yt = accumulate ? *yt + d : d;
    }
}

/*
 * Matrix times activations for output rows [r0, r1): y[t·ldy + r] =
 * Σ_k W_r[k] · x[t·n_in + k] for every token t < n_tok.  Shapes: W (n_out,
 * n_in) of dtype, rows packed (row r at r·row_bytes); x (n_tok, n_in) f32;
 * y rows of stride ldy ≥ n_out.  A quantized row is dequantized once per
 * GMK_MATMUL_CHUNK floats into a stack buffer and reused for every token;
 * longer rows accumulate chunk by chunk into y.  f32 accumulation.  A row's
 * result does not depend on r0, r1 or n_tok.  An unsupported dtype yields
 * zeros; n_in must be a multiple of its block.  The reference every target's
 * matmul is tested against.
 */
static inline void gmk_ref_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                       int dtype, const float *restrict x, int n_tok, int64_t r0,
                                       int64_t r1, int64_t n_in)
{
    int64_t blk = gmk_dtype_block(dtype);
    size_t row_bytes = blk ? (size_t)(n_in / blk) * gmk_dtype_block_bytes(dtype) : 0;
    const uint8_t *Wb = (const uint8_t *)W;
    if (dtype == GMK_DTYPE_F32) { /* no conversion needed: dot rows directly */
        const float *Wf = (const float *)W;
        for (int64_t r = r0; r < r1; r++)
            gmk_row_times_tokens(y + r, (int)ldy, Wf + r * n_in, x, n_in, n_tok, n_in, 0);
        return;
    }
    float buf[GMK_MATMUL_CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = Wb + (size_t)r * row_bytes;
        for (int64_t k0 = 0; k0 < n_in; k0 += GMK_MATMUL_CHUNK) {
            int64_t len = n_in - k0 < GMK_MATMUL_CHUNK ? n_in - k0 : GMK_MATMUL_CHUNK;
            /* k0 is a multiple of every block size, so the chunk starts on a block */
            const uint8_t *src = blk ? wr + (size_t)(k0 / blk) * gmk_dtype_block_bytes(dtype) : wr;
            gmk_dequantize_row(dtype, src, buf, len);
            gmk_row_times_tokens(y + r, (int)ldy, buf, x + k0, n_in, n_tok, len, k0 > 0);
        }
    }
}

/*
 * The two primitives every target's kernel header provides (a target that
 * defines GMK_HAVE_TARGET_MATMUL before including this header brings its
 * own):
 *   gmk_act_row(xq, fmt, x, n)      converts one f32 row into format fmt
 *                                    (gmk_act.h; here only GMK_ACT_F32);
 *   gmk_matmul_rows(y, ldy, W, dtype, xq, fmt, n_tok, r0, r1, n_in)
 *                                    output rows [r0, r1) for n_tok activation
 *                                    rows of gmk_act_row_bytes(fmt, n_in) bytes.
 * Fused kernels are written once on top of them.
 */
#ifndef GMK_HAVE_TARGET_MATMUL
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    (void)fmt; /* the generic target keeps activations in f32 */
    memcpy(xq, x, (size_t)n * sizeof(float));
}

static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int dtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    (void)fmt;
    gmk_ref_matmul_rows(y, ldy, W, dtype, (const float *)xq, n_tok, r0, r1, n_in);
}
#endif

/* Matrix times f32 activations, output rows split across threads (see
 * gmk_ref_matmul_rows for shapes). */
static inline void gmk_matmul(float *restrict y, int ldy, const void *restrict W, int dtype,
                              const float *restrict x, int n_tok, int n_out, int n_in, int ith,
                              int nth)
{
    int64_t lo, hi;
    gmk_range(n_out, ith, nth, &lo, &hi);
    gmk_ref_matmul_rows(y, ldy, W, dtype, x, n_tok, lo, hi, n_in);
}

/*
 * Per-head RMSNorm in place (QK-norm): each hd-vector of x is normalized and
 * multiplied by w (w NULL: no weight).  Shapes: x (n_tok, n_heads, hd);
 * w (hd).  The (t, h) pairs are split.
 */
static inline void gmk_head_rmsnorm(float *x, const float *restrict w, int n_tok, int n_heads,
                                    int hd, float eps, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * n_heads, ith, nth, &lo, &hi);
    for (int64_t p = lo; p < hi; p++) {
        float *xp = x + p * hd;
        gmk_norm_row(xp, xp, w, hd, gmk_rms_scale(xp, hd, eps));
    }
}

/* Rotates n pairs (xa[i], xb[i]) by the angles whose cos/sin are c[i], s[i]
 * and scales the results; xa and xb are the two halves of one head. */
static inline void gmk_rope_rotate(float *restrict xa, float *restrict xb, const float *restrict c,
                                   const float *restrict s, int n, float out_scale)
{
    for (int i = 0; i < n; i++) {
        float a = xa[i], b = xb[i];
        xa[i] = (a * c[i] - b * s[i]) * out_scale;
        xb[i] = (b * c[i] + a * s[i]) * out_scale;
    }
}

/*
 * RoPE, half-split ("NeoX") pairs (x[i], x[i + hd/2]), in place.  Token t is
 * at position pos0 + t; θ_i = pos · inv_freq[i] in f32 (inv_freq has hd/2
 * entries, linear scaling already folded in); the result is multiplied by
 * out_scale (the query scale, 1 for keys).  Shapes: x (n_tok, n_heads, hd).
 * The (t, h) pairs are split.  cos/sin go through a stack table of
 * GMK_ROPE_MAX_HALF entries, computed once per token when hd/2 fits in it and
 * per piece otherwise (same values either way).
 */
static inline void gmk_rope(float *x, int n_tok, int n_heads, int hd, int32_t pos0,
                            const float *restrict inv_freq, float out_scale, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * n_heads, ith, nth, &lo, &hi);
    int half = hd / 2;
    float c[GMK_ROPE_MAX_HALF], s[GMK_ROPE_MAX_HALF];
    int64_t cached_t = -1;
    for (int64_t p = lo; p < hi; p++) {
        int64_t t = p / n_heads;
        float pos = (float)((int64_t)pos0 + t);
        float *xh = x + p * hd;
        for (int i0 = 0; i0 < half; i0 += GMK_ROPE_MAX_HALF) {
            int n = half - i0 < GMK_ROPE_MAX_HALF ? half - i0 : GMK_ROPE_MAX_HALF;
            if (t != cached_t || half > GMK_ROPE_MAX_HALF) {
                for (int i = 0; i < n; i++) {
                    float th = pos * inv_freq[i0 + i];
                    c[i] = cosf(th);
                    s[i] = sinf(th);
                }
                cached_t = t;
            }
            gmk_rope_rotate(xh + i0, xh + half + i0, c, s, n, out_scale);
        }
    }
}

/*
 * KV-cache store: rows k[t], v[t] go to slot (pos0 + t) % n_slots of kc, vc,
 * converted to kv_dtype (GMK_DTYPE_F32 or GMK_DTYPE_F16).  Shapes: k, v
 * (n_tok, kv_dim) f32; kc, vc (n_slots, kv_dim).  When n_tok > n_slots only
 * the last n_slots tokens are stored (earlier ones would be overwritten), so
 * each slot has one writer.  Tokens are split.
 */
static inline void gmk_kv_store(void *restrict kc, void *restrict vc, int kv_dtype,
                                const float *restrict k, const float *restrict v, int n_tok,
                                int32_t pos0, int n_slots, int kv_dim, int ith, int nth)
{
    int first = n_tok > n_slots ? n_tok - n_slots : 0;
    int64_t lo, hi;
    gmk_range(n_tok - first, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        int64_t t = first + i;
        int64_t slot = ((int64_t)pos0 + t) % n_slots;
        const float *kt = k + t * kv_dim, *vt = v + t * kv_dim;
        if (kv_dtype == GMK_DTYPE_F16) {
            uint16_t *kd = (uint16_t *)kc + slot * kv_dim, *vd = (uint16_t *)vc + slot * kv_dim;
            for (int j = 0; j < kv_dim; j++) {
                kd[j] = gmk_f32_to_f16(kt[j]);
                vd[j] = gmk_f32_to_f16(vt[j]);
            }
        } else {
            memcpy((float *)kc + slot * kv_dim, kt, (size_t)kv_dim * sizeof(float));
            memcpy((float *)vc + slot * kv_dim, vt, (size_t)kv_dim * sizeof(float));
        }
    }
}

/* Query heads of one token that share a KV head, attended in one pass. */
#define GMK_ATTN_GROUP 8
/* Largest head_dim whose K/V rows gmk_attend_heads converts on the stack. */
#define GMK_ATTN_MAX_HD 1024

/* A cached K or V row (hd elements at byte offset off) as f32: converted into
 * buf when the cache is f16, else read in place. */
static inline const float *gmk_kv_row_f32(float *restrict buf, const uint8_t *restrict base,
                                          size_t off, int kv_dtype, int hd)
{
    if (kv_dtype != GMK_DTYPE_F16)
        return (const float *)(base + off);
    const uint16_t *h = (const uint16_t *)(base + off);
    int i = 0;
#if defined(__F16C__)
    for (; i + 8 <= hd; i += 8) /* exact, like gmk_f16_to_f32 */
        _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    for (; i < hd; i++)
        buf[i] = gmk_f16_to_f32(h[i]);
    return buf;
}

/*
 * nh query heads of one token (q, o: nh rows of hd) that read the same KV
 * head, against cached positions j0..p (inclusive).  Online softmax over
 * chunks of GMK_ATTN_CHUNK scores with a running max m and denominator l per
 * head; o doubles as the unnormalized accumulator.  Each K and V row is
 * loaded (and converted from f16) once for all nh heads; a head's arithmetic
 * is the same whatever nh is, so grouping never changes a result.
 */
static inline void gmk_attend_heads(float *restrict o, const float *restrict q, int nh,
                                    const uint8_t *restrict kc, const uint8_t *restrict vc,
                                    int kv_dtype, size_t row_bytes, size_t head_off, int hd,
                                    int64_t j0, int64_t p, int n_slots, float softcap)
{
    float sc[GMK_ATTN_GROUP][GMK_ATTN_CHUNK];
    float m[GMK_ATTN_GROUP], l[GMK_ATTN_GROUP], cm[GMK_ATTN_GROUP];
    float row[GMK_ATTN_MAX_HD];
    for (int h = 0; h < nh; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
        for (int i = 0; i < hd; i++)
            o[h * hd + i] = 0.0f;
    }
    for (int64_t c0 = j0; c0 <= p; c0 += GMK_ATTN_CHUNK) {
        int n = p + 1 - c0 < GMK_ATTN_CHUNK ? (int)(p + 1 - c0) : GMK_ATTN_CHUNK;
        size_t slot0 = (size_t)(c0 % n_slots);
        for (int h = 0; h < nh; h++)
            cm[h] = -INFINITY;
        for (int jj = 0, slot = (int)slot0; jj < n; jj++, slot = slot + 1 == n_slots ? 0 : slot + 1) {
            const float *k = gmk_kv_row_f32(row, kc, (size_t)slot * row_bytes + head_off,
                                            kv_dtype, hd);
            for (int h = 0; h < nh; h++) {
                float s = gmk_dot_f32(q + h * hd, k, hd);
                if (softcap > 0.0f)
                    s = softcap * tanhf(s / softcap);
                sc[h][jj] = s;
                cm[h] = s > cm[h] ? s : cm[h];
            }
        }
        for (int h = 0; h < nh; h++) {
            if (cm[h] > m[h]) { /* rescale what has been accumulated to the new max */
                float corr = expf(m[h] - cm[h]);
                l[h] *= corr;
                for (int i = 0; i < hd; i++)
                    o[h * hd + i] *= corr;
                m[h] = cm[h];
            }
            for (int jj = 0; jj < n; jj++) {
                sc[h][jj] = expf(sc[h][jj] - m[h]);
                l[h] += sc[h][jj];
            }
        }
        for (int jj = 0, slot = (int)slot0; jj < n; jj++, slot = slot + 1 == n_slots ? 0 : slot + 1) {
            const float *v = gmk_kv_row_f32(row, vc, (size_t)slot * row_bytes + head_off,
                                            kv_dtype, hd);
            for (int h = 0; h < nh; h++) {
                float e = sc[h][jj];
                float *oh = o + h * hd;
                for (int i = 0; i < hd; i++)
                    oh[i] += e * v[i];
            }
        }
    }
    for (int h = 0; h < nh; h++) {
        float inv = 1.0f / l[h];
        for (int i = 0; i < hd; i++)
            o[h * hd + i] *= inv;
    }
}

/*
 * Causal attention over the KV cache, GQA: query head h reads kv head
 * h / (n_heads / n_kv).  Query t sits at position p = pos0 + t and attends to
 * positions j = (window > 0 ? max(0, p − window + 1) : 0) .. p, read from
 * slot j % n_slots; scores are q·k (q already scaled), soft-capped when
 * softcap > 0.  Shapes: o, q (n_tok, n_heads, hd); kc, vc (n_slots, n_kv, hd)
 * of kv_dtype; hd ≤ GMK_ATTN_MAX_HD.  The cache must still hold every
 * position needed: n_slots ≥ pos0 + n_tok when window ≤ 0, else n_slots ≥
 * window + n_tok − 1.  The (t, h) pairs are split; a thread's consecutive
 * heads of one token and one KV head go through gmk_attend_heads together.
 */
static inline void gmk_attention(float *restrict o, const float *restrict q,
                                 const void *restrict kc, const void *restrict vc, int kv_dtype,
                                 int n_tok, int32_t pos0, int n_heads, int n_kv, int hd, int window,
                                 int n_slots, float softcap, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * n_heads, ith, nth, &lo, &hi);
    int group = n_heads / n_kv;
    size_t esz = kv_dtype == GMK_DTYPE_F16 ? sizeof(uint16_t) : sizeof(float);
    size_t row_bytes = (size_t)n_kv * (size_t)hd * esz;
    for (int64_t ph = lo; ph < hi;) {
        int64_t t = ph / n_heads;
        int h = (int)(ph % n_heads);
        int kvh = h / group;
        /* heads h .. h+nh-1: same token, same KV head, within [lo, hi) */
        int nh = (kvh + 1) * group - h;
        nh = nh < GMK_ATTN_GROUP ? nh : GMK_ATTN_GROUP;
        nh = hi - ph < nh ? (int)(hi - ph) : nh;
        int64_t p = (int64_t)pos0 + t;
        int64_t j0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        size_t head_off = (size_t)kvh * (size_t)hd * esz;
        gmk_attend_heads(o + ph * hd, q + ph * hd, nh, (const uint8_t *)kc, (const uint8_t *)vc,
                         kv_dtype, row_bytes, head_off, hd, j0, p, n_slots, softcap);
        ph += nh;
    }
}

/* gelu_tanh(x) = 0.5·x·(1 + tanh(z)), z = sqrt(2/π)·(x + 0.044715·x³),
 * computed as x / (1 + exp(−2z)) (the same function: 1 + tanh(z) =
 * 2 / (1 + exp(−2z))) because expf has vector versions (clang's -fveclib)
 * and tanhf has none there; no cancellation near 0, and exp overflow gives
 * the right limits (x → −∞: −0; x → +∞: x). */
static inline float gmk_gelu_tanh(float x)
{
    const float k2 = 1.5957691216057308f; /* 2·sqrt(2/π) */
    return x / (1.0f + expf(-k2 * (x + 0.044715f * x * x * x)));
}

/* Elements gmk_gelu_mul computes per block: every element, tail included,
 * goes through the same fixed-width (vectorized) code, so a result never
 * depends on where a row or a thread's range starts or ends. */
#define GMK_GELU_BLOCK 16

/* g[i] = gelu_tanh(g[i]) · u[i] for i < n. */
static inline void gmk_gelu_mul(float *restrict g, const float *restrict u, int64_t n)
{
    int64_t i = 0;
    for (; i + GMK_GELU_BLOCK <= n; i += GMK_GELU_BLOCK)
        for (int j = 0; j < GMK_GELU_BLOCK; j++)
            g[i + j] = gmk_gelu_tanh(g[i + j]) * u[i + j];
    if (i == n)
        return;
    float tg[GMK_GELU_BLOCK] = {0}, tu[GMK_GELU_BLOCK] = {0};
    memcpy(tg, g + i, (size_t)(n - i) * sizeof(float));
    memcpy(tu, u + i, (size_t)(n - i) * sizeof(float));
    for (int j = 0; j < GMK_GELU_BLOCK; j++)
        tg[j] = gmk_gelu_tanh(tg[j]) * tu[j];
    memcpy(g + i, tg, (size_t)(n - i) * sizeof(float));
}

/*
 * GeGLU: g[t][i] = gelu_tanh(g[t][i]) · u[t][i] (gmk_gelu_tanh), in f32.
 * Shapes: g, u (n_tok, F).  Rows are split.
 */
static inline void gmk_geglu(float *restrict g, const float *restrict u, int n_tok, int F, int ith,
                             int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_gelu_mul(g + t * F, u + t * F, F);
}

/* Soft-cap: x[i] = cap · tanh(x[i] / cap).  Shape: x (n).  Elements split. */
static inline void gmk_softcap(float *x, int64_t n, float cap, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        x[i] = cap * tanhf(x[i] / cap);
}

#endif /* GMK_GENERIC_H */
