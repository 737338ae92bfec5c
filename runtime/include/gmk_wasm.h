/*
 * gmk_wasm.h — matmul kernels of the wasm32 target (WebAssembly SIMD128).
 *
 * The two primitives of gmk_generic.h with int8 activations, on the plan of
 * gmk_rvv.h: gmk_act_row quantizes f32 rows to Q8_0 / Q8_K blocks by the
 * x86 targets' rule (the same integers on every ISA), and gmk_matmul_rows
 * multiplies q4_0, q5_0 and q8_0 weights in the file's rows by Q8_0 rows
 * and q4_k, q5_k, q6_k by Q8_K rows.  A weight block is unpacked once per
 * tile of GMK_WASM_T tokens into signed bytes (the format's offset taken
 * out), then per token and 16 bytes two widening multiplies
 * (i16x8.extmul, int8 × int8 → int16: |w·x| ≤ 128·127) and two pairwise
 * widening adds (→ int32) give the exact dot.
 *
 * The float steps are the x86 kernels' (acc = fma(float(q)·dx, dw, acc);
 * the k-quants' fma(isum, d·dx, acc), fma(−msum, dmin·dx, acc)), but
 * WebAssembly has no fused multiply-add: gmk_wasm_fma4 rounds a·b + c once,
 * in double with the last bit rounded to odd, so the steps give the bits of
 * x86-64-v3, AArch64 and RISC-V.  Tiles are 4 rows × 4 tokens, the rows'
 * float steps in the lanes of one vector.  The shared code around the matmuls
 * (norms, attention, RoPE) is not contracted here as clang contracts it on
 * those targets, so a wasm32 build equals an x86-64-v3 build compiled with
 * -ffp-contract=off (gemmac compile --fp-contract=off), bit for bit
 * (docs/targets.md).  Every other weight type keeps f32 activations
 * (gmk_act_fmt_wasm) and the portable kernels, which clang vectorizes for
 * SIMD128.
 */
#ifndef GMK_WASM_H
#define GMK_WASM_H

#define GMK_HAVE_TARGET_MATMUL 1
#include "gmk_generic.h"

#include <wasm_simd128.h>

#define GMK_WASM_T 4   /* tokens per tile: a weight block unpacked once for them */
#define GMK_WASM_R 4   /* rows per tile: their float steps in the lanes of one vector */

/* ------------------------------------------------------------ activations */

/* The sum of the 4 int32 lanes of v. */
GMK_AI int32_t gmk_wasm_hsum(v128_t v)
{
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
    return wasm_i32x4_extract_lane(v, 0);
}

/* Σ of 16 signed bytes. */
GMK_AI int32_t gmk_wasm_sum16(v128_t b)
{
    return gmk_wasm_hsum(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extadd_pairwise_i8x16(b)));
}

/*
 * n floats (a multiple of 16) to int8 at q by the rule of gmk_x86.h's
 * gmk_act_row: d = amax/127 with NaN left out of the amax (pmax keeps its
 * first operand when the second is NaN), v = x·(1/d) (0 where d is 0), NaN →
 * 0, clamped to ±127, truncated after adding ±0.5.  s[j] = Σ q[16j ..
 * 16j+16).  Returns d.
 */
static inline float gmk_wasm_quant(int8_t *restrict q, int32_t *restrict s,
                                   const float *restrict x, int n)
{
    GMK_NO_CONTRACT
    v128_t m = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < n; i += 4)
        m = wasm_f32x4_pmax(m, wasm_f32x4_abs(wasm_v128_load(x + i)));
    float amax = 0.0f;
    for (int l = 0; l < 4; l++) {
        float a = l == 0   ? wasm_f32x4_extract_lane(m, 0)
                  : l == 1 ? wasm_f32x4_extract_lane(m, 1)
                  : l == 2 ? wasm_f32x4_extract_lane(m, 2)
                           : wasm_f32x4_extract_lane(m, 3);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    const v128_t vid = wasm_f32x4_splat(id), lim = wasm_f32x4_splat(127.0f);
    const v128_t half = wasm_f32x4_splat(0.5f), zero = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < n; i += 16) {
        v128_t r[4];
        for (int k = 0; k < 4; k++) {
            v128_t v = wasm_f32x4_mul(wasm_v128_load(x + i + 4 * k), vid);
            v = wasm_v128_and(v, wasm_f32x4_eq(v, v)); /* NaN → 0 */
            v = wasm_f32x4_min(wasm_f32x4_max(v, wasm_f32x4_neg(lim)), lim);
            v = wasm_f32x4_add(v, wasm_v128_bitselect(half, wasm_f32x4_neg(half),
                                                      wasm_f32x4_ge(v, zero)));
            r[k] = wasm_i32x4_trunc_sat_f32x4(v); /* toward zero */
        }
        v128_t b = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(r[0], r[1]),
                                           wasm_i16x8_narrow_i32x4(r[2], r[3]));
        wasm_v128_store(q + i, b);
        s[i / 16] = gmk_wasm_sum16(b);
    }
    return d;
}

