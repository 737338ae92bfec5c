/*
 * http.c — the HTTP side of `gemmac serve` on libmicrohttpd
 * (docs/server.md#endpoints).
 *
 * MHD runs one thread per connection, so a handler may block: a
 * non-streaming completion waits in the access handler for its request to
 * finish, a streaming one waits in the content reader of its server-sent
 * events response.  Both wake every 100 ms to look whether the client is
 * still there; one that went away has its request cancelled, and the
 * request-completed callback cancels whatever is left (a closed stream).
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define GMS_GEN_TIMEOUT_S 3600 /* a connection's idle limit once generating */

static const int codes[] = {200, 400, 401, 404, 405, 413, 429, 500, 503};
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))

typedef enum route_id {
    R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_METRICS, R_TOKENIZE, R_DETOKENIZE, R_NONE
} route_id;

static const struct route {
    const char *path, *method;
} routes[] = {
    [R_CHAT] = {"/v1/chat/completions", "POST"},
    [R_COMPLETIONS] = {"/v1/completions", "POST"},
    [R_MODELS] = {"/v1/models", "GET"},
    [R_HEALTH] = {"/health", "GET"},
    [R_METRICS] = {"/metrics", "GET"},
    [R_TOKENIZE] = {"/tokenize", "POST"},
    [R_DETOKENIZE] = {"/detokenize", "POST"},
};

/* One HTTP request (MHD's con_cls), freed by the completed callback. */
typedef struct gms_conn {
    gms_server *srv;
    struct MHD_Connection *mc;
    route_id route;
    bool replied;          /* a response is queued */
    gms_buf body;          /* the request body, capped at max_body */
    gms_req *req;          /* a generation request, when one was submitted */
    unsigned long long id; /* for the response's id */
    long long created;
    /* streaming */
    gms_buf out;           /* bytes formatted and not yet handed to MHD */
    size_t out_off, text_sent, lp_sent;
    int phase;             /* 0 role chunk due, 1 streaming, 2 [DONE] written */
} gms_conn;

static void count_status(gms_server *srv, int status)
{
    int i = 0;
    while (i < N_CODES && codes[i] != status)
        i++;
    atomic_fetch_add(&srv->n_status[i], 1); /* i == N_CODES: "other" */
}

static enum MHD_Result queue(gms_conn *c, int status, struct MHD_Response *resp,
                             const char *ctype)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (c->route == R_NONE || status != 405) {
    } else
        MHD_add_response_header(resp, "Allow", routes[c->route].method);
    enum MHD_Result r = MHD_queue_response(c->mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    c->replied = true;
    count_status(c->srv, status);
    return r;
}

static enum MHD_Result reply(gms_conn *c, int status, const char *ctype, const gms_buf *b)
{
    if (b->failed)
        return reply(c, 500, "text/plain", &(gms_buf){.p = "out of memory\n", .len = 14});
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b->len, b->p ? b->p : "", MHD_RESPMEM_MUST_COPY);
    return queue(c, status, resp, ctype);
}

static enum MHD_Result reply_error(gms_conn *c, const gms_error *e)
{
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_error_json(e, &b);
    enum MHD_Result r = reply(c, e->http, "application/json", &b);
    gms_buf_deinit(&b);
    return r;
}

static enum MHD_Result reply_fail(gms_conn *c, int http, const char *fmt, const char *arg)
{
    gms_error e;
    gms_err(&e, http, NULL, fmt, arg);
    if (http == 413)
        e.code = "request_too_large";
    return reply_error(c, &e);
}

/* ------------------------------------------------------------ responses */

/* The fields every completion object starts with. */
static void head(gms_jw *w, const gms_conn *c, const char *object)
{
    char id[48];
    snprintf(id, sizeof id, "%s-%llx", c->route == R_CHAT ? "chatcmpl" : "cmpl", c->id);
    gms_jw_key(w, "id");
    gms_jw_cstr(w, id);
    gms_jw_key(w, "object");
    gms_jw_cstr(w, object);
    gms_jw_key(w, "created");
    gms_jw_int(w, c->created);
    gms_jw_key(w, "model");
    gms_jw_cstr(w, c->srv->model_id);
}

