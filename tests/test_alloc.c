/*
 * test_alloc.c — allocation-failure injection (tests/allocfail.h).
 *
 * Each case runs one operation of the libraries: open a GGUF and build its
 * vocabulary, tokenize, open safetensors, create a session, import a
 * config.json or a GGUF's metadata, compile a graph to C (front end, fuse,
 * plan, emit; clang is not run).  It runs once with the allocation calls
 * counted, K of them, then once for each N in 1..K (above SWEEP_ALL, the
 * first SWEEP_ALL and an even stride to K) in a forked child where the
 * N-th call fails, then again where it and every later one fail (so that
 * error paths which themselves need memory are tried too).  The child must
 * return:
 *
 *   - an error status whose message is not empty and says memory ran out
 *     (the NOMEM status, or "memory" in the text, as strerror(ENOMEM)
 *     reads), or
 *   - success with the same result as the counted run (a failure the
 *     operation can absorb);
 *
 * and then, everything released, exit cleanly: a crash or sanitizer report
 * fails that N, and under ASan the child runs LeakSanitizer before it
 * exits, so a leak on an error path fails it too.
 */
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "allocfail.h"
#include "driver.h"
#include "emit.h"
#include "gmrt.h"
#include "graph.h"
#include "import.h"
#include "target.h"
#include "testutil.h"
#include "toolchain.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#include <sanitizer/lsan_interface.h>
#endif
#endif

/* Every N up to this is tried; past it, an even stride to K. */
#define SWEEP_ALL 300
/* The most N tried in one sweep. */
#define SWEEP_MAX 600

/* What one run of an operation gave. */
typedef struct outcome {
    int status;       /* 0 = OK, else the gmrt_status or gmc_status */
    bool nomem;       /* status is the library's out-of-memory code */
    char msg[1024];
    uint64_t digest;  /* of the result, when OK */
} outcome;

/* An operation: runs once from nothing, releases all it made, and fills o.
 * It must not allocate itself while armed: only library calls count. */
typedef void op_fn(const void *arg, outcome *o);

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v) { return mix(h, &v, sizeof v); }

static void set_rt(outcome *o, gmrt_status s, const gmrt_diag *d)
{
    o->status = (int)s;
    o->nomem = s == GMRT_ERR_NOMEM;
    snprintf(o->msg, sizeof o->msg, "%s", s == GMRT_OK ? "" : d->msg);
}

static void set_gmc(outcome *o, gmc_status s, const gmc_diag *d)
{
    o->status = (int)s;
    o->nomem = s == GMC_ERR_NOMEM;
    snprintf(o->msg, sizeof o->msg, "%s", s == GMC_OK ? "" : d->msg);
}

/* Why an injected run's outcome is wrong, or NULL if it is right. */
static const char *judge(const outcome *o, const outcome *base, bool failed)
{
    if (!failed) /* the count of the run without injection must repeat */
        return "the allocation to fail was never made";
    if (o->status == 0)
        return o->digest == base->digest ? NULL : "succeeded with a different result";
    if (!o->msg[0])
        return "failed without a message";
    if (!o->nomem && !strstr(o->msg, "memory"))
        return "failed with a message that does not say memory ran out";
    return NULL;
}

/* Runs op with the n-th allocation failing (after: and every later one)
 * in a child; its exit status: 0 if all was right, else 1 (its report is on
 * stderr), or a crash. */
static int run_one(const char *name, op_fn *op, const void *arg, const outcome *base,
                   long n, bool after)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static outcome o;
        memset(&o, 0, sizeof o);
        gmc_allocfail_arm(n, after);
        op(arg, &o);
        bool failed;
        gmc_allocfail_disarm(&failed);
        int rc = 0;
        const char *why = judge(&o, base, failed);
        if (why) {
            fprintf(stderr, "alloc: %s, allocation %ld%s failing: %s (status %d: \"%s\")\n",
                    name, n, after ? " and on" : "", why, o.status, o.msg);
            rc = 1;
        }
#ifdef HAVE_LSAN
        if (__lsan_do_recoverable_leak_check()) {
            fprintf(stderr, "alloc: %s, allocation %ld%s failing: leaks (above)\n", name, n,
                    after ? " and on" : "");
            rc = 1;
        }
#endif
        fflush(NULL);
        _exit(rc); /* no atexit handlers: they belong to the parent */
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    if (WIFSIGNALED(ws)) {
        fprintf(stderr, "alloc: %s, allocation %ld%s failing: killed by signal %d\n", name,
                n, after ? " and on" : "", WTERMSIG(ws));
        return 128 + WTERMSIG(ws);
    }
    return WEXITSTATUS(ws);
}

