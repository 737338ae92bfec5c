/*
 * test_kernels.c — the generic kernels (gmk_generic.h) and dequantization
 * (gmk_quant.h).
 *
 * Conversions and block formats are checked against hand-built values from
 * the spec's formulas (docs/models.md#quant-weights); every kernel is compared with a
 * deliberately naive double-precision reference on random data of odd shapes,
 * with the NMSE thresholds of docs/input-checks.md §4.1, and run with nth = 1, 2, 3
 * to check that its output does not depend on the thread count.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gmk_generic.h"
#include "gmk_quant.h"
#include "math_hash.h"

/* ------------------------------------------------------------ helpers */

/* splitmix64: a fixed, seedable stream so failures reproduce. */
static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s;
}

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

static float *rand_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rng_unit() * scale;
    return p;
}

static float *copy_floats(const float *src, size_t n)
{
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* NMSE = Σ(a − ref)² / Σ ref², the metric of docs/input-checks.md §4.1. */
static double nmse(const float *a, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

static double *alloc_doubles(size_t n)
{
    double *p = calloc(n, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Runs CALL for every ith of nth, one after the other; for nth = 3 in
 * reverse order, since real threads finish in any order. */
#define FOR_EACH_THREAD(nth, CALL)                                  \
    do {                                                            \
        for (int k_ = 0; k_ < (nth); k_++) {                        \
            int ith = (nth) == 3 ? (nth) - 1 - k_ : k_;             \
            CALL;                                                   \
        }                                                           \
    } while (0)

/* ------------------------------------------------------------ gmk_range */

START_TEST(test_range_covers)
{
    for (int64_t n = 0; n <= 50; n++) {
        for (int nth = 1; nth <= 8; nth++) {
            int64_t expect_lo = 0, min_sz = n, max_sz = 0;
            for (int ith = 0; ith < nth; ith++) {
                int64_t lo, hi;
                gmk_range(n, ith, nth, &lo, &hi);
                ck_assert_int_eq(lo, expect_lo); /* contiguous, in order */
                ck_assert_int_ge(hi, lo);
                min_sz = hi - lo < min_sz ? hi - lo : min_sz;
                max_sz = hi - lo > max_sz ? hi - lo : max_sz;
                expect_lo = hi;
            }
            ck_assert_int_eq(expect_lo, n);
            ck_assert_int_le(max_sz - min_sz, 1);
        }
    }
    int64_t lo = 7, hi = 9;
    gmk_range(10, 3, 3, &lo, &hi); /* ith out of range: empty */
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 0);
    gmk_range(10, 0, 4, &lo, &hi); /* 10 over 4: 3 3 2 2 */
    ck_assert_int_eq(hi - lo, 3);
    gmk_range(10, 3, 4, &lo, &hi);
    ck_assert_int_eq(lo, 8);
    ck_assert_int_eq(hi, 10);
}
END_TEST

/* ------------------------------------------------------------ conversions */

START_TEST(test_f16_to_f32_special)
{
    ck_assert(gmk_f16_to_f32(0x0000) == 0.0f && !signbit(gmk_f16_to_f32(0x0000)));
    ck_assert(gmk_f16_to_f32(0x8000) == 0.0f && signbit(gmk_f16_to_f32(0x8000)));
    ck_assert(gmk_f16_to_f32(0x3c00) == 1.0f);
    ck_assert(gmk_f16_to_f32(0xc000) == -2.0f);
    ck_assert(gmk_f16_to_f32(0x3555) == 0x1.554p-2f);
    ck_assert(gmk_f16_to_f32(0x7bff) == 65504.0f);
    ck_assert(gmk_f16_to_f32(0x0400) == 0x1p-14f);        /* smallest normal */
    ck_assert(gmk_f16_to_f32(0x0001) == 0x1p-24f);        /* smallest subnormal */
    ck_assert(gmk_f16_to_f32(0x03ff) == 1023 * 0x1p-24f); /* largest subnormal */
    ck_assert(gmk_f16_to_f32(0x8001) == -0x1p-24f);
    ck_assert(isinf(gmk_f16_to_f32(0x7c00)) && gmk_f16_to_f32(0x7c00) > 0);
    ck_assert(isinf(gmk_f16_to_f32(0xfc00)) && gmk_f16_to_f32(0xfc00) < 0);
    ck_assert(isnan(gmk_f16_to_f32(0x7e00)));
    ck_assert(isnan(gmk_f16_to_f32(0x7c01))); /* signalling NaN stays NaN */
    ck_assert_uint_eq(gmk_f32_bits(gmk_f16_to_f32(0x7d00)), 0x7fa00000u); /* payload kept */
}
END_TEST

START_TEST(test_f32_to_f16_rounding)
{
    ck_assert_uint_eq(gmk_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(gmk_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(gmk_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(gmk_f32_to_f16(65519.99f), 0x7bff); /* below the halfway point */
    ck_assert_uint_eq(gmk_f32_to_f16(65520.0f), 0x7c00);  /* tie, 0x7bff odd → inf */
    ck_assert_uint_eq(gmk_f32_to_f16(1e10f), 0x7c00);
    ck_assert_uint_eq(gmk_f32_to_f16(-INFINITY), 0xfc00);
    ck_assert_uint_eq(gmk_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie → even */
    ck_assert_uint_eq(gmk_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie → even */
    ck_assert_uint_eq(gmk_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    ck_assert_uint_eq(gmk_f32_to_f16(0x1p-24f), 0x0001);
    ck_assert_uint_eq(gmk_f32_to_f16(0x1p-25f), 0x0000);         /* tie → even 0 */
    ck_assert_uint_eq(gmk_f32_to_f16(0x1.01p-25f), 0x0001);      /* just above tie */
    ck_assert_uint_eq(gmk_f32_to_f16(3 * 0x1p-25f), 0x0002);     /* 1.5 ulp → 2 */
    ck_assert_uint_eq(gmk_f32_to_f16(5 * 0x1p-25f), 0x0002);     /* 2.5 ulp → 2 */
    ck_assert_uint_eq(gmk_f32_to_f16(-1e-30f), 0x8000);
    ck_assert_uint_eq(gmk_f32_to_f16(0x1.ff8p-15f), 0x03ff);     /* largest subnormal */
    ck_assert_uint_eq(gmk_f32_to_f16(0x1.ffcp-15f), 0x0400);     /* tie → even: normal */
    ck_assert_uint_eq(gmk_f32_to_f16(0x1.ff8p-16f), 0x0200);     /* 511.5 ulp, tie → 512 */
    ck_assert_uint_eq(gmk_f32_to_f16(0x1.ff4p-16f), 0x01ff);     /* 511.25 ulp → 511 */
    uint16_t n = gmk_f32_to_f16(NAN);
    ck_assert_uint_eq(n & 0x7e00, 0x7e00); /* quiet NaN */
    n = gmk_f32_to_f16(gmk_bits_f32(0x7f800001u)); /* signalling, payload in low bits */
    ck_assert_uint_eq(n & 0x7e00, 0x7e00);
}
END_TEST

/* Every finite or infinite f16 survives f16 → f32 → f16 unchanged. */
START_TEST(test_f16_round_trip)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu))
            continue; /* NaN: only quietness is promised */
        ck_assert_uint_eq(gmk_f32_to_f16(gmk_f16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(test_bf16)
{
    ck_assert(gmk_bf16_to_f32(0x3f80) == 1.0f);
    ck_assert(gmk_bf16_to_f32(0xc0a0) == -5.0f);
    ck_assert_uint_eq(gmk_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x3f808000u)), 0x3f80); /* tie → even */
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x3f818000u)), 0x3f82); /* tie → even */
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x3f808001u)), 0x3f81);
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x3f807fffu)), 0x3f80);
    ck_assert_uint_eq(gmk_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x7f7fffffu)), 0x7f80); /* rounds to inf */
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0x7f800001u)), 0x7fc0); /* NaN, quiet */
    ck_assert_uint_eq(gmk_f32_to_bf16(gmk_bits_f32(0xffffffffu)), 0xffff);
    ck_assert_uint_eq(gmk_f32_to_bf16(sqrtf(3072.0f)), 0x425e); /* 55.5, docs/models.md#embedding-scale */
}
END_TEST

