/*
 * quantize.c — the quantizers for the GGUF block formats beyond dtype.c's
 * (Q8_0, Q4_0, Q5_0): Q4_1, Q5_1, Q4_K, Q5_K and Q6_K.
 *
 * Each reproduces ggml's reference quantizer (quantize_row_*_ref, which
 * llama.cpp's quantizer runs when it has no importance matrix) bit for bit,
 * as docs/input-checks.md §7.3 item 11 asks: weights quantized at load time from a
 * safetensors checkpoint, or written by `gemmac init`, are then the blocks
 * llama.cpp would write for the same weights.  The layouts are ggml's
 * (docs/models.md#quant-weights; gmk_quant.h's dequantizers read them back).  Checked byte for byte
 * against ggml's own output (tests/fixtures/quant, tests/test_dtype.c) and
 * on whole conformance models against llama.cpp's quantized files
 * (tests/test_conformance.c); round-trip error against docs/input-checks.md §4.2
 * in tests/test_safetensors.c.
 *
 * Bit-exactness fixes the arithmetic: every sum is a float accumulated in
 * element order, products associate left to right as written, rounding is
 * to nearest even (lrintf, as ggml's magic-number nearest_int) except where
 * ggml truncates x + 0.5, and no multiply-add is fused.
 */
#include "quantize.h"

#include "gmk_quant.h"

#include <math.h>
#include <string.h>

/* a·b + c must round twice, as in ggml's C (built without FMA contraction). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Nearest integer clamped to [lo, hi]; NaN maps to lo. */
static int clamp_round(float v, int lo, int hi)
{
    if (!(v >= (float)lo))
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)lrintf(v);
}

/* ------------------------------------------------------- Q4_1 and Q5_1 */

/* Integer part of v >= 0 clamped to qmax, as ggml's (int8_t) cast and MIN;
 * NaN (from NaN weights, where ggml's cast is undefined) maps to 0. */
static int clamp_trunc(float v, int qmax)
{
    if (!(v >= 0.0f))
        return 0;
    return v >= (float)qmax ? qmax : (int)v;
}

/* Min/max affine blocks of 32: x ≈ d·q + m with q in [0, qmax], q the
 * integer part of (x − m)/d + 0.5 (ggml truncates rather than rounds).
 * Q5_1 puts bit 4 of element j into bit j of the little-endian qh word. */
static void quantize_affine32(const float *x, uint8_t *y, int64_t nb, int qmax)
{
    const bool five = qmax == 31;
    const size_t bytes = five ? 24 : 20, qs_at = five ? 8 : 4;
    for (int64_t i = 0; i < nb; i++, x += 32, y += bytes) {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < 32; j++) {
            lo = x[j] < lo ? x[j] : lo;
            hi = x[j] > hi ? x[j] : hi;
        }
        const float d = (hi - lo) / (float)qmax;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_u16(y, gmk_f32_to_f16(d));
        put_u16(y + 2, gmk_f32_to_f16(lo));
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = clamp_trunc((x[j] - lo) * id + 0.5f, qmax);
            int q1 = clamp_trunc((x[j + 16] - lo) * id + 0.5f, qmax);
            y[qs_at + (size_t)j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        if (five)
            for (int k = 0; k < 4; k++)
                y[4 + k] = (uint8_t)(qh >> (8 * k));
    }
}

/* ------------------------------------------------------------ K-quants */

#define K_SUB 32 /* elements per Q4_K / Q5_K sub-block */
#define Q6_SUB 16

/* One Q4_K / Q5_K sub-block: x ≈ scale·q − min, q in [0, qmax], min >= 0.
 * Start from the min/max grid (the offset is never above zero), then try
 * nstep + 1 grids of qmax + rmin + rdelta·k steps over the current range,
 * refit scale and offset of each by least squares weighted by w (an offset
 * above zero refits the scale alone), and keep the fit of least weighted
 * squared error; a kept fit's offset moves the range for the next grids.
 * q receives the quants of the kept fit. */
