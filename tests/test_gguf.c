/*
 * test_gguf.c — the gguf suite: the GGUF reader against handcrafted files,
 * the writer against the reader, and both against the real Gemma 3 270M.
 *
 * A small byte builder writes GGUF files by hand.  There is one malformed
 * file per check of docs/input-checks.md §2.1 (1–19) and §2.5, each expected to
 * fail with a given status and a message naming what is wrong; every prefix
 * and many one-byte corruptions of a valid file must fail (or load) cleanly,
 * which ASan/UBSan turn into a no-crash, no-over-read guarantee.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmrt_tools.h"
#include "testutil.h"

/* The bit pattern of a float, for exact comparisons. */
static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ------------------------------------------------------------ builder */

/* A growable byte buffer; every field goes in little-endian, as GGUF
 * wants (the host is little-endian, as gguf.c requires). */
typedef struct gb {
    unsigned char *p;
    size_t len, cap;
} gb;

/* Appends n bytes (n may be 0, src then may be NULL). */
static void gb_put(gb *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void gb_u8(gb *b, uint8_t v) { gb_put(b, &v, 1); }
static void gb_u32(gb *b, uint32_t v) { gb_put(b, &v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_put(b, &v, 8); }
static void gb_f32(gb *b, float v) { gb_put(b, &v, 4); }

/* A GGUF string: u64 length, then the bytes (no NUL). */
static void gb_strn(gb *b, const char *s, size_t n)
{
    gb_u64(b, n);
    gb_put(b, s, n);
}

static void gb_str(gb *b, const char *s) { gb_strn(b, s, strlen(s)); }

static void gb_zeros(gb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gb_u8(b, 0);
}

/* Zeros up to the next multiple of align, as between table and data. */
static void gb_pad(gb *b, size_t align)
{
    while (b->len % align)
        gb_u8(b, 0);
}

/* The 24-byte header; KVs start at byte 24, which the expected
 * messages below rely on. */
static void hdr(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_put(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

/* Key and type word of one KV; the caller appends the value. */
static void kv(gb *b, const char *key, uint32_t type)
{
    gb_str(b, key);
    gb_u32(b, type);
}

static void kv_u32(gb *b, const char *key, uint32_t v)
{
    kv(b, key, GMRT_GGUF_UINT32);
    gb_u32(b, v);
}

/* One tensor-table entry: name, n_dims, ne[0..n_dims), type, offset. */
static void tinfo(gb *b, const char *name, uint32_t n_dims, const int64_t *ne,
                  int32_t type, uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        gb_u64(b, (uint64_t)ne[d]);
    gb_u32(b, (uint32_t)type);
    gb_u64(b, offset);
}

/* Writes b to <tmpdir>/<name>; the path is valid until the next call. */
static const char *gb_save(const gb *b, const char *name)
{
    static char path[4096];
    const char *dir = gmc_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(b->p, 1, b->len, f), b->len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The valid two-tensor file the truncation and corruption tests start from.
 * Its last tensor ends exactly at the end of the file (no trailing pad), so
 * that every proper prefix is missing data. */
static void build_valid(gb *b)
{
    hdr(b, 3, 2, 3);
    kv(b, "general.architecture", GMRT_GGUF_STRING);
    gb_str(b, "gemma3");
    kv_u32(b, "a.u32", 7);
    kv(b, "a.arr", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_FLOAT32);
    gb_u64(b, 2);
    gb_f32(b, 1.5f);
    gb_f32(b, 2.5f);
    tinfo(b, "a", 1, (int64_t[]){4}, GMK_DTYPE_F32, 0);
    tinfo(b, "b", 2, (int64_t[]){32, 2}, GMK_DTYPE_Q8_0, 32);
    gb_pad(b, 32);
    for (int i = 0; i < 4; i++)
        gb_f32(b, (float)i + 0.25f);
    gb_zeros(b, 16);
    for (int i = 0; i < 68; i++)
        gb_u8(b, (uint8_t)(i * 3));
}

/* ------------------------------------------------------------ bad files */

/*
 * One builder per malformed file.  Each is the smallest file that reaches
 * its check: everything before the fault is valid, so the check that
 * fires is the one under test and not an earlier one.
 */

/* Check 1: anything but "GGUF" (here ggml's older magic). */
static void bad_magic(gb *b)
{
    gb_put(b, "GGML", 4);
    gb_u32(b, 3);
    gb_u64(b, 0);
    gb_u64(b, 0);
}

/* Check 2: versions 0, 1, newer than 3, and 3 in big-endian byte order. */
static void bad_version0(gb *b) { hdr(b, 0, 0, 0); }
static void bad_version1(gb *b) { hdr(b, 1, 0, 0); }
static void bad_version4(gb *b) { hdr(b, 4, 0, 0); }
static void bad_version_swapped(gb *b) { hdr(b, 0x03000000u, 0, 0); }
/* Check 3: counts negative as int64, above the caps, or larger than the
 * rest of the file could hold. */
static void bad_tensors_negative(gb *b) { hdr(b, 3, UINT64_MAX, 0); }
static void bad_tensors_cap(gb *b) { hdr(b, 3, 65537, 0); }
static void bad_kv_cap(gb *b) { hdr(b, 3, 0, 4097); }

static void bad_kv_fit(gb *b)
{
    hdr(b, 3, 0, 100);
    kv_u32(b, "a", 1);
}

/* Check 4: a string length above the 1 MiB cap, and one past the end of
 * the file (llama.cpp "string exhaustion"). */
static void bad_string_cap(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_STRING);
    gb_u64(b, (1u << 20) + 1);
    gb_zeros(b, 16);
}

static void bad_string_past_end(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_STRING);
    gb_u64(b, 100);
    gb_zeros(b, 10);
}

/* Check 5: an array count above the 2^24 cap, and numeric and string
 * arrays longer than the file (ollama #17042: allocate first, fail later). */
static void bad_array_cap(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_UINT8);
    gb_u64(b, (1u << 24) + 1);
    gb_zeros(b, 16);
}

static void bad_array_past_end(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_UINT32);
    gb_u64(b, 1000);
    gb_zeros(b, 16);
}

static void bad_str_array_past_end(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_STRING);
    gb_u64(b, 1000);
    gb_zeros(b, 16);
}

/* Check 6: empty, duplicate (llama.cpp #24884 aborted) and NUL-bearing
 * keys. */
static void bad_empty_key(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "", GMRT_GGUF_UINT8);
    gb_u8(b, 1);
}

static void bad_dup_key(gb *b)
{
    hdr(b, 3, 0, 2);
    kv_u32(b, "a.b", 1);
    kv_u32(b, "a.b", 2);
}

static void bad_nul_key(gb *b)
{
    hdr(b, 3, 0, 1);
    gb_strn(b, "a\0b", 3);
    gb_u32(b, GMRT_GGUF_UINT8);
    gb_u8(b, 1);
}

/* Check 7: value types outside the enum (13 and -1), nested arrays, an
 * unknown element type, and a bool that is neither 0 nor 1. */
static void bad_kv_type(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", 13);
    gb_u32(b, 0);
}

static void bad_kv_type_negative(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", UINT32_MAX);
    gb_u32(b, 0);
}

static void bad_nested_array(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_ARRAY);
    gb_u64(b, 1);
    gb_u32(b, GMRT_GGUF_UINT8);
    gb_u64(b, 1);
    gb_u8(b, 0);
}

static void bad_array_elem_type(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "k", GMRT_GGUF_ARRAY);
    gb_u32(b, 99);
    gb_u64(b, 1);
    gb_u8(b, 0);
}

static void bad_bool(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "flag", GMRT_GGUF_BOOL);
    gb_u8(b, 2);
}

static void bad_bool_array(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "flags", GMRT_GGUF_ARRAY);
    gb_u32(b, GMRT_GGUF_BOOL);
    gb_u64(b, 3);
    gb_u8(b, 1);
    gb_u8(b, 0);
    gb_u8(b, 255);
}

