/*
 * gmk_arm.h — matmul kernels of the AArch64 targets (aarch64, -dotprod, -i8mm).
 *
 * The two primitives of gmk_generic.h with int8 activations: gmk_act_row
 * quantizes f32 rows to Q8_0 / Q8_K blocks by the x86 targets' rule, and
 * gmk_matmul_rows multiplies q4_0, q5_0 and q8_0 weights by Q8_0 rows and
 * q4_k, q5_k, q6_k by Q8_K rows, read from the file's rows or from 4-row
 * panels (GMK_LAYOUT_P4, gmk_layout.h).  The instructions follow the
 * -march macros: sdot with __ARM_FEATURE_DOTPROD, smmla for pairs of
 * tokens with __ARM_FEATURE_MATMUL_INT8 (b32 panels), else widening
 * multiplies (smull, sadalp) of Armv8.0.  Every path computes, per (row,
 * token, block), exact integer sums and then the float steps of the x86
 * kernels (acc = fma(float(q)·dx, dw, acc) for the b32 formats, as
 * gmk_x86_step_b32; gmk_arm_kstep's for the k-quants): the three targets,
 * both layouts, any row cut and any token count give the same bits.  The
 * weight types without kernels here take f32 activations (gmk_act_fmt_arm)
 * and the portable kernels.
 */
#ifndef GMK_ARM_H
#define GMK_ARM_H

#define GMK_HAVE_TARGET_MATMUL 1
#include "gmk_generic.h"

#include <arm_neon.h>

#define GMK_ARM_QK 32   /* elements per b32 weight and Q8_0 activation block */
#define GMK_ARM_QKK 256 /* per k-quant and Q8_K block */
#define GMK_ARM_R 4     /* rows per GMK_LAYOUT_P4 panel: one int32 lane each */
#define GMK_ARM_T 4     /* tokens per register tile */

/* ------------------------------------------------------------ activations */

/*
 * n floats (a multiple of 8) to int8 at q with the rule of gmk_x86.h's
 * gmk_act_row (both ISAs must see the same integers): d = amax/127, NaN
 * left out of the amax; v = x·(1/d) (0 where d is 0), NaN → 0, clamped to
 * ±127, then truncated after adding ±0.5 (half away from zero, without
 * libm).  Returns d.
 */
static inline float gmk_arm_quant(int8_t *restrict q, const float *restrict x, int n)
{
    GMK_NO_CONTRACT
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < n; i += 4) /* maxnm: a NaN loses to a number */
        m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
    const float d = vmaxvq_f32(m) / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    const float32x4_t lim = vdupq_n_f32(127.0f), half = vdupq_n_f32(0.5f);
    for (int i = 0; i < n; i += 8) {
        int32x4_t r[2];
        for (int h = 0; h < 2; h++) {
            float32x4_t t = vmulq_n_f32(vld1q_f32(x + i + 4 * h), id);
            t = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(t), vceqq_f32(t, t)));
            t = vminq_f32(vmaxq_f32(t, vnegq_f32(lim)), lim);
            t = vaddq_f32(t, vbslq_f32(vcgeq_f32(t, vdupq_n_f32(0.0f)), half, vnegq_f32(half)));
            r[h] = vcvtq_s32_f32(t); /* toward zero */
        }
        vst1_s8(q + i, vmovn_s16(vcombine_s16(vmovn_s32(r[0]), vmovn_s32(r[1]))));
    }
    return d;
}

/*
 * Converts one f32 row of n elements into fmt at xq (gmk_act_row_bytes(fmt,
 * n) bytes): Q8_0 blocks with sum = Σ qs, Q8_K blocks with bsums of 16 (as
 * gmk_x86.h), or an f32 copy.  n must be a multiple of gmk_act_block(fmt).
 */
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    if (fmt == GMK_ACT_Q8_0) {
        gmk_act_q8_0 *b = (gmk_act_q8_0 *)xq;
        for (int64_t i = 0; i < n / GMK_ARM_QK; i++, b++) {
            b->d = gmk_arm_quant(b->qs, x + i * GMK_ARM_QK, GMK_ARM_QK);
            b->sum = vaddlvq_s8(vld1q_s8(b->qs)) + vaddlvq_s8(vld1q_s8(b->qs + 16));
        }
    } else if (fmt == GMK_ACT_Q8_K) {
        gmk_act_q8_k *b = (gmk_act_q8_k *)xq;
        for (int64_t i = 0; i < n / GMK_ARM_QKK; i++, b++) {
            b->d = gmk_arm_quant(b->qs, x + i * GMK_ARM_QKK, GMK_ARM_QKK);
            for (int j = 0; j < 16; j++)
                b->bsums[j] = vaddlvq_s8(vld1q_s8(b->qs + 16 * j));
        }
    } else if (fmt == GMK_ACT_F32) {
        memcpy(xq, x, (size_t)n * sizeof(float));
    }
}

/* --------------------------------------------------------- the block step */

/* Activation block b of token row t. */
GMK_AI const gmk_act_q8_0 *gmk_arm_act(const uint8_t *x, size_t xrow, int t, int64_t b)
{
    return (const gmk_act_q8_0 *)(x + (size_t)t * xrow) + b;
}

/* The f16 at p as f32 by the fcvt instruction: exact, as gmk_f16_to_f32,
 * without that function's branches. */
GMK_AI float gmk_arm_f16(const uint8_t *p)
{
    __fp16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
}

