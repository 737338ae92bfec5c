/*
 * toolchain.c — host detection through LLVM-C and clang invocation.
 *
 * LLVM-C strings are owned by LLVM and released with LLVMDisposeMessage;
 * they are copied into gmc_host here and nowhere else.  clang runs through
 * posix_spawn with its stderr on a pipe, so its complaints end up in the
 * diagnostic rather than interleaved with gemmac's output.
 */
#include "toolchain.h"

#include "graph.h" /* gmc_hash_bytes */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef GMC_CLANG
#define GMC_CLANG "clang-19"
#endif
#ifndef GMC_RUNTIME_INCLUDE_DIR
#define GMC_RUNTIME_INCLUDE_DIR "runtime/include"
#endif
#ifndef GMC_RUNTIME_LIB
#define GMC_RUNTIME_LIB "libgemmart.a"
#endif
#ifndef GMC_RUNTIME_SRC_DIR
#define GMC_RUNTIME_SRC_DIR "runtime"
#endif
#ifndef GMC_SAN_FLAGS
#define GMC_SAN_FLAGS ""
#endif

/* Flags every target shares: C11, optimised, position independent (the
 * same object goes into the .so and the executable), math without errno
 * so that sqrtf is one instruction and vectorizes (STYLE rule 13). */
static const char *const common_flags[] = {
    "-std=c11", "-O2", "-fPIC", "-fno-math-errno", "-Wall", "-Wextra",
};
enum { N_COMMON = sizeof common_flags / sizeof common_flags[0] };

gmc_status gmc_host_detect(gmc_host *h, gmc_diag *diag)
{
    memset(h, 0, sizeof *h);
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    if (!triple || !cpu || !features) {
        LLVMDisposeMessage(triple);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(features);
        return gmc_fail(diag, GMC_ERR_TOOLCHAIN, "LLVM could not describe the host");
    }
    snprintf(h->triple, sizeof h->triple, "%s", triple);
    snprintf(h->cpu, sizeof h->cpu, "%s", cpu);
    snprintf(h->arch, sizeof h->arch, "%.*s", (int)strcspn(triple, "-"), triple);
    /* Keep only the enabled features ("+avx2"), in LLVM's order. */
    size_t k = 0;
    for (char *f = strtok(features, ","); f; f = strtok(NULL, ",")) {
        if (f[0] != '+')
            continue;
        size_t n = strlen(f);
        if (k + n + 2 >= sizeof h->features)
            break;
        if (k)
            h->features[k++] = ',';
        memcpy(h->features + k, f, n);
        k += n;
    }
    h->features[k] = '\0';
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return GMC_OK;
}

const char *gmc_toolchain_clang(void) { return GMC_CLANG; }

void gmc_toolchain_flags(const gmc_target_config *tc, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_COMMON && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", k ? " " : "", common_flags[i]);
    for (int i = 0; i < tc->n_flags && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, " %s", tc->flags[i]);
}

