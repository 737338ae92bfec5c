/*
 * gmk_rvv.h — matmul kernels of the riscv64 target (RVV 1.0, any vector
 * length).
 *
 * The two primitives of gmk_generic.h with int8 activations, on the plan of
 * gmk_arm.h: gmk_act_row quantizes f32 rows to Q8_0 / Q8_K blocks by the
 * x86 targets' rule (the same integers on every ISA), and gmk_matmul_rows
 * multiplies q4_0, q5_0 and q8_0 weights in the file's rows by Q8_0 rows
 * and q4_k, q5_k, q6_k by Q8_K rows.
 * A weight block is unpacked once per tile of GMK_RVV_T tokens into 32
 * signed bytes (the format's offset taken out: q4_0 − 8, q5_0 − 16), then
 * per token one widening multiply (vwmul, int8 × int8 → int16: |w·x| ≤
 * 128·127) and one widening sum (vwredsum → int32) give the block's exact
 * dot; the float step is the x86 kernels', acc = fma(float(q)·dx, dw, acc),
 * so any row cut and token count give the same bits as gmk_arm.h.  Vectors
 * of 32 bytes are two registers (LMUL 2) at the smallest VLEN RVV allows
 * (128 bits) and part of two at larger ones: vl is always 32, which is what
 * makes the code vector-length agnostic.  A k-quant block is unpacked once
 * per tile into 256 bytes and its scales; per token, each 32-element
 * sub-block (q6_k: 16-element group) is one vwmul + vwredsum, and the
 * integer and float steps are those of gmk_arm_kstep.  Every other weight
 * type keeps f32 activations (gmk_act_fmt_rvv) and the portable kernels,
 * which clang vectorizes for rv64gcv.
 */
#ifndef GMK_RVV_H
#define GMK_RVV_H

#define GMK_HAVE_TARGET_MATMUL 1
#include "gmk_generic.h"

#include <riscv_vector.h>

#define GMK_RVV_QK 32 /* elements per b32 weight and Q8_0 activation block */
#define GMK_RVV_T 4   /* tokens per tile: a weight block unpacked once for them */

/* ------------------------------------------------------------ activations */

/*
 * n floats (a multiple of 32) to int8 at q by the rule of gmk_x86.h's
 * gmk_act_row: d = amax/127 with NaN left out of the amax (vfredmax
 * returns the number when one operand is NaN; starting from 0, a row of
 * NaNs gives 0), v = x·(1/d) (0 where d is 0), NaN → 0, clamped to ±127,
 * truncated after adding ±0.5.  s[j] = Σ q[16j .. 16j+16).  Returns d.
 */
static inline float gmk_rvv_quant(int8_t *restrict q, int32_t *restrict s,
                                  const float *restrict x, int n)
{
    GMK_NO_CONTRACT
    const size_t vl = 16; /* a group of 4 registers at the smallest VLEN */
    vfloat32m1_t m = __riscv_vfmv_s_f_f32m1(0.0f, 1);
    for (int i = 0; i < n; i += 16)
        m = __riscv_vfredmax_vs_f32m4_f32m1(
            __riscv_vfabs_v_f32m4(__riscv_vle32_v_f32m4(x + i, vl), vl), m, vl);
    const float d = __riscv_vfmv_f_s_f32m1_f32(m) / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    const vfloat32m4_t half = __riscv_vfmv_v_f_f32m4(0.5f, vl);
    for (int i = 0; i < n; i += 16) {
        vfloat32m4_t v = __riscv_vfmul_vf_f32m4(__riscv_vle32_v_f32m4(x + i, vl), id, vl);
        v = __riscv_vfmerge_vfm_f32m4(v, 0.0f, __riscv_vmfne_vv_f32m4_b8(v, v, vl), vl);
        v = __riscv_vfmin_vf_f32m4(__riscv_vfmax_vf_f32m4(v, -127.0f, vl), 127.0f, vl);
        v = __riscv_vfadd_vv_f32m4(v, __riscv_vfsgnj_vv_f32m4(half, v, vl), vl); /* v ± 0.5 */
        /* toward zero through frm (qemu 7.2 aborts translating vfcvt.rtz.x.f.v) */
        vint32m4_t r = __riscv_vfcvt_x_f_v_i32m4_rm(v, __RISCV_FRM_RTZ, vl);
        vint8m1_t b = __riscv_vncvt_x_x_w_i8m1(__riscv_vncvt_x_x_w_i16m2(r, vl), vl);
        __riscv_vse8_v_i8m1(q + i, b, vl);
        vint16m1_t z = __riscv_vmv_s_x_i16m1(0, 1);
        s[i / 16] = __riscv_vmv_x_s_i16m1_i16(__riscv_vwredsum_vs_i8m1_i16m1(b, z, vl));
    }
    return d;
}

