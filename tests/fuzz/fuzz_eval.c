/*
 * fuzz_eval.c — the reference-file reader of `gemmac eval` (eval.c) on
 * arbitrary bytes.  gmrt_eval_compare opens the input twice, as the
 * reference and as the other file, so it runs every check of a reference
 * (docs/conformance.md) against a small model and, when the file holds full
 * logits, scores it against itself.  The model is only the two sizes the
 * reader checks against: 32 tokens of vocabulary and 64 of context.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt_tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gmk_model m = {.name = "fuzz", .n_vocab = 32, .n_ctx = 64};
    const char *path = fuzz_write("ref.gguf", data, size);
    gmrt_eval_report r;
    gmrt_diag d = {0};
    if (gmrt_eval_compare(&m, path, path, &r, &d) == GMRT_OK)
        gmrt_eval_report_free(&r);
    return 0;
}
