/*
 * gmk_act.h — how a matmul's input activations are laid out for a weight type.
 *
 * A target's kernels may want a matmul's f32 input converted once before the
 * matmul runs: to int8 blocks with a scale (for integer dot products against
 * integer-quantized weights) or to bf16 pairs (for bf16 dot products).  The
 * compiler picks a format per (target, weight dtype), sizes the buffers with
 * gmk_act_row_bytes, and emits a conversion step; the kernels read the format
 * as a compile-time constant.  Shared by the compiler and every kernel header.
 */
#ifndef GMK_ACT_H
#define GMK_ACT_H

#include <stddef.h>
#include <stdint.h>

#include "gmk.h"

typedef enum gmk_act_fmt {
    GMK_ACT_F32 = 0,  /* plain f32: the generic target, f32/f16 weights */
    GMK_ACT_Q8_0 = 1, /* 32-element int8 blocks: weights q4_0 q4_1 q5_0 q5_1 q8_0 */
    GMK_ACT_Q8_K = 2, /* 256-element int8 blocks with 16-element sums: k-quants */
    GMK_ACT_BF16 = 3, /* bf16 pairs: bf16 weights on targets with bf16 dot products */
    GMK_ACT_COUNT
} gmk_act_fmt;

/* One block of a Q8_0 activation row: x[i] ≈ d · qs[i]; sum = Σ qs[i]
 * (lets kernels fold a weight offset, e.g. q4_0's -8, into one multiply). */
typedef struct gmk_act_q8_0 {
    float d;
    int32_t sum;
    int8_t qs[32];
} gmk_act_q8_0;

/* One block of a Q8_K activation row: x[i] ≈ d · qs[i]; bsums[j] = Σ of
 * qs[16j .. 16j+16) (k-quant minimums are per 16/32 elements). */
typedef struct gmk_act_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} gmk_act_q8_k;

/* Elements per block of fmt (1 for unblocked formats). */
static inline int64_t gmk_act_block(int fmt)
{
    switch (fmt) {
    case GMK_ACT_Q8_0: return 32;
    case GMK_ACT_Q8_K: return 256;
    case GMK_ACT_BF16: return 2;
    default: return 1;
    }
}

/* Bytes of one activation row of n elements in fmt, rounded up to 64 so that
 * rows stay cache-line aligned; 0 if n is not a multiple of the block. */
static inline size_t gmk_act_row_bytes(int fmt, int64_t n)
{
    int64_t blk = gmk_act_block(fmt);
    if (n <= 0 || n % blk != 0)
        return 0;
    size_t b;
    switch (fmt) {
    case GMK_ACT_Q8_0: b = (size_t)(n / 32) * sizeof(gmk_act_q8_0); break;
    case GMK_ACT_Q8_K: b = (size_t)(n / 256) * sizeof(gmk_act_q8_k); break;
    case GMK_ACT_BF16: b = (size_t)n * 2; break;
    case GMK_ACT_F32: b = (size_t)n * 4; break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63;
}

/* The integer format a target with int8 dot products uses for weights of
 * wdtype, or GMK_ACT_F32 when the weights are not integer-quantized. */
static inline int gmk_act_fmt_int8(int wdtype)
{
    switch (wdtype) {
    case GMK_DTYPE_Q4_0: case GMK_DTYPE_Q4_1: case GMK_DTYPE_Q5_0:
    case GMK_DTYPE_Q5_1: case GMK_DTYPE_Q8_0:
        return GMK_ACT_Q8_0;
    case GMK_DTYPE_Q4_K: case GMK_DTYPE_Q5_K: case GMK_DTYPE_Q6_K:
        return GMK_ACT_Q8_K;
    default:
        return GMK_ACT_F32;
    }
}

/* The format the AArch64 kernels (gmk_arm.h) read for weights of wdtype:
 * the integer one for the types they have int8 kernels for, else f32 (the
 * portable kernels).  compiler/targets/arm.c and the kernel tests
 * (tests/cross/kernels.c) read it here. */
static inline int gmk_act_fmt_arm(int wdtype)
{
    switch (wdtype) {
    case GMK_DTYPE_Q4_0: case GMK_DTYPE_Q5_0: case GMK_DTYPE_Q8_0:
    case GMK_DTYPE_Q4_K: case GMK_DTYPE_Q5_K: case GMK_DTYPE_Q6_K:
        return gmk_act_fmt_int8(wdtype);
    default:
        return GMK_ACT_F32;
    }
}

/* The format the riscv64 kernels (gmk_rvv.h) read for weights of wdtype:
 * the Arm kernels' choice, the same six types in int8 (file's rows).
 * compiler/targets/riscv.c and the kernel tests (tests/cross/kernels.c)
 * read it here. */
static inline int gmk_act_fmt_rvv(int wdtype)
{
    return gmk_act_fmt_arm(wdtype);
}

/* The format the wasm32 kernels (gmk_wasm.h) read: the same six types in
 * int8 (file's rows).  compiler/targets/wasm.c and the kernel tests read
 * it here. */
static inline int gmk_act_fmt_wasm(int wdtype)
{
    return gmk_act_fmt_arm(wdtype);
}

#endif /* GMK_ACT_H */
