/*
 * fuzz_safetensors.c — the safetensors reader (safetensors.c) and its
 * strict JSON parser (json.c) on arbitrary bytes.
 *
 * Each input is parsed as a JSON document on its own, then opened as a
 * checkpoint: as a model.safetensors.index.json when it starts with '{'
 * (the scratch directory holds two valid shards for it to name), else as a
 * single .safetensors file.  What opens is read as the compiler reads it:
 * every tensor found by name, its first and last byte inside the mapping.
 */
#include <stdint.h>

#include "fuzz.h"
#include "gmrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

/* A shard holding tensors a (f32 [2]) and b (bf16 [1, 2]) or c (f16 [3]). */
static void write_shard(const char *name, const char *header, size_t n_data)
{
    uint8_t buf[512] = {0};
    size_t n = strlen(header);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    fuzz_write(name, buf, 8 + n + n_data);
}

static void write_shards(void)
{
    write_shard("model-00001-of-00002.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[8,12]}}", 12);
    write_shard("model-00002-of-00002.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"c\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
}

/* Every object member must be found again by its key (keys are unique). */
static void walk(const gmrt_json_value *v)
{
    if (v->kind == GMRT_JSON_STRING && v->u.s.p[v->u.s.len] != '\0')
        abort();
    if (v->kind == GMRT_JSON_ARRAY)
        for (size_t i = 0; i < v->u.c.n; i++)
            walk(&v->u.c.items[i]);
    if (v->kind == GMRT_JSON_OBJECT)
        for (size_t i = 0; i < v->u.c.n; i++) {
            const gmrt_json_member *m = &v->u.c.members[i];
            if (strlen(m->key) == m->key_len && gmrt_json_get(v, m->key) != m->value)
                abort();
            walk(m->value);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        write_shards();
        ready = true;
    }
    gmrt_diag d = {0};
    gmrt_json *doc = NULL;
    if (gmrt_json_parse((const char *)data, size, "fuzz.json", NULL, &doc, &d) == GMRT_OK) {
        walk(gmrt_json_root(doc));
        gmrt_json_destroy(doc);
    }
    bool index = size > 0 && data[0] == '{';
    const char *path = fuzz_write(index ? "model.safetensors.index.json" : "in.safetensors",
                                  data, size);
    gmrt_safetensors *st = NULL;
    if (gmrt_safetensors_open(path, &st, &d) != GMRT_OK)
        return 0;
    for (int64_t i = 0; i < gmrt_safetensors_n_tensors(st); i++) {
        const gmrt_st_tensor *t = gmrt_safetensors_tensor_at(st, i);
        if (!t || gmrt_safetensors_find(st, t->name) != t)
            abort();
        if (t->nbytes) {
            const uint8_t *p = t->data;
            sink += p[0] + p[t->nbytes - 1];
        }
    }
    if (!gmrt_safetensors_dir(st))
        abort();
    gmrt_safetensors_close(st);
    return 0;
}
