/*
 * vocab_bpe.c — merge ranks and text normalization of the Gemma 4 BPE
 * tokenizer (tokenizer.ggml.model = "gemma4"), id-for-id with llama.cpp's
 * LLAMA_VOCAB_TYPE_BPE path under its gemma4 pre-tokenizer.
 *
 * The merges come as strings "left right", rank = index.  Each is checked
 * against the token table and stored in an open-addressing table keyed by
 * the pair of token ids, so the merge loop never hashes text: every
 * symbol it holds is a token (or a lone character with no id, which no
 * merge can involve).
 */
#include "vocab_bpe.h"

#include <stdlib.h>
#include <string.h>

/* One slot: the pair (left << 32 | right), its rank (-1: empty) and the
 * token the merge forms. */
typedef struct merge_slot {
    uint64_t key;
    int32_t rank;
    int32_t id;
} merge_slot;

struct gmrt_bpe {
    merge_slot *slots;
    size_t mask;
};

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* splitmix64's finalizer: the keys are small ids, so spread them. */
static size_t pair_hash(uint64_t k)
{
    k = (k ^ (k >> 30)) * 0xBF58476D1CE4E5B9ull;
    k = (k ^ (k >> 27)) * 0x94D049BB133111EBull;
    return (size_t)(k ^ (k >> 31));
}

/* The slot holding key, or the empty slot where it would go. */
static merge_slot *find_slot(const gmrt_bpe *b, uint64_t key)
{
    for (size_t i = pair_hash(key) & b->mask;; i = (i + 1) & b->mask) {
        merge_slot *s = &b->slots[i];
        if (s->rank < 0 || s->key == key)
            return s;
    }
}

int32_t gmrt_bpe_rank(const gmrt_bpe *b, int32_t left, int32_t right,
                      int32_t *out_id)
{
    if (left < 0 || right < 0)
        return -1;
    const merge_slot *s = find_slot(b, pair_key(left, right));
    if (s->rank >= 0 && out_id)
        *out_id = s->id;
    return s->rank;
}

/* Splits merge i into its two tokens and the token they form (ids[0..2]).
 * cat has room for two pieces of GMRT_PIECE_MAX bytes. */
static gmrt_status parse_merge(const gmrt_vocab *v, const char *s, size_t len,
                               uint64_t i, char *cat, int32_t ids[3],
                               gmrt_diag *d)
{
    char q[200];
    /* llama.cpp splits at the first space after the first byte, so that
     * a left side may be a lone space; an empty right side matches no
     * symbol there and is refused here. */
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    if (!sp || sp == s + len - 1)
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "tokenizer.ggml.merges[%llu] = \"%s\" is not \"left right\"",
                         (unsigned long long)i, gmrt_vocab_quote(s, len, q, sizeof q));
    size_t nl = (size_t)(sp - s), nr = len - nl - 1;
    ids[0] = gmrt_vocab_find(v, s, nl);
    ids[1] = gmrt_vocab_find(v, sp + 1, nr);
    for (int k = 0; k < 2; k++) {
        if (ids[k] < 0)
            return gmrt_fail(d, GMRT_ERR_FORMAT,
                             "tokenizer.ggml.merges[%llu]: \"%s\" is not a token",
                             (unsigned long long)i,
                             k == 0 ? gmrt_vocab_quote(s, nl, q, sizeof q)
                                    : gmrt_vocab_quote(sp + 1, nr, q, sizeof q));
    }
    /* Both sides are tokens, so each fits in GMRT_PIECE_MAX bytes. */
    memcpy(cat, s, nl);
    memcpy(cat + nl, sp + 1, nr);
    ids[2] = gmrt_vocab_find(v, cat, nl + nr);
    if (ids[2] < 0)
        return gmrt_fail(d, GMRT_ERR_FORMAT,
                         "tokenizer.ggml.merges[%llu]: the merged piece \"%s\" is "
                         "not a token", (unsigned long long)i,
                         gmrt_vocab_quote(cat, nl + nr, q, sizeof q));
    return GMRT_OK;
}

