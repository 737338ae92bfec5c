/*
 * test_cross.c — the kernel headers of the targets of other architectures
 * (runtime/include/gmk_arm.h, gmk_rvv.h, gmk_wasm.h).
 *
 * test_cross_kernels compiles tests/cross/kernels.c with the flags the
 * compiler uses for each Arm, RISC-V and WebAssembly target (its own
 * configuration of the target, so the kernels see the same -march) and
 * runs it under the target's emulator (qemu-aarch64 -cpu max; qemu-riscv64
 * with 256-bit and again with 128-bit vectors, the kernels being
 * vector-length agnostic; Node.js's WASI; natively on a host of that
 * architecture); that program checks the
 * kernels against the reference and exits non-zero naming the first
 * failure.  Without the cross sysroot or qemu the case says so and passes,
 * unless GMC_E2E_CROSS=required (scripts/test), as the e2e cross cases do.
 * test_p4_layout checks the Arm 4-row panel layout on any host.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gmk_layout.h"
#include "testutil.h"
#include "toolchain.h"

/* Each target, and the vector length its emulator is given instead of the
 * target's own (NULL: the target's). */
typedef struct cross_kernels {
    const char *target, *vlen;
} cross_kernels;

static const cross_kernels kernel_targets[] = {
    {"aarch64", NULL}, {"aarch64-dotprod", NULL}, {"aarch64-i8mm", NULL},
    {"riscv64", NULL}, {"riscv64", "vlen=128"}, {"wasm32", NULL},
};
#define N_KERNEL_TARGETS (int)(sizeof kernel_targets / sizeof kernel_targets[0])

/* The configuration of target here; false (gmc_test_cross_runs) if its
 * programs cannot run here or GMC_E2E_CROSS=skip. */
static bool cross_config(const char *name, gmc_target_config *c)
{
    char why[256] = "";
    bool ok = gmc_test_configure(name, c, why, sizeof why, NULL);
    if (ok && c->runs != GMC_RUNS_NO)
        return gmc_test_cross_runs("cross", name, NULL);
    return gmc_test_cross_runs("cross", name, ok ? "no emulator on PATH" : why);
}

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_cross_kernels)
{
    const cross_kernels *k = &kernel_targets[_i];
    gmc_target_config c;
    if (!cross_config(k->target, &c))
        return;
    char emu[300];
    const char *at = k->vlen && c.runs == GMC_RUNS_EMULATED ? strstr(c.emulator, "vlen=") : NULL;
    if (k->vlen && !at)
        return; /* natively, or an emulator without a vector length: run once */
    if (at) {
        const char *end = at + strcspn(at, ", ");
        snprintf(emu, sizeof emu, "%.*s%s%s", (int)(at - c.emulator), c.emulator, k->vlen, end);
    } else {
        snprintf(emu, sizeof emu, "%s", c.emulator);
    }
    const char *tag = k->vlen ? k->vlen : "default";
    char flags[4096], inc[4200], src[4200], exe[4200], out[4200], cmd[16384];
    gmc_toolchain_flags(&c, flags, sizeof flags);
    snprintf(inc, sizeof inc, "%s", gmc_test_src("runtime/include"));
    snprintf(src, sizeof src, "%s", gmc_test_src("tests/cross/kernels.c"));
    snprintf(exe, sizeof exe, "%s/cross-kernels-%s", gmc_test_tmpdir(), k->target);
    snprintf(out, sizeof out, "%s/cross-kernels-%s-%s.txt", gmc_test_tmpdir(), k->target, tag);
    snprintf(cmd, sizeof cmd, "'%s' %s -I'%s' '%s' -o '%s' %s -lm > '%s' 2>&1",
             gmc_toolchain_clang(), flags, inc, src, exe,
             c.target->link_libs ? c.target->link_libs : "", out);
    int rc = run_cmd(cmd);
    char *log = gmc_test_read_file(out, NULL);
    ck_assert_msg(rc == 0, "%s: cannot compile tests/cross/kernels.c: %s", k->target,
                  log ? log : "");
    free(log);
    snprintf(cmd, sizeof cmd, "timeout 120 %s%s'%s' > '%s' 2>&1", emu, emu[0] ? " " : "", exe,
             out);
    rc = run_cmd(cmd);
    log = gmc_test_read_file(out, NULL);
    ck_assert_msg(rc == 0 && log && strstr(log, "checks passed"), "%s (%s): %s", k->target, tag,
                  log ? log : "no output");
    fprintf(stderr, "cross: %s (%s): %s", k->target, tag, log);
    free(log);
}
END_TEST

