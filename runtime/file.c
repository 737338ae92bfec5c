/*
 * file.c — opening input files without blocking and replacing output files
 * safely.
 *
 * Inputs (weights, references, prompts, texts) must be regular files: a
 * FIFO blocks open() until a writer appears, possibly forever, and a
 * directory reads as empty.  gmrt_file_open_read checks with stat before
 * opening and again with fstat on a descriptor opened O_NONBLOCK, so a path
 * swapped between the two cannot block either.
 *
 * Outputs are written to a temporary file created O_CREAT|O_EXCL|O_NOFOLLOW
 * under an unpredictable name beside the target and renamed over it only
 * when complete.  Only a regular file is ever replaced: a device, FIFO,
 * directory or symbolic link at the target is refused before anything is
 * created (as root, renaming over /dev/null would replace the device).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmrt.h"

const char *gmrt_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
#if S_IFSOCK != S_IFIFO /* one type in WASI */
    case S_IFSOCK: return "a socket";
#endif
    default: return "not a regular file";
    }
}

gmrt_file_format gmrt_format_of(const void *p, size_t n)
{
    const unsigned char *b = p;
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0)
        return GMRT_FORMAT_GGUF;
    if (n >= 9 && b[8] == '{') {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--)
            h = h << 8 | b[i];
        if (h >= 2)
            return GMRT_FORMAT_SAFETENSORS;
    }
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i < n && b[i] == '{' ? GMRT_FORMAT_JSON : GMRT_FORMAT_UNKNOWN;
}

/* "a GGUF file, a safetensors file or ..." for the bits of accept. */
static void format_names(unsigned accept, char *buf, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{GMRT_FORMAT_GGUF, "a GGUF file (\"GGUF\" magic)"},
                 {GMRT_FORMAT_SAFETENSORS, "a safetensors file (JSON header after its "
                                           "8-byte length)"},
                 {GMRT_FORMAT_JSON, "a JSON file"},
                 {GMRT_FORMAT_DIR, "a checkpoint directory"}};
    size_t k = 0, n = 0, total = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        total += (accept & names[i].bit) != 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names && k < cap; i++) {
        if (!(accept & names[i].bit))
            continue;
        const char *sep = n == 0 ? "" : n + 1 == total ? " or " : ", ";
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", sep, names[i].name);
        n++;
    }
}

gmrt_status gmrt_file_sniff(const char *path, unsigned accept, gmrt_file_format *out,
                            gmrt_diag *diag)
{
    *out = GMRT_FORMAT_UNKNOWN;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (accept & GMRT_FORMAT_DIR)) {
        *out = GMRT_FORMAT_DIR;
        return GMRT_OK;
    }
    int fd;
    gmrt_status s = gmrt_file_open_read(path, 0, &fd, diag);
    if (s != GMRT_OK)
        return s;
    unsigned char head[16];
    ssize_t n = read(fd, head, sizeof head);
    int err = errno;
    close(fd);
    if (n < 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "%s: %s", path, strerror(err));
    *out = gmrt_format_of(head, (size_t)n);
    if (*out != GMRT_FORMAT_UNKNOWN && (accept & (unsigned)*out))
        return GMRT_OK;
    char want[256], bytes[3 * sizeof head + 1] = "";
    format_names(accept, want, sizeof want);
    for (ssize_t i = 0; i < n && i < 8; i++)
        snprintf(bytes + 3 * i, 4, " %02x", head[i]);
    return gmrt_fail(diag, GMRT_ERR_FORMAT, "%s: not %s; %s%s", path, want,
                     n == 0 ? "it is empty" : "it starts with bytes", bytes);
}

static gmrt_status not_regular(const char *path, unsigned mode, gmrt_diag *diag)
{
    return gmrt_fail(diag, GMRT_ERR_IO, "%s: is %s, not a regular file", path,
                     gmrt_file_kind(mode));
}

