/*
 * test_safetensors.c — the safetensors suite: the strict JSON parser, the
 * safetensors reader against hand-built malicious files (one per check of
 * docs/input-checks.md §2.2, 21–28, plus sharded-index cases), weight binding
 * from a Hugging Face-named checkpoint, and `gemmac import`.
 *
 * Every bad input must give a specific error naming what is wrong, never a
 * crash (the suite runs under ASan/UBSan in CI).  The binding test writes
 * the tiny graph's `gemmac init` weights as an HF checkpoint (HF names,
 * norm weights minus one) and requires the same logits from both files, so
 * the expected values come from the GGUF path, not from the code under test.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "gmrt_tools.h"
#include "import.h"
#include "model.h"
#include "testutil.h"

/* ----------------------------------------------------------------- JSON */

static gmrt_status parse(const char *text, gmrt_diag *d, gmrt_json **out)
{
    return gmrt_json_parse(text, strlen(text), "t.json", NULL, out, d);
}

START_TEST(test_json_values)
{
    gmrt_json *doc;
    gmrt_diag d = {0};
    const char *text = "{\"i\": -42, \"big\": 123456789012345678901, \"f\": 2.5e-1,"
                       " \"s\": \"a\\u00e9\\ud83d\\ude00\\n\", \"a\": [true, false, null],"
                       " \"o\": {}}";
    ck_assert_int_eq(parse(text, &d, &doc), GMRT_OK);
    const gmrt_json_value *r = gmrt_json_root(doc);
    ck_assert_int_eq(gmrt_json_get(r, "i")->kind, GMRT_JSON_INT);
    ck_assert_int_eq(gmrt_json_get(r, "i")->u.i, -42);
    ck_assert_int_eq(gmrt_json_get(r, "big")->kind, GMRT_JSON_DOUBLE);
    ck_assert_double_eq(gmrt_json_get(r, "f")->u.d, 0.25);
    const gmrt_json_value *s = gmrt_json_get(r, "s");
    ck_assert_uint_eq(s->u.s.len, 8);
    ck_assert_mem_eq(s->u.s.p, "a\xc3\xa9\xf0\x9f\x98\x80\n", 8);
    ck_assert_uint_eq(gmrt_json_get(r, "a")->u.c.n, 3);
    ck_assert_int_eq(gmrt_json_get(r, "a")->u.c.items[2].kind, GMRT_JSON_NULL);
    ck_assert_ptr_null(gmrt_json_get(r, "missing"));
    ck_assert_str_eq(r->u.c.members[0].key, "i"); /* document order kept */
    gmrt_json_destroy(doc);
    /* Every other escape, and a \\u escape that needs three UTF-8 bytes. */
    ck_assert_int_eq(parse("\"\\\"\\\\\\/\\b\\f\\r\\t\\u20AC\"", &d, &doc), GMRT_OK);
    s = gmrt_json_root(doc);
    ck_assert_uint_eq(s->u.s.len, 10);
    ck_assert_mem_eq(s->u.s.p, "\"\\/\b\f\r\t\xe2\x82\xac", 10);
    gmrt_json_destroy(doc);
}
END_TEST

static const struct { const char *text, *msg; gmrt_status st; } bad_json[] = {
    {"{\"a\": 1, \"a\": 2}", "t.json:1:1 (byte 0): duplicate key \"a\" in this object",
     GMRT_ERR_FORMAT},
    {"[1, 2,]", "t.json:1:7 (byte 6): expected a value", GMRT_ERR_FORMAT},
    {"{\"a\"\n  1}", "t.json:2:3 (byte 7): expected ':' after the key \"a\"", GMRT_ERR_FORMAT},
    {"01", "t.json:1:2 (byte 1): expected the end of the document", GMRT_ERR_FORMAT},
    {"1e999", "number 1e999 is out of range", GMRT_ERR_FORMAT},
    {"\"\xc0\xaf\"", "invalid UTF-8 in a string", GMRT_ERR_FORMAT},
    {"\"\xed\xa0\x80\"", "invalid UTF-8 in a string", GMRT_ERR_FORMAT},
    {"\"a\tb\"", "control character 0x09 in a string", GMRT_ERR_FORMAT},
    {"\"\\ud800x\"", "high surrogate \\uD800 is not followed by a low surrogate",
     GMRT_ERR_FORMAT},
    {"\"\\x\"", "unknown escape \\x", GMRT_ERR_FORMAT},
    {"\"abc", "unterminated string", GMRT_ERR_FORMAT},
    {"{} x", "expected the end of the document, found an unexpected character",
     GMRT_ERR_FORMAT},
    {"", "expected a value, found end of input", GMRT_ERR_FORMAT},
    {"-", "expected a digit in a number", GMRT_ERR_FORMAT},
    {"1.", "expected a digit after '.'", GMRT_ERR_FORMAT},
    {"+1", "expected a value (object, array", GMRT_ERR_FORMAT},
    {"tru", "expected a value (object, array", GMRT_ERR_FORMAT},
    {"[1 2]", "t.json:1:4 (byte 3): expected ',' or ']', found an unexpected "
     "character", GMRT_ERR_FORMAT},
    {"1e+", "expected a digit in the exponent", GMRT_ERR_FORMAT},
    {"1234567890123456789012345678901234567890123456789012345678901234",
     "number longer than 63 characters", GMRT_ERR_LIMIT},
    {"\"\\u12G4\"", "\\u must be followed by 4 hex digits", GMRT_ERR_FORMAT},
    {"\"\\uDC00\"", "lone low surrogate \\uDC00", GMRT_ERR_FORMAT},
};

START_TEST(test_json_errors)
{
    gmrt_json *doc = (gmrt_json *)1;
    gmrt_diag d = {0};
    ck_assert_int_eq(parse(bad_json[_i].text, &d, &doc), bad_json[_i].st);
    ck_assert_ptr_null(doc);
    ck_assert_msg(strstr(d.msg, bad_json[_i].msg) != NULL, "case %d: got \"%s\"", _i, d.msg);
}
END_TEST

/* Depth 64 parses, 65 does not; the member cap holds. */
START_TEST(test_json_limits)
{
    char deep[200];
    gmrt_json *doc;
    gmrt_diag d = {0};
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    ck_assert_int_eq(parse(deep, &d, &doc), GMRT_OK);
    gmrt_json_destroy(doc);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    ck_assert_int_eq(parse(deep, &d, &doc), GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "nesting deeper than 64 levels"), "%s", d.msg);
    gmrt_json_limits lim;
    gmrt_json_limits_default(&lim);
    lim.max_members = 2;
    ck_assert_int_eq(gmrt_json_parse("[1,2,3]", 7, "t.json", &lim, &doc, &d), GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "more than 2 elements in one array"), "%s", d.msg);
    /* The key count of check 22, the value count and the string length. */
    const char *three = "{\"a\": 1, \"b\": 2, \"c\": 3}";
    ck_assert_int_eq(gmrt_json_parse(three, strlen(three), "t.json", &lim, &doc, &d),
                     GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "more than 2 keys in one object"), "%s", d.msg);
    gmrt_json_limits_default(&lim);
    lim.max_values = 3;
    ck_assert_int_eq(gmrt_json_parse("[1,2,3]", 7, "t.json", &lim, &doc, &d), GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "more than 3 values"), "%s", d.msg);
    gmrt_json_limits_default(&lim);
    lim.max_string = 3;
    ck_assert_int_eq(gmrt_json_parse("\"abcd\"", 6, "t.json", &lim, &doc, &d), GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "string of 4 bytes is above the cap of 3"), "%s", d.msg);
}
END_TEST

/* ---------------------------------------------------------- safetensors */

/* Writes 8-byte n, the header text, then data_len bytes (0x11 pattern);
 * n = strlen(header) unless n_override != UINT64_MAX. */
static const char *write_st(const char *name, const char *header, size_t data_len,
                            uint64_t n_override)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", gmc_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t n = n_override != UINT64_MAX ? n_override : strlen(header);
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++)
        fputc(0x11 + (int)(i % 7), f);
    fclose(f);
    return path;
}

#define T2(a, b) "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [" a "]}, " \
                 "\"b\": {\"dtype\": \"F16\", \"shape\": [2, 1], \"data_offsets\": [" b "]}}"

