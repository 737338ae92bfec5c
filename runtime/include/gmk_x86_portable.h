/*
 * gmk_x86_portable.h — the int8 matmul of baseline x86-64 (SSE2).
 *
 * Included by gmk_x86.h when AVX2/FMA/F16C are absent.  Each weight block is
 * unpacked once into int16 (k-quant sub-block scales folded in), then dotted
 * with every token's int8 activation block in int32 (pmaddwd); the block's contribution is
 * scaled and added to y in f32, block after block, so a row's result does
 * not depend on which rows or tokens are computed alongside it.  Float
 * weights (f32/f16/bf16) go through the f32 reference path.
 */
#ifndef GMK_X86_PORTABLE_H
#define GMK_X86_PORTABLE_H

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* One unpacked weight block: q are the integer weights (offset removed where
 * the format has a fixed one), and the scales that turn Σ q·x into floats. */
typedef struct gmk_x86_blk {
    int16_t q[GMK_X86_QKK]; /* int16 for pmaddwd; k-quants: times their scale */
    int16_t sc[16]; /* k-quants: per 32 (q4_k, q5_k) or per 16 (q6_k) */
    int16_t mn[8];  /* q4_k, q5_k: per-32 minimums */
    float d, m;     /* scale; b32 minimum (q4_1, q5_1) or k-quant dmin */
} gmk_x86_blk;

/* Bit j of the little-endian 32-bit word at p. */
static inline int gmk_x86_bit(const uint8_t *p, int j)
{
    return (p[j >> 3] >> (j & 7)) & 1;
}

/* Unpacks one b32 block (q4_0 q4_1 q5_0 q5_1 q8_0) at b. */
static inline void gmk_x86_unpack_b32(gmk_x86_blk *u, int wdtype, const uint8_t *b)
{
    u->d = gmk_f16_to_f32(gmk_load_u16(b));
    u->m = 0.0f;
    if (wdtype == GMK_DTYPE_Q8_0) {
        for (int j = 0; j < 32; j++)
            u->q[j] = (int8_t)b[2 + j];
        return;
    }
    int has_min = wdtype == GMK_DTYPE_Q4_1 || wdtype == GMK_DTYPE_Q5_1;
    int five = wdtype == GMK_DTYPE_Q5_0 || wdtype == GMK_DTYPE_Q5_1;
    if (has_min)
        u->m = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint8_t *qh = b + 2 + 2 * has_min;
    const uint8_t *qs = qh + 4 * five;
    int off = has_min ? 0 : (five ? 16 : 8);
    for (int j = 0; j < 16; j++) {
        int lo = qs[j] & 0x0f, hi = qs[j] >> 4;
        if (five) {
            lo |= gmk_x86_bit(qh, j) << 4;
            hi |= gmk_x86_bit(qh, j + 16) << 4;
        }
        u->q[j] = (int16_t)(lo - off);
        u->q[j + 16] = (int16_t)(hi - off);
    }
}

/* Unpacks one q4_k / q5_k block at b (layout as gmk_dequant_q4_k/q5_k). */
static inline void gmk_x86_unpack_q45k(gmk_x86_blk *u, int five, const uint8_t *b)
{
    u->d = gmk_f16_to_f32(gmk_load_u16(b));
    u->m = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint8_t *qh = b + 16, *qs = b + 16 + 32 * five;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        gmk_scale_min_k4(j, b + 4, &sc, &m);
        u->sc[j] = sc;
        u->mn[j] = m;
    }
    for (int c = 0; c < 4; c++) { /* q·sc ≤ 31·63: the scales ride in the int16s */
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * c + l] & 0x0f, hi = qs[32 * c + l] >> 4;
            if (five) {
                lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
            }
            u->q[64 * c + l] = (int16_t)(lo * u->sc[2 * c]);
            u->q[64 * c + 32 + l] = (int16_t)(hi * u->sc[2 * c + 1]);
        }
    }
}

