/*
 * fuzz_import.c — `gemmac import` (import.c) on arbitrary bytes as the
 * source file: a Hugging Face config.json, or GGUF metadata when the bytes
 * start with the GGUF magic.  import parses what it writes back through the
 * graph schema itself, so an accepted input also exercises model.c.
 */
#include <stdint.h>

#include "fuzz.h"
#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A quantized import of a config.json takes the per-tensor type paths
     * as well; which one is the input's choice, from its length.  --quant
     * is refused for a GGUF, whose tensors carry their own types. */
    static const char *const quants[] = {NULL, "q8_0", "q4_k"};
    bool gguf = size >= 4 && memcmp(data, "GGUF", 4) == 0;
    const char *path = fuzz_write("config.json", data, size);
    gmc_import_opts o = {.quant = gguf ? NULL : quants[size % 3]};
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_import(path, &o, &b, &d) == GMC_OK && gmc_strbuf_failed(&b))
        abort();
    gmc_strbuf_deinit(&b);
    return 0;
}
