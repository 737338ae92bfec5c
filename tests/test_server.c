/*
 * test_server.c — suite "server": the JSON writer (server/jsonw.c) and the
 * request parser (server/api.c) of `gemmac serve`.
 *
 * The writer's output is read back with the runtime's strict parser, so
 * every escape and replacement is checked to be valid JSON with the
 * intended text.  The parser runs on the tiny model's vocabulary (seeded
 * `gemmac init` weights) and must refuse each bad field with a 400 naming
 * it.  The live server is tested by tests/server/test_server.py.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "driver.h"
#include "gmrt.h"
#include "jsonw.h"
#include "testutil.h"

/* The string value s written by the writer, parsed back, equals want. */
static void roundtrip(const char *s, size_t n, const char *want, size_t want_len)
{
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_jw w;
    gms_jw_init(&w, &b);
    gms_jw_str(&w, s, n);
    ck_assert(!b.failed);
    gmrt_json *doc = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_json_parse(b.p, b.len, "w", NULL, &doc, &d) == GMRT_OK, "%s: %s",
                  b.p, d.msg);
    const gmrt_json_value *v = gmrt_json_root(doc);
    ck_assert_int_eq(v->kind, GMRT_JSON_STRING);
    ck_assert_uint_eq(v->u.s.len, want_len);
    ck_assert(memcmp(v->u.s.p, want, want_len) == 0);
    gmrt_json_destroy(doc);
    gms_buf_deinit(&b);
}

START_TEST(test_escape)
{
    roundtrip("a\"b\\c", 5, "a\"b\\c", 5);
    roundtrip("\n\t\r\x01\x1f", 5, "\n\t\r\x01\x1f", 5);
    roundtrip("x\0y", 3, "x\0y", 3);
    roundtrip("é€😀", 9, "é€😀", 9);                   /* 2, 3 and 4 bytes */
    roundtrip("\xff", 1, "\xEF\xBF\xBD", 3);             /* not a UTF-8 byte */
    roundtrip("a\xc0\x80", 3, "a\xEF\xBF\xBD\xEF\xBF\xBD", 7); /* overlong NUL */
    roundtrip("\xed\xa0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 9); /* surrogate */
    roundtrip("\xf4\x90\x80\x80", 4,                     /* above U+10FFFF */
              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 12);
    roundtrip("ab\xe2\x82", 4, "ab\xEF\xBF\xBD\xEF\xBF\xBD", 8); /* cut short */
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_json_escape(&b, "\x7f/<", 3); /* DEL and '/' pass unchanged */
    ck_assert_str_eq(b.p, "\x7f/<");
    gms_buf_deinit(&b);
}
END_TEST

START_TEST(test_structure)
{
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_jw w;
    gms_jw_init(&w, &b);
    gms_jw_obj(&w);
    gms_jw_key(&w, "a");
    gms_jw_arr(&w);
    gms_jw_int(&w, 1);
    gms_jw_int(&w, -9223372036854775807LL - 1);
    gms_jw_obj(&w);
    gms_jw_key(&w, "b");
    gms_jw_null(&w);
    gms_jw_end(&w);
    gms_jw_end(&w);
    gms_jw_key(&w, "c");
    gms_jw_bool(&w, true);
    gms_jw_key(&w, "n");
    gms_jw_arr(&w);
    gms_jw_num(&w, 0.5);
    gms_jw_num(&w, NAN);
    gms_jw_num(&w, -INFINITY);
    gms_jw_num(&w, 1e300);
    gms_jw_end(&w);
    gms_jw_key(&w, "q\"");
    gms_jw_cstr(&w, NULL);
    gms_jw_end(&w);
    ck_assert(!b.failed);
    ck_assert_str_eq(b.p, "{\"a\":[1,-9223372036854775808,{\"b\":null}],\"c\":true,"
                          "\"n\":[0.5,null,null,1e+300],\"q\\\"\":null}");
    gmrt_json *doc = NULL;
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_json_parse(b.p, b.len, "w", NULL, &doc, &d) == GMRT_OK, "%s", d.msg);
    gmrt_json_destroy(doc);
    gms_jw_end(&w); /* one end too many fails the buffer, never writes past it */
    ck_assert(b.failed);
    gms_buf_deinit(&b);
}
END_TEST

START_TEST(test_buf_cap)
{
    gms_buf b;
    gms_buf_init(&b, 8);
    gms_buf_puts(&b, "1234567");
    ck_assert(!b.failed);
    gms_buf_printf(&b, "%d", 89);
    ck_assert(b.failed);
    gms_buf_deinit(&b);
    gms_buf_init(&b, 0);
    gms_buf_printf(&b, "%0300d", 1); /* past the printf scratch */
    ck_assert_uint_eq(b.len, 300);
    gms_buf_consume(&b, 299);
    ck_assert_str_eq(b.p, "1");
    gms_buf_deinit(&b);
}
END_TEST

