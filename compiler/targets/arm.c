/*
 * arm.c — the AArch64 targets: Armv8-A with NEON (every 64-bit Arm core),
 * Armv8.2 with the int8 dot product (Cortex-A76, Raspberry Pi 5, most
 * phones) and Armv8.6 with i8mm and BF16 (Graviton 3, recent phones).
 *
 * All three share the kernel header gmk_arm.h, which picks smull, sdot or
 * smmla from the ISA macros the -march flags below turn on.  q4_0, q5_0
 * and q8_0 weights take int8 activations (Q8_0 blocks), q4_k, q5_k and
 * q6_k Q8_K blocks, and all six are repacked at load into 4-row panels
 * (GMK_LAYOUT_P4); every other weight type keeps f32 activations
 * and the portable kernels (gmk_generic.h), which clang vectorizes for the
 * -march (docs/targets.md).  On an AArch64 host they
 * build natively; on any other host they cross-compile against Debian's
 * arm64 sysroot and run under qemu-aarch64 (gmc_configure_linux).
 */
#include "gmk_act.h"
#include "gmk_layout.h"
#include "target.h"

/* The panels hold q4_0, q5_0, q8_0 and the k-quants (gmk_layout_supports). */
static int layout_p4(int dtype)
{
    return gmk_layout_supports(GMK_LAYOUT_P4, dtype) ? GMK_LAYOUT_P4 : GMK_LAYOUT_PACKED;
}

#define ARM_PROFILE(var, nm, rank_, desc, march_, req)                                      \
    const gmc_target var = {.name = nm, .description = desc,                               \
                            .kernel_header = "gmk_arm.h", .rank = rank_,                   \
                            .act_fmt = gmk_act_fmt_arm, .weight_layout = layout_p4,        \
                            .configure = gmc_configure_linux,                              \
                            .march = march_, .extra_flags = "", .requires = req,           \
                            .arch = "aarch64", .cross_triple = "aarch64-linux-gnu",        \
                            /* -cpu max: every feature these targets use */                \
                            .emulator = "qemu-aarch64 -cpu max"}

ARM_PROFILE(gmc_target_aarch64, "aarch64", 2,
            "Armv8-A + NEON, int8 activations (smull)", "armv8-a", "neon");
ARM_PROFILE(gmc_target_aarch64_dotprod, "aarch64-dotprod", 3,
            "Armv8.2-A + dotprod (Cortex-A76, Raspberry Pi 5), int8 activations (sdot)",
            "armv8.2-a+dotprod", "neon,dotprod");
ARM_PROFILE(gmc_target_aarch64_i8mm, "aarch64-i8mm", 4,
            "Armv8.6-A + i8mm + BF16 (Graviton 3), int8 activations (smmla, sdot)",
            "armv8.6-a+i8mm+bf16", "neon,dotprod,i8mm,bf16");
