/*
 * tests/cross/kernels.c — the kernel header of a target of another
 * architecture against the reference: gmk_arm.h on AArch64, gmk_rvv.h on
 * RISC-V, gmk_wasm.h on WebAssembly.
 *
 * Not part of gemmac_tests: tests/test_cross.c compiles this file with the
 * flags the compiler uses for each such target and runs it under the
 * target's emulator (natively on a host of that architecture).  It exits 0
 * when every check passes, else 1 after naming the first failure:
 *  - gmk_act_row's Q8_0 and Q8_K blocks equal the rule of the x86 targets,
 *    written here in scalar C, bit for bit (ties, NaN, infinities, zeros);
 *  - q4_0, q5_0, q8_0, q4_k, q5_k and q6_k weights in the file's rows
 *    and, on Arm, in P4 panels; 1 to 9 tokens, rows
 *    cut at places that split panels: every output equals the block
 *    arithmetic of the int8 kernels written in scalar C, bit for bit (the
 *    reference itself where the target keeps f32 activations for the type,
 *    ACT_FMT), and all outputs of a weight type (one NMSE over its shapes:
 *    a 4-output product alone is too few for a stable figure) are within
 *    the x86 suite's bound (5e-4, uniform activations as there) of
 *    gmk_ref_matmul_rows on the f32 activations;
 *  - a weight without an int8 kernel: q4_1 handed Q8_0 rows (the fallback)
 *    and, on Arm, P4 weights with f32 rows (the reference, exact);
 *  - gmk_math.h's exp, tanh, sin and cos give the host's bits (the hash of
 *    tests/math_hash.h, which the kernels suite checks on the host);
 *  - on WebAssembly, gmk_wasm_fma4 rounds a·b + c once, bit for bit in
 *    every lane (against binary128, ref_fmaf): products that fall on a tie
 *    of float with a far smaller addend (where rounding a·b + c to double
 *    first would round the tie to even), and random ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__aarch64__)
#include "gmk_arm.h"
#define ACT_FMT gmk_act_fmt_arm
#define HAVE_P4 1
#if defined(__ARM_FEATURE_MATMUL_INT8)
#define ISA "aarch64 i8mm: smmla + sdot"
#elif defined(__ARM_FEATURE_DOTPROD)
#define ISA "aarch64 dotprod: sdot"
#else
#define ISA "aarch64 armv8-a: smull + sadalp"
#endif
#elif defined(__riscv)
#include "gmk_rvv.h"
#define ACT_FMT gmk_act_fmt_rvv
#define HAVE_P4 0
#define ISA "riscv64 rvv: vwmul + vwredsum"
#elif defined(__wasm__)
#include "gmk_wasm.h"
#define ACT_FMT gmk_act_fmt_wasm
#define HAVE_P4 0
#define ISA "wasm32 simd128: i16x8.extmul + exact fma"
#else
#error "tests/cross/kernels.c is for AArch64, RISC-V and WebAssembly"
#endif
#include "gmk_layout.h"
#include "../math_hash.h"

#define MAX_TOK 9
static int n_checks;
static double worst; /* largest NMSE of one weight type over all its shapes */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u32() & 0xffffff) / 16777216.0f;
}

static void fail(const char *what)
{
    fprintf(stderr, "kernels (%s): FAILED: %s\n", ISA, what);
    exit(1);
}

/* ------------------------------------------------------------ activations */

/* The rule of gmk_x86.h's gmk_act_row for n values: returns d. */
static float quant_rule(int8_t *q, const float *x, int n)
{
    GMK_NO_CONTRACT
    float m = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        m = a > m ? a : m;
    }
    float d = m / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) {
        float v = x[i] * id;
        v = v == v ? v : 0.0f;
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[i] = (int8_t)(int)(v + (v >= 0.0f ? 0.5f : -0.5f));
    }
    return d;
}

static int32_t sum_q(const int8_t *q, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += q[i];
    return s;
}