/* Check 8: general.alignment as int32 (llama.cpp PR #26318), zero
 * (gguf-tools: SIGFPE) and not a power of two. */
static void bad_align_type(gb *b)
{
    hdr(b, 3, 0, 1);
    kv(b, "general.alignment", GMRT_GGUF_INT32);
    gb_u32(b, 32);
}

static void bad_align_zero(gb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "general.alignment", 0);
}

static void bad_align_npot(gb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "general.alignment", 48);
}

/* One tensor info followed by the padding and `data` bytes of data. */
static void one_tensor(gb *b, const char *name, uint32_t nd, const int64_t *ne,
                       int32_t type, uint64_t off, size_t data)
{
    hdr(b, 3, 1, 0);
    tinfo(b, name, nd, ne, type, off);
    gb_pad(b, 32);
    gb_zeros(b, data);
}

/* Check 9: a 64-byte name (one over GGML_MAX_NAME - 1), a duplicate
 * name and an empty one. */
static void bad_name_long(gb *b)
{
    char name[65];
    memset(name, 'x', 64);
    name[64] = '\0';
    one_tensor(b, name, 1, (int64_t[]){4}, GMK_DTYPE_F32, 0, 16);
}

static void bad_name_dup(gb *b)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "w", 1, (int64_t[]){8}, GMK_DTYPE_F32, 0);
    tinfo(b, "w", 1, (int64_t[]){8}, GMK_DTYPE_F32, 32);
    gb_pad(b, 32);
    gb_zeros(b, 64);
}

static void bad_name_empty(gb *b)
{
    one_tensor(b, "", 1, (int64_t[]){4}, GMK_DTYPE_F32, 0, 16);
}

/* Check 10: n_dims above 4 (ggml PR #709 wrote past ne[4]) and zero. */
static void bad_ndims5(gb *b)
{
    one_tensor(b, "w", 5, (int64_t[]){1, 1, 1, 1, 1}, GMK_DTYPE_F32, 0, 4);
}

static void bad_ndims0(gb *b)
{
    one_tensor(b, "w", 0, NULL, GMK_DTYPE_F32, 0, 4);
}

/* Check 11: a negative dimension and an element count that wraps. */
static void bad_ne_negative(gb *b)
{
    one_tensor(b, "w", 2, (int64_t[]){4, -2}, GMK_DTYPE_F32, 0, 32);
}

static void bad_ne_overflow(gb *b)
{
    /* llama.cpp #27203: multiplying first lets (INT64_MAX, 2) through. */
    one_tensor(b, "w", 2, (int64_t[]){INT64_MAX, 2}, GMK_DTYPE_F32, 0, 32);
}

/* Check 12: type ids outside the table (77, -1), and a real ggml type
 * (q2_k) that this runtime does not dequantize. */
static void bad_type_unknown(gb *b)
{
    one_tensor(b, "w", 1, (int64_t[]){4}, 77, 0, 16);
}

static void bad_type_negative(gb *b)
{
    one_tensor(b, "w", 1, (int64_t[]){4}, -1, 0, 16);
}

static void bad_type_unsupported(gb *b)
{
    one_tensor(b, "w", 1, (int64_t[]){256}, GMK_DTYPE_Q2_K, 0, 84);
}

/* Check 13: a row that ends inside a block. */
static void bad_partial_block(gb *b)
{
    one_tensor(b, "w", 2, (int64_t[]){33, 2}, GMK_DTYPE_Q8_0, 0, 68);
}

/* Check 14: 2^62 f32 elements are 2^64 bytes. */
static void bad_nbytes_overflow(gb *b)
{
    one_tensor(b, "w", 1, (int64_t[]){INT64_C(1) << 62}, GMK_DTYPE_F32, 0, 32);
}

/* Check 15: 2^64 - 2 bytes fit, but not once padded to 32 (the GGML_PAD
 * bypass of PR #24759). */
static void bad_pad_overflow(gb *b)
{
    one_tensor(b, "w", 1, (int64_t[]){INT64_MAX}, GMK_DTYPE_F16, 0, 32);
}

/* Check 16: two 2^63-byte tensors: each fits, their sum wraps
 * (CVE-2025-53630). */
static void bad_total_overflow(gb *b)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "a", 1, (int64_t[]){INT64_C(1) << 62}, GMK_DTYPE_F16, 0);
    tinfo(b, "b", 1, (int64_t[]){INT64_C(1) << 62}, GMK_DTYPE_F16,
          UINT64_C(1) << 63);
    gb_pad(b, 32);
}

/* Two f32[8] tensors (32 bytes each); the second at offset `off`. */
static void two_tensors(gb *b, uint64_t off0, uint64_t off1)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "a", 1, (int64_t[]){8}, GMK_DTYPE_F32, off0);
    tinfo(b, "b", 1, (int64_t[]){8}, GMK_DTYPE_F32, off1);
    gb_pad(b, 32);
    gb_zeros(b, 128);
}

/* Check 17: a gap, an overlap, and an unaligned first tensor. */
static void bad_offset_gap(gb *b) { two_tensors(b, 0, 64); }
static void bad_offset_overlap(gb *b) { two_tensors(b, 0, 16); }
static void bad_offset_misaligned(gb *b) { two_tensors(b, 4, 36); }

/* Check 18: a tensor whose data lies past the end of the file (the
 * partial-download case; Ollama CVE-2026-7482). */
static void bad_past_eof(gb *b)
{
    one_tensor(b, "a", 1, (int64_t[]){4}, GMK_DTYPE_F32, 0, 0);
}

/* Check 18b: alignment 1 puts the f32 data section at byte 90. */
static void bad_data_misaligned(gb *b)
{
    hdr(b, 3, 1, 1);
    kv_u32(b, "general.alignment", 1);
    tinfo(b, "a", 1, (int64_t[]){4}, GMK_DTYPE_F32, 0);
    gb_zeros(b, 16);
}

/* Check 19: the data section (2^64 - 32 bytes) fits in uint64 on its
 * own but not once placed after the header. */
static void bad_data_overflow(gb *b)
{
    hdr(b, 3, 2, 0);
    tinfo(b, "a", 1, (int64_t[]){INT64_C(1) << 62}, GMK_DTYPE_F16, 0);
    tinfo(b, "b", 1, (int64_t[]){(INT64_C(1) << 62) - 16}, GMK_DTYPE_F16,
          UINT64_C(1) << 63);
    gb_pad(b, 32);
}

/* The corpus: which check, how to build the file, and what must come
 * back.  The needles include byte offsets where the check reports one. */
