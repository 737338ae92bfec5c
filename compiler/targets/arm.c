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
 * any other host they cross-compile with clang-19 and lld-19 against
 * Debian's arm64 sysroot and run under qemu-aarch64 where it is installed
 * (scripts/setup installs both).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "target.h"

#define ARM_TRIPLE "aarch64-linux-gnu"
#define ARM_SYSROOT "/usr/" ARM_TRIPLE
#define ARM_EMULATOR "qemu-aarch64"

static bool configure_arm(const gmc_target *t, const gmc_host *h, gmc_target_config *c,
                          char *why, int why_len)
{
    memset(c, 0, sizeof *c);
    c->target = t;
    char miss[64] = "";
    if (strcmp(h->arch, "aarch64") == 0) {
        snprintf(c->triple, sizeof c->triple, "%s", h->triple);
        c->runs = gmc_host_missing(t->requires, h, miss, sizeof miss) ? GMC_RUNS_NO
                                                                       : GMC_RUNS_NATIVE;
    } else {
        /* crt1.o from libc6-dev-arm64-cross, crtbeginS.o from libgcc-12-dev-arm64-cross */
        if (access(ARM_SYSROOT "/lib/crt1.o", R_OK) != 0 ||
            access("/usr/lib/gcc-cross/" ARM_TRIPLE, R_OK) != 0) {
            snprintf(why, (size_t)why_len,
                     "no arm64 cross sysroot (apt-get install libc6-dev-arm64-cross "
                     "libgcc-12-dev-arm64-cross lld-19; scripts/setup does)");
            return false;
        }
        snprintf(c->triple, sizeof c->triple, "%s", ARM_TRIPLE);
        c->cross = true;
    }
    if (c->runs == GMC_RUNS_NO && gmc_on_path(ARM_EMULATOR)) {
        c->runs = GMC_RUNS_EMULATED; /* -cpu max: every feature these targets use */
        snprintf(c->emulator, sizeof c->emulator, "%s -cpu max -L %s", ARM_EMULATOR,
                 ARM_SYSROOT);
    }
    snprintf(c->cpu, sizeof c->cpu, "%s", t->march);
    snprintf(c->features, sizeof c->features, "%s", t->requires);
    gmc_target_add_flag(c, "-march=%s", t->march);
    gmc_target_add_flag(c, "--target=%s", c->triple);
    if (c->cross)
        gmc_target_add_flag(c, "-fuse-ld=lld");
    return true;
}

#define ARM_PROFILE(var, nm, rank_, desc, march_, req)                                      \
    const gmc_target var = {.name = nm, .description = desc,                               \
                            .kernel_header = "gmk_generic.h", .rank = rank_,               \
                            .act_fmt = gmc_act_fmt_f32, .configure = configure_arm,        \
                            .march = march_, .extra_flags = "", .requires = req}

ARM_PROFILE(gmc_target_aarch64, "aarch64", 2,
            "Armv8-A + NEON, portable kernels vectorized by clang", "armv8-a", "neon");
ARM_PROFILE(gmc_target_aarch64_dotprod, "aarch64-dotprod", 3,
            "Armv8.2-A + dotprod (Cortex-A76, Raspberry Pi 5), portable kernels",
            "armv8.2-a+dotprod", "neon,dotprod");
ARM_PROFILE(gmc_target_aarch64_i8mm, "aarch64-i8mm", 4,
            "Armv8.6-A + i8mm + BF16 (Graviton 3), portable kernels", "armv8.6-a+i8mm+bf16",
            "neon,dotprod,i8mm,bf16");
