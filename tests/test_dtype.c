/*
 * test_dtype.c — the dtype suite: type table, row sizes, f16/bf16
 * conversions, quantizers and dequantizers.
 *
 * Conversions are checked on their special values (signed zeros, inf, NaN,
 * subnormals, the largest finite value, rounding ties).  Quantizers are
 * checked twice: statistically, on llama.cpp's synthetic data with its
 * thresholds (test-quantize-fns.cpp), and bit-exactly against bytes the PyPI
 * gguf package produced (tests/fixtures/quant, scripts/make_quant_fixture.py).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gmrt.h"
#include "testutil.h"

/* llama.cpp's test size and thresholds (RMSE-style, see array_rmse). */
#define QTEST_N (32 * 128)
#define MAX_TOTAL_ERROR 0.002f
#define MAX_DOT_ERROR 0.02f

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------ table */

/* Names round-trip, ids 4 and 5 (removed from ggml) and out-of-range ids
 * have none. */
START_TEST(test_names)
{
    ck_assert_str_eq(gmrt_dtype_name(GMK_DTYPE_F32), "f32");
    ck_assert_str_eq(gmrt_dtype_name(GMK_DTYPE_Q4_K), "q4_k");
    ck_assert_str_eq(gmrt_dtype_name(GMK_DTYPE_BF16), "bf16");
    ck_assert_str_eq(gmrt_dtype_name(GMK_DTYPE_Q8_K), "q8_k");
    ck_assert_ptr_null(gmrt_dtype_name(4)); /* removed q4_2 */
    ck_assert_ptr_null(gmrt_dtype_name(5));
    ck_assert_ptr_null(gmrt_dtype_name(-1));
    ck_assert_ptr_null(gmrt_dtype_name(GMK_DTYPE_COUNT));
    ck_assert_ptr_null(gmrt_dtype_name(29));
    /* Every known name parses back to its id. */
    int known = 0;
    for (int32_t i = 0; i < GMK_DTYPE_COUNT; i++) {
        const char *n = gmrt_dtype_name(i);
        if (n) {
            known++;
            ck_assert_int_eq(gmrt_dtype_from_name(n), i);
        }
    }
    ck_assert_int_eq(known, 15);
    ck_assert_int_eq(gmrt_dtype_from_name("Q4_K"), -1); /* lower case only */
    ck_assert_int_eq(gmrt_dtype_from_name("q4_2"), -1);
    ck_assert_int_eq(gmrt_dtype_from_name(NULL), -1);
}
END_TEST

/* Block geometry, and exactly the eleven weight formats of docs/models.md#quant-weights
 * are supported. */
START_TEST(test_blocks_and_support)
{
    ck_assert_int_eq(gmrt_dtype_block(GMK_DTYPE_F16), 1);
    ck_assert_int_eq(gmrt_dtype_block(GMK_DTYPE_Q5_0), 32);
    ck_assert_int_eq(gmrt_dtype_block(GMK_DTYPE_Q6_K), 256);
    ck_assert_int_eq(gmrt_dtype_block(77), 0);
    ck_assert_uint_eq(gmrt_dtype_block_bytes(GMK_DTYPE_Q4_0), 18);
    ck_assert_uint_eq(gmrt_dtype_block_bytes(GMK_DTYPE_Q5_K), 176);
    ck_assert_uint_eq(gmrt_dtype_block_bytes(GMK_DTYPE_Q6_K), 210);
    ck_assert_uint_eq(gmrt_dtype_block_bytes(GMK_DTYPE_BF16), 2);
    ck_assert_uint_eq(gmrt_dtype_block_bytes(-3), 0);
    static const int32_t yes[] = {0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 30};
    int n_yes = 0;
    for (int32_t i = -1; i <= GMK_DTYPE_COUNT; i++) {
        bool expect = false;
        for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
            expect = expect || yes[k] == i;
        ck_assert_msg(gmrt_dtype_supported(i) == expect, "dtype %d", i);
        n_yes += expect;
    }
    ck_assert_int_eq(n_yes, 11);
}
END_TEST

