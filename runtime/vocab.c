/*
 * vocab.c — the tokenizers of Gemma, id-for-id with llama.cpp: SentencePiece
 * for Gemma 1/2/3 (its SPM path, docs/models.md#tokenizer-spm) and BPE for
 * Gemma 4 (its BPE path with the gemma4 pre-tokenizer, docs/models.md#gguf-tokenizer).
 *
 * gmrt_vocab_from_gguf validates the tokenizer.ggml.* metadata
 * (docs/input-checks.md §2.3) and builds an immutable gmrt_vocab: a copy of every
 * piece, an open-addressing hash table text → id, the byte-fallback table,
 * the list of special-token candidates and, for Gemma 4, the merge ranks
 * (vocab_bpe.c).  gmrt_tokenize then (1) cuts the special tokens out of the
 * text exactly as llama.cpp's tokenizer_st_partition does, (2) runs the pair
 * merge on each remaining fragment — ordered by the score of the token a
 * pair forms (SPM) or by the rank of the merge (BPE, per newline run) — and
 * (3) falls back to <0xNN> byte tokens.  Tokenizing allocates per call;
 * gmrt_token_to_piece never allocates.
 */
#include "gmrt.h"
#include "vocab_bpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest text gmrt_tokenize accepts (docs/input-checks.md #48). */
#define TEXT_MAX ((size_t)4 << 20) /* docs/input-checks.md §2.6 #48 */

/* Per-token flag bits, kept beside the GGUF type. */
enum {
    /* llama.cpp's CONTROL or UNKNOWN attribute: matched as text only with
     * parse_special, rendered as "" by token_to_piece. */
    VF_CTRL = 1,
    /* Cut out of the text before the merge (tokenizer_st_partition). */
    VF_SPECIAL = 2,
    /* Handled as a NORMAL token whatever its stored type ("</s>" beside
     * Gemma 4's <|tool_response>, as llama.cpp decides at load). */
    VF_PLAIN = 4
};

/* Special candidates of one piece length.  The partition visits the text
 * once per length (not once per candidate) and hashes a window only when
 * its first, second and last bytes could start, continue and end some
 * candidate of that length.  Index [0] of each bitset covers every
 * candidate, [1] only those matched without parse_special. */
typedef struct len_group {
    uint32_t len;
    int32_t first, end;      /* range in vocab->special */
    uint8_t lead[2][32];
    uint8_t second[2][32];
    uint8_t tail[2][32];
} len_group;

/* One slot of a hash table: id (or -1 when empty) and 32 hash bits that
 * settle most probes without touching the piece bytes. */
typedef struct slot {
    uint32_t tag;
    int32_t id;
} slot;

struct gmrt_vocab {
    int32_t n;
    char *blob;              /* all pieces, back to back */
    size_t *off;             /* piece i is blob[off[i] .. off[i] + len[i]) */
    uint32_t *len;
    float *score;
    uint8_t *type;           /* GMRT_TOKEN_* as stored in the GGUF */
    uint8_t *flags;          /* VF_* */
    slot *table;             /* text → id */
    size_t table_mask;
    uint32_t max_len;        /* longest piece, bounds every lookup */
    int32_t byte_id[256];    /* byte value → its <0xNN> token */
    int32_t *special;        /* candidates: longest first, then by id */
    int32_t n_special;
    slot *sp_table;          /* text → index into special[] */
    size_t sp_mask;
    len_group *groups;       /* one per distinct candidate length, longest first */
    int32_t n_groups;
    /* Where a candidate can start: 1-byte candidates by their byte, longer
     * ones by their first two bytes (bit b0 * 256 + b1).  [0] every
     * candidate, [1] those matched without parse_special. */
    uint8_t single[2][32];
    uint8_t prefix2[2][8192];
    int32_t bos, eos, unk, pad, eot;
    bool add_bos;
    gmrt_bpe *bpe;           /* merge ranks (Gemma 4); NULL for SentencePiece */
};

/* The GGUF arrays and keys the builder works from (borrowed, not owned). */
typedef struct vocab_src {
    const char *const *pieces;
    const uint32_t *lens;
    uint64_t n_pieces;
    const float *scores;
    uint64_t n_scores;
    const int32_t *types;
    uint64_t n_types;
    int64_t ids[4];          /* bos, eos, unknown, padding */
    bool add_bos;
    bool bpe;                /* tokenizer.ggml.model = "gemma4" */
    const char *const *merges;
    const uint32_t *merge_lens;
    uint64_t n_merges;
} vocab_src;

/* The special-id keys, in vocab_src.ids order (also used in messages). */
static const char *const id_keys[4] = {
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};

/* Gemma's ids, used when the GGUF leaves a key out (docs/models.md#gguf-tokenizer). */
static const int64_t id_defaults[4] = {2, 1, 3, 0};

/* llama.cpp gives these texts the CONTROL attribute whatever their stored
 * type, because it treats them as end-of-generation or fill-in-the-middle
 * markers (llama_vocab::impl::load).  Gemma 3 stores "</s>" as
 * USER_DEFINED, so without this list "</s>" would tokenize differently
 * when parse_special is off. */
static const char *const forced_control[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<end_of_utterance>",
    "<|eom_id|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "</s>",
    "[EOS]", "<eos>", "<turn|>", "<|tool_response>", "[e~[",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xe2\x96\x81<PRE>",
    "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>",
    "<fim_suffix>", "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "\xe2\x96\x81<MID>",
    "<|code_middle|>", "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>",
    "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
    "<reponame>", "<|file_sep|>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>"};

/* ------------------------------------------------------------- hashing */

/* FNV's 64-bit prime: odd, so multiplying by it loses no bits mod 2^64. */
#define HASH_BASE 0x100000001B3ull

/* Polynomial hash; bytes count from 1 so that leading NULs change it. */
static uint64_t poly_hash(const char *s, size_t len)
{
    uint64_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * HASH_BASE + (uint64_t)(uint8_t)s[i] + 1;
    return h;
}

