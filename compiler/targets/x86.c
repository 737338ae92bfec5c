/*
 * x86.c — the x86-64 kernel sets: one profile per microarchitecture level
 * (x86-64 baseline SSE2, x86-64-v3 AVX2+FMA, x86-64-v4 AVX-512, AVX-512 with
 * VNNI as on Ice Lake, and with VNNI and BF16 as on Zen 4 and Sapphire
 * Rapids).  All share the kernel header gmk_x86.h, which picks its code
 * paths from the ISA macros the -march flags below turn on; they differ only
 * in data: flags, the features the host must have, the matmul input formats
 * (int8 blocks for integer-quantized weights, f32 rows for float weights)
 * and the weight layouts.
 */
#include <stdio.h>
#include <string.h>

#include "gmk_act.h"
#include "gmk_layout.h"
#include "target.h"

static int act_fmt_int8(int wdtype) { return gmk_act_fmt_int8(wdtype); }

/* AVX2 reads q4_0, q5_0, q8_0, the k-quants, f16 and bf16 in 8-row panels
 * (gmk_layout.h; kernel_bench's p8 cases against the packed ones,
 * docs/benchmarks.md), and so do the AVX-512 profiles where they have
 * nothing better: their packed 512-bit k-quant tiles ran at about half the
 * P8 kernels' speed (kernel_bench, Sapphire Rapids VM; x86-64-v4 has no
 * P16 kernels, the VNNI profiles read their k-quants, f16 and bf16 in P16
 * but their expert stacks in P8). */
static int layout_p8(int dtype)
{
    return gmk_layout_supports(GMK_LAYOUT_P8, dtype) ? GMK_LAYOUT_P8 : GMK_LAYOUT_PACKED;
}

/* AVX-512 VNNI reads the b32 formats, the k-quants, f16 and bf16 in
 * 16-row panels (gmk_layout.h; f16 prefill of the Gemma 1 2B shape 1.5 ×
 * llama.cpp in them, 0.84 × in P8, docs/benchmarks.md). */
static int layout_p16(int dtype)
{
    return gmk_layout_supports(GMK_LAYOUT_P16, dtype) ? GMK_LAYOUT_P16 : layout_p8(dtype);
}

/* P16 does not stack (gmk_layout_table: not run on experts), so a stack of
 * expert matrices asks for P8, which does, rather than staying packed: the
 * 26B-A4B's q4_0 experts packed ran pp512 at 24.0 t/s and tg16 at 6.61, in
 * P8 at 49.5 and 8.46 (2 threads, Sapphire Rapids VM; docs/gemma4.md). */
static int stack_p16(int dtype) { return layout_p8(dtype); }

static bool configure_x86(const gmc_target *t, const gmc_host *h, gmc_target_config *c,
                          char *why, int why_len)
{
    memset(c, 0, sizeof *c);
    c->target = t;
    if (strcmp(h->arch, "x86_64") != 0) {
        snprintf(why, (size_t)why_len, "host is %s, not x86_64", h->arch);
        return false;
    }
    /* every profile builds on any x86-64 host; it runs where the CPU has
     * its features (the program says which one is missing elsewhere) */
    char miss[64];
    bool lacks = gmc_host_missing(t->requires, h, miss, sizeof miss);
    if (lacks)
        snprintf(why, (size_t)why_len, "this CPU lacks %s", miss);
    snprintf(c->triple, sizeof c->triple, "%s", h->triple);
    snprintf(c->cpu, sizeof c->cpu, "%s", t->march);
    snprintf(c->features, sizeof c->features, "%s", t->requires);
    gmc_target_add_flag(c, "-march=%s", t->march);
    char extra[160];
    snprintf(extra, sizeof extra, "%s", t->extra_flags);
    for (char *f = strtok(extra, " "); f; f = strtok(NULL, " "))
        gmc_target_add_flag(c, "%s", f);
    /* no -fveclib: the kernels call no libm function in a loop (exp, tanh,
     * sin and cos are gmk_math.h's, the same bits as on other ISAs) */
    gmc_target_add_flag(c, "--target=%s", c->triple);
    c->runs = lacks ? GMC_RUNS_NO : GMC_RUNS_NATIVE;
    return true;
}

