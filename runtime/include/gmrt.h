/*
 * gmrt.h — the public API of libgemmart, the gemmac runtime.
 *
 * The runtime is plain C11 + libc + pthreads so that it cross-compiles
 * wherever clang does.  It reads weights (GGUF), checks them against a
 * compiled model's manifest, tokenizes, runs the forward step of a generated
 * model on a thread pool, samples and streams text.  It never calls exit()
 * and never aborts on bad input: every fallible call returns gmrt_status and
 * writes a one-line explanation into a caller-provided gmrt_diag.
 *
 * This header is the core: what a model needs to load and run, and all an
 * embedding program uses.  The tools (GGUF writer, bench, eval, roofline,
 * the `run` command line) are declared in gmrt_tools.h.
 *
 * Modules (one .c each): dtype.c (types, f16/bf16, (de)quantization),
 * gguf.c (reader), json.c (strict JSON),
 * safetensors.c (HF checkpoints), quantize.c (K-quant and affine quantizers),
 * vocab.c + vocab_bpe.c (SentencePiece and BPE tokenizers),
 * chat.c (Gemma chat template), sample.c (sampler), pool.c (threads),
 * session.c (load, validate, prefill/decode loop), file.c (opening inputs,
 * replacing outputs).
 */
#ifndef GMRT_H
#define GMRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gmk.h"

#define GMRT_VERSION "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define GMRT_MUST_CHECK __attribute__((warn_unused_result))
#define GMRT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GMRT_MUST_CHECK
#define GMRT_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- errors */

typedef enum gmrt_status {
    GMRT_OK = 0,
    GMRT_ERR_IO,       /* open/stat/mmap/read/write failed */
    GMRT_ERR_FORMAT,   /* the file breaks its format's rules */
    GMRT_ERR_LIMIT,    /* a size, count or length above a cap */
    GMRT_ERR_MISMATCH, /* file and compiled model disagree */
    GMRT_ERR_NOMEM,    /* an allocation failed */
    GMRT_ERR_ARG,      /* a caller/user argument out of range */
    GMRT_ERR_UNSUPPORTED
} gmrt_status;

typedef struct gmrt_diag {
    gmrt_status status;
    char msg[1024];
} gmrt_diag;

/* Records status and a printf-formatted message in d (if d is not NULL) and
 * returns status, so that `return gmrt_fail(d, GMRT_ERR_FORMAT, ...)` reads
 * naturally.  A later call overwrites the message. */
gmrt_status gmrt_fail(gmrt_diag *d, gmrt_status status, const char *fmt, ...)
    GMRT_PRINTF(3, 4);

const char *gmrt_status_name(gmrt_status s);

/* ------------------------------------------------------------ files (file.c) */

/* What a st_mode is, for messages: "a directory", "a FIFO", ... */
const char *gmrt_file_kind(unsigned mode);

/* Opens path read-only (O_CLOEXEC, plus flags such as O_NOFOLLOW) if it is
 * a regular file, without ever blocking: a FIFO, device or directory fails
 * with GMRT_ERR_IO naming the path and what it is.  *out_fd is a blocking
 * descriptor the caller closes; -1 on failure. */
gmrt_status gmrt_file_open_read(const char *path, int flags, int *out_fd,
                                gmrt_diag *diag) GMRT_MUST_CHECK;
/* What a file holds, judged by its first bytes (gmrt_file_sniff). */
typedef enum gmrt_file_format {
    GMRT_FORMAT_UNKNOWN = 0,
    GMRT_FORMAT_GGUF = 1,        /* "GGUF" */
    GMRT_FORMAT_SAFETENSORS = 2, /* a little-endian u64 header length, then '{' */
    GMRT_FORMAT_JSON = 4,        /* '{' after ASCII whitespace (config, index) */
    GMRT_FORMAT_DIR = 8          /* a directory (a checkpoint's) */
} gmrt_file_format;

/* The format of the n bytes at p (never GMRT_FORMAT_DIR). */
gmrt_file_format gmrt_format_of(const void *p, size_t n);

/* Opens path (following links, refusing FIFOs and devices as
 * gmrt_file_open_read does) and judges its format; *out must be one of the
 * bits in accept, else GMRT_ERR_FORMAT naming the formats accepted and the
 * file's first bytes, so that a corrupt or foreign file is never reported
 * as a problem of another format's reader. */
gmrt_status gmrt_file_sniff(const char *path, unsigned accept, gmrt_file_format *out,
                            gmrt_diag *diag) GMRT_MUST_CHECK;

/* The same as a FILE* ("rb"), which the caller fcloses. */
gmrt_status gmrt_file_fopen_read(const char *path, FILE **out,
                                 gmrt_diag *diag) GMRT_MUST_CHECK;

/* Replacing path atomically: begin refuses a path that exists and is not a
 * regular file (a link, directory, FIFO or device: GMRT_ERR_IO naming what
 * it is) and creates fd, a new file "<path>.tmp.<random>" opened
 * O_EXCL|O_NOFOLLOW, mode 0644.  The caller writes and closes fd (setting
 * it to -1), then commit renames the file over path (checking path again)
 * or removes it on failure; abort closes fd if open and removes the file.
 * Exactly one of commit and abort follows a successful begin. */