START_TEST(test_st_valid)
{
    const char *p = write_st("ok.safetensors",
                             "{\"__metadata__\": {\"format\": \"pt\"}, "
                             "\"b\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [8, 20]},"
                             "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                             "\"z\": {\"dtype\": \"F16\", \"shape\": [0, 5], \"data_offsets\": [20, 20]}}  ",
                             20, UINT64_MAX);
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_safetensors_open(p, &st, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_int_eq(gmrt_safetensors_n_tensors(st), 3);
    const gmrt_st_tensor *b = gmrt_safetensors_find(st, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->dtype, GMK_DTYPE_BF16);
    ck_assert_int_eq(b->n_dims, 2);
    ck_assert_int_eq(b->shape[1], 3);
    ck_assert_uint_eq(b->nbytes, 12);
    const gmrt_st_tensor *a = gmrt_safetensors_find(st, "a");
    /* b starts 8 bytes after a; the data pattern is 0x11 + i % 7. */
    ck_assert_ptr_eq((const char *)b->data, (const char *)a->data + 8);
    ck_assert_int_eq(((const unsigned char *)b->data)[0], 0x11 + 8 % 7);
    ck_assert_ptr_null(gmrt_safetensors_find(st, "__metadata__"));
    gmrt_safetensors_close(st);
}
END_TEST

typedef struct st_case {
    const char *check, *header;
    size_t data;
    uint64_t n;
    gmrt_status st;
    const char *msg;
} st_case;

#define NO_N UINT64_MAX
static const st_case st_cases[] = {
    {"21", "", 0, 200000000, GMRT_ERR_LIMIT, "header length 200000000 is above the cap"},
    {"21", "{}", 0, 50, GMRT_ERR_FORMAT, "header length 50 is past the end of the file"},
    {"22", "[1, 2]", 0, NO_N, GMRT_ERR_FORMAT, "the header must be a JSON object, got an array"},
    {"22", "{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\"}}", 0, NO_N, GMRT_ERR_FORMAT,
     "duplicate key \"dtype\""},
    {"22", "{\"\xff\": 1}", 0, NO_N, GMRT_ERR_FORMAT, "invalid UTF-8"},
    {"23", "{\"a\": {\"dtype\": \"F99\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "tensor \"a\" has unknown dtype \"F99\""},
    {"23", "{\"a\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8, NO_N,
     GMRT_ERR_UNSUPPORTED, "unsupported dtype I64 for tensor \"a\""},
    {"24", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "\"data_offsets\" must be two integers 0 <= begin <= end"},
    {"24", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "\"data_offsets\" must be two integers"},
    {"24", "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 0]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "\"data_offsets\" must be two integers"},
    {"25", T2("0, 8", "12, 16"), 16, NO_N, GMRT_ERR_FORMAT,
     "tensor \"b\" begins at data offset 12 but the previous tensor ends at 8 (hole)"},
    {"25", T2("0, 8", "4, 8"), 8, NO_N, GMRT_ERR_FORMAT, "(overlap)"},
    {"25", T2("4, 12", "0, 4"), 12, NO_N, GMRT_OK, NULL}, /* order in the header is free */
    {"26", T2("0, 8", "8, 14"), 14, NO_N, GMRT_ERR_FORMAT,
     "data_offsets span 6 bytes but its shape and dtype need 4"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 16], "
           "\"data_offsets\": [0, 0]}}", 0, NO_N, GMRT_ERR_FORMAT, "element count overflows"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": [0, 4611686018427387904], "
           "\"data_offsets\": [0, 4]}}", 4, NO_N, GMRT_ERR_FORMAT,
     "data_offsets span 4 bytes but its shape and dtype need 0"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "shape[0] must be a non-negative integer"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], "
           "\"data_offsets\": [0, 4]}}", 4, NO_N, GMRT_ERR_LIMIT, "has 9 dimensions"},
    {"27", T2("0, 8", "8, 12"), 13, NO_N, GMRT_ERR_FORMAT,
     "the tensors end at byte"},
    {"27", T2("0, 8", "8, 12"), 11, NO_N, GMRT_ERR_FORMAT, "the tensors end at byte"},
    {"28", "{\"__metadata__\": {\"a\": {\"b\": \"c\"}}}", 0, NO_N, GMRT_ERR_FORMAT,
     "__metadata__ entry \"a\" must be a string, got an object"},
    {"28", "{\"__metadata__\": [\"x\"]}", 0, NO_N, GMRT_ERR_FORMAT,
     "__metadata__ must be an object of strings"},
    {"-", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], "
          "\"extra\": 1}}", 4, NO_N, GMRT_ERR_FORMAT, "unknown key \"extra\""},
    {"-", "{\"a\": [1]}", 0, NO_N, GMRT_ERR_FORMAT, "tensor \"a\" must be an object"},
    {"23", "{\"a\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "tensor \"a\": \"dtype\" must be a string"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "tensor \"a\": \"shape\" must be an array of integers"},
    {"26", "{\"a\": {\"dtype\": \"F32\", \"shape\": [576460752303423488], "
           "\"data_offsets\": [0, 4]}}", 4, NO_N, GMRT_ERR_FORMAT, "byte size overflows"},
    {"-", "{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, NO_N,
     GMRT_ERR_FORMAT, "a tensor name is empty, longer than 1024 bytes or contains NUL"},
};

START_TEST(test_st_malformed)
{
    const st_case *c = &st_cases[_i];
    char name[64];
    snprintf(name, sizeof name, "bad%d.safetensors", _i);
    const char *p = write_st(name, c->header, c->data, c->n);
    gmrt_safetensors *st = (gmrt_safetensors *)1;
    gmrt_diag d = {0};
    gmrt_status s = gmrt_safetensors_open(p, &st, &d);
    ck_assert_msg(s == c->st, "check %s (case %d): status %d, want %d: %s", c->check, _i,
                  s, c->st, d.msg);
    if (c->msg) {
        ck_assert_ptr_null(st);
        ck_assert_msg(strstr(d.msg, c->msg) != NULL, "check %s (case %d): got \"%s\"",
                      c->check, _i, d.msg);
        ck_assert_msg(strstr(d.msg, name) != NULL, "message must name the file: %s", d.msg);
    } else {
        gmrt_safetensors_close(st);
    }
}
END_TEST

/* Check 21 (file shorter than 8 bytes) and every truncation of a valid
 * file: an error, never a crash or an over-read. */
START_TEST(test_st_truncated)
{
    const char *p = write_st("trunc.safetensors", T2("0, 8", "8, 12"), 12, NO_N);
    size_t len;
    char *full = gmc_test_read_file(p, &len);
    ck_assert_ptr_nonnull(full);
    char path[4200];
    snprintf(path, sizeof path, "%s/cut.safetensors", gmc_test_tmpdir());
    for (size_t cut = 0; cut < len; cut++) {
        FILE *f = fopen(path, "wb");
        fwrite(full, 1, cut, f);
        fclose(f);
        gmrt_safetensors *st;
        gmrt_diag d = {0};
        ck_assert_int_ne(gmrt_safetensors_open(path, &st, &d), GMRT_OK);
        if (cut < 8)
            ck_assert_msg(strstr(d.msg, "too short for a safetensors file"), "%s", d.msg);
    }
    free(full);
}
END_TEST

/* Check 28's size cap on __metadata__ (1 MiB of keys and values), and a
 * tensor name over 1024 bytes: headers too long to write out as cases. */
START_TEST(test_st_caps)
{
    size_t big = (size_t)GMRT_ST_MAX_METADATA;
    char *h = malloc(big + 2048);
    ck_assert_ptr_nonnull(h);
    int n = sprintf(h, "{\"__metadata__\": {\"kk\": \"");
    memset(h + n, 'x', big);
    strcpy(h + n + big, "\"}}");
    const char *p = write_st("meta-cap.safetensors", h, 0, NO_N);
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_safetensors_open(p, &st, &d), GMRT_ERR_LIMIT);
    ck_assert_msg(strstr(d.msg, "__metadata__ holds 1048578 bytes, above the cap of 1048576"),
                  "%s", d.msg);
    n = sprintf(h, "{\"");
    memset(h + n, 'n', 1025);
    strcpy(h + n + 1025, "\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}");
    p = write_st("name-cap.safetensors", h, 4, NO_N);
    ck_assert_int_eq(gmrt_safetensors_open(p, &st, &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "a tensor name is empty, longer than 1024 bytes"), "%s", d.msg);
    free(h);
}
END_TEST

/* ---------------------------------------------------------------- index */

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char *index_dir(const char *name)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", gmc_test_tmpdir(), name);
    mkdir(dir, 0755);
    char rel[4300];
    snprintf(rel, sizeof rel, "%s/s1.safetensors", name);
    write_st(rel, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
                  "\"c\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [4, 8]}}", 8, NO_N);
    snprintf(rel, sizeof rel, "%s/s2.safetensors", name);
    write_st(rel, "{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, NO_N);
    return dir;
}

static const struct { const char *index, *msg; } index_cases[] = {
    {"{\"metadata\": {\"total_size\": 12}, \"weight_map\": {\"a\": \"s1.safetensors\", "
     "\"c\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}", NULL},
    {"{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}",
     "tensor \"c\" of shard s1.safetensors is not in the weight_map"},
    {"{\"weight_map\": {\"a\": \"s1.safetensors\", \"c\": \"s1.safetensors\", "
     "\"b\": \"s1.safetensors\"}}",
     "weight_map names \"b\" in s1.safetensors, which does not have it"},
    {"{\"weight_map\": {\"a\": \"s2.safetensors\", \"b\": \"s2.safetensors\"}}",
     "weight_map names \"a\" in s2.safetensors, which does not have it"},
    {"{\"weight_map\": {\"a\": \"../s1.safetensors\"}}",
     "weight_map[\"a\"] must be a plain file name"},
    {"{\"weight_map\": {\"a\": \"missing.safetensors\"}}", "missing.safetensors: cannot open"},
    {"{\"weight_map\": {}, \"extra\": 1}", "unknown key \"extra\""},
    {"{\"metadata\": {}}", "\"weight_map\" must be an object"},
    {"[]        ", "model.safetensors.index.json: must be a JSON object"},
    {"{\"weight_map\": {\"a\": \"s2.safetensors\", \"b\": \"s2.safetensors\", "
     "\"c\": \"s1.safetensors\"}}",
     "weight_map puts \"a\" in s2.safetensors but it is in s1.safetensors"},
};

START_TEST(test_st_index)
{
    char name[32];
    snprintf(name, sizeof name, "idx%d", _i);
    const char *dir = index_dir(name);
    write_text(dir, "model.safetensors.index.json", index_cases[_i].index);
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    gmrt_status s = gmrt_safetensors_open(dir, &st, &d); /* a directory: finds the index */
    if (!index_cases[_i].msg) {
        ck_assert_msg(s == GMRT_OK, "%s", d.msg);
        ck_assert_int_eq(gmrt_safetensors_n_tensors(st), 3);
        ck_assert_int_eq(gmrt_safetensors_find(st, "b")->shard, 1);
        ck_assert_str_eq(gmrt_safetensors_dir(st), dir);
        gmrt_safetensors_close(st);
        return;
    }
    ck_assert_int_ne(s, GMRT_OK);
    ck_assert_msg(strstr(d.msg, index_cases[_i].msg) != NULL, "case %d: got \"%s\"", _i, d.msg);
}
END_TEST

START_TEST(test_st_dir_empty)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/emptydir", gmc_test_tmpdir());
    mkdir(dir, 0755);
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_safetensors_open(dir, &st, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, "holds neither model.safetensors.index.json nor "
                                "model.safetensors"), "%s", d.msg);
}
END_TEST

/* A FIFO as the checkpoint, or as the model.safetensors of a directory, is
 * refused naming it; opening it would block.  The alarm ends a test that
 * blocks. */
