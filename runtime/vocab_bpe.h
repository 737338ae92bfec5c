/*
 * vocab_bpe.h — the parts of the Gemma 4 tokenizer that the SentencePiece
 * path does not have (docs/models.md#gguf-tokenizer); internal to the runtime.
 *
 * vocab.c builds a gmrt_bpe from tokenizer.ggml.merges once its token table
 * is filled, normalizes each raw fragment with gmrt_bpe_normalize, and asks
 * gmrt_bpe_rank for each adjacent pair of symbols in its merge loop.  The
 * merge engine itself (heap, symbols, special-token partition) is shared
 * with the SentencePiece path and lives in vocab.c.
 */
#ifndef GMRT_VOCAB_BPE_H
#define GMRT_VOCAB_BPE_H

#include "gmrt.h"

/* Most merges a vocabulary may list.  Ranks then stay below 2^24, so a
 * rank is exact as a float (the merge heap's key). */
#define GMRT_BPE_MERGES_MAX (1u << 22)

/* Merge ranks: (left id, right id) → (rank, result id). */
typedef struct gmrt_bpe gmrt_bpe;

/* Parses and checks merges[0..n) ("left right", split at the first space
 * after the first byte, as llama.cpp does): both sides and their
 * concatenation must be tokens of v (docs/input-checks.md #36).  A repeated pair
 * keeps its first (lowest) rank.  Errors name the key and the index:
 * GMRT_ERR_FORMAT for a malformed entry, GMRT_ERR_LIMIT above
 * GMRT_BPE_MERGES_MAX, GMRT_ERR_NOMEM.  Free with gmrt_bpe_destroy. */
gmrt_status gmrt_bpe_create(const gmrt_vocab *v, const char *const *merges,
                            const uint32_t *lens, uint64_t n,
                            gmrt_bpe **out, gmrt_diag *d) GMRT_MUST_CHECK;
void gmrt_bpe_destroy(gmrt_bpe *b);

/* Rank of merging token left with token right (lower merges first), or -1
 * when the pair is not a merge or either id is negative.  *out_id (if not
 * NULL) receives the merged token. */
int32_t gmrt_bpe_rank(const gmrt_bpe *b, int32_t left, int32_t right,
                      int32_t *out_id);

/* What llama.cpp does to a raw fragment before splitting it: every ' '
 * byte becomes U+2581, and the text is decoded to code points and encoded
 * again, so invalid UTF-8 becomes U+FFFD (one per bad byte) and overlong
 * forms become their shortest form.  out must hold 3 * len bytes; returns
 * the bytes written.  Each input byte yields at most one character. */
size_t gmrt_bpe_normalize(const char *raw, size_t len, char *out);

/* Writes a piece into a diagnostic (vocab.c): printable ASCII as is, other
 * bytes as \xNN, at most 48 bytes of it.  Returns buf. */
const char *gmrt_vocab_quote(const char *s, size_t len, char *buf, size_t cap);

#endif
