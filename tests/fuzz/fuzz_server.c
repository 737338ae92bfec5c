/*
 * fuzz_server.c — the server's request parsers (server/api.c): arbitrary
 * bytes as the body of /v1/chat/completions, /v1/completions, /tokenize
 * and /detokenize, with the fixtures' SentencePiece and BPE vocabularies.
 * The first byte picks the endpoint (low 2 bits) and the vocabulary (bit 2);
 * the rest is the body.  A parse must accept or refuse: an accepted request
 * holds a prompt of 1 .. n_ctx - 1 ids of the vocabulary and fields within
 * their ranges; a refusal has a 4xx/5xx status and a message, and its
 * OpenAI error body is JSON the strict parser reads back.
 */
#include <stdint.h>

#include "api.h"
#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_CTX 256

static void check_error(const gms_error *e)
{
    if (e->http < 400 || e->http > 599 || !e->msg[0] || !e->type)
        abort();
    gms_buf b;
    gms_buf_init(&b, 0);
    gms_error_json(e, &b);
    gmrt_json *doc = NULL;
    gmrt_diag d = {0};
    if (b.failed || gmrt_json_parse(b.p, b.len, "error body", NULL, &doc, &d) != GMRT_OK)
        abort(); /* the writer wrote something that is not JSON */
    gmrt_json_destroy(doc);
    gms_buf_deinit(&b);
}

static void request(const char *body, size_t len, gms_kind kind, const gmrt_vocab *v)
{
    gms_request r;
    gms_error e;
    memset(&e, 0, sizeof e);
    if (!gms_request_parse(body, len, kind, v, N_CTX, 7, &r, &e)) {
        check_error(&e);
        return;
    }
    if (r.n_ids < 1 || r.n_ids > N_CTX - 1 || r.n_stop < 0 || r.n_stop > GMS_MAX_STOP ||
        r.top_logprobs < 0 || r.top_logprobs > GMS_MAX_TOP_LOGPROBS || r.max_tokens < 0)
        abort();
    for (size_t i = 0; i < r.n_ids; i++)
        if (r.ids[i] < 0 || r.ids[i] >= gmrt_vocab_size(v))
            abort();
    gmrt_diag d = {0};
    if (gmrt_sampler_params_check(&r.sp, &d) != GMRT_OK)
        abort(); /* a sampler setting the parser let through */
    gms_request_deinit(&r);
}

static void tokens(const char *body, size_t len, bool detok, const gmrt_vocab *v)
{
    gms_buf out;
    gms_buf_init(&out, 1 << 20);
    gms_error e;
    memset(&e, 0, sizeof e);
    bool ok = detok ? gms_detokenize_json(body, len, v, &out, &e)
                    : gms_tokenize_json(body, len, v, &out, &e);
    if (!ok) {
        check_error(&e);
    } else if (!out.failed) {
        gmrt_json *doc = NULL;
        gmrt_diag d = {0};
        if (gmrt_json_parse(out.p, out.len, "response", NULL, &doc, &d) != GMRT_OK)
            abort();
        gmrt_json_destroy(doc);
    }
    gms_buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gmrt_vocab *spm, *bpe;
    if (!spm) {
        spm = fuzz_vocab(FUZZ_VOCAB_SPM);
        bpe = fuzz_vocab(FUZZ_VOCAB_BPE);
    }
    if (size < 1)
        return 0;
    const gmrt_vocab *v = data[0] & 4 ? bpe : spm;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0: request(body, len, GMS_CHAT, v); break;
    case 1: request(body, len, GMS_COMPLETION, v); break;
    case 2: tokens(body, len, false, v); break;
    default: tokens(body, len, true, v); break;
    }
    return 0;
}