/* Row sizes, and one exact message per kind of bad row. */
START_TEST(test_row_bytes)
{
    gmrt_diag d = {0};
    size_t b = 0;
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_Q8_0, 640, &b, &d), GMRT_OK);
    ck_assert_uint_eq(b, 680);
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_Q4_K, 2048, &b, &d), GMRT_OK);
    ck_assert_uint_eq(b, 1152);
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_F32, 3, &b, &d), GMRT_OK);
    ck_assert_uint_eq(b, 12);
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_Q6_K, 0, &b, &d), GMRT_OK);
    ck_assert_uint_eq(b, 0);

    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_Q8_0, 33, &b, &d),
                     GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "33 elements of q8_0 are not a multiple of its "
                            "block size 32");
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_Q4_K, 640, &b, &d),
                     GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "640 elements of q4_k are not a multiple of its "
                            "block size 256");
    ck_assert_int_eq(gmrt_dtype_row_bytes(77, 32, &b, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "unknown dtype 77");
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_F16, -2, &b, &d),
                     GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "negative element count -2 for f16");
    /* 2^62 f32 elements are 2^64 bytes: one past SIZE_MAX. */
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_F32, INT64_C(1) << 62, &b,
                                          &d), GMRT_ERR_LIMIT);
    ck_assert_str_eq(d.msg, "4611686018427387904 elements of f32: byte size "
                            "overflows");
    ck_assert_int_eq(gmrt_dtype_row_bytes(GMK_DTYPE_F16, INT64_C(1) << 62, &b,
                                          &d), GMRT_OK);
    ck_assert_uint_eq(b, (size_t)1 << 63);
}
END_TEST

/* ------------------------------------------------------------ f16 / bf16 */

/* f16: signed zeros, infinities, NaN, the largest finite value and the
 * rounding edge above it, subnormals and their ties, ties between
 * normals. */