START_TEST(test_st_fifo)
{
    char dir[4200], fifo[4300];
    snprintf(dir, sizeof dir, "%s/fifodir", gmc_test_tmpdir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(fifo, sizeof fifo, "%s/model.safetensors", dir);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    alarm(10);
    ck_assert_int_eq(gmrt_safetensors_open(fifo, &st, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, fifo) && strstr(d.msg, "is a FIFO, not a regular file"),
                  "%s", d.msg);
    ck_assert_int_eq(gmrt_safetensors_open(dir, &st, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, fifo) && strstr(d.msg, "is a FIFO, not a regular file"),
                  "%s", d.msg);
    alarm(0);
}
END_TEST

/* ------------------------------------------------------------- binding */

/* GGUF name -> HF name for the Gemma 3 tiny graph, written out here (not
 * taken from st_bind.c) so that a wrong mapping there fails this test. */
static void hf_of(const char *g, char *out, size_t cap)
{
    static const char *const map[][2] = {
        {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
        {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
        {"attn_norm", "input_layernorm"}, {"post_attention_norm", "post_attention_layernorm"},
        {"ffn_norm", "pre_feedforward_layernorm"}, {"post_ffw_norm", "post_feedforward_layernorm"},
        {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"},
    };
    if (!strcmp(g, "token_embd.weight")) {
        snprintf(out, cap, "model.embed_tokens.weight");
        return;
    }
    if (!strcmp(g, "output_norm.weight")) {
        snprintf(out, cap, "model.norm.weight");
        return;
    }
    int layer;
    char cls[64];
    ck_assert_int_eq(sscanf(g, "blk.%d.%63[a-z_].weight", &layer, cls), 2);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(cls, map[i][0])) {
            snprintf(out, cap, "model.layers.%d.%s.weight", layer, map[i][1]);
            return;
        }
    ck_abort_msg("no HF name for %s", g);
}

/* Writes the f32 GGUF's tensors as an HF checkpoint in dir (norms - 1;
 * with bf16, values rounded to bf16), plus config.json with model_type. */
static void gguf_to_hf(const char *gguf, const char *dir, bool bf16, const char *model_type,
                       const char *extra_tensor)
{
    gmrt_gguf *g;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_open(gguf, &g, &d) == GMRT_OK, "%s", d.msg);
    size_t cap = 1 << 16, hl = 0, total = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr, cap, "{");
    int64_t n = gmrt_gguf_n_tensors(g);
    for (int64_t i = 0; i <= n; i++) {
        const gmrt_gguf_tensor *t = i < n ? gmrt_gguf_tensor_at(g, i) : NULL;
        char name[128];
        int64_t rows = t ? t->ne[1] : 1, cols = t ? t->ne[0] : 4;
        if (t)
            hf_of(t->name, name, sizeof name);
        else if (extra_tensor)
            snprintf(name, sizeof name, "%s", extra_tensor);
        else
            break;
        size_t bytes = (size_t)(rows * cols) * (bf16 ? 2 : 4);
        if (t && t->n_dims == 1)
            hl += (size_t)snprintf(hdr + hl, cap - hl, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": "
                                   "[%lld], \"data_offsets\": [%zu, %zu]}", i ? ", " : "", name,
                                   bf16 ? "BF16" : "F32", (long long)cols, total, total + bytes);
        else
            hl += (size_t)snprintf(hdr + hl, cap - hl, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": "
                                   "[%lld, %lld], \"data_offsets\": [%zu, %zu]}", i ? ", " : "",
                                   name, bf16 ? "BF16" : "F32", (long long)rows,
                                   (long long)cols, total, total + bytes);
        total += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    ck_assert_uint_lt(hl, cap);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t n8 = hl;
    fwrite(&n8, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (int64_t i = 0; i <= n; i++) {
        const gmrt_gguf_tensor *t = i < n ? gmrt_gguf_tensor_at(g, i) : NULL;
        if (!t && !extra_tensor)
            break;
        size_t count = t ? (size_t)(t->nbytes / 4) : 4;
        bool norm = t && strstr(t->name, "norm.weight");
        for (size_t k = 0; k < count; k++) {
            float v = 0;
            if (t)
                memcpy(&v, (const char *)t->data + 4 * k, 4);
            v -= norm ? 1.0f : 0.0f;
            if (bf16) {
                uint16_t h = gmrt_f32_to_bf16(v);
                fwrite(&h, 2, 1, f);
            } else {
                fwrite(&v, 4, 1, f);
            }
        }
    }
    fclose(f);
    free(hdr);
    gmrt_gguf_close(g);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"%s\"}", model_type);
    write_text(dir, "config.json", cfg);
}

typedef struct tiny_model {
    void *so;
    const gmk_model *m;
    char gguf[4200];
} tiny_model;

static void tiny_setup(tiny_model *t)
{
    snprintf(t->gguf, sizeof t->gguf, "%s/st-tiny.gguf", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    const char *graph = gmc_test_src("tests/graphs/tiny.yaml");
    ck_assert_msg(gmc_init_weights(graph, t->gguf, 7, false, &d) == GMC_OK, "%s", d.msg);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/st-build-tiny", gmc_test_tmpdir());
    gmc_options o = {.graph = graph, .target = "generic", .out_dir = dir};
    gmc_result r;
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "%s", d.msg);
    t->so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(t->so != NULL, "%s", dlerror());
    t->m = *(const gmk_model *const *)dlsym(t->so, "gmk_model_entry");
}

static float *logits_of(const gmk_model *m, const char *weights, int n)
{
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    int32_t toks[32];
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)((i * 37 + 2) % m->n_vocab);
    const float *lg;
    ck_assert_msg(gmrt_session_eval(s, toks, (size_t)n, true, &lg, &d) == GMRT_OK, "%s", d.msg);
    float *out = malloc((size_t)n * (size_t)m->n_vocab * sizeof *out);
    memcpy(out, lg, (size_t)n * (size_t)m->n_vocab * sizeof *out);
    gmrt_session_destroy(s);
    return out;
}

static double nmse(const float *ref, const float *got, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return num / den;
}

static const char *hf_dir(const char *name)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", gmc_test_tmpdir(), name);
    mkdir(dir, 0755);
    return dir;
}

/* The same weights from GGUF and from HF safetensors (f32, then bf16 into
 * an f32 graph) give the same logits at every position. */
START_TEST(test_bind_matches_gguf)
{
    tiny_model t;
    tiny_setup(&t);
    const int n = 20;
    size_t count = (size_t)n * (size_t)t.m->n_vocab;
    float *ref = logits_of(t.m, t.gguf, n);
    const char *dir = hf_dir("hf-f32");
    gguf_to_hf(t.gguf, dir, false, "gemma3_text", NULL);
    float *got = logits_of(t.m, dir, n);
    double e = nmse(ref, got, count);
    ck_assert_msg(e < 1e-10, "f32 safetensors vs GGUF: NMSE %g", e);
    free(got);
    dir = hf_dir("hf-bf16");
    gguf_to_hf(t.gguf, dir, true, "gemma3_text", NULL);
    got = logits_of(t.m, dir, n);
    e = nmse(ref, got, count);
    /* bf16 weights: close, but not the same numbers (a +1 left out of the
     * norms would be far off: the NMSE would be near 1). */
    ck_assert_msg(e < 1e-3 && e > 0, "bf16 safetensors vs GGUF: NMSE %g", e);
    free(got);
    free(ref);
    dlclose(t.so);
}
END_TEST

/* Wrong architecture, unused tensors, no config.json, no tokenizer. */
/* Seeded random weights for tests/graphs/tiny.yaml with `from` replaced by
 * `to`, in tmp/<tag>.gguf; returns the path (valid until the next call). */
