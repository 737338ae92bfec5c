/*
 * fuzz_tokenizer.c — the tokenizers (vocab.c, vocab_bpe.c) on arbitrary
 * bytes, two ways.  The bytes are text: tokenized with the fixtures'
 * SentencePiece and BPE vocabularies, with and without parsing special
 * tokens, and every id rendered back to its piece.  And when they start
 * with the GGUF magic they are a vocabulary: gmrt_vocab_from_gguf must
 * accept or refuse it, and what it accepts must tokenize a fixed text that
 * touches its special, byte and merge paths.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char probe[] =
    "<bos><start_of_turn>user\n Hello,  world!\t\xe2\x96\x81<0x41><unk>"
    "<|turn>\xef\xbf\xbd\xff\xc3\xa9\xe4\xb8\xad 12345 <end_of_turn><turn|>";

static void vocab_of(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("vocab.gguf", data, size);
    gmrt_gguf *g = NULL;
    gmrt_vocab *v = NULL;
    gmrt_diag d = {0};
    if (gmrt_gguf_open(path, &g, &d) != GMRT_OK)
        return;
    if (gmrt_vocab_from_gguf(g, &v, &d) == GMRT_OK) {
        fuzz_tokenize(v, probe, sizeof probe - 1, true);
        fuzz_tokenize(v, probe, sizeof probe - 1, false);
        (void)gmrt_chat_style_of(v);
        gmrt_vocab_destroy(v);
    }
    gmrt_gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gmrt_vocab *spm, *bpe;
    if (!spm) {
        spm = fuzz_vocab(FUZZ_VOCAB_SPM);
        bpe = fuzz_vocab(FUZZ_VOCAB_BPE);
    }
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        vocab_of(data, size);
        return 0;
    }
    const char *text = (const char *)data;
    for (int special = 0; special < 2; special++) {
        fuzz_tokenize(spm, text, size, special);
        fuzz_tokenize(bpe, text, size, special);
    }
    (void)gmrt_vocab_find(spm, text, size);
    (void)gmrt_vocab_find(bpe, text, size);
    return 0;
}
