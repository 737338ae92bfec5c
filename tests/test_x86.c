/*
 * test_x86.c — the x86 matmul kernels (gmk_x86.h) at every ISA level.
 *
 * tests/x86_isa.c is built once per x86-64 level; each level the CPU runs is
 * compared with gmk_ref_matmul_rows under the MUL_MAT NMSE bound of
 * docs/input-checks.md §4.1 for every weight type on odd shapes, checked for
 * bit-identical results however rows are cut and tokens grouped, and its
 * activation quantizers against §4.2.  Weights: random bits (every code point,
 * q8_0's -128, negative q6_k scales) with random f16 scales, and quantized
 * random floats where the runtime has a quantizer.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmk_generic.h"
#include "gmrt.h"
#include "x86_isa.h"

#if defined(__x86_64__)

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s;
}

/* splitmix64: a fixed, seedable stream so failures reproduce. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_unit(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

/* The levels there are: base, v3, v4, vnni, bf16. */
#define N_LEVELS 5

/* The levels this CPU can run, in order (out holds N_LEVELS); returns how
 * many. */
static int cpu_levels(const gmc_x86_isa **out)
{
    int n = 0;
    out[n++] = &gmk_isa_base;
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2"))) {
        printf("x86: CPU lacks x86-64-v3, only the baseline level is tested\n");
        return n;
    }
    out[n++] = &gmk_isa_v3;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))) {
        printf("x86: CPU lacks x86-64-v4, levels v4, vnni and bf16 not tested\n");
        return n;
    }
    out[n++] = &gmk_isa_v4;
    if (!(__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi"))) {
        printf("x86: CPU lacks AVX-512 VNNI/VBMI, levels vnni and bf16 not tested\n");
        return n;
    }
    out[n++] = &gmk_isa_vnni;
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("x86: CPU lacks AVX-512 BF16, level bf16 not tested\n");
        return n;
    }
    out[n++] = &gmk_isa_bf16;
    return n;
}

static void put_f16(uint8_t *p, float f)
{
    uint16_t h = gmk_f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Offset of the f16 scale fields of one block of dtype (-1: none). */
static void scale_fields(int dtype, int *d_off, int *m_off)
{
    *d_off = 0;
    *m_off = -1;
    if (dtype == GMK_DTYPE_Q4_1 || dtype == GMK_DTYPE_Q5_1 || dtype == GMK_DTYPE_Q4_K ||
        dtype == GMK_DTYPE_Q5_K)
        *m_off = 2;
    if (dtype == GMK_DTYPE_Q6_K)
        *d_off = 208;
}

/* Random bits with random f16 scales of a sensible size (a minimum may be
 * negative, as q4_1's is for rows with negative values). */
static void fill_bits(uint8_t *w, int dtype, int64_t n_rows, int64_t n_in)
{
    int64_t blk = gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    int64_t nb = n_rows * (n_in / blk);
    for (size_t i = 0; i < (size_t)nb * bb; i++)
        w[i] = (uint8_t)rng_next();
    int d_off, m_off;
    scale_fields(dtype, &d_off, &m_off);
    int kq = blk == 256;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *p = w + (size_t)b * bb;
        put_f16(p + d_off, (kq ? 0.004f : 0.05f) * rng_unit());
        if (m_off >= 0)
            put_f16(p + m_off, (kq ? 0.004f : 0.3f) * rng_unit());
    }
}

/* Weights of dtype for n_rows × n_in: float types from random floats, q8_0,
 * q4_0 and q5_0 (quantized = 1) through gmrt_quantize_row, others from
 * fill_bits.  Returned past a malloc'd base to keep rows unaligned: free
 * with free_weights. */
static size_t weights_offset(int dtype)
{
    return dtype == GMK_DTYPE_F32 ? 4 : 1;
}

static void free_weights(uint8_t *w, int dtype)
{
    free(w - weights_offset(dtype));
}

static uint8_t *make_weights(int dtype, int64_t n_rows, int64_t n_in, int quantized)
{
    size_t bytes = gmk_act_row_bytes(GMK_ACT_F32, 1) + (size_t)n_rows * (size_t)n_in * 4;
    /* f32 rows one element off (GGUF data is 4-aligned for f32: gguf.c
     * check 18b); every other type one byte off. */
    size_t off = weights_offset(dtype);
    uint8_t *base = malloc(bytes + 4);
    ck_assert_ptr_nonnull(base);
    uint8_t *w = base + off;
    int64_t blk = gmk_dtype_block(dtype);
    size_t row_bytes = (size_t)(n_in / blk) * gmk_dtype_block_bytes(dtype);
    if (blk > 1 && !quantized) {
        fill_bits(w, dtype, n_rows, n_in);
        return w;
    }
    float *row = malloc((size_t)n_in * sizeof *row);
    ck_assert_ptr_nonnull(row);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t k = 0; k < n_in; k++)
            row[k] = rng_unit();
        gmrt_diag diag;
        ck_assert_int_eq(gmrt_quantize_row(dtype, row, w + (size_t)r * row_bytes, n_in, &diag),
                         GMRT_OK);
    }
    free(row);
    return w;
}

/* n_tok activation rows converted by isa into fmt (64-byte aligned). */
static uint8_t *make_act(const gmc_x86_isa *isa, int fmt, const float *x, int n_tok, int64_t n_in)
{
    size_t xrow = gmk_act_row_bytes(fmt, n_in);
    ck_assert_uint_gt(xrow, 0);
    uint8_t *xq = aligned_alloc(64, xrow * (size_t)n_tok);
    ck_assert_ptr_nonnull(xq);
    memset(xq, 0, xrow * (size_t)n_tok);
    for (int t = 0; t < n_tok; t++)
        isa->act_row(xq + (size_t)t * xrow, fmt, x + (size_t)t * (size_t)n_in, n_in);
    return xq;
}

