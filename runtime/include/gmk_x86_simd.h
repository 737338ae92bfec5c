/*
 * gmk_x86_simd.h — AVX2 matmul kernels; vpdpbusd/vpdpwssd, mask registers
 * and vdpbf16ps take over where -march enables AVX-512 VNNI, BW and BF16.
 *
 * 256-bit vectors (one b32 block each; k-quants go 512-bit in
 * gmk_x86_avx512.h).  A tile is R rows × T tokens: a weight block is unpacked
 * once for T tokens, an activation block loaded once for R rows.  Per (row,
 * token) the operations never vary, so the grouping never changes a result:
 * b32 formats reduce each block's dot exactly in int32 and take one f32 step
 * per block (rows in the lanes of one accumulator, which lets the VNNI
 * prefill panels run 16 rows per instruction); k-quant and float tiles keep
 * an 8-lane accumulator per (row, token) and reduce it once at the end.
 */
#ifndef GMK_X86_SIMD_H
#define GMK_X86_SIMD_H

#include <immintrin.h>

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#define GMK_X86_VNNI 1
#else
#define GMK_X86_VNNI 0
#endif
#if defined(__AVX512BW__) && defined(__AVX512VL__)
#define GMK_X86_BW 1
#else
#define GMK_X86_BW 0
#endif
#ifndef GMK_X86_Z /* -DGMK_X86_Z=0 keeps AVX-512 builds on 256-bit tiles (benchmarks) */
#if GMK_X86_BW && defined(__AVX512DQ__)
#define GMK_X86_Z 1 /* 512-bit k-quant tiles, gmk_x86_avx512.h */
#else
#define GMK_X86_Z 0
#endif
#endif
#if defined(__AVX512BF16__) && defined(__AVX512VL__)
#define GMK_X86_BF16DP 1
#else
#define GMK_X86_BF16DP 0
#endif

/* Tile shapes: rows × tokens.  AVX-512 has 32 vector registers, AVX2 16;
 * k-quant tiles also hold an int32 accumulator per (row, token). */
#ifndef GMK_X86_TR
#if defined(__AVX512F__)
#define GMK_X86_TR 4
#define GMK_X86_TT 4
#define GMK_X86_KTR 2
#define GMK_X86_KTT 4
#else /* AVX2; b32 shapes picked with kernel_bench on Zen 4 at -march=x86-64-v3, k-quant
        * ones on an AVX2-only EPYC with panels (3×4: +8 % prefill, +6 % decode on 2×4) */
#define GMK_X86_TR 3
#define GMK_X86_TT 3
#define GMK_X86_KTR 3
#define GMK_X86_KTT 4
#endif
#endif

/* Tiles are instantiated per constant shape: force inlining so that the
 * accumulator arrays become registers. */
#define GMK_X86_AI static inline __attribute__((always_inline))
/* Loops over a tile's rows, tokens and chunks must unroll completely, or the
 * accumulators live in memory (clang leaves larger bodies rolled). */
#if defined(__clang__)
#define GMK_X86_UNROLL _Pragma("clang loop unroll(full)")
#define GMK_X86_NO_UNROLL _Pragma("clang loop unroll(disable)")
#define GMK_X86_UNROLL2 _Pragma("clang loop unroll_count(2)")
#else
#define GMK_X86_UNROLL
#define GMK_X86_NO_UNROLL
#define GMK_X86_UNROLL2
#endif

/* ------------------------------------------------------------ helpers */

/* Sum of 8 lanes in a fixed order. */
GMK_X86_AI float gmk_x86_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

GMK_X86_AI float gmk_x86_f16(const uint8_t *p)
{
    return _cvtsh_ss(gmk_load_u16(p));
}

/* acc + Σ of 4 products u·s per int32 lane (u unsigned, s signed bytes).
 * Without VNNI the pairs go through int16: callers keep |u·s + u·s| < 2^15. */
GMK_X86_AI __m256i gmk_x86_dpbusd(__m256i acc, __m256i u, __m256i s)
{
#if GMK_X86_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* acc + Σ of 2 products a·b per int32 lane (int16 lanes). */
GMK_X86_AI __m256i gmk_x86_dpwssd(__m256i acc, __m256i a, __m256i b)
{
#if GMK_X86_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* acc + cvt(i) · s, the one f32 step per block and (row, token). */
GMK_X86_AI __m256 gmk_x86_fold(__m256 acc, __m256i i, float s)
{
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_set1_ps(s), acc);
}

/* The 32 4-bit values of 16 bytes: low nibbles then high nibbles. */
GMK_X86_AI __m256i gmk_x86_nibbles(const uint8_t *p)
{
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
}

/* Byte j = 16 if bit j of qh is set, else 0. */
GMK_X86_AI __m256i gmk_x86_bit4(uint32_t qh)
{
#if GMK_X86_BW
    return _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(16));
#else
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bits), bits);
    return _mm256_and_si256(v, _mm256_set1_epi8(16));
#endif
}

/* Prefetches the bytes [off, off + len) of the weights at w into L2.  Tiles
 * call it for the same block GMK_X86_PF_TILES tiles of rows ahead, so that a
 * GEMV streams at memory bandwidth rather than at the rate the hardware
 * prefetchers manage for several interleaved rows: on the 262144×640 q8_0 LM
 * head (Zen 4) no prefetch gave ~2 GB/s, prefetch to L1 ~3, to L2 ~8 (the
 * machine's plain streaming read rate).  8 tiles ahead (32 rows, ~21 KiB on
 * that head) measured 18-22 GB/s against 15-17 at 2 tiles (kernel_bench
 * head, alternating runs).  Computed on integers: the address may lie past
 * the end of W, which a prefetch ignores. */
#ifndef GMK_X86_PF_HINT
#define GMK_X86_PF_HINT _MM_HINT_T1
#endif
#ifndef GMK_X86_PF_TILES
#define GMK_X86_PF_TILES 8
#endif
GMK_X86_AI void gmk_x86_prefetch(const uint8_t *w, size_t off, size_t len)
{
    uintptr_t p = (uintptr_t)w + off;
    for (size_t o = 0; o < len; o += 64)
        _mm_prefetch((const char *)(p + o), GMK_X86_PF_HINT);
}

/* How far ahead in a panel the repacked kernels prefetch, in bytes: a
 * panel is one stream read in order, so the distance is the memory's
 * latency times the rate the kernel reads, whatever the format's block
 * size; the k-quants' decode spreads a block's prefetches over its four
 * weight groups rather than issuing them at once (36 to 53 in a row filled
 * the line-fill buffers and stalled the loop).  GEMV of 260k-390k × 2048
 * from memory, huge pages, one thread, Sapphire Rapids VM whose read loop
 * gives 15.5 GB/s, three alternating rounds: P16 q4_k / q6_k / q4_0 / q8_0
 * 12.1-12.5 / 12.6-12.8 / 11.1-11.6 / 14.6-15.3 GB/s with the distances in
 * blocks before (2, 2, 8, 8; q4_0 and q8_0 into L1) → 14.7-15.3 /
 * 14.4-15.1 / 14.4-15.0 / 15.4-15.9 at 3072 bytes (2048 and 4096 a little
 * below); P8 (4, 4, 32, 32 blocks) 10.8-11.1 / 11.6-12.0 / 13.8-14.5 /
 * 12.5-13.0 → 14.3-14.8 / 13.2-13.7 / 13.8-14.5 / 14.4-14.9. */
#ifndef GMK_X86_DPF
#define GMK_X86_DPF 3072
#endif

/* Each cache line that starts in [p, p + len) prefetched, once. */
GMK_X86_AI void gmk_x86_prefetch_span(const uint8_t *p, size_t len)
{
    uintptr_t a = ((uintptr_t)p + 63) & ~(uintptr_t)63, end = (uintptr_t)p + len;
    for (; a < end; a += 64)
        _mm_prefetch((const char *)a, GMK_X86_PF_HINT);
}

/* The length of each of n parts that cover len bytes, the last one short:
 * prefill's token tiles each fetch a part of the next slice, spread over
 * their blocks a part each. */
GMK_X86_AI size_t gmk_x86_part_len(size_t len, size_t n)
{
    return len / n + 1;
}

/* Part i of n of [p, p + len) prefetched. */
GMK_X86_AI void gmk_x86_prefetch_part(const uint8_t *p, size_t len, size_t i, size_t n)
{
    const size_t part = gmk_x86_part_len(len, n);
    gmk_x86_prefetch_span(p + i * part, part);
}

/* ------------------------------------------------------------ activations */

/* gmk_x86_quant_q8_c 32 values at a time (n a multiple of 32), with the same
 * operations per element, so both give the same bytes: amax ignoring NaN
 * (maxps returns its second operand when one is NaN), NaN → 0, clamp to
 * ±127, add ±0.5, truncate; s[j] = Σ q[16j .. 16j+16).
 * AVX-512 takes 16 values a vector and the sums from the int32 lanes before
 * they are narrowed: the 1B Q4_0's prefill had spent 6 % of its time here
 * (kernel_bench: 170 µs of a 2048-wide, 64-token matmul's 1.4 ms). */
#define GMK_X86_HAVE_QUANT8 1
/* The largest of the 8 lanes of m (none NaN). */
GMK_X86_AI float gmk_x86_hmax8(__m256 m)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}
#if GMK_X86_BW
GMK_X86_AI float gmk_x86_quant_q8_simd(int8_t *restrict q, int32_t *restrict s,
                                       const float *restrict x, int n)
{
    const __m512 sign = _mm512_set1_ps(-0.0f), lim = _mm512_set1_ps(127.0f);
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        m = _mm512_max_ps(_mm512_andnot_ps(sign, _mm512_loadu_ps(x + i)), m);
    float d = gmk_x86_hmax8(_mm256_max_ps(_mm512_castps512_ps256(m), _mm256_castpd_ps(
                                _mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)))) / 127.0f;
    const __m512 id = _mm512_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
    for (int i = 0; i < n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), id);
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_xor_ps(lim, sign)), lim);
        v = _mm512_add_ps(v, _mm512_or_ps(_mm512_set1_ps(0.5f), _mm512_and_ps(v, sign)));
        __m512i r = _mm512_cvttps_epi32(v);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(r));
        s[i / 16] = _mm512_reduce_add_epi32(r);
    }
    return d;
}
#else
GMK_X86_AI float gmk_x86_quant_q8_simd(int8_t *restrict q, int32_t *restrict s,
                                       const float *restrict x, int n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(127.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
    float d = gmk_x86_hmax8(m) / 127.0f;
    const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < n; i += 32) {
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), id);
            v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
            v = _mm256_min_ps(_mm256_max_ps(v, _mm256_xor_ps(lim, sign)), lim);
            v = _mm256_add_ps(v, _mm256_or_ps(_mm256_set1_ps(0.5f), _mm256_and_ps(v, sign)));
            r[k] = _mm256_cvttps_epi32(v);
        }
        /* the two packs interleave 128-bit lanes; the permute restores order */
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    for (int j = 0; j < n / 16; j++)
        s[j] = gmk_x86_sum_q8(q + 16 * j, 16);
    return d;
}
#endif

/* ------------------------------------------------------------ b32 family */

/* One unpacked b32 weight block: u are the unsigned bytes dotted with the
 * activations, w the signed q8_0 bytes (AVX2 sign trick), d and m its scale
 * and minimum. */
typedef struct gmk_x86_w32 {
    __m256i u, w;
    float d, m;
} gmk_x86_w32;

/* Fixed offset folded out of the unsigned weights of format F:
 * Σ (u − off)·x = Σ u·x − off·Σ x, with Σ x the activation block's sum. */
GMK_X86_AI int gmk_x86_b32_off(int F)
{
    switch (F) {
    case GMK_DTYPE_Q4_0: return 8;
    case GMK_DTYPE_Q5_0: return 16;
    case GMK_DTYPE_Q8_0: return GMK_X86_VNNI ? 128 : 0;
    default: return 0;
    }
}

GMK_X86_AI gmk_x86_w32 gmk_x86_prep_b32(int F, const uint8_t *b)
{
    gmk_x86_w32 r;
    r.d = gmk_x86_f16(b);
    r.m = 0.0f;
    r.w = _mm256_setzero_si256();
    switch (F) {
    case GMK_DTYPE_Q8_0:
        r.w = _mm256_loadu_si256((const __m256i *)(b + 2));
        /* VNNI: w + 128 as unsigned; AVX2: |w|, the sign goes onto x */
        r.u = GMK_X86_VNNI ? _mm256_xor_si256(r.w, _mm256_set1_epi8((char)0x80))
                           : _mm256_abs_epi8(r.w);
        break;
    case GMK_DTYPE_Q4_0: r.u = gmk_x86_nibbles(b + 2); break;
    case GMK_DTYPE_Q4_1:
        r.m = gmk_x86_f16(b + 2);
        r.u = gmk_x86_nibbles(b + 4);
        break;
    case GMK_DTYPE_Q5_0:
        r.u = _mm256_or_si256(gmk_x86_nibbles(b + 6), gmk_x86_bit4(gmk_load_u32(b + 2)));
        break;
    default: /* Q5_1 */
        r.m = gmk_x86_f16(b + 2);
        r.u = _mm256_or_si256(gmk_x86_nibbles(b + 8), gmk_x86_bit4(gmk_load_u32(b + 4)));
        break;
    }
    return r;
}

/* The four full sums of d0..d3's 8 int32 lanes, as lanes 0-3.  Integer, so
 * exact: where a block's dot is reduced never changes it. */
GMK_X86_AI __m128i gmk_x86_reduce4(__m256i d0, __m256i d1, __m256i d2, __m256i d3)
{
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(d0, d1), _mm256_hadd_epi32(d2, d3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/*
 * Block b of R ≤ 4 rows × T tokens of format F into acc[j] (lane i: row
 * w + i·wrow, token x + j·xrow).  Per (row, token) and block, whatever the
 * tile or kernel (gmk_x86_panel_b32 runs the same steps 16 rows at a time):
 *   q   = Σ u·x − off·Σx            exact int32 (the whole block)
 *   acc = fma(float(q)·dx, dw, acc)
 *   acc = fma(m, dx·float(Σx), acc)  (formats with a minimum)
 */
GMK_X86_AI void gmk_x86_step_b32(int F, int R, int T, __m128 *acc, const uint8_t *restrict w,
                                 size_t wrow, const uint8_t *restrict x, size_t xrow, int64_t b)
{
    const size_t bb = gmk_dtype_block_bytes(F);
    const int off = gmk_x86_b32_off(F);
    const int has_min = F == GMK_DTYPE_Q4_1 || F == GMK_DTYPE_Q5_1;
    gmk_x86_w32 wb[4];
    float d[4] = {0}, m[4] = {0};
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++) {
        gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * bb, bb);
        wb[i] = gmk_x86_prep_b32(F, w + (size_t)i * wrow + (size_t)b * bb);
        d[i] = wb[i].d;
        m[i] = wb[i].m;
    }
    const __m128 dw = _mm_loadu_ps(d), mw = _mm_loadu_ps(m);
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(x + (size_t)j * xrow) + b;
        __m256i xv = _mm256_loadu_si256((const __m256i *)a->qs);
        __m256i init = _mm256_setr_epi32(-off * a->sum, 0, 0, 0, 0, 0, 0, 0);
        __m256i dot[4];
        GMK_X86_UNROLL
        for (int i = 0; i < 4; i++) {
            if (i >= R) {
                dot[i] = _mm256_setzero_si256();
                continue;
            }
            __m256i s = F == GMK_DTYPE_Q8_0 && !GMK_X86_VNNI ? _mm256_sign_epi8(xv, wb[i].w) : xv;
            dot[i] = gmk_x86_dpbusd(init, wb[i].u, s);
        }
        __m128 sx = _mm_mul_ps(_mm_cvtepi32_ps(gmk_x86_reduce4(dot[0], dot[1], dot[2], dot[3])),
                               _mm_set1_ps(a->d));
        acc[j] = _mm_fmadd_ps(sx, dw, acc[j]);
        if (has_min)
            acc[j] = _mm_fmadd_ps(mw, _mm_set1_ps(a->d * (float)a->sum), acc[j]);
    }
}

/* R ≤ 4 rows × T tokens of format F: y[j·ldy + i] for row w + i·wrow and
 * activation row x + j·xrow, nb blocks each. */
GMK_X86_AI void gmk_x86_tile_b32(int F, int R, int T, float *restrict y, int64_t ldy,
                                 const uint8_t *restrict w, size_t wrow,
                                 const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    __m128 acc[GMK_X86_TT];
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        acc[j] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        gmk_x86_step_b32(F, R, T, acc, w, wrow, x, xrow, b);
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++) {
        float o[4];
        _mm_storeu_ps(o, acc[j]);
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++)
            y[j * ldy + i] = o[i];
    }
}