/* x[0..256) as Q8_0 (8 blocks) and as one Q8_K block against the rule. */
static void check_quant_row(const float *x, const char *what)
{
    gmk_act_q8_0 got[8], want;
    gmk_act_q8_k gk, wk;
    gmk_act_row(got, GMK_ACT_Q8_0, x, 256);
    for (int b = 0; b < 8; b++) {
        want.d = quant_rule(want.qs, x + 32 * b, 32);
        want.sum = sum_q(want.qs, 32);
        if (memcmp(&got[b].d, &want.d, sizeof want.d) != 0 || got[b].sum != want.sum ||
            memcmp(got[b].qs, want.qs, 32) != 0) {
            fprintf(stderr, "Q8_0 block %d: d %a/%a sum %d/%d\n", b, got[b].d, want.d,
                    got[b].sum, want.sum);
            fail(what);
        }
    }
    gmk_act_row(&gk, GMK_ACT_Q8_K, x, 256);
    wk.d = quant_rule(wk.qs, x, 256);
    for (int j = 0; j < 16; j++)
        wk.bsums[j] = (int16_t)sum_q(wk.qs + 16 * j, 16);
    if (memcmp(&gk.d, &wk.d, sizeof wk.d) != 0 || memcmp(gk.qs, wk.qs, 256) != 0 ||
        memcmp(gk.bsums, wk.bsums, sizeof wk.bsums) != 0) {
        fprintf(stderr, "Q8_K: d %a/%a\n", gk.d, wk.d);
        fail(what);
    }
    n_checks++;
}

static void check_quant(void)
{
    float x[256];
    for (int rep = 0; rep < 300; rep++) {
        for (int i = 0; i < 256; i++)
            x[i] = uniform(-3.0f, 3.0f) * (rep % 7 == 0 ? 1e-30f : 1.0f);
        check_quant_row(x, "random row");
    }
    for (int i = 0; i < 256; i++) /* amax 127: x·(1/d) lands on every tie */
        x[i] = (float)(i % 64 - 32) + 0.5f;
    x[31] = x[255] = 127.0f;
    check_quant_row(x, "ties");
    x[3] = 0.49999997f; /* + 0.5 rounds up to 1.0 in f32: the rule's own answer */
    x[4] = -0.49999997f;
    check_quant_row(x, "just below a tie");
    x[5] = NAN;
    check_quant_row(x, "a NaN");
    x[70] = INFINITY;
    check_quant_row(x, "an infinity");
    memset(x, 0, sizeof x);
    check_quant_row(x, "zeros");
}

/* ---------------------------------------------------------------- matmul */

/* Random packed weights of F: random bytes, then f16 scales (and the
 * minimums of q4_1 and of the k-quants at byte 2) in ±[0.001, 0.05) (q8_0
 * -128 and negative q6_k scales included, which the file format allows). */
static void random_weights(uint8_t *w, int F, int64_t n_blocks)
{
    const size_t bb = gmk_dtype_block_bytes(F);
    const int k = F == GMK_DTYPE_Q4_1 || F == GMK_DTYPE_Q4_K || F == GMK_DTYPE_Q5_K;
    const size_t at[2] = {F == GMK_DTYPE_Q6_K ? 208 : 0, 2};
    for (int64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = w + (size_t)b * bb;
        for (size_t i = 0; i < bb; i++)
            p[i] = (uint8_t)next_u32();
        for (int s = 0; s < 1 + k; s++) {
            float v = uniform(0.001f, 0.05f) * (s == 0 && next_u32() & 1 ? -1.0f : 1.0f);
            uint16_t h = gmk_f32_to_f16(v);
            memcpy(p + at[s], &h, 2);
        }
    }
}

/* Element k of a q4_0 / q5_0 / q8_0 block as an integer, offset removed. */
static int weight_int(int F, const uint8_t *blk, int k)
{
    if (F == GMK_DTYPE_Q8_0)
        return (int8_t)blk[2 + k];
    if (F == GMK_DTYPE_Q4_0)
        return (k < 16 ? blk[2 + k] & 15 : blk[2 + k - 16] >> 4) - 8;
    const uint8_t *qs = blk + 6;
    int nib = k < 16 ? qs[k] & 15 : qs[k - 16] >> 4;
    return (nib | (int)((gmk_load_u32(blk + 2) >> k & 1u) << 4)) - 16;
}

/* Element e of a k-quant block without offset (layouts as gmk_quant.h's
 * dequantizers) and its scale: q4_k / q5_k the 6-bit scale of sub-block
 * e/32 (*m its minimum), q6_k the int8 scale of group e/16. */