/* The weight types and activation formats under test. */
static const struct {
    int dtype, fmt, quantized;
} cases[] = {
    {GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 0}, {GMK_DTYPE_Q8_0, GMK_ACT_Q8_0, 1},
    {GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 0}, {GMK_DTYPE_Q4_0, GMK_ACT_Q8_0, 1},
    {GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 0}, {GMK_DTYPE_Q5_0, GMK_ACT_Q8_0, 1},
    {GMK_DTYPE_Q4_1, GMK_ACT_Q8_0, 0}, {GMK_DTYPE_Q5_1, GMK_ACT_Q8_0, 0},
    {GMK_DTYPE_Q4_K, GMK_ACT_Q8_K, 0}, {GMK_DTYPE_Q5_K, GMK_ACT_Q8_K, 0},
    {GMK_DTYPE_Q6_K, GMK_ACT_Q8_K, 0}, {GMK_DTYPE_F32, GMK_ACT_F32, 1},
    {GMK_DTYPE_F16, GMK_ACT_F32, 1},   {GMK_DTYPE_BF16, GMK_ACT_F32, 1},
    {GMK_DTYPE_BF16, GMK_ACT_BF16, 1},
    /* pairs without a dedicated kernel take the fallback */
    {GMK_DTYPE_F16, GMK_ACT_Q8_0, 1},  {GMK_DTYPE_Q4_K, GMK_ACT_Q8_0, 0},
    {GMK_DTYPE_Q8_0, GMK_ACT_F32, 1},  {GMK_DTYPE_Q6_K, GMK_ACT_F32, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* Three row lengths per case: one block, several, and a long row (float
 * weights get lengths that leave a tail below every vector width). */
static int64_t case_len(int c, int which)
{
    int64_t blk = gmk_dtype_block(cases[c].dtype);
    int64_t ablk = gmk_act_block(cases[c].fmt);
    blk = blk > ablk ? blk : ablk;
    if (blk < 32) {
        static const int64_t flt[3] = {2, 42, 2570};
        return flt[which];
    }
    static const int64_t mult[3] = {1, 5, 10};
    return which == 2 ? 2560 : blk * mult[which];
}

/* ------------------------------------------------------------ NMSE */

static const int n_outs[] = {1, 3, 17, 67};
static const int n_toks[] = {1, 2, 3, 5, 17, 64};

/* One case at one row length: every level against the reference, NMSE taken
 * over all n_tok for each n_out. */
static double worst_nmse; /* largest NMSE seen by one test_nmse run */

static void check_nmse(int c, int64_t n_in)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    int dtype = cases[c].dtype, fmt = cases[c].fmt;
    for (size_t o = 0; o < sizeof n_outs / sizeof n_outs[0]; o++) {
        int n_out = n_outs[o];
        uint8_t *w = make_weights(dtype, n_out, n_in, cases[c].quantized);
        double num[N_LEVELS] = {0}, den = 0;
        for (size_t q = 0; q < sizeof n_toks / sizeof n_toks[0]; q++) {
            int n_tok = n_toks[q];
            float *x = malloc((size_t)n_tok * (size_t)n_in * sizeof *x);
            float *ref = malloc((size_t)n_tok * (size_t)n_out * sizeof *ref);
            float *got = malloc((size_t)n_tok * (size_t)n_out * sizeof *got);
            ck_assert(x && ref && got);
            for (int64_t i = 0; i < (int64_t)n_tok * n_in; i++)
                x[i] = rng_unit();
            gmk_ref_matmul_rows(ref, n_out, w, dtype, x, n_tok, 0, n_out, n_in);
            for (int i = 0; i < n_tok * n_out; i++)
                den += (double)ref[i] * ref[i];
            for (int l = 0; l < n_lv; l++) {
                uint8_t *xq = make_act(lv[l], fmt, x, n_tok, n_in);
                for (int i = 0; i < n_tok * n_out; i++)
                    got[i] = NAN;
                lv[l]->matmul_rows(got, n_out, w, dtype, xq, fmt, n_tok, 0, n_out, n_in);
                for (int i = 0; i < n_tok * n_out; i++) {
                    double d = (double)got[i] - ref[i];
                    num[l] += d * d;
                }
                free(xq);
            }
            free(x);
            free(ref);
            free(got);
        }
        for (int l = 0; l < n_lv; l++) {
            double e = den > 0 ? num[l] / den : num[l];
            worst_nmse = e > worst_nmse ? e : worst_nmse;
            ck_assert_msg(e < 5e-4, "%s: dtype %d fmt %d n_out %d n_in %lld: NMSE %g",
                          lv[l]->name, dtype, fmt, n_out, (long long)n_in, e);
        }
        free_weights(w, dtype);
    }
}

START_TEST(test_nmse)
{
    rng_seed(0x5eed0000u + (uint64_t)_i);
    worst_nmse = 0;
    for (int which = 0; which < 3; which++)
        check_nmse(_i, case_len(_i, which));
    printf("x86: dtype %2d fmt %d%s: worst NMSE %.2e over levels and shapes\n", cases[_i].dtype,
           cases[_i].fmt,
           !cases[_i].quantized                     ? " (random bits)"
           : gmk_dtype_block(cases[_i].dtype) > 1 ? " (quantized floats)"
                                                    : " (random floats)",
           worst_nmse);
}
END_TEST

/* ------------------------------------------------------------ determinism */

/* A full 67-row × 17-token product equals (bit for bit) the same rows cut
 * into uneven pieces and every token computed alone: n_in = 5 blocks, and
 * for block formats 16640 elements, past the rows the AVX2 prefill panels
 * hold (512 b32 / 64 k-quant blocks), where prefill reads the blocks
 * directly. */
static void check_bit_identical(int c, int64_t n_in)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    int dtype = cases[c].dtype, fmt = cases[c].fmt;
    const int n_out = 67, n_tok = 17;
    uint8_t *w = make_weights(dtype, n_out, n_in, cases[c].quantized);
    float *x = malloc((size_t)n_tok * (size_t)n_in * sizeof *x);
    float full[17 * 67], part[17 * 67];
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < (int64_t)n_tok * n_in; i++)
        x[i] = rng_unit();
    for (int l = 0; l < n_lv; l++) {
        uint8_t *xq = make_act(lv[l], fmt, x, n_tok, n_in);
        size_t xrow = gmk_act_row_bytes(fmt, n_in);
        lv[l]->matmul_rows(full, n_out, w, dtype, xq, fmt, n_tok, 0, n_out, n_in);
        static const int cuts[] = {0, 1, 2, 7, 9, 30, 33, 66, 67};
        memset(part, 0xff, sizeof part);
        for (size_t k = 0; k + 1 < sizeof cuts / sizeof cuts[0]; k++)
            lv[l]->matmul_rows(part, n_out, w, dtype, xq, fmt, n_tok, cuts[k], cuts[k + 1], n_in);
        ck_assert_msg(memcmp(full, part, sizeof full) == 0, "%s dtype %d n_in %lld: row cuts differ",
                      lv[l]->name, dtype, (long long)n_in);
        memset(part, 0xff, sizeof part);
        for (int t = 0; t < n_tok; t++) /* tokens alone, and rows 5.. then 0..5 */
            lv[l]->matmul_rows(part + t * n_out, n_out, w, dtype, xq + (size_t)t * xrow, fmt, 1,
                               5, n_out, n_in);
        lv[l]->matmul_rows(part, n_out, w, dtype, xq, fmt, n_tok, 0, 5, n_in);
        ck_assert_msg(memcmp(full, part, sizeof full) == 0,
                      "%s dtype %d n_in %lld: single tokens differ", lv[l]->name, dtype,
                      (long long)n_in);
        free(xq);
    }
    free(x);
    free_weights(w, dtype);
}