/* q4_0 stores its weights + 8, q5_0 + 16: folded in as −off·Σx, one
 * integer per block. */
GMK_AI int gmk_arm_off(int F)
{
    return F == GMK_DTYPE_Q4_0 ? 8 : F == GMK_DTYPE_Q5_0 ? 16 : 0;
}

/* 16 bytes of a q5_0 weight vector: nibbles n (0..15) with 16 added where
 * bit k of the 16-bit mask in bytes i, i+1 of h is set, k the byte's
 * index; idx is (i × 8, i+1 × 8), the bytes that tbl spreads. */
GMK_AI int8x16_t gmk_arm_add_5th(uint8x16_t n, uint8x16_t h, uint8x16_t idx)
{
    const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201u));
    uint8x16_t set = vtstq_u8(vqtbl1q_u8(h, idx), bit);
    return vreinterpretq_s8_u8(vorrq_u8(n, vandq_u8(set, vdupq_n_u8(0x10))));
}

/* (i × 8, i+1 × 8) for gmk_arm_add_5th. */
GMK_AI uint8x16_t gmk_arm_spread(int i)
{
    return vcombine_u8(vdup_n_u8((uint8_t)i), vdup_n_u8((uint8_t)(i + 1)));
}

/* The float step of 4 rows and one token: q holds the rows' int32 dots
 * before the offset; dw their scales. */
GMK_AI float32x4_t gmk_arm_step4(float32x4_t acc, int32x4_t q, const gmk_act_q8_0 *a, int off,
                                 float32x4_t dw)
{
    q = vsubq_s32(q, vdupq_n_s32(off * a->sum));
    return vfmaq_f32(acc, vmulq_n_f32(vcvtq_f32_s32(q), a->d), dw);
}

/* ----------------------------------------------------- the file's rows */

/* One row's block of F at w as signed bytes: elements 0..15 and 16..31
 * (q4_0: low and high nibbles, still + 8; q5_0: with their 5th bits, bits
 * 0..15 and 16..31 of qh, still + 16). */
GMK_AI void gmk_arm_row_block(int F, const uint8_t *w, int8x16_t v[2])
{
    if (F == GMK_DTYPE_Q8_0) {
        v[0] = vld1q_s8((const int8_t *)w + 2);
        v[1] = vld1q_s8((const int8_t *)w + 18);
        return;
    }
    const int five = F == GMK_DTYPE_Q5_0;
    uint8x16_t qs = vld1q_u8(w + 2 + 4 * five);
    uint8x16_t lo = vandq_u8(qs, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(qs, 4);
    if (five) {
        uint8x16_t h = vld1q_u8(w + 2); /* qh, then qs: within the 22 bytes */
        v[0] = gmk_arm_add_5th(lo, h, gmk_arm_spread(0));
        v[1] = gmk_arm_add_5th(hi, h, gmk_arm_spread(2));
        return;
    }
    v[0] = vreinterpretq_s8_u8(lo);
    v[1] = vreinterpretq_s8_u8(hi);
}

/* Σ w·x over 32 bytes, in four int32 lanes. */
GMK_AI int32x4_t gmk_arm_dot32(const int8x16_t w[2], const int8_t *x)
{
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
#ifdef __ARM_FEATURE_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w[0], x0), w[1], x1);
#else
    /* two products per int16 lane: |w·x| ≤ 128·127, twice < 2^15 */
    int16x8_t p = vmull_s8(vget_low_s8(w[0]), vget_low_s8(x0));
    p = vmlal_high_s8(p, w[0], x0);
    int16x8_t r = vmull_s8(vget_low_s8(w[1]), vget_low_s8(x1));
    r = vmlal_high_s8(r, w[1], x1);
    return vpadalq_s16(vpaddlq_s16(p), r);
#endif
}

/* Rows [r0, r1) of F in the file's order, tokens T at a time: each
 * (row, token, block) a horizontal sum, then the scalar form of
 * gmk_arm_step4. */
static inline void gmk_arm_rows(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                const uint8_t *restrict x, size_t xrow, int n_tok, int64_t r0,
                                int64_t r1, int64_t nb)
{
    GMK_NO_CONTRACT
    const size_t bb = gmk_dtype_block_bytes(F);
    const int off = gmk_arm_off(F);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * (size_t)nb * bb;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_ARM_T) {
            const int T = n_tok - t0 < GMK_ARM_T ? n_tok - t0 : GMK_ARM_T;
            float acc[GMK_ARM_T] = {0};
            for (int64_t b = 0; b < nb; b++) {
                int8x16_t v[2];
                gmk_arm_row_block(F, w + (size_t)b * bb, v);
                const float dw = gmk_arm_f16(w + (size_t)b * bb);
                for (int j = 0; j < T; j++) {
                    const gmk_act_q8_0 *a = gmk_arm_act(x, xrow, t0 + j, b);
                    int32_t q = vaddvq_s32(gmk_arm_dot32(v, a->qs)) - off * a->sum;
                    acc[j] = __builtin_fmaf((float)q * a->d, dw, acc[j]);
                }
            }
            for (int j = 0; j < T; j++)
                y[(t0 + j) * ldy + r] = acc[j];
        }
    }
}

/* ------------------------------------------------- k-quants, file's rows */