typedef struct bad_case {
    const char *check;          /* docs/input-checks.md §2.1 item */
    void (*build)(gb *b);
    gmrt_status status;
    const char *needle;         /* must appear in the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"1", bad_magic, GMRT_ERR_FORMAT, "bad magic \"GGML\" (expected \"GGUF\")"},
    {"2", bad_version0, GMRT_ERR_FORMAT, "version 0 is invalid"},
    {"2", bad_version1, GMRT_ERR_UNSUPPORTED,
     "GGUF version 1 is not supported (need 2 or 3)"},
    {"2", bad_version4, GMRT_ERR_UNSUPPORTED,
     "GGUF version 4 is newer than the supported version 3"},
    {"2", bad_version_swapped, GMRT_ERR_UNSUPPORTED,
     "version field 0x03000000 looks byte-swapped"},
    {"3", bad_tensors_negative, GMRT_ERR_FORMAT, "tensor count -1 is negative"},
    {"3", bad_tensors_cap, GMRT_ERR_LIMIT,
     "tensor count 65537 exceeds the cap of 65536"},
    {"3", bad_kv_cap, GMRT_ERR_LIMIT,
     "metadata count 4097 exceeds the cap of 4096"},
    {"3", bad_kv_fit, GMRT_ERR_FORMAT,
     "metadata count 100 cannot fit in the 17 bytes left at byte 24"},
    {"4", bad_string_cap, GMRT_ERR_LIMIT,
     "string value at byte 37: string length 1048577 exceeds the cap of "
     "1048576 bytes"},
    {"4", bad_string_past_end, GMRT_ERR_FORMAT,
     "truncated: string value at byte 45 needs 100 bytes, only 10 left"},
    {"5", bad_array_cap, GMRT_ERR_LIMIT,
     "key \"k\" at byte 24: array length 16777217 exceeds the cap of 16777216"},
    {"5", bad_array_past_end, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: array of 1000 uint32 cannot fit in the 16 bytes "
     "left"},
    {"5", bad_str_array_past_end, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: array of 1000 string cannot fit in the 16 bytes "
     "left"},
    {"6", bad_empty_key, GMRT_ERR_FORMAT, "key 0 at byte 24 is empty"},
    {"6", bad_dup_key, GMRT_ERR_FORMAT,
     "duplicate key \"a.b\" at byte 43 (first at byte 24)"},
    {"6", bad_nul_key, GMRT_ERR_FORMAT,
     "key \"a\\x00b\" at byte 24 contains a NUL byte"},
    {"7", bad_kv_type, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: unknown value type 13 at byte 33"},
    {"7", bad_kv_type_negative, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: unknown value type -1 at byte 33"},
    {"7", bad_nested_array, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: nested arrays are not supported"},
    {"7", bad_array_elem_type, GMRT_ERR_FORMAT,
     "key \"k\" at byte 24: unknown array element type 99 at byte 37"},
    {"7", bad_bool, GMRT_ERR_FORMAT,
     "key \"flag\" at byte 24: bool value 2 is not 0 or 1"},
    {"7", bad_bool_array, GMRT_ERR_FORMAT,
     "key \"flags\" at byte 24: bool array element 2 is 255, not 0 or 1"},
    {"8", bad_align_type, GMRT_ERR_FORMAT,
     "key \"general.alignment\": expected type uint32, got int32"},
    {"8", bad_align_zero, GMRT_ERR_FORMAT,
     "key \"general.alignment\": 0 is not a nonzero power of two"},
    {"8", bad_align_npot, GMRT_ERR_FORMAT,
     "key \"general.alignment\": 48 is not a nonzero power of two"},
    {"9", bad_name_long, GMRT_ERR_FORMAT,
     "tensor 0 at byte 24: name of 64 bytes is longer than 63"},
    {"9", bad_name_dup, GMRT_ERR_FORMAT,
     "tensor 1 at byte 57: duplicate name \"w\" (also tensor 0)"},
    {"9", bad_name_empty, GMRT_ERR_FORMAT,
     "tensor 0 at byte 24 has an empty name"},
    {"10", bad_ndims5, GMRT_ERR_FORMAT, "tensor 0 \"w\": n_dims 5 is not in 1..4"},
    {"10", bad_ndims0, GMRT_ERR_FORMAT, "tensor 0 \"w\": n_dims 0 is not in 1..4"},
    {"11", bad_ne_negative, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": ne[1] = -2 is negative"},
    {"11", bad_ne_overflow, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": element count overflows int64 at ne[1] = 2"},
    {"12", bad_type_unknown, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": unknown tensor type 77"},
    {"12", bad_type_negative, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": unknown tensor type -1"},
    {"12", bad_type_unsupported, GMRT_ERR_UNSUPPORTED,
     "tensor 0 \"w\": unsupported tensor type q2_k"},
    {"13", bad_partial_block, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": ne[0] = 33 is not a multiple of the q8_0 block size 32"},
    {"14", bad_nbytes_overflow, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": byte size of 4611686018427387904 f32 elements overflows"},
    {"15", bad_pad_overflow, GMRT_ERR_FORMAT,
     "tensor 0 \"w\": byte size 18446744073709551614 overflows when padded to "
     "alignment 32"},
    {"16", bad_total_overflow, GMRT_ERR_FORMAT,
     "tensor 1 \"b\": running data size overflows (9223372036854775808 + "
     "9223372036854775808)"},
    {"17", bad_offset_gap, GMRT_ERR_FORMAT,
     "tensor 1 \"b\": offset 64 (expected 32)"},
    {"17", bad_offset_overlap, GMRT_ERR_FORMAT,
     "tensor 1 \"b\": offset 16 (expected 32)"},
    {"17", bad_offset_misaligned, GMRT_ERR_FORMAT,
     "tensor 0 \"a\": offset 4 (expected 0)"},
    {"18", bad_past_eof, GMRT_ERR_FORMAT,
     "tensor 0 \"a\": data [64, 80) extends past the end of the file "
     "(64 bytes)"},
    {"18", bad_data_misaligned, GMRT_ERR_FORMAT,
     "tensor 0 \"a\": f32 data at byte 90 is not 4-byte aligned"},
    {"19", bad_data_overflow, GMRT_ERR_FORMAT,
     "data section of 18446744073709551584 bytes starting at byte 96 "
     "overflows the file offset range"},
};
#define N_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

/* Opens b's bytes and returns the status; *d gets the message.  Checks
 * the contract on both outcomes: a loaded file is closed again, a failed
 * one leaves *out NULL and d->status equal to the returned status. */
static gmrt_status open_bytes(const gb *b, const char *name, gmrt_diag *d)
{
    gmrt_gguf *g = (gmrt_gguf *)d; /* any non-NULL value: must be reset */
    const char *path = gb_save(b, name);
    gmrt_status s = gmrt_gguf_open(path, &g, d);
    if (s == GMRT_OK) {
        ck_assert_ptr_nonnull(g);
        gmrt_gguf_close(g);
    } else {
        ck_assert_ptr_null(g);
        ck_assert_int_eq(d->status, s);
    }
    return s;
}

/* Each malformed file fails with its status and its message, which
 * names the file; *out is reset to NULL. */
START_TEST(test_bad_file)
{
    const bad_case *c = &bad_cases[_i];
    gb b = {0};
    c->build(&b);
    gmrt_diag d = {0};
    gmrt_status s = open_bytes(&b, "bad.gguf", &d);
    ck_assert_msg(s == c->status, "check %s (%s): got %s: %s", c->check,
                  c->needle, gmrt_status_name(s), d.msg);
    ck_assert_msg(strstr(d.msg, c->needle) != NULL,
                  "check %s: message \"%s\" lacks \"%s\"", c->check, d.msg,
                  c->needle);
    /* Messages name the file first. */
    ck_assert_msg(strstr(d.msg, "/bad.gguf: ") != NULL, "no path in %s", d.msg);
    free(b.p);
}
END_TEST

/* No two malformed files produce the same message. */
START_TEST(test_bad_messages_distinct)
{
    /* Saved under one file name, so the messages differ only by content. */
    static char msgs[N_BAD][sizeof(((gmrt_diag *)0)->msg)];
    for (int i = 0; i < N_BAD; i++) {
        gb b = {0};
        bad_cases[i].build(&b);
        gmrt_diag d = {0};
        ck_assert_int_ne(open_bytes(&b, "same.gguf", &d), GMRT_OK);
        memcpy(msgs[i], d.msg, sizeof d.msg);
        free(b.p);
        for (int k = 0; k < i; k++)
            ck_assert_msg(strcmp(msgs[i], msgs[k]) != 0, "cases %d and %d: %s",
                          k, i, msgs[i]);
    }
}
END_TEST

/* ------------------------------------------------------------ §2.5 */

/* §2.5: the file itself: missing, a directory, empty; and NULL
 * arguments, which are caller errors rather than file errors. */
START_TEST(test_open_errors)
{
    gmrt_diag d = {0};
    gmrt_gguf *g = (gmrt_gguf *)&d;
    const char *dir = gmc_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_ERR_IO);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(d.msg, "cannot open ") && strstr(d.msg, "missing.gguf: "
                  "No such file or directory"), "%s", d.msg);

    ck_assert_int_eq(gmrt_gguf_open(dir, &g, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, ": is a directory, not a regular file") != NULL, "%s",
                  d.msg);

    /* A FIFO (weights or a reference) is refused, not opened: open() would
     * block until a writer came.  The alarm ends the test if it blocks. */
    char fifo[4300];
    snprintf(fifo, sizeof fifo, "%s/fifo-in.gguf", dir);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    alarm(10);
    ck_assert_int_eq(gmrt_gguf_open(fifo, &g, &d), GMRT_ERR_IO);
    alarm(0);
    ck_assert_msg(strstr(d.msg, fifo) && strstr(d.msg, ": is a FIFO, not a regular file"),
                  "%s", d.msg);

    gb empty = {0};
    ck_assert_int_eq(open_bytes(&empty, "empty.gguf", &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "/empty.gguf: file is empty") != NULL, "%s",
                  d.msg);

    ck_assert_int_eq(gmrt_gguf_open(NULL, &g, &d), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_open(path, NULL, &d), GMRT_ERR_ARG);
    /* NULL diag is allowed everywhere. */
    ck_assert_int_eq(gmrt_gguf_open(path, &g, NULL), GMRT_ERR_IO);
}
END_TEST

