/*
 * diag.c — the runtime's one way of reporting failure.
 *
 * Every fallible gmrt_ function ends in `return gmrt_fail(diag, status, ...)`
 * so that the status it returns and the status recorded in the diag can never
 * disagree.  A NULL diag is allowed: callers that only want the status code
 * (tests, probes) pass NULL and the message is dropped.
 */
#include "gmrt.h"

#include <stdarg.h>
#include <stdio.h>

gmrt_status gmrt_fail(gmrt_diag *d, gmrt_status status, const char *fmt, ...)
{
    if (!d)
        return status;
    d->status = status;
    va_list ap;
    va_start(ap, fmt);
    /* vsnprintf truncates long messages (e.g. a very long path) safely. */
    int n = vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        d->msg[0] = '\0';
    return status;
}

const char *gmrt_status_name(gmrt_status s)
{
    switch (s) {
    case GMRT_OK: return "ok";
    case GMRT_ERR_IO: return "io error";
    case GMRT_ERR_FORMAT: return "format error";
    case GMRT_ERR_LIMIT: return "limit exceeded";
    case GMRT_ERR_MISMATCH: return "model mismatch";
    case GMRT_ERR_NOMEM: return "out of memory";
    case GMRT_ERR_ARG: return "bad argument";
    case GMRT_ERR_UNSUPPORTED: return "unsupported";
    }
    /* A value outside the enum (cast from an int) still gets a name. */
    return "unknown status";
}