#if !defined(__AVX512F__)
/*
 * The b32 formats on AVX2: an 8-lane f32 accumulator per (row, token), not
 * gmk_x86_step_b32's exact int32 sum per block, whose horizontal reduction
 * cost more than the dot itself (0.2 of the int8 peak on Zen).  Per (row,
 * token) and block, whatever the tile, source or token count:
 *   q   = madd(maddubs(u, x), 1) + (−off·Σx, 0, …)    exact int32 lanes
 *   acc = fma(float(q), dw·dx, acc)
 *   acc = fma((m, 0, …), dx·Σx, acc)                   (formats with a minimum)
 * and y = the lanes summed in a fixed order (q8_0 dots |w| with x signed by
 * w).  Prefill unpacks each pair of rows once into a panel on the stack
 * (gmk_x86_lp) and runs every token tile against it; decode (one row at a
 * time, see gmk_x86_walk), q8_0 and rows too long for a panel read the
 * weights directly.  Same arithmetic either way: bit-identical across
 * sources, shapes and thread counts.
 */
#define GMK_X86_HAVE_LANES 1
#ifndef GMK_X86_LR
#define GMK_X86_LR 2 /* rows per tile */
#define GMK_X86_LT 4 /* tokens per tile */
#endif
#define GMK_X86_LP_MAX 512 /* blocks per row a panel holds: 2·512·64 B of stack */

/* One unpacked block of one row: unsigned weights and the scale in 8 lanes. */
typedef struct gmk_x86_lp {
    __m256i u;
    __m256 d;
} gmk_x86_lp;

/* Block b of R rows × T tokens into acc.  Rows come from the weights w
 * (panel = NULL) or from panel[LR·b + i] with minimums pm[LR·b + i]. */
GMK_X86_AI void gmk_x86_lstep_b32(int F, int R, int T, __m256 acc[GMK_X86_LR][GMK_X86_LT],
                                  const uint8_t *restrict w, size_t wrow,
                                  const gmk_x86_lp *restrict panel, const float *restrict pm,
                                  const uint8_t *restrict x, size_t xrow, int64_t b)
{
    const size_t bb = gmk_dtype_block_bytes(F);
    const int off = gmk_x86_b32_off(F);
    const int has_min = F == GMK_DTYPE_Q4_1 || F == GMK_DTYPE_Q5_1;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i u[GMK_X86_LR], sw[GMK_X86_LR];
    __m256 dw[GMK_X86_LR], mw[GMK_X86_LR];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++) {
        float m;
        if (panel) {
            u[i] = panel[GMK_X86_LR * b + i].u;
            dw[i] = panel[GMK_X86_LR * b + i].d;
            sw[i] = u[i]; /* unused: q8_0 never takes a panel */
            m = has_min ? pm[GMK_X86_LR * b + i] : 0.0f;
        } else {
            gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * bb, bb);
            gmk_x86_w32 p = gmk_x86_prep_b32(F, w + (size_t)i * wrow + (size_t)b * bb);
            u[i] = p.u;
            sw[i] = p.w;
            dw[i] = _mm256_set1_ps(p.d);
            m = p.m;
        }
        mw[i] = _mm256_zextps128_ps256(_mm_set_ss(m));
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++) {
        const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(x + (size_t)j * xrow) + b;
        const __m256i xv = _mm256_loadu_si256((const __m256i *)a->qs);
        const __m256i init = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-off * a->sum));
        const __m256 dx = _mm256_set1_ps(a->d);
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            __m256i s = F == GMK_DTYPE_Q8_0 ? _mm256_sign_epi8(xv, sw[i]) : xv;
            __m256i q = _mm256_madd_epi16(_mm256_maddubs_epi16(u[i], s), ones);
            if (off)
                q = _mm256_add_epi32(q, init);
            acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_mul_ps(dw[i], dx), acc[i][j]);
            if (has_min)
                acc[i][j] = _mm256_fmadd_ps(mw[i], _mm256_set1_ps(a->d * (float)a->sum), acc[i][j]);
        }
    }
}

/* R ≤ LR rows × T ≤ LT tokens over nb blocks (see gmk_x86_lstep_b32). */
GMK_X86_AI void gmk_x86_ltile_b32(int F, int R, int T, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict w, size_t wrow,
                                  const gmk_x86_lp *restrict panel, const float *restrict pm,
                                  const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    __m256 acc[GMK_X86_LR][GMK_X86_LT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        gmk_x86_lstep_b32(F, R, T, acc, w, wrow, panel, pm, x, xrow, b);
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            y[j * ldy + i] = gmk_x86_hsum(acc[i][j]);
}

/* Every token of rows [r, r + R) in LT-token tiles, then one at a time. */
GMK_X86_AI void gmk_x86_lrows_b32(int F, int R, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict w, size_t wrow,
                                  const gmk_x86_lp *restrict panel, const float *restrict pm,
                                  const uint8_t *restrict X, size_t xrow, int n_tok, int64_t nb)
{
    int t = 0;
    for (; t + GMK_X86_LT <= n_tok; t += GMK_X86_LT)
        gmk_x86_ltile_b32(F, R, GMK_X86_LT, y + t * ldy, ldy, w, wrow, panel, pm,
                          X + (size_t)t * xrow, xrow, nb);
    for (; t < n_tok; t++)
        gmk_x86_ltile_b32(F, R, 1, y + t * ldy, ldy, w, wrow, panel, pm, X + (size_t)t * xrow,
                          xrow, nb);
}

/* Rows [r0, r1) × n_tok tokens of format F, nb blocks per row. */
GMK_X86_AI void gmk_x86_lwalk_b32(int F, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict W, size_t wrow,
                                  const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                                  int64_t r1, int64_t nb)
{
    const size_t bb = gmk_dtype_block_bytes(F);
    const int use_panel = F != GMK_DTYPE_Q8_0 && n_tok > 1 && nb <= GMK_X86_LP_MAX;
    const int64_t tiled = n_tok == 1 ? r0 : r1; /* decode: one row at a time, gmk_x86_walk */
    int64_t r = r0;
    for (; r + GMK_X86_LR <= tiled; r += GMK_X86_LR) {
        const uint8_t *w = W + (size_t)r * wrow;
        if (!use_panel) {
            gmk_x86_lrows_b32(F, GMK_X86_LR, y + r, ldy, w, wrow, NULL, NULL, X, xrow, n_tok, nb);
            continue;
        }
        gmk_x86_lp panel[GMK_X86_LR * GMK_X86_LP_MAX];
        float pm[GMK_X86_LR * GMK_X86_LP_MAX];
        for (int64_t b = 0; b < nb; b++)
            for (int i = 0; i < GMK_X86_LR; i++) {
                gmk_x86_w32 p = gmk_x86_prep_b32(F, w + (size_t)i * wrow + (size_t)b * bb);
                panel[GMK_X86_LR * b + i].u = p.u;
                panel[GMK_X86_LR * b + i].d = _mm256_set1_ps(p.d);
                pm[GMK_X86_LR * b + i] = p.m;
            }
        gmk_x86_lrows_b32(F, GMK_X86_LR, y + r, ldy, w, wrow, panel, pm, X, xrow, n_tok, nb);
    }
    for (; r < r1; r++)
        gmk_x86_lrows_b32(F, 1, y + r, ldy, W + (size_t)r * wrow, wrow, NULL, NULL, X, xrow,
                          n_tok, nb);
}
#endif

/*
 * q4_0 and q5_0 in the P8 layout (gmk_layout.h), AVX2 (compiled into the
 * AVX-512 builds too, whose floats and, without VNNI or in expert stacks,
 * k-quants read P8: kernel_bench on a Sapphire Rapids VM, q4_k 64 tokens
 * 80 → 150 GOP/s and one token 11.8 → 21.6 GB/s against the packed
 * 512-bit tiles): a 32-byte load holds
 * 4 bytes of each of 8 rows, so one vpmaddubsw against a broadcast dword of
 * activations advances 8 (row, token) dots by 4 elements.  A block's
 * products of a row add up in int16 (q4_0: all 8, |Σ| ≤ 8·2·15·128 < 2^15;
 * q5_0: 4 at a time, 4·2·31·128 < 2^15) before vpmaddwd: about 3 vector
 * instructions per (row, token, block) where the packed rows take 6, and no
 * horizontal sums; a q5_0 block's 5th bits cost 5 more per 32 bytes, paid
 * once per call in prefill (GMK_X86_P8_UP_MAX).  The arithmetic per (row, token) is
 * gmk_x86_step_b32's (exact int32 per block, then acc = fma(float(q)·dx,
 * dw, acc)), in lanes: every token count, row cut and thread count gives
 * the same bits, and the P16 kernels of an AVX-512 build compute the same
 * formula (not run on the AVX2 machine this was written on).  The packed
 * AVX2 path does not: it keeps 8 partial sums per row and token
 * (gmk_x86_lstep_b32).
 *
 * q8_0 keeps its signed bytes w.  Streamed (decode, and the tiles of a
 * prefill too wide or too short to unpack once), Σ w·x = Σ |w|·(x·sign w):
 * vpmaddubsw of |w| (u8, 128 for −128) and x with w's sign (s8: |x| ≤
 * 127), its pairs (≤ 2·128·127 < 2^15) widened by vpmaddwd and summed in
 * int32; 4 instructions per vector and token and 1 per vector where the
 * nibbles below took 5 and 3, and no −128·Σ x: GEMV from memory (838860 ×
 * 640, 466033 × 1152), one thread, 14.3-15.3 → 15.5-16.5 GB/s; the 270M's
 * decode at x86-64-v3 +9 % at one thread (its head is q8_0).  Unpacked
 * once per call (prefill), w ^ 0x80 = w + 128 splits into two q4_0-like
 * vectors, Σ w·x = Σ lo·x + 16·Σ hi·x − 128·Σ x, each sum in int16 over
 * the block (8·2·15·128 < 2^15), the q4_0 and q5_0 dot.
 */
#define GMK_X86_HAVE_P8 1
#define GMK_X86_P8_TT 4 /* tokens per register tile */
/* Blocks per row up to which a q5_0 or q8_0 prefill unpacks its panel once
 * per call (up to 64 KiB of stack) rather than once per token tile:
 * kernel_bench q5_0p8, 64 tokens, 96 → 146–150 GOP/s; no gain for q4_0,
 * whose unpacking is 3 instructions per 32 bytes. */
#define GMK_X86_P8_UP_MAX 128
/* Unpacked vectors per block: q8_0 two per 32 bytes. */
#define GMK_X86_P8_NU(F) ((F) == GMK_DTYPE_Q8_0 ? 16 : 8)

/* The vectors of unsigned weights of panel block p of format F (q4_0,
 * q5_0: vector g holds elements 4g..4g+3 of each row; q8_0: the nibbles of
 * w + 128, 8 + g the high ones of g's). */
GMK_X86_AI void gmk_x86_p8_unpack(int F, const uint8_t *restrict p, __m256i u[16])
{
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    const uint8_t *qs = p + gmk_panel_qs_at(F, 8);
    if (F == GMK_DTYPE_Q8_0) {
        GMK_X86_UNROLL
        for (int g = 0; g < 8; g++) {
            __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qs + 32 * g)),
                                         _mm256_set1_epi8((char)0x80));
            u[g] = _mm256_and_si256(v, lo4);
            u[g + 8] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
        }
        return;
    }
    GMK_X86_UNROLL
    for (int k = 0; k < 4; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
        u[k] = _mm256_and_si256(v, lo4);
        u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
    }
    if (F != GMK_DTYPE_Q5_0)
        return;
    /* bit j of 32-bit mask g is the 5th bit of byte j of vector g: each
     * byte picks its mask byte, tests its bit, and adds 16 where set */
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                          2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const uint8_t *qh = p + gmk_panel_qh_at(F, 8);
    GMK_X86_UNROLL
    for (int g = 0; g < 8; g++) {
        __m256i m = _mm256_shuffle_epi8(_mm256_set1_epi32((int)gmk_load_u32(qh + 4 * g)), pick);
        m = _mm256_cmpeq_epi8(_mm256_and_si256(m, bit), bit);
        u[g] = _mm256_or_si256(u[g], _mm256_and_si256(m, _mm256_set1_epi8(16)));
    }
}

/* The signed q8_0 bytes of panel block p as they are streamed: w[g] the
 * bytes of vector g, w[8 + g] their magnitudes. */
GMK_X86_AI void gmk_x86_p8_q8s(const uint8_t *restrict p, __m256i w[16])
{
    const uint8_t *qs = p + gmk_panel_qs_at(GMK_DTYPE_Q8_0, 8);
    GMK_X86_UNROLL
    for (int g = 0; g < 8; g++) {
        w[g] = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        w[g + 8] = _mm256_abs_epi8(w[g]);
    }
}

/* The exact int32 dot Σ w·x of a q8_0 block of each of the 8 rows
 * (gmk_x86_p8_q8s's vectors) with activation block a. */
GMK_X86_AI __m256i gmk_x86_p8_dot_q8s(const __m256i w[16], const gmk_act_q8_0 *a)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i q[2];
    GMK_X86_UNROLL
    for (int g = 0; g < 8; g++) { /* two chains */
        __m256i xg = _mm256_set1_epi32((int)gmk_load_u32((const uint8_t *)a->qs + 4 * g));
        __m256i pr = _mm256_madd_epi16(_mm256_maddubs_epi16(w[g + 8], _mm256_sign_epi8(xg, w[g])),
                                       ones);
        q[g % 2] = g < 2 ? pr : _mm256_add_epi32(q[g % 2], pr);
    }
    return _mm256_add_epi32(q[0], q[1]);
}

/* The exact int32 dot of a block of each of the 8 rows with activation
 * block a, the format's offset included: Σ (u − off)·x. */
GMK_X86_AI __m256i gmk_x86_p8_dot(int F, const __m256i u[16], const gmk_act_q8_0 *a)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s[2];
    if (F == GMK_DTYPE_Q8_0) { /* low and high nibbles, a chain each */
        GMK_X86_UNROLL
        for (int g = 0; g < 8; g++) {
            __m256i xg = _mm256_set1_epi32((int)gmk_load_u32((const uint8_t *)a->qs + 4 * g));
            __m256i lo = _mm256_maddubs_epi16(u[g], xg), hi = _mm256_maddubs_epi16(u[g + 8], xg);
            s[0] = g ? _mm256_add_epi16(s[0], lo) : lo;
            s[1] = g ? _mm256_add_epi16(s[1], hi) : hi;
        }
        __m256i q = _mm256_add_epi32(_mm256_madd_epi16(s[0], ones),
                                     _mm256_madd_epi16(s[1], _mm256_set1_epi16(16)));
        return _mm256_add_epi32(q, _mm256_set1_epi32(-128 * a->sum));
    }
    GMK_X86_UNROLL
    for (int g = 0; g < 8; g++) { /* q4_0: two chains; q5_0: one per half */
        __m256i xg = _mm256_set1_epi32((int)gmk_load_u32((const uint8_t *)a->qs + 4 * g));
        __m256i pr = _mm256_maddubs_epi16(u[g], xg);
        const int q5 = F == GMK_DTYPE_Q5_0, c = q5 ? g / 4 : g % 2;
        s[c] = (q5 ? g % 4 == 0 : g < 2) ? pr : _mm256_add_epi16(s[c], pr);
    }
    __m256i q = F == GMK_DTYPE_Q5_0
                    ? _mm256_add_epi32(_mm256_madd_epi16(s[0], ones), _mm256_madd_epi16(s[1], ones))
                    : _mm256_madd_epi16(_mm256_add_epi16(s[0], s[1]), ones);
    return _mm256_add_epi32(q, _mm256_set1_epi32(-gmk_x86_b32_off(F) * a->sum));
}

/* T ≤ GMK_X86_P8_TT tokens against the nb panel blocks of format F of the
 * panel at p, into the 8 lanes at y (rows ldy apart), lanes outside keep not
 * stored; the weights unpacked from p, or taken from up (8 vectors a block,
 * gmk_x86_p8_unpack's) where not NULL. */
GMK_X86_AI void gmk_x86_p8_tile(int F, int T, const uint8_t *restrict p,
                                const __m256i *restrict up, int64_t nb, float *restrict y,
                                int64_t ldy, __m256i keep, const uint8_t *restrict x,
                                size_t xrow)
{
    __m256 acc[GMK_X86_P8_TT];
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        acc[j] = _mm256_setzero_ps();
    const size_t pb = 8 * gmk_dtype_block_bytes(F);
    const int nu = GMK_X86_P8_NU(F);
    /* two blocks an iteration, the same order of sums: GEMV of 698368 × 1152
     * q4_0 from memory, one thread, 13.3-14.0 → 14.4-15.0 GB/s */
    GMK_X86_UNROLL2
    for (int64_t b = 0; b < nb; b++, p += pb) {
        __m256i u[16];
        if (up) {
            GMK_X86_UNROLL
            for (int g = 0; g < nu; g++)
                u[g] = up[nu * b + g];
        } else {
            gmk_x86_prefetch_span(p + GMK_X86_DPF, pb);
            if (F == GMK_DTYPE_Q8_0)
                gmk_x86_p8_q8s(p, u);
            else
                gmk_x86_p8_unpack(F, p, u);
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_0 *a = (const gmk_act_q8_0 *)(x + (size_t)j * xrow) + b;
            const __m256i q = F == GMK_DTYPE_Q8_0 && !up ? gmk_x86_p8_dot_q8s(u, a)
                                                         : gmk_x86_p8_dot(F, u, a);
            __m256 sx = _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(a->d));
            acc[j] = _mm256_fmadd_ps(sx, d, acc[j]);
        }
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        _mm256_maskstore_ps(y + j * ldy, keep, acc[j]);
}

