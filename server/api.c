/*
 * api.c — request bodies of the OpenAI API in, errors out (api.h).
 *
 * Every field the server reads is checked for its JSON kind and range here,
 * so that the scheduler only ever sees values the sampler accepts; fields
 * it does not know are ignored, as the API does (docs/server.md#fields).
 */
#include "api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GMS_MAX_MESSAGES 1024

bool gms_err(gms_error *e, int http, const char *param, const char *fmt, ...)
{
    e->http = http;
    e->type = http == 401 ? "authentication_error"
              : http == 429 ? "rate_limit_error"
              : http >= 500 ? "server_error" : "invalid_request_error";
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return false;
}

void gms_error_json(const gms_error *e, gms_buf *b)
{
    gms_jw w;
    gms_jw_init(&w, b);
    gms_jw_obj(&w);
    gms_jw_key(&w, "error");
    gms_jw_obj(&w);
    gms_jw_key(&w, "message");
    gms_jw_cstr(&w, e->msg);
    gms_jw_key(&w, "type");
    gms_jw_cstr(&w, e->type ? e->type : "invalid_request_error");
    gms_jw_key(&w, "param");
    gms_jw_cstr(&w, e->param[0] ? e->param : NULL);
    gms_jw_key(&w, "code");
    gms_jw_cstr(&w, e->code);
    gms_jw_end(&w);
    gms_jw_end(&w);
}

/* Parses a request body: an object, within small limits (the body itself
 * is capped by the HTTP layer). */
static bool parse_body(const char *body, size_t len, gmrt_json **doc, gms_error *e)
{
    gmrt_json_limits lim;
    gmrt_json_limits_default(&lim);
    lim.max_depth = 16;
    lim.max_values = 1u << 18;
    lim.max_members = 1u << 16;
    gmrt_diag d = {0};
    *doc = NULL;
    gmrt_status st = gmrt_json_parse(body, len, "request body", &lim, doc, &d);
    if (st == GMRT_ERR_NOMEM)
        return gms_err(e, 500, NULL, "out of memory parsing the request");
    if (st != GMRT_OK)
        return gms_err(e, 400, NULL, "invalid JSON: %s", d.msg);
    if (gmrt_json_root(*doc)->kind != GMRT_JSON_OBJECT) {
        gmrt_json_destroy(*doc);
        *doc = NULL;
        return gms_err(e, 400, NULL, "the request body must be a JSON object");
    }
    return true;
}

/* A member that is absent or null counts as not given. */
static const gmrt_json_value *field(const gmrt_json_value *o, const char *key)
{
    const gmrt_json_value *v = gmrt_json_get(o, key);
    return v && v->kind != GMRT_JSON_NULL ? v : NULL;
}

/* Number field in [lo, hi]; *out unchanged when absent. */
static bool get_num(const gmrt_json_value *o, const char *key, double lo, double hi,
                    float *out, gms_error *e)
{
    const gmrt_json_value *v = field(o, key);
    double d;
    if (!v)
        return true;
    if (!gmrt_json_number(v, &d))
        return gms_err(e, 400, key, "%s must be a number, not %s", key,
                       gmrt_json_kind_name(v->kind));
    if (!(d >= lo && d <= hi))
        return gms_err(e, 400, key, "%s = %g is outside [%g, %g]", key, d, lo, hi);
    *out = (float)d;
    return true;
}

/* Integer field in [lo, hi]; *present says whether it was given. */
static bool get_int(const gmrt_json_value *o, const char *key, int64_t lo, int64_t hi,
                    int64_t *out, bool *present, gms_error *e)
{
    const gmrt_json_value *v = field(o, key);
    *present = v != NULL;
    if (!v)
        return true;
    if (v->kind != GMRT_JSON_INT)
        return gms_err(e, 400, key, "%s must be an integer, not %s", key,
                       gmrt_json_kind_name(v->kind));
    if (v->u.i < lo || v->u.i > hi)
        return gms_err(e, 400, key, "%s = %lld is outside [%lld, %lld]", key,
                       (long long)v->u.i, (long long)lo, (long long)hi);
    *out = v->u.i;
    return true;
}