/* splitmix64's finalizer spreads the polynomial's weak low bits. */
static uint64_t mix(uint64_t h, size_t len)
{
    uint64_t z = h + (uint64_t)len * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Pieces are not NUL-terminated (a piece may contain NUL): always use
 * them with len[id]. */
static const char *piece(const gmrt_vocab *v, int32_t id)
{
    return v->blob + v->off[id];
}

static bool piece_is(const gmrt_vocab *v, int32_t id, const char *s,
                     size_t len)
{
    return v->len[id] == len && memcmp(piece(v, id), s, len) == 0;
}

/* Finds text s (with mixed hash m) in v->table; -1 if absent. */
static int32_t table_find(const gmrt_vocab *v, uint64_t m, const char *s,
                          size_t len)
{
    uint32_t tag = (uint32_t)(m >> 32);
    for (size_t i = (size_t)m & v->table_mask;; i = (i + 1) & v->table_mask) {
        const slot *e = &v->table[i];
        if (e->id < 0)
            return -1;
        if (e->tag == tag && piece_is(v, e->id, s, len))
            return e->id;
    }
}

/* Text → id for any token type, like llama.cpp's text_to_token.  Texts
 * longer than every piece are rejected before hashing, which keeps the
 * merge loop's failed lookups O(1) in long runs. */
static int32_t token_id(const gmrt_vocab *v, const char *s, size_t len)
{
    if (len == 0 || len > v->max_len)
        return -1;
    return table_find(v, mix(poly_hash(s, len), len), s, len);
}

/* Same for the special table; returns the index into v->special or -1. */
static int32_t special_find(const gmrt_vocab *v, const char *s, size_t len)
{
    uint64_t m = mix(poly_hash(s, len), len);
    uint32_t tag = (uint32_t)(m >> 32);
    for (size_t i = (size_t)m & v->sp_mask;; i = (i + 1) & v->sp_mask) {
        const slot *e = &v->sp_table[i];
        if (e->id < 0)
            return -1;
        if (e->tag == tag && piece_is(v, v->special[e->id], s, len))
            return e->id;
    }
}

/* Smallest power of two >= 2n (n <= 2^20, so this cannot overflow). */
static size_t table_size(size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    return size;
}

/* ------------------------------------------------------------- loading */

/* Declared in vocab_bpe.h, which quotes merges with it too. */
const char *gmrt_vocab_quote(const char *s, size_t len, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len && i < 48 && o + 5 < cap; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Either case: llama.cpp parses byte pieces with strtol(..., 16). */
static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses "<0xNN>" exactly (two hex digits, either case); -1 otherwise. */
static int parse_byte_piece(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

/* Shape checks on the arrays, before anything is allocated. */
static gmrt_status check_arrays(const vocab_src *src, gmrt_diag *d)
{
    uint64_t n = src->n_pieces;
    if (n < GMRT_VOCAB_MIN)
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "vocabulary has %llu tokens; at least %u are needed "
                         "(256 byte tokens)", (unsigned long long)n,
                         GMRT_VOCAB_MIN);
    if (n > GMRT_VOCAB_MAX)
        return gmrt_fail(d, GMRT_ERR_LIMIT,
                         "vocabulary has %llu tokens; the limit is %u",
                         (unsigned long long)n, GMRT_VOCAB_MAX);
    if (src->n_scores != n)
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "tokenizer.ggml.scores has %llu entries but "
                         "tokenizer.ggml.tokens has %llu",
                         (unsigned long long)src->n_scores,
                         (unsigned long long)n);
    if (src->n_types != n)
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "tokenizer.ggml.token_type has %llu entries but "
                         "tokenizer.ggml.tokens has %llu",
                         (unsigned long long)src->n_types,
                         (unsigned long long)n);
    return GMRT_OK;
}

/* Per-token checks; also sums the piece bytes into *out_total. */
static gmrt_status check_tokens(const vocab_src *src, size_t *out_total,
                                gmrt_diag *d)
{
    size_t total = 0;
    for (uint64_t i = 0; i < src->n_pieces; i++) {
        uint32_t len = src->lens[i];
        if (len == 0)
            return gmrt_fail(d, GMRT_ERR_FORMAT, "token %llu has an empty piece",
                             (unsigned long long)i);
        if (len > GMRT_PIECE_MAX)
            return gmrt_fail(d, GMRT_ERR_LIMIT,
                             "token %llu is %u bytes long; the limit is %u",
                             (unsigned long long)i, len, GMRT_PIECE_MAX);
        int32_t t = src->types[i];
        if (t < GMRT_TOKEN_NORMAL || t > GMRT_TOKEN_BYTE)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "token %llu has type %d; types are 1..6",
                             (unsigned long long)i, (int)t);
        if (!isfinite(src->scores[i]))
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "token %llu has a score that is not finite",
                             (unsigned long long)i);
        if (total > SIZE_MAX - len)
            return gmrt_fail(d, GMRT_ERR_LIMIT, "vocabulary pieces overflow size_t");
        total += len;
    }
    *out_total = total;
    return GMRT_OK;
}

/* Special ids, defaults included, must index the vocabulary
 * (docs/input-checks.md #32): they are used as array indices later. */
static gmrt_status check_token_ids(const vocab_src *src, gmrt_diag *d)
{
    for (int k = 0; k < 4; k++) {
        if (src->ids[k] < 0 || (uint64_t)src->ids[k] >= src->n_pieces)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "%s = %lld is outside the vocabulary (%llu tokens)",
                             id_keys[k], (long long)src->ids[k],
                             (unsigned long long)src->n_pieces);
    }
    return GMRT_OK;
}

/* n <= 2^20 and each element is at most 8 bytes, so none of these
 * products can overflow; blob_bytes was summed with a check. */
static gmrt_status alloc_vocab(gmrt_vocab *v, size_t n, size_t blob_bytes,
                               gmrt_diag *d)
{
    v->blob = malloc(blob_bytes);
    v->off = malloc(n * sizeof *v->off);
    v->len = malloc(n * sizeof *v->len);
    v->score = malloc(n * sizeof *v->score);
    v->type = malloc(n);
    v->flags = calloc(n, 1);
    v->table_mask = table_size(n) - 1;
    v->table = malloc((v->table_mask + 1) * sizeof *v->table);
    if (!v->blob || !v->off || !v->len || !v->score || !v->type || !v->flags ||
        !v->table)
        return gmrt_fail(d, GMRT_ERR_NOMEM,
                         "out of memory for a vocabulary of %zu tokens", n);
    for (size_t i = 0; i <= v->table_mask; i++)
        v->table[i].id = -1;
    return GMRT_OK;
}

/* Inserts token id; a second token with the same piece is a load error
 * (llama.cpp #24885 aborted on it). */
static gmrt_status table_insert(gmrt_vocab *v, int32_t id, gmrt_diag *d)
{
    const char *s = piece(v, id);
    size_t len = v->len[id];
    uint64_t m = mix(poly_hash(s, len), len);
    int32_t other = table_find(v, m, s, len);
    if (other >= 0) {
        char q[200];
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "duplicate token piece \"%s\": ids %d and %d",
                         gmrt_vocab_quote(s, len, q, sizeof q), (int)other, (int)id);
    }
    size_t i = (size_t)m & v->table_mask;
    while (v->table[i].id >= 0)
        i = (i + 1) & v->table_mask;
    v->table[i].tag = (uint32_t)(m >> 32);
    v->table[i].id = id;
    return GMRT_OK;
}

