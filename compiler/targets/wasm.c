/*
 * wasm.c — WebAssembly for WASI (preview 1) with the 128-bit SIMD proposal:
 * int8 activations and the SIMD128 kernels of gmk_wasm.h for q4_0, q5_0,
 * q8_0 and the k-quants, the portable kernels (gmk_generic.h) vectorized by
 * clang under -msimd128 for the other weight types, and
 * the runtime compiled for wasm32-wasi against Debian's wasi-libc with its
 * mmap and getpid emulations, linked by wasm-ld into NAME.wasm.  WASI has no
 * shared libraries, so the build's library is the relocatable model.o, and
 * no threads (GMRT_THREADS is 0: one thread whatever -t says).  Here it runs
 * under Node.js's WASI (runtime/wasi-run.mjs); any WASI runtime with SIMD
 * (wasmtime, a browser shim) runs the same file.  docs/targets.md.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gmk_act.h"
#include "target.h"

#ifndef GMC_RUNTIME_SRC_DIR
#define GMC_RUNTIME_SRC_DIR "runtime"
#endif

/* Debian's wasi-libc (headers and libraries under the triple's multiarch
 * directories) and libclang-rt-19-dev-wasm32 (compiler-rt's builtins in
 * clang 19's resource directory); scripts/setup installs both. */
#define WASI_INCLUDE "/usr/include/wasm32-wasi"
#define WASI_LIBC "/usr/lib/wasm32-wasi/libc.a"
#define WASI_BUILTINS "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a"

static bool configure_wasm(const gmc_target *t, const gmc_host *h, gmc_target_config *c,
                           char *why, int why_len)
{
    (void)h; /* any host builds it; none runs it natively */
    memset(c, 0, sizeof *c);
    c->target = t;
    const char *need[] = {WASI_INCLUDE "/stdio.h", WASI_LIBC, WASI_BUILTINS};
    for (int i = 0; i < 3; i++)
        if (access(need[i], R_OK) != 0) {
            snprintf(why, (size_t)why_len, "no %s (wasi-libc and libclang-rt-19-dev-wasm32; "
                     "scripts/setup installs them)", need[i]);
            return false;
        }
    snprintf(c->triple, sizeof c->triple, "%s", t->cross_triple);
    snprintf(c->cpu, sizeof c->cpu, "%s", t->march);
    snprintf(c->features, sizeof c->features, "%s", t->requires);
    c->cross = true;
    gmc_target_add_flag(c, "--target=%s", c->triple);
    gmc_target_add_flag(c, "-mcpu=%s", t->march);
    char extra[160];
    snprintf(extra, sizeof extra, "%s", t->extra_flags);
    for (char *f = strtok(extra, " "); f; f = strtok(NULL, " "))
        gmc_target_add_flag(c, "%s", f);
    int n = snprintf(c->emulator, sizeof c->emulator, "%s %s/wasi-run.mjs", t->emulator,
                     GMC_RUNTIME_SRC_DIR);
    if (n >= (int)sizeof c->emulator) { /* a source tree of too long a path */
        snprintf(why, (size_t)why_len, "the runner's path %s/wasi-run.mjs is too long",
                 GMC_RUNTIME_SRC_DIR);
        return false;
    }
    char prog[64];
    snprintf(prog, sizeof prog, "%.*s", (int)strcspn(t->emulator, " "), t->emulator);
    c->runs = gmc_on_path(prog) ? GMC_RUNS_EMULATED : GMC_RUNS_NO;
    if (c->runs == GMC_RUNS_NO)
        c->emulator[0] = '\0';
    return true;
}

const gmc_target gmc_target_wasm32 = {
    .name = "wasm32",
    .description = "WebAssembly + SIMD128 for WASI, int8 activations (i16x8.extmul)",
    .kernel_header = "gmk_wasm.h",
    .rank = 0, /* never "host": nothing runs it natively */
    .act_fmt = gmk_act_fmt_wasm,
    .configure = configure_wasm,
    .march = "generic",
    /* the header directory alone: Debian's clang also searches /usr/include,
     * the host's glibc headers, after it */
    .extra_flags = "-msimd128 -nostdlibinc -isystem" WASI_INCLUDE
                   " -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID",
    .requires = "simd128",
    /* The kernels keep up to 64 KiB of stack per call (gmk_generic.h):
     * wasm-ld's default stack is 64 KiB; 8 MiB as on Linux.  The memory
     * starts at its 4 GiB and never grows: Node.js 20 crashed in a garbage
     * collection that memory.grow set off (the 270M, after its 250 MB
     * read); pages an engine reserves cost nothing until written. */
    .link_libs = "-Wl,-z,stack-size=8388608 -Wl,--initial-memory=4294967296 "
                 "-lwasi-emulated-mman -lwasi-emulated-getpid",
    .arch = "wasm32",
    .cross_triple = "wasm32-wasi",
    /* the flag: Node.js 18 (Debian 12) needs it for WASI, 20 accepts it */
    .emulator = "node --no-warnings --experimental-wasi-unstable-preview1",
    .exe_suffix = ".wasm",
    .static_only = true,
    .max_memory = 4ull << 30, /* 32-bit linear memory */
};
