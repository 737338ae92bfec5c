/*
 * gmk_layout.h — weight layouts other than GGUF's packed rows.
 *
 * A target may ask for a 2-D weight in another byte order (gmk_tensor.layout);
 * the runtime repacks it once at load and generated code passes the layout
 * with the dtype (wdtype = dtype | layout).  Repacking only permutes bits, so
 * every block of the original is recoverable (gmk_weight_block) and every
 * kernel computes the same numbers from either layout.
 *
 * GMK_LAYOUT_P16 (b32 formats: q4_0, q4_1, q5_0, q5_1, q8_0): rows in
 * panels of 16, a panel's blocks in order, each block of the 16 rows stored
 * as one "panel block" of 16·block_bytes bytes:
 *
 *   d     16 × f16             row r's scale at 2r
 *   m     16 × f16             minimum (q4_1, q5_1)
 *   qh    8 × u64 masks        bit 4r+i of mask g: bit 4g+i of row r's qh
 *                              (q5_0, q5_1)
 *   qs    4 × 64 bytes         byte 64k+4r+i: row r's qs[4k+i]
 *                              (q4_*, q5_*: low nibbles elements 4k+i,
 *                              high nibbles 16+4k+i)
 *         8 × 64 bytes         byte 64g+4r+i: row r's qs[4g+i] ^ 0x80 (q8_0)
 *
 * so that one 64-byte load gives 4 bytes of every row of the panel, which is
 * what vpdpbusd against one broadcast dword of activations wants, and the
 * 5th bits are a byte mask per 64 weights.  Row r of the tensor lives in
 * panel r/16 at offset (r/16)·16·row_bytes: a row range that starts on a
 * multiple of 16 starts where it did in the packed layout.  The last panel is
 * padded with zero rows (gmk_layout_bytes).
 *
 * GMK_LAYOUT_P2 (q4_0, read by the AVX2 kernels): rows in pairs, pair p at
 * offset 2p·row_bytes (the last pair padded with a zero row), its blocks in
 * groups of 8 (the last group of n = nb − 8g < 8 blocks when 8 does not
 * divide nb), group g at offset 2·8g·18 within the pair:
 *
 *   d     row 0's n f16 scales, then row 1's
 *   qs    per two blocks (2k, 2k + 1): row 0's 32 bytes, then row 1's;
 *         byte e = element e of block 2k | element e of block 2k + 1 << 4
 *         (an odd last block: row 0's 16 bytes, then row 1's, as packed)
 *
 * so that a decode step reads one stream that feeds two rows (two
 * independent sums), converts 8 scales with one instruction, and unpacks
 * two blocks of a row with one load, a shift and two ands.
 */
#ifndef GMK_LAYOUT_H
#define GMK_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gmk.h"
#include "gmk_quant.h"

/* The dtype and the layout of a kernel's wdtype argument. */
static inline int gmk_wdtype_dtype(int wdtype) { return wdtype & GMK_DTYPE_MASK; }
static inline int gmk_wdtype_layout(int wdtype) { return wdtype & ~GMK_DTYPE_MASK; }

/* True if dtype can be stored in layout (packed: every dtype). */
static inline int gmk_layout_supports(int layout, int dtype)
{
    switch (layout) {
    case GMK_LAYOUT_PACKED: return 1;
    case GMK_LAYOUT_P16:
        return dtype == GMK_DTYPE_Q4_0 || dtype == GMK_DTYPE_Q4_1 || dtype == GMK_DTYPE_Q5_0 ||
               dtype == GMK_DTYPE_Q5_1 || dtype == GMK_DTYPE_Q8_0;
    case GMK_LAYOUT_P2: return dtype == GMK_DTYPE_Q4_0;
    default: return 0;
    }
}

/* The layouts: their names in dumps and the weight manifest, the constant
 * in generated code, rows per panel (the padding unit of gmk_layout_bytes)
 * and whether a 3-D stack of matrices (MoE experts) may take the layout,
 * rows per matrix a multiple of the panel: measured for P2; P16 on experts
 * has not run on an AVX-512 machine. */
