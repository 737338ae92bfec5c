/*
 * driver.c — the compiler pipeline (see driver.h).
 *
 * The cache: the emitted files are compared with what the output directory
 * already holds, and a stamp records the hash of model.c plus the flags,
 * clang path, gemmac version, kernel headers and runtime library of the last
 * successful build, and the hashes of the products it wrote.  If all match
 * and the products still hash the same, clang is not run again.
 *
 * `run` loads model.so from that directory, so whoever can write there can
 * run code as the user.  The directory must therefore be the user's own and
 * writable by nobody else (checked as ssh checks ~/.ssh, never repaired:
 * a directory that was open may already hold someone's model.so); the
 * directories gemmac creates are 0700; files are written to an O_EXCL
 * temporary and renamed into place, and read, without following links.
 * Without HOME or XDG_CACHE_HOME the cache lives under /tmp/gemmac-<uid>,
 * which must not be a link either: anyone can create names in /tmp.
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emit.h"
#include "fuse.h"
#include "gmk_layout.h"
#include "gmrt_tools.h"
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

/* mkdir -p; what it creates is private (0700), whatever the umask. */
static gmc_status make_dirs(const char *path, gmc_diag *diag)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return gmc_fail(diag, GMC_ERR_ARG, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return gmc_fail(diag, GMC_ERR_IO, "cannot create %s: %s", buf,
                                strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return GMC_OK;
}

/* A build directory must be a directory owned by this user that neither
 * group nor others can write.  follow: whether a symbolic link at path is
 * followed (a directory the user named) or refused (one in /tmp, where
 * anyone can plant it). */
static gmc_status check_private_dir(const char *path, bool follow, gmc_diag *diag)
{
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0)
        return gmc_fail(diag, GMC_ERR_IO, "cannot use build directory %s: %s", path,
                        strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gmc_fail(diag, GMC_ERR_IO, "build directory %s is %s, not a directory; "
                        "remove it or choose another with --build-dir", path,
                        gmrt_file_kind((unsigned)st.st_mode));
    if (st.st_uid != geteuid())
        return gmc_fail(diag, GMC_ERR_IO, "build directory %s is owned by uid %u, not by "
                        "you (uid %u); gemmac loads code built there, so it must be yours: "
                        "remove it, or choose another with --build-dir or XDG_CACHE_HOME",
                        path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return gmc_fail(diag, GMC_ERR_IO, "build directory %s is writable by %s (mode "
                        "%04o); gemmac loads code built there, so only you may write it: "
                        "run chmod go-w '%s' if you trust what it holds, else remove it",
                        path, st.st_mode & S_IWOTH ? "others" : "its group",
                        (unsigned)(st.st_mode & 07777), path);
    return GMC_OK;
}

/* Opens dir/name for reading without following a link or blocking on a
 * FIFO; -1 with errno if it cannot, or (errno EINVAL) if it is not a
 * regular file. */
static int open_product(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        errno = EINVAL;
        fd = -1;
    }
    return fd;
}

bool gmc_hash_product(const char *path, uint64_t *out)
{
    int fd = open_product(path);
    if (fd < 0)
        return false;
    uint64_t h = GMC_HASH_INIT;
    unsigned char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        h = gmc_hash_bytes(h, buf, (size_t)n);
    close(fd);
    *out = h;
    return n == 0;
}

gmc_status gmc_verify_product(const char *path, uint64_t want, gmc_diag *diag)
{
    uint64_t have;
    if (!gmc_hash_product(path, &have))
        return gmc_fail(diag, GMC_ERR_IO, "cannot read %s: %s", path,
                        errno == EINVAL ? "not a regular file" : strerror(errno));
    if (have != want)
        return gmc_fail(diag, GMC_ERR_IO, "%s changed after gemmac built it (hash "
                        "%016" PRIx64 ", built %016" PRIx64 "); not loading it: run the "
                        "command again to rebuild it", path, have, want);
    return GMC_OK;
}

/* Writes text to dir/name unless the file already holds exactly that: to
 * a fresh temporary (O_EXCL, O_NOFOLLOW) renamed over it. */
static gmc_status write_if_changed(const char *dir, const char *name,
                                   const gmc_strbuf *text, gmc_diag *diag)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const char *s = gmc_strbuf_str(text);
    int fd = open_product(path);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "rb");
        bool same = f != NULL;
        size_t i = 0;
        int c;
        while (same && (c = fgetc(f)) != EOF)
            same = i < text->len && (char)c == s[i++];
        same = same && i == text->len;
        if (f)
            fclose(f);
        else
            close(fd);
        if (same)
            return GMC_OK;
    }
    gmrt_diag rd = {0};
    gmrt_file_replace r;
    if (gmrt_file_replace_begin(&r, path, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s (a build directory holds only gemmac's "
                        "files: remove it)", rd.msg);
    size_t done = 0;
    while (done < text->len) {
        ssize_t n = write(r.fd, s + done, text->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int err = done < text->len ? (errno ? errno : EIO) : 0;
    if (close(r.fd) != 0 && !err)
        err = errno;
    r.fd = -1;
    if (err) {
        gmrt_file_replace_abort(&r);
        return gmc_fail(diag, GMC_ERR_IO, "cannot write %s: %s", path, strerror(err));
    }
    if (gmrt_file_replace_commit(&r, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    return GMC_OK;
}

/* The default output directory into buf, and into root the directory of
 * the cache it lies in (checked like the output directory itself); *shared
 * if root is in /tmp. */
static void default_out_dir(const char *name, const char *target, char *buf, size_t n,
                            char *root, size_t rn, bool *shared)
{
    gmrt_cache_root(root, rn, shared);
    snprintf(buf, n, "%s/%s-%s", root, name, target);
}

/* Reads the stamp of the last build; "" if none. */
static void read_stamp(const char *dir, char *buf, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/build.stamp", dir);
    buf[0] = '\0';
    int fd = open_product(path);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (!fgets(buf, (int)n, f))
        buf[0] = '\0';
    fclose(f);
}

/* The hash after " <tag>=" in a stamp; false if absent. */
static bool stamp_hash(const char *stamp, const char *tag, uint64_t *out)
{
    char key[16];
    snprintf(key, sizeof key, " %s=", tag);
    const char *p = strstr(stamp, key);
    if (!p)
        return false;
    p += strlen(key);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 16);
    if (errno || end != p + 16)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Whether the stamp records a hash for path, which exists but no longer
 * has it (replaced or changed since the build). */
static bool product_changed(const char *stamp, const char *tag, const char *path)
{
    uint64_t want, have;
    struct stat st;
    return stamp_hash(stamp, tag, &want) && lstat(path, &st) == 0 &&
           (!gmc_hash_product(path, &have) || have != want);
}

/* Whether path still holds what the stamp says was built there. */
static bool product_current(const char *stamp, const char *tag, const char *path,
                            uint64_t *out)
{
    uint64_t want, have;
    if (!stamp_hash(stamp, tag, &want) || !gmc_hash_product(path, &have) || have != want)
        return false;
    *out = have;
    return true;
}

static void dump(const gmc_options *o, const char *stage, const char *text)
{
    if (o->dump && strcmp(o->dump, stage) == 0)
        fputs(text, o->dump_out ? o->dump_out : stdout);
}

/* --dump=graph / --dump=plan: the IR, plus the plan summary once planned. */
static void dump_graph(const gmc_options *o, const char *stage, const gmc_graph *g,
                       const gmc_target_config *planned)
{
    if (!o->dump || strcmp(o->dump, stage) != 0)
        return;
    gmc_strbuf d;
    gmc_strbuf_init(&d);
    gmc_graph_dump(g, &d);
    if (planned)
        gmc_plan_report(g, planned->target->name, &d);
    dump(o, stage, gmc_strbuf_str(&d));
    gmc_strbuf_deinit(&d);
}

static gmc_status resolve_target(const gmc_options *o, gmc_target_config *tc, gmc_diag *diag)
{
    gmc_host h;
    if (o->host)
        h = *o->host;
    else
        GMC_TRY(gmc_host_detect(&h, diag));
    const char *name = o->target ? o->target : "host";
    const gmc_target *t = gmc_target_find(name, &h);
    if (!t)
        return gmc_fail(diag, GMC_ERR_ARG,
                        "unknown target \"%s\" (gemmac targets lists them)", name);
    char why[256] = "";
    if (!t->configure(t, &h, tc, why, sizeof why))
        return gmc_fail(diag, GMC_ERR_ARG, "target %s cannot be built here: %s",
                        t->name, why);
    if (o->no_contract) /* in the flags: the banner and the cache key see it */
        gmc_target_add_flag(tc, "-ffp-contract=off");
    return GMC_OK;
}

/* A target whose programs address at most t->max_memory (wasm32: 4 GiB)
 * must hold the weights, the KV cache at full context (allocated whole), the
 * activation arena and a row of logits in it: refused here rather than at
 * load time. */
static gmc_status check_memory(const gmc_graph *g, const gmc_target *t, gmc_diag *diag)
{
    const gmc_model *m = g->model;
    uint64_t logits = (uint64_t)m->vocab * sizeof(float);
    uint64_t need = g->weight_bytes + g->kv_bytes + g->arena_bytes + logits;
    double gib = 1024.0 * 1024.0 * 1024.0;
    if (!t->max_memory || need <= t->max_memory)
        return GMC_OK;
    return gmc_fail(diag, GMC_ERR_LIMIT,
                    "%s needs %.2f GiB of memory (weights %.2f, KV cache at full context "
                    "%.2f, activation arena %.2f), over the %.0f GiB a %s program can "
                    "address: lower model.context or pick a smaller model",
                    m->source ? m->source : m->name, (double)need / gib,
                    (double)g->weight_bytes / gib, (double)g->kv_bytes / gib,
                    (double)g->arena_bytes / gib, (double)t->max_memory / gib, t->name);
}

gmc_status gmc_front(const gmc_options *o, gmc_arena *a, gmc_graph **out,
                     gmc_target_config *tc, const char **unfused, gmc_diag *diag)
{
    static const char *const stages[] = {"graph", "fused", "plan", "c", NULL};
    bool known = !o->dump;
    for (int i = 0; stages[i] && !known; i++)
        known = strcmp(o->dump, stages[i]) == 0;
    if (!known)
        return gmc_fail(diag, GMC_ERR_ARG,
                        "--dump=%s: expected one of graph, fused, plan, c", o->dump);
    gmc_model *m;
    GMC_TRY(gmc_model_load(o->graph, a, &m, diag));
    gmc_graph *g;
    GMC_TRY(gmc_graph_lower(m, o->max_batch ? o->max_batch : GMC_DEFAULT_BATCH, a, &g, diag));
    dump_graph(o, "graph", g, NULL);
    GMC_TRY(resolve_target(o, tc, diag));
    const char *note;
    GMC_TRY(gmc_fuse(g, tc->target->act_fmt, a, &g, &note, diag));
    if (note && o->dump && strcmp(o->dump, "fused") == 0)
        fprintf(o->dump_out ? o->dump_out : stdout, "# not fused: %s\n", note);
    if (unfused)
        *unfused = note;
    for (int i = 0; i < g->n_values && tc->target->weight_layout && !o->packed; i++) {
        gmc_value *v = &g->values[i];
        if (v->kind != GMC_V_WEIGHT || v->mapped)
            continue;
        const gmc_target *t = tc->target;
        int want = v->n_dims == 3 && t->stack_layout ? t->stack_layout(v->dtype)
                                                     : t->weight_layout(v->dtype);
        v->layout = gmk_layout_for(want, v->n_dims, v->ne);
    }
    dump_graph(o, "fused", g, NULL);
    GMC_TRY(gmc_plan(g, diag));
    GMC_TRY(check_memory(g, tc->target, diag));
    dump_graph(o, "plan", g, tc);
    *out = g;
    return GMC_OK;
}

static gmc_status compile_in(const gmc_options *o, gmc_arena *a, gmc_emit_out *e,
                             gmc_result *r, gmc_diag *diag)
{
    double t0 = now_s();
    gmc_graph *g;
    gmc_target_config tc;
    GMC_TRY(gmc_front(o, a, &g, &tc, NULL, diag));
    const gmc_model *m = g->model;

    char flags[4096];
    gmc_toolchain_flags(&tc, flags, sizeof flags);
    GMC_TRY(gmc_emit(g, &tc, flags, e, diag));
    dump(o, "c", gmc_strbuf_str(&e->model_c));

    snprintf(r->name, sizeof r->name, "%s", m->name);
    r->runs = tc.runs;
    snprintf(r->emulator, sizeof r->emulator, "%s", tc.emulator);
    char root[4096] = "";
    bool shared = false;
    if (o->out_dir)
        snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir);
    else
        default_out_dir(o->cache_name ? o->cache_name : m->name, tc.target->name, r->out_dir,
                        sizeof r->out_dir, root, sizeof root, &shared);
    /* a target without shared libraries offers model.o (target.h) */
    snprintf(r->so_path, sizeof r->so_path, "%s/%s", r->out_dir,
             tc.target->static_only ? "model.o" : "model.so");
    char exe_name[128];
    snprintf(exe_name, sizeof exe_name, "%s%s", m->name,
             tc.target->exe_suffix ? tc.target->exe_suffix : "");
    if (o->exe)
        snprintf(r->exe_path, sizeof r->exe_path, "%s/%s", r->out_dir, exe_name);
    /* Each checked after mkdir, which leaves an existing directory as it
     * is, and the root before anything is created in it. */
    if (root[0]) {
        GMC_TRY(make_dirs(root, diag));
        GMC_TRY(check_private_dir(root, !shared, diag));
    }
    GMC_TRY(make_dirs(r->out_dir, diag));
    GMC_TRY(check_private_dir(r->out_dir, true, diag));
    GMC_TRY(write_if_changed(r->out_dir, "model.c", &e->model_c, diag));
    GMC_TRY(write_if_changed(r->out_dir, "model.h", &e->model_h, diag));
    GMC_TRY(write_if_changed(r->out_dir, "main.c", &e->main_c, diag));
    GMC_TRY(write_if_changed(r->out_dir, "manifest.tsv", &e->manifest, diag));
    r->frontend_s = now_s() - t0;

    /* The cache key covers everything that decides the products. */
    uint64_t key = gmc_hash_bytes(GMC_HASH_INIT, gmc_strbuf_str(&e->model_c), e->model_c.len);
    key = gmc_hash_bytes(key, flags, strlen(flags));
    if (tc.target->link_libs) /* and how it links */
        key = gmc_hash_bytes(key, tc.target->link_libs, strlen(tc.target->link_libs));
    key = gmc_hash_bytes(key, gmc_toolchain_clang(), strlen(gmc_toolchain_clang()));
    key = gmc_hash_bytes(key, GMC_VERSION, strlen(GMC_VERSION));
    key = gmc_toolchain_inputs_hash(key);
    /* The stamp is "<key> so=<hash>" plus " exe=<hash>" when the executable
     * was built: model.so is current when the key matches and the file
     * still hashes as written, the executable likewise.  A product that
     * changed since (truncated, replaced) is rebuilt, not loaded. */
    char want[64], have[128];
    snprintf(want, sizeof want, "%016" PRIx64, key);
    read_stamp(r->out_dir, have, sizeof have);
    bool same = strncmp(want, have, 16) == 0 && have[16] == ' ';
    bool so_ok = same && product_current(have, "so", r->so_path, &r->so_hash);
    bool exe_ok = same && o->exe && product_current(have, "exe", r->exe_path, &r->exe_hash);
    r->cached = !o->force && so_ok && (!o->exe || exe_ok);
    r->tampered = same && (product_changed(have, "so", r->so_path) ||
                           (o->exe && product_changed(have, "exe", r->exe_path)));
    if (r->cached)
        return GMC_OK;
    /* Whatever stands at the products' names goes first, so that no tool
     * writes through a link left there. */
    char obj[4200];
    snprintf(obj, sizeof obj, "%s/model.o", r->out_dir);
    const char *products[] = {obj, r->so_path, o->exe ? r->exe_path : NULL};
    for (int i = 0; i < 3; i++)
        if (products[i] && unlink(products[i]) != 0 && errno != ENOENT)
            return gmc_fail(diag, GMC_ERR_IO, "cannot remove the old %s: %s", products[i],
                            strerror(errno));
    double t1 = now_s();
    GMC_TRY(gmc_toolchain_build(&tc, r->out_dir, o->exe ? exe_name : NULL, o->verbose, diag));
    r->clang_s = now_s() - t1;
    if (!gmc_hash_product(r->so_path, &r->so_hash) ||
        (o->exe && !gmc_hash_product(r->exe_path, &r->exe_hash)))
        return gmc_fail(diag, GMC_ERR_IO, "cannot read what clang built in %s: %s",
                        r->out_dir, errno == EINVAL ? "not a regular file" : strerror(errno));
    char line[128];
    int len = snprintf(line, sizeof line, "%s so=%016" PRIx64, want, r->so_hash);
    if (o->exe)
        len += snprintf(line + len, sizeof line - (size_t)len, " exe=%016" PRIx64, r->exe_hash);
    snprintf(line + len, sizeof line - (size_t)len, "\n");
    gmc_strbuf st;
    gmc_strbuf_init(&st);
    gmc_strbuf_append(&st, line, strlen(line));
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

/* The profile --predict uses into *mach (NULL when the default profile
 * does not exist), its path into path. */
static gmc_status load_machine(const gmc_predict_opts *p, const char *target, char *path,
                               size_t cap, gmrt_machine *mach, gmrt_machine **out,
                               gmc_diag *diag)
{
    *out = NULL;
    if (p->machine)
        snprintf(path, cap, "%s", p->machine);
    else if (!gmrt_machine_default_path(target, path, cap))
        return gmc_fail(diag, GMC_ERR_IO, "the cache directory's path is too long");
    if (!p->machine && access(path, F_OK) != 0)
        return GMC_OK;
    gmrt_diag rd = {0};
    if (gmrt_machine_load(path, mach, &rd) != GMRT_OK)
        return gmc_fail(diag, GMC_ERR_IO, "%s", rd.msg);
    *out = mach;
    return GMC_OK;
}

gmc_status gmc_plan_graph(const gmc_options *o, const gmc_predict_opts *predict, FILE *out,
                          gmc_diag *diag)
{
    gmc_arena a;
    gmc_arena_init(&a);
    gmc_graph *g;
    gmc_target_config tc;
    gmc_strbuf b;
    gmc_strbuf_init(&b);
    gmc_status s = gmc_front(o, &a, &g, &tc, NULL, diag);
    if (s == GMC_OK)
        gmc_plan_report(g, tc.target->name, &b);
    if (s == GMC_OK && predict) {
        gmrt_bench_costs c;
        gmrt_machine mach, *m;
        char path[4200];
        s = gmc_plan_costs(g, &c, diag);
        if (s == GMC_OK)
            s = load_machine(predict, tc.target->name, path, sizeof path, &mach, &m, diag);
        if (s == GMC_OK)
            gmc_plan_predict_report(&c, tc.target->name, m, path, predict->n_prompt,
                                    predict->n_gen, &b);
    }
    if (s == GMC_OK)
        fputs(gmc_strbuf_str(&b), out);
    gmc_strbuf_deinit(&b);
    gmc_arena_deinit(&a);
    return s;
}