/* Converts one f32 row of n elements into fmt at xq (gmk_act_row_q16). */
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    gmk_act_row_q16(gmk_rvv_quant, xq, fmt, x, n);
}

/* ----------------------------------------------------- the file's rows */

/* The 32 weights of a q4_0 / q5_0 / q8_0 block at w as signed bytes, the
 * offset taken out (q4_0: low nibbles are elements 0..15, high 16..31;
 * q5_0: bit k of qh adds 16 to element k). */
GMK_AI vint8m2_t gmk_rvv_block(int F, const uint8_t *w)
{
    const size_t vl = GMK_RVV_QK;
    if (F == GMK_DTYPE_Q8_0)
        return __riscv_vle8_v_i8m2((const int8_t *)w + 2, vl);
    const int five = F == GMK_DTYPE_Q5_0;
    vuint8m2_t qs = __riscv_vle8_v_u8m2(w + 2 + 4 * five, 16); /* elements 16.. undisturbed */
    vuint8m2_t lo = __riscv_vand_vx_u8m2(qs, 0x0f, 16);
    vuint8m2_t u = __riscv_vslideup_vx_u8m2(lo, __riscv_vsrl_vx_u8m2(qs, 4, 16), 16, vl);
    if (five) /* the mask register's bits are qh's, element k bit k */
        u = __riscv_vor_vx_u8m2_mu(__riscv_vlm_v_b4(w + 2, vl), u, u, 16, vl);
    return __riscv_vsub_vx_i8m2(__riscv_vreinterpret_v_u8m2_i8m2(u), five ? 16 : 8, vl);
}

/* ------------------------------------------------- k-quants, file's rows */

/* One k-quant block unpacked for every token of a tile: q[e] = element e
 * without offsets (q4_k 0..15, q5_k 0..31, q6_k 0..63); sc the scale of
 * each 32-element sub-block (q4_k, q5_k; mn its minimum) or 16-element
 * group (q6_k). */
typedef struct gmk_rvv_kblk {
    int8_t q[256];
    int32_t sc[16], mn[8];
    float d, dmin;
} gmk_rvv_kblk;

/* q4_k / q5_k (five) at b: chunk c is sub-blocks 2c (low nibbles of
 * qs[32c..32c+31]) and 2c+1 (high); q5_k's 5th bit of element 64c+l is bit
 * 2c of qh[l], of 64c+32+l bit 2c+1. */