/* Copies pieces, scores and types in and fills the hash table. */
static gmrt_status fill_tokens(gmrt_vocab *v, const vocab_src *src,
                               gmrt_diag *d)
{
    size_t at = 0;
    for (int32_t i = 0; i < v->n; i++) {
        v->off[i] = at;
        v->len[i] = src->lens[i];
        memcpy(v->blob + at, src->pieces[i], src->lens[i]);
        at += src->lens[i];
        v->score[i] = src->scores[i];
        v->type[i] = (uint8_t)src->types[i];
        if (v->len[i] > v->max_len)
            v->max_len = v->len[i];
        gmrt_status st = table_insert(v, i, d);
        if (st != GMRT_OK)
            return st;
    }
    return GMRT_OK;
}

/* Every BYTE token must read <0xNN>; all 256 values exactly once
 * (docs/input-checks.md #33). */
static gmrt_status fill_bytes(gmrt_vocab *v, gmrt_diag *d)
{
    char q[200];
    for (int b = 0; b < 256; b++)
        v->byte_id[b] = -1;
    for (int32_t i = 0; i < v->n; i++) {
        if (v->type[i] != GMRT_TOKEN_BYTE)
            continue;
        int b = parse_byte_piece(piece(v, i), v->len[i]);
        if (b < 0)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "byte token %d has piece \"%s\"; expected <0xNN>",
                             (int)i, gmrt_vocab_quote(piece(v, i), v->len[i], q, sizeof q));
        if (v->byte_id[b] >= 0)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "byte 0x%02X has two tokens: %d and %d", b,
                             (int)v->byte_id[b], (int)i);
        v->byte_id[b] = i;
    }
    for (int b = 0; b < 256; b++) {
        if (v->byte_id[b] < 0)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "the vocabulary has no byte token <0x%02X>", b);
    }
    return GMRT_OK;
}

/* CONTROL/UNKNOWN types and the forced names are "control" for matching
 * and rendering; those plus USER_DEFINED are partition candidates. */
static void mark_special(gmrt_vocab *v)
{
    for (int32_t i = 0; i < v->n; i++) {
        if (v->type[i] == GMRT_TOKEN_CONTROL || v->type[i] == GMRT_TOKEN_UNKNOWN)
            v->flags[i] |= VF_CTRL;
    }
    size_t n_forced = sizeof forced_control / sizeof forced_control[0];
    for (size_t k = 0; k < n_forced; k++) {
        int32_t id = token_id(v, forced_control[k], strlen(forced_control[k]));
        if (id >= 0)
            v->flags[id] |= VF_CTRL;
    }
    /* llama.cpp then takes "</s>" back out when <|tool_response> (Gemma 4)
     * is an end-of-generation token too: there "</s>" is ordinary text,
     * its attribute set to NORMAL whatever the stored type. */
    int32_t tool = token_id(v, "<|tool_response>", 16), eos_s = token_id(v, "</s>", 4);
    if (tool >= 0 && eos_s >= 0)
        v->flags[eos_s] = VF_PLAIN;
    for (int32_t i = 0; i < v->n; i++) {
        bool user = v->type[i] == GMRT_TOKEN_USER_DEFINED && !(v->flags[i] & VF_PLAIN);
        if ((v->flags[i] & VF_CTRL) || user) {
            v->flags[i] |= VF_SPECIAL;
            v->n_special++;
        }
    }
}

/* Sort key of a candidate: longest piece first, as llama.cpp's
 * cache_special_tokens; equal lengths by id, so that the order does not
 * depend on the sort algorithm. */