static int kquant_int(int F, const uint8_t *b, int e, int *sc, int *m)
{
    if (F == GMK_DTYPE_Q6_K) {
        const int n = e / 128, k = e % 128 / 32, l = e % 32;
        const uint8_t *ql = b + 64 * n + 32 * (k & 1), *qh = b + 128 + 32 * n;
        *sc = (int8_t)b[192 + e / 16];
        *m = 0;
        return (k < 2 ? ql[l] & 15 : ql[l] >> 4) | (qh[l] >> 2 * k & 3) << 4;
    }
    const int five = F == GMK_DTYPE_Q5_K, c = e / 64, hi = e % 64 / 32, l = e % 32;
    uint8_t s6, m6;
    gmk_scale_min_k4(e / 32, b + 4, &s6, &m6);
    *sc = s6;
    *m = m6;
    const uint8_t q = b[16 + 32 * five + 32 * c + l];
    const int bit = five ? (b[16 + l] >> (2 * c + hi) & 1) << 4 : 0;
    return (hi ? q >> 4 : q & 15) | bit;
}

/* a·b + c rounded once: libm's fmaf, except on WebAssembly, where
 * wasi-libc's (Debian 12) rounds some ties the wrong way (fmaf(−(1 +
 * 2^-12), 1 + 2^-12, 2^-80) gives −(1 + 2^-11 + 2^-23), not −(1 + 2^-11)):
 * there in binary128 (its long double), exact for the operands here (spans
 * under 113 bits), then rounded once to float. */
static float ref_fmaf(float a, float b, float c)
{
#ifdef __wasm__
    return (float)((long double)a * (long double)b + (long double)c);
#else
    return fmaf(a, b, c);
#endif
}

/* The int8 kernels' arithmetic in scalar C.  b32: per block the exact int32 dot,
 * then acc = fma(float(q)·dx, dw, acc).  k-quants (the x86 P8 kernels'):
 * isum = Σ sc·(u − 32 for q6_k)·x and msum = Σ m·x exact, then acc =
 * fma(isum, d·dx, acc) and acc = fma(−msum, dmin·dx, acc). */
static float exact_dot(int F, const uint8_t *row, const uint8_t *xt, int64_t nb)
{
    GMK_NO_CONTRACT
    const size_t bb = gmk_dtype_block_bytes(F);
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * bb;
        if (gmk_dtype_block(F) == 32) {
            const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)xt + b;
            int32_t q = 0;
            for (int k = 0; k < 32; k++)
                q += weight_int(F, blk, k) * a->qs[k];
            acc = ref_fmaf((float)q * a->d, gmk_f16_to_f32(gmk_load_u16(blk)), acc);
            continue;
        }
        const gmk_act_q8_k *a = (const gmk_act_q8_k *)xt + b;
        int32_t isum = 0, msum = 0;
        for (int e = 0; e < 256; e++) {
            int sc, m, u = kquant_int(F, blk, e, &sc, &m);
            isum += sc * (u - (F == GMK_DTYPE_Q6_K ? 32 : 0)) * a->qs[e];
            msum += m * a->qs[e];
        }
        if (F == GMK_DTYPE_Q6_K) {
            acc = ref_fmaf((float)isum, gmk_f16_to_f32(gmk_load_u16(blk + 208)) * a->d, acc);
            continue;
        }
        acc = ref_fmaf((float)isum, gmk_f16_to_f32(gmk_load_u16(blk)) * a->d, acc);
        acc = ref_fmaf(-(float)msum, gmk_f16_to_f32(gmk_load_u16(blk + 2)) * a->d, acc);
    }
    return acc;
}

/* y over rows [0, n_out) in the pieces cut by cuts[] (each thread's share). */
static void run_cuts(float *y, int64_t ldy, const void *W, int wdtype, const void *xq, int fmt,
                     int n_tok, int64_t n_out, int64_t n_in, const int64_t *cuts, int n_cuts)
{
    int64_t lo = 0;
    for (int c = 0; c <= n_cuts; c++) {
        int64_t hi = c < n_cuts && cuts[c] < n_out ? cuts[c] : n_out;
        if (hi > lo)
            gmk_matmul_rows(y, ldy, W, wdtype, xq, fmt, n_tok, lo, hi, n_in);
        lo = hi > lo ? hi : lo;
    }
}

