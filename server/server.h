/*
 * server.h — `gemmac serve`: an OpenAI-compatible HTTP server over a
 * compiled model (docs/server.md).
 *
 * serve.c parses the command line, loads the session with one sequence per
 * slot and starts the scheduler (scheduler.h) and the HTTP daemon (http.c, on
 * libmicrohttpd, one thread per connection); SIGINT or SIGTERM stops both.
 */
#ifndef GMS_SERVER_H
#define GMS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gmrt.h"
#include "scheduler.h"

typedef struct gms_server {
    const gmk_model *m;
    const gmrt_vocab *v;
    gms_sched *sched;
    const char *api_key;     /* NULL: no Authorization needed */
    const char *model_id;    /* the id /v1/models lists */
    int32_t n_ctx;
    size_t max_body;         /* bytes; larger bodies get 413 */
    unsigned timeout_s;      /* read/idle timeout of a connection */
    atomic_llong n_status[10];/* answers by status, in the order of http.c's codes[] */
    atomic_ullong next_id;   /* response ids and default seeds */
    struct MHD_Daemon *daemon;
} gms_server;

/* Starts the daemon on host:port (port 0: any free one, *out_port says
 * which).  Returns false after printing why not. */
bool gms_http_start(gms_server *srv, const char *host, int port, int max_conns,
                    int *out_port);
void gms_http_stop(gms_server *srv);

/* True for a numeric IPv4/IPv6 loopback address or "localhost". */
bool gms_host_is_loopback(const char *host);

/* The `serve` command line (see --help); returns a process exit status. */
int gms_serve_main(const gmk_model *m, int argc, char **argv);
void gms_serve_print_options(FILE *f);

#endif /* GMS_SERVER_H */