START_TEST(test_bit_identical)
{
    rng_seed(0xb17b17u + (uint64_t)_i);
    check_bit_identical(_i, case_len(_i, 1));
    if (gmk_dtype_block(cases[_i].dtype) >= 32)
        check_bit_identical(_i, 65 * 256);
}
END_TEST

/* ------------------------------------------------------------ quantizers */

/* llama.cpp test-quantize-fns' total error: sqrt(Σ (a − b)²) / n. */
static double quant_error(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s) / (double)n;
}

/* Q8_0 / Q8_K rows: §4.2 synthetic data 0.1 + 2cos(i), n = 32 × 128; total
 * error ≤ 0.002, every element within half a step of its block, |q| ≤ 127,
 * and the sums the kernels rely on exact. */
START_TEST(test_act_quant)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    enum { N = 32 * 128 };
    static float x[N], back[N];
    for (int i = 0; i < N; i++)
        x[i] = 0.1f + 2.0f * cosf((float)i);
    x[77] = 40.0f; /* one outlier block */
    for (int l = 0; l < n_lv; l++) {
        for (int fmt = GMK_ACT_Q8_0; fmt <= GMK_ACT_Q8_K; fmt++) {
            int qk = (int)gmk_act_block(fmt);
            uint8_t *xq = make_act(lv[l], fmt, x, 1, N);
            for (int b = 0; b < N / qk; b++) {
                const int8_t *qs;
                float d;
                if (fmt == GMK_ACT_Q8_0) {
                    const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)xq + b;
                    qs = a->qs, d = a->d;
                    int32_t s = 0;
                    for (int i = 0; i < 32; i++)
                        s += qs[i];
                    ck_assert_int_eq(s, a->sum);
                } else {
                    const gmk_act_q8_k *a = (const gmk_act_q8_k *)xq + b;
                    qs = a->qs, d = a->d;
                    for (int j = 0; j < 16; j++) {
                        int32_t s = 0;
                        for (int i = 0; i < 16; i++)
                            s += qs[16 * j + i];
                        ck_assert_int_eq(s, a->bsums[j]);
                    }
                }
                for (int i = 0; i < qk; i++) {
                    ck_assert_int_ge(qs[i], -127);
                    back[b * qk + i] = d * (float)qs[i];
                    ck_assert_msg(fabsf(back[b * qk + i] - x[b * qk + i]) <= 0.5001f * d,
                                  "%s fmt %d elem %d off by more than half a step", lv[l]->name,
                                  fmt, b * qk + i);
                }
            }
            double e = quant_error(x, back, N);
            ck_assert_msg(e <= 0.002, "%s fmt %d: total error %g", lv[l]->name, fmt, e);
            free(xq);
        }
        /* bf16: round to nearest even, exactly gmk_f32_to_bf16 */
        uint16_t *h = (uint16_t *)make_act(lv[l], GMK_ACT_BF16, x, 1, N);
        for (int i = 0; i < N; i++)
            ck_assert_uint_eq(h[i], gmk_f32_to_bf16(x[i]));
        free(h);
    }
}
END_TEST

/* All-zero and non-finite activations stay finite in the int8 formats. */
START_TEST(test_act_degenerate)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    float x[256];
    for (int l = 0; l < n_lv; l++) {
        for (int i = 0; i < 256; i++)
            x[i] = 0.0f;
        gmk_act_q8_k k;
        lv[l]->act_row(&k, GMK_ACT_Q8_K, x, 256);
        ck_assert(k.d == 0.0f);
        for (int i = 0; i < 256; i++)
            ck_assert_int_eq(k.qs[i], 0);
        x[3] = NAN;
        x[4] = 1.0f;
        gmk_act_q8_0 b[8];
        lv[l]->act_row(b, GMK_ACT_Q8_0, x, 256);
        ck_assert_int_eq(b[0].qs[3], 0);
        ck_assert_int_eq(b[0].qs[4], 127);
    }
}
END_TEST

/* Every level converts activations to the same bytes as the baseline,
 * including NaN, ±inf, -0, halfway values and all-equal blocks. */
