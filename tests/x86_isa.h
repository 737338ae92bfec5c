/*
 * x86_isa.h — the x86 kernel primitives of one ISA level, as a table.
 *
 * tests/x86_isa.c is compiled once per x86-64 level (different -march flags
 * and GMK_ISA_NAME); each object exports gmk_isa_<name>, so that the x86
 * suite can run every level the CPU supports in one process and compare it
 * with the reference kernels.
 */
#ifndef GMC_X86_ISA_H
#define GMC_X86_ISA_H

#include <stdint.h>

typedef struct gmc_x86_isa {
    const char *name;
    int layouts; /* bit l: a kernel of its own for layout l << GMK_LAYOUT_SHIFT */
    void (*act_row)(void *xq, int fmt, const float *x, int64_t n);
    void (*matmul_rows)(float *y, int64_t ldy, const void *W, int wdtype, const void *xq, int fmt,
                        int n_tok, int64_t r0, int64_t r1, int64_t n_in);
    /* gmk_attention (gmk_generic.h) as this level compiles it */
    void (*attention)(float *o, const float *q, const void *kc, const void *vc, int kv_dtype,
                      int n_tok, int32_t pos0, int n_heads, int n_kv, int hd, int window,
                      int n_slots, float softcap, int ith, int nth);
} gmc_x86_isa;

extern const gmc_x86_isa gmk_isa_base, gmk_isa_v3, gmk_isa_v4, gmk_isa_vnni,
    gmk_isa_bf16;

#endif /* GMC_X86_ISA_H */