static const struct gmk_layout_names {
    int layout;
    const char *name, *constant;
    int rows, stacks;
} gmk_layout_table[] = {
    {GMK_LAYOUT_PACKED, "packed", "GMK_LAYOUT_PACKED", 1, 1},
    {GMK_LAYOUT_P16, "p16", "GMK_LAYOUT_P16", 16, 0},
    {GMK_LAYOUT_P2, "p2", "GMK_LAYOUT_P2", 2, 1},
};

static inline const struct gmk_layout_names *gmk_layout_find(int layout)
{
    for (size_t i = 0; i < sizeof gmk_layout_table / sizeof gmk_layout_table[0]; i++)
        if (gmk_layout_table[i].layout == layout)
            return &gmk_layout_table[i];
    return &gmk_layout_table[0];
}
static inline const char *gmk_layout_name(int layout) { return gmk_layout_find(layout)->name; }
static inline const char *gmk_layout_const(int layout) { return gmk_layout_find(layout)->constant; }
static inline int gmk_layout_rows(int layout) { return gmk_layout_find(layout)->rows; }

/* The layout a weight of n_dims dims (ne as gmk_tensor's) takes when its
 * target asks for layout: 2-D matrices take it; a 3-D stack only if the
 * layout stacks and each matrix is whole panels (so matrix e starts where
 * it did in the packed file, which the expert kernels rely on). */
static inline int gmk_layout_for(int layout, int n_dims, const int64_t *ne)
{
    if (n_dims == 2)
        return layout;
    if (n_dims == 3 && gmk_layout_find(layout)->stacks && ne[1] % gmk_layout_rows(layout) == 0)
        return layout;
    return GMK_LAYOUT_PACKED;
}

/* Rows of a 2-D weight, or of a 3-D stack taken as one matrix. */
static inline int64_t gmk_layout_all_rows(int n_dims, const int64_t *ne)
{
    return n_dims == 3 ? ne[1] * ne[2] : ne[1];
}

/* Bytes of an (n_rows, n_in) tensor of dtype in layout (P16: whole panels);
 * 0 if the pair is not supported or n_in is not a multiple of the block. */
static inline uint64_t gmk_layout_bytes(int layout, int dtype, int64_t n_rows, int64_t n_in)
{
    int64_t blk = gmk_dtype_block(dtype);
    if (!gmk_layout_supports(layout, dtype) || blk <= 0 || n_in % blk != 0 || n_rows < 0)
        return 0;
    uint64_t row = (uint64_t)(n_in / blk) * gmk_dtype_block_bytes(dtype);
    uint64_t pr = (uint64_t)gmk_layout_rows(layout);
    return row * (((uint64_t)n_rows + pr - 1) / pr * pr);
}

/* Byte offsets of the parts of a P16 panel block of dtype. */
static inline int gmk_p16_has_min(int dtype)
{
    return dtype == GMK_DTYPE_Q4_1 || dtype == GMK_DTYPE_Q5_1;
}
static inline int gmk_p16_has_qh(int dtype)
{
    return dtype == GMK_DTYPE_Q5_0 || dtype == GMK_DTYPE_Q5_1;
}
static inline size_t gmk_p16_qh_at(int dtype) { return gmk_p16_has_min(dtype) ? 64 : 32; }
static inline size_t gmk_p16_qs_at(int dtype)
{
    return gmk_p16_qh_at(dtype) + (gmk_p16_has_qh(dtype) ? 64 : 0);
}

/* Panel block b of row r's panel, for a tensor of nb blocks per row. */
static inline const uint8_t *gmk_p16_at(const uint8_t *W, int dtype, int64_t r, int64_t nb,
                                        int64_t b)
{
    size_t bb = gmk_dtype_block_bytes(dtype);
    return W + (size_t)(r / 16) * 16 * (size_t)nb * bb + (size_t)b * 16 * bb;
}

/* Row r's (r < 16) block from panel block p into plain (block_bytes bytes),
 * or the other way round (to_panel): the one permutation both directions
 * share. */
