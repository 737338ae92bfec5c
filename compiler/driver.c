/*
 * driver.c — the compiler pipeline (see driver.h).
 *
 * The cache: the emitted files are compared with what the output directory
 * already holds, and a stamp records the hash of model.c plus the flags,
 * clang path, gemmac version, kernel headers and runtime library of the last
 * successful build.  If all match
 * and the products exist, clang is not run again.
 */
#include "driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emit.h"
#include "fuse.h"
#include "graph.h"
#include "model.h"
#include "plan.h"
#include "target.h"
#include "toolchain.h"

#ifndef GMC_VERSION
#define GMC_VERSION "0.0.0"
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p */
static gmc_status make_dirs(const char *path, gmc_diag *diag)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return gmc_fail(diag, GMC_ERR_ARG, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return gmc_fail(diag, GMC_ERR_IO, "cannot create %s: %s", buf,
                                strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return GMC_OK;
}

/* Writes text to dir/name unless the file already holds exactly that. */
static gmc_status write_if_changed(const char *dir, const char *name,
                                   const gmc_strbuf *text, gmc_diag *diag)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const char *s = gmc_strbuf_str(text);
    FILE *f = fopen(path, "rb");
    if (f) {
        bool same = true;
        size_t i = 0;
        int c;
        while (same && (c = fgetc(f)) != EOF)
            same = i < text->len && (char)c == s[i++];
        same = same && i == text->len;
        fclose(f);
        if (same)
            return GMC_OK;
    }
    f = fopen(path, "wb");
    if (!f || fwrite(s, 1, text->len, f) != text->len) {
        if (f)
            fclose(f);
        return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    if (fclose(f) != 0)
        return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return GMC_OK;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static void default_out_dir(const char *name, const char *target, char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, n, "%s/gemmac/%s-%s", xdg, name, target);
    else if (home && *home)
        snprintf(buf, n, "%s/.cache/gemmac/%s-%s", home, name, target);
    else
        snprintf(buf, n, "/tmp/gemmac-%s-%s", name, target);
}

/* Reads the stamp of the last build; "" if none. */
static void read_stamp(const char *dir, char *buf, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/build.stamp", dir);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(buf, (int)n, f))
        buf[0] = '\0';
    fclose(f);
}

/* Front half shared by compile, plan and init: YAML → planned graph. */
static gmc_status build_graph(const char *path, int32_t max_batch, gmc_arena *a,
                              gmc_graph **out, gmc_diag *diag)
{
    gmc_model *m;
    GMC_TRY(gmc_model_load(path, a, &m, diag));
    GMC_TRY(gmc_graph_lower(m, max_batch ? max_batch : GMC_DEFAULT_BATCH, a, out, diag));
    return gmc_plan(*out, diag);
}

static void dump(const gmc_options *o, const char *stage, const char *text)
{
    if (o->dump && strcmp(o->dump, stage) == 0)
        fputs(text, o->dump_out ? o->dump_out : stdout);
}

/* --dump=graph / --dump=plan: the IR, plus the plan summary once planned. */
static void dump_graph(const gmc_options *o, const char *stage, const gmc_graph *g,
                       bool planned)
{
    if (!o->dump || strcmp(o->dump, stage) != 0)
        return;
    gmc_strbuf d;
    gmc_strbuf_init(&d);
    gmc_graph_dump(g, &d);
    if (planned)
        gmc_plan_report(g, &d);
    dump(o, stage, gmc_strbuf_str(&d));
    gmc_strbuf_deinit(&d);
}

static gmc_status resolve_target(const char *name, gmc_target_config *tc, gmc_diag *diag)
{
    gmc_host h;
    GMC_TRY(gmc_host_detect(&h, diag));
    const gmc_target *t = gmc_target_find(name ? name : "host", &h);
    if (!t)
        return gmc_fail(diag, GMC_ERR_ARG,
                        "unknown target \"%s\" (gemmac targets lists them)", name);
    char why[256] = "";
    if (!t->configure(t, &h, tc, why, sizeof why))
        return gmc_fail(diag, GMC_ERR_ARG, "target %s cannot be built here: %s",
                        t->name, why);
    return GMC_OK;
}

static gmc_status compile_in(const gmc_options *o, gmc_arena *a, gmc_emit_out *e,
                             gmc_result *r, gmc_diag *diag)
{
    static const char *const stages[] = {"graph", "fused", "plan", "c", NULL};
    bool known = !o->dump;
    for (int i = 0; stages[i] && !known; i++)
        known = strcmp(o->dump, stages[i]) == 0;
    if (!known)
        return gmc_fail(diag, GMC_ERR_ARG,
                        "--dump=%s: expected one of graph, fused, plan, c", o->dump);
    double t0 = now_s();
    gmc_model *m;
    GMC_TRY(gmc_model_load(o->graph, a, &m, diag));
    gmc_graph *g;
    GMC_TRY(gmc_graph_lower(m, o->max_batch ? o->max_batch : GMC_DEFAULT_BATCH, a, &g, diag));
    dump_graph(o, "graph", g, false);
    gmc_target_config tc;
    GMC_TRY(resolve_target(o->target, &tc, diag));
    const char *note;
    GMC_TRY(gmc_fuse(g, tc.target->act_fmt, a, &g, &note, diag));
    if (note && o->dump && strcmp(o->dump, "fused") == 0)
        fprintf(o->dump_out ? o->dump_out : stdout, "# not fused: %s\n", note);
    for (int i = 0; i < g->n_values && tc.target->weight_layout; i++) {
        gmc_value *v = &g->values[i];
        if (v->kind == GMC_V_WEIGHT && v->n_dims == 2 && !v->mapped)
            v->layout = tc.target->weight_layout(v->dtype);
    }
    dump_graph(o, "fused", g, false);
    GMC_TRY(gmc_plan(g, diag));
    dump_graph(o, "plan", g, true);

    char flags[4096];
    gmc_toolchain_flags(&tc, flags, sizeof flags);
    GMC_TRY(gmc_emit(g, &tc, flags, e, diag));
    dump(o, "c", gmc_strbuf_str(&e->model_c));

    snprintf(r->name, sizeof r->name, "%s", m->name);
    if (o->out_dir)
        snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir);
    else
        default_out_dir(m->name, tc.target->name, r->out_dir, sizeof r->out_dir);
    snprintf(r->so_path, sizeof r->so_path, "%s/model.so", r->out_dir);
    if (o->exe)
        snprintf(r->exe_path, sizeof r->exe_path, "%s/%s", r->out_dir, m->name);
    GMC_TRY(make_dirs(r->out_dir, diag));
    GMC_TRY(write_if_changed(r->out_dir, "model.c", &e->model_c, diag));
    GMC_TRY(write_if_changed(r->out_dir, "model.h", &e->model_h, diag));
    GMC_TRY(write_if_changed(r->out_dir, "main.c", &e->main_c, diag));
    GMC_TRY(write_if_changed(r->out_dir, "manifest.tsv", &e->manifest, diag));
    r->frontend_s = now_s() - t0;

    /* The cache key covers everything that decides the products. */
    uint64_t key = gmc_hash_bytes(GMC_HASH_INIT, gmc_strbuf_str(&e->model_c), e->model_c.len);
    key = gmc_hash_bytes(key, flags, strlen(flags));
    key = gmc_hash_bytes(key, gmc_toolchain_clang(), strlen(gmc_toolchain_clang()));
    key = gmc_hash_bytes(key, GMC_VERSION, strlen(GMC_VERSION));
    key = gmc_toolchain_inputs_hash(key);
    /* The stamp is "<key>" or "<key> exe"; model.so is current when the key
     * matches, the executable only if the stamp also says it was built. */
    char want[64], have[64];
    snprintf(want, sizeof want, "%016" PRIx64, key);
    read_stamp(r->out_dir, have, sizeof have);
    bool same = strncmp(want, have, 16) == 0 && file_exists(r->so_path);
    bool exe_ok = strstr(have, " exe") != NULL && file_exists(r->exe_path);
    r->cached = !o->force && same && (!o->exe || exe_ok);
    if (r->cached)
        return GMC_OK;
    double t1 = now_s();
    GMC_TRY(gmc_toolchain_build(&tc, r->out_dir, o->exe ? m->name : NULL, o->verbose, diag));
    r->clang_s = now_s() - t1;
    gmc_strbuf st;
    gmc_strbuf_init(&st);
    gmc_strbuf_append(&st, want, strlen(want));
    if (o->exe)
        gmc_strbuf_append(&st, " exe", 4);
    gmc_strbuf_append(&st, "\n", 1);
    gmc_status s = write_if_changed(r->out_dir, "build.stamp", &st, diag);
    gmc_strbuf_deinit(&st);
    return s;
}

gmc_status gmc_compile(const gmc_options *o, gmc_result *r, gmc_diag *diag)
{
    memset(r, 0, sizeof *r);
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_emit_out e;
    gmc_emit_out_init(&e);
    gmc_status s = compile_in(o, &a, &e, r, diag);
    gmc_emit_out_deinit(&e);
    gmc_arena_deinit(&a);
    return s;
}

gmc_status gmc_plan_graph(const char *graph, int32_t max_batch, FILE *out, gmc_diag *diag)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_graph *g;
    gmc_status s = build_graph(graph, max_batch, &a, &g, diag);
    if (s == GMC_OK) {
        gmc_strbuf b;
        gmc_strbuf_init(&b);
        gmc_plan_report(g, &b);
        fputs(gmc_strbuf_str(&b), out);
        gmc_strbuf_deinit(&b);
    }
    gmc_arena_deinit(&a);
    return s;
}

gmc_status gmc_driver_graph(const char *graph, gmc_arena *a, gmc_graph **out,
                            gmc_diag *diag)
{
    return build_graph(graph, 0, a, out, diag);
}