/* Adds the squared error of got and the squares of want into sums[0, 1];
 * returns the NMSE of these n values alone. */
static double nmse_add(const float *got, const float *want, size_t n, double sums[2])
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    sums[0] += num;
    sums[1] += den;
    return den > 0 ? num / den : num;
}

static double nmse(const float *got, const float *want, size_t n)
{
    double sums[2] = {0, 0};
    return nmse_add(got, want, n, sums);
}

/* One (F, n_out, n_in): the file's rows and, where F has them, P4 panels;
 * 1..MAX_TOK tokens; rows whole and cut: against the scalar arithmetic
 * (bits) and, summed into sums, the f32 reference. */
static void check_matmul(int F, int64_t n_out, int64_t n_in, double sums[2])
{
    const int fmt = ACT_FMT(F), n_lay = HAVE_P4 && gmk_layout_supports(GMK_LAYOUT_P4, F) ? 2 : 1;
    const int64_t nb = n_in / gmk_dtype_block(F);
    const size_t xrow = gmk_act_row_bytes(fmt, n_in), row = (size_t)nb * gmk_dtype_block_bytes(F);
    uint8_t *w = malloc(row * (size_t)n_out);
    uint8_t *p4 = aligned_alloc(64, ((size_t)n_out + 3) / 4 * 4 * row + 64);
    float *x = malloc(sizeof(float) * (size_t)(MAX_TOK * n_in));
    uint8_t *xq = aligned_alloc(64, xrow * MAX_TOK);
    float *y = malloc(sizeof(float) * (size_t)(MAX_TOK * n_out));
    float *ref = malloc(sizeof(float) * (size_t)(MAX_TOK * n_out));
    if (!w || !p4 || !x || !xq || !y || !ref)
        fail("out of memory");
    random_weights(w, F, n_out * nb);
    if (n_lay == 2)
        gmk_layout_pack(p4, w, GMK_LAYOUT_P4, F, n_out, n_in);
    for (int64_t i = 0; i < MAX_TOK * n_in; i++)
        x[i] = uniform(-1.0f, 1.0f); /* as the x86 suite: its bound means the same */
    for (int t = 0; t < MAX_TOK; t++)
        gmk_act_row(xq + (size_t)t * xrow, fmt, x + t * n_in, n_in);
    const int64_t cuts[][3] = {{n_out, 0, 0}, {1, 6, 13}, {5, 7, 9}};
    char what[200];
    for (int n_tok = 1; n_tok <= MAX_TOK; n_tok++) {
        gmk_ref_matmul_rows(ref, n_out, w, F, x, n_tok, 0, n_out, n_in);
        for (int lay = 0; lay < n_lay; lay++) {
            const void *W = lay ? (const void *)p4 : (const void *)w;
            const int wdtype = F | (lay ? GMK_LAYOUT_P4 : GMK_LAYOUT_PACKED);
            for (int c = 0; c < 3; c++) {
                run_cuts(y, n_out, W, wdtype, xq, fmt, n_tok, n_out, n_in, cuts[c], 3);
                for (int t = 0; t < n_tok; t++)
                    for (int64_t r = 0; r < n_out; r++) {
                        float e = fmt == GMK_ACT_F32 ? ref[t * n_out + r]
                                  : exact_dot(F, w + (size_t)r * row, xq + (size_t)t * xrow, nb);
                        if (memcmp(&e, &y[t * n_out + r], sizeof e) == 0)
                            continue;
                        snprintf(what, sizeof what, "dtype %d %s %lldx%lld n_tok %d cut %d: "
                                 "row %lld token %d is %a, the block arithmetic %a", F,
                                 gmk_layout_name(lay ? GMK_LAYOUT_P4 : 0), (long long)n_out,
                                 (long long)n_in, n_tok, c, (long long)r, t, y[t * n_out + r], e);
                        fail(what);
                    }
                nmse_add(y, ref, (size_t)(n_tok * n_out), sums);
                n_checks++;
            }
        }
    }
    free(w), free(p4), free(x), free(xq), free(y), free(ref);
}

