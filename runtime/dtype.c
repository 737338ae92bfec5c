/*
 * dtype.c — element types: names, block sizes, row sizes, conversions and
 * (de)quantization of rows.
 *
 * Type ids are ggml's (gmk.h), so a GGUF tensor type is looked up without
 * translation.  Dequantization and the f16/bf16 conversions are those of
 * gmk_quant.h, the same code generated models use, so what the runtime and
 * its tests see is exactly what the kernels see.  The quantizers here follow
 * ggml's reference quantizers (quantize_row_*_ref) bit for bit, because
 * files written by our writer must equal what llama.cpp would write.
 */
#include "gmrt.h"
#include "gmk_quant.h"
#include "quantize.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* q·id + 8.5 must be two roundings, as in ggml's C and in numpy; a fused
 * multiply-add would change some quants.  (GCC in ISO C mode never
 * contracts and does not know the pragma.) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Names indexed by ggml type id; NULL = not a type this runtime knows. */
static const char *const dtype_names[GMK_DTYPE_COUNT] = {
    [GMK_DTYPE_F32] = "f32",   [GMK_DTYPE_F16] = "f16",
    [GMK_DTYPE_Q4_0] = "q4_0", [GMK_DTYPE_Q4_1] = "q4_1",
    [GMK_DTYPE_Q5_0] = "q5_0", [GMK_DTYPE_Q5_1] = "q5_1",
    [GMK_DTYPE_Q8_0] = "q8_0", [GMK_DTYPE_Q8_1] = "q8_1",
    [GMK_DTYPE_Q2_K] = "q2_k", [GMK_DTYPE_Q3_K] = "q3_k",
    [GMK_DTYPE_Q4_K] = "q4_k", [GMK_DTYPE_Q5_K] = "q5_k",
    [GMK_DTYPE_Q6_K] = "q6_k", [GMK_DTYPE_Q8_K] = "q8_k",
    [GMK_DTYPE_BF16] = "bf16",
};

/* The range check comes first: ids come straight from files (check 12). */
const char *gmrt_dtype_name(int32_t dtype)
{
    if (dtype < 0 || dtype >= GMK_DTYPE_COUNT)
        return NULL;
    return dtype_names[dtype];
}

/* Linear search: 40 entries, called while parsing YAML, not per token. */
int32_t gmrt_dtype_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int32_t i = 0; i < GMK_DTYPE_COUNT; i++)
        if (dtype_names[i] && strcmp(dtype_names[i], name) == 0)
            return i;
    return -1;
}

/* Both size queries answer 0 for ids outside the name table, even where
 * gmk_quant.h would know them, so that "known" means one thing. */
int64_t gmrt_dtype_block(int32_t dtype)
{
    return gmrt_dtype_name(dtype) ? gmk_dtype_block(dtype) : 0;
}

size_t gmrt_dtype_block_bytes(int32_t dtype)
{
    return gmrt_dtype_name(dtype) ? gmk_dtype_block_bytes(dtype) : 0;
}