START_TEST(test_utf8_complete)
{
    ck_assert_uint_eq(gms_utf8_complete("ab", 2), 2);
    ck_assert_uint_eq(gms_utf8_complete("a\xc3", 2), 1);
    ck_assert_uint_eq(gms_utf8_complete("a\xe2\x82", 3), 1);
    ck_assert_uint_eq(gms_utf8_complete("a\xf0\x9f\x98", 4), 1);
    ck_assert_uint_eq(gms_utf8_complete("a\xf0\x9f\x98\x80", 5), 5);
    ck_assert_uint_eq(gms_utf8_complete("a\xff", 2), 2);     /* invalid: not held */
    ck_assert_uint_eq(gms_utf8_complete("a\xe0\x80", 3), 3); /* cannot complete */
    ck_assert_uint_eq(gms_utf8_complete("", 0), 0);
}
END_TEST

/* ------------------------------------------------------------ requests */

static gmrt_gguf *g_gguf;
static gmrt_vocab *g_vocab;

static void vocab_setup(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/server-tiny.gguf", gmc_test_tmpdir());
    gmc_diag cd;
    gmc_diag_clear(&cd);
    ck_assert_msg(gmc_init_weights(gmc_test_src("tests/graphs/tiny.yaml"), path, 1, false,
                                   &cd) == GMC_OK, "%s", cd.msg);
    gmrt_diag d = {0};
    ck_assert_msg(gmrt_gguf_open(path, &g_gguf, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_msg(gmrt_vocab_from_gguf(g_gguf, &g_vocab, &d) == GMRT_OK, "%s", d.msg);
}

static void vocab_teardown(void)
{
    gmrt_vocab_destroy(g_vocab);
    gmrt_gguf_close(g_gguf);
}

/* Parses body for kind with a context of 64; returns the status (200 ok). */
static int parse(const char *body, gms_kind kind, gms_request *r, gms_error *e)
{
    if (gms_request_parse(body, strlen(body), kind, g_vocab, 64, 7, r, e))
        return 200;
    ck_assert_ptr_null(r->ids);
    return e->http;
}

START_TEST(test_request_ok)
{
    gms_request r;
    gms_error e;
    ck_assert_int_eq(parse("{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":"
                           "\"s\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"hi\"}]}],\"temperature\":0.5,\"top_p\":0.9,"
                           "\"max_tokens\":5,\"stop\":\"\\n\",\"seed\":-3,\"unknown\":[1],"
                           "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                           "\"logprobs\":true,\"top_logprobs\":2,\"user\":null}",
                           GMS_CHAT, &r, &e), 200);
    ck_assert(r.stream && r.include_usage && r.logprobs);
    ck_assert_int_eq(r.top_logprobs, 2);
    ck_assert_int_eq(r.max_tokens, 5);
    ck_assert_int_eq(r.n_stop, 1);
    ck_assert_str_eq(r.stop[0], "\n");
    ck_assert_uint_eq(r.sp.seed, (uint64_t)-3);
    ck_assert(fabsf(r.sp.temperature - 0.5f) < 1e-6f && fabsf(r.sp.top_p - 0.9f) < 1e-6f);
    ck_assert_uint_gt(r.n_ids, 4);
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_sampler_params_check(&r.sp, &d), GMRT_OK);
    gms_request_deinit(&r);
    /* defaults: temperature 1, no top-k, the default seed; top_p 0 is greedy */
    ck_assert_int_eq(parse("{\"prompt\":[\"hello\"],\"top_p\":0}", GMS_COMPLETION, &r, &e),
                     200);
    ck_assert(r.sp.temperature == 0 && r.sp.top_k == 0 && r.sp.seed == 7 && !r.stream);
    ck_assert_int_eq(r.max_tokens, 0);
    gms_request_deinit(&r);
}
END_TEST

/* body gives 400 naming param (NULL: none) and a message containing want. */
static void bad(const char *body, gms_kind kind, const char *param, const char *want)
{
    gms_request r;
    gms_error e;
    ck_assert_msg(parse(body, kind, &r, &e) == 400, "%s: accepted", body);
    ck_assert_str_eq(e.param, param ? param : "");
    ck_assert_msg(strstr(e.msg, want), "%s: \"%s\" lacks \"%s\"", body, e.msg, want);
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_error_json(&e, &b);
    gmrt_json *doc = NULL;
    gmrt_diag d = {0};
    ck_assert_int_eq(gmrt_json_parse(b.p, b.len, "e", NULL, &doc, &d), GMRT_OK);
    ck_assert_ptr_nonnull(gmrt_json_get(gmrt_json_get(gmrt_json_root(doc), "error"),
                                        "message"));
    gmrt_json_destroy(doc);
    gms_buf_deinit(&b);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

START_TEST(test_request_bad)
{
    bad("{", GMS_CHAT, NULL, "invalid JSON");
    bad("[]", GMS_CHAT, NULL, "JSON object");
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", GMS_CHAT, NULL,
        "invalid JSON");
    bad("{" MSG ",\"temperature\":2.5}", GMS_CHAT, "temperature", "outside [0, 2]");
    bad("{" MSG ",\"temperature\":\"1\"}", GMS_CHAT, "temperature", "must be a number");
    bad("{" MSG ",\"top_p\":-0.1}", GMS_CHAT, "top_p", "outside");
    bad("{" MSG ",\"min_p\":1}", GMS_CHAT, "min_p", "outside");
    bad("{" MSG ",\"max_tokens\":0}", GMS_CHAT, "max_tokens", "outside [1, 64]");
    bad("{" MSG ",\"max_completion_tokens\":65}", GMS_CHAT, "max_completion_tokens",
        "outside");
    bad("{" MSG ",\"max_tokens\":1.5}", GMS_CHAT, "max_tokens", "integer");
    bad("{" MSG ",\"n\":2}", GMS_CHAT, "n", "outside [1, 1]");
    bad("{" MSG ",\"presence_penalty\":3}", GMS_CHAT, "presence_penalty", "outside");
    bad("{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", GMS_CHAT, "stop", "at most 4");
    bad("{" MSG ",\"stop\":\"\"}", GMS_CHAT, "stop", "1 to 256 bytes");
    bad("{" MSG ",\"stop\":[1]}", GMS_CHAT, "stop", "a string");
    bad("{" MSG ",\"top_logprobs\":2}", GMS_CHAT, "top_logprobs", "logprobs: true");
    bad("{" MSG ",\"logprobs\":true,\"top_logprobs\":21}", GMS_CHAT, "top_logprobs",
        "outside");
    bad("{" MSG ",\"stream\":1}", GMS_CHAT, "stream", "true or false");
    bad("{\"messages\":[]}", GMS_CHAT, "messages", "non-empty array");
    bad("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", GMS_CHAT, "messages",
        "robot");
    bad("{\"messages\":[{\"content\":\"x\"}]}", GMS_CHAT, "messages[0]", "role");
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        GMS_CHAT, "messages[0].content", "type \"text\"");
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", GMS_CHAT,
        "messages[0]", "NUL");
    bad("{\"prompt\":[\"a\",\"b\"]}", GMS_COMPLETION, "prompt", "must be a string");
    bad("{\"prompt\":\"a\",\"logprobs\":1}", GMS_COMPLETION, "logprobs", "chat");
    bad("{\"prompt\":\"" "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a "
        "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a\"}",
        GMS_COMPLETION, "prompt", "but the context holds 64");
}
END_TEST