/* The pairs without an int8 kernel: q4_1 weights with Q8_0 rows go through
 * the fallback (f32 again: NMSE near rounding against the reference on the
 * same dequantized rows); P4 weights (Arm) with f32 rows through the
 * reference, bit for bit with the packed ones. */
static void check_fallbacks(void)
{
    enum { N_OUT = 10, N_IN = 96, NB = N_IN / 32 };
    uint8_t w41[N_OUT * NB * 20], w4[N_OUT * NB * 18];
    uint8_t p4[(N_OUT + 3) / 4 * 4 * NB * 18];
    float x[2 * N_IN], xf[2 * N_IN], y[2 * N_OUT], ref[2 * N_OUT];
    const size_t xrow = gmk_act_row_bytes(GMK_ACT_Q8_0, N_IN); /* 64-byte rounded */
    _Alignas(64) uint8_t xq[2 * 128];
    if (xrow > 128)
        fail("Q8_0 row size");
    random_weights(w41, GMK_DTYPE_Q4_1, N_OUT * NB);
    random_weights(w4, GMK_DTYPE_Q4_0, N_OUT * NB);
    gmk_layout_pack(p4, w4, GMK_LAYOUT_P4, GMK_DTYPE_Q4_0, N_OUT, N_IN);
    for (int i = 0; i < 2 * N_IN; i++)
        x[i] = uniform(-1.0f, 1.0f);
    for (int t = 0; t < 2; t++)
        gmk_act_row(xq + t * xrow, GMK_ACT_Q8_0, x + t * N_IN, N_IN);
    for (int i = 0; i < 2 * N_IN; i++) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(xq + i / N_IN * xrow) + i % N_IN / 32;
        xf[i] = a->d * (float)a->qs[i % 32];
    }
    gmk_matmul_rows(y, N_OUT, w41, GMK_DTYPE_Q4_1, xq, GMK_ACT_Q8_0, 2, 0, N_OUT, N_IN);
    gmk_ref_matmul_rows(ref, N_OUT, w41, GMK_DTYPE_Q4_1, xf, 2, 0, N_OUT, N_IN);
    if (!(nmse(y, ref, 2 * N_OUT) < 1e-10))
        fail("q4_1 with Q8_0 rows: the fallback is not the reference");
    n_checks++;
    if (!HAVE_P4)
        return;
    gmk_matmul_rows(y, N_OUT, p4, GMK_DTYPE_Q4_0 | GMK_LAYOUT_P4, x, GMK_ACT_F32, 1, 0, N_OUT,
                    N_IN);
    gmk_ref_matmul_rows(ref, N_OUT, w4, GMK_DTYPE_Q4_0, x, 1, 0, N_OUT, N_IN);
    if (memcmp(y, ref, N_OUT * sizeof(float)) != 0)
        fail("P4 q4_0 with f32 rows differs from the packed reference");
    n_checks++;
}

/* Shapes and formats the compiler never emits give zeros, not reads past
 * the buffers (n_in not a multiple of the block, an unknown format), and
 * an unknown format is not written at all. */
static void check_bad_shapes(void)
{
    _Alignas(64) uint8_t xq[192];
    uint8_t w[3 * 4 * 34];
    memset(xq, 0x11, sizeof xq);
    memset(w, 0x22, sizeof w);
    float y[3] = {1, 2, 3};
    gmk_matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, GMK_ACT_Q8_0, 1, 0, 3, 48);
    if (y[0] != 0.0f || y[1] != 0.0f || y[2] != 0.0f)
        fail("n_in 48 of q8_0 is not zeros");
    y[0] = 5;
    gmk_matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, 99, 1, 0, 3, 64);
    if (y[0] != 0.0f)
        fail("format 99 is not zeros");
    gmk_act_row(xq, 99, (const float *)w, 64);
    if (xq[0] != 0x11)
        fail("format 99 was written");
    n_checks += 3;
}

/* The hash of gmk_math.h's results is the host's: the two ISAs' softmax,
 * GELU and RoPE give the same bits (docs/targets.md). */
