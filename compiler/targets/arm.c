/*
 * arm.c — the AArch64 targets: Armv8-A with NEON (every 64-bit Arm core),
 * Armv8.2 with the int8 dot product (Cortex-A76, Raspberry Pi 5, most
 * phones) and Armv8.6 with i8mm and BF16 (Graviton 3, recent phones).
 *
 * For now all three compile the portable kernels (gmk_generic.h, f32
 * activations), which clang vectorizes for the -march given here: the
 * targets exist so that a build for each device is made and checked from
 * one YAML; the sdot/smmla kernels and their weight layout are still to be
 * written (docs/targets.md).  On an AArch64 host they build natively; on
 * any other host they cross-compile against Debian's arm64 sysroot and run
 * under qemu-aarch64 (gmc_configure_linux).
 */
#include "target.h"

#define ARM_PROFILE(var, nm, rank_, desc, march_, req)                                      \
    const gmc_target var = {.name = nm, .description = desc,                               \
                            .kernel_header = "gmk_generic.h", .rank = rank_,               \
                            .act_fmt = gmc_act_fmt_f32, .configure = gmc_configure_linux,  \
                            .march = march_, .extra_flags = "", .requires = req,           \
                            .arch = "aarch64", .cross_triple = "aarch64-linux-gnu",        \
                            /* -cpu max: every feature these targets use */                \
                            .emulator = "qemu-aarch64 -cpu max"}

ARM_PROFILE(gmc_target_aarch64, "aarch64", 2,
            "Armv8-A + NEON, portable kernels vectorized by clang", "armv8-a", "neon");
ARM_PROFILE(gmc_target_aarch64_dotprod, "aarch64-dotprod", 3,
            "Armv8.2-A + dotprod (Cortex-A76, Raspberry Pi 5), portable kernels",
            "armv8.2-a+dotprod", "neon,dotprod");
ARM_PROFILE(gmc_target_aarch64_i8mm, "aarch64-i8mm", 4,
            "Armv8.6-A + i8mm + BF16 (Graviton 3), portable kernels", "armv8.6-a+i8mm+bf16",
            "neon,dotprod,i8mm,bf16");
