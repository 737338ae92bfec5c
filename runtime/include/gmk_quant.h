/*
 * gmk_quant.h — scalar element conversions and ggml block dequantization.
 *
 * Shared by generated model code (through gmk_generic.h) and by the runtime
 * (runtime/dtype.c wraps it), so everything here is static inline C11 with no
 * dependency beyond the C headers below and gmk.h.  Block layouts and formulas
 * follow ggml (docs/models.md#quant-weights); multi-byte fields are read byte by byte,
 * so blocks may sit at any address (mapped GGUF data is only 32-byte aligned
 * per tensor and a row may start at any block).  Dequantized values are
 * computed with the same operation order as ggml's dequantize_row_* and with
 * floating-point contraction off, so they are bit-exact against it.
 */
#ifndef GMK_QUANT_H
#define GMK_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gmk.h"

/* Block layouts, for documentation and size checks only: the dequantizers
 * read raw bytes at the offsets these structs imply (all fields are byte
 * arrays or uint16_t at even offsets, so there is no padding). */
typedef struct { uint16_t d; uint8_t qs[16]; } gmk_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } gmk_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } gmk_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } gmk_block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } gmk_block_q8_0;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } gmk_block_q4_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} gmk_block_q5_k;
typedef struct {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} gmk_block_q6_k;

_Static_assert(sizeof(gmk_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(gmk_block_q4_1) == 20, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(gmk_block_q5_0) == 22, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(gmk_block_q5_1) == 24, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(gmk_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(gmk_block_q4_k) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(gmk_block_q5_k) == 176, "Q5_K block is 176 bytes");
_Static_assert(sizeof(gmk_block_q6_k) == 210, "Q6_K block is 210 bytes");

/* ------------------------------------------------------------ bit casts */

static inline uint32_t gmk_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float gmk_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Little-endian 16-bit load from any address (GGUF is little-endian). */
static inline uint16_t gmk_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ------------------------------------------------------------ f16 / bf16 */

/* Exact binary16 → binary32, incl. subnormals, ±inf and NaN (payload kept).
 * Written without branches (selects only) so that row loops vectorize. */
static inline float gmk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent+mantissa in f32 place */
    uint32_t exp = em & 0x0f800000u;
    /* Normal numbers: rebias the exponent by 127 - 15 = 112.  Inf/NaN
     * (exponent 31) need the f32 maximum exponent 255, i.e. another 112. */
    uint32_t normal = em + (112u << 23) + (exp == 0x0f800000u ? (112u << 23) : 0u);
    /* Subnormals (and zero): mantissa · 2^-24, exact in f32. */
    float sub = (float)(h & 0x3ffu) * 0x1p-24f;
    uint32_t mag = exp == 0 ? gmk_f32_bits(sub) : normal;
    return gmk_bits_f32(sign | mag);
}

/* binary32 → binary16, round to nearest even; too large → ±inf; NaN stays a
 * quiet NaN keeping the top payload bits; tiny values → subnormals or ±0. */
static inline uint16_t gmk_f32_to_f16(float f)
{
    uint32_t x = gmk_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520: rounds past 65504 (odd) to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* normal in f16: >= 2^-14 */
        uint32_t r = ax - (112u << 23);
        r += 0xfffu + ((r >> 13) & 1u); /* RNE; a carry bumps the exponent */
        return (uint16_t)(sign | (r >> 13));
    }
    uint32_t e = ax >> 23;
    if (e < 102) /* below 2^-25: rounds to zero (2^-25 itself ties to 0) */
        return sign;
    /* Subnormal result: value · 2^24 = m · 2^(e-126), shift = 126 - e. */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14 .. 24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* may become 0x400, the smallest normal: still correct */
    return (uint16_t)(sign | q);
}

static inline float gmk_bf16_to_f32(uint16_t h)
{
    return gmk_bits_f32((uint32_t)h << 16);
}

/* Round to nearest even on the upper half; NaN forced quiet so that the
 * truncation cannot turn it into inf. */