static bool get_bool(const gmrt_json_value *o, const char *key, bool *out, gms_error *e)
{
    const gmrt_json_value *v = field(o, key);
    if (!v)
        return true;
    if (v->kind != GMRT_JSON_BOOL)
        return gms_err(e, 400, key, "%s must be true or false, not %s", key,
                       gmrt_json_kind_name(v->kind));
    *out = v->u.b;
    return true;
}

/* One stop string into slot i. */
static bool add_stop(gms_request *r, const gmrt_json_value *v, gms_error *e)
{
    if (v->kind != GMRT_JSON_STRING)
        return gms_err(e, 400, "stop", "stop must be a string or an array of strings, "
                                       "not %s", gmrt_json_kind_name(v->kind));
    if (v->u.s.len == 0 || v->u.s.len > GMS_STOP_MAX_LEN)
        return gms_err(e, 400, "stop", "a stop string must be 1 to %d bytes, not %zu",
                       GMS_STOP_MAX_LEN, v->u.s.len);
    memcpy(r->stop[r->n_stop], v->u.s.p, v->u.s.len);
    r->stop[r->n_stop][v->u.s.len] = '\0';
    r->stop_len[r->n_stop++] = v->u.s.len;
    return true;
}

static bool get_stop(const gmrt_json_value *o, gms_request *r, gms_error *e)
{
    const gmrt_json_value *v = field(o, "stop");
    if (!v)
        return true;
    if (v->kind != GMRT_JSON_ARRAY)
        return add_stop(r, v, e);
    if (v->u.c.n > GMS_MAX_STOP)
        return gms_err(e, 400, "stop", "at most %d stop strings, not %zu", GMS_MAX_STOP,
                       v->u.c.n);
    for (size_t i = 0; i < v->u.c.n; i++)
        if (!add_stop(r, &v->u.c.items[i], e))
            return false;
    return true;
}

/* The sampling and length fields shared by both endpoints. */
static bool parse_common(const gmrt_json_value *o, int32_t n_ctx, uint64_t seed_default,
                         gms_request *r, gms_error *e)
{
    int64_t i64 = 0;
    bool has;
    gmrt_sampler_params_default(&r->sp);
    /* The API's defaults: temperature 1, nucleus off, no top-k. */
    r->sp.temperature = 1.0f;
    r->sp.top_k = 0;
    r->sp.top_p = 1.0f;
    r->sp.seed = seed_default;
    if (!get_num(o, "temperature", 0, 2, &r->sp.temperature, e) ||
        !get_num(o, "top_p", 0, 1, &r->sp.top_p, e) ||
        !get_num(o, "min_p", 0, 0.999999, &r->sp.min_p, e) ||
        !get_num(o, "presence_penalty", -2, 2, &r->presence, e) ||
        !get_num(o, "frequency_penalty", -2, 2, &r->frequency, e) ||
        !get_bool(o, "stream", &r->stream, e) || !get_stop(o, r, e))
        return false;
    if (r->sp.top_p == 0) { /* only the most likely token is left */
        r->sp.top_p = 1.0f;
        r->sp.temperature = 0;
    }
    if (!get_int(o, "top_k", 0, 1000000, &i64, &has, e))
        return false;
    if (has)
        r->sp.top_k = (int32_t)i64;
    if (!get_int(o, "seed", INT64_MIN, INT64_MAX, &i64, &has, e))
        return false;
    if (has)
        r->sp.seed = (uint64_t)i64;
    if (!get_int(o, "n", 1, 1, &i64, &has, e))
        return false;
    const char *mt = field(o, "max_completion_tokens") ? "max_completion_tokens"
                                                       : "max_tokens";
    if (!get_int(o, mt, 1, n_ctx, &i64, &has, e))
        return false;
    r->max_tokens = has ? (int32_t)i64 : 0;
    const gmrt_json_value *so = field(o, "stream_options");
    if (so && so->kind != GMRT_JSON_OBJECT)
        return gms_err(e, 400, "stream_options", "stream_options must be an object");
    if (so && !get_bool(so, "include_usage", &r->include_usage, e))
        return false;
    return true;
}