START_TEST(test_act_levels_agree)
{
    rng_seed(0xac7u);
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    enum { N = 2048 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_unit() * (i < 1024 ? 1.0f : 1e-30f);
    for (int i = 0; i < 32; i++) /* block 0: d = 1, halfway values (ties) */
        x[i] = i == 0 ? 127.0f : (float)(i - 16) + 0.5f;
    x[40] = NAN, x[41] = -0.0f, x[300] = INFINITY, x[600] = -INFINITY;
    for (int i = 512; i < 544; i++) /* a constant block */
        x[i] = -0.25f;
    for (int fmt = GMK_ACT_Q8_0; fmt <= GMK_ACT_BF16; fmt++) {
        uint8_t *base = make_act(lv[0], fmt, x, 1, N);
        if (fmt == GMK_ACT_Q8_0) { /* halfway rounds away from zero: 2.5 → 3, -3.5 → -4 */
            const gmk_act_q8_0 *b = (const gmk_act_q8_0 *)base;
            ck_assert(b->d == 1.0f);
            ck_assert_int_eq(b->qs[18], 3);
            ck_assert_int_eq(b->qs[12], -4);
            ck_assert_int_eq(b->qs[16], 1);
        }
        for (int l = 1; l < n_lv; l++) {
            uint8_t *xq = make_act(lv[l], fmt, x, 1, N);
            ck_assert_msg(memcmp(base, xq, gmk_act_row_bytes(fmt, N)) == 0,
                          "%s fmt %d differs from the baseline", lv[l]->name, fmt);
            free(xq);
        }
        free(base);
    }
}
END_TEST

/* ------------------------------------------------------------ layouts */

/* gmk_x86_step_b32's arithmetic for q4_0 and q5_0 in scalar C: per row and
 * token, q = Σ w·x exact per block, then acc = fma(float(q)·dx, dw, acc). */
static void exact_b32(int dtype, float *y, int64_t ldy, const uint8_t *w, const uint8_t *xq,
                      int n_tok, int n_out, int64_t nb)
{
    const int q5 = dtype == GMK_DTYPE_Q5_0, q8 = dtype == GMK_DTYPE_Q8_0;
    const int bb = q5 ? 22 : q8 ? 34 : 18, off = q5 ? 16 : 8;
    for (int t = 0; t < n_tok; t++) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(xq + (size_t)t * gmk_act_row_bytes(
                                                                    GMK_ACT_Q8_0, nb * 32));
        for (int r = 0; r < n_out; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)(r * nb + b) * bb, *qs = blk + bb - 16;
                uint32_t qh = q5 ? (uint32_t)blk[2] | (uint32_t)blk[3] << 8 |
                                       (uint32_t)blk[4] << 16 | (uint32_t)blk[5] << 24
                                 : 0;
                int32_t q = 0;
                for (int e = 0; e < 32 && q8; e++)
                    q += ((const int8_t *)blk)[2 + e] * a[b].qs[e];
                for (int e = 0; e < 16 && !q8; e++) {
                    int lo = (qs[e] & 15) | (int)(qh >> e & 1) << 4;
                    int hi = (qs[e] >> 4) | (int)(qh >> (16 + e) & 1) << 4;
                    q += (lo - off) * a[b].qs[e] + (hi - off) * a[b].qs[16 + e];
                }
                float sx = (float)q * a[b].d;
                acc = fmaf(sx, gmk_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)), acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* The arithmetic the P8 k-quant kernels promise (gmk_x86_simd.h): per
 * row, token and block, exact integer sums, then acc = fma(isum, d·dx,
 * acc) and for q4_k/q5_k acc = fma(−msum, dmin·dx, acc). */
static void exact_kq(int dtype, float *y, int64_t ldy, const uint8_t *w, const uint8_t *xq,
                     int n_tok, int n_out, int64_t nb)
{
    const size_t bb = gmk_dtype_block_bytes(dtype);
    for (int t = 0; t < n_tok; t++) {
        const gmk_act_q8_k *a = (const gmk_act_q8_k *)(xq + (size_t)t * gmk_act_row_bytes(
                                                                    GMK_ACT_Q8_K, nb * 256));
        for (int r = 0; r < n_out; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = w + (size_t)(r * nb + b) * bb;
                float u[256];
                int32_t isum = 0, msum = 0;
                if (dtype == GMK_DTYPE_Q6_K) {
                    /* unit scales and d give u − 32; the scales apply below */
                    uint8_t one[210];
                    memcpy(one, blk, sizeof one);
                    for (int s = 0; s < 16; s++)
                        one[192 + s] = 1;
                    one[208] = 0x00, one[209] = 0x3c; /* f16 1.0 */
                    gmk_dequantize_row(dtype, one, u, 256);
                    for (int e = 0; e < 256; e++)
                        isum += ((const int8_t *)blk)[192 + e / 16] * (int32_t)u[e] *
                                a[b].qs[e];
                    acc = fmaf((float)isum, gmk_f16_to_f32(gmk_load_u16(blk + 208)) * a[b].d,
                               acc);
                    continue;
                }
                uint8_t one[176];
                memcpy(one, blk, bb);
                one[0] = 0x00, one[1] = 0x3c, one[2] = 0, one[3] = 0; /* d 1, dmin 0 */
                for (int j = 0; j < 8; j++) {
                    uint8_t sc, m;
                    gmk_scale_min_k4(j, blk + 4, &sc, &m);
                    int32_t sx = 0;
                    for (int e = 32 * j; e < 32 * j + 32; e++)
                        sx += a[b].qs[e];
                    msum += m * sx;
                }
                gmk_dequantize_row(dtype, one, u, 256); /* sc_j·u */
                for (int e = 0; e < 256; e++)
                    isum += (int32_t)u[e] * a[b].qs[e];
                acc = fmaf((float)isum, gmk_f16_to_f32(gmk_load_u16(blk)) * a[b].d, acc);
                acc = fmaf(-(float)msum, gmk_f16_to_f32(gmk_load_u16(blk + 2)) * a[b].d, acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* Float weights in P8: one fma chain per (row, token), elements in order
 * from 0 (gmk_x86_p8_flt). */
static void exact_flt(int dtype, float *y, int64_t ldy, const uint8_t *w, const uint8_t *xq,
                      int n_tok, int n_out, int64_t n_in)
{
    float *row = malloc((size_t)n_in * sizeof *row);
    ck_assert_ptr_nonnull(row);
    for (int r = 0; r < n_out; r++) {
        gmk_dequantize_row(dtype, w + (size_t)r * (size_t)n_in * gmk_dtype_block_bytes(dtype),
                           row, n_in);
        for (int t = 0; t < n_tok; t++) {
            const float *x = (const float *)(xq + (size_t)t * gmk_act_row_bytes(GMK_ACT_F32,
                                                                                 n_in));
            float acc = 0.0f;
            for (int64_t k = 0; k < n_in; k++)
                acc = fmaf(row[k], x[k], acc);
            y[t * ldy + r] = acc;
        }
    }
    free(row);
}

/* One layout case at n_out × n_in: see test_p16_layout. */
static void check_layout(int layout, int c, int n_out, int64_t n_in, const int *cuts, int n_cuts)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    int dtype = cases[c].dtype, fmt = cases[c].fmt, wdt = dtype | layout;
    const int64_t blen = gmk_dtype_block(dtype), nb = n_in / blen;
    size_t bb = gmk_dtype_block_bytes(dtype);
    uint8_t *w = make_weights(dtype, n_out, n_in, cases[c].quantized);
    uint64_t pbytes = gmk_layout_bytes(layout, dtype, n_out, n_in);
    int pr = gmk_layout_rows(layout);
    ck_assert_uint_eq(pbytes, (uint64_t)((n_out + pr - 1) / pr * pr) * (uint64_t)nb * bb);
    uint8_t *pbase = malloc((size_t)pbytes + 1), *pw = pbase + 1; /* unaligned on purpose */
    ck_assert_ptr_nonnull(pbase);
    gmk_layout_pack(pw, w, layout, dtype, n_out, n_in);
    uint8_t blk[256];
    float a[256], b[256];
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t k = 0; k < nb; k++) {
            gmk_weight_block(blk, pw, wdt, r, n_in, k);
            ck_assert_msg(memcmp(blk, w + (size_t)(r * nb + k) * bb, bb) == 0,
                          "%s dtype %d: row %lld block %lld does not come back",
                          gmk_layout_name(layout), dtype, (long long)r, (long long)k);
        }
        gmk_weight_dequant(a, w, dtype, r, n_in, n_in - blen, blen);
        gmk_weight_dequant(b, pw, wdt, r, n_in, n_in - blen, blen);
        ck_assert(memcmp(a, b, (size_t)blen * sizeof *a) == 0);
    }
    /* up to 29: two full P16 token tiles (the prefill paths that unpack a
     * chunk once for all its tiles), a tile of 4 and one token */
    enum { MAXT = 29 };
    static const int toks[] = {1, 2, 3, 4, 5, 8, 9, 13, 17, MAXT};
    float *x = malloc((size_t)MAXT * (size_t)n_in * sizeof *x);
    float *want = malloc((size_t)MAXT * (size_t)n_out * sizeof *want);
    float *got = malloc((size_t)MAXT * (size_t)n_out * sizeof *got);
    ck_assert(x && want && got);
    for (int64_t i = 0; i < MAXT * n_in; i++)
        x[i] = rng_unit();
    for (int l = 0; l < n_lv; l++) {
        for (size_t q = 0; q < sizeof toks / sizeof toks[0]; q++) {
            int n_tok = toks[q];
            uint8_t *xq = make_act(lv[l], fmt, x, n_tok, n_in);
            int has_layout = (lv[l]->layouts >> (layout >> GMK_LAYOUT_SHIFT)) & 1;
            /* P8 and the P16 k-quants and floats promise a scalar formula
             * (the packed tiles differ from it in the last bits); the P16
             * b32 kernels the packed tiles' arithmetic */
            int exact = has_layout && (layout == GMK_LAYOUT_P8 || blen == 256 || blen == 1);
            lv[l]->matmul_rows(want, n_out, w, dtype, xq, fmt, n_tok, 0, n_out, n_in);
            if (exact) { /* the promised arithmetic, itself within rounding of packed */
                memcpy(got, want, (size_t)n_tok * n_out * sizeof *got);
                if (blen == 1)
                    exact_flt(dtype, want, n_out, w, xq, n_tok, n_out, nb);
                else if (blen == 256)
                    exact_kq(dtype, want, n_out, w, xq, n_tok, n_out, nb);
                else
                    exact_b32(dtype, want, n_out, w, xq, n_tok, n_out, nb);
                double e = 0, m = 0;
                for (int i = 0; i < n_tok * n_out; i++) {
                    e += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
                    m += (double)want[i] * want[i];
                }
                ck_assert_msg(e <= 1e-10 * m, "dtype %d n_tok %d: exact vs packed NMSE %g",
                              dtype, n_tok, e / m);
            }
            memset(got, 0xff, (size_t)MAXT * (size_t)n_out * sizeof *got);
            for (int k = 0; k + 1 < n_cuts; k++)
                lv[l]->matmul_rows(got, n_out, pw, wdt, xq, fmt, n_tok, cuts[k], cuts[k + 1],
                                   n_in);
            double num = 0, den = 0;
            for (int i = 0; i < n_tok * n_out; i++) {
                num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
                den += (double)want[i] * want[i];
            }
            if (has_layout)
                ck_assert_msg(memcmp(want, got, (size_t)n_tok * n_out * sizeof *got) == 0,
                              "%s dtype %d %dx%lld n_tok %d: %s differs from %s (NMSE %g)",
                              lv[l]->name, dtype, n_out, (long long)n_in, n_tok,
                              gmk_layout_name(layout),
                              exact ? "the exact arithmetic" : "packed",
                              num / den);
            else
                ck_assert_msg(num <= 5e-4 * den, "%s dtype %d n_tok %d: %s fallback NMSE %g",
                              lv[l]->name, dtype, n_tok, gmk_layout_name(layout), num / den);
            free(xq);
        }
    }
    free(x);
    free(want);
    free(got);
    free(pbase);
    free_weights(w, dtype);
}

/* The b32 cases (the first 8): repacked into P16 (gmk_layout.h), every block
 * comes back byte for byte and dequantizes alike; matmuls on P16 weights
 * equal those on the packed rows, bit for bit where the level has a P16
 * kernel (same arithmetic per row and token) and within the NMSE bound where
 * it falls back, for every token count, uneven row cuts that split panels
 * (67 rows: 5 panels, the last 3 rows long), a single row of a single block
 * and a part panel of 17 rows. */
START_TEST(test_p16_layout)
{
    rng_seed(0x916u + (uint64_t)_i);
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts17[] = {0, 17};
    check_layout(GMK_LAYOUT_P16, _i, 67, case_len(_i, 2), cuts67, 8);
    check_layout(GMK_LAYOUT_P16, _i, 1, 32, cuts1, 2);
    check_layout(GMK_LAYOUT_P16, _i, 17, 160, cuts17, 2);
}
END_TEST

/* q8_0, q4_0 and q5_0 (cases 0 to 5) in P8, as test_p16_layout, against the
 * scalar arithmetic the kernels promise (exact_b32) where the level reads P8:
 * row cuts that split panels, a part panel (9 rows), one row, and rows
 * longer than any tile (513 blocks). */
START_TEST(test_p8_layout)
{
    rng_seed(0x98u + (uint64_t)_i);
    const int c = _i;
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts9[] = {0, 1, 2, 5, 9};
    check_layout(GMK_LAYOUT_P8, c, 67, case_len(c, 2), cuts67, 8);
    check_layout(GMK_LAYOUT_P8, c, 1, 32, cuts1, 2);
    check_layout(GMK_LAYOUT_P8, c, 9, 160, cuts9, 5);
    check_layout(GMK_LAYOUT_P8, c, 5, 513 * 32, cuts9, 4);
}
END_TEST

/* q4_k, q5_k and q6_k (cases 8 to 10) in P8, as test_p8_layout against
 * their scalar arithmetic (exact_kq): one block, several, and rows of 33
 * blocks (past the blocks prefill unpacks at a time). */
START_TEST(test_p8k_layout)
{
    rng_seed(0x98cu + (uint64_t)_i);
    const int c = 8 + _i;
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts9[] = {0, 1, 2, 5, 9};
    check_layout(GMK_LAYOUT_P8, c, 67, 256 * 3, cuts67, 8);
    check_layout(GMK_LAYOUT_P8, c, 1, 256, cuts1, 2);
    check_layout(GMK_LAYOUT_P8, c, 9, 256 * 33, cuts9, 5);
}
END_TEST

/* Every row of an n_out × n_in weight of dtype read back out of layout,
 * whole and its elements [k0, k0 + kn), equals the packed row's values. */
static void check_read_back(int layout, int dtype, int n_out, int n_in, int quantized, int k0,
                            int kn)
{
    uint8_t *w = make_weights(dtype, n_out, n_in, quantized);
    uint8_t *pw = malloc((size_t)gmk_layout_bytes(layout, dtype, n_out, n_in));
    float *a = malloc((size_t)n_in * sizeof *a), *b = malloc((size_t)n_in * sizeof *b);
    ck_assert(pw && a && b);
    gmk_layout_pack(pw, w, layout, dtype, n_out, n_in);
    for (int r = 0; r < n_out; r++) {
        gmk_weight_dequant(a, w, dtype, r, n_in, 0, n_in);
        gmk_weight_dequant(b, pw, dtype | layout, r, n_in, 0, n_in);
        ck_assert_msg(memcmp(a, b, (size_t)n_in * sizeof *a) == 0, "dtype %d row %d differs",
                      dtype, r);
        gmk_weight_dequant(b, pw, dtype | layout, r, n_in, k0, kn);
        ck_assert(memcmp(a + k0, b, (size_t)kn * sizeof *b) == 0);
    }
    free(a);
    free(b);
    free(pw);
    free_weights(w, dtype);
}

/* q4_k, q5_k and q6_k (cases 8 to 10) in P16, as test_p8k_layout: the
 * same scalar arithmetic (exact_kq), so the same bits as P8, where the
 * level reads P16 (AVX-512 VNNI); row cuts that split panels of 16, a part
 * panel, one row, rows of 33 blocks (past the blocks prefill unpacks at a
 * time), and whole rows and parts of rows read back out of the panels. */
START_TEST(test_p16k_layout)
{
    rng_seed(0x916cu + (uint64_t)_i);
    const int c = 8 + _i, dtype = cases[c].dtype;
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts9[] = {0, 1, 2, 5, 9};
    check_layout(GMK_LAYOUT_P16, c, 67, 256 * 3, cuts67, 8);
    check_layout(GMK_LAYOUT_P16, c, 1, 256, cuts1, 2);
    check_layout(GMK_LAYOUT_P16, c, 9, 256 * 33, cuts9, 5);
    check_read_back(GMK_LAYOUT_P16, dtype, 19, 256 * 5, cases[c].quantized, 256, 512);
}
END_TEST

/* f16 and bf16 (cases 12 and 13, f32 activations) in P8, as
 * test_p8_layout against one fma chain per (row, token) (exact_flt): rows
 * longer than a prefill chunk (2570 elements, a tail past 5 chunks of 512),
 * a part panel, one row of 2 elements; and whole rows read back out of the
 * panels as the embedding gather reads them. */
START_TEST(test_p8f_layout)
{
    rng_seed(0x98fu + (uint64_t)_i);
    const int c = 12 + _i, dtype = cases[c].dtype;
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts9[] = {0, 1, 2, 5, 9};
    check_layout(GMK_LAYOUT_P8, c, 67, case_len(c, 2), cuts67, 8);
    check_layout(GMK_LAYOUT_P8, c, 1, 2, cuts1, 2);
    check_layout(GMK_LAYOUT_P8, c, 9, 42, cuts9, 5);
    check_read_back(GMK_LAYOUT_P8, dtype, 11, 300, 1, 70, 130);
}
END_TEST

/* f16 and bf16 in P16, as test_p8f_layout: the same chains, so the same
 * bits as P8 and exact_flt, where the level reads P16 (AVX-512 VNNI); cuts
 * that split panels of 16 and pairs of them, 67 rows (4 decode panels at a
 * time, then one; 2 prefill panels, then one), every token tile (12, 6 and
 * the tails), rows longer than a prefill chunk of 256 elements. */
START_TEST(test_p16f_layout)
{
    rng_seed(0x916u + (uint64_t)_i);
    const int c = 12 + _i, dtype = cases[c].dtype;
    static const int cuts67[] = {0, 3, 16, 21, 48, 63, 64, 67};
    static const int cuts1[] = {0, 1};
    static const int cuts19[] = {0, 1, 2, 17, 19};
    check_layout(GMK_LAYOUT_P16, c, 67, case_len(c, 2), cuts67, 8);
    check_layout(GMK_LAYOUT_P16, c, 1, 2, cuts1, 2);
    check_layout(GMK_LAYOUT_P16, c, 19, 600, cuts19, 5);
    check_read_back(GMK_LAYOUT_P16, dtype, 19, 300, 1, 70, 130);
    /* more tokens than one activation copy holds (GMK_X86_P16F_XT = 64) */
    enum { NT = 70, NO = 35, NI = 300 };
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    uint8_t *w = make_weights(dtype, NO, NI, 1);
    uint8_t *pw = malloc((size_t)gmk_layout_bytes(GMK_LAYOUT_P16, dtype, NO, NI));
    float *x = malloc((size_t)NT * NI * sizeof *x), *want = malloc(NT * NO * sizeof *want),
          *got = malloc(NT * NO * sizeof *got);
    ck_assert(pw && x && want && got);
    gmk_layout_pack(pw, w, GMK_LAYOUT_P16, dtype, NO, NI);
    for (int i = 0; i < NT * NI; i++)
        x[i] = rng_unit();
    for (int l = 0; l < n_lv; l++) {
        if (!((lv[l]->layouts >> (GMK_LAYOUT_P16 >> GMK_LAYOUT_SHIFT)) & 1))
            continue;
        uint8_t *xq = make_act(lv[l], GMK_ACT_F32, x, NT, NI);
        exact_flt(dtype, want, NO, w, xq, NT, NO, NI);
        lv[l]->matmul_rows(got, NO, pw, dtype | GMK_LAYOUT_P16, xq, GMK_ACT_F32, NT, 0, 20, NI);
        lv[l]->matmul_rows(got, NO, pw, dtype | GMK_LAYOUT_P16, xq, GMK_ACT_F32, NT, 20, NO, NI);
        ck_assert_msg(memcmp(want, got, sizeof(float) * NT * NO) == 0,
                      "%s dtype %d: P16 with %d tokens differs from the chains", lv[l]->name,
                      dtype, NT);
        free(xq);
    }
    free(x);
    free(want);
    free(got);
    free(pw);
    free_weights(w, dtype);
}
END_TEST

/* gmk_attention as the AVX-512 levels compile it (4 rows × 4 keys of
 * scores at a time, gmk_attn_dots4x4) gives the bits of the AVX2 level's
 * (the portable loops with fma; test_kernels checks those loops against the
 * double-precision reference and across tilings; the baseline level has no
 * fma, so other bits): GQA groups of 4 and 8, a window across softmax
 * chunks in a ring, soft-cap, head dims with a tail, one-token decode, f16
 * and f32 caches. */
START_TEST(test_attention_levels)
{
    static const struct {
        int n_tok, pos0, H, KV, hd, window, slots, f16;
        float softcap;
    } cases[] = {
        {70, 480, 4, 1, 256, 512, 581, 1, 0.0f}, {20, 0, 8, 1, 256, 0, 20, 0, 0.0f},
        {33, 5, 6, 2, 40, 17, 60, 1, 2.5f},      {1, 300, 4, 1, 256, 0, 400, 1, 0.0f},
        {9, 0, 4, 1, 9, 0, 9, 0, 0.0f},          {12, 40, 8, 2, 24, 0, 52, 0, 30.0f},
    };
    rng_seed(0xa77u);
    const gmc_x86_isa *lv[N_LEVELS], *v3 = NULL;
    int n_lv = cpu_levels(lv);
    for (int l = 0; l < n_lv; l++)
        if (lv[l] == &gmk_isa_v3)
            v3 = lv[l];
    if (!v3) {
        fprintf(stderr, "x86: CPU lacks AVX2, attention levels not compared\n");
        return;
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int hd = cases[c].hd, kvd = cases[c].KV * hd, n_q = cases[c].n_tok * cases[c].H * hd;
        const size_t n_kv = (size_t)cases[c].slots * (size_t)kvd;
        const int dt = cases[c].f16 ? GMK_DTYPE_F16 : GMK_DTYPE_F32;
        const size_t esz = cases[c].f16 ? 2 : 4;
        uint8_t *kc = malloc(n_kv * esz), *vc = malloc(n_kv * esz);
        float *q = malloc((size_t)n_q * sizeof *q), *want = malloc((size_t)n_q * sizeof *want),
              *got = malloc((size_t)n_q * sizeof *got);
        ck_assert(kc && vc && q && want && got);
        for (size_t i = 0; i < n_kv; i++) {
            float kf = 2.0f * rng_unit(), vf = rng_unit();
            if (cases[c].f16) {
                uint16_t hk = gmk_f32_to_f16(kf), hv = gmk_f32_to_f16(vf);
                memcpy(kc + 2 * i, &hk, 2);
                memcpy(vc + 2 * i, &hv, 2);
            } else {
                memcpy(kc + 4 * i, &kf, 4);
                memcpy(vc + 4 * i, &vf, 4);
            }
        }
        for (int i = 0; i < n_q; i++)
            q[i] = 0.3f * rng_unit();
        v3->attention(want, q, kc, vc, dt, cases[c].n_tok, cases[c].pos0, cases[c].H, cases[c].KV,
                      hd, cases[c].window, cases[c].slots, cases[c].softcap, 0, 1);
        for (int l = 0; l < n_lv; l++) {
            if (lv[l] == &gmk_isa_base || lv[l] == v3)
                continue;
            memset(got, 0xff, (size_t)n_q * sizeof *got);
            lv[l]->attention(got, q, kc, vc, dt, cases[c].n_tok, cases[c].pos0, cases[c].H,
                             cases[c].KV, hd, cases[c].window, cases[c].slots, cases[c].softcap,
                             0, 1);
            ck_assert_msg(memcmp(want, got, (size_t)n_q * sizeof *got) == 0,
                          "%s: attention case %zu differs from v3's", lv[l]->name, c);
        }
        free(kc);
        free(vc);
        free(q);
        free(want);
        free(got);
    }
}
END_TEST

/* Which weights take a layout: every 2-D matrix; a 3-D stack (MoE experts)
 * only where the layout stacks and each matrix is whole panels, so that
 * matrix e starts at e times its packed size (the expert kernels' offsets);
 * the names come from one table. */
START_TEST(test_layout_for)
{
    const int64_t m2[3] = {64, 7, 1}, whole[3] = {64, 16, 4}, part[3] = {64, 12, 4};
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P8, 2, m2), GMK_LAYOUT_P8);
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P8, 3, whole), GMK_LAYOUT_P8);
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P8, 3, part), GMK_LAYOUT_PACKED);
    /* a gate/up pair of 2 x 12 rows: the up half would start mid-panel */
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P8, 3, (const int64_t[]){64, 24, 4}),
                     GMK_LAYOUT_PACKED);
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P16, 3, whole), GMK_LAYOUT_PACKED);
    ck_assert_int_eq(gmk_layout_for(GMK_LAYOUT_P16, 2, m2), GMK_LAYOUT_P16);
    ck_assert_int_eq(gmk_layout_all_rows(3, whole), 64);
    ck_assert_uint_eq(gmk_layout_bytes(GMK_LAYOUT_P8, GMK_DTYPE_Q4_0, 64, 64),
                      gmk_layout_bytes(GMK_LAYOUT_PACKED, GMK_DTYPE_Q4_0, 64, 64));
    ck_assert_uint_eq(gmk_layout_bytes(GMK_LAYOUT_P8, GMK_DTYPE_Q4_0, 7, 64),
                      gmk_layout_bytes(GMK_LAYOUT_PACKED, GMK_DTYPE_Q4_0, 8, 64));
    ck_assert_str_eq(gmk_layout_name(GMK_LAYOUT_P8), "p8");
    ck_assert_str_eq(gmk_layout_const(GMK_LAYOUT_P16), "GMK_LAYOUT_P16");
    ck_assert_str_eq(gmk_layout_name(GMK_LAYOUT_PACKED), "packed");
}
END_TEST

