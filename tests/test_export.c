/*
 * test_export.c — suite "export": `gemmac export` (docs/export.md).
 *
 * tiny-qmix (q8_0/q4_0 weights) exported for the host and for
 * aarch64-dotprod, and the real 270M for the host; examples/stream.c built
 * against each with a command the export's README.md gives (the system cc,
 * or clang-19 (and lld for Arm); no CMake, no gemmac) and run (Arm under
 * qemu): its greedy ids must be those of `gemmac run --greedy` on the
 * original weights (for Arm, the x86-64-v3 build, whose int8 activations
 * Arm's kernels share).  Then the
 * loader: the exported file maps with nothing repacked, and a file laid
 * out for another target is refused naming both.
 */
#include <check.h>
#include <stdbool.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "driver.h"
#include "export.h"
#include "gmrt.h"
#include "target.h"
#include "testutil.h"
#include "toolchain.h"

#ifndef GMC_GEMMAC
#define GMC_GEMMAC "gemmac"
#endif

#define PROMPT "cab"
#define N_GEN 12

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* tiny-qmix's seed-5 random weights in TMP/export-w.gguf (path: 4200 B);
 * returns the graph's path (a copy: gmc_test_src reuses its buffer). */
static const char *tiny_weights(char *path)
{
    static char graph[4200];
    snprintf(graph, sizeof graph, "%s", gmc_test_src("tests/graphs/tiny-qmix.yaml"));
    snprintf(path, 4200, "%s/export-w.gguf", gmc_test_tmpdir());
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_init_weights(graph, path, 5, false, &d) == GMC_OK, "%s", d.msg);
    return graph;
}

static void export_to(const char *graph, const char *weights, const char *target,
                      const char *dir)
{
    gmc_export_options o = {.graph = graph, .weights = weights, .target = target,
                            .out_dir = dir, .name = "model"};
    gmc_export_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_export(&o, &r, &d) == GMC_OK, "export %s: %s", target, d.msg);
}

/* The line of dir/README.md that starts with prefix, with "app.c" made the
 * example's path (into cmd, cap bytes). */
static void readme_command(const char *dir, const char *prefix, char *cmd, size_t cap)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/README.md", dir);
    char *text = gmc_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    const char *line = strstr(text, prefix);
    ck_assert_msg(line != NULL, "%s has no line \"%s...\"", path, prefix);
    const char *app = strstr(line, " app.c ");
    const char *end = strchr(line, '\n');
    ck_assert(app && end && app < end);
    snprintf(cmd, cap, "cd '%s' && %.*s -I. %s %.*s -o stream >build.log 2>&1", dir,
             (int)(app - line), line, gmc_test_src("examples/stream.c"), (int)(end - app - 7),
             app + 7);
    free(text);
}

/* The ids after "ids:" in the file at path, as a string (malloc'd). */
static char *ids_after(const char *path, const char *tag)
{
    char *text = gmc_test_read_file(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    char *at = strstr(text, tag);
    ck_assert_msg(at != NULL, "%s: no \"%s\" in:\n%s", path, tag, text);
    at += strlen(tag);
    at += strspn(at, " ");
    char *out = strndup(at, strcspn(at, "\n"));
    free(text);
    return out;
}

static const struct {
    const char *target;      /* exported for */
    const char *reference;   /* `gemmac run --target` it must agree with */
    const char *build;       /* README line that builds it */
    bool real;               /* the real 270M instead of tiny-qmix */
    const char *prompt;
    int n_gen;
} cases[] = {
    {"host", "host", "cc -O2 ", false, "cab", 12},
    /* Arm's int8 kernels round as x86-64-v3's (test_e2e_cross pairs them) */
    {"aarch64-dotprod", "x86-64-v3", "clang-19 -O2", false, "cab", 12},
    /* clang, as gemmac builds: bit for bit the same logits, so the same
     * ids over a prompt where other roundings diverge by token 8 (a
     * file-scope FP_CONTRACT pragma of the core leaking into the kernels
     * did) */
    {"host", "host", "clang-19 -O2", true, "Once upon a time", 24},
};

/* The target of case i configured for this machine into c; false
 * (gmc_test_cross_runs) if it cannot run, or is emulated and
 * GMC_E2E_CROSS=skip. */
static bool case_runs(int i, gmc_target_config *c)
{
    gmc_host h;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_host_detect(&h, &d) == GMC_OK);
    char why[256] = "";
    const gmc_target *t = gmc_target_find(cases[i].target, &h);
    ck_assert_ptr_nonnull(t);
    if (t->configure(t, &h, c, why, sizeof why) && c->runs != GMC_RUNS_NO)
        return c->runs == GMC_RUNS_NATIVE || gmc_test_cross_runs("export", cases[i].target, NULL);
    return gmc_test_cross_runs("export", cases[i].target, why[0] ? why : "no emulator");
}