/* Unpacks one q6_k block at b (layout as gmk_dequant_q6_k), q − 32. */
static inline void gmk_x86_unpack_q6k(gmk_x86_blk *u, const uint8_t *b)
{
    u->d = gmk_f16_to_f32(gmk_load_u16(b + 208));
    for (int g = 0; g < 16; g++)
        u->sc[g] = (int8_t)b[192 + g];
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
        int16_t *q = u->q + 128 * n;
        for (int l = 0; l < 32; l++) {
            const int16_t *sc = u->sc + 8 * n + l / 16; /* (q − 32)·sc fits int16 */
            q[l] = (int16_t)((((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32) * sc[0]);
            q[l + 32] = (int16_t)((((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32) * sc[2]);
            q[l + 64] = (int16_t)((((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * sc[4]);
            q[l + 96] = (int16_t)((((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * sc[6]);
        }
    }
}

/* Σ a·b of int16 weights and int8 activations, n a multiple of 16: pmaddwd
 * on SSE2 (every x86-64 has it), exact in int32 for the ranges used here. */
static inline int32_t gmk_x86_idot(const int16_t *restrict a, const int8_t *restrict b, int n)
{
#if defined(__SSE2__)
    __m128i acc = _mm_setzero_si128();
    for (int i = 0; i < n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i xl = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8); /* sign-extend */
        __m128i xh = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(a + i)), xl));
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(a + i + 8)), xh));
    }
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
    return _mm_cvtsi128_si32(acc);
#else
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
#endif
}

/* Contribution of one unpacked block to one token's dot product. */
static inline float gmk_x86_blk_dot(const gmk_x86_blk *u, int wdtype, const uint8_t *xb)
{
    GMK_NO_CONTRACT
    if (gmk_dtype_block(wdtype) == GMK_X86_QK) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)xb;
        float r = (u->d * a->d) * (float)gmk_x86_idot(u->q, a->qs, 32);
        return r + u->m * (a->d * (float)a->sum); /* m = 0 without minimum */
    }
    const gmk_act_q8_k *a = (const gmk_act_q8_k *)xb;
    int32_t isum = gmk_x86_idot(u->q, a->qs, GMK_X86_QKK), imin = 0;
    if (wdtype == GMK_DTYPE_Q6_K)
        return (u->d * a->d) * (float)isum;
    for (int j = 0; j < 8; j++)
        imin += u->mn[j] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    return (u->d * a->d) * (float)isum - (u->m * a->d) * (float)imin;
}

static inline void gmk_x86_matmul_fast(float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                       int wdtype, const uint8_t *restrict X, int fmt, int n_tok,
                                       int64_t r0, int64_t r1, int64_t n_in)
{
    GMK_NO_CONTRACT
    if (fmt != GMK_ACT_Q8_0 && fmt != GMK_ACT_Q8_K) {
        gmk_x86_matmul_fallback(y, ldy, W, wdtype, X, fmt, n_tok, r0, r1, n_in);
        return;
    }
    int64_t blk = gmk_dtype_block(wdtype);
    size_t bb = gmk_dtype_block_bytes(wdtype);
    size_t ab = fmt == GMK_ACT_Q8_0 ? sizeof(gmk_act_q8_0) : sizeof(gmk_act_q8_k);
    size_t xrow = gmk_act_row_bytes(fmt, n_in);
    int64_t nb = n_in / blk;
    gmk_x86_blk u;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = W + (size_t)r * (size_t)nb * bb;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *wb = wr + (size_t)b * bb;
            if (blk == GMK_X86_QK)
                gmk_x86_unpack_b32(&u, wdtype, wb);
            else if (wdtype == GMK_DTYPE_Q6_K)
                gmk_x86_unpack_q6k(&u, wb);
            else
                gmk_x86_unpack_q45k(&u, wdtype == GMK_DTYPE_Q5_K, wb);
            for (int t = 0; t < n_tok; t++) {
                float c = gmk_x86_blk_dot(&u, wdtype, X + (size_t)t * xrow + (size_t)b * ab);
                float *yt = y + t * ldy + r;
                *yt = b > 0 ? *yt + c : c;
            }
        }
    }
}

#endif /* GMK_X86_PORTABLE_H */