static float fit_k_sub(const float *x, const float *w, int qmax, float rmin, float rdelta,
                       int nstep, uint8_t *q, float *out_min)
{
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < K_SUB; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0)
        lo = 0;
    if (hi == lo) {
        memset(q, 0, K_SUB);
        *out_min = -lo;
        return 0.0f;
    }
    float iscale = (float)qmax / (hi - lo), scale = 1 / iscale, best = 0;
    for (int i = 0; i < K_SUB; i++) {
        q[i] = (uint8_t)clamp_round(iscale * (x[i] - lo), 0, qmax);
        float diff = scale * (float)q[i] + lo - x[i];
        best += w[i] * (diff * diff);
    }
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)qmax) / (hi - lo);
        uint8_t aux[K_SUB];
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < K_SUB; i++) {
            int l = clamp_round(iscale * (x[i] - lo), 0, qmax);
            aux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0))
            continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0) {
            m = 0;
            s = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < K_SUB; i++) {
            float diff = s * (float)aux[i] + m - x[i];
            err += w[i] * (diff * diff);
        }
        if (err < best) {
            memcpy(q, aux, K_SUB);
            best = err;
            scale = s;
            lo = m;
        }
    }
    *out_min = -lo;
    return scale;
}

/* Packs eight 6-bit scales and mins into the 12-byte K-quant field; the
 * inverse of gmk_scale_min_k4. */
static void pack_scales_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12])
{
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= sc[j] & 63;
            s[j + 4] |= m[j] & 63;
        } else {
            s[j + 4] = (uint8_t)((sc[j] & 0x0f) | ((m[j] & 0x0f) << 4));
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
}

/* One 256-element Q4_K (qmax 15) or Q5_K (qmax 31) super-block.  Each
 * sub-block is fit with weights rms(x) + |x_i| (Q4_K: 21 grids from
 * qmax − 1, Q5_K: 16 from qmax − 0.5, both 0.1 apart); the scales and mins
 * are quantized to 6 bits against the super-block's f16 d and dmin; the
 * elements are then quantized again with the scales as stored, except in a
 * sub-block whose stored scale is 0, which keeps the quants of its fit. */
static void quantize_k_block(const float *x, uint8_t *y, int qmax)
{
    const bool five = qmax == 31;
    uint8_t q[256];
    float scale[8], mn[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        const float *xs = x + K_SUB * s;
        float sum_x2 = 0, w[K_SUB];
        for (int l = 0; l < K_SUB; l++)
            sum_x2 += xs[l] * xs[l];
        const float av = sqrtf(sum_x2 / K_SUB);
        for (int l = 0; l < K_SUB; l++)
            w[l] = av + fabsf(xs[l]);
        scale[s] = fit_k_sub(xs, w, qmax, five ? -0.5f : -1.0f, 0.1f, five ? 15 : 20,
                             q + K_SUB * s, &mn[s]);
        max_scale = scale[s] > max_scale ? scale[s] : max_scale;
        max_min = mn[s] > max_min ? mn[s] : max_min;
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; s++) {
        sc[s] = (uint8_t)clamp_round(inv_scale * scale[s], 0, 63);
        m[s] = (uint8_t)clamp_round(inv_min * mn[s], 0, 63);
    }
    const uint16_t dh = gmk_f32_to_f16(max_scale / 63.0f);
    const uint16_t mh = gmk_f32_to_f16(max_min / 63.0f);
    put_u16(y, dh);
    put_u16(y + 2, mh);
    pack_scales_k4(sc, m, y + 4);
    for (int s = 0; s < 8; s++) {
        const float ds = gmk_f16_to_f32(dh) * (float)sc[s];
        if (ds == 0.0f)
            continue;
        const float ms = gmk_f16_to_f32(mh) * (float)m[s];
        for (int l = 0; l < K_SUB; l++)
            q[K_SUB * s + l] = (uint8_t)clamp_round((x[K_SUB * s + l] + ms) / ds, 0, qmax);
    }
    /* Chunk c of 64: sub-block 2c in the low nibbles of qs[32c..], 2c + 1 in
     * the high ones; Q5_K's fifth bits go to bit s of qh[l]. */
    uint8_t *qh = y + 16, *qs = y + (five ? 48 : 16);
    if (five)
        memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            const uint8_t a = q[64 * c + l], b = q[64 * c + 32 + l];
            qs[32 * c + l] = (uint8_t)((a & 0x0f) | (b & 0x0f) << 4);
            if (five)
                qh[l] |= (uint8_t)((a >> 4) << (2 * c) | (b >> 4) << (2 * c + 1));
        }
}

/* Groups with |x| below this are all zero (ggml's GROUP_MAX_EPS). */
#define Q6_ZERO 1e-15f

/* One Q6_K group of 16: x ≈ scale·(q − 32), q in [0, 63].  The grid puts
 * the value of largest magnitude at −32; 18 more grids of 32 ± 0.1·k steps
 * are tried, each with the least-squares scale weighted by x², and the one
 * that explains the most weighted variance is kept.  q receives its quants
 * (all 0 for an all-zero group). */