static const char *tiny_variant_weights(const char *tag, const char *from, const char *to)
{
    static char gguf[4300];
    char yaml[4300];
    size_t len;
    char *y = gmc_test_read_file(gmc_test_src("tests/graphs/tiny.yaml"), &len);
    ck_assert_ptr_nonnull(y);
    const char *at = strstr(y, from);
    ck_assert_msg(at != NULL, "tiny.yaml has no \"%s\"", from);
    snprintf(yaml, sizeof yaml, "%s/%s.yaml", gmc_test_tmpdir(), tag);
    FILE *f = fopen(yaml, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*s%s%s", (int)(at - y), y, to, at + strlen(from));
    fclose(f);
    free(y);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", gmc_test_tmpdir(), tag);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(yaml, gguf, 3, false, &d) == GMC_OK, "%s", d.msg);
    return gguf;
}

START_TEST(test_bind_errors)
{
    tiny_model t;
    tiny_setup(&t);
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s;
    gmrt_diag d = {0};
    /* §2.1 check 20 (a GGUF against the manifest): a tensor the build needs
     * is missing, or has another shape (the wrong dtype: test_e2e.c). */
    const char *w = tiny_variant_weights("no-qk-norm", "qk_norm: true", "qk_norm: false");
    ck_assert_int_eq(gmrt_session_create(t.m, w, &so, &s, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "is missing (the compiled model tiny needs"), "%s", d.msg);
    w = tiny_variant_weights("ffn-256", "dim: 128", "dim: 256");
    ck_assert_int_eq(gmrt_session_create(t.m, w, &so, &s, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "tensor \"blk.0.ffn_") && strstr(d.msg, "has shape [") &&
                  strstr(d.msg, "in the file but") && strstr(d.msg, "in the compiled model"),
                  "%s", d.msg);
    const char *dir = hf_dir("hf-arch");
    gguf_to_hf(t.gguf, dir, false, "gemma2", NULL);
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "model_type \"gemma2\" is architecture gemma2 but the "
                                "compiled model tiny is gemma3"), "%s", d.msg);
    dir = hf_dir("hf-extra");
    gguf_to_hf(t.gguf, dir, false, "gemma3_text", "model.layers.2.mlp.up_proj.weight");
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, "tensor \"model.layers.2.mlp.up_proj.weight\" is not used"),
                  "%s", d.msg);
    char cfg[4300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    remove(cfg);
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, "config.json: cannot open"), "%s", d.msg);
    /* FIFOs as config.json or as the weights are refused, never opened
     * (which would block); the alarm ends the test if they block. */
    ck_assert_int_eq(mkfifo(cfg, 0644), 0);
    alarm(10);
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, cfg) && strstr(d.msg, "is a FIFO, not a regular file"),
                  "%s", d.msg);
    char fifo[4300];
    snprintf(fifo, sizeof fifo, "%s/weights.fifo", gmc_test_tmpdir());
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert_int_eq(gmrt_session_create(t.m, fifo, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, fifo) && strstr(d.msg, "is a FIFO"), "%s", d.msg);
    alarm(0);
    dir = hf_dir("hf-ok");
    gguf_to_hf(t.gguf, dir, false, "gemma3_text", NULL);
    ck_assert_msg(gmrt_session_create(t.m, dir, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_ptr_null(gmrt_session_vocab(s));
    gmrt_sampler_params sp;
    gmrt_sampler_params_default(&sp);
    gmrt_gen_stats stats;
    ck_assert_int_eq(gmrt_session_generate(s, "hi", &sp, 4, NULL, NULL, NULL, 0, &stats, &d),
                     GMRT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(d.msg, "no tokenizer"), "%s", d.msg);
    gmrt_session_destroy(s);
    dlclose(t.so);
}
END_TEST

/* The Hugging Face hub cache's layout: every file of a snapshot is a
 * relative link into the blob store (snapshots/<rev>/model.safetensors ->
 * ../../blobs/<sha>).  The snapshot directory, the link to the weights and
 * a sharded index whose shards are links all load, with the same logits as
 * the plain copy; config.json is looked up beside the link, not the blob.
 * A link to a FIFO or a directory is still refused, naming it. */
START_TEST(test_bind_hub_links)
{
    tiny_model t;
    tiny_setup(&t);
    const int n = 8;
    size_t count = (size_t)n * (size_t)t.m->n_vocab;
    const char *plain = hf_dir("hub-plain");
    gguf_to_hf(t.gguf, plain, false, "gemma3_text", NULL);
    float *ref = logits_of(t.m, plain, n);

    char hub[4200], blobs[4300], snap[4300], from[4400], to[4400], link[4400];
    snprintf(hub, sizeof hub, "%s/hub/models--google--tiny", gmc_test_tmpdir());
    snprintf(blobs, sizeof blobs, "%s/blobs", hub);
    snprintf(snap, sizeof snap, "%s/snapshots/0123abcd", hub);
    char cmd[13000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", blobs, snap);
    ck_assert_int_eq(system(cmd), 0);
    static const char *const files[][2] = {
        {"model.safetensors", "5f3a0c1e"}, {"config.json", "9b2d7e44"},
    };
    for (size_t i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", plain, files[i][0]);
        snprintf(to, sizeof to, "%s/%s", blobs, files[i][1]);
        ck_assert_int_eq(rename(from, to), 0);
        snprintf(link, sizeof link, "%s/%s", snap, files[i][0]);
        snprintf(to, sizeof to, "../../blobs/%s", files[i][1]);
        ck_assert_int_eq(symlink(to, link), 0);
    }
    float *got = logits_of(t.m, snap, n);
    ck_assert_msg(nmse(ref, got, count) == 0, "snapshot dir: NMSE %g", nmse(ref, got, count));
    free(got);
    snprintf(link, sizeof link, "%s/model.safetensors", snap);
    got = logits_of(t.m, link, n);
    ck_assert_msg(nmse(ref, got, count) == 0, "link: NMSE %g", nmse(ref, got, count));
    free(got);

    /* One shard behind an index, both links. */
    char text[4096 * 4];
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_safetensors_open(link, &st, &d) == GMRT_OK, "%s", d.msg);
    size_t k = (size_t)snprintf(text, sizeof text, "{\"weight_map\": {");
    for (int64_t i = 0; i < gmrt_safetensors_n_tensors(st); i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "%s\"%s\": \"model-00001-of-00001."
                              "safetensors\"", i ? ", " : "",
                              gmrt_safetensors_tensor_at(st, i)->name);
    snprintf(text + k, sizeof text - k, "}}");
    ck_assert_uint_lt(k + 2, sizeof text);
    gmrt_safetensors_close(st);
    write_text(blobs, "77aa0011", text);
    ck_assert_int_eq(unlink(link), 0);
    snprintf(link, sizeof link, "%s/model-00001-of-00001.safetensors", snap);
    ck_assert_int_eq(symlink("../../blobs/5f3a0c1e", link), 0);
    snprintf(link, sizeof link, "%s/model.safetensors.index.json", snap);
    ck_assert_int_eq(symlink("../../blobs/77aa0011", link), 0);
    got = logits_of(t.m, snap, n);
    ck_assert_msg(nmse(ref, got, count) == 0, "index: NMSE %g", nmse(ref, got, count));
    free(got);

    /* Links to a FIFO and to a directory: refused as what they reach. */
    char fifo[4400], sub[4400];
    snprintf(fifo, sizeof fifo, "%s/fifo-blob", blobs);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    snprintf(sub, sizeof sub, "%s/dir-blob", blobs);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    static const struct { const char *target, *kind; } bad[] = {
        {"../../blobs/fifo-blob", "is a FIFO, not a regular file"},
        {"../../blobs/dir-blob", "is a directory, not a regular file"},
    };
    snprintf(link, sizeof link, "%s/model-00001-of-00001.safetensors", snap);
    alarm(10);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(unlink(link), 0);
        ck_assert_int_eq(symlink(bad[i].target, link), 0);
        ck_assert_int_eq(gmrt_safetensors_open(snap, &st, &d), GMRT_ERR_IO);
        ck_assert_msg(strstr(d.msg, link) && strstr(d.msg, bad[i].kind), "%s", d.msg);
    }
    alarm(0);
    free(ref);
    dlclose(t.so);
}
END_TEST

/* A prompt with safetensors weights needs a tokenizer, and gemmac reads
 * vocabularies from GGUF files only.  Without --tokenizer the session fails
 * before reading any weight (here the weights are not even a safetensors
 * file), saying what to give and whether the checkpoint's tokenizer.json
 * was seen; with a GGUF of the model's vocabulary it generates.  A
 * tokenizer of another size, one that is not GGUF, and one next to GGUF
 * weights are refused, naming it. */
START_TEST(test_bind_tokenizer)
{
    tiny_model t;
    tiny_setup(&t);
    char dir[4200], junk[4200];  /* hf_dir's buffer is reused */
    snprintf(dir, sizeof dir, "%s", hf_dir("hf-tok"));
    gguf_to_hf(t.gguf, dir, false, "gemma3_text", NULL);
    gmrt_session_opts so = {.n_threads = 1, .need_tokenizer = true};
    gmrt_session *s;
    gmrt_diag d = {0};

    snprintf(junk, sizeof junk, "%s", hf_dir("hf-tok-junk"));
    write_text(junk, "config.json", "{\"model_type\": \"gemma3_text\"}");
    write_text(junk, "model.safetensors", "not safetensors at all");
    ck_assert_int_eq(gmrt_session_create(t.m, junk, &so, &s, &d), GMRT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(d.msg, "no tokenizer") && strstr(d.msg, junk) &&
                  strstr(d.msg, "--tokenizer FILE.gguf") && !strstr(d.msg, "tokenizer.json"),
                  "%s", d.msg);
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/missing.gguf", junk);
    ck_assert_int_eq(gmrt_session_create(t.m, missing, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, missing) && strstr(d.msg, "No such file"), "%s", d.msg);
    write_text(junk, "tokenizer.json", "{}");
    ck_assert_int_eq(gmrt_session_create(t.m, junk, &so, &s, &d), GMRT_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(d.msg, "the checkpoint's tokenizer.json is not read"), "%s", d.msg);

    so.tokenizer = t.gguf;
    ck_assert_msg(gmrt_session_create(t.m, dir, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_int_eq(gmrt_vocab_size(gmrt_session_vocab(s)), t.m->n_vocab);
    gmrt_sampler_params sp;
    gmrt_sampler_params_default(&sp);
    sp.temperature = 0;
    gmrt_gen_stats stats;
    ck_assert_msg(gmrt_session_generate(s, "ab", &sp, 3, NULL, NULL, NULL, 0, &stats, &d) ==
                  GMRT_OK, "%s", d.msg);
    ck_assert_uint_gt(stats.n_prompt, 0);
    gmrt_session_destroy(s);

    so.tokenizer = gmc_test_src("tests/fixtures/tokenizer/gemma4_vocab.gguf");
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_MISMATCH);
    ck_assert_msg(strstr(d.msg, so.tokenizer) && strstr(d.msg, "but the compiled model "
                  "expects 512"), "%s", d.msg);
    char cfg[4300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    so.tokenizer = cfg;
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, cfg) && strstr(d.msg, "not a GGUF file"), "%s", d.msg);
    so.tokenizer = missing;
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, missing) && strstr(d.msg, "No such file"), "%s", d.msg);
    so.tokenizer = dir;
    ck_assert_int_eq(gmrt_session_create(t.m, dir, &so, &s, &d), GMRT_ERR_IO);
    ck_assert_msg(strstr(d.msg, "is a directory, not a regular file"), "%s", d.msg);
    so.tokenizer = t.gguf;
    ck_assert_int_eq(gmrt_session_create(t.m, t.gguf, &so, &s, &d), GMRT_ERR_ARG);
    ck_assert_msg(strstr(d.msg, "is a GGUF file with its own"), "%s", d.msg);

    /* The run command line: --tokenizer makes it work, its absence fails
     * (status 1) without converting the weights. */
    char *ok[] = {"run", "--weights", dir, "--tokenizer", t.gguf, "-p", "ab", "-n",
                  "2", "--greedy", "-t", "1", "-q", NULL};
    ck_assert_int_eq(gmrt_cli_main(t.m, 13, ok), 0);
    char *no[] = {"run", "--weights", junk, "-p", "ab", "-n", "2", "-q", NULL};
    ck_assert_int_eq(gmrt_cli_main(t.m, 8, no), 1);
    dlclose(t.so);
}
END_TEST

/* ------------------------------------------------------ Gemma 4 binding */

/* A file of a Gemma 4 conformance fixture; four rotating buffers, so that
 * two calls can be arguments of one call. */