GMK_AI void gmk_rvv_unpack_q45k(gmk_rvv_kblk *u, int five, const uint8_t *b)
{
    const size_t vl = 32;
    u->d = gmk_f16_to_f32(gmk_load_u16(b));
    u->dmin = gmk_f16_to_f32(gmk_load_u16(b + 2));
    for (int j = 0; j < 8; j++) {
        uint8_t s6, m6;
        gmk_scale_min_k4(j, b + 4, &s6, &m6);
        u->sc[j] = s6;
        u->mn[j] = m6;
    }
    const uint8_t *qh = b + 16, *qs = b + 16 + 32 * five;
    for (int c = 0; c < 4; c++) {
        vuint8m2_t v = __riscv_vle8_v_u8m2(qs + 32 * c, vl);
        vuint8m2_t lo = __riscv_vand_vx_u8m2(v, 0x0f, vl), hi = __riscv_vsrl_vx_u8m2(v, 4, vl);
        if (five) {
            vuint8m2_t h = __riscv_vle8_v_u8m2(qh, vl);
            vuint8m2_t h0 = __riscv_vand_vx_u8m2(__riscv_vsrl_vx_u8m2(h, 2 * c, vl), 1, vl);
            vuint8m2_t h1 = __riscv_vand_vx_u8m2(__riscv_vsrl_vx_u8m2(h, 2 * c + 1, vl), 1, vl);
            lo = __riscv_vor_vv_u8m2(lo, __riscv_vsll_vx_u8m2(h0, 4, vl), vl);
            hi = __riscv_vor_vv_u8m2(hi, __riscv_vsll_vx_u8m2(h1, 4, vl), vl);
        }
        __riscv_vse8_v_u8m2((uint8_t *)u->q + 64 * c, lo, vl);
        __riscv_vse8_v_u8m2((uint8_t *)u->q + 64 * c + 32, hi, vl);
    }
}

/* q6_k at b (layout as gmk_dequant_q6_k): in half n, element 128n + 32k +
 * l takes a nibble of ql[64n + 32(k&1) + l] (low for k < 2) and bits 2k,
 * 2k+1 of qh[32n + l]. */
GMK_AI void gmk_rvv_unpack_q6k(gmk_rvv_kblk *u, const uint8_t *b)
{
    const size_t vl = 32;
    u->d = gmk_f16_to_f32(gmk_load_u16(b + 208));
    for (int g = 0; g < 16; g++)
        u->sc[g] = (int8_t)b[192 + g];
    for (int n = 0; n < 2; n++) {
        vuint8m2_t h = __riscv_vle8_v_u8m2(b + 128 + 32 * n, vl);
        for (int k = 0; k < 4; k++) {
            vuint8m2_t l = __riscv_vle8_v_u8m2(b + 64 * n + 32 * (k & 1), vl);
            l = k < 2 ? __riscv_vand_vx_u8m2(l, 0x0f, vl) : __riscv_vsrl_vx_u8m2(l, 4, vl);
            vuint8m2_t hb = __riscv_vand_vx_u8m2(__riscv_vsrl_vx_u8m2(h, 2 * k, vl), 3, vl);
            l = __riscv_vor_vv_u8m2(l, __riscv_vsll_vx_u8m2(hb, 4, vl), vl);
            __riscv_vse8_v_u8m2((uint8_t *)u->q + 128 * n + 32 * k, l, vl);
        }
    }
}

/* Σ q·x over n ≤ 32 bytes, exact (vwmul to int16, vwredsum to int32). */
GMK_AI int32_t gmk_rvv_dot(const int8_t *q, const int8_t *x, size_t n)
{
    vint16m4_t p = __riscv_vwmul_vv_i16m4(__riscv_vle8_v_i8m2(q, n), __riscv_vle8_v_i8m2(x, n), n);
    vint32m1_t z = __riscv_vmv_s_x_i32m1(0, 1);
    return __riscv_vmv_x_s_i32m1_i32(__riscv_vwredsum_vs_i16m4_i32m1(p, z, n));
}

/* One block's contribution for one token, the arithmetic of the x86 P8
 * k-quant kernels (and gmk_arm_kstep): exact isum = Σ sc·(Σ q·x − 32·bsum
 * for q6_k) and msum = Σ_j mn_j·Σx_j, then acc = fma(isum, d·dx, acc),
 * acc = fma(−msum, dmin·dx, acc) for q4_k / q5_k. */