/* Σ w·x over 16 bytes, in four int32 lanes. */
GMK_AI int32x4_t gmk_arm_dot16(int8x16_t w, int8x16_t x)
{
#ifdef __ARM_FEATURE_DOTPROD
    return vdotq_s32(vdupq_n_s32(0), w, x);
#else
    return vpaddlq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(x)), w, x));
#endif
}

/* One k-quant block unpacked for every token of a tile: q[g] = elements
 * 16g .. 16g+15 without offsets (q4_k 0..15, q5_k 0..31, q6_k 0..63),
 * sc[g/4] lane g%4 their group's scale (q6_k: also as int16 lanes sc16,
 * for its −32), mn the minimums of the 32-element sub-blocks (q4_k, q5_k). */
typedef struct gmk_arm_kblk {
    int8x16_t q[16];
    int32x4_t sc[4];
    int16x8_t sc16[2], mn;
    float d, dmin;
} gmk_arm_kblk;

/* The low and high nibbles of qs bytes v (out[0], out[1]); for q5_k
 * (five) plus 16 where bit 2c (low) or 2c+1 (high) of its qh bytes h is
 * set. */
GMK_AI void gmk_arm_nibbles(uint8x16_t v, int five, uint8x16_t h, int c, uint8x16_t out[2])
{
    const uint8x16_t b4 = vdupq_n_u8(0x10);
    uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(v, 4);
    if (five) {
        lo = vorrq_u8(lo, vandq_u8(vtstq_u8(h, vdupq_n_u8((uint8_t)(1u << 2 * c))), b4));
        hi = vorrq_u8(hi, vandq_u8(vtstq_u8(h, vdupq_n_u8((uint8_t)(2u << 2 * c))), b4));
    }
    out[0] = lo;
    out[1] = hi;
}

/* q6_k's 6-bit values from ql bytes l0 (low nibbles: k = 0, high: k = 2)
 * and l1 (k = 1, 3) and qh bytes hb (bits 2k, 2k+1): v[k]. */
GMK_AI void gmk_arm_six(uint8x16_t l0, uint8x16_t l1, uint8x16_t hb, uint8x16_t v[4])
{
    const uint8x16_t low = vdupq_n_u8(0x0f), two = vdupq_n_u8(0x30);
    v[0] = vorrq_u8(vandq_u8(l0, low), vandq_u8(vshlq_n_u8(hb, 4), two));
    v[1] = vorrq_u8(vandq_u8(l1, low), vandq_u8(vshlq_n_u8(hb, 2), two));
    v[2] = vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, two));
    v[3] = vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), two));
}

/* q4_k / q5_k (five) at b: chunk c is sub-blocks 2c (low nibbles of
 * qs[32c..32c+31]) and 2c+1 (high); q5_k's 5th bit of element 64c+l is bit
 * 2c of qh[l], of 64c+32+l bit 2c+1. */
GMK_AI void gmk_arm_unpack_q45k(gmk_arm_kblk *u, int five, const uint8_t *b)
{
    u->d = gmk_arm_f16(b);
    u->dmin = gmk_arm_f16(b + 2);
    int16_t mn[8];
    int32_t sc[16];
    for (int j = 0; j < 8; j++) {
        uint8_t s6, m6;
        gmk_scale_min_k4(j, b + 4, &s6, &m6);
        sc[2 * j] = sc[2 * j + 1] = s6;
        mn[j] = m6;
    }
    for (int k = 0; k < 4; k++)
        u->sc[k] = vld1q_s32(sc + 4 * k);
    u->mn = vld1q_s16(mn);
    const uint8_t *qh = b + 16, *qs = b + 16 + 32 * five;
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            uint8x16_t n[2];
            gmk_arm_nibbles(vld1q_u8(qs + 32 * c + 16 * h), five,
                            five ? vld1q_u8(qh + 16 * h) : vdupq_n_u8(0), c, n);
            u->q[4 * c + h] = vreinterpretq_s8_u8(n[0]);
            u->q[4 * c + 2 + h] = vreinterpretq_s8_u8(n[1]);
        }
}

/* q6_k at b (layout as gmk_dequant_q6_k): in half n, element 128n + 32k +
 * l takes a nibble of ql (low for k = 0, 1) and bits 2k, 2k+1 of qh[l]. */
GMK_AI void gmk_arm_unpack_q6k(gmk_arm_kblk *u, const uint8_t *b)
{
    u->d = gmk_arm_f16(b + 208);
    const int8x16_t sc = vld1q_s8((const int8_t *)b + 192);
    u->sc16[0] = vmovl_s8(vget_low_s8(sc));
    u->sc16[1] = vmovl_high_s8(sc);
    for (int k = 0; k < 2; k++) {
        u->sc[2 * k] = vmovl_s16(vget_low_s16(u->sc16[k]));
        u->sc[2 * k + 1] = vmovl_high_s16(u->sc16[k]);
    }
    for (int n = 0; n < 2; n++)
        for (int h = 0; h < 2; h++) {
            uint8x16_t v[4];
            gmk_arm_six(vld1q_u8(b + 64 * n + 16 * h), vld1q_u8(b + 64 * n + 32 + 16 * h),
                        vld1q_u8(b + 128 + 32 * n + 16 * h), v);
            for (int k = 0; k < 4; k++) /* group 8n + 2k + h */
                u->q[8 * n + 2 * k + h] = vreinterpretq_s8_u8(v[k]);
        }
}