bool gmrt_dtype_supported(int32_t dtype)
{
    /* Exactly the formats gmk_dequantize_row handles. */
    switch (dtype) {
    case GMK_DTYPE_F32: case GMK_DTYPE_F16: case GMK_DTYPE_BF16:
    case GMK_DTYPE_Q4_0: case GMK_DTYPE_Q4_1: case GMK_DTYPE_Q5_0:
    case GMK_DTYPE_Q5_1: case GMK_DTYPE_Q8_0: case GMK_DTYPE_Q4_K:
    case GMK_DTYPE_Q5_K: case GMK_DTYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* Shared argument check of row_bytes and quantize_row: known type, n >= 0,
 * whole blocks. */
static gmrt_status check_row(int32_t dtype, int64_t n, gmrt_diag *diag)
{
    const char *name = gmrt_dtype_name(dtype);
    if (!name || gmk_dtype_block(dtype) == 0)
        return gmrt_fail(diag, GMRT_ERR_ARG, "unknown dtype %" PRId32, dtype);
    if (n < 0)
        return gmrt_fail(diag, GMRT_ERR_ARG, "negative element count %" PRId64
                         " for %s", n, name);
    int64_t blk = gmk_dtype_block(dtype);
    if (n % blk != 0)
        return gmrt_fail(diag, GMRT_ERR_ARG, "%" PRId64 " elements of %s are "
                         "not a multiple of its block size %" PRId64, n, name,
                         blk);
    return GMRT_OK;
}

/* blocks * block_bytes is checked by division against SIZE_MAX: a row of
 * 2^62 f32 values is representable as a count but not as bytes. */
gmrt_status gmrt_dtype_row_bytes(int32_t dtype, int64_t n, size_t *out_bytes,
                                 gmrt_diag *diag)
{
    gmrt_status s = check_row(dtype, n, diag);
    if (s != GMRT_OK)
        return s;
    uint64_t blocks = (uint64_t)(n / gmk_dtype_block(dtype));
    uint64_t bb = gmk_dtype_block_bytes(dtype);
    if (blocks != 0 && bb > SIZE_MAX / blocks)
        return gmrt_fail(diag, GMRT_ERR_LIMIT, "%" PRId64 " elements of %s: "
                         "byte size overflows", n, gmrt_dtype_name(dtype));
    *out_bytes = (size_t)(blocks * bb);
    return GMRT_OK;
}

/* Thin wrappers: one implementation of each conversion for the whole
 * project, shared with generated kernels. */
float gmrt_f16_to_f32(uint16_t h) { return gmk_f16_to_f32(h); }
uint16_t gmrt_f32_to_f16(float f) { return gmk_f32_to_f16(f); }
float gmrt_bf16_to_f32(uint16_t h) { return gmk_bf16_to_f32(h); }
uint16_t gmrt_f32_to_bf16(float f) { return gmk_f32_to_bf16(f); }

/* Unsupported types produce zeros (gmk_dequantize_row's contract); callers
 * are expected to have checked gmrt_dtype_supported when loading. */
void gmrt_dequantize_row(int32_t dtype, const void *src, float *dst, int64_t n)
{
    if (!src || !dst || n <= 0)
        return;
    gmk_dequantize_row(dtype, src, dst, n);
}

/* ------------------------------------------------------------ quantizers */

/* Little-endian store to any address (blocks are packed, unaligned). */
static void store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* ggml converts with a plain (int8_t) cast, which truncates; finite inputs
 * always land in range.  NaN or ±inf inputs would make that cast undefined,
 * so they are pinned here instead (0 for NaN, the nearest end otherwise). */
static int trunc_i8(float v)
{
    if (v >= -128.0f && v <= 127.0f)
        return (int8_t)v;
    return v > 127.0f ? 127 : v < -128.0f ? -128 : 0;
}

/* The value of largest magnitude, sign kept; the first one wins ties, as in
 * ggml (a strict "<" while scanning). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

/* quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (half away from 0);
 * the block stores d rounded to f16 while q used the unrounded d. */
static void quantize_q8_0(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(y, gmk_f32_to_f16(d));
        for (int j = 0; j < 32; j++) {
            const float v = x[j] * id;
            y[2 + j] = (uint8_t)(int8_t)trunc_i8(roundf(v));
        }
    }
}

/* quantize_row_q4_0_ref: d = max/-8 so that the extreme value maps to
 * quant 0; q = min(15, trunc(x/d + 8.5)). Low nibbles hold elements 0..15. */
static void quantize_q4_0(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += 18) {
        const float d = signed_absmax(x, 32) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(y, gmk_f32_to_f16(d));
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[16 + j] * id;
            int q0 = trunc_i8(x0 + 8.5f), q1 = trunc_i8(x1 + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[2 + j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        }
    }
}

/* quantize_row_q5_0_ref: as Q4_0 with d = max/-16 and 5-bit quants; bit 4
 * of element j goes to bit j of the little-endian qh word. */
static void quantize_q5_0(const float *x, uint8_t *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y += 22) {
        const float d = signed_absmax(x, 32) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_u16(y, gmk_f32_to_f16(d));
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[16 + j] * id;
            int q0 = trunc_i8(x0 + 16.5f), q1 = trunc_i8(x1 + 16.5f);
            q0 = (q0 < 31 ? q0 : 31) & 0x1f;
            q1 = (q1 < 31 ? q1 : 31) & 0x1f;
            y[6 + j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++)
            y[2 + k] = (uint8_t)(qh >> (8 * k));
    }
}

/* dst must hold gmrt_dtype_row_bytes(dtype, n) bytes. */
gmrt_status gmrt_quantize_row(int32_t dtype, const float *src, void *dst,
                              int64_t n, gmrt_diag *diag)
{
    gmrt_status s = check_row(dtype, n, diag);
    if (s != GMRT_OK)
        return s;
    if (n > 0 && (!src || !dst))
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_quantize_row: NULL buffer");
    uint8_t *y = dst;
    switch (dtype) {
    case GMK_DTYPE_F32:
        if (n > 0)
            memcpy(y, src, (size_t)n * sizeof(float));
        return GMRT_OK;
    case GMK_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            store_u16(y + 2 * i, gmk_f32_to_f16(src[i]));
        return GMRT_OK;
    case GMK_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            store_u16(y + 2 * i, gmk_f32_to_bf16(src[i]));
        return GMRT_OK;
    case GMK_DTYPE_Q8_0: quantize_q8_0(src, y, n / 32); return GMRT_OK;
    case GMK_DTYPE_Q4_0: quantize_q4_0(src, y, n / 32); return GMRT_OK;
    case GMK_DTYPE_Q5_0: quantize_q5_0(src, y, n / 32); return GMRT_OK;
    default:
        /* The other weight formats: quantize.c. */
        if (gmrt_quantize_row_ext(dtype, src, y, n))
            return GMRT_OK;
        return gmrt_fail(diag, GMRT_ERR_UNSUPPORTED, "quantizing to %s is "
                         "not supported (only the weight types f32, f16, bf16, "
                         "q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k)",
                         gmrt_dtype_name(dtype));
    }
}