/* Every proper prefix of a valid file fails cleanly; the whole file loads. */
START_TEST(test_truncated_prefixes)
{
    gb b = {0};
    build_valid(&b);
    size_t full = b.len;
    for (size_t n = 0; n < full; n++) {
        gb p = {b.p, n, n};
        gmrt_diag d = {0};
        gmrt_status s = open_bytes(&p, "prefix.gguf", &d);
        ck_assert_msg(s == GMRT_ERR_FORMAT, "prefix %zu: %s %s", n,
                      gmrt_status_name(s), d.msg);
        ck_assert_msg(d.msg[0] != '\0', "prefix %zu: empty message", n);
    }
    gmrt_diag d = {0};
    ck_assert_int_eq(open_bytes(&b, "prefix.gguf", &d), GMRT_OK);
    free(b.p);
}
END_TEST

/* Overwriting each byte with a few values never crashes or over-reads
 * (ASan/UBSan watch); whatever loads must still be self-consistent. */
START_TEST(test_corrupted_bytes)
{
    gb b = {0};
    build_valid(&b);
    static const int vals[] = {0x00, 0xff, 0x80, 0x7f, -1};
    int loaded = 0;
    for (size_t i = 0; i < b.len; i++) {
        unsigned char orig = b.p[i];
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            b.p[i] = vals[k] < 0 ? (unsigned char)(orig ^ 1) : (unsigned char)vals[k];
            const char *path = gb_save(&b, "corrupt.gguf");
            gmrt_gguf *g = NULL;
            gmrt_diag d = {0};
            gmrt_status s = gmrt_gguf_open(path, &g, &d);
            if (s == GMRT_OK) {
                loaded++;
                for (int64_t t = 0; t < gmrt_gguf_n_tensors(g); t++) {
                    const gmrt_gguf_tensor *ti = gmrt_gguf_tensor_at(g, t);
                    const unsigned char *p = ti->data;
                    volatile unsigned char sink = 0;
                    for (uint64_t j = 0; j < ti->nbytes; j++)
                        sink ^= p[j]; /* ASan flags any byte outside the file */
                    (void)sink;
                }
                gmrt_gguf_close(g);
            } else {
                ck_assert_msg(d.msg[0] != '\0', "byte %zu: empty message", i);
            }
        }
        b.p[i] = orig;
    }
    /* Data bytes and some values can change without breaking the format. */
    ck_assert_int_gt(loaded, 0);
    free(b.p);
}
END_TEST

/* ------------------------------------------------------------ good files */