/* The text of a message's content: a string, or the texts of an array of
 * {"type": "text", "text": ...} parts joined by newlines, into b. */
static bool content_text(const gmrt_json_value *c, size_t i, gms_buf *b, gms_error *e)
{
    char param[40];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!c)
        return true; /* null or absent: an empty text */
    if (c->kind == GMRT_JSON_STRING) {
        gms_buf_add(b, c->u.s.p, c->u.s.len);
        return true;
    }
    if (c->kind != GMRT_JSON_ARRAY)
        return gms_err(e, 400, param, "%s must be a string or an array of parts", param);
    for (size_t k = 0; k < c->u.c.n; k++) {
        const gmrt_json_value *p = &c->u.c.items[k], *t = gmrt_json_get(p, "type"),
                              *x = gmrt_json_get(p, "text");
        if (!t || t->kind != GMRT_JSON_STRING || strcmp(t->u.s.p, "text") != 0)
            return gms_err(e, 400, param, "%s[%zu]: only parts of type \"text\" are "
                                          "supported", param, k);
        if (!x || x->kind != GMRT_JSON_STRING)
            return gms_err(e, 400, param, "%s[%zu].text must be a string", param, k);
        if (k)
            gms_buf_add(b, "\n", 1);
        gms_buf_add(b, x->u.s.p, x->u.s.len);
    }
    return true;
}

static bool no_nul(const char *p, size_t n, const char *param, gms_error *e)
{
    if (memchr(p, '\0', n))
        return gms_err(e, 400, param, "%s contains a NUL character", param);
    return true;
}

/* The ids of a prompt gmrt told us was too long (*n is its full count). */
static bool too_long(size_t n, int32_t n_ctx, gms_error *e)
{
    gms_err(e, 400, "messages", "the prompt is %zu tokens but the context holds %d "
                                "(at most %d for the prompt, one for the answer)",
            n, n_ctx, n_ctx - 1);
    e->code = "context_length_exceeded";
    return false;
}

static bool tokenize_chat(const gmrt_json_value *o, const gmrt_vocab *v, int32_t n_ctx,
                          gms_request *r, gms_error *e)
{
    const gmrt_json_value *ms = field(o, "messages");
    if (!ms || ms->kind != GMRT_JSON_ARRAY || ms->u.c.n == 0)
        return gms_err(e, 400, "messages", "messages must be a non-empty array");
    if (ms->u.c.n > GMS_MAX_MESSAGES)
        return gms_err(e, 400, "messages", "at most %d messages, not %zu", GMS_MAX_MESSAGES,
                       ms->u.c.n);
    size_t n = ms->u.c.n;
    gmrt_chat_msg *msgs = calloc(n, sizeof *msgs);
    gms_buf *texts = calloc(n, sizeof *texts);
    bool ok = msgs && texts;
    if (!ok)
        gms_err(e, 500, NULL, "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        const gmrt_json_value *m = &ms->u.c.items[i], *role = gmrt_json_get(m, "role");
        char param[40];
        snprintf(param, sizeof param, "messages[%zu]", i);
        gms_buf_init(&texts[i], 0);
        if (m->kind != GMRT_JSON_OBJECT)
            ok = gms_err(e, 400, param, "%s must be an object", param);
        else if (!role || role->kind != GMRT_JSON_STRING)
            ok = gms_err(e, 400, param, "%s.role must be a string", param);
        else if (!(ok = content_text(field(m, "content"), i, &texts[i], e)))
            ;
        else if (texts[i].failed)
            ok = gms_err(e, 500, NULL, "out of memory");
        else if ((ok = no_nul(role->u.s.p, role->u.s.len, param, e) &&
                       no_nul(texts[i].p ? texts[i].p : "", texts[i].len, param, e))) {
            msgs[i].role = role->u.s.p;
            msgs[i].content = texts[i].p ? texts[i].p : "";
        }
    }
    size_t cap = (size_t)n_ctx, n_ids = 0;
    if (ok && !(r->ids = malloc(cap * sizeof *r->ids)))
        ok = gms_err(e, 500, NULL, "out of memory");
    if (ok) {
        gmrt_diag d = {0};
        gmrt_status st = gmrt_chat_tokenize_msgs(v, msgs, n, gmrt_vocab_add_bos(v), r->ids,
                                                 cap, &n_ids, &d);
        if (st == GMRT_ERR_LIMIT || (st == GMRT_OK && n_ids >= cap))
            ok = too_long(n_ids, n_ctx, e);
        else if (st == GMRT_ERR_NOMEM)
            ok = gms_err(e, 500, NULL, "out of memory tokenizing the prompt");
        else if (st != GMRT_OK)
            ok = gms_err(e, 400, "messages", "%s", d.msg);
        r->n_ids = n_ids;
    }
    for (size_t i = 0; texts && i < n; i++)
        gms_buf_deinit(&texts[i]);
    free(texts);
    free(msgs);
    return ok;
}