#define X86_PROFILE(var, nm, rank_, desc, fmt, layout, stack, march_, extra_, req)    \
    const gmc_target var = {.name = nm, .description = desc, .kernel_header = "gmk_x86.h",  \
                            .rank = rank_,                                               \
                            .act_fmt = fmt, .weight_layout = layout,                     \
                            .stack_layout = stack,                                       \
                            .configure = configure_x86, .march = march_,                 \
                            .extra_flags = extra_, .requires = req}

/* SSE2 has no u8 x s8 multiply: measured, its int8 path is slower than
 * dequantize + f32 dots, so the baseline keeps f32 activations. */
X86_PROFILE(gmc_target_x86_64, "x86-64", 2, "x86-64 baseline (SSE2), f32 activations",
            gmc_act_fmt_f32, NULL, NULL, "x86-64", "", "sse2");
X86_PROFILE(gmc_target_x86_64_v3, "x86-64-v3", 3,
            "AVX2 + FMA (Haswell, Zen 1-3), int8 activations", act_fmt_int8, layout_p8,
            NULL, "x86-64-v3", "", "avx2,fma,f16c,bmi2");
X86_PROFILE(gmc_target_x86_64_v4, "x86-64-v4", 4,
            "AVX-512 F/BW/VL/DQ (Skylake-X), int8 activations", act_fmt_int8, layout_p8,
            NULL, "x86-64-v4", "", "avx512f,avx512bw,avx512vl,avx512dq");
/* The two VNNI profiles let clang vectorize plain C loops (attention,
 * norms, GeGLU) 16 floats wide, as the kernels' intrinsics already are:
 * the same arithmetic in wider registers, so the same bits (270M pp512 at
 * one thread, x86-64-v4-bf16 on a Sapphire Rapids VM, three alternating
 * rounds: -1 to +6 %).  Kept off x86-64-v4, whose Skylake-X cores slow
 * their clock for zmm work.
 *
 * VNNI (and VBMI, which Cascade Lake lacks) without BF16: Ice Lake, Tiger
 * Lake, and virtual machines that hide BF16 from their guests (a Sapphire
 * Rapids VM measured: 270M Q4_K_M pp128 672 t/s here against 412 on
 * x86-64-v3 and 220 on x86-64-v4).  bf16 weights take f32 activations, as
 * on x86-64-v4. */
X86_PROFILE(gmc_target_x86_64_vnni, "x86-64-v4-vnni", 5,
            "AVX-512 + VNNI + VBMI (Ice Lake), int8 dot products",
            act_fmt_int8, layout_p16, stack_p16, "x86-64-v4",
            "-mavx512vnni -mavx512vbmi -mprefer-vector-width=512",
            "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi");
/* With BF16 too (Zen 4, Sapphire Rapids): the VNNI profile's data.  bf16
 * weights take f32 activations and the P16 f32 kernels here as well: the
 * vdpbf16ps kernel on rows of bf16 pairs (gmk_x86_mm_bf16bf16, bf16
 * activations, GMK_ACT_BF16) measured 2.8 times slower at prefill and 1.4
 * at decode on a Sapphire Rapids VM (Gemma 1 2B BF16, one thread: pp256
 * 13.4 against 37.3 t/s, tg16 2.56 against 3.63), where vdpbf16ps itself
 * runs at half the f32 FMA rate (117 against 235 GFLOPS); no profile
 * chooses it (docs/benchmarks.md). */
X86_PROFILE(gmc_target_x86_64_bf16, "x86-64-v4-bf16", 6,
            "AVX-512 + VNNI + BF16 (Zen 4, Sapphire Rapids), int8 dot products",
            act_fmt_int8, layout_p16, stack_p16, "x86-64-v4",
            "-mavx512vnni -mavx512bf16 -mavx512vbmi -mprefer-vector-width=512",
            "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx512vbmi");