/* One block's contribution for one token, the arithmetic of the x86 P8
 * k-quant kernels: exact isum = Σ_g sc_g·(Σ q·x − 32·bsum_g for q6_k) and
 * msum = Σ_j mn_j·Σx_j, then acc = fma(isum, d·dx, acc), acc = fma(−msum,
 * dmin·dx, acc) for q4_k / q5_k.  The sums of 16 (bsums) and of 32 (their
 * pairs, at most 32·127) fit int16; every product int32. */
GMK_AI float gmk_arm_kstep(int F, float acc, const gmk_arm_kblk *u, const gmk_act_q8_k *a)
{
    GMK_NO_CONTRACT
    int32x4_t t = vdupq_n_s32(0);
    for (int k = 0; k < 4; k++) { /* groups 4k .. 4k+3, scales by lane */
        const int8x16_t *q = u->q + 4 * k;
        const int8_t *x = a->qs + 64 * k;
        t = vmlaq_laneq_s32(t, gmk_arm_dot16(q[0], vld1q_s8(x)), u->sc[k], 0);
        t = vmlaq_laneq_s32(t, gmk_arm_dot16(q[1], vld1q_s8(x + 16)), u->sc[k], 1);
        t = vmlaq_laneq_s32(t, gmk_arm_dot16(q[2], vld1q_s8(x + 32)), u->sc[k], 2);
        t = vmlaq_laneq_s32(t, gmk_arm_dot16(q[3], vld1q_s8(x + 48)), u->sc[k], 3);
    }
    const int16x8_t b0 = vld1q_s16(a->bsums), b1 = vld1q_s16(a->bsums + 8);
    if (F == GMK_DTYPE_Q6_K) {
        int32x4_t o = vmull_s16(vget_low_s16(u->sc16[0]), vget_low_s16(b0));
        o = vmlal_high_s16(o, u->sc16[0], b0);
        o = vmlal_s16(o, vget_low_s16(u->sc16[1]), vget_low_s16(b1));
        o = vmlal_high_s16(o, u->sc16[1], b1);
        int32_t isum = vaddvq_s32(vsubq_s32(t, vshlq_n_s32(o, 5)));
        return __builtin_fmaf((float)isum, u->d * a->d, acc);
    }
    const int16x8_t x32 = vpaddq_s16(b0, b1); /* Σx of sub-blocks 0..7 */
    int32x4_t m = vmull_s16(vget_low_s16(u->mn), vget_low_s16(x32));
    int32_t msum = vaddvq_s32(vmlal_high_s16(m, u->mn, x32));
    acc = __builtin_fmaf((float)vaddvq_s32(t), u->d * a->d, acc);
    return __builtin_fmaf(-(float)msum, u->dmin * a->d, acc);
}

/* Rows [r0, r1) of a k-quant F in the file's order, each block unpacked
 * once per GMK_ARM_T tokens. */
static inline void gmk_arm_rows_k(int F, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict W, const uint8_t *restrict x,
                                  size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t nb)
{
    const size_t bb = gmk_dtype_block_bytes(F);
    gmk_arm_kblk u;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * (size_t)nb * bb;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_ARM_T) {
            const int T = n_tok - t0 < GMK_ARM_T ? n_tok - t0 : GMK_ARM_T;
            float acc[GMK_ARM_T] = {0};
            for (int64_t b = 0; b < nb; b++) {
                if (F == GMK_DTYPE_Q6_K)
                    gmk_arm_unpack_q6k(&u, w + (size_t)b * bb);
                else
                    gmk_arm_unpack_q45k(&u, F == GMK_DTYPE_Q5_K, w + (size_t)b * bb);
                for (int j = 0; j < T; j++) {
                    const uint8_t *xt = x + (size_t)(t0 + j) * xrow;
                    acc[j] = gmk_arm_kstep(F, acc[j], &u, (const gmk_act_q8_k *)xt + b);
                }
            }
            for (int j = 0; j < T; j++)
                y[(t0 + j) * ldy + r] = acc[j];
        }
    }
}

/* ------------------------------------------------------ 4-row panels (P4) */

/* Panel block p of F as 8 vectors, w[g] = 4 bytes of each row: elements
 * 4g .. 4g+3 (q4_0: still + 8, q5_0 + 16: its mask g holds the 5th bits
 * of vector g, bit 4r+i for byte 4r+i); returns the 4 rows' scales. */
GMK_AI float32x4_t gmk_arm_panel_block(int F, const uint8_t *p, int8x16_t w[8])
{
    const uint8_t *qs = p + gmk_panel_qs_at(F, GMK_ARM_R);
    if (F == GMK_DTYPE_Q8_0) {
        for (int g = 0; g < 8; g++)
            w[g] = vld1q_s8((const int8_t *)qs + 16 * g);
    } else {
        for (int k = 0; k < 4; k++) {
            uint8x16_t u = vld1q_u8(qs + 16 * k);
            w[k] = vreinterpretq_s8_u8(vandq_u8(u, vdupq_n_u8(0x0f)));
            w[k + 4] = vreinterpretq_s8_u8(vshrq_n_u8(u, 4));
        }
    }
    if (F == GMK_DTYPE_Q5_0) { /* 8 masks of 16 bits: one load */
        uint8x16_t h = vld1q_u8(p + gmk_panel_qh_at(F, GMK_ARM_R));
        for (int g = 0; g < 8; g++)
            w[g] = gmk_arm_add_5th(vreinterpretq_u8_s8(w[g]), h, gmk_arm_spread(2 * g));
    }
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

#ifndef __ARM_FEATURE_DOTPROD
/* Rows' products with 4 bytes of x (lane L of xv) added into a01 (rows 0, 1)
 * and a23, two int16 products per int32 lane. */
#define GMK_ARM_MULL(a01, a23, w, xv, L)                                                     \
    do {                                                                                     \
        int8x16_t xd_ = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(xv), L));  \
        a01 = vpadalq_s16(a01, vmull_s8(vget_low_s8(w), vget_low_s8(xd_)));                  \
        a23 = vpadalq_s16(a23, vmull_high_s8(w, xd_));                                       \
    } while (0)