static const char *g4_fixture(const char *variant, const char *file)
{
    static char path[4][4300];
    static int next;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/conformance/gemma4-%s/%s", variant, file);
    char *p = path[next++ & 3];
    snprintf(p, sizeof path[0], "%s", gmc_test_src(rel));
    return p;
}

/* Compiles graph for the generic target into tmp/st-<tag>. */
static const gmk_model *compile_graph(const char *graph, const char *tag, void **so)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/st-%s", gmc_test_tmpdir(), tag);
    gmc_options o = {.graph = graph, .target = "generic", .out_dir = dir};
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "compile %s: %s", graph, d.msg);
    *so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(*so != NULL, "%s", dlerror());
    return *(const gmk_model *const *)dlsym(*so, "gmk_model_entry");
}

/* tests/conformance/gemma4-<variant>.yaml with extra appended (a quant:
 * section: the hand-written graphs have none), written to tmp/<tag>.yaml. */
static const char *g4_graph_plus(const char *variant, const char *tag, const char *extra)
{
    static char path[4300];
    char rel[128];
    snprintf(rel, sizeof rel, "tests/conformance/gemma4-%s.yaml", variant);
    char *text = gmc_test_read_file(gmc_test_src(rel), NULL);
    ck_assert_ptr_nonnull(text);
    snprintf(path, sizeof path, "%s/%s.yaml", gmc_test_tmpdir(), tag);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fputs(extra, f);
    fclose(f);
    free(text);
    return path;
}

/* Every position's logits of weights on m, like logits_of, with --requant. */
static float *logits_requant(const gmk_model *m, const char *weights, int n)
{
    gmrt_session_opts so = {.n_threads = 1, .requant = true};
    gmrt_session *s;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    int32_t toks[32];
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)((i * 37 + 2) % m->n_vocab);
    const float *lg;
    ck_assert_msg(gmrt_session_eval(s, toks, (size_t)n, true, &lg, &d) == GMRT_OK, "%s", d.msg);
    float *out = malloc((size_t)n * (size_t)m->n_vocab * sizeof *out);
    memcpy(out, lg, (size_t)n * (size_t)m->n_vocab * sizeof *out);
    gmrt_session_destroy(s);
    return out;
}

static gmrt_eval_report eval_weights(const gmk_model *m, const char *weights, const char *ref)
{
    gmrt_session_opts so = {.n_threads = 2};
    gmrt_session *s;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_session_create(m, weights, &so, &s, &d) == GMRT_OK, "%s", d.msg);
    gmrt_eval_report r;
    ck_assert_msg(gmrt_eval_reference(s, m, ref, &r, &d) == GMRT_OK, "%s", d.msg);
    gmrt_session_destroy(s);
    return r;
}

static const char *const g4_variants[] = {"e", "moe"};

/* The fixtures' HF checkpoints (F32, transformers' names: layer_scalar,
 * the router, the grouped 3-D experts, the per-layer embeddings, no norm
 * +1) through the hand-written graphs give transformers' logits at every
 * position, as the GGUF copies do. */
START_TEST(test_bind_gemma4)
{
    const char *v = g4_variants[_i];
    char rel[128], tag[32];
    snprintf(rel, sizeof rel, "tests/conformance/gemma4-%s.yaml", v);
    snprintf(tag, sizeof tag, "g4-%s", v);
    void *so;
    const gmk_model *m = compile_graph(gmc_test_src(rel), tag, &so);
    gmrt_eval_report st = eval_weights(m, g4_fixture(v, "model.safetensors"),
                                       g4_fixture(v, "ref.gguf"));
    gmrt_eval_report gg = eval_weights(m, g4_fixture(v, "model.gguf"), g4_fixture(v, "ref.gguf"));
    fprintf(stderr, "safetensors: gemma4-%s f32: NMSE max %.3e (GGUF %.3e), top-1 %.3f\n", v,
            st.all.nmse_max, gg.all.nmse_max, st.all.top1);
    ck_assert_int_eq(st.all.n, 96);
    ck_assert_double_lt(st.all.nmse_max, 1e-5);
    ck_assert(st.all.top1 == 1.0);
    gmrt_eval_report_free(&st);
    gmrt_eval_report_free(&gg);
    dlclose(so);
}
END_TEST

/* Converted at load: bf16 and q8_0 in the graph, the 3-D expert stacks and
 * the per-layer embedding table among them, give exactly the logits of the
 * GGUF copy converted by --requant (the same rows through the same
 * quantizer, so the name mapping and the shapes are what is tested). */
START_TEST(test_bind_gemma4_convert)
{
    static const char *const quant[] = {
        "quant: {embed: bf16, attn: bf16, ffn: bf16, ple: bf16, ple_proj: bf16}\n",
        "quant: {embed: bf16, attn: bf16, ffn: bf16, tensors: {ffn_down: q8_0}}\n",
    };
    const char *v = g4_variants[_i];
    char tag[32];
    snprintf(tag, sizeof tag, "g4-%s-bf16", v);
    void *so;
    const gmk_model *m = compile_graph(g4_graph_plus(v, tag, quant[_i]), tag, &so);
    const int n = 24;
    float *ref = logits_requant(m, g4_fixture(v, "model.gguf"), n);
    float *got = logits_of(m, g4_fixture(v, "model.safetensors"), n);
    double e = nmse(ref, got, (size_t)n * (size_t)m->n_vocab);
    fprintf(stderr, "safetensors: gemma4-%s bf16/q8_0 at load vs GGUF --requant: NMSE %.3e\n",
            v, e);
    ck_assert_msg(e < 1e-12, "NMSE %g", e);
    free(ref);
    free(got);
    /* Against transformers' f32 logits, bf16 weights are far from exact
     * in these small random models (NMSE 1e-2 to 1e-1 per position: the
     * layer scalars compound the rounding), but the argmax mostly holds. */
    gmrt_eval_report r = eval_weights(m, g4_fixture(v, "model.safetensors"),
                                      g4_fixture(v, "ref.gguf"));
    fprintf(stderr, "safetensors: gemma4-%s bf16/q8_0 vs transformers f32: NMSE mean %.3e, "
            "top-1 %.3f\n", v, r.all.nmse_mean, r.all.top1);
    ck_assert_double_gt(r.all.top1, 0.5);
    gmrt_eval_report_free(&r);
    dlclose(so);
}
END_TEST

/* Writes the F32 checkpoint src again into dir with every matrix (n_dims
 * >= 2, but the router, which the graph keeps in f32) rounded to BF16 and
 * the vectors left F32, with src_cfg as its config.json.  The header is
 * padded to 8 bytes, as transformers writes it. */
