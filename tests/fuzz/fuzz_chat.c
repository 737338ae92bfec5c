/*
 * fuzz_chat.c — the chat template and prompt path (chat.c): arbitrary bytes
 * as a system and a user text, formatted in both template styles and
 * tokenized both ways `gemmac run` tokenizes a chat prompt — the texts as
 * text (gmrt_chat_tokenize), and the formatted string with special tokens
 * parsed (--special) — with the fixtures' vocabulary of that style.  The
 * bytes up to the first NUL are the system text and the rest the user text
 * (up to its own NUL, as C strings end); without a NUL there is no system
 * text.  Whatever the texts spell, gmrt_chat_tokenize must hold exactly the
 * template's ends of turn.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The template's ends of turn: one per turn, Gemma 4's system turn
 * included. */
static size_t template_ends(gmrt_chat_style style, const char *system)
{
    return style == GMRT_CHAT_GEMMA4 && system ? 2 : 1;
}

static void chat_ids(const gmrt_vocab *v, gmrt_chat_style style, const char *system,
                     const char *user)
{
    const char *eot = style == GMRT_CHAT_GEMMA4 ? "<turn|>" : "<end_of_turn>";
    int32_t end = gmrt_vocab_find(v, eot, strlen(eot));
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    gmrt_diag d = {0};
    if (!ids || end < 0)
        abort();
    gmrt_status st = gmrt_chat_tokenize(v, system, user, true, ids, cap, &n, &d);
    if (st == GMRT_ERR_LIMIT && n > cap) {
        free(ids);
        cap = n;
        if (!(ids = malloc(cap * sizeof *ids)))
            abort();
        st = gmrt_chat_tokenize(v, system, user, true, ids, cap, &n, &d);
    }
    if (st != GMRT_OK)
        abort();
    size_t ends = 0;
    for (size_t i = 0; i < n; i++)
        ends += ids[i] == end;
    if (ends != template_ends(style, system))
        abort(); /* the user's text forged or removed a turn */
    free(ids);
}

static void prompt(const gmrt_vocab *v, gmrt_chat_style style, const char *system,
                   const char *user)
{
    if (gmrt_chat_style_of(v) != style)
        abort();
    char *p = gmrt_chat_format_style(style, system, user);
    if (!p)
        abort();
    fuzz_tokenize(v, p, strlen(p), true);
    free(p);
    chat_ids(v, style, system, user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gmrt_vocab *spm, *bpe;
    if (!spm) {
        spm = fuzz_vocab(FUZZ_VOCAB_SPM);
        bpe = fuzz_vocab(FUZZ_VOCAB_BPE);
    }
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *nul = memchr(buf, '\0', size);
    const char *system = nul ? buf : NULL;
    const char *user = nul ? nul + 1 : buf;
    char *p = gmrt_chat_format(system, user);
    if (!p)
        abort();
    free(p);
    prompt(spm, GMRT_CHAT_GEMMA, system, user);
    prompt(bpe, GMRT_CHAT_GEMMA4, system, user);
    free(buf);
    return 0;
}