/* Converts one f32 row of n elements into fmt at xq (gmk_act_row_q16). */
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    gmk_act_row_q16(gmk_wasm_quant, xq, fmt, x, n);
}

/* --------------------------------------------------------- the block step */

/*
 * p + c in two lanes of double (p = a·b, exact in double: 24 + 24 bits)
 * rounded to odd: s = p + c rounded to nearest and its error e recovered
 * exactly (TwoSum); where e is not 0 and s's last bit is even, s moves one
 * unit toward the exact sum.  Rounding that to float rounds a·b + c once,
 * as the fma instruction of the other ISAs does (Boldo and Melquiond,
 * rounding to odd: double has the two bits over 2·24 that the proof
 * needs).
 */
GMK_AI v128_t gmk_wasm_fma_odd(v128_t p, v128_t c)
{
    const v128_t s = wasm_f64x2_add(p, c), bp = wasm_f64x2_sub(s, c);
    const v128_t e =
        wasm_f64x2_add(wasm_f64x2_sub(p, bp), wasm_f64x2_sub(c, wasm_f64x2_sub(s, bp)));
    const v128_t one = wasm_i64x2_splat(1);
    v128_t fix = wasm_v128_and(wasm_f64x2_ne(e, wasm_f64x2_splat(0.0)),
                               wasm_i64x2_eq(wasm_v128_and(s, one), wasm_i64x2_splat(0)));
    /* +1 (away from 0) where e and s have one sign, else -1 */
    v128_t step = wasm_v128_or(one, wasm_i64x2_shr(wasm_v128_xor(s, e), 63));
    return wasm_i64x2_add(s, wasm_v128_and(step, fix));
}

/* fma(a, b, c) in four lanes of float: a·b + c rounded once. */
GMK_AI v128_t gmk_wasm_fma4(v128_t a, v128_t b, v128_t c)
{
    const v128_t ah = wasm_i32x4_shuffle(a, a, 2, 3, 0, 1);
    const v128_t bh = wasm_i32x4_shuffle(b, b, 2, 3, 0, 1);
    const v128_t ch = wasm_i32x4_shuffle(c, c, 2, 3, 0, 1);
    v128_t lo = gmk_wasm_fma_odd(wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(a),
                                                wasm_f64x2_promote_low_f32x4(b)),
                                 wasm_f64x2_promote_low_f32x4(c));
    v128_t hi = gmk_wasm_fma_odd(wasm_f64x2_mul(wasm_f64x2_promote_low_f32x4(ah),
                                                wasm_f64x2_promote_low_f32x4(bh)),
                                 wasm_f64x2_promote_low_f32x4(ch));
    return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi),
                              0, 1, 4, 5);
}

/* Lane r = the sum of the 4 int32 lanes of v[r]. */
GMK_AI v128_t gmk_wasm_hsum4(const v128_t v[4])
{
    v128_t a = wasm_i32x4_add(wasm_i32x4_shuffle(v[0], v[1], 0, 4, 2, 6),
                              wasm_i32x4_shuffle(v[0], v[1], 1, 5, 3, 7));
    v128_t b = wasm_i32x4_add(wasm_i32x4_shuffle(v[2], v[3], 0, 4, 2, 6),
                              wasm_i32x4_shuffle(v[2], v[3], 1, 5, 3, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 1, 4, 5),
                          wasm_i32x4_shuffle(a, b, 2, 3, 6, 7));
}

/* Σ w·x over 16 bytes, in four int32 lanes. */
GMK_AI v128_t gmk_wasm_dot16(v128_t w, v128_t x)
{
    return wasm_i32x4_add(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(w, x)),
                          wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(w, x)));
}

/* ----------------------------------------------------- the file's rows */

/* The 32 weights of a q4_0 / q5_0 / q8_0 block at w as signed bytes, the
 * offset taken out: v[0] elements 0..15, v[1] 16..31 (q4_0: low and high
 * nibbles; q5_0: bit k of qh adds 16 to element k). */
