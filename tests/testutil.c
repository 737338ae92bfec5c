/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "target.h"
#include "toolchain.h"

const char *gmc_test_model_path(void)
{
    static char path[4096];
    static int done;
    if (done)
        return path[0] ? path : NULL;
    done = 1;
    const char *env = getenv("GMC_MODEL_GGUF");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
        return path;
    }
    FILE *p = popen("sh '" GMC_SOURCE_DIR "/scripts/model-path' 2>/dev/null", "r");
    if (!p)
        return NULL;
    if (!fgets(path, sizeof path, p))
        path[0] = '\0';
    pclose(p);
    path[strcspn(path, "\r\n")] = '\0';
    if (path[0] && access(path, R_OK) != 0)
        path[0] = '\0';
    return path[0] ? path : NULL;
}

const char *gmc_test_src(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", GMC_SOURCE_DIR, rel);
    return buf;
}

static char tmpdir[4096];
static pid_t tmpdir_owner; /* Check forks: only the creator removes it */

static void remove_tmpdir(void)
{
    if (tmpdir[0] && getpid() == tmpdir_owner) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *gmc_test_tmpdir(void)
{
    if (tmpdir[0])
        return tmpdir;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gemmac-test-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return NULL;
    }
    tmpdir_owner = getpid();
    atexit(remove_tmpdir);
    return tmpdir;
}

char *gmc_test_read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (out_len)
            *out_len = (size_t)n;
    }
    return buf;
}

unsigned long long gmc_test_number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (!p)
        return 0;
    p += strlen(key);
    return strtoull(p + strspn(p, " ="), NULL, 10);
}

char *gmc_test_plan(const gmc_options *o)
{
    char *plan = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&plan, &len);
    ck_assert_ptr_nonnull(f);
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert_msg(gmc_plan_graph(o, NULL, f, &d) == GMC_OK, "%s", d.msg);
    fclose(f);
    return plan;
}

bool gmc_test_configure(const char *name, gmc_target_config *c, char *why, int why_len,
                        bool *is_host)
{
    gmc_host h;
    gmc_diag d;
    gmc_diag_clear(&d);
    ck_assert(gmc_host_detect(&h, &d) == GMC_OK);
    const gmc_target *t = gmc_target_find(name, &h);
    ck_assert_ptr_nonnull(t);
    if (is_host)
        *is_host = t == gmc_target_find("host", &h);
    return t->configure(t, &h, c, why, why_len);
}

bool gmc_test_cross_runs(const char *suite, const char *target, const char *why)
{
    const char *mode = getenv("GMC_E2E_CROSS");
    if (why) {
        ck_assert_msg(!mode || strcmp(mode, "required") != 0, "%s cannot run here: %s", target,
                      why);
        fprintf(stderr, "%s: SKIPPED %s: %s\n", suite, target, why);
        return false;
    }
    if (mode && strcmp(mode, "skip") == 0) {
        fprintf(stderr, "%s: SKIPPED %s (GMC_E2E_CROSS=skip)\n", suite, target);
        return false;
    }
    return true;
}
