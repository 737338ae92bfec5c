/*
 * diag.h — status codes and diagnostics for the gemmac compiler.
 *
 * Every fallible function returns gmc_status and, on failure, fills a
 * caller-provided gmc_diag: where (file:line:col and the YAML key path such as
 * "layers.pattern[3]"), what was expected, and the source line for the caret.
 * gmc_diag_print renders it chibicc-style:
 *
 *   graphs/x.yaml:12:14: error: attention.kv_heads: expected an integer in [1, 1024], got "0"
 *      12 |   kv_heads: 0
 *         |             ^
 */
#ifndef GMC_DIAG_H
#define GMC_DIAG_H

#include <stdarg.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
#define GMC_MUST_CHECK __attribute__((warn_unused_result))
#define GMC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define GMC_NORETURN __attribute__((noreturn))
#else
#define GMC_MUST_CHECK
#define GMC_PRINTF(f, a)
#define GMC_NORETURN
#endif

typedef enum gmc_status {
    GMC_OK = 0,
    GMC_ERR_IO,        /* a file could not be read or written */
    GMC_ERR_SYNTAX,    /* YAML syntax, or a construct we refuse (alias, tag) */
    GMC_ERR_LIMIT,     /* size, depth, event or scalar limit */
    GMC_ERR_SCHEMA,    /* unknown/duplicate/missing key, wrong type, range */
    GMC_ERR_SEMANTIC,  /* cross-field check failed */
    GMC_ERR_TOOLCHAIN, /* clang or LLVM failed */
    GMC_ERR_RUNTIME,   /* the runtime reported an error */
    GMC_ERR_NOMEM,
    GMC_ERR_ARG        /* bad command-line argument */
} gmc_status;

#define GMC_DIAG_MSG 1024
#define GMC_DIAG_PATH 256
#define GMC_DIAG_LINE 256

typedef struct gmc_diag {
    gmc_status status;
    char file[GMC_DIAG_PATH]; /* "" when not about a file position */
    int line, col;            /* 1-based; 0 = unknown */
    char path[GMC_DIAG_PATH]; /* YAML key path, "" if none */
    char msg[GMC_DIAG_MSG];   /* what is wrong and what was expected */
    char src[GMC_DIAG_LINE];  /* the offending source line, "" if unknown */
} gmc_diag;

/* Propagates a non-OK status (IREE_RETURN_IF_ERROR). */
#define GMC_TRY(expr)                                                          \
    do {                                                                       \
        gmc_status gmc_try_s_ = (expr);                                        \
        if (gmc_try_s_ != GMC_OK)                                              \
            return gmc_try_s_;                                                 \
    } while (0)

void gmc_diag_clear(gmc_diag *d);
/* Sets status and message (no position); returns status. */
gmc_status gmc_fail(gmc_diag *d, gmc_status s, const char *fmt, ...)
    GMC_PRINTF(3, 4);
/* Sets status, position, key path and message; returns status. */
gmc_status gmc_fail_at(gmc_diag *d, gmc_status s, const char *file, int line,
                       int col, const char *path, const char *fmt, ...)
    GMC_PRINTF(7, 8);
/* gmc_fail_at with a va_list, for wrappers that add context. */
gmc_status gmc_fail_atv(gmc_diag *d, gmc_status s, const char *file, int line,
                        int col, const char *path, const char *fmt, va_list ap);
/* Prints "file:line:col: error: path: msg" plus the source line and a caret
 * when known. */
void gmc_diag_print(const gmc_diag *d, FILE *out);

/* Programmer errors only; user input never reaches these. */
GMC_NORETURN void gmc_panic(const char *file, int line, const char *what);
#define GMC_ASSERT(c) ((c) ? (void)0 : gmc_panic(__FILE__, __LINE__, #c))
#define GMC_UNREACHABLE() gmc_panic(__FILE__, __LINE__, "unreachable")

#endif /* GMC_DIAG_H */
