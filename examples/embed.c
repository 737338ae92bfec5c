/*
 * embed.c — a compiled model inside your own program.
 *
 *   gemmac compile graphs/gemma3-270m.yaml -o build/g270
 *   build/example_embed build/g270/model.so "$(scripts/model-path)" "Once upon a time"
 *
 * The model is a shared object made by `gemmac compile`; the runtime
 * (libgemmart) maps the weights, checks them against the model's manifest,
 * and generates.  A program that links model.o statically uses
 * `&<name>_model` from model.h instead of dlopen.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "gmrt.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.so WEIGHTS.gguf PROMPT\n", argv[0]);
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const gmk_model *const *entry = so ? dlsym(so, "gmk_model_entry") : NULL;
    if (!entry) {
        fprintf(stderr, "%s: not a gemmac model: %s\n", argv[1], dlerror());
        return 1;
    }
    gmrt_session_opts opts = {.n_threads = 2};
    gmrt_session *s;
    gmrt_diag diag = {0};
    if (gmrt_session_create(*entry, argv[2], &opts, &s, &diag) != GMRT_OK) {
        fprintf(stderr, "%s\n", diag.msg);
        return 1;
    }
    gmrt_sampler_params sp;
    gmrt_sampler_params_default(&sp);
    sp.temperature = 0; /* greedy */
    gmrt_gen_stats st;
    int rc = 0;
    if (gmrt_session_generate(s, argv[3], &sp, 32, gmrt_stream_stdout, NULL, NULL, 0, &st,
                              &diag) != GMRT_OK) {
        fprintf(stderr, "\n%s\n", diag.msg);
        rc = 1;
    } else {
        printf("\n[%zu prompt tokens, %zu generated]\n", st.n_prompt, st.n_gen);
    }
    gmrt_session_destroy(s);
    dlclose(so);
    return rc;
}
