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
 * -fno-math-errno so that sqrtf stays pure; exp, tanh, sin and cos are
 * gmk_math.h's, the same bits on every ISA.
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
#include "gmk_layout.h"
#include "gmk_math.h"

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
    for (int64_t t = lo; t < hi; t++) {
        float *xt = x + t * D;
        gmk_weight_dequant(xt, E, dtype, tokens[t], D, 0, D);
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
 * Σ_k W_r[k] · x[t·ldx + k] for every token t < n_tok.  Shapes: W (n_out,
 * n_in) of dtype, rows packed (row r at r·row_bytes); x (n_tok, n_in) f32,
 * rows ldx ≥ n_in floats apart; y rows of stride ldy ≥ n_out.  A quantized
 * row is dequantized once per GMK_MATMUL_CHUNK floats into a stack buffer
 * and reused for every token; longer rows accumulate chunk by chunk into y.
 * f32 accumulation.  A row's result does not depend on r0, r1, n_tok or
 * ldx.  An unsupported dtype yields zeros; n_in must be a multiple of its
 * block.  The reference every target's matmul is tested against.
 */
static inline void gmk_ref_matmul_rows_ld(float *restrict y, int64_t ldy,
                                          const void *restrict W, int dtype,
                                          const float *restrict x, int64_t ldx, int n_tok,
                                          int64_t r0, int64_t r1, int64_t n_in)
{
    if (dtype == GMK_DTYPE_F32) { /* no conversion needed: dot rows directly */
        const float *Wf = (const float *)W;
        for (int64_t r = r0; r < r1; r++)
            gmk_row_times_tokens(y + r, (int)ldy, Wf + r * n_in, x, ldx, n_tok, n_in, 0);
        return;
    }
    float buf[GMK_MATMUL_CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t k0 = 0; k0 < n_in; k0 += GMK_MATMUL_CHUNK) {
            int64_t len = n_in - k0 < GMK_MATMUL_CHUNK ? n_in - k0 : GMK_MATMUL_CHUNK;
            /* k0 is a multiple of every block size, so the chunk starts on a block */
            gmk_weight_dequant(buf, W, dtype, r, n_in, k0, len);
            gmk_row_times_tokens(y + r, (int)ldy, buf, x + k0, ldx, n_tok, len, k0 > 0);
        }
    }
}

/* The same for dense rows (ldx = n_in). */
static inline void gmk_ref_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                       int dtype, const float *restrict x, int n_tok, int64_t r0,
                                       int64_t r1, int64_t n_in)
{
    gmk_ref_matmul_rows_ld(y, ldy, W, dtype, x, n_in, n_tok, r0, r1, n_in);
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
    /* f32 rows are gmk_act_row_bytes apart: padded to 64 bytes */
    int64_t ldx = (int64_t)(gmk_act_row_bytes(fmt, n_in) / sizeof(float));
    gmk_ref_matmul_rows_ld(y, ldy, W, dtype, (const float *)xq, ldx, n_tok, r0, r1, n_in);
}
#endif

/* ----------------------------------- shared by the headers with int8 rows */

/* Element k of a Q8_0 or Q8_K activation row as a float. */
static inline float gmk_act_f32_at(const uint8_t *xt, int fmt, int64_t k)
{
    if (fmt == GMK_ACT_Q8_K) {
        const gmk_act_q8_k *a = (const gmk_act_q8_k *)xt + k / 256;
        return a->d * (float)a->qs[k % 256];
    }
    const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)xt + k / 32;
    return a->d * (float)a->qs[k % 32];
}

/*
 * Any (weights, format) pair without an int8 kernel, e.g. a q4_1 weight
 * handed Q8_0 rows: activations back to f32 a chunk at a time and the
 * reference dots.  The compiler never pairs them (a target's act_fmt asks
 * for int8 rows exactly where its kernels are); slow but never wrong.
 */
static inline void gmk_int8_fallback(float *restrict y, int64_t ldy, const void *restrict W,
                                     int wdtype, const uint8_t *restrict x, int fmt, size_t xrow,
                                     int n_tok, int64_t r0, int64_t r1, int64_t n_in)
{
    GMK_NO_CONTRACT
    float xb[GMK_MATMUL_CHUNK], wb[GMK_MATMUL_CHUNK];
    for (int t = 0; t < n_tok; t++) {
        for (int64_t k0 = 0; k0 < n_in; k0 += GMK_MATMUL_CHUNK) {
            int64_t len = n_in - k0 < GMK_MATMUL_CHUNK ? n_in - k0 : GMK_MATMUL_CHUNK;
            for (int64_t k = 0; k < len; k++)
                xb[k] = gmk_act_f32_at(x + (size_t)t * xrow, fmt, k0 + k);
            for (int64_t r = r0; r < r1; r++) {
                gmk_weight_dequant(wb, W, wdtype, r, n_in, k0, len);
                float d = gmk_dot_f32(wb, xb, len);
                y[t * ldy + r] = k0 > 0 ? y[t * ldy + r] + d : d;
            }
        }
    }
}

/* A header's int8 quantizer: n floats (a multiple of 16) to int8 at q by
 * the x86 targets' rule, s[j] = Σ q[16j .. 16j+16); returns the scale. */
typedef float (*gmk_quant16_fn)(int8_t *restrict q, int32_t *restrict s, const float *restrict x,
                                int n);

/* gmk_act_row of a header with such a quantizer (gmk_rvv.h, gmk_wasm.h):
 * one f32 row of n elements into fmt at xq (gmk_act_row_bytes(fmt, n)
 * bytes): Q8_0 blocks with sum = Σ qs, Q8_K blocks with bsums of 16 (as
 * gmk_x86.h), or an f32 copy.  n must be a multiple of gmk_act_block(fmt). */