GMK_AI float gmk_rvv_kstep(int F, float acc, const gmk_rvv_kblk *u, const gmk_act_q8_k *a)
{
    GMK_NO_CONTRACT
    int32_t isum = 0;
    if (F == GMK_DTYPE_Q6_K) {
        for (int g = 0; g < 16; g++)
            isum += u->sc[g] * (gmk_rvv_dot(u->q + 16 * g, a->qs + 16 * g, 16) -
                                32 * a->bsums[g]);
        return __builtin_fmaf((float)isum, u->d * a->d, acc);
    }
    int32_t msum = 0;
    for (int j = 0; j < 8; j++) {
        isum += u->sc[j] * gmk_rvv_dot(u->q + 32 * j, a->qs + 32 * j, 32);
        msum += u->mn[j] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    acc = __builtin_fmaf((float)isum, u->d * a->d, acc);
    return __builtin_fmaf(-(float)msum, u->dmin * a->d, acc);
}

/* Rows [r0, r1) of F in the file's order, tokens GMK_RVV_T at a time, each
 * block unpacked once per tile: a b32 block into 32 signed bytes, then per
 * token acc = fma(float(q)·dx, dw, acc) on its exact dot; a k-quant block
 * as gmk_rvv_kblk, then gmk_rvv_kstep per token. */
GMK_AI void gmk_rvv_rows(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                         const uint8_t *restrict x, size_t xrow, int n_tok, int64_t r0,
                         int64_t r1, int64_t nb)
{
    GMK_NO_CONTRACT
    const size_t bb = gmk_dtype_block_bytes(F), vl = GMK_RVV_QK;
    const int kq = gmk_dtype_block(F) == 256;
    gmk_rvv_kblk u;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * (size_t)nb * bb;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_RVV_T) {
            const int T = n_tok - t0 < GMK_RVV_T ? n_tok - t0 : GMK_RVV_T;
            float acc[GMK_RVV_T] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)b * bb;
                if (kq) {
                    if (F == GMK_DTYPE_Q6_K)
                        gmk_rvv_unpack_q6k(&u, blk);
                    else
                        gmk_rvv_unpack_q45k(&u, F == GMK_DTYPE_Q5_K, blk);
                    for (int j = 0; j < T; j++) {
                        const uint8_t *xt = x + (size_t)(t0 + j) * xrow;
                        acc[j] = gmk_rvv_kstep(F, acc[j], &u, (const gmk_act_q8_k *)xt + b);
                    }
                    continue;
                }
                const vint8m2_t v = gmk_rvv_block(F, blk);
                const float dw = gmk_f16_to_f32(gmk_load_u16(blk));
                for (int j = 0; j < T; j++) {
                    const gmk_act_q8_0 *a =
                        (const gmk_act_q8_0 *)(x + (size_t)(t0 + j) * xrow) + b;
                    vint16m4_t p = __riscv_vwmul_vv_i16m4(v, __riscv_vle8_v_i8m2(a->qs, vl), vl);
                    vint32m1_t z = __riscv_vmv_s_x_i32m1(0, 1);
                    int32_t q =
                        __riscv_vmv_x_s_i32m1_i32(__riscv_vwredsum_vs_i16m4_i32m1(p, z, vl));
                    acc[j] = __builtin_fmaf((float)q * a->d, dw, acc[j]);
                }
            }
            for (int j = 0; j < T; j++)
                y[(t0 + j) * ldy + r] = acc[j];
        }
    }
}

GMK_INT8_ROWS_KERNELS(gmk_rvv_int8, gmk_rvv_rows, gmk_act_fmt_rvv)

/* gmk_generic.h's gmk_int8_matmul_rows around the kernels above: the six
 * types in the file's rows with their int8 rows take them; f32 rows the
 * reference. */
static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int wdtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    gmk_int8_matmul_rows(gmk_rvv_int8, y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
}

#endif /* GMK_RVV_H */