/* The valid file reads back with every value and pointer right. */
START_TEST(test_valid_small)
{
    gb b = {0};
    build_valid(&b);
    const char *path = gb_save(&b, "valid.gguf");
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    ck_assert_uint_eq(gmrt_gguf_file_size(g), b.len);
    ck_assert_int_eq(gmrt_gguf_n_tensors(g), 2);
    const char *arch;
    ck_assert_int_eq(gmrt_gguf_get_str(g, "general.architecture", &arch, &d),
                     GMRT_OK);
    ck_assert_str_eq(arch, "gemma3");
    int64_t v;
    ck_assert_int_eq(gmrt_gguf_get_int(g, "a.u32", &v, &d), GMRT_OK);
    ck_assert_int_eq(v, 7);
    const float *f;
    uint64_t n;
    ck_assert_int_eq(gmrt_gguf_get_f32s(g, "a.arr", &f, &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_float_eq(f[0], 1.5f);
    ck_assert_float_eq(f[1], 2.5f);
    ck_assert_uint_eq((uintptr_t)f % _Alignof(float), 0);

    const gmrt_gguf_tensor *a = gmrt_gguf_find_tensor(g, "a");
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "b");
    ck_assert_ptr_eq(a, gmrt_gguf_tensor_at(g, 0));
    ck_assert_ptr_eq(t, gmrt_gguf_tensor_at(g, 1));
    ck_assert_ptr_null(gmrt_gguf_tensor_at(g, 2));
    ck_assert_ptr_null(gmrt_gguf_tensor_at(g, -1));
    ck_assert_ptr_null(gmrt_gguf_find_tensor(g, "c"));
    ck_assert_int_eq(a->dtype, GMK_DTYPE_F32);
    ck_assert_int_eq(a->n_dims, 1);
    ck_assert_int_eq(a->ne[0], 4);
    ck_assert_int_eq(a->ne[1], 1);
    ck_assert_int_eq(a->ne[3], 1);
    ck_assert_uint_eq(a->nbytes, 16);
    float av[4];
    memcpy(av, a->data, sizeof av);
    ck_assert_float_eq(av[3], 3.25f);
    ck_assert_int_eq(t->dtype, GMK_DTYPE_Q8_0);
    ck_assert_int_eq(t->ne[0], 32);
    ck_assert_int_eq(t->ne[1], 2);
    ck_assert_uint_eq(t->offset, 32);
    ck_assert_uint_eq(t->nbytes, 68);
    const unsigned char *tb = t->data;
    ck_assert_uint_eq(tb[67], (67 * 3) & 0xff);
    /* Data starts at the aligned end of the table; b ends the file. */
    ck_assert_ptr_eq(tb, (const unsigned char *)a->data + 32);
    ck_assert_uint_eq(b.len - 100, 224);
    gmrt_gguf_close(g);
    free(b.p);
}
END_TEST

/* Getters: widening of every integer type, and one exact message per
 * kind of mismatch (missing key, wrong type, wrong element type, range). */
START_TEST(test_getter_errors)
{
    gb b = {0};
    hdr(&b, 2, 0, 6); /* version 2 is read like 3 */
    kv_u32(&b, "u", 5);
    kv(&b, "big", GMRT_GGUF_UINT64);
    gb_u64(&b, UINT64_MAX);
    kv(&b, "neg", GMRT_GGUF_INT8);
    gb_u8(&b, 0xfe);
    kv(&b, "f64", GMRT_GGUF_FLOAT64);
    double x = 0.1;
    gb_put(&b, &x, 8);
    kv(&b, "arr", GMRT_GGUF_ARRAY);
    gb_u32(&b, GMRT_GGUF_FLOAT32);
    gb_u64(&b, 0);
    kv(&b, "yes", GMRT_GGUF_BOOL);
    gb_u8(&b, 1);
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_open(gb_save(&b, "get.gguf"), &g, &d), GMRT_OK);
    int64_t v;
    double f;
    bool yes = false;
    const char *s;
    const char *const *strs;
    const int32_t *i32;
    uint64_t n;
    ck_assert_int_eq(gmrt_gguf_get_int(g, "neg", &v, &d), GMRT_OK);
    ck_assert_int_eq(v, -2);
    ck_assert_int_eq(gmrt_gguf_get_float(g, "f64", &f, &d), GMRT_OK);
    ck_assert(f == 0.1);
    ck_assert_int_eq(gmrt_gguf_get_bool(g, "yes", &yes, &d), GMRT_OK);
    ck_assert(yes);
    ck_assert(gmrt_gguf_has_key(g, "arr"));
    ck_assert(!gmrt_gguf_has_key(g, "general.alignment"));

    ck_assert_int_eq(gmrt_gguf_get_int(g, "big", &v, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"big\": value 18446744073709551615 does not "
                            "fit in int64");
    ck_assert_int_eq(gmrt_gguf_get_int(g, "nope", &v, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"nope\" not found");
    ck_assert_int_eq(gmrt_gguf_get_int(g, "f64", &v, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"f64\": expected type integer, got float64");
    ck_assert_int_eq(gmrt_gguf_get_float(g, "u", &f, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"u\": expected type float32 or float64, got "
                            "uint32");
    ck_assert_int_eq(gmrt_gguf_get_str(g, "u", &s, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"u\": expected type string, got uint32");
    ck_assert_int_eq(gmrt_gguf_get_bool(g, "u", &yes, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"u\": expected type bool, got uint32");
    ck_assert_int_eq(gmrt_gguf_get_strs(g, "arr", &strs, NULL, &n, &d),
                     GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"arr\": expected type array of string, got "
                            "array of float32");
    ck_assert_int_eq(gmrt_gguf_get_i32s(g, "u", &i32, &n, &d), GMRT_ERR_FORMAT);
    ck_assert_str_eq(d.msg, "key \"u\": expected type array of int32, got "
                            "uint32");
    ck_assert_int_eq(gmrt_gguf_get_int(NULL, "u", &v, &d), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_get_int(g, "u", NULL, &d), GMRT_ERR_ARG);
    ck_assert_str_eq(d.msg, "gguf: NULL file, key or output");
    ck_assert_int_eq(gmrt_gguf_get_strs(g, "arr", &strs, NULL, NULL, &d),
                     GMRT_ERR_ARG);
    gmrt_gguf_close(g);
    gmrt_gguf_close(NULL);
    free(b.p);
}
END_TEST

/* A custom alignment moves the data section and the padding between
 * tensors. */
START_TEST(test_alignment_64)
{
    gb b = {0};
    hdr(&b, 3, 2, 1);
    kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "a", 1, (int64_t[]){3}, GMK_DTYPE_F32, 0);
    tinfo(&b, "b", 1, (int64_t[]){1}, GMK_DTYPE_F32, 64);
    gb_pad(&b, 64);
    size_t data = b.len;
    gb_zeros(&b, 64);
    gb_f32(&b, 42.0f);
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_open(gb_save(&b, "a64.gguf"), &g, &d), GMRT_OK);
    ck_assert_uint_eq(data % 64, 0);
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "b");
    float v;
    memcpy(&v, t->data, 4);
    ck_assert_float_eq(v, 42.0f);
    ck_assert_ptr_eq((const unsigned char *)t->data - 64,
                     gmrt_gguf_find_tensor(g, "a")->data);
    gmrt_gguf_close(g);
    /* With the default 32 the same offsets are a gap. */
    b.p[24 + 8 + 17 + 4] = 32;
    ck_assert_int_eq(open_bytes(&b, "a64.gguf", &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "tensor 1 \"b\": offset 64 (expected 32)"),
                  "%s", d.msg);
    free(b.p);
}
END_TEST

/* ------------------------------------------------------------ writer */

/* Records fill() calls; can make one of them fail, with or without a
 * message of its own. */
typedef struct fill_log {
    int calls;
    int64_t fail_at;            /* tensor index that fails, or -1 */
    bool fail_quietly;          /* fail without writing a message */
} fill_log;

/* The byte fill() puts at offset k of tensor t: differs per tensor and
 * per byte, so a misplaced tensor or a shifted byte shows. */
static unsigned char pattern(int64_t t, size_t k)
{
    return (unsigned char)((t * 37 + (int64_t)k * 11 + 5) & 0xff);
}

static gmrt_status fill_pattern(void *user, int64_t index, const char *name,
                                void *dst, size_t nbytes, gmrt_diag *diag)
{
    fill_log *log = user;
    ck_assert_int_eq(index, log->calls);
    ck_assert_ptr_nonnull(name);
    log->calls++;
    unsigned char *p = dst;
    for (size_t k = 0; k < nbytes; k++) {
        ck_assert_uint_eq(p[k], 0); /* buffers come zeroed */
        p[k] = pattern(index, k);
    }
    if (index == log->fail_at) {
        if (log->fail_quietly)
            return GMRT_ERR_IO;
        return gmrt_fail(diag, GMRT_ERR_IO, "disk on fire at %s", name);
    }
    return GMRT_OK;
}

/* The tensors the round trip writes: every supported type, 1–4 dims,
 * sizes that need padding, and an empty tensor. */
typedef struct wt {
    const char *name;
    int32_t dtype, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
} wt;

static const wt wtensors[] = {
    {"t.f32", GMK_DTYPE_F32, 2, {4, 3}, 48},
    {"t.f16", GMK_DTYPE_F16, 1, {7}, 14},
    {"t.bf16", GMK_DTYPE_BF16, 3, {2, 2, 2}, 16},
    {"t.q8_0", GMK_DTYPE_Q8_0, 2, {64, 2}, 136},
    {"t.q4_0", GMK_DTYPE_Q4_0, 4, {32, 1, 1, 3}, 54},
    {"t.q5_0", GMK_DTYPE_Q5_0, 1, {32}, 22},
    {"t.q4_1", GMK_DTYPE_Q4_1, 1, {64}, 40},
    {"t.q5_1", GMK_DTYPE_Q5_1, 1, {32}, 24},
    {"t.q4_k", GMK_DTYPE_Q4_K, 1, {256}, 144},
    {"t.q5_k", GMK_DTYPE_Q5_K, 2, {256, 2}, 352},
    {"t.q6_k", GMK_DTYPE_Q6_K, 1, {512}, 420},
    {"t.empty", GMK_DTYPE_F32, 2, {0, 5}, 0},
};
#define N_WT ((int)(sizeof wtensors / sizeof wtensors[0]))

/* A writer holding every metadata type (with an embedded NUL, an empty
 * string and an empty array) and all of wtensors[]. */
static gmrt_gguf_writer *make_writer(void)
{
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(gmrt_gguf_writer_set_str(w, "general.architecture",
                                              "gemma3"), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "x.u32", 4000000000u), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_i32(w, "x.i32", -7), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_f32(w, "x.f32", 1e-6f), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_bool(w, "x.true", true), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_bool(w, "x.false", false), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_str(w, "x.empty", ""), GMRT_OK);
    static const char *const strs[] = {"<pad>", "a\0b", "", "\xe2\x96\x81hi"};
    static const uint32_t lens[] = {5, 3, 0, 5};
    ck_assert_int_eq(gmrt_gguf_writer_set_strs(w, "x.strs", strs, lens, 4),
                     GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_strs(w, "x.strs2", strs, NULL, 1),
                     GMRT_OK);
    static const float f32s[] = {-1000.0f, 0.5f, 3.25f};
    ck_assert_int_eq(gmrt_gguf_writer_set_f32s(w, "x.f32s", f32s, 3), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_f32s(w, "x.none", NULL, 0), GMRT_OK);
    static const int32_t i32s[] = {1, 2, 3, 6, -5};
    ck_assert_int_eq(gmrt_gguf_writer_set_i32s(w, "x.i32s", i32s, 5), GMRT_OK);
    for (int i = 0; i < N_WT; i++)
        ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, wtensors[i].name,
                                                     wtensors[i].dtype,
                                                     wtensors[i].n_dims,
                                                     wtensors[i].ne), GMRT_OK);
    return w;
}

