/*
 * serve.c — the `gemmac serve` command line (server.h; docs/server.md).
 *
 * Loads the session with one sequence per slot, starts the scheduler and
 * the HTTP daemon, prints the ready line on stderr and waits for SIGINT or
 * SIGTERM, then stops the scheduler (open requests end with an error) and
 * the daemon, in that order, so that no connection waits on a request
 * that will never finish.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct serve_opts {
    const char *weights, *tokenizer, *host, *api_key;
    long port, parallel, threads, ctx, queue, max_body, timeout;
    bool verbose, requant;
} serve_opts;

void gms_serve_print_options(FILE *f)
{
    fputs("  -m, --weights PATH     GGUF file, or HF safetensors (with --tokenizer)\n"
          "      --tokenizer F.gguf the vocabulary for safetensors weights\n"
          "      --host ADDR        address to listen on (default 127.0.0.1); any other\n"
          "                         than a loopback address needs --api-key\n"
          "      --port N           TCP port (default 8080; 0: any free one)\n"
          "      --api-key KEY      require Authorization: Bearer KEY (not on /health)\n"
          "  -P, --parallel N       slots: requests decoded together (default 4)\n"
          "      --queue N          requests waiting for a slot before 429 (default 4 x N)\n"
          "  -c, --ctx N            positions per slot (default: the model's context)\n"
          "  -t, --threads N        threads (default: online CPUs, at most 8)\n"
          "      --max-body BYTES   request bodies above it get 413 (default 1048576)\n"
          "      --timeout S        read/idle timeout of a connection (default 30)\n"
          "      --requant          convert weights of another type at load\n"
          "  -v, --verbose          print loading details\n"
          "  -h, --help             this text\n", f);
}

static bool parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    return gmrt_cli_parse_long("gemmac serve", flag, s, lo, hi, out);
}

/* Returns 0 to serve, 1 after --help, 2 on a usage error. */
static int parse_args(const gmk_model *m, int argc, char **argv, serve_opts *o)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (serve_opts){.host = "127.0.0.1", .port = 8080, .parallel = 4,
                      .threads = cpus < 1 ? 1 : cpus > 8 ? 8 : cpus, .ctx = m->n_ctx,
                      .max_body = 1 << 20, .timeout = 30};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const struct { const char *s1, *s2; long *dst; long lo, hi; } nums[] = {
            {"--port", NULL, &o->port, 0, 65535},
            {"-P", "--parallel", &o->parallel, 1, GMRT_MAX_SEQS},
            {"--queue", NULL, &o->queue, 1, 4096},
            {"-c", "--ctx", &o->ctx, 2, m->n_ctx},
            {"-t", "--threads", &o->threads, 1, 256},
            {"--max-body", NULL, &o->max_body, 1024, 64L << 20},
            {"--timeout", NULL, &o->timeout, 1, 3600},
        };
        const struct { const char *s1, *s2; const char **dst; } strs[] = {
            {"-m", "--weights", &o->weights}, {"--tokenizer", NULL, &o->tokenizer},
            {"--host", NULL, &o->host}, {"--api-key", NULL, &o->api_key},
        };
        bool done = false;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: gemmac serve [GRAPH.yaml] --weights FILE.gguf [options]\n\n"
                   "Serves the compiled model %s over an OpenAI-compatible HTTP API\n"
                   "(docs/server.md).\n\n", m->name);
            gms_serve_print_options(stdout);
            return 1;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
            o->verbose = done = true;
        else if (strcmp(a, "--requant") == 0)
            o->requant = done = true;
        for (size_t k = 0; !done && k < sizeof nums / sizeof nums[0]; k++)
            if (strcmp(a, nums[k].s1) == 0 || (nums[k].s2 && strcmp(a, nums[k].s2) == 0)) {
                if (!parse_long(a, v, nums[k].lo, nums[k].hi, nums[k].dst))
                    return 2;
                i++;
                done = true;
            }
        for (size_t k = 0; !done && k < sizeof strs / sizeof strs[0]; k++)
            if (strcmp(a, strs[k].s1) == 0 || (strs[k].s2 && strcmp(a, strs[k].s2) == 0)) {
                if (!v) {
                    fprintf(stderr, "gemmac serve: %s needs a value\n", a);
                    return 2;
                }
                *strs[k].dst = v;
                i++;
                done = true;
            }
        if (!done) {
            fprintf(stderr, "gemmac serve: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
    }
    if (!o->weights) {
        fprintf(stderr, "gemmac serve: no weights given (--weights FILE.gguf)\n");
        return 2;
    }
    if (!gms_host_is_loopback(o->host) && !o->api_key) {
        fprintf(stderr, "gemmac serve: --host %s is reachable from other machines; give "
                        "--api-key KEY too (clients then send Authorization: Bearer KEY)\n",
                o->host);
        return 2;
    }
    if (o->api_key && !o->api_key[0]) {
        fprintf(stderr, "gemmac serve: --api-key must not be empty\n");
        return 2;
    }
    if (!o->queue)
        o->queue = 4 * o->parallel;
    return 0;
}

int gms_serve_main(const gmk_model *m, int argc, char **argv)
{
    serve_opts o;
    int rc = parse_args(m, argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    /* Every thread started from here on inherits the blocked signals; this
     * one takes them with sigwait.  SIGPIPE: a client that went away. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    gmrt_session_opts so = {.n_threads = (int)o.threads, .verbose = o.verbose,
                           .requant = o.requant, .tokenizer = o.tokenizer,
                           .need_tokenizer = true, .n_seqs = (int32_t)o.parallel};
    gmrt_session *s = NULL;
    gmrt_diag d = {0};
    gms_server srv = {.m = m, .api_key = o.api_key, .model_id = m->name,
                      .n_ctx = (int32_t)o.ctx, .max_body = (size_t)o.max_body,
                      .timeout_s = (unsigned)o.timeout};
    int port = 0;
    rc = 1;
    fprintf(stderr, "gemmac serve: loading %s ...\n", o.weights);
    if (gmrt_session_create(m, o.weights, &so, &s, &d) != GMRT_OK)
        fprintf(stderr, "gemmac serve: %s\n", d.msg);
    else if (!(srv.v = gmrt_session_vocab(s)))
        fprintf(stderr, "gemmac serve: the weights carry no vocabulary (--tokenizer)\n");
    else if (gms_sched_create(s, (int32_t)o.parallel, (int32_t)o.queue, srv.n_ctx,
                              &srv.sched, &d) != GMRT_OK)
        fprintf(stderr, "gemmac serve: %s\n", d.msg);
    else if (gms_http_start(&srv, o.host, (int)o.port, (int)(8 * o.parallel + 64), &port)) {
        fprintf(stderr, "gemmac serve: listening on http://%s%s%s:%d, model %s, %ld slots "
                        "of %ld positions, %ld threads\n",
                strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "", port,
                m->name, o.parallel, o.ctx, o.threads);
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "gemmac serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        rc = 0;
    }
    if (srv.sched)
        gms_sched_stop(srv.sched);
    gms_http_stop(&srv);
    gms_sched_destroy(srv.sched);
    gmrt_session_destroy(s);
    return rc;
}