typedef struct gmrt_file_replace {
    int fd;
    char *tmp;          /* owned */
    const char *path;   /* the caller's */
} gmrt_file_replace;
gmrt_status gmrt_file_replace_begin(gmrt_file_replace *r, const char *path,
                                    gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_file_replace_commit(gmrt_file_replace *r,
                                     gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_file_replace_abort(gmrt_file_replace *r);

/* The root of gemmac's cache: $XDG_CACHE_HOME/gemmac, else
 * $HOME/.cache/gemmac, else /tmp/gemmac-<uid> (*shared then true: anyone
 * can create names in /tmp).  Build directories and machine profiles live
 * under it.  Creates nothing. */
void gmrt_cache_root(char *buf, size_t cap, bool *shared);

/* ------------------------------------------------------- types (dtype.c) */

/* Name ("q4_k", "f32", ...) of a dtype, or NULL for an id that is out of
 * range or not a type this runtime knows. */
const char *gmrt_dtype_name(int32_t dtype);
/* Parses a lower-case name as printed by gmrt_dtype_name; -1 if unknown. */
int32_t gmrt_dtype_from_name(const char *name);
/* Elements per block (1 for float types) and bytes per block; 0 if unknown. */
int64_t gmrt_dtype_block(int32_t dtype);
size_t gmrt_dtype_block_bytes(int32_t dtype);
/* True if this runtime can dequantize the type (all weight types of docs/models.md#quant-weights). */
bool gmrt_dtype_supported(int32_t dtype);
/* Bytes of n elements of dtype, with n % block == 0 and overflow checked. */
gmrt_status gmrt_dtype_row_bytes(int32_t dtype, int64_t n, size_t *out_bytes,
                                 gmrt_diag *diag) GMRT_MUST_CHECK;

float gmrt_f16_to_f32(uint16_t h);
uint16_t gmrt_f32_to_f16(float f);   /* round to nearest even */
float gmrt_bf16_to_f32(uint16_t h);
uint16_t gmrt_f32_to_bf16(float f);  /* round to nearest even, NaN stays NaN */

/* dst[0..n) = src row of dtype; n must be a multiple of the block size. */
void gmrt_dequantize_row(int32_t dtype, const void *src, float *dst, int64_t n);
/* Quantizes a row: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K
 * and Q6_K, each bit for bit as ggml's reference quantizer (llama.cpp's
 * without an importance matrix); GMRT_ERR_UNSUPPORTED for other types. */
gmrt_status gmrt_quantize_row(int32_t dtype, const float *src, void *dst,
                              int64_t n, gmrt_diag *diag) GMRT_MUST_CHECK;

/* ------------------------------------------------------- GGUF (gguf.c) */

/* Caps enforced before any allocation (docs/input-checks.md §7.1). */
#define GMRT_GGUF_MAX_TENSORS 65536
#define GMRT_GGUF_MAX_KV 4096
#define GMRT_GGUF_MAX_STRING (1u << 20)
#define GMRT_GGUF_MAX_ARRAY (1u << 24)
#define GMRT_GGUF_MAX_NAME 63

/* GGUF metadata value types. */
typedef enum gmrt_gguf_type {
    GMRT_GGUF_UINT8 = 0, GMRT_GGUF_INT8, GMRT_GGUF_UINT16, GMRT_GGUF_INT16,
    GMRT_GGUF_UINT32, GMRT_GGUF_INT32, GMRT_GGUF_FLOAT32, GMRT_GGUF_BOOL,
    GMRT_GGUF_STRING, GMRT_GGUF_ARRAY, GMRT_GGUF_UINT64, GMRT_GGUF_INT64,
    GMRT_GGUF_FLOAT64, GMRT_GGUF_TYPE_COUNT
} gmrt_gguf_type;

typedef struct gmrt_gguf_tensor {
    const char *name;      /* NUL-terminated copy owned by the gmrt_gguf */
    int32_t dtype;
    int32_t n_dims;        /* 1..4 */
    int64_t ne[4];         /* unused dims are 1 */
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const void *data;      /* inside the read-only mapping */
} gmrt_gguf_tensor;

typedef struct gmrt_gguf gmrt_gguf;

/* Maps path read-only and validates header, metadata and tensor table
 * (every check of docs/input-checks.md §2.1 and §2.5).  On success *out must be
 * released with gmrt_gguf_close.  On failure *out is NULL and diag names
 * what is wrong and at which byte offset / key / tensor. */
gmrt_status gmrt_gguf_open(const char *path, gmrt_gguf **out,
                           gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_gguf_close(gmrt_gguf *g);

uint64_t gmrt_gguf_file_size(const gmrt_gguf *g);
/* Metadata entries, in file order; key_at is NULL out of range. */
int64_t gmrt_gguf_n_kv(const gmrt_gguf *g);
const char *gmrt_gguf_key_at(const gmrt_gguf *g, int64_t i);
/* Entry i's value as encoded in the file (after its type word; an array's
 * element type and count included), inside the mapping: what a writer
 * copies to carry the entry over unchanged.  false out of range. */
bool gmrt_gguf_kv_raw(const gmrt_gguf *g, int64_t i, gmrt_gguf_type *type, const void **val,
                      size_t *len);
int64_t gmrt_gguf_n_tensors(const gmrt_gguf *g);
const gmrt_gguf_tensor *gmrt_gguf_tensor_at(const gmrt_gguf *g, int64_t i);
/* NULL if no tensor has that name. */
const gmrt_gguf_tensor *gmrt_gguf_find_tensor(const gmrt_gguf *g,
                                              const char *name);

/* Metadata.  has_key is true if the key exists (any type).  The getters fail
 * with GMRT_ERR_FORMAT naming the key if it is absent or of the wrong type;
 * get_int accepts every integer type (range-checked into int64), get_float
 * accepts FLOAT32/FLOAT64.  Returned pointers are owned by g. */
bool gmrt_gguf_has_key(const gmrt_gguf *g, const char *key);
gmrt_status gmrt_gguf_get_int(const gmrt_gguf *g, const char *key,
                              int64_t *out, gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_get_float(const gmrt_gguf *g, const char *key,
                                double *out, gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_get_bool(const gmrt_gguf *g, const char *key,
                               bool *out, gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_get_str(const gmrt_gguf *g, const char *key,
                              const char **out, gmrt_diag *diag) GMRT_MUST_CHECK;
/* Arrays: the element type must match exactly (STRING, FLOAT32, INT32, BOOL).
 * Strings are NUL-terminated copies; lens[i] is the byte length (a piece may
 * contain NUL bytes). */
gmrt_status gmrt_gguf_get_strs(const gmrt_gguf *g, const char *key,
                               const char *const **out_strs,
                               const uint32_t **out_lens, uint64_t *out_n,
                               gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_get_f32s(const gmrt_gguf *g, const char *key,
                               const float **out, uint64_t *out_n,
                               gmrt_diag *diag) GMRT_MUST_CHECK;
gmrt_status gmrt_gguf_get_i32s(const gmrt_gguf *g, const char *key,
                               const int32_t **out, uint64_t *out_n,
                               gmrt_diag *diag) GMRT_MUST_CHECK;
/* BOOL arrays: one byte per element, each 0 or 1. */
gmrt_status gmrt_gguf_get_bools(const gmrt_gguf *g, const char *key,
                                const uint8_t **out, uint64_t *out_n,
                                gmrt_diag *diag) GMRT_MUST_CHECK;

/* ------------------------------------------------------------ JSON (json.c)
 * A strict RFC 8259 parser for untrusted input (safetensors headers, index
 * and config files, tokenizer.json).  The DOM lives in one arena owned by the
 * gmrt_json document; every pointer below stays valid until
 * gmrt_json_destroy.  Strings are NUL-terminated and also carry their byte
 * length (a string may contain "\u0000"). */

#define GMRT_JSON_MAX_DEPTH 64

typedef enum gmrt_json_kind {
    GMRT_JSON_NULL = 0, GMRT_JSON_BOOL, GMRT_JSON_INT, GMRT_JSON_DOUBLE,
    GMRT_JSON_STRING, GMRT_JSON_ARRAY, GMRT_JSON_OBJECT
} gmrt_json_kind;

typedef struct gmrt_json_value gmrt_json_value;
typedef struct gmrt_json_member {
    const char *key;
    size_t key_len;
    const gmrt_json_value *value;
} gmrt_json_member;

struct gmrt_json_value {
    gmrt_json_kind kind;
    size_t offset;                 /* byte offset in the text, for messages */
    union {
        bool b;
        int64_t i;                 /* integral numbers that fit in int64 */
        double d;                  /* every other number (always finite) */
        struct { const char *p; size_t len; } s;
        struct {
            gmrt_json_value *items;          /* n values, in document order */
            size_t n;
            gmrt_json_member *members;       /* objects: n members, document order */
            gmrt_json_member **sorted;       /* objects: the members by key */
        } c;
    } u;
};

typedef struct gmrt_json_limits {
    int max_depth;          /* <= GMRT_JSON_MAX_DEPTH */
    size_t max_values;      /* values in the whole document */
    size_t max_members;     /* elements of one array or keys of one object */
    size_t max_string;      /* bytes of one string, as written */
} gmrt_json_limits;

typedef struct gmrt_json gmrt_json;

/* Depth 64, 4 Mi values, 1 Mi members per container, 1 MiB strings. */
void gmrt_json_limits_default(gmrt_json_limits *l);
/* Parses len bytes; what names the source in messages ("x.json"), which read
 * "what:line:col (byte N): expected ..., found ...".  lim may be NULL (the
 * defaults).  Duplicate keys, invalid UTF-8, unescaped control characters,
 * lone surrogates, leading zeros, non-finite numbers and trailing text are
 * errors (GMRT_ERR_FORMAT); caps give GMRT_ERR_LIMIT.  On success *out must
 * be freed with gmrt_json_destroy. */
gmrt_status gmrt_json_parse(const char *text, size_t len, const char *what,
                            const gmrt_json_limits *lim, gmrt_json **out,
                            gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_json_destroy(gmrt_json *doc);
const gmrt_json_value *gmrt_json_root(const gmrt_json *doc);
/* Object lookup by key (binary search); NULL if obj is not an object or has
 * no such key. */
const gmrt_json_value *gmrt_json_get(const gmrt_json_value *obj, const char *key);
const gmrt_json_member *gmrt_json_find(const gmrt_json_value *obj, const char *key);
/* "an integer", "a string", ... for messages. */
const char *gmrt_json_kind_name(gmrt_json_kind k);
/* INT or DOUBLE as a double; false for anything else (or NULL). */
bool gmrt_json_number(const gmrt_json_value *v, double *out);

/* ------------------------------------------- safetensors (safetensors.c)
 * Hugging Face checkpoints: one .safetensors file, or the shards named by a
 * model.safetensors.index.json.  Every check of docs/input-checks.md §2.2 (21–28)
 * and §2.5 runs at open; tensor data stays in the read-only mappings. */

#define GMRT_ST_MAX_HEADER 100000000u   /* check 21 */
#define GMRT_ST_MAX_DIMS 8
#define GMRT_ST_MAX_TENSORS 65536
#define GMRT_ST_MAX_SHARDS 1024
#define GMRT_ST_MAX_METADATA (1u << 20)  /* bytes of __metadata__ (check 28) */

typedef struct gmrt_st_tensor {
    const char *name;          /* owned by the gmrt_safetensors */
    int32_t dtype;             /* GMK_DTYPE_F32, F16 or BF16 */
    int32_t n_dims;            /* 0 .. GMRT_ST_MAX_DIMS */
    int64_t shape[GMRT_ST_MAX_DIMS]; /* row-major: shape[0] is the outermost */
    uint64_t nbytes;
    const void *data;          /* in the mapping; NOT necessarily aligned */
    int32_t shard;             /* which file (0-based, in file-name order) */
} gmrt_st_tensor;

typedef struct gmrt_safetensors gmrt_safetensors;

/* path is a .safetensors file, a model.safetensors.index.json, or a
 * directory holding one of them (the index is preferred).  Shards named by
 * an index must be plain file names beside it; each is opened once; every
 * tensor must be in the shard the index names and nothing else may be.
 * Dtypes other than F32/F16/BF16 give GMRT_ERR_UNSUPPORTED naming the
 * tensor.  On success free *out with gmrt_safetensors_close. */
gmrt_status gmrt_safetensors_open(const char *path, gmrt_safetensors **out,
                                  gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_safetensors_close(gmrt_safetensors *st);
/* Tensors sorted by name; tensor_at is NULL out of range, find NULL if no
 * tensor has that name. */
int64_t gmrt_safetensors_n_tensors(const gmrt_safetensors *st);
const gmrt_st_tensor *gmrt_safetensors_tensor_at(const gmrt_safetensors *st, int64_t i);
const gmrt_st_tensor *gmrt_safetensors_find(const gmrt_safetensors *st,
                                            const char *name);
/* The directory the files are in (where config.json is looked for). */
const char *gmrt_safetensors_dir(const gmrt_safetensors *st);

/* ------------------------------------------------- tokenizer (vocab.c) */

#define GMRT_VOCAB_MIN 256
#define GMRT_VOCAB_MAX (1u << 20)
#define GMRT_PIECE_MAX 65536

/* SentencePiece token types as stored in tokenizer.ggml.token_type. */
enum {
    GMRT_TOKEN_NORMAL = 1, GMRT_TOKEN_UNKNOWN = 2, GMRT_TOKEN_CONTROL = 3,
    GMRT_TOKEN_USER_DEFINED = 4, GMRT_TOKEN_UNUSED = 5, GMRT_TOKEN_BYTE = 6
};

typedef struct gmrt_vocab gmrt_vocab;

/* Builds the tokenizer from a GGUF's tokenizer.ggml.* metadata with every
 * check of docs/input-checks.md §2.3.  tokenizer.ggml.model picks the algorithm:
 * "llama" (SentencePiece, Gemma 1/2/3) or "gemma4" (BPE with the merges of
 * tokenizer.ggml.merges, each checked against the tokens).  Free with
 * gmrt_vocab_destroy. */
gmrt_status gmrt_vocab_from_gguf(const gmrt_gguf *g, gmrt_vocab **out,
                                 gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_vocab_destroy(gmrt_vocab *v);

int32_t gmrt_vocab_size(const gmrt_vocab *v);
int32_t gmrt_vocab_bos(const gmrt_vocab *v);
int32_t gmrt_vocab_eos(const gmrt_vocab *v);
/* End-of-turn id: <end_of_turn> (Gemma 1/2/3), else <turn|> (Gemma 4), else
 * -1. */
int32_t gmrt_vocab_eot(const gmrt_vocab *v);
bool gmrt_vocab_add_bos(const gmrt_vocab *v);
/* True for a Gemma 4 vocabulary (tokenizer.ggml.model = "gemma4"). */
bool gmrt_vocab_is_bpe(const gmrt_vocab *v);
/* Exact-text lookup; -1 if absent. */
int32_t gmrt_vocab_find(const gmrt_vocab *v, const char *text, size_t len);
int32_t gmrt_vocab_type(const gmrt_vocab *v, int32_t id);

/* Tokenizes len bytes of text as llama.cpp does: its SPM tokenizer
 * (docs/models.md#tokenizer-spm) or, for a "gemma4" vocabulary, its BPE one
 * (docs/models.md#gguf-tokenizer; invalid UTF-8 becomes U+FFFD first).
 * With parse_special, control tokens written as text (e.g. "<start_of_turn>")
 * become their ids; user-defined tokens are always matched.  Writes at most
 * cap ids to out and the full count to *out_n; GMRT_ERR_LIMIT if cap was too
 * small (out then holds the first cap ids).  Text above 4 MiB is refused. */
gmrt_status gmrt_tokenize(const gmrt_vocab *v, const char *text, size_t len,
                          bool add_bos, bool parse_special, int32_t *out,
                          size_t cap, size_t *out_n,
                          gmrt_diag *diag) GMRT_MUST_CHECK;

/* As gmrt_tokenize with parse_special, except that a control token is taken
 * only where it starts at one of the n_ctrl byte offsets ctrl_at (strictly
 * ascending, each inside the text; GMRT_ERR_ARG otherwise): how a
 * template's own markup becomes control ids while the same text typed by a
 * user stays text.  User-defined tokens are matched as in gmrt_tokenize. */
gmrt_status gmrt_tokenize_marked(const gmrt_vocab *v, const char *text, size_t len,
                                 bool add_bos, const size_t *ctrl_at, size_t n_ctrl,
                                 int32_t *out, size_t cap, size_t *out_n,
                                 gmrt_diag *diag) GMRT_MUST_CHECK;

/* The bytes one token stands for (▁ → ' ', <0xNN> → byte, control → "").
 * Returns the byte count; writes min(count, cap) bytes to buf (no NUL). */
size_t gmrt_token_to_piece(const gmrt_vocab *v, int32_t id, char *buf,
                           size_t cap);

/* ------------------------------------------------ chat template (chat.c) */

/* Formats one user turn with the Gemma 1/2/3 template (docs/models.md#chat-template), without
 * the leading <bos> (the tokenizer adds it):
 *   <start_of_turn>user\n{system\n\n}{user}<end_of_turn>\n<start_of_turn>model\n
 * system may be NULL.  Returns a malloc'd NUL-terminated string the caller
 * frees, or NULL when out of memory. */
char *gmrt_chat_format(const char *system, const char *user);

/* The template families: Gemma 1/2/3 (above) and Gemma 4. */
typedef enum gmrt_chat_style {
    GMRT_CHAT_GEMMA = 0,
    GMRT_CHAT_GEMMA4 = 1
} gmrt_chat_style;

/* GMRT_CHAT_GEMMA4 for a "gemma4" (BPE) vocabulary or one that has
 * <|turn>; GMRT_CHAT_GEMMA otherwise (also for NULL). */
gmrt_chat_style gmrt_chat_style_of(const gmrt_vocab *v);

/* Formats one user turn in the given style, without the leading <bos>.
 * GMRT_CHAT_GEMMA is gmrt_chat_format; GMRT_CHAT_GEMMA4 is the official
 * Gemma 4 template with thinking off (texts trimmed of Unicode whitespace):
 *   [<|turn>system\n{system}<turn|>\n]<|turn>user\n{user}<turn|>\n
 *   <|turn>model\n<|channel>thought\n<channel|>
 * where the system turn is written whenever system is not NULL.  Generation
 * stops at <turn|> (gmrt_vocab_eot) or <eos>.  Returns a malloc'd string the
 * caller frees, or NULL when out of memory. */
char *gmrt_chat_format_style(gmrt_chat_style style, const char *system,
                             const char *user);

/* One message of a conversation: role "system" (or "developer"), "user" or
 * "assistant" (or "model"), and its text. */
typedef struct gmrt_chat_msg {
    const char *role, *content;
} gmrt_chat_msg;

/* Formats a conversation in the style of v (gmrt_chat_style_of) — system
 * messages first (Gemma 1-3 put the first non-empty one before the first
 * user text; Gemma 4 writes a system turn for the first), then user and
 * assistant turns alternating from a user turn (a Gemma 4 assistant text
 * without its thought channels), then the model's turn opened — and
 * tokenizes it as gmrt_chat_tokenize does: the markup as control tokens,
 * every text as text.  GMRT_ERR_ARG naming the message for another role or
 * order. */
gmrt_status gmrt_chat_tokenize_msgs(const gmrt_vocab *v, const gmrt_chat_msg *msgs, size_t n,
                                    bool add_bos, int32_t *out, size_t cap, size_t *out_n,
                                    gmrt_diag *diag) GMRT_MUST_CHECK;

/* Formats one user turn in the style of v (gmrt_chat_style_of) and
 * tokenizes it, with <bos> first when add_bos: the template's markup
 * becomes control tokens, the system and user texts are tokenized as text
 * (control tokens spelled in them are not parsed), otherwise the ids are
 * those of gmrt_tokenize with parse_special on the formatted string.  Out
 * and the count as in gmrt_tokenize. */
gmrt_status gmrt_chat_tokenize(const gmrt_vocab *v, const char *system, const char *user,
                               bool add_bos, int32_t *out, size_t cap, size_t *out_n,
                               gmrt_diag *diag) GMRT_MUST_CHECK;

/* ------------------------------------------------------ sampler (sample.c) */

typedef struct gmrt_sampler_params {
    float temperature;    /* 0 = greedy; otherwise 0 < t <= 100 */
    int32_t top_k;        /* 0 = off */
    float top_p;          /* 1 = off; (0, 1] */
    float min_p;          /* 0 = off; [0, 1) */
    float repeat_penalty; /* 1 = off; (0, 10] */
    int32_t repeat_last_n;/* how many recent tokens the penalty looks at */
    uint64_t seed;
} gmrt_sampler_params;

void gmrt_sampler_params_default(gmrt_sampler_params *p);
/* Range-checks every field (docs/input-checks.md §2.6 #52). */
gmrt_status gmrt_sampler_params_check(const gmrt_sampler_params *p,
                                      gmrt_diag *diag) GMRT_MUST_CHECK;

typedef struct gmrt_sampler gmrt_sampler;
/* Allocates all scratch once (n_vocab entries); sampling never allocates. */
gmrt_status gmrt_sampler_create(const gmrt_sampler_params *p, int32_t n_vocab,
                                gmrt_sampler **out, gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_sampler_destroy(gmrt_sampler *s);
/* Picks the next token from logits[n_vocab] (modified in place by the
 * penalties); history holds the ids seen so far, most recent last. */
int32_t gmrt_sampler_sample(gmrt_sampler *s, float *logits,
                            const int32_t *history, size_t n_history);
/* The same without the repetition penalty, leaving logits as they are:
 * what gmrt_sampler_sample does when the penalty is off.  Samplers are
 * independent: two threads may pick with two samplers at once. */
int32_t gmrt_sampler_pick(gmrt_sampler *s, const float *logits);

/* ------------------------------------------------------ threads (pool.c) */

/* 0 where the platform has no threads: WASI without the threads proposal
 * (the wasm32 target; clang defines _REENTRANT for WASI under -pthread). */
#if defined(__wasi__) && !defined(_REENTRANT)
#define GMRT_THREADS 0
#else
#define GMRT_THREADS 1
#endif

/* Stack a forward step may use on each of its threads: the kernels keep
 * their tiles' buffers there (measured at most 144 KiB, the f16 prefill of
 * Gemma 1 2B on x86-64-v4).  The pool starts its workers with twice this,
 * whatever the platform's default (musl's is 128 KiB); the thread that
 * calls gmrt_pool_run (thread 0) must have this much to spare itself:
 * glibc's main thread and default threads do, a thread an embedder starts
 * with a smaller stack does not. */
#define GMRT_STEP_STACK ((size_t)512 << 10)
/* The stack the runtime's own step threads are started with. */
#define GMRT_THREAD_STACK (2 * GMRT_STEP_STACK)

typedef struct gmrt_pool gmrt_pool;
/* n_threads >= 1; the calling thread is thread 0, so n-1 workers are
 * started (none where GMRT_THREADS is 0: the pool keeps one thread and
 * gmrt_pool_threads says so), each with GMRT_THREAD_STACK of stack.
 * Free with gmrt_pool_destroy. */
gmrt_status gmrt_pool_create(int n_threads, gmrt_pool **out,
                             gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_pool_destroy(gmrt_pool *p);
int gmrt_pool_threads(const gmrt_pool *p);
/* Runs fn(ctx, ith, nth) on every thread with ctx->barrier/sync replaced by
 * the pool's barrier; returns when all threads are done. */
void gmrt_pool_run(gmrt_pool *p, gmk_forward_fn *fn, const gmk_ctx *ctx);
/* Runs fn(user, ith, nth) on every thread (the caller is thread 0) and
 * returns when all are done: work other than a forward step on the same
 * threads, which are then warm for the next step. */
typedef void gmrt_task_fn(void *user, int ith, int nth);
void gmrt_pool_run_task(gmrt_pool *p, gmrt_task_fn *fn, void *user);
/* Barriers passed so far by all pools of this process, each counted once
 * (not once per thread), the one that ends a step included.  The difference
 * over one decode step is what the cost model calls its barriers
 * (docs/experiments.md#cost-model). */
uint64_t gmrt_pool_barriers(void);

/* ---------------------------------------------------- session (session.c) */

typedef struct gmrt_session gmrt_session;

typedef struct gmrt_session_opts {
    int n_threads;          /* >= 1 */
    bool verbose;           /* print load/validation steps to stderr */
    /* GGUF: a tensor whose type differs from the compiled one is dequantized
     * and quantized into it at load (a note says so); false: an error. */
    bool requant;
    /* Safetensors weights carry no vocabulary gemmac reads (it reads GGUF
     * ones only, not tokenizer.json or tokenizer.model): tokenizer names a
     * GGUF file whose vocabulary (n_vocab tokens, like the model's) is used
     * instead.  need_tokenizer: fail at once, before any weight is read or
     * converted, when the session would have no vocabulary. */
    const char *tokenizer;
    bool need_tokenizer;
    /* Independent sequences (each its own KV cache of the model's kv_bytes,
     * paged in as used), 1 .. GMRT_MAX_SEQS; 0 means 1.  The functions
     * without a sequence argument work on sequence 0. */
    int32_t n_seqs;
} gmrt_session_opts;

#define GMRT_MAX_SEQS 256

/* A GGUF file whose tensors are already in a compiled model's layouts
 * (`gemmac export`, docs/export.md) carries these keys: the target and
 * graph hash it was laid out for, and each tensor's GMK_LAYOUT_* (int32,
 * in the file's tensor order).  A tensor in a panel layout holds whole
 * panels: its row count (ne[1]) is rounded up to the panel's rows, the
 * extra rows zero.  The session maps such a file with nothing repacked,
 * and refuses it for a model of another target, graph or layout. */
#define GMRT_KEY_LAYOUT_TARGET "gemmac.layout.target"
#define GMRT_KEY_LAYOUT_GRAPH "gemmac.layout.graph_hash"
#define GMRT_KEY_LAYOUT_OF "gemmac.layout.tensors"

/* Maps the weights, checks every manifest tensor (name, dtype, shape) against
 * the file, builds the tokenizer, allocates the arena and the KV cache once.
 * weights is a GGUF file, or a Hugging Face safetensors checkpoint (a
 * .safetensors file, a model.safetensors.index.json, or a directory holding
 * either) with its config.json beside it: its tensors are mapped from the HF
 * names, converted (norm weights +1) and quantized into the compiled dtypes.
 * A safetensors session has no vocabulary unless opts->tokenizer names a
 * GGUF file carrying one (otherwise gmrt_session_vocab is NULL and generate
 * fails with "no tokenizer"); eval of token ids works either way.
 * Free with gmrt_session_destroy. */
gmrt_status gmrt_session_create(const gmk_model *model, const char *weights,
                                const gmrt_session_opts *opts,
                                gmrt_session **out, gmrt_diag *diag) GMRT_MUST_CHECK;
void gmrt_session_destroy(gmrt_session *s);

/* Bytes of weights the session copied into the model's layouts at load;
 * 0 for a file already laid out (GMRT_KEY_LAYOUT_TARGET). */
uint64_t gmrt_session_repacked_bytes(const gmrt_session *s);

/* NULL when the weights carried no tokenizer (safetensors without
 * opts->tokenizer). */
const gmrt_vocab *gmrt_session_vocab(const gmrt_session *s);
int32_t gmrt_session_pos(const gmrt_session *s);
/* True if the weights carry tokenizer.chat_template (an instruction-tuned
 * model); base models have none. */
bool gmrt_session_has_chat_template(const gmrt_session *s);
/* Forgets the context (position back to 0). */
void gmrt_session_reset(gmrt_session *s);

/* Runs tokens[0..n) at the current position, in chunks of max_batch, and
 * advances the position.  If all_logits, *out_logits holds n rows of n_vocab
 * logits (valid until the next call); otherwise one row, for the last token.
 * Fails with GMRT_ERR_ARG on an id >= n_vocab or past the context. */
gmrt_status gmrt_session_eval(gmrt_session *s, const int32_t *tokens, size_t n,
                              bool all_logits, const float **out_logits,
                              gmrt_diag *diag) GMRT_MUST_CHECK;

/* The same on sequence seq (0 .. n_seqs - 1) and its position. */
gmrt_status gmrt_session_seq_eval(gmrt_session *s, int32_t seq, const int32_t *tokens,
                                  size_t n, bool all_logits, const float **out_logits,
                                  gmrt_diag *diag) GMRT_MUST_CHECK;

/* One token for each of n distinct sequences (seqs[i] gets tokens[i] at its
 * own position), all in one forward pass — the weights are read once for
 * all of them — and every position advanced by one.  *out_logits holds n
 * rows, row i for seqs[i] (valid until the next call).  GMRT_ERR_ARG for a
 * sequence out of range, repeated or full, or an id >= n_vocab; nothing
 * runs then. */
gmrt_status gmrt_session_decode(gmrt_session *s, const int32_t *seqs, const int32_t *tokens,
                                size_t n, const float **out_logits,
                                gmrt_diag *diag) GMRT_MUST_CHECK;

/*
 * One forward step over several sequences at once, each with any number of
 * tokens: a prefill chunk of one and the decode tokens of others share the
 * pass (and its read of the weights).  Run i feeds the next runs[i].n
 * tokens of `tokens` (the runs' tokens one after the other) to sequence
 * runs[i].seq at its position; with runs[i].logits, the logits of its last
 * token are one row of *out_logits, in run order (valid until the next
 * call; NULL when no run asks).  Each sequence appears once, with 1 ..
 * gmrt_session_max_batch tokens; more tokens than that in all take several
 * passes.  The logits are those the sequence gets alone, bit for bit.
 * GMRT_ERR_ARG for a sequence out of range, repeated or without room, a
 * count out of range or an id >= n_vocab; nothing runs then.
 */
typedef struct gmrt_run {
    int32_t seq, n;
    bool logits;
} gmrt_run;
gmrt_status gmrt_session_batch(gmrt_session *s, const gmrt_run *runs, size_t n_runs,
                               const int32_t *tokens, const float **out_logits,
                               gmrt_diag *diag) GMRT_MUST_CHECK;

int32_t gmrt_session_n_seqs(const gmrt_session *s);
/* Tokens in one forward pass of the compiled model (its --batch). */
int32_t gmrt_session_max_batch(const gmrt_session *s);
/* The session's threads, for work between steps (gmrt_pool_run_task); a
 * step must not run while it is in use. */
gmrt_pool *gmrt_session_pool(gmrt_session *s);
/* Sequence seq's position (tokens evaluated), or -1 when out of range. */
int32_t gmrt_session_seq_pos(const gmrt_session *s, int32_t seq);
/* Forgets sequence seq's context (position back to 0). */
void gmrt_session_seq_reset(gmrt_session *s, int32_t seq);
/* How many positions of sequence seq a truncation to n keeps: n (at most
 * its position) when the positions after n can be forgotten exactly, else
 * 0.  A sliding-window layer keeps a ring of window + max_batch rows
 * (docs/internals.md#memory-plan): once later positions have overwritten
 * rows that position n attends to, the prefix cannot be kept.  The model
 * descriptor does not say how long the rings are, so a truncation keeps n
 * only when it forgets at most max_batch positions (always exact, whatever
 * the window), and 0 for a sequence out of range. */
int32_t gmrt_session_seq_keep(const gmrt_session *s, int32_t seq, int32_t n);
/* Forgets sequence seq's positions from gmrt_session_seq_keep(s, seq, n)
 * on, so that evaluation goes on there (0: the whole context, as
 * gmrt_session_seq_reset); returns that position.  The logits that follow
 * are those of a sequence that evaluated only the kept prefix. */
int32_t gmrt_session_seq_truncate(gmrt_session *s, int32_t seq, int32_t n);

/* Called with each decoded piece as soon as it is sampled; return false to
 * stop early. */
typedef bool gmrt_stream_fn(void *user, int32_t id, const char *piece,
                            size_t len);
/* A ready-made stream: writes each piece to stdout and flushes (id is
 * unused).  Stops (returns false) when stdout fails; user, if not NULL, is
 * an int that then receives the errno of the first failure. */
bool gmrt_stream_stdout(void *user, int32_t id, const char *piece, size_t len);

typedef struct gmrt_gen_stats {
    size_t n_prompt, n_gen;  /* prompt tokens; tokens sampled */
    size_t n_decode;         /* single-token forward steps run */
    double prefill_s, decode_s;
    int stop_reason;        /* 0 max tokens, 1 EOS/EOT, 2 callback, 3 context */
} gmrt_gen_stats;

/* Tokenizes prompt as text (BOS per vocab at position 0; control tokens
 * spelled in it, such as "<start_of_turn>", are not parsed: see
 * gmrt_chat_tokenize and gmrt_tokenize for prompts that need them), then as
 * gmrt_session_generate_ids. */
gmrt_status gmrt_session_generate(gmrt_session *s, const char *prompt,
                                  const gmrt_sampler_params *sp,
                                  int32_t max_tokens, gmrt_stream_fn *stream,
                                  void *user, int32_t *out_ids, size_t cap_ids,
                                  gmrt_gen_stats *stats,
                                  gmrt_diag *diag) GMRT_MUST_CHECK;

/* Prefills the n prompt ids at the session's position, then samples up to
 * max_tokens tokens, streaming each piece, and stops at <eos> or the end
 * of turn.  out_ids (may be NULL) receives up to cap_ids generated ids.
 * GMRT_ERR_ARG when the prompt does not fit the context or holds an id
 * outside the vocabulary. */
gmrt_status gmrt_session_generate_ids(gmrt_session *s, const int32_t *ids, size_t n,
                                      const gmrt_sampler_params *sp, int32_t max_tokens,
                                      gmrt_stream_fn *stream, void *user, int32_t *out_ids,
                                      size_t cap_ids, gmrt_gen_stats *stats,
                                      gmrt_diag *diag) GMRT_MUST_CHECK;

/* The session's KV cache, all layers (m->kv_bytes bytes in the compiled
 * kv_cache type; rows not yet written are zero).  For health checks. */
const void *gmrt_session_kv(const gmrt_session *s, size_t *out_bytes);

/* ------------------------------------------------------ CPU check (cpu.c) */

/* True if this CPU lacks one of the comma-separated features (LLVM names:
 * "avx2", "dotprod", ...), which is copied into miss; names it cannot
 * check count as present. */
bool gmrt_cpu_missing(const char *features, char *miss, size_t len);
/* gmrt_cpu_missing, saying on stderr which feature the build of target
 * needs: false if one is missing (a compiled program's first call). */
bool gmrt_cpu_check(const char *features, const char *target);

#endif /* GMRT_H */