/* The same for the 16 bytes of xv against w[0..3], one lane each. */
#define GMK_ARM_MULL4(a01, a23, w, xv)                                                       \
    do {                                                                                     \
        GMK_ARM_MULL(a01, a23, (w)[0], xv, 0);                                               \
        GMK_ARM_MULL(a01, a23, (w)[1], xv, 1);                                               \
        GMK_ARM_MULL(a01, a23, (w)[2], xv, 2);                                               \
        GMK_ARM_MULL(a01, a23, (w)[3], xv, 3);                                               \
    } while (0)
#endif

/* a + the 4 rows' dots with 16 bytes x: w[g] against elements 4g .. 4g+3. */
GMK_AI int32x4_t gmk_arm_panel_dot16(int32x4_t a, const int8x16_t w[4], int8x16_t x)
{
#ifdef __ARM_FEATURE_DOTPROD
    a = vdotq_laneq_s32(a, w[0], x, 0);
    a = vdotq_laneq_s32(a, w[1], x, 1);
    a = vdotq_laneq_s32(a, w[2], x, 2);
    return vdotq_laneq_s32(a, w[3], x, 3);
#else
    int32x4_t a01 = vdupq_n_s32(0), a23 = vdupq_n_s32(0);
    GMK_ARM_MULL4(a01, a23, w, x);
    return vaddq_s32(a, vpaddq_s32(a01, a23));
#endif
}

/* The 4 rows' dots with one token's 32 bytes x. */
GMK_AI int32x4_t gmk_arm_panel_dot(const int8x16_t w[8], const int8_t *x)
{
    const int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
#ifdef __ARM_FEATURE_DOTPROD
    return gmk_arm_panel_dot16(gmk_arm_panel_dot16(vdupq_n_s32(0), w, x0), w + 4, x1);
#else
    int32x4_t a01 = vdupq_n_s32(0), a23 = vdupq_n_s32(0);
    GMK_ARM_MULL4(a01, a23, w, x0);
    GMK_ARM_MULL4(a01, a23, w + 4, x1);
    return vpaddq_s32(a01, a23); /* lanes 0+1: row 0, 2+3: row 1, ... */
#endif
}

#ifdef __ARM_FEATURE_MATMUL_INT8
/* The panel vectors regrouped for smmla: z[2m] = rows 0, 1 and z[2m+1] =
 * rows 2, 3, 8 bytes each, of elements 8m .. 8m+7 (two 4-byte groups
 * zipped by 32-bit lanes). */
GMK_AI void gmk_arm_pair_rows(const int8x16_t w[8], int8x16_t z[8])
{
    for (int m = 0; m < 4; m++) {
        int32x4_t u = vreinterpretq_s32_s8(w[2 * m]), v = vreinterpretq_s32_s8(w[2 * m + 1]);
        z[2 * m] = vreinterpretq_s8_s32(vzip1q_s32(u, v));
        z[2 * m + 1] = vreinterpretq_s8_s32(vzip2q_s32(u, v));
    }
}

/* The 4 rows' dots with two tokens' 32 bytes xa, xb: each smmla takes 2
 * rows × 8 bytes against 2 tokens × 8 bytes, giving (r0 t0, r0 t1, r1 t0,
 * r1 t1). */
GMK_AI void gmk_arm_panel_dot2(const int8x16_t z[8], const int8_t *xa, const int8_t *xb,
                               int32x4_t *qa, int32x4_t *qb)
{
    int32x4_t c01 = vdupq_n_s32(0), c23 = vdupq_n_s32(0);
    for (int h = 0; h < 2; h++) {
        int64x2_t a = vreinterpretq_s64_s8(vld1q_s8(xa + 16 * h));
        int64x2_t b = vreinterpretq_s64_s8(vld1q_s8(xb + 16 * h));
        int8x16_t lo = vreinterpretq_s8_s64(vzip1q_s64(a, b)); /* elements 16h .. +7 */
        int8x16_t hi = vreinterpretq_s8_s64(vzip2q_s64(a, b)); /* 16h+8 .. +15 */
        c01 = vmmlaq_s32(c01, z[4 * h], lo);
        c23 = vmmlaq_s32(c23, z[4 * h + 1], lo);
        c01 = vmmlaq_s32(c01, z[4 * h + 2], hi);
        c23 = vmmlaq_s32(c23, z[4 * h + 3], hi);
    }
    *qa = vuzp1q_s32(c01, c23);
    *qb = vuzp2q_s32(c01, c23);
}
#endif

