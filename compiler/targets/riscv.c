/*
 * riscv.c — RISC-V 64 with the vector extension 1.0 (RVV), vector-length
 * agnostic: the portable kernels (gmk_generic.h) vectorized by clang for
 * rv64gcv, which runs on any vector length.  Built natively on a RISC-V
 * host, else cross-compiled against Debian's riscv64 sysroot and run under
 * qemu-riscv64 with 256-bit vectors (the tests also run it at 128 bits);
 * gmc_configure_linux.  RVV kernels of their own are still to be written.
 */
#include "target.h"

const gmc_target gmc_target_riscv64 = {
    .name = "riscv64",
    .description = "RV64GC + RVV 1.0, portable kernels vectorized by clang (any VLEN)",
    .kernel_header = "gmk_generic.h",
    .rank = 2,
    .act_fmt = gmc_act_fmt_f32,
    .configure = gmc_configure_linux,
    .march = "rv64gcv",
    .extra_flags = "",
    .requires = "v",
    .arch = "riscv64",
    .cross_triple = "riscv64-linux-gnu",
    .emulator = "qemu-riscv64 -cpu rv64,v=true,vlen=256,elen=64,vext_spec=v1.0",
};
