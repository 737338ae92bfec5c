/*
 * gmk_x86.h — matmul kernels of the x86-64 targets (x86-64, -v3, -v4, -v4-vnni).
 *
 * The two primitives of gmk_generic.h: gmk_act_row converts f32 activations
 * to the compiler's format (gmk_act.h); gmk_matmul_rows multiplies weights by
 * them with int8 (or bf16) dot products.  The path follows the -march ISA
 * macros: gmk_x86_simd.h (AVX2, AVX-512 VNNI/BF16 where on) or
 * gmk_x86_portable.h (baseline SSE2).  Each output element gets the same
 * operations whatever r0, r1 and n_tok are: bit-identical results across
 * thread counts and between prefill and decode.
 */
#ifndef GMK_X86_H
#define GMK_X86_H

#define GMK_HAVE_TARGET_MATMUL 1
#include "gmk_generic.h"

/* Elements per block of the b32 family (q4_0 .. q8_0) and of the k-quants. */
#define GMK_X86_QK 32
#define GMK_X86_QKK 256

/* ------------------------------------------------------------ activations */

/* Largest |x[i]| of n values (NaN ignored: comparisons with it are false). */
static inline float gmk_x86_amax(const float *x, int n)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        m = a > m ? a : m;
    }
    return m;
}

/* v rounded to the nearest integer (half away from zero, like roundf and
 * ggml's quantizers), clamped to ±127; NaN becomes 0.  Written without libm
 * so that baseline builds need no rintf/roundf call. */
static inline int8_t gmk_x86_round_q8(float v)
{
    v = v == v ? v : 0.0f;
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    return (int8_t)(int)(v + (v >= 0.0f ? 0.5f : -0.5f));
}

/* n values to int8 with scale d = amax/127 (symmetric: never -128, which the
 * AVX2 sign trick and the u8·s8 products rely on); returns d. */
static inline float gmk_x86_quant_q8_c(int8_t *restrict q, const float *restrict x, int n)
{
    GMK_NO_CONTRACT
    float d = gmk_x86_amax(x, n) / 127.0f;
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++)
        q[i] = gmk_x86_round_q8(x[i] * id);
    return d;
}

static inline int32_t gmk_x86_sum_q8(const int8_t *q, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += q[i];
    return s;
}

/* f32 values [k0, k0+len) of an activation row in fmt (for the fallback). */
static inline void gmk_x86_act_to_f32(float *restrict dst, const void *restrict xq, int fmt,
                                      int64_t k0, int64_t len)
{
    GMK_NO_CONTRACT
    for (int64_t k = k0; k < k0 + len; k++) {
        float v;
        if (fmt == GMK_ACT_Q8_0) {
            const gmk_act_q8_0 *b = (const gmk_act_q8_0 *)xq + k / GMK_X86_QK;
            v = b->d * (float)b->qs[k % GMK_X86_QK];
        } else if (fmt == GMK_ACT_Q8_K) {
            const gmk_act_q8_k *b = (const gmk_act_q8_k *)xq + k / GMK_X86_QKK;
            v = b->d * (float)b->qs[k % GMK_X86_QKK];
        } else if (fmt == GMK_ACT_BF16) {
            v = gmk_bf16_to_f32(((const uint16_t *)xq)[k]);
        } else {
            v = ((const float *)xq)[k];
        }
        dst[k - k0] = v;
    }
}

/*
 * Any (weights, format) pair without a dedicated kernel: activations back to
 * f32 and weights dequantized, GMK_MATMUL_CHUNK at a time (32 KiB of stack),
 * then f32 dots.  Slow but never silently wrong.
 */
