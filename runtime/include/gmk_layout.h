/*
 * gmk_layout.h — weight layouts other than GGUF's packed rows.
 *
 * A target may ask for a 2-D weight in another byte order (gmk_tensor.layout);
 * the runtime repacks it once at load and generated code passes the layout
 * with the dtype (wdtype = dtype | layout).  Repacking only permutes bits, so
 * every block of the original is recoverable (gmk_weight_block) and every
 * kernel computes the same numbers from either layout.
 *
 * GMK_LAYOUT_P16 (b32 formats: q4_0, q4_1, q5_0, q5_1, q8_0; the k-quants,
 * f16 and bf16 as in P8 below, with R = 16): rows in panels of R = 16, a panel's blocks
 * in order, each block of the R rows stored as one "panel block" of
 * R·block_bytes bytes:
 *
 *   d     R × f16             row r's scale at 2r
 *   m     R × f16             minimum (q4_1, q5_1)
 *   qh    8 masks of 4R bits  bit 4r+i of mask g: bit 4g+i of row r's qh
 *                             (q5_0, q5_1)
 *   qs    4 × 4R bytes        byte 4R·k+4r+i: row r's qs[4k+i]
 *                             (q4_*, q5_*: low nibbles elements 4k+i,
 *                             high nibbles 16+4k+i)
 *         8 × 4R bytes        byte 4R·g+4r+i: row r's qs[4g+i] ^ 0x80 (q8_0)
 *
 * so that one 4R-byte load gives 4 bytes of every row of the panel, which is
 * what vpdpbusd against one broadcast dword of activations wants (64 bytes,
 * a zmm register), and the 5th bits are a byte mask per 64 weights.  Row r
 * of the tensor lives in panel r/R at offset (r/R)·R·row_bytes: a row range
 * that starts on a multiple of R starts where it did in the packed layout.
 * The last panel is padded with zero rows (gmk_layout_bytes).
 *
 * GMK_LAYOUT_P8 (q4_0, q5_0, q8_0, q4_k, q5_k, q6_k; read by the AVX2
 * kernels): the same with R = 8, so that a 32-byte load (a ymm register)
 * holds 4 bytes of each of 8 rows: q4_0 panel blocks of 8 f16 scales and 4
 * × 32 bytes of nibbles (144 bytes), q5_0 with 8 32-bit masks of 5th bits
 * between them (176 bytes), q8_0 8 × 32 bytes of w, signed as P4 keeps
 * them (272 bytes; the AVX2 kernels take |w| and x with w's sign).
 * The k-quants move whole bytes (their parts in gmk_panel_parts), in P8
 * and P16 alike: a part of a row's block is cut into pieces of g bytes (2
 * for an f16, 1 for the packed 6-bit scales, 4 for weights), and piece i of
 * row r lands at g·R·i + g·r past the part's start in the panel block, the
 * parts back to back in the table's order:
 *
 *   q4_k  d, dmin (R f16 each), scales (12 × R bytes), qs (32 × 4R)
 *   q5_k  d, dmin, scales, qh (8 × 4R), qs (32 × 4R)
 *   q6_k  d (R f16), scales (16 × R int8), qh (16 × 4R), ql (32 × 4R)
 *
 * so that one 4R-byte load holds 4 weight bytes of each row (a ymm register
 * in P8, a zmm in P16: vpdpbusd's operand), and one R-byte load scale byte
 * k of every row.
 *
 * GMK_LAYOUT_P4 (q4_0, q5_0, q8_0, q4_k, q5_k, q6_k; read by the AArch64
 * kernels, gmk_arm.h): the P16 order with R = 4 (q5_0's 5th bits one
 * 16-bit mask per 4 bytes of the 4 rows; the k-quants' parts as above),
 * but q8_0 keeps its signed bytes (sdot, smmla and smull multiply s8 by
 * s8).  A 16-byte load holds 4 bytes of each of the 4 rows: what sdot
 * against one 4-byte lane of activations wants, and, two loads zipped by
 * 32-bit lanes, the 2 rows × 8 bytes an smmla takes.
 *
 * f16 and bf16 weights are blocks of one element, so a P8 panel block is
 * element k of each of the 8 rows side by side (16 bytes; a P16 one 32
 * bytes, 16 rows): a vector of rows that one load widens, against a
 * broadcast activation.  f32 stays packed:
 * the graph declares f32 exactly the 2-D weights that element-wise kernels
 * read as plain rows (the MoE and AltUp routers, AltUp's coefficients).
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
               dtype == GMK_DTYPE_Q5_1 || dtype == GMK_DTYPE_Q8_0 || dtype == GMK_DTYPE_Q4_K ||
               dtype == GMK_DTYPE_Q5_K || dtype == GMK_DTYPE_Q6_K || dtype == GMK_DTYPE_F16 ||
               dtype == GMK_DTYPE_BF16;
    case GMK_LAYOUT_P8:
        return dtype == GMK_DTYPE_Q4_0 || dtype == GMK_DTYPE_Q5_0 || dtype == GMK_DTYPE_Q8_0 ||
               dtype == GMK_DTYPE_Q4_K || dtype == GMK_DTYPE_Q5_K || dtype == GMK_DTYPE_Q6_K ||
               dtype == GMK_DTYPE_F16 || dtype == GMK_DTYPE_BF16;
    case GMK_LAYOUT_P4:
        return dtype == GMK_DTYPE_Q4_0 || dtype == GMK_DTYPE_Q5_0 || dtype == GMK_DTYPE_Q8_0 ||
               dtype == GMK_DTYPE_Q4_K || dtype == GMK_DTYPE_Q5_K || dtype == GMK_DTYPE_Q6_K;
    default: return 0;
    }
}

/* The layouts: their names in dumps and the weight manifest, the constant
 * in generated code, rows per panel (the padding unit of gmk_layout_bytes),
 * whether a 3-D stack of matrices (MoE experts) may take the layout, rows
 * per matrix a multiple of the panel (measured for P8; P16 on experts has
 * not run on an AVX-512 machine, P4 on no Arm one), and whether q8_0 is
 * stored + 128 (the u8 operand of x86's vpmaddubsw and vpdpbusd). */