GMK_AI void gmk_wasm_block(int F, const uint8_t *w, v128_t v[2])
{
    if (F == GMK_DTYPE_Q8_0) {
        v[0] = wasm_v128_load(w + 2);
        v[1] = wasm_v128_load(w + 18);
        return;
    }
    const int five = F == GMK_DTYPE_Q5_0;
    const v128_t qs = wasm_v128_load(w + 2 + 4 * five), low = wasm_i8x16_splat(0x0f);
    v128_t lo = wasm_v128_and(qs, low), hi = wasm_u8x16_shr(qs, 4);
    if (five) { /* byte k of a half takes bit k of its 16 bits of qh */
        const v128_t h = wasm_v128_load32_zero(w + 2);
        const v128_t bit = wasm_u64x2_splat(0x8040201008040201u), b4 = wasm_i8x16_splat(0x10);
        const v128_t i0 = wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        const v128_t i1 = wasm_i8x16_add(i0, wasm_i8x16_splat(2));
        v128_t s0 = wasm_v128_and(wasm_i8x16_swizzle(h, i0), bit);
        v128_t s1 = wasm_v128_and(wasm_i8x16_swizzle(h, i1), bit);
        lo = wasm_v128_or(lo, wasm_v128_andnot(b4, wasm_i8x16_eq(s0, wasm_i8x16_splat(0))));
        hi = wasm_v128_or(hi, wasm_v128_andnot(b4, wasm_i8x16_eq(s1, wasm_i8x16_splat(0))));
    }
    const v128_t off = wasm_i8x16_splat(five ? 16 : 8);
    v[0] = wasm_i8x16_sub(lo, off);
    v[1] = wasm_i8x16_sub(hi, off);
}

/* ------------------------------------------------- k-quants, file's rows */

/* One k-quant block unpacked for every token of a tile: q[g] = elements
 * 16g .. 16g+15 without offsets (q4_k 0..15, q5_k 0..31, q6_k 0..63); sc
 * the scale of each 32-element sub-block (q4_k, q5_k; mn its minimum) or
 * 16-element group (q6_k). */
typedef struct gmk_wasm_kblk {
    v128_t q[16];
    int32_t sc[16], mn[8];
    float d, dmin;
} gmk_wasm_kblk;

/* q4_k / q5_k (five) at b: chunk c is sub-blocks 2c (low nibbles of
 * qs[32c..32c+31]) and 2c+1 (high); q5_k's 5th bit of element 64c+l is bit
 * 2c of qh[l], of 64c+32+l bit 2c+1. */
GMK_AI void gmk_wasm_unpack_q45k(gmk_wasm_kblk *u, int five, const uint8_t *b)
{
    u->d = gmk_f16_to_f32(gmk_load_u16(b));
    u->dmin = gmk_f16_to_f32(gmk_load_u16(b + 2));
    for (int j = 0; j < 8; j++) {
        uint8_t s6, m6;
        gmk_scale_min_k4(j, b + 4, &s6, &m6);
        u->sc[j] = s6;
        u->mn[j] = m6;
    }
    const uint8_t *qh = b + 16, *qs = b + 16 + 32 * five;
    const v128_t low = wasm_i8x16_splat(0x0f), one = wasm_i8x16_splat(1);
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            v128_t v = wasm_v128_load(qs + 32 * c + 16 * h);
            v128_t lo = wasm_v128_and(v, low), hi = wasm_u8x16_shr(v, 4);
            if (five) {
                v128_t m = wasm_v128_load(qh + 16 * h);
                v128_t h0 = wasm_v128_and(wasm_u8x16_shr(m, (uint32_t)(2 * c)), one);
                v128_t h1 = wasm_v128_and(wasm_u8x16_shr(m, (uint32_t)(2 * c + 1)), one);
                lo = wasm_v128_or(lo, wasm_i8x16_shl(h0, 4));
                hi = wasm_v128_or(hi, wasm_i8x16_shl(h1, 4));
            }
            u->q[4 * c + h] = lo;
            u->q[4 * c + 2 + h] = hi;
        }
}

/* q6_k at b (layout as gmk_dequant_q6_k): in half n, element 128n + 32k +
 * l takes a nibble of ql[64n + 32(k&1) + l] (low for k < 2) and bits 2k,
 * 2k+1 of qh[32n + l]. */