/* The lanes of the panel of rows [p0, p0 + 8) that lie in [r0, r1). */
GMK_X86_AI __m256i gmk_x86_p8_keep(int64_t r0, int64_t r1, int64_t p0)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int lo = (int)((r0 > p0 ? r0 : p0) - p0);
    const int hi = (int)((r1 < p0 + 8 ? r1 : p0 + 8) - p0);
    return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
}

/* Rows [r0, r1) × n_tok tokens of format F in P8 (nb blocks per row):
 * panel by panel, lanes outside [r0, r1) computed and dropped. */
GMK_X86_AI void gmk_x86_p8_b32(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                               const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                               int64_t r1, int64_t nb)
{
    for (int64_t p0 = r0 / 8 * 8; p0 < r1; p0 += 8) {
        const __m256i keep = gmk_x86_p8_keep(r0, r1, p0);
        const size_t pb = 8 * gmk_dtype_block_bytes(F);
        const uint8_t *panel = W + (size_t)p0 * (size_t)nb * gmk_dtype_block_bytes(F);
        int t = 0;
        if (F != GMK_DTYPE_Q4_0 && n_tok >= 2 * GMK_X86_P8_TT && nb <= GMK_X86_P8_UP_MAX) {
            const int nu = GMK_X86_P8_NU(F);
            __m256i up[16 * GMK_X86_P8_UP_MAX]; /* unpacked once (64 KiB) */
            for (int64_t b = 0; b < nb; b++)
                gmk_x86_p8_unpack(F, panel + (size_t)b * pb, up + nu * b);
            for (; t + GMK_X86_P8_TT <= n_tok; t += GMK_X86_P8_TT)
                gmk_x86_p8_tile(F, GMK_X86_P8_TT, panel, up, nb, y + t * ldy + p0, ldy, keep,
                                X + (size_t)t * xrow, xrow);
        }
        for (; t + GMK_X86_P8_TT <= n_tok; t += GMK_X86_P8_TT)
            gmk_x86_p8_tile(F, GMK_X86_P8_TT, panel, NULL, nb, y + t * ldy + p0, ldy, keep,
                            X + (size_t)t * xrow, xrow);
        const uint8_t *xt = X + (size_t)t * xrow;
        float *yt = y + t * ldy + p0;
        switch (n_tok - t) { /* the last tokens in one tile */
        case 3: gmk_x86_p8_tile(F, 3, panel, NULL, nb, yt, ldy, keep, xt, xrow); break;
        case 2: gmk_x86_p8_tile(F, 2, panel, NULL, nb, yt, ldy, keep, xt, xrow); break;
        case 1: gmk_x86_p8_tile(F, 1, panel, NULL, nb, yt, ldy, keep, xt, xrow); break;
        default: break;
        }
    }
}

/*
 * q4_k, q5_k and q6_k in the P8 layout (gmk_layout.h): the scheme above per
 * 256-element block.  Vector i of a block holds elements 4i..4i+3 of each of
 * the 8 rows as unsigned weights (q4_k 0..15, q5_k 0..31, q6_k 0..63); one
 * vpmaddubsw against a broadcast dword of activations gives two int16 sums
 * per row, which add up within a sub-block (q4_k: 8 vectors, |Σ| ≤
 * 8·2·15·128 < 2^15; q5_k: 4, 4·2·31·128; q6_k: 2, 2·2·63·128) before one
 * vpmaddwd by the sub-block's scale of each row.  Per (row, token, block),
 * exact in int32, then two roundings as the scalar formula:
 *
 *   q4_k, q5_k  isum = Σ_j sc_j·Σ u·x   msum = Σ_j m_j·Σ x (from the bsums)
 *               acc = fma(isum, d·dx, acc), acc = fma(−msum, dmin·dx, acc)
 *   q6_k        isum = Σ_s sc_s·Σ u·x − 32·Σ_s sc_s·bsum_s
 *               acc = fma(isum, d·dx, acc)
 *
 * so every token count, row cut and thread count gives the same bits.  The
 * packed AVX2 k-quant tiles (gmk_x86_tile_q45k) sum in 8 lanes and differ in
 * the last bits.  Prefill unpacks GMK_X86_P8K_UP blocks of a panel at a
 * time for all its tokens (weights, scales and the f32 d of a block: 2.9
 * KiB), carrying the sums in y between them, the full tiles prefetching the
 * next slice a few lines a block (2B Q4_K_M pp512 at x86-64-v3, one thread:
 * 51.2-51.5 → 54.4-54.8 t/s); decode unpacks as it goes.
 */
#define GMK_X86_HAVE_P8K 1
#define GMK_X86_P8K_TT 4  /* tokens per register tile */
#define GMK_X86_P8K_UP 16 /* blocks unpacked at a time in prefill (46 KiB of stack) */

/* One k-quant panel block unpacked: u[i] as above; sc[s] the rows' scales
 * of sub-block s (8 of 32 elements, q6_k 16 of 16), row r's in both int16
 * halves of dword r; mn[k] the pairs that multiply the activations' sums
 * (q4_k, q5_k: m_2k, m_2k+1, k < 4; q6_k: sc_2k, sc_2k+1, k < 8). */
typedef struct gmk_x86_p8k {
    __m256i u[64], sc[16], mn[8];
    __m256 d, dmin;
} gmk_x86_p8k;

/* The int16 vector of 8 bytes a and 8 bytes b interleaved, sign-extended:
 * dword r = (a[r], b[r]). */
GMK_X86_AI __m256i gmk_x86_pair16(__m128i a, __m128i b)
{
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
}

/* Scale vectors of 2 sub-blocks from 16 bytes (8 rows of each, byte 8j + r):
 * sc[0], sc[1] duplicated, and their pair into *mn. */
GMK_X86_AI void gmk_x86_p8k_sc2(__m128i v, __m256i *sc, __m256i *mn)
{
    __m128i hi = _mm_srli_si128(v, 8);
    sc[0] = gmk_x86_pair16(v, v);
    sc[1] = gmk_x86_pair16(hi, hi);
    if (mn)
        *mn = gmk_x86_pair16(v, hi);
}

/* Sub-block q of weight group c of a block (gmk_x86_p8k_group). */
GMK_X86_AI int gmk_x86_pk_gsub(int F, int c, int q)
{
    return F == GMK_DTYPE_Q6_K ? 8 * (c / 2) + 2 * q + c % 2 : 2 * c + q;
}

/* Weight group c < 4 of the k-quant panel block at p: 16 vectors, those of
 * sub-blocks gmk_x86_pk_gsub(F, c, q) in u[gs·q .. gs·q + gs) (gs the
 * vectors per sub-block, 8 or q6_k's 4), where an unpacked block keeps
 * them at u[gs·s ..].  A group is what one pass over its bytes gives: a
 * q4_k/q5_k chunk's low and high nibbles, q6_k's four quarters of 4 ql,
 * ql + 8 and qh vectors (see gmk_dequant_q6_k).  P##_group and the whole
 * block's P##_unpack (P##_head's parts, then the groups in place), for the
 * P8 kernels (P gmk_x86_p8k, K its unpacked block, V __m256i, R 8 rows,
 * X _mm256, S si256) and the P16 ones alike. */
#define GMK_X86_PK_UNPACKS(P, K, V, R, X, S)                                                 \
    GMK_X86_AI void P##_group(int F, const uint8_t *restrict p, int c, V u[16])              \
    {                                                                                        \
        const V m4 = X##_set1_epi8(0x0f);                                                    \
        if (F == GMK_DTYPE_Q6_K) {                                                           \
            const uint8_t *qh = p + gmk_panel_part_at(F, R, 128);                            \
            const uint8_t *ql = p + gmk_panel_part_at(F, R, 0);                              \
            const V m2 = X##_set1_epi8(0x30);                                                \
            const int n = c / 2;                                                             \
            GMK_X86_UNROLL                                                                   \
            for (int e = 0; e < 4; e++) {                                                    \
                const int g = 4 * (c % 2) + e;                                               \
                V a = X##_loadu_##S((const void *)(ql + 4 * R * (16 * n + g)));              \
                V b = X##_loadu_##S((const void *)(ql + 4 * R * (16 * n + 8 + g)));          \
                V h = X##_loadu_##S((const void *)(qh + 4 * R * (8 * n + g)));               \
                u[e] = X##_or_##S(X##_and_##S(a, m4), X##_and_##S(X##_slli_epi16(h, 4), m2)); \
                u[4 + e] =                                                                   \
                    X##_or_##S(X##_and_##S(b, m4), X##_and_##S(X##_slli_epi16(h, 2), m2));   \
                u[8 + e] = X##_or_##S(X##_and_##S(X##_srli_epi16(a, 4), m4),                 \
                                      X##_and_##S(h, m2));                                   \
                u[12 + e] = X##_or_##S(X##_and_##S(X##_srli_epi16(b, 4), m4),                \
                                       X##_and_##S(X##_srli_epi16(h, 2), m2));               \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        /* chunk c: sub-blocks 2c (low nibbles), 2c + 1 */                                   \
        const uint8_t *qs = p + gmk_panel_part_at(F, R, F == GMK_DTYPE_Q5_K ? 48 : 16);      \
        const uint8_t *qh = p + gmk_panel_part_at(F, R, 16);                                 \
        const V b4 = X##_set1_epi8(0x10);                                                    \
        GMK_X86_UNROLL                                                                       \
        for (int g = 0; g < 8; g++) {                                                        \
            V v = X##_loadu_##S((const void *)(qs + 4 * R * (8 * c + g)));                   \
            V lo = X##_and_##S(v, m4);                                                       \
            V hi = X##_and_##S(X##_srli_epi16(v, 4), m4);                                    \
            if (F == GMK_DTYPE_Q5_K) { /* bit 2c of qh → 16 of lo, bit 2c + 1 → of hi */    \
                V h = X##_srli_epi16(X##_loadu_##S((const void *)(qh + 4 * R * g)), 2 * c);  \
                lo = X##_or_##S(lo, X##_and_##S(X##_slli_epi16(h, 4), b4));                  \
                hi = X##_or_##S(hi, X##_and_##S(X##_slli_epi16(h, 3), b4));                  \
            }                                                                                \
            u[g] = lo;                                                                       \
            u[8 + g] = hi;                                                                   \
        }                                                                                    \
    }                                                                                        \
    GMK_X86_AI void P##_unpack(int F, const uint8_t *restrict p, K *restrict k)              \
    {                                                                                        \
        const int gs = F == GMK_DTYPE_Q6_K ? 4 : 8;                                          \
        P##_head(F, p, k);                                                                   \
        GMK_X86_UNROLL                                                                       \
        for (int c = 0; c < 4; c++) {                                                        \
            V u[16];                                                                         \
            P##_group(F, p, c, u);                                                           \
            GMK_X86_UNROLL                                                                   \
            for (int i = 0; i < 16; i++)                                                     \
                k->u[gs * gmk_x86_pk_gsub(F, c, i / gs) + i % gs] = u[i];                    \
        }                                                                                    \
    }

/* The scales, minimums and block scales of the panel block at p into k
 * (all of it but the weights). */
GMK_X86_AI void gmk_x86_p8k_head(int F, const uint8_t *restrict p, gmk_x86_p8k *restrict k)
{
    k->d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    if (F == GMK_DTYPE_Q6_K) {
        const uint8_t *s = p + gmk_panel_part_at(F, 8, 192);
        k->dmin = _mm256_setzero_ps();
        GMK_X86_UNROLL
        for (int j = 0; j < 8; j++)
            gmk_x86_p8k_sc2(_mm_loadu_si128((const __m128i *)(s + 16 * j)), k->sc + 2 * j,
                            k->mn + j);
        return;
    }
    /* q4_k, q5_k: the 12 packed scale bytes as gmk_scale_min_k4, 8 rows at
     * a time (byte 8k + r of each vector) */
    const uint8_t *s = p + gmk_panel_part_at(F, 8, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m6 = _mm256_set1_epi8(0x3f), top = _mm256_set1_epi8(0x30);
    __m256i a = _mm256_loadu_si256((const __m256i *)s);
    __m256i b = _mm256_loadu_si256((const __m256i *)(s + 32));
    __m256i c = _mm256_loadu_si256((const __m256i *)(s + 64));
    __m256i sc03 = _mm256_and_si256(a, m6), mn03 = _mm256_and_si256(b, m6);
    __m256i sc47 = _mm256_or_si256(_mm256_and_si256(c, m4),
                                   _mm256_and_si256(_mm256_srli_epi16(a, 2), top));
    __m256i mn47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(b, 2), top));
    k->dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)));
    gmk_x86_p8k_sc2(_mm256_castsi256_si128(sc03), k->sc + 0, NULL);
    gmk_x86_p8k_sc2(_mm256_extracti128_si256(sc03, 1), k->sc + 2, NULL);
    gmk_x86_p8k_sc2(_mm256_castsi256_si128(sc47), k->sc + 4, NULL);
    gmk_x86_p8k_sc2(_mm256_extracti128_si256(sc47, 1), k->sc + 6, NULL);
    __m256i junk[2];
    gmk_x86_p8k_sc2(_mm256_castsi256_si128(mn03), junk, k->mn + 0);
    gmk_x86_p8k_sc2(_mm256_extracti128_si256(mn03, 1), junk, k->mn + 1);
    gmk_x86_p8k_sc2(_mm256_castsi256_si128(mn47), junk, k->mn + 2);
    gmk_x86_p8k_sc2(_mm256_extracti128_si256(mn47, 1), junk, k->mn + 3);
}

GMK_X86_PK_UNPACKS(gmk_x86_p8k, gmk_x86_p8k, __m256i, 8, _mm256, si256)

/* Sub-block s (its gs vectors at u, its rows' scales sc) against the
 * activation blocks a of T tokens, into the int32 sums is (the formula
 * above: exact, so the order of the sub-blocks is free). */
GMK_X86_AI void gmk_x86_p8k_sub(int F, int T, const __m256i *restrict u, __m256i sc,
                                const gmk_act_q8_k *const *a, int s,
                                __m256i is[GMK_X86_P8K_TT])
{
    const int gs = F == GMK_DTYPE_Q6_K ? 4 : 8; /* vectors per sub-block */
    const int run = F == GMK_DTYPE_Q4_K ? 8 : F == GMK_DTYPE_Q5_K ? 4 : 2;
    GMK_X86_UNROLL
    for (int g0 = 0; g0 < gs; g0 += run) {
        __m256i s16[GMK_X86_P8K_TT];
        GMK_X86_UNROLL
        for (int g = 0; g < run; g++) {
            const int i = gs * s + g0 + g;
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                __m256i xg = _mm256_set1_epi32((int)gmk_load_u32((const uint8_t *)a[j]->qs +
                                                                 4 * i));
                __m256i pr = _mm256_maddubs_epi16(u[g0 + g], xg);
                s16[j] = g ? _mm256_add_epi16(s16[j], pr) : pr;
            }
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            is[j] = _mm256_add_epi32(is[j], _mm256_madd_epi16(s16[j], sc));
    }
}

/* The block's sums is of T tokens (activation blocks a) into acc: the
 * minimums or q6_k's −32 from the bsums, then the float steps above. */
GMK_X86_AI void gmk_x86_p8k_end(int F, int T, const gmk_x86_p8k *restrict k,
                                const gmk_act_q8_k *const *a, __m256i is[GMK_X86_P8K_TT],
                                __m256 acc[GMK_X86_P8K_TT])
{
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++) {
        const __m256 dx = _mm256_set1_ps(a[j]->d);
        if (F == GMK_DTYPE_Q6_K) {
            __m256i bias = _mm256_setzero_si256();
            GMK_X86_UNROLL
            for (int q = 0; q < 8; q++)
                bias = _mm256_add_epi32(
                    bias, _mm256_madd_epi16(k->mn[q], _mm256_set1_epi32((int)gmk_load_u32(
                                                          (const uint8_t *)a[j]->bsums + 4 * q))));
            is[j] = _mm256_sub_epi32(is[j], _mm256_slli_epi32(bias, 5));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(k->d, dx), acc[j]);
            continue;
        }
        /* the sums of the 8 sub-blocks in int16, pairs (Σ_2q, Σ_2q+1) in
         * dwords 0, 1 (q = 0, 1) and 4, 5 (q = 2, 3) */
        __m256i bs = _mm256_loadu_si256((const __m256i *)a[j]->bsums);
        __m256i h = _mm256_hadd_epi16(bs, bs), ms = _mm256_setzero_si256();
        GMK_X86_UNROLL
        for (int q = 0; q < 4; q++) {
            __m256i pair = _mm256_permutevar8x32_epi32(h, _mm256_set1_epi32(q / 2 * 4 + q % 2));
            ms = _mm256_add_epi32(ms, _mm256_madd_epi16(k->mn[q], pair));
        }
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(k->d, dx), acc[j]);
        acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(k->dmin, dx), acc[j]);
    }
}