START_TEST(test_dtype_sizes)
{
    static const struct { int dtype; int64_t block; size_t bytes; } t[] = {
        {GMK_DTYPE_F32, 1, 4},     {GMK_DTYPE_F16, 1, 2},      {GMK_DTYPE_BF16, 1, 2},
        {GMK_DTYPE_Q4_0, 32, 18},  {GMK_DTYPE_Q4_1, 32, 20},   {GMK_DTYPE_Q5_0, 32, 22},
        {GMK_DTYPE_Q5_1, 32, 24},  {GMK_DTYPE_Q8_0, 32, 34},   {GMK_DTYPE_Q8_1, 32, 36},
        {GMK_DTYPE_Q2_K, 256, 84}, {GMK_DTYPE_Q3_K, 256, 110}, {GMK_DTYPE_Q4_K, 256, 144},
        {GMK_DTYPE_Q5_K, 256, 176}, {GMK_DTYPE_Q6_K, 256, 210}, {GMK_DTYPE_Q8_K, 256, 292},
        {4, 0, 0}, {5, 0, 0}, {-1, 0, 0}, {GMK_DTYPE_COUNT, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ck_assert_int_eq(gmk_dtype_block(t[i].dtype), t[i].block);
        ck_assert_uint_eq(gmk_dtype_block_bytes(t[i].dtype), t[i].bytes);
    }
}
END_TEST

/* ------------------------------------------------------------ block formats */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Dequantizes one block of dtype stored at an odd address (the kernels must
 * not assume alignment) and checks it against the aligned result. */
static void dequant_unaligned(int dtype, const uint8_t *blk, float *y)
{
    size_t bytes = gmk_dtype_block_bytes(dtype);
    int64_t n = gmk_dtype_block(dtype);
    uint8_t *shifted = malloc(bytes + 1);
    float *y2 = malloc((size_t)n * sizeof *y2);
    ck_assert(shifted && y2);
    memcpy(shifted + 1, blk, bytes);
    gmk_dequantize_row(dtype, blk, y, n);
    gmk_dequantize_row(dtype, shifted + 1, y2, n);
    ck_assert_mem_eq(y, y2, (size_t)n * sizeof *y);
    free(shifted);
    free(y2);
}

START_TEST(test_q4_0)
{
    uint8_t b[18];
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    dequant_unaligned(GMK_DTYPE_Q4_0, b, y);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == -4.0f + 0.5f * (float)j);        /* nibbles 0..15 → -4..3.5 */
        ck_assert(y[j + 16] == 3.5f - 0.5f * (float)j);    /* high nibbles 15..0 */
    }
}
END_TEST

START_TEST(test_q4_1)
{
    uint8_t b[20];
    put16(b, 0x3400);     /* d = 0.25 */
    put16(b + 2, 0xbc00); /* m = -1 */
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    dequant_unaligned(GMK_DTYPE_Q4_1, b, y);
    ck_assert(y[0] == -1.0f && y[15] == 2.75f && y[16] == 2.75f && y[31] == -1.0f);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == 0.25f * (float)j - 1.0f);
        ck_assert(y[j + 16] == 0.25f * (float)(15 - j) - 1.0f);
    }
}
END_TEST

START_TEST(test_q5_0_q5_1)
{
    /* qh = 0xAAAA5555: elements 0,2,..,14 and 17,19,..,31 get bit 4 */
    uint8_t b0[22], b1[24];
    put16(b0, 0x3c00); /* d = 1 */
    b0[2] = 0x55, b0[3] = 0x55, b0[4] = 0xaa, b0[5] = 0xaa;
    put16(b1, 0x3800);     /* d = 0.5 */
    put16(b1 + 2, 0x4000); /* m = 2 */
    memcpy(b1 + 4, b0 + 2, 4);
    for (int j = 0; j < 16; j++)
        b0[6 + j] = b1[8 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y0[32], y1[32];
    dequant_unaligned(GMK_DTYPE_Q5_0, b0, y0);
    dequant_unaligned(GMK_DTYPE_Q5_1, b1, y1);
    ck_assert(y0[0] == 0.0f);   /* (0 | 16) - 16 */
    ck_assert(y0[1] == -15.0f); /* 1 - 16 */
    ck_assert(y0[14] == 14.0f); /* (14 | 16) - 16 */
    ck_assert(y0[16] == -1.0f); /* high nibble 15, bit 16 clear */
    ck_assert(y0[17] == 14.0f); /* (14 | 16) - 16 */
    ck_assert(y1[0] == 10.0f);  /* 16 · 0.5 + 2 */
    ck_assert(y1[31] == 10.0f); /* (0 | 16) · 0.5 + 2 */
    for (int j = 0; j < 16; j++) {
        int lo = j + (j % 2 == 0 ? 16 : 0), hi = (15 - j) + (j % 2 == 1 ? 16 : 0);
        ck_assert(y0[j] == (float)(lo - 16));
        ck_assert(y0[j + 16] == (float)(hi - 16));
        ck_assert(y1[j] == (float)lo * 0.5f + 2.0f);
        ck_assert(y1[j + 16] == (float)hi * 0.5f + 2.0f);
    }
}
END_TEST

START_TEST(test_q8_0)
{
    uint8_t b[34];
    put16(b, 0x3000); /* d = 0.125 */
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j * 8 - 128);
    float y[32];
    dequant_unaligned(GMK_DTYPE_Q8_0, b, y);
    ck_assert(y[0] == -16.0f && y[16] == 0.0f && y[31] == 15.0f);
    for (int j = 0; j < 32; j++)
        ck_assert(y[j] == (float)(j * 8 - 128) * 0.125f);
}
END_TEST

/* K-quant scales chosen by hand: sub-blocks 4–7 need their top bits from the
 * spare bits of bytes 0–7 (sc 17 = 01|0001, 33 = 10|0001, 50 = 11|0010,
 * 63 = 11|1111; m 20 = 01|0100, 36 = 10|0100, 48 = 11|0000, 1 = 00|0001). */
static const uint8_t k_scales[12] = {0x41, 0x82, 0xc3, 0xc4, 0x40, 0x85,
                                     0xca, 0x3f, 0x41, 0x41, 0x02, 0x1f};
static const int k_sc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
static const int k_m[8] = {0, 5, 10, 63, 20, 36, 48, 1};

START_TEST(test_scale_min_k4)
{
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        gmk_scale_min_k4(j, k_scales, &sc, &m);
        ck_assert_int_eq(sc, k_sc[j]);
        ck_assert_int_eq(m, k_m[j]);
    }
}
END_TEST