/* Both runs for n; true if both were right. */
static bool run_child(const char *name, op_fn *op, const void *arg, const outcome *base,
                      long n)
{
    bool once = run_one(name, op, arg, base, n, false) == 0;
    return run_one(name, op, arg, base, n, true) == 0 && once;
}

/* The sweep: K counted, then every chosen N; fails naming the first bad N. */
static void sweep(const char *name, op_fn *op, const void *arg)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    outcome base = {0};
    gmc_allocfail_arm(0, false);
    op(arg, &base);
    long k = gmc_allocfail_disarm(NULL);
    ck_assert_msg(base.status == 0, "%s without injection: %s", name, base.msg);
    ck_assert_msg(k > 0, "%s: no allocation counted (is the --wrap link missing?)", name);
    long stride = k <= SWEEP_MAX ? 1 : (k - SWEEP_ALL) / (SWEEP_MAX - SWEEP_ALL) + 1;
    long tried = 0, bad = 0, first_bad = 0;
    for (long n = 1; n <= k; n += n < SWEEP_ALL ? 1 : stride) {
        if (!run_child(name, op, arg, &base, n) && bad++ == 0)
            first_bad = n;
        tried++;
    }
    if (k > SWEEP_ALL && (k - SWEEP_ALL) % stride != 0) { /* K itself, always */
        if (!run_child(name, op, arg, &base, k) && bad++ == 0)
            first_bad = k;
        tried++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "alloc: %-28s K = %5ld, %4ld N tried twice, %.2f s\n", name, k, tried,
            (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    ck_assert_msg(bad == 0, "%s: %ld of %ld N went wrong, the first N = %ld of K = %ld "
                  "(stderr says how)", name, bad, tried, first_bad, k);
}

/* ------------------------------------------------------------ load */

static void op_vocab(const void *arg, outcome *o)
{
    gmrt_diag d = {0};
    gmrt_gguf *g = NULL;
    gmrt_vocab *v = NULL;
    gmrt_status s = gmrt_gguf_open(arg, &g, &d);
    if (s == GMRT_OK)
        s = gmrt_vocab_from_gguf(g, &v, &d);
    set_rt(o, s, &d);
    if (s == GMRT_OK) {
        uint64_t h = mix_u64(0xcbf29ce484222325ull, (uint64_t)gmrt_gguf_n_kv(g));
        h = mix_u64(h, (uint64_t)gmrt_gguf_n_tensors(g));
        h = mix_u64(h, (uint64_t)gmrt_vocab_size(v));
        o->digest = mix_u64(h, (uint64_t)gmrt_vocab_bos(v));
    }
    gmrt_vocab_destroy(v);
    gmrt_gguf_close(g);
}

START_TEST(load_spm)
{
    sweep("gguf + vocab (SPM)", op_vocab,
          gmc_test_src("tests/fixtures/conformance/gemma3/model.gguf"));
}
END_TEST

START_TEST(load_bpe)
{
    sweep("gguf + vocab (BPE)", op_vocab,
          gmc_test_src("tests/fixtures/tokenizer/gemma4_vocab.gguf"));
}
END_TEST

static void op_safetensors(const void *arg, outcome *o)
{
    gmrt_diag d = {0};
    gmrt_safetensors *st = NULL;
    gmrt_status s = gmrt_safetensors_open(arg, &st, &d);
    set_rt(o, s, &d);
    if (s == GMRT_OK) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (int64_t i = 0; i < gmrt_safetensors_n_tensors(st); i++) {
            const gmrt_st_tensor *t = gmrt_safetensors_tensor_at(st, i);
            h = mix(h, t->name, strlen(t->name));
        }
        o->digest = h;
    }
    gmrt_safetensors_close(st);
}

START_TEST(load_safetensors)
{
    sweep("safetensors", op_safetensors,
          gmc_test_src("tests/fixtures/conformance/gemma3/model.safetensors"));
}
END_TEST

/* ------------------------------------------------------------ tokenize */

typedef struct tok_arg {
    const gmrt_vocab *v;
    const char *text;
} tok_arg;