/* The two ways through a k-quant panel block, for the P8 kernels (P
 * gmk_x86_p8k, K its unpacked block, V __m256i, VF __m256, TT its tile) and
 * the P16 ones alike, the integer sums is zeroed for T tokens and ended by
 * P##_end: P##_block from unpacked block k, the sub-blocks a rolled loop,
 * which keeps a tile's sums in registers (kernel_bench q4_kp8, 64 tokens:
 * 146 → 193 GOP/s against unrolled); P##_stream from the panel block at p,
 * unpacked a group of 16 vectors at a time as they are used, unrolled
 * whole (decode: the weights stay in registers). */
#define GMK_X86_PK_WALKS(P, K, V, VF, TT, ZERO)                                               \
    GMK_X86_AI void P##_block(int F, int T, const K *restrict k, const uint8_t *restrict x,  \
                              size_t xrow, int64_t b, VF acc[TT])                            \
    {                                                                                        \
        const int ns = F == GMK_DTYPE_Q6_K ? 16 : 8, gs = 64 / ns;                           \
        const gmk_act_q8_k *a[TT];                                                           \
        V is[TT];                                                                            \
        GMK_X86_UNROLL                                                                       \
        for (int j = 0; j < T; j++) {                                                        \
            a[j] = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;                         \
            is[j] = ZERO();                                                                  \
        }                                                                                    \
        GMK_X86_NO_UNROLL                                                                    \
        for (int s = 0; s < ns; s++)                                                         \
            P##_sub(F, T, k->u + gs * s, k->sc[s], a, s, is);                                \
        P##_end(F, T, k, a, is, acc);                                                        \
    }                                                                                        \
    GMK_X86_AI void P##_stream(int F, int T, const uint8_t *restrict p,                      \
                               const uint8_t *restrict x, size_t xrow, int64_t b, VF acc[TT], \
                               const uint8_t *pf)                                            \
    {                                                                                        \
        const int gs = F == GMK_DTYPE_Q6_K ? 4 : 8;                                          \
        const int lines = (int)((sizeof(V) / 4 * gmk_dtype_block_bytes(F) + 63) / 64);       \
        const gmk_act_q8_k *a[TT];                                                           \
        V is[TT];                                                                            \
        K k;                                                                                 \
        P##_head(F, p, &k);                                                                  \
        GMK_X86_UNROLL                                                                       \
        for (int j = 0; j < T; j++) {                                                        \
            a[j] = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;                         \
            is[j] = ZERO();                                                                  \
        }                                                                                    \
        GMK_X86_UNROLL                                                                       \
        for (int c = 0; c < 4; c++) {                                                        \
            V u[16];                                                                         \
            GMK_X86_UNROLL                                                                   \
            for (int l = c * lines / 4; pf && l < (c + 1) * lines / 4; l++)                  \
                _mm_prefetch((const char *)(pf + 64 * l), GMK_X86_PF_HINT);                  \
            P##_group(F, p, c, u);                                                           \
            GMK_X86_UNROLL                                                                   \
            for (int q = 0; q < 16 / gs; q++) {                                              \
                const int s = gmk_x86_pk_gsub(F, c, q);                                      \
                P##_sub(F, T, u + gs * q, k.sc[s], a, s, is);                                \
            }                                                                                \
        }                                                                                    \
        P##_end(F, T, &k, a, is, acc);                                                       \
    }

GMK_X86_PK_WALKS(gmk_x86_p8k, gmk_x86_p8k, __m256i, __m256, GMK_X86_P8K_TT, _mm256_setzero_si256)

/* T tokens against blocks [b0, b1) of the panel at p, into the lanes of y
 * that keep selects (rows ldy apart), starting from zero (b0 = 0) or from
 * what y holds; the blocks taken from up (unpacked, up[0] is block b0)
 * where not NULL, else unpacked one at a time. */
GMK_X86_AI void gmk_x86_p8k_tile(int F, int T, const uint8_t *restrict p,
                                 const gmk_x86_p8k *restrict up, int64_t b0, int64_t b1,
                                 float *restrict y, int64_t ldy, __m256i keep,
                                 const uint8_t *restrict x, size_t xrow, const uint8_t *pf,
                                 size_t pf_len)
{
    const size_t pb = 8 * gmk_dtype_block_bytes(F);
    __m256 acc[GMK_X86_P8K_TT];
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        acc[j] = b0 ? _mm256_maskload_ps(y + j * ldy, keep) : _mm256_setzero_ps();
    for (int64_t b = b0; b < b1; b++) {
        if (up) {
            if (pf)
                gmk_x86_prefetch_part(pf, pf_len, (size_t)(b - b0), (size_t)(b1 - b0));
            gmk_x86_p8k_block(F, T, up + (b - b0), x, xrow, b, acc);
        } else {
            gmk_x86_p8k_stream(F, T, p + (size_t)b * pb, x, xrow, b, acc,
                               p + (size_t)b * pb + GMK_X86_DPF);
        }
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        _mm256_maskstore_ps(y + j * ldy, keep, acc[j]);
}

/* Rows [r0, r1) × n_tok tokens of k-quant F in P8 (nb blocks per row), as
 * gmk_x86_p8_b32. */
GMK_X86_AI void gmk_x86_p8k_rows(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                 const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                                 int64_t r1, int64_t nb)
{
    const size_t pb = 8 * gmk_dtype_block_bytes(F);
    for (int64_t p0 = r0 / 8 * 8; p0 < r1; p0 += 8) {
        const __m256i keep = gmk_x86_p8_keep(r0, r1, p0);
        const uint8_t *panel = W + (size_t)p0 * (size_t)nb * gmk_dtype_block_bytes(F);
        int t = 0;
        if (n_tok >= 2 * GMK_X86_P8K_TT) {
            gmk_x86_p8k up[GMK_X86_P8K_UP];
            const int full = n_tok / GMK_X86_P8K_TT * GMK_X86_P8K_TT;
            /* the next slice (of this panel or the next: they follow each
             * other) fetched while the tiles run over this one, a share
             * each, as gmk_x86_p16k_rows does */
            const size_t next = (size_t)GMK_X86_P8K_UP * pb;
            const size_t share = gmk_x86_part_len(next, (size_t)(full / GMK_X86_P8K_TT));
            for (int64_t b0 = 0; b0 < nb; b0 += GMK_X86_P8K_UP) {
                const int64_t b1 = b0 + GMK_X86_P8K_UP < nb ? b0 + GMK_X86_P8K_UP : nb;
                for (int64_t b = b0; b < b1; b++) {
                    if (b0 == 0 && p0 == r0 / 8 * 8) /* the first slice, unannounced */
                        gmk_x86_prefetch(panel, (size_t)b * pb + GMK_X86_DPF, pb);
                    gmk_x86_p8k_unpack(F, panel + (size_t)b * pb, up + (b - b0));
                }
                const uint8_t *pf = panel + (size_t)b1 * pb;
                for (t = 0; t < full; t += GMK_X86_P8K_TT, pf += share)
                    gmk_x86_p8k_tile(F, GMK_X86_P8K_TT, panel, up, b0, b1, y + t * ldy + p0, ldy,
                                     keep, X + (size_t)t * xrow, xrow, pf, share);
            }
        }
        for (; t + GMK_X86_P8K_TT <= n_tok; t += GMK_X86_P8K_TT)
            gmk_x86_p8k_tile(F, GMK_X86_P8K_TT, panel, NULL, 0, nb, y + t * ldy + p0, ldy, keep,
                             X + (size_t)t * xrow, xrow, NULL, 0);
        const uint8_t *xt = X + (size_t)t * xrow;
        float *yt = y + t * ldy + p0;
        switch (n_tok - t) { /* the last tokens in one tile */
        case 3: gmk_x86_p8k_tile(F, 3, panel, NULL, 0, nb, yt, ldy, keep, xt, xrow, NULL, 0); break;
        case 2: gmk_x86_p8k_tile(F, 2, panel, NULL, 0, nb, yt, ldy, keep, xt, xrow, NULL, 0); break;
        case 1: gmk_x86_p8k_tile(F, 1, panel, NULL, 0, nb, yt, ldy, keep, xt, xrow, NULL, 0); break;
        default: break;
        }
    }
}

#if GMK_X86_VNNI && defined(__AVX512F__)
/*
 * The b32 formats in the P16 layout (gmk_layout.h): one 64-byte load holds 4
 * bytes of each of 16 rows, so one vpdpbusd against a broadcast dword of
 * activations advances 16 (row, token) dots and the per-block scaling runs
 * 16 rows per instruction.  A panel block is unpacked once for up to
 * GMK_X86_P16_TT tokens (q5_0, q5_1 in prefill: once for all the tiles),
 * each of its vectors meeting every token of the tile before the next (the
 * tokens' sums grow side by side, no chain of 8 dependent vpdpbusd), and
 * each token's integer sum starts from −off·Σx, in prefill read from a
 * table made once per chunk of blocks for every panel (the broadcast then a
 * load, not a vector-ALU op).  The arithmetic per (row, token) is
 * gmk_x86_step_b32's, in lanes instead of tiles, so both layouts and every
 * token count agree bit for bit.
 */
#define GMK_X86_HAVE_P16 1
/* Blocks per slice (a token tile's weights stay in L1/L2 for the next
 * tile) and tokens per register tile: 12 unpack a block for more tokens
 * than 8 did (kernel_bench, 2048², 64 tokens, 1 thread, four alternating
 * rounds: q8_0 1.37-1.38 → 1.27-1.34 ms, q4_0 1.37-1.38 → 1.31-1.38, q5_0
 * 1.55-1.61 → 1.46-1.52; 16 measured level with 12). */
#ifndef GMK_X86_P16_KC
#define GMK_X86_P16_KC 64
#endif
#ifndef GMK_X86_P16_TT
#define GMK_X86_P16_TT 12
#endif
#ifndef GMK_X86_P16_BO
#define GMK_X86_P16_BO 4096 /* entries of a chunk's offset table: 64 tokens (16 KiB) */
#endif

/* The lanes of the 16-row panel at row p0 that lie in [r0, r1). */
GMK_X86_AI __mmask16 gmk_x86_p16_keep(int64_t r0, int64_t r1, int64_t p0)
{
    const int lo = (int)((r0 > p0 ? r0 : p0) - p0);
    const int hi = (int)((r1 < p0 + 16 ? r1 : p0 + 16) - p0);
    return (__mmask16)(((1u << (hi - lo)) - 1u) << lo);
}

/* Vector g of the unsigned weight bytes of panel block p: elements
 * 4g..4g+3 of each row (gmk_x86_prep_b32's bytes, rows in lanes). */
GMK_X86_AI __m512i gmk_x86_p16_unpack(int F, const uint8_t *restrict p, int g)
{
    const uint8_t *qs = p + gmk_panel_qs_at(F, 16);
    if (F == GMK_DTYPE_Q8_0) /* stored as w ^ 0x80 = w + 128 */
        return _mm512_loadu_si512((const void *)(qs + 64 * g));
    const __m512i lo4 = _mm512_set1_epi8(0x0f);
    __m512i v = _mm512_loadu_si512((const void *)(qs + 64 * (g & 3)));
    __m512i u = _mm512_and_si512(g < 4 ? v : _mm512_srli_epi16(v, 4), lo4);
    if (!gmk_panel_has_qh(F))
        return u;
    uint64_t bits;
    memcpy(&bits, p + gmk_panel_qh_at(F, 16) + 8 * g, sizeof bits);
    return _mm512_mask_add_epi8(u, _cvtu64_mask64(bits), u, _mm512_set1_epi8(16));
}

/* T ≤ GMK_X86_P16_TT tokens against nb panel blocks from p, accumulating
 * into the 16 lanes at y (rows ldy apart; lanes in keep are kept); first:
 * the accumulators start at zero rather than at y.  Per block, each weight
 * vector meets every token before the next is unpacked: the T integer sums
 * grow side by side, so no token waits on a chain of 8 dependent vpdpbusd
 * (integer sums: the order changes no bit). */
GMK_X86_AI void gmk_x86_p16_tile(int F, int T, const uint8_t *restrict p,
                                 const __m512i *restrict up, int nb, float *restrict y,
                                 int64_t ldy, __mmask16 keep, int first,
                                 const uint8_t *restrict x, size_t xrow, int64_t b0,
                                 const int32_t *restrict bo, int64_t bos)
{
    const size_t pb = 16 * gmk_dtype_block_bytes(F);
    const int off = gmk_x86_b32_off(F);
    const int has_min = gmk_panel_has_min(F);
    __m512 acc[GMK_X86_P16_TT];
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        acc[j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(keep, y + j * ldy);
    for (int b = 0; b < nb; b++, p += pb) {
        const gmk_act_q8_0 *a[GMK_X86_P16_TT];
        __m512i q[GMK_X86_P16_TT];
        if (!up)
            gmk_x86_prefetch_span(p + GMK_X86_DPF, pb);
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            a[j] = (const gmk_act_q8_0 *)(x + (size_t)j * xrow) + b0 + b;
            q[j] = _mm512_set1_epi32(bo ? bo[j * bos + b] : -off * a[j]->sum);
        }
        GMK_X86_UNROLL
        for (int g = 0; g < 8; g++) {
            const __m512i u = up ? up[8 * b + g] : gmk_x86_p16_unpack(F, p, g);
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++)
                q[j] = _mm512_dpbusd_epi32(q[j], u, _mm512_set1_epi32((int)gmk_load_u32(
                                                         (const uint8_t *)a[j]->qs + 4 * g)));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        const __m512 m = has_min ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)))
                                 : _mm512_setzero_ps();
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            __m512 sx = _mm512_mul_ps(_mm512_cvtepi32_ps(q[j]), _mm512_set1_ps(a[j]->d));
            acc[j] = _mm512_fmadd_ps(sx, d, acc[j]);
            if (has_min)
                acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(a[j]->d * (float)a[j]->sum), acc[j]);
        }
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        _mm512_mask_storeu_ps(y + j * ldy, keep, acc[j]);
}

/* Rows [r0, r1) × n_tok tokens of format F from the P16 weights W (nb
 * blocks per row): chunk by chunk of GMK_X86_P16_KC blocks (one chunk of
 * nb where there is no table or unpacking), in each panel by panel, lanes
 * outside [r0, r1) computed and dropped.  Where two full
 * token tiles or more share a chunk, the tokens' −off·Σx of its blocks are
 * tabled once for every panel, and q5 blocks unpacked once for every tile. */
GMK_X86_AI void gmk_x86_p16_b32(int F, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                                int64_t r1, int64_t nb)
{
    const size_t pb = 16 * gmk_dtype_block_bytes(F);
    const int off = gmk_x86_b32_off(F);
    const int unpack = gmk_panel_has_qh(F) && n_tok >= 2 * GMK_X86_P16_TT;
    const int table = n_tok >= 2 * GMK_X86_P16_TT && n_tok * GMK_X86_P16_KC <= GMK_X86_P16_BO;
    __m512i upb[8 * GMK_X86_P16_KC]; /* 32 KiB */
    int32_t bob[GMK_X86_P16_BO];
    const __m512i *up = unpack ? upb : NULL;
    const int32_t *bo = table ? bob : NULL;
    /* with nothing to share between panels (decode, a few tokens) each
     * panel is read whole, one stream after the other: chunks across the
     * panels made the 1B Q8_0's decode 4 % slower (its ffn_down, 216 blocks) */
    const int64_t chunk = unpack || table ? GMK_X86_P16_KC : nb;
    for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
        const int kc = (int)(nb - b0 < chunk ? nb - b0 : chunk);
        for (int t = 0; table && t < n_tok; t++)
            for (int b = 0; b < kc; b++)
                bob[t * kc + b] = -off * ((const gmk_act_q8_0 *)(X + (size_t)t * xrow))[b0 + b].sum;
        for (int64_t p0 = r0 / 16 * 16; p0 < r1; p0 += 16) {
            const __mmask16 keep = gmk_x86_p16_keep(r0, r1, p0);
            const uint8_t *pk = W + ((size_t)p0 * (size_t)nb + (size_t)b0 * 16) *
                                        gmk_dtype_block_bytes(F);
            for (int b = 0; unpack && b < kc; b++) {
                gmk_x86_prefetch_span(pk + (size_t)b * pb + GMK_X86_DPF, pb);
                GMK_X86_UNROLL
                for (int g = 0; g < 8; g++)
                    upb[8 * b + g] = gmk_x86_p16_unpack(F, pk + (size_t)b * pb, g);
            }
            int t = 0;
            for (; t + GMK_X86_P16_TT <= n_tok; t += GMK_X86_P16_TT)
                gmk_x86_p16_tile(F, GMK_X86_P16_TT, pk, up, kc, y + t * ldy + p0, ldy, keep,
                                 b0 == 0, X + (size_t)t * xrow, xrow, b0, bo ? bo + t * kc : NULL,
                                 kc);
            for (; t + 4 <= n_tok; t += 4)
                gmk_x86_p16_tile(F, 4, pk, up, kc, y + t * ldy + p0, ldy, keep, b0 == 0,
                                 X + (size_t)t * xrow, xrow, b0, bo ? bo + t * kc : NULL, kc);
            const uint8_t *xt = X + (size_t)t * xrow;
            const int32_t *bt = bo ? bo + t * kc : NULL;
            float *yt = y + t * ldy + p0;
            switch (n_tok - t) { /* the last tokens in one tile, the weights read once */
            case 3: gmk_x86_p16_tile(F, 3, pk, up, kc, yt, ldy, keep, b0 == 0, xt, xrow, b0, bt, kc); break;
            case 2: gmk_x86_p16_tile(F, 2, pk, up, kc, yt, ldy, keep, b0 == 0, xt, xrow, b0, bt, kc); break;
            case 1: gmk_x86_p16_tile(F, 1, pk, up, kc, yt, ldy, keep, b0 == 0, xt, xrow, b0, bt, kc); break;
            default: break;
            }
        }
    }
}