START_TEST(test_q4_k)
{
    uint8_t b[144];
    put16(b, 0x3c00);     /* d = 1 */
    put16(b + 2, 0x3800); /* dmin = 0.5 */
    memcpy(b + 4, k_scales, 12);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b[16 + 32 * c + l] = (uint8_t)((l % 16) | (((l + c) % 16) << 4));
    float y[256];
    dequant_unaligned(GMK_DTYPE_Q4_K, b, y);
    ck_assert(y[0] == 0.0f);           /* 1·0 − 0.5·0 */
    ck_assert(y[33] == 2.0f - 2.5f);   /* sub-block 1: 2·1 − 0.5·5 */
    ck_assert(y[64 + 15] == 45.0f - 5.0f);    /* sub-block 2: 3·15 − 0.5·10 */
    ck_assert(y[192 + 3] == 150.0f - 24.0f);  /* sub-block 6: 50·3 − 0.5·48 */
    ck_assert(y[224 + 0] == 189.0f - 0.5f);   /* sub-block 7: 63·((0+3)%16) − 0.5·1 */
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            float lo = (float)(k_sc[2 * c] * (l % 16)) - 0.5f * (float)k_m[2 * c];
            float hi = (float)(k_sc[2 * c + 1] * ((l + c) % 16)) - 0.5f * (float)k_m[2 * c + 1];
            ck_assert(y[64 * c + l] == lo);
            ck_assert(y[64 * c + 32 + l] == hi);
        }
    }
}
END_TEST

START_TEST(test_q5_k)
{
    uint8_t b[176];
    put16(b, 0x3400);     /* d = 0.25 */
    put16(b + 2, 0x3c00); /* dmin = 1 */
    memcpy(b + 4, k_scales, 12);
    for (int l = 0; l < 32; l++)
        b[16 + l] = (uint8_t)(l * 37 + 11); /* qh: a different bit mix per l */
    b[16] = 0xff;                            /* element 64c and 64c+32: all high */
    b[17] = 0x00;
    for (int i = 0; i < 128; i++)
        b[48 + i] = (uint8_t)(i * 7);
    float y[256];
    dequant_unaligned(GMK_DTYPE_Q5_K, b, y);
    /* qs[0] = 0: low 0, high 0; qh[0] all set → q = 16 in every chunk */
    ck_assert(y[0] == 0.25f * 16.0f - 0.0f);
    ck_assert(y[32] == 0.25f * 2.0f * 16.0f - 5.0f);
    /* sub-block 7: qs[96] = 0xa0, high nibble 10, plus bit 7 of qh[0] → 26 */
    ck_assert(y[224] == 0.25f * 63.0f * 26.0f - 1.0f);
    /* qs[1] = 7: low 7, high 0; qh[1] = 0 → q = 7 / 0 */
    ck_assert(y[1] == 0.25f * 7.0f);
    ck_assert(y[33] == -5.0f);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            int qs = (uint8_t)((32 * c + l) * 7), qh = b[16 + l];
            int lo = (qs & 15) + ((qh >> (2 * c)) & 1) * 16;
            int hi = (qs >> 4) + ((qh >> (2 * c + 1)) & 1) * 16;
            ck_assert(y[64 * c + l] ==
                      0.25f * (float)k_sc[2 * c] * (float)lo - (float)k_m[2 * c]);
            ck_assert(y[64 * c + 32 + l] ==
                      0.25f * (float)k_sc[2 * c + 1] * (float)hi - (float)k_m[2 * c + 1]);
        }
    }
}
END_TEST

START_TEST(test_q6_k)
{
    static const int8_t scales[16] = {1, -2,  3,   -4, 5,   -6, 7,  -8,
                                      9, -10, 11, -12, 13, -14, 15, -128};
    uint8_t b[210];
    for (int i = 0; i < 128; i++)
        b[i] = (uint8_t)(i * 13 + 5); /* ql */
    for (int i = 0; i < 64; i++)
        b[128 + i] = (uint8_t)(i * 29 + 3); /* qh */
    b[0] = 0x21, b[32] = 0x43, b[128] = 0xe4; /* element 0,32,64,96: hand values */
    memcpy(b + 192, scales, 16);
    put16(b + 208, 0x3800); /* d = 0.5 */
    float y[256];
    dequant_unaligned(GMK_DTYPE_Q6_K, b, y);
    /* qh[0] = 11 10 01 00: quarters 0..3 take high bits 0, 1, 2, 3 */
    ck_assert(y[0] == 0.5f * 1.0f * (float)((0x1 | 0 << 4) - 32));   /* ql[0] low, scale 0 */
    ck_assert(y[32] == 0.5f * 3.0f * (float)((0x3 | 1 << 4) - 32));  /* ql[32] low, scale 2 */
    ck_assert(y[64] == 0.5f * 5.0f * (float)((0x2 | 2 << 4) - 32));  /* ql[0] high, scale 4 */
    ck_assert(y[96] == 0.5f * 7.0f * (float)((0x4 | 3 << 4) - 32));  /* ql[32] high, scale 6 */
    for (int e = 0; e < 256; e++) { /* the layout restated per element */
        int n = e / 128, k = (e % 128) / 32, l = e % 32;
        int qlb = b[64 * n + l + (k & 1) * 32];
        int nib = k >= 2 ? qlb >> 4 : qlb & 15;
        int hb = (b[128 + 32 * n + l] >> (2 * k)) & 3;
        int sc = scales[8 * n + l / 16 + 2 * k];
        ck_assert(y[e] == 0.5f * (float)sc * (float)((nib | hb << 4) - 32));
    }
}
END_TEST

START_TEST(test_dequant_plain_and_unknown)
{
    uint8_t raw[16];
    float f[4] = {1.5f, -2.0f, 0.0f, 1e-3f}, y[8];
    memcpy(raw, f, sizeof f);
    gmk_dequantize_row(GMK_DTYPE_F32, raw, y, 4);
    ck_assert_mem_eq(y, f, sizeof f);
    for (int i = 0; i < 4; i++) {
        put16(raw + 2 * i, gmk_f32_to_f16(f[i]));
    }
    gmk_dequantize_row(GMK_DTYPE_F16, raw, y, 4);
    ck_assert(y[0] == 1.5f && y[1] == -2.0f && y[2] == 0.0f && y[3] == gmk_f16_to_f32(0x1419));
    for (int i = 0; i < 4; i++)
        put16(raw + 2 * i, gmk_f32_to_bf16(f[i]));
    gmk_dequantize_row(GMK_DTYPE_BF16, raw, y, 4);
    ck_assert(y[0] == 1.5f && y[1] == -2.0f && y[2] == 0.0f && y[3] == gmk_bits_f32(0x3a830000u));
    uint8_t q2k[84];
    memset(q2k, 0x5a, sizeof q2k);
    float z[256];
    for (int i = 0; i < 256; i++)
        z[i] = 7.0f;
    gmk_dequantize_row(GMK_DTYPE_Q2_K, q2k, z, 256); /* not supported: zeros */
    for (int i = 0; i < 256; i++)
        ck_assert(z[i] == 0.0f);
}
END_TEST

/* ------------------------------------------------------------ matmul */

/* Random weight rows of dtype with sane scales: raw random bytes, then every
 * f16 scale field overwritten with a small finite value. */
