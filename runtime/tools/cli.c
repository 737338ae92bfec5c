/*
 * cli.c — the `run` command line shared by standalone model executables and
 * `gemmac run`: options, prompt assembly (chat template or raw completion),
 * streaming to stdout, and the speed summary on stderr.
 *
 * Every numeric option is parsed strictly and range-checked; a bad option
 * prints what was wrong and exits with status 2, never crashes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmrt_tools.h"

#define GMRT_PROMPT_MAX (4u << 20) /* docs/input-checks.md §2.6 #48 */

typedef struct cli_opts {
    const char *weights, *tokenizer, *prompt, *prompt_file, *system, *ids_out, *logits_out;
    int chat;  /* 1 chat template, 0 raw, -1 decide from the weights */
    bool special; /* control tokens spelled in the prompt are parsed */
    bool verbose, quiet, requant;
    int32_t max_tokens;
    int threads;
    gmrt_sampler_params sp;
} cli_opts;

void gmrt_cli_print_options(FILE *f)
{
    fputs("  -m, --weights PATH     GGUF file, or HF safetensors (file, index .json or dir)\n"
          "      --tokenizer F.gguf with safetensors weights: the GGUF file whose\n"
          "                         vocabulary to use (tokenizer.json is not read)\n"
          "  -p, --prompt TEXT      the prompt (default: \"Why is the sky blue?\")\n"
          "  -f, --file FILE        read the prompt from FILE (at most 4 MiB)\n"
          "      --chat             wrap the prompt in the Gemma chat template\n"
          "                         (default when the GGUF has a chat template)\n"
          "      --raw              complete the prompt as is (default for base models)\n"
          "      --system TEXT      system instruction, prepended to the first turn\n"
          "      --special          parse control tokens written in the prompt and\n"
          "                         system text (e.g. <start_of_turn>); without it they\n"
          "                         are text, and only the chat template adds them\n"
          "  -n, --max-tokens N     generate at most N tokens (default 256)\n"
          "  -t, --threads N        threads (default: online CPUs, at most 8)\n"
          "      --greedy           always take the most likely token\n"
          "      --temp F           temperature, 0 = greedy (default 1.0)\n"
          "      --top-k N          keep the N most likely tokens, 0 = off (default 64)\n"
          "      --top-p F          nucleus sampling mass (default 0.95)\n"
          "      --min-p F          drop tokens below F x the top probability (default 0)\n"
          "      --repeat-penalty F penalise recent tokens, 1 = off (default 1)\n"
          "      --repeat-last-n N  how many recent tokens the penalty sees (default 64)\n"
          "  -s, --seed N           sampling seed (default 0)\n"
          "      --ids-out FILE     also write the generated token ids to FILE\n"
          "      --logits-out FILE  evaluate the prompt only and write its logits to FILE:\n"
          "                         one row of n_vocab f32 (this machine's byte order)\n"
          "                         per prompt token (checks a build against another)\n"
          "  -q, --quiet            no summary line\n"
          "      --requant          convert weights whose type in the file differs from\n"
          "                         the compiled one at load (a re-quantized model)\n"
          "  -v, --verbose          print loading details\n"
          "  -h, --help             this text\n", f);
}

static void usage(const gmk_model *m, const char *argv0, FILE *f)
{
    fprintf(f,
            "usage: %s --weights FILE.gguf [-p PROMPT | -f FILE] [options]\n\n"
            "Runs the compiled model %s (target %s, graph %s) on a prompt and\n"
            "streams the answer, then prints prefill and decode speed.\n\n",
            argv0, m->name, m->target, m->graph_hash);
    gmrt_cli_print_options(f);
}

bool gmrt_cli_parse_long(const char *who, const char *flag, const char *s, long lo, long hi,
                         long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects an integer in [%ld, %ld], got \"%s\"\n", who, flag, lo,
                hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

static bool parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    return gmrt_cli_parse_long("error", flag, s, lo, hi, out);
}