/*
 * q4_k, q5_k and q6_k in the P16 layout (gmk_layout.h: the P8 parts with
 * R = 16): vector i of a block holds elements 4i..4i+3 of each of the 16
 * rows as unsigned bytes (q4_k 0..15, q5_k 0..31, q6_k 0..63), so one
 * vpdpbusd against a broadcast dword of a token's Q8_K activations
 * advances 16 row dots by 4 elements in int32, with no int16 stage: a
 * sub-block's dot (8 vectors, q6_k 4) is exact as it stands and one vpmulld
 * by the rows' sub-block scales adds it to isum.  The mins (q4_k, q5_k) and
 * q6_k's −32 come from the bsums by vpdpwssd with the scale pairs, as the
 * P8 kernel takes them by vpmaddwd.  So per (row, token, block) the integers
 * are the P8 kernel's and the float steps are its steps in its order
 *
 *   acc = fma(isum, d·dx, acc), acc = fma(−msum, dmin·dx, acc)  (q4_k, q5_k)
 *
 * which gives the P8 and exact_kq bits (test_p16k_layout).  Prefill
 * unpacks GMK_X86_P16K_UP blocks of a panel at a time and runs every token
 * tile over them, the sums carried in y between such slices, the
 * sub-blocks a rolled loop (a tile's sums stay in registers), the full
 * tiles prefetching the next slice a few lines a block (the unpacking had
 * waited on memory: 2B Q4_K_M pp512 84 → 92 t/s at one thread); one tile
 * of tokens (decode, small batches) unpacks each block as it goes,
 * unrolled.
 */
#define GMK_X86_HAVE_P16K 1
#ifndef GMK_X86_P16K_TT
#define GMK_X86_P16K_TT 8 /* tokens per register tile */
#endif
#ifndef GMK_X86_P16K_UP
#define GMK_X86_P16K_UP 8 /* blocks unpacked at a time in prefill (45 KiB of stack) */
#endif

/* One k-quant panel block of 16 rows unpacked: u[i] as above; sc[s] the
 * rows' scales of sub-block s (8 of 32 elements, q6_k 16 of 16) as int32
 * lanes; mn[q] int16 pairs, row r's in dword r, that multiply the pairs of
 * activation sums (q4_k, q5_k: m_2q, m_2q+1, q < 4; q6_k: sc_2q, sc_2q+1,
 * q < 8). */
typedef struct gmk_x86_p16k {
    __m512i u[64], sc[16], mn[8];
    __m512 d, dmin;
} gmk_x86_p16k;

/* Dword r = (a[r], b[r]) as int16, from 16 bytes of each (signed). */
GMK_X86_AI __m512i gmk_x86_pair16z(__m128i a, __m128i b)
{
    return _mm512_cvtepi8_epi16(
        _mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b)));
}

/* The scales, minimums and block scales of the panel block at p into k
 * (all of it but the weights). */
GMK_X86_AI void gmk_x86_p16k_head(int F, const uint8_t *restrict p, gmk_x86_p16k *restrict k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    k->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    if (F == GMK_DTYPE_Q6_K) {
        const uint8_t *s = p + gmk_panel_part_at(F, 16, 192);
        k->dmin = _mm512_setzero_ps();
        GMK_X86_UNROLL
        for (int j = 0; j < 16; j++)
            k->sc[j] = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(s + 16 * j)));
        GMK_X86_UNROLL
        for (int q = 0; q < 8; q++)
            k->mn[q] = gmk_x86_pair16z(_mm_loadu_si128((const __m128i *)(s + 32 * q)),
                                       _mm_loadu_si128((const __m128i *)(s + 32 * q + 16)));
        return;
    }
    /* q4_k, q5_k: the 12 packed scale bytes as gmk_scale_min_k4, 16 rows
     * at a time (byte 16k + r of each vector) */
    const uint8_t *s = p + gmk_panel_part_at(F, 16, 4);
    const __m512i m6 = _mm512_set1_epi8(0x3f), top = _mm512_set1_epi8(0x30);
    __m512i a = _mm512_loadu_si512((const void *)s);
    __m512i b = _mm512_loadu_si512((const void *)(s + 64));
    __m512i c = _mm512_loadu_si512((const void *)(s + 128));
    __m512i sc[2], mn[2];
    sc[0] = _mm512_and_si512(a, m6);
    mn[0] = _mm512_and_si512(b, m6);
    sc[1] = _mm512_or_si512(_mm512_and_si512(c, m4),
                            _mm512_and_si512(_mm512_srli_epi16(a, 2), top));
    mn[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(c, 4), m4),
                            _mm512_and_si512(_mm512_srli_epi16(b, 2), top));
    k->dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
    GMK_X86_UNROLL
    for (int h = 0; h < 2; h++) {
        __m128i m[4];
        m[0] = _mm512_castsi512_si128(mn[h]);
        m[1] = _mm512_extracti32x4_epi32(mn[h], 1);
        m[2] = _mm512_extracti32x4_epi32(mn[h], 2);
        m[3] = _mm512_extracti32x4_epi32(mn[h], 3);
        k->sc[4 * h + 0] = _mm512_cvtepu8_epi32(_mm512_castsi512_si128(sc[h]));
        k->sc[4 * h + 1] = _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(sc[h], 1));
        k->sc[4 * h + 2] = _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(sc[h], 2));
        k->sc[4 * h + 3] = _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(sc[h], 3));
        k->mn[2 * h] = gmk_x86_pair16z(m[0], m[1]);
        k->mn[2 * h + 1] = gmk_x86_pair16z(m[2], m[3]);
    }
}

GMK_X86_PK_UNPACKS(gmk_x86_p16k, gmk_x86_p16k, __m512i, 16, _mm512, si512)

/* Sub-block s (its gs vectors at u, its rows' scales sc) against the
 * activation blocks a of T tokens, into the int32 sums is: Σ u·x exact in
 * int32 (|Σ| ≤ 32·31·128, q5_k), times the rows' scales (isum stays below
 * 2^29, q6_k's −32 and all), so the order of the sub-blocks is free. */
GMK_X86_AI void gmk_x86_p16k_sub(int F, int T, const __m512i *restrict u, __m512i sc,
                                 const gmk_act_q8_k *const *a, int s,
                                 __m512i is[GMK_X86_P16K_TT])
{
    const int gs = F == GMK_DTYPE_Q6_K ? 4 : 8; /* vectors per sub-block */
    __m512i dot[GMK_X86_P16K_TT];
    GMK_X86_UNROLL
    for (int g = 0; g < gs; g++) {
        const int i = gs * s + g;
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            __m512i xg = _mm512_set1_epi32((int)gmk_load_u32((const uint8_t *)a[j]->qs + 4 * i));
            dot[j] = _mm512_dpbusd_epi32(g ? dot[j] : _mm512_setzero_si512(), u[g], xg);
        }
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        is[j] = _mm512_add_epi32(is[j], _mm512_mullo_epi32(dot[j], sc));
}

/* The block's sums is of T tokens (activation blocks a) into acc: the
 * minimums or q6_k's −32 from the bsums, then the float steps above. */
GMK_X86_AI void gmk_x86_p16k_end(int F, int T, const gmk_x86_p16k *restrict k,
                                 const gmk_act_q8_k *const *a, __m512i is[GMK_X86_P16K_TT],
                                 __m512 acc[GMK_X86_P16K_TT])
{
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++) {
        const __m512 dx = _mm512_set1_ps(a[j]->d);
        if (F == GMK_DTYPE_Q6_K) {
            __m512i bias = _mm512_setzero_si512();
            GMK_X86_UNROLL
            for (int q = 0; q < 8; q++)
                bias = _mm512_dpwssd_epi32(bias, k->mn[q],
                                           _mm512_set1_epi32((int)gmk_load_u32(
                                               (const uint8_t *)a[j]->bsums + 4 * q)));
            is[j] = _mm512_sub_epi32(is[j], _mm512_slli_epi32(bias, 5));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(k->d, dx), acc[j]);
            continue;
        }
        /* the sums of the 8 sub-blocks in int16, pairs (Σ_2q, Σ_2q+1) in
         * dwords 0, 1 (q = 0, 1) and 4, 5 (q = 2, 3) */
        __m256i bs = _mm256_loadu_si256((const __m256i *)a[j]->bsums);
        __m512i h = _mm512_castsi256_si512(_mm256_hadd_epi16(bs, bs));
        __m512i ms = _mm512_setzero_si512();
        GMK_X86_UNROLL
        for (int q = 0; q < 4; q++)
            ms = _mm512_dpwssd_epi32(
                ms, k->mn[q], _mm512_permutexvar_epi32(_mm512_set1_epi32(q / 2 * 4 + q % 2), h));
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(k->d, dx), acc[j]);
        acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(k->dmin, dx), acc[j]);
    }
}

GMK_X86_PK_WALKS(gmk_x86_p16k, gmk_x86_p16k, __m512i, __m512, GMK_X86_P16K_TT,
                 _mm512_setzero_si512)

/* T tokens against blocks [b0, b1) of the panel at p, into the lanes of y
 * that keep selects (rows ldy apart), starting from zero (b0 = 0) or from
 * what y holds; the blocks taken from up (unpacked, up[0] is block b0)
 * where not NULL, else unpacked one at a time. */
GMK_X86_AI void gmk_x86_p16k_tile(int F, int T, const uint8_t *restrict p,
                                  const gmk_x86_p16k *restrict up, int64_t b0, int64_t b1,
                                  float *restrict y, int64_t ldy, __mmask16 keep,
                                  const uint8_t *restrict x, size_t xrow, const uint8_t *pf,
                                  size_t pf_len)
{
    const size_t pb = 16 * gmk_dtype_block_bytes(F);
    __m512 acc[GMK_X86_P16K_TT];
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        acc[j] = b0 ? _mm512_maskz_loadu_ps(keep, y + j * ldy) : _mm512_setzero_ps();
    for (int64_t b = b0; b < b1; b++) {
        if (up) {
            if (pf)
                gmk_x86_prefetch_part(pf, pf_len, (size_t)(b - b0), (size_t)(b1 - b0));
            gmk_x86_p16k_block(F, T, up + (b - b0), x, xrow, b, acc);
        } else {
            gmk_x86_p16k_stream(F, T, p + (size_t)b * pb, x, xrow, b, acc,
                                p + (size_t)b * pb + GMK_X86_DPF);
        }
    }
    GMK_X86_UNROLL
    for (int j = 0; j < T; j++)
        _mm512_mask_storeu_ps(y + j * ldy, keep, acc[j]);
}

/* Every token of blocks [b0, b1) of a panel: tiles of GMK_X86_P16K_TT, then
 * one of 4, then the last tokens in one tile. */
GMK_X86_AI void gmk_x86_p16k_tokens(int F, const uint8_t *restrict p,
                                    const gmk_x86_p16k *restrict up, int64_t b0, int64_t b1,
                                    float *restrict y, int64_t ldy, __mmask16 keep,
                                    const uint8_t *restrict X, size_t xrow, int n_tok,
                                    const uint8_t *pf, size_t pf_len)
{
    const int full = n_tok / GMK_X86_P16K_TT;
    const size_t share = full ? gmk_x86_part_len(pf_len, (size_t)full) : 0;
    int t = 0;
    for (int i = 0; t + GMK_X86_P16K_TT <= n_tok; t += GMK_X86_P16K_TT, i++)
        gmk_x86_p16k_tile(F, GMK_X86_P16K_TT, p, up, b0, b1, y + t * ldy, ldy, keep,
                          X + (size_t)t * xrow, xrow, pf ? pf + (size_t)i * share : NULL, share);
    if (t + 4 <= n_tok) {
        gmk_x86_p16k_tile(F, 4, p, up, b0, b1, y + t * ldy, ldy, keep, X + (size_t)t * xrow,
                          xrow, NULL, 0);
        t += 4;
    }
    const uint8_t *xt = X + (size_t)t * xrow;
    float *yt = y + t * ldy;
    switch (n_tok - t) {
    case 3: gmk_x86_p16k_tile(F, 3, p, up, b0, b1, yt, ldy, keep, xt, xrow, NULL, 0); break;
    case 2: gmk_x86_p16k_tile(F, 2, p, up, b0, b1, yt, ldy, keep, xt, xrow, NULL, 0); break;
    case 1: gmk_x86_p16k_tile(F, 1, p, up, b0, b1, yt, ldy, keep, xt, xrow, NULL, 0); break;
    default: break;
    }
}

/* Rows [r0, r1) × n_tok tokens of k-quant F in P16 (nb blocks per row):
 * panel by panel, lanes outside [r0, r1) computed and dropped. */
GMK_X86_AI void gmk_x86_p16k_rows(int F, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict W, const uint8_t *restrict X,
                                  size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t nb)
{
    const size_t pb = 16 * gmk_dtype_block_bytes(F);
    for (int64_t p0 = r0 / 16 * 16; p0 < r1; p0 += 16) {
        const __mmask16 keep = gmk_x86_p16_keep(r0, r1, p0);
        const uint8_t *panel = W + (size_t)p0 * (size_t)nb * gmk_dtype_block_bytes(F);
        if (n_tok <= GMK_X86_P16K_TT) { /* one tile: each block unpacked as it is read */
            gmk_x86_p16k_tokens(F, panel, NULL, 0, nb, y + p0, ldy, keep, X, xrow, n_tok,
                                NULL, 0);
            continue;
        }
        gmk_x86_p16k up[GMK_X86_P16K_UP];
        for (int64_t b0 = 0; b0 < nb; b0 += GMK_X86_P16K_UP) {
            const int64_t b1 = b0 + GMK_X86_P16K_UP < nb ? b0 + GMK_X86_P16K_UP : nb;
            for (int64_t b = b0; b < b1; b++) {
                if (b0 == 0 && p0 == r0 / 16 * 16) /* the first slice, unannounced */
                    gmk_x86_prefetch(panel, (size_t)b * pb + GMK_X86_DPF, pb);
                gmk_x86_p16k_unpack(F, panel + (size_t)b * pb, up + (b - b0));
            }
            /* the next slice (of this panel or the next: they follow each
             * other) fetched while the tiles run over this one */
            gmk_x86_p16k_tokens(F, panel, up, b0, b1, y + p0, ldy, keep, X, xrow, n_tok,
                                panel + (size_t)b1 * pb, (size_t)GMK_X86_P16K_UP * pb);
        }
    }
}
#endif

/* ------------------------------------------------------------ k-quants */

/* Decoded header of one q4_k/q5_k block for one row. */
typedef struct gmk_x86_k45 {
    float d, dmin;
    uint8_t sc[8];
    __m256i mins; /* m0 m0 m1 m1 … m7 m7 as int16: pairs with the 16-sums */
} gmk_x86_k45;

/* The 12 packed bytes of gmk_scale_min_k4 decoded four at a time in 32-bit
 * words: bytes 0-3 hold scales 0-3, bytes 4-7 mins 0-3 (low 6 bits each);
 * scales/mins 4-7 are the low/high nibbles of bytes 8-11 plus, as bits 4-5,
 * the top 2 bits of bytes 0-3 / 4-7. */