static inline void gmk_act_row_q16(gmk_quant16_fn quant, void *restrict xq, int fmt,
                                   const float *restrict x, int64_t n)
{
    if (fmt == GMK_ACT_Q8_0) {
        gmk_act_q8_0 *b = (gmk_act_q8_0 *)xq;
        for (int64_t i = 0; i < n / 32; i++, b++) {
            int32_t s[2];
            b->d = quant(b->qs, s, x + i * 32, 32);
            b->sum = s[0] + s[1];
        }
    } else if (fmt == GMK_ACT_Q8_K) {
        gmk_act_q8_k *b = (gmk_act_q8_k *)xq;
        for (int64_t i = 0; i < n / 256; i++, b++) {
            int32_t s[16];
            b->d = quant(b->qs, s, x + i * 256, 256);
            for (int j = 0; j < 16; j++)
                b->bsums[j] = (int16_t)s[j];
        }
    } else if (fmt == GMK_ACT_F32) {
        memcpy(xq, x, (size_t)n * sizeof(float));
    }
}

/* A target header's int8 kernels: runs the one for (dtype, layout, fmt) on
 * rows [r0, r1) and returns 1, or returns 0 where there is none. */
typedef int (*gmk_int8_kernels)(float *restrict y, int64_t ldy, const uint8_t *restrict w,
                                int dtype, int layout, const uint8_t *restrict x, int fmt,
                                size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t n_in);

/* Defines name, the gmk_int8_kernels of a header whose one kernel
 * rows(F, y, ldy, w, x, xrow, n_tok, r0, r1, nb) takes q4_0, q5_0, q8_0,
 * q4_k, q5_k and q6_k in the file's rows with activations in act_fmt(F)
 * (gmk_rvv.h, gmk_wasm.h): F a constant in each call, so that the kernel
 * is specialized to it. */
