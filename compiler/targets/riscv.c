/*
 * riscv.c — RISC-V 64 with the vector extension 1.0 (RVV), vector-length
 * agnostic: q4_0, q5_0 and q8_0 weights take int8 activations (Q8_0
 * blocks), q4_k, q5_k and q6_k Q8_K blocks, and the RVV kernels of
 * gmk_rvv.h (the file's rows); every other weight type keeps
 * f32 activations and the portable kernels (gmk_generic.h), which clang
 * vectorizes for rv64gcv.  Built natively on a RISC-V host, else
 * cross-compiled against Debian's riscv64 sysroot and run under
 * qemu-riscv64 with 256-bit vectors (the tests also run it at 128 bits);
 * gmc_configure_linux.
 */
#include "gmk_act.h"
#include "target.h"

const gmc_target gmc_target_riscv64 = {
    .name = "riscv64",
    .description = "RV64GC + RVV 1.0 (any VLEN), int8 activations (vwmul, vwredsum)",
    .kernel_header = "gmk_rvv.h",
    .rank = 2,
    .act_fmt = gmk_act_fmt_rvv,
    .configure = gmc_configure_linux,
    .march = "rv64gcv",
    .extra_flags = "",
    .requires = "v",
    .arch = "riscv64",
    .cross_triple = "riscv64-linux-gnu",
    .emulator = "qemu-riscv64 -cpu rv64,v=true,vlen=256,elen=64,vext_spec=v1.0",
};
