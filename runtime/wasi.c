/*
 * wasi.c — what WASI (the wasm32 target, docs/targets.md) lacks that the
 * runtime uses, filled in for a program built with wasi-libc; empty
 * elsewhere.
 *
 * - madvise: wasi-libc's mmap emulation (-D_WASI_EMULATED_MMAN) copies a
 *   file into memory, so there are no pages to advise on; the hints
 *   (session.c) do nothing.
 * - The working directory: a WASI program starts in "/" of its preopened
 *   directories.  runtime/wasi-run.mjs preopens the host's "/" as "/" and
 *   passes the directory it was started in as PWD; moving there first makes
 *   relative paths (--weights model.gguf) mean what they mean natively.
 */
#ifdef __wasi__
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int madvise(void *addr, size_t len, int advice)
{
    (void)addr, (void)len, (void)advice;
    return 0;
}

__attribute__((constructor)) static void gmrt_wasi_cwd(void)
{
    const char *pwd = getenv("PWD");
    if (pwd && pwd[0] == '/')
        (void)chdir(pwd); /* else paths stay relative to "/" */
}
#else
typedef int gmrt_wasi_unused; /* ISO C wants a declaration in every file */
#endif
