/*
 * x86_isa.c — gmk_x86.h compiled for one x86-64 level (see x86_isa.h).
 *
 * CMake builds this file four times with the -march flags of the x86-64,
 * -v3, -v4 and -v4-vnni targets and -DGMK_ISA_NAME=base|v3|v4|vnni; the
 * wrappers keep the kernels' own code paths (chosen by the ISA macros).
 */
#include "gmk_x86.h"
#include "x86_isa.h"

#ifndef GMK_ISA_NAME
#error "build with -DGMK_ISA_NAME=<level>"
#endif
#define GMK_ISA_CAT2(a, b) a##b
#define GMK_ISA_CAT(a, b) GMK_ISA_CAT2(a, b)
#define GMK_ISA_STR2(a) #a
#define GMK_ISA_STR(a) GMK_ISA_STR2(a)

static void isa_act_row(void *xq, int fmt, const float *x, int64_t n)
{
    gmk_act_row(xq, fmt, x, n);
}

static void isa_matmul_rows(float *y, int64_t ldy, const void *W, int wdtype, const void *xq,
                            int fmt, int n_tok, int64_t r0, int64_t r1, int64_t n_in)
{
    gmk_matmul_rows(y, ldy, W, wdtype, xq, fmt, n_tok, r0, r1, n_in);
}

static void isa_attention(float *o, const float *q, const void *kc, const void *vc, int kv_dtype,
                          int n_tok, int32_t pos0, int n_heads, int n_kv, int hd, int window,
                          int n_slots, float softcap, int ith, int nth)
{
    gmk_attention(o, q, kc, vc, kv_dtype, n_tok, pos0, n_heads, n_kv, hd, window, n_slots,
                  softcap, ith, nth);
}

const gmc_x86_isa GMK_ISA_CAT(gmk_isa_, GMK_ISA_NAME) = {
    .name = GMK_ISA_STR(GMK_ISA_NAME),
    .layouts = 0
#ifdef GMK_X86_HAVE_P16
               | 1 << (GMK_LAYOUT_P16 >> GMK_LAYOUT_SHIFT)
#endif
#ifdef GMK_X86_HAVE_P8
               | 1 << (GMK_LAYOUT_P8 >> GMK_LAYOUT_SHIFT)
#endif
    ,
    .act_row = isa_act_row,
    .matmul_rows = isa_matmul_rows,
    .attention = isa_attention,
};