/* Shapes and formats the compiler never emits give zeros, not reads past
 * the buffers: n_in not a multiple of the block, an unknown format. */
START_TEST(test_bad_shapes)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    gmk_act_q8_0 xq[4];
    memset(xq, 0x11, sizeof xq);
    uint8_t w[3 * 4 * 34];
    memset(w, 0x22, sizeof w);
    for (int l = 0; l < n_lv; l++) {
        float y[3] = {1, 2, 3};
        lv[l]->matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, GMK_ACT_Q8_0, 1, 0, 3, 48);
        for (int i = 0; i < 3; i++)
            ck_assert(y[i] == 0.0f);
        y[0] = 5;
        lv[l]->matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, 99, 1, 0, 3, 64);
        ck_assert(y[0] == 0.0f);
        lv[l]->act_row(xq, 99, (const float *)w, 64); /* no write at all */
        ck_assert_uint_eq(((const uint8_t *)xq)[0], 0x11);
    }
}
END_TEST

Suite *x86_suite(void)
{
    Suite *s = suite_create("x86");
    TCase *tc = tcase_create("matmul");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_nmse, 0, N_CASES);
    tcase_add_loop_test(tc, test_bit_identical, 0, N_CASES);
    tcase_add_loop_test(tc, test_p16_layout, 0, 8);
    tcase_add_loop_test(tc, test_p8_layout, 0, 6);
    tcase_add_loop_test(tc, test_p8k_layout, 0, 3);
    tcase_add_loop_test(tc, test_p16k_layout, 0, 3);
    tcase_add_loop_test(tc, test_p8f_layout, 0, 2);
    tcase_add_loop_test(tc, test_p16f_layout, 0, 2);
    tcase_add_test(tc, test_attention_levels);
    tcase_add_test(tc, test_layout_for);
    tcase_add_test(tc, test_act_quant);
    tcase_add_test(tc, test_act_degenerate);
    tcase_add_test(tc, test_bad_shapes);
    tcase_add_test(tc, test_act_levels_agree);
    suite_add_tcase(s, tc);
    return s;
}

