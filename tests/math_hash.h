/*
 * math_hash.h — one number for the bits gmk_math.h computes, shared by the
 * kernels suite (on the host) and tests/cross/kernels.c (on each Arm and
 * RISC-V target, under qemu): exp, tanh, sin and cos of every 4099th float, hashed.  The
 * functions promise the same bits on every ISA, so both must find
 * GMK_TEST_MATH_HASH; a change of arithmetic (an fma contracted, a
 * reordered polynomial) shows on any one machine.
 */
#ifndef GMK_TEST_MATH_HASH_H
#define GMK_TEST_MATH_HASH_H

#include <math.h>
#include <stdint.h>

#include "gmk_math.h"

/* Measured the same compiled for x86-64, x86-64-v3 and x86-64-v4, for
 * armv8.2-a (qemu-aarch64) and for rv64gcv (qemu-riscv64). */
#define GMK_TEST_MATH_HASH 0x7adec02873a4cfb9u

/* The inputs of the hash: every 4099th bit pattern (a million floats, every
 * sign and exponent, NaNs and infinities included). */
#define GMK_TEST_MATH_STRIDE 4099u
/* FNV-1a's offset basis: the hash before the first input. */
#define GMK_TEST_MATH_SEED 1469598103934665603u

/* FNV-1a over the 4 results of x, in a running hash h.  NaNs count as one
 * value: their payloads are the ISA's (RISC-V returns the canonical NaN
 * whatever the input's). */
static inline uint64_t gmk_test_math_step(uint64_t h, float x, float out[4])
{
    out[0] = gmk_expf(x);
    out[1] = gmk_tanhf(x);
    gmk_sincosf(x, &out[2], &out[3]);
    for (int k = 0; k < 4; k++)
        h = (h ^ (isnan(out[k]) ? 0x7fc00000u : gmk_f32_bits(out[k]))) * 1099511628211u;
    return h;
}

#endif