static bool tokenize_prompt(const gmrt_json_value *o, const gmrt_vocab *v, int32_t n_ctx,
                            gms_request *r, gms_error *e)
{
    const gmrt_json_value *p = field(o, "prompt");
    if (p && p->kind == GMRT_JSON_ARRAY && p->u.c.n == 1)
        p = &p->u.c.items[0];
    if (!p || p->kind != GMRT_JSON_STRING)
        return gms_err(e, 400, "prompt", "prompt must be a string (or an array of one)");
    size_t cap = (size_t)n_ctx, n_ids = 0;
    if (!(r->ids = malloc(cap * sizeof *r->ids)))
        return gms_err(e, 500, NULL, "out of memory");
    gmrt_diag d = {0};
    gmrt_status st = gmrt_tokenize(v, p->u.s.p, p->u.s.len, gmrt_vocab_add_bos(v), false,
                                   r->ids, cap, &n_ids, &d);
    r->n_ids = n_ids;
    if (st == GMRT_ERR_LIMIT || (st == GMRT_OK && n_ids >= cap)) {
        too_long(n_ids, n_ctx, e);
        snprintf(e->param, sizeof e->param, "prompt");
        return false;
    }
    if (st != GMRT_OK)
        return gms_err(e, st == GMRT_ERR_NOMEM ? 500 : 400, "prompt", "%s", d.msg);
    if (n_ids == 0)
        return gms_err(e, 400, "prompt", "the prompt is empty");
    return true;
}

bool gms_request_parse(const char *body, size_t len, gms_kind kind, const gmrt_vocab *v,
                       int32_t n_ctx, uint64_t seed_default, gms_request *r, gms_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    gmrt_json *doc;
    if (!parse_body(body, len, &doc, e))
        return false;
    const gmrt_json_value *o = gmrt_json_root(doc);
    int64_t top = 0;
    bool has_top = false, ok = parse_common(o, n_ctx, seed_default, r, e);
    const gmrt_json_value *lp = field(o, "logprobs");
    if (ok && lp && kind == GMS_COMPLETION)
        ok = gms_err(e, 400, "logprobs", "logprobs is supported on /v1/chat/completions "
                                         "only");
    if (ok)
        ok = get_bool(o, "logprobs", &r->logprobs, e) &&
             get_int(o, "top_logprobs", 0, GMS_MAX_TOP_LOGPROBS, &top, &has_top, e);
    if (ok && has_top && !r->logprobs)
        ok = gms_err(e, 400, "top_logprobs", "top_logprobs needs logprobs: true");
    r->top_logprobs = (int)top;
    if (ok)
        ok = kind == GMS_CHAT ? tokenize_chat(o, v, n_ctx, r, e)
                              : tokenize_prompt(o, v, n_ctx, r, e);
    gmrt_json_destroy(doc);
    if (!ok)
        gms_request_deinit(r);
    return ok;
}

void gms_request_deinit(gms_request *r)
{
    free(r->ids);
    r->ids = NULL;
    r->n_ids = 0;
}