START_TEST(test_export_stream)
{
    gmc_target_config c;
    if (!case_runs(_i, &c))
        return;
    char weights[4200], graph[4200], dir[4200], cmd[16384], out[4300], ref[4300];
    if (cases[_i].real) {
        const char *m = gmc_test_model_path();
        ck_assert_msg(m != NULL, "the Gemma 3 270M GGUF is missing: run scripts/setup");
        snprintf(weights, sizeof weights, "%s", m);
        snprintf(graph, sizeof graph, "%s", gmc_test_src("graphs/gemma3-270m.yaml"));
    } else {
        snprintf(graph, sizeof graph, "%s", tiny_weights(weights));
    }
    snprintf(dir, sizeof dir, "%s/export-%s-%d", gmc_test_tmpdir(), cases[_i].target, _i);
    export_to(graph, weights, cases[_i].target, dir);

    readme_command(dir, cases[_i].build, cmd, sizeof cmd);
    ck_assert_msg(run_cmd(cmd) == 0, "building the example failed (%s/build.log): %s", dir,
                  cmd);
    snprintf(out, sizeof out, "%s/stream.txt", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 300 %s%s./stream model.gguf '%s' %d "
             ">/dev/null 2>'%s'", dir, c.emulator, c.emulator[0] ? " " : "",
             cases[_i].prompt, cases[_i].n_gen, out);
    ck_assert_msg(run_cmd(cmd) == 0, "the example failed: %s", cmd);

    snprintf(ref, sizeof ref, "%s/ref-ids.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --target %s --build-dir '%s/ref' --weights '%s' "
             "-p '%s' --greedy -n %d -t 2 -q --ids-out '%s' >/dev/null 2>&1", GMC_GEMMAC,
             graph, cases[_i].reference, dir, weights, cases[_i].prompt, cases[_i].n_gen,
             ref);
    ck_assert_msg(run_cmd(cmd) == 0, "the reference failed: %s", cmd);
    char *got = ids_after(out, "ids:"), *want = ids_after(ref, "");
    ck_assert_msg(strcmp(got, want) == 0, "%s: exported program gave ids %s, gemmac run "
                  "--target %s gave %s", cases[_i].target, got, cases[_i].reference, want);
    fprintf(stderr, "export: %s of %s, built by the README's \"%s\"%s%s: ids %s\n",
            cases[_i].target, cases[_i].real ? "the 270M" : "tiny-qmix", cases[_i].build,
            c.emulator[0] ? ", under " : "", c.emulator, got);
    free(got);
    free(want);
}
END_TEST

/* A session of model m on weights; its status, *repacked the bytes it
 * repacked, the message in msg (1024 B). */
static gmrt_status open_session(const gmk_model *m, const char *weights, uint64_t *repacked,
                                char *msg)
{
    gmrt_session_opts opts = {.n_threads = 1};
    gmrt_session *s;
    gmrt_diag d = {.status = GMRT_OK, .msg = ""};
    gmrt_status st = gmrt_session_create(m, weights, &opts, &s, &d);
    snprintf(msg, 1024, "%s", d.msg);
    *repacked = st == GMRT_OK ? gmrt_session_repacked_bytes(s) : 0;
    if (st == GMRT_OK)
        gmrt_session_destroy(s);
    return st;
}

/* The host build repacks the original weights into its layouts at load
 * and maps the exported ones as they are; the same build --packed, and a
 * file exported for another target, are refused, naming both sides. */
