/*
 * fuzz_gguf.c — the GGUF reader (gguf.c) on arbitrary bytes.  A file it
 * accepts is then read the way its users read it: every key through every
 * typed getter (a type mismatch must be an error, not a misread) and the
 * first and last byte of every tensor, which must lie inside the mapping.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads through a volatile so that the compiler keeps every load that
 * AddressSanitizer is to check. */
static volatile uint8_t sink;
#define TOUCH(p, n) (sink += ((const uint8_t *)(p))[0] + ((const uint8_t *)(p))[(n) - 1])

static void read_keys(const gmrt_gguf *g)
{
    for (int64_t i = 0; i < gmrt_gguf_n_kv(g); i++) {
        const char *key = gmrt_gguf_key_at(g, i);
        if (!key || !gmrt_gguf_has_key(g, key))
            abort();
        int64_t n;
        double f;
        bool b;
        const char *s;
        const char *const *strs;
        const uint32_t *lens;
        const float *f32s;
        const int32_t *i32s;
        const uint8_t *bools;
        uint64_t count;
        (void)gmrt_gguf_get_int(g, key, &n, NULL);
        (void)gmrt_gguf_get_float(g, key, &f, NULL);
        (void)gmrt_gguf_get_bool(g, key, &b, NULL);
        if (gmrt_gguf_get_str(g, key, &s, NULL) == GMRT_OK)
            TOUCH(s, strlen(s) + 1);
        if (gmrt_gguf_get_strs(g, key, &strs, &lens, &count, NULL) == GMRT_OK)
            for (uint64_t k = 0; k < count; k++)
                if (strs[k][lens[k]] != '\0')
                    abort();
        if (gmrt_gguf_get_f32s(g, key, &f32s, &count, NULL) == GMRT_OK && count)
            TOUCH(f32s, count * sizeof *f32s);
        if (gmrt_gguf_get_i32s(g, key, &i32s, &count, NULL) == GMRT_OK && count)
            TOUCH(i32s, count * sizeof *i32s);
        if (gmrt_gguf_get_bools(g, key, &bools, &count, NULL) == GMRT_OK && count)
            TOUCH(bools, count);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.gguf", data, size);
    gmrt_gguf *g = NULL;
    gmrt_diag d = {0};
    if (gmrt_gguf_open(path, &g, &d) != GMRT_OK)
        return 0;
    read_keys(g);
    for (int64_t i = 0; i < gmrt_gguf_n_tensors(g); i++) {
        const gmrt_gguf_tensor *t = gmrt_gguf_tensor_at(g, i);
        if (!t || gmrt_gguf_find_tensor(g, t->name) != t)
            abort();
        if (t->nbytes)
            TOUCH(t->data, t->nbytes);
    }
    gmrt_gguf_close(g);
    return 0;
}