#else /* not x86-64: nothing to run */

START_TEST(test_not_x86)
{
    printf("x86: not an x86-64 build, suite skipped\n");
}
END_TEST

/* Every level converts activations to the same bytes as the baseline,
 * including NaN, ±inf, -0, halfway values and all-equal blocks. */
START_TEST(test_act_levels_agree)
{
    rng_seed(0xac7u);
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    enum { N = 2048 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_unit() * (i < 1024 ? 1.0f : 1e-30f);
    for (int i = 0; i < 32; i++) /* block 0: d = 1, halfway values (ties) */
        x[i] = i == 0 ? 127.0f : (float)(i - 16) + 0.5f;
    x[40] = NAN, x[41] = -0.0f, x[300] = INFINITY, x[600] = -INFINITY;
    for (int i = 512; i < 544; i++) /* a constant block */
        x[i] = -0.25f;
    for (int fmt = GMK_ACT_Q8_0; fmt <= GMK_ACT_BF16; fmt++) {
        uint8_t *base = make_act(lv[0], fmt, x, 1, N);
        if (fmt == GMK_ACT_Q8_0) { /* halfway rounds away from zero: 2.5 → 3, -3.5 → -4 */
            const gmk_act_q8_0 *b = (const gmk_act_q8_0 *)base;
            ck_assert(b->d == 1.0f);
            ck_assert_int_eq(b->qs[18], 3);
            ck_assert_int_eq(b->qs[12], -4);
            ck_assert_int_eq(b->qs[16], 1);
        }
        for (int l = 1; l < n_lv; l++) {
            uint8_t *xq = make_act(lv[l], fmt, x, 1, N);
            ck_assert_msg(memcmp(base, xq, gmk_act_row_bytes(fmt, N)) == 0,
                          "%s fmt %d differs from the baseline", lv[l]->name, fmt);
            free(xq);
        }
        free(base);
    }
}
END_TEST

/* Shapes and formats the compiler never emits give zeros, not reads past
 * the buffers: n_in not a multiple of the block, an unknown format. */
START_TEST(test_bad_shapes)
{
    const gmc_x86_isa *lv[N_LEVELS];
    int n_lv = cpu_levels(lv);
    gmk_act_q8_0 xq[4];
    memset(xq, 0x11, sizeof xq);
    uint8_t w[3 * 4 * 34];
    memset(w, 0x22, sizeof w);
    for (int l = 0; l < n_lv; l++) {
        float y[3] = {1, 2, 3};
        lv[l]->matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, GMK_ACT_Q8_0, 1, 0, 3, 48);
        for (int i = 0; i < 3; i++)
            ck_assert(y[i] == 0.0f);
        y[0] = 5;
        lv[l]->matmul_rows(y, 3, w, GMK_DTYPE_Q8_0, xq, 99, 1, 0, 3, 64);
        ck_assert(y[0] == 0.0f);
        lv[l]->act_row(xq, 99, (const float *)w, 64); /* no write at all */
        ck_assert_uint_eq(((const uint8_t *)xq)[0], 0x11);
    }
}
END_TEST

Suite *x86_suite(void)
{
    Suite *s = suite_create("x86");
    TCase *tc = tcase_create("skip");
    tcase_add_test(tc, test_not_x86);
    suite_add_tcase(s, tc);
    return s;
}

#endif