static bool parse_float(const char *flag, const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "error: %s expects a number, got \"%s\"\n", flag, s ? s : "");
        return false;
    }
    *out = (float)v;
    return true;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

/* Returns 0 to run, 1 for --help, 2 for a usage error. */
static int parse_args(const gmk_model *m, int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chat = -1;
    o->max_tokens = 256;
    o->threads = default_threads();
    gmrt_sampler_params_default(&o->sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
#define IS(s1, s2) (strcmp(a, s1) == 0 || (s2 && strcmp(a, s2) == 0))
#define NEED()                                                                 \
    do {                                                                       \
        if (!v) {                                                              \
            fprintf(stderr, "error: %s needs a value\n", a);                   \
            return 2;                                                          \
        }                                                                      \
        i++;                                                                   \
    } while (0)
        if (IS("-h", "--help")) {
            usage(m, argv[0], stdout);
            return 1;
        } else if (IS("-m", "--weights")) { NEED(); o->weights = v;
        } else if (IS("--tokenizer", NULL)) { NEED(); o->tokenizer = v;
        } else if (IS("-p", "--prompt")) { NEED(); o->prompt = v;
        } else if (IS("-f", "--file")) { NEED(); o->prompt_file = v;
        } else if (IS("--system", NULL)) { NEED(); o->system = v;
        } else if (IS("--ids-out", NULL)) { NEED(); o->ids_out = v;
        } else if (IS("--logits-out", NULL)) { NEED(); o->logits_out = v;
        } else if (IS("--raw", NULL)) { o->chat = 0;
        } else if (IS("--chat", NULL)) { o->chat = 1;
        } else if (IS("--special", NULL)) { o->special = true;
        } else if (IS("-v", "--verbose")) { o->verbose = true;
        } else if (IS("--requant", NULL)) { o->requant = true;
        } else if (IS("-q", "--quiet")) { o->quiet = true;
        } else if (IS("--greedy", NULL)) { o->sp.temperature = 0;
        } else if (IS("-n", "--max-tokens")) {
            NEED();
            if (!parse_long(a, v, 0, m->n_ctx, &l)) return 2;
            o->max_tokens = (int32_t)l;
        } else if (IS("-t", "--threads")) {
            NEED();
            if (!parse_long(a, v, 1, 256, &l)) return 2;
            o->threads = (int)l;
        } else if (IS("--top-k", NULL)) {
            NEED();
            if (!parse_long(a, v, 0, 1000000, &l)) return 2;
            o->sp.top_k = (int32_t)l;
        } else if (IS("--repeat-last-n", NULL)) {
            NEED();
            if (!parse_long(a, v, 0, 1 << 20, &l)) return 2;
            o->sp.repeat_last_n = (int32_t)l;
        } else if (IS("-s", "--seed")) {
            NEED();
            if (!parse_long(a, v, 0, 0x7fffffffL, &l)) return 2;
            o->sp.seed = (uint64_t)l;
        } else if (IS("--temp", NULL)) { NEED(); if (!parse_float(a, v, &o->sp.temperature)) return 2;
        } else if (IS("--top-p", NULL)) { NEED(); if (!parse_float(a, v, &o->sp.top_p)) return 2;
        } else if (IS("--min-p", NULL)) { NEED(); if (!parse_float(a, v, &o->sp.min_p)) return 2;
        } else if (IS("--repeat-penalty", NULL)) { NEED(); if (!parse_float(a, v, &o->sp.repeat_penalty)) return 2;
        } else {
            fprintf(stderr, "error: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
#undef IS
#undef NEED
    }
    if (!o->weights) {
        fprintf(stderr, "error: no weights given (--weights FILE.gguf)\n");
        return 2;
    }
    return 0;
}

/* The prompt text into *out (malloc'd): -p, or the file of -f (a regular
 * file, bounded, text without NUL bytes, which would silently end the
 * prompt), or the default.  Returns false after printing why not. */
static bool load_prompt(const cli_opts *o, char **out)
{
    *out = NULL;
    if (!o->prompt_file) {
        if (!(*out = strdup(o->prompt ? o->prompt : "Why is the sky blue?")))
            fprintf(stderr, "error: out of memory\n");
        return *out != NULL;
    }
    gmrt_diag d = {0};
    FILE *f;
    if (gmrt_file_fopen_read(o->prompt_file, &f, &d) != GMRT_OK) {
        fprintf(stderr, "error: %s\n", d.msg);
        return false;
    }
    char *buf = malloc(GMRT_PROMPT_MAX + 1);
    size_t n = buf ? fread(buf, 1, GMRT_PROMPT_MAX + 1, f) : 0;
    int rerr = buf && ferror(f) ? errno : 0;
    fclose(f);
    const char *nul = buf ? memchr(buf, '\0', n) : NULL;
    if (!buf)
        fprintf(stderr, "error: out of memory\n");
    else if (rerr)
        fprintf(stderr, "error: cannot read %s: %s\n", o->prompt_file, strerror(rerr));
    else if (n > GMRT_PROMPT_MAX)
        fprintf(stderr, "error: %s: prompt files are limited to %u bytes\n",
                o->prompt_file, GMRT_PROMPT_MAX);
    else if (nul)
        fprintf(stderr, "error: %s: NUL byte at offset %zu; a prompt file must be text\n",
                o->prompt_file, (size_t)(nul - buf));
    if (!buf || rerr || n > GMRT_PROMPT_MAX || nul) {
        free(buf);
        return false;
    }
    buf[n] = '\0';
    *out = buf;
    return true;
}

static const char *const stop_names[] = {"token limit", "end of turn", "stopped",
                                         "context full"};

static void summary(const gmrt_gen_stats *st)
{
    double pp = st->prefill_s > 0 ? (double)st->n_prompt / st->prefill_s : 0;
    double tg = st->decode_s > 0 ? (double)st->n_decode / st->decode_s : 0;
    fprintf(stderr,
            "\n[prefill %zu tokens in %.3f s: %.1f tok/s | decode %zu tokens in %.3f s: "
            "%.1f tok/s | stop: %s]\n",
            st->n_prompt, st->prefill_s, pp, st->n_decode, st->decode_s, tg,
            stop_names[st->stop_reason & 3]);
}

static int write_ids(const char *path, const int32_t *ids, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? " " : "", ids[i]);
    fputc('\n', f);
    /* Buffered errors (a full disk) show at the flush in fclose. */
    int err = fflush(f) != 0 || ferror(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (err)
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(err));
    return err ? 1 : 0;
}

/* The prompt's ids, BOS per the vocabulary: the chat template's markup as
 * control tokens and the texts as text, or the raw text; --special parses
 * control tokens in the texts too (the formatted string is tokenized
 * whole).  *ids is malloc'd with room for the whole context. */
static gmrt_status prompt_ids(gmrt_session *s, const gmk_model *m, const cli_opts *o,
                              bool chat, const char *text, int32_t **ids, size_t *n,
                              gmrt_diag *diag)
{
    const gmrt_vocab *v = gmrt_session_vocab(s);
    bool bos = gmrt_vocab_add_bos(v);
    size_t cap = (size_t)m->n_ctx;
    char *formatted = NULL;
    gmrt_status st;
    *n = 0;
    if (!(*ids = malloc(cap * sizeof **ids)))
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory for %zu prompt ids", cap);
    if (chat && !o->special)
        st = gmrt_chat_tokenize(v, o->system, text, bos, *ids, cap, n, diag);
    else if (chat && !(formatted = gmrt_chat_format_style(gmrt_chat_style_of(v),
                                                          o->system, text)))
        st = gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory formatting the prompt");
    else {
        const char *p = formatted ? formatted : text;
        st = gmrt_tokenize(v, p, strlen(p), bos, o->special, *ids, cap, n, diag);
    }
    free(formatted);
    if (st == GMRT_ERR_LIMIT)
        st = gmrt_fail(diag, GMRT_ERR_ARG,
                       "the prompt is %zu tokens; %zu fit in the context of %d", *n, cap,
                       m->n_ctx);
    return st;
}

/* --logits-out: the prompt's logits, every position, into path. */
static int write_logits(gmrt_session *s, const gmk_model *m, const int32_t *ids, size_t n,
                        const char *path)
{
    gmrt_diag diag = {0};
    const float *logits = NULL;
    if (gmrt_session_eval(s, ids, n, true, &logits, &diag) != GMRT_OK) {
        fprintf(stderr, "error: %s\n", diag.msg);
        return 1;
    }
    FILE *f = fopen(path, "wb");
    size_t want = n * (size_t)m->n_vocab;
    int err = !f ? errno : fwrite(logits, sizeof *logits, want, f) != want ? EIO : 0;
    if (f && fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (err)
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(err));
    else
        fprintf(stderr, "[%zu prompt tokens x %d logits written to %s]\n", n,
                (int)m->n_vocab, path);
    return err ? 1 : 0;
}

/* The answer went to stdout; a write that failed (a full disk, a closed
 * pipe) fails the run rather than exiting 0 with the text lost. */
static int check_stdout(int err)
{
    if (fflush(stdout) != 0 && !err)
        err = errno ? errno : EIO;
    if (ferror(stdout) && !err)
        err = EIO;
    if (!err)
        return 0;
    fprintf(stderr, "error: cannot write stdout: %s\n", strerror(err));
    return 1;
}

int gmrt_cli_main(const gmk_model *m, int argc, char **argv)
{
    cli_opts o;
    int rc = parse_args(m, argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    gmrt_diag diag = {0};
    if (gmrt_sampler_params_check(&o.sp, &diag) != GMRT_OK) {
        fprintf(stderr, "error: %s\n", diag.msg);
        return 2;
    }
    char *text;
    if (!load_prompt(&o, &text))
        return 1;
    int32_t *ids = calloc((size_t)o.max_tokens + 1, sizeof *ids), *prompt = NULL;
    size_t n_prompt = 0;
    /* A prompt needs a tokenizer: without one the session fails before
     * converting any weight, not after. */
    gmrt_session_opts so = {.n_threads = o.threads, .verbose = o.verbose,
                           .requant = o.requant, .tokenizer = o.tokenizer,
                           .need_tokenizer = true};
    gmrt_session *s = NULL;
    gmrt_gen_stats st;
    int out_err = 0;
    rc = 1;
    if (!ids)
        fprintf(stderr, "error: out of memory\n");
    else if (gmrt_session_create(m, o.weights, &so, &s, &diag) != GMRT_OK)
        fprintf(stderr, "error: %s\n", diag.msg);
    else {
        /* A base model (no chat template in its GGUF) continues text. */
        bool chat = o.chat < 0 ? gmrt_session_has_chat_template(s) : o.chat == 1;
        if (o.verbose)
            fprintf(stderr, "prompt mode: %s%s\n", chat ? "chat template" : "raw completion",
                    o.special ? ", control tokens parsed" : "");
        if (prompt_ids(s, m, &o, chat, text, &prompt, &n_prompt, &diag) != GMRT_OK)
            fprintf(stderr, "error: %s\n", diag.msg);
        else if (o.logits_out)
            rc = write_logits(s, m, prompt, n_prompt, o.logits_out);
        else if (gmrt_session_generate_ids(s, prompt, n_prompt, &o.sp, o.max_tokens,
                                           gmrt_stream_stdout, &out_err, ids,
                                           (size_t)o.max_tokens, &st, &diag) != GMRT_OK)
            fprintf(stderr, "\nerror: %s\n", diag.msg);
        else {
            rc = o.ids_out ? write_ids(o.ids_out, ids, st.n_gen) : 0;
            if (!o.quiet)
                summary(&st);
            else
                fputc('\n', stdout);
            rc |= check_stdout(out_err);
        }
    }
    gmrt_session_destroy(s);
    free(ids);
    free(prompt);
    free(text);
    return rc;
}