GMK_X86_AI gmk_x86_k45 gmk_x86_head_q45k(const uint8_t *b)
{
    gmk_x86_k45 h;
    uint8_t mn[8];
    h.d = gmk_x86_f16(b);
    h.dmin = gmk_x86_f16(b + 2);
    uint32_t s0 = gmk_load_u32(b + 4), s1 = gmk_load_u32(b + 8), s2 = gmk_load_u32(b + 12);
    uint32_t w[4] = {
        s0 & 0x3f3f3f3fu,
        (s2 & 0x0f0f0f0fu) | ((s0 >> 2) & 0x30303030u),
        s1 & 0x3f3f3f3fu,
        ((s2 >> 4) & 0x0f0f0f0fu) | ((s1 >> 2) & 0x30303030u),
    };
    memcpy(h.sc, w, 8);
    memcpy(mn, w + 2, 8);
    __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    h.mins = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    return h;
}

/* Unsigned weights of elements 64c..64c+31 (lo) and 64c+32..64c+63 (hi). */
GMK_X86_AI void gmk_x86_chunk_q45k(int five, const uint8_t *b, int c, __m256i *lo, __m256i *hi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * five + 32 * c));
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (five) { /* bit 2c of qh[l] → bit 4 of lo[l], bit 2c+1 → bit 4 of hi[l] */
        const __m256i b4 = _mm256_set1_epi8(0x10);
        __m256i qh = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(b + 16)), 2 * c);
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4));
    }
}

/* One k-quant block of one row unpacked for prefill (gmk_x86_kwalk): the
 * 256 unsigned weights in gmk_x86_chunk_q45k / _q6k order and, for q4_k and
 * q5_k, the decoded header.  The tiles read either this or the block itself
 * (panel = NULL) with the same arithmetic. */
typedef struct gmk_x86_kp {
    __m256i u[8];
    gmk_x86_k45 h;
    uint32_t sc2[8]; /* q4_k/q5_k scale j in both halves of a dword */
} gmk_x86_kp;

/* One q4_k/q5_k tile (see gmk_x86_tile_b32).  Per block and (row, token):
 * isum = Σ_j sc_j·Σ q·x (int32 lanes), imin = Σ_j m_j·Σ x (int32 lanes), then
 * acc += d·dx·isum − dmin·dx·imin. */
GMK_X86_AI void gmk_x86_tile_q45k(int five, int R, int T, float *restrict y, int64_t ldy,
                                  const uint8_t *restrict w, size_t wrow,
                                  const gmk_x86_kp *restrict panel,
                                  const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    const size_t bb = five ? 176 : 144;
    __m256 acc[GMK_X86_KTR][GMK_X86_KTT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        gmk_x86_k45 h[GMK_X86_KTR];
        __m256i is[GMK_X86_KTR][GMK_X86_KTT];
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            if (panel) {
                h[i] = panel[GMK_X86_KTR * b + i].h;
            } else {
                gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * bb, bb);
                h[i] = gmk_x86_head_q45k(w + (size_t)i * wrow + (size_t)b * bb);
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++)
                is[i][j] = _mm256_setzero_si256();
        }
        GMK_X86_UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i lo[GMK_X86_KTR], hi[GMK_X86_KTR], slo[GMK_X86_KTR], shi[GMK_X86_KTR];
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                if (panel) {
                    lo[i] = panel[GMK_X86_KTR * b + i].u[2 * c];
                    hi[i] = panel[GMK_X86_KTR * b + i].u[2 * c + 1];
                } else {
                    gmk_x86_chunk_q45k(five, w + (size_t)i * wrow + (size_t)b * bb, c, &lo[i],
                                       &hi[i]);
                }
                if (panel) { /* one broadcast load each */
                    slo[i] = _mm256_set1_epi32((int)panel[GMK_X86_KTR * b + i].sc2[2 * c]);
                    shi[i] = _mm256_set1_epi32((int)panel[GMK_X86_KTR * b + i].sc2[2 * c + 1]);
                } else {
                    slo[i] = _mm256_set1_epi16(h[i].sc[2 * c]);
                    shi[i] = _mm256_set1_epi16(h[i].sc[2 * c + 1]);
                }
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m256i xlo = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c));
                __m256i xhi = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32));
                GMK_X86_UNROLL
                for (int i = 0; i < R; i++) {
                    is[i][j] = gmk_x86_dpwssd(is[i][j], _mm256_maddubs_epi16(lo[i], xlo), slo[i]);
                    is[i][j] = gmk_x86_dpwssd(is[i][j], _mm256_maddubs_epi16(hi[i], xhi), shi[i]);
                }
            }
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
            __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                __m256 mi = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, h[i].mins));
                acc[i][j] = gmk_x86_fold(acc[i][j], is[i][j], h[i].d * a->d);
                acc[i][j] = _mm256_fnmadd_ps(mi, _mm256_set1_ps(h[i].dmin * a->d), acc[i][j]);
            }
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            y[j * ldy + i] = gmk_x86_hsum(acc[i][j]);
}

/* Unsigned 6-bit weights of elements 64c..64c+31 (lo), 64c+32..64c+63 (hi)
 * of a q6_k block (c = 2·half + k/2, see gmk_dequant_q6_k). */
GMK_X86_AI void gmk_x86_chunk_q6k(const uint8_t *b, int c, __m256i *lo, __m256i *hi)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
    int n = c / 2;
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b + 64 * n));
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b + 64 * n + 32));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * n));
    if (c % 2 == 0) { /* low nibbles, qh bits 0-1 and 2-3 */
        *lo = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                              _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
        *hi = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
    } else { /* high nibbles, qh bits 4-5 and 6-7 */
        *lo = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(qh, m2));
        *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
    }
}

/* One q6_k tile.  Per block and (row, token): isum = Σ_g sc_g·Σ (q − 32)·x
 * = Σ_g sc_g·Σ q·x − 32·Σ_g sc_g·bsum_g (int32 lanes); acc += d·dx·isum. */
GMK_X86_AI void gmk_x86_tile_q6k(int R, int T, float *restrict y, int64_t ldy,
                                 const uint8_t *restrict w, size_t wrow,
                                 const gmk_x86_kp *restrict panel,
                                 const uint8_t *restrict x, size_t xrow, int64_t nb)
{
    __m256 acc[GMK_X86_KTR][GMK_X86_KTT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GMK_X86_KTR];
        __m256i is[GMK_X86_KTR][GMK_X86_KTT];
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            wb[i] = w + (size_t)i * wrow + (size_t)b * 210;
            if (!panel)
                gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)b * 210,
                                 210);
            __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb[i] + 192)));
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
                is[i][j] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                            _mm256_slli_epi32(_mm256_madd_epi16(bs, sc), 5));
            }
        }
        GMK_X86_UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i lo[GMK_X86_KTR], hi[GMK_X86_KTR], slo[GMK_X86_KTR], shi[GMK_X86_KTR];
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                const int8_t *s = (const int8_t *)(wb[i] + 192 + 4 * c);
                if (panel) {
                    lo[i] = panel[GMK_X86_KTR * b + i].u[2 * c];
                    hi[i] = panel[GMK_X86_KTR * b + i].u[2 * c + 1];
                } else {
                    gmk_x86_chunk_q6k(wb[i], c, &lo[i], &hi[i]);
                }
                slo[i] = _mm256_set_m128i(_mm_set1_epi16(s[1]), _mm_set1_epi16(s[0]));
                shi[i] = _mm256_set_m128i(_mm_set1_epi16(s[3]), _mm_set1_epi16(s[2]));
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
                __m256i xlo = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c));
                __m256i xhi = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32));
                GMK_X86_UNROLL
                for (int i = 0; i < R; i++) {
                    is[i][j] = gmk_x86_dpwssd(is[i][j], _mm256_maddubs_epi16(lo[i], xlo), slo[i]);
                    is[i][j] = gmk_x86_dpwssd(is[i][j], _mm256_maddubs_epi16(hi[i], xhi), shi[i]);
                }
            }
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const gmk_act_q8_k *a = (const gmk_act_q8_k *)(x + (size_t)j * xrow) + b;
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++)
                acc[i][j] = gmk_x86_fold(acc[i][j], is[i][j], gmk_x86_f16(wb[i] + 208) * a->d);
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            y[j * ldy + i] = gmk_x86_hsum(acc[i][j]);
}

/* ------------------------------------------------------------ float weights */

/* 8 weights of dtype dt at p as f32 (exact conversions). */
GMK_X86_AI __m256 gmk_x86_load8(int dt, const uint8_t *p)
{
    switch (dt) {
    case GMK_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    case GMK_DTYPE_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    default: return _mm256_loadu_ps((const float *)p);
    }
}

GMK_X86_AI float gmk_x86_load1(int dt, const uint8_t *p)
{
    switch (dt) {
    case GMK_DTYPE_F16: return gmk_x86_f16(p);
    case GMK_DTYPE_BF16: return gmk_bf16_to_f32(gmk_load_u16(p));
    default: {
        float f;
        memcpy(&f, p, sizeof f);
        return f;
    }
    }
}

/* Float-weight tile: weights of dtype dt (f32, f16, bf16) against f32
 * activations (xdt = GMK_DTYPE_F32) or bf16 ones (xdt = GMK_DTYPE_BF16, bf16
 * weights only); n elements per row.  vdpbf16ps does 16 bf16 pairs at a time
 * when available, else everything is widened to f32 and fma'd 8 at a time.
 * The tail below the vector width is added in scalar order after the
 * lane reduction. */
GMK_X86_AI void gmk_x86_tile_flt(int dt, int xdt, int R, int T, float *restrict y, int64_t ldy,
                                 const uint8_t *restrict w, size_t wrow,
                                 const uint8_t *restrict x, size_t xrow, int64_t n, int accum)
{
    GMK_NO_CONTRACT
    const size_t we = gmk_dtype_block_bytes(dt), xe = gmk_dtype_block_bytes(xdt);
    const int step = GMK_X86_BF16DP && xdt == GMK_DTYPE_BF16 ? 16 : 8;
    __m256 acc[GMK_X86_TR][GMK_X86_TT];
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + step <= n; k += step) {
#if GMK_X86_BF16DP
        if (step == 16) {
            __m256i wv[GMK_X86_TR];
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++) {
                if ((k & 31) == 0) /* one prefetch per 64 bytes */
                    gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)k * 2, 1);
                wv[i] = _mm256_loadu_si256((const __m256i *)(w + (size_t)i * wrow + (size_t)k * 2));
            }
            GMK_X86_UNROLL
            for (int j = 0; j < T; j++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(x + (size_t)j * xrow + (size_t)k * 2));
                GMK_X86_UNROLL
                for (int i = 0; i < R; i++)
                    acc[i][j] = _mm256_dpbf16_ps(acc[i][j], (__m256bh)wv[i], (__m256bh)xv);
            }
            continue;
        }
#endif
        __m256 wv[GMK_X86_TR];
        GMK_X86_UNROLL
        for (int i = 0; i < R; i++) {
            if (((size_t)k * we & 63) == 0) /* one prefetch per 64 bytes */
                gmk_x86_prefetch(w, (size_t)(i + GMK_X86_PF_TILES * R) * wrow + (size_t)k * we, 1);
            wv[i] = gmk_x86_load8(dt, w + (size_t)i * wrow + (size_t)k * we);
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            __m256 xv = gmk_x86_load8(xdt, x + (size_t)j * xrow + (size_t)k * xe);
            GMK_X86_UNROLL
            for (int i = 0; i < R; i++)
                acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < R; i++) {
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            float s = gmk_x86_hsum(acc[i][j]);
            for (int64_t kk = k; kk < n; kk++)
                s += gmk_x86_load1(dt, w + (size_t)i * wrow + (size_t)kk * we) *
                     gmk_x86_load1(xdt, x + (size_t)j * xrow + (size_t)kk * xe);
            y[j * ldy + i] = accum ? y[j * ldy + i] + s : s;
        }
    }
}

#if GMK_X86_Z
#include "gmk_x86_avx512.h"
#endif

/* ------------------------------------------------------------ drivers */

/* One tile of family kind at shape (R, T); kind is the weight dtype.  accum
 * (float weights only: chunks of a row) adds to y instead of writing it. */
GMK_X86_AI void gmk_x86_tile(int kind, int xdt, int R, int T, float *restrict y, int64_t ldy,
                             const uint8_t *restrict w, size_t wrow, const uint8_t *restrict x,
                             size_t xrow, int64_t len, int accum)
{
    switch (kind) {
#if GMK_X86_Z
    case GMK_DTYPE_Q4_K: gmk_x86_tile_q45kz(0, R, T, y, ldy, w, wrow, x, xrow, len); return;
    case GMK_DTYPE_Q5_K: gmk_x86_tile_q45kz(1, R, T, y, ldy, w, wrow, x, xrow, len); return;
    case GMK_DTYPE_Q6_K: gmk_x86_tile_q6kz(R, T, y, ldy, w, wrow, x, xrow, len); return;
#else
    case GMK_DTYPE_Q4_K: gmk_x86_tile_q45k(0, R, T, y, ldy, w, wrow, NULL, x, xrow, len); return;
    case GMK_DTYPE_Q5_K: gmk_x86_tile_q45k(1, R, T, y, ldy, w, wrow, NULL, x, xrow, len); return;
    case GMK_DTYPE_Q6_K: gmk_x86_tile_q6k(R, T, y, ldy, w, wrow, NULL, x, xrow, len); return;
#endif
    case GMK_DTYPE_F32: case GMK_DTYPE_F16: case GMK_DTYPE_BF16:
        gmk_x86_tile_flt(kind, xdt, R, T, y, ldy, w, wrow, x, xrow, len, accum);
        return;
    default: gmk_x86_tile_b32(kind, R, T, y, ldy, w, wrow, x, xrow, len); return;
    }
}

#if !GMK_X86_Z
/* K-quant prefill on 256-bit tiles: each KTR rows are unpacked once into a
 * panel on the stack for all its token tiles (unpacking and decoding the
 * headers per tile cost about as much as the dots at 4 tokens a tile). */
#define GMK_X86_KP_MAX 64 /* blocks per row a panel holds: KTR·64·352 B of stack */

GMK_X86_AI void gmk_x86_kpanel(int kind, gmk_x86_kp *restrict panel, const uint8_t *restrict w,
                               size_t wrow, int64_t nb)
{
    const size_t bb = gmk_dtype_block_bytes(kind);
    for (int64_t b = 0; b < nb; b++)
        for (int i = 0; i < GMK_X86_KTR; i++) {
            const uint8_t *blk = w + (size_t)i * wrow + (size_t)b * bb;
            gmk_x86_kp *p = &panel[GMK_X86_KTR * b + i];
            for (int c = 0; c < 4; c++) {
                if (kind == GMK_DTYPE_Q6_K)
                    gmk_x86_chunk_q6k(blk, c, &p->u[2 * c], &p->u[2 * c + 1]);
                else
                    gmk_x86_chunk_q45k(kind == GMK_DTYPE_Q5_K, blk, c, &p->u[2 * c],
                                       &p->u[2 * c + 1]);
            }
            if (kind != GMK_DTYPE_Q6_K) {
                p->h = gmk_x86_head_q45k(blk);
                for (int j = 0; j < 8; j++)
                    p->sc2[j] = p->h.sc[j] * 0x10001u;
            }
        }
}

GMK_X86_AI void gmk_x86_ktile(int kind, int R, int T, float *restrict y, int64_t ldy,
                              const uint8_t *restrict w, size_t wrow,
                              const gmk_x86_kp *restrict panel, const uint8_t *restrict x,
                              size_t xrow, int64_t nb)
{
    if (kind == GMK_DTYPE_Q6_K)
        gmk_x86_tile_q6k(R, T, y, ldy, w, wrow, panel, x, xrow, nb);
    else
        gmk_x86_tile_q45k(kind == GMK_DTYPE_Q5_K, R, T, y, ldy, w, wrow, panel, x, xrow, nb);
}

/* Rows [r0, …) of a k-quant prefill in panel-backed KTR × KTT tiles; returns
 * the first row left for gmk_x86_walk's direct tiles. */
GMK_X86_AI int64_t gmk_x86_kwalk(int kind, float *restrict y, int64_t ldy,
                                 const uint8_t *restrict W, size_t wrow,
                                 const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                                 int64_t r1, int64_t nb)
{
    int64_t r = r0;
    for (; r + GMK_X86_KTR <= r1; r += GMK_X86_KTR) {
        const uint8_t *w = W + (size_t)r * wrow;
        gmk_x86_kp panel[GMK_X86_KTR * GMK_X86_KP_MAX];
        gmk_x86_kpanel(kind, panel, w, wrow, nb);
        int t = 0;
        for (; t + GMK_X86_KTT <= n_tok; t += GMK_X86_KTT)
            gmk_x86_ktile(kind, GMK_X86_KTR, GMK_X86_KTT, y + t * ldy + r, ldy, w, wrow, panel,
                          X + (size_t)t * xrow, xrow, nb);
        for (; t < n_tok; t++)
            gmk_x86_ktile(kind, GMK_X86_KTR, 1, y + t * ldy + r, ldy, w, wrow, panel,
                          X + (size_t)t * xrow, xrow, nb);
    }
    return r;
}
#endif