/* What make_writer() set, as the reader sees it. */
static void check_metadata(const gmrt_gguf *g)
{
    gmrt_diag d = {0};
    const char *s;
    int64_t v;
    double f;
    bool yes;
    ck_assert_int_eq(gmrt_gguf_get_str(g, "general.architecture", &s, &d), 0);
    ck_assert_str_eq(s, "gemma3");
    ck_assert_int_eq(gmrt_gguf_get_int(g, "x.u32", &v, &d), GMRT_OK);
    ck_assert_int_eq(v, 4000000000);
    ck_assert_int_eq(gmrt_gguf_get_int(g, "x.i32", &v, &d), GMRT_OK);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(gmrt_gguf_get_int(g, "general.alignment", &v, &d), 0);
    ck_assert_int_eq(v, 32);
    ck_assert_int_eq(gmrt_gguf_get_float(g, "x.f32", &f, &d), GMRT_OK);
    ck_assert(f == (double)1e-6f);
    ck_assert_int_eq(gmrt_gguf_get_bool(g, "x.true", &yes, &d), GMRT_OK);
    ck_assert(yes);
    ck_assert_int_eq(gmrt_gguf_get_bool(g, "x.false", &yes, &d), GMRT_OK);
    ck_assert(!yes);
    ck_assert_int_eq(gmrt_gguf_get_str(g, "x.empty", &s, &d), GMRT_OK);
    ck_assert_str_eq(s, "");
    const char *const *strs;
    const uint32_t *lens;
    uint64_t n;
    ck_assert_int_eq(gmrt_gguf_get_strs(g, "x.strs", &strs, &lens, &n, &d), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(lens[1], 3);
    ck_assert_mem_eq(strs[1], "a\0b", 4); /* NUL inside and at the end */
    ck_assert_str_eq(strs[0], "<pad>");
    ck_assert_uint_eq(lens[2], 0);
    ck_assert_str_eq(strs[3], "\xe2\x96\x81hi");
    ck_assert_int_eq(gmrt_gguf_get_strs(g, "x.strs2", &strs, &lens, &n, &d), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(strs[0], "<pad>");
    const float *fs;
    ck_assert_int_eq(gmrt_gguf_get_f32s(g, "x.f32s", &fs, &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_float_eq(fs[0], -1000.0f);
    ck_assert_float_eq(fs[2], 3.25f);
    ck_assert_int_eq(gmrt_gguf_get_f32s(g, "x.none", &fs, &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 0);
    const int32_t *is;
    ck_assert_int_eq(gmrt_gguf_get_i32s(g, "x.i32s", &is, &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(is[3], 6);
    ck_assert_int_eq(is[4], -5);
}

/* Names in dir that start with prefix (leftover temporary files). */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Writer → reader: metadata, tensor table, offsets, data and padding. */
START_TEST(test_writer_roundtrip)
{
    gmrt_gguf_writer *w = make_writer();
    char path[4200];
    snprintf(path, sizeof path, "%s/rt.gguf", gmc_test_tmpdir());
    fill_log log = {0, -1, false};
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d),
                     GMRT_OK);
    ck_assert_int_eq(log.calls, N_WT);
    gmrt_gguf_writer_destroy(w);

    gmrt_gguf *g = NULL;
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    check_metadata(g);
    ck_assert_int_eq(gmrt_gguf_n_tensors(g), N_WT);
    uint64_t off = 0;
    const unsigned char *first = gmrt_gguf_tensor_at(g, 0)->data;
    for (int i = 0; i < N_WT; i++) {
        const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(g, i);
        ck_assert_str_eq(t->name, wtensors[i].name);
        ck_assert_int_eq(t->dtype, wtensors[i].dtype);
        ck_assert_int_eq(t->n_dims, wtensors[i].n_dims);
        for (int k = 0; k < 4; k++)
            ck_assert_int_eq(t->ne[k], k < t->n_dims ? wtensors[i].ne[k] : 1);
        ck_assert_uint_eq(t->nbytes, wtensors[i].nbytes);
        ck_assert_uint_eq(t->offset, off);
        ck_assert_uint_eq((uintptr_t)t->data % 32, 0);
        ck_assert_ptr_eq(t->data, first + off);
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++)
            ck_assert_uint_eq(p[k], pattern(i, k));
        /* Padding after each tensor is zeros. */
        for (uint64_t k = t->nbytes; k % 32; k++)
            ck_assert_uint_eq(p[k], 0);
        off += (t->nbytes + 31) / 32 * 32;
    }
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(gmrt_gguf_file_size(g), (uint64_t)st.st_size);
    ck_assert_uint_eq(gmrt_gguf_file_size(g) % 32, 0);
    gmrt_gguf_close(g);
    ck_assert_int_eq(count_prefixed(gmc_test_tmpdir(), "rt.gguf.tmp"), 0);
}
END_TEST

/* A caller passing general.alignment = 32 through gets exactly one key. */
START_TEST(test_writer_alignment_key)
{
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "general.alignment", 64),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_i32(w, "general.alignment", 32),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "general.alignment", 32),
                     GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "general.alignment", 32),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "w", GMK_DTYPE_F32, 1,
                                                 (int64_t[]){3}), GMRT_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s/al.gguf", gmc_test_tmpdir());
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, NULL, NULL, &d), GMRT_OK);
    gmrt_gguf_writer_destroy(w);
    size_t len;
    unsigned char *bytes = (unsigned char *)gmc_test_read_file(path, &len);
    ck_assert_ptr_nonnull(bytes);
    uint64_t n_kv;
    memcpy(&n_kv, bytes + 16, 8);
    ck_assert_uint_eq(n_kv, 1);
    free(bytes);
    gmrt_gguf *g = NULL;
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "w");
    static const unsigned char zeros[12];
    ck_assert_mem_eq(t->data, zeros, 12); /* no fill: zeros */
    gmrt_gguf_close(g);
}
END_TEST

/* Everything the reader would refuse, the writer refuses first, and a
 * refused call changes nothing. */
START_TEST(test_writer_rejects)
{
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    int64_t ne[4] = {32, 2, 1, 1};
    char long_name[65];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "k", 1), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "k", 2), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_str(w, "k", "x"), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, "", 1), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(w, NULL, 1), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_u32(NULL, "z", 1), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_str(w, "s", NULL), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_f32s(w, "f", NULL, 2), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_i32s(w, "i", (int32_t[]){1},
                                               (1u << 24) + 1), GMRT_ERR_LIMIT);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "t", GMK_DTYPE_Q8_0, 2, ne),
                     GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "t", GMK_DTYPE_Q8_0, 2, ne),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "", GMK_DTYPE_F32, 1, ne),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, long_name, GMK_DTYPE_F32, 1,
                                                 ne), GMRT_ERR_ARG);
    long_name[63] = '\0'; /* 63 bytes is the longest allowed */
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, long_name, GMK_DTYPE_F32, 1,
                                                 ne), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "d0", GMK_DTYPE_F32, 0, ne),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "d5", GMK_DTYPE_F32, 5, ne),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "q2", GMK_DTYPE_Q2_K, 1,
                                                 (int64_t[]){256}),
                     GMRT_ERR_UNSUPPORTED);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "t77", 77, 1, ne),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "blk", GMK_DTYPE_Q4_K, 1,
                                                 (int64_t[]){255}), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "neg", GMK_DTYPE_F32, 2,
                                                 (int64_t[]){4, -1}),
                     GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "huge", GMK_DTYPE_F32, 2,
                                                 (int64_t[]){INT64_C(1) << 40,
                                                             INT64_C(1) << 30}),
                     GMRT_ERR_LIMIT);
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "nul", GMK_DTYPE_F32, 1,
                                                 NULL), GMRT_ERR_ARG);
    /* The rejected calls left nothing behind: the file has 2 tensors, 1+1 KV. */
    char path[4200];
    snprintf(path, sizeof path, "%s/rej.gguf", gmc_test_tmpdir());
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, NULL, NULL, &d), GMRT_OK);
    gmrt_gguf *g = NULL;
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_n_tensors(g), 2);
    ck_assert(gmrt_gguf_has_key(g, "k") && gmrt_gguf_has_key(g, "general.alignment"));
    ck_assert(!gmrt_gguf_has_key(g, "i") && !gmrt_gguf_has_key(g, "f"));
    int64_t v;
    ck_assert_int_eq(gmrt_gguf_get_int(g, "k", &v, &d), GMRT_OK);
    ck_assert_int_eq(v, 1);
    gmrt_gguf_close(g);
    gmrt_gguf_writer_destroy(w);
    gmrt_gguf_writer_destroy(NULL);
}
END_TEST