/* Panel block pb of F against tokens 0..T-1 of x (block b of each). */
GMK_AI void gmk_arm_p4_block(int F, int T, float32x4_t *acc, const uint8_t *pb,
                             const uint8_t *x, size_t xrow, int64_t b)
{
    int8x16_t w[8];
    const float32x4_t dw = gmk_arm_panel_block(F, pb, w);
    const int off = gmk_arm_off(F);
    int j = 0;
#ifdef __ARM_FEATURE_MATMUL_INT8
    if (T >= 2) { /* prefill: token pairs through smmla, an odd one through sdot */
        int8x16_t z[8];
        gmk_arm_pair_rows(w, z);
        for (; j + 1 < T; j += 2) {
            const gmk_act_q8_0 *a = gmk_arm_act(x, xrow, j, b), *c = gmk_arm_act(x, xrow, j + 1, b);
            int32x4_t qa, qc;
            gmk_arm_panel_dot2(z, a->qs, c->qs, &qa, &qc);
            acc[j] = gmk_arm_step4(acc[j], qa, a, off, dw);
            acc[j + 1] = gmk_arm_step4(acc[j + 1], qc, c, off, dw);
        }
    }
#endif
    for (; j < T; j++) {
        const gmk_act_q8_0 *a = gmk_arm_act(x, xrow, j, b);
        acc[j] = gmk_arm_step4(acc[j], gmk_arm_panel_dot(w, a->qs), a, off, dw);
    }
}

/* The T tokens' sums of panel p into y: rows outside [r0, r1) are
 * computed but not stored (another thread owns them). */
GMK_AI void gmk_arm_p4_store(int T, float *restrict y, int64_t ldy, const float32x4_t *acc,
                             int64_t p, int64_t r0, int64_t r1)
{
    for (int j = 0; j < T; j++) {
        float o[GMK_ARM_R];
        vst1q_f32(o, acc[j]);
        for (int i = 0; i < GMK_ARM_R; i++)
            if (p + i >= r0 && p + i < r1)
                y[j * ldy + p + i] = o[i];
    }
}

/* One panel of 4 rows (at pw) × T tokens of a b32 F. */
GMK_AI void gmk_arm_p4_tile(int F, int T, float *restrict y, int64_t ldy, const uint8_t *pw,
                            int64_t p, const uint8_t *x, size_t xrow, int64_t r0, int64_t r1,
                            int64_t nb)
{
    const size_t pbb = GMK_ARM_R * gmk_dtype_block_bytes(F);
    float32x4_t acc[GMK_ARM_T];
    for (int j = 0; j < T; j++)
        acc[j] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++)
        gmk_arm_p4_block(F, T, acc, pw + (size_t)b * pbb, x, xrow, b);
    gmk_arm_p4_store(T, y, ldy, acc, p, r0, r1);
}

/* ---------------------------------------------- k-quants in 4-row panels */

/*
 * A k-quant panel block (gmk_layout.h's k-quant parts with R = 4) unpacked
 * once per token tile: w[v] = 4 bytes of each row, elements 4v .. 4v+3 of
 * the block (q4_k 0..15, q5_k 0..31, q6_k with its −32 taken out here,
 * −32..31: one subtraction per vector and tile, where the file's rows
 * subtract 32·Σx per group and token; the integer sums are exact either
 * way), sc[j] the rows' scales
 * of sub-block j (32 elements; q6_k group j of 16), mn[j] their minimums
 * (q4_k, q5_k), d and dmin the rows' f16 scales.
 */
typedef struct gmk_arm_p4k {
    int8x16_t w[64];
    int32x4_t sc[16];
    int16x4_t mn[8];
    float32x4_t d, dmin;
} gmk_arm_p4k;

/* Four u8 lanes of v from lane 4k on, widened to int32. */
GMK_AI int32x4_t gmk_arm_u8x4(uint8x16_t v, int k)
{
    uint16x8_t h = k < 2 ? vmovl_u8(vget_low_u8(v)) : vmovl_high_u8(v);
    return vreinterpretq_s32_u32(k % 2 ? vmovl_high_u16(h) : vmovl_u16(vget_low_u16(h)));
}

/* q4_k / q5_k (five) panel block p: parts d, dmin (4R bytes), the 6-bit
 * scales (12 pieces of R bytes: byte k of row r at 4k + r), q5_k's qh (8
 * vectors), qs (32 vectors).  Vector i of qs is bytes 4i .. 4i+3 of each
 * row's qs: chunk c = i/8 at l = 4(i%8), low nibbles elements 64c + l..,
 * high 64c + 32 + l..; qh vector i%8 holds their 5th bits (2c, 2c+1). */