static inline void gmk_p16_swap(int dtype, uint8_t *restrict p, uint8_t *restrict plain, int r,
                                int to_panel)
{
    const int has_min = gmk_p16_has_min(dtype), has_qh = gmk_p16_has_qh(dtype);
    const int n_qs = dtype == GMK_DTYPE_Q8_0 ? 32 : 16, flip = dtype == GMK_DTYPE_Q8_0 ? 0x80 : 0;
    uint8_t *qs = plain + 2 + 2 * has_min + 4 * has_qh, *pq = p + gmk_p16_qs_at(dtype);
    for (int j = 0; j < 2 + 2 * has_min; j++) { /* d, then m: f16 each */
        uint8_t *a = p + 32 * (j / 2) + 2 * r + j % 2, *b = plain + j;
        if (to_panel)
            *a = *b;
        else
            *b = *a;
    }
    for (int k = 0; k < n_qs; k++) {
        uint8_t *a = pq + 64 * (k / 4) + 4 * r + k % 4;
        if (to_panel)
            *a = (uint8_t)(qs[k] ^ flip);
        else
            qs[k] = (uint8_t)(*a ^ flip);
    }
    if (!has_qh)
        return;
    uint8_t *ph = p + gmk_p16_qh_at(dtype), *qh = plain + 2 + 2 * has_min;
    uint32_t h = to_panel ? gmk_load_u32(qh) : 0;
    for (int g = 0; g < 8; g++) {
        for (int i = 0; i < 4; i++) {
            int bit = 4 * r + i; /* in mask g, bytes 8g.. */
            uint8_t *m = ph + 8 * g + bit / 8;
            if (to_panel)
                *m = (uint8_t)((*m & ~(1u << bit % 8)) | ((h >> (4 * g + i) & 1u) << bit % 8));
            else
                h |= (uint32_t)(*m >> bit % 8 & 1u) << (4 * g + i);
        }
    }
    for (int j = 0; j < 4 && !to_panel; j++)
        qh[j] = (uint8_t)(h >> 8 * j);
}

/* Block b of row i (< 2) of the P2 pair at p (nb blocks per row) into plain
 * (a packed q4_0 block): gmk_p2_pack read backwards. */
static inline void gmk_p2_block(uint8_t *restrict plain, const uint8_t *restrict p, int64_t nb,
                                int64_t b, int i)
{
    int64_t g = b / 8;
    int j = (int)(b % 8), n = nb - 8 * g < 8 ? (int)(nb - 8 * g) : 8;
    const uint8_t *G = p + (size_t)g * 8 * 2 * 18, *qs = G + 4 * n + 64 * (j / 2);
    memcpy(plain, G + 2 * (i * n + j), 2);
    if (j / 2 * 2 + 1 == n) { /* an odd last block: as packed */
        memcpy(plain + 2, qs + 16 * i, 16);
        return;
    }
    const uint8_t *c = qs + 32 * i;
    const int sh = 4 * (j % 2);
    for (int e = 0; e < 16; e++) /* elements e and 16 + e */
        plain[2 + e] = (uint8_t)((c[e] >> sh & 0x0f) | (c[16 + e] >> sh & 0x0f) << 4);
}

/* Row r's pair in a P2 weight of nb blocks per row (q4_0). */
static inline uint8_t *gmk_p2_at(const uint8_t *W, int64_t r, int64_t nb)
{
    return (uint8_t *)W + (size_t)(r / 2) * 2 * (size_t)nb * 18;
}

/* Packed q4_0 rows (n_rows × nb blocks) into the zeroed P2 buffer dst, a
 * block pair at a time (the repacking of a model's weights at load;
 * gmk_p2_block reads a block back). */
static inline void gmk_p2_pack(void *restrict dst, const void *restrict src, int64_t n_rows,
                               int64_t nb)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)src + (size_t)r * (size_t)nb * 18;
        uint8_t *p = gmk_p2_at((const uint8_t *)dst, r, nb);
        const int i = (int)(r % 2);
        for (int64_t g = 0; 8 * g < nb; g++) {
            const int n = nb - 8 * g < 8 ? (int)(nb - 8 * g) : 8;
            uint8_t *G = p + (size_t)g * 8 * 2 * 18, *qs = G + 4 * n;
            const uint8_t *blk = row + (size_t)(8 * g) * 18;
            for (int j = 0; j < n; j++)
                memcpy(G + 2 * (i * n + j), blk + 18 * j, 2);
            int j = 0;
            for (; j + 1 < n; j += 2) {
                const uint8_t *a = blk + 18 * j + 2, *b = blk + 18 * (j + 1) + 2;
                uint8_t *c = qs + 64 * (j / 2) + 32 * i;
                for (int e = 0; e < 16; e++) {
                    c[e] = (uint8_t)((a[e] & 0x0f) | (b[e] & 0x0f) << 4);
                    c[16 + e] = (uint8_t)(a[e] >> 4 | (b[e] & 0xf0));
                }
            }
            if (j < n)
                memcpy(qs + 64 * (j / 2) + 16 * i, blk + 18 * j + 2, 16);
        }
    }
}