static uint8_t *rand_weights(int dtype, int n_out, int n_in, size_t *out_row_bytes)
{
    int64_t blk = gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype), row = (size_t)(n_in / blk) * bb;
    size_t nblk = (size_t)n_out * (size_t)(n_in / blk);
    uint8_t *w = malloc(row * (size_t)n_out);
    ck_assert_ptr_nonnull(w);
    for (size_t i = 0; i < row * (size_t)n_out; i++)
        w[i] = (uint8_t)rng_next();
    for (size_t i = 0; i < nblk; i++) {
        uint8_t *b = w + i * bb;
        switch (dtype) {
        case GMK_DTYPE_F32: { float v = rng_unit(); memcpy(b, &v, 4); break; }
        case GMK_DTYPE_F16: put16(b, gmk_f32_to_f16(rng_unit())); break;
        case GMK_DTYPE_BF16: put16(b, gmk_f32_to_bf16(rng_unit())); break;
        case GMK_DTYPE_Q4_1: case GMK_DTYPE_Q5_1: case GMK_DTYPE_Q4_K: case GMK_DTYPE_Q5_K:
            put16(b + 2, gmk_f32_to_f16(rng_unit() * 0.05f));
            put16(b, gmk_f32_to_f16(rng_unit() * 0.05f));
            break;
        case GMK_DTYPE_Q6_K: put16(b + 208, gmk_f32_to_f16(rng_unit() * 0.01f)); break;
        default: put16(b, gmk_f32_to_f16(rng_unit() * 0.05f)); break;
        }
    }
    *out_row_bytes = row;
    return w;
}

/* Naive reference: dequantize each row, accumulate in double. */
static void matmul_ref(double *ref, int ldy, const uint8_t *W, size_t row_bytes, int dtype,
                       const float *x, int n_tok, int n_out, int n_in)
{
    float *row = malloc((size_t)n_in * sizeof *row);
    ck_assert_ptr_nonnull(row);
    for (int r = 0; r < n_out; r++) {
        gmk_dequantize_row(dtype, W + (size_t)r * row_bytes, row, n_in);
        for (int t = 0; t < n_tok; t++) {
            double s = 0;
            for (int k = 0; k < n_in; k++)
                s += (double)row[k] * (double)x[(size_t)t * n_in + k];
            ref[(size_t)t * ldy + r] = s;
        }
    }
    free(row);
}

static void check_matmul(int dtype, int n_tok, int n_out, int n_in)
{
    size_t row_bytes;
    uint8_t *W = rand_weights(dtype, n_out, n_in, &row_bytes);
    float *x = rand_floats((size_t)n_tok * n_in, 1.0f);
    int ldy = n_out + 3; /* padding columns must stay untouched */
    size_t ny = (size_t)n_tok * ldy;
    double *ref = alloc_doubles(ny);
    matmul_ref(ref, ldy, W, row_bytes, dtype, x, n_tok, n_out, n_in);
    float *y[3];
    for (int nth = 1; nth <= 3; nth++) {
        y[nth - 1] = malloc(ny * sizeof(float));
        ck_assert_ptr_nonnull(y[nth - 1]);
        for (size_t i = 0; i < ny; i++)
            y[nth - 1][i] = -12345.0f;
        FOR_EACH_THREAD(nth,
                        gmk_matmul(y[nth - 1], ldy, W, dtype, x, n_tok, n_out, n_in, ith, nth));
    }
    for (int t = 0; t < n_tok; t++) {
        for (int r = n_out; r < ldy; r++)
            ck_assert(y[0][(size_t)t * ldy + r] == -12345.0f);
        for (int r = n_out; r < ldy; r++)
            ref[(size_t)t * ldy + r] = -12345.0;
    }
    double e = nmse(y[0], ref, ny);
    ck_assert_msg(e <= 1e-5, "matmul dtype %d %dx%dx%d: NMSE %g", dtype, n_tok, n_out, n_in, e);
    ck_assert_mem_eq(y[0], y[1], ny * sizeof(float));
    ck_assert_mem_eq(y[0], y[2], ny * sizeof(float));
    /* batch invariance: token t alone gives the same bits as in the batch */
    for (int t = 0; t < n_tok; t++) {
        gmk_matmul(y[1], ldy, W, dtype, x + (size_t)t * n_in, 1, n_out, n_in, 0, 1);
        ck_assert_mem_eq(y[1], y[0] + (size_t)t * ldy, (size_t)n_out * sizeof(float));
    }
    for (int i = 0; i < 3; i++)
        free(y[i]);
    free(W);
    free(x);
    free(ref);
}

START_TEST(test_matmul_float_types)
{
    rng_seed(11);
    static const int dt[] = {GMK_DTYPE_F32, GMK_DTYPE_F16, GMK_DTYPE_BF16};
    for (size_t i = 0; i < 3; i++) {
        check_matmul(dt[i], 1, 1, 1);
        check_matmul(dt[i], 3, 5, 77);
        check_matmul(dt[i], 7, 13, 640);
        check_matmul(dt[i], 2, 3, GMK_MATMUL_CHUNK + 37); /* crosses a chunk */
    }
}
END_TEST

START_TEST(test_matmul_quant_types)
{
    rng_seed(12);
    static const int small[] = {GMK_DTYPE_Q4_0, GMK_DTYPE_Q4_1, GMK_DTYPE_Q5_0, GMK_DTYPE_Q5_1,
                                GMK_DTYPE_Q8_0};
    static const int kq[] = {GMK_DTYPE_Q4_K, GMK_DTYPE_Q5_K, GMK_DTYPE_Q6_K};
    for (size_t i = 0; i < 5; i++) {
        check_matmul(small[i], 1, 1, 32);
        check_matmul(small[i], 3, 5, 96);
        check_matmul(small[i], 7, 11, 640);
    }
    for (size_t i = 0; i < 3; i++) {
        check_matmul(kq[i], 1, 3, 256);
        check_matmul(kq[i], 7, 5, 512);
        check_matmul(kq[i], 3, 2, GMK_MATMUL_CHUNK + 256); /* second chunk of one block */
    }
}
END_TEST

START_TEST(test_matmul_unknown_dtype_zero)
{
    uint8_t W[84 * 2];
    memset(W, 0x77, sizeof W);
    float x[256], y[2] = {5.0f, 5.0f};
    for (int i = 0; i < 256; i++)
        x[i] = 1.0f;
    gmk_matmul(y, 1, W, GMK_DTYPE_Q2_K, x, 1, 2, 256, 0, 1);
    ck_assert(y[0] == 0.0f && y[1] == 0.0f);
}
END_TEST

/* ------------------------------------------------------------ embed */

START_TEST(test_embed)
{
    rng_seed(21);
    enum { V = 9, D = 64, T = 5 };
    const int32_t tok[T] = {3, 0, 8, 3, 5};
    float *E = rand_floats(V * D, 1.0f);
    float x[3][T * D];
    for (int nth = 1; nth <= 3; nth++)
        FOR_EACH_THREAD(nth, gmk_embed(x[nth - 1], E, GMK_DTYPE_F32, tok, T, D, 25.25f, ith, nth));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++)
            ck_assert(x[0][t * D + i] == E[tok[t] * D + i] * 25.25f); /* exact */
    ck_assert_mem_eq(x[0], x[1], sizeof x[0]);
    ck_assert_mem_eq(x[0], x[2], sizeof x[0]);
    free(E);

    /* Q8_0 table: equal to dequantize_row × scale, row offsets by bytes */
    size_t row_bytes;
    uint8_t *Q = rand_weights(GMK_DTYPE_Q8_0, V, D, &row_bytes);
    ck_assert_uint_eq(row_bytes, 68);
    for (int nth = 1; nth <= 3; nth++)
        FOR_EACH_THREAD(nth, gmk_embed(x[nth - 1], Q, GMK_DTYPE_Q8_0, tok, T, D, 2.0f, ith, nth));
    float row[D];
    for (int t = 0; t < T; t++) {
        gmk_dequantize_row(GMK_DTYPE_Q8_0, Q + (size_t)tok[t] * row_bytes, row, D);
        for (int i = 0; i < D; i++)
            ck_assert(x[0][t * D + i] == row[i] * 2.0f);
    }
    ck_assert_mem_eq(x[0], x[1], sizeof x[0]);
    ck_assert_mem_eq(x[0], x[2], sizeof x[0]);
    free(Q);
}
END_TEST