/* Enough keys and tensors to make both name indices grow and rehash;
 * duplicates are still caught afterwards, and the reader finds them all. */
START_TEST(test_writer_many)
{
    gmrt_gguf_writer *w = gmrt_gguf_writer_create();
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "t.%d", i);
        ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, name, GMK_DTYPE_F32, 1,
                                                     (int64_t[]){1}), GMRT_OK);
        snprintf(name, sizeof name, "k.%d", i);
        ck_assert_int_eq(gmrt_gguf_writer_set_i32(w, name, i), GMRT_OK);
    }
    ck_assert_int_eq(gmrt_gguf_writer_add_tensor(w, "t.0", GMK_DTYPE_F32, 1,
                                                 (int64_t[]){1}), GMRT_ERR_ARG);
    ck_assert_int_eq(gmrt_gguf_writer_set_i32(w, "k.999", 1), GMRT_ERR_ARG);
    char path[4200];
    snprintf(path, sizeof path, "%s/many.gguf", gmc_test_tmpdir());
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, NULL, NULL, &d), GMRT_OK);
    gmrt_gguf_writer_destroy(w);
    gmrt_gguf *g = NULL;
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    ck_assert_int_eq(gmrt_gguf_n_tensors(g), 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "t.%d", i);
        ck_assert_ptr_eq(gmrt_gguf_find_tensor(g, name), gmrt_gguf_tensor_at(g, i));
        ck_assert_uint_eq(gmrt_gguf_tensor_at(g, i)->offset, 32u * (unsigned)i);
        snprintf(name, sizeof name, "k.%d", i);
        int64_t v;
        ck_assert_int_eq(gmrt_gguf_get_int(g, name, &v, &d), GMRT_OK);
        ck_assert_int_eq(v, i);
    }
    gmrt_gguf_close(g);
}
END_TEST

/* A failed write removes its temporary file and leaves an existing file at
 * the destination untouched. */
START_TEST(test_writer_failure_cleans_up)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/keep.gguf", gmc_test_tmpdir());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("previous", f);
    fclose(f);

    gmrt_gguf_writer *w = make_writer();
    gmrt_diag d = {0};
    fill_log log = {0, 3, false};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d),
                     GMRT_ERR_IO);
    ck_assert_str_eq(d.msg, "disk on fire at t.q8_0");
    ck_assert_int_eq(log.calls, 4);
    ck_assert_int_eq(count_prefixed(gmc_test_tmpdir(), "keep.gguf.tmp"), 0);
    size_t len;
    char *old = gmc_test_read_file(path, &len);
    ck_assert_str_eq(old, "previous");
    free(old);

    log = (fill_log){0, 0, true};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d),
                     GMRT_ERR_IO);
    ck_assert_str_eq(d.msg, "gguf writer: filling tensor \"t.f32\" failed");
    ck_assert_int_eq(count_prefixed(gmc_test_tmpdir(), "keep.gguf.tmp"), 0);

    char bad[4300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.gguf", gmc_test_tmpdir());
    ck_assert_int_eq(gmrt_gguf_writer_write(w, bad, NULL, NULL, &d),
                     GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, "cannot create a temporary file beside ") &&
                  strstr(d.msg, "x.gguf: No such file or directory"),
                  "%s", d.msg);
    ck_assert_int_eq(gmrt_gguf_writer_write(w, NULL, NULL, NULL, &d),
                     GMRT_ERR_ARG);

    /* The same writer still succeeds afterwards and replaces the file. */
    log = (fill_log){0, -1, false};
    ck_assert_int_eq(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d),
                     GMRT_OK);
    gmrt_gguf_writer_destroy(w);
    gmrt_gguf *g = NULL;
    ck_assert_int_eq(gmrt_gguf_open(path, &g, &d), GMRT_OK);
    check_metadata(g);
    gmrt_gguf_close(g);
}
END_TEST

/* The writer replaces only a regular file (or creates a new one): a
 * symbolic link, a directory, a FIFO and a character device are refused
 * with the path and what it is, left as they were, and no temporary file
 * stays behind.  /dev/null is reached through a link of our own, so that a
 * writer without the check replaces the link, never /dev/null itself. */