GMK_AI void gmk_arm_p4k_q45(gmk_arm_p4k *u, int five, const uint8_t *p)
{
    u->d = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
    u->dmin = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p + 8)));
    /* gmk_scale_min_k4 on every row at once: s0 holds bytes 0..3 of the
     * rows, s1 4..7, s2 8..11 */
    const uint8x16_t s0 = vld1q_u8(p + 16), s1 = vld1q_u8(p + 32), s2 = vld1q_u8(p + 48);
    const uint8x16_t m63 = vdupq_n_u8(63), m15 = vdupq_n_u8(15);
    const uint8x16_t sc[2] = {vandq_u8(s0, m63),
                              vorrq_u8(vandq_u8(s2, m15), vshlq_n_u8(vshrq_n_u8(s0, 6), 4))};
    const uint8x16_t mn[2] = {vandq_u8(s1, m63),
                              vorrq_u8(vshrq_n_u8(s2, 4), vshlq_n_u8(vshrq_n_u8(s1, 6), 4))};
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++) {
            u->sc[4 * h + k] = gmk_arm_u8x4(sc[h], k);
            uint16x8_t m = vmovl_u8(k < 2 ? vget_low_u8(mn[h]) : vget_high_u8(mn[h]));
            u->mn[4 * h + k] = vreinterpret_s16_u16(k % 2 ? vget_high_u16(m) : vget_low_u16(m));
        }
    const uint8_t *qh = p + 64, *qs = p + 64 + 128 * five;
    for (int i = 0; i < 32; i++) {
        const int c = i / 8, m = i % 8;
        uint8x16_t n[2];
        gmk_arm_nibbles(vld1q_u8(qs + 16 * i), five, five ? vld1q_u8(qh + 16 * m) : vdupq_n_u8(0),
                        c, n);
        u->w[16 * c + m] = vreinterpretq_s8_u8(n[0]);
        u->w[16 * c + 8 + m] = vreinterpretq_s8_u8(n[1]);
    }
}

/* q6_k panel block p: parts d (4R bytes), the int8 scales (16 pieces of R
 * bytes), qh (16 vectors), ql (32 vectors).  In half n, ql vectors 16n + m
 * and 16n + 8 + m (m < 8) hold the low nibbles of elements 128n + 4m.. and
 * 128n + 32 + 4m.. and the high nibbles of 128n + 64 + 4m.. and 128n + 96 +
 * 4m..; qh vector 8n + m their top two bits, 2k and 2k+1 for element 32k. */
GMK_AI void gmk_arm_p4k_q6(gmk_arm_p4k *u, const uint8_t *p)
{
    u->d = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
    for (int k = 0; k < 4; k++) {
        const int8x16_t s = vld1q_s8((const int8_t *)p + 8 + 16 * k);
        const int16x8_t s16[2] = {vmovl_s8(vget_low_s8(s)), vmovl_high_s8(s)};
        for (int h = 0; h < 2; h++) {
            u->sc[4 * k + 2 * h] = vmovl_s16(vget_low_s16(s16[h]));
            u->sc[4 * k + 2 * h + 1] = vmovl_high_s16(s16[h]);
        }
    }
    const uint8_t *qh = p + 72, *ql = p + 72 + 256;
    const int8x16_t off = vdupq_n_s8(32);
    for (int n = 0; n < 2; n++)
        for (int m = 0; m < 8; m++) {
            uint8x16_t v[4];
            gmk_arm_six(vld1q_u8(ql + 16 * (16 * n + m)), vld1q_u8(ql + 16 * (16 * n + 8 + m)),
                        vld1q_u8(qh + 16 * (8 * n + m)), v);
            for (int k = 0; k < 4; k++)
                u->w[32 * n + 8 * k + m] = vsubq_s8(vreinterpretq_s8_u8(v[k]), off);
        }
}

/* One token's step on an unpacked panel block, the arithmetic of
 * gmk_arm_kstep by lane: isum = Σ_j sc_j·dot_j and msum = Σ_j mn_j·Σx_j
 * exact, then acc = fma(isum, d·dx, acc), acc = fma(−msum, dmin·dx, acc)
 * for q4_k / q5_k. */
GMK_AI float32x4_t gmk_arm_p4k_step(int F, float32x4_t acc, const gmk_arm_p4k *u,
                                    const gmk_act_q8_k *a)
{
    int32x4_t t = vdupq_n_s32(0);
    if (F == GMK_DTYPE_Q6_K) {
        for (int g = 0; g < 16; g++) /* groups of 16 */
            t = vmlaq_s32(t, gmk_arm_panel_dot16(vdupq_n_s32(0), u->w + 4 * g,
                                                 vld1q_s8(a->qs + 16 * g)), u->sc[g]);
        return vfmaq_f32(acc, vcvtq_f32_s32(t), vmulq_n_f32(u->d, a->d));
    }
    int32x4_t m = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) { /* sub-blocks of 32 */
        t = vmlaq_s32(t, gmk_arm_panel_dot(u->w + 8 * j, a->qs + 32 * j), u->sc[j]);
        m = vmlal_n_s16(m, u->mn[j], (int16_t)(a->bsums[2 * j] + a->bsums[2 * j + 1]));
    }
    acc = vfmaq_f32(acc, vcvtq_f32_s32(t), vmulq_n_f32(u->d, a->d));
    return vfmaq_f32(acc, vnegq_f32(vcvtq_f32_s32(m)), vmulq_n_f32(u->dmin, a->d));
}

/* One panel of 4 rows (at pw) × T tokens of a k-quant F, each panel block
 * unpacked once; rows outside [r0, r1) are computed but not stored. */
GMK_AI void gmk_arm_p4k_tile(int F, int T, float *restrict y, int64_t ldy, const uint8_t *pw,
                             int64_t p, const uint8_t *x, size_t xrow, int64_t r0, int64_t r1,
                             int64_t nb)
{
    const size_t pbb = GMK_ARM_R * gmk_dtype_block_bytes(F);
    float32x4_t acc[GMK_ARM_T];
    gmk_arm_p4k u;
    for (int j = 0; j < T; j++)
        acc[j] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        if (F == GMK_DTYPE_Q6_K)
            gmk_arm_p4k_q6(&u, pw + (size_t)b * pbb);
        else
            gmk_arm_p4k_q45(&u, F == GMK_DTYPE_Q5_K, pw + (size_t)b * pbb);
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
            acc[j] = gmk_arm_p4k_step(F, acc[j], &u, a);
        }
    }
    gmk_arm_p4_store(T, y, ldy, acc, p, r0, r1);
}