/* Runs argv, capturing stderr; fails naming the tool and its message. */
static gmc_status run(char *const argv[], bool verbose, gmc_diag *diag)
{
    if (verbose) {
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    int fds[2];
    if (pipe(fds) != 0)
        return gmc_fail(diag, GMC_ERR_TOOLCHAIN, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return gmc_fail(diag, GMC_ERR_TOOLCHAIN,
                        "cannot run %s: %s (run scripts/setup to install clang-19)",
                        argv[0], strerror(rc));
    }
    char err[GMC_DIAG_MSG - 128];
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while ((r = read(fds[0], n + 1 < sizeof err ? err + n : sink,
                     n + 1 < sizeof err ? sizeof err - 1 - n : sizeof sink)) > 0)
        if (n + 1 < sizeof err)
            n += (size_t)r;
    err[n] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return gmc_fail(diag, GMC_ERR_TOOLCHAIN, "%s failed (status %d):\n%s",
                        argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    if (n > 0 && verbose)
        fputs(err, stderr);
    return GMC_OK;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_header(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 2 && strcmp(d->d_name + n - 2, ".h") == 0;
}

static int is_c_source(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 2 && strcmp(d->d_name + n - 2, ".c") == 0;
}

/* Splits a space-separated flag string into argv slots (in place). */
static int split_flags(char *s, char **argv, int max)
{
    int n = 0;
    for (char *t = strtok(s, " "); t && n < max; t = strtok(NULL, " "))
        argv[n++] = t;
    return n;
}

/* The runtime's source folders under GMC_RUNTIME_SRC_DIR: the core (what an
 * embedded model needs, and all `gemmac export` amalgamates) and the tools
 * (the command lines the executable's main.c calls). */
static const char *const runtime_dirs[] = {"", "/tools"};
enum { N_RUNTIME_DIRS = sizeof runtime_dirs / sizeof runtime_dirs[0] };

/* Compiles each C source of the runtime folder sub with the target's flags
 * into rt/, appending the objects' paths to argv at *n and to *paths (which
 * the caller frees, n_paths of them, cap entries). */
static gmc_status build_runtime_dir(const gmc_target_config *tc, const char *rt,
                                    const char *sub, bool verbose, char **argv, int *n,
                                    int max, char **paths, int *n_paths, int cap,
                                    gmc_diag *diag)
{
    char dir[4200], flags[4096], inc[4200];
    snprintf(dir, sizeof dir, "%s%s", GMC_RUNTIME_SRC_DIR, sub);
    snprintf(inc, sizeof inc, "-I%s", GMC_RUNTIME_INCLUDE_DIR);
    struct dirent **list;
    int n_src = scandir(dir, &list, is_c_source, name_cmp);
    if (n_src <= 0)
        return gmc_fail(diag, GMC_ERR_TOOLCHAIN, "no runtime sources in %s (a cross build "
                        "compiles them for the target)", dir);
    gmc_status st = GMC_OK;
    for (int i = 0; i < n_src && st == GMC_OK; i++) {
        char src[4200], obj[4200];
        snprintf(src, sizeof src, "%s/%s", dir, list[i]->d_name);
        snprintf(obj, sizeof obj, "%s/%.*so", rt, (int)strlen(list[i]->d_name) - 1,
                 list[i]->d_name);
        if (verbose)
            fprintf(stderr, "runtime for %s: %s\n", tc->target->name, list[i]->d_name);
        gmc_toolchain_flags(tc, flags, sizeof flags);
        char *cc[96];
        int k = 0;
        cc[k++] = (char *)GMC_CLANG;
        k += split_flags(flags, cc + k, 64);
        /* the POSIX level CMakeLists.txt compiles the runtime with */
        char *tail[] = {"-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", inc, "-c", src, "-o",
                        obj, NULL};
        memcpy(cc + k, tail, sizeof tail);
        st = run(cc, verbose, diag);
        if (st == GMC_OK && (*n >= max || *n_paths >= cap))
            st = gmc_fail(diag, GMC_ERR_TOOLCHAIN, "too many runtime sources in %s for one "
                          "link command (%d)", dir, max);
        if (st == GMC_OK && !(paths[*n_paths] = strdup(obj)))
            st = gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
        if (st == GMC_OK) {
            (*n_paths)++;
            argv[(*n)++] = paths[*n_paths - 1];
        }
    }
    for (int i = 0; i < n_src; i++)
        free(list[i]);
    free(list);
    return st;
}

/* For a cross target: the runtime's sources (core and tools) compiled with
 * the target's flags into dir/rt/, their paths appended to argv at *n (the
 * host's libgemmart.a is of the wrong architecture).  The objects are freed
 * by the caller through paths (n_paths of them). */
static gmc_status build_runtime(const gmc_target_config *tc, const char *dir, bool verbose,
                                char **argv, int *n, int max, char ***paths, int *n_paths,
                                gmc_diag *diag)
{
    char rt[4200];
    snprintf(rt, sizeof rt, "%s/rt", dir);
    if (mkdir(rt, 0700) != 0 && errno != EEXIST)
        return gmc_fail(diag, GMC_ERR_IO, "cannot create %s: %s", rt, strerror(errno));
    *paths = calloc((size_t)max, sizeof **paths);
    if (!*paths)
        return gmc_fail(diag, GMC_ERR_NOMEM, "out of memory");
    gmc_status st = GMC_OK;
    for (int d = 0; d < N_RUNTIME_DIRS && st == GMC_OK; d++)
        st = build_runtime_dir(tc, rt, runtime_dirs[d], verbose, argv, n, max, *paths,
                               n_paths, max, diag);
    return st;
}

gmc_status gmc_toolchain_build(const gmc_target_config *tc, const char *dir,
                               const char *exe_name, bool verbose, gmc_diag *diag)
{
    char flags[4096], src[4200], obj[4200], so[4200], inc[4200];
    gmc_toolchain_flags(tc, flags, sizeof flags);
    snprintf(src, sizeof src, "%s/model.c", dir);
    snprintf(obj, sizeof obj, "%s/model.o", dir);
    snprintf(so, sizeof so, "%s/model.so", dir);
    snprintf(inc, sizeof inc, "-I%s", GMC_RUNTIME_INCLUDE_DIR);

    char *argv[96];
    int n = 0;
    argv[n++] = (char *)GMC_CLANG;
    n += split_flags(flags, argv + n, 64);
    argv[n++] = inc;
    char *tail[] = {"-c", src, "-o", obj, NULL};
    memcpy(argv + n, tail, sizeof tail);
    GMC_TRY(run(argv, verbose, diag));

    char target_flag[200];
    snprintf(target_flag, sizeof target_flag, "--target=%s", tc->triple);
    char libs[160];
    snprintf(libs, sizeof libs, "%s", tc->target->link_libs ? tc->target->link_libs : "");
    char *link_so[32] = {(char *)GMC_CLANG, target_flag, "-shared", obj, "-o", so};
    n = 6;
    if (tc->cross) /* the host's ld links only the host's objects */
        link_so[n++] = "-fuse-ld=lld";
    n += split_flags(libs, link_so + n, 8);
    link_so[n++] = "-lm";
    link_so[n] = NULL;
    if (!tc->target->static_only) /* else model.o is the library (target.h) */
        GMC_TRY(run(link_so, verbose, diag));
    if (!exe_name)
        return GMC_OK;

    char main_c[4200], exe[4200], san[512];
    snprintf(main_c, sizeof main_c, "%s/main.c", dir);
    snprintf(exe, sizeof exe, "%s/%s", dir, exe_name);
    /* sanitizer runtimes exist for the host only */
    snprintf(san, sizeof san, "%s", tc->cross ? "" : GMC_SAN_FLAGS);
    gmc_toolchain_flags(tc, flags, sizeof flags);
    char *big[160];
    n = 0;
    big[n++] = (char *)GMC_CLANG;
    n += split_flags(flags, big + n, 64);
    n += split_flags(san, big + n, 8);
    big[n++] = inc;
    big[n++] = main_c;
    big[n++] = obj;
    char **rt_objs = NULL;
    int n_rt = 0;
    gmc_status st = GMC_OK;
    if (tc->cross)
        st = build_runtime(tc, dir, verbose, big, &n, 140, &rt_objs, &n_rt, diag);
    else
        big[n++] = (char *)GMC_RUNTIME_LIB;
    if (st == GMC_OK) {
        snprintf(libs, sizeof libs, "%s", tc->target->link_libs ? tc->target->link_libs : "");
        n += split_flags(libs, big + n, 8);
        char *tail3[] = {"-lpthread", "-lm", "-o", exe, NULL};
        memcpy(big + n, tail3, sizeof tail3);
        st = run(big, verbose, diag);
    }
    for (int i = 0; i < n_rt; i++)
        free(rt_objs[i]);
    free(rt_objs);
    return st;
}

/* Folds the whole content of path into h (a missing file folds its name). */
static uint64_t hash_file(uint64_t h, const char *path)
{
    FILE *f = fopen(path, "rb");
    h = gmc_hash_bytes(h, path, strlen(path));
    if (!f)
        return h;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        h = gmc_hash_bytes(h, buf, n);
    fclose(f);
    return h;
}

uint64_t gmc_toolchain_inputs_hash(uint64_t h)
{
    struct dirent **list;
    int n = scandir(GMC_RUNTIME_INCLUDE_DIR, &list, is_header, name_cmp);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", GMC_RUNTIME_INCLUDE_DIR, list[i]->d_name);
        h = hash_file(h, path);
        free(list[i]);
    }
    if (n >= 0)
        free(list);
    /* a cross build compiles the runtime from these */
    for (int d = 0; d < N_RUNTIME_DIRS; d++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s%s", GMC_RUNTIME_SRC_DIR, runtime_dirs[d]);
        n = scandir(dir, &list, is_c_source, name_cmp);
        for (int i = 0; i < n; i++) {
            char path[8400];
            snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
            h = hash_file(h, path);
            free(list[i]);
        }
        if (n >= 0)
            free(list);
    }
    return hash_file(h, GMC_RUNTIME_LIB);
}