static void st_to_bf16(const char *src, const char *src_cfg, const char *dir)
{
    gmrt_safetensors *st;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_safetensors_open(src, &st, &d) == GMRT_OK, "%s", d.msg);
    int64_t n = gmrt_safetensors_n_tensors(st);
    size_t cap = 1 << 16, hl = 0, total = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr, cap, "{");
    for (int64_t i = 0; i < n; i++) {
        const gmrt_st_tensor *t = gmrt_safetensors_tensor_at(st, i);
        bool half = t->n_dims >= 2 && !strstr(t->name, "router");
        size_t bytes = (size_t)t->nbytes / (half ? 2 : 1);
        hl += (size_t)snprintf(hdr + hl, cap - hl, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": [",
                               i ? ", " : "", t->name, half ? "BF16" : "F32");
        for (int k = 0; k < t->n_dims; k++)
            hl += (size_t)snprintf(hdr + hl, cap - hl, "%s%lld", k ? ", " : "",
                                   (long long)t->shape[k]);
        hl += (size_t)snprintf(hdr + hl, cap - hl, "], \"data_offsets\": [%zu, %zu]}", total,
                               total + bytes);
        total += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    ck_assert_uint_lt(hl, cap);
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t n8 = hl;
    fwrite(&n8, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (int64_t i = 0; i < n; i++) {
        const gmrt_st_tensor *t = gmrt_safetensors_tensor_at(st, i);
        bool half = t->n_dims >= 2 && !strstr(t->name, "router");
        for (uint64_t k = 0; k < t->nbytes / 4; k++) {
            float x;
            memcpy(&x, (const char *)t->data + 4 * k, 4);
            uint16_t h = gmrt_f32_to_bf16(x);
            if (half)
                fwrite(&h, 2, 1, f);
            else
                fwrite(&x, 4, 1, f);
        }
    }
    fclose(f);
    free(hdr);
    gmrt_safetensors_close(st);
    char *cfg = gmc_test_read_file(src_cfg, NULL);
    ck_assert_ptr_nonnull(cfg);
    write_text(dir, "config.json", cfg);
    free(cfg);
}

/* A BF16 checkpoint on an all-bf16 graph: the per-layer embedding table is
 * read from the checkpoint's mapping (no copy), every other matrix is
 * copied, and the logits are those of the F32 GGUF converted to bf16 by
 * --requant, bit for bit (bf16 rounding is the same both ways; the vectors
 * stayed f32). */
START_TEST(test_bind_gemma4_mapped)
{
    const char *q = "quant: {embed: bf16, attn: bf16, ffn: bf16, ple: bf16, ple_proj: bf16}\n";
    void *so;
    const gmk_model *m = compile_graph(g4_graph_plus("e", "g4-e-mapped", q), "g4-e-mapped",
                                       &so);
    const char *dir = hf_dir("hf-g4-bf16");
    st_to_bf16(g4_fixture("e", "model.safetensors"), g4_fixture("e", "config.json"), dir);
    const int n = 24;
    float *ref = logits_requant(m, g4_fixture("e", "model.gguf"), n);
    float *got = logits_of(m, dir, n);
    double e = nmse(ref, got, (size_t)n * (size_t)m->n_vocab);
    fprintf(stderr, "safetensors: gemma4-e bf16 checkpoint (mapped PLE table) vs GGUF "
                    "--requant: NMSE %.3e\n", e);
    ck_assert_msg(e < 1e-12, "NMSE %g", e);
    free(ref);
    free(got);
    dlclose(so);
}
END_TEST

/* ----------------------------------------------------- Gemma 3n binding */

/* A file of the Gemma 3n conformance fixture (two rotating buffers). */
static const char *g3n_fixture(const char *file)
{
    static char path[2][4300];
    static int next;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/conformance/gemma3n/%s", file);
    char *p = path[next++ & 1];
    snprintf(p, sizeof path[0], "%s", gmc_test_src(rel));
    return p;
}

/* The Gemma 3n checkpoint (F32, transformers' names: the AltUp router,
 * coefficients and correct_output_scale, LAuReL, the per-layer embeddings,
 * the AltUp projections as separate matrices, no norm +1) through the
 * hand-written graph gives transformers' logits at every position, as the
 * GGUF copy does. */
START_TEST(test_bind_gemma3n)
{
    void *so;
    const gmk_model *m = compile_graph(gmc_test_src("tests/conformance/gemma3n.yaml"), "g3n",
                                       &so);
    gmrt_eval_report st = eval_weights(m, g3n_fixture("model.safetensors"),
                                       g3n_fixture("ref.gguf"));
    gmrt_eval_report gg = eval_weights(m, g3n_fixture("model.gguf"), g3n_fixture("ref.gguf"));
    fprintf(stderr, "safetensors: gemma3n f32: NMSE max %.3e (GGUF %.3e), top-1 %.3f\n",
            st.all.nmse_max, gg.all.nmse_max, st.all.top1);
    ck_assert_int_eq(st.all.n, 96);
    ck_assert_double_lt(st.all.nmse_max, 1e-5);
    ck_assert(st.all.top1 == 1.0);
    gmrt_eval_report_free(&st);
    gmrt_eval_report_free(&gg);
    dlclose(so);
}
END_TEST

/* Converted at load into bf16 and q8_0, the stacked AltUp projections and
 * LAuReL among them: exactly the logits of the GGUF copy converted by
 * --requant (so the slices are stacked in GGUF's order). */
START_TEST(test_bind_gemma3n_convert)
{
    static const char *q = "quant: {embed: bf16, attn: bf16, ffn: bf16, ple: bf16, "
                           "ple_proj: bf16, altup: q8_0, tensors: {laurel_l: q8_0, "
                           "laurel_r: bf16}}\n";
    char *text = gmc_test_read_file(gmc_test_src("tests/conformance/gemma3n.yaml"), NULL);
    ck_assert_ptr_nonnull(text);
    /* the hand-written graph's quant: section is replaced */
    char *at = strstr(text, "quant:");
    ck_assert_ptr_nonnull(at);
    *at = '\0';
    char graph[4300];
    snprintf(graph, sizeof graph, "%s/g3n-q.yaml", gmc_test_tmpdir());
    FILE *f = fopen(graph, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fputs(q, f);
    fclose(f);
    free(text);
    void *so;
    const gmk_model *m = compile_graph(graph, "g3n-q", &so);
    const int n = 24;
    float *ref = logits_requant(m, g3n_fixture("model.gguf"), n);
    float *got = logits_of(m, g3n_fixture("model.safetensors"), n);
    double e = nmse(ref, got, (size_t)n * (size_t)m->n_vocab);
    fprintf(stderr, "safetensors: gemma3n bf16/q8_0 at load vs GGUF --requant: NMSE %.3e\n", e);
    ck_assert_msg(e < 1e-12, "NMSE %g", e);
    free(ref);
    free(got);
    dlclose(so);
}
END_TEST

/* ---------------------------------------------------------------- import */

static gmc_model *import_load(const char *src, const char *quant, gmc_arena *a)
{
    gmc_import_opts o = {.quant = quant};
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_import(src, &o, &b, &d) == GMC_OK, "import %s: %s", src, d.msg);
    gmc_model *m;
    const char *y = gmc_strbuf_str(&b);
    ck_assert_msg(gmc_model_parse(y, strlen(y), "imported.yaml", a, &m, &d) == GMC_OK,
                  "%s: %s\n%s", src, d.msg, y);
    gmc_strbuf_deinit(&b);
    return m;
}

static void same_shapes(const gmc_model *x, const gmc_model *y)
{
    ck_assert_int_eq(x->family, y->family);
    ck_assert_int_eq(x->vocab, y->vocab);
    ck_assert_int_eq(x->d_model, y->d_model);
    ck_assert_int_eq(x->n_layers, y->n_layers);
    ck_assert_int_eq(x->context, y->context);
    ck_assert_int_eq(x->n_heads, y->n_heads);
    ck_assert_int_eq(x->n_kv_heads, y->n_kv_heads);
    ck_assert_int_eq(x->head_dim, y->head_dim);
    ck_assert_int_eq(x->ffn_dim, y->ffn_dim);
    ck_assert_int_eq(x->qk_norm, y->qk_norm);
    ck_assert_int_eq(x->post_norms, y->post_norms);
    ck_assert_double_eq_tol(x->query_scale, y->query_scale, 1e-12);
    ck_assert_double_eq_tol(x->norm_eps, y->norm_eps, 1e-15);
    ck_assert_double_eq(x->attn_softcap, y->attn_softcap);
    ck_assert_double_eq(x->final_softcap, y->final_softcap);
    for (int l = 0; l < x->n_layers; l++) {
        ck_assert_int_eq(x->layers[l].kind, y->layers[l].kind);
        ck_assert_int_eq(x->layers[l].window, y->layers[l].window);
        ck_assert_double_eq(x->layers[l].rope.theta, y->layers[l].rope.theta);
        ck_assert_double_eq(x->layers[l].rope.scale, y->layers[l].rope.scale);
    }
}

/* With the embedding scale each config's torch_dtype gives: google/gemma-2-2b
 * is stored in float32, so transformers scales by the exact sqrt(2304). */
static const struct { const char *config, *graph; gmc_embed_scale scale; } import_pairs[] = {
    {"tests/fixtures/import/gemma-2b.config.json", "graphs/gemma-2b.yaml", GMC_EMBED_SCALE_BF16},
    {"tests/fixtures/import/gemma2-2b.config.json", "graphs/gemma2-2b.yaml",
     GMC_EMBED_SCALE_EXACT},
    {"tests/fixtures/import/gemma-3-270m.config.json", "graphs/gemma3-270m.yaml",
     GMC_EMBED_SCALE_BF16},
    {"tests/fixtures/import/gemma-3-1b.config.json", "graphs/gemma3-1b.yaml",
     GMC_EMBED_SCALE_BF16},
};

START_TEST(test_import_config)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *got = import_load(gmc_test_src(import_pairs[_i].config), "q8_0", &a);
    gmc_model *want;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_model_load(gmc_test_src(import_pairs[_i].graph), &a, &want, &d) == GMC_OK,
                  "%s", d.msg);
    same_shapes(got, want);
    ck_assert_int_eq(got->embed_scale, import_pairs[_i].scale);
    ck_assert_int_eq(got->embed_type, GMK_DTYPE_Q8_0);
    gmc_arena_deinit(&a);
}
END_TEST

/* --quant q4_k on d_model 640 falls back where rows are not whole blocks. */
START_TEST(test_import_fallback)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *m = import_load(gmc_test_src("tests/fixtures/import/gemma-3-270m.config.json"),
                               "q4_k", &a);
    ck_assert_int_eq(m->embed_type, GMK_DTYPE_Q5_0);
    ck_assert_int_eq(m->layers[0].wtype[GMC_W_ATTN_Q], GMK_DTYPE_Q5_0);
    ck_assert_int_eq(m->layers[0].wtype[GMC_W_ATTN_OUTPUT], GMK_DTYPE_Q4_K); /* 1024 wide */
    ck_assert_int_eq(m->layers[0].wtype[GMC_W_FFN_DOWN], GMK_DTYPE_Q4_K);    /* 2048 wide */
    gmc_arena_deinit(&a);
}
END_TEST

/* The real 270M GGUF imports to graphs/gemma3-270m.yaml's shapes and quant
 * mix, tensor by tensor (skipped without the model). */
START_TEST(test_import_gguf)
{
    const char *path = gmc_test_model_path();
    if (!path) {
        fprintf(stderr, "safetensors: real model not installed; skipping the GGUF import\n");
        return;
    }
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_model *got = import_load(path, NULL, &a), *want;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_model_load(gmc_test_src("graphs/gemma3-270m.yaml"), &a, &want, &d) == GMC_OK);
    same_shapes(got, want);
    ck_assert_int_eq(got->embed_scale, GMC_EMBED_SCALE_EXACT); /* llama.cpp's */
    ck_assert_int_eq(got->embed_type, want->embed_type);
    ck_assert_int_eq(got->kv_type, want->kv_type);
    for (int l = 0; l < want->n_layers; l++)
        for (int c = 0; c < GMC_W_COUNT; c++)
            ck_assert_msg(got->layers[l].wtype[c] == want->layers[l].wtype[c],
                          "layer %d %s: %d vs %d", l, gmc_wclass_name((gmc_wclass)c),
                          got->layers[l].wtype[c], want->layers[l].wtype[c]);
    gmc_arena_deinit(&a);
}
END_TEST

/* Every field of two Gemma 4 models that the lowering reads, but the
 * name, the embedding scale and the KV cache type. */