GMK_AI void gmk_wasm_unpack_q6k(gmk_wasm_kblk *u, const uint8_t *b)
{
    u->d = gmk_f16_to_f32(gmk_load_u16(b + 208));
    for (int g = 0; g < 16; g++)
        u->sc[g] = (int8_t)b[192 + g];
    const v128_t low = wasm_i8x16_splat(0x0f), three = wasm_i8x16_splat(3);
    for (int n = 0; n < 2; n++)
        for (int h = 0; h < 2; h++) {
            v128_t hb = wasm_v128_load(b + 128 + 32 * n + 16 * h);
            for (int k = 0; k < 4; k++) {
                v128_t l = wasm_v128_load(b + 64 * n + 32 * (k & 1) + 16 * h);
                l = k < 2 ? wasm_v128_and(l, low) : wasm_u8x16_shr(l, 4);
                v128_t top = wasm_v128_and(wasm_u8x16_shr(hb, (uint32_t)(2 * k)), three);
                u->q[8 * n + 2 * k + h] = wasm_v128_or(l, wasm_i8x16_shl(top, 4));
            }
        }
}

/* One block of GMK_WASM_R rows (u[r]) for one token, rows in lanes: the
 * arithmetic of the x86 P8 k-quant kernels (and gmk_rvv_kstep): exact isum
 * = Σ sc·(Σ q·x − 32·bsum for q6_k) and msum = Σ_j mn_j·Σx_j, then acc =
 * fma(isum, d·dx, acc), acc = fma(−msum, dmin·dx, acc) for q4_k / q5_k. */
GMK_AI v128_t gmk_wasm_kstep(int F, v128_t acc, const gmk_wasm_kblk *u, v128_t d, v128_t dmin,
                             const gmk_act_q8_k *a)
{
    GMK_NO_CONTRACT
    v128_t t[GMK_WASM_R];
    int32_t o[GMK_WASM_R] = {0}; /* q6_k: Σ sc·bsum; q4_k, q5_k: msum */
    for (int r = 0; r < GMK_WASM_R; r++) {
        t[r] = wasm_i32x4_splat(0);
        if (F == GMK_DTYPE_Q6_K) {
            for (int g = 0; g < 16; g++) {
                v128_t p = gmk_wasm_dot16(u[r].q[g], wasm_v128_load(a->qs + 16 * g));
                t[r] = wasm_i32x4_add(t[r], wasm_i32x4_mul(p, wasm_i32x4_splat(u[r].sc[g])));
                o[r] += u[r].sc[g] * a->bsums[g];
            }
            continue;
        }
        for (int j = 0; j < 8; j++) {
            v128_t p = wasm_i32x4_add(
                gmk_wasm_dot16(u[r].q[2 * j], wasm_v128_load(a->qs + 32 * j)),
                gmk_wasm_dot16(u[r].q[2 * j + 1], wasm_v128_load(a->qs + 32 * j + 16)));
            t[r] = wasm_i32x4_add(t[r], wasm_i32x4_mul(p, wasm_i32x4_splat(u[r].sc[j])));
            o[r] += u[r].mn[j] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
        }
    }
    v128_t isum = gmk_wasm_hsum4(t), ov = wasm_i32x4_make(o[0], o[1], o[2], o[3]);
    const v128_t dx = wasm_f32x4_splat(a->d);
    if (F == GMK_DTYPE_Q6_K) {
        isum = wasm_i32x4_sub(isum, wasm_i32x4_shl(ov, 5));
        return gmk_wasm_fma4(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(d, dx), acc);
    }
    acc = gmk_wasm_fma4(wasm_f32x4_convert_i32x4(isum), wasm_f32x4_mul(d, dx), acc);
    return gmk_wasm_fma4(wasm_f32x4_neg(wasm_f32x4_convert_i32x4(ov)), wasm_f32x4_mul(dmin, dx),
                         acc);
}

/* The f16 at p of each row's block (p[r]) as four f32 lanes. */
GMK_AI v128_t gmk_wasm_f16x4(const uint8_t *const p[GMK_WASM_R], size_t at)
{
    return wasm_f32x4_make(gmk_f16_to_f32(gmk_load_u16(p[0] + at)),
                           gmk_f16_to_f32(gmk_load_u16(p[1] + at)),
                           gmk_f16_to_f32(gmk_load_u16(p[2] + at)),
                           gmk_f16_to_f32(gmk_load_u16(p[3] + at)));
}