/* Tiles of rows [r0, r1) × every token: TR × TT tiles, then the leftover
 * tokens and rows one at a time (the same arithmetic per element in every
 * shape); the tile shapes are constants, so accumulators stay in registers.
 * W and X point at the blocks [k0, k0 + len) of each row. */
GMK_X86_AI void gmk_x86_tiles(int kind, int xdt, int TR, int TT, float *restrict y, int64_t ldy,
                              const uint8_t *restrict W, size_t wrow, const uint8_t *restrict X,
                              size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t len,
                              int accum)
{
    int64_t r = r0;
    for (; r + TR <= r1; r += TR) {
        const uint8_t *w = W + (size_t)r * wrow;
        int t = 0;
        for (; t + TT <= n_tok; t += TT)
            gmk_x86_tile(kind, xdt, TR, TT, y + t * ldy + r, ldy, w, wrow, X + (size_t)t * xrow,
                         xrow, len, accum);
        for (; t < n_tok; t++)
            gmk_x86_tile(kind, xdt, TR, 1, y + t * ldy + r, ldy, w, wrow, X + (size_t)t * xrow,
                         xrow, len, accum);
    }
    for (; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * wrow;
        int t = 0;
        for (; t + TT <= n_tok; t += TT)
            gmk_x86_tile(kind, xdt, 1, TT, y + t * ldy + r, ldy, w, wrow, X + (size_t)t * xrow,
                         xrow, len, accum);
        for (; t < n_tok; t++)
            gmk_x86_tile(kind, xdt, 1, 1, y + t * ldy + r, ldy, w, wrow, X + (size_t)t * xrow,
                         xrow, len, accum);
    }
}

/* Float weights are multiplied GMK_X86_FKC elements at a time (the chunks at
 * fixed offsets of the row, each chunk's sum added to y in order), so that a
 * prefill's activation chunks stay in L2 while every row tile passes over
 * them (whole rows of 64 f32 tokens, 512 KiB at n = 2048, went to L3 once
 * per row tile: f32 2048² × 64 tokens 11.6-12.0 → 9.4-9.6 ms, kernel_bench
 * on a shared Zen 3; f16 and bf16, bound by their conversions, unchanged).
 * Decode walks the same chunks row tile by row tile, in address order: the
 * same operations per element, so results do not depend on n_tok. */
#define GMK_X86_FKC 512

GMK_X86_AI void gmk_x86_fwalk(int kind, int xdt, int TR, int TT, float *restrict y, int64_t ldy,
                              const uint8_t *restrict W, size_t wrow, const uint8_t *restrict X,
                              size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t len)
{
    const size_t we = gmk_dtype_block_bytes(kind), xe = gmk_dtype_block_bytes(xdt);
    int decode = n_tok <= TT; /* a row tile's chunks one after another */
    for (int64_t ra = r0; ra < r1; ra = decode && ra + TR < r1 ? ra + TR : r1) {
        int64_t rb = decode && ra + TR < r1 ? ra + TR : r1;
        for (int64_t k0 = 0; k0 < len; k0 += GMK_X86_FKC)
            gmk_x86_tiles(kind, xdt, TR, TT, y, ldy, W + (size_t)k0 * we, wrow,
                          X + (size_t)k0 * xe, xrow, n_tok, ra, rb,
                          len - k0 < GMK_X86_FKC ? len - k0 : GMK_X86_FKC, k0 > 0);
    }
}

/*
 * Walks [r0, r1) × [0, n_tok) in TR × TT tiles, then the leftover tokens one
 * at a time and the leftover rows one at a time (same per-element arithmetic
 * in every shape; gmk_x86_tiles, float weights by chunks in gmk_x86_fwalk).  len
 * is blocks per row (elements for float weights).
 */
GMK_X86_AI void gmk_x86_walk(int kind, int xdt, int TR, int TT, float *restrict y, int64_t ldy,
                             const uint8_t *restrict W, size_t wrow, const uint8_t *restrict X,
                             size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t len)
{
#ifdef GMK_X86_HAVE_LANES
    if (kind == GMK_DTYPE_Q4_0 || kind == GMK_DTYPE_Q4_1 || kind == GMK_DTYPE_Q5_0 ||
        kind == GMK_DTYPE_Q5_1 || kind == GMK_DTYPE_Q8_0) {
        gmk_x86_lwalk_b32(kind, y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);
        return;
    }
#endif
#if !GMK_X86_Z
    if ((kind == GMK_DTYPE_Q4_K || kind == GMK_DTYPE_Q5_K || kind == GMK_DTYPE_Q6_K) &&
        n_tok > 1 && len <= GMK_X86_KP_MAX)
        r0 = gmk_x86_kwalk(kind, y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);
#endif
    if (kind == GMK_DTYPE_F32 || kind == GMK_DTYPE_F16 || kind == GMK_DTYPE_BF16) {
        gmk_x86_fwalk(kind, xdt, TR, TT, y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);
        return;
    }
    int64_t r = r0;
#if !defined(__AVX512F__)
    /* Integer decode on AVX2 reads one row at a time, the weights in address
     * order: multi-row tiles interleave several streams, which the AVX2-only
     * EPYC this was measured on prefetches badly (262144×640 q8_0 head 8.4 →
     * 14.1 GB/s, 270M decode 37 → 48 t/s, Gemma 1 2B Q4_K_M 7.2 → 8.9 t/s at
     * 1 thread).  Float rows keep their tiles: one accumulator per row would
     * wait on the fma latency. */
    if (n_tok == 1 &&
        (kind == GMK_DTYPE_Q4_K || kind == GMK_DTYPE_Q5_K || kind == GMK_DTYPE_Q6_K)) {
        for (; r < r1; r++)
            gmk_x86_tile(kind, xdt, 1, 1, y + r, ldy, W + (size_t)r * wrow, wrow, X, xrow, len,
                         0);
        return;
    }
#endif
    gmk_x86_tiles(kind, xdt, TR, TT, y, ldy, W, wrow, X, xrow, n_tok, r, r1, len, 0);
}

#ifdef GMK_X86_HAVE_P8
/*
 * f16 and bf16 weights in the P8 layout (gmk_layout.h): element k of a
 * panel's 8 rows side by side, so one load and one widening give a vector
 * of rows, and each token's x[k] (f32) is broadcast against it:
 *
 *   acc[row lanes] = fma(w[k], x[k], acc), k in order from 0
 *
 * one chain per (row, token), whatever the tile, token count, row cut or
 * thread count.  The packed tiles (gmk_x86_tile_flt) keep 8 partial sums per
 * row and widen every weight vector again for each token tile; here prefill
 * runs 2 panels × 6 tokens (12 accumulators: 2 loads and 6 broadcasts per 12
 * fmas) over chunks of GMK_X86_FKC elements that stay in L1 for all token
 * tiles, the sums carried in y between chunks (reloaded exactly), and
 * decode 4 panels at a time so that 4 chains hide the fma latency.
 */
#define GMK_X86_P8F_NP 2 /* panels per prefill tile */
#define GMK_X86_P8F_TT 6 /* tokens per prefill tile */
#define GMK_X86_P8F_DP 4 /* panels per decode tile */

/* NP panels (pstride bytes apart) × T tokens over elements [k0, k1), into
 * the lanes keep[i] of y + 8i; the chains start from y where k0 > 0. */