static void op_tokenize(const void *arg, outcome *o)
{
    const tok_arg *t = arg;
    static int32_t ids[16384];
    size_t n = 0;
    gmrt_diag d = {0};
    gmrt_status s = gmrt_tokenize(t->v, t->text, strlen(t->text), true, true, ids,
                                  sizeof ids / sizeof ids[0], &n, &d);
    set_rt(o, s, &d);
    if (s == GMRT_OK)
        o->digest = mix(mix_u64(0, n), ids, n * sizeof ids[0]);
}

/* Specials, bytes outside the vocabulary, runs of spaces, digits, CJK. */
static const char tok_text[] =
    "<start_of_turn>user\nHello,   wörld!\t12345 ☃ 你好 naïve\r\n<end_of_turn>\n"
    "<start_of_turn>model\nThe quick brown fox jumps over the lazy dog.  \x01\x7f";

static void sweep_tokenize(const char *name, const char *fixture)
{
    /* 40 copies: 160 special tokens found, past the first capacity (64) */
    static char text[40 * sizeof tok_text];
    text[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(text, tok_text);
    gmrt_diag d = {0};
    gmrt_gguf *g;
    gmrt_vocab *v;
    ck_assert_msg(gmrt_gguf_open(gmc_test_src(fixture), &g, &d) == GMRT_OK, "%s", d.msg);
    ck_assert_msg(gmrt_vocab_from_gguf(g, &v, &d) == GMRT_OK, "%s", d.msg);
    sweep(name, op_tokenize, &(tok_arg){v, text});
    gmrt_vocab_destroy(v);
    gmrt_gguf_close(g);
}

START_TEST(tokenize_spm)
{
    sweep_tokenize("tokenize (SPM)", "tests/fixtures/conformance/gemma3/model.gguf");
}
END_TEST

START_TEST(tokenize_bpe)
{
    sweep_tokenize("tokenize (BPE)", "tests/fixtures/tokenizer/gemma4_vocab.gguf");
}
END_TEST

/* ------------------------------------------------------------ session */

typedef struct session_arg {
    const gmk_model *m;
    const char *weights, *tokenizer;
    bool requant;
} session_arg;

static void op_session(const void *arg, outcome *o)
{
    const session_arg *a = arg;
    gmrt_session_opts opts = {.n_threads = 2, .requant = a->requant,
                              .tokenizer = a->tokenizer};
    gmrt_diag d = {0};
    gmrt_session *s = NULL;
    gmrt_status st = gmrt_session_create(a->m, a->weights, &opts, &s, &d);
    set_rt(o, st, &d);
    if (st == GMRT_OK) {
        const gmrt_vocab *v = gmrt_session_vocab(s);
        o->digest = mix_u64(0, v ? (uint64_t)gmrt_vocab_size(v) : 0);
    }
    gmrt_session_destroy(s);
}

/* The conformance gemma3 graph, compiled once (clang runs here, before any
 * injection), and a session on its GGUF, its llama.cpp Q8_0 GGUF converted
 * at load, and its safetensors with the GGUF's vocabulary. */
START_TEST(session)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/alloc-gemma3", gmc_test_tmpdir());
    gmc_options opt = {.graph = gmc_test_src("tests/conformance/gemma3.yaml"),
                       .target = "generic", .out_dir = dir};
    gmc_result r;
    gmc_diag gd;
    gmc_diag_clear(&gd);
    ck_assert_msg(gmc_compile(&opt, &r, &gd) == GMC_OK, "%s", gd.msg);
    void *so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(so != NULL, "dlopen: %s", dlerror());
    const gmk_model *const *entry = dlsym(so, "gmk_model_entry");
    ck_assert_ptr_nonnull(entry);
    char gguf[4200], q8[4200], st[4200];
    snprintf(gguf, sizeof gguf, "%s", gmc_test_src("tests/fixtures/conformance/gemma3/model.gguf"));
    snprintf(q8, sizeof q8, "%s",
             gmc_test_src("tests/fixtures/conformance/gemma3/llamacpp-q8_0.gguf"));
    snprintf(st, sizeof st, "%s",
             gmc_test_src("tests/fixtures/conformance/gemma3/model.safetensors"));
    sweep("session (GGUF)", op_session, &(session_arg){*entry, gguf, NULL, false});
    sweep("session (GGUF, requantized)", op_session, &(session_arg){*entry, q8, NULL, true});
    sweep("session (safetensors)", op_session, &(session_arg){*entry, st, gguf, false});
    dlclose(so);
}
END_TEST

/* ------------------------------------------------------------ import */

typedef struct import_arg {
    const char *path, *quant;
} import_arg;

