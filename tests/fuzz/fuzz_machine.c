/*
 * fuzz_machine.c — the two small text formats of docs/experiments.md and
 * docs/conformance.md: a machine profile (costmodel.c), and a file of
 * token ids for `gemmac eval --ids` (eval.c).  The input is parsed as a
 * profile from memory and, written to a file, read as ids.  An accepted
 * profile must hold 1 .. GMRT_MACHINE_MAX_THREADS sections in increasing
 * thread counts, every value positive and finite (barrier_us may be 0),
 * a cache curve of positive sizes going up, and predict finite,
 * non-negative speeds for a fixed dense model and a MoE; accepted ids
 * must be 1 .. 64 ids of a 512-token vocabulary.
 */
#include <math.h>
#include <stdint.h>

#include "fuzz.h"
#include "gmrt_tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_profile(const gmrt_machine *m)
{
    /* a dense model and a MoE, so both reuse distances reach the curve */
    gmrt_bench_costs c = {.decode_weight_bytes = 1u << 28, .kv_bytes_per_pos = 18432,
                          .dense_macs = 2e8, .head_macs = 1.7e8,
                          .attn_macs_per_key = 36864, .peak = GMRT_PEAK_INT8,
                          .step_barriers = 166};
    gmrt_bench_costs moe = c;
    moe.decode_expert_bytes = 1u << 26;
    moe.expert_bytes = 1u << 30;
    moe.type_bytes[GMK_DTYPE_Q4_0] = 1u << 27;
    moe.type_bytes[GMK_DTYPE_Q8_0] = 1u << 27;
    if (m->n < 1 || m->n > GMRT_MACHINE_MAX_THREADS)
        abort();
    for (int i = 0; i < m->n; i++) {
        const gmrt_machine_threads *t = &m->t[i];
        double v[] = {t->read_gbs, t->int8_gops, t->bf16_gflops, t->f32_gflops,
                      t->decode_efficiency, t->prefill_efficiency};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            if (!(v[k] > 0) || !isfinite(v[k]))
                abort();
        if (!(t->barrier_us >= 0) || !isfinite(t->barrier_us))
            abort();
        if (t->threads < 1 || (i > 0 && t->threads <= m->t[i - 1].threads))
            abort();
        if (gmrt_machine_find(m, t->threads) != t)
            abort();
        if (t->n_cache < 0 || t->n_cache > GMRT_CACHE_POINTS)
            abort();
        for (int k = 0; k < t->n_cache; k++)
            if (!(t->cache_mib[k] > 0) || !isfinite(t->cache_mib[k]) ||
                !(t->cache_gbs[k] > 0) || !isfinite(t->cache_gbs[k]) ||
                (k > 0 && !(t->cache_mib[k] > t->cache_mib[k - 1])))
                abort();
        for (int k = 0; k < 2; k++) {
            gmrt_prediction p;
            gmrt_machine_predict(t, k ? &moe : &c, 64, 32, &p);
            if (!(p.pp_tps >= 0) || !(p.tg_tps >= 0) || isnan(p.pp_tps) || isnan(p.tg_tps))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    gmrt_machine m;
    gmrt_diag d = {0};
    if (gmrt_machine_parse(text, "fuzz.txt", &m, &d) == GMRT_OK)
        check_profile(&m);
    else if (!d.msg[0])
        abort(); /* every refusal says why */
    free(text);

    const char *path = fuzz_write("ids.txt", data, size);
    int32_t *ids = NULL;
    size_t n = 0;
    if (gmrt_eval_read_ids(path, 512, 64, &ids, &n, &d) == GMRT_OK) {
        if (n < 1 || n > 64)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= 512)
                abort();
    } else if (ids || !d.msg[0])
        abort();
    free(ids);
    return 0;
}