/* ------------------------------------------------------------ norms, adds */

/* y = x / sqrt(mean(x²) + eps) · w in double. */
static void rmsnorm_ref(double *y, const float *x, const float *w, int n_rows, int D, double eps)
{
    for (int t = 0; t < n_rows; t++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)x[t * D + i] * x[t * D + i];
        double s = 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++)
            y[t * D + i] = x[t * D + i] * s * (w ? w[i] : 1.0);
    }
}

START_TEST(test_rmsnorm)
{
    rng_seed(31);
    static const int dims[][2] = {{1, 1}, {3, 7}, {7, 37}, {2, 640}, {1, 1152}};
    for (size_t c = 0; c < 5; c++) {
        int n = dims[c][0], D = dims[c][1];
        size_t sz = (size_t)n * D;
        float *x = rand_floats(sz, 3.0f), *w = rand_floats((size_t)D, 2.0f);
        double *ref = alloc_doubles(sz);
        for (int use_w = 0; use_w <= 1; use_w++) {
            const float *wp = use_w ? w : NULL;
            rmsnorm_ref(ref, x, wp, n, D, 1e-6);
            float *y[3];
            for (int nth = 1; nth <= 3; nth++) {
                y[nth - 1] = malloc(sz * sizeof(float));
                FOR_EACH_THREAD(nth, gmk_rmsnorm(y[nth - 1], x, wp, n, D, 1e-6f, ith, nth));
            }
            double e = nmse(y[0], ref, sz);
            ck_assert_msg(e <= 1e-7, "rmsnorm %dx%d: NMSE %g", n, D, e);
            ck_assert_mem_eq(y[0], y[1], sz * sizeof(float));
            ck_assert_mem_eq(y[0], y[2], sz * sizeof(float));
            float *inplace = copy_floats(x, sz); /* y == x gives the same bits */
            FOR_EACH_THREAD(2, gmk_rmsnorm(inplace, inplace, wp, n, D, 1e-6f, ith, 2));
            ck_assert_mem_eq(inplace, y[0], sz * sizeof(float));
            free(inplace);
            for (int i = 0; i < 3; i++)
                free(y[i]);
        }
        free(x);
        free(w);
        free(ref);
    }
    /* zero row: eps keeps it finite */
    float z[4] = {0}, zo[4];
    gmk_rmsnorm(zo, z, NULL, 1, 4, 1e-6f, 0, 1);
    for (int i = 0; i < 4; i++)
        ck_assert(zo[i] == 0.0f);
}
END_TEST

