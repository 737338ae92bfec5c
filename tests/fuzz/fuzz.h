/*
 * fuzz.h — what the libFuzzer harnesses in tests/fuzz share.
 *
 * Several readers take a path, not a buffer (they map the file), so a
 * harness writes each input to a file in a scratch directory made once per
 * process ($TMPDIR, else /dev/shm, else /tmp); it and its files go at exit.  The tokenizer and chat
 * harnesses load fixed vocabularies from tests/fixtures once.  Anything that
 * goes wrong here is the harness's fault, not the input's, so it aborts.
 */
#ifndef GMC_FUZZ_H
#define GMC_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmrt.h"

#define FUZZ_FILES_MAX 8

static char fuzz_dir_path[4096];
static char fuzz_files[FUZZ_FILES_MAX][4200];
static int fuzz_n_files;

static void fuzz_cleanup(void)
{
    for (int i = 0; i < fuzz_n_files; i++)
        unlink(fuzz_files[i]);
    if (fuzz_dir_path[0])
        rmdir(fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_path[0])
        return fuzz_dir_path;
    /* Memory, not disk, when there is a tmpfs: each input is written once
     * per run, thousands of times a second. */
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/gemmac-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_path)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_cleanup);
    return fuzz_dir_path;
}

/* The path of file `name` in the scratch directory; the same name always
 * gives the same path, and the file is removed at exit. */
static inline const char *fuzz_path(const char *name)
{
    char path[sizeof fuzz_files[0]];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    for (int i = 0; i < fuzz_n_files; i++)
        if (strcmp(fuzz_files[i], path) == 0)
            return fuzz_files[i];
    if (fuzz_n_files == FUZZ_FILES_MAX)
        abort();
    memcpy(fuzz_files[fuzz_n_files], path, sizeof path);
    return fuzz_files[fuzz_n_files++];
}

/* Replaces file `name` with size bytes of data; returns its path.  The
 * readers map what they open and unmap it before returning, so rewriting
 * the file for the next input never pulls pages from under a live map. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            perror(path);
            abort();
        }
        off += (size_t)n;
    }
    close(fd);
    return path;
}

/* The tokenizer of the GGUF at rel (relative to the source tree). */
static inline gmrt_vocab *fuzz_vocab(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", GMC_SOURCE_DIR, rel);
    gmrt_diag d = {0};
    gmrt_gguf *g = NULL;
    gmrt_vocab *v = NULL;
    if (gmrt_gguf_open(path, &g, &d) != GMRT_OK || gmrt_vocab_from_gguf(g, &v, &d) != GMRT_OK) {
        fprintf(stderr, "fuzz: %s: %s\n", path, d.msg);
        abort();
    }
    gmrt_gguf_close(g);
    return v;
}

/* The SentencePiece (Gemma 3 conformance model) and BPE (Gemma 4)
 * vocabularies of the fixtures. */
#define FUZZ_VOCAB_SPM "tests/fixtures/conformance/gemma3/model.gguf"
#define FUZZ_VOCAB_BPE "tests/fixtures/tokenizer/gemma4_vocab.gguf"

/* Tokenizes text with v, retrying once with the count the first call
 * reported when the buffer was too small, then renders every id back to
 * bytes.  Returns the number of ids; a second LIMIT is a tokenizer bug. */
static inline size_t fuzz_tokenize(const gmrt_vocab *v, const char *text, size_t len,
                                   bool parse_special)
{
    size_t cap = 2 * len + 8, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        abort();
    gmrt_diag d = {0};
    gmrt_status st = gmrt_tokenize(v, text, len, gmrt_vocab_add_bos(v), parse_special,
                                   ids, cap, &n, &d);
    if (st == GMRT_ERR_LIMIT && n > cap) {
        free(ids);
        cap = n;
        if (!(ids = malloc(cap * sizeof *ids)))
            abort();
        st = gmrt_tokenize(v, text, len, gmrt_vocab_add_bos(v), parse_special, ids, cap,
                           &n, &d);
        if (st == GMRT_ERR_LIMIT)
            abort();
    }
    if (st != GMRT_OK)
        n = 0;
    char piece[64];
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= gmrt_vocab_size(v))
            abort();
        size_t k = gmrt_token_to_piece(v, ids[i], piece, sizeof piece);
        if (k > sizeof piece) {
            char *big = malloc(k);
            if (!big || gmrt_token_to_piece(v, ids[i], big, k) != k)
                abort();
            free(big);
        }
    }
    free(ids);
    return n;
}

#endif /* GMC_FUZZ_H */