static uint64_t special_key(const gmrt_vocab *v, int32_t id)
{
    return ((uint64_t)(UINT32_MAX - v->len[id]) << 32) | (uint32_t)id;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Bitsets of bytes (32 bytes) or byte pairs (8 KiB): the filters that let
 * the partition skip almost every position of ordinary text. */
static void set_bit(uint8_t *bits, size_t i)
{
    bits[i >> 3] = (uint8_t)(bits[i >> 3] | (1u << (i & 7)));
}

static bool has_bit(const uint8_t *bits, size_t i)
{
    return (bits[i >> 3] >> (i & 7)) & 1;
}

/* Groups the sorted candidates by length and indexes them by text.  The
 * [1] filters leave control candidates out, because without parse_special
 * llama.cpp does not look for them at all. */
static void build_groups(gmrt_vocab *v)
{
    for (int32_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special[k];
        const char *s = piece(v, id);
        len_group *g = v->n_groups ? &v->groups[v->n_groups - 1] : NULL;
        if (!g || g->len != v->len[id]) {
            g = &v->groups[v->n_groups++];
            memset(g, 0, sizeof *g);
            g->len = v->len[id];
            g->first = k;
        }
        g->end = k + 1;
        for (int u = 0; u < 2; u++) {
            if (u == 1 && (v->flags[id] & VF_CTRL))
                break;
            set_bit(g->lead[u], (uint8_t)s[0]);
            set_bit(g->second[u], (uint8_t)s[g->len > 1 ? 1 : 0]);
            set_bit(g->tail[u], (uint8_t)s[g->len - 1]);
            if (g->len == 1)
                set_bit(v->single[u], (uint8_t)s[0]);
            else
                set_bit(v->prefix2[u], (size_t)(uint8_t)s[0] << 8 | (uint8_t)s[1]);
        }
        uint64_t m = mix(poly_hash(s, v->len[id]), v->len[id]);
        size_t i = (size_t)m & v->sp_mask;
        while (v->sp_table[i].id >= 0)
            i = (i + 1) & v->sp_mask;
        v->sp_table[i].tag = (uint32_t)(m >> 32);
        v->sp_table[i].id = k;
    }
}

/* Marks, sorts and indexes the special candidates.  The sort goes through
 * packed 64-bit keys so that qsort needs no context pointer (C11 has no
 * qsort_r) and the result does not depend on qsort's stability. */
static gmrt_status build_specials(gmrt_vocab *v, gmrt_diag *d)
{
    mark_special(v);
    size_t ns = (size_t)v->n_special;
    v->special = malloc((ns ? ns : 1) * sizeof *v->special);
    /* One group per distinct piece length, and lengths are capped. */
    size_t ng = ns < GMRT_PIECE_MAX ? ns : GMRT_PIECE_MAX;
    v->groups = malloc((ng ? ng : 1) * sizeof *v->groups);
    v->sp_mask = table_size(ns) - 1;
    v->sp_table = malloc((v->sp_mask + 1) * sizeof *v->sp_table);
    if (!v->special || !v->groups || !v->sp_table)
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory for special tokens");
    for (size_t i = 0; i <= v->sp_mask; i++)
        v->sp_table[i].id = -1;
    uint64_t *keys = malloc((ns ? ns : 1) * sizeof *keys);
    if (!keys)
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory for special tokens");
    size_t k = 0;
    for (int32_t i = 0; i < v->n; i++) {
        if (v->flags[i] & VF_SPECIAL)
            keys[k++] = special_key(v, i);
    }
    qsort(keys, ns, sizeof *keys, cmp_u64);
    for (k = 0; k < ns; k++)
        v->special[k] = (int32_t)(keys[k] & UINT32_MAX);
    free(keys);
    build_groups(v);
    return GMRT_OK;
}

/* Builds a vocabulary from the GGUF's arrays.
 * Every check runs before the big allocations, so a hostile file costs
 * nothing but the diagnostic; on failure nothing is left allocated. */
static gmrt_status vocab_build(const vocab_src *src, gmrt_vocab **out,
                               gmrt_diag *d)
{
    *out = NULL;
    size_t blob_bytes = 0;
    gmrt_status st = check_arrays(src, d);
    if (st == GMRT_OK)
        st = check_tokens(src, &blob_bytes, d);
    if (st == GMRT_OK)
        st = check_token_ids(src, d);
    if (st != GMRT_OK)
        return st;
    gmrt_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory for the vocabulary");
    v->n = (int32_t)src->n_pieces;
    st = alloc_vocab(v, (size_t)v->n, blob_bytes ? blob_bytes : 1, d);
    if (st == GMRT_OK)
        st = fill_tokens(v, src, d);
    if (st == GMRT_OK)
        st = fill_bytes(v, d);
    if (st == GMRT_OK)
        st = build_specials(v, d);
    if (st == GMRT_OK && src->bpe)
        st = gmrt_bpe_create(v, src->merges, src->merge_lens, src->n_merges,
                             &v->bpe, d);
    if (st != GMRT_OK) {
        gmrt_vocab_destroy(v);
        return st;
    }
    v->bos = (int32_t)src->ids[0];
    v->eos = (int32_t)src->ids[1];
    v->unk = (int32_t)src->ids[2];
    v->pad = (int32_t)src->ids[3];
    /* llama.cpp finds the end-of-turn token by its text, not by a key:
     * <end_of_turn> up to Gemma 3, <turn|> in Gemma 4. */
    v->eot = token_id(v, "<end_of_turn>", 13);
    if (v->eot < 0)
        v->eot = token_id(v, "<turn|>", 7);
    v->add_bos = src->add_bos;
    *out = v;
    return GMRT_OK;
}

/* Reads an optional integer key, keeping *id when the key is absent. */
static gmrt_status get_opt_id(const gmrt_gguf *g, const char *key, int64_t *id,
                              gmrt_diag *d)
{
    if (!gmrt_gguf_has_key(g, key))
        return GMRT_OK;
    return gmrt_gguf_get_int(g, key, id, d);
}

/* Same for a boolean flag: absent keeps the default, a present key of the
 * wrong type is an error (not silently the default). */
static gmrt_status get_opt_bool(const gmrt_gguf *g, const char *key, bool *b,
                                gmrt_diag *d)
{
    if (!gmrt_gguf_has_key(g, key))
        return GMRT_OK;
    return gmrt_gguf_get_bool(g, key, b, d);
}

/* The scalar keys: model name, flags, special ids. */
static gmrt_status read_flags(const gmrt_gguf *g, vocab_src *src, gmrt_diag *d)
{
    const char *model = NULL;
    gmrt_status st = gmrt_gguf_get_str(g, "tokenizer.ggml.model", &model, d);
    if (st != GMRT_OK)
        return st;
    src->bpe = strcmp(model, "gemma4") == 0;
    if (strcmp(model, "llama") != 0 && !src->bpe)
        return gmrt_fail(d, GMRT_ERR_UNSUPPORTED,
                         "tokenizer model \"%s\" is not supported; only \"llama\" "
                         "(SentencePiece) and \"gemma4\" (BPE) are", model);
    bool space_prefix = false, add_eos = false;
    src->add_bos = true;
    st = get_opt_bool(g, "tokenizer.ggml.add_bos_token", &src->add_bos, d);
    /* llama.cpp turns BOS on for Gemma 4 whatever the key says (PR 21500). */
    if (src->bpe)
        src->add_bos = true;
    if (st == GMRT_OK)
        st = get_opt_bool(g, "tokenizer.ggml.add_space_prefix", &space_prefix, d);
    if (st == GMRT_OK)
        st = get_opt_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, d);
    if (st != GMRT_OK)
        return st;
    /* Both would change the ids (a leading space, a trailing <eos>); every
     * Gemma GGUF sets them false, so they are refused rather than guessed. */
    if (space_prefix)
        return gmrt_fail(d, GMRT_ERR_UNSUPPORTED,
                         "tokenizer.ggml.add_space_prefix = true is not supported");
    if (add_eos)
        return gmrt_fail(d, GMRT_ERR_UNSUPPORTED,
                         "tokenizer.ggml.add_eos_token = true is not supported");
    for (int k = 0; k < 4 && st == GMRT_OK; k++) {
        src->ids[k] = id_defaults[k];
        st = get_opt_id(g, id_keys[k], &src->ids[k], d);
    }
    return st;
}

gmrt_status gmrt_vocab_from_gguf(const gmrt_gguf *g, gmrt_vocab **out,
                                 gmrt_diag *diag)
{
    if (!out)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_vocab_from_gguf: out is NULL");
    *out = NULL;
    if (!g)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_vocab_from_gguf: no GGUF");
    /* The arrays stay owned by g; vocab_build copies what it keeps, so the
     * vocabulary may outlive the GGUF. */
    vocab_src src;
    memset(&src, 0, sizeof src);
    gmrt_status st = read_flags(g, &src, diag);
    if (st == GMRT_OK)
        st = gmrt_gguf_get_strs(g, "tokenizer.ggml.tokens", &src.pieces,
                                &src.lens, &src.n_pieces, diag);
    if (st == GMRT_OK)
        st = gmrt_gguf_get_f32s(g, "tokenizer.ggml.scores", &src.scores,
                                &src.n_scores, diag);
    if (st == GMRT_OK)
        st = gmrt_gguf_get_i32s(g, "tokenizer.ggml.token_type", &src.types,
                                &src.n_types, diag);
    if (st == GMRT_OK && src.bpe)
        st = gmrt_gguf_get_strs(g, "tokenizer.ggml.merges", &src.merges,
                                &src.merge_lens, &src.n_merges, diag);
    if (st != GMRT_OK)
        return st;
    return vocab_build(&src, out, diag);
}

/* Also frees half-built vocabularies (vocab_build's error path), so every
 * pointer is either NULL (calloc) or owned. */
void gmrt_vocab_destroy(gmrt_vocab *v)
{
    if (!v)
        return;
    free(v->blob);
    free(v->off);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->flags);
    free(v->table);
    free(v->special);
    free(v->sp_table);
    free(v->groups);
    gmrt_bpe_destroy(v->bpe);
    free(v);
}

