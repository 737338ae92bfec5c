/*
 * gmk_x86_avx512.h — 512-bit tiles for the int8 matmuls of gmk_x86_simd.h.
 *
 * Included by gmk_x86_simd.h on AVX-512 F/BW/DQ/VL builds.  One zmm holds a
 * 64-element chunk of a k-quant block: half the instructions per (row, token)
 * of the 256-bit tiles (q6_k prefill ~1.5-2x on Zen 4).  b32 formats stay
 * 256-bit: a two-block zmm version measured ~30% slower on Zen 4 (building
 * per-pair scale vectors costs more than it saves).  Per-(row, token)
 * arithmetic is fixed whatever the tile shape, as in the 256-bit tiles.
 */
#ifndef GMK_X86_AVX512_H
#define GMK_X86_AVX512_H

/* acc + Σ of 2 products a·b per int32 lane (int16 lanes). */
GMK_X86_AI __m512i gmk_x86_dpwssd_z(__m512i acc, __m512i a, __m512i b)
{
#if GMK_X86_VNNI
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

/* Two 256-bit halves as one zmm (lo in lanes 0-7). */
GMK_X86_AI __m512i gmk_x86_join(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* ------------------------------------------------------------ k-quants */

/* 16 lanes of int32 from 8 (upper lanes zero). */
GMK_X86_AI __m512 gmk_x86_zext8(__m256 v)
{
    return _mm512_insertf32x8(_mm512_setzero_ps(), v, 0);
}

/* Unsigned weights of elements 64c..64c+63 of a q4_k/q5_k block. */
GMK_X86_AI __m512i gmk_x86_chunkz_q45k(int five, const uint8_t *b, int c)
{
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * five + 32 * c));
    __m512i z = _mm512_and_si512(gmk_x86_join(q, _mm256_srli_epi16(q, 4)), _mm512_set1_epi8(0x0f));
    if (five) { /* bit 2c of qh[l] → bit 4 of element l, bit 2c+1 → of element 32+l */
        __m256i qh = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(b + 16)), 2 * c);
        __m512i hb = gmk_x86_join(_mm256_slli_epi16(qh, 4), _mm256_slli_epi16(qh, 3));
        z = _mm512_or_si512(z, _mm512_and_si512(hb, _mm512_set1_epi8(0x10)));
    }
    return z;
}

/* As gmk_x86_tile_q45k with one zmm per 64-element chunk. */
GMK_X86_AI void gmk_x86_tile_q45kz(int five, int R, int T, float *restrict y, int64_t ldy,
                                   const uint8_t *restrict w, size_t wrow,
                                   const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    const size_t bb = five ? 176 : 144;
    __m512 acc[GMK_X86_KTR][GMK_X86_KTT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        gmk_x86_k45 h[GMK_X86_KTR];
        __m512i is[GMK_X86_KTR][GMK_X86_KTT];
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * bb, bb);
            h[i] = gmk_x86_head_q45k(w + (size_t)i * wrow + (size_t)b * bb);
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++)
                is[i][j] = _mm512_setzero_si512();
        }
        GMK_X86_UNROLL
        for (int c = 0; c < 4; c++) {
            __m512i q[GMK_X86_KTR], sc[GMK_X86_KTR];
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                q[i] = gmk_x86_chunkz_q45k(five, w + (size_t)i * wrow + (size_t)b * bb, c);
                sc[i] = gmk_x86_join(_mm256_set1_epi16(h[i].sc[2 * c]),
                                     _mm256_set1_epi16(h[i].sc[2 * c + 1]));
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m512i xv = _mm512_loadu_si512((const void *)(a->qs + 64 * c));
                GMK_X86_UNROLL
                for (int i = 0; i < R; i++)
                    is[i][j] = gmk_x86_dpwssd_z(is[i][j], _mm512_maddubs_epi16(q[i], xv), sc[i]);
            }
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
            __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                __m512 mi = gmk_x86_zext8(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, h[i].mins)));
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][j]),
                                            _mm512_set1_ps(h[i].d * a->d), acc[i][j]);
                acc[i][j] = _mm512_fnmadd_ps(mi, _mm512_set1_ps(h[i].dmin * a->d), acc[i][j]);
            }
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* Unsigned 6-bit weights of elements 64c..64c+63 of a q6_k block. */
GMK_X86_AI __m512i gmk_x86_chunkz_q6k(const uint8_t *b, int c)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    int n = c / 2;
    __m512i ql = _mm512_loadu_si512((const void *)(b + 64 * n));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * n));
    if (c % 2 == 0) /* low nibbles; qh bits 0-1 for ql[0..32), 2-3 for ql[32..64) */
        return _mm512_or_si512(
            _mm512_and_si512(ql, m4),
            _mm512_and_si512(gmk_x86_join(_mm256_slli_epi16(qh, 4), _mm256_slli_epi16(qh, 2)), m2));
    return _mm512_or_si512( /* high nibbles; qh bits 4-5 and 6-7 */
        _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
        _mm512_and_si512(gmk_x86_join(qh, _mm256_srli_epi16(qh, 2)), m2));
}

/* As gmk_x86_tile_q6k with one zmm per 64-element chunk. */
GMK_X86_AI void gmk_x86_tile_q6kz(int R, int T, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict w, size_t wrow,
                                  const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    /* int16 lane l of chunk c takes scale 4c + l/8 */
    const __m512i sidx = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
                                          1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[GMK_X86_KTR][GMK_X86_KTT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GMK_X86_KTR];
        __m256i sc16[GMK_X86_KTR];
        __m512i is[GMK_X86_KTR][GMK_X86_KTT];
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * 210, 210);
            wb[i] = w + (size_t)i * wrow + (size_t)b * 210;
            sc16[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb[i] + 192)));
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
                __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16[i]), 5);
                is[i][j] = _mm512_inserti64x4(_mm512_setzero_si512(),
                                              _mm256_sub_epi32(_mm256_setzero_si256(), corr), 0);
            }
        }
        GMK_X86_UNROLL
        for (int c = 0; c < 4; c++) {
            __m512i q[GMK_X86_KTR], sc[GMK_X86_KTR];
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                q[i] = gmk_x86_chunkz_q6k(wb[i], c);
                sc[i] = _mm512_permutexvar_epi16(_mm512_add_epi16(sidx, _mm512_set1_epi16((short)(4 * c))),
                                                 _mm512_castsi256_si512(sc16[i]));
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m512i xv = _mm512_loadu_si512((const void *)(a->qs + 64 * c));
                GMK_X86_UNROLL
                for (int i = 0; i < R; i++)
                    is[i][j] = gmk_x86_dpwssd_z(is[i][j], _mm512_maddubs_epi16(q[i], xv), sc[i]);
            }
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++)
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][j]),
                                            _mm512_set1_ps(gmk_x86_f16(wb[i] + 208) * a->d),
                                            acc[i][j]);
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

#endif /* GMK_X86_AVX512_H */
