/*
 * quantize.c — reference quantizers for the GGUF block formats that dtype.c
 * does not write bit-exactly like ggml: Q4_1, Q5_1, Q4_K, Q5_K and Q6_K.
 *
 * They produce the same block layouts as ggml (spec §9.1, gmk_quant.h, whose
 * dequantizers read them back), so weights quantized at load time from a
 * safetensors checkpoint, or written by `gemmac init`, run through the same
 * kernels as a GGUF file's.  The rounding choices are ours and simple: a
 * min/max fit for the 32-blocks, and for the K-quants a short search over
 * candidate scales with a least-squares refit of scale and offset per
 * sub-block (no importance matrix).  Round-trip error is tested against the
 * thresholds of reliability.md §4.2 in tests/test_safetensors.c.
 */
#include "quantize.h"

#include "gmk_quant.h"

#include <math.h>
#include <string.h>

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

/* Min/max affine blocks of 32: x ≈ d·q + m with q in [0, qmax].  Q5_1 puts
 * bit 4 of element j into bit j of the little-endian qh word. */
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
            int q0 = clamp_round((x[j] - lo) * id, 0, qmax);
            int q1 = clamp_round((x[j + 16] - lo) * id, 0, qmax);
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

/* Fits x[0..n) ≈ scale·q + off with q in [0, qmax] and off <= 0 (the K-quant
 * blocks store a non-negative min that is subtracted).  Tries min/max and a
 * few narrower ranges, each refit by least squares on its quants, and keeps
 * the one with the smallest squared error. */
static void fit_affine(const float *x, int n, int qmax, float *out_scale,
                       float *out_off)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    if (lo > 0.0f)
        lo = 0.0f;
    *out_scale = 0.0f;
    *out_off = lo;
    if (hi <= lo)
        return;
    float best = INFINITY;
    for (int step = 0; step <= 12; step++) {
        /* Candidate ranges shrink the top end by up to 12 %. */
        float scale = (hi - lo) * (1.0f - 0.01f * (float)step) / (float)qmax;
        float off = lo;
        for (int pass = 0; pass < 2; pass++) {
            double sq = 0, sx = 0, sqq = 0, sqx = 0;
            for (int j = 0; j < n; j++) {
                int q = clamp_round((x[j] - off) / scale, 0, qmax);
                sq += q;
                sx += x[j];
                sqq += (double)q * q;
                sqx += (double)q * x[j];
            }
            double det = n * sqq - sq * sq;
            if (det <= 0)
                break;
            double s = (n * sqx - sq * sx) / det, o = (sx - s * sq) / n;
            if (o > 0) { /* keep off <= 0: refit the scale alone */
                o = 0;
                s = sqq > 0 ? sqx / sqq : 0;
            }
            if (s <= 0)
                break;
            scale = (float)s;
            off = (float)o;
        }
        float err = 0.0f;
        for (int j = 0; j < n; j++) {
            int q = clamp_round((x[j] - off) / scale, 0, qmax);
            float e = scale * (float)q + off - x[j];
            err += e * e;
        }
        if (err < best) {
            best = err;
            *out_scale = scale;
            *out_off = off;
        }
    }
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

/* One 256-element Q4_K (qmax 15) or Q5_K (qmax 31) super-block: fits each
 * 32-sub-block, quantizes the sub-block scales and mins to 6 bits against
 * the super-block's f16 d and dmin, then quantizes the elements with the
 * scales as stored, so rounding of d, dmin and the 6-bit values is seen. */
static void quantize_k_block(const float *x, uint8_t *y, int qmax)
{
    float scale[8], mn[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        float off;
        fit_affine(x + 32 * s, 32, qmax, &scale[s], &off);
        mn[s] = -off;
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
    const float d = gmk_f16_to_f32(dh), dmin = gmk_f16_to_f32(mh);
    const bool five = qmax == 31;
    uint8_t *qh = y + 16, *qs = y + (five ? 48 : 16);
    if (five)
        memset(qh, 0, 32);
    for (int c = 0; c < 4; c++) {
        for (int half = 0; half < 2; half++) {
            const int s = 2 * c + half;
            const float ds = d * (float)sc[s], ms = dmin * (float)m[s];
            for (int l = 0; l < 32; l++) {
                int q = ds > 0 ? clamp_round((x[32 * s + l] + ms) / ds, 0, qmax) : 0;
                uint8_t *b = &qs[32 * c + l];
                *b = half ? (uint8_t)(*b | (q & 0x0f) << 4) : (uint8_t)(q & 0x0f);
                if (five && q > 15)
                    qh[l] |= (uint8_t)(1u << s);
            }
        }
    }
}

/* One 256-element Q6_K super-block: 16 sub-blocks of 16 with signed int8
 * scales against an f16 d; quants are 6-bit, stored biased by 32. */
static void quantize_q6_k_block(const float *x, uint8_t *y)
{
    float scale[16], max_scale = 0.0f, max_abs = 0.0f;
    for (int g = 0; g < 16; g++) {
        float mx = 0.0f, amax = 0.0f;
        for (int l = 0; l < 16; l++)
            if (fabsf(x[16 * g + l]) > amax) {
                amax = fabsf(x[16 * g + l]);
                mx = x[16 * g + l];
            }
        /* The extreme value maps to -32, the end with the larger range. */
        scale[g] = mx / -32.0f;
        if (fabsf(scale[g]) > max_abs) {
            max_abs = fabsf(scale[g]);
            max_scale = scale[g];
        }
    }
    uint8_t *ql = y, *qh = y + 128;
    int8_t *scales = (int8_t *)(y + 192);
    memset(y, 0, 210);
    const float iscale = max_scale != 0.0f ? -128.0f / max_scale : 0.0f;
    const uint16_t dh = gmk_f32_to_f16(iscale != 0.0f ? 1.0f / iscale : 0.0f);
    put_u16(y + 208, dh);
    const float d = gmk_f16_to_f32(dh);
    uint8_t q[256];
    for (int g = 0; g < 16; g++) {
        int v = clamp_round(iscale * scale[g], -128, 127);
        scales[g] = (int8_t)v;
        const float ds = d * (float)v;
        for (int l = 0; l < 16; l++)
            q[16 * g + l] = (uint8_t)(ds != 0.0f
                                          ? clamp_round(x[16 * g + l] / ds, -32, 31) + 32
                                          : 32);
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