START_TEST(test_rmsnorm_add_and_add)
{
    rng_seed(32);
    static const int dims[][2] = {{1, 1}, {3, 13}, {7, 640}};
    for (size_t c = 0; c < 3; c++) {
        int n = dims[c][0], D = dims[c][1];
        size_t sz = (size_t)n * D;
        float *x0 = rand_floats(sz, 1.0f), *o = rand_floats(sz, 4.0f);
        float *w = rand_floats((size_t)D, 1.0f);
        double *ref = alloc_doubles(sz);
        for (int use_w = 0; use_w <= 1; use_w++) {
            const float *wp = use_w ? w : NULL;
            rmsnorm_ref(ref, o, wp, n, D, 1e-6);
            for (size_t i = 0; i < sz; i++)
                ref[i] += x0[i];
            float *x[3];
            for (int nth = 1; nth <= 3; nth++) {
                x[nth - 1] = copy_floats(x0, sz);
                FOR_EACH_THREAD(nth, gmk_rmsnorm_add(x[nth - 1], o, wp, n, D, 1e-6f, ith, nth));
            }
            double e = nmse(x[0], ref, sz);
            ck_assert_msg(e <= 1e-7, "rmsnorm_add %dx%d: NMSE %g", n, D, e);
            ck_assert_mem_eq(x[0], x[1], sz * sizeof(float));
            ck_assert_mem_eq(x[0], x[2], sz * sizeof(float));
            for (int i = 0; i < 3; i++)
                free(x[i]);
        }
        float *x[3];
        for (int nth = 1; nth <= 3; nth++) {
            x[nth - 1] = copy_floats(x0, sz);
            FOR_EACH_THREAD(nth, gmk_add(x[nth - 1], o, n, D, ith, nth));
        }
        for (size_t i = 0; i < sz; i++)
            ck_assert(x[0][i] == x0[i] + o[i]); /* exact */
        ck_assert_mem_eq(x[0], x[1], sz * sizeof(float));
        ck_assert_mem_eq(x[0], x[2], sz * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(x[i]);
        free(x0);
        free(o);
        free(w);
        free(ref);
    }
}
END_TEST

START_TEST(test_head_rmsnorm)
{
    rng_seed(33);
    static const int dims[][3] = {{1, 1, 4}, {3, 3, 10}, {7, 4, 256}};
    for (size_t c = 0; c < 3; c++) {
        int n = dims[c][0], H = dims[c][1], hd = dims[c][2];
        size_t sz = (size_t)n * H * hd;
        float *x0 = rand_floats(sz, 2.0f), *w = rand_floats((size_t)hd, 1.5f);
        double *ref = alloc_doubles(sz);
        rmsnorm_ref(ref, x0, w, n * H, hd, 1e-6);
        float *x[3];
        for (int nth = 1; nth <= 3; nth++) {
            x[nth - 1] = copy_floats(x0, sz);
            FOR_EACH_THREAD(nth, gmk_head_rmsnorm(x[nth - 1], w, n, H, hd, 1e-6f, ith, nth));
        }
        double e = nmse(x[0], ref, sz);
        ck_assert_msg(e <= 1e-7, "head_rmsnorm: NMSE %g", e);
        ck_assert_mem_eq(x[0], x[1], sz * sizeof(float));
        ck_assert_mem_eq(x[0], x[2], sz * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(x[i]);
        free(x0);
        free(w);
        free(ref);
    }
}
END_TEST

/* ------------------------------------------------------------ rope */

static void rope_ref(double *y, const float *x, int n_tok, int H, int hd, int32_t pos0,
                     const float *inv_freq, double scale)
{
    int half = hd / 2;
    for (int t = 0; t < n_tok; t++) {
        for (int h = 0; h < H; h++) {
            const float *xh = x + ((size_t)t * H + h) * hd;
            double *yh = y + ((size_t)t * H + h) * hd;
            for (int i = 0; i < half; i++) {
                double th = (double)((float)(pos0 + t) * inv_freq[i]); /* angle in f32 */
                yh[i] = (xh[i] * cos(th) - xh[i + half] * sin(th)) * scale;
                yh[i + half] = (xh[i + half] * cos(th) + xh[i] * sin(th)) * scale;
            }
        }
    }
}

START_TEST(test_rope)
{
    rng_seed(41);
    static const int dims[][4] = {/* n_tok, H, hd, pos0 */
                                  {1, 1, 2, 0}, {3, 3, 10, 5}, {7, 4, 256, 1000},
                                  {2, 2, 1030, 77}}; /* hd/2 > GMK_ROPE_MAX_HALF */
    for (size_t c = 0; c < 4; c++) {
        int n = dims[c][0], H = dims[c][1], hd = dims[c][2], pos0 = dims[c][3];
        size_t sz = (size_t)n * H * hd;
        float *x0 = rand_floats(sz, 1.0f);
        float *inv = malloc((size_t)(hd / 2) * sizeof *inv);
        for (int i = 0; i < hd / 2; i++)
            inv[i] = (float)pow(10000.0, -2.0 * i / hd) / (c == 2 ? 8.0f : 1.0f);
        double *ref = alloc_doubles(sz);
        float scale = c == 1 ? 0.0625f : 1.0f;
        rope_ref(ref, x0, n, H, hd, pos0, inv, scale);
        float *x[3];
        for (int nth = 1; nth <= 3; nth++) {
            x[nth - 1] = copy_floats(x0, sz);
            FOR_EACH_THREAD(nth, gmk_rope(x[nth - 1], n, H, hd, pos0, inv, scale, ith, nth));
        }
        double e = nmse(x[0], ref, sz);
        ck_assert_msg(e <= 1e-7, "rope case %zu: NMSE %g", c, e);
        ck_assert_mem_eq(x[0], x[1], sz * sizeof(float));
        ck_assert_mem_eq(x[0], x[2], sz * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(x[i]);
        free(x0);
        free(inv);
        free(ref);
    }
    /* position 0 is the identity (times the scale); a quarter turn swaps halves */
    float v[4] = {1.0f, 2.0f, 3.0f, 4.0f}, f[2] = {0.0f, (float)M_PI_2};
    gmk_rope(v, 1, 1, 4, 1, f, 2.0f, 0, 1);
    ck_assert(v[0] == 2.0f);                        /* cos 0 = 1, sin 0 = 0 */
    ck_assert(v[2] == 6.0f);
    ck_assert(fabsf(v[1] - -8.0f) < 1e-5f);         /* 2cos − 4sin, ×2 */
    ck_assert(fabsf(v[3] - 4.0f) < 1e-5f);          /* 4cos + 2sin, ×2 */
}
END_TEST

/* ------------------------------------------------------------ kv cache */

START_TEST(test_kv_store)
{
    rng_seed(51);
    enum { KVD = 6, SLOTS = 5 };
    for (int dt = 0; dt < 2; dt++) {
        int kv_dtype = dt ? GMK_DTYPE_F16 : GMK_DTYPE_F32;
        size_t esz = dt ? 2 : 4;
        static const int cases[][2] = {{1, 0}, {3, 3}, {7, 11}}; /* n_tok, pos0 */
        for (size_t c = 0; c < 3; c++) {
            int n = cases[c][0], pos0 = cases[c][1];
            float *k = rand_floats((size_t)n * KVD, 1.0f), *v = rand_floats((size_t)n * KVD, 1.0f);
            _Alignas(16) uint8_t kc[3][SLOTS * KVD * 4];
            _Alignas(16) uint8_t vc[3][SLOTS * KVD * 4];
            for (int nth = 1; nth <= 3; nth++) {
                memset(kc[nth - 1], 0xee, sizeof kc[0]);
                memset(vc[nth - 1], 0xee, sizeof vc[0]);
                FOR_EACH_THREAD(nth, gmk_kv_store(kc[nth - 1], vc[nth - 1], kv_dtype, k, v, n,
                                                  pos0, SLOTS, KVD, ith, nth));
            }
            int first = n > SLOTS ? n - SLOTS : 0;
            int written[SLOTS] = {0};
            for (int t = first; t < n; t++) {
                int slot = (pos0 + t) % SLOTS;
                written[slot] = 1;
                for (int j = 0; j < KVD; j++) {
                    size_t off = ((size_t)slot * KVD + j) * esz;
                    if (dt) {
                        uint16_t hk, hv;
                        memcpy(&hk, kc[0] + off, 2);
                        memcpy(&hv, vc[0] + off, 2);
                        ck_assert_uint_eq(hk, gmk_f32_to_f16(k[t * KVD + j]));
                        ck_assert_uint_eq(hv, gmk_f32_to_f16(v[t * KVD + j]));
                    } else {
                        ck_assert_mem_eq(kc[0] + off, &k[t * KVD + j], 4);
                        ck_assert_mem_eq(vc[0] + off, &v[t * KVD + j], 4);
                    }
                }
            }
            for (int s = 0; s < SLOTS; s++) /* slots no token maps to are untouched */
                if (!written[s])
                    ck_assert_uint_eq(kc[0][(size_t)s * KVD * esz], 0xee);
            for (int i = 1; i < 3; i++) {
                ck_assert_mem_eq(kc[0], kc[i], sizeof kc[0]);
                ck_assert_mem_eq(vc[0], vc[i], sizeof vc[0]);
            }
            free(k);
            free(v);
        }
    }
}
END_TEST

/* ------------------------------------------------------------ attention */

typedef struct attn_case {
    int n_tok, pos0, n_heads, n_kv, hd, window, n_slots;
    float softcap;
    int f16;
} attn_case;

static float cache_get(const uint8_t *c, int f16, size_t idx)
{
    if (f16) {
        uint16_t h;
        memcpy(&h, c + idx * 2, 2);
        return gmk_f16_to_f32(h);
    }
    float f;
    memcpy(&f, c + idx * 4, 4);
    return f;
}

/* Materializes all scores of a query row, masks explicitly, full softmax in
 * double. */
static void attention_ref(double *o, const float *q, const uint8_t *kc, const uint8_t *vc,
                          const attn_case *a)
{
    int P = a->pos0 + a->n_tok, G = a->n_heads / a->n_kv, kvd = a->n_kv * a->hd;
    double *s = alloc_doubles((size_t)P);
    for (int t = 0; t < a->n_tok; t++) {
        int p = a->pos0 + t;
        for (int h = 0; h < a->n_heads; h++) {
            const float *qh = q + ((size_t)t * a->n_heads + h) * a->hd;
            int kvh = h / G;
            double mx = -INFINITY;
            for (int j = 0; j < P; j++) {
                int visible = j <= p && (a->window <= 0 || p - j < a->window);
                if (!visible) {
                    s[j] = -INFINITY;
                    continue;
                }
                size_t base = (size_t)(j % a->n_slots) * kvd + (size_t)kvh * a->hd;
                double d = 0;
                for (int i = 0; i < a->hd; i++)
                    d += (double)qh[i] * cache_get(kc, a->f16, base + i);
                if (a->softcap > 0)
                    d = a->softcap * tanh(d / a->softcap);
                s[j] = d;
                mx = d > mx ? d : mx;
            }
            double sum = 0;
            for (int j = 0; j < P; j++) {
                s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - mx);
                sum += s[j];
            }
            double *oh = o + ((size_t)t * a->n_heads + h) * a->hd;
            for (int i = 0; i < a->hd; i++) {
                double acc = 0;
                for (int j = 0; j < P; j++)
                    if (s[j] != 0.0)
                        acc += s[j] / sum *
                               cache_get(vc, a->f16,
                                         (size_t)(j % a->n_slots) * kvd + (size_t)kvh * a->hd + i);
                oh[i] = acc;
            }
        }
    }
    free(s);
}

/* A random cache (all n_slots slots) and queries for case a; the caller
 * frees *kc, *vc and *q. */
static void attn_setup(const attn_case *a, uint8_t **kc, uint8_t **vc, float **q)
{
    size_t esz = a->f16 ? 2 : 4, csz = (size_t)a->n_slots * a->n_kv * a->hd;
    *kc = malloc(csz * esz);
    *vc = malloc(csz * esz);
    ck_assert(*kc && *vc);
    /* history: random keys/values; large keys make a wrong mask obvious */
    float *k = rand_floats(csz, 2.0f), *v = rand_floats(csz, 1.0f);
    for (size_t i = 0; i < csz; i++) {
        if (a->f16) {
            uint16_t hk = gmk_f32_to_f16(k[i]), hv = gmk_f32_to_f16(v[i]);
            memcpy(*kc + 2 * i, &hk, 2);
            memcpy(*vc + 2 * i, &hv, 2);
        } else {
            memcpy(*kc + 4 * i, &k[i], 4);
            memcpy(*vc + 4 * i, &v[i], 4);
        }
    }
    *q = rand_floats((size_t)a->n_tok * a->n_heads * a->hd, 1.0f);
    free(k);
    free(v);
}

/* gmk_attention on tokens t0 .. t0+n-1 of case a (rows t0.. of q and o). */
static void attn_run(float *o, const float *q, const uint8_t *kc, const uint8_t *vc,
                     const attn_case *a, int t0, int n, int ith, int nth)
{
    size_t row = (size_t)a->n_heads * a->hd;
    gmk_attention(o + t0 * row, q + t0 * row, kc, vc, a->f16 ? GMK_DTYPE_F16 : GMK_DTYPE_F32, n,
                  a->pos0 + t0, a->n_heads, a->n_kv, a->hd, a->window, a->n_slots, a->softcap,
                  ith, nth);
}

static void check_attention(const attn_case *a)
{
    uint8_t *kc, *vc;
    float *q;
    attn_setup(a, &kc, &vc, &q);
    size_t qsz = (size_t)a->n_tok * a->n_heads * a->hd;
    double *ref = alloc_doubles(qsz);
    attention_ref(ref, q, kc, vc, a);
    float *o[3];
    for (int nth = 1; nth <= 3; nth++) {
        o[nth - 1] = malloc(qsz * sizeof(float));
        FOR_EACH_THREAD(nth, attn_run(o[nth - 1], q, kc, vc, a, 0, a->n_tok, ith, nth));
    }
    double e = nmse(o[0], ref, qsz);
    ck_assert_msg(e <= 1e-7,
                  "attention tok %d pos0 %d H %d KV %d hd %d W %d slots %d cap %g f16 %d: NMSE %g",
                  a->n_tok, a->pos0, a->n_heads, a->n_kv, a->hd, a->window, a->n_slots,
                  (double)a->softcap, a->f16, e);
    ck_assert_mem_eq(o[0], o[1], qsz * sizeof(float));
    ck_assert_mem_eq(o[0], o[2], qsz * sizeof(float));
    for (int i = 0; i < 3; i++)
        free(o[i]);
    free(kc);
    free(vc);
    free(q);
    free(ref);
}

START_TEST(test_attention)
{
    rng_seed(61);
    static const attn_case cases[] = {
        /* n_tok pos0 H KV hd window slots softcap f16 */
        {1, 0, 1, 1, 4, 0, 8, 0, 0},          /* one key */
        {3, 2, 2, 1, 8, 0, 16, 0, 0},         /* GQA group 2 */
        {7, 0, 3, 1, 12, 0, 7, 1.5f, 0},      /* group 3, soft-cap */
        {7, 5, 4, 1, 10, 4, 12, 0, 1},        /* group 4, window < sequence, f16 */
        {3, 40, 4, 2, 16, 8, 11, 0, 0},       /* ring wrap: positions 33..42 in 11 slots */
        {7, 30, 6, 3, 9, 5, 13, 2.0f, 1},     /* window 5, wrap, soft-cap, f16 */
        {3, 2, 2, 2, 8, 64, 64, 0, 0},        /* window larger than the sequence */
        {1, 600, 2, 1, 16, 0, 700, 0, 0},     /* 601 keys: three softmax chunks */
        {2, 1000, 2, 1, 8, 300, 310, 3.0f, 1},  /* window spans two chunks, wrapped */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_attention(&cases[c]);
}
END_TEST

/* A query's result must not depend on how queries are grouped: all tokens
 * in one call (1, 2, 3 threads), prefill in chunks of 5, and one token at a
 * time (decode; 1 and 3 threads) must agree bit for bit, and with the
 * double-precision reference. */
static void check_attention_tiling(const attn_case *a)
{
    uint8_t *kc, *vc;
    float *q;
    attn_setup(a, &kc, &vc, &q);
    size_t qsz = (size_t)a->n_tok * a->n_heads * a->hd;
    double *ref = alloc_doubles(qsz);
    attention_ref(ref, q, kc, vc, a);
    enum { RUNS = 6 };
    float *o[RUNS];
    for (int r = 0; r < RUNS; r++)
        o[r] = malloc(qsz * sizeof(float));
    for (int nth = 1; nth <= 3; nth++)
        FOR_EACH_THREAD(nth, attn_run(o[nth - 1], q, kc, vc, a, 0, a->n_tok, ith, nth));
    for (int t = 0; t < a->n_tok; t += 5) {
        int n = a->n_tok - t < 5 ? a->n_tok - t : 5;
        FOR_EACH_THREAD(2, attn_run(o[3], q, kc, vc, a, t, n, ith, 2));
    }
    for (int t = 0; t < a->n_tok; t++) {
        attn_run(o[4], q, kc, vc, a, t, 1, 0, 1);
        FOR_EACH_THREAD(3, attn_run(o[5], q, kc, vc, a, t, 1, ith, 3));
    }
    double e = nmse(o[0], ref, qsz);
    ck_assert_msg(e <= 1e-7, "attention tiling tok %d pos0 %d H %d KV %d hd %d W %d: NMSE %g",
                  a->n_tok, a->pos0, a->n_heads, a->n_kv, a->hd, a->window, e);
    for (int r = 1; r < RUNS; r++)
        ck_assert_msg(memcmp(o[0], o[r], qsz * sizeof(float)) == 0,
                      "attention tiling tok %d pos0 %d H %d KV %d hd %d W %d: run %d differs",
                      a->n_tok, a->pos0, a->n_heads, a->n_kv, a->hd, a->window, r);
    for (int r = 0; r < RUNS; r++)
        free(o[r]);
    free(kc);
    free(vc);
    free(q);
    free(ref);
}

START_TEST(test_attention_tiling)
{
    rng_seed(62);
    static const attn_case cases[] = {
        /* n_tok pos0 H KV hd window slots softcap f16 */
        /* Gemma 3 270M shape: window 512 < sequence, so queries start at
         * different keys across chunk boundaries; ring of window + n_tok - 1
         * slots */
        {70, 480, 4, 1, 256, 512, 581, 0, 1},
        /* window shorter than the sequence, crossing a chunk boundary */
        {20, 400, 2, 1, 8, 300, 319, 0, 1},
        /* no window, several chunks from position 0, odd hd, group 3 */
        {300, 0, 6, 2, 40, 0, 300, 0, 0},
        /* soft-cap, group 2, window inside one chunk, wrapped, f16 */
        {40, 1000, 4, 2, 24, 17, 56, 2.5f, 1},
        /* group of 40 heads: a KV head's heads are cut into slices */
        {9, 250, 40, 1, 16, 6, 14, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_attention_tiling(&cases[c]);
}
END_TEST

/* ------------------------------------------------------------ geglu, softcap */

START_TEST(test_geglu)
{
    rng_seed(71);
    static const int dims[][2] = {{1, 1}, {3, 37}, {7, 2048}};
    for (size_t c = 0; c < 3; c++) {
        int n = dims[c][0], F = dims[c][1];
        size_t sz = (size_t)n * F;
        float *g0 = rand_floats(sz, 5.0f), *u = rand_floats(sz, 2.0f);
        double *ref = alloc_doubles(sz);
        for (size_t i = 0; i < sz; i++) {
            double xv = g0[i];
            ref[i] = 0.5 * xv * (1 + tanh(sqrt(2 / M_PI) * (xv + 0.044715 * xv * xv * xv))) * u[i];
        }
        float *g[3];
        for (int nth = 1; nth <= 3; nth++) {
            g[nth - 1] = copy_floats(g0, sz);
            FOR_EACH_THREAD(nth, gmk_geglu(g[nth - 1], u, n, F, ith, nth));
        }
        double e = nmse(g[0], ref, sz);
        ck_assert_msg(e <= 1e-7, "geglu %dx%d: NMSE %g", n, F, e);
        ck_assert_mem_eq(g[0], g[1], sz * sizeof(float));
        ck_assert_mem_eq(g[0], g[2], sz * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(g[i]);
        free(g0);
        free(u);
        free(ref);
    }
    float z = 0.0f, one = 1.0f;
    gmk_geglu(&z, &one, 1, 1, 0, 1);
    ck_assert(z == 0.0f);
}
END_TEST

START_TEST(test_softcap)
{
    rng_seed(72);
    static const int64_t sizes[] = {1, 7, 1001};
    for (size_t c = 0; c < 3; c++) {
        int64_t n = sizes[c];
        float *x0 = rand_floats((size_t)n, 100.0f);
        double *ref = alloc_doubles((size_t)n);
        for (int64_t i = 0; i < n; i++)
            ref[i] = 30.0 * tanh(x0[i] / 30.0);
        float *x[3];
        for (int nth = 1; nth <= 3; nth++) {
            x[nth - 1] = copy_floats(x0, (size_t)n);
            FOR_EACH_THREAD(nth, gmk_softcap(x[nth - 1], n, 30.0f, ith, nth));
        }
        double e = nmse(x[0], ref, (size_t)n);
        ck_assert_msg(e <= 1e-7, "softcap n %lld: NMSE %g", (long long)n, e);
        for (int64_t i = 0; i < n; i++)
            ck_assert(fabsf(x[0][i]) <= 30.0f);
        ck_assert_mem_eq(x[0], x[1], (size_t)n * sizeof(float));
        ck_assert_mem_eq(x[0], x[2], (size_t)n * sizeof(float));
        for (int i = 0; i < 3; i++)
            free(x[i]);
        free(x0);
        free(ref);
    }
}
END_TEST

/* Distance of got from want in units of the last place of want as a float
 * (the spacing at FLT_TRUE_MIN below it). */
static double ulps_from(float got, double want)
{
    double w = fabs((double)(float)want);
    double ulp = w < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(w) - 23);
    return fabs((double)got - want) / ulp;
}

/* gmk_math.h against libm in double, on every 4099th float (a million,
 * every sign and exponent): exp within 1.5 ulp, tanh within 2, sin and cos
 * within 1 (measured on every 7th float: 1.21, 1.52, 0.50, 0.50); the
 * limits, ±0 and NaN; and the hash of the results (math_hash.h), which
 * tests/cross/kernels.c checks on the Arm and RISC-V targets. */
START_TEST(test_portable_math)
{
    double worst[4] = {0};
    uint64_t h = GMK_TEST_MATH_SEED;
    for (uint64_t u = 0; u <= 0xffffffffu; u += GMK_TEST_MATH_STRIDE) {
        float x = gmk_bits_f32((uint32_t)u), got[4];
        h = gmk_test_math_step(h, x, got);
        float e = got[0], t = got[1];
        if (isnan(x)) {
            ck_assert(isnan(e) && isnan(t));
            continue;
        }
        const double want[4] = {exp(x), tanh(x), sin(x), cos(x)};
        for (int k = 0; k < (fabsf(x) < 1e6f ? 4 : 2); k++) {
            if (isinf(want[k]) || want[k] > FLT_MAX) {
                ck_assert_msg(isinf(got[k]), "k %d x %a: %a", k, (double)x, (double)got[k]);
                continue;
            }
            double d = ulps_from(got[k], want[k]);
            worst[k] = d > worst[k] ? d : worst[k];
        }
    }
    ck_assert_msg(worst[0] <= 1.5 && worst[1] <= 2.0 && worst[2] <= 1.0 && worst[3] <= 1.0,
                  "ulp: exp %g tanh %g sin %g cos %g", worst[0], worst[1], worst[2], worst[3]);
    ck_assert(gmk_expf(0.0f) == 1.0f && gmk_expf(-INFINITY) == 0.0f);
    ck_assert(isinf(gmk_expf(INFINITY)) && isinf(gmk_expf(88.73f)));
    ck_assert(gmk_tanhf(INFINITY) == 1.0f && gmk_tanhf(-INFINITY) == -1.0f);
    ck_assert(gmk_tanhf(-0.0f) == 0.0f && signbit(gmk_tanhf(-0.0f)));
    ck_assert_msg(h == GMK_TEST_MATH_HASH, "hash %#llx", (unsigned long long)h);
}
END_TEST

Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("quant");
    tcase_add_test(tc, test_f16_to_f32_special);
    tcase_add_test(tc, test_f32_to_f16_rounding);
    tcase_add_test(tc, test_f16_round_trip);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_dtype_sizes);
    tcase_add_test(tc, test_q4_0);
    tcase_add_test(tc, test_q4_1);
    tcase_add_test(tc, test_q5_0_q5_1);
    tcase_add_test(tc, test_q8_0);
    tcase_add_test(tc, test_scale_min_k4);
    tcase_add_test(tc, test_q4_k);
    tcase_add_test(tc, test_q5_k);
    tcase_add_test(tc, test_q6_k);
    tcase_add_test(tc, test_dequant_plain_and_unknown);
    suite_add_tcase(s, tc);

    tc = tcase_create("generic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_range_covers);
    tcase_add_test(tc, test_matmul_float_types);
    tcase_add_test(tc, test_matmul_quant_types);
    tcase_add_test(tc, test_matmul_unknown_dtype_zero);
    tcase_add_test(tc, test_embed);
    tcase_add_test(tc, test_rmsnorm);
    tcase_add_test(tc, test_rmsnorm_add_and_add);
    tcase_add_test(tc, test_head_rmsnorm);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_kv_store);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_tiling);
    tcase_add_test(tc, test_geglu);
    tcase_add_test(tc, test_softcap);
    tcase_add_test(tc, test_portable_math);
    suite_add_tcase(s, tc);
    return s;
}
