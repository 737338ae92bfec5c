/*
 * gmk_rvv.h — matmul kernels of the riscv64 target (RVV 1.0, any vector
 * length).
 *
 * The two primitives of gmk_generic.h with int8 activations, on the plan of
 * gmk_arm.h: gmk_act_row quantizes f32 rows to Q8_0 / Q8_K blocks by the
 * x86 targets' rule (the same integers on every ISA), and gmk_matmul_rows
 * multiplies q4_0, q5_0 and q8_0 weights in the file's rows by Q8_0 rows.
 * A weight block is unpacked once per tile of GMK_RVV_T tokens into 32
 * signed bytes (the format's offset taken out: q4_0 − 8, q5_0 − 16), then
 * per token one widening multiply (vwmul, int8 × int8 → int16: |w·x| ≤
 * 128·127) and one widening sum (vwredsum → int32) give the block's exact
 * dot; the float step is the x86 kernels', acc = fma(float(q)·dx, dw, acc),
 * so any row cut and token count give the same bits as gmk_arm.h.  Vectors
 * of 32 bytes are two registers (LMUL 2) at the smallest VLEN RVV allows
 * (128 bits) and part of two at larger ones: vl is always 32, which is what
 * makes the code vector-length agnostic.  Every other weight type keeps f32
 * activations (gmk_act_fmt_rvv) and the portable kernels, which clang
 * vectorizes for rv64gcv.
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

/*
 * Converts one f32 row of n elements into fmt at xq (gmk_act_row_bytes(fmt,
 * n) bytes): Q8_0 blocks with sum = Σ qs, Q8_K blocks with bsums of 16 (as
 * gmk_x86.h), or an f32 copy.  n must be a multiple of gmk_act_block(fmt).
 */
static inline void gmk_act_row(void *restrict xq, int fmt, const float *restrict x, int64_t n)
{
    if (fmt == GMK_ACT_Q8_0) {
        gmk_act_q8_0 *b = (gmk_act_q8_0 *)xq;
        for (int64_t i = 0; i < n / GMK_RVV_QK; i++, b++) {
            int32_t s[2];
            b->d = gmk_rvv_quant(b->qs, s, x + i * GMK_RVV_QK, GMK_RVV_QK);
            b->sum = s[0] + s[1];
        }
    } else if (fmt == GMK_ACT_Q8_K) {
        gmk_act_q8_k *b = (gmk_act_q8_k *)xq;
        for (int64_t i = 0; i < n / 256; i++, b++) {
            int32_t s[16];
            b->d = gmk_rvv_quant(b->qs, s, x + i * 256, 256);
            for (int j = 0; j < 16; j++)
                b->bsums[j] = (int16_t)s[j];
        }
    } else if (fmt == GMK_ACT_F32) {
        memcpy(xq, x, (size_t)n * sizeof(float));
    }
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

/* Rows [r0, r1) of F in the file's order, tokens GMK_RVV_T at a time. */
GMK_AI void gmk_rvv_rows(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                        const uint8_t *restrict x, size_t xrow, int n_tok, int64_t r0,
                        int64_t r1, int64_t nb)
{
    GMK_NO_CONTRACT
    const size_t bb = gmk_dtype_block_bytes(F), vl = GMK_RVV_QK;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * (size_t)nb * bb;
        for (int t0 = 0; t0 < n_tok; t0 += GMK_RVV_T) {
            const int T = n_tok - t0 < GMK_RVV_T ? n_tok - t0 : GMK_RVV_T;
            float acc[GMK_RVV_T] = {0};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)b * bb;
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

/* Runs the int8 kernel for (dtype, layout, fmt), the dtype a constant in
 * each call so that its kernel is specialized; 0 if there is none. */
static inline int gmk_rvv_int8(float *restrict y, int64_t ldy, const uint8_t *restrict w,
                               int dtype, int layout, const uint8_t *restrict x, int fmt,
                               size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t n_in)
{
    if (fmt != GMK_ACT_Q8_0 || layout != GMK_LAYOUT_PACKED)
        return 0;
    const int64_t nb = n_in / GMK_RVV_QK;
#define GMK_RVV_ARGS y, ldy, w, x, xrow, n_tok, r0, r1, nb
    switch (dtype) {
    case GMK_DTYPE_Q4_0: gmk_rvv_rows(GMK_DTYPE_Q4_0, GMK_RVV_ARGS); return 1;
    case GMK_DTYPE_Q5_0: gmk_rvv_rows(GMK_DTYPE_Q5_0, GMK_RVV_ARGS); return 1;
    case GMK_DTYPE_Q8_0: gmk_rvv_rows(GMK_DTYPE_Q8_0, GMK_RVV_ARGS); return 1;
    default: return 0;
    }
#undef GMK_RVV_ARGS
}

/* gmk_generic.h's gmk_int8_matmul_rows around the kernels above: q4_0,
 * q5_0 and q8_0 in the file's rows with Q8_0 rows take them; f32 rows the
 * reference. */
static inline void gmk_matmul_rows(float *restrict y, int64_t ldy, const void *restrict W,
                                   int wdtype, const void *restrict xq, int fmt, int n_tok,
                                   int64_t r0, int64_t r1, int64_t n_in)
{
    gmk_int8_matmul_rows(gmk_rvv_int8, y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
}

#endif /* GMK_RVV_H */