START_TEST(test_export_maps_without_repacking)
{
    char weights[4200], dir[4200], other[4200], laid[4300], msg[1024];
    const char *graph = tiny_weights(weights);
    snprintf(dir, sizeof dir, "%s/export-load", gmc_test_tmpdir());
    export_to(graph, weights, "host", dir);
    char build[4300];
    snprintf(build, sizeof build, "%s/build", dir);
    gmc_options o = {.graph = graph, .target = "host", .out_dir = build};
    gmc_result r;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_compile(&o, &r, &d) == GMC_OK, "%s", d.msg);
    void *so = dlopen(r.so_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(so != NULL, "dlopen: %s", dlerror());
    const gmk_model *const *entry = dlsym(so, "gmk_model_entry");
    ck_assert_ptr_nonnull(entry);
    const gmk_model *m = *entry;
    bool has_layout = false;
    for (int32_t i = 0; i < m->n_tensors; i++)
        has_layout |= m->tensors[i].layout != GMK_LAYOUT_PACKED;

    uint64_t repacked;
    ck_assert_int_eq(open_session(m, weights, &repacked, msg), GMRT_OK);
    if (has_layout) /* a host with a panel layout (x86-64-v3 and up) */
        ck_assert_uint_gt(repacked, 0);
    snprintf(laid, sizeof laid, "%s/model.gguf", dir);
    ck_assert_msg(open_session(m, laid, &repacked, msg) == GMRT_OK, "%s", msg);
    ck_assert_uint_eq(repacked, 0);

    if (has_layout) { /* the same graph and target built --packed reads no panels */
        snprintf(build, sizeof build, "%s/build-packed", dir);
        gmc_options op = {.graph = graph, .target = "host", .out_dir = build, .packed = true};
        gmc_result rp;
        ck_assert_msg(gmc_compile(&op, &rp, &d) == GMC_OK, "%s", d.msg);
        void *so_p = dlopen(rp.so_path, RTLD_NOW | RTLD_LOCAL);
        ck_assert_msg(so_p != NULL, "dlopen: %s", dlerror());
        const gmk_model *const *packed = dlsym(so_p, "gmk_model_entry");
        ck_assert_ptr_nonnull(packed);
        ck_assert_int_eq(open_session(*packed, laid, &repacked, msg), GMRT_ERR_MISMATCH);
        ck_assert_msg(strstr(msg, "is laid out as p") && strstr(msg, "reads packed"), "%s",
                      msg);
        dlclose(so_p);
    }

    snprintf(other, sizeof other, "%s/export-generic", gmc_test_tmpdir());
    export_to(graph, weights, "generic", other);
    snprintf(laid, sizeof laid, "%s/model.gguf", other);
    if (strcmp(m->target, "generic") != 0) {
        ck_assert_int_eq(open_session(m, laid, &repacked, msg), GMRT_ERR_MISMATCH);
        ck_assert_msg(strstr(msg, "laid out for target generic") && strstr(msg, m->target),
                      "%s", msg);
    }
    dlclose(so);
}
END_TEST

/* Bad input: a missing tensor, a dtype the graph does not have, an
 * exported file given as the source, a bad --name: each named. */
START_TEST(test_export_errors)
{
    char weights[4200], dir[4200], laid[4300];
    const char *graph = tiny_weights(weights);
    snprintf(dir, sizeof dir, "%s/export-err", gmc_test_tmpdir());
    export_to(graph, weights, "generic", dir);
    snprintf(laid, sizeof laid, "%s/model.gguf", dir);
    const struct {
        const char *graph, *weights, *name, *want;
    } bad[] = {
        {graph, laid, "x", "is laid out for a compiled model already"},
        {gmc_test_src("tests/graphs/tiny.yaml"), weights, "x", "tensor \""},
        {graph, weights, "a/b", "--name \"a/b\""},
        {graph, "/nonexistent.gguf", "x", "/nonexistent.gguf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gmc_export_options o = {.graph = bad[i].graph, .weights = bad[i].weights,
                                .target = "generic", .out_dir = dir, .name = bad[i].name};
        gmc_export_result r;
        gmc_diag d;
        gmc_diag_clear(&d);
        ck_assert_int_ne(gmc_export(&o, &r, &d), GMC_OK);
        ck_assert_msg(strstr(d.msg, bad[i].want), "case %zu: %s", i, d.msg);
    }
}
END_TEST

Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_export_stream, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_export_maps_without_repacking);
    tcase_add_test(tc, test_export_errors);
    suite_add_tcase(s, tc);
    return s;
}