static inline void gmk_x86_matmul_fallback(float *restrict y, int64_t ldy,
                                           const void *restrict W, int wdtype,
                                           const void *restrict xq, int fmt, int n_tok,
                                           int64_t r0, int64_t r1, int64_t n_in)
{
    size_t xrow = gmk_act_row_bytes(fmt, n_in);
    if (fmt == GMK_ACT_F32) { /* rows are xrow apart, not n_in floats */
        gmk_ref_matmul_rows_ld(y, ldy, W, wdtype, (const float *)xq,
                               (int64_t)(xrow / sizeof(float)), n_tok, r0, r1, n_in);
        return;
    }
    float xb[GMK_MATMUL_CHUNK], wb[GMK_MATMUL_CHUNK];
    for (int t = 0; t < n_tok; t++) {
        const uint8_t *xt = (const uint8_t *)xq + (size_t)t * xrow;
        for (int64_t k0 = 0; k0 < n_in; k0 += GMK_MATMUL_CHUNK) {
            int64_t len = n_in - k0 < GMK_MATMUL_CHUNK ? n_in - k0 : GMK_MATMUL_CHUNK;
            gmk_x86_act_to_f32(xb, xt, fmt, k0, len);
            for (int64_t r = r0; r < r1; r++) {
                gmk_weight_dequant(wb, W, wdtype, r, n_in, k0, len);
                float d = gmk_dot_f32(wb, xb, len);
                float *yt = y + t * ldy + r;
                *yt = k0 > 0 ? *yt + d : d;
            }
        }
    }
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "gmk_x86_simd.h"
#else
#include "gmk_x86_portable.h"
#endif

/* gmk_x86_quant_q8_c, vectorized where the ISA header has it (same results);
 * s[j] = Σ q[16j .. 16j+16) (n a multiple of 16). */
static inline float gmk_x86_quant_q8(int8_t *restrict q, int32_t *restrict s,
                                     const float *restrict x, int n)
{
#ifdef GMK_X86_HAVE_QUANT8
    return gmk_x86_quant_q8_simd(q, s, x, n);
#else
    float d = gmk_x86_quant_q8_c(q, x, n);
    for (int j = 0; j < n / 16; j++)
        s[j] = gmk_x86_sum_q8(q + 16 * j, 16);
    return d;
#endif
}

/*
 * Converts one f32 row of n elements into fmt at xq (gmk_act_row_bytes(fmt, n)
 * bytes): F32 copies; Q8_0 makes 32-element blocks, d = amax/127, values
 * rounded half away from zero, sum = Σ qs; Q8_K makes 256-element blocks with
 * the same rule (not llama.cpp's -128/max: symmetric blocks keep every
 * product within the int16 pairs of the AVX2 path) and bsums of 16; BF16
 * rounds to nearest even.  n must be a multiple of gmk_act_block(fmt).
 */
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    switch (fmt) {
    case GMK_ACT_Q8_0: {
        gmk_act_q8_0 *b = (gmk_act_q8_0 *)xq;
        for (int64_t i = 0; i < n / GMK_X86_QK; i++, b++) {
            int32_t s[GMK_X86_QK / 16];
            b->d = gmk_x86_quant_q8(b->qs, s, x + i * GMK_X86_QK, GMK_X86_QK);
            b->sum = s[0] + s[1];
        }
        return;
    }
    case GMK_ACT_Q8_K: {
        gmk_act_q8_k *b = (gmk_act_q8_k *)xq;
        for (int64_t i = 0; i < n / GMK_X86_QKK; i++, b++) {
            int32_t s[GMK_X86_QKK / 16];
            b->d = gmk_x86_quant_q8(b->qs, s, x + i * GMK_X86_QKK, GMK_X86_QKK);
            for (int j = 0; j < 16; j++)
                b->bsums[j] = (int16_t)s[j];
        }
        return;
    }
    case GMK_ACT_BF16: {
        uint16_t *h = (uint16_t *)xq;
        for (int64_t i = 0; i < n; i++)
            h[i] = gmk_f32_to_bf16(x[i]);
        return;
    }
    case GMK_ACT_F32:
        memcpy(xq, x, (size_t)n * sizeof(float));
        return;
    default: /* not a format: the buffer was sized 0 bytes */
        return;
    }
}