bool gms_tokenize_json(const char *body, size_t len, const gmrt_vocab *v, gms_buf *out,
                       gms_error *e)
{
    gmrt_json *doc;
    if (!parse_body(body, len, &doc, e))
        return false;
    const gmrt_json_value *o = gmrt_json_root(doc), *c = field(o, "content");
    bool special = false, pieces = false, ok = true;
    if (!c || c->kind != GMRT_JSON_STRING)
        ok = gms_err(e, 400, "content", "content must be a string");
    else
        ok = get_bool(o, "add_special", &special, e) && get_bool(o, "with_pieces", &pieces, e);
    size_t cap = c && c->kind == GMRT_JSON_STRING ? c->u.s.len + 2 : 0, n = 0;
    int32_t *ids = ok ? malloc(cap * sizeof *ids) : NULL;
    char *piece = ok ? malloc(GMRT_PIECE_MAX) : NULL;
    gmrt_diag d = {0};
    if (ok && (!ids || !piece))
        ok = gms_err(e, 500, NULL, "out of memory");
    else if (ok && gmrt_tokenize(v, c->u.s.p, c->u.s.len, special && gmrt_vocab_add_bos(v),
                                 false, ids, cap, &n, &d) != GMRT_OK)
        ok = gms_err(e, 400, "content", "%s", d.msg);
    if (ok) {
        gms_jw w;
        gms_jw_init(&w, out);
        gms_jw_obj(&w);
        gms_jw_key(&w, "tokens");
        gms_jw_arr(&w);
        for (size_t i = 0; i < n; i++) {
            if (!pieces) {
                gms_jw_int(&w, ids[i]);
                continue;
            }
            size_t pl = gmrt_token_to_piece(v, ids[i], piece, GMRT_PIECE_MAX);
            gms_jw_obj(&w);
            gms_jw_key(&w, "id");
            gms_jw_int(&w, ids[i]);
            gms_jw_key(&w, "piece");
            gms_jw_str(&w, piece, pl < GMRT_PIECE_MAX ? pl : GMRT_PIECE_MAX);
            gms_jw_end(&w);
        }
        gms_jw_end(&w);
        gms_jw_end(&w);
    }
    free(ids);
    free(piece);
    gmrt_json_destroy(doc);
    return ok;
}

bool gms_detokenize_json(const char *body, size_t len, const gmrt_vocab *v, gms_buf *out,
                         gms_error *e)
{
    gmrt_json *doc;
    if (!parse_body(body, len, &doc, e))
        return false;
    const gmrt_json_value *t = field(gmrt_json_root(doc), "tokens");
    char *piece = malloc(GMRT_PIECE_MAX);
    bool ok = piece || gms_err(e, 500, NULL, "out of memory");
    gms_buf text;
    gms_buf_init(&text, 0);
    if (ok && (!t || t->kind != GMRT_JSON_ARRAY))
        ok = gms_err(e, 400, "tokens", "tokens must be an array of token ids");
    for (size_t i = 0; ok && i < t->u.c.n; i++) {
        const gmrt_json_value *x = &t->u.c.items[i];
        if (x->kind != GMRT_JSON_INT || x->u.i < 0 || x->u.i >= gmrt_vocab_size(v)) {
            ok = gms_err(e, 400, "tokens", "tokens[%zu] is not a token id in [0, %d)", i,
                         gmrt_vocab_size(v));
            break;
        }
        size_t pl = gmrt_token_to_piece(v, (int32_t)x->u.i, piece, GMRT_PIECE_MAX);
        gms_buf_add(&text, piece, pl < GMRT_PIECE_MAX ? pl : GMRT_PIECE_MAX);
    }
    if (ok) {
        gms_jw w;
        gms_jw_init(&w, out);
        gms_jw_obj(&w);
        gms_jw_key(&w, "content");
        gms_jw_str(&w, text.p ? text.p : "", text.len);
        gms_jw_end(&w);
    }
    gms_buf_deinit(&text);
    free(piece);
    gmrt_json_destroy(doc);
    return ok;
}