static void same_model4(const gmc_model *x, const gmc_model *y)
{
    same_shapes(x, y);
    ck_assert_int_eq(x->global.head_dim, y->global.head_dim);
    ck_assert_int_eq(x->global.n_kv_heads, y->global.n_kv_heads);
    ck_assert_int_eq(x->global.k_eq_v, y->global.k_eq_v);
    ck_assert_int_eq(x->value_norm, y->value_norm);
    ck_assert_int_eq(x->kv_shared_layers, y->kv_shared_layers);
    ck_assert_int_eq(x->ffn_dim_shared, y->ffn_dim_shared);
    ck_assert_int_eq(x->ple_dim, y->ple_dim);
    ck_assert_int_eq(x->n_experts, y->n_experts);
    ck_assert_int_eq(x->n_experts_used, y->n_experts_used);
    ck_assert_int_eq(x->expert_dim, y->expert_dim);
    ck_assert_int_eq(x->layer_scale, y->layer_scale);
    ck_assert_int_eq(x->norm_plus_one, y->norm_plus_one);
    ck_assert_int_eq(x->embed_type, y->embed_type);
    ck_assert_int_eq(x->ple_type, y->ple_type);
    ck_assert_int_eq(x->ple_proj_type, y->ple_proj_type);
    ck_assert_double_eq(x->rope_local.fraction, y->rope_local.fraction);
    ck_assert_double_eq(x->rope_global.fraction, y->rope_global.fraction);
    for (int l = 0; l < x->n_layers; l++) {
        const gmc_layer *a = &x->layers[l], *b = &y->layers[l];
        ck_assert_int_eq(a->head_dim, b->head_dim);
        ck_assert_int_eq(a->n_kv_heads, b->n_kv_heads);
        ck_assert_int_eq(a->ffn_dim, b->ffn_dim);
        ck_assert_int_eq(a->k_eq_v, b->k_eq_v);
        ck_assert_int_eq(a->kv_source, b->kv_source);
        for (int c = 0; c < GMC_W_COUNT; c++) {
            ck_assert_int_eq(gmc_layer_has(x, l, (gmc_wclass)c), gmc_layer_has(y, l, (gmc_wclass)c));
            if (gmc_layer_has(x, l, (gmc_wclass)c))
                ck_assert_int_eq(a->wtype[c], b->wtype[c]);
        }
    }
}

/* Imports src, writes the YAML to tmp/<tag>.yaml with the lines from[k]
 * replaced by to[k] (each must occur), and returns its path. */
static const char *import_to_file(const char *src, const char *tag, const char *const *from,
                                  const char *const *to, int n)
{
    static char path[4300];
    gmc_import_opts o = {0};
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_import(src, &o, &b, &d) == GMC_OK, "import %s: %s", src, d.msg);
    char *y = strdup(gmc_strbuf_str(&b));
    gmc_strbuf_deinit(&b);
    for (int k = 0; k < n; k++) {
        char *at = strstr(y, from[k]);
        ck_assert_msg(at && strlen(from[k]) == strlen(to[k]), "%s: no \"%s\"", src, from[k]);
        memcpy(at, to[k], strlen(to[k]));
    }
    snprintf(path, sizeof path, "%s/%s.yaml", gmc_test_tmpdir(), tag);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(y, f);
    fclose(f);
    free(y);
    return path;
}

/* `gemmac import` of each Gemma 4 fixture, from config.json and from the
 * llama.cpp GGUF: the model equals the hand-written graph's in every field
 * the lowering reads, and the compiled import gives the hand-written
 * graph's logits exactly.  The config says the embedding scale (exact for
 * gemma4-e, bf16 for gemma4-moe); a GGUF import takes llama.cpp's exact
 * scale and f16 KV cache, which the logit check sets back to the
 * hand-written graph's (the rest of the YAML is as imported). */
START_TEST(test_import_gemma4)
{
    const char *v = g4_variants[_i / 2];
    bool gguf = _i % 2;
    char rel[128], tag[48];
    snprintf(rel, sizeof rel, "tests/conformance/gemma4-%s.yaml", v);
    gmc_arena a;
    gmc_arena_init(&a);
    const char *src = g4_fixture(v, gguf ? "model.gguf" : "config.json");
    gmc_model *got = import_load(src, NULL, &a), *want;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_model_load(gmc_test_src(rel), &a, &want, &d) == GMC_OK, "%s", d.msg);
    same_model4(got, want);
    ck_assert_int_eq(got->embed_scale, gguf ? GMC_EMBED_SCALE_EXACT : want->embed_scale);
    ck_assert_int_eq(got->kv_type, gguf ? GMK_DTYPE_F16 : GMK_DTYPE_F32);

    bool bf16 = want->embed_scale == GMC_EMBED_SCALE_BF16;
    const char *from[] = {"kv_cache: f16", bf16 ? "embed_scale: exact" : "embed_scale"};
    const char *to[] = {"kv_cache: f32", bf16 ? "embed_scale: bf16 " : "embed_scale"};
    snprintf(tag, sizeof tag, "imp-g4-%s-%s", v, gguf ? "gguf" : "cfg");
    const char *graph = import_to_file(src, tag, from, to, gguf ? 2 : 0);
    void *so_imp, *so_ref;
    const gmk_model *mi = compile_graph(graph, tag, &so_imp);
    snprintf(tag, sizeof tag, "g4-%s", v);
    const gmk_model *mr = compile_graph(gmc_test_src(rel), tag, &so_ref);
    const char *w = g4_fixture(v, gguf ? "model.gguf" : "model.safetensors");
    const int n = 24;
    float *ref = logits_of(mr, w, n), *out = logits_of(mi, w, n);
    double e = nmse(ref, out, (size_t)n * (size_t)mr->n_vocab);
    fprintf(stderr, "import: gemma4-%s from %s: NMSE %.3e against the hand-written graph\n", v,
            gguf ? "GGUF" : "config.json", e);
    ck_assert_msg(e < 1e-12, "NMSE %g", e);
    free(ref);
    free(out);
    dlclose(so_imp);
    dlclose(so_ref);
    gmc_arena_deinit(&a);
}
END_TEST

/* `gemmac import` of the Gemma 3n fixture from config.json and from the
 * llama.cpp GGUF: every field the lowering reads equals the hand-written
 * graph's (the sparsity p = Φ(activation_sparsity_scale) of the GGUF
 * included), and the compiled import gives its logits exactly (the GGUF
 * import's f16 KV cache set back to f32). */
START_TEST(test_import_gemma3n)
{
    bool gguf = _i;
    const char *rel = "tests/conformance/gemma3n.yaml";
    gmc_arena a;
    gmc_arena_init(&a);
    const char *src = g3n_fixture(gguf ? "model.gguf" : "config.json");
    gmc_model *got = import_load(src, NULL, &a), *want;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_model_load(gmc_test_src(rel), &a, &want, &d) == GMC_OK, "%s", d.msg);
    same_model4(got, want);
    ck_assert_int_eq(got->embed_scale, want->embed_scale);
    ck_assert_int_eq(got->kv_type, gguf ? GMK_DTYPE_F16 : GMK_DTYPE_F32);
    ck_assert_int_eq(got->altup_streams, want->altup_streams);
    ck_assert_int_eq(got->altup_active, want->altup_active);
    ck_assert_double_eq(got->altup_coef_clip, want->altup_coef_clip);
    ck_assert_int_eq(got->altup_correct_scale, want->altup_correct_scale);
    ck_assert_int_eq(got->altup_type, want->altup_type);
    ck_assert_int_eq(got->laurel_rank, want->laurel_rank);
    ck_assert_double_eq(got->ffn_sparsity, want->ffn_sparsity);
    ck_assert_int_eq(got->ffn_sparse_layers, want->ffn_sparse_layers);

    const char *from[] = {"kv_cache: f16"}, *to[] = {"kv_cache: f32"};
    char tag[48];
    snprintf(tag, sizeof tag, "imp-g3n-%s", gguf ? "gguf" : "cfg");
    const char *graph = import_to_file(src, tag, from, to, gguf ? 1 : 0);
    void *so_imp, *so_ref;
    const gmk_model *mi = compile_graph(graph, tag, &so_imp);
    const gmk_model *mr = compile_graph(gmc_test_src(rel), "g3n", &so_ref);
    const char *w = g3n_fixture(gguf ? "model.gguf" : "model.safetensors");
    const int n = 24;
    float *ref = logits_of(mr, w, n), *out = logits_of(mi, w, n);
    double e = nmse(ref, out, (size_t)n * (size_t)mr->n_vocab);
    fprintf(stderr, "import: gemma3n from %s: NMSE %.3e against the hand-written graph\n",
            gguf ? "GGUF" : "config.json", e);
    ck_assert_msg(e < 1e-12, "NMSE %g", e);
    free(ref);
    free(out);
    dlclose(so_imp);
    dlclose(so_ref);
    gmc_arena_deinit(&a);
}
END_TEST

/* Gemma 4 configs (transformers 5.25), for the error cases below. */
/* Gemma 3n configs: G3N_HEAD lacks intermediate_size, G3N_BASE has it. */
#define G3N_HEAD "{\"model_type\": \"gemma3n_text\", \"vocab_size\": 512, "                \
    "\"hidden_size\": 64, \"num_hidden_layers\": 4, \"num_attention_heads\": 4, "            \
    "\"num_key_value_heads\": 2, \"head_dim\": 16, \"max_position_embeddings\": 64, "         \
    "\"sliding_window\": 8, \"num_kv_shared_layers\": 1, \"hidden_size_per_layer_input\": 8"
#define G3N_BASE G3N_HEAD ", \"intermediate_size\": 32"

#define G4_BASE "{\"model_type\": \"gemma4_text\", \"vocab_size\": 512, \"hidden_size\": 48, " \
    "\"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "      \
    "\"head_dim\": 16, \"intermediate_size\": 32, \"max_position_embeddings\": 64, "           \
    "\"sliding_window\": 8, \"layer_types\": [\"sliding_attention\", \"full_attention\", "    \
    "\"sliding_attention\", \"full_attention\"]"