static void usage(gms_jw *w, const gms_req *r)
{
    gms_jw_key(w, "usage");
    gms_jw_obj(w);
    gms_jw_key(w, "prompt_tokens");
    gms_jw_int(w, r->n_prompt);
    gms_jw_key(w, "completion_tokens");
    gms_jw_int(w, r->n_gen);
    gms_jw_key(w, "total_tokens");
    gms_jw_int(w, r->n_prompt + r->n_gen);
    gms_jw_key(w, "prompt_tokens_details");
    gms_jw_obj(w);
    gms_jw_key(w, "cached_tokens");
    gms_jw_int(w, r->n_cached);
    gms_jw_end(w);
    gms_jw_end(w);
}

/* "logprobs": null, or {"content": [entries]} from lp (comma-separated). */
static void logprobs(gms_jw *w, bool on, const char *lp, size_t n)
{
    gms_jw_key(w, "logprobs");
    if (!on) {
        gms_jw_null(w);
        return;
    }
    gms_jw_obj(w);
    gms_jw_key(w, "content");
    gms_jw_arr(w);
    if (n)
        gms_jw_raw(w, lp, n);
    gms_jw_end(w);
    gms_jw_end(w);
}

/* One choice's text: a chat message or delta, or a completion's text. */
static void choice_text(gms_jw *w, const gms_conn *c, const char *key, bool role,
                        const char *text, size_t n, bool has_text)
{
    if (c->route != R_CHAT) {
        gms_jw_key(w, "text");
        gms_jw_str(w, text, n);
        return;
    }
    gms_jw_key(w, key);
    gms_jw_obj(w);
    if (role) {
        gms_jw_key(w, "role");
        gms_jw_cstr(w, "assistant");
    }
    if (has_text) {
        gms_jw_key(w, "content");
        gms_jw_str(w, text, n);
    }
    gms_jw_end(w);
}

/* The whole non-streaming answer; r is done and locked by the caller. */
static void answer_json(const gms_conn *c, const gms_req *r, gms_buf *b)
{
    gms_jw w;
    gms_jw_init(&w, b);
    gms_jw_obj(&w);
    head(&w, c, c->route == R_CHAT ? "chat.completion" : "text_completion");
    gms_jw_key(&w, "choices");
    gms_jw_arr(&w);
    gms_jw_obj(&w);
    gms_jw_key(&w, "index");
    gms_jw_int(&w, 0);
    choice_text(&w, c, "message", true, r->text.p ? r->text.p : "", r->text.len, true);
    logprobs(&w, r->p.logprobs, r->lp.p, r->lp.len);
    gms_jw_key(&w, "finish_reason");
    gms_jw_cstr(&w, r->finish);
    gms_jw_end(&w);
    gms_jw_end(&w);
    usage(&w, r);
    gms_jw_end(&w);
}

/* Opens a server-sent event with a chunk object: its head, then the
 * "choices" array left open for the caller. */
static void event_open(gms_conn *c, gms_jw *w)
{
    gms_buf_puts(&c->out, "data: ");
    gms_jw_init(w, &c->out);
    gms_jw_obj(w);
    head(w, c, c->route == R_CHAT ? "chat.completion.chunk" : "text_completion");
    gms_jw_key(w, "choices");
    gms_jw_arr(w);
}

/* One server-sent event with a chunk: text (role: the first, empty one),
 * logprobs lp, and finish (NULL while streaming). */
static void chunk_event(gms_conn *c, bool role, const char *text, size_t n, const char *lp,
                        size_t n_lp, const char *finish)
{
    gms_jw w;
    event_open(c, &w);
    gms_jw_obj(&w);
    gms_jw_key(&w, "index");
    gms_jw_int(&w, 0);
    choice_text(&w, c, "delta", role, text, n, role || n || !finish);
    logprobs(&w, c->req->p.logprobs && n_lp, lp, n_lp);
    gms_jw_key(&w, "finish_reason");
    gms_jw_cstr(&w, finish);
    gms_jw_end(&w);
    gms_jw_end(&w);
    gms_jw_end(&w);
    gms_buf_puts(&c->out, "\n\n");
}

/* ------------------------------------------------------------ waiting */

/* True when the peer closed its side or the socket failed. */
static bool peer_gone(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return true;
    char ch;
    ssize_t n = recv(ci->connect_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Waits, with r->mu held, until r is done or (stream) has text or logprobs
 * beyond what was sent.  False when the client went away (r cancelled). */
static bool wait_req(gms_conn *c, bool stream)
{
    gms_req *r = c->req;
    while (!r->done && !(stream && (r->text.len > c->text_sent || r->lp.len > c->lp_sent))) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT && peer_gone(c->mc)) {
            /* The model thread takes the scheduler's mutex, then r's (to
             * end a cancelled request): cancelling with r's held could
             * deadlock with it. */
            pthread_mutex_unlock(&r->mu);
            gms_sched_cancel(c->srv->sched, r);
            pthread_mutex_lock(&r->mu);
            return false;
        }
    }
    return true;
}