static void check_math(void)
{
    uint64_t h = GMK_TEST_MATH_SEED;
    float out[4];
    for (uint64_t u = 0; u <= 0xffffffffu; u += GMK_TEST_MATH_STRIDE)
        h = gmk_test_math_step(h, gmk_bits_f32((uint32_t)u), out);
    if (h != GMK_TEST_MATH_HASH) {
        char what[80];
        snprintf(what, sizeof what, "gmk_math.h hash %#llx, the host's %#llx",
                 (unsigned long long)h, (unsigned long long)GMK_TEST_MATH_HASH);
        fail(what);
    }
    n_checks++;
}

#ifdef __wasm__
/* Lane by lane, gmk_wasm_fma4(x, y, z) is ref_fmaf. */
static void check_fma4(const float x[4], const float y[4], const float z[4], const char *what)
{
    float got[4];
    wasm_v128_store(got, gmk_wasm_fma4(wasm_v128_load(x), wasm_v128_load(y), wasm_v128_load(z)));
    for (int l = 0; l < 4; l++) {
        float want = ref_fmaf(x[l], y[l], z[l]);
        if (memcmp(&got[l], &want, sizeof want) != 0) {
            fprintf(stderr, "fma(%a, %a, %a) = %a, want %a\n", x[l], y[l], z[l], got[l], want);
            fail(what);
        }
    }
}

static void check_fma(void)
{
    /* (1 + 2^-12)² = 1 + 2^-11 + 2^-24, a tie between two floats: a tiny z
     * decides it, which a double sum loses */
    const float a = 1.0f + 0x1p-12f, tiny[] = {0x1p-80f, -0x1p-80f, 0x1p-60f, -0x1p-100f};
    for (int s = 0; s < 2; s++) {
        float x[4] = {a, -a, a, -a}, y[4] = {a, a, a, a};
        for (int l = 0; l < 4; l++)
            x[l] = s ? -x[l] : x[l];
        check_fma4(x, y, tiny, "gmk_wasm_fma4 on a tie");
    }
    for (int i = 0; i < 250000; i++) {
        float x[4], y[4], z[4];
        for (int l = 0; l < 4; l++) {
            x[l] = uniform(-1.0f, 1.0f) * (float)(next_u32() % 4096);
            y[l] = gmk_f16_to_f32(gmk_f32_to_f16(uniform(-0.05f, 0.05f)));
            z[l] = uniform(-1.0f, 1.0f) * ldexpf(1.0f, (int)(next_u32() % 60) - 30);
        }
        check_fma4(x, y, z, "gmk_wasm_fma4 on random operands");
    }
    n_checks += 2;
}
#endif

int main(void)
{
    check_quant();
    check_math();
#ifdef __wasm__
    check_fma();
#endif
    const int64_t b32[][2] = {{67, 96}, {9, 32 * 17}, {4, 32}, {1, 64}, {130, 512}};
    const int64_t kq[][2] = {{13, 256}, {5, 768}, {1, 512}, {33, 1024}, {4, 256}};
    const int dtypes[] = {GMK_DTYPE_Q4_0, GMK_DTYPE_Q5_0, GMK_DTYPE_Q8_0,
                          GMK_DTYPE_Q4_K, GMK_DTYPE_Q5_K, GMK_DTYPE_Q6_K};
    const char *const names[] = {"q4_0", "q5_0", "q8_0", "q4_k", "q5_k", "q6_k"};
    for (int d = 0; d < 6; d++) {
        double sums[2] = {0, 0};
        const int64_t(*shapes)[2] = gmk_dtype_block(dtypes[d]) == 32 ? b32 : kq;
        for (int s = 0; s < 5; s++)
            check_matmul(dtypes[d], shapes[s][0], shapes[s][1], sums);
        double e = sums[0] / sums[1];
        worst = e > worst ? e : worst;
        printf("  %s: NMSE %.2e against the f32 reference\n", names[d], e);
        if (!(e < 5e-4)) {
            char what[80];
            snprintf(what, sizeof what, "dtype %d: NMSE %g against the f32 reference", dtypes[d],
                     e);
            fail(what);
        }
    }
    check_fallbacks();
    check_bad_shapes();
    printf("kernels (%s): %d checks passed, worst NMSE %.2e against the f32 reference\n", ISA,
           n_checks, worst);
    return 0;
}