/* The accessors tolerate NULL so that a caller's error path cannot crash. */
int32_t gmrt_vocab_size(const gmrt_vocab *v) { return v ? v->n : 0; }
int32_t gmrt_vocab_bos(const gmrt_vocab *v) { return v ? v->bos : -1; }
int32_t gmrt_vocab_eos(const gmrt_vocab *v) { return v ? v->eos : -1; }
int32_t gmrt_vocab_eot(const gmrt_vocab *v) { return v ? v->eot : -1; }
bool gmrt_vocab_add_bos(const gmrt_vocab *v) { return v && v->add_bos; }
bool gmrt_vocab_is_bpe(const gmrt_vocab *v) { return v && v->bpe; }

/* Exact text lookup, e.g. for "<start_of_turn>" or a stop string. */
int32_t gmrt_vocab_find(const gmrt_vocab *v, const char *text, size_t len)
{
    if (!v || !text)
        return -1;
    return token_id(v, text, len);
}

/* The type as stored (so "</s>" reads USER_DEFINED even though it is
 * handled as control); 0 for an id outside the vocabulary. */
int32_t gmrt_vocab_type(const gmrt_vocab *v, int32_t id)
{
    if (!v || id < 0 || id >= v->n)
        return 0;
    return v->type[id];
}

/* ----------------------------------------------------- tokenize: output */

/* Ids go to out while they fit; n keeps counting past cap so that the
 * caller learns the size it needs. */
typedef struct emitter {
    int32_t *out;
    size_t cap, n;
} emitter;

static void emit(emitter *e, int32_t id)
{
    if (e->n < e->cap)
        e->out[e->n] = id;
    e->n++;
}

/* ------------------------------------------- tokenize: special tokens */

/* A special token cut out of the text at pos. */
typedef struct match {
    size_t pos;
    int32_t rank;            /* index into vocab->special */
} match;

/* A growable array; realloc failures surface as NOMEM from gmrt_tokenize. */
typedef struct match_list {
    match *m;
    size_t n, cap;
} match_list;

/* Appends, doubling the capacity; false when out of memory. */
static bool list_push(match_list *l, size_t pos, int32_t rank)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        match *m = realloc(l->m, cap * sizeof *m);
        if (!m)
            return false;
        l->m = m;
        l->cap = cap;
    }
    l->m[l->n].pos = pos;
    l->m[l->n].rank = rank;
    l->n++;
    return true;
}

/* Orders one length's occurrences candidate by candidate (the order
 * llama.cpp cuts them in), left to right within a candidate. */