/* The (weights, format) pairs gmk_x86_matmul_fast handles. */
static inline int gmk_x86_pair_supported(int wdtype, int fmt)
{
    switch (wdtype) {
    case GMK_DTYPE_Q4_0: case GMK_DTYPE_Q4_1: case GMK_DTYPE_Q5_0: case GMK_DTYPE_Q5_1:
    case GMK_DTYPE_Q8_0:
        return fmt == GMK_ACT_Q8_0;
    case GMK_DTYPE_Q4_K: case GMK_DTYPE_Q5_K: case GMK_DTYPE_Q6_K:
        return fmt == GMK_ACT_Q8_K;
    case GMK_DTYPE_BF16:
        return fmt == GMK_ACT_BF16 || fmt == GMK_ACT_F32;
    case GMK_DTYPE_F32: case GMK_DTYPE_F16:
        return fmt == GMK_ACT_F32;
    default:
        return 0;
    }
}

/*
 * y[t·ldy + r] = Σ_k W_r[k] · x_t[k] for rows r in [r0, r1) and tokens
 * t < n_tok; W is (n_out, n_in) of wdtype, rows packed; activation row t sits
 * at (const char *)xq + t·gmk_act_row_bytes(fmt, n_in).  Integer-quantized
 * weights take int8 dot products per block (int32), scaled and summed in f32.
 * n_in must be a multiple of the weight block (and of gmk_act_block(fmt)).
 */
static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int wdtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    if (n_tok <= 0 || r1 <= r0 || n_in <= 0)
        return;
    int dtype = gmk_wdtype_dtype(wdtype), layout = gmk_wdtype_layout(wdtype);
    int64_t blk = gmk_dtype_block(dtype);
    if (gmk_act_row_bytes(fmt, n_in) == 0 || (blk > 0 && n_in % blk != 0) ||
        !gmk_layout_supports(layout, dtype)) {
        /* a shape the compiler never emits: zeros, and no read out of bounds */
        for (int t = 0; t < n_tok; t++)
            for (int64_t r = r0; r < r1; r++)
                y[t * ldy + r] = 0.0f;
        return;
    }
#ifdef GMK_X86_HAVE_P16
    if (layout == GMK_LAYOUT_P16 && gmk_x86_pair_supported(dtype, fmt) &&
        (blk > 1 || fmt == GMK_ACT_F32)) {
        gmk_x86_matmul_p16(y, ldy, (const uint8_t *)W, dtype, (const uint8_t *)xq, n_tok, r0, r1,
                           n_in);
        return;
    }
#endif
#ifdef GMK_X86_HAVE_P8
    if (layout == GMK_LAYOUT_P8 && gmk_x86_pair_supported(dtype, fmt) &&
        (blk > 1 || fmt == GMK_ACT_F32)) {
        void (*mm)(float *restrict, int64_t, const uint8_t *restrict, const uint8_t *restrict,
                   size_t, int, int64_t, int64_t, int64_t) = NULL;
        switch (dtype) {
        case GMK_DTYPE_Q4_0: mm = gmk_x86_p8_q4_0; break;
        case GMK_DTYPE_Q5_0: mm = gmk_x86_p8_q5_0; break;
        case GMK_DTYPE_Q8_0: mm = gmk_x86_p8_q8_0; break;
        case GMK_DTYPE_Q4_K: mm = gmk_x86_p8_q4_k; break;
        case GMK_DTYPE_Q5_K: mm = gmk_x86_p8_q5_k; break;
        case GMK_DTYPE_Q6_K: mm = gmk_x86_p8_q6_k; break;
        case GMK_DTYPE_F16: mm = gmk_x86_p8_f16; break;
        case GMK_DTYPE_BF16: mm = gmk_x86_p8_bf16; break;
        default: break; /* gmk_layout_supports said no */
        }
        if (mm) {
            mm(y, ldy, (const uint8_t *)W, (const uint8_t *)xq, gmk_act_row_bytes(fmt, n_in),
               n_tok, r0, r1, n_in / blk);
            return;
        }
    }
#endif
    if (layout != GMK_LAYOUT_PACKED || !gmk_x86_pair_supported(wdtype, fmt)) {
        gmk_x86_matmul_fallback(y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
        return;
    }
    gmk_x86_matmul_fast(y, ldy, (const uint8_t *)W, wdtype, (const uint8_t *)xq, fmt, n_tok, r0,
                        r1, n_in);
}

#endif /* GMK_X86_H */