/* Block b of row r of an (·, n_in) weight W of wdtype, in the packed format,
 * into out (gmk_dtype_block_bytes bytes). */
static inline void gmk_weight_block(uint8_t *restrict out, const void *restrict W, int wdtype,
                                    int64_t r, int64_t n_in, int64_t b)
{
    int dtype = gmk_wdtype_dtype(wdtype);
    int64_t nb = n_in / gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    if (gmk_wdtype_layout(wdtype) == GMK_LAYOUT_P16)
        gmk_p16_swap(dtype, (uint8_t *)gmk_p16_at((const uint8_t *)W, dtype, r, nb, b), out,
                     (int)(r % 16), 0);
    else if (gmk_wdtype_layout(wdtype) == GMK_LAYOUT_P2)
        gmk_p2_block(out, gmk_p2_at((const uint8_t *)W, r, nb), nb, b, (int)(r % 2));
    else
        memcpy(out, (const uint8_t *)W + (size_t)(r * nb + b) * bb, bb);
}

/*
 * dst[0..len) = elements [k0, k0 + len) of row r of W (wdtype, n_in columns),
 * dequantized; k0 and len multiples of the block.  Packed rows go straight
 * to gmk_dequantize_row; other layouts a block at a time.
 */
static inline void gmk_weight_dequant(float *restrict dst, const void *restrict W, int wdtype,
                                      int64_t r, int64_t n_in, int64_t k0, int64_t len)
{
    int dtype = gmk_wdtype_dtype(wdtype);
    int64_t blk = gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    if (blk <= 0 || !gmk_layout_supports(gmk_wdtype_layout(wdtype), dtype)) {
        gmk_dequantize_row(-1, W, dst, len); /* never emitted: zeros */
        return;
    }
    if (gmk_wdtype_layout(wdtype) == GMK_LAYOUT_PACKED) {
        const uint8_t *row = (const uint8_t *)W + (size_t)(n_in / blk) * bb * (size_t)r;
        gmk_dequantize_row(dtype, row + (size_t)(k0 / blk) * bb, dst, len);
        return;
    }
    uint8_t blkbuf[64];
    for (int64_t k = 0; k < len; k += blk) {
        gmk_weight_block(blkbuf, W, wdtype, r, n_in, (k0 + k) / blk);
        gmk_dequantize_row(dtype, blkbuf, dst + k, blk);
    }
}

/* Repacks an (n_rows, n_in) packed weight of dtype into layout at dst
 * (gmk_layout_bytes bytes; padding rows zero).  src and dst must not
 * overlap. */
static inline void gmk_layout_pack(void *restrict dst, const void *restrict src, int layout,
                                   int dtype, int64_t n_rows, int64_t n_in)
{
    uint64_t bytes = gmk_layout_bytes(layout, dtype, n_rows, n_in);
    if (layout == GMK_LAYOUT_PACKED) {
        memcpy(dst, src, (size_t)bytes);
        return;
    }
    memset(dst, 0, (size_t)bytes);
    int64_t nb = n_in / gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    if (layout == GMK_LAYOUT_P2) {
        gmk_p2_pack(dst, src, n_rows, nb);
        return;
    }
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *plain = (uint8_t *)src + (size_t)(r * nb + b) * bb;
            gmk_p16_swap(dtype, (uint8_t *)gmk_p16_at((const uint8_t *)dst, dtype, r, nb, b),
                         plain, (int)(r % 16), 1);
        }
}

#endif /* GMK_LAYOUT_H */