START_TEST(test_tokenize)
{
    gms_buf b;
    gms_error e;
    gms_buf_init(&b, 0);
    const char *t = "{\"content\":\"hello\",\"with_pieces\":true}";
    ck_assert(gms_tokenize_json(t, strlen(t), g_vocab, &b, &e));
    ck_assert(strstr(b.p, "\"piece\":\"h\""));
    gms_buf_clear(&b);
    t = "{\"tokens\":[435,494]}";
    ck_assert(gms_detokenize_json(t, strlen(t), g_vocab, &b, &e));
    ck_assert_str_eq(b.p, "{\"content\":\"hel\"}");
    t = "{\"tokens\":[512]}";
    ck_assert(!gms_detokenize_json(t, strlen(t), g_vocab, &b, &e));
    ck_assert_int_eq(e.http, 400);
    t = "{\"content\":5}";
    ck_assert(!gms_tokenize_json(t, strlen(t), g_vocab, &b, &e));
    ck_assert_str_eq(e.param, "content");
    gms_buf_deinit(&b);
}
END_TEST

Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("jsonw");
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_buf_cap);
    tcase_add_test(tc, test_utf8_complete);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, vocab_setup, vocab_teardown);
    tcase_add_test(tc, test_request_ok);
    tcase_add_test(tc, test_request_bad);
    tcase_add_test(tc, test_tokenize);
    suite_add_tcase(s, tc);
    return s;
}
