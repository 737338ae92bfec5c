/*
 * stream.c — a program that embeds a model exported by `gemmac export
 * GRAPH --weights W -o DIR --name model` and streams a completion
 * (docs/export.md).  Built with nothing but a C compiler, as DIR/README.md
 * says (its -m flags are the target's):
 *
 *   cc -O2 -ffp-contract=on -fno-math-errno -march=... -IDIR DIR/model.c
 *      examples/stream.c -lm -lpthread
 *   ./a.out DIR/model.gguf "Once upon a time" 32
 *
 * Greedy decoding of at most MAX_TOKENS (default 32) tokens.  The ids go
 * to stderr as "ids: ..." so that a test can compare them.
 */
#include "model.h"

#include <stdlib.h>

/* Prints each piece as it comes and keeps its id. */
static bool on_piece(void *user, int32_t id, const char *piece, size_t len)
{
    (void)user;
    fprintf(stderr, " %d", id);
    return gmrt_stream_stdout(NULL, id, piece, len);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    if (!gmrt_cpu_check(GMRT_EXPORT_FEATURES, GMRT_EXPORT_TARGET))
        return 1;
    gmrt_session_opts opts = {.n_threads = 2};
    gmrt_session *s;
    gmrt_diag d;
    if (gmrt_session_create(gmk_model_entry, argv[1], &opts, &s, &d) != GMRT_OK) {
        fprintf(stderr, "%s\n", d.msg);
        return 1;
    }
    gmrt_sampler_params sp;
    gmrt_sampler_params_default(&sp);
    sp.temperature = 0; /* greedy */
    int32_t max = argc > 3 ? (int32_t)atoi(argv[3]) : 32;
    gmrt_gen_stats stats;
    fprintf(stderr, "ids:");
    gmrt_status st = gmrt_session_generate(s, argv[2], &sp, max, on_piece, NULL, NULL, 0,
                                           &stats, &d);
    fprintf(stderr, "\n");
    if (st != GMRT_OK)
        fprintf(stderr, "%s\n", d.msg);
    putchar('\n');
    gmrt_session_destroy(s);
    return st == GMRT_OK ? 0 : 1;
}
