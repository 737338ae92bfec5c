/*
 * fuzz_chat.c — the chat template and prompt path (chat.c): arbitrary bytes
 * as a system and a user text, formatted in both template styles and
 * tokenized as `gemmac run` tokenizes a prompt (special tokens parsed) with
 * the fixtures' vocabulary of that style.  The bytes up to the first NUL
 * are the system text and the rest the user text (up to its own NUL, as C
 * strings end); without a NUL there is no system text.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