/* MHD's content reader for a stream: formats events as the request
 * produces text and hands them out. */
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    gms_conn *c = cls;
    gms_req *r = c->req;
    (void)pos;
    while (c->out_off == c->out.len) {
        gms_buf_clear(&c->out);
        c->out_off = 0;
        if (c->phase == 2)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (c->phase == 0) {
            c->phase = 1;
            if (c->route == R_CHAT)
                chunk_event(c, true, "", 0, NULL, 0, NULL);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        if (!wait_req(c, true)) {
            pthread_mutex_unlock(&r->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        size_t lp0 = c->lp_sent + (c->lp_sent && r->lp.len > c->lp_sent); /* skip ',' */
        if (r->text.len > c->text_sent || r->lp.len > c->lp_sent)
            chunk_event(c, false, r->text.p ? r->text.p + c->text_sent : "",
                        r->text.len - c->text_sent, r->lp.p ? r->lp.p + lp0 : "",
                        r->lp.len - lp0, NULL);
        c->text_sent = r->text.len;
        c->lp_sent = r->lp.len;
        if (r->done && !r->finish) {
            gms_error e;
            gms_err(&e, 500, NULL, "%s", r->error);
            gms_buf_puts(&c->out, "data: ");
            gms_error_json(&e, &c->out);
            gms_buf_puts(&c->out, "\n\n");
        } else if (r->done) {
            chunk_event(c, false, "", 0, NULL, 0, r->finish);
            if (r->p.include_usage) {
                gms_jw w;
                event_open(c, &w); /* no choices: the usage chunk */
                gms_jw_end(&w);
                usage(&w, r);
                gms_jw_end(&w);
                gms_buf_puts(&c->out, "\n\n");
            }
        }
        if (r->done) {
            gms_buf_puts(&c->out, "data: [DONE]\n\n");
            c->phase = 2;
        }
        pthread_mutex_unlock(&r->mu);
        if (c->out.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->out.len - c->out_off < max ? c->out.len - c->out_off : max;
    memcpy(buf, c->out.p + c->out_off, n);
    c->out_off += n;
    return (ssize_t)n;
}

/* ------------------------------------------------------------ endpoints */

/* A seed for requests without one: a counter mixed with the clock
 * (splitmix64), so that two requests differ. */
static uint64_t fresh_seed(gms_server *srv)
{
    uint64_t z = atomic_fetch_add(&srv->next_id, 1) + (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static enum MHD_Result generate(gms_conn *c)
{
    gms_server *srv = c->srv;
    gms_request p;
    gms_error e;
    if (!gms_request_parse(c->body.p ? c->body.p : "", c->body.len,
                           c->route == R_CHAT ? GMS_CHAT : GMS_COMPLETION, srv->v, srv->n_ctx,
                           fresh_seed(srv), &p, &e))
        return reply_error(c, &e);
    bool stream = p.stream;
    if (!(c->req = gms_req_create(&p)))
        return reply_fail(c, 500, "%s", "out of memory");
    if (!gms_sched_submit(srv->sched, c->req)) {
        gms_req_unref(c->req);
        c->req = NULL;
        int n = gms_sched_slots(srv->sched);
        gms_err(&e, 429, NULL, "the server is busy: its %d slot%s and queue are full; "
                               "retry later", n, n == 1 ? "" : "s");
        e.code = "queue_full";
        return reply_error(c, &e);
    }
    c->id = atomic_fetch_add(&srv->next_id, 1);
    c->created = (long long)time(NULL);
    MHD_set_connection_option(c->mc, MHD_CONNECTION_OPTION_TIMEOUT, GMS_GEN_TIMEOUT_S);
    if (stream) {
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_cb, c, NULL);
        if (resp)
            MHD_add_response_header(resp, "Cache-Control", "no-cache");
        return queue(c, 200, resp, "text/event-stream");
    }
    gms_req *r = c->req;
    pthread_mutex_lock(&r->mu);
    if (!wait_req(c, false)) {
        pthread_mutex_unlock(&r->mu);
        return MHD_NO; /* nobody to answer */
    }
    gms_buf b;
    gms_buf_init(&b, 0);
    int status = 200;
    if (r->finish)
        answer_json(c, r, &b);
    else {
        gms_err(&e, 500, NULL, "%s", r->error);
        gms_error_json(&e, &b);
        status = 500;
    }
    pthread_mutex_unlock(&r->mu);
    enum MHD_Result res = reply(c, status, "application/json", &b);
    gms_buf_deinit(&b);
    return res;
}

static void metrics(gms_server *srv, gms_buf *b)
{
    gms_stats *st = gms_sched_stats(srv->sched);
    gms_buf_puts(b, "# HELP gemmac_requests_total HTTP requests answered, by status.\n"
                    "# TYPE gemmac_requests_total counter\n");
    for (int i = 0; i <= N_CODES; i++)
        if (i < N_CODES || atomic_load(&srv->n_status[i]))
            gms_buf_printf(b, "gemmac_requests_total{status=\"%s%d\"} %lld\n",
                           i < N_CODES ? "" : "other", i < N_CODES ? codes[i] : 0,
                           (long long)atomic_load(&srv->n_status[i]));
    long long out = atomic_load(&st->tokens_out), us = atomic_load(&st->decode_us);
    gms_buf_printf(b,
                   "# TYPE gemmac_prompt_tokens_total counter\n"
                   "gemmac_prompt_tokens_total %lld\n"
                   "# TYPE gemmac_prompt_tokens_cached_total counter\n"
                   "gemmac_prompt_tokens_cached_total %lld\n"
                   "# TYPE gemmac_completion_tokens_total counter\n"
                   "gemmac_completion_tokens_total %lld\n",
                   (long long)atomic_load(&st->tokens_in),
                   (long long)atomic_load(&st->tokens_cached), out);
    gms_buf_printf(b,
                   "# TYPE gemmac_time_to_first_token_seconds summary\n"
                   "gemmac_time_to_first_token_seconds_sum %.6f\n"
                   "gemmac_time_to_first_token_seconds_count %lld\n",
                   1e-6 * (double)atomic_load(&st->ttft_us_sum),
                   (long long)atomic_load(&st->ttft_count));
    gms_buf_printf(b,
                   "# TYPE gemmac_decode_steps_total counter\n"
                   "gemmac_decode_steps_total %lld\n"
                   "# TYPE gemmac_decode_seconds_total counter\n"
                   "gemmac_decode_seconds_total %.6f\n"
                   "# HELP gemmac_tokens_per_second completion tokens over decode time.\n"
                   "# TYPE gemmac_tokens_per_second gauge\n"
                   "gemmac_tokens_per_second %.3f\n",
                   (long long)atomic_load(&st->decode_steps), 1e-6 * (double)us,
                   us ? (double)out / (1e-6 * (double)us) : 0.0);
    gms_buf_printf(b,
                   "# TYPE gemmac_queue_depth gauge\ngemmac_queue_depth %d\n"
                   "# TYPE gemmac_slots_busy gauge\ngemmac_slots_busy %d\n"
                   "# TYPE gemmac_slots gauge\ngemmac_slots %d\n",
                   atomic_load(&st->queue_depth), atomic_load(&st->slots_busy),
                   gms_sched_slots(srv->sched));
}

static void models(gms_server *srv, gms_buf *b)
{
    gms_jw w;
    gms_jw_init(&w, b);
    gms_jw_obj(&w);
    gms_jw_key(&w, "object");
    gms_jw_cstr(&w, "list");
    gms_jw_key(&w, "data");
    gms_jw_arr(&w);
    gms_jw_obj(&w);
    gms_jw_key(&w, "id");
    gms_jw_cstr(&w, srv->model_id);
    gms_jw_key(&w, "object");
    gms_jw_cstr(&w, "model");
    gms_jw_key(&w, "created");
    gms_jw_int(&w, 0);
    gms_jw_key(&w, "owned_by");
    gms_jw_cstr(&w, "gemmac");
    gms_jw_key(&w, "context_length");
    gms_jw_int(&w, srv->n_ctx);
    gms_jw_end(&w);
    gms_jw_end(&w);
    gms_jw_end(&w);
}

static enum MHD_Result dispatch(gms_conn *c)
{
    gms_server *srv = c->srv;
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_error e;
    enum MHD_Result r;
    const char *body = c->body.p ? c->body.p : "";
    switch (c->route) {
    case R_CHAT:
    case R_COMPLETIONS:
        r = generate(c);
        break;
    case R_MODELS:
        models(srv, &b);
        r = reply(c, 200, "application/json", &b);
        break;
    case R_HEALTH:
        gms_buf_puts(&b, "{\"status\":\"ok\"}");
        r = reply(c, 200, "application/json", &b);
        break;
    case R_METRICS:
        metrics(srv, &b);
        r = reply(c, 200, "text/plain; version=0.0.4", &b);
        break;
    case R_TOKENIZE:
    case R_DETOKENIZE:
        if (!(c->route == R_TOKENIZE ? gms_tokenize_json : gms_detokenize_json)(
                body, c->body.len, srv->v, &b, &e))
            r = reply_error(c, &e);
        else
            r = reply(c, 200, "application/json", &b);
        break;
    default:
        r = MHD_NO;
    }
    gms_buf_deinit(&b);
    return r;
}

/* Constant-time comparison of the Authorization header with the key. */
static bool authorized(gms_server *srv, struct MHD_Connection *mc)
{
    if (!srv->api_key)
        return true;
    const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t n = strlen(h), k = strlen(srv->api_key);
    unsigned diff = n != k;
    for (size_t i = 0; i < n && i < k; i++)
        diff |= (unsigned char)h[i] ^ (unsigned char)srv->api_key[i];
    return diff == 0;
}

/* The first call for a request: its route, method, key and declared size. */
static enum MHD_Result begin(gms_conn *c, const char *url, const char *method)
{
    gms_error e;
    c->route = R_NONE;
    for (int i = 0; i < R_NONE; i++)
        if (strcmp(url, routes[i].path) == 0)
            c->route = (route_id)i;
    if (c->route == R_NONE)
        return reply_fail(c, 404, "no such endpoint: %s", url);
    if (strcmp(method, routes[c->route].method) != 0) {
        gms_err(&e, 405, NULL, "%s takes %s, not %s", url, routes[c->route].method, method);
        return reply_error(c, &e);
    }
    if (c->route != R_HEALTH && !authorized(c->srv, c->mc)) {
        gms_err(&e, 401, NULL, "a valid key is needed: Authorization: Bearer KEY");
        e.code = "invalid_api_key";
        return reply_error(c, &e);
    }
    const char *cl = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > c->srv->max_body) {
        gms_err(&e, 413, NULL, "the body is %s bytes; the limit is %zu", cl, c->srv->max_body);
        e.code = "request_too_large";
        return reply_error(c, &e);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    gms_server *srv = cls;
    gms_conn *c = *con_cls;
    (void)version;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        c->srv = srv;
        c->mc = mc;
        gms_buf_init(&c->body, srv->max_body);
        gms_buf_init(&c->out, 0);
        *con_cls = c;
        return begin(c, url, method);
    }
    if (*upload_size) { /* more of the body; past the cap it is dropped */
        if (!c->replied)
            gms_buf_add(&c->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->replied)
        return MHD_YES;
    if (c->body.failed) {
        gms_error e;
        gms_err(&e, 413, NULL, "the body is over the limit of %zu bytes", srv->max_body);
        e.code = "request_too_large";
        return reply_error(c, &e);
    }
    return dispatch(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gms_server *srv = cls;
    gms_conn *c = *con_cls;
    (void)mc;
    (void)toe;
    if (!c)
        return;
    if (c->req) {
        pthread_mutex_lock(&c->req->mu);
        bool done = c->req->done;
        pthread_mutex_unlock(&c->req->mu);
        if (!done)
            gms_sched_cancel(srv->sched, c->req);
        gms_req_unref(c->req);
    }
    gms_buf_deinit(&c->body);
    gms_buf_deinit(&c->out);
    free(c);
    *con_cls = NULL;
}

bool gms_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool gms_http_start(gms_server *srv, const char *host, int port, int max_conns,
                    int *out_port)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM}, *ai = NULL;
    const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(h, ps, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "gemmac serve: --host %s is not a numeric IP address: %s\n", host,
                gai_strerror(rc));
        return false;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
        srv->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        fprintf(stderr, "gemmac serve: cannot listen on %s port %d (in use, or not an "
                        "address of this machine)\n", host, port);
        return false;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *out_port = di ? di->port : port;
    return true;
}

void gms_http_stop(gms_server *srv)
{
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