/* The tile of the b32 formats or of the k-quants. */
GMK_AI void gmk_arm_p4_any(int F, int T, float *restrict y, int64_t ldy, const uint8_t *pw,
                           int64_t p, const uint8_t *x, size_t xrow, int64_t r0, int64_t r1,
                           int64_t nb)
{
    if (gmk_dtype_block(F) == GMK_ARM_QKK)
        gmk_arm_p4k_tile(F, T, y, ldy, pw, p, x, xrow, r0, r1, nb);
    else
        gmk_arm_p4_tile(F, T, y, ldy, pw, p, x, xrow, r0, r1, nb);
}

/* Rows [r0, r1) of F in P4 panels, GMK_ARM_T tokens per tile (the token
 * count a constant in each inlined copy, so the accumulators stay in
 * registers). */
static inline void gmk_arm_p4(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                              const uint8_t *restrict x, size_t xrow, int n_tok, int64_t r0,
                              int64_t r1, int64_t nb)
{
    GMK_NO_CONTRACT
    const size_t row = (size_t)nb * gmk_dtype_block_bytes(F);
    for (int64_t p = r0 / GMK_ARM_R * GMK_ARM_R; p < r1; p += GMK_ARM_R) {
        const uint8_t *pw = W + (size_t)p * row;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_ARM_T) {
            const uint8_t *xt = x + (size_t)t0 * xrow;
            float *yt = y + t0 * ldy;
            switch (n_tok - t0 < GMK_ARM_T ? n_tok - t0 : GMK_ARM_T) {
            case 1: gmk_arm_p4_any(F, 1, yt, ldy, pw, p, xt, xrow, r0, r1, nb); break;
            case 2: gmk_arm_p4_any(F, 2, yt, ldy, pw, p, xt, xrow, r0, r1, nb); break;
            case 3: gmk_arm_p4_any(F, 3, yt, ldy, pw, p, xt, xrow, r0, r1, nb); break;
            default: gmk_arm_p4_any(F, 4, yt, ldy, pw, p, xt, xrow, r0, r1, nb); break;
            }
        }
    }
}

/* ------------------------------------------------------------- dispatch */

/* Runs the int8 kernel for (dtype, layout, fmt), the dtype a constant in
 * each call so that its kernel is specialized; 0 if there is none. */
static inline int gmk_arm_int8(float *restrict y, int64_t ldy, const uint8_t *restrict w,
                               int dtype, int layout, const uint8_t *restrict x, int fmt,
                               size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t n_in)
{
    const int64_t nb = n_in / gmk_dtype_block(dtype);
#define GMK_ARM_ARGS y, ldy, w, x, xrow, n_tok, r0, r1, nb
    if (fmt == GMK_ACT_Q8_0 && layout == GMK_LAYOUT_P4) {
        switch (dtype) {
        case GMK_DTYPE_Q4_0: gmk_arm_p4(GMK_DTYPE_Q4_0, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q5_0: gmk_arm_p4(GMK_DTYPE_Q5_0, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q8_0: gmk_arm_p4(GMK_DTYPE_Q8_0, GMK_ARM_ARGS); return 1;
        default: return 0;
        }
    }
    if (fmt == GMK_ACT_Q8_0 && layout == GMK_LAYOUT_PACKED) {
        switch (dtype) {
        case GMK_DTYPE_Q4_0: gmk_arm_rows(GMK_DTYPE_Q4_0, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q5_0: gmk_arm_rows(GMK_DTYPE_Q5_0, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q8_0: gmk_arm_rows(GMK_DTYPE_Q8_0, GMK_ARM_ARGS); return 1;
        default: return 0;
        }
    }
    if (fmt == GMK_ACT_Q8_K && layout == GMK_LAYOUT_P4) {
        switch (dtype) {
        case GMK_DTYPE_Q4_K: gmk_arm_p4(GMK_DTYPE_Q4_K, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q5_K: gmk_arm_p4(GMK_DTYPE_Q5_K, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q6_K: gmk_arm_p4(GMK_DTYPE_Q6_K, GMK_ARM_ARGS); return 1;
        default: return 0;
        }
    }
    if (fmt == GMK_ACT_Q8_K && layout == GMK_LAYOUT_PACKED) {
        switch (dtype) {
        case GMK_DTYPE_Q4_K: gmk_arm_rows_k(GMK_DTYPE_Q4_K, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q5_K: gmk_arm_rows_k(GMK_DTYPE_Q5_K, GMK_ARM_ARGS); return 1;
        case GMK_DTYPE_Q6_K: gmk_arm_rows_k(GMK_DTYPE_Q6_K, GMK_ARM_ARGS); return 1;
        default: return 0;
        }
    }
#undef GMK_ARM_ARGS
    return 0;
}

/* gmk_generic.h's gmk_int8_matmul_rows around the kernels above: q4_0,
 * q5_0 and q8_0 with Q8_0 rows and q4_k, q5_k, q6_k with Q8_K rows (file's
 * rows or P4) take the int8 kernels; f32 rows the reference. */
static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int wdtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    gmk_int8_matmul_rows(gmk_arm_int8, y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
}

#endif /* GMK_ARM_H */