/* Block b of GMK_WASM_R rows (at w[r]) against tokens 0..T-1 of x, rows in
 * the lanes of acc[j]: a b32 block as 32 signed bytes per row, then per
 * token acc = fma(float(q)·dx, dw, acc) on the rows' exact dots; a k-quant
 * block as gmk_wasm_kblk per row, then gmk_wasm_kstep per token. */
GMK_AI void gmk_wasm_block4(int F, int T, v128_t *acc, const uint8_t *const w[GMK_WASM_R],
                            const uint8_t *x, size_t xrow, int64_t b)
{
    GMK_NO_CONTRACT
    if (gmk_dtype_block(F) == 256) {
        gmk_wasm_kblk u[GMK_WASM_R];
        for (int r = 0; r < GMK_WASM_R; r++) {
            if (F == GMK_DTYPE_Q6_K)
                gmk_wasm_unpack_q6k(&u[r], w[r]);
            else
                gmk_wasm_unpack_q45k(&u[r], F == GMK_DTYPE_Q5_K, w[r]);
        }
        const v128_t d = gmk_wasm_f16x4(w, F == GMK_DTYPE_Q6_K ? 208 : 0);
        const v128_t dmin = F == GMK_DTYPE_Q6_K ? d : gmk_wasm_f16x4(w, 2);
        for (int j = 0; j < T; j++)
            acc[j] = gmk_wasm_kstep(F, acc[j], u, d, dmin,
                                    (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b);
        return;
    }
    v128_t v[GMK_WASM_R][2];
    for (int r = 0; r < GMK_WASM_R; r++)
        gmk_wasm_block(F, w[r], v[r]);
    const v128_t dw = gmk_wasm_f16x4(w, 0);
    for (int j = 0; j < T; j++) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(x + (size_t)j * xrow) + b;
        const v128_t x0 = wasm_v128_load(a->qs), x1 = wasm_v128_load(a->qs + 16);
        v128_t p[GMK_WASM_R];
        for (int r = 0; r < GMK_WASM_R; r++)
            p[r] = wasm_i32x4_add(gmk_wasm_dot16(v[r][0], x0), gmk_wasm_dot16(v[r][1], x1));
        const v128_t q = wasm_f32x4_convert_i32x4(gmk_wasm_hsum4(p));
        acc[j] = gmk_wasm_fma4(wasm_f32x4_mul(q, wasm_f32x4_splat(a->d)), dw, acc[j]);
    }
}

/* Rows [r0, r1) of F in the file's order, GMK_WASM_R rows × GMK_WASM_T
 * tokens a tile, each block unpacked once per tile (a tile past r1 repeats
 * row r0 of the tile in the lanes it does not store: every lane's
 * arithmetic is its own). */
GMK_AI void gmk_wasm_rows(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                          const uint8_t *restrict x, size_t xrow, int n_tok, int64_t r0,
                          int64_t r1, int64_t nb)
{
    const size_t bb = gmk_dtype_block_bytes(F), row = (size_t)nb * bb;
    for (int64_t r = r0; r < r1; r += GMK_WASM_R) {
        const int R = r1 - r < GMK_WASM_R ? (int)(r1 - r) : GMK_WASM_R;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_WASM_T) {
            const int T = n_tok - t0 < GMK_WASM_T ? n_tok - t0 : GMK_WASM_T;
            const uint8_t *xt = x + (size_t)t0 * xrow;
            v128_t acc[GMK_WASM_T];
            for (int j = 0; j < T; j++)
                acc[j] = wasm_f32x4_splat(0.0f);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *w[GMK_WASM_R];
                for (int i = 0; i < GMK_WASM_R; i++)
                    w[i] = W + (size_t)(r + (i < R ? i : 0)) * row + (size_t)b * bb;
                gmk_wasm_block4(F, T, acc, w, xt, xrow, b);
            }
            for (int j = 0; j < T; j++) {
                float o[GMK_WASM_R];
                wasm_v128_store(o, acc[j]);
                for (int i = 0; i < R; i++)
                    y[(t0 + j) * ldy + r + i] = o[i];
            }
        }
    }
}

GMK_INT8_ROWS_KERNELS(gmk_wasm_int8, gmk_wasm_rows, gmk_act_fmt_wasm)

/* gmk_generic.h's gmk_int8_matmul_rows around the kernels above: the six
 * types in the file's rows with their int8 rows take them; f32 rows the
 * reference. */
static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int wdtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    gmk_int8_matmul_rows(gmk_wasm_int8, y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
}

#endif /* GMK_WASM_H */