/* Fills the table; called with every slot empty. */
static gmrt_status fill_merges(gmrt_bpe *b, const gmrt_vocab *v,
                               const char *const *merges, const uint32_t *lens,
                               uint64_t n, gmrt_diag *d)
{
    char *cat = malloc(2 * (size_t)GMRT_PIECE_MAX);
    if (!cat)
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory for the merges");
    gmrt_status st = GMRT_OK;
    for (uint64_t i = 0; i < n && st == GMRT_OK; i++) {
        int32_t ids[3];
        st = parse_merge(v, merges[i], lens[i], i, cat, ids, d);
        if (st != GMRT_OK)
            break;
        merge_slot *s = find_slot(b, pair_key(ids[0], ids[1]));
        if (s->rank >= 0)
            continue;   /* a repeated pair keeps its first rank */
        s->key = pair_key(ids[0], ids[1]);
        s->rank = (int32_t)i;
        s->id = ids[2];
    }
    free(cat);
    return st;
}

gmrt_status gmrt_bpe_create(const gmrt_vocab *v, const char *const *merges,
                            const uint32_t *lens, uint64_t n,
                            gmrt_bpe **out, gmrt_diag *d)
{
    *out = NULL;
    if (n > GMRT_BPE_MERGES_MAX)
        return gmrt_fail(d, GMRT_ERR_LIMIT,
                         "tokenizer.ggml.merges has %llu entries; the limit is %u",
                         (unsigned long long)n, GMRT_BPE_MERGES_MAX);
    gmrt_bpe *b = calloc(1, sizeof *b);
    /* At most half full: n <= 2^22, so 2^23 slots at most. */
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    if (b)
        b->slots = malloc(size * sizeof *b->slots);
    if (!b || !b->slots) {
        gmrt_bpe_destroy(b);
        return gmrt_fail(d, GMRT_ERR_NOMEM, "out of memory for %llu merges",
                         (unsigned long long)n);
    }
    b->mask = size - 1;
    for (size_t i = 0; i < size; i++)
        b->slots[i].rank = -1;
    gmrt_status st = fill_merges(b, v, merges, lens, n, d);
    if (st != GMRT_OK) {
        gmrt_bpe_destroy(b);
        return st;
    }
    *out = b;
    return GMRT_OK;
}

void gmrt_bpe_destroy(gmrt_bpe *b)
{
    if (!b)
        return;
    free(b->slots);
    free(b);
}

/* ------------------------------------------------------- normalization */

/* Decodes one character as llama.cpp's unicode_cpt_from_utf8 does: the
 * lead byte gives the length and only the continuation bytes' top bits
 * are checked, so overlong forms and surrogates decode.  Returns the bytes
 * used, or 0 for an invalid lead, a short or broken sequence, or a value
 * past U+10FFFF (llama.cpp throws out of its tokenizer there; taking the
 * lead byte as invalid keeps the text flowing). */
static size_t decode_char(const uint8_t *s, size_t avail, uint32_t *out_cp)
{
    uint8_t c = s[0];
    size_t n = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3
             : c < 0xF8 ? 4 : 0;
    if (n == 0 || n > avail)
        return 0;
    uint32_t cp = n == 1 ? c : c & (0x7Fu >> n);
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3Fu);
    }
    if (cp > 0x10FFFF)
        return 0;
    *out_cp = cp;
    return n;
}

/* Shortest UTF-8 form of cp (<= U+10FFFF); returns its length. */
static size_t encode_char(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One pass does both of llama.cpp's steps: escaping the ' ' bytes, then
 * decoding and re-encoding the escaped text.  The order only shows for an
 * overlong space (C0 A0), which decodes to a plain ' ' that is not
 * escaped; a ' ' byte never continues a sequence, nor does U+2581's lead
 * byte, so escaping first changes no other decoding. */
size_t gmrt_bpe_normalize(const char *raw, size_t len, char *out)
{
    const uint8_t *s = (const uint8_t *)raw;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = decode_char(s + i, len - i, &cp);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);   /* U+FFFD for the bad byte */
            o += 3;
            i++;
            continue;
        }
        if (n == 1 && cp == ' ') {
            memcpy(out + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            o += encode_char(cp, out + o);
        }
        i += n;
    }
    return o;
}