static float fit_q6_group(const float *x, uint8_t *q)
{
    float max = 0, amax = 0;
    for (int i = 0; i < Q6_SUB; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < Q6_ZERO) {
        memset(q, 0, Q6_SUB);
        return 0.0f;
    }
    float iscale = -32.0f / max, sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < Q6_SUB; i++) {
        int l = clamp_round(iscale * x[i], -32, 31);
        q[i] = (uint8_t)(l + 32);
        float w = x[i] * x[i];
        sum_lx += w * x[i] * (float)l;
        sum_l2 += w * (float)l * (float)l;
    }
    float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f, best = scale * sum_lx;
    for (int k = -9; k <= 9; k++) {
        if (k == 0)
            continue;
        iscale = -(32.0f + 0.1f * (float)k) / max;
        sum_lx = sum_l2 = 0;
        for (int i = 0; i < Q6_SUB; i++) {
            int l = clamp_round(iscale * x[i], -32, 31);
            float w = x[i] * x[i];
            sum_lx += w * x[i] * (float)l;
            sum_l2 += w * (float)l * (float)l;
        }
        if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
            for (int i = 0; i < Q6_SUB; i++)
                q[i] = (uint8_t)(clamp_round(iscale * x[i], -32, 31) + 32);
            scale = sum_lx / sum_l2;
            best = scale * sum_lx;
        }
    }
    return scale;
}

/* One 256-element Q6_K super-block: 16 groups of 16 with signed 8-bit
 * scales against an f16 d (the group scale of largest magnitude maps to
 * −128); the elements are quantized again with the scales as stored, except
 * in a group whose stored scale is 0, which keeps the quants of its fit. */
static void quantize_q6_k_block(const float *x, uint8_t *y)
{
    uint8_t q[256];
    float scale[16], max_scale = 0.0f, max_abs = 0.0f;
    for (int g = 0; g < 16; g++) {
        scale[g] = fit_q6_group(x + Q6_SUB * g, q + Q6_SUB * g);
        if (fabsf(scale[g]) > max_abs) {
            max_abs = fabsf(scale[g]);
            max_scale = scale[g];
        }
    }
    memset(y, 0, 210);
    if (max_abs < Q6_ZERO)
        return; /* d = +0 */
    uint8_t *ql = y, *qh = y + 128;
    int8_t *scales = (int8_t *)(y + 192);
    const float iscale = -128.0f / max_scale;
    const uint16_t dh = gmk_f32_to_f16(1 / iscale);
    put_u16(y + 208, dh);
    for (int g = 0; g < 16; g++) {
        int v = clamp_round(iscale * scale[g], -128, 127);
        scales[g] = (int8_t)v;
        const float ds = gmk_f16_to_f32(dh) * (float)v;
        if (ds == 0.0f)
            continue;
        for (int l = 0; l < Q6_SUB; l++)
            q[Q6_SUB * g + l] = (uint8_t)(clamp_round(x[Q6_SUB * g + l] / ds, -32, 31) + 32);
    }
    for (int n = 0; n < 2; n++) {
        const uint8_t *h = q + 128 * n;
        for (int l = 0; l < 32; l++) {
            ql[64 * n + l] = (uint8_t)((h[l] & 0x0f) | (h[l + 64] & 0x0f) << 4);
            ql[64 * n + l + 32] = (uint8_t)((h[l + 32] & 0x0f) | (h[l + 96] & 0x0f) << 4);
            qh[32 * n + l] = (uint8_t)((h[l] >> 4) | (h[l + 32] >> 4) << 2 |
                                       (h[l + 64] >> 4) << 4 | (h[l + 96] >> 4) << 6);
        }
    }
}

bool gmrt_quantize_row_ext(int32_t dtype, const float *src, uint8_t *dst, int64_t n)
{
    switch (dtype) {
    case GMK_DTYPE_Q4_1: quantize_affine32(src, dst, n / 32, 15); return true;
    case GMK_DTYPE_Q5_1: quantize_affine32(src, dst, n / 32, 31); return true;
    case GMK_DTYPE_Q4_K:
        for (int64_t i = 0; i < n / 256; i++)
            quantize_k_block(src + 256 * i, dst + 144 * i, 15);
        return true;
    case GMK_DTYPE_Q5_K:
        for (int64_t i = 0; i < n / 256; i++)
            quantize_k_block(src + 256 * i, dst + 176 * i, 31);
        return true;
    case GMK_DTYPE_Q6_K:
        for (int64_t i = 0; i < n / 256; i++)
            quantize_q6_k_block(src + 256 * i, dst + 210 * i);
        return true;
    default:
        return false;
    }
}