gmrt_status gmrt_file_open_read(const char *path, int flags, int *out_fd, gmrt_diag *diag)
{
    *out_fd = -1;
    struct stat st;
    /* O_NOFOLLOW asks about the name itself, as open() will. */
    int r = flags & O_NOFOLLOW ? lstat(path, &st) : stat(path, &st);
    if (r != 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return not_regular(path, (unsigned)st.st_mode, diag);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags);
    if (fd < 0)
        return gmrt_fail(diag, GMRT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    gmrt_status s = GMRT_OK;
    int fl;
    if (fstat(fd, &st) != 0)
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = not_regular(path, (unsigned)st.st_mode, diag);
    else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (s != GMRT_OK) {
        close(fd);
        return s;
    }
    *out_fd = fd;
    return GMRT_OK;
}

gmrt_status gmrt_file_fopen_read(const char *path, FILE **out, gmrt_diag *diag)
{
    *out = NULL;
    int fd;
    gmrt_status s = gmrt_file_open_read(path, 0, &fd, diag);
    if (s != GMRT_OK)
        return s;
    if (!(*out = fdopen(fd, "rb"))) {
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        close(fd);
    }
    return s;
}

/* GMRT_OK if path is absent or a regular file (not followed if a link). */
static gmrt_status check_target(const char *path, gmrt_diag *diag)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? GMRT_OK
                               : gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: %s", path,
                                           strerror(errno));
    if (!S_ISREG(st.st_mode))
        return gmrt_fail(diag, GMRT_ERR_IO, "cannot write %s: is %s; only a regular file "
                         "is replaced", path, gmrt_file_kind((unsigned)st.st_mode));
    return GMRT_OK;
}

/* 64 unpredictable bits: getentropy, or (where it fails) the clock, the
 * process id and a counter, which O_EXCL makes safe if not secret. */
static uint64_t random_bits(void)
{
    static unsigned counter;
    uint64_t v;
    if (getentropy(&v, sizeof v) == 0)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec << 20 ^
        (uint64_t)getpid() << 40 ^ ++counter;
    return v;
}

gmrt_status gmrt_file_replace_begin(gmrt_file_replace *r, const char *path, gmrt_diag *diag)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (!path || !*path)
        return gmrt_fail(diag, GMRT_ERR_ARG, "empty output path");
    gmrt_status s = check_target(path, diag);
    if (s != GMRT_OK)
        return s;
    size_t plen = strlen(path);
    r->tmp = malloc(plen + 16);  /* ".tmp." + 10 characters + NUL */
    if (!r->tmp)
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory");
    memcpy(r->tmp, path, plen);
    for (int tries = 0; tries < 100; tries++) {
        uint64_t v = random_bits();
        char *p = r->tmp + plen;
        memcpy(p, ".tmp.", 5);
        for (int i = 0; i < 10; i++, v /= 62)
            p[5 + i] = digits[v % 62];
        p[15] = '\0';
        r->fd = open(r->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r->fd >= 0 || errno != EEXIST)
            break;
    }
    if (r->fd < 0) {
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot create a temporary file beside %s: %s",
                      path, strerror(errno));
        free(r->tmp);
        r->tmp = NULL;
        return s;
    }
    r->path = path;
    return GMRT_OK;
}

gmrt_status gmrt_file_replace_commit(gmrt_file_replace *r, gmrt_diag *diag)
{
    /* Checked again: the target may have changed while we wrote. */
    gmrt_status s = check_target(r->path, diag);
    if (s == GMRT_OK && rename(r->tmp, r->path) != 0)
        s = gmrt_fail(diag, GMRT_ERR_IO, "cannot rename %s to %s: %s", r->tmp, r->path,
                      strerror(errno));
    if (s != GMRT_OK)
        unlink(r->tmp);
    free(r->tmp);
    r->tmp = NULL;
    return s;
}

void gmrt_file_replace_abort(gmrt_file_replace *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->tmp)
        unlink(r->tmp);
    free(r->tmp);
    r->tmp = NULL;
}

void gmrt_cache_root(char *buf, size_t cap, bool *shared)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    *shared = false;
    if (xdg && *xdg)
        snprintf(buf, cap, "%s/gemmac", xdg);
    else if (home && *home)
        snprintf(buf, cap, "%s/.cache/gemmac", home);
    else {
        /* The uid in the name: another user's directory is not ours to
         * refuse or share (WASI has no users, nor geteuid). */
#ifdef __wasi__
        snprintf(buf, cap, "/tmp/gemmac");
#else
        snprintf(buf, cap, "/tmp/gemmac-%u", (unsigned)geteuid());
#endif
        *shared = true;
    }
}