GMK_X86_AI void gmk_x86_p8f_tile(int dt, int NP, int T, const uint8_t *restrict p,
                                 size_t pstride, int64_t k0, int64_t k1, float *restrict y,
                                 int64_t ldy, const __m256i *keep, const uint8_t *restrict x,
                                 size_t xrow)
{
    GMK_NO_CONTRACT
    const size_t pe = 8 * gmk_dtype_block_bytes(dt); /* bytes of one panel element */
    __m256 acc[GMK_X86_P8F_DP][GMK_X86_P8F_TT];
    GMK_X86_UNROLL
    for (int i = 0; i < NP; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = k0 > 0 ? _mm256_maskload_ps(y + j * ldy + 8 * i, keep[i])
                               : _mm256_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        __m256 w[GMK_X86_P8F_DP];
        GMK_X86_UNROLL
        for (int i = 0; i < NP; i++) {
            const uint8_t *pk = p + (size_t)i * pstride + (size_t)k * pe;
            if (((uintptr_t)pk & 63) < pe) /* one prefetch per 64 bytes */
                _mm_prefetch((const char *)(pk + 1024), GMK_X86_PF_HINT);
            w[i] = gmk_x86_load8(dt, pk);
        }
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const __m256 xv = _mm256_broadcast_ss((const float *)(x + (size_t)j * xrow) + k);
            GMK_X86_UNROLL
            for (int i = 0; i < NP; i++)
                acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < NP; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            _mm256_maskstore_ps(y + j * ldy + 8 * i, keep[i], acc[i][j]);
}

/* Every token of NP panels from p0 over elements [k0, k1): tiles of
 * GMK_X86_P8F_TT tokens, the last tokens in one tile. */
GMK_X86_AI void gmk_x86_p8f_tokens(int dt, int NP, const uint8_t *restrict p, size_t ps,
                                   int64_t k0, int64_t k1, float *restrict y, int64_t ldy,
                                   const __m256i *keep, const uint8_t *restrict X, size_t xrow,
                                   int n_tok)
{
    int t = 0;
    for (; t + GMK_X86_P8F_TT <= n_tok; t += GMK_X86_P8F_TT)
        gmk_x86_p8f_tile(dt, NP, GMK_X86_P8F_TT, p, ps, k0, k1, y + t * ldy, ldy, keep,
                         X + (size_t)t * xrow, xrow);
    const uint8_t *xt = X + (size_t)t * xrow;
    float *yt = y + t * ldy;
    switch (n_tok - t) {
    case 5: gmk_x86_p8f_tile(dt, NP, 5, p, ps, k0, k1, yt, ldy, keep, xt, xrow); break;
    case 4: gmk_x86_p8f_tile(dt, NP, 4, p, ps, k0, k1, yt, ldy, keep, xt, xrow); break;
    case 3: gmk_x86_p8f_tile(dt, NP, 3, p, ps, k0, k1, yt, ldy, keep, xt, xrow); break;
    case 2: gmk_x86_p8f_tile(dt, NP, 2, p, ps, k0, k1, yt, ldy, keep, xt, xrow); break;
    case 1: gmk_x86_p8f_tile(dt, NP, 1, p, ps, k0, k1, yt, ldy, keep, xt, xrow); break;
    default: break;
    }
}

/* Rows [r0, r1) × n_tok tokens of float dtype dt in P8, n elements a row. */
GMK_X86_AI void gmk_x86_p8_flt(int dt, float *restrict y, int64_t ldy, const uint8_t *restrict W,
                               const uint8_t *restrict X, size_t xrow, int n_tok, int64_t r0,
                               int64_t r1, int64_t n)
{
    const size_t ps = 8 * (size_t)n * gmk_dtype_block_bytes(dt); /* bytes of a panel */
    int64_t p0 = r0 / 8 * 8;
    __m256i keep[GMK_X86_P8F_DP];
    if (n_tok == 1) {
        for (; p0 + 8 * (GMK_X86_P8F_DP - 1) < r1; p0 += 8 * GMK_X86_P8F_DP) {
            GMK_X86_UNROLL
            for (int i = 0; i < GMK_X86_P8F_DP; i++)
                keep[i] = gmk_x86_p8_keep(r0, r1, p0 + 8 * i);
            gmk_x86_p8f_tile(dt, GMK_X86_P8F_DP, 1, W + (size_t)(p0 / 8) * ps, ps, 0, n, y + p0,
                             ldy, keep, X, xrow);
        }
        for (; p0 < r1; p0 += 8) {
            keep[0] = gmk_x86_p8_keep(r0, r1, p0);
            gmk_x86_p8f_tile(dt, 1, 1, W + (size_t)(p0 / 8) * ps, ps, 0, n, y + p0, ldy, keep,
                             X, xrow);
        }
        return;
    }
    for (; p0 < r1; p0 += 8 * GMK_X86_P8F_NP) {
        const int np = p0 + 8 * (GMK_X86_P8F_NP - 1) < r1 ? GMK_X86_P8F_NP : 1;
        for (int i = 0; i < np; i++)
            keep[i] = gmk_x86_p8_keep(r0, r1, p0 + 8 * i);
        const uint8_t *p = W + (size_t)(p0 / 8) * ps;
        for (int64_t k0 = 0; k0 < n; k0 += GMK_X86_FKC) {
            const int64_t k1 = n - k0 < GMK_X86_FKC ? n : k0 + GMK_X86_FKC;
            if (np == GMK_X86_P8F_NP)
                gmk_x86_p8f_tokens(dt, GMK_X86_P8F_NP, p, ps, k0, k1, y + p0, ldy, keep, X,
                                   xrow, n_tok);
            else
                gmk_x86_p8f_tokens(dt, 1, p, ps, k0, k1, y + p0, ldy, keep, X, xrow, n_tok);
        }
    }
}
#endif

#ifdef GMK_X86_HAVE_P16
/*
 * f16 and bf16 weights in P16 (gmk_layout.h): the P8 float kernel with the
 * 16 rows of a panel in a zmm, element k of each side by side (32 bytes),
 * one widening per load and each token's x[k] broadcast against it:
 *
 *   acc[row lanes] = fma(w[k], x[k], acc), k in order from 0
 *
 * the same chain per (row, token) as P8, so the two layouts and every tile,
 * token count, row cut and thread count agree bit for bit.  The P8 kernel's
 * ymm reach at most half of an AVX-512 core's f32 peak.  Prefill widens
 * GMK_X86_P16F_KC elements of 2 panels at a time into an f32 buffer (32 KiB
 * of stack) and runs every token tile of 12 over it: 24 accumulators, per
 * element 2 loads, 12 broadcasts folded into 24 fmas, the widenings out of
 * the loop (kernel_bench 2048 × 2048, 64 tokens, Sapphire Rapids VM: P8
 * 72 GOP/s, P16 widening in the tile 131-137, from the buffer 141-145, of
 * an f32 peak of 177).  Decode runs 4 panels at a time, 4 chains.
 */
#ifndef GMK_X86_P16F_NP
#define GMK_X86_P16F_NP 2 /* panels per prefill tile */
#endif
#ifndef GMK_X86_P16F_TT
#define GMK_X86_P16F_TT 12 /* tokens per prefill tile */
#endif
#define GMK_X86_P16F_DP 4 /* panels per decode tile (at least NP) */
#ifndef GMK_X86_P16F_KC
#define GMK_X86_P16F_KC 256 /* elements per prefill chunk */
#endif
#ifndef GMK_X86_P16F_PF
#define GMK_X86_P16F_PF 2048 /* bytes ahead in a panel that decode prefetches */
#endif

/* The 16 weights of dtype dt at p (f16, bf16 or f32) as f32 (exact). */
GMK_X86_AI __m512 gmk_x86_load16(int dt, const uint8_t *p)
{
    if (dt == GMK_DTYPE_F32)
        return _mm512_loadu_ps((const float *)p);
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (dt == GMK_DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The weights a prefill widens next: np panels ps bytes apart from p, pe
 * bytes an element, fetched a line at a time while a tile runs over the
 * buffer (widening them unannounced cost the 2B's FFN shapes a tenth of
 * their time in kernel_bench: 129-131 against 145-146 GOP/s). */
typedef struct {
    const uint8_t *p;
    size_t ps, pe;
    int np;
} gmk_x86_p16f_next;

/* NP panels (pstride bytes apart) × T tokens over elements [k0, k1), into
 * the lanes keep[i] of y + 16i; the chains start from y where carry is set,
 * else from zero; the lines of next (if any) prefetched on the way. */
GMK_X86_AI void gmk_x86_p16f_tile(int dt, int NP, int T, const uint8_t *restrict p,
                                  size_t pstride, int64_t k0, int64_t k1, int carry,
                                  float *restrict y, int64_t ldy, const __mmask16 *keep,
                                  const uint8_t *restrict x, size_t xrow,
                                  const gmk_x86_p16f_next *next)
{
    const size_t pe = 16 * gmk_dtype_block_bytes(dt); /* bytes of one panel element */
    __m512 acc[GMK_X86_P16F_DP][GMK_X86_P16F_TT];
    GMK_X86_UNROLL
    for (int i = 0; i < NP; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            acc[i][j] = carry ? _mm512_maskz_loadu_ps(keep[i], y + j * ldy + 16 * i)
                              : _mm512_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        __m512 w[GMK_X86_P16F_DP];
        GMK_X86_UNROLL
        for (int i = 0; i < NP; i++) {
            const uint8_t *pk = p + (size_t)i * pstride + (size_t)k * pe;
            if (dt != GMK_DTYPE_F32 && ((uintptr_t)pk & 63) < pe) /* one per 64 bytes */
                _mm_prefetch((const char *)(pk + GMK_X86_P16F_PF), GMK_X86_PF_HINT);
            w[i] = gmk_x86_load16(dt, pk);
        }
        if (next && (k * next->pe & 63) < next->pe) /* one line of each panel per 64 bytes */
            for (int i = 0; i < next->np; i++)
                _mm_prefetch((const char *)(next->p + (size_t)i * next->ps +
                                            (size_t)k * next->pe), GMK_X86_PF_HINT);
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++) {
            const __m512 xv = _mm512_set1_ps(((const float *)(x + (size_t)j * xrow))[k]);
            GMK_X86_UNROLL
            for (int i = 0; i < NP; i++)
                acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
        }
    }
    GMK_X86_UNROLL
    for (int i = 0; i < NP; i++)
        GMK_X86_UNROLL
        for (int j = 0; j < T; j++)
            _mm512_mask_storeu_ps(y + j * ldy + 16 * i, keep[i], acc[i][j]);
}

/* Every token of NP panels from p over elements [k0, k1): tiles of
 * GMK_X86_P16F_TT tokens, then of 6, the last tokens in one tile. */
GMK_X86_AI void gmk_x86_p16f_tokens(int dt, int NP, const uint8_t *restrict p, size_t ps,
                                    int64_t k0, int64_t k1, int carry, float *restrict y,
                                    int64_t ldy, const __mmask16 *keep,
                                    const uint8_t *restrict X, size_t xrow, int n_tok,
                                    const gmk_x86_p16f_next *next)
{
    int t = 0;
    for (; t + GMK_X86_P16F_TT <= n_tok; t += GMK_X86_P16F_TT, next = NULL)
        gmk_x86_p16f_tile(dt, NP, GMK_X86_P16F_TT, p, ps, k0, k1, carry, y + t * ldy, ldy, keep,
                          X + (size_t)t * xrow, xrow, next);
    for (; t + 6 <= n_tok; t += 6, next = NULL)
        gmk_x86_p16f_tile(dt, NP, 6, p, ps, k0, k1, carry, y + t * ldy, ldy, keep,
                          X + (size_t)t * xrow, xrow, next);
    const uint8_t *xt = X + (size_t)t * xrow;
    float *yt = y + t * ldy;
    const gmk_x86_p16f_next *nx = next;
    switch (n_tok - t) {
    case 5: gmk_x86_p16f_tile(dt, NP, 5, p, ps, k0, k1, carry, yt, ldy, keep, xt, xrow, nx); break;
    case 4: gmk_x86_p16f_tile(dt, NP, 4, p, ps, k0, k1, carry, yt, ldy, keep, xt, xrow, nx); break;
    case 3: gmk_x86_p16f_tile(dt, NP, 3, p, ps, k0, k1, carry, yt, ldy, keep, xt, xrow, nx); break;
    case 2: gmk_x86_p16f_tile(dt, NP, 2, p, ps, k0, k1, carry, yt, ldy, keep, xt, xrow, nx); break;
    case 1: gmk_x86_p16f_tile(dt, NP, 1, p, ps, k0, k1, carry, yt, ldy, keep, xt, xrow, nx); break;
    default: break;
    }
}

/* Rows [r0, r1) × n_tok tokens of float dtype dt in P16, n elements a row.
 * Prefill takes up to GMK_X86_P16F_XT tokens and a chunk of elements at a
 * time: their activations copied into xb, rows GMK_X86_P16F_XS floats
 * apart (activation rows 2^k bytes apart put a tile's 12 rows in one L1
 * set: a 2048 × 16384 matrix ran 17 % slower than 2048 × 16400), then for
 * each panel pair the chunk widened once into wb (f32, exact) and every
 * token tile run over it, the sums carried in y between chunks. */
#ifndef GMK_X86_P16F_XT
#define GMK_X86_P16F_XT 64                        /* tokens per activation copy */
#endif
#define GMK_X86_P16F_XS (GMK_X86_P16F_KC + 16)    /* floats between rows of the copy */
GMK_X86_AI void gmk_x86_p16_flt(int dt, float *restrict y, int64_t ldy,
                                const uint8_t *restrict W, const uint8_t *restrict X,
                                size_t xrow, int n_tok, int64_t r0, int64_t r1, int64_t n)
{
    const size_t pe = 16 * gmk_dtype_block_bytes(dt), ps = (size_t)n * pe; /* a panel */
    __mmask16 keep[GMK_X86_P16F_DP];
    if (n_tok == 1) {
        int64_t p0 = r0 / 16 * 16;
        for (; p0 + 16 * (GMK_X86_P16F_DP - 1) < r1; p0 += 16 * GMK_X86_P16F_DP) {
            GMK_X86_UNROLL
            for (int i = 0; i < GMK_X86_P16F_DP; i++)
                keep[i] = gmk_x86_p16_keep(r0, r1, p0 + 16 * i);
            gmk_x86_p16f_tile(dt, GMK_X86_P16F_DP, 1, W + (size_t)(p0 / 16) * ps, ps, 0, n, 0,
                              y + p0, ldy, keep, X, xrow, NULL);
        }
        for (; p0 < r1; p0 += 16) {
            keep[0] = gmk_x86_p16_keep(r0, r1, p0);
            gmk_x86_p16f_tile(dt, 1, 1, W + (size_t)(p0 / 16) * ps, ps, 0, n, 0, y + p0, ldy,
                              keep, X, xrow, NULL);
        }
        return;
    }
    _Alignas(64) float wb[GMK_X86_P16F_NP][GMK_X86_P16F_KC][16];
    _Alignas(64) float xb[GMK_X86_P16F_XT][GMK_X86_P16F_XS];
    const uint8_t *wbp = (const uint8_t *)wb, *xbp = (const uint8_t *)xb;
    const size_t wbs = sizeof wb[0], xbs = sizeof xb[0];
    for (int t0 = 0; t0 < n_tok; t0 += GMK_X86_P16F_XT) {
        const int nt = n_tok - t0 < GMK_X86_P16F_XT ? n_tok - t0 : GMK_X86_P16F_XT;
        float *yt = y + t0 * ldy;
        for (int64_t k0 = 0; k0 < n; k0 += GMK_X86_P16F_KC) {
            const int64_t kn = n - k0 < GMK_X86_P16F_KC ? n - k0 : GMK_X86_P16F_KC;
            for (int t = 0; t < nt; t++)
                memcpy(xb[t], X + (size_t)(t0 + t) * xrow + (size_t)k0 * sizeof(float),
                       (size_t)kn * sizeof(float));
            for (int64_t p0 = r0 / 16 * 16; p0 < r1; p0 += 16 * GMK_X86_P16F_NP) {
                const int np = p0 + 16 * (GMK_X86_P16F_NP - 1) < r1 ? GMK_X86_P16F_NP : 1;
                for (int i = 0; i < np; i++) {
                    const uint8_t *pi = W + (size_t)(p0 / 16 + i) * ps + (size_t)k0 * pe;
                    keep[i] = gmk_x86_p16_keep(r0, r1, p0 + 16 * i);
                    for (int64_t k = 0; k < kn; k++)
                        _mm512_store_ps(wb[i][k], gmk_x86_load16(dt, pi + (size_t)k * pe));
                }
                /* the next panels of this chunk, else the first of the next chunk */
                const int64_t q0 = p0 + 16 * GMK_X86_P16F_NP < r1 ? p0 + 16 * GMK_X86_P16F_NP
                                                                  : r0 / 16 * 16;
                const int64_t qk = q0 > p0 ? k0 : k0 + GMK_X86_P16F_KC;
                const gmk_x86_p16f_next next = {W + (size_t)(q0 / 16) * ps + (size_t)qk * pe, ps,
                                                pe, q0 + 16 < r1 ? GMK_X86_P16F_NP : 1};
                const gmk_x86_p16f_next *nx = qk < n ? &next : NULL;
                if (np == GMK_X86_P16F_NP)
                    gmk_x86_p16f_tokens(GMK_DTYPE_F32, GMK_X86_P16F_NP, wbp, wbs, 0, kn, k0 > 0,
                                        yt + p0, ldy, keep, xbp, xbs, nt, nx);
                else
                    gmk_x86_p16f_tokens(GMK_DTYPE_F32, 1, wbp, wbs, 0, kn, k0 > 0, yt + p0, ldy,
                                        keep, xbp, xbs, nt, nx);
            }
        }
    }
}
#endif

/* One out-of-line function per weight dtype: a call with a constant dtype
 * references only its own tiles, and each translation unit compiles each
 * dtype's tiles once however many matmuls it has. */
#define GMK_X86_MM(name, kind, xdt, TR, TT)                                                   \
    static inline GMK_NOINLINE void name(float *restrict y, int64_t ldy, const uint8_t *restrict W,        \
                            size_t wrow, const uint8_t *restrict X, size_t xrow, int n_tok,   \
                            int64_t r0, int64_t r1, int64_t len)                              \
    {                                                                                         \
        gmk_x86_walk(kind, xdt, TR, TT, y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);        \
    }
GMK_X86_MM(gmk_x86_mm_q4_0, GMK_DTYPE_Q4_0, 0, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_q4_1, GMK_DTYPE_Q4_1, 0, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_q5_0, GMK_DTYPE_Q5_0, 0, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_q5_1, GMK_DTYPE_Q5_1, 0, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_q8_0, GMK_DTYPE_Q8_0, 0, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_q4_k, GMK_DTYPE_Q4_K, 0, GMK_X86_KTR, GMK_X86_KTT)
GMK_X86_MM(gmk_x86_mm_q5_k, GMK_DTYPE_Q5_K, 0, GMK_X86_KTR, GMK_X86_KTT)
GMK_X86_MM(gmk_x86_mm_q6_k, GMK_DTYPE_Q6_K, 0, GMK_X86_KTR, GMK_X86_KTT)
GMK_X86_MM(gmk_x86_mm_f32, GMK_DTYPE_F32, GMK_DTYPE_F32, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_f16, GMK_DTYPE_F16, GMK_DTYPE_F32, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_bf16, GMK_DTYPE_BF16, GMK_DTYPE_F32, GMK_X86_TR, GMK_X86_TT)
GMK_X86_MM(gmk_x86_mm_bf16bf16, GMK_DTYPE_BF16, GMK_DTYPE_BF16, GMK_X86_TR, GMK_X86_TT)
#undef GMK_X86_MM

/* A supported (wdtype, fmt) pair (gmk_x86_pair_supported) to its kernel. */
static inline void gmk_x86_matmul_fast(float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                       int wdtype, const uint8_t *restrict X, int fmt, int n_tok,
                                       int64_t r0, int64_t r1, int64_t n_in)
{
    int64_t blk = gmk_dtype_block(wdtype);
    size_t wrow = (size_t)(n_in / blk) * gmk_dtype_block_bytes(wdtype);
    size_t xrow = gmk_act_row_bytes(fmt, n_in);
    int64_t len = n_in / blk;
    switch (wdtype) {
    case GMK_DTYPE_Q4_0: gmk_x86_mm_q4_0(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q4_1: gmk_x86_mm_q4_1(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q5_0: gmk_x86_mm_q5_0(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q5_1: gmk_x86_mm_q5_1(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q8_0: gmk_x86_mm_q8_0(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q4_K: gmk_x86_mm_q4_k(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q5_K: gmk_x86_mm_q5_k(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_Q6_K: gmk_x86_mm_q6_k(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_F32: gmk_x86_mm_f32(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_F16: gmk_x86_mm_f16(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len); return;
    case GMK_DTYPE_BF16:
        if (fmt == GMK_ACT_BF16)
            gmk_x86_mm_bf16bf16(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);
        else
            gmk_x86_mm_bf16(y, ldy, W, wrow, X, xrow, n_tok, r0, r1, len);
        return;
    default: return; /* unreachable: gmk_matmul_rows checked the pair */
    }
}

#ifdef GMK_X86_HAVE_P8
/* One out-of-line function per dtype in the P8 layout, each calling the
 * walk of its family (len: blocks per row, elements for f16/bf16). */
#define GMK_X86_P8(name, walk, kind)                                                          \
    static inline GMK_NOINLINE void name(float *restrict y, int64_t ldy,                      \
                                         const uint8_t *restrict W, const uint8_t *restrict X, \
                                         size_t xrow, int n_tok, int64_t r0, int64_t r1,      \
                                         int64_t len)                                         \
    {                                                                                         \
        walk(kind, y, ldy, W, X, xrow, n_tok, r0, r1, len);                                   \
    }
GMK_X86_P8(gmk_x86_p8_q4_0, gmk_x86_p8_b32, GMK_DTYPE_Q4_0)
GMK_X86_P8(gmk_x86_p8_q5_0, gmk_x86_p8_b32, GMK_DTYPE_Q5_0)
GMK_X86_P8(gmk_x86_p8_q8_0, gmk_x86_p8_b32, GMK_DTYPE_Q8_0)
GMK_X86_P8(gmk_x86_p8_q4_k, gmk_x86_p8k_rows, GMK_DTYPE_Q4_K)
GMK_X86_P8(gmk_x86_p8_q5_k, gmk_x86_p8k_rows, GMK_DTYPE_Q5_K)
GMK_X86_P8(gmk_x86_p8_q6_k, gmk_x86_p8k_rows, GMK_DTYPE_Q6_K)
GMK_X86_P8(gmk_x86_p8_f16, gmk_x86_p8_flt, GMK_DTYPE_F16)
GMK_X86_P8(gmk_x86_p8_bf16, gmk_x86_p8_flt, GMK_DTYPE_BF16)
#undef GMK_X86_P8
#endif

#ifdef GMK_X86_HAVE_P16
/* One out-of-line function per dtype in the P16 layout, each calling the
 * walk of its family. */
#define GMK_X86_P16(name, walk, kind)                                                         \
    static inline GMK_NOINLINE void name(float *restrict y, int64_t ldy,                      \
                                         const uint8_t *restrict W, const uint8_t *restrict X, \
                                         size_t xrow, int n_tok, int64_t r0, int64_t r1,      \
                                         int64_t nb)                                          \
    {                                                                                         \
        walk(kind, y, ldy, W, X, xrow, n_tok, r0, r1, nb);                                    \
    }
GMK_X86_P16(gmk_x86_p16_q4_0, gmk_x86_p16_b32, GMK_DTYPE_Q4_0)
GMK_X86_P16(gmk_x86_p16_q4_1, gmk_x86_p16_b32, GMK_DTYPE_Q4_1)
GMK_X86_P16(gmk_x86_p16_q5_0, gmk_x86_p16_b32, GMK_DTYPE_Q5_0)
GMK_X86_P16(gmk_x86_p16_q5_1, gmk_x86_p16_b32, GMK_DTYPE_Q5_1)
GMK_X86_P16(gmk_x86_p16_q8_0, gmk_x86_p16_b32, GMK_DTYPE_Q8_0)
GMK_X86_P16(gmk_x86_p16_q4_k, gmk_x86_p16k_rows, GMK_DTYPE_Q4_K)
GMK_X86_P16(gmk_x86_p16_q5_k, gmk_x86_p16k_rows, GMK_DTYPE_Q5_K)
GMK_X86_P16(gmk_x86_p16_q6_k, gmk_x86_p16k_rows, GMK_DTYPE_Q6_K)
GMK_X86_P16(gmk_x86_p16_f16, gmk_x86_p16_flt, GMK_DTYPE_F16)
GMK_X86_P16(gmk_x86_p16_bf16, gmk_x86_p16_flt, GMK_DTYPE_BF16)
#undef GMK_X86_P16

/* A P16 weight against its activations (gmk_x86_pair_supported: q8_0 for
 * the b32 formats, Q8_K for the k-quants, f32 for f16 and bf16). */
static inline void gmk_x86_matmul_p16(float *restrict y, int64_t ldy, const uint8_t *restrict W,
                                      int dtype, const uint8_t *restrict X, int n_tok,
                                      int64_t r0, int64_t r1, int64_t n_in)
{
    const int kq = gmk_dtype_block(dtype) == 256, flt = gmk_dtype_block(dtype) == 1;
    size_t xrow = gmk_act_row_bytes(flt ? GMK_ACT_F32 : kq ? GMK_ACT_Q8_K : GMK_ACT_Q8_0, n_in);
    int64_t nb = n_in / gmk_dtype_block(dtype);
    switch (dtype) {
    case GMK_DTYPE_F16: gmk_x86_p16_f16(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_BF16: gmk_x86_p16_bf16(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q4_K: gmk_x86_p16_q4_k(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q5_K: gmk_x86_p16_q5_k(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q6_K: gmk_x86_p16_q6_k(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q4_0: gmk_x86_p16_q4_0(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q4_1: gmk_x86_p16_q4_1(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q5_0: gmk_x86_p16_q5_0(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    case GMK_DTYPE_Q5_1: gmk_x86_p16_q5_1(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    default: gmk_x86_p16_q8_0(y, ldy, W, X, xrow, n_tok, r0, r1, nb); return;
    }
}
#endif

#endif /* GMK_X86_SIMD_H */