static void op_import(const void *arg, outcome *o)
{
    const import_arg *a = arg;
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_status s = gmc_import(a->path, &(gmc_import_opts){.quant = a->quant}, &b, &d);
    set_gmc(o, s, &d);
    if (s == GMC_OK)
        o->digest = mix(0, gmc_strbuf_str(&b), b.len);
    gmc_strbuf_deinit(&b);
}

START_TEST(import_config)
{
    char path[4200];
    snprintf(path, sizeof path, "%s",
             gmc_test_src("tests/fixtures/import/gemma-3-270m.config.json"));
    sweep("import config.json", op_import, &(import_arg){path, "q8_0"});
}
END_TEST

START_TEST(import_gguf)
{
    static const char *const fixtures[] = {"gemma3n", "gemma4-moe"};
    for (int i = 0; i < 2; i++) {
        char path[4200], name[64];
        snprintf(path, sizeof path, "%s/%s/model.gguf",
                 gmc_test_src("tests/fixtures/conformance"), fixtures[i]);
        snprintf(name, sizeof name, "import GGUF (%s)", fixtures[i]);
        sweep(name, op_import, &(import_arg){path, NULL});
    }
}
END_TEST

/* ------------------------------------------------------------ compile */

/* A fixed host, so that no LLVM call is made per run. */
static const gmc_host host = {
    .triple = "x86_64-pc-linux-gnu", .arch = "x86_64", .cpu = "znver4",
    .features = "+avx2,+fma,+f16c,+bmi2,+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx512vnni,"
                "+avx512bf16,+avx512vbmi,+sse2"};

typedef struct compile_arg {
    const char *graph, *target;
} compile_arg;

/* gemmac compile up to the C it would hand clang. */
static void op_compile(const void *arg, outcome *o)
{
    const compile_arg *c = arg;
    gmc_options opt = {.graph = c->graph, .target = c->target, .max_batch = 4, .host = &host};
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_emit_out e;
    gmc_emit_out_init(&e);
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_graph *g;
    gmc_target_config tc;
    gmc_status s = gmc_front(&opt, &a, &g, &tc, NULL, &d);
    char flags[4096];
    if (s == GMC_OK) {
        gmc_toolchain_flags(&tc, flags, sizeof flags);
        s = gmc_emit(g, &tc, flags, &e, &d);
    }
    set_gmc(o, s, &d);
    if (s == GMC_OK) {
        const gmc_strbuf *parts[] = {&e.model_c, &e.model_h, &e.main_c, &e.manifest};
        uint64_t h = 0;
        for (int i = 0; i < 4; i++)
            h = mix(h, gmc_strbuf_str(parts[i]), parts[i]->len);
        o->digest = h;
    }
    gmc_emit_out_deinit(&e);
    gmc_arena_deinit(&a);
}

static void sweep_compile(const char *name, const char *graph, const char *target)
{
    char path[4200];
    snprintf(path, sizeof path, "%s", gmc_test_src(graph));
    sweep(name, op_compile, &(compile_arg){path, target});
}

START_TEST(compile_tiny)
{
    sweep_compile("compile tiny (generic)", "tests/graphs/tiny.yaml", "generic");
}
END_TEST

START_TEST(compile_qmix)
{
    sweep_compile("compile tiny-qmix (v4-bf16)", "tests/graphs/tiny-qmix.yaml",
                  "x86-64-v4-bf16");
}
END_TEST

START_TEST(compile_gemma4)
{
    sweep_compile("compile gemma4-tiny", "tests/graphs/gemma4-tiny.yaml", "generic");
}
END_TEST

START_TEST(compile_gemma3n)
{
    sweep_compile("compile gemma3n-tiny", "tests/graphs/gemma3n-tiny.yaml", "generic");
}
END_TEST

/* One case per path, so that CK_RUN_CASE picks one. */
Suite *alloc_suite(void)
{
    const struct {
        const char *name;
        const TTest *tests[4];
    } cases[] = {
        {"load", {load_spm, load_bpe, load_safetensors}},
        {"tokenize", {tokenize_spm, tokenize_bpe}},
        {"session", {session}},
        {"import", {import_config, import_gguf}},
        {"compile", {compile_tiny, compile_qmix, compile_gemma4, compile_gemma3n}},
    };
    Suite *s = suite_create("alloc");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 600);
        for (int j = 0; j < 4 && cases[i].tests[j]; j++)
            tcase_add_test(tc, cases[i].tests[j]);
        suite_add_tcase(s, tc);
    }
    return s;
}