static const struct gmk_layout_names {
    int layout;
    const char *name, *constant;
    int rows, stacks, q8_biased;
} gmk_layout_table[] = {
    {GMK_LAYOUT_PACKED, "packed", "GMK_LAYOUT_PACKED", 1, 1, 0},
    {GMK_LAYOUT_P16, "p16", "GMK_LAYOUT_P16", 16, 0, 1},
    {GMK_LAYOUT_P8, "p8", "GMK_LAYOUT_P8", 8, 1, 0},
    {GMK_LAYOUT_P4, "p4", "GMK_LAYOUT_P4", 4, 0, 0},
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
 * layout stacks and each half of each matrix is whole panels (so matrix e
 * starts where it did in the packed file, and so does the up half of a
 * gate/up pair of 2F rows: the expert kernels rely on both). */
static inline int gmk_layout_for(int layout, int n_dims, const int64_t *ne)
{
    if (n_dims == 2)
        return layout;
    if (n_dims == 3 && gmk_layout_find(layout)->stacks &&
        ne[1] % (2 * gmk_layout_rows(layout)) == 0)
        return layout;
    return GMK_LAYOUT_PACKED;
}

/* Rows of a 2-D weight, or of a 3-D stack taken as one matrix. */
static inline int64_t gmk_layout_all_rows(int n_dims, const int64_t *ne)
{
    return n_dims == 3 ? ne[1] * ne[2] : ne[1];
}

/* Bytes of an (n_rows, n_in) tensor of dtype in layout (whole panels);
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

/* Byte offsets of the parts of a panel block of dtype, R rows (P16, P8). */
static inline int gmk_panel_has_min(int dtype)
{
    return dtype == GMK_DTYPE_Q4_1 || dtype == GMK_DTYPE_Q5_1;
}
static inline int gmk_panel_has_qh(int dtype)
{
    return dtype == GMK_DTYPE_Q5_0 || dtype == GMK_DTYPE_Q5_1;
}
static inline size_t gmk_panel_qh_at(int dtype, int R)
{
    return (size_t)(2 * R * (1 + gmk_panel_has_min(dtype)));
}
static inline size_t gmk_panel_qs_at(int dtype, int R)
{
    return gmk_panel_qh_at(dtype, R) + (gmk_panel_has_qh(dtype) ? (size_t)(4 * R) : 0);
}

/* The parts of a block in panel order, for the formats whose panels move
 * whole bytes (q4_0 and q4_1 as above, the k-quants in P8 and P16):
 * where each starts in the packed block, its bytes, and the piece kept
 * whole.  q5_0/q5_1 (5th bits regrouped) and q8_0 (+128) are
 * gmk_panel_swap's own. */
static const struct gmk_panel_part {
    int dtype, from, len, g;
} gmk_panel_parts[] = {
    {GMK_DTYPE_Q4_0, 0, 2, 2},    {GMK_DTYPE_Q4_0, 2, 16, 4},   {GMK_DTYPE_Q4_1, 0, 2, 2},
    {GMK_DTYPE_Q4_1, 2, 2, 2},    {GMK_DTYPE_Q4_1, 4, 16, 4},
    {GMK_DTYPE_Q4_K, 0, 2, 2},    {GMK_DTYPE_Q4_K, 2, 2, 2},    {GMK_DTYPE_Q4_K, 4, 12, 1},
    {GMK_DTYPE_Q4_K, 16, 128, 4}, {GMK_DTYPE_Q5_K, 0, 2, 2},    {GMK_DTYPE_Q5_K, 2, 2, 2},
    {GMK_DTYPE_Q5_K, 4, 12, 1},   {GMK_DTYPE_Q5_K, 16, 32, 4},  {GMK_DTYPE_Q5_K, 48, 128, 4},
    {GMK_DTYPE_Q6_K, 208, 2, 2},  {GMK_DTYPE_Q6_K, 192, 16, 1}, {GMK_DTYPE_Q6_K, 128, 64, 4},
    {GMK_DTYPE_Q6_K, 0, 128, 4},   {GMK_DTYPE_F16, 0, 2, 2},     {GMK_DTYPE_BF16, 0, 2, 2},
};
#define GMK_PANEL_N_PARTS (int)(sizeof gmk_panel_parts / sizeof gmk_panel_parts[0])

/* The parts of dtype (*first, consecutive in the table) and their count:
 * 0 if its panels do not move whole bytes. */
static inline int gmk_panel_parts_of(int dtype, const struct gmk_panel_part **first)
{
    int n = 0;
    *first = NULL;
    for (int i = 0; i < GMK_PANEL_N_PARTS; i++)
        if (gmk_panel_parts[i].dtype == dtype && n++ == 0)
            *first = &gmk_panel_parts[i];
    return n;
}

/* Offset in a panel block of R rows of the part of a dtype block that
 * starts at byte from of the packed block (-1 if there is none). */
static inline int gmk_panel_part_at(int dtype, int R, int from)
{
    const struct gmk_panel_part *q;
    int n = gmk_panel_parts_of(dtype, &q), at = 0;
    for (int i = 0; i < n; at += R * q[i].len, i++)
        if (q[i].from == from)
            return at;
    return -1;
}

/* Row r's block between panel block p and plain through the n parts q:
 * into the panel (to_panel) or out of it. */
static inline void gmk_panel_move(const struct gmk_panel_part *q, int n, int R,
                                  uint8_t *restrict p, uint8_t *restrict plain, int r,
                                  int to_panel)
{
    for (int i = 0; i < n; p += R * q[i].len, i++) {
        const size_t g = (size_t)q[i].g, step = g * (size_t)R;
        uint8_t *to = to_panel ? p + g * (size_t)r : plain + q[i].from;
        const uint8_t *from = to_panel ? plain + q[i].from : p + g * (size_t)r;
        const size_t to_step = to_panel ? step : g, from_step = to_panel ? g : step;
        for (int k = 0; k < q[i].len / q[i].g; k++, to += to_step, from += from_step) {
            switch (g) { /* fixed sizes: moves, not calls */
            case 4: memcpy(to, from, 4); break;
            case 2: memcpy(to, from, 2); break;
            default: *to = *from; break;
            }
        }
    }
}

/* Panel block b of row r's panel of R rows, for a tensor of nb blocks per
 * row. */
static inline const uint8_t *gmk_panel_at(const uint8_t *W, int dtype, int R, int64_t r,
                                          int64_t nb, int64_t b)
{
    size_t bb = gmk_dtype_block_bytes(dtype);
    return W + (size_t)(r / R) * (size_t)R * (size_t)nb * bb + (size_t)b * (size_t)R * bb;
}

/* Row r's (r < R) block from panel block p of layout into plain
 * (block_bytes bytes), or the other way round (to_panel): the one
 * permutation both directions share. */
static inline void gmk_panel_swap(int dtype, int layout, uint8_t *restrict p,
                                  uint8_t *restrict plain, int r, int to_panel)
{
    const int R = gmk_layout_rows(layout);
    const struct gmk_panel_part *parts;
    const int n_parts = gmk_panel_parts_of(dtype, &parts);
    if (n_parts > 0) {
        gmk_panel_move(parts, n_parts, R, p, plain, r, to_panel);
        return;
    }
    const int has_min = gmk_panel_has_min(dtype), has_qh = gmk_panel_has_qh(dtype);
    const int n_qs = dtype == GMK_DTYPE_Q8_0 ? 32 : 16;
    const int flip = dtype == GMK_DTYPE_Q8_0 && gmk_layout_find(layout)->q8_biased ? 0x80 : 0;
    uint8_t *qs = plain + 2 + 2 * has_min + 4 * has_qh, *pq = p + gmk_panel_qs_at(dtype, R);
    for (int j = 0; j < 2 + 2 * has_min; j++) { /* d, then m: f16 each */
        uint8_t *a = p + 2 * R * (j / 2) + 2 * r + j % 2, *b = plain + j;
        if (to_panel)
            *a = *b;
        else
            *b = *a;
    }
    for (int k = 0; k < n_qs; k++) {
        uint8_t *a = pq + 4 * R * (k / 4) + 4 * r + k % 4;
        if (to_panel)
            *a = (uint8_t)(qs[k] ^ flip);
        else
            qs[k] = (uint8_t)(*a ^ flip);
    }
    if (!has_qh)
        return;
    uint8_t *ph = p + gmk_panel_qh_at(dtype, R), *qh = plain + 2 + 2 * has_min;
    uint32_t h = to_panel ? gmk_load_u32(qh) : 0;
    for (int g = 0; g < 8; g++) {
        for (int i = 0; i < 4; i++) {
            int bit = 4 * r + i; /* in mask g, bytes R/2·g.. */
            uint8_t *m = ph + R / 2 * g + bit / 8;
            if (to_panel)
                *m = (uint8_t)((*m & ~(1u << bit % 8)) | ((h >> (4 * g + i) & 1u) << bit % 8));
            else
                h |= (uint32_t)(*m >> bit % 8 & 1u) << (4 * g + i);
        }
    }
    for (int j = 0; j < 4 && !to_panel; j++)
        qh[j] = (uint8_t)(h >> 8 * j);
}

/* Block b of row r of an (·, n_in) weight W of wdtype, in the packed format,
 * into out (gmk_dtype_block_bytes bytes). */
static inline void gmk_weight_block(uint8_t *restrict out, const void *restrict W, int wdtype,
                                    int64_t r, int64_t n_in, int64_t b)
{
    int dtype = gmk_wdtype_dtype(wdtype);
    int64_t nb = n_in / gmk_dtype_block(dtype);
    size_t bb = gmk_dtype_block_bytes(dtype);
    const int layout = gmk_wdtype_layout(wdtype), R = gmk_layout_rows(layout);
    if (R > 1)
        gmk_panel_swap(dtype, layout,
                       (uint8_t *)gmk_panel_at((const uint8_t *)W, dtype, R, r, nb, b), out,
                       (int)(r % R), 0);
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
    uint8_t blkbuf[256];
    if (blk == 1) { /* f16, bf16: 64 elements at a time out of their panels */
        const int R = gmk_layout_rows(gmk_wdtype_layout(wdtype));
        const uint8_t *row = gmk_panel_at((const uint8_t *)W, dtype, R, r, n_in, 0) +
                             (size_t)(r % R) * bb;
        for (int64_t k = 0; k < len; k += 64) {
            int64_t m = len - k < 64 ? len - k : 64;
            for (int64_t i = 0; i < m; i++)
                memcpy(blkbuf + (size_t)i * bb, row + (size_t)(k0 + k + i) * R * bb, bb);
            gmk_dequantize_row(dtype, blkbuf, dst + k, m);
        }
        return;
    }
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
    const int R = gmk_layout_rows(layout);
    if (nb == n_in) { /* f16, bf16: each panel a transpose, written in order */
        for (int64_t p0 = 0; p0 < n_rows; p0 += R) {
            uint8_t *p = (uint8_t *)dst + (size_t)p0 * (size_t)n_in * bb;
            const int rows = n_rows - p0 < R ? (int)(n_rows - p0) : R;
            for (int64_t k = 0; k < n_in; k++, p += (size_t)R * bb)
                for (int i = 0; i < rows; i++) {
                    const uint8_t *from = (const uint8_t *)src + (size_t)((p0 + i) * n_in + k) * bb;
                    memcpy(p + 2 * (size_t)i, from, 2); /* a move, not a call */
                }
        }
        return;
    }
    const struct gmk_panel_part *parts;
    const int n_parts = gmk_panel_parts_of(dtype, &parts);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *plain = (uint8_t *)src + (size_t)(r * nb + b) * bb;
            uint8_t *p = (uint8_t *)gmk_panel_at((const uint8_t *)dst, dtype, R, r, nb, b);
            if (n_parts > 0) /* the parts looked up once per tensor */
                gmk_panel_move(parts, n_parts, R, p, plain, (int)(r % R), 1);
            else
                gmk_panel_swap(dtype, layout, p, plain, (int)(r % R), 1);
        }
}

#endif /* GMK_LAYOUT_H */