START_TEST(test_f16_special)
{
    ck_assert_uint_eq(gmrt_f32_to_f16(0.0f), 0x0000);
    ck_assert_uint_eq(gmrt_f32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(gmrt_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(gmrt_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(gmrt_f32_to_f16(INFINITY), 0x7c00);
    ck_assert_uint_eq(gmrt_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t nan = gmrt_f32_to_f16(NAN);
    ck_assert_uint_eq(nan & 0x7c00, 0x7c00);
    ck_assert_uint_ne(nan & 0x03ff, 0);
    /* Largest finite value, and the rounding edge above it. */
    ck_assert_uint_eq(gmrt_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(gmrt_f32_to_f16(65519.996f), 0x7bff);
    ck_assert_uint_eq(gmrt_f32_to_f16(65520.0f), 0x7c00); /* tie → even = inf */
    ck_assert_uint_eq(gmrt_f32_to_f16(1e6f), 0x7c00);
    /* Subnormals: 2^-24 is the smallest; 2^-25 ties to even (zero). */
    ck_assert_uint_eq(gmrt_f32_to_f16(0x1p-24f), 0x0001);
    ck_assert_uint_eq(gmrt_f32_to_f16(0x1p-25f), 0x0000);
    ck_assert_uint_eq(gmrt_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 ulp → 2 */
    ck_assert_uint_eq(gmrt_f32_to_f16(0x1.8p-25f), 0x0001);
    ck_assert_uint_eq(gmrt_f32_to_f16(-0x1p-24f), 0x8001);
    ck_assert_uint_eq(gmrt_f32_to_f16(1023 * 0x1p-24f), 0x03ff);
    ck_assert_uint_eq(gmrt_f32_to_f16(0x1p-14f), 0x0400);
    ck_assert_uint_eq(gmrt_f32_to_f16(1e-10f), 0x0000);
    /* Ties between normals round to even mantissa. */
    ck_assert_uint_eq(gmrt_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    ck_assert_uint_eq(gmrt_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    ck_assert_uint_eq(gmrt_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);

    ck_assert_uint_eq(bits(gmrt_f16_to_f32(0x8000)), 0x80000000u);
    ck_assert_float_eq(gmrt_f16_to_f32(0x0001), 0x1p-24f);
    ck_assert_float_eq(gmrt_f16_to_f32(0x03ff), 1023 * 0x1p-24f);
    ck_assert_float_eq(gmrt_f16_to_f32(0x7bff), 65504.0f);
    ck_assert_float_eq(gmrt_f16_to_f32(0x3555), 0.333251953125f);
    ck_assert(isinf(gmrt_f16_to_f32(0xfc00)) && gmrt_f16_to_f32(0xfc00) < 0);
    ck_assert(isnan(gmrt_f16_to_f32(0x7e00)));
    ck_assert(isnan(gmrt_f16_to_f32(0x7c01)));
}
END_TEST

/* Every non-NaN half survives f16 → f32 → f16 unchanged. */
START_TEST(test_f16_roundtrip_all)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x03ff))
            continue;
        ck_assert_msg(gmrt_f32_to_f16(gmrt_f16_to_f32((uint16_t)h)) == h,
                      "half 0x%04x", h);
    }
}
END_TEST

/* bf16: ties to even, overflow of FLT_MAX to inf, NaN kept NaN even when
 * its payload lies only in the truncated half, and every bf16 value
 * round-trips. */
START_TEST(test_bf16_special)
{
    ck_assert_uint_eq(gmrt_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(gmrt_f32_to_bf16(-0.0f), 0x8000);
    ck_assert_uint_eq(gmrt_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(gmrt_f32_to_bf16(-INFINITY), 0xff80);
    /* Ties to even, and just above a tie. */
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
    /* FLT_MAX rounds up to inf, as in ggml; subnormals keep their top bits. */
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0x00010000u)), 0x0001);
    /* A signalling NaN whose payload sits in the low half must stay NaN. */
    uint16_t n = gmrt_f32_to_bf16(from_bits(0x7f800001u));
    ck_assert_uint_eq(n & 0x7f80, 0x7f80);
    ck_assert_uint_ne(n & 0x007f, 0);
    ck_assert_uint_eq(gmrt_f32_to_bf16(from_bits(0xffc00000u)), 0xffc0);

    ck_assert_float_eq(gmrt_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(gmrt_bf16_to_f32(0xc0a0), -5.0f);
    ck_assert_uint_eq(bits(gmrt_bf16_to_f32(0x8000)), 0x80000000u);
    ck_assert(isnan(gmrt_bf16_to_f32(0x7fc0)));
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x007f))
            continue;
        ck_assert_uint_eq(gmrt_f32_to_bf16(gmrt_bf16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

/* ------------------------------------------------------------ quantizers */

static void synth(float offset, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = 0.1f + 2 * cosf((float)i + offset);
}

/* llama.cpp's array_rmse: sqrt(sum of squares) / n. */
static float rmse(const float *a, const float *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = (double)a[i] - (double)b[i];
        sum += diff * diff;
    }
    return (float)(sqrt(sum) / (double)n);
}

/* The block quantizers under test (the float types are exact). */
static const int32_t quantizable[] = {GMK_DTYPE_Q8_0, GMK_DTYPE_Q4_0,
                                      GMK_DTYPE_Q5_0, GMK_DTYPE_Q4_1,
                                      GMK_DTYPE_Q5_1, GMK_DTYPE_Q4_K,
                                      GMK_DTYPE_Q5_K, GMK_DTYPE_Q6_K};

/* llama.cpp's total quantization error and dot-product error tests. */
START_TEST(test_quantize_error)
{
    int32_t t = quantizable[_i];
    static float x[QTEST_N], y[QTEST_N], ref[QTEST_N], yq[QTEST_N];
    static unsigned char q[QTEST_N * 2], q8[QTEST_N * 2];
    gmrt_diag d = {0};
    synth(0.0f, QTEST_N, x);
    ck_assert_int_eq(gmrt_quantize_row(t, x, q, QTEST_N, &d), GMRT_OK);
    gmrt_dequantize_row(t, q, y, QTEST_N);
    float err = rmse(x, y, QTEST_N);
    ck_assert_msg(err < MAX_TOTAL_ERROR, "%s: total error %g",
                  gmrt_dtype_name(t), err);
    /* A broken quantizer that returns zeros would score about 0.02. */
    ck_assert(err > 0.0f);

    /* Dot product against Q8_0 activations (vec_dot_type of all three),
     * accumulated over the dequantized values, as |dot - ref| / n. */
    synth(1.0f, QTEST_N, ref);
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_Q8_0, ref, q8, QTEST_N, &d),
                     GMRT_OK);
    gmrt_dequantize_row(GMK_DTYPE_Q8_0, q8, yq, QTEST_N);
    double dot = 0, dot_ref = 0;
    for (int i = 0; i < QTEST_N; i++) {
        dot += (double)y[i] * yq[i];
        dot_ref += (double)x[i] * ref[i];
    }
    double derr = fabs(dot - dot_ref) / QTEST_N;
    ck_assert_msg(derr < MAX_DOT_ERROR, "%s: dot error %g", gmrt_dtype_name(t),
                  derr);
}
END_TEST

/* The float "quantizers" store little-endian f16/bf16 with RNE. */
START_TEST(test_quantize_float_types)
{
    const float x[4] = {1.0f, -0.0f, 65520.0f, 0x1p-25f};
    unsigned char y[16];
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_F16, x, y, 4, &d), GMRT_OK);
    static const unsigned char f16[8] = {0x00, 0x3c, 0x00, 0x80,
                                         0x00, 0x7c, 0x00, 0x00};
    ck_assert_mem_eq(y, f16, 8);
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_BF16, x, y, 4, &d), GMRT_OK);
    static const unsigned char bf16[8] = {0x80, 0x3f, 0x00, 0x80,
                                          0x80, 0x47, 0x00, 0x33};
    ck_assert_mem_eq(y, bf16, 8);
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_F32, x, y, 4, &d), GMRT_OK);
    ck_assert_mem_eq(y, x, 16);
}
END_TEST

