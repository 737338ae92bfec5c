/*
 * api.h — the OpenAI API's requests and errors (docs/server.md#fields).
 *
 * gms_request_parse reads a /v1/chat/completions or /v1/completions body
 * through the runtime's strict JSON parser, range-checks every field and
 * tokenizes the prompt (the chat template for messages, plain text with BOS
 * for a completion prompt).  Anything wrong fills a gms_error: the HTTP
 * status and the OpenAI error body's message, type, param and code.
 */
#ifndef GMS_API_H
#define GMS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmrt_tools.h"
#include "jsonw.h"

#define GMS_MAX_STOP 4
#define GMS_STOP_MAX_LEN 256   /* bytes of one stop string */
#define GMS_MAX_TOP_LOGPROBS 20

typedef struct gms_error {
    int http;             /* 400, 404, ... */
    const char *type;     /* "invalid_request_error", ... */
    const char *code;     /* NULL or a short code */
    char param[64];       /* the field at fault, "" if none */
    char msg[640];
} gms_error;

/* Fills e and returns false, for `return gms_err(...)`. */
bool gms_err(gms_error *e, int http, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The OpenAI error body {"error": {message, type, param, code}} into b. */
void gms_error_json(const gms_error *e, gms_buf *b);

typedef enum gms_kind { GMS_CHAT = 0, GMS_COMPLETION = 1 } gms_kind;

typedef struct gms_request {
    gms_kind kind;
    bool stream, include_usage;
    gmrt_sampler_params sp;
    int32_t max_tokens;            /* 0: until the context is full */
    char stop[GMS_MAX_STOP][GMS_STOP_MAX_LEN + 1];
    size_t stop_len[GMS_MAX_STOP];
    int n_stop;
    float presence, frequency;     /* OpenAI penalties, [-2, 2] */
    bool logprobs;
    int top_logprobs;              /* 0 .. GMS_MAX_TOP_LOGPROBS */
    int32_t *ids;                  /* the prompt, malloc'd (gms_request_deinit) */
    size_t n_ids;
} gms_request;

/* Parses body for kind, then tokenizes its prompt with v into at most
 * n_ctx - 1 ids (one position must remain for an answer).  seed_default
 * seeds requests without a seed.  On failure e says why (400 for JSON,
 * UTF-8, a field or a prompt too long for the context, 500 when out of
 * memory) and r holds nothing to free. */
bool gms_request_parse(const char *body, size_t len, gms_kind kind, const gmrt_vocab *v,
                       int32_t n_ctx, uint64_t seed_default, gms_request *r, gms_error *e);
void gms_request_deinit(gms_request *r);

/* POST /tokenize {"content", "add_special", "with_pieces"} and /detokenize
 * {"tokens"} (llama.cpp's server bodies): the response into out. */
bool gms_tokenize_json(const char *body, size_t len, const gmrt_vocab *v, gms_buf *out,
                       gms_error *e);
bool gms_detokenize_json(const char *body, size_t len, const gmrt_vocab *v, gms_buf *out,
                         gms_error *e);

#endif /* GMS_API_H */