START_TEST(test_writer_only_regular)
{
    char dir[4200], target[4300], link[4300], sub[4300], fifo[4300], null[4300];
    snprintf(dir, sizeof dir, "%s/only-regular", gmc_test_tmpdir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(target, sizeof target, "%s/target.gguf", dir);
    snprintf(link, sizeof link, "%s/link.gguf", dir);
    snprintf(sub, sizeof sub, "%s/dir.gguf", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
    snprintf(null, sizeof null, "%s/null.gguf", dir);
    FILE *f = fopen(target, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("previous", f);
    fclose(f);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert_int_eq(symlink("/dev/null", null), 0);
    static const struct { const char *name, *kind; } cases[] = {
        {"link.gguf", "is a symbolic link"}, {"dir.gguf", "is a directory"},
        {"fifo.gguf", "is a FIFO"}, {"null.gguf", "is a symbolic link"},
    };
    gmrt_gguf_writer *w = make_writer();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        gmrt_diag d = {0};
        fill_log log = {0, -1, false};
        ck_assert_int_eq(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d),
                         GMRT_ERR_IO);
        ck_assert_msg(strstr(d.msg, path) && strstr(d.msg, cases[i].kind) &&
                      strstr(d.msg, "only a regular file is replaced"), "%s", d.msg);
    }
    /* The same refusal for a device reached directly, which is checked
     * before anything is created. */
    gmrt_diag d = {0};
    if (access("/dev", W_OK) != 0) { /* as root the old code would replace it */
        ck_assert_int_eq(gmrt_gguf_writer_write(w, "/dev/null", NULL, NULL, &d),
                         GMRT_ERR_IO);
        ck_assert_msg(strstr(d.msg, "/dev/null: is a character device"), "%s", d.msg);
    }
    /* A character device of our own (a copy of /dev/null's numbers), where
     * mknod is allowed: checked as such, not only as a link. */
    char chr[4300];
    snprintf(chr, sizeof chr, "%s/chr.gguf", dir);
    struct stat st;
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    int extra = 0;
    if (mknod(chr, S_IFCHR | 0666, st.st_rdev) == 0) {
        extra = 1;
        ck_assert_int_eq(gmrt_gguf_writer_write(w, chr, NULL, NULL, &d), GMRT_ERR_IO);
        ck_assert_msg(strstr(d.msg, chr) && strstr(d.msg, "is a character device"), "%s",
                      d.msg);
        ck_assert_int_eq(lstat(chr, &st), 0);
        ck_assert(S_ISCHR(st.st_mode));
    }
    gmrt_gguf_writer_destroy(w);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(null, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    size_t len;
    char *old = gmc_test_read_file(target, &len);
    ck_assert_str_eq(old, "previous");
    free(old);
    /* Nothing but the entries made above (and . and ..). */
    ck_assert_int_eq(count_prefixed(dir, ""), 7 + extra);
}
END_TEST

/* The temporary file is created exclusively under a name nobody can plant
 * in advance: a link at "<path>.tmp" pointing to another file is neither
 * followed nor replaced, and the write still succeeds. */
START_TEST(test_writer_tmp_not_followed)
{
    char dir[4200], path[4300], tmp[4400], victim[4300];
    snprintf(dir, sizeof dir, "%s/tmp-planted", gmc_test_tmpdir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *f = fopen(victim, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("precious", f);
    fclose(f);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    gmrt_gguf_writer *w = make_writer();
    gmrt_diag d = {0};
    fill_log log = {0, -1, false};
    ck_assert_msg(gmrt_gguf_writer_write(w, path, fill_pattern, &log, &d) == GMRT_OK,
                  "%s", d.msg);
    gmrt_gguf_writer_destroy(w);
    size_t len;
    char *old = gmc_test_read_file(victim, &len);
    ck_assert_str_eq(old, "precious");
    free(old);
    struct stat st;
    ck_assert_int_eq(lstat(tmp, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    /* out.gguf, out.gguf.tmp (ours) and nothing else of that name. */
    ck_assert_int_eq(count_prefixed(dir, "out.gguf"), 2);
}
END_TEST

/* ------------------------------------------------------------ real model */

/* Opens the real Gemma 3 270M Q4_K_M file, or fails the test saying how
 * to get it. */
static gmrt_gguf *open_real_model(void)
{
    const char *path = gmc_test_model_path();
    ck_assert_msg(path != NULL, "the Gemma 3 270M GGUF was not found: run "
                                "scripts/setup (or set GMC_MODEL_GGUF)");
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_open(path, &g, &d) == GMRT_OK, "%s", d.msg);
    return g;
}

/* Its 33 keys, as gguf-py lists them. */
static const char *const real_keys[33] = {
    "general.architecture", "general.type", "general.name",
    "general.basename", "general.size_label", "general.license",
    "general.tags", "gemma3.context_length", "gemma3.embedding_length",
    "gemma3.block_count", "gemma3.feed_forward_length",
    "gemma3.attention.head_count",
    "gemma3.attention.layer_norm_rms_epsilon",
    "gemma3.attention.key_length", "gemma3.attention.value_length",
    "gemma3.rope.freq_base", "gemma3.attention.sliding_window",
    "gemma3.attention.head_count_kv", "tokenizer.ggml.model",
    "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_sep_token", "tokenizer.ggml.add_eos_token",
    "tokenizer.ggml.add_space_prefix", "general.quantization_version",
    "general.file_type",
};

/* Counts and hyper-parameters: the header's KV count, the reader's, and
 * every key in file order. */
START_TEST(test_real_model_metadata)
{
    gmrt_gguf *g = open_real_model();
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_gguf_n_tensors(g), 236);
    FILE *f = fopen(gmc_test_model_path(), "rb");
    unsigned char head[24];
    ck_assert_uint_eq(fread(head, 1, 24, f), 24);
    fclose(f);
    uint64_t n_kv;
    memcpy(&n_kv, head + 16, 8);
    ck_assert_uint_eq(n_kv, 33);
    ck_assert_int_eq(gmrt_gguf_n_kv(g), 33);
    ck_assert_ptr_null(gmrt_gguf_key_at(g, 33));
    for (int i = 0; i < 33; i++) {
        ck_assert_msg(gmrt_gguf_has_key(g, real_keys[i]), "missing %s",
                      real_keys[i]);
        ck_assert_str_eq(gmrt_gguf_key_at(g, i), real_keys[i]);
    }
    ck_assert(!gmrt_gguf_has_key(g, "general.alignment"));

    int64_t v;
    ck_assert_int_eq(gmrt_gguf_get_int(g, "gemma3.embedding_length", &v, &d), 0);
    ck_assert_int_eq(v, 640);
    ck_assert_int_eq(gmrt_gguf_get_int(g, "gemma3.block_count", &v, &d), 0);
    ck_assert_int_eq(v, 18);
    double eps;
    ck_assert_int_eq(gmrt_gguf_get_float(g, "gemma3.attention."
                                         "layer_norm_rms_epsilon", &eps, &d), 0);
    ck_assert(eps == (double)1e-6f);
    const char *arch;
    ck_assert_int_eq(gmrt_gguf_get_str(g, "general.architecture", &arch, &d), 0);
    ck_assert_str_eq(arch, "gemma3");
    gmrt_gguf_close(g);
}
END_TEST

/* The tokenizer arrays: lengths and a few entries. */
START_TEST(test_real_model_vocab)
{
    gmrt_gguf *g = open_real_model();
    gmrt_diag d = {0};
    const char *const *toks;
    const uint32_t *lens;
    uint64_t n;
    ck_assert_int_eq(gmrt_gguf_get_strs(g, "tokenizer.ggml.tokens", &toks,
                                        &lens, &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 262144);
    ck_assert_str_eq(toks[2], "<bos>");
    ck_assert_str_eq(toks[105], "<start_of_turn>");
    ck_assert_str_eq(toks[1000], "put");
    ck_assert_uint_eq(lens[1000], 3);
    const float *scores;
    ck_assert_int_eq(gmrt_gguf_get_f32s(g, "tokenizer.ggml.scores", &scores,
                                        &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 262144);
    ck_assert_float_eq(scores[1000], -506.0f);
    const int32_t *types;
    ck_assert_int_eq(gmrt_gguf_get_i32s(g, "tokenizer.ggml.token_type", &types,
                                        &n, &d), GMRT_OK);
    ck_assert_uint_eq(n, 262144);
    ck_assert_int_eq(types[105], 3);
    ck_assert_int_eq(types[1000], 1);
    gmrt_gguf_close(g);
}
END_TEST

/* Shapes and types from the brief, and values as gguf-py dequantizes them
 * (which also checks that the data pointers are right). */
START_TEST(test_real_model_tensors)
{
    gmrt_gguf *g = open_real_model();
    const gmrt_gguf_tensor *t = gmrt_gguf_find_tensor(g, "token_embd.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, GMK_DTYPE_Q8_0);
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert_int_eq(t->ne[0], 640);
    ck_assert_int_eq(t->ne[1], 262144);
    ck_assert_uint_eq(t->nbytes, 680ull * 262144);
    float row[2048];
    gmrt_dequantize_row(t->dtype, (const unsigned char *)t->data + 680 * 1000,
                        row, 640);
    ck_assert_uint_eq(bits_of(row[0]), 0xbc98d300u);
    ck_assert_uint_eq(bits_of(row[3]), 0xbd40d980u);

    t = gmrt_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, GMK_DTYPE_Q6_K);
    ck_assert_int_eq(t->ne[0], 2048);
    ck_assert_int_eq(t->ne[1], 640);
    gmrt_dequantize_row(t->dtype, (const unsigned char *)t->data + 1680 * 3,
                        row, 2048);
    ck_assert_uint_eq(bits_of(row[2]), 0x3d006980u);

    t = gmrt_gguf_find_tensor(g, "output_norm.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, GMK_DTYPE_F32);
    float norm[4];
    memcpy(norm, t->data, sizeof norm);
    ck_assert_float_eq(norm[0], 7.125f);
    ck_assert_float_eq(norm[3], 145.0f);
    /* Every tensor is in the file and follows the previous one. */
    uint64_t off = 0;
    for (int64_t i = 0; i < gmrt_gguf_n_tensors(g); i++) {
        t = gmrt_gguf_tensor_at(g, i);
        ck_assert_uint_eq(t->offset, off);
        off += (t->nbytes + 31) / 32 * 32;
    }
    gmrt_gguf_close(g);
}
END_TEST

/* Cases: malformed (the §2.1/§2.5 corpus), reader, writer, real_model. */
Suite *gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("malformed");
    tcase_add_loop_test(tc, test_bad_file, 0, N_BAD);
    tcase_add_test(tc, test_bad_messages_distinct);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_truncated_prefixes);
    tcase_add_test(tc, test_corrupted_bytes);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("reader");
    tcase_add_test(tc, test_valid_small);
    tcase_add_test(tc, test_getter_errors);
    tcase_add_test(tc, test_alignment_64);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_add_test(tc, test_writer_roundtrip);
    tcase_add_test(tc, test_writer_alignment_key);
    tcase_add_test(tc, test_writer_rejects);
    tcase_add_test(tc, test_writer_many);
    tcase_add_test(tc, test_writer_failure_cleans_up);
    tcase_add_test(tc, test_writer_only_regular);
    tcase_add_test(tc, test_writer_tmp_not_followed);
    suite_add_tcase(s, tc);
    tc = tcase_create("real_model");
    tcase_add_test(tc, test_real_model_metadata);
    tcase_add_test(tc, test_real_model_vocab);
    tcase_add_test(tc, test_real_model_tensors);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