static int cmp_rank_pos(const void *a, const void *b)
{
    const match *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Text order, for emitting the cuts between the fragments. */
static int cmp_pos(const void *a, const void *b)
{
    const match *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Partition state: taken[i] is 1 once byte i belongs to a special token. */
typedef struct partition {
    const gmrt_vocab *v;
    const char *text;
    size_t len;
    bool parse_special;      /* the candidate filters include control tokens */
    /* When marked, a control token is taken only where it starts at one of
     * the n_ctrl ascending offsets ctrl_at (a template's own markup). */
    bool marked;
    const size_t *ctrl_at;
    size_t n_ctrl;
    uint8_t *taken;
    uint32_t *starts;        /* where a candidate may start, ascending */
    size_t n_starts;
    match_list found;        /* this length's occurrences (scratch) */
    match_list cut;          /* accepted special tokens, all lengths */
} partition;

/* Could a group-g candidate occupy text[p, p+L)?  Byte filters first, then
 * the two ends: candidates are visited longest first, so an earlier cut
 * overlapping [p, p+L) has length >= L and covers p or p+L-1. */
static bool window_open(const partition *pt, const len_group *g, size_t p)
{
    const uint8_t *t = (const uint8_t *)pt->text + p;
    size_t L = g->len;
    int u = pt->parse_special ? 0 : 1;
    return has_bit(g->lead[u], t[0]) && has_bit(g->tail[u], t[L - 1]) &&
           (L == 1 || has_bit(g->second[u], t[1])) && !pt->taken[p] &&
           !pt->taken[p + L - 1];
}

/* May a control token start at text[p]?  Anywhere with parse_special,
 * else only at the template's offsets (binary search). */
static bool ctrl_allowed(const partition *pt, size_t p)
{
    if (!pt->marked)
        return true;
    size_t lo = 0, hi = pt->n_ctrl;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pt->ctrl_at[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pt->n_ctrl && pt->ctrl_at[lo] == p;
}

/* Collects every occurrence of a group-g candidate whose window is open. */
static bool scan_group(partition *pt, const len_group *g)
{
    const gmrt_vocab *v = pt->v;
    size_t L = g->len;
    pt->found.n = 0;
    for (size_t i = 0; i < pt->n_starts; i++) {
        size_t p = pt->starts[i];
        if (p + L > pt->len)
            break;
        if (!window_open(pt, g, p))
            continue;
        int32_t k = special_find(v, pt->text + p, L);
        bool ok = k >= 0 && (!(v->flags[v->special[k]] & VF_CTRL) ||
                             (pt->parse_special && ctrl_allowed(pt, p)));
        if (ok && !list_push(&pt->found, p, k))
            return false;
    }
    return true;
}

/* Accepts the collected occurrences as llama.cpp would: candidate by
 * candidate (rank order), each leftmost-first and non-overlapping. */
static bool accept_group(partition *pt, size_t L)
{
    match_list *f = &pt->found;
    bool mixed = false;
    for (size_t i = 1; i < f->n && !mixed; i++)
        mixed = f->m[i].rank != f->m[0].rank;
    if (mixed)
        qsort(f->m, f->n, sizeof *f->m, cmp_rank_pos);
    for (size_t i = 0; i < f->n; i++) {
        /* Re-checked: cuts of this length (earlier rank, or the same
         * candidate further left) may have closed the window since. */
        size_t p = f->m[i].pos;
        if (pt->taken[p] || pt->taken[p + L - 1])
            continue;
        memset(pt->taken + p, 1, L);
        if (!list_push(&pt->cut, p, f->m[i].rank))
            return false;
    }
    return true;
}

/* Can some candidate start at text[i]?  Judged by the byte (1-byte
 * candidates) or the first two bytes (longer ones). */
static bool may_start(const partition *pt, size_t i)
{
    int u = pt->parse_special ? 0 : 1;
    uint8_t c = (uint8_t)pt->text[i];
    if (has_bit(pt->v->single[u], c))
        return true;
    return i + 1 < pt->len &&
           has_bit(pt->v->prefix2[u], (size_t)c << 8 | (uint8_t)pt->text[i + 1]);
}

/* Lists the positions where a candidate may start; only those are visited
 * per length, so ordinary text costs one pass. */
static bool list_starts(partition *pt)
{
    size_t n = 0;
    for (size_t i = 0; i < pt->len; i++)
        n += may_start(pt, i);
    pt->starts = malloc((n ? n : 1) * sizeof *pt->starts);
    if (!pt->starts)
        return false;
    for (size_t i = 0; i < pt->len; i++) {
        if (may_start(pt, i))
            pt->starts[pt->n_starts++] = (uint32_t)i;
    }
    return true;
}

/* Forgets start positions inside accepted cuts: no later (shorter)
 * candidate can start there, and runs such as 10k newlines would
 * otherwise be rescanned once per length. */
static void drop_taken_starts(partition *pt)
{
    size_t k = 0;
    for (size_t i = 0; i < pt->n_starts; i++) {
        if (!pt->taken[pt->starts[i]])
            pt->starts[k++] = pt->starts[i];
    }
    pt->n_starts = k;
}

/* Fills pt->cut with the special tokens of the text, sorted by position.
 * Returns false only when out of memory. */
static bool find_specials(partition *pt)
{
    const gmrt_vocab *v = pt->v;
    if (!list_starts(pt))
        return false;
    for (int32_t gi = 0; gi < v->n_groups && pt->n_starts > 0; gi++) {
        const len_group *g = &v->groups[gi];
        if (g->len > pt->len)
            continue;
        size_t before_cut = pt->cut.n;
        if (!scan_group(pt, g) || !accept_group(pt, g->len))
            return false;
        if (pt->cut.n > before_cut)
            drop_taken_starts(pt);
    }
    if (pt->cut.n > 1)
        qsort(pt->cut.m, pt->cut.n, sizeof *pt->cut.m, cmp_pos);
    return true;
}

/* ---------------------------------------------- tokenize: pair merging */

/* One symbol of a fragment: a byte range of the escaped text.  Merging
 * absorbs the right neighbour into the left, so ranges stay contiguous and
 * a symbol keeps its index (which breaks score ties, as in llama.cpp). */
typedef struct sym {
    uint32_t off, n;         /* n == 0 once merged away */
    int32_t prev, next;
} sym;

/* A queued pair (left symbol, its next), keyed by the score of the token
 * the two would form (SPM) or by minus the merge's rank (BPE: ranks are
 * below 2^24, so exact in a float).  The key lives in the entry so that
 * sifting reads the heap array only. */
typedef struct pair {
    float score;
    int32_t left;
} pair;

/* Scratch for one fragment, sized for the largest fragment of the text. */
typedef struct spm {
    const gmrt_vocab *v;
    char *esc;               /* fragment with ' ' → U+2581 */
    sym *s;
    int32_t *sid;            /* BPE only: each symbol's token, or -1 */
    int32_t *hpos;           /* per symbol: index of its pair in heap, or -1 */
    pair *heap;              /* 4-ary: fewer levels, children share a line */
    int32_t n_heap;
} spm;

/* llama.cpp's unicode_len_utf8: the lead byte's high nibble gives the
 * length; continuation and invalid bytes count as one. */
static uint32_t utf8_seq_len(uint8_t c)
{
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                     1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Heap order: higher score first (lower rank for BPE); ties go to the
 * leftmost pair, in both of llama.cpp's tokenizers.
 * llama.cpp keeps stale entries and skips them when popped; this heap
 * holds at most one live entry per left symbol instead (updated in place),
 * which pops the same pairs in the same order with bounded memory: two
 * live pairs never share a left symbol, so the order is total. */
static bool before(pair a, pair b)
{
    return a.score > b.score || (a.score == b.score && a.left < b.left);
}

/* Every move goes through here so that hpos always mirrors the heap. */
static void heap_place(spm *m, int32_t pos, pair e)
{
    m->heap[pos] = e;
    m->hpos[e.left] = pos;
}

/* Sifts (hole method: the moving entry is written once at the end). */
static void heap_up(spm *m, int32_t pos)
{
    pair e = m->heap[pos];
    while (pos > 0) {
        int32_t parent = (pos - 1) / 4;
        if (!before(e, m->heap[parent]))
            break;
        heap_place(m, pos, m->heap[parent]);
        pos = parent;
    }
    heap_place(m, pos, e);
}

static void heap_down(spm *m, int32_t pos)
{
    pair e = m->heap[pos];
    for (;;) {
        int32_t first = 4 * pos + 1, c = first;
        if (first >= m->n_heap)
            break;
        int32_t last = first + 4 < m->n_heap ? first + 4 : m->n_heap;
        for (int32_t k = first + 1; k < last; k++) {
            if (before(m->heap[k], m->heap[c]))
                c = k;
        }
        if (!before(m->heap[c], e))
            break;
        heap_place(m, pos, m->heap[c]);
        pos = c;
    }
    heap_place(m, pos, e);
}

/* Drops left's pair, if queued: the last entry fills the hole and may
 * need to move either way. */
static void heap_remove(spm *m, int32_t left)
{
    int32_t pos = m->hpos[left];
    if (pos < 0)
        return;
    m->hpos[left] = -1;
    pair last = m->heap[--m->n_heap];
    if (last.left == left)
        return;
    heap_place(m, pos, last);
    heap_up(m, pos);
    heap_down(m, m->hpos[last.left]);
}

/* Key of the pair of l and its next symbol, or false if they do not merge:
 * SPM merges when the two form a token, and keys by its score; BPE merges
 * when the two tokens are a listed merge, and keys by its rank. */
static bool pair_score(const spm *m, int32_t l, float *score)
{
    int32_t r = m->s[l].next;
    if (r < 0)
        return false;
    if (m->v->bpe) {
        int32_t rank = gmrt_bpe_rank(m->v->bpe, m->sid[l], m->sid[r], NULL);
        *score = -(float)rank;
        return rank >= 0;
    }
    int32_t id = token_id(m->v, m->esc + m->s[l].off,
                        (size_t)m->s[l].n + m->s[r].n);
    if (id < 0)
        return false;
    *score = m->v->score[id];
    return true;
}

/* Re-keys l's pair after l or its neighbour changed: updated in place,
 * added, or dropped when the two no longer form a token. */
static void requeue(spm *m, int32_t l)
{
    float score;
    if (l < 0)
        return;
    if (!pair_score(m, l, &score)) {
        heap_remove(m, l);
        return;
    }
    pair e = {score, l};
    int32_t pos = m->hpos[l];
    if (pos < 0) {
        pos = m->n_heap++;
        heap_place(m, pos, e);
        heap_up(m, pos);
        return;
    }
    bool up = before(e, m->heap[pos]);
    m->heap[pos] = e;
    if (up)
        heap_up(m, pos);
    else
        heap_down(m, pos);
}

/* Splits esc[base, base + len) into UTF-8 characters and heapifies the
 * mergeable pairs in O(n).  Returns the number of symbols. */
static int32_t split_chars(spm *m, size_t base, size_t len)
{
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = utf8_seq_len((uint8_t)m->esc[base + off]);
        if (cl > len - off)
            cl = len - off;
        sym *s = &m->s[n];
        s->off = (uint32_t)(base + off);
        s->n = (uint32_t)cl;
        s->prev = n - 1;
        if (m->v->bpe)
            m->sid[n] = token_id(m->v, m->esc + base + off, cl);
        off += cl;
        s->next = off == len ? -1 : n + 1;
        m->hpos[n] = -1;
    }
    m->n_heap = 0;
    for (int32_t i = 0; i + 1 < n; i++) {
        float score;
        if (pair_score(m, i, &score))
            heap_place(m, m->n_heap++, (pair){score, i});
    }
    for (int32_t pos = (m->n_heap - 2) / 4; m->n_heap > 1 && pos >= 0; pos--)
        heap_down(m, pos);
    return n;
}

/* Merges the best pair until none is left (llm_tokenizer_spm_session). */
static void merge_all(spm *m)
{
    while (m->n_heap > 0) {
        /* Every queued pair is live, so the top can be merged at once. */
        int32_t l = m->heap[0].left;
        sym *ls = &m->s[l];
        int32_t r = ls->next;
        if (m->v->bpe)   /* the merge's result, checked to be a token at load */
            gmrt_bpe_rank(m->v->bpe, m->sid[l], m->sid[r], &m->sid[l]);
        heap_remove(m, r);   /* r's own pair dies with r */
        ls->n += m->s[r].n;
        m->s[r].n = 0;
        ls->next = m->s[r].next;
        if (ls->next >= 0)
            m->s[ls->next].prev = l;
        /* Only the two pairs touching the grown symbol change key. */
        requeue(m, l);
        requeue(m, ls->prev);
    }
}

/* Escapes one raw fragment, merges it and emits its ids. */
static void tokenize_fragment(spm *m, const char *raw, size_t len, emitter *e)
{
    /* Only U+0020 is escaped (llama_escape_whitespace): no other
     * normalization, and no dummy prefix since add_space_prefix is off. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == ' ') {
            memcpy(m->esc + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            m->esc[n++] = raw[i];
        }
    }
    if (split_chars(m, 0, n) == 0)
        return;
    merge_all(m);
    for (int32_t i = 0; i != -1; i = m->s[i].next) {
        const char *t = m->esc + m->s[i].off;
        int32_t id = token_id(m->v, t, m->s[i].n);
        if (id >= 0) {
            emit(e, id);
            continue;
        }
        /* Only unmerged characters get here: merges always form tokens. */
        for (uint32_t j = 0; j < m->s[i].n; j++)
            emit(e, m->v->byte_id[(uint8_t)t[j]]);
    }
}

/* Emits the symbols of a merged BPE run: each one's token, or the bytes
 * of a character that no token spells (merges always form tokens, so only
 * unmerged characters lack an id). */
static void emit_bpe_symbols(const spm *m, emitter *e)
{
    for (int32_t i = 0; i != -1; i = m->s[i].next) {
        if (m->sid[i] >= 0) {
            emit(e, m->sid[i]);
            continue;
        }
        const char *t = m->esc + m->s[i].off;
        for (uint32_t j = 0; j < m->s[i].n; j++)
            emit(e, m->v->byte_id[(uint8_t)t[j]]);
    }
}

/* Gemma 4: normalizes one raw fragment (spaces escaped, invalid UTF-8
 * replaced), cuts it into runs of newlines and runs of anything else
 * (llama.cpp's pre-split [^\n]+|[\n]+) and merges each run by rank. */
static void tokenize_fragment_bpe(spm *m, const char *raw, size_t len,
                                  emitter *e)
{
    size_t n = gmrt_bpe_normalize(raw, len, m->esc);
    size_t at = 0;
    while (at < n) {
        bool nl = m->esc[at] == '\n';
        size_t end = at + 1;
        while (end < n && (m->esc[end] == '\n') == nl)
            end++;
        /* A run of newlines that is itself a token is emitted whole
         * (llama.cpp PR 21343); other runs go through the merges. */
        int32_t id = nl ? token_id(m->v, m->esc + at, end - at) : -1;
        if (id >= 0) {
            emit(e, id);
        } else {
            split_chars(m, at, end - at);
            merge_all(m);
            emit_bpe_symbols(m, e);
        }
        at = end;
    }
}

/* ------------------------------------------------------ tokenize: main */

/* Bytes the escaped form of raw[0..len) needs. */
static size_t escaped_len(const char *raw, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        n += raw[i] == ' ' ? 2 : 0;
    return n;
}

/* Sizes the merge scratch for the largest fragment between the cuts.
 * SPM: every escaped byte may be a symbol.  BPE: normalizing writes at
 * most 3 bytes per raw byte, and each raw byte yields at most one
 * character, so the symbol arrays need only the raw length. */
static void scratch_size(const partition *pt, size_t *out_esc, size_t *out_syms)
{
    size_t best = 0, at = 0;
    bool bpe = pt->v->bpe != NULL;
    for (size_t i = 0; i <= pt->cut.n; i++) {
        size_t end = i < pt->cut.n ? pt->cut.m[i].pos : pt->len;
        size_t el = bpe ? end - at : escaped_len(pt->text + at, end - at);
        if (el > best)
            best = el;
        if (i < pt->cut.n)
            at = end + pt->v->len[pt->v->special[pt->cut.m[i].rank]];
    }
    *out_esc = bpe ? 3 * best : best;   /* best <= TEXT_MAX: no overflow */
    *out_syms = best;
}

/* Scratch for fragments of up to esc_cap escaped bytes and sym_cap
 * symbols (sid only for BPE). */
static bool spm_init(spm *m, const gmrt_vocab *v, size_t esc_cap,
                     size_t sym_cap)
{
    size_t n = sym_cap ? sym_cap : 1;
    m->v = v;
    m->esc = malloc(esc_cap ? esc_cap : 1);
    m->s = malloc(n * sizeof *m->s);
    m->sid = v->bpe ? malloc(n * sizeof *m->sid) : NULL;
    m->hpos = malloc(n * sizeof *m->hpos);
    m->heap = malloc(n * sizeof *m->heap);
    m->n_heap = 0;
    return m->esc && m->s && (m->sid || !v->bpe) && m->hpos && m->heap;
}

/* Safe after a failed spm_init: free(NULL) is a no-op. */
static void spm_free(spm *m)
{
    free(m->esc);
    free(m->s);
    free(m->sid);
    free(m->hpos);
    free(m->heap);
}

/* Emits fragments and special tokens in text order. */
static gmrt_status run_fragments(partition *pt, emitter *e, gmrt_diag *d)
{
    const gmrt_vocab *v = pt->v;
    spm m;
    size_t esc_cap, sym_cap;
    scratch_size(pt, &esc_cap, &sym_cap);
    if (!spm_init(&m, v, esc_cap, sym_cap)) {
        spm_free(&m);
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory tokenizing %zu bytes",
                         pt->len);
    }
    size_t at = 0;
    for (size_t i = 0; i <= pt->cut.n; i++) {
        size_t end = i < pt->cut.n ? pt->cut.m[i].pos : pt->len;
        if (end > at && v->bpe)
            tokenize_fragment_bpe(&m, pt->text + at, end - at, e);
        else if (end > at)
            tokenize_fragment(&m, pt->text + at, end - at, e);
        if (i < pt->cut.n) {
            int32_t id = v->special[pt->cut.m[i].rank];
            emit(e, id);
            at = end + v->len[id];
        }
    }
    spm_free(&m);
    return GMRT_OK;
}

/* Argument checks; the length cap comes before any allocation or pass
 * over the text (docs/input-checks.md #48). */
static gmrt_status check_tokenize_args(const gmrt_vocab *v, const char *text,
                                       size_t len, const int32_t *out,
                                       size_t cap, size_t *out_n, gmrt_diag *d)
{
    if (!v || !out_n)
        return gmrt_fail(d, GMRT_ERR_ARG, "gmrt_tokenize: vocab or out_n is NULL");
    *out_n = 0;
    if (!text && len > 0)
        return gmrt_fail(d, GMRT_ERR_ARG, "gmrt_tokenize: text is NULL");
    if (!out && cap > 0)
        return gmrt_fail(d, GMRT_ERR_ARG, "gmrt_tokenize: out is NULL");
    if (len > TEXT_MAX)
        return gmrt_fail(d, GMRT_ERR_LIMIT,
                         "text is %zu bytes; the tokenizer accepts at most %zu",
                         len, TEXT_MAX);
    return GMRT_OK;
}

/* BOS, then the partition, then the fragments in order.  The id count is
 * kept in size_t all the way (docs/input-checks.md #50), and a short buffer
 * still gets the full count so that the caller can retry once.  With
 * marked, control tokens are taken at the offsets ctrl_at only. */
static gmrt_status tokenize(const gmrt_vocab *v, const char *text, size_t len,
                            bool add_bos, bool parse_special, bool marked,
                            const size_t *ctrl_at, size_t n_ctrl, int32_t *out,
                            size_t cap, size_t *out_n, gmrt_diag *diag)
{
    gmrt_status st = check_tokenize_args(v, text, len, out, cap, out_n, diag);
    if (st != GMRT_OK)
        return st;
    if (!ctrl_at && n_ctrl > 0)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_tokenize_marked: ctrl_at is NULL");
    for (size_t i = 0; i < n_ctrl; i++) {
        if (ctrl_at[i] >= len || (i > 0 && ctrl_at[i] <= ctrl_at[i - 1]))
            return gmrt_fail(diag, GMRT_ERR_ARG,
                             "gmrt_tokenize_marked: offset %zu (%zu) is not ascending "
                             "and inside the %zu-byte text", i, ctrl_at[i], len);
    }
    emitter e = {out, cap, 0};
    if (add_bos)
        emit(&e, v->bos);
    if (len > 0) {
        partition pt;
        memset(&pt, 0, sizeof pt);
        pt.v = v;
        pt.text = text;
        pt.len = len;
        pt.parse_special = parse_special;
        pt.marked = marked;
        pt.ctrl_at = ctrl_at;
        pt.n_ctrl = n_ctrl;
        pt.taken = calloc(len, 1);
        if (!pt.taken || !find_specials(&pt))
            st = gmrt_fail(diag, GMRT_ERR_NOMEM,
                           "out of memory tokenizing %zu bytes", len);
        if (st == GMRT_OK)
            st = run_fragments(&pt, &e, diag);
        free(pt.taken);
        free(pt.starts);
        free(pt.found.m);
        free(pt.cut.m);
        if (st != GMRT_OK)
            return st;
    }
    *out_n = e.n;
    if (e.n > cap)
        return gmrt_fail(diag, GMRT_ERR_LIMIT,
                         "the text needs %zu tokens; the buffer holds %zu",
                         e.n, cap);
    return GMRT_OK;
}

gmrt_status gmrt_tokenize(const gmrt_vocab *v, const char *text, size_t len,
                          bool add_bos, bool parse_special, int32_t *out,
                          size_t cap, size_t *out_n, gmrt_diag *diag)
{
    return tokenize(v, text, len, add_bos, parse_special, false, NULL, 0, out, cap, out_n,
                    diag);
}

gmrt_status gmrt_tokenize_marked(const gmrt_vocab *v, const char *text, size_t len,
                                 bool add_bos, const size_t *ctrl_at, size_t n_ctrl,
                                 int32_t *out, size_t cap, size_t *out_n,
                                 gmrt_diag *diag)
{
    return tokenize(v, text, len, add_bos, true, true, ctrl_at, n_ctrl, out, cap, out_n,
                    diag);
}

/* ---------------------------------------------------------- detokenize */

/* As llama.cpp's token_to_piece with special = false: control and unknown
 * tokens render as nothing, user-defined ones as their raw text, normal
 * ones with U+2581 turned back into ' ', byte tokens as their byte.  The
 * same for both tokenizers: Gemma 4's BPE escapes spaces as SPM does. */
size_t gmrt_token_to_piece(const gmrt_vocab *v, int32_t id, char *buf,
                           size_t cap)
{
    if (!v || id < 0 || id >= v->n || (v->flags[id] & VF_CTRL))
        return 0;
    if (!buf)
        cap = 0;
    const char *s = piece(v, id);
    size_t len = v->len[id], n = 0;
    int type = (v->flags[id] & VF_PLAIN) ? GMRT_TOKEN_NORMAL : v->type[id];
    switch (type) {
    case GMRT_TOKEN_BYTE:
        if (cap > 0)
            buf[0] = (char)parse_byte_piece(s, len);
        return 1;
    case GMRT_TOKEN_USER_DEFINED:
        if (cap > 0)
            memcpy(buf, s, len < cap ? len : cap);
        return len;
    case GMRT_TOKEN_NORMAL:
        for (size_t i = 0; i < len; n++) {
            bool space = len - i >= 3 && memcmp(s + i, "\xe2\x96\x81", 3) == 0;
            if (n < cap)
                buf[n] = space ? ' ' : s[i];
            i += space ? 3 : 1;
        }
        return n;
    default:
        return 0;   /* UNUSED: llama.cpp renders nothing either */
    }
}