/* Types without a quantizer, partial blocks, unknown ids, NULL buffers. */
START_TEST(test_quantize_errors)
{
    float x[256] = {0};
    unsigned char y[512];
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_Q2_K, x, y, 256, &d),
                     GMRT_ERR_UNSUPPORTED);
    ck_assert_str_eq(d.msg, "quantizing to q2_k is not supported (only the "
                            "weight types f32, f16, bf16, q4_0, q4_1, q5_0, "
                            "q5_1, q8_0, q4_k, q5_k, q6_k)");
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_Q8_0, x, y, 48, &d),
                     GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "48 elements of q8_0 are not a multiple of its "
                            "block size 32");
    ck_assert_int_eq(gmrt_quantize_row(99, x, y, 32, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "unknown dtype 99");
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_Q5_0, NULL, y, 32, &d),
                     GMRT_ERR_ARG);
    /* NULL diag: status only, no crash. */
    ck_assert_int_eq(gmrt_quantize_row(GMK_DTYPE_Q3_K, x, y, 256, NULL),
                     GMRT_ERR_UNSUPPORTED);
}
END_TEST

/* Non-finite input is undefined for ggml's casts; ours must stay defined
 * (UBSan runs this) and produce some block. */
START_TEST(test_quantize_nonfinite)
{
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)i;
    x[3] = NAN;
    x[7] = INFINITY;
    x[40] = -INFINITY;
    unsigned char y[300];
    for (size_t k = 0; k < sizeof quantizable / sizeof quantizable[0]; k++)
        ck_assert_int_eq(gmrt_quantize_row(quantizable[k], x, y, 256, NULL),
                         GMRT_OK);
}
END_TEST

/* ------------------------------------------------------------ fixtures */

/* Reads tests/fixtures/quant/<name>; the caller frees. */
static unsigned char *fixture(const char *name, size_t *len)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/quant/%s", name);
    unsigned char *p = (unsigned char *)gmc_test_read_file(gmc_test_src(rel), len);
    ck_assert_msg(p != NULL, "missing fixture %s (scripts/make_quant_fixture.py)",
                  rel);
    return p;
}

static const char *const inputs[] = {"gauss", "edge", "cos"};
static const char *const qsuffix[] = {"f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_1",
                                      "q5_1", "q4_k", "q5_k", "q6_k"};
#define N_QSUFFIX ((int)(sizeof qsuffix / sizeof qsuffix[0]))