#define GMK_INT8_ROWS_KERNELS(name, rows, act_fmt)                                                 \
    static inline int name(float *restrict y, int64_t ldy, const uint8_t *restrict w,              \
                           int dtype, int layout, const uint8_t *restrict x, int fmt,              \
                           size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t n_in)           \
    {                                                                                              \
        if (layout != GMK_LAYOUT_PACKED || (fmt != GMK_ACT_Q8_0 && fmt != GMK_ACT_Q8_K) ||         \
            fmt != act_fmt(dtype))                                                                 \
            return 0;                                                                              \
        const int64_t nb = n_in / gmk_dtype_block(dtype);                                          \
        switch (dtype) {                                                                           \
        case GMK_DTYPE_Q4_0: rows(GMK_DTYPE_Q4_0, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        case GMK_DTYPE_Q5_0: rows(GMK_DTYPE_Q5_0, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        case GMK_DTYPE_Q8_0: rows(GMK_DTYPE_Q8_0, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        case GMK_DTYPE_Q4_K: rows(GMK_DTYPE_Q4_K, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        case GMK_DTYPE_Q5_K: rows(GMK_DTYPE_Q5_K, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        case GMK_DTYPE_Q6_K: rows(GMK_DTYPE_Q6_K, y, ldy, w, x, xrow, n_tok, r0, r1, nb); break;   \
        default: return 0;                                                                         \
        }                                                                                          \
        return 1;                                                                                  \
    }

/*
 * gmk_matmul_rows of a header with int8 activations (gmk_arm.h,
 * gmk_rvv.h, gmk_wasm.h), around its kernels: y[t·ldy + r] = Σ_k W_r[k] · x_t[k] for
 * rows r in [r0, r1) and tokens t < n_tok; W is (n_out, n_in) of wdtype
 * (dtype | layout); activation row t sits at (const char *)xq +
 * t·gmk_act_row_bytes(fmt, n_in).  f32 rows take the reference, pairs
 * without a kernel gmk_int8_fallback; shapes the compiler never emits give
 * zeros and read nothing out of bounds.
 */
static inline void gmk_int8_matmul_rows(gmk_int8_kernels kernels, float *restrict y, int64_t ldy,
                                        const void *restrict W, int wdtype,
                                        const void *restrict xq, int fmt, int n_tok, int64_t r0,
                                        int64_t r1, int64_t n_in)
{
    if (n_tok <= 0 || r1 <= r0 || n_in <= 0)
        return;
    const int dtype = gmk_wdtype_dtype(wdtype), layout = gmk_wdtype_layout(wdtype);
    const int64_t blk = gmk_dtype_block(dtype);
    const size_t xrow = gmk_act_row_bytes(fmt, n_in);
    if (xrow == 0 || blk <= 0 || n_in % blk != 0 || !gmk_layout_supports(layout, dtype) ||
        (fmt != GMK_ACT_F32 && fmt != GMK_ACT_Q8_0 && fmt != GMK_ACT_Q8_K)) {
        for (int t = 0; t < n_tok; t++)
            for (int64_t r = r0; r < r1; r++)
                y[t * ldy + r] = 0.0f;
        return;
    }
    if (fmt == GMK_ACT_F32) { /* rows are xrow apart, not n_in floats */
        gmk_ref_matmul_rows_ld(y, ldy, W, wdtype, (const float *)xq,
                               (int64_t)(xrow / sizeof(float)), n_tok, r0, r1, n_in);
        return;
    }
    const uint8_t *w = (const uint8_t *)W, *x = (const uint8_t *)xq;
    if (!kernels(y, ldy, w, dtype, layout, x, fmt, xrow, n_tok, r0, r1, n_in))
        gmk_int8_fallback(y, ldy, W, wdtype, x, fmt, xrow, n_tok, r0, r1, n_in);
}

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
                for (int i = 0; i < n; i++)
                    gmk_sincosf(pos * inv_freq[i0 + i], &s[i], &c[i]);
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

/* Query rows (a tile of tokens × the heads of one KV head) attended together:
 * every K and V row is loaded, and converted from f16, once per tile. */
#define GMK_ATTN_ROWS 32
/* Largest head_dim gmk_attention supports. */
#define GMK_ATTN_MAX_HD 1024
/* Floats of K or V rows held converted at a time (32 KiB of stack, which
 * stay in L1 while a tile's rows read them: 64 KiB ran the 270M's prefill
 * attention 5-11 % slower): a key block holds GMK_ATTN_KV_FLOATS / hd
 * rows, at most GMK_ATTN_KEYS. */
#define GMK_ATTN_KV_FLOATS 8192
#define GMK_ATTN_KEYS 64
/* Output dims whose V accumulators stay in registers over a key block
 * (4 rows of them: 16 zmm with AVX-512, 16 ymm otherwise).  The sums are
 * the same whatever the width. */
#if defined(__AVX512F__)
#define GMK_ATTN_VDIMS 64
#else
#define GMK_ATTN_VDIMS 32
#endif

/* The attention inner loops are small helpers called with constant row
 * counts; inlining them is what lets clang keep accumulators in registers. */
#if defined(__GNUC__) || defined(__clang__)
#define GMK_AI static inline __attribute__((always_inline))
#else
#define GMK_AI static inline
#endif

/* A cached K or V row (hd elements at byte offset off) as f32: converted into
 * buf when the cache is f16, else read in place. */
static inline const float *gmk_kv_row_f32(float *restrict buf, const uint8_t *restrict base,
                                          size_t off, int kv_dtype, int hd)
{
    if (kv_dtype != GMK_DTYPE_F16)
        return (const float *)(base + off);
    const uint16_t *h = (const uint16_t *)(base + off);
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= hd; i += 16) /* exact, like gmk_f16_to_f32 */
        _mm512_storeu_ps(buf + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
#endif
#if defined(__F16C__)
    for (; i + 8 <= hd; i += 8) /* exact, like gmk_f16_to_f32 */
        _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    for (; i < hd; i++)
        buf[i] = gmk_f16_to_f32(h[i]);
    return buf;
}

/* Rows of keys j0 .. j0+n-1 (slot j % n_slots) of one KV head as f32:
 * rows[jj] points into buf (f16 cache, converted) or into the cache. */
static inline void gmk_kv_block_f32(const float **rows, float *restrict buf,
                                    const uint8_t *restrict base, int kv_dtype, size_t row_bytes,
                                    size_t head_off, int hd, int64_t j0, int n, int n_slots)
{
    int slot = (int)(j0 % n_slots);
    for (int jj = 0; jj < n; jj++, slot = slot + 1 == n_slots ? 0 : slot + 1)
        rows[jj] = gmk_kv_row_f32(buf + (size_t)jj * hd, base,
                                  (size_t)slot * row_bytes + head_off, kv_dtype, hd);
}

/* Lanes j < w of a0..a3 += q0..q3[i + j] · k[i + j] (rows up to R). */
GMK_AI void gmk_attn_dots_step(float *a0, float *a1, float *a2, float *a3, const float *q0,
                               const float *q1, const float *q2, const float *q3,
                               const float *restrict k, int i, int w, int R)
{
    for (int j = 0; j < w; j++) {
        float kj = k[i + j];
        a0[j] += q0[i + j] * kj;
        if (R > 1)
            a1[j] += q1[i + j] * kj;
        if (R > 2)
            a2[j] += q2[i + j] * kj;
        if (R > 3)
            a3[j] += q3[i + j] * kj;
    }
}

/* out[r] = q[r]·k for r < R (R ≤ 4, a constant after inlining), each with
 * exactly the lanes and order of gmk_dot_f32; k's loads are shared.  Rows
 * past R alias q[0] and their sums are dropped. */
GMK_AI void gmk_attn_dots(float *out, const float *const *q, const float *restrict k, int hd,
                          int R)
{
    const float *q0 = q[0], *q1 = R > 1 ? q[1] : q0, *q2 = R > 2 ? q[2] : q0,
                *q3 = R > 3 ? q[3] : q0;
    float a0[16] = {0}, a1[16] = {0}, a2[16] = {0}, a3[16] = {0};
    int i = 0;
    for (; i + 16 <= hd; i += 16) /* a constant width: the body vectorizes */
        gmk_attn_dots_step(a0, a1, a2, a3, q0, q1, q2, q3, k, i, 16, R);
    gmk_attn_dots_step(a0, a1, a2, a3, q0, q1, q2, q3, k, i, hd - i, R);
    out[0] = gmk_reduce16(a0);
    if (R > 1)
        out[1] = gmk_reduce16(a1);
    if (R > 2)
        out[2] = gmk_reduce16(a2);
    if (R > 3)
        out[3] = gmk_reduce16(a3);
}

#if defined(__AVX512F__)
#define GMK_ATTN_DOTS4X4 1
/* out[4r + c] = q[r]·k[c] for 4 rows and 4 keys, each with exactly the
 * lanes and order of gmk_dot_f32 (16 lane sums, then gmk_reduce16's tree),
 * in one zmm per dot: 8 loads per 16 fmas where 4 rows against one key
 * take 5 per 4, and the 16 trees summed a level at a time across the dots
 * (15 additions) where each alone went scalar. */
GMK_AI void gmk_attn_dots4x4(float *out, const float *const *q, const float *const *k, int hd)
{
    __m512 a[16];
    for (int d = 0; d < 16; d++)
        a[d] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= hd; i += 16) {
        __m512 kv[4];
        for (int c = 0; c < 4; c++)
            kv[c] = _mm512_loadu_ps(k[c] + i);
        for (int r = 0; r < 4; r++) {
            const __m512 qv = _mm512_loadu_ps(q[r] + i);
            for (int c = 0; c < 4; c++)
                a[4 * r + c] = _mm512_fmadd_ps(qv, kv[c], a[4 * r + c]);
        }
    }
    if (i < hd) { /* lanes j < hd - i; the others keep their sums */
        const __mmask16 m = (__mmask16)((1u << (hd - i)) - 1u);
        __m512 kv[4];
        for (int c = 0; c < 4; c++)
            kv[c] = _mm512_maskz_loadu_ps(m, k[c] + i);
        for (int r = 0; r < 4; r++) {
            const __m512 qv = _mm512_maskz_loadu_ps(m, q[r] + i);
            for (int c = 0; c < 4; c++)
                a[4 * r + c] = _mm512_mask3_fmadd_ps(qv, kv[c], a[4 * r + c], m);
        }
    }
    /* the tree a level at a time: level 1 (lane j + lane j+8) of dots 2x
     * and 2x+1 into b[x], level 2 (j + j+4) of 4 dots into c4, levels 3
     * and 4 inside 128-bit lanes */
    __m512 b[8], c4[4], e[2];
    for (int x = 0; x < 8; x++) {
        const __m512 lo = _mm512_shuffle_f32x4(a[2 * x], a[2 * x + 1], 0x44); /* 0,1 | 0,1 */
        const __m512 hi = _mm512_shuffle_f32x4(a[2 * x], a[2 * x + 1], 0xee); /* 2,3 | 2,3 */
        b[x] = _mm512_add_ps(lo, hi);
    }
    /* b[x] lanes: q0 = dot 2x j0-3, q1 = dot 2x j4-7, q2 = dot 2x+1 j0-3,
     * q3 = dot 2x+1 j4-7 */
    for (int x = 0; x < 4; x++) {
        const __m512 lo = _mm512_shuffle_f32x4(b[2 * x], b[2 * x + 1], 0x88); /* 0,2 | 0,2 */
        const __m512 hi = _mm512_shuffle_f32x4(b[2 * x], b[2 * x + 1], 0xdd); /* 1,3 | 1,3 */
        c4[x] = _mm512_add_ps(lo, hi);
    }
    /* c4[x] 128-bit lanes: dots 4x, 4x+1, 4x+2, 4x+3, 4 level-2 sums each */
    for (int x = 0; x < 2; x++) {
        const __m512 lo = _mm512_shuffle_ps(c4[2 * x], c4[2 * x + 1], 0x44); /* 0,1,0,1 */
        const __m512 hi = _mm512_shuffle_ps(c4[2 * x], c4[2 * x + 1], 0xee); /* 2,3,2,3 */
        e[x] = _mm512_add_ps(lo, hi);
    }
    /* e[x] lane 4m + {0,1}: dot 8x + m's two level-3 sums, {2,3}: dot 8x +
     * 4 + m's */
    const __m512 lo = _mm512_shuffle_ps(e[0], e[1], 0x88); /* 0,2,0,2 */
    const __m512 hi = _mm512_shuffle_ps(e[0], e[1], 0xdd); /* 1,3,1,3 */
    const __m512 f = _mm512_add_ps(lo, hi);
    /* f lane 4m + {0, 1, 2, 3}: dots m, m + 4, 8 + m, 12 + m */
    float t[16];
    _mm512_storeu_ps(t, f);
    for (int m = 0; m < 4; m++) {
        out[m] = t[4 * m];
        out[m + 4] = t[4 * m + 1];
        out[m + 8] = t[4 * m + 2];
        out[m + 12] = t[4 * m + 3];
    }
}
#endif

/* o[r][i] += Σ_j e[r][j] · v[j][i] for r < R (R ≤ 4, constant after
 * inlining), j = 0 .. n-1 in order, i < hd: per element the same sums as
 * one key at a time, with GMK_ATTN_VDIMS accumulators per row held in
 * registers over the keys and v's loads shared by the R rows. */
GMK_AI void gmk_attn_accum(float *const *o, const float *const *e, const float *const *v, int n,
                           int hd, int R)
{
    float *o0 = o[0], *o1 = R > 1 ? o[1] : o0, *o2 = R > 2 ? o[2] : o0, *o3 = R > 3 ? o[3] : o0;
    const float *e0 = e[0], *e1 = R > 1 ? e[1] : e0, *e2 = R > 2 ? e[2] : e0,
                *e3 = R > 3 ? e[3] : e0;
    int i = 0;
    for (; i + GMK_ATTN_VDIMS <= hd; i += GMK_ATTN_VDIMS) {
        float a0[GMK_ATTN_VDIMS], a1[GMK_ATTN_VDIMS], a2[GMK_ATTN_VDIMS], a3[GMK_ATTN_VDIMS];
        for (int d = 0; d < GMK_ATTN_VDIMS; d++) {
            a0[d] = o0[i + d];
            a1[d] = o1[i + d];
            a2[d] = o2[i + d];
            a3[d] = o3[i + d];
        }
        for (int j = 0; j < n; j++) {
            const float *vj = v[j] + i;
            float f0 = e0[j], f1 = e1[j], f2 = e2[j], f3 = e3[j];
            for (int d = 0; d < GMK_ATTN_VDIMS; d++) {
                float x = vj[d];
                a0[d] += f0 * x;
                if (R > 1)
                    a1[d] += f1 * x;
                if (R > 2)
                    a2[d] += f2 * x;
                if (R > 3)
                    a3[d] += f3 * x;
            }
        }
        /* highest row first: rows past R alias o0 and must not win */
        for (int d = 0; d < GMK_ATTN_VDIMS; d++) {
            if (R > 3)
                o3[i + d] = a3[d];
            if (R > 2)
                o2[i + d] = a2[d];
            if (R > 1)
                o1[i + d] = a1[d];
            o0[i + d] = a0[d];
        }
    }
    for (; i < hd; i++) {
        float b0 = o0[i], b1 = o1[i], b2 = o2[i], b3 = o3[i];
        for (int j = 0; j < n; j++) {
            float x = v[j][i];
            b0 += e0[j] * x;
            if (R > 1)
                b1 += e1[j] * x;
            if (R > 2)
                b2 += e2[j] * x;
            if (R > 3)
                b3 += e3[j] * x;
        }
        if (R > 3)
            o3[i] = b3;
        if (R > 2)
            o2[i] = b2;
        if (R > 1)
            o1[i] = b1;
        o0[i] = b0;
    }
}

/* One online-softmax step of a row over its scores s[0..n) of one chunk:
 * soft-cap, raise the running max m (rescaling l and the accumulator o), then
 * s ← exp(s − m) and l += Σ s in order. */
static inline void gmk_attn_softmax_step(float *restrict s, int n, float *restrict o, int hd,
                                         float *m, float *l, float softcap)
{
    if (softcap > 0.0f)
        for (int j = 0; j < n; j++)
            s[j] = softcap * gmk_tanhf(s[j] / softcap);
    /* the chunk's max 16 lanes at a time, then across the lanes: the value
     * an in-order scan finds (NaNs skipped either way; only which of +0 and
     * -0 is kept may differ, and exp(s - m) cannot tell), in a loop clang
     * vectorizes (the scan was a chain of scalar compares, a tenth of the
     * 270M's attention) */
    float lane[16];
    for (int i = 0; i < 16; i++)
        lane[i] = -INFINITY;
    int j0 = 0;
    for (; j0 + 16 <= n; j0 += 16)
        for (int i = 0; i < 16; i++)
            lane[i] = s[j0 + i] > lane[i] ? s[j0 + i] : lane[i];
    float cm = -INFINITY;
    for (int i = 0; i < 16; i++)
        cm = lane[i] > cm ? lane[i] : cm;
    for (; j0 < n; j0++)
        cm = s[j0] > cm ? s[j0] : cm;
    if (cm > *m) { /* rescale what has been accumulated to the new max */
        float corr = gmk_expf(*m - cm);
        *l *= corr;
        for (int i = 0; i < hd; i++)
            o[i] *= corr;
        *m = cm;
    }
    float mx = *m, sum = *l;
    for (int j = 0; j < n; j++) /* a plain loop: gmk_expf vectorizes */
        s[j] = gmk_expf(s[j] - mx);
    for (int j = 0; j < n; j++)
        sum += s[j];
    *l = sum;
}

/* One tile of gmk_attention: row r of nr (≤ GMK_ATTN_ROWS) reads q[r] and
 * writes o[r] (hd floats each, rows distinct) and attends to keys
 * jlo[r] .. jhi[r] (inclusive); jlo and jhi are nondecreasing in r, so the
 * rows that see a key are consecutive. */
typedef struct gmk_attn_tile {
    const float *q[GMK_ATTN_ROWS];
    float *o[GMK_ATTN_ROWS];
    int64_t jlo[GMK_ATTN_ROWS], jhi[GMK_ATTN_ROWS];
    int nr;
} gmk_attn_tile;

/* Scores of keys b0 .. b0+n-1 (rows k[jj]) into sc[r][j − c0] for the rows
 * that see each key; *ra, *rb track that row range as keys ascend. */
static inline void gmk_attn_scores(float (*sc)[GMK_ATTN_CHUNK], const gmk_attn_tile *t,
                                   const float *const *k, int64_t b0, int n, int64_t c0, int hd,
                                   int *ra, int *rb)
{
    for (int jj = 0; jj < n; jj++) {
        int64_t j = b0 + jj;
        int col = (int)(j - c0);
        while (*ra < t->nr && t->jhi[*ra] < j)
            ++*ra;
        while (*rb < t->nr && t->jlo[*rb] <= j)
            ++*rb;
        int r = *ra;
        float s[4];
#ifdef GMK_ATTN_DOTS4X4
        /* keys j .. j+3 seen by the same rows (no row ends before j+3, none
         * starts after j): 4 rows × 4 keys at a time */
        if (jj + 4 <= n && r + 4 <= *rb && t->jhi[r] >= j + 3 &&
            (*rb == t->nr || t->jlo[*rb] > j + 3)) {
            float s16[16];
            for (; r + 4 <= *rb; r += 4) {
                gmk_attn_dots4x4(s16, t->q + r, k + jj, hd);
                for (int x = 0; x < 4; x++)
                    for (int c = 0; c < 4; c++)
                        sc[r + x][col + c] = s16[4 * x + c];
            }
            for (; r < *rb; r++)
                for (int c = 0; c < 4; c++) {
                    gmk_attn_dots(s, t->q + r, k[jj + c], hd, 1);
                    sc[r][col + c] = s[0];
                }
            jj += 3;
            continue;
        }
#endif
        for (; r + 4 <= *rb; r += 4) {
            gmk_attn_dots(s, t->q + r, k[jj], hd, 4);
            for (int x = 0; x < 4; x++)
                sc[r + x][col] = s[x];
        }
        for (; r < *rb; r++) {
            gmk_attn_dots(s, t->q + r, k[jj], hd, 1);
            sc[r][col] = s[0];
        }
    }
}

/* V pass over keys b0 .. b0+n-1 (rows v[jj]) of the chunk starting at c0:
 * runs of rows with the same key range share the loads of v. */
static inline void gmk_attn_values(float (*sc)[GMK_ATTN_CHUNK], const gmk_attn_tile *t,
                                   const float *const *v, int64_t b0, int n, int64_t c0, int hd)
{
    for (int r = 0; r < t->nr;) {
        int64_t ja = t->jlo[r] > b0 ? t->jlo[r] : b0;
        int64_t jb = t->jhi[r] < b0 + n - 1 ? t->jhi[r] : b0 + n - 1;
        int run = 1;
        while (run < 4 && r + run < t->nr && t->jlo[r + run] == t->jlo[r] &&
               t->jhi[r + run] == t->jhi[r])
            run++;
        if (ja <= jb) {
            const float *e[4];
            for (int x = 0; x < run; x++)
                e[x] = sc[r + x] + (ja - c0);
            const float *const *vr = v + (ja - b0);
            int m = (int)(jb - ja + 1);
            if (run == 4) {
                gmk_attn_accum(t->o + r, e, vr, m, hd, 4);
            } else {
                for (int x = 0; x + 2 <= run; x += 2)
                    gmk_attn_accum(t->o + r + x, e + x, vr, m, hd, 2);
                if (run & 1)
                    gmk_attn_accum(t->o + r + run - 1, e + run - 1, vr, m, hd, 1);
            }
        }
        r += run;
    }
}

/*
 * Attends one tile against cached keys (slot j % n_slots, KV head at byte
 * offset head_off of each cache row).  Online softmax over chunks aligned to
 * absolute positions (keys c·GMK_ATTN_CHUNK .. (c+1)·GMK_ATTN_CHUNK − 1, a
 * row's first and last chunk partial) with a running max m and denominator l
 * per row; o doubles as the unnormalized accumulator.  K and V rows are
 * converted in blocks of kb keys and shared by every row of the tile.  A
 * row's arithmetic depends only on its own q and key range (the chunk grid
 * is absolute), never on the other rows, so tiling never changes a result.
 */
static inline void gmk_attend_tile(const gmk_attn_tile *t, const uint8_t *restrict kc,
                                   const uint8_t *restrict vc, int kv_dtype, size_t row_bytes,
                                   size_t head_off, int hd, int n_slots, float softcap)
{
    float sc[GMK_ATTN_ROWS][GMK_ATTN_CHUNK];
    float m[GMK_ATTN_ROWS], l[GMK_ATTN_ROWS];
    float buf[GMK_ATTN_KV_FLOATS];
    const float *rows[GMK_ATTN_KEYS];
    int kb = GMK_ATTN_KV_FLOATS / hd < GMK_ATTN_KEYS ? GMK_ATTN_KV_FLOATS / hd : GMK_ATTN_KEYS;
    for (int r = 0; r < t->nr; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        memset(t->o[r], 0, (size_t)hd * sizeof(float));
    }
    int64_t first = t->jlo[0], last = t->jhi[t->nr - 1];
    int ra = 0, rb = 0;
    for (int64_t c0 = first - first % GMK_ATTN_CHUNK; c0 <= last; c0 += GMK_ATTN_CHUNK) {
        int64_t a = c0 > first ? c0 : first;
        int64_t z = c0 + GMK_ATTN_CHUNK - 1 < last ? c0 + GMK_ATTN_CHUNK - 1 : last;
        for (int64_t b0 = a; b0 <= z; b0 += kb) {
            int n = z - b0 + 1 < kb ? (int)(z - b0 + 1) : kb;
            gmk_kv_block_f32(rows, buf, kc, kv_dtype, row_bytes, head_off, hd, b0, n, n_slots);
            gmk_attn_scores(sc, t, rows, b0, n, c0, hd, &ra, &rb);
        }
        for (int r = 0; r < t->nr; r++) {
            int64_t ja = t->jlo[r] > a ? t->jlo[r] : a, jb = t->jhi[r] < z ? t->jhi[r] : z;
            if (ja <= jb)
                gmk_attn_softmax_step(sc[r] + (ja - c0), (int)(jb - ja + 1), t->o[r], hd, &m[r],
                                      &l[r], softcap);
        }
        for (int64_t b0 = a; b0 <= z; b0 += kb) {
            int n = z - b0 + 1 < kb ? (int)(z - b0 + 1) : kb;
            gmk_kv_block_f32(rows, buf, vc, kv_dtype, row_bytes, head_off, hd, b0, n, n_slots);
            gmk_attn_values(sc, t, rows, b0, n, c0, hd);
        }
    }
    for (int r = 0; r < t->nr; r++) {
        float inv = 1.0f / l[r];
        for (int i = 0; i < hd; i++)
            t->o[r][i] *= inv;
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
 * window + n_tok − 1.
 *
 * Work is cut into tiles of (up to ts tokens) × (up to hs heads of one KV
 * head), at most GMK_ATTN_ROWS rows, and tile u goes to thread u mod nth
 * (causal costs grow with t, so round-robin keeps threads balanced).  Tiles
 * shrink, tokens first, until there are enough for the threads: one-token
 * decode splits the heads.  Results do not depend on the tiling.
 */
static inline void gmk_attention(float *restrict o, const float *restrict q,
                                 const void *restrict kc, const void *restrict vc, int kv_dtype,
                                 int n_tok, int32_t pos0, int n_heads, int n_kv, int hd, int window,
                                 int n_slots, float softcap, int ith, int nth)
{
    if (nth < 1 || ith < 0 || ith >= nth || n_tok <= 0)
        return;
    int group = n_heads / n_kv;
    int hs = group < GMK_ATTN_ROWS ? group : GMK_ATTN_ROWS;
    int ts = GMK_ATTN_ROWS / hs;
    int64_t n_hsl = (group + hs - 1) / hs, n_tt = (n_tok + ts - 1) / ts;
    while (ts > 1 && n_kv * n_hsl * n_tt < 2 * (int64_t)nth) {
        ts = (ts + 1) / 2;
        n_tt = (n_tok + ts - 1) / ts;
    }
    while (hs > 1 && n_kv * n_hsl * n_tt < nth) {
        hs = (hs + 1) / 2;
        n_hsl = (group + hs - 1) / hs;
    }
    size_t esz = kv_dtype == GMK_DTYPE_F16 ? sizeof(uint16_t) : sizeof(float);
    size_t row_bytes = (size_t)n_kv * (size_t)hd * esz;
    int64_t n_units = n_tt * n_kv * n_hsl;
    gmk_attn_tile tile;
    for (int64_t u = ith; u < n_units; u += nth) {
        int64_t t0 = u / (n_kv * n_hsl) * ts;
        int kvh = (int)(u / n_hsl % n_kv);
        int h0 = kvh * group + (int)(u % n_hsl) * hs;
        int h1 = h0 + hs < (kvh + 1) * group ? h0 + hs : (kvh + 1) * group;
        int64_t t1 = t0 + ts < n_tok ? t0 + ts : n_tok;
        tile.nr = 0;
        for (int64_t t = t0; t < t1; t++) {
            int64_t p = (int64_t)pos0 + t;
            int64_t j0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            for (int h = h0; h < h1; h++) {
                size_t off = ((size_t)t * n_heads + h) * (size_t)hd;
                tile.q[tile.nr] = q + off;
                tile.o[tile.nr] = o + off;
                tile.jlo[tile.nr] = j0;
                tile.jhi[tile.nr] = p;
                tile.nr++;
            }
        }
        gmk_attend_tile(&tile, (const uint8_t *)kc, (const uint8_t *)vc, kv_dtype, row_bytes,
                        (size_t)kvh * (size_t)hd * esz, hd, n_slots, softcap);
    }
}

/* gelu_tanh(x) = 0.5·x·(1 + tanh(z)), z = sqrt(2/π)·(x + 0.044715·x³),
 * computed as x / (1 + exp(−2z)) (the same function: 1 + tanh(z) =
 * 2 / (1 + exp(−2z))): one gmk_expf, which vectorizes; no cancellation
 * near 0, and exp overflow gives the right limits (x → −∞: −0; x → +∞: x). */
static inline float gmk_gelu_tanh(float x)
{
    const float k2 = 1.5957691216057308f; /* 2·sqrt(2/π) */
    return x / (1.0f + gmk_expf(-k2 * (x + 0.044715f * x * x * x)));
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
        x[i] = cap * gmk_tanhf(x[i] / cap);
}

/* ------------------------------------------------------------ Gemma 4 */

/* x[t][i] *= s.  Shape: x (n_tok, D).  Elements split. */
static inline void gmk_scale(float *x, int n_tok, int64_t D, float s, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * D, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        x[i] *= s;
}

/* y = x.  Shapes: x, y (n_tok, D).  Rows split. */
static inline void gmk_copy(float *restrict y, const float *restrict x, int n_tok, int64_t D,
                            int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    if (hi > lo)
        memcpy(y + lo * D, x + lo * D, (size_t)((hi - lo) * D) * sizeof(float));
}

/*
 * Per-layer embedding gate: g[t][i] = gelu_tanh(g[t][i]) · p[t·ldp + i].
 * Shapes: g (n_tok, P); p rows of stride ldp (the layer's slice of the
 * per-layer inputs).  Rows split.
 */
static inline void gmk_gelu_slice(float *restrict g, const float *restrict p, int64_t ldp,
                                  int n_tok, int64_t P, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        gmk_gelu_mul(g + t * P, p + t * ldp, P);
}

/* Rows of the router input formed at a time on the stack. */
#define GMK_ROUTE_CHUNK 256
/* Most experts a router may have (the YAML schema's bound). */
#define GMK_MAX_EXPERTS 4096

/*
 * MoE router: for each token, r = rmsnorm(x) · D^-1/2 · s (no weight),
 * logits = W · r, p = softmax(logits), the k largest p (ties: lower id),
 * renormalized to sum 1 and multiplied by es[id].  route[t] holds 3k
 * floats: k ids (int32 bits), their k weights, and k slots that
 * gmk_moe_ffn fills.  Shapes: x (n_tok, D); W (E, D) f32; s (D); es (E).
 * Tokens split.
 */
static inline void gmk_moe_route(float *restrict route, const float *restrict x,
                                 const float *restrict W, const float *restrict s,
                                 const float *restrict es, int n_tok, int64_t D, int64_t E,
                                 int k, float eps, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    float logit[GMK_MAX_EXPERTS], r[GMK_ROUTE_CHUNK];
    const float inv_root = 1.0f / sqrtf((float)D);
    for (int64_t t = lo; t < hi; t++) {
        const float *xt = x + t * D;
        float rs = gmk_rms_scale(xt, (int)D, eps);
        for (int64_t e = 0; e < E; e++)
            logit[e] = 0;
        for (int64_t i0 = 0; i0 < D; i0 += GMK_ROUTE_CHUNK) {
            int64_t n = D - i0 < GMK_ROUTE_CHUNK ? D - i0 : GMK_ROUTE_CHUNK;
            for (int64_t i = 0; i < n; i++)
                r[i] = xt[i0 + i] * rs * inv_root * s[i0 + i];
            for (int64_t e = 0; e < E; e++)
                logit[e] += gmk_dot_f32(W + e * D + i0, r, n);
        }
        float mx = logit[0];
        for (int64_t e = 1; e < E; e++)
            mx = logit[e] > mx ? logit[e] : mx;
        float sum = 0;
        for (int64_t e = 0; e < E; e++) {
            logit[e] = gmk_expf(logit[e] - mx);
            sum += logit[e];
        }
        float *rt = route + t * 3 * k;
        float wsum = 0;
        for (int j = 0; j < k; j++) { /* selection: k is small */
            int32_t best = -1;
            for (int64_t e = 0; e < E; e++)
                if (logit[e] >= 0 && (best < 0 || logit[e] > logit[best]))
                    best = (int32_t)e;
            float p = logit[best] / sum;
            logit[best] = -1; /* taken */
            memcpy(&rt[j], &best, sizeof best);
            rt[k + j] = p;
            wsum += p;
        }
        for (int j = 0; j < k; j++) {
            int32_t id;
            memcpy(&id, &rt[j], sizeof id);
            rt[k + j] = rt[k + j] / wsum * es[id];
        }
    }
}

/* ------------------------------------------------------------ Gemma 3n
 * The AltUp streams are one row per token of n_streams · D floats, stream s
 * at s · D (docs/models.md#gemma3n). */

/* x = tanh(x), in f32.  Shape: x (n_tok, D).  Elements split. */
static inline void gmk_tanh(float *x, int n_tok, int64_t D, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * D, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        x[i] = gmk_tanhf(x[i]);
}

/* x /= s (a division, not a multiplication by 1/s).  Elements split. */
static inline void gmk_div(float *x, int n_tok, int64_t D, float s, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range((int64_t)n_tok * D, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        x[i] /= s;
}

/* x[t][i] *= w[i].  Shapes: x (n_tok, D); w (D).  Rows split. */
static inline void gmk_mul_w(float *restrict x, const float *restrict w, int n_tok, int64_t D,
                             int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        for (int64_t i = 0; i < D; i++)
            x[t * D + i] *= w[i];
}

/* y[t] = x[t·ldx .. t·ldx + W).  Shapes: y (n_tok, W).  Rows split. */
static inline void gmk_slice(float *restrict y, const float *restrict x, int64_t ldx, int n_tok,
                             int64_t W, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        memcpy(y + t * W, x + t * ldx, (size_t)W * sizeof(float));
}

/*
 * Gaussian top-k (Gemma 3n's activation sparsity): per row, g = relu(g -
 * (mean + k · std)), std the population standard deviation, so that about
 * the share Φ(k) of a Gaussian row becomes 0.  Shape: g (n_tok, F).  Rows
 * split.
 */
static inline void gmk_gauss_topk(float *g, int n_tok, int64_t F, float k, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        float *gt = g + t * F;
        float sum = 0, var = 0;
        for (int64_t i = 0; i < F; i++)
            sum += gt[i];
        float mean = sum / (float)F;
        for (int64_t i = 0; i < F; i++)
            var += (gt[i] - mean) * (gt[i] - mean);
        float cut = mean + sqrtf(var / (float)F) * k;
        for (int64_t i = 0; i < F; i++)
            gt[i] = gt[i] - cut > 0 ? gt[i] - cut : 0.0f;
    }
}

/* sqrt(mean(x²)) of one row, floored at sqrt(eps) when eps > 0. */
static inline float gmk_rms_floor(const float *x, int64_t D, float eps)
{
    float m = gmk_sumsq_f32(x, D) / (float)D;
    return sqrtf(eps > 0 && m < eps ? eps : m);
}

/*
 * AltUp's streams from the embedding: stream 0 = x, stream s = y_s ·
 * rms(x) / max(rms(y_s), sqrt(eps)) for the projections y (n_tok, (N-1)·D)
 * of x.  Rows split.
 */
static inline void gmk_altup_init(float *restrict xs, const float *restrict x,
                                  const float *restrict y, int n_tok, int64_t D, int N, float eps,
                                  int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *xt = x + t * D;
        float *st = xs + t * N * D;
        float target = gmk_rms_floor(xt, D, 0);
        memcpy(st, xt, (size_t)D * sizeof(float));
        for (int s = 1; s < N; s++) {
            const float *ys = y + (t * (N - 1) + s - 1) * D;
            float mag = gmk_rms_floor(ys, D, eps);
            for (int64_t i = 0; i < D; i++)
                st[s * D + i] = ys[i] * target / mag;
        }
    }
}

/* c = W · r for the N router values r, each clipped to ±clip (clip 0: no
 * clip); W (rows, N) f32, rows <= GMK_ALTUP_MAX_COEFS. */
#define GMK_ALTUP_MAX_COEFS 256
static inline void gmk_altup_coefs(float *restrict c, const float *restrict W,
                                   const float *restrict r, int rows, int N, float clip)
{
    for (int j = 0; j < rows; j++) {
        float acc = 0;
        for (int i = 0; i < N; i++) {
            float w = W[j * N + i];
            if (clip > 0)
                w = w > clip ? clip : w < -clip ? -clip : w;
            acc += w * r[i];
        }
        c[j] = acc;
    }
}

/*
 * AltUp predict: p_i = x_i + Σ_j C[i][j] · x_j over the N streams, C = W · r
 * (N·N values, row i first; weights clipped).  Shapes: xs, p (n_tok, N·D);
 * r (n_tok, N); W (N·N, N).  Rows split.
 */
static inline void gmk_altup_predict(float *restrict p, const float *restrict xs,
                                     const float *restrict r, const float *restrict W, int n_tok,
                                     int64_t D, int N, float clip, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    float C[GMK_ALTUP_MAX_COEFS];
    for (int64_t t = lo; t < hi; t++) {
        const float *xt = xs + t * N * D;
        float *pt = p + t * N * D;
        gmk_altup_coefs(C, W, r + t * N, N * N, N, clip);
        for (int s = 0; s < N; s++)
            for (int64_t i = 0; i < D; i++) {
                float acc = 0;
                for (int j = 0; j < N; j++)
                    acc += xt[j * D + i] * C[s * N + j];
                pt[s * D + i] = acc + xt[s * D + i];
            }
    }
}

/*
 * AltUp correct: xs_i = p_i + (c_i + 1) · (y - p_active), c = W · r (N
 * values, weights clipped).  Shapes: xs, p (n_tok, N·D); y (n_tok, D);
 * r (n_tok, N); W (N, N).  Rows split.
 */
static inline void gmk_altup_correct(float *restrict xs, const float *restrict p,
                                     const float *restrict y, const float *restrict r,
                                     const float *restrict W, int n_tok, int64_t D, int N,
                                     int active, float clip, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    float C[GMK_ALTUP_MAX_COEFS];
    for (int64_t t = lo; t < hi; t++) {
        const float *pt = p + t * N * D, *yt = y + t * D, *pa = pt + active * D;
        float *xt = xs + t * N * D;
        gmk_altup_coefs(C, W, r + t * N, N, N, clip);
        for (int s = 0; s < N; s++)
            for (int64_t i = 0; i < D; i++)
                xt[s * D + i] = (yt[i] - pa[i]) * (C[s] + 1.0f) + pt[s * D + i];
    }
}

/* xs_s += p for every stream s but `active`.  Rows split. */
static inline void gmk_streams_add(float *restrict xs, const float *restrict p, int n_tok,
                                   int64_t D, int N, int active, int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        for (int s = 0; s < N; s++)
            for (int64_t i = 0; s != active && i < D; i++)
                xs[(t * N + s) * D + i] += p[t * D + i];
}

/*
 * AltUp after the layers: the mean of stream 0 and the projections u_s of
 * the other streams rescaled to stream 0's RMS (u_s · rms(x_0) /
 * max(rms(u_s), sqrt(eps))).  Shapes: xs (n_tok, N·D); u (n_tok, (N-1)·D);
 * x (n_tok, D).  Rows split.
 */
static inline void gmk_altup_final(float *restrict x, const float *restrict xs,
                                   const float *restrict u, int n_tok, int64_t D, int N, float eps,
                                   int ith, int nth)
{
    int64_t lo, hi;
    gmk_range(n_tok, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *x0 = xs + t * N * D;
        float *xt = x + t * D;
        float target = gmk_rms_floor(x0, D, 0);
        memcpy(xt, x0, (size_t)D * sizeof(float));
        for (int s = 1; s < N; s++) {
            const float *us = u + (t * (N - 1) + s - 1) * D;
            float mag = gmk_rms_floor(us, D, eps);
            for (int64_t i = 0; i < D; i++)
                xt[i] += us[i] * target / mag;
        }
        for (int64_t i = 0; i < D; i++)
            xt[i] /= (float)N;
    }
}

#endif /* GMK_GENERIC_H */