static const struct { const char *json, *msg; } bad_configs[] = {
    {"{\"model_type\": \"llama\"}", "\"model_type\" = \"llama\": expected gemma, gemma2, "
                                    "gemma3_text, gemma3, gemma3n_text, gemma3n, gemma4_text "
                                    "or gemma4"},
    {"{\"model_type\": \"gemma\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, \"moe\": 4}",
     "\"moe\" = 4: unsupported field"},
    {"{\"model_type\": \"gemma\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 0, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192}",
     "\"num_hidden_layers\" = 0: expected an integer in [1, 1024]"},
    {"{\"model_type\": \"gemma\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384}", "missing field \"max_position_embeddings\""},
    {"{\"model_type\": \"gemma2\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, "
     "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
     "\"rope_scaling\" = {...} (2 keys): only rope_type \"default\", \"linear\" and "
     "\"proportional\""},
    {"{\"model_type\": \"gemma\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, "
     "\"tie_word_embeddings\": false}", "\"tie_word_embeddings\" = false: only tied"},
    {"{\"model_type\": \"gemma\", \"vocab_size\": 256000, \"hidden_size\": 2048, "
     "\"num_hidden_layers\": 18, \"num_attention_heads\": 8, \"num_key_value_heads\": 1, "
     "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, "
     "\"hidden_act\": \"relu\"}", "\"hidden_act\" = \"relu\": only gelu_pytorch_tanh"},
    {"{\"model_type\": \"gemma3\", \"text_config\": {}, \"audio\": 1}",
     "\"audio\" = 1: unsupported field"},
    {"{\"model_type\": \"gemma\",,}", "expected a key string"},
    {"{\"model_type\": \"gemma3_text\", \"vocab_size\": 512, \"hidden_size\": 48, "
     "\"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
     "\"intermediate_size\": 32, \"max_position_embeddings\": 64, \"num_kv_shared_layers\": 2}",
     "\"num_kv_shared_layers\" = 2: unsupported field (only Gemma 3n and 4 configs have it)"},
    {G3N_BASE ", \"activation_sparsity_pattern\": [0.95, 0, 0.95, 0]}",
     "\"activation_sparsity_pattern\" = [...] (4 items): gemmac takes one sparsity for the "
     "first N layers and dense layers after them"},
    {G3N_BASE ", \"activation_sparsity_pattern\": [0.95, 0.9, 0, 0]}",
     "\"activation_sparsity_pattern\" = [...] (4 items): gemmac takes one sparsity"},
    {G3N_BASE ", \"activation_sparsity_pattern\": [0.95, 0]}",
     "\"activation_sparsity_pattern\" = [...] (2 items): expected one number per layer"},
    {G3N_BASE ", \"altup_num_inputs\": 2, \"altup_active_idx\": 2}",
     "\"altup_active_idx\" = 2: must be below altup_num_inputs"},
    {G3N_HEAD ", \"intermediate_size\": [32, 32, 64, 64]}",
     "\"intermediate_size\" = [...] (4 items): expected an integer in [1, 1048576] or a list"},
    {G3N_BASE ", \"laurel_rank\": 0}", "\"laurel_rank\" = 0: expected an integer in [1, 65536]"},
    /* found by fuzz_import: a defaulted field in an error (was a NULL dereference) */
    {"{\"model_type\": \"gemma3n_text\", \"vocab_size\": 512, \"hidden_size\": 64, "
     "\"num_hidden_layers\": 8, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
     "\"head_dim\": 16, \"max_position_embeddings\": 64, \"sliding_window\": 2, "
     "\"hidden_size_per_layer_input\": 8, \"intermediate_size\": 16, \"laurel_rank\": 1}",
     "\"num_kv_shared_layers\" = absent (the default): must leave at least one layer"},
    {G3N_BASE ", \"vocab_size_per_layer_input\": 1024}",
     "\"vocab_size_per_layer_input\" = 1024: must be at most vocab_size"},
    {G4_BASE ", \"laurel_rank\": 8}",
     "\"laurel_rank\" = 8: unsupported field (only Gemma 3n configs have it)"},
    {G4_BASE ", \"torch_dtype\": \"float16\"}", "\"torch_dtype\" = \"float16\": the "
     "embedding scale sqrt(hidden_size) is rounded to the checkpoint dtype"},
    {G4_BASE ", \"dtype\": \"bfloat16\", \"gemmac_embed_scale\": \"exact\"}",
     "\"gemmac_embed_scale\" = \"exact\": contradicts \"dtype\""},
    {G4_BASE ", \"enable_moe_block\": true, \"num_experts\": 4, \"top_k_experts\": 2}",
     "\"enable_moe_block\" is true but \"moe_intermediate_size\" is missing or null"},
    {G4_BASE ", \"global_head_dim\": 64, \"per_layer_config\": {\"1\": {\"head_dim\": 32}, "
     "\"3\": {\"head_dim\": 32}}}", "\"global_head_dim\" = 64 but per_layer_config gives "
     "the full_attention layers head_dim 32"},
    {G4_BASE ", \"per_layer_config\": {\"0\": {\"head_dim\": 32}, \"3\": {\"head_dim\": 32}}}",
     "\"per_layer_config.0\" = {...} (1 keys): expected the index of a full_attention layer"},
    {G4_BASE ", \"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": "
     "0.5}}", "\"rope_parameters.partial_rotary_factor\" = 0.5: partial rotation is supported "
     "only with rope_type \"proportional\""},
    {G4_BASE ", \"hidden_size_per_layer_input\": 8, \"vocab_size_per_layer_input\": 1024}",
     "\"vocab_size_per_layer_input\" = 1024: must equal vocab_size"},
    {G4_BASE ", \"num_global_key_value_heads\": 3, \"attention_k_eq_v\": true}",
     "\"num_global_key_value_heads\" gives a graph that does not validate: "
     "attention.global.kv_heads: kv_heads (3) must divide heads (4)"},
};

START_TEST(test_import_bad)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bad%d.config.json", gmc_test_tmpdir(), _i);
    FILE *f = fopen(path, "w");
    fputs(bad_configs[_i].json, f);
    fclose(f);
    gmc_import_opts o = {0};
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_int_ne(gmc_import(path, &o, &b, &d), GMC_OK);
    ck_assert_msg(strstr(d.msg, bad_configs[_i].msg) != NULL, "case %d: got \"%s\"", _i, d.msg);
    gmc_strbuf_deinit(&b);
}
END_TEST

/* A file is judged by its first bytes before any reader sees it: a corrupt
 * or foreign file as weights or for import is named as what it is not,
 * never reported as a safetensors or JSON problem. */
START_TEST(test_file_format)
{
    static const unsigned char st_head[] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ck_assert_int_eq(gmrt_format_of("GGUF\3", 5), GMRT_FORMAT_GGUF);
    ck_assert_int_eq(gmrt_format_of(st_head, sizeof st_head), GMRT_FORMAT_SAFETENSORS);
    ck_assert_int_eq(gmrt_format_of(" \n{\"a\": 1}", 10), GMRT_FORMAT_JSON);
    ck_assert_int_eq(gmrt_format_of("GGU", 3), GMRT_FORMAT_UNKNOWN);
    ck_assert_int_eq(gmrt_format_of("", 0), GMRT_FORMAT_UNKNOWN);

    char junk[4200], empty[4200], st[4200];
    snprintf(junk, sizeof junk, "%s/junk.bin", gmc_test_tmpdir());
    snprintf(empty, sizeof empty, "%s/empty.bin", gmc_test_tmpdir());
    snprintf(st, sizeof st, "%s/format.safetensors", gmc_test_tmpdir());
    FILE *f = fopen(junk, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x60\xcb\0\x1a\x16\x52\xfb\xa3\x01\x02", 1, 10, f);
    fclose(f);
    f = fopen(empty, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    f = fopen(st, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(st_head, 1, sizeof st_head, f);
    fclose(f);

    tiny_model t;
    tiny_setup(&t);
    gmrt_session_opts so = {.n_threads = 1};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_session_create(t.m, junk, &so, &s, &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, junk) && strstr(d.msg, "not a GGUF file") &&
                  strstr(d.msg, "starts with bytes 60 cb 00 1a") && !strstr(d.msg, "header"
                  " length"), "%s", d.msg);
    ck_assert_int_eq(gmrt_session_create(t.m, empty, &so, &s, &d), GMRT_ERR_FORMAT);
    ck_assert_msg(strstr(d.msg, "it is empty"), "%s", d.msg);

    gmc_import_opts o = {0};
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag cd;
    gmc_diag_clear(&cd);
    ck_assert_int_ne(gmc_import(junk, &o, &b, &cd), GMC_OK);
    ck_assert_msg(strstr(cd.msg, "not a Hugging Face config.json (JSON) or a GGUF file") &&
                  !strstr(cd.msg, "expected a value"), "%s", cd.msg);
    ck_assert_int_ne(gmc_import(st, &o, &b, &cd), GMC_OK);
    ck_assert_msg(strstr(cd.msg, "a safetensors file; give the config.json beside it"), "%s",
                  cd.msg);
    gmc_strbuf_deinit(&b);
    dlclose(t.so);
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_json_values);
    tcase_add_loop_test(tc, test_json_errors, 0, (int)(sizeof bad_json / sizeof bad_json[0]));
    tcase_add_test(tc, test_json_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("reader");
    tcase_add_test(tc, test_st_valid);
    tcase_add_loop_test(tc, test_st_malformed, 0, (int)(sizeof st_cases / sizeof st_cases[0]));
    tcase_add_test(tc, test_st_truncated);
    tcase_add_test(tc, test_st_caps);
    tcase_add_loop_test(tc, test_st_index, 0, (int)(sizeof index_cases / sizeof index_cases[0]));
    tcase_add_test(tc, test_st_dir_empty);
    tcase_add_test(tc, test_st_fifo);
    suite_add_tcase(s, tc);
    tc = tcase_create("bind");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bind_matches_gguf);
    tcase_add_test(tc, test_bind_errors);
    tcase_add_test(tc, test_bind_hub_links);
    tcase_add_test(tc, test_bind_tokenizer);
    tcase_add_test(tc, test_file_format);
    tcase_add_loop_test(tc, test_bind_gemma4, 0, 2);
    tcase_add_loop_test(tc, test_bind_gemma4_convert, 0, 2);
    tcase_add_test(tc, test_bind_gemma4_mapped);
    tcase_add_test(tc, test_bind_gemma3n);
    tcase_add_test(tc, test_bind_gemma3n_convert);
    suite_add_tcase(s, tc);
    tc = tcase_create("import");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_import_config, 0,
                        (int)(sizeof import_pairs / sizeof import_pairs[0]));
    tcase_add_test(tc, test_import_fallback);
    tcase_add_test(tc, test_import_gguf);
    tcase_add_loop_test(tc, test_import_gemma4, 0, 4);
    tcase_add_loop_test(tc, test_import_gemma3n, 0, 2);
    tcase_add_loop_test(tc, test_import_bad, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
    suite_add_tcase(s, tc);
    return s;
}