/* gmrt_quantize_row reproduces gguf.quants.quantize byte for byte (Q4_1,
 * Q5_1 and the K-quants: ggml's own quantize_row_*_ref, through
 * ggml_quantize_chunk). */
START_TEST(test_quantize_fixture)
{
    const char *in = inputs[_i / N_QSUFFIX], *suffix = qsuffix[_i % N_QSUFFIX];
    int32_t t = gmrt_dtype_from_name(suffix);
    char name[64];
    size_t nx, nq;
    snprintf(name, sizeof name, "in_%s.f32", in);
    unsigned char *xb = fixture(name, &nx);
    snprintf(name, sizeof name, "in_%s.%s", in, suffix);
    unsigned char *want = fixture(name, &nq);
    ck_assert_uint_eq(nx, 256 * sizeof(float));
    float x[256];
    memcpy(x, xb, sizeof x);
    size_t bytes;
    ck_assert_int_eq(gmrt_dtype_row_bytes(t, 256, &bytes, NULL), GMRT_OK);
    ck_assert_uint_eq(nq, bytes);
    unsigned char got[1024];
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_quantize_row(t, x, got, 256, &d), GMRT_OK);
    for (size_t i = 0; i < bytes; i++)
        ck_assert_msg(got[i] == want[i], "%s: byte %zu is 0x%02x, want 0x%02x",
                      name, i, got[i], want[i]);
    free(xb);
    free(want);
}
END_TEST

static const char *const blk_types[] = {"q4_0", "q4_1", "q5_0", "q5_1",
                                        "q8_0", "q4_k", "q5_k", "q6_k"};

/* Two random blocks of each type dequantize exactly as gguf.quants does. */
START_TEST(test_dequantize_fixture)
{
    const char *suffix = blk_types[_i];
    int32_t t = gmrt_dtype_from_name(suffix);
    char name[64];
    size_t nb, ny;
    snprintf(name, sizeof name, "blk.%s", suffix);
    unsigned char *b = fixture(name, &nb);
    snprintf(name, sizeof name, "blk.%s.f32", suffix);
    unsigned char *want = fixture(name, &ny);
    int64_t n = 2 * gmrt_dtype_block(t);
    ck_assert_uint_eq(nb, 2 * gmrt_dtype_block_bytes(t));
    ck_assert_uint_eq(ny, (size_t)n * sizeof(float));
    float y[512];
    gmrt_dequantize_row(t, b, y, n);
    for (int64_t i = 0; i < n; i++) {
        float w;
        memcpy(&w, want + i * 4, 4);
        ck_assert_msg(bits(y[i]) == bits(w), "%s: value %lld is %.9g, want %.9g",
                      suffix, (long long)i, y[i], w);
    }
    /* The scales were chosen so that no value is zero everywhere: a
     * dequantizer that writes nothing cannot pass. */
    int nonzero = 0;
    for (int64_t i = 0; i < n; i++)
        nonzero += y[i] != 0.0f;
    ck_assert_int_gt(nonzero, n / 2);
    free(b);
    free(want);
}
END_TEST

/* Cases: table (names, sizes), convert (f16/bf16), quantize (errors,
 * fixtures). */
Suite *dtype_suite(void)
{
    Suite *s = suite_create("dtype");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_blocks_and_support);
    tcase_add_test(tc, test_row_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("convert");
    tcase_add_test(tc, test_f16_special);
    tcase_add_test(tc, test_f16_roundtrip_all);
    tcase_add_test(tc, test_bf16_special);
    suite_add_tcase(s, tc);
    tc = tcase_create("quantize");
    tcase_add_loop_test(tc, test_quantize_error, 0, 8);
    tcase_add_test(tc, test_quantize_float_types);
    tcase_add_test(tc, test_quantize_errors);
    tcase_add_test(tc, test_quantize_nonfinite);
    tcase_add_loop_test(tc, test_quantize_fixture, 0, 3 * N_QSUFFIX);
    tcase_add_loop_test(tc, test_dequantize_fixture, 0, 8);
    suite_add_tcase(s, tc);
    return s;
}