static inline uint16_t gmk_f32_to_bf16(float f)
{
    uint32_t x = gmk_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ------------------------------------------------------------ sizes */

/* Elements per block of dtype; 0 if the id is not a type we know. */
static inline int64_t gmk_dtype_block(int dtype)
{
    switch (dtype) {
    case GMK_DTYPE_F32:
    case GMK_DTYPE_F16:
    case GMK_DTYPE_BF16:
        return 1;
    case GMK_DTYPE_Q4_0:
    case GMK_DTYPE_Q4_1:
    case GMK_DTYPE_Q5_0:
    case GMK_DTYPE_Q5_1:
    case GMK_DTYPE_Q8_0:
    case GMK_DTYPE_Q8_1:
        return 32;
    case GMK_DTYPE_Q2_K:
    case GMK_DTYPE_Q3_K:
    case GMK_DTYPE_Q4_K:
    case GMK_DTYPE_Q5_K:
    case GMK_DTYPE_Q6_K:
    case GMK_DTYPE_Q8_K:
        return 256;
    default:
        return 0;
    }
}

/* Bytes per block of dtype; 0 if unknown.  Q8_1, Q2_K, Q3_K and Q8_K are
 * sized (so files holding them can be walked) but not dequantized. */
static inline size_t gmk_dtype_block_bytes(int dtype)
{
    switch (dtype) {
    case GMK_DTYPE_F32: return 4;
    case GMK_DTYPE_F16: return 2;
    case GMK_DTYPE_BF16: return 2;
    case GMK_DTYPE_Q4_0: return 18;
    case GMK_DTYPE_Q4_1: return 20;
    case GMK_DTYPE_Q5_0: return 22;
    case GMK_DTYPE_Q5_1: return 24;
    case GMK_DTYPE_Q8_0: return 34;
    case GMK_DTYPE_Q8_1: return 36;
    case GMK_DTYPE_Q2_K: return 84;
    case GMK_DTYPE_Q3_K: return 110;
    case GMK_DTYPE_Q4_K: return 144;
    case GMK_DTYPE_Q5_K: return 176;
    case GMK_DTYPE_Q6_K: return 210;
    case GMK_DTYPE_Q8_K: return 292;
    default: return 0;
    }
}

/* ------------------------------------------------------------ blocks */

/*
 * One function per format: b points at one block, y receives its 32 or 256
 * values.  FP_CONTRACT is off inside them so that `q·d + m` is two roundings,
 * as in ggml's reference C and in numpy, whatever -march says.
 */
#if defined(__clang__)
#define GMK_NO_CONTRACT _Pragma("STDC FP_CONTRACT OFF")
#else
#define GMK_NO_CONTRACT
#endif

static inline void gmk_dequant_q4_0(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0f) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static inline void gmk_dequant_q4_1(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const float m = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

/* Q5_0/Q5_1: qh is a little-endian uint32 holding bit 4 of element j at
 * bit j (j < 32); qs holds the low nibbles as in Q4_0. */
static inline uint32_t gmk_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void gmk_dequant_q5_0(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const uint32_t qh = gmk_load_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (int)((qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
        int hi = (int)((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

static inline void gmk_dequant_q5_1(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const float m = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint32_t qh = gmk_load_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (int)((qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
        int hi = (int)((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

static inline void gmk_dequant_q8_0(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of a
 * Q4_K/Q5_K block: sub-blocks 0–3 use the low 6 bits of bytes 0–7;
 * sub-blocks 4–7 take 4 bits from bytes 8–11 and their top 2 bits from the
 * spare high bits of bytes 0–7. */
static inline void gmk_scale_min_k4(int j, const uint8_t *restrict s, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = (uint8_t)(s[j] & 63);
        *m = (uint8_t)(s[j + 4] & 63);
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Q4_K: 4 chunks of 64; chunk c uses qs[32c..32c+31], low nibbles are
 * sub-block 2c, high nibbles sub-block 2c+1; w = (d·sc)·q − dmin·m. */
static inline void gmk_dequant_q4_k(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const float dmin = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint8_t *scales = b + 4;
    const uint8_t *qs = b + 16;
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        gmk_scale_min_k4(2 * c, scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        gmk_scale_min_k4(2 * c + 1, scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        const uint8_t *q = qs + 32 * c;
        float *yc = y + 64 * c;
        for (int l = 0; l < 32; l++) {
            yc[l] = d1 * (float)(q[l] & 0x0f) - m1;
            yc[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: as Q4_K; bit 4 of element 64c+l is bit 2c of qh[l], of element
 * 64c+32+l bit 2c+1. */
static inline void gmk_dequant_q5_k(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b));
    const float dmin = gmk_f16_to_f32(gmk_load_u16(b + 2));
    const uint8_t *scales = b + 4;
    const uint8_t *qh = b + 16;
    const uint8_t *qs = b + 48;
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        gmk_scale_min_k4(2 * c, scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        gmk_scale_min_k4(2 * c + 1, scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        const uint8_t *q = qs + 32 * c;
        float *yc = y + 64 * c;
        for (int l = 0; l < 32; l++) {
            int lo = (q[l] & 0x0f) | (((qh[l] >> (2 * c)) & 1) << 4);
            int hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
            yc[l] = d1 * (float)lo - m1;
            yc[l + 32] = d2 * (float)hi - m2;
        }
    }
}

/* Q6_K: two halves of 128; in half n, ql += 64n, qh += 32n, scales += 8n,
 * and element l + 32k (k = 0..3, l < 32) takes a nibble of ql (low for k even,
 * high for k odd; ql[l] for k = 0, 2 and ql[l+32] for k = 1, 3) and bits
 * 2k..2k+1 of qh[l]; w = (d·scale[l/16 + 2k])·(q − 32). */
static inline void gmk_dequant_q6_k(const uint8_t *restrict b, float *restrict y)
{
    GMK_NO_CONTRACT
    const float d = gmk_f16_to_f32(gmk_load_u16(b + 208));
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = b + 64 * n;
        const uint8_t *qh = b + 128 + 32 * n;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * n);
        float *yn = y + 128 * n;
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            yn[l] = d * (float)sc[is] * (float)q1;
            yn[l + 32] = d * (float)sc[is + 2] * (float)q2;
            yn[l + 64] = d * (float)sc[is + 4] * (float)q3;
            yn[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

/* ------------------------------------------------------------ rows */

/* Applies one block dequantizer to nb consecutive blocks. */
static inline void gmk_dequant_blocks(void (*fn)(const uint8_t *restrict, float *restrict),
                                      const uint8_t *restrict src, float *restrict dst,
                                      int64_t nb, size_t bytes, int64_t elems)
{
    for (int64_t i = 0; i < nb; i++)
        fn(src + (size_t)i * bytes, dst + i * elems);
}

/*
 * dst[0..n) = the n values stored at src in dtype.  n must be a multiple of
 * gmk_dtype_block(dtype) (a trailing partial block is left unwritten).
 * Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K;
 * any other dtype writes n zeros.  src needs no alignment; src and dst must
 * not overlap.
 */
static inline void gmk_dequantize_row(int dtype, const void *restrict src, float *restrict dst,
                                      int64_t n)
{
    const uint8_t *s = (const uint8_t *)src;
    switch (dtype) {
    case GMK_DTYPE_F32:
        memcpy(dst, s, (size_t)n * sizeof(float));
        return;
    case GMK_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = gmk_f16_to_f32(gmk_load_u16(s + 2 * i));
        return;
    case GMK_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = gmk_bf16_to_f32(gmk_load_u16(s + 2 * i));
        return;
    case GMK_DTYPE_Q4_0: gmk_dequant_blocks(gmk_dequant_q4_0, s, dst, n / 32, 18, 32); return;
    case GMK_DTYPE_Q4_1: gmk_dequant_blocks(gmk_dequant_q4_1, s, dst, n / 32, 20, 32); return;
    case GMK_DTYPE_Q5_0: gmk_dequant_blocks(gmk_dequant_q5_0, s, dst, n / 32, 22, 32); return;
    case GMK_DTYPE_Q5_1: gmk_dequant_blocks(gmk_dequant_q5_1, s, dst, n / 32, 24, 32); return;
    case GMK_DTYPE_Q8_0: gmk_dequant_blocks(gmk_dequant_q8_0, s, dst, n / 32, 34, 32); return;
    case GMK_DTYPE_Q4_K: gmk_dequant_blocks(gmk_dequant_q4_k, s, dst, n / 256, 144, 256); return;
    case GMK_DTYPE_Q5_K: gmk_dequant_blocks(gmk_dequant_q5_k, s, dst, n / 256, 176, 256); return;
    case GMK_DTYPE_Q6_K: gmk_dequant_blocks(gmk_dequant_q6_k, s, dst, n / 256, 210, 256); return;
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = 0.0f;
        return;
    }
}

#endif /* GMK_QUANT_H */
