/*
 * gmk_math.h — the kernels' transcendental functions, the same bits on every
 * ISA: exp (softmax, GELU, the MoE router), tanh (soft-caps) and the sine
 * and cosine of RoPE.
 *
 * libm is not the same function everywhere: glibc's x86-64 vector expf
 * (libmvec, what clang's -fveclib calls in loops) and its scalar expf on
 * AArch64 differ in last bits, as do sinf/cosf between ISAs.  A last bit
 * that differs changes how an int8 activation rounds now and then, and the
 * logits of two targets then drift apart through the layers (docs/targets.md).
 * These use +, −, ×, ÷ and comparisons only, in a fixed order, with FP
 * contraction off (an fma rounds once, a multiply-add twice), so any IEEE-754
 * machine gets the same result; the float ones are branch-free so that clang
 * vectorizes their loops.
 */
#ifndef GMK_MATH_H
#define GMK_MATH_H

#include <stdint.h>
#include <string.h>

#include "gmk_quant.h" /* GMK_NO_CONTRACT, gmk_f32_bits, gmk_bits_f32 */

/*
 * exp(x) within 1.25 ulp (gradual underflow, +inf above 88.72, NaN kept).
 * x = n·ln2 + r, |r| ≤ ln2/2, with n = round(x/ln2) read from the low bits
 * of x/ln2 + 1.5·2^23 (round to nearest, as every IEEE machine does); ln2
 * is split so that n·ln2_hi is exact.  e^r is its Taylor polynomial to r^7
 * (the next term is under 0.05 ulp); 2^n is applied as 2^n1 · 2^(n − n1),
 * n1 = round(x/(2·ln2)), so that each factor is a normal float for every n
 * the clamp allows and only the last product can round (to a subnormal).
 */
static inline float gmk_expf(float x)
{
    GMK_NO_CONTRACT
    const float shift = 0x1.8p23f, log2e = 0x1.715476p+0f;
    const float ln2_hi = 0x1.62e4p-1f, ln2_lo = 0x1.7f7d1cp-20f;
    /* outside [-104, 89] the result is 0 or +inf anyway; NaN passes */
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    float z = x * log2e;
    float t = z + shift, th = z * 0.5f + shift;
    float n = t - shift;
    float r = (x - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* the biased exponents of 2^n1 and 2^(n - n1): t and th hold
     * 0x4b400000 + n and + n1 in their bits (unsigned: NaN wraps harmlessly) */
    uint32_t bt = gmk_f32_bits(t), bh = gmk_f32_bits(th);
    float s1 = gmk_bits_f32((bh - 0x4b400000u + 127u) << 23);
    float s2 = gmk_bits_f32((bt - bh + 127u) << 23);
    return p * s1 * s2;
}

/*
 * tanh(x) within 2 ulp, odd, ±1 in the limits, NaN kept.  |x| < 0.55:
 * the Taylor series to x^19 (the next term is under 0.01 ulp there); above,
 * 1 − 2/(e^{2|x|} + 1), whose subtraction then loses at most one bit.
 */
static inline float gmk_tanhf(float x)
{
    GMK_NO_CONTRACT
    float a = x < 0.0f ? -x : x, a2 = a * a;
    float p = -443861162.0f / 1856156927625.0f;
    p = p * a2 + 6404582.0f / 10854718875.0f;
    p = p * a2 + -929569.0f / 638512875.0f;
    p = p * a2 + 21844.0f / 6081075.0f;
    p = p * a2 + -1382.0f / 155925.0f;
    p = p * a2 + 62.0f / 2835.0f;
    p = p * a2 + -17.0f / 315.0f;
    p = p * a2 + 2.0f / 15.0f;
    p = p * a2 + -1.0f / 3.0f;
    float small = a + a * a2 * p;
    float large = 1.0f - 2.0f / (gmk_expf(2.0f * a) + 1.0f);
    float y = a < 0.55f ? small : large;
    return x < 0.0f ? -y : x > 0.0f ? y : x; /* ±0 and NaN as given */
}

/*
 * sin(x) and cos(x) of a float angle, rounded from double arithmetic (RoPE:
 * x = position · frequency, up to the context length in radians).  x is
 * reduced by k·π/2, π/2 in three parts of 33, 33 and 53 bits, so that k·hi
 * and k·mid are exact for k < 2^20 (|x| < 1.6e6); the remainder, |r| ≤ π/4,
 * goes through the Taylor series of sin to r^11 and of cos to r^12 (both
 * within 1e-11, far under a float's ulp), and k mod 4 picks the quadrant.
 */
static inline void gmk_sincosf(float x, float *out_sin, float *out_cos)
{
    GMK_NO_CONTRACT
    const double shift = 0x1.8p52, two_over_pi = 0x1.45f306dc9c883p-1;
    const double pio2_hi = 0x1.921fb544p+0, pio2_mid = 0x1.0b4611a6p-34,
                 pio2_lo = 0x1.3198a2e037073p-69;
    double xd = x, t = xd * two_over_pi + shift;
    double k = t - shift;
    double r = ((xd - k * pio2_hi) - k * pio2_mid) - k * pio2_lo, r2 = r * r;
    double s = -1.0 / 39916800;
    s = s * r2 + 1.0 / 362880;
    s = s * r2 + -1.0 / 5040;
    s = s * r2 + 1.0 / 120;
    s = s * r2 + -1.0 / 6;
    s = r + r * r2 * s;
    double c = 1.0 / 479001600;
    c = c * r2 + -1.0 / 3628800;
    c = c * r2 + 1.0 / 40320;
    c = c * r2 + -1.0 / 720;
    c = c * r2 + 1.0 / 24;
    c = c * r2 + -0.5;
    c = 1.0 + r2 * c;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    switch (bits & 3u) { /* the low bits of t are k's */
    case 0: *out_sin = (float)s, *out_cos = (float)c; break;
    case 1: *out_sin = (float)c, *out_cos = (float)-s; break;
    case 2: *out_sin = (float)-s, *out_cos = (float)-c; break;
    default: *out_sin = (float)-c, *out_cos = (float)s; break;
    }
}

#endif