/* P4 panels: every block of every row comes back as it was (rows a
 * multiple of 4 and not), padding rows are zero, q8_0 keeps its signed
 * bytes (as P8 does; P16 stores them + 128), the k-quants' weight bytes start
 * their part 4 bytes a row, and the size is whole panels. */
START_TEST(test_p4_layout)
{
    const int dtypes[] = {GMK_DTYPE_Q4_0, GMK_DTYPE_Q5_0, GMK_DTYPE_Q8_0,
                          GMK_DTYPE_Q4_K, GMK_DTYPE_Q5_K, GMK_DTYPE_Q6_K};
    const int F = dtypes[_i];
    const size_t bb = gmk_dtype_block_bytes(F);
    const int64_t n_in = 3 * gmk_dtype_block(F), nb = 3;
    uint8_t *w = malloc(9 * 3 * bb), *p = malloc(12 * 3 * bb), blk[256];
    ck_assert(w && p && bb <= sizeof blk);
    for (int64_t n_out = 1; n_out <= 9; n_out += 4) {
        for (size_t i = 0; i < 9 * 3 * bb; i++)
            w[i] = (uint8_t)(i * 37 + 11);
        uint64_t bytes = gmk_layout_bytes(GMK_LAYOUT_P4, F, n_out, n_in);
        ck_assert_uint_eq(bytes, (uint64_t)((n_out + 3) / 4 * 4 * nb) * bb);
        gmk_layout_pack(p, w, GMK_LAYOUT_P4, F, n_out, n_in);
        for (int64_t r = 0; r < (n_out + 3) / 4 * 4; r++)
            for (int64_t b = 0; b < nb; b++) {
                gmk_weight_block(blk, p, F | GMK_LAYOUT_P4, r, n_in, b);
                if (r < n_out) {
                    ck_assert_msg(memcmp(blk, w + (size_t)(r * nb + b) * bb, bb) == 0,
                                  "dtype %d row %lld block %lld", F, (long long)r,
                                  (long long)b);
                } else {
                    for (size_t i = 0; i < bb; i++)
                        ck_assert_uint_eq(blk[i], 0);
                }
            }
        /* row 0's first 4 quant bytes start the panel's quants, as stored in
         * the file (q8_0 signed, as in P8; P16 adds 128); a k-quant's qs (q6_k:
         * ql) is its last part */
        const int b32 = gmk_dtype_block(F) == 32;
        const size_t qs = F == GMK_DTYPE_Q8_0   ? 2
                          : F == GMK_DTYPE_Q6_K ? 0
                                                : bb - (b32 ? 16 : 128);
        const size_t at = b32 ? gmk_panel_qs_at(F, 4) : 4 * (bb - 128);
        ck_assert_int_eq(memcmp(p + at, w + qs, 4), 0);
        if (n_out > 1) /* row 1 */
            ck_assert_int_eq(memcmp(p + at + 4, w + nb * bb + qs, 4), 0);
    }
    free(w);
    free(p);
    ck_assert_str_eq(gmk_layout_name(GMK_LAYOUT_P4), "p4");
    /* q8_0's bytes: signed in P8 as in P4 (AVX2 takes |w| and x with w's
     * sign), + 128 in P16 (vpdpbusd's u8 operand) */
    uint8_t w8[34] = {0}, p8[8 * 34], p16[16 * 34];
    w8[2] = 0x85;
    gmk_layout_pack(p8, w8, GMK_LAYOUT_P8, GMK_DTYPE_Q8_0, 1, 32);
    ck_assert_uint_eq(p8[gmk_panel_qs_at(GMK_DTYPE_Q8_0, 8)], 0x85);
    gmk_layout_pack(p16, w8, GMK_LAYOUT_P16, GMK_DTYPE_Q8_0, 1, 32);
    ck_assert_uint_eq(p16[gmk_panel_qs_at(GMK_DTYPE_Q8_0, 16)], 0x05);
}
END_TEST

Suite *cross_suite(void)
{
    Suite *s = suite_create("cross");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_cross_kernels, 0, N_KERNEL_TARGETS);
    tcase_add_loop_test(tc, test_p4_layout, 0, 6);
    suite_add_tcase(s, tc);
    return s;
}
